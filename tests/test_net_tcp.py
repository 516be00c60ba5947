"""TCP clients: create_connection (addresses, happy eyeballs, sock=, local_addr,
family/proto/flags, all_errors) and connect_accepted_socket."""
from __future__ import annotations

import asyncio
import socket
import sys

import pytest
from net_helpers import (
    Echo,
    Recorder,
    StaticResolver,
    barrier,
    close_server,
    connect,
    hanging_address,
    has_ipv6,
    no_fd_leak,
    refused_address,
    resolver_loop,
    run,
    run_without_fd_leak,
    start_server,
    tcp_info,
)

needs_ipv6 = pytest.mark.skipif(not has_ipv6(), reason="no IPv6 loopback on this machine")
needs_all_errors = pytest.mark.skipif(
    sys.version_info < (3, 12), reason="create_connection(all_errors=) is new in Python 3.12")


@pytest.fixture
def resolver_loop_factory(hookloop_backend, hookloop_errors):
    """Builds loops with a StaticResolver; closes them after the test."""
    loops = []

    def make(table):
        resolver = StaticResolver(table)
        loop = resolver_loop(hookloop_backend, resolver)
        loop.set_exception_handler(hookloop_errors)
        loops.append(loop)
        return loop, resolver

    yield make
    for loop in loops:
        loop.close()
    assert not hookloop_errors.contexts, hookloop_errors.contexts


def test_connect_roundtrip(hookloop_loop):
    async def main():
        server, addr, _ = await start_server(hookloop_loop)
        tr, pr = await connect(hookloop_loop, addr)
        tr.write(b"hello")
        assert await pr.received(5) == b"hello"
        tr.close()
        assert await pr.lost is None
        await close_server(server)
        return pr

    pr = run(hookloop_loop, main())
    assert pr.events == ["made", "data", "lost"]
    assert pr.lost_calls == 1


def test_connect_returns_transport_and_protocol_from_factory(hookloop_loop):
    made = []

    def factory():
        made.append(Recorder())
        return made[-1]

    async def main():
        server, addr, _ = await start_server(hookloop_loop)
        tr, pr = await hookloop_loop.create_connection(factory, *addr)
        assert pr is made[0]
        assert pr.transport is tr
        assert tr.get_protocol() is pr
        tr.close()
        await pr.lost
        await close_server(server)

    run(hookloop_loop, main())
    assert len(made) == 1


def test_connect_by_name(hookloop_loop):
    async def main():
        server, (_, port), _ = await start_server(hookloop_loop)
        tr, pr = await hookloop_loop.create_connection(Recorder, "localhost", port)
        tr.write(b"x")
        assert await pr.received(1) == b"x"
        tr.close()
        await pr.lost
        await close_server(server)

    run(hookloop_loop, main())


def test_connect_refused(hookloop_loop):
    async def main(addr):
        with pytest.raises(ConnectionRefusedError):
            await connect(hookloop_loop, addr)

    with refused_address() as addr, no_fd_leak():
        run(hookloop_loop, main(addr))


def test_connect_tries_next_address_after_refusal(resolver_loop_factory):
    loop, resolver = resolver_loop_factory({})

    async def main(bad):
        server, good, _ = await start_server(loop)
        resolver.table["two.example"] = [tcp_info(bad), tcp_info(good)]
        tr, pr = await loop.create_connection(Recorder, "two.example", 80)
        assert tr.get_extra_info("peername") == good
        tr.close()
        await pr.lost
        await close_server(server)

    with refused_address() as bad:
        run(loop, main(bad))
    assert "two.example" in resolver.asked


def test_connect_all_addresses_refused_raises_oserror(resolver_loop_factory):
    async def main(loop):
        with pytest.raises(OSError):
            await loop.create_connection(Recorder, "none.example", 80)

    with refused_address() as bad1, refused_address() as bad2:
        loop, _ = resolver_loop_factory({"none.example": [tcp_info(bad1), tcp_info(bad2)]})
        with no_fd_leak():
            run(loop, main(loop))


@needs_all_errors
def test_connect_all_errors_gives_exception_group(resolver_loop_factory):
    async def main(loop):
        with pytest.raises(ExceptionGroup) as info:
            await loop.create_connection(Recorder, "none.example", 80, all_errors=True)
        assert len(info.value.exceptions) == 2
        assert all(isinstance(e, ConnectionRefusedError) for e in info.value.exceptions)

    with refused_address() as bad1, refused_address() as bad2:
        loop, _ = resolver_loop_factory({"none.example": [tcp_info(bad1), tcp_info(bad2)]})
        run(loop, main(loop))


@needs_all_errors
def test_connect_all_errors_single_address(hookloop_loop):
    async def main(addr):
        with pytest.raises(ExceptionGroup) as info:
            await connect(hookloop_loop, addr, all_errors=True)
        assert [type(e) for e in info.value.exceptions] == [ConnectionRefusedError]

    with refused_address() as addr:
        run(hookloop_loop, main(addr))


def test_happy_eyeballs_starts_next_address_while_first_hangs(resolver_loop_factory):
    loop, resolver = resolver_loop_factory({})

    async def main(hanging):
        server, good, _ = await start_server(loop)
        resolver.table["he.example"] = [tcp_info(hanging), tcp_info(good)]
        tr, pr = await loop.create_connection(Recorder, "he.example", 80,
                                              happy_eyeballs_delay=0.05)
        assert tr.get_extra_info("peername") == good
        tr.close()
        await pr.lost
        await close_server(server)

    with hanging_address() as hanging:
        run_without_fd_leak(loop, main(hanging))


@needs_ipv6
@pytest.mark.parametrize(("interleave", "expect_family"),
                         [(1, socket.AF_INET6), (0, socket.AF_INET)])
def test_interleave_orders_address_families(resolver_loop_factory, interleave, expect_family):
    loop, resolver = resolver_loop_factory({})

    async def main(bad1, bad2):
        server4, good4, _ = await start_server(loop)
        server6, good6, _ = await start_server(loop, host="::1")
        # Families in order v4 v4 v4 v6: interleave=1 takes one v4 then
        # alternates (bad1, bad2, good6, good4); interleave=0 keeps the order.
        resolver.table["mixed.example"] = [
            tcp_info(bad1), tcp_info(bad2), tcp_info(good4), tcp_info(good6)]
        tr, pr = await loop.create_connection(Recorder, "mixed.example", 80,
                                              interleave=interleave)
        assert tr.get_extra_info("socket").family == expect_family
        tr.close()
        await pr.lost
        await close_server(server4)
        await close_server(server6)

    with refused_address() as bad1, refused_address() as bad2:
        run(loop, main(bad1, bad2))


def test_connect_with_sock(hookloop_loop):
    async def main():
        server, addr, _ = await start_server(hookloop_loop)
        sock = socket.create_connection(addr)
        sock.setblocking(False)
        fd = sock.fileno()
        tr, pr = await hookloop_loop.create_connection(Recorder, sock=sock)
        assert tr.get_extra_info("socket").fileno() == fd
        tr.write(b"via sock")
        assert await pr.received(8) == b"via sock"
        tr.close()
        await pr.lost
        await close_server(server)
        assert sock.fileno() == -1  # the transport closed the socket it was given

    run(hookloop_loop, main())


def test_connect_local_addr(hookloop_loop):
    async def main():
        server, addr, protocols = await start_server(hookloop_loop)
        tr, pr = await connect(hookloop_loop, addr, local_addr=("127.0.0.2", 0))
        assert tr.get_extra_info("sockname")[0] == "127.0.0.2"
        tr.write(b"x")
        await pr.received(1)
        assert protocols[0].transport.get_extra_info("peername")[0] == "127.0.0.2"
        tr.close()
        await pr.lost
        await close_server(server)

    run(hookloop_loop, main())


def test_connect_local_addr_in_use(hookloop_loop):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)

    async def main():
        server, addr, _ = await start_server(hookloop_loop)
        with pytest.raises(OSError):
            await connect(hookloop_loop, addr, local_addr=taken.getsockname())
        await close_server(server)

    try:
        with no_fd_leak():
            run(hookloop_loop, main())
    finally:
        taken.close()


def test_connect_family_restricts_addresses(hookloop_loop):
    async def main():
        server, (_, port), _ = await start_server(hookloop_loop)
        tr, pr = await hookloop_loop.create_connection(
            Recorder, "localhost", port, family=socket.AF_INET, proto=socket.IPPROTO_TCP)
        sock = tr.get_extra_info("socket")
        assert sock.family == socket.AF_INET
        assert sock.proto == socket.IPPROTO_TCP
        tr.close()
        await pr.lost
        await close_server(server)

    run(hookloop_loop, main())


@needs_ipv6
def test_connect_family_with_no_matching_address(hookloop_loop):
    async def main():
        with pytest.raises(OSError):
            await hookloop_loop.create_connection(Recorder, "127.0.0.1", 80,
                                                  family=socket.AF_INET6)

    run(hookloop_loop, main())


def test_connect_flags_are_passed_to_resolution(hookloop_loop):
    async def main():
        server, (_, port), _ = await start_server(hookloop_loop)
        # AI_NUMERICHOST: a name is refused by the resolver...
        with pytest.raises(socket.gaierror):
            await hookloop_loop.create_connection(Recorder, "localhost", port,
                                                  flags=socket.AI_NUMERICHOST)
        # ... a numeric host is fine.
        tr, pr = await hookloop_loop.create_connection(Recorder, "127.0.0.1", port,
                                                       flags=socket.AI_NUMERICHOST)
        tr.close()
        await pr.lost
        await close_server(server)

    run(hookloop_loop, main())


@needs_ipv6
def test_connect_ipv6(hookloop_loop):
    async def main():
        server, addr, _ = await start_server(hookloop_loop, host="::1")
        tr, pr = await connect(hookloop_loop, addr)
        assert tr.get_extra_info("peername")[:2] == ("::1", addr[1])
        tr.write(b"six")
        assert await pr.received(3) == b"six"
        tr.close()
        await pr.lost
        await close_server(server)

    run(hookloop_loop, main())


def test_tcp_nodelay_on_by_default(hookloop_loop):
    async def main():
        server, addr, protocols = await start_server(hookloop_loop)
        tr, pr = await connect(hookloop_loop, addr)
        tr.write(b"x")
        await pr.received(1)
        client = tr.get_extra_info("socket")
        accepted = protocols[0].transport.get_extra_info("socket")
        for sock in (client, accepted):
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        tr.close()
        await pr.lost
        await close_server(server)

    run(hookloop_loop, main())


def test_connect_accepted_socket(hookloop_loop):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    async def main():
        client = socket.create_connection(listener.getsockname())
        conn, _ = listener.accept()
        conn.setblocking(False)
        try:
            tr, pr = await hookloop_loop.connect_accepted_socket(Echo, conn)
            assert tr.get_extra_info("socket").fileno() == conn.fileno()
            assert tr.get_extra_info("peername") == client.getsockname()
            client.setblocking(False)
            await hookloop_loop.sock_sendall(client, b"ping")
            got = b""
            while len(got) < 4:
                got += await hookloop_loop.sock_recv(client, 10)
            assert got == b"ping"
            client.shutdown(socket.SHUT_WR)
            assert await pr.lost is None
            assert pr.events == ["made", "data", "eof", "lost"]
        finally:
            client.close()

    try:
        with no_fd_leak():
            run(hookloop_loop, main())
    finally:
        listener.close()


def test_connect_accepted_socket_rejects_datagram_socket(hookloop_loop):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, pytest.raises(ValueError):
        run(hookloop_loop, hookloop_loop.connect_accepted_socket(Recorder, sock))


def test_connect_to_closed_server_port_leaks_nothing(hookloop_loop):
    async def main():
        server, addr, _ = await start_server(hookloop_loop)
        await close_server(server)
        for _ in range(20):
            with pytest.raises(ConnectionRefusedError):
                await connect(hookloop_loop, addr)

    run(hookloop_loop, main())  # warm up the service
    with no_fd_leak():
        run(hookloop_loop, main())


def test_connect_cancelled_while_connecting_leaks_nothing(hookloop_loop):
    async def main(hanging):
        task = asyncio.ensure_future(connect(hookloop_loop, hanging))
        await barrier(hookloop_loop)  # the connect is now pending
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with hanging_address() as hanging:
        run_without_fd_leak(hookloop_loop, main(hanging))
