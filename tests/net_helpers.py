"""Helpers shared by the networking tests (not tests themselves).

Protocols here record what the transport tells them; every waiter is a
future, so tests never sleep to synchronise.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import os
import socket
import zlib

import hookloop

#: Upper bound on one test's networking coroutine: a hang fails, not blocks.
TIMEOUT = 20


def run(loop, coro, timeout=TIMEOUT):
    """Run ``coro`` on ``loop``; ``TimeoutError`` if it takes over ``timeout``."""
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


def run_without_fd_leak(loop, coro, timeout=TIMEOUT):
    """Run ``coro`` like ``run`` and fail if it leaves fds open (or closes
    some it did not open).  The loop polls once first, so that what it makes
    lazily on its first iteration is not counted."""
    run(loop, asyncio.sleep(0))
    with no_fd_leak():
        return run(loop, coro, timeout)


async def iterations(n=5):
    """Let the loop go round ``n`` times (``sleep(0)`` each): done-callbacks
    and cancellations run, and "nothing happened" can be checked without a
    timed sleep."""
    for _ in range(n):
        await asyncio.sleep(0)


async def read_all(loop, sock, n=None):
    """Read from the non-blocking ``sock`` until EOF (or exactly ``n`` bytes:
    never past them, so what the peer sends next is left for the next read)."""
    data = bytearray()
    while n is None or len(data) < n:
        chunk = await loop.sock_recv(sock, 1 << 16 if n is None else min(1 << 16, n - len(data)))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def fd_count():
    """How many file descriptors this process has open."""
    return len(os.listdir("/proc/self/fd"))


def has_ipv6():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def crc(data):
    return zlib.crc32(data) & 0xFFFFFFFF


class Recorder(asyncio.Protocol):
    """A stream protocol that keeps everything it is told.

    ``connected``, ``eof`` and ``lost`` are futures; ``lost`` gets the
    exception given to ``connection_lost`` (``None`` for a clean close).
    ``keep_open`` is what ``eof_received`` returns.
    """

    keep_open = False

    def __init__(self):
        loop = asyncio.get_running_loop()
        self.loop = loop
        self.transport = None
        self.data = bytearray()
        self.events = []
        self.connected = loop.create_future()
        self.eof = loop.create_future()
        self.lost = loop.create_future()
        self.lost_calls = 0
        self.paused = 0
        self.resumed = 0
        self.pause_event = asyncio.Event()
        self.resume_event = asyncio.Event()
        self._wanted = []

    def connection_made(self, transport):
        self.events.append("made")
        self.transport = transport
        self.connected.set_result(transport)

    def data_received(self, data):
        assert isinstance(data, bytes), type(data)
        if "data" not in self.events[-1:]:
            self.events.append("data")
        self.data += data
        self._wake()

    def eof_received(self):
        self.events.append("eof")
        self.eof.set_result(None)
        self._wake()
        return self.keep_open

    def connection_lost(self, exc):
        self.events.append("lost")
        self.lost_calls += 1
        if not self.lost.done():
            self.lost.set_result(exc)
        self._wake()

    def pause_writing(self):
        self.events.append("pause")
        self.paused += 1
        self.resume_event.clear()
        self.pause_event.set()

    def resume_writing(self):
        self.events.append("resume")
        self.resumed += 1
        self.pause_event.clear()
        self.resume_event.set()

    def _wake(self):
        for n, fut in list(self._wanted):
            if fut.done():
                self._wanted.remove((n, fut))
            elif len(self.data) >= n or self.lost.done() or self.eof.done():
                self._wanted.remove((n, fut))
                fut.set_result(None)

    async def received(self, n):
        """Wait until ``n`` bytes arrived (or EOF / connection lost)."""
        if len(self.data) < n and not self.lost.done() and not self.eof.done():
            fut = self.loop.create_future()
            self._wanted.append((n, fut))
            await fut
        return bytes(self.data)


class KeepOpen(Recorder):
    keep_open = True


class Echo(Recorder):
    """Echoes what it gets; closes when the peer sends EOF."""

    def data_received(self, data):
        super().data_received(data)
        self.transport.write(data)


class KeepOpenEcho(Echo):
    keep_open = True


class DatagramRecorder(asyncio.DatagramProtocol):
    def __init__(self):
        loop = asyncio.get_running_loop()
        self.loop = loop
        self.transport = None
        self.datagrams = []
        self.errors = []
        self.connected = loop.create_future()
        self.lost = loop.create_future()
        self.lost_calls = 0
        self.paused = 0
        self.resumed = 0
        self.resume_event = asyncio.Event()
        self._queue = asyncio.Queue()
        self._error_queue = asyncio.Queue()

    def connection_made(self, transport):
        self.transport = transport
        self.connected.set_result(transport)

    def datagram_received(self, data, addr):
        self.datagrams.append((data, addr))
        self._queue.put_nowait((data, addr))

    def error_received(self, exc):
        self.errors.append(exc)
        self._error_queue.put_nowait(exc)

    def connection_lost(self, exc):
        self.lost_calls += 1
        if not self.lost.done():
            self.lost.set_result(exc)

    def pause_writing(self):
        self.paused += 1
        self.resume_event.clear()

    def resume_writing(self):
        self.resumed += 1
        self.resume_event.set()

    async def next_datagram(self):
        return await self._queue.get()

    async def next_error(self):
        return await self._error_queue.get()


class DatagramEcho(DatagramRecorder):
    def datagram_received(self, data, addr):
        super().datagram_received(data, addr)
        self.transport.sendto(data, addr)


async def start_server(loop, factory=Echo, host="127.0.0.1", **kwargs):
    """A TCP server on ``host``, port 0; returns ``(server, address, protocols)``."""
    protocols = []

    def make():
        p = factory()
        protocols.append(p)
        return p

    server = await loop.create_server(make, host, 0, **kwargs)
    return server, server.sockets[0].getsockname()[:2], protocols


async def close_server(server):
    server.close()
    await server.wait_closed()


async def close_and_wait(*endpoints):
    """Close each ``(transport, protocol)`` pair, then wait for each
    protocol's ``connection_lost``; returns the exceptions it was given."""
    for transport, _ in endpoints:
        transport.close()
    return [await protocol.lost for _, protocol in endpoints]


async def connect(loop, address, factory=Recorder, **kwargs):
    return await loop.create_connection(factory, *address, **kwargs)


async def barrier(loop):
    """Return after the loop has polled at least once more.

    A byte written now to a socket pair the loop watches becomes readable at
    the next poll, together with anything that was already readable, so
    every callback due from earlier readiness has run once this returns.
    """
    r, w = socket.socketpair()
    r.setblocking(False)
    fut = loop.create_future()

    def ready():
        r.recv(1)
        loop.remove_reader(r)
        if not fut.done():
            fut.set_result(None)

    try:
        loop.add_reader(r, ready)
        w.send(b"x")
        await fut
        # The callback ran in the iteration that saw r readable; callbacks
        # scheduled by that iteration's other events run before this task
        # resumes (call_soon order), one more step makes sure.
        await asyncio.sleep(0)
    finally:
        loop.remove_reader(r)
        r.close()
        w.close()


def error_event(loop, recorder):
    """Make ``loop``'s exception handler record into ``recorder`` (the
    ``hookloop_errors`` fixture) and set the returned event on each report."""
    event = asyncio.Event()

    def handler(loop, context):
        recorder(loop, context)
        event.set()

    loop.set_exception_handler(handler)
    return event


@contextlib.contextmanager
def refused_address():
    """The address of a bound, non-listening TCP socket: connecting to it is
    refused.  The socket closes when the block ends."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()


@contextlib.contextmanager
def hanging_address():
    """The address of a listener whose accept queue is full: a further
    connect gets no answer.  Its sockets close when the block ends."""
    with contextlib.ExitStack() as stack:
        listener = stack.enter_context(socket.socket())
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        for _ in range(3):
            filler = stack.enter_context(socket.socket())
            filler.setblocking(False)
            filler.connect_ex(listener.getsockname())
        yield listener.getsockname()


class RawPeers:
    """Transports connected to plain non-blocking sockets (the peers) through
    one listener; ``close()`` closes the listener and every peer."""

    def __init__(self, loop):
        self.loop = loop
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.peers = []

    async def __call__(self, factory=Recorder, **kwargs):
        """Returns ``(transport, protocol, peer)``."""
        tr, pr = await connect(self.loop, self.listener.getsockname(), factory, **kwargs)
        peer, _ = self.listener.accept()
        peer.setblocking(False)
        self.peers.append(peer)
        return tr, pr, peer

    def close(self):
        self.listener.close()
        for peer in self.peers:
            peer.close()


class RecordingExecutor(concurrent.futures.ThreadPoolExecutor):
    """A real default executor that remembers the name of each function it
    was given, in ``calls``."""

    def __init__(self):
        super().__init__(max_workers=2)
        self.calls = []

    def submit(self, fn, /, *args, **kwargs):
        self.calls.append(getattr(fn, "__name__", repr(fn)))
        return super().submit(fn, *args, **kwargs)


@contextlib.contextmanager
def no_fd_leak():
    """Fail if the block ends with more (or fewer) fds open than it began with."""
    gc.collect()  # sockets an earlier test dropped must not close mid-count
    before = fd_count()
    yield
    gc.collect()
    after = fd_count()
    assert after == before, f"{after - before:+d} file descriptors ({before} -> {after})"


class StaticResolver:
    """A resolver plugin (``hookloop_resolver``) answering fixed addrinfos for
    some names and the system resolver for everything else."""

    def __init__(self, table):
        self.table = table
        self.asked = []

    @hookloop.hookimpl
    def hookloop_resolver(self):
        return lambda loop: self

    async def getaddrinfo(self, host, port, *, family=0, type=0, proto=0, flags=0):
        self.asked.append(host)
        if host in self.table:
            return list(self.table[host])
        return socket.getaddrinfo(host, port, family, type, proto, flags)

    async def getnameinfo(self, sockaddr, flags=0):
        return socket.getnameinfo(sockaddr, flags)


def resolver_loop(backend, resolver):
    """A hookloop loop on ``backend`` whose name resolution is ``resolver``."""
    return hookloop.new_event_loop(backend, plugins=[resolver])


def tcp_info(address):
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    return (family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", tuple(address))
