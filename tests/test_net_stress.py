"""Stress and robustness: many connections, no lost byte, no leaked fd,
resets, EMFILE, big pipe transfers."""
from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import random
import resource
import socket
import struct

import pytest
from net_helpers import (
    KeepOpen,
    RawPeers,
    Recorder,
    barrier,
    close_server,
    crc,
    error_event,
    fd_count,
    read_all,
    refused_address,
    run,
    run_without_fd_leak,
    start_server,
)

from hookloop.testing import ExceptionRecorder, checked_loop

CONNECTIONS = 10_000
CONCURRENCY = 64


class ChecksumServer(asyncio.Protocol):
    """Reads ``payload + crc32`` until EOF, checks it, answers with its own
    random payload + crc32 and closes."""

    results = None  # list, set per test

    def connection_made(self, transport):
        self.transport = transport
        self.buf = bytearray()

    def data_received(self, data):
        self.buf += data

    def eof_received(self):
        body, (check,) = self.buf[:-4], struct.unpack("!I", self.buf[-4:])
        self.results.append(crc(body) == check)
        reply = random.randbytes(random.randrange(1, 2048))
        self.transport.write(reply + struct.pack("!I", crc(reply)))
        self.transport.close()


async def _one_connection(loop, address):
    payload = random.randbytes(random.randrange(1, 4096))
    tr, pr = await loop.create_connection(Recorder, *address)
    tr.write(payload + struct.pack("!I", crc(payload)))
    tr.write_eof()
    exc = await pr.lost
    assert exc is None
    body, (check,) = pr.data[:-4], struct.unpack("!I", pr.data[-4:])
    assert crc(body) == check
    assert pr.lost_calls == 1


def test_ten_thousand_connections_checksummed(hookloop_loop):
    results = []

    class Server(ChecksumServer):
        pass

    Server.results = results

    async def main():
        server = await hookloop_loop.create_server(Server, "127.0.0.1", 0, backlog=1024)
        address = server.sockets[0].getsockname()
        sem = asyncio.Semaphore(CONCURRENCY)

        async def bounded():
            async with sem:
                await _one_connection(hookloop_loop, address)

        await asyncio.gather(*(bounded() for _ in range(CONNECTIONS)))
        await close_server(server)

    run_without_fd_leak(hookloop_loop, main(), timeout=120)
    assert len(results) == CONNECTIONS
    assert all(results)


def test_refused_connects_leak_nothing(hookloop_loop):
    async def main(addr):
        for _ in range(200):
            with pytest.raises(ConnectionRefusedError):
                await hookloop_loop.create_connection(Recorder, *addr)

    with refused_address() as addr:
        run_without_fd_leak(hookloop_loop, main(addr))


def test_aborts_and_resets_leak_nothing(hookloop_loop):
    async def main():
        server, addr, protocols = await start_server(hookloop_loop, factory=Recorder)
        for i in range(200):
            tr, pr = await hookloop_loop.create_connection(Recorder, *addr)
            tr.write(b"x" * 1000)
            if i % 2:
                tr.abort()
            else:
                sock = tr.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                tr.close()
            await pr.lost
        while len(protocols) < 200:  # accepts still in flight
            await barrier(hookloop_loop)
        # The server side sees EOF or a reset on each and closes by itself.
        for p in protocols:
            await p.lost
        await close_server(server)
        assert len(protocols) == 200
        assert all(p.lost_calls == 1 for p in protocols)

    run_without_fd_leak(hookloop_loop, main())


def test_write_then_close_delivers_every_byte(hookloop_loop):
    payload = random.randbytes(32 << 20)

    async def main():
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.setblocking(False)
        try:
            accept = asyncio.ensure_future(hookloop_loop.sock_accept(listener))
            tr, pr = await hookloop_loop.create_connection(Recorder, *listener.getsockname())
            peer, _ = await accept
        finally:
            listener.close()
        with peer:
            tr.set_write_buffer_limits(high=1 << 30)
            tr.write(payload[:1000])
            tr.write(payload[1000:])
            tr.close()
            digest = hashlib.sha256()
            n = 0
            while chunk := await hookloop_loop.sock_recv(peer, 1 << 16):
                digest.update(chunk)
                n += len(chunk)
            assert n == len(payload)
            assert digest.digest() == hashlib.sha256(payload).digest()
            assert await pr.lost is None

    run(hookloop_loop, main())



def _small_write_backlog(loop):
    """200,000 numbered 8-byte writes onto a transport whose socket buffers are
    tiny, then close: (whether they piled up, what the peer read, how the
    connection was lost)."""
    chunks = [struct.pack(">Q", i) for i in range(200_000)]

    async def main():
        a, b = socket.socketpair()
        with b:
            b.setblocking(False)
            a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            tr, pr = await loop.create_connection(Recorder, sock=a)
            tr.set_write_buffer_limits(high=1 << 30)
            for chunk in chunks:
                tr.write(chunk)
            piled = tr.get_write_buffer_size() > 0
            tr.close()
            got = await read_all(loop, b)
            return piled, got == b"".join(chunks), await pr.lost

    return run(loop, main())


def test_a_backlog_of_many_small_writes_arrives_whole_and_in_order(hookloop_loop, asyncio_loop):
    """Each flush of such a backlog sends its first MAX_IOV chunks (islice, not a
    copy of the whole backlog); every byte arrives, in order, once the peer
    reads, and the connection ends cleanly.  Same program on asyncio's loop."""
    expected = (True, True, None)
    assert _small_write_backlog(asyncio_loop) == expected
    assert _small_write_backlog(hookloop_loop) == expected


def test_peer_reset_mid_write_loses_connection_once(hookloop_loop, raw_peer):
    async def main():
        tr, pr, peer = await raw_peer()
        tr.set_write_buffer_limits(high=1 << 30)
        tr.write(b"x" * (16 << 20))
        assert tr.get_write_buffer_size() > 0
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()  # RST
        exc = await pr.lost
        assert isinstance(exc, (ConnectionResetError, BrokenPipeError))
        tr.write(b"more")  # ignored
        tr.close()
        tr.abort()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert pr.lost_calls == 1
        assert tr.is_closing()

    run_without_fd_leak(hookloop_loop, main())


@pytest.fixture
def asyncio_loop():
    """asyncio's own loop, to run the same program on and compare with; fails
    on unclaimed exception handler calls as ``hookloop_loop`` does."""
    yield from checked_loop(asyncio.new_event_loop(), ExceptionRecorder())


def _reset_while_reading(loop):
    """A reading transport whose peer resets the connection (SO_LINGER 0,
    close: an RST): what its protocol is told, in order."""
    peers = RawPeers(loop)

    async def main():
        tr, pr, peer = await peers(KeepOpen)
        peer.send(b"data")
        await pr.received(4)
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()
        exc = await pr.lost
        await barrier(loop)  # a second connection_lost would have run by now
        return (type(exc), exc.errno if isinstance(exc, OSError) else None,
                pr.events, bytes(pr.data), pr.lost_calls, tr.is_closing())

    try:
        return run(loop, main())
    finally:
        peers.close()


def test_peer_reset_while_reading(hookloop_loop, asyncio_loop):
    # The RST makes recv() fail with ECONNRESET: connection_lost gets that
    # exception (not None, which would say "closed cleanly"), once, with no
    # eof_received before it.  Same program, same observation on asyncio's loop.
    expected = (ConnectionResetError, errno.ECONNRESET, ["made", "data", "lost"], b"data", 1,
                True)
    assert _reset_while_reading(asyncio_loop) == expected
    assert _reset_while_reading(hookloop_loop) == expected


def test_server_under_emfile_pauses_and_resumes(hookloop_loop, hookloop_errors):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    clients = []
    hogs = []

    async def main():
        reported = error_event(hookloop_loop, hookloop_errors)
        protocols = []
        three_accepted = asyncio.Event()

        def factory():
            protocols.append(Recorder())
            if len(protocols) == 3:
                three_accepted.set()
            return protocols[-1]

        server = await hookloop_loop.create_server(factory, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        # Take every free fd below a lowered limit; keep 3 for the clients.
        resource.setrlimit(resource.RLIMIT_NOFILE, (fd_count() + 64, hard))
        try:
            while True:
                hogs.append(os.open("/dev/null", os.O_RDONLY))
        except OSError as exc:
            assert exc.errno == errno.EMFILE
        for _ in range(3):
            os.close(hogs.pop())
        for _ in range(3):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(addr)  # the kernel completes it; accept() has no fd
            clients.append(c)
        await reported.wait()
        context = hookloop_errors.expect("")
        assert isinstance(context.get("exception"), OSError)
        assert context["exception"].errno == errno.EMFILE
        assert protocols == []
        # Free the fds: the server accepts the waiting clients.
        while hogs:
            os.close(hogs.pop())
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        for c in clients:
            await hookloop_loop.sock_sendall(c, b"!")
        await three_accepted.wait()
        for p in protocols:
            assert await p.received(1) == b"!"
        for c in clients:
            c.close()
        for p in protocols:
            await p.lost
        await close_server(server)
        # Anything reported while starved is the same EMFILE condition.
        while hookloop_errors.contexts:
            assert hookloop_errors.expect("")["exception"].errno == errno.EMFILE

    try:
        run(hookloop_loop, main(), timeout=30)
    finally:
        for fd in hogs:
            os.close(fd)
        for c in clients:
            c.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_64_mib_through_a_pipe_pair(hookloop_loop):
    size = 64 << 20
    block = random.randbytes(1 << 20)

    async def main():
        r, w = os.pipe()
        rtr, rpr = await hookloop_loop.connect_read_pipe(Reader, os.fdopen(r, "rb", 0))
        wtr, wpr = await hookloop_loop.connect_write_pipe(Recorder, os.fdopen(w, "wb", 0))
        sent = hashlib.sha256()
        for _ in range(size // len(block)):
            wtr.write(block)
            sent.update(block)
            if wpr.paused > wpr.resumed:
                await wpr.resume_event.wait()
        wtr.close()
        await rpr.lost
        await wpr.lost
        assert rpr.n == size
        assert rpr.digest.digest() == sent.digest()

    class Reader(Recorder):
        def __init__(self):
            super().__init__()
            self.digest = hashlib.sha256()
            self.n = 0

        def data_received(self, data):
            self.digest.update(data)
            self.n += len(data)

    run_without_fd_leak(hookloop_loop, main(), timeout=60)
