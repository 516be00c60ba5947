"""The network workloads' server side: what runs on the measured loop.

One measurement is one server on the loop being measured (an echo
Protocol, an asyncio streams handler, a minimal HTTP/1.1 Protocol, a
datagram echo, the echo Protocol over TLS, also for TLS handshakes, or an
aiohttp or uvicorn app, see :mod:`hookloop_bench.frameworks`) and a load
side in *other processes*: several :mod:`hookloop_bench.load` clients, each
with many connections, or ``wrk`` for the HTTP workloads when it is on
PATH.  The figure is the rate the clients saw over the counted window
(``wrk``'s requests/s, or the sum of each client's checked exchanges over
its own window), that is, the server loop's throughput.

What this side checks, so that a broken loop cannot produce a figure: every
connection the clients made was accepted and lost cleanly; nothing reached
the loop's exception handler; the server's own counters (bytes echoed,
requests answered, datagrams echoed, TLS connections made) agree exactly
with the clients' checked totals; no request was malformed (and, for the
frameworks, nothing the framework logged as a warning or an error).  The
clients check every byte.

The coordination with the clients (``ready``/``go`` lines, collecting the
results, waiting for their exit) runs in a helper thread that sleeps in
blocking reads and hands its result to the loop with
``call_soon_threadsafe``: the measured loop only serves.  This module must
never run load on the measured loop, nor use a loop API beyond asyncio's
public one (so every subject runs the very same code).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from . import load as load_module
from .workloads import Settings, Workload

HOST = "127.0.0.1"
LOAD_SCRIPT = load_module.__file__
#: Seconds, beyond the run itself, before a stuck measurement is abandoned:
#: more than the load side may legitimately take on a starved machine (its
#: window extended by up to ``WINDOW_TIMEOUT``, its drain up to
#: ``DRAIN_TIMEOUT``), with a minute to spare for starting and closing.
GRACE = load_module.WINDOW_TIMEOUT + load_module.DRAIN_TIMEOUT + 60.0
#: Seconds the server's connections may take to close after the clients'.
CLOSE_TIMEOUT = 30.0


class WorkloadError(AssertionError):
    """The measurement is void: a wrong answer, a lost connection, an error."""


@dataclass
class Outcome:
    """What a network measurement produced."""

    rate: float
    detail: dict[str, Any]


class ServerStats:
    """What the server side saw, and the loop's exception handler reports."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.open: set[Any] = set()
        self.made = 0
        self.errors: list[str] = []
        self.echoed = 0  # payload bytes written back (echo servers)
        self.requests = 0  # requests answered 200 (http)
        self.bad = 0  # malformed requests (http)
        self.datagrams = 0  # datagrams echoed (udp)
        self.idle: asyncio.Future[None] | None = None
        #: wrk closes its connections with requests in flight: a reset then
        #: is how its run ends, not an error.
        self.resets_expected = False

    def answer(self, target: bytes) -> bytes:
        """One request for ``target`` answered 200: counted; the body to send
        (the one :class:`~hookloop_bench.load.HttpConnection` checks)."""
        self.requests += 1
        body = load_module.http_body(target)
        self.echoed += len(body)
        return body

    def made_one(self, who: Any) -> None:
        self.made += 1
        self.open.add(who)

    def lost_one(self, who: Any, exc: BaseException | None) -> None:
        self.open.discard(who)
        if exc is not None and not (self.resets_expected and isinstance(
                exc, ConnectionResetError | BrokenPipeError)):
            self.errors.append(f"server connection lost with {exc!r}")
        if not self.open and self.idle is not None and not self.idle.done():
            self.idle.set_result(None)

    async def all_closed(self, timeout: float) -> None:
        if self.open:
            self.idle = self.loop.create_future()
            try:
                await asyncio.wait_for(self.idle, timeout)
            except TimeoutError:
                raise WorkloadError(f"{len(self.open)} server connections still open "
                                    f"{timeout:.0f} s after the clients closed") from None

    async def abort_all(self) -> None:
        """After a failure: drop every server connection still open."""
        for who in list(self.open):
            who.transport.abort()
        for _ in range(3):  # connection_lost runs soon after abort()
            if not self.open:
                break
            await asyncio.sleep(0)

    def exception_handler(self, loop: Any, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        self.errors.append(f"loop exception handler: {context.get('message')}"
                           + (f": {exc!r}" if exc is not None else ""))


class EchoServer(asyncio.Protocol):
    """Writes back every byte it receives."""

    def __init__(self, stats: ServerStats) -> None:
        self.stats = stats
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.stats.made_one(self)

    def data_received(self, data: bytes) -> None:
        self.stats.echoed += len(data)
        self.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.stats.lost_one(self, exc)


class HttpServer(EchoServer):
    """A minimal HTTP/1.1 keep-alive responder: parses each request's line
    and headers, answers ``GET <target>`` with 200 and a body naming the
    target, anything else with 400, closing."""

    def __init__(self, stats: ServerStats) -> None:
        super().__init__(stats)
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while not self.transport.is_closing():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buffer = self.buffer[:end], self.buffer[end + 4:]
            self.respond(head)

    def respond(self, head: bytes) -> None:
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            name, sep, value = line.partition(":")
            if not sep:
                break
            headers[name.strip().lower()] = value.strip()
        method, _, rest = request_line.partition(" ")
        target, _, version = rest.partition(" ")
        if method != "GET" or version != "HTTP/1.1" or "host" not in headers:
            self.stats.bad += 1
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                 b"Connection: close\r\n\r\n")
            self.transport.close()
            return
        body = self.stats.answer(target.encode("latin-1"))
        self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        if headers.get("connection", "").lower() == "close":
            self.transport.close()


class DatagramEcho(asyncio.DatagramProtocol):
    """Sends every datagram back where it came from."""

    def __init__(self, stats: ServerStats) -> None:
        self.stats = stats
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.stats.datagrams += 1
        self.stats.echoed += len(data)
        self.transport.sendto(data, addr)

    def error_received(self, exc: Exception) -> None:
        self.stats.errors.append(f"datagram endpoint error {exc!r}")


def _streams_handler(stats: ServerStats, size: int) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stats.made_one(writer)
        error: BaseException | None = None
        try:
            while True:
                try:
                    data = await reader.readexactly(size)
                except asyncio.IncompleteReadError as exc:
                    if exc.partial:
                        raise WorkloadError(f"{len(exc.partial)} stray bytes at EOF") from None
                    return
                stats.echoed += len(data)
                writer.write(data)
                await writer.drain()
        except Exception as exc:
            error = exc
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except Exception as exc:
                error = error or exc
            stats.lost_one(writer, error)
    return handle


def _listening_socket(kind: int, backlog: int) -> socket.socket:
    # The protocol number as loop.create_server(host, port) has it (from
    # getaddrinfo): asyncio's loop only sets TCP_NODELAY on connections
    # accepted from a socket whose ``proto`` is IPPROTO_TCP, and without it
    # a response written in two parts (uvicorn's) waits out a delayed ACK.
    proto = socket.IPPROTO_TCP if kind == socket.SOCK_STREAM else socket.IPPROTO_UDP
    sock = socket.socket(socket.AF_INET, kind, proto)
    try:
        sock.bind((HOST, 0))
        if kind == socket.SOCK_STREAM:
            sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def tls_contexts() -> tuple[ssl.SSLContext, str]:
    """A server context with a fresh trustme certificate for 127.0.0.1, and
    the CA certificate (PEM) the clients trust."""
    import trustme
    ca = trustme.CA()
    cert = ca.issue_cert(HOST)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context, ca.cert_pem.bytes().decode()


class CpuSplit:
    """The server on one CPU, the load processes on the others.

    With two CPUs or more (and ``sched_setaffinity``, i.e. Linux), the
    measuring process is pinned to its first allowed CPU for the run and
    every load process to the rest, so the scheduler never puts a client on
    the server's CPU halfway through; the same split for every subject.
    The process's own affinity is restored afterwards."""

    def __init__(self, enabled: bool) -> None:
        cpus: list[int] = []
        if enabled and hasattr(os, "sched_setaffinity"):
            cpus = sorted(os.sched_getaffinity(0))
        self.cpus = cpus if len(cpus) >= 2 else []

    def __enter__(self) -> CpuSplit:
        if self.cpus:
            os.sched_setaffinity(0, self.cpus[:1])
        return self

    def __exit__(self, *exc: object) -> None:
        if self.cpus:
            os.sched_setaffinity(0, self.cpus)

    def pin_load(self, pid: int) -> None:
        if self.cpus:
            try:
                os.sched_setaffinity(pid, self.cpus[1:])
            except OSError:  # it already exited: its failure will be reported
                pass


# -- the load side ------------------------------------------------------

class ClientProcesses:
    """The in-repo load generator: ``settings.clients`` processes running
    :mod:`hookloop_bench.load`."""

    name = "python"

    def __init__(self, workload: Workload, port: int, settings: Settings,
                 ca_pem: str | None, split: CpuSplit) -> None:
        self.procs: list[subprocess.Popen[str]] = []
        try:
            for i in range(settings.clients):
                config = {"id": i, "kind": workload.load, "host": HOST, "port": port,
                          "connections": workload.connections(settings),
                          "size": workload.size,
                          "warmup": settings.warmup, "seconds": settings.seconds,
                          "ca_pem": ca_pem}
                self.procs.append(subprocess.Popen(
                    [sys.executable, "-I", "-S", LOAD_SCRIPT, json.dumps(config)],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    text=True))
                split.pin_load(self.procs[-1].pid)
        except BaseException:
            self.kill()
            raise

    def _line(self, proc: subprocess.Popen[str]) -> str:
        assert proc.stdout is not None
        return proc.stdout.readline().strip()

    def _failure(self, proc: subprocess.Popen[str], line: str) -> str:
        try:
            return str(json.loads(line)["error"])
        except (ValueError, KeyError, TypeError):
            proc.kill()
            _, err = proc.communicate()
            return (err.strip().splitlines() or [line or "no output"])[-1]

    def coordinate(self) -> list[dict[str, Any]]:
        """(In the helper thread.)  Ready, go, results; raises on a failure."""
        for proc in self.procs:
            line = self._line(proc)
            if line != "ready":
                raise WorkloadError(f"load client failed: {self._failure(proc, line)}")
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in self.procs:
            line = self._line(proc)
            proc.wait()
            try:
                result = json.loads(line)
            except ValueError:
                result = {"error": self._failure(proc, line)}
            if result.get("error"):
                raise WorkloadError(f"load client: {result['error']}")
            results.append(result)
        return results

    def kill(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()


def parse_wrk(text: str) -> dict[str, Any]:
    """The figures in ``wrk``'s report; :class:`WorkloadError` if it saw errors."""
    rate = re.search(r"Requests/sec:\s*([\d.]+)", text)
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", text)
    if rate is None or total is None:
        raise WorkloadError(f"cannot read wrk's report: {text.strip()[-300:]!r}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    if non2xx is not None and int(non2xx.group(1)):
        raise WorkloadError(f"wrk got {non2xx.group(1)} non-2xx responses")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       text)
    if errors is not None and any(int(g) for g in errors.groups()):
        raise WorkloadError(f"wrk: {errors.group(0)}")
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[total.group(3)]
    return {"counted": int(total.group(1)), "elapsed": float(total.group(2)) * scale,
            "rate": float(rate.group(1)), "total": int(total.group(1))}


class WrkLoad:
    """``wrk`` as the load generator for the http workload: a discarded
    warm-up run, then the counted one (wrk counts in whole seconds)."""

    name = "wrk"

    def __init__(self, wrk: str, port: int, settings: Settings, split: CpuSplit) -> None:
        self.split = split
        self.args = [wrk, f"-t{settings.clients}", f"-c{settings.clients * settings.connections}",
                     f"http://{HOST}:{port}/"]
        self.seconds = max(1, round(settings.seconds))
        self.warmup = max(1, round(settings.warmup))

    def coordinate(self) -> list[dict[str, Any]]:
        results = []
        for seconds in (self.warmup, self.seconds):
            with subprocess.Popen([*self.args[:-1], f"-d{seconds}s", self.args[-1]],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) as proc:
                self.split.pin_load(proc.pid)
                try:
                    stdout, stderr = proc.communicate(timeout=seconds + GRACE)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    raise WorkloadError("wrk did not finish") from None
            if proc.returncode:
                raise WorkloadError(f"wrk failed: {stderr.strip() or stdout.strip()}")
            results.append(parse_wrk(stdout))
        warm, counted = results
        counted["total"] += warm["total"]
        return [counted]

    def kill(self) -> None:
        pass


def _in_thread(loop: asyncio.AbstractEventLoop, load: Any) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def work() -> None:
        try:
            result, error = load.coordinate(), None
        except BaseException as exc:
            result, error = None, exc
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    threading.Thread(target=work, name="hookloop-bench-load", daemon=True).start()
    return future


# -- one measurement ----------------------------------------------------

@contextlib.asynccontextmanager
async def _protocol_server(workload: Workload, stats: ServerStats, sock: socket.socket,
                           context: ssl.SSLContext | None) -> AsyncIterator[dict[str, Any]]:
    """The bench's own server of ``workload`` on ``sock``, on the stats' loop;
    closed on leaving (after :meth:`ServerStats.abort_all`)."""
    loop = stats.loop
    if workload.load == "udp":
        transport, _ = await loop.create_datagram_endpoint(lambda: DatagramEcho(stats), sock=sock)
        server: Any = None
    elif workload.name == "streams_echo":
        server = await asyncio.start_server(_streams_handler(stats, workload.size), sock=sock)
    else:
        factory = HttpServer if workload.load == "http" else EchoServer
        server = await loop.create_server(lambda: factory(stats), sock=sock, ssl=context)
    try:
        yield {}
    finally:
        if server is not None:
            server.close()
            await server.wait_closed()
        else:
            transport.close()
            await asyncio.sleep(0)


def run(loop: asyncio.AbstractEventLoop, workload: Workload, settings: Settings) -> Outcome:
    """Serve ``workload`` on ``loop`` under load from other processes.

    :raises hookloop_bench.workloads.NotRunnable: the workload's framework
        cannot be imported (before anything is started).
    """
    framework = None
    if workload.framework:
        from . import frameworks
        framework = frameworks.server(workload)
    stats = ServerStats(loop)
    loop.set_exception_handler(stats.exception_handler)
    udp = workload.load == "udp"
    #: Connections the clients keep open at once (handshake slots at most).
    expected = settings.clients * workload.connections(settings)
    backlog = max(128, 2 * expected)
    sock = _listening_socket(socket.SOCK_DGRAM if udp else socket.SOCK_STREAM, backlog)
    port = sock.getsockname()[1]
    context, ca_pem = tls_contexts() if workload.needs == "tls" else (None, None)
    wrk = shutil.which("wrk") if workload.load == "http" and settings.wrk else None
    stats.resets_expected = wrk is not None

    async def serve() -> tuple[list[dict[str, Any]], str, dict[str, Any]]:
        serving = (framework(stats, sock, backlog) if framework is not None
                   else _protocol_server(workload, stats, sock, context))
        async with serving as server_detail:
            try:
                load: Any = (WrkLoad(wrk, port, settings, split) if wrk
                             else ClientProcesses(workload, port, settings, ca_pem, split))
                limit = settings.warmup + settings.seconds + GRACE
                try:
                    results = await asyncio.wait_for(_in_thread(loop, load), limit)
                except TimeoutError:
                    raise WorkloadError(f"the load side did not finish in {limit:.0f} s"
                                        + (f" ({stats.errors[0]})" if stats.errors else "")
                                        ) from None
                except WorkloadError as exc:  # the server's side of the story first
                    if stats.errors:
                        raise WorkloadError(f"{stats.errors[0]}; then {exc}") from None
                    raise
                finally:
                    load.kill()
                await stats.all_closed(CLOSE_TIMEOUT)
            finally:
                await stats.abort_all()  # only after a failure is anything left
        return results, load.name, server_detail

    split = CpuSplit(settings.pin)
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        with split:
            results, generator, server_detail = loop.run_until_complete(serve())
    finally:
        sock.close()
    busy = (time.process_time() - cpu) / (time.perf_counter() - wall)
    _check(workload, stats, results, expected if not wrk else None)
    rate = sum(r["counted"] / r["elapsed"] for r in results if r["elapsed"] > 0)
    if rate <= 0:
        raise WorkloadError("no exchange completed in the counted window")
    return Outcome(rate, {**server_detail, "load": generator, "clients": len(results),
                          "pinned": bool(split.cpus),
                          "connections": expected,
                          "exchanges": sum(r["total"] for r in results),
                          # The longest counted window: ``seconds``, or more
                          # where a starved client extended an empty one.
                          "window": round(max(r["elapsed"] for r in results), 3),
                          "lost_datagrams": sum(r.get("lost", 0) for r in results),
                          # CPU the server process used per second of the whole
                          # run (set-up included): near 1, the loop was the limit;
                          # the load processes' CPU per second of their window (in
                          # CPUs): near --clients, the load side was.
                          "server_cpu": round(busy, 2),
                          "load_cpu": round(sum(r.get("cpu", 0.0) for r in results), 2)})


def _check(workload: Workload, stats: ServerStats, results: list[dict[str, Any]],
           expected: int | None) -> None:
    """The server's counters against the clients' checked totals."""
    if stats.errors:
        raise WorkloadError("; ".join(stats.errors[:3]))
    total = sum(r["total"] for r in results)
    if workload.load == "udp":
        sent = total + sum(r["lost"] for r in results)
        if not total <= stats.datagrams <= sent:
            raise WorkloadError(f"the server echoed {stats.datagrams} datagrams, the clients "
                                f"got {total} back after sending {sent}")
        return
    if workload.load == "handshake":  # one connection per checked exchange
        if stats.made != total:
            raise WorkloadError(f"the server made {stats.made} TLS connections, "
                                f"the clients completed {total} handshakes")
    elif expected is not None and stats.made != expected:
        raise WorkloadError(f"the server accepted {stats.made} connections of {expected}")
    if workload.load == "http":
        if stats.bad:
            raise WorkloadError(f"{stats.bad} malformed requests")
        if stats.requests < total or (expected is not None and stats.requests != total):
            raise WorkloadError(f"the server answered {stats.requests} requests, "
                                f"the clients checked {total}")
        return
    nbytes = sum(r["bytes"] for r in results)
    if stats.echoed != nbytes:
        raise WorkloadError(f"the server echoed {stats.echoed} bytes, "
                            f"the clients checked {nbytes}")

