"""Datagram endpoints: create_datagram_endpoint, UDP and unix datagram,
flow control and error_received."""
from __future__ import annotations

import asyncio
import os
import socket
import uuid

import pytest
from net_helpers import (
    DatagramEcho,
    DatagramRecorder,
    close_and_wait,
    has_ipv6,
    no_fd_leak,
    run,
    run_without_fd_leak,
)


def _closed_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    address = s.getsockname()
    s.close()
    return address


async def _echo_endpoint(loop):
    tr, pr = await loop.create_datagram_endpoint(DatagramEcho, local_addr=("127.0.0.1", 0))
    return tr, pr, tr.get_extra_info("sockname")


def test_udp_connected_roundtrip(hookloop_loop):
    async def main():
        etr, epr, addr = await _echo_endpoint(hookloop_loop)
        tr, pr = await hookloop_loop.create_datagram_endpoint(DatagramRecorder, remote_addr=addr)
        assert tr.get_extra_info("peername") == addr
        tr.sendto(b"one")
        tr.sendto(b"two", None)
        got = [await pr.next_datagram(), await pr.next_datagram()]
        assert sorted(d for d, _ in got) == [b"one", b"two"]
        assert all(a == addr for _, a in got)
        assert sorted(d for d, _ in epr.datagrams) == [b"one", b"two"]
        assert await close_and_wait((tr, pr), (etr, epr)) == [None, None]

    run(hookloop_loop, main())


def test_udp_unconnected_sendto(hookloop_loop):
    async def main():
        etr, epr, addr = await _echo_endpoint(hookloop_loop)
        tr, pr = await hookloop_loop.create_datagram_endpoint(
            DatagramRecorder, local_addr=("127.0.0.1", 0))
        tr.sendto(b"hi", addr)
        data, source = await pr.next_datagram()
        assert (data, source) == (b"hi", addr)
        assert epr.datagrams == [(b"hi", tr.get_extra_info("sockname"))]
        await close_and_wait((tr, pr), (etr, epr))

    run(hookloop_loop, main())


def test_udp_empty_datagram(hookloop_loop):
    async def main():
        etr, epr, addr = await _echo_endpoint(hookloop_loop)
        tr, pr = await hookloop_loop.create_datagram_endpoint(DatagramRecorder, remote_addr=addr)
        tr.sendto(b"")
        assert (await pr.next_datagram())[0] == b""
        await close_and_wait((tr, pr), (etr, epr))

    run(hookloop_loop, main())


def test_udp_local_and_remote_addr(hookloop_loop):
    async def main():
        etr, epr, addr = await _echo_endpoint(hookloop_loop)
        tr, pr = await hookloop_loop.create_datagram_endpoint(
            DatagramRecorder, local_addr=("127.0.0.2", 0), remote_addr=addr)
        assert tr.get_extra_info("sockname")[0] == "127.0.0.2"
        tr.sendto(b"x")
        await pr.next_datagram()
        assert epr.datagrams[0][1][0] == "127.0.0.2"
        await close_and_wait((tr, pr), (etr, epr))

    run(hookloop_loop, main())


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6])
def test_udp_family_without_addresses(hookloop_loop, family):
    if family == socket.AF_INET6 and not has_ipv6():
        pytest.skip("no IPv6 on this machine")

    async def main():
        tr, pr = await hookloop_loop.create_datagram_endpoint(DatagramRecorder, family=family)
        assert tr.get_extra_info("socket").family == family
        tr.close()
        await pr.lost

    run(hookloop_loop, main())


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT here")
def test_udp_reuse_port(hookloop_loop):
    async def main():
        t1, p1 = await hookloop_loop.create_datagram_endpoint(
            DatagramRecorder, local_addr=("127.0.0.1", 0), reuse_port=True)
        addr = t1.get_extra_info("sockname")
        t2, p2 = await hookloop_loop.create_datagram_endpoint(
            DatagramRecorder, local_addr=addr, reuse_port=True)
        assert t2.get_extra_info("sockname") == addr
        assert t2.get_extra_info("socket").getsockopt(
            socket.SOL_SOCKET, socket.SO_REUSEPORT) != 0
        await close_and_wait((t1, p1), (t2, p2))

    run(hookloop_loop, main())


def test_udp_address_in_use_without_reuse_port(hookloop_loop):
    async def main():
        t1, p1 = await hookloop_loop.create_datagram_endpoint(
            DatagramRecorder, local_addr=("127.0.0.1", 0))
        with pytest.raises(OSError):
            await hookloop_loop.create_datagram_endpoint(
                DatagramRecorder, local_addr=t1.get_extra_info("sockname"))
        t1.close()
        await p1.lost

    run_without_fd_leak(hookloop_loop, main())


@pytest.mark.parametrize("allow", [True, False])
def test_udp_allow_broadcast(hookloop_loop, allow):
    async def main():
        tr, pr = await hookloop_loop.create_datagram_endpoint(
            DatagramRecorder, local_addr=("127.0.0.1", 0), allow_broadcast=allow)
        value = tr.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST)
        assert bool(value) is allow
        tr.close()
        await pr.lost

    run(hookloop_loop, main())


def test_udp_with_sock(hookloop_loop):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)

    async def main():
        etr, epr, addr = await _echo_endpoint(hookloop_loop)
        tr, pr = await hookloop_loop.create_datagram_endpoint(DatagramRecorder, sock=sock)
        assert tr.get_extra_info("socket").fileno() == sock.fileno()
        tr.sendto(b"by sock", addr)
        assert (await pr.next_datagram())[0] == b"by sock"
        await close_and_wait((tr, pr), (etr, epr))

    try:
        run(hookloop_loop, main())
    finally:
        sock.close()


@pytest.fixture
def dgram_paths():
    paths = [f"/tmp/hl-{uuid.uuid4().hex[:12]}.dgram" for _ in range(2)]
    yield paths
    for p in paths:
        if os.path.exists(p):
            os.unlink(p)


def test_unix_datagram(hookloop_loop, dgram_paths):
    server_path, client_path = dgram_paths

    async def main():
        etr, epr = await hookloop_loop.create_datagram_endpoint(
            DatagramEcho, local_addr=server_path, family=socket.AF_UNIX)
        tr, pr = await hookloop_loop.create_datagram_endpoint(
            DatagramRecorder, local_addr=client_path, remote_addr=server_path,
            family=socket.AF_UNIX)
        tr.sendto(b"unix dgram")
        assert await pr.next_datagram() == (b"unix dgram", server_path)
        assert epr.datagrams == [(b"unix dgram", client_path)]
        await close_and_wait((tr, pr), (etr, epr))

    run(hookloop_loop, main())


def test_datagram_flow_control(hookloop_loop, dgram_paths):
    # A unix datagram socket whose peer does not read makes send() block:
    # the transport buffers, pauses the protocol past the high-water mark,
    # and resumes once the peer drains.
    reader = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    reader.bind(dgram_paths[0])
    reader.setblocking(False)
    sent = [b"%06d" % i + b"." * 994 for i in range(2000)]

    async def main():
        tr, pr = await hookloop_loop.create_datagram_endpoint(
            DatagramRecorder, remote_addr=dgram_paths[0], family=socket.AF_UNIX)
        assert tr.get_write_buffer_size() == 0
        tr.set_write_buffer_limits(high=4096, low=1024)
        assert tr.get_write_buffer_limits() == (1024, 4096)
        for d in sent:
            tr.sendto(d)
        assert tr.get_write_buffer_size() > 4096
        assert pr.paused == 1
        received = []
        while len(received) < len(sent):
            received.append(await hookloop_loop.sock_recv(reader, 2000))
        await pr.resume_event.wait()
        assert pr.resumed == 1
        assert tr.get_write_buffer_size() == 0
        assert received == sent
        tr.close()
        await pr.lost

    try:
        run(hookloop_loop, main())
    finally:
        reader.close()


def test_udp_error_received_on_port_unreachable(hookloop_loop):
    async def main():
        tr, pr = await hookloop_loop.create_datagram_endpoint(
            DatagramRecorder, remote_addr=_closed_udp_port())
        tr.sendto(b"anyone?")
        exc = await pr.next_error()
        assert isinstance(exc, ConnectionRefusedError)
        assert not tr.is_closing()
        assert not pr.lost.done()
        tr.close()
        assert await pr.lost is None
        assert pr.lost_calls == 1

    run(hookloop_loop, main())


def test_udp_burst_to_closed_port_keeps_transport_usable(hookloop_loop):
    async def main():
        tr, pr = await hookloop_loop.create_datagram_endpoint(
            DatagramRecorder, remote_addr=_closed_udp_port())
        for i in range(500):
            tr.sendto(b"burst %d" % i)
        exc = await pr.next_error()
        assert isinstance(exc, ConnectionRefusedError)
        # Every error is a ConnectionRefusedError, reported to the protocol
        # and not to the loop's exception handler (the fixture checks that).
        assert all(isinstance(e, ConnectionRefusedError) for e in pr.errors)
        tr.sendto(b"still here")
        exc = await pr.next_error()
        assert isinstance(exc, ConnectionRefusedError)
        assert not tr.is_closing()
        tr.close()
        await pr.lost
        assert pr.lost_calls == 1

    run(hookloop_loop, main())


def test_udp_burst_all_delivered(hookloop_loop):
    async def main():
        etr, epr, addr = await _echo_endpoint(hookloop_loop)
        tr, pr = await hookloop_loop.create_datagram_endpoint(DatagramRecorder, remote_addr=addr)
        sent = [b"%04d" % i for i in range(200)]
        for d in sent:
            tr.sendto(d)
        got = [(await pr.next_datagram())[0] for _ in sent]
        assert sorted(got) == sent
        assert tr.get_write_buffer_size() == 0
        await close_and_wait((tr, pr), (etr, epr))

    run(hookloop_loop, main())


def test_datagram_abort(hookloop_loop):
    async def main():
        tr, pr = await hookloop_loop.create_datagram_endpoint(
            DatagramRecorder, local_addr=("127.0.0.1", 0))
        tr.abort()
        assert tr.is_closing()
        assert await pr.lost is None
        await asyncio.sleep(0)
        assert pr.lost_calls == 1

    run_without_fd_leak(hookloop_loop, main())


def test_datagram_close_leaks_nothing(hookloop_loop):
    async def main():
        for _ in range(50):
            tr, pr = await hookloop_loop.create_datagram_endpoint(
                DatagramRecorder, local_addr=("127.0.0.1", 0))
            tr.close()
            await pr.lost

    run(hookloop_loop, main())
    with no_fd_leak():
        run(hookloop_loop, main())
