"""The TLS transport itself: reads and writes (coalescing, flow control in
both directions, Protocol and BufferedProtocol), EOF and close_notify,
close (flushes, sends close_notify, honours ssl_shutdown_timeout), abort,
a big checksummed transfer each way, asyncio's default timeouts.

Every test runs on asyncio's own loop and each hookloop backend
(``tls_loop``).  Waiting is done on protocol callbacks (futures), never on
sleeps.
"""
from __future__ import annotations

import asyncio
import random
import socket
import zlib

import pytest
from net_helpers import (
    Echo,
    KeepOpen,
    Recorder,
    barrier,
    close_server,
    connect,
    iterations,
    run,
    run_without_fd_leak,
    start_server,
)
from tls_helpers import Checksum, RawTLSPeer, write_all


@pytest.fixture(scope="session")
def payload_64m():
    return random.Random(5).randbytes(64 * 1024 * 1024)


async def pair(loop, server_ctx, client_ctx, server_factory=Recorder, client_factory=Recorder,
               **server_kwargs):
    """A TLS server and one client connected to it: (server, client transport,
    client protocol, server protocol), the server side connected."""
    server, addr, protocols = await start_server(loop, server_factory, ssl=server_ctx,
                                                 **server_kwargs)
    tr, pr = await connect(loop, addr, client_factory, ssl=client_ctx,
                           server_hostname="localhost")
    (sp,) = protocols  # made at accept, before the handshake the client completed
    await sp.connected
    return server, tr, pr, sp


async def raw_peer_pair(loop, server_ctx, client_ctx, rcvbuf=None, **kwargs):
    """A TLS client transport connected to a hand-driven TLS server peer
    (:class:`RawTLSPeer`): (transport, protocol, peer)."""
    with socket.socket() as listener:
        if rcvbuf is not None:  # inherited by the accepted socket
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.setblocking(False)

        async def accept():
            conn, _ = await loop.sock_accept(listener)
            peer = RawTLSPeer(loop, conn, server_ctx, server_side=True)
            try:
                await peer.handshake()
            except BaseException:
                peer.close()
                raise
            return peer

        peer, (tr, pr) = await asyncio.gather(
            accept(), connect(loop, listener.getsockname(), ssl=client_ctx,
                              server_hostname="localhost", **kwargs))
    return tr, pr, peer


def test_many_small_writes_are_read_together(tls_loop, server_ctx, client_ctx):
    # 1000 writes made in one callback reach the peer's protocol in a few
    # data_received calls: a read decrypts every record that arrived.
    async def main():
        server, tr, pr, sp = await pair(tls_loop, server_ctx, client_ctx,
                                        server_factory=Checksum)
        expected = b"".join(b"%04d;" % i for i in range(1000))
        for i in range(1000):
            tr.write(b"%04d;" % i)
        assert await sp.got(len(expected)) == len(expected)
        assert sp.crc == zlib.crc32(expected)
        assert sp.calls <= 5, sp.calls
        tr.close()
        await pr.lost
        await sp.lost
        await close_server(server)

    run_without_fd_leak(tls_loop, main())


def test_pause_and_resume_reading(tls_loop, server_ctx, client_ctx):
    async def main():
        server, tr, pr, sp = await pair(tls_loop, server_ctx, client_ctx,
                                        client_factory=Checksum)
        tr.pause_reading()
        assert not tr.is_reading()
        # The server writes until the paused reader pushes back on it.
        chunk = random.Random(1).randbytes(256 * 1024)
        sent = 0
        while not sp.pause_event.is_set():
            assert sent < 256 * 1024 * 1024, "the server was never paused"
            sp.transport.write(chunk)
            sent += len(chunk)
            await iterations(2)
        await iterations(10)
        assert pr.count == 0 and pr.calls == 0
        assert not tr.is_reading()
        tr.resume_reading()
        assert tr.is_reading()
        await sp.resume_event.wait()  # the backlog drains once reading resumed
        assert await pr.got(sent) == sent
        assert pr.crc == zlib.crc32(chunk * (sent // len(chunk)))
        tr.close()
        assert await pr.lost is None
        assert await sp.lost is None
        await close_server(server)
        return pr, sp

    pr, sp = run_without_fd_leak(tls_loop, main())
    assert pr.lost_calls == 1 and sp.lost_calls == 1


def test_pause_reading_holds_back_close_notify(tls_loop, server_ctx, client_ctx):
    async def main():
        server, tr, pr, sp = await pair(tls_loop, server_ctx, client_ctx)
        tr.pause_reading()
        sp.transport.write(b"data then close")
        sp.transport.close()
        # Both records are in the client's socket by the second poll.
        await barrier(tls_loop)
        await barrier(tls_loop)
        assert pr.events == ["made"]
        assert not sp.lost.done()  # the server waits for the client's close_notify
        tr.resume_reading()
        assert await pr.lost is None
        assert bytes(pr.data) == b"data then close"
        assert await sp.lost is None
        await close_server(server)
        return pr, sp

    pr, sp = run_without_fd_leak(tls_loop, main())
    assert pr.events == ["made", "data", "eof", "lost"]
    # The server's own close, answered: eof_received too (as in asyncio).
    assert sp.events == ["made", "eof", "lost"] and sp.lost_calls == 1


def test_write_flow_control(tls_loop, server_ctx, client_ctx):
    class PausedServer(Checksum):
        def connection_made(self, transport):
            super().connection_made(transport)
            transport.pause_reading()

    class Writer(Recorder):
        size_at_pause = size_at_resume = None

        def pause_writing(self):
            super().pause_writing()
            self.size_at_pause = self.transport.get_write_buffer_size()

        def resume_writing(self):
            super().resume_writing()
            self.size_at_resume = self.transport.get_write_buffer_size()

    async def main():
        server, tr, pr, sp = await pair(tls_loop, server_ctx, client_ctx,
                                        server_factory=PausedServer, client_factory=Writer)
        with pytest.raises(ValueError):
            tr.set_write_buffer_limits(high=1024, low=2048)
        tr.set_write_buffer_limits(high=64 * 1024, low=16 * 1024)
        assert tr.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
        assert tr.get_write_buffer_size() == 0
        chunk = random.Random(2).randbytes(64 * 1024)
        sent = 0
        while not pr.pause_event.is_set():
            assert sent < 256 * 1024 * 1024, "the writer was never paused"
            tr.write(chunk)
            sent += len(chunk)
            await iterations(2)
        assert pr.size_at_pause >= 64 * 1024
        assert tr.get_write_buffer_size() >= 64 * 1024
        sp.transport.resume_reading()
        await pr.resume_event.wait()
        assert pr.size_at_resume <= 16 * 1024
        assert await sp.got(sent) == sent
        assert sp.crc == zlib.crc32(chunk * (sent // len(chunk)))
        assert tr.get_write_buffer_size() == 0
        tr.close()
        await pr.lost
        await sp.lost
        await close_server(server)
        return pr

    pr = run_without_fd_leak(tls_loop, main())
    assert pr.paused >= 1 and pr.resumed == pr.paused


@pytest.mark.parametrize("side", ["client", "server"])
def test_buffered_protocol(tls_loop, server_ctx, client_ctx, side):
    class BufferedChecksum(asyncio.BufferedProtocol, Checksum):
        """Receives into a small buffer of its own."""

        def __init__(self):
            Checksum.__init__(self)
            self.buffer = bytearray(1000)
            self.hints = set()

        def get_buffer(self, sizehint):
            self.hints.add(sizehint)
            return memoryview(self.buffer)[:777]

        def buffer_updated(self, nbytes):
            assert 0 < nbytes <= 777
            Checksum.data_received(self, bytes(self.buffer[:nbytes]))

    data = random.Random(3).randbytes(1024 * 1024 + 3)

    async def main():
        if side == "client":
            server, tr, pr, sp = await pair(tls_loop, server_ctx, client_ctx,
                                            server_factory=Echo,
                                            client_factory=BufferedChecksum)
            receiver = pr
        else:
            server, tr, pr, sp = await pair(tls_loop, server_ctx, client_ctx,
                                            server_factory=BufferedChecksum)
            receiver = sp
        tr.write(data)
        assert await receiver.got(len(data)) == len(data)
        assert receiver.crc == zlib.crc32(data)
        tr.close()
        assert await pr.lost is None
        assert await sp.lost is None
        await close_server(server)
        return receiver

    receiver = run_without_fd_leak(tls_loop, main())
    assert receiver.events[0] == "made" and receiver.events[-1] == "lost"
    assert receiver.lost_calls == 1


def test_eof_received_true_does_not_keep_tls_open(tls_loop, server_ctx, client_ctx):
    # TLS has no half-close: asyncio ignores eof_received's True (with a
    # warning) and closes; write_eof is not supported.
    async def main():
        server, tr, pr, sp = await pair(tls_loop, server_ctx, client_ctx,
                                        server_factory=KeepOpen)
        assert not tr.can_write_eof()
        with pytest.raises(NotImplementedError):
            tr.write_eof()
        tr.write(b"bye")
        tr.close()
        assert await sp.lost is None
        assert await pr.lost is None
        await close_server(server)
        return sp

    sp = run_without_fd_leak(tls_loop, main())
    assert sp.events == ["made", "data", "eof", "lost"]
    assert sp.lost_calls == 1


def test_close_sends_close_notify_after_every_byte(tls_loop, server_ctx, client_ctx):
    data = random.Random(4).randbytes(4 * 1024 * 1024 + 1)

    async def main():
        tr, pr, peer = await raw_peer_pair(tls_loop, server_ctx, client_ctx)
        try:
            tr.write(data)
            tr.close()
            assert tr.is_closing()
            tr.write(b"after close")  # ignored, as asyncio does
            received, end = await peer.read_to_end()
            assert end == "close_notify"
            assert len(received) == len(data) and received == data
            assert not pr.lost.done()  # it waits for the peer's answer
            await peer.send_close_notify()
            assert await pr.lost is None
        finally:
            peer.close()
        return pr

    pr = run_without_fd_leak(tls_loop, main())
    assert pr.events == ["made", "eof", "lost"]
    assert pr.lost_calls == 1


def test_close_notify_from_peer(tls_loop, server_ctx, client_ctx):
    # The peer's close_notify: eof_received, then the transport answers and
    # closes: connection_lost(None).
    async def main():
        tr, pr, peer = await raw_peer_pair(tls_loop, server_ctx, client_ctx)
        try:
            await peer.send(b"done")
            await peer.send_close_notify()
            assert await pr.lost is None
            received, end = await peer.read_to_end()
            assert (received, end) == (b"", "close_notify")
        finally:
            peer.close()
        return pr

    pr = run_without_fd_leak(tls_loop, main())
    assert pr.events == ["made", "data", "eof", "lost"]
    assert bytes(pr.data) == b"done"
    assert pr.lost_calls == 1


def test_shutdown_timeout_client(tls_loop, server_ctx, client_ctx):
    # A peer that never answers close_notify is cut after ssl_shutdown_timeout.
    async def main():
        tr, pr, peer = await raw_peer_pair(tls_loop, server_ctx, client_ctx,
                                           ssl_shutdown_timeout=0.2)
        try:
            start = tls_loop.time()
            tr.close()
            exc = await pr.lost
            elapsed = tls_loop.time() - start
            assert isinstance(exc, TimeoutError), exc
            assert 0.15 <= elapsed < 15, elapsed  # 0.2 s, not the default 30 s
            received, end = await peer.read_to_end()
            assert (received, end) == (b"", "close_notify")
            assert await peer.read_socket_to_end() == (b"", "eof")  # then cut
        finally:
            peer.close()
        return pr

    pr = run_without_fd_leak(tls_loop, main())
    assert pr.events == ["made", "lost"]
    assert pr.lost_calls == 1


def test_shutdown_timeout_server(tls_loop, server_ctx, client_ctx):
    class CloseAtOnce(Recorder):
        def connection_made(self, transport):
            super().connection_made(transport)
            transport.close()

    async def main():
        server, addr, protocols = await start_server(tls_loop, CloseAtOnce, ssl=server_ctx,
                                                     ssl_shutdown_timeout=0.2)
        peer = await RawTLSPeer.connect(tls_loop, addr, client_ctx)
        try:
            start = tls_loop.time()
            await peer.handshake()
            (sp,) = protocols
            assert isinstance(await sp.lost, TimeoutError)
            assert 0.15 <= tls_loop.time() - start < 15  # 0.2 s, not the default 30 s
            assert await peer.read_to_end() == (b"", "close_notify")
            assert await peer.read_socket_to_end() == (b"", "eof")
        finally:
            peer.close()
        await close_server(server)
        return sp

    sp = run_without_fd_leak(tls_loop, main())
    assert sp.events == ["made", "lost"] and sp.lost_calls == 1


def test_abort_drops_pending_data_at_once(tls_loop, server_ctx, client_ctx):
    data = random.Random(6).randbytes(8 * 1024 * 1024)

    async def main():
        tr, pr, peer = await raw_peer_pair(tls_loop, server_ctx, client_ctx, rcvbuf=4096)
        try:
            tr.write(data)
            await iterations(2)
            assert tr.get_write_buffer_size() > 0 or not pr.lost.done()
            tr.abort()
            assert tr.is_closing()
            tr.close()  # harmless
            assert await pr.lost is None
            received, end = await peer.read_to_end()
            assert end in ("eof", "reset")  # no close_notify
            assert len(received) < len(data)
            assert data.startswith(received)
        finally:
            peer.close()
        return pr

    pr = run_without_fd_leak(tls_loop, main())
    assert pr.events == ["made", "lost"]
    assert pr.lost_calls == 1


def test_64_mib_each_way(tls_loop, server_ctx, client_ctx, payload_64m):
    size = len(payload_64m)
    expected = zlib.crc32(payload_64m)

    class Sender(Checksum):
        def connection_made(self, transport):
            super().connection_made(transport)
            self.sending = self.loop.create_task(write_all(transport, self, payload_64m))

    async def main():
        server, tr, pr, sp = await pair(tls_loop, server_ctx, client_ctx,
                                        server_factory=Sender, client_factory=Sender)
        assert await pr.got(size) == size
        assert await sp.got(size) == size
        await pr.sending
        await sp.sending
        assert (pr.crc, sp.crc) == (expected, expected)
        tr.close()
        assert await pr.lost is None
        assert await sp.lost is None
        await close_server(server)
        return pr, sp

    pr, sp = run_without_fd_leak(tls_loop, main())
    assert pr.lost_calls == 1 and sp.lost_calls == 1


class TimerLog:
    """Records the delays of timers the loop is asked for (call_later and
    call_at) while installed on ``loop``."""

    def __init__(self, loop):
        self.loop = loop
        self.delays = []
        self._later, self._at = loop.call_later, loop.call_at

    def __enter__(self):
        def call_later(delay, *args, **kwargs):
            self.delays.append(delay)
            return self._later(delay, *args, **kwargs)

        def call_at(when, *args, **kwargs):
            self.delays.append(when - self.loop.time())
            return self._at(when, *args, **kwargs)

        self.loop.call_later, self.loop.call_at = call_later, call_at
        return self

    def __exit__(self, *exc):
        del self.loop.call_later, self.loop.call_at

    def has(self, delay):
        return any(abs(d - delay) < 0.5 for d in self.delays)


def test_default_timeouts(tls_loop, server_ctx, client_ctx):
    # asyncio's defaults: 60 s for the handshake, 30 s for the shutdown.
    # Observed through the timers the TLS layer asks the loop for.
    async def main():
        server, addr, protocols = await start_server(tls_loop, Echo, ssl=server_ctx)
        with TimerLog(tls_loop) as handshake:
            tr, pr = await connect(tls_loop, addr, ssl=client_ctx, server_hostname="localhost")
        assert handshake.has(60.0), handshake.delays
        with TimerLog(tls_loop) as shutdown:
            tr.close()
            await pr.lost
        assert shutdown.has(30.0), shutdown.delays
        await close_server(server)

    run(tls_loop, main())


def test_given_timeouts_are_used(tls_loop, server_ctx, client_ctx):
    async def main():
        server, addr, protocols = await start_server(tls_loop, Echo, ssl=server_ctx,
                                                     ssl_handshake_timeout=7.5,
                                                     ssl_shutdown_timeout=12.5)
        with TimerLog(tls_loop) as handshake:
            tr, pr = await connect(tls_loop, addr, ssl=client_ctx, server_hostname="localhost",
                                   ssl_handshake_timeout=7.5, ssl_shutdown_timeout=12.5)
        assert handshake.has(7.5) and not handshake.has(60.0), handshake.delays
        with TimerLog(tls_loop) as shutdown:
            tr.close()
            await pr.lost
        assert shutdown.has(12.5) and not shutdown.has(30.0), shutdown.delays
        await close_server(server)

    run(tls_loop, main())



def test_set_protocol(tls_loop, server_ctx, client_ctx):
    async def main():
        server, tr, pr, sp = await pair(tls_loop, server_ctx, client_ctx,
                                        server_factory=Echo)
        tr.write(b"one")
        assert await pr.received(3) == b"one"
        second = Recorder()
        tr.set_protocol(second)
        assert tr.get_protocol() is second
        tr.write(b"two")
        assert await second.received(3) == b"two"
        tr.close()
        assert await second.lost is None
        await sp.lost
        await close_server(server)
        return pr, second

    pr, second = run_without_fd_leak(tls_loop, main())
    assert bytes(pr.data) == b"one" and pr.lost_calls == 0
    assert second.lost_calls == 1


def test_data_received_error_is_fatal(tls_loop, server_ctx, client_ctx, loop_errors):
    class Broken(Recorder):
        def data_received(self, data):
            super().data_received(data)
            raise ZeroDivisionError("protocol bug")

    async def main():
        server, tr, pr, sp = await pair(tls_loop, server_ctx, client_ctx,
                                        server_factory=Broken)
        tr.write(b"boom")
        assert isinstance(await sp.lost, ZeroDivisionError)
        # The server's side is dropped without close_notify: the client
        # takes it as an EOF.
        assert await pr.lost is None
        await close_server(server)
        return pr, sp

    pr, sp = run_without_fd_leak(tls_loop, main())
    loop_errors.expect("Fatal error", ZeroDivisionError)
    assert sp.events == ["made", "data", "lost"] and sp.lost_calls == 1
    assert pr.events == ["made", "eof", "lost"] and pr.lost_calls == 1
