"""Bad input to the networking methods: the errors asyncio gives."""
from __future__ import annotations

import os
import socket

import pytest
from net_helpers import DatagramRecorder, Recorder, no_fd_leak, read_all, run, run_without_fd_leak


def test_unknown_host_connect(hookloop_loop):
    async def main():
        with pytest.raises(socket.gaierror):
            await hookloop_loop.create_connection(Recorder, "no-such-host.invalid", 80)

    with no_fd_leak():
        run(hookloop_loop, main())


def test_unknown_host_server(hookloop_loop):
    async def main():
        with pytest.raises(socket.gaierror):
            await hookloop_loop.create_server(Recorder, "no-such-host.invalid", 0)

    run(hookloop_loop, main())


def test_unknown_host_datagram(hookloop_loop):
    async def main():
        with pytest.raises(socket.gaierror):
            await hookloop_loop.create_datagram_endpoint(
                DatagramRecorder, remote_addr=("no-such-host.invalid", 53))

    run(hookloop_loop, main())


def test_unknown_host_sock_connect(hookloop_loop):
    async def main():
        s = socket.socket()
        s.setblocking(False)
        try:
            with pytest.raises(socket.gaierror):
                await hookloop_loop.sock_connect(s, ("no-such-host.invalid", 80))
        finally:
            s.close()

    run(hookloop_loop, main())


@pytest.mark.parametrize("port", [65536, 70000, -1])
def test_port_out_of_range_connect(hookloop_loop, port):
    async def main():
        with pytest.raises(OverflowError):
            await hookloop_loop.create_connection(Recorder, "127.0.0.1", port)

    run_without_fd_leak(hookloop_loop, main())


def test_port_out_of_range_server(hookloop_loop):
    async def main():
        with pytest.raises(OverflowError):
            await hookloop_loop.create_server(Recorder, "127.0.0.1", 65536)

    run_without_fd_leak(hookloop_loop, main())


def test_port_out_of_range_datagram(hookloop_loop):
    async def main():
        with pytest.raises(OverflowError):
            await hookloop_loop.create_datagram_endpoint(
                DatagramRecorder, remote_addr=("127.0.0.1", 65536))

    run(hookloop_loop, main())


def test_host_and_sock_connect(hookloop_loop):
    with socket.socket() as s, pytest.raises(ValueError):
        run(hookloop_loop, hookloop_loop.create_connection(Recorder, "127.0.0.1", 80, sock=s))


def test_host_and_sock_server(hookloop_loop):
    with socket.socket() as s, pytest.raises(ValueError):
        run(hookloop_loop, hookloop_loop.create_server(Recorder, "127.0.0.1", 0, sock=s))


def test_addresses_and_sock_datagram(hookloop_loop):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s, pytest.raises(ValueError):
        run(hookloop_loop, hookloop_loop.create_datagram_endpoint(
            DatagramRecorder, local_addr=("127.0.0.1", 0), sock=s))


def test_neither_host_nor_sock(hookloop_loop):
    async def main():
        with pytest.raises(ValueError):
            await hookloop_loop.create_connection(Recorder)

    run(hookloop_loop, main())


def test_datagram_without_address_or_family(hookloop_loop):
    async def main():
        with pytest.raises(ValueError):
            await hookloop_loop.create_datagram_endpoint(DatagramRecorder)

    run(hookloop_loop, main())


def test_datagram_reuse_address_refused(hookloop_loop):
    # Removed in Python 3.11 (SO_REUSEADDR on UDP is a security hole).
    async def main():
        with pytest.raises(TypeError):
            await hookloop_loop.create_datagram_endpoint(
                DatagramRecorder, local_addr=("127.0.0.1", 0), reuse_address=True)

    run(hookloop_loop, main())


def test_ssl_handshake_timeout_without_ssl(hookloop_loop):
    async def main():
        with pytest.raises(ValueError):
            await hookloop_loop.create_connection(Recorder, "127.0.0.1", 80,
                                                  ssl_handshake_timeout=1)
        with pytest.raises(ValueError):
            await hookloop_loop.create_server(Recorder, "127.0.0.1", 0,
                                              ssl_handshake_timeout=1)

    run(hookloop_loop, main())


def test_server_hostname_without_ssl(hookloop_loop):
    async def main():
        with pytest.raises(ValueError):
            await hookloop_loop.create_connection(Recorder, "127.0.0.1", 80,
                                                  server_hostname="example.org")

    run(hookloop_loop, main())


@pytest.mark.parametrize("method", ["sock_recv", "sock_recv_into", "sock_sendall",
                                    "sock_connect", "sock_accept", "sock_recvfrom",
                                    "sock_recvfrom_into", "sock_sendto"])
def test_blocking_socket_refused_in_debug_mode(hookloop_loop, method):
    # asyncio checks sockets for non-blocking mode in debug mode only.
    hookloop_loop.set_debug(True)
    kind = socket.SOCK_DGRAM if "from" in method or "sendto" in method else socket.SOCK_STREAM
    s = socket.socket(socket.AF_INET, kind)
    s.settimeout(2)  # not non-blocking; a loop that accepts it fails, not hangs
    args = {
        "sock_recv": (10,), "sock_recv_into": (bytearray(10),), "sock_sendall": (b"x",),
        "sock_connect": (("127.0.0.1", 9),), "sock_accept": (),
        "sock_recvfrom": (10,), "sock_recvfrom_into": (bytearray(10),),
        "sock_sendto": (b"x", ("127.0.0.1", 9)),
    }[method]
    if method == "sock_accept":
        s.bind(("127.0.0.1", 0))
        s.listen(1)

    async def main():
        with pytest.raises(ValueError):
            await getattr(hookloop_loop, method)(s, *args)

    try:
        run(hookloop_loop, main())
    finally:
        s.close()


def test_write_after_close_is_ignored(hookloop_loop, raw_peer):
    async def main():
        tr, pr, peer = await raw_peer()
        tr.write(b"before")
        tr.close()
        for _ in range(10):
            tr.write(b"after")  # silently dropped, as asyncio does
        await pr.lost
        assert await read_all(hookloop_loop, peer) == b"before"

    run(hookloop_loop, main())


def test_write_after_write_eof(hookloop_loop, raw_peer):
    async def main():
        tr, pr, peer = await raw_peer()
        tr.write_eof()
        with pytest.raises(RuntimeError):
            tr.write(b"too late")
        with pytest.raises(RuntimeError):
            tr.writelines([b"too late"])
        tr.close()
        await pr.lost

    run(hookloop_loop, main())


@pytest.mark.parametrize("data", ["text", 42, None, [b"list"]])
def test_write_wrong_type(hookloop_loop, raw_peer, data):
    async def main():
        tr, pr, peer = await raw_peer()
        with pytest.raises(TypeError):
            tr.write(data)
        tr.close()
        await pr.lost

    run(hookloop_loop, main())


def test_writelines_wrong_item_type(hookloop_loop, raw_peer):
    async def main():
        tr, pr, peer = await raw_peer()
        with pytest.raises(TypeError):
            tr.writelines([b"ok", "text"])
        tr.close()
        await pr.lost

    run(hookloop_loop, main())


@pytest.mark.parametrize("data", ["text", 42])
def test_sendto_wrong_type(hookloop_loop, data):
    async def main():
        tr, pr = await hookloop_loop.create_datagram_endpoint(
            DatagramRecorder, local_addr=("127.0.0.1", 0))
        with pytest.raises(TypeError):
            tr.sendto(data, ("127.0.0.1", 9))
        tr.close()
        await pr.lost

    run(hookloop_loop, main())


def test_sendto_other_address_on_connected_endpoint(hookloop_loop):
    async def main():
        tr, pr = await hookloop_loop.create_datagram_endpoint(
            DatagramRecorder, remote_addr=("127.0.0.1", 9))
        with pytest.raises(ValueError):
            tr.sendto(b"x", ("127.0.0.1", 10))
        tr.close()
        await pr.lost

    run(hookloop_loop, main())


def test_pipe_write_wrong_type(hookloop_loop):
    r, w = os.pipe()

    async def main():
        tr, pr = await hookloop_loop.connect_write_pipe(Recorder, os.fdopen(w, "wb", 0))
        # asyncio checks with an assert (AssertionError); TypeError is the
        # honest type.
        with pytest.raises((TypeError, AssertionError)):
            tr.write("text")
        tr.close()
        await pr.lost

    try:
        run(hookloop_loop, main())
    finally:
        os.close(r)


@pytest.mark.parametrize("method", ["create_connection", "create_server"])
def test_datagram_socket_as_stream_sock(hookloop_loop, method):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s, pytest.raises(ValueError):
        run(hookloop_loop, getattr(hookloop_loop, method)(Recorder, sock=s))


def test_stream_socket_as_datagram_sock(hookloop_loop):
    with socket.socket() as s, pytest.raises(ValueError):
        run(hookloop_loop, hookloop_loop.create_datagram_endpoint(DatagramRecorder, sock=s))


@pytest.mark.parametrize("method", ["create_connection", "create_server",
                                    "connect_accepted_socket"])
@pytest.mark.parametrize("kind", ["fd", "file"])
def test_non_socket_as_sock(hookloop_loop, tmp_path, method, kind):
    # asyncio reads sock.type and fails with AttributeError; TypeError is
    # accepted too (the honest type for "not a socket").
    path = tmp_path / "f"
    path.write_bytes(b"")

    async def main():
        with open(path, "rb") as f:
            sock = f.fileno() if kind == "fd" else f
            with pytest.raises((AttributeError, TypeError)):
                if method == "connect_accepted_socket":
                    await hookloop_loop.connect_accepted_socket(Recorder, sock)
                else:
                    await getattr(hookloop_loop, method)(Recorder, sock=sock)

    run(hookloop_loop, main())


def test_unix_connection_to_tcp_sock(hookloop_loop):
    with socket.socket() as s, pytest.raises(ValueError):
        run(hookloop_loop, hookloop_loop.create_unix_connection(Recorder, sock=s))


def test_sock_recv_into_readonly_buffer(hookloop_loop, hookloop_socketpair):
    a, b = hookloop_socketpair
    b.send(b"x")

    async def main():
        with pytest.raises(TypeError):
            await hookloop_loop.sock_recv_into(a, b"read-only")

    run(hookloop_loop, main())
