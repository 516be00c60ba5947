"""sockops.py internals: the per-fd FIFO queues, cancellation, stale waiters,
refusals, and what stays registered in the loop's fd table."""
from __future__ import annotations

import array
import asyncio
import errno
import socket
import ssl

import pytest
from net_helpers import StaticResolver, has_ipv6, iterations, no_fd_leak, resolver_loop, run


def registered(loop):
    """fds the poller watches, the loop's own waker excluded."""
    return loop.poller.statistics()["registered_fds"] - 1


def fill(sock):
    """Write into ``sock`` until the kernel refuses; return how much went in."""
    total = 0
    chunk = b"f" * 65536
    while True:
        try:
            total += sock.send(chunk)
        except BlockingIOError:
            return total


def test_two_recvs_are_served_in_call_order(hookloop_loop, hookloop_socketpair):
    a, b = hookloop_socketpair

    async def main():
        first = asyncio.ensure_future(hookloop_loop.sock_recv(a, 1))
        second = asyncio.ensure_future(hookloop_loop.sock_recv(a, 1))
        await iterations(3)
        assert registered(hookloop_loop) == 1
        b.send(b"12")
        assert await first == b"1"
        assert await second == b"2"
        await iterations(3)
        assert registered(hookloop_loop) == 0

    run(hookloop_loop, main())


def test_queued_recv_does_not_overtake_when_data_is_already_there(hookloop_loop,
                                                                  hookloop_socketpair):
    a, b = hookloop_socketpair

    async def main():
        first = asyncio.ensure_future(hookloop_loop.sock_recv(a, 1))
        await iterations(3)
        b.send(b"xy")
        # Data is there, but the first waiter has not run yet: the second
        # one must queue behind it rather than read at once.  Step it by
        # hand, so that it starts before the loop polls again.
        second = hookloop_loop.sock_recv(a, 1)
        try:
            parked = second.send(None)
        except StopIteration as done:
            pytest.fail(f"the second recv overtook the first: {done.value!r}")
        assert await first == b"x"
        assert await parked == b"y"
        second.close()

    run(hookloop_loop, main())


def test_two_sendalls_never_interleave(hookloop_loop, hookloop_socketpair):
    a, b = hookloop_socketpair
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    one = b"1" * 300_000
    two = b"2" * 300_000

    async def main():
        s1 = asyncio.ensure_future(hookloop_loop.sock_sendall(a, one))
        s2 = asyncio.ensure_future(hookloop_loop.sock_sendall(a, two))
        received = bytearray()
        while len(received) < len(one) + len(two):
            received += await hookloop_loop.sock_recv(b, 65536)
        await s1
        await s2
        assert bytes(received) == one + two

    run(hookloop_loop, main())


def test_recv_and_sendall_wait_together_on_one_socket(hookloop_loop, hookloop_socketpair):
    a, b = hookloop_socketpair

    async def main():
        backlog = fill(a)
        reader = asyncio.ensure_future(hookloop_loop.sock_recv(a, 10))
        writer = asyncio.ensure_future(hookloop_loop.sock_sendall(a, b"tail"))
        await iterations(3)
        assert not reader.done() and not writer.done()
        drained = 0
        while drained < backlog + 4:
            drained += len(await hookloop_loop.sock_recv(b, 1 << 20))
        await writer
        b.send(b"hi")
        assert await reader == b"hi"
        await iterations(3)
        assert registered(hookloop_loop) == 0

    run(hookloop_loop, main())


def test_cancelled_recv_leaves_nothing_registered_and_takes_no_data(hookloop_loop,
                                                                   hookloop_socketpair):
    a, b = hookloop_socketpair

    async def main():
        task = asyncio.ensure_future(hookloop_loop.sock_recv(a, 100))
        await iterations(3)
        assert registered(hookloop_loop) == 1
        task.cancel()
        b.send(b"kept")  # readable now, but the op is cancelled
        await iterations(3)
        assert task.cancelled()
        assert registered(hookloop_loop) == 0
        assert a.recv(100) == b"kept"

    run(hookloop_loop, main())


def test_cancelled_head_of_queue_is_skipped(hookloop_loop, hookloop_socketpair):
    a, b = hookloop_socketpair

    async def main():
        first = asyncio.ensure_future(hookloop_loop.sock_recv(a, 100))
        second = asyncio.ensure_future(hookloop_loop.sock_recv(a, 100))
        await iterations(3)
        first.cancel()
        b.send(b"for the second")
        assert await second == b"for the second"
        assert first.cancelled()

    run(hookloop_loop, main())


def test_cancelled_sendall_then_new_sendall(hookloop_loop, hookloop_socketpair):
    a, b = hookloop_socketpair

    async def main():
        backlog = fill(a)
        blocked = asyncio.ensure_future(hookloop_loop.sock_sendall(a, b"never"))
        await iterations(3)
        blocked.cancel()
        await iterations(3)
        assert registered(hookloop_loop) == 0
        sender = asyncio.ensure_future(hookloop_loop.sock_sendall(a, b"world"))
        data = bytearray()
        while len(data) < backlog + 5:
            data += await hookloop_loop.sock_recv(b, 1 << 20)
        await sender
        assert data.endswith(b"world") and b"never" not in data

    run(hookloop_loop, main())


def test_sendall_sends_items_not_elements(hookloop_loop, hookloop_socketpair):
    a, b = hookloop_socketpair
    numbers = array.array("i", range(100_000))  # itemsize 4: 400 000 bytes

    async def main():
        sender = asyncio.ensure_future(hookloop_loop.sock_sendall(a, memoryview(numbers)))
        data = bytearray()
        while len(data) < len(numbers.tobytes()):
            data += await hookloop_loop.sock_recv(b, 1 << 20)
        await sender
        assert bytes(data) == numbers.tobytes()

    run(hookloop_loop, main())


def test_closed_socket_waiter_fails_when_fd_is_reused(hookloop_loop):
    async def main():
        a, b = socket.socketpair()
        a.setblocking(False)
        stale = asyncio.ensure_future(hookloop_loop.sock_recv(a, 10))
        await iterations(3)
        number = a.fileno()
        a.close()
        b.close()
        c, d = socket.socketpair()
        try:
            reused = c if c.fileno() == number else d
            other = d if reused is c else c
            if reused.fileno() != number:
                pytest.skip("the kernel did not reuse the fd number")
            reused.setblocking(False)
            fresh = asyncio.ensure_future(hookloop_loop.sock_recv(reused, 10))
            with pytest.raises(OSError) as info:
                await stale
            assert info.value.errno == errno.EBADF
            other.send(b"new")
            assert await fresh == b"new"
            await iterations(3)
            assert registered(hookloop_loop) == 0
        finally:
            c.close()
            d.close()

    run(hookloop_loop, main())


def test_transport_socket_is_refused_before_any_syscall(hookloop_loop, hookloop_socketpair):
    a, b = hookloop_socketpair

    async def main():
        transport, _ = await hookloop_loop.connect_accepted_socket(asyncio.Protocol, a)
        b.send(b"for the transport")
        with pytest.raises(RuntimeError, match="is used by transport"):
            await hookloop_loop.sock_recv(a, 100)
        with pytest.raises(RuntimeError, match="is used by transport"):
            await hookloop_loop.sock_sendall(a, b"x")
        transport.close()
        await iterations(3)

    run(hookloop_loop, main())


def test_add_reader_fd_is_not_refused(hookloop_loop, hookloop_socketpair):
    # A user's add_writer() on the fd does not make it a transport's.
    a, b = hookloop_socketpair

    async def main():
        hookloop_loop.add_writer(a, lambda: None)
        try:
            b.send(b"ok")
            assert await hookloop_loop.sock_recv(a, 10) == b"ok"
        finally:
            hookloop_loop.remove_writer(a)

    run(hookloop_loop, main())


@pytest.mark.parametrize("call", [
    lambda loop, s: loop.sock_recv(s, 1),
    lambda loop, s: loop.sock_recv_into(s, bytearray(1)),
    lambda loop, s: loop.sock_recvfrom(s, 1),
    lambda loop, s: loop.sock_recvfrom_into(s, bytearray(1)),
    lambda loop, s: loop.sock_sendall(s, b"x"),
    lambda loop, s: loop.sock_sendto(s, b"x", ("127.0.0.1", 9)),
    lambda loop, s: loop.sock_connect(s, ("127.0.0.1", 9)),
    lambda loop, s: loop.sock_accept(s),
])
def test_blocking_socket_refused_in_debug_mode_only(hookloop_loop, call):
    with socket.socket() as s:
        hookloop_loop.set_debug(True)
        with pytest.raises(ValueError, match="the socket must be non-blocking"):
            run(hookloop_loop, call(hookloop_loop, s))


def test_blocking_socket_accepted_without_debug(hookloop_loop, hookloop_socketpair):
    a, b = hookloop_socketpair
    a.setblocking(True)
    b.send(b"ready")
    assert run(hookloop_loop, hookloop_loop.sock_recv(a, 10)) == b"ready"


def test_ssl_socket_refused(hookloop_loop):
    context = ssl.create_default_context()
    with context.wrap_socket(socket.socket(), do_handshake_on_connect=False,
                             server_hostname="x") as s:
        with pytest.raises(TypeError, match="Socket cannot be of type SSLSocket"):
            run(hookloop_loop, hookloop_loop.sock_recv(s, 1))


def test_recvfrom_into_nbytes(hookloop_loop):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
        a.bind(("127.0.0.1", 0))
        a.setblocking(False)

        async def main():
            buf = bytearray(10)
            waiting = asyncio.ensure_future(hookloop_loop.sock_recvfrom_into(a, buf, 3))
            await iterations(3)
            b.sendto(b"abcdef", a.getsockname())
            nbytes, addr = await waiting
            assert (nbytes, bytes(buf[:4])) == (3, b"abc\0")
            assert addr[1] == b.getsockname()[1]

        run(hookloop_loop, main())


def test_connect_in_progress_then_refused(hookloop_loop):
    # A non-blocking TCP connect returns EINPROGRESS; the refusal comes back
    # through SO_ERROR once the socket is writable.
    with socket.socket() as target:
        target.bind(("127.0.0.1", 0))  # bound, not listening: refused
        address = target.getsockname()
        with no_fd_leak(), socket.socket() as s:
            s.setblocking(False)
            with pytest.raises(ConnectionRefusedError, match="Connect call failed"):
                run(hookloop_loop, hookloop_loop.sock_connect(s, address))
            assert registered(hookloop_loop) == 0


def test_connect_port_out_of_range_like_asyncio(hookloop_loop):
    with socket.socket() as s:
        s.setblocking(False)
        with pytest.raises(OverflowError):
            run(hookloop_loop, hookloop_loop.sock_connect(s, ("127.0.0.1", 70000)))


def test_connect_resolves_names_through_the_resolver_plugin(hookloop_backend):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        resolver = StaticResolver({"db.example": [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]})
        loop = resolver_loop(hookloop_backend, resolver)
        try:
            for host in ("db.example", "127.0.0.1"):
                with socket.socket() as s:
                    s.setblocking(False)
                    loop.run_until_complete(loop.sock_connect(s, (host, port)))
                    assert s.getpeername() == ("127.0.0.1", port)
                    listener.accept()[0].close()
            assert resolver.asked == ["db.example"]  # numeric: no resolver call
        finally:
            loop.close()


@pytest.mark.skipif(not has_ipv6(), reason="no IPv6")
def test_connect_ipv6_keeps_flowinfo_and_scope(hookloop_loop):
    with socket.socket(socket.AF_INET6) as listener:
        listener.bind(("::1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        with socket.socket(socket.AF_INET6) as s:
            s.setblocking(False)
            run(hookloop_loop, hookloop_loop.sock_connect(s, ("::1", port, 0, 0)))
            assert s.getpeername()[:2] == ("::1", port)
            listener.accept()[0].close()


def test_accept_returns_non_blocking_socket(hookloop_loop):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.setblocking(False)

        async def main():
            accepting = asyncio.ensure_future(hookloop_loop.sock_accept(listener))
            await iterations(3)
            assert registered(hookloop_loop) == 1
            with socket.create_connection(listener.getsockname()):
                conn, _ = await accepting
                with conn:
                    assert conn.gettimeout() == 0
            await iterations(3)
            assert registered(hookloop_loop) == 0

        run(hookloop_loop, main())

