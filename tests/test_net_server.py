"""TCP servers: create_server options and the Server object."""
from __future__ import annotations

import asyncio
import errno
import os
import socket

import pytest
from net_helpers import (
    Echo,
    KeepOpenEcho,
    Recorder,
    barrier,
    close_server,
    connect,
    error_event,
    has_ipv6,
    run,
    run_without_fd_leak,
    start_server,
)

from hookloop.testing import ExceptionRecorder, checked_loop

needs_ipv6 = pytest.mark.skipif(not has_ipv6(), reason="no IPv6 loopback on this machine")


@pytest.fixture
def asyncio_loop():
    """asyncio's own loop, to run the same program on and compare with; fails
    on unclaimed exception handler calls as ``hookloop_loop`` does."""
    yield from checked_loop(asyncio.new_event_loop(), ExceptionRecorder())


async def _echo_once(loop, address, payload=b"ping"):
    tr, pr = await connect(loop, address)
    tr.write(payload)
    got = await pr.received(len(payload))
    tr.close()
    await pr.lost
    return got


def test_server_port_zero_gets_a_port(hookloop_loop):
    async def main():
        server, (host, port), _ = await start_server(hookloop_loop)
        assert host == "127.0.0.1"
        assert port != 0
        assert await _echo_once(hookloop_loop, (host, port)) == b"ping"
        await close_server(server)

    run(hookloop_loop, main())


def test_server_accepts_many_clients(hookloop_loop):
    async def main():
        server, addr, protocols = await start_server(hookloop_loop)
        results = await asyncio.gather(*(_echo_once(hookloop_loop, addr, b"%d" % i)
                                         for i in range(20)))
        assert results == [b"%d" % i for i in range(20)]
        assert len(protocols) == 20
        await close_server(server)

    run(hookloop_loop, main())


def test_server_host_list(hookloop_loop):
    async def main():
        server = await hookloop_loop.create_server(Echo, ["127.0.0.1", "127.0.0.2"], 0)
        hosts = sorted(s.getsockname()[0] for s in server.sockets)
        assert hosts == ["127.0.0.1", "127.0.0.2"]
        for s in server.sockets:
            assert await _echo_once(hookloop_loop, s.getsockname()) == b"ping"
        await close_server(server)

    run(hookloop_loop, main())


@needs_ipv6
def test_server_host_list_two_families(hookloop_loop):
    async def main():
        server = await hookloop_loop.create_server(Echo, ["127.0.0.1", "::1"], 0)
        families = sorted(s.family for s in server.sockets)
        assert families == sorted([socket.AF_INET, socket.AF_INET6])
        for s in server.sockets:
            assert await _echo_once(hookloop_loop, s.getsockname()[:2]) == b"ping"
        await close_server(server)

    run(hookloop_loop, main())


def test_server_all_interfaces(hookloop_loop):
    async def main():
        server = await hookloop_loop.create_server(Echo, None, 0)
        assert server.sockets
        for s in server.sockets:
            assert s.getsockname()[0] in ("0.0.0.0", "::")
        for s in server.sockets:
            host = "::1" if s.family == socket.AF_INET6 else "127.0.0.1"
            assert await _echo_once(hookloop_loop, (host, s.getsockname()[1])) == b"ping"
        await close_server(server)

    run(hookloop_loop, main())


def test_server_empty_host_is_all_interfaces(hookloop_loop):
    async def main():
        server = await hookloop_loop.create_server(Echo, "", 0)
        assert {s.getsockname()[0] for s in server.sockets} <= {"0.0.0.0", "::"}
        await close_server(server)

    run(hookloop_loop, main())


def test_server_reuse_address_default_on(hookloop_loop):
    async def main():
        server, _, _ = await start_server(hookloop_loop)
        sock = server.sockets[0]
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) != 0
        await close_server(server)

    run(hookloop_loop, main())


def test_server_reuse_address_false(hookloop_loop):
    async def main():
        server, _, _ = await start_server(hookloop_loop, reuse_address=False)
        sock = server.sockets[0]
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 0
        await close_server(server)

    run(hookloop_loop, main())


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT here")
def test_server_reuse_port_lets_two_servers_share_a_port(hookloop_loop):
    async def main():
        one = await hookloop_loop.create_server(Echo, "127.0.0.1", 0, reuse_port=True)
        port = one.sockets[0].getsockname()[1]
        assert one.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) != 0
        two = await hookloop_loop.create_server(Echo, "127.0.0.1", port, reuse_port=True)
        assert two.sockets[0].getsockname()[1] == port
        assert await _echo_once(hookloop_loop, ("127.0.0.1", port)) == b"ping"
        await close_server(one)
        await close_server(two)

    run(hookloop_loop, main())


def test_server_port_in_use(hookloop_loop):
    async def main():
        one, addr, _ = await start_server(hookloop_loop)
        with pytest.raises(OSError):
            await hookloop_loop.create_server(Echo, *addr, reuse_port=False)
        await close_server(one)

    run_without_fd_leak(hookloop_loop, main())


def _completed_handshakes(address, attempts, expected):
    """Connect ``attempts`` sockets to a listener nobody accepts from; return
    how many the kernel completed (its accept queue is the backlog).

    Completed ones become writable; the rest stay pending (their SYNs are
    dropped while the queue is full, however long one waits).  On a busy
    machine the kernel may complete them late, so this waits (up to 10 s)
    until at least ``expected`` are, then a little more for any beyond."""
    import select
    import time

    socks = []
    try:
        for _ in range(attempts):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(address)
            socks.append(s)

        def completed(timeout):
            _, writable, _ = select.select([], socks, [], timeout)
            return sum(1 for s in writable
                       if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0)

        deadline = time.monotonic() + 10
        while completed(0.1) < expected and time.monotonic() < deadline:
            pass
        time.sleep(0.2)  # any extra one (a backlog not honoured) completes too
        return completed(0)
    finally:
        for s in socks:
            s.close()


@pytest.mark.parametrize("backlog", [1, 5])
def test_server_backlog_bounds_the_accept_queue(hookloop_loop, backlog):
    async def main():
        return await start_server(hookloop_loop, backlog=backlog)

    server, addr, _ = run(hookloop_loop, main())
    try:
        # The loop is not running, so nothing is accepted: the kernel
        # completes handshakes until the accept queue (backlog + 1 on Linux)
        # is full.
        done = _completed_handshakes(addr, backlog + 4, expected=backlog)
        assert backlog <= done <= backlog + 1
    finally:
        run(hookloop_loop, close_server(server))


def test_server_start_serving_false(hookloop_loop):
    async def main():
        server, addr, protocols = await start_server(hookloop_loop, start_serving=False)
        assert not server.is_serving()
        await server.start_serving()
        assert server.is_serving()
        assert await _echo_once(hookloop_loop, addr) == b"ping"
        assert len(protocols) == 1
        await close_server(server)

    run(hookloop_loop, main())


def test_server_with_sock(hookloop_loop):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    address = sock.getsockname()

    async def main():
        server = await hookloop_loop.create_server(Echo, sock=sock)
        assert [s.fileno() for s in server.sockets] == [sock.fileno()]
        assert await _echo_once(hookloop_loop, address) == b"ping"
        await close_server(server)

    try:
        run(hookloop_loop, main())
    finally:
        sock.close()


def test_server_close(hookloop_loop):
    async def main():
        server, addr, _ = await start_server(hookloop_loop)
        assert server.is_serving()
        server.close()
        assert not server.is_serving()
        await server.wait_closed()
        assert not server.sockets
        with pytest.raises(ConnectionRefusedError):
            await connect(hookloop_loop, addr)

    run_without_fd_leak(hookloop_loop, main())


def test_server_close_keeps_accepted_connections(hookloop_loop):
    async def main():
        server, addr, protocols = await start_server(hookloop_loop)
        tr, pr = await connect(hookloop_loop, addr)
        tr.write(b"one")
        await pr.received(3)
        server.close()
        tr.write(b"two")
        assert await pr.received(6) == b"onetwo"
        assert not protocols[0].lost.done()
        tr.close()
        await pr.lost
        await protocols[0].lost
        await server.wait_closed()

    run(hookloop_loop, main())


def _close_twice(loop):
    """Close a server, occupy its listening fd's number with another file,
    close the server again: what each close (and wait_closed) left behind."""
    async def main():
        server, addr, _ = await start_server(loop)
        fd = server.sockets[0].fileno()

        async def state():
            try:
                tr, _ = await connect(loop, addr)
            except ConnectionRefusedError:
                refused = True
            else:  # a listener left open
                tr.close()
                refused = False
            return (server.is_serving(), server.sockets, refused)

        server.close()
        waited = await server.wait_closed()
        with pytest.raises(OSError) as freed:
            os.fstat(fd)  # the listening socket was closed: its number is free
        first = (waited, await state())
        # The number now names another file; a second close() must not touch it.
        r, w = os.pipe()
        try:
            os.dup2(r, fd)
            inode = os.fstat(r).st_ino
            server.close()
            second = (await server.wait_closed(), await state())
            try:
                still_ours = os.fstat(fd).st_ino == inode
            except OSError:
                still_ours = False
        finally:
            for n in {fd, r, w}:
                try:
                    os.close(n)
                except OSError:
                    pass
        return first, freed.value.errno, second, still_ours

    return run(loop, main())


def test_server_close_twice(hookloop_loop, asyncio_loop):
    # The first close() stops serving, forgets the sockets and closes the
    # listener (new connections are refused, its fd number is free); a
    # second close() changes nothing and closes nothing (not a file that
    # has taken that number since); wait_closed() returns after each.  Same
    # program, same observation on asyncio's loop.
    closed = (None, (False, (), True))
    expected = (closed, errno.EBADF, closed, True)
    assert _close_twice(asyncio_loop) == expected
    assert _close_twice(hookloop_loop) == expected


def test_server_get_loop(hookloop_loop):
    async def main():
        server, _, _ = await start_server(hookloop_loop)
        assert server.get_loop() is hookloop_loop
        await close_server(server)

    run(hookloop_loop, main())


def test_server_sockets_is_a_tuple_of_sockets(hookloop_loop):
    async def main():
        server, addr, _ = await start_server(hookloop_loop)
        sockets = server.sockets
        assert isinstance(sockets, tuple)
        assert sockets[0].getsockname()[:2] == addr
        assert sockets[0].family == socket.AF_INET
        assert sockets[0].type == socket.SOCK_STREAM
        await close_server(server)

    run(hookloop_loop, main())


def test_server_async_with_closes(hookloop_loop):
    async def main():
        server, addr, _ = await start_server(hookloop_loop)
        async with server as entered:
            assert entered is server
            assert await _echo_once(hookloop_loop, addr) == b"ping"
        assert not server.is_serving()
        with pytest.raises(ConnectionRefusedError):
            await connect(hookloop_loop, addr)

    run(hookloop_loop, main())


def test_serve_forever_serves_until_cancelled(hookloop_loop):
    async def main():
        server, addr, _ = await start_server(hookloop_loop, start_serving=False)
        task = asyncio.ensure_future(server.serve_forever())
        await asyncio.sleep(0)  # one step: the task starts serving
        assert await _echo_once(hookloop_loop, addr) == b"ping"
        assert server.is_serving()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not server.is_serving()
        await server.wait_closed()

    run(hookloop_loop, main())


def test_cancelled_serve_forever_closes_hanging_clients(hookloop_loop):
    # As asyncio 3.14: a cancelled serve_forever() (Ctrl+C) closes the
    # connections too, so its wait_closed() does not wait on a silent client.
    async def main():
        server, addr, protocols = await start_server(hookloop_loop, factory=Recorder)
        task = asyncio.ensure_future(server.serve_forever())
        client, client_proto = await connect(hookloop_loop, addr)
        while not protocols:
            await barrier(hookloop_loop)
        await protocols[0].connected
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            async with asyncio.timeout(5):  # fail, not hang, if it waits on the client
                await task
        assert await protocols[0].lost is None
        await client_proto.eof  # the server side closed our connection
        client.close()
        await client_proto.lost

    run(hookloop_loop, main())


def test_serve_forever_twice_is_an_error(hookloop_loop):
    async def main():
        server, _, _ = await start_server(hookloop_loop)
        task = asyncio.ensure_future(server.serve_forever())
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError):
            await server.serve_forever()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(hookloop_loop, main())


def test_serve_forever_on_closed_server_is_an_error(hookloop_loop):
    async def main():
        server, _, _ = await start_server(hookloop_loop)
        await close_server(server)
        with pytest.raises(RuntimeError):
            await server.serve_forever()

    run(hookloop_loop, main())


def test_serve_forever_returns_when_closed(hookloop_loop):
    async def main():
        server, _, _ = await start_server(hookloop_loop)
        task = asyncio.ensure_future(server.serve_forever())
        await asyncio.sleep(0)
        server.close()
        # serve_forever is cancelled by close() (asyncio's behaviour).
        with pytest.raises(asyncio.CancelledError):
            await task

    run(hookloop_loop, main())


def test_wait_closed_waits_for_connections(hookloop_loop):
    async def main():
        server, addr, protocols = await start_server(hookloop_loop, factory=KeepOpenEcho)
        tr, pr = await connect(hookloop_loop, addr)
        tr.write(b"x")
        await pr.received(1)
        server.close()
        waiter = asyncio.ensure_future(server.wait_closed())
        await barrier(hookloop_loop)
        assert not waiter.done()
        protocols[0].transport.close()
        await waiter
        assert protocols[0].lost.done()
        await pr.lost

    run(hookloop_loop, main())


def test_server_close_clients(hookloop_loop):
    async def main():
        server, addr, protocols = await start_server(hookloop_loop, factory=KeepOpenEcho)
        tr, pr = await connect(hookloop_loop, addr)
        tr.write(b"x" * 10)
        await pr.received(10)
        server.close()
        server.close_clients()
        assert await protocols[0].lost is None
        assert await pr.received(11) == b"x" * 10
        await pr.lost
        await server.wait_closed()

    run(hookloop_loop, main())


def test_server_abort_clients(hookloop_loop):
    async def main():
        server, addr, protocols = await start_server(hookloop_loop, factory=KeepOpenEcho)
        tr, pr = await connect(hookloop_loop, addr)
        tr.write(b"x")
        await pr.received(1)
        server.close()
        server.abort_clients()
        assert await protocols[0].lost is None
        assert protocols[0].lost_calls == 1
        await pr.lost
        await server.wait_closed()

    run(hookloop_loop, main())


def test_server_connection_closed_by_client_calls_lost_once(hookloop_loop):
    async def main():
        server, addr, protocols = await start_server(hookloop_loop, factory=Recorder)
        tr, pr = await connect(hookloop_loop, addr)
        tr.write(b"abc")
        tr.write_eof()
        await protocols[0].lost
        assert protocols[0].data == b"abc"
        assert protocols[0].events == ["made", "data", "eof", "lost"]
        await pr.lost
        await asyncio.sleep(0)
        assert protocols[0].lost_calls == 1
        await close_server(server)

    run(hookloop_loop, main())


def test_server_protocol_factory_error_is_reported_in_debug_mode(hookloop_loop,
                                                                hookloop_errors):
    # asyncio reports a failing protocol factory in debug mode only.
    hookloop_loop.set_debug(True)

    async def main():
        def factory():
            raise ZeroDivisionError("no protocol")

        reported = error_event(hookloop_loop, hookloop_errors)
        server = await hookloop_loop.create_server(factory, "127.0.0.1", 0)
        addr = server.sockets[0].getsockname()
        tr, pr = await connect(hookloop_loop, addr)
        await reported.wait()
        tr.close()
        await pr.lost
        await close_server(server)

    run(hookloop_loop, main())
    context = hookloop_errors.expect("", ZeroDivisionError)
    assert context["exception"].args == ("no protocol",)
