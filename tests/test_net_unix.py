"""Unix stream sockets: create_unix_server / create_unix_connection."""
from __future__ import annotations

import os
import pathlib
import socket
import stat
import sys
import uuid

import pytest
from net_helpers import Echo, Recorder, close_server, no_fd_leak, run


@pytest.fixture
def sock_path(tmp_path):
    # AF_UNIX paths are short (108 bytes): keep them under /tmp.
    path = f"/tmp/hl-{uuid.uuid4().hex[:12]}.sock"
    yield path
    if os.path.exists(path):
        os.unlink(path)


async def _roundtrip(loop, path, payload=b"over unix"):
    tr, pr = await loop.create_unix_connection(Recorder, path)
    tr.write(payload)
    got = await pr.received(len(payload))
    tr.close()
    await pr.lost
    return got


def test_unix_roundtrip(hookloop_loop, sock_path):
    async def main():
        server = await hookloop_loop.create_unix_server(Echo, sock_path)
        assert stat.S_ISSOCK(os.stat(sock_path).st_mode)
        assert await _roundtrip(hookloop_loop, sock_path) == b"over unix"
        await close_server(server)

    run(hookloop_loop, main())


def test_unix_path_like(hookloop_loop, sock_path):
    async def main():
        server = await hookloop_loop.create_unix_server(Echo, pathlib.Path(sock_path))
        assert await _roundtrip(hookloop_loop, pathlib.Path(sock_path)) == b"over unix"
        await close_server(server)

    run(hookloop_loop, main())


def test_unix_extra_info(hookloop_loop, sock_path):
    async def main():
        server = await hookloop_loop.create_unix_server(Echo, sock_path)
        tr, pr = await hookloop_loop.create_unix_connection(Recorder, sock_path)
        assert tr.get_extra_info("peername") == sock_path
        assert tr.get_extra_info("socket").family == socket.AF_UNIX
        assert server.sockets[0].getsockname() == sock_path
        tr.close()
        await pr.lost
        await close_server(server)

    run(hookloop_loop, main())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract namespace is Linux's")
def test_unix_abstract_namespace(hookloop_loop):
    name = "\0hookloop-test-" + uuid.uuid4().hex

    async def main():
        server = await hookloop_loop.create_unix_server(Echo, name)
        assert await _roundtrip(hookloop_loop, name) == b"over unix"
        await close_server(server)

    run(hookloop_loop, main())


def test_unix_stale_socket_file_is_replaced(hookloop_loop, sock_path):
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(sock_path)
    stale.close()
    assert os.path.exists(sock_path)

    async def main():
        server = await hookloop_loop.create_unix_server(Echo, sock_path)
        assert await _roundtrip(hookloop_loop, sock_path) == b"over unix"
        await close_server(server)

    run(hookloop_loop, main())


def test_unix_regular_file_is_not_replaced(hookloop_loop, sock_path):
    with open(sock_path, "w") as f:
        f.write("keep me")

    async def main():
        with pytest.raises(OSError):
            await hookloop_loop.create_unix_server(Echo, sock_path)

    run(hookloop_loop, main())
    with open(sock_path) as f:
        assert f.read() == "keep me"


def test_unix_server_close_removes_socket_file(hookloop_loop, sock_path):
    async def main():
        server = await hookloop_loop.create_unix_server(Echo, sock_path)
        await close_server(server)

    run(hookloop_loop, main())
    assert not os.path.exists(sock_path)


def test_unix_server_with_sock(hookloop_loop, sock_path):
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(sock_path)

    async def main():
        server = await hookloop_loop.create_unix_server(Echo, sock=sock)
        assert [s.fileno() for s in server.sockets] == [sock.fileno()]
        assert await _roundtrip(hookloop_loop, sock_path) == b"over unix"
        await close_server(server)

    try:
        run(hookloop_loop, main())
    finally:
        sock.close()


def test_unix_connection_with_sock(hookloop_loop, sock_path):
    async def main():
        server = await hookloop_loop.create_unix_server(Echo, sock_path)
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(sock_path)
        sock.setblocking(False)
        tr, pr = await hookloop_loop.create_unix_connection(Recorder, sock=sock)
        tr.write(b"sock=")
        assert await pr.received(5) == b"sock="
        tr.close()
        await pr.lost
        await close_server(server)

    run(hookloop_loop, main())


def test_unix_connection_missing_path(hookloop_loop, sock_path):
    async def main():
        with pytest.raises(FileNotFoundError):
            await hookloop_loop.create_unix_connection(Recorder, sock_path)

    run(hookloop_loop, main())
    with no_fd_leak():
        run(hookloop_loop, main())


def test_unix_connection_refused_by_stale_socket(hookloop_loop, sock_path):
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(sock_path)
    stale.close()

    async def main():
        with pytest.raises(ConnectionRefusedError):
            await hookloop_loop.create_unix_connection(Recorder, sock_path)

    with no_fd_leak():
        run(hookloop_loop, main())


def test_unix_server_rejects_tcp_sock(hookloop_loop):
    with socket.socket() as sock, pytest.raises(ValueError):
        run(hookloop_loop, hookloop_loop.create_unix_server(Echo, sock=sock))


def test_unix_server_path_and_sock_is_an_error(hookloop_loop, sock_path):
    with socket.socket(socket.AF_UNIX) as sock, pytest.raises(ValueError):
        run(hookloop_loop, hookloop_loop.create_unix_server(Echo, sock_path, sock=sock))


def test_unix_write_eof_half_close(hookloop_loop, sock_path):
    async def main():
        server = await hookloop_loop.create_unix_server(Echo, sock_path)
        tr, pr = await hookloop_loop.create_unix_connection(Recorder, sock_path)
        assert tr.can_write_eof()
        tr.write(b"half")
        tr.write_eof()
        # The echo server answers, then closes on our EOF.
        assert await pr.received(4) == b"half"
        assert await pr.lost is None
        assert pr.events == ["made", "data", "eof", "lost"]
        await close_server(server)

    run(hookloop_loop, main())
