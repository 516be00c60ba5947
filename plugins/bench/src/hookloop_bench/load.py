"""The load side of the network workloads: a client process, never a loop.

The bench measures the *server's* loop.  Whatever makes the load must
therefore not run on that loop, nor on any asyncio loop: this module is a
standalone script (standard library only, no asyncio, no hookloop, no
``selectors``), started by :mod:`hookloop_bench.network` as several
processes with ``python -I -S load.py CONFIG``, each driving many
connections with non-blocking sockets on one ``select.epoll`` (or
``select.poll``) object.  It is written to be cheap per exchange (one
readiness event, one ``recv_into``, one comparison, one ``send``) so that
the load generator is not what limits the figure.

What it must never do: count an exchange it did not check.  Every echo is
compared byte for byte with what was sent, every HTTP response's status and
body with the request it answers, every datagram with its sequence number's
payload; the first mismatch ends the process with an error the server side
turns into a failed measurement.

The conversation with the server process, on stdin/stdout, one line each:
the client connects everything and prints ``ready``; it waits for ``go``;
it runs ``warmup`` seconds uncounted, then ``seconds`` counted, then lets
each connection finish the exchange in flight (so the server's counters
match ours exactly), closes, and prints one JSON object (``counted``,
``elapsed``, ``total``, ``bytes``, ``lost``, ``error``).  The counted
window ends at the first check after ``seconds`` at which it holds at least
one completed exchange: on a starved machine a short window may hold none,
so it is extended (``elapsed`` is always the window's real length, the rate
``counted / elapsed`` stays true), and a window still empty
:data:`WINDOW_TIMEOUT` seconds late is an error.

The ``handshake`` kind connects nothing in advance: each of its slots
cycles through a new TCP connection, a full TLS handshake, one checked
echo and a clean TLS close (close_notify both ways), all non-blocking on
the same poller; one cycle is one exchange, so the server's count of
connections made must equal ``total``.
"""
from __future__ import annotations

import errno
import json
import os
import select
import socket
import ssl
import sys
import time
from collections.abc import Sequence
from typing import Any

_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
#: A datagram not answered for this long is sent again (and counted as lost).
UDP_RESEND_AFTER = 0.2
#: Seconds a connection may take to finish its last exchange after the window.
DRAIN_TIMEOUT = 20.0
#: A counted window that ends with no exchange completed in it (a starved
#: machine, a very short ``seconds``) goes on until the first one completes,
#: for at most this many seconds more; ``elapsed`` is the real window.
WINDOW_TIMEOUT = 20.0


class LoadError(Exception):
    """A wrong answer, or the server went away: the measurement is void."""


def messages(size: int) -> list[bytes]:
    """Four distinct payloads of ``size`` bytes (a stale or shifted echo differs)."""
    pattern = bytes(range(256)) * (size // 256 + 2)
    return [pattern[k:k + size] for k in (0, 1, 7, 101)]


def http_body(target: bytes) -> bytes:
    """The body the bench's HTTP server answers ``GET target`` with."""
    return b"hello from " + target + b"\n"


class _Poller:
    """epoll where there is one, else poll(); level-triggered either way."""

    def __init__(self) -> None:
        if hasattr(select, "epoll"):
            self._poller: Any = select.epoll()
            self.IN, self.OUT = select.EPOLLIN, select.EPOLLOUT
            self._ms = False
        else:  # pragma: no cover - not Linux
            self._poller = select.poll()
            self.IN, self.OUT = select.POLLIN, select.POLLOUT
            self._ms = True
        self.register = self._poller.register
        self.modify = self._poller.modify
        self.unregister = self._poller.unregister
        self.close = getattr(self._poller, "close", lambda: None)  # poll() has none

    def poll(self, timeout: float) -> list[tuple[int, int]]:
        return self._poller.poll(timeout * 1000 if self._ms else timeout)  # type: ignore[no-any-return]


class Load:
    """One client process: its connections, its clock and its counters."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.poller = _Poller()
        #: The connection each registered fd belongs to (handshake slots
        #: change sockets, so they keep it up to date).
        self.by_fd: dict[int, _Connection | HandshakeSlot] = {}
        self.sending = True  # False once the counted window is over
        self.measuring = False
        self.counted = 0
        self.total = 0
        self.bytes = 0
        self.lost = 0
        self.in_flight = 0
        self.cpu = 0.0  # CPU seconds this process used in the counted window

    def exchanged(self, conn: _Connection | HandshakeSlot, nbytes: int) -> None:
        """``conn`` finished a checked exchange of ``nbytes`` payload bytes."""
        self.total += 1
        self.bytes += nbytes
        if self.measuring:
            self.counted += 1
        if self.sending:
            conn.send_next()
        else:
            self.in_flight -= 1


class _Connection:
    """A non-blocking socket with one exchange in flight at a time."""

    def __init__(self, load: Load, sock: socket.socket, index: int) -> None:
        self.load = load
        self.sock = sock
        self.fd = sock.fileno()
        self.index = index
        self.sent = 0
        self.out: memoryview | None = None
        self.want_write = False
        self.tls = isinstance(sock, ssl.SSLSocket)
        self._send = sock.send
        self._recv = sock.recv
        load.poller.register(self.fd, load.poller.IN)

    def request(self) -> bytes:
        raise NotImplementedError

    def read(self) -> None:
        raise NotImplementedError

    def send_next(self) -> None:
        data = self.request()
        self.sent += 1
        if not self.tls:  # the usual case first: the kernel takes it all at once
            try:
                n = self._send(data)
            except _WOULD_BLOCK:
                n = 0
            if n == len(data):
                return
            self.out = memoryview(data)[n:]
        else:  # TLS: a retried write must be given the same buffer
            self.out = memoryview(data)
        self.flush()

    def flush(self) -> None:
        out = self.out
        while out:
            try:
                n = self.sock.send(out)
            except _WOULD_BLOCK:
                break
            out = out[n:]
        self.out = out if out else None
        want = self.out is not None
        if want != self.want_write:
            poller = self.load.poller
            poller.modify(self.fd, poller.IN | poller.OUT if want else poller.IN)
            self.want_write = want

    def event(self, mask: int) -> None:
        if self.want_write and mask & self.load.poller.OUT:
            self.flush()
        if mask & ~self.load.poller.OUT:  # readable, or hung up / error
            self.read()


class EchoConnection(_Connection):
    """Sends one of four messages, reads exactly that many bytes back, compares."""

    def __init__(self, load: Load, sock: socket.socket, index: int,
                 payloads: list[bytes]) -> None:
        super().__init__(load, sock, index)
        self.payloads = payloads
        self.size = len(payloads[0])
        self.buffer = bytearray(self.size)
        self.view = memoryview(self.buffer)
        self.got = 0

    def request(self) -> bytes:
        return self.payloads[self.sent & 3]

    def read(self) -> None:
        if not self.got and not self.tls:  # the usual case: the whole echo at once
            try:
                data = self._recv(self.size)
            except _WOULD_BLOCK:
                return
            if len(data) == self.size:
                if data != self.payloads[(self.sent - 1) & 3]:
                    raise LoadError(f"echo {self.sent} on connection {self.index} differs "
                                    f"from the {self.size} bytes sent")
                self.load.exchanged(self, self.size)
                return
            if not data:
                raise LoadError(f"connection {self.index}: closed by the server after "
                                f"{self.sent - 1} echoes")
            self.buffer[:len(data)] = data
            self.got = len(data)
            return
        while True:
            try:
                n = self.sock.recv_into(self.view[self.got:])
            except _WOULD_BLOCK:
                return
            except ssl.SSLError as exc:
                raise LoadError(f"connection {self.index}: {exc}") from None
            if not n:
                raise LoadError(f"connection {self.index}: closed by the server after "
                                f"{self.sent - 1} echoes and {self.got} bytes")
            self.got += n
            if self.got == self.size:
                if self.buffer != self.payloads[(self.sent - 1) & 3]:
                    raise LoadError(f"echo {self.sent} on connection {self.index} differs "
                                    f"from the {self.size} bytes sent")
                self.got = 0
                self.load.exchanged(self, self.size)
            if not self.tls:
                return  # level-triggered: the poller says if there is more


class HttpConnection(_Connection):
    """Keep-alive GETs, one at a time; checks each response's status and body."""

    def __init__(self, load: Load, sock: socket.socket, index: int) -> None:
        super().__init__(load, sock, index)
        self.buffer = b""
        self.prefix = b"/c%d-%d/r" % (load.config.get("id", 0), index)
        self.expected = b""
        self.body_size = 0

    def target(self) -> bytes:
        return self.prefix + b"%d" % self.sent

    def request(self) -> bytes:
        target = self.prefix + b"%d" % (self.sent + 1)
        # What the bench's own server answers, byte for byte: compared first,
        # so the usual response costs one comparison instead of a parse.
        body = http_body(target)
        self.body_size = len(body)
        self.expected = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        return (b"GET " + target
                + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: hookloop-bench\r\n\r\n")

    def read(self) -> None:
        try:
            data = self._recv(65536)
        except _WOULD_BLOCK:
            return
        if not data:
            raise LoadError(f"connection {self.index}: closed by the server")
        if not self.buffer and data == self.expected:
            self.load.exchanged(self, self.body_size)
            return
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        status, *lines = self.buffer[:end].split(b"\r\n")
        length = -1
        for line in lines:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length < 0:
            raise LoadError(f"no Content-Length in {self.buffer[:end]!r}")
        if len(self.buffer) < end + 4 + length:
            return
        body = self.buffer[end + 4:end + 4 + length]
        rest = self.buffer[end + 4 + length:]
        if status != b"HTTP/1.1 200 OK" or body != http_body(self.target()):
            raise LoadError(f"bad response {status!r} {body!r} to GET {self.target()!r}")
        if rest:
            raise LoadError(f"{len(rest)} bytes nobody asked for after GET {self.target()!r}")
        self.buffer = b""
        self.load.exchanged(self, len(body))


class DatagramConnection(_Connection):
    """A connected UDP socket: a numbered datagram out, the same one back.

    A datagram not answered within :data:`UDP_RESEND_AFTER` is sent again
    and counted as lost; a late echo of an older number is ignored, any
    other difference is an error."""

    def __init__(self, load: Load, sock: socket.socket, index: int, size: int) -> None:
        super().__init__(load, sock, index)
        self.size = size
        self.filler = messages(size)[index & 3][8:]
        self.sent_at = 0.0
        self.waiting = False

    def request(self) -> bytes:
        self.sent_at = time.monotonic()
        self.waiting = True
        return (self.sent + 1).to_bytes(8, "big") + self.filler

    def flush(self) -> None:
        try:
            self.sock.send(self.out)  # type: ignore[arg-type]
        except _WOULD_BLOCK:
            self.sent_at = 0.0  # resend at the next check
        self.out = None

    def read(self) -> None:
        try:
            data = self.sock.recv(65536)
        except _WOULD_BLOCK:
            return
        except ConnectionRefusedError:
            raise LoadError(f"datagram socket {self.index}: the server is gone") from None
        number = int.from_bytes(data[:8], "big")
        if len(data) != self.size or data[8:] != self.filler or number > self.sent:
            raise LoadError(f"datagram {self.sent} on socket {self.index} came back wrong "
                            f"({len(data)} bytes, number {number})")
        if number == self.sent and self.waiting:
            self.waiting = False
            self.load.exchanged(self, self.size)

    def resend_if_lost(self, now: float) -> None:
        if self.waiting and now - self.sent_at > UDP_RESEND_AFTER:
            self.load.lost += 1
            self.sent -= 1
            self.send_next()


class HandshakeSlot:
    """One connection slot of the ``handshake`` load, cycling forever:
    non-blocking connect, TLS handshake (``do_handshake`` on readiness),
    one short echo checked byte for byte, a clean TLS close (our
    close_notify, then the server's), close; :meth:`Load.exchanged` then
    starts the next cycle, or ends the slot after the counted window."""

    def __init__(self, load: Load, index: int, context: ssl.SSLContext,
                 payloads: list[bytes]) -> None:
        self.load = load
        self.index = index
        self.context = context
        self.payloads = payloads
        self.size = len(payloads[0])
        self.address = (load.config["host"], load.config["port"])
        self.sock: Any = None
        self.fd = -1
        self.mask = 0
        self.step: Any = None
        self.sent = 0  # cycles started
        self.out: memoryview | None = None
        self.buffer = bytearray(self.size)
        self.view = memoryview(self.buffer)
        self.got = 0

    def _want(self, mask: int) -> None:
        if mask != self.mask:
            self.load.poller.modify(self.fd, mask)
            self.mask = mask

    def _fail(self, what: str) -> LoadError:
        return LoadError(f"handshake slot {self.index}, cycle {self.sent}: {what}")

    def send_next(self) -> None:
        """A new cycle: a new socket, connecting."""
        self.sent += 1
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock = sock
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.fd = sock.fileno()
        err = sock.connect_ex(self.address)
        poller = self.load.poller
        self.mask = poller.OUT
        poller.register(self.fd, self.mask)
        self.load.by_fd[self.fd] = self
        if err == 0:
            self._start_tls()
        elif err == errno.EINPROGRESS:
            self.step = self._connected
        else:
            raise self._fail(f"connect: {os.strerror(err)}")

    def _connected(self) -> None:
        err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise self._fail(f"connect: {os.strerror(err)}")
        self._start_tls()

    def _start_tls(self) -> None:
        # wrap_socket keeps the fd (the plain socket is detached into it).
        self.sock = self.context.wrap_socket(self.sock, server_hostname=self.address[0],
                                             do_handshake_on_connect=False)
        self.step = self._handshake
        self._handshake()

    def _handshake(self) -> None:
        try:
            self.sock.do_handshake()
        except ssl.SSLWantReadError:
            self._want(self.load.poller.IN)
            return
        except ssl.SSLWantWriteError:
            self._want(self.load.poller.OUT)
            return
        except (ssl.SSLError, OSError) as exc:
            raise self._fail(f"TLS handshake failed: {exc}") from None
        self.out = memoryview(self.payloads[self.sent & 3])
        self.got = 0
        self.step = self._send
        self._send()

    def _send(self) -> None:
        out = self.out
        while out:  # a retried TLS write is given the same buffer
            try:
                n = self.sock.send(out)
            except _WOULD_BLOCK:
                self._want(self.load.poller.OUT)
                self.out = out
                return
            out = out[n:]
        self.out = None
        self.step = self._receive
        self._want(self.load.poller.IN)
        self._receive()

    def _receive(self) -> None:
        while True:
            try:
                n = self.sock.recv_into(self.view[self.got:])
            except _WOULD_BLOCK:
                return
            except (ssl.SSLError, OSError) as exc:
                raise self._fail(f"{exc}") from None
            if not n:
                raise self._fail(f"closed by the server after {self.got} bytes of the echo")
            self.got += n
            if self.got == self.size:
                break
        if self.buffer != self.payloads[self.sent & 3]:
            raise self._fail(f"the echo differs from the {self.size} bytes sent")
        self.step = self._close
        self._close()

    def _close(self) -> None:
        try:  # our close_notify, then the server's
            self.sock.unwrap()
        except ssl.SSLWantReadError:
            self._want(self.load.poller.IN)
            return
        except ssl.SSLWantWriteError:
            self._want(self.load.poller.OUT)
            return
        except (ssl.SSLError, OSError) as exc:
            raise self._fail(f"no clean TLS close: {exc}") from None
        self.abort()
        self.load.exchanged(self, self.size)

    def abort(self) -> None:
        """Close the socket now, whatever the cycle's state."""
        if self.sock is None:
            return
        if self.load.by_fd.pop(self.fd, None) is not None:
            self.load.poller.unregister(self.fd)
        self.sock.close()
        self.sock = None

    def read(self) -> None:
        self.step()

    def event(self, mask: int) -> None:
        self.step()


def _connect(config: dict[str, Any]) -> list[socket.socket]:
    address = (config["host"], config["port"])
    tls = config.get("ca_pem")
    context = ssl.create_default_context(cadata=tls) if tls else None
    socks: list[socket.socket] = []
    try:
        for _ in range(config["connections"]):
            if config["kind"] == "udp":
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(sock)
                sock.connect(address)
            else:
                sock = socket.create_connection(address)
                socks.append(sock)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if context is not None:
                    sock = context.wrap_socket(sock, server_hostname=config["host"])
                    socks[-1] = sock
            sock.setblocking(False)
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    return socks


def run(config: dict[str, Any], ready: Any = None) -> dict[str, Any]:
    """Connect, wait for ``ready()`` to return, load, drain, close; the counts.

    :param ready: Called once everything is connected; returns when the
        counted run may start (the script reads ``go`` on stdin).
    """
    load = Load(config)
    try:
        return _run(load, config, ready)
    finally:  # its epoll fd, at once (run in-process, a test counts fds)
        load.poller.close()


def _run(load: Load, config: dict[str, Any], ready: Any) -> dict[str, Any]:
    kind = config["kind"]
    if kind == "handshake":
        return _run_handshakes(load, config, ready)
    socks = _connect(config)
    try:
        conns: list[_Connection] = []
        for i, sock in enumerate(socks):
            if kind == "http":
                conns.append(HttpConnection(load, sock, i))
            elif kind == "udp":
                conns.append(DatagramConnection(load, sock, i, config["size"]))
            else:
                conns.append(EchoConnection(load, sock, i, messages(config["size"])))
        load.by_fd.update((c.fd, c) for c in conns)
        if ready is not None:
            ready()
        elapsed = _drive(load, conns, load.by_fd, config["warmup"], config["seconds"])
    finally:
        for sock in socks:
            _close(sock)
    return _result(load, elapsed, len(socks))


def _run_handshakes(load: Load, config: dict[str, Any], ready: Any) -> dict[str, Any]:
    context = ssl.create_default_context(cadata=config["ca_pem"])
    payloads = messages(config["size"])
    slots = [HandshakeSlot(load, i, context, payloads) for i in range(config["connections"])]
    try:
        if ready is not None:
            ready()
        elapsed = _drive(load, slots, load.by_fd, config["warmup"], config["seconds"])
    finally:
        for slot in slots:  # after a failure: whatever is still open
            slot.abort()
    return _result(load, elapsed, len(slots))


def _result(load: Load, elapsed: float, connections: int) -> dict[str, Any]:
    return {"counted": load.counted, "elapsed": elapsed, "total": load.total,
            "bytes": load.bytes, "lost": load.lost, "connections": connections,
            "cpu": load.cpu / elapsed if elapsed else 0.0, "error": None}


def _drive(load: Load, conns: Sequence[_Connection | HandshakeSlot],
           by_fd: dict[int, _Connection | HandshakeSlot],
           warmup: float, seconds: float) -> float:
    udp = isinstance(conns[0], DatagramConnection) if conns else False
    start = time.monotonic()
    for conn in conns:
        conn.send_next()
    load.in_flight = len(conns)
    window_start = start + warmup
    window_end = 0.0
    measured_from = 0.0
    elapsed = 0.0
    deadline = 0.0
    checked = start
    poll = load.poller.poll
    readable = load.poller.IN
    while True:
        for fd, mask in poll(0.05 if udp or not load.measuring else 0.5):
            if mask == readable:
                by_fd[fd].read()
            else:
                by_fd[fd].event(mask)
        now = time.monotonic()
        if load.sending:
            if not load.measuring and now >= window_start:
                load.measuring = True
                load.counted = 0
                measured_from = now
                load.cpu = time.process_time()
                window_end = now + seconds  # the window is counted from where it began
            elif load.measuring and now >= window_end and not load.counted:
                # Nothing completed in the window yet (a starved machine): extend it.
                if now - window_end > WINDOW_TIMEOUT:
                    raise LoadError(f"no exchange completed in the counted window, "
                                    f"{WINDOW_TIMEOUT:.0f} s after its planned end")
            elif load.measuring and now >= window_end:
                load.measuring = False
                load.sending = False
                elapsed = now - measured_from
                load.cpu = time.process_time() - load.cpu
                deadline = now + DRAIN_TIMEOUT
        elif not load.in_flight:
            return elapsed
        elif now > deadline:
            raise LoadError(f"{load.in_flight} exchanges still unanswered "
                            f"{DRAIN_TIMEOUT:.0f} s after the run")
        if udp and now - checked > 0.05:
            checked = now
            for conn in conns:
                conn.resend_if_lost(now)  # type: ignore[union-attr]


def _close(sock: socket.socket) -> None:
    if isinstance(sock, ssl.SSLSocket):
        try:  # a close_notify, so the server sees a clean end of TLS
            sock.setblocking(True)
            sock.settimeout(10.0)  # generous: the server may be starved too
            sock.unwrap().close()
            return
        except (OSError, ValueError):
            pass
    sock.close()


def main(argv: list[str]) -> int:
    config = json.loads(argv[1])

    def ready() -> None:
        print("ready", flush=True)
        if sys.stdin.readline().strip() != "go":
            raise LoadError("the server side did not say go")

    try:
        result = run(config, ready)
    except (LoadError, OSError, ValueError) as exc:
        result = {"error": f"{type(exc).__name__}: {exc}" if not isinstance(exc, LoadError)
                  else str(exc)}
    print(json.dumps(result), flush=True)
    return 1 if result.get("error") else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
