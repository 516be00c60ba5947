"""getaddrinfo / getnameinfo, and numeric hosts needing no executor."""
from __future__ import annotations

import asyncio
import socket

import pytest
from net_helpers import DatagramRecorder, Echo, Recorder, has_ipv6, run

needs_ipv6 = pytest.mark.skipif(not has_ipv6(), reason="no IPv6 loopback on this machine")


@pytest.mark.parametrize(("host", "port", "kwargs"), [
    ("127.0.0.1", 80, {}),
    ("127.0.0.1", "80", {"type": socket.SOCK_STREAM}),
    ("127.0.0.1", "http", {"type": socket.SOCK_STREAM}),
    ("localhost", 80, {"type": socket.SOCK_STREAM}),
    ("localhost", 0, {"family": socket.AF_INET, "proto": socket.IPPROTO_UDP}),
    (None, 8080, {"flags": socket.AI_PASSIVE, "type": socket.SOCK_STREAM}),
    (b"127.0.0.1", b"80", {"type": socket.SOCK_DGRAM}),
    ("127.0.0.1", None, {"type": socket.SOCK_STREAM}),
])
def test_getaddrinfo_matches_socket_module(hookloop_loop, host, port, kwargs):
    async def main():
        return await hookloop_loop.getaddrinfo(host, port, **kwargs)

    got = run(hookloop_loop, main())
    expected = socket.getaddrinfo(host, port, **kwargs)
    assert sorted(got) == sorted(expected)
    assert all(isinstance(info, tuple) and len(info) == 5 for info in got)


@needs_ipv6
@pytest.mark.parametrize("host", ["::1", "::ffff:127.0.0.1"])
def test_getaddrinfo_ipv6_matches_socket_module(hookloop_loop, host):
    async def main():
        return await hookloop_loop.getaddrinfo(host, 443, type=socket.SOCK_STREAM)

    assert sorted(run(hookloop_loop, main())) == sorted(
        socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM))


@pytest.mark.parametrize(("sockaddr", "flags"), [
    (("127.0.0.1", 80), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV),
    (("127.0.0.1", 80), 0),
    (("127.0.0.1", 53), socket.NI_DGRAM),
])
def test_getnameinfo_matches_socket_module(hookloop_loop, sockaddr, flags):
    async def main():
        return await hookloop_loop.getnameinfo(sockaddr, flags)

    assert run(hookloop_loop, main()) == socket.getnameinfo(sockaddr, flags)


def test_getnameinfo_numeric(hookloop_loop):
    async def main():
        return await hookloop_loop.getnameinfo(
            ("127.0.0.1", 8080), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)

    assert run(hookloop_loop, main()) == ("127.0.0.1", "8080")


def test_getaddrinfo_many_concurrent(hookloop_loop):
    async def main():
        return await asyncio.gather(*(
            hookloop_loop.getaddrinfo("localhost", port, type=socket.SOCK_STREAM)
            for port in range(1000, 1100)))

    results = run(hookloop_loop, main())
    for port, infos in zip(range(1000, 1100), results, strict=True):
        assert infos and all(info[4][1] == port for info in infos)


def test_tracking_executor_sees_default_executor_use(hookloop_loop, recording_executor):
    # The check below is only meaningful if this executor really is the one
    # the loop uses for run_in_executor(None, ...).
    async def main():
        return await hookloop_loop.run_in_executor(None, sum, [1, 2])

    assert run(hookloop_loop, main()) == 3
    assert recording_executor.calls == ["sum"]


def test_numeric_hosts_need_no_executor(hookloop_loop, recording_executor):
    async def main():
        server = await hookloop_loop.create_server(Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, pr = await hookloop_loop.create_connection(Recorder, "127.0.0.1", port)
        tr.close()
        await pr.lost
        sock = socket.socket()
        sock.setblocking(False)
        try:
            await hookloop_loop.sock_connect(sock, ("127.0.0.1", port))
        finally:
            sock.close()
        dtr, dpr = await hookloop_loop.create_datagram_endpoint(
            DatagramRecorder, local_addr=("127.0.0.1", 0), remote_addr=("127.0.0.1", port))
        dtr.close()
        await dpr.lost
        server.close()
        await server.wait_closed()

    run(hookloop_loop, main())
    assert recording_executor.calls == []


def test_getaddrinfo_numeric_host_needs_no_executor(hookloop_loop, recording_executor):
    # hookloop's resolver answers numeric hosts itself (asyncio's own loop
    # sends every getaddrinfo to the executor, so it fails this test).
    async def main():
        got = await hookloop_loop.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
        assert got == socket.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)

    run(hookloop_loop, main())
    assert recording_executor.calls == []


def test_numeric_connect_after_executor_shutdown(hookloop_loop):
    async def main():
        await hookloop_loop.shutdown_default_executor()
        server = await hookloop_loop.create_server(Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        tr, pr = await hookloop_loop.create_connection(Recorder, "127.0.0.1", port)
        tr.write(b"x")
        assert await pr.received(1) == b"x"
        tr.close()
        await pr.lost
        server.close()
        await server.wait_closed()

    run(hookloop_loop, main())


def test_unknown_host(hookloop_loop):
    async def main():
        with pytest.raises(socket.gaierror):
            await hookloop_loop.getaddrinfo("no-such-host.invalid", 80)

    run(hookloop_loop, main())
