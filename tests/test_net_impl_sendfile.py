"""sock_sendfile and sendfile (builtins/network/sendfile.py), on every backend.

The native path (os.sendfile, spied on to prove it ran), the fallbacks
(a file without an fd, a pipe as the file), offset/count and the file
position afterwards, asyncio's argument errors, cancellation and peers
that leave, and on transports: waiting for the buffer, refusing writes,
pausing reading, flow control of the fallback, and giving the protocol
back.  Small socket buffers make every path wait for writability.
"""
from __future__ import annotations

import asyncio
import errno
import io
import os
import socket

import pytest
from net_helpers import iterations, run

from hookloop.testing import ExceptionRecorder, checked_loop

SMALL_BUFFER = 8 * 1024


def registered(loop):
    return loop.poller.statistics()["registered_fds"]


class Sink(asyncio.Protocol):
    """Collects what arrives; ``until(n)`` waits for ``n`` bytes."""

    def __init__(self):
        loop = asyncio.get_running_loop()
        self.transport = None
        self.data = bytearray()
        self.events = []
        self.lost = loop.create_future()
        self.wanted = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.data += data
        if self.wanted is not None and len(self.data) >= self.wanted[0]:
            self.wanted[1].set_result(None)
            self.wanted = None

    def eof_received(self):
        self.events.append("eof")

    def pause_writing(self):
        self.events.append("pause")

    def resume_writing(self):
        self.events.append("resume")

    def connection_lost(self, exc):
        self.events.append("lost")
        self.lost.set_result(exc)

    async def until(self, size):
        if len(self.data) < size:
            self.wanted = (size, asyncio.get_running_loop().create_future())
            await self.wanted[1]


@pytest.fixture
def data_file(tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    path = tmp_path / "data"
    path.write_bytes(data)
    with open(path, "rb") as f:
        yield f, data


@pytest.fixture
def sendfile_calls(monkeypatch):
    """Counts os.sendfile() calls (the native path)."""
    calls = []
    real = os.sendfile

    def spy(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(os, "sendfile", spy)
    return calls


def small_buffer_pair():
    a, b = socket.socketpair()
    for s in (a, b):
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
    return a, b


@pytest.fixture
def pair():
    a, b = small_buffer_pair()
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def asyncio_loop():
    """asyncio's own loop, to run the same program on and compare with; fails
    on unclaimed exception handler calls as ``hookloop_loop`` does."""
    yield from checked_loop(asyncio.new_event_loop(), ExceptionRecorder())


async def sink_on(sock):
    _, sink = await asyncio.get_running_loop().create_connection(Sink, sock=sock)
    return sink


async def received_after_close(sock, sink):
    sock.close()
    await sink.lost
    sink.transport.close()
    return bytes(sink.data)


# -- sock_sendfile ---------------------------------------------------------

def test_sock_sendfile_native(hookloop_loop, pair, data_file, sendfile_calls):
    a, b = pair
    f, data = data_file

    async def main():
        loop = asyncio.get_running_loop()
        sink = await sink_on(b)
        before = registered(loop)
        sent = await loop.sock_sendfile(a, f)
        assert registered(loop) == before  # no watch left
        return sent, await received_after_close(a, sink)

    sent, got = run(hookloop_loop, main())
    assert sent == len(data) and got == data
    assert f.tell() == len(data)
    assert len(sendfile_calls) > 2  # several writability waits


def test_sock_sendfile_offset_and_count(hookloop_loop, pair, data_file, sendfile_calls):
    a, b = pair
    f, data = data_file

    async def main():
        loop = asyncio.get_running_loop()
        sink = await sink_on(b)
        sent = await loop.sock_sendfile(a, f, 12345, 1_000_000)
        return sent, await received_after_close(a, sink)

    sent, got = run(hookloop_loop, main())
    assert sent == 1_000_000 and got == data[12345:1_012_345]
    assert f.tell() == 1_012_345
    assert sendfile_calls


def test_sock_sendfile_empty_file(hookloop_loop, pair, tmp_path, sendfile_calls):
    a, _ = pair
    path = tmp_path / "empty"
    path.write_bytes(b"")
    with open(path, "rb") as f:
        assert run(hookloop_loop, hookloop_loop.sock_sendfile(a, f)) == 0
        assert f.tell() == 0
    assert sendfile_calls == []


@pytest.mark.parametrize("where", ["socket", "transport"])
def test_offset_at_the_end_sends_nothing_and_moves_the_position(hookloop_loop, pair, data_file,
                                                                where):
    f, data = data_file
    f.seek(123)

    async def main():
        loop = asyncio.get_running_loop()
        if where == "socket":
            return await loop.sock_sendfile(pair[0], f, len(data))
        transport, proto, sink = await transport_pair(*pair)
        sent = await loop.sendfile(transport, f, len(data))
        assert await finish(transport, proto, sink) == b""
        return sent

    assert run(hookloop_loop, main()) == 0
    assert f.tell() == len(data)


def test_sock_sendfile_fallback_for_a_file_without_fd(hookloop_loop, pair, data_file,
                                                      sendfile_calls):
    a, b = pair
    _, data = data_file
    f = io.BytesIO(data)

    async def main():
        loop = asyncio.get_running_loop()
        with pytest.raises(asyncio.SendfileNotAvailableError):
            await loop.sock_sendfile(a, f, fallback=False)
        assert f.tell() == 0
        sink = await sink_on(b)
        sent = await loop.sock_sendfile(a, f, 100, 300_000)
        return sent, await received_after_close(a, sink)

    sent, got = run(hookloop_loop, main())
    assert sent == 300_000 and got == data[100:300_100]
    assert f.tell() == 300_100
    assert sendfile_calls == []


def test_sock_sendfile_fallback_for_a_pipe(hookloop_loop, pair, sendfile_calls):
    # A pipe has an fd but no size (asyncio would send nothing and return 0).
    a, b = pair
    r, w = os.pipe()
    payload = os.urandom(50_000)
    os.write(w, payload)
    os.close(w)

    async def main():
        loop = asyncio.get_running_loop()
        with open(r, "rb", 0) as f:
            with pytest.raises(asyncio.SendfileNotAvailableError, match="not a regular file"):
                await loop.sock_sendfile(a, f, fallback=False)
            sink = await sink_on(b)
            sent = await loop.sock_sendfile(a, f)
        return sent, await received_after_close(a, sink)

    sent, got = run(hookloop_loop, main())
    assert sent == len(payload) and got == payload
    assert sendfile_calls == []


def test_sock_sendfile_refused_by_the_kernel_falls_back(hookloop_loop, pair, data_file,
                                                       monkeypatch):
    # os.sendfile() failing before the first byte means "not available here".
    a, b = pair
    f, data = data_file

    def refuse(*args):
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(os, "sendfile", refuse)

    async def main():
        loop = asyncio.get_running_loop()
        with pytest.raises(asyncio.SendfileNotAvailableError) as info:
            await loop.sock_sendfile(a, f, 7, fallback=False)
        assert isinstance(info.value.__cause__, OSError)
        assert f.tell() == 7  # at the offset, as asyncio 3.14 leaves it
        sink = await sink_on(b)
        sent = await loop.sock_sendfile(a, f, 7)
        return sent, await received_after_close(a, sink)

    sent, got = run(hookloop_loop, main())
    assert sent == len(data) - 7 and got == data[7:]
    assert f.tell() == len(data)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"offset": -1}, ValueError, "offset must be a non-negative integer (got -1)"),
    ({"offset": 1.5}, TypeError, "offset must be a non-negative integer (got 1.5)"),
    ({"count": 0}, ValueError, "count must be a positive integer (got 0)"),
    ({"count": "1"}, TypeError, "count must be a positive integer (got '1')"),
])
def test_sock_sendfile_argument_errors(hookloop_loop, pair, data_file, kwargs, error, message):
    a, _ = pair
    f, _ = data_file
    with pytest.raises(error) as info:
        run(hookloop_loop, hookloop_loop.sock_sendfile(a, f, **kwargs))
    assert str(info.value) == message


def test_sock_sendfile_refuses_text_files_datagrams_and_transport_sockets(
        hookloop_loop, pair, tmp_path, data_file):
    a, b = pair
    f, _ = data_file
    path = tmp_path / "text"
    path.write_text("text")
    with open(path) as text, pytest.raises(ValueError, match="file should be opened in binary"):
        run(hookloop_loop, hookloop_loop.sock_sendfile(a, text))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.setblocking(False)
        with pytest.raises(ValueError, match="only SOCK_STREAM type sockets are supported"):
            run(hookloop_loop, hookloop_loop.sock_sendfile(udp, f))

    async def main():
        loop = asyncio.get_running_loop()
        sink = await sink_on(b)
        with pytest.raises(RuntimeError, match="is used by transport"):
            await loop.sock_sendfile(b, f)
        sink.transport.close()
        await sink.lost

    run(hookloop_loop, main())
    assert f.tell() == 0


def test_sock_sendfile_cancelled_leaves_no_watch_and_the_position(hookloop_loop, pair,
                                                                   data_file):
    a, b = pair  # nobody reads b: a fills up and sock_sendfile waits
    f, data = data_file

    async def main():
        loop = asyncio.get_running_loop()
        before = registered(loop)
        task = asyncio.ensure_future(loop.sock_sendfile(a, f, 1000))
        await iterations()
        assert registered(loop) == before + 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await iterations()
        assert registered(loop) == before

    run(hookloop_loop, main())
    a.shutdown(socket.SHUT_WR)
    got = bytearray()
    b.setblocking(True)
    while chunk := b.recv(65536):
        got += chunk
    assert 0 < len(got) < len(data) - 1000
    assert bytes(got) == data[1000:1000 + len(got)]
    assert f.tell() == 1000 + len(got)


def test_sock_sendfile_peer_leaves_midway(hookloop_loop, pair, data_file):
    a, b = pair
    f, data = data_file

    async def main():
        loop = asyncio.get_running_loop()
        before = registered(loop)
        task = asyncio.ensure_future(loop.sock_sendfile(a, f))
        await iterations()
        assert not task.done()
        b.close()
        with pytest.raises(ConnectionError):
            await task
        assert registered(loop) == before

    run(hookloop_loop, main())
    assert 0 < f.tell() < len(data)


# -- loop.sendfile on transports -------------------------------------------

async def transport_pair(a, b):
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_connection(Sink, sock=a)
    sink = await sink_on(b)
    return transport, proto, sink


async def finish(transport, proto, sink):
    transport.close()
    await proto.lost
    await sink.lost
    sink.transport.close()
    return bytes(sink.data)


def test_sendfile_native_waits_for_the_buffer_and_refuses_writes(hookloop_loop, pair, data_file,
                                                                   sendfile_calls):
    f, data = data_file
    prefix = os.urandom(2 * 1024 * 1024)

    async def main():
        transport, proto, sink = await transport_pair(*pair)
        sink.transport.pause_reading()
        transport.write(prefix)
        assert transport.get_write_buffer_size() > 0
        task = asyncio.ensure_future(hookloop_loop.sendfile(transport, f, 10))
        await iterations()
        assert not transport.is_reading()
        assert sendfile_calls == []  # the buffer goes first
        with pytest.raises(RuntimeError, match="sendfile is in progress"):
            transport.write(b"in between")
        with pytest.raises(RuntimeError, match="sendfile is in progress"):
            transport.writelines([b"in between"])
        with pytest.raises(RuntimeError, match="already in progress"):
            await hookloop_loop.sendfile(transport, f)
        sink.transport.resume_reading()
        sent = await task
        assert transport.is_reading()
        transport.write(b"suffix")
        return sent, await finish(transport, proto, sink)

    sent, got = run(hookloop_loop, main())
    assert sent == len(data) - 10
    assert got == prefix + data[10:] + b"suffix"
    assert f.tell() == len(data)
    assert sendfile_calls


@pytest.mark.parametrize("how", ["close", "abort"])
def test_sendfile_native_transport_closed_midway(hookloop_loop, pair, data_file, how):
    f, data = data_file

    async def main():
        loop = asyncio.get_running_loop()
        before = registered(loop)
        transport, proto, sink = await transport_pair(*pair)
        sink.transport.pause_reading()
        task = asyncio.ensure_future(loop.sendfile(transport, f))
        await iterations()
        assert not task.done()
        getattr(transport, how)()
        with pytest.raises(ConnectionError):
            await task
        assert await proto.lost is None
        sink.transport.close()
        await sink.lost
        assert registered(loop) == before

    run(hookloop_loop, main())
    assert 0 < f.tell() < len(data)


def test_sendfile_native_peer_leaves_midway(hookloop_loop, pair, data_file):
    f, data = data_file

    async def main():
        loop = asyncio.get_running_loop()
        transport, proto, sink = await transport_pair(*pair)
        await sink.until(0)
        task = asyncio.ensure_future(loop.sendfile(transport, f))
        await sink.until(100_000)
        sink.transport.abort()
        with pytest.raises(ConnectionError):
            await task
        await proto.lost  # reading resumed and noticed the peer leaving
        assert transport.is_closing()

    run(hookloop_loop, main())
    assert 100_000 <= f.tell() < len(data)


def test_sendfile_fallback_hides_flow_control_and_restores_the_protocol(
        hookloop_loop, pair, data_file, sendfile_calls):
    _, data = data_file
    f = io.BytesIO(data)

    async def main():
        loop = asyncio.get_running_loop()
        transport, proto, sink = await transport_pair(*pair)
        transport.set_write_buffer_limits(high=16 * 1024)
        with pytest.raises(asyncio.SendfileNotAvailableError):
            await loop.sendfile(transport, f, fallback=False)
        assert transport.is_reading() and transport.get_protocol() is proto
        sent = await loop.sendfile(transport, f, 5, 2_000_000)
        assert transport.get_protocol() is proto
        assert transport.is_reading()
        assert proto.events == []  # the gate heard pause/resume_writing, not proto
        return sent, await finish(transport, proto, sink)

    sent, got = run(hookloop_loop, main())
    assert sent == 2_000_000 and got == data[5:2_000_005]
    assert f.tell() == 2_000_005
    assert sendfile_calls == []


def test_sendfile_fallback_waits_when_the_protocol_was_already_paused(hookloop_loop, pair,
                                                                       data_file):
    _, data = data_file
    f = io.BytesIO(data)
    prefix = os.urandom(1024 * 1024)

    async def main():
        loop = asyncio.get_running_loop()
        transport, proto, sink = await transport_pair(*pair)
        sink.transport.pause_reading()
        transport.write(prefix)
        assert proto.events == ["pause"]
        task = asyncio.ensure_future(loop.sendfile(transport, f))
        await iterations(20)
        assert transport.get_write_buffer_size() < len(prefix) + 256 * 1024
        sink.transport.resume_reading()
        sent = await task
        assert proto.events == ["pause", "resume"]  # the resume the gate took, given back
        return sent, await finish(transport, proto, sink)

    sent, got = run(hookloop_loop, main())
    assert sent == len(data) and got == prefix + data


def _fallback_peer_leaves_midway(loop, data):
    """The fallback writing to a transport whose peer aborts after 100 kB:
    what sendfile() raises, what the protocol is told, where the file is."""
    f = io.BytesIO(data)
    a, b = small_buffer_pair()

    async def main():
        transport, proto, sink = await transport_pair(a, b)
        transport.set_write_buffer_limits(high=16 * 1024)
        task = asyncio.ensure_future(loop.sendfile(transport, f))
        await sink.until(100_000)
        sink.transport.abort()
        with pytest.raises(ConnectionError) as raised:
            await task
        lost = await proto.lost
        await iterations()  # a second connection_lost would have run by now
        return (type(raised.value), str(raised.value), type(lost), proto.events,
                transport.is_closing())

    try:
        observed = run(loop, main())
    finally:
        a.close()
        b.close()
    assert 100_000 <= f.tell() < len(data)
    return observed


def test_sendfile_fallback_peer_leaves_midway(hookloop_loop, asyncio_loop, data_file):
    # Reading is paused while the fallback writes, so the peer's leaving
    # shows as the next send() failing (EPIPE on Linux): the transport dies
    # of that error and connection_lost gets it -- not None, which would say
    # the connection was closed cleanly -- once, passed on by the stand-in
    # protocol, with no eof_received and no flow control leaking through.
    # sendfile() raises ConnectionError.  Same program on asyncio's loop,
    # same observation.
    _, data = data_file
    reference = _fallback_peer_leaves_midway(asyncio_loop, data)
    raised, message, lost, events, closing = reference
    assert (raised, message, events, closing) == (
        ConnectionError, "Connection closed by peer", ["lost"], True)
    assert lost in (BrokenPipeError, ConnectionResetError)
    assert _fallback_peer_leaves_midway(hookloop_loop, data) == reference


def test_sendfile_to_a_write_pipe(hookloop_loop, data_file):
    f, data = data_file
    r, w = os.pipe()
    rfile, wfile = open(r, "rb", 0), open(w, "wb", 0)

    async def main():
        loop = asyncio.get_running_loop()
        rt, reader = await loop.connect_read_pipe(Sink, rfile)
        wt, writer = await loop.connect_write_pipe(Sink, wfile)
        with pytest.raises(RuntimeError, match="fallback is disabled"):
            await loop.sendfile(wt, f, fallback=False)
        sent = await loop.sendfile(wt, f, 0, 1_000_000)
        wt.close()
        await writer.lost
        await reader.lost
        return sent, bytes(reader.data)

    try:
        sent, got = run(hookloop_loop, main())
    finally:
        rfile.close()
        wfile.close()
    assert sent == 1_000_000 and got == data[:1_000_000]


def test_sendfile_unsupported_and_closing_transports(hookloop_loop, pair, data_file):
    f, _ = data_file
    r, w = os.pipe()
    rfile = open(r, "rb", 0)

    async def main():
        loop = asyncio.get_running_loop()
        rt, reader = await loop.connect_read_pipe(Sink, rfile)
        with pytest.raises(RuntimeError, match="sendfile is not supported for transport"):
            await loop.sendfile(rt, f)
        rt.close()
        await reader.lost
        transport, proto, sink = await transport_pair(*pair)
        with pytest.raises(ValueError, match="offset must be a non-negative integer"):
            await loop.sendfile(transport, f, -1)
        transport.close()
        with pytest.raises(RuntimeError, match="Transport is closing"):
            await loop.sendfile(transport, f)
        await proto.lost
        sink.transport.close()
        await sink.lost

    try:
        run(hookloop_loop, main())
    finally:
        os.close(w)
    assert f.tell() == 0
