"""The low-level sock_* coroutines."""
from __future__ import annotations

import asyncio
import os
import socket

import pytest
from net_helpers import barrier, hanging_address, refused_address, run, run_without_fd_leak


@pytest.fixture
def listener():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    s.setblocking(False)
    yield s
    s.close()


@pytest.fixture
def udp_pair():
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for s in (a, b):
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
    yield a, b
    a.close()
    b.close()


def _client():
    s = socket.socket()
    s.setblocking(False)
    return s


def test_sock_connect_accept_sendall_recv(hookloop_loop, listener):
    async def main():
        client = _client()
        try:
            accept = asyncio.ensure_future(hookloop_loop.sock_accept(listener))
            await hookloop_loop.sock_connect(client, listener.getsockname())
            conn, addr = await accept
            with conn:
                assert addr == client.getsockname()
                assert conn.gettimeout() == 0
                await hookloop_loop.sock_sendall(client, b"hello")
                got = b""
                while len(got) < 5:
                    got += await hookloop_loop.sock_recv(conn, 100)
                assert got == b"hello"
                conn.close()
                assert await hookloop_loop.sock_recv(client, 100) == b""
        finally:
            client.close()

    run(hookloop_loop, main())


def test_sock_accept_waits_for_a_client(hookloop_loop, listener):
    async def main():
        accept = asyncio.ensure_future(hookloop_loop.sock_accept(listener))
        await barrier(hookloop_loop)
        assert not accept.done()
        client = socket.create_connection(listener.getsockname())
        conn, _ = await accept
        conn.close()
        client.close()

    run(hookloop_loop, main())


def test_sock_connect_by_name(hookloop_loop, listener):
    async def main():
        client = _client()
        try:
            await hookloop_loop.sock_connect(client, ("localhost", listener.getsockname()[1]))
            assert client.getpeername() == listener.getsockname()
        finally:
            client.close()

    run(hookloop_loop, main())


def test_sock_connect_refused(hookloop_loop):
    async def main(addr):
        client = _client()
        try:
            with pytest.raises(ConnectionRefusedError):
                await hookloop_loop.sock_connect(client, addr)
        finally:
            client.close()

    with refused_address() as addr:
        run(hookloop_loop, main(addr))


def test_sock_connect_unix(hookloop_loop, tmp_path):
    path = f"/tmp/hl-sockops-{id(tmp_path)}.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(1)

    async def main():
        client = socket.socket(socket.AF_UNIX)
        client.setblocking(False)
        try:
            await hookloop_loop.sock_connect(client, path)
            assert client.getpeername() == path
        finally:
            client.close()

    try:
        run(hookloop_loop, main())
    finally:
        server.close()
        os.unlink(path)


def test_sock_recv_into(hookloop_socketpair, hookloop_loop):
    a, b = hookloop_socketpair

    async def main():
        buf = bytearray(10)
        b.send(b"abc")
        n = await hookloop_loop.sock_recv_into(a, buf)
        assert buf[:n] == b"abc"
        view = memoryview(buf)[5:]
        b.send(b"defghijkl")
        n = await hookloop_loop.sock_recv_into(a, view)
        assert n == 5
        assert buf[5:] == b"defgh"

    run(hookloop_loop, main())


def test_sock_recv_waits_for_data(hookloop_socketpair, hookloop_loop):
    a, b = hookloop_socketpair

    async def main():
        recv = asyncio.ensure_future(hookloop_loop.sock_recv(a, 100))
        await barrier(hookloop_loop)
        assert not recv.done()
        b.send(b"late")
        assert await recv == b"late"

    run(hookloop_loop, main())


def test_sock_recv_cancelled_loses_no_data(hookloop_socketpair, hookloop_loop):
    a, b = hookloop_socketpair

    async def main():
        recv = asyncio.ensure_future(hookloop_loop.sock_recv(a, 100))
        await barrier(hookloop_loop)
        recv.cancel()
        with pytest.raises(asyncio.CancelledError):
            await recv
        b.send(b"kept")
        assert await hookloop_loop.sock_recv(a, 100) == b"kept"
        # The cancelled wait left nothing registered on the fd.
        hookloop_loop.add_reader(a, lambda: None)
        assert hookloop_loop.remove_reader(a)

    run(hookloop_loop, main())


def test_sock_sendall_large(hookloop_socketpair, hookloop_loop):
    a, b = hookloop_socketpair
    payload = bytes(range(256)) * (16 * 1024)  # 4 MiB

    async def reader():
        got = bytearray()
        while len(got) < len(payload):
            got += await hookloop_loop.sock_recv(b, 1 << 16)
        return bytes(got)

    async def main():
        r = asyncio.ensure_future(reader())
        assert await hookloop_loop.sock_sendall(a, payload) is None
        assert await r == payload

    run(hookloop_loop, main())


def test_sock_sendall_to_closed_peer(hookloop_socketpair, hookloop_loop):
    a, b = hookloop_socketpair
    b.close()

    async def main():
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            await hookloop_loop.sock_sendall(a, b"x" * (8 << 20))

    run(hookloop_loop, main())


def test_sock_sendto_and_recvfrom(hookloop_loop, udp_pair):
    a, b = udp_pair

    async def main():
        n = await hookloop_loop.sock_sendto(a, b"datagram", b.getsockname())
        assert n == 8
        data, addr = await hookloop_loop.sock_recvfrom(b, 100)
        assert (data, addr) == (b"datagram", a.getsockname())

    run(hookloop_loop, main())


def test_sock_recvfrom_into(hookloop_loop, udp_pair):
    a, b = udp_pair

    async def main():
        buf = bytearray(100)
        await hookloop_loop.sock_sendto(a, b"into", b.getsockname())
        n, addr = await hookloop_loop.sock_recvfrom_into(b, buf)
        assert (buf[:n], addr) == (b"into", a.getsockname())
        await hookloop_loop.sock_sendto(a, b"truncated", b.getsockname())
        n, addr = await hookloop_loop.sock_recvfrom_into(b, buf, 5)
        assert n == 5
        assert buf[:5] == b"trunc"

    run(hookloop_loop, main())


def test_sock_recvfrom_waits(hookloop_loop, udp_pair):
    a, b = udp_pair

    async def main():
        recv = asyncio.ensure_future(hookloop_loop.sock_recvfrom(b, 100))
        await barrier(hookloop_loop)
        assert not recv.done()
        a.sendto(b"later", b.getsockname())
        assert (await recv)[0] == b"later"

    run(hookloop_loop, main())


def test_sock_connect_cancelled_leaks_nothing(hookloop_loop):
    async def main(hanging):
        client = _client()
        try:
            task = asyncio.ensure_future(hookloop_loop.sock_connect(client, hanging))
            await barrier(hookloop_loop)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            hookloop_loop.add_writer(client, lambda: None)
            assert hookloop_loop.remove_writer(client)
        finally:
            client.close()

    with hanging_address() as hanging:
        run_without_fd_leak(hookloop_loop, main(hanging))
