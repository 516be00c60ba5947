"""connect_read_pipe / connect_write_pipe (builtins/network/pipes.py), on every backend.

Pipes, FIFOs, sockets and character devices (ptys, /dev/null) on both
ends; end of file, a reader that goes away, flow control, write_eof,
abort, refused file types, and no fd left open.  Every wait is a future
with a timeout; "nothing happened" is checked after a few loop iterations
(sleep(0)), never after a timed sleep.
"""
from __future__ import annotations

import asyncio
import errno
import os
import socket

import pytest
from net_helpers import close_and_wait, fd_count, iterations, run


class Reader(asyncio.Protocol):
    def __init__(self):
        loop = asyncio.get_running_loop()
        self.transport = None
        self.events = []
        self.data = bytearray()
        self.lost = loop.create_future()
        self.wanted = None

    def connection_made(self, transport):
        self.events.append("made")
        self.transport = transport

    def data_received(self, data):
        assert self.events == ["made"], self.events
        self.data += data
        if self.wanted is not None and len(self.data) >= self.wanted[0]:
            self.wanted[1].set_result(None)
            self.wanted = None

    def eof_received(self):
        self.events.append("eof")
        return True  # ignored by a read pipe: it closes anyway

    def connection_lost(self, exc):
        self.events.append("lost")
        self.lost.set_result(exc)

    async def until(self, size):
        if len(self.data) < size:
            self.wanted = (size, asyncio.get_running_loop().create_future())
            await self.wanted[1]


class Writer(asyncio.BaseProtocol):
    def __init__(self):
        loop = asyncio.get_running_loop()
        self.transport = None
        self.events = []
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.events.append("made")
        self.transport = transport

    def pause_writing(self):
        self.events.append("pause")

    def resume_writing(self):
        self.events.append("resume")

    def connection_lost(self, exc):
        self.events.append("lost")
        self.lost.set_result(exc)


@pytest.fixture
def pipe_files():
    """A pipe as two unbuffered file objects, closed after the test."""
    r, w = os.pipe()
    rfile, wfile = open(r, "rb", 0), open(w, "wb", 0)
    yield rfile, wfile
    rfile.close()
    wfile.close()


def test_64_mib_through_a_pipe_pair_with_flow_control(hookloop_loop, pipe_files):
    rfile, wfile = pipe_files
    payload = os.urandom(64 * 1024 * 1024)

    async def main():
        loop = asyncio.get_running_loop()
        rt, reader = await loop.connect_read_pipe(Reader, rfile)
        wt, writer = await loop.connect_write_pipe(Writer, wfile)
        assert (reader.events, writer.events) == (["made"], ["made"])
        wt.write(payload)
        assert writer.events == ["made", "pause"]  # a pipe holds 64 KiB, not 64 MiB
        assert wt.get_write_buffer_size() > 0
        wt.close()
        assert wt.is_closing()
        assert await writer.lost is None
        assert await reader.lost is None
        return reader, writer

    reader, writer = run(hookloop_loop, main())
    assert bytes(reader.data) == payload
    assert reader.events == ["made", "eof", "lost"]
    assert writer.events == ["made", "pause", "resume", "lost"]
    assert rfile.closed and wfile.closed


def test_connection_made_runs_before_reading(hookloop_loop, pipe_files):
    rfile, wfile = pipe_files
    wfile.write(b"already there")

    async def main():
        loop = asyncio.get_running_loop()
        transport, reader = await loop.connect_read_pipe(Reader, rfile)
        assert reader.transport is transport  # connection_made ran before connect returned
        await reader.until(13)
        transport.close()
        await reader.lost
        return reader

    reader = run(hookloop_loop, main())
    assert bytes(reader.data) == b"already there"
    assert reader.events == ["made", "lost"]


def test_eof_then_connection_lost_and_the_pipe_is_closed(hookloop_loop, pipe_files):
    rfile, wfile = pipe_files
    before = fd_count()

    async def main():
        loop = asyncio.get_running_loop()
        transport, reader = await loop.connect_read_pipe(Reader, rfile)
        assert transport.get_extra_info("pipe") is rfile
        wfile.write(b"last words")
        wfile.close()
        assert await reader.lost is None
        assert transport.is_closing()
        return reader

    reader = run(hookloop_loop, main())
    assert reader.events == ["made", "eof", "lost"]
    assert bytes(reader.data) == b"last words"
    assert rfile.closed
    assert fd_count() == before - 2


def test_pause_and_resume_reading(hookloop_loop, pipe_files):
    rfile, wfile = pipe_files

    async def main():
        loop = asyncio.get_running_loop()
        transport, reader = await loop.connect_read_pipe(Reader, rfile)
        assert transport.is_reading()
        transport.pause_reading()
        transport.pause_reading()  # twice is harmless
        assert not transport.is_reading()
        wfile.write(b"held back")
        await iterations()
        assert reader.data == b""
        transport.resume_reading()
        assert transport.is_reading()
        await reader.until(9)
        transport.close()
        assert not transport.is_reading()
        transport.resume_reading()  # no effect once closing
        assert not transport.is_reading()
        await reader.lost
        return reader

    reader = run(hookloop_loop, main())
    assert bytes(reader.data) == b"held back"


def test_close_while_paused_loses_the_connection(hookloop_loop, pipe_files):
    rfile, _ = pipe_files

    async def main():
        loop = asyncio.get_running_loop()
        transport, reader = await loop.connect_read_pipe(Reader, rfile)
        transport.pause_reading()
        transport.close()
        assert await reader.lost is None

    run(hookloop_loop, main())
    assert rfile.closed


def test_data_received_failure_is_reported_and_closes(hookloop_loop, hookloop_errors,
                                                       pipe_files):
    rfile, wfile = pipe_files

    class Failing(Reader):
        def data_received(self, data):
            raise ZeroDivisionError

    async def main():
        loop = asyncio.get_running_loop()
        _, reader = await loop.connect_read_pipe(Failing, rfile)
        wfile.write(b"x")
        return await reader.lost

    exc = run(hookloop_loop, main())
    assert isinstance(exc, ZeroDivisionError)
    hookloop_errors.expect("protocol.data_received() call failed", ZeroDivisionError)


def test_write_eof_flushes_then_closes_and_later_writes_are_dropped(hookloop_loop, pipe_files):
    rfile, wfile = pipe_files
    payload = os.urandom(1024 * 1024)

    async def main():
        loop = asyncio.get_running_loop()
        rt, reader = await loop.connect_read_pipe(Reader, rfile)
        wt, writer = await loop.connect_write_pipe(Writer, wfile)
        assert wt.can_write_eof()
        wt.write(payload)
        wt.write_eof()
        assert wt.is_closing()
        wt.write(b"dropped")
        wt.writelines([b"also", b"dropped"])
        wt.write_eof()  # twice is harmless
        assert await writer.lost is None
        assert await reader.lost is None
        return reader

    reader = run(hookloop_loop, main())
    assert bytes(reader.data) == payload
    assert wfile.closed


def test_reader_gone_is_noticed_without_writing(hookloop_loop, pipe_files):
    rfile, wfile = pipe_files

    async def main():
        loop = asyncio.get_running_loop()
        transport, writer = await loop.connect_write_pipe(Writer, wfile)
        rfile.close()
        assert await writer.lost is None  # nothing was buffered
        assert transport.is_closing()
        return writer

    writer = run(hookloop_loop, main())
    assert writer.events == ["made", "lost"]
    assert wfile.closed


def test_reader_gone_with_data_buffered_is_broken_pipe(hookloop_loop, pipe_files):
    rfile, wfile = pipe_files

    async def main():
        loop = asyncio.get_running_loop()
        transport, writer = await loop.connect_write_pipe(Writer, wfile)
        transport.write(b"x" * (1024 * 1024))
        assert transport.get_write_buffer_size() > 0
        rfile.close()
        return await writer.lost

    assert isinstance(run(hookloop_loop, main()), BrokenPipeError)
    assert wfile.closed


def test_write_to_a_pipe_without_reader_loses_quietly(hookloop_loop, pipe_files):
    # The write fails before the loop polls: _fatal_error with BrokenPipeError,
    # which is not reported to the exception handler (the fixture checks).
    rfile, wfile = pipe_files

    async def main():
        loop = asyncio.get_running_loop()
        transport, writer = await loop.connect_write_pipe(Writer, wfile)
        rfile.close()
        transport.write(b"nobody listens")
        assert transport.is_closing()
        exc = await writer.lost
        for _ in range(6):
            transport.write(b"after the loss")  # dropped, warned about, not raised
        return exc

    assert isinstance(run(hookloop_loop, main()), BrokenPipeError)


def test_abort_drops_the_buffer(hookloop_loop, pipe_files):
    rfile, wfile = pipe_files

    async def main():
        loop = asyncio.get_running_loop()
        transport, writer = await loop.connect_write_pipe(Writer, wfile)
        transport.write(b"x" * (1024 * 1024))
        transport.abort()
        assert transport.get_write_buffer_size() == 0
        assert await writer.lost is None

    run(hookloop_loop, main())
    assert wfile.closed
    assert len(os.read(rfile.fileno(), 1024 * 1024)) <= 1024 * 1024 - 1  # not all of it


def test_fifo_both_ends_and_reader_gone(hookloop_loop, tmp_path):
    path = tmp_path / "fifo"
    os.mkfifo(path)
    rfile = open(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb", 0)
    wfile = open(os.open(path, os.O_WRONLY | os.O_NONBLOCK), "wb", 0)

    async def main():
        loop = asyncio.get_running_loop()
        rt, reader = await loop.connect_read_pipe(Reader, rfile)
        wt, writer = await loop.connect_write_pipe(Writer, wfile)
        wt.write(b"through the fifo")
        await reader.until(16)
        rt.close()
        assert await reader.lost is None
        assert await writer.lost is None  # the reader went away
        return reader

    try:
        reader = run(hookloop_loop, main())
    finally:
        rfile.close()
        wfile.close()
    assert bytes(reader.data) == b"through the fifo"


def test_socket_as_pipes(hookloop_loop):
    a, b = socket.socketpair()
    wfile = open(a.detach(), "wb", 0)
    rfile = open(b.detach(), "rb", 0)

    async def main():
        loop = asyncio.get_running_loop()
        rt, reader = await loop.connect_read_pipe(Reader, rfile)
        wt, writer = await loop.connect_write_pipe(Writer, wfile)
        wt.write(b"over a socket")
        await reader.until(13)
        rt.close()  # the write side notices through readability
        assert await reader.lost is None
        assert await writer.lost is None

    try:
        run(hookloop_loop, main())
    finally:
        rfile.close()
        wfile.close()


def test_pty_both_ends_and_eio_is_quiet(hookloop_loop):
    master, slave = os.openpty()
    mfile = open(master, "rb", 0)
    sfile = open(slave, "wb", 0)

    async def main():
        loop = asyncio.get_running_loop()
        rt, reader = await loop.connect_read_pipe(Reader, mfile)
        wt, writer = await loop.connect_write_pipe(Writer, sfile)
        wt.write(b"hi")
        await reader.until(2)
        wt.close()  # the master then reads EIO: lost quietly (the fixture checks)
        assert await writer.lost is None
        return await reader.lost

    try:
        exc = run(hookloop_loop, main())
    finally:
        mfile.close()
        sfile.close()
    assert isinstance(exc, OSError) and exc.errno == errno.EIO


def test_dev_null_as_write_pipe(hookloop_loop):
    wfile = open(os.devnull, "wb", 0)

    async def main():
        loop = asyncio.get_running_loop()
        transport, writer = await loop.connect_write_pipe(Writer, wfile)
        transport.write(b"into the void" * 1000)
        transport.close()
        return await writer.lost

    assert run(hookloop_loop, main()) is None
    assert wfile.closed


def test_dev_null_as_read_pipe(hookloop_loop, hookloop_backend):
    if hookloop_backend == "kqueue":
        pytest.skip("kqueue applies registrations at poll time (here emulated over epoll, "
                    "which refuses /dev/null): the error would surface from poll()")
    rfile = open(os.devnull, "rb", 0)

    async def main():
        loop = asyncio.get_running_loop()
        _, reader = await loop.connect_read_pipe(Reader, rfile)
        return reader, await reader.lost

    if hookloop_backend == "epoll":
        # epoll cannot poll /dev/null (EPERM): connect fails, the pipe is closed.
        with pytest.raises(PermissionError):
            run(hookloop_loop, main())
    else:
        reader, exc = run(hookloop_loop, main())
        assert exc is None  # end of file at once
        assert reader.events == ["made", "eof", "lost"]
    run(hookloop_loop, iterations())
    assert rfile.closed


@pytest.mark.parametrize("method, message", [
    ("connect_read_pipe", "Pipe transport is for pipes/sockets only."),
    ("connect_write_pipe", "Pipe transport is only for pipes, sockets and character devices"),
])
def test_regular_file_is_refused_and_left_open(hookloop_loop, tmp_path, method, message):
    path = tmp_path / "regular"
    path.write_bytes(b"")
    made = []
    with open(path, "rb+", 0) as f:
        with pytest.raises(ValueError) as info:
            run(hookloop_loop, getattr(hookloop_loop, method)(lambda: made.append(1), f))
        assert str(info.value) == message
        assert not f.closed
        assert os.get_blocking(f.fileno())  # untouched
    assert made == [1]  # the factory ran, as asyncio's does


def test_the_fd_is_made_non_blocking(hookloop_loop, pipe_files):
    rfile, wfile = pipe_files
    assert os.get_blocking(rfile.fileno()) and os.get_blocking(wfile.fileno())

    async def main():
        loop = asyncio.get_running_loop()
        rt, reader = await loop.connect_read_pipe(Reader, rfile)
        wt, writer = await loop.connect_write_pipe(Writer, wfile)
        assert not os.get_blocking(rfile.fileno())
        assert not os.get_blocking(wfile.fileno())
        with pytest.raises(RuntimeError, match="is used by transport"):
            loop.add_reader(rfile.fileno(), lambda: None)
        await close_and_wait((wt, writer), (rt, reader))

    run(hookloop_loop, main())


def test_no_fd_leaks(hookloop_loop):
    before = fd_count()

    async def main():
        loop = asyncio.get_running_loop()
        for _ in range(20):
            r, w = os.pipe()
            rt, reader = await loop.connect_read_pipe(Reader, open(r, "rb", 0))
            wt, writer = await loop.connect_write_pipe(Writer, open(w, "wb", 0))
            wt.write(b"ping")
            await reader.until(4)
            wt.close()
            await writer.lost
            await reader.lost

    run(hookloop_loop, main())
    assert fd_count() == before
