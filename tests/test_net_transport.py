"""The stream transport API and protocols (Protocol, BufferedProtocol)."""
from __future__ import annotations

import asyncio
import errno
import os
import pickle
import socket

import pytest
from net_helpers import (
    Echo,
    KeepOpen,
    RawPeers,
    Recorder,
    barrier,
    close_server,
    connect,
    read_all,
    run,
    run_without_fd_leak,
    start_server,
)

from hookloop.testing import ExceptionRecorder, checked_loop


@pytest.fixture
def asyncio_loop():
    """asyncio's own loop, to run the same program on and compare with; fails
    on unclaimed exception handler calls as ``hookloop_loop`` does."""
    yield from checked_loop(asyncio.new_event_loop(), ExceptionRecorder())


def test_write_and_writelines(hookloop_loop, raw_peer):
    async def main():
        tr, pr, peer = await raw_peer()
        tr.write(b"a")
        tr.write(bytearray(b"b"))
        tr.write(memoryview(b"xcx")[1:2])
        tr.writelines([b"d", bytearray(b"e"), memoryview(b"f")])
        tr.writelines(iter([b"g", b"h"]))
        tr.close()
        assert await read_all(hookloop_loop, peer) == b"abcdefgh"
        assert await pr.lost is None

    run(hookloop_loop, main())


def test_write_empty_is_a_no_op(hookloop_loop, raw_peer):
    async def main():
        tr, pr, peer = await raw_peer()
        tr.write(b"")
        tr.writelines([])
        assert tr.get_write_buffer_size() == 0
        tr.write(b"z")
        tr.close()
        assert await read_all(hookloop_loop, peer) == b"z"

    run(hookloop_loop, main())


def test_write_eof_half_close(hookloop_loop, raw_peer):
    async def main():
        tr, pr, peer = await raw_peer(KeepOpen)
        assert tr.can_write_eof()
        tr.write(b"request")
        tr.write_eof()
        assert await read_all(hookloop_loop, peer) == b"request"
        # The other direction still works.
        await hookloop_loop.sock_sendall(peer, b"reply")
        assert await pr.received(5) == b"reply"
        assert not pr.lost.done()
        peer.shutdown(socket.SHUT_WR)
        await pr.eof
        # eof_received returned True: the transport stays until closed.
        assert not pr.lost.done()
        tr.close()
        assert await pr.lost is None
        assert pr.events == ["made", "data", "eof", "lost"]

    run(hookloop_loop, main())


def test_write_eof_twice_is_harmless(hookloop_loop, raw_peer):
    async def main():
        tr, pr, peer = await raw_peer(KeepOpen)
        tr.write_eof()
        tr.write_eof()
        assert await read_all(hookloop_loop, peer) == b""
        tr.close()
        await pr.lost

    run(hookloop_loop, main())


def test_eof_received_false_closes_transport(hookloop_loop, raw_peer):
    async def main():
        tr, pr, peer = await raw_peer(Recorder)
        peer.shutdown(socket.SHUT_WR)
        assert await pr.lost is None
        assert tr.is_closing()
        assert pr.events == ["made", "eof", "lost"]

    run(hookloop_loop, main())


def test_get_extra_info(hookloop_loop, raw_peer):
    async def main():
        tr, pr, peer = await raw_peer()
        sock = tr.get_extra_info("socket")
        assert sock.family == socket.AF_INET
        assert sock.type == socket.SOCK_STREAM
        assert tr.get_extra_info("sockname") == peer.getpeername()
        assert tr.get_extra_info("peername") == peer.getsockname()
        assert sock.getsockname() == tr.get_extra_info("sockname")
        assert tr.get_extra_info("no such key") is None
        assert tr.get_extra_info("no such key", "dflt") == "dflt"
        tr.close()
        await pr.lost

    run(hookloop_loop, main())


def test_pause_and_resume_reading(hookloop_loop, raw_peer):
    async def main():
        tr, pr, peer = await raw_peer()
        assert tr.is_reading()
        tr.pause_reading()
        assert not tr.is_reading()
        tr.pause_reading()  # idempotent
        peer.send(b"held")
        await barrier(hookloop_loop)
        assert pr.data == b""
        tr.resume_reading()
        assert tr.is_reading()
        tr.resume_reading()  # idempotent
        assert await pr.received(4) == b"held"
        tr.close()
        await pr.lost
        assert not tr.is_reading()

    run(hookloop_loop, main())


def test_pause_reading_holds_back_eof(hookloop_loop, raw_peer):
    async def main():
        tr, pr, peer = await raw_peer()
        tr.pause_reading()
        peer.send(b"last")
        peer.shutdown(socket.SHUT_WR)
        await barrier(hookloop_loop)
        assert pr.events == ["made"]
        tr.resume_reading()
        assert await pr.lost is None
        assert pr.data == b"last"
        assert pr.events == ["made", "data", "eof", "lost"]

    run(hookloop_loop, main())


def test_write_buffer_limits(hookloop_loop, raw_peer):
    async def main():
        tr, pr, peer = await raw_peer()
        assert tr.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
        tr.set_write_buffer_limits(high=1000)
        assert tr.get_write_buffer_limits() == (250, 1000)
        tr.set_write_buffer_limits(high=100, low=10)
        assert tr.get_write_buffer_limits() == (10, 100)
        tr.set_write_buffer_limits(low=100)
        assert tr.get_write_buffer_limits() == (100, 400)
        with pytest.raises(ValueError):
            tr.set_write_buffer_limits(high=10, low=100)
        with pytest.raises(ValueError):
            tr.set_write_buffer_limits(high=-1, low=-2)
        tr.close()
        await pr.lost

    run(hookloop_loop, main())


def test_pause_and_resume_writing_at_water_marks(hookloop_loop, raw_peer):
    async def main():
        tr, pr, peer = await raw_peer()
        tr.set_write_buffer_limits(high=64 * 1024, low=16 * 1024)
        chunk = b"w" * 65536
        sent = 0
        while not pr.paused:
            tr.write(chunk)
            sent += len(chunk)
            assert sent < (256 << 20), "never paused"
        assert tr.get_write_buffer_size() > 64 * 1024
        assert pr.events[-1] == "pause"
        tr.write(chunk)  # writing while paused is allowed, no second pause
        sent += len(chunk)
        assert pr.paused == 1
        got = await read_all(hookloop_loop, peer, sent)
        await pr.resume_event.wait()
        assert len(got) == sent
        assert pr.resumed == 1
        assert tr.get_write_buffer_size() == 0
        tr.close()
        await pr.lost

    run(hookloop_loop, main())


def test_get_write_buffer_size_counts_unsent_bytes(hookloop_loop, raw_peer):
    async def main():
        tr, pr, peer = await raw_peer()
        tr.set_write_buffer_limits(high=1 << 30)
        assert tr.get_write_buffer_size() == 0
        tr.write(b"x" * (16 << 20))
        pending = tr.get_write_buffer_size()
        assert 0 < pending <= 16 << 20
        tr.close()
        assert len(await read_all(hookloop_loop, peer)) == 16 << 20
        assert tr.get_write_buffer_size() == 0
        await pr.lost

    run(hookloop_loop, main())


def test_abort_drops_pending_data(hookloop_loop, raw_peer):
    async def main():
        tr, pr, peer = await raw_peer()
        tr.set_write_buffer_limits(high=1 << 30)
        tr.write(b"x" * (16 << 20))
        assert tr.get_write_buffer_size() > 0
        tr.abort()
        assert tr.is_closing()
        assert await pr.lost is None
        try:
            got = await read_all(hookloop_loop, peer)
        except ConnectionResetError:
            got = b""
        assert len(got) < 16 << 20
        await asyncio.sleep(0)
        assert pr.lost_calls == 1

    run(hookloop_loop, main())


def test_close_then_abort_calls_lost_once(hookloop_loop, raw_peer):
    async def main():
        tr, pr, peer = await raw_peer()
        tr.close()
        tr.abort()
        tr.close()
        assert await pr.lost is None
        await barrier(hookloop_loop)
        assert pr.lost_calls == 1

    run(hookloop_loop, main())


def test_is_closing(hookloop_loop, raw_peer):
    async def main():
        tr, pr, peer = await raw_peer()
        assert not tr.is_closing()
        tr.close()
        assert tr.is_closing()
        await pr.lost
        assert tr.is_closing()

    run(hookloop_loop, main())


def test_connection_lost_is_called_soon_not_inside_close(hookloop_loop, raw_peer):
    async def main():
        tr, pr, peer = await raw_peer()
        tr.close()
        assert pr.lost_calls == 0
        await pr.lost

    run(hookloop_loop, main())


def test_set_protocol(hookloop_loop, raw_peer):
    async def main():
        tr, first, peer = await raw_peer()
        await hookloop_loop.sock_sendall(peer, b"one")
        await first.received(3)
        second = Recorder()
        tr.set_protocol(second)
        assert tr.get_protocol() is second
        await hookloop_loop.sock_sendall(peer, b"two")
        assert await second.received(3) == b"two"
        assert first.data == b"one"
        peer.close()
        await second.lost
        assert not first.lost.done()
        assert second.lost_calls == 1

    run(hookloop_loop, main())


def _user_closes_transport_socket(loop):
    """Try to close (and detach) the socket ``get_extra_info('socket')``
    hands out, then use the transport: what the user and the peer see."""
    peers = RawPeers(loop)

    async def main():
        tr, pr, peer = await peers()
        sock = tr.get_extra_info("socket")
        fd = sock.fileno()
        refused = []
        for name in ("close", "detach"):
            with pytest.raises(AttributeError) as info:
                getattr(sock, name)()
            refused.append(str(info.value))
        os.fstat(fd)  # still open
        same_fd = tr.get_extra_info("socket").fileno() == fd
        tr.write(b"still open")
        got = await read_all(loop, peer, 10)
        tr.close()
        lost = await pr.lost
        with pytest.raises(OSError) as closed:
            os.fstat(fd)  # the transport, its owner, closed it
        return refused, same_fd, got, lost, pr.lost_calls, closed.value.errno

    try:
        return run(loop, main())
    finally:
        peers.close()


def test_transport_sock_is_not_closable_by_user(hookloop_loop, asyncio_loop):
    # get_extra_info('socket') must not let a user pull the fd away from the
    # transport behind its back (asyncio hands out a TransportSocket): close()
    # and detach() do not exist on it (AttributeError, not a silent no-op
    # that lets the user believe the socket closed), the fd stays the
    # transport's and keeps working, and it closes when the transport does.
    # Same program, same observation on asyncio's loop.
    expected = (["'TransportSocket' object has no attribute 'close'",
                 "'TransportSocket' object has no attribute 'detach'"],
                True, b"still open", None, 1, errno.EBADF)
    assert _user_closes_transport_socket(asyncio_loop) == expected
    assert _user_closes_transport_socket(hookloop_loop) == expected


def test_transport_socket_view_offers_only_safe_operations(hookloop_loop, raw_peer):
    async def main():
        tr, pr, peer = await raw_peer()
        view = tr.get_extra_info("socket")
        assert view.getpeername() == peer.getsockname()
        assert view.getsockname() == tr.get_extra_info("sockname")
        assert (view.family, view.type) == (socket.AF_INET, socket.SOCK_STREAM)
        assert view.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        view.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        assert view.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
        assert not view.get_inheritable()
        with view.dup() as copy:
            assert isinstance(copy, socket.socket) and copy.fileno() != view.fileno()
        assert view.gettimeout() == 0
        view.settimeout(0)
        view.setblocking(False)
        with pytest.raises(ValueError):
            view.settimeout(1)
        with pytest.raises(ValueError):
            view.setblocking(True)
        with pytest.raises(TypeError):
            pickle.dumps(view)
        for name in ("close", "detach", "recv", "send"):
            assert not hasattr(view, name)
        assert "TransportSocket" in repr(view)
        tr.close()
        await pr.lost

    run(hookloop_loop, main())


class Buffered(asyncio.BufferedProtocol):
    def __init__(self, size):
        loop = asyncio.get_running_loop()
        self.buf = bytearray(size)
        self.data = bytearray()
        self.sizehints = []
        self.eof = loop.create_future()
        self.lost = loop.create_future()
        self.lost_calls = 0

    def connection_made(self, transport):
        self.transport = transport

    def get_buffer(self, sizehint):
        self.sizehints.append(sizehint)
        return self.buf

    def buffer_updated(self, nbytes):
        assert 0 < nbytes <= len(self.buf)
        self.data += self.buf[:nbytes]

    def eof_received(self):
        self.eof.set_result(None)

    def connection_lost(self, exc):
        self.lost_calls += 1
        if not self.lost.done():
            self.lost.set_result(exc)


def test_buffered_protocol_receives_everything(hookloop_loop, raw_peer):
    payload = bytes(range(256)) * 4096  # 1 MiB

    async def main():
        tr, pr, peer = await raw_peer(lambda: Buffered(1000))
        await hookloop_loop.sock_sendall(peer, payload)
        peer.shutdown(socket.SHUT_WR)
        await pr.eof
        assert await pr.lost is None
        assert pr.data == payload
        assert len(pr.sizehints) >= len(payload) // 1000
        assert all(isinstance(h, int) for h in pr.sizehints)
        assert pr.lost_calls == 1

    run(hookloop_loop, main())


def test_buffered_protocol_memoryview_buffer(hookloop_loop, raw_peer):
    class MV(Buffered):
        def get_buffer(self, sizehint):
            self.sizehints.append(sizehint)
            return memoryview(self.buf)[:7]

        def buffer_updated(self, nbytes):
            assert 0 < nbytes <= 7
            self.data += self.buf[:nbytes]

    async def main():
        tr, pr, peer = await raw_peer(lambda: MV(100))
        await hookloop_loop.sock_sendall(peer, b"0123456789abcdef")
        peer.close()
        await pr.lost
        assert pr.data == b"0123456789abcdef"

    run(hookloop_loop, main())


def test_buffered_protocol_empty_buffer_is_fatal(hookloop_loop, raw_peer, hookloop_errors):
    class Empty(Buffered):
        def get_buffer(self, sizehint):
            return bytearray()

    async def main():
        tr, pr, peer = await raw_peer(lambda: Empty(1))
        await hookloop_loop.sock_sendall(peer, b"x")
        exc = await pr.lost
        assert exc is not None
        assert pr.lost_calls == 1

    run(hookloop_loop, main())
    hookloop_errors.expect("")


def test_data_received_error_is_fatal(hookloop_loop, raw_peer, hookloop_errors):
    class Failing(Recorder):
        def data_received(self, data):
            raise ZeroDivisionError("protocol bug")

    async def main():
        tr, pr, peer = await raw_peer(Failing)
        await hookloop_loop.sock_sendall(peer, b"x")
        exc = await pr.lost
        assert isinstance(exc, ZeroDivisionError)
        assert pr.lost_calls == 1
        assert tr.is_closing()

    run(hookloop_loop, main())
    hookloop_errors.expect("", ZeroDivisionError)


def test_add_reader_on_transport_fd_is_refused(hookloop_loop, raw_peer):
    async def main():
        tr, pr, peer = await raw_peer()
        fd = tr.get_extra_info("socket").fileno()
        for method in (hookloop_loop.add_reader, hookloop_loop.add_writer):
            with pytest.raises(RuntimeError):
                method(fd, lambda: None)
        for method in (hookloop_loop.remove_reader, hookloop_loop.remove_writer):
            with pytest.raises(RuntimeError):
                method(fd)
        # The transport still works.
        tr.write(b"ok")
        assert await read_all(hookloop_loop, peer, 2) == b"ok"
        tr.close()
        await pr.lost

    run(hookloop_loop, main())


def test_add_reader_on_server_accepted_fd_is_refused(hookloop_loop):
    async def main():
        server, addr, protocols = await start_server(hookloop_loop)
        tr, pr = await connect(hookloop_loop, addr)
        tr.write(b"x")
        await pr.received(1)
        fd = protocols[0].transport.get_extra_info("socket").fileno()
        with pytest.raises(RuntimeError):
            hookloop_loop.add_reader(fd, lambda: None)
        tr.close()
        await pr.lost
        await close_server(server)

    run(hookloop_loop, main())


def test_fd_is_free_again_after_transport_closed(hookloop_loop, raw_peer):
    async def main():
        tr, pr, peer = await raw_peer()
        sock = tr.get_extra_info("socket")
        fd = sock.fileno()
        tr.close()
        await pr.lost
        # The fd number may be reused by a new socket; watching it works.
        with socket.socket() as s:
            if s.fileno() == fd:
                hookloop_loop.add_reader(fd, lambda: None)
                assert hookloop_loop.remove_reader(fd)

    run(hookloop_loop, main())


def test_echo_many_messages_in_order(hookloop_loop):
    async def main():
        server, addr, _ = await start_server(hookloop_loop, factory=Echo)
        tr, pr = await connect(hookloop_loop, addr)
        expected = b"".join(b"<%d>" % i for i in range(5000))
        for i in range(5000):
            tr.write(b"<%d>" % i)
        assert await pr.received(len(expected)) == expected
        tr.close()
        await pr.lost
        await close_server(server)

    run_without_fd_leak(hookloop_loop, main())
