"""``hookloop demo``: scheduling and network workloads on each backend vs
asyncio's loop.

Workloads: ``call_soon``, ``task_steps``, ``timers``, ``loop_creation``;
``tcp_echo_1k`` and ``tcp_echo_64k`` (50 client Protocols doing round trips
with an echo server Protocol), ``streams_echo`` (the same with asyncio
streams on both sides, 1 KiB), ``http`` (50 keep-alive clients, one request
at a time each, against a minimal HTTP/1.1 responder Protocol).  Server and
clients of a network workload share one loop, on 127.0.0.1.

Each (subject, workload) measurement runs in a fresh interpreter
(``python -m hookloop.builtins.demo SUBJECT WORKLOAD SCALE``) so that one
subject's garbage, caches and imports cannot help or hurt another; rounds
are interleaved across subjects and the median is reported with its ratio
to asyncio's own loop.  Every workload checks its own result, so a broken
loop cannot produce a figure.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

CHAINS = 100


def _make_loop(subject: str) -> asyncio.AbstractEventLoop:
    if subject == "asyncio":
        return asyncio.new_event_loop()
    import hookloop
    return hookloop.new_event_loop(subject)


def call_soon(loop: asyncio.AbstractEventLoop, n: int) -> float:
    """``n`` callbacks, each scheduling the next, in 100 interleaved chains."""
    per_chain = n // CHAINS
    done = loop.create_future()
    left = [CHAINS]
    ran = [0]

    def step(i: int) -> None:
        ran[0] += 1
        if i:
            loop.call_soon(step, i - 1)
        else:
            left[0] -= 1
            if not left[0]:
                done.set_result(None)

    t0 = time.perf_counter()
    for _ in range(CHAINS):
        loop.call_soon(step, per_chain)
    loop.run_until_complete(done)
    elapsed = time.perf_counter() - t0
    assert ran[0] == CHAINS * (per_chain + 1), ran
    return ran[0] / elapsed


def task_steps(loop: asyncio.AbstractEventLoop, n: int) -> float:
    """100 tasks doing ``await asyncio.sleep(0)``, ``n`` steps in all."""
    per_task = n // CHAINS
    count = [0]

    async def worker() -> None:
        for _ in range(per_task):
            await asyncio.sleep(0)
            count[0] += 1

    async def main() -> None:
        await asyncio.gather(*(worker() for _ in range(CHAINS)))

    t0 = time.perf_counter()
    loop.run_until_complete(main())
    elapsed = time.perf_counter() - t0
    assert count[0] == per_task * CHAINS
    return count[0] / elapsed


def timers(loop: asyncio.AbstractEventLoop, n: int) -> float:
    """Per step: a timeout armed and cancelled, then ``call_later(0, next)``."""
    per_chain = n // CHAINS
    done = loop.create_future()
    left = [CHAINS]
    fired = [0]

    def never() -> None:
        raise AssertionError("a cancelled timer ran")

    def step(i: int) -> None:
        fired[0] += 1
        loop.call_later(30.0, never).cancel()
        if i:
            loop.call_later(0, step, i - 1)
        else:
            left[0] -= 1
            if not left[0]:
                done.set_result(None)

    t0 = time.perf_counter()
    for _ in range(CHAINS):
        loop.call_later(0, step, per_chain)
    loop.run_until_complete(done)
    elapsed = time.perf_counter() - t0
    assert fired[0] == CHAINS * (per_chain + 1)
    return 2 * fired[0] / elapsed  # two timers per step


def loop_creation(subject: str, n: int) -> float:
    """Loops created and closed per second, after the first."""
    _make_loop(subject).close()
    t0 = time.perf_counter()
    for _ in range(n):
        _make_loop(subject).close()
    return n / (time.perf_counter() - t0)


# -- network workloads ---------------------------------------------------
#
# Server and clients share the loop, as the workloads above do: one process
# measures the whole path (write, poll, dispatch, read, protocol) at both
# ends.  Only the round trips are timed, not connecting or closing.  Every
# client checks each answer; the server side counts what it served; and a
# workload returns only once both sides saw every connection lost and the
# server closed (on a failure, everything is aborted instead).

HOST = "127.0.0.1"
CONNECTIONS = 50


# The sockets are made here and handed over with ``sock=``: connecting is not
# what is measured, and then it needs no resolver (the loop's or asyncio's).
def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((HOST, 0))
        sock.listen(2 * CONNECTIONS)  # the clients connect before any accept()
    except BaseException:
        sock.close()
        raise
    return sock


def _client_sockets(server: Any) -> list[socket.socket]:
    address = server.sockets[0].getsockname()
    socks: list[socket.socket] = []
    try:
        for _ in range(CONNECTIONS):
            socks.append(socket.create_connection(address))
            socks[-1].setblocking(False)
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    return socks


def _messages(size: int) -> list[bytes]:
    """Four distinct payloads of ``size`` bytes (a stale or shifted echo differs)."""
    pattern = bytes(range(256)) * (size // 256 + 2)
    return [pattern[k:k + size] for k in (0, 1, 7, 101)]


class _ServerStats:
    """What the server side of a workload saw."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.protocols: list[_ServerSide] = []
        self.lost = 0
        self.all_lost = loop.create_future()
        self.errors: list[BaseException] = []
        self.echoed = 0  # bytes written back by the echo server
        self.requests = 0  # requests answered 200 by the HTTP server
        self.bad = 0  # requests answered 400


class _ServerSide(asyncio.Protocol):
    def __init__(self, stats: _ServerStats) -> None:
        self.stats = stats
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.stats.protocols.append(self)

    def connection_lost(self, exc: Exception | None) -> None:
        stats = self.stats
        stats.lost += 1
        if exc is not None:
            stats.errors.append(exc)
        if stats.lost == CONNECTIONS:
            stats.all_lost.set_result(None)


class _ClientSide(asyncio.Protocol):
    """``rounds`` request/response exchanges, one at a time; ``done`` gets
    the result or the first thing that went wrong."""

    def __init__(self, loop: asyncio.AbstractEventLoop, rounds: int) -> None:
        self.rounds = rounds
        self.sent = 0
        self.done = loop.create_future()
        self.closed = loop.create_future()
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def start(self) -> None:
        self.send()

    def send(self) -> None:
        raise NotImplementedError

    def answered(self) -> None:
        """The answer to the last request came back and was right."""
        if self.sent < self.rounds:
            self.send()
        else:
            self.done.set_result(None)

    def fail(self, message: str) -> None:
        self.done.set_exception(AssertionError(message))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.fail(f"connection lost early: {exc!r}")
        self.closed.set_result(None)


async def _round_trips(loop: asyncio.AbstractEventLoop, stats: _ServerStats,
                       server_protocol: Callable[[_ServerStats], _ServerSide],
                       clients: list[_ClientSide]) -> float:
    """Serve ``clients`` (one connection each) until all are done; the
    seconds their exchanges took."""
    server = await loop.create_server(lambda: server_protocol(stats), sock=_listening_socket())
    try:
        socks = _client_sockets(server)
        for i, (client, sock) in enumerate(zip(clients, socks, strict=True)):
            try:
                await loop.create_connection(lambda c=client: c, sock=sock)  # type: ignore[misc]
            except BaseException:
                for unused in socks[i:]:
                    unused.close()
                raise
        t0 = time.perf_counter()
        for client in clients:
            client.start()
        await asyncio.gather(*(c.done for c in clients))
        elapsed = time.perf_counter() - t0
        for client in clients:
            client.transport.close()
        await asyncio.gather(*(c.closed for c in clients))
        server.close()
        await asyncio.wait_for(stats.all_lost, 10)
        await server.wait_closed()
        return elapsed
    finally:
        if not stats.all_lost.done():  # failed: drop every connection
            for protocol in [*clients, *stats.protocols]:
                if protocol.transport is not None:
                    protocol.transport.abort()
            server.close()
            await asyncio.sleep(0)  # connection_lost runs, the sockets close
            await asyncio.sleep(0)


class _EchoServer(_ServerSide):
    """Writes back every byte it receives."""

    def data_received(self, data: bytes) -> None:
        self.stats.echoed += len(data)
        self.transport.write(data)


class _EchoClient(_ClientSide):
    """Sends a message, waits for all of it to come back, compares, repeats."""

    def __init__(self, loop: asyncio.AbstractEventLoop, rounds: int,
                 messages: list[bytes]) -> None:
        super().__init__(loop, rounds)
        self.messages = messages
        self.size = len(messages[0])
        self.received = bytearray()

    def send(self) -> None:
        self.transport.write(self.messages[self.sent & 3])
        self.sent += 1

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return
        received = self.received
        received += data
        if len(received) < self.size:
            return
        if received != self.messages[(self.sent - 1) & 3]:
            self.fail(f"echo {self.sent} differs: {len(received)} bytes for {self.size}")
            return
        received.clear()
        self.answered()


def tcp_echo(loop: asyncio.AbstractEventLoop, n: int, size: int) -> float:
    """50 client Protocols, each doing ``n / 50`` round trips of ``size``
    bytes with an echo server Protocol; round trips per second."""
    rounds = max(1, n // CONNECTIONS)
    messages = _messages(size)
    stats = _ServerStats(loop)
    clients: list[_ClientSide] = [
        _EchoClient(loop, rounds, messages) for _ in range(CONNECTIONS)]
    elapsed = loop.run_until_complete(_round_trips(loop, stats, _EchoServer, clients))
    total = rounds * CONNECTIONS
    assert len(stats.protocols) == stats.lost == CONNECTIONS and not stats.errors, vars(stats)
    assert stats.echoed == total * size, (stats.echoed, total * size)
    return total / elapsed


def tcp_echo_1k(loop: asyncio.AbstractEventLoop, n: int) -> float:
    return tcp_echo(loop, n, 1024)


def tcp_echo_64k(loop: asyncio.AbstractEventLoop, n: int) -> float:
    return tcp_echo(loop, n, 64 * 1024)


def streams_echo(loop: asyncio.AbstractEventLoop, n: int, size: int = 1024) -> float:
    """``asyncio.start_server``/``open_connection``: 50 client tasks, each
    writing ``size`` bytes and reading them back (``readexactly``) ``n / 50``
    times; the handler echoes with ``readexactly``/``write``/``drain``."""
    rounds = max(1, n // CONNECTIONS)
    messages = _messages(size)
    echoed = [0]
    handlers: list[asyncio.Task[Any]] = []
    server_writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        server_writers.append(writer)
        try:
            while True:
                try:
                    data = await reader.readexactly(size)
                except asyncio.IncompleteReadError as exc:
                    if exc.partial:
                        raise AssertionError(f"{len(exc.partial)} stray bytes") from None
                    return
                echoed[0] += len(data)
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
            await writer.wait_closed()

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     start: asyncio.Future[None]) -> int:
        await start
        for i in range(rounds):
            message = messages[i & 3]
            writer.write(message)
            await writer.drain()
            if await reader.readexactly(size) != message:
                raise AssertionError(f"echo {i} differs")
        return rounds

    async def main() -> tuple[float, int]:
        server = await asyncio.start_server(handle, sock=_listening_socket())
        pairs: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        try:
            socks = _client_sockets(server)
            for i, sock in enumerate(socks):
                try:
                    pairs.append(await asyncio.open_connection(sock=sock))
                except BaseException:
                    for unused in socks[i:]:
                        unused.close()
                    raise
            start = loop.create_future()
            tasks = [asyncio.ensure_future(client(r, w, start)) for r, w in pairs]
            try:
                await asyncio.sleep(0)  # every client task waits on start
                t0 = time.perf_counter()
                start.set_result(None)
                done = sum(await asyncio.gather(*tasks))
                elapsed = time.perf_counter() - t0
            finally:
                for task in tasks:
                    task.cancel()  # after a failure; no-op otherwise
            for _, writer in pairs:
                writer.close()
            for _, writer in pairs:
                await writer.wait_closed()
            await asyncio.wait_for(asyncio.gather(*handlers), 10)
            server.close()
            await server.wait_closed()
            return elapsed, done
        except BaseException:
            for writer in [*(w for _, w in pairs), *server_writers]:
                writer.transport.abort()
            for handler in handlers:
                handler.cancel()
            server.close()
            if handlers:
                await asyncio.wait(handlers, timeout=1)
            raise

    elapsed, done = loop.run_until_complete(main())
    assert len(handlers) == CONNECTIONS, len(handlers)
    assert done == rounds * CONNECTIONS
    assert echoed[0] == done * size, (echoed[0], done * size)
    return done / elapsed


class _HttpServer(_ServerSide):
    """A minimal HTTP/1.1 keep-alive responder: parses each request's line
    and headers, answers ``GET <target>`` with 200 and a body naming the
    target, anything else with 400, closing."""

    def __init__(self, stats: _ServerStats) -> None:
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
        self.stats.requests += 1
        body = f"hello from {target}\n".encode()
        self.transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        if headers.get("connection", "").lower() == "close":
            self.transport.close()


class _HttpClient(_ClientSide):
    """One request at a time on a keep-alive connection; checks each response."""

    def __init__(self, loop: asyncio.AbstractEventLoop, rounds: int, number: int) -> None:
        super().__init__(loop, rounds)
        self.number = number
        self.buffer = b""

    def target(self) -> bytes:
        return b"/c%d/r%d" % (self.number, self.sent)

    def send(self) -> None:
        self.sent += 1
        self.transport.write(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             b"User-Agent: hookloop-demo\r\n\r\n" % self.target())

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        status, *lines = self.buffer[:end].split(b"\r\n")
        length = -1
        for line in lines:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        if length < 0:
            self.fail(f"no Content-Length in {self.buffer[:end]!r}")
            return
        if len(self.buffer) < end + 4 + length:
            return
        body = self.buffer[end + 4:end + 4 + length]
        self.buffer = self.buffer[end + 4 + length:]
        if status != b"HTTP/1.1 200 OK" or body != b"hello from %s\n" % self.target():
            self.fail(f"bad response {status!r} {body!r} to {self.target()!r}")
        elif self.buffer:
            self.fail(f"{len(self.buffer)} bytes nobody asked for")
        else:
            self.answered()


def http(loop: asyncio.AbstractEventLoop, n: int) -> float:
    """50 keep-alive client Protocols against :class:`_HttpServer`, one
    request in flight per connection, ``n`` requests in all; requests/s."""
    rounds = max(1, n // CONNECTIONS)
    stats = _ServerStats(loop)
    clients: list[_ClientSide] = [_HttpClient(loop, rounds, i) for i in range(CONNECTIONS)]
    elapsed = loop.run_until_complete(_round_trips(loop, stats, _HttpServer, clients))
    total = rounds * CONNECTIONS
    assert len(stats.protocols) == stats.lost == CONNECTIONS and not stats.errors, vars(stats)
    assert stats.requests == total and not stats.bad, vars(stats)
    return total / elapsed


WORKLOADS: dict[str, tuple[int, str]] = {
    "call_soon": (300_000, "callbacks/s"),
    "task_steps": (200_000, "steps/s"),
    "timers": (200_000, "timers/s"),
    "loop_creation": (2_000, "loops/s"),
    "tcp_echo_1k": (40_000, "round trips/s"),
    "tcp_echo_64k": (8_000, "round trips/s"),
    "streams_echo": (30_000, "round trips/s"),
    "http": (30_000, "requests/s"),
}
_LOOP_WORKLOADS: dict[str, Callable[[asyncio.AbstractEventLoop, int], float]] = {
    "call_soon": call_soon, "task_steps": task_steps, "timers": timers,
    "tcp_echo_1k": tcp_echo_1k, "tcp_echo_64k": tcp_echo_64k,
    "streams_echo": streams_echo, "http": http,
}


def measure(subject: str, workload: str, scale: float) -> float:
    n = max(CHAINS, int(WORKLOADS[workload][0] * scale))
    if workload == "loop_creation":
        return loop_creation(subject, n)
    loop = _make_loop(subject)
    try:
        _LOOP_WORKLOADS[workload](loop, n // 10)  # warm-up, discarded
        return _LOOP_WORKLOADS[workload](loop, n)
    finally:
        loop.close()


def _run_one(subject: str, workload: str, scale: float) -> float:
    out = subprocess.run(
        [sys.executable, "-m", "hookloop.builtins.demo", subject, workload, str(scale)],
        capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"hookloop demo: {workload} failed on {subject}:\n{out.stderr}")
    return float(out.stdout.strip().splitlines()[-1])


def selected_workloads(spec: str | None) -> list[str]:
    """The workloads named in ``spec`` (comma-separated), in table order;
    all of them for ``None``.  An unknown name raises ``SystemExit``."""
    if spec is None:
        return list(WORKLOADS)
    names = {name.strip() for name in spec.split(",") if name.strip()}
    unknown = sorted(names - WORKLOADS.keys())
    if unknown or not names:
        raise SystemExit(f"hookloop demo: unknown workload(s) {', '.join(unknown) or spec!r}; "
                         f"choose from {', '.join(WORKLOADS)}")
    return [name for name in WORKLOADS if name in names]


def main(args: argparse.Namespace) -> int:
    import hookloop
    workloads = selected_workloads(getattr(args, "workloads", None))
    subjects = ["asyncio", *hookloop.available_backends()]
    results: dict[str, dict[str, list[float]]] = {w: {s: [] for s in subjects} for w in workloads}
    total = args.rounds * len(workloads) * len(subjects)
    progress = sys.stderr.isatty()
    done = 0
    for _ in range(args.rounds):
        for workload in workloads:
            for subject in subjects:
                results[workload][subject].append(_run_one(subject, workload, args.scale))
                done += 1
                if progress:
                    print(f"\r{done}/{total} runs", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    rows: list[dict[str, Any]] = []
    print(f"{'workload':<14} {'subject':<10} {'median':>14} {'unit':<14} {'vs asyncio':>10}")
    for workload in workloads:
        unit = WORKLOADS[workload][1]
        base = statistics.median(results[workload]["asyncio"])
        for subject in subjects:
            runs = results[workload][subject]
            med = statistics.median(runs)
            rows.append({"workload": workload, "subject": subject, "median": med,
                         "min": min(runs), "max": max(runs), "unit": unit,
                         "ratio": med / base})
            print(f"{workload:<14} {subject:<10} {med:>14,.0f} {unit:<14} {med / base:>9.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python": sys.version, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    print(measure(sys.argv[1], sys.argv[2], float(sys.argv[3])))
