"""datagram.py internals: the send queue and its flow control, errors to
error_received, lifecycle order, argument checks, fds on failure paths."""
from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket

import pytest
from net_helpers import (
    DatagramRecorder,
    StaticResolver,
    iterations,
    no_fd_leak,
    resolver_loop,
    run,
)

from hookloop.builtins.network.datagram import DATAGRAM_OVERHEAD, DatagramTransport


@pytest.fixture
def unix_peer(tmp_path):
    """A bound unix datagram socket that reads only when told to, with a
    tiny receive queue, so that senders to it hit EAGAIN quickly."""
    path = str(tmp_path / "peer")
    peer = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    peer.bind(path)
    peer.setblocking(False)
    yield peer, path
    peer.close()


def drain(peer):
    got = []
    while True:
        try:
            got.append(peer.recv(65536))
        except BlockingIOError:
            return got


async def blocked_endpoint(loop, path):
    """A unix datagram endpoint connected to ``path``, sending until EAGAIN."""
    tr, pr = await loop.create_datagram_endpoint(DatagramRecorder, remote_addr=path,
                                                 family=socket.AF_UNIX)
    sent = 0
    while not tr.get_write_buffer_size():
        tr.sendto(b"d%d" % sent)
        sent += 1
    return tr, pr, sent


def test_queue_on_eagain_then_flush_in_order(hookloop_loop, unix_peer):
    peer, path = unix_peer

    async def main():
        tr, pr, sent = await blocked_endpoint(hookloop_loop, path)
        queued_first = b"d%d" % (sent - 1)
        tr.sendto(b"")
        tr.sendto(bytearray(b"later"))
        assert tr.get_write_buffer_size() == (len(queued_first) + 5 + 3 * DATAGRAM_OVERHEAD)
        got = []
        while len(got) < sent + 2:
            got += drain(peer)
            await asyncio.sleep(0)
        assert got == [b"d%d" % i for i in range(sent)] + [b"", b"later"]
        assert tr.get_write_buffer_size() == 0
        tr.close()
        await pr.lost

    run(hookloop_loop, main())


def test_flow_control_pauses_and_resumes(hookloop_loop, unix_peer):
    peer, path = unix_peer

    async def main():
        tr, pr, _ = await blocked_endpoint(hookloop_loop, path)
        tr.set_write_buffer_limits(high=100, low=20)
        while not pr.paused:
            tr.sendto(b"x" * 30)
        assert tr.get_write_buffer_size() > 100
        assert pr.resumed == 0
        while not pr.resumed:
            drain(peer)
            await asyncio.sleep(0)
        assert tr.get_write_buffer_size() <= 20
        assert (pr.paused, pr.resumed) == (1, 1)
        tr.abort()
        await pr.lost

    run(hookloop_loop, main())


def test_close_flushes_the_queue_then_loses_the_connection(hookloop_loop, unix_peer):
    peer, path = unix_peer

    async def main():
        tr, pr, sent = await blocked_endpoint(hookloop_loop, path)
        tr.sendto(b"last")
        tr.close()
        assert tr.is_closing()
        await iterations(3)
        assert not pr.lost.done()  # still flushing
        got = []
        while not pr.lost.done():
            got += drain(peer)
            await asyncio.sleep(0)
        got += drain(peer)
        assert got[-1] == b"last" and len(got) == sent + 1
        assert await pr.lost is None and pr.lost_calls == 1

    run(hookloop_loop, main())


def test_abort_drops_the_queue(hookloop_loop, unix_peer):
    peer, path = unix_peer

    async def main():
        tr, pr, sent = await blocked_endpoint(hookloop_loop, path)
        tr.sendto(b"dropped")
        tr.abort()
        assert tr.get_write_buffer_size() == 0
        assert await pr.lost is None
        got = drain(peer)
        assert b"dropped" not in got and len(got) == sent - 1

    run(hookloop_loop, main())


def test_connected_sendto_after_close_is_dropped_with_a_warning(hookloop_loop, caplog):
    async def main():
        tr, pr = await hookloop_loop.create_datagram_endpoint(
            DatagramRecorder, remote_addr=("127.0.0.1", 9))
        tr.close()
        with caplog.at_level(logging.WARNING, logger="asyncio"):
            for _ in range(3):
                tr.sendto(b"x")
            assert not caplog.records
            for _ in range(3):
                tr.sendto(b"x")
        assert [r.getMessage() for r in caplog.records] == ["socket.send() raised exception."] * 2
        await pr.lost
        assert pr.errors == []

    run(hookloop_loop, main())


def test_unconnected_sendto_after_close_still_sends(hookloop_loop):
    # asyncio drops late datagrams only on connected endpoints; an
    # unconnected one sends them while its socket is still open.
    async def main():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
            receiver.bind(("127.0.0.1", 0))
            receiver.settimeout(5)
            tr, pr = await hookloop_loop.create_datagram_endpoint(
                DatagramRecorder, local_addr=("127.0.0.1", 0))
            tr.close()
            tr.sendto(b"late", receiver.getsockname())
            assert receiver.recv(16) == b"late"
            await pr.lost
            assert pr.errors == []

    run(hookloop_loop, main())


def test_sendto_checks(hookloop_loop):
    async def main():
        server, spr = await hookloop_loop.create_datagram_endpoint(
            DatagramRecorder, local_addr=("127.0.0.1", 0))
        address = server.get_extra_info("sockname")
        tr, pr = await hookloop_loop.create_datagram_endpoint(DatagramRecorder,
                                                              remote_addr=address)
        with pytest.raises(TypeError, match="data argument must be a bytes-like object, "
                                            "not 'str'"):
            tr.sendto("text")
        with pytest.raises(ValueError, match=r"Invalid address: must be None or "
                                             r"\('127.0.0.1', \d+\)"):
            tr.sendto(b"x", ("127.0.0.1", 1))
        tr.sendto(b"to the peer", address)  # its own peer is fine
        assert (await spr.next_datagram())[0] == b"to the peer"
        # No address on an endpoint without a peer: the kernel's answer.
        server.sendto(b"nowhere")
        exc = await spr.next_error()
        assert isinstance(exc, OSError) and exc.errno == errno.EDESTADDRREQ
        for transport, protocol in ((tr, pr), (server, spr)):
            transport.close()
            await protocol.lost

    run(hookloop_loop, main())


def test_connection_made_before_data_and_before_the_call_returns(hookloop_loop):
    order = []

    class Ordered(DatagramRecorder):
        def connection_made(self, transport):
            order.append("made")
            super().connection_made(transport)

    async def main():
        tr, pr = await hookloop_loop.create_datagram_endpoint(Ordered,
                                                              local_addr=("127.0.0.1", 0))
        order.append("returned")
        assert isinstance(tr, DatagramTransport)
        assert isinstance(tr, asyncio.DatagramTransport)
        assert tr.get_extra_info("socket").type == socket.SOCK_DGRAM
        assert tr.get_extra_info("sockname") == tr.get_extra_info("socket").getsockname()
        assert tr.get_extra_info("peername") is None
        assert tr.get_protocol() is pr
        tr.close()
        await pr.lost
        assert order == ["made", "returned"]

    run(hookloop_loop, main())


def test_close_before_reading_started(hookloop_loop):
    async def main():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        protocol = DatagramRecorder()
        transport = DatagramTransport(hookloop_loop, sock, protocol)
        transport.close()  # connection_made and the reader are still queued
        assert await protocol.lost is None
        assert sock.fileno() == -1
        assert hookloop_loop.poller.statistics()["registered_fds"] == 1  # the waker only

    run(hookloop_loop, main())


def test_datagram_received_failure_is_reported_and_reading_goes_on(hookloop_loop,
                                                                  hookloop_errors):
    class Fussy(DatagramRecorder):
        def datagram_received(self, data, addr):
            super().datagram_received(data, addr)
            if data == b"bad":
                raise ZeroDivisionError

    async def main():
        tr, pr = await hookloop_loop.create_datagram_endpoint(Fussy,
                                                              local_addr=("127.0.0.1", 0))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"bad", tr.get_extra_info("sockname"))
            s.sendto(b"good", tr.get_extra_info("sockname"))
            assert (await pr.next_datagram())[0] == b"bad"
            assert (await pr.next_datagram())[0] == b"good"
        hookloop_errors.expect("Exception in callback DatagramTransport._on_readable()",
                               ZeroDivisionError)
        tr.close()
        await pr.lost

    run(hookloop_loop, main())


def test_large_unix_datagram_is_read_whole(hookloop_loop, tmp_path):
    path = str(tmp_path / "big")

    async def main():
        tr, pr = await hookloop_loop.create_datagram_endpoint(
            DatagramRecorder, local_addr=path, family=socket.AF_UNIX)
        payload = os.urandom(150_000)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 400_000)
            s.sendto(payload, path)
            s.sendto(b"small", path)
        assert (await pr.next_datagram())[0] == payload
        assert (await pr.next_datagram())[0] == b"small"
        tr.close()
        await pr.lost

    run(hookloop_loop, main())


def test_unix_bytes_paths_and_stale_socket_file(hookloop_loop, tmp_path):
    path = os.fsencode(tmp_path / "srv")

    async def main():
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as stale:
            stale.bind(path)  # left behind by "an earlier process"
        server, spr = await hookloop_loop.create_datagram_endpoint(
            DatagramRecorder, local_addr=path, family=socket.AF_UNIX)
        client, cpr = await hookloop_loop.create_datagram_endpoint(
            DatagramRecorder, remote_addr=path, family=socket.AF_UNIX)
        client.sendto(b"over unix")
        assert (await spr.next_datagram())[0] == b"over unix"
        for transport, protocol in ((client, cpr), (server, spr)):
            transport.close()
            await protocol.lost

    run(hookloop_loop, main())


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({}, ValueError, "unexpected address family"),
    ({"family": socket.AF_UNIX, "local_addr": ("127.0.0.1", 0)}, TypeError,
     "string is expected"),
    ({"local_addr": "127.0.0.1"}, TypeError, "2-tuple is expected"),
    ({"remote_addr": ("::1", 1, 0, 0)}, TypeError, "2-tuple is expected"),
    ({"local_addr": ("127.0.0.1", 0), "remote_addr": ("::1", 1)}, ValueError,
     "can not get address information"),
    ({"reuse_address": True}, TypeError, "reuse_address"),
])
def test_argument_errors(hookloop_loop, kwargs, error, message):
    with no_fd_leak(), pytest.raises(error, match=message):
        run(hookloop_loop, hookloop_loop.create_datagram_endpoint(DatagramRecorder, **kwargs))


def test_sock_argument_checks(hookloop_loop):
    with socket.socket() as stream, pytest.raises(
            ValueError, match="A datagram socket was expected, got <socket.socket"):
        run(hookloop_loop, hookloop_loop.create_datagram_endpoint(DatagramRecorder, sock=stream))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as dgram, pytest.raises(
            ValueError, match=r"socket modifier keyword arguments can not be used when sock "
                              r"is specified\. \(local_addr=\('127.0.0.1', 0\), "
                              r"reuse_port=True\)"):
        run(hookloop_loop, hookloop_loop.create_datagram_endpoint(
            DatagramRecorder, sock=dgram, local_addr=("127.0.0.1", 0), reuse_port=True))


def test_failing_protocol_factory_closes_the_socket(hookloop_loop):
    def factory():
        raise ZeroDivisionError

    with no_fd_leak(), pytest.raises(ZeroDivisionError):
        run(hookloop_loop, hookloop_loop.create_datagram_endpoint(
            factory, local_addr=("127.0.0.1", 0)))


def test_failing_protocol_factory_leaves_a_given_socket_open(hookloop_loop):
    def factory():
        raise ZeroDivisionError

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        with pytest.raises(ZeroDivisionError):
            run(hookloop_loop, hookloop_loop.create_datagram_endpoint(factory, sock=sock))
        assert sock.fileno() != -1


def test_next_address_pair_after_a_bind_failure(hookloop_backend):
    # The resolver gives two local addresses; the first cannot be bound.
    resolver = StaticResolver({"two.example": [
        (socket.AF_INET, socket.SOCK_DGRAM, 17, "", ("192.0.2.1", 0)),  # not ours
        (socket.AF_INET6, socket.SOCK_DGRAM, 17, "", ("::1", 0, 0, 0)),
    ]})
    loop = resolver_loop(hookloop_backend, resolver)

    async def main():
        try:
            tr, pr = await loop.create_datagram_endpoint(DatagramRecorder,
                                                         local_addr=("two.example", 0))
        except OSError as exc:  # no IPv6 here: the first error is the one raised
            assert exc.errno == errno.EADDRNOTAVAIL
            return
        assert tr.get_extra_info("sockname")[0] == "::1"
        tr.close()
        await pr.lost

    try:
        with no_fd_leak():
            loop.run_until_complete(main())
    finally:
        loop.close()


def test_allow_broadcast_keeps_the_socket_unconnected(hookloop_loop):
    async def main():
        server, spr = await hookloop_loop.create_datagram_endpoint(
            DatagramRecorder, local_addr=("127.0.0.1", 0))
        address = server.get_extra_info("sockname")
        tr, pr = await hookloop_loop.create_datagram_endpoint(
            DatagramRecorder, remote_addr=address, allow_broadcast=True)
        assert tr.get_extra_info("peername") is None
        assert tr.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST)
        tr.sendto(b"via sendto")  # sent to remote_addr all the same
        assert (await spr.next_datagram())[0] == b"via sendto"
        for transport, protocol in ((tr, pr), (server, spr)):
            transport.close()
            await protocol.lost

    run(hookloop_loop, main())
