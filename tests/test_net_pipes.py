"""connect_read_pipe / connect_write_pipe: os.pipe, FIFOs, ptys."""
from __future__ import annotations

import errno
import os
import socket

import pytest
from net_helpers import KeepOpen, Recorder, barrier, close_and_wait, no_fd_leak, run


@pytest.fixture
def pipe():
    """(read file, write file), both non-blocking, closed after the test."""
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    rf = os.fdopen(r, "rb", buffering=0)
    wf = os.fdopen(w, "wb", buffering=0)
    yield rf, wf
    for f in (rf, wf):
        if not f.closed:
            f.close()


def test_read_pipe_data_then_eof(hookloop_loop, pipe):
    rf, wf = pipe

    async def main():
        tr, pr = await hookloop_loop.connect_read_pipe(Recorder, rf)
        assert tr.get_extra_info("pipe") is rf
        wf.write(b"through the pipe")
        assert await pr.received(16) == b"through the pipe"
        wf.close()
        assert await pr.lost is None
        assert pr.events == ["made", "data", "eof", "lost"]
        assert pr.lost_calls == 1

    run(hookloop_loop, main())


def test_read_pipe_pause_resume(hookloop_loop, pipe):
    rf, wf = pipe

    async def main():
        tr, pr = await hookloop_loop.connect_read_pipe(Recorder, rf)
        tr.pause_reading()
        assert not tr.is_reading()
        wf.write(b"held")
        await barrier(hookloop_loop)
        assert pr.data == b""
        tr.resume_reading()
        assert tr.is_reading()
        assert await pr.received(4) == b"held"
        tr.close()
        assert await pr.lost is None

    run(hookloop_loop, main())


def test_read_pipe_close(hookloop_loop, pipe):
    rf, wf = pipe

    async def main():
        tr, pr = await hookloop_loop.connect_read_pipe(Recorder, rf)
        assert not tr.is_closing()
        tr.close()
        assert tr.is_closing()
        assert await pr.lost is None
        assert rf.closed or rf.fileno() == -1 or _fd_closed(rf)

    run(hookloop_loop, main())


def _fd_closed(f):
    try:
        os.fstat(f.fileno())
    except (OSError, ValueError):
        return True
    return False


def test_write_pipe_data_then_close(hookloop_loop, pipe):
    rf, wf = pipe

    async def main():
        tr, pr = await hookloop_loop.connect_write_pipe(Recorder, wf)
        assert tr.get_extra_info("pipe") is wf
        rtr, rpr = await hookloop_loop.connect_read_pipe(Recorder, rf)
        tr.write(b"abc")
        tr.writelines([b"d", b"ef"])
        assert tr.can_write_eof()
        tr.close()
        assert await pr.lost is None
        assert await rpr.lost is None
        assert rpr.data == b"abcdef"

    run(hookloop_loop, main())


def test_write_pipe_write_eof_closes(hookloop_loop, pipe):
    rf, wf = pipe

    async def main():
        tr, pr = await hookloop_loop.connect_write_pipe(Recorder, wf)
        rtr, rpr = await hookloop_loop.connect_read_pipe(Recorder, rf)
        tr.write(b"last words")
        tr.write_eof()
        assert await pr.lost is None
        await rpr.lost
        assert rpr.data == b"last words"

    run(hookloop_loop, main())


def test_write_pipe_flow_control(hookloop_loop, pipe):
    rf, wf = pipe

    async def main():
        tr, pr = await hookloop_loop.connect_write_pipe(Recorder, wf)
        tr.set_write_buffer_limits(high=64 * 1024, low=16 * 1024)
        total = 0
        while not pr.paused:
            tr.write(b"p" * 65536)
            total += 65536
            assert total < (64 << 20), "never paused"
        assert tr.get_write_buffer_size() > 64 * 1024
        rtr, rpr = await hookloop_loop.connect_read_pipe(Recorder, rf)
        await pr.resume_event.wait()
        assert await rpr.received(total) == b"p" * total
        assert tr.get_write_buffer_size() == 0
        await close_and_wait((tr, pr), (rtr, rpr))

    run(hookloop_loop, main())


def test_write_pipe_reader_gone_idle(hookloop_loop, pipe):
    rf, wf = pipe

    async def main():
        tr, pr = await hookloop_loop.connect_write_pipe(Recorder, wf)
        rf.close()
        # Nothing buffered: the transport notices and closes cleanly.
        assert await pr.lost is None
        assert tr.is_closing()
        tr.write(b"ignored")  # no exception after the peer is gone
        await barrier(hookloop_loop)
        assert pr.lost_calls == 1

    run(hookloop_loop, main())


def test_write_pipe_reader_gone_with_pending_data(hookloop_loop, pipe):
    rf, wf = pipe

    async def main():
        tr, pr = await hookloop_loop.connect_write_pipe(KeepOpen, wf)
        tr.set_write_buffer_limits(high=1 << 30)
        tr.write(b"x" * (4 << 20))  # far more than the pipe holds
        assert tr.get_write_buffer_size() > 0
        rf.close()
        exc = await pr.lost
        assert isinstance(exc, BrokenPipeError)
        await barrier(hookloop_loop)
        assert pr.lost_calls == 1

    run(hookloop_loop, main())


def test_write_pipe_abort(hookloop_loop, pipe):
    rf, wf = pipe

    async def main():
        tr, pr = await hookloop_loop.connect_write_pipe(Recorder, wf)
        tr.set_write_buffer_limits(high=1 << 30)
        tr.write(b"x" * (1 << 20))
        tr.abort()
        assert await pr.lost is None
        await barrier(hookloop_loop)
        assert pr.lost_calls == 1

    run(hookloop_loop, main())


def test_fifo(hookloop_loop, tmp_path):
    path = tmp_path / "fifo"
    os.mkfifo(path)
    r = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    w = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    rf = os.fdopen(r, "rb", buffering=0)
    wf = os.fdopen(w, "wb", buffering=0)

    async def main():
        rtr, rpr = await hookloop_loop.connect_read_pipe(Recorder, rf)
        wtr, wpr = await hookloop_loop.connect_write_pipe(Recorder, wf)
        wtr.write(b"fifo data")
        wtr.close()
        assert await rpr.lost is None
        assert rpr.data == b"fifo data"
        assert await wpr.lost is None

    try:
        run(hookloop_loop, main())
    finally:
        for f in (rf, wf):
            if not f.closed:
                f.close()


def test_pty_read_and_slave_hangup(hookloop_loop):
    master, slave = os.openpty()
    os.set_blocking(master, False)
    mf = os.fdopen(master, "rb", buffering=0)
    import tty
    tty.setraw(slave)

    async def main():
        tr, pr = await hookloop_loop.connect_read_pipe(Recorder, mf)
        os.write(slave, b"from the tty")
        assert await pr.received(12) == b"from the tty"
        os.close(slave)
        # Linux reports a hung-up pty master with EIO: connection lost with
        # it, not reported to the exception handler.
        exc = await pr.lost
        assert exc is None or (isinstance(exc, OSError) and exc.errno == errno.EIO)
        await barrier(hookloop_loop)
        assert pr.lost_calls == 1

    try:
        run(hookloop_loop, main())
    finally:
        if not mf.closed:
            mf.close()
        try:
            os.close(slave)
        except OSError:
            pass


def test_socket_as_read_pipe(hookloop_loop, hookloop_socketpair):
    a, b = hookloop_socketpair

    async def main():
        tr, pr = await hookloop_loop.connect_read_pipe(Recorder, a)
        b.send(b"sock pipe")
        assert await pr.received(9) == b"sock pipe"
        b.shutdown(socket.SHUT_WR)
        assert await pr.lost is None

    run(hookloop_loop, main())


def test_regular_file_is_refused(hookloop_loop, tmp_path):
    path = tmp_path / "regular"
    path.write_bytes(b"data")

    async def main():
        with open(path, "rb") as f:
            with pytest.raises(ValueError):
                await hookloop_loop.connect_read_pipe(Recorder, f)
        with open(path, "wb") as f:
            with pytest.raises(ValueError):
                await hookloop_loop.connect_write_pipe(Recorder, f)

    run(hookloop_loop, main())


def test_pipes_leak_nothing(hookloop_loop):
    async def main():
        for _ in range(20):
            r, w = os.pipe()
            rtr, rpr = await hookloop_loop.connect_read_pipe(Recorder, os.fdopen(r, "rb", 0))
            wtr, wpr = await hookloop_loop.connect_write_pipe(Recorder, os.fdopen(w, "wb", 0))
            wtr.write(b"x")
            wtr.close()
            await rpr.lost
            await wpr.lost

    run(hookloop_loop, main())
    with no_fd_leak():
        run(hookloop_loop, main())
