"""Pipe transports as asyncio's: their types, which methods they have, what those
return or raise in each state, and their reprs.

asyncio's read pipe (``_UnixReadPipeTransport``) is an ``asyncio.ReadTransport``
only; its write pipe (``_UnixWritePipeTransport(_FlowControlMixin,
WriteTransport)``) is a full ``asyncio.Transport``, because ``_FlowControlMixin``
derives from ``Transport``: ``isinstance(t, asyncio.Transport)`` is true and its
``pause_reading()``/``resume_reading()``/``is_reading()`` are ``ReadTransport``'s,
which raise ``NotImplementedError``.

Each test runs the same program on asyncio's own loop and on a hookloop loop of
every backend and compares the observations.  Normalised, because they
legitimately differ: the transports' class names (asyncio's are its own
private classes) and the fd numbers.
"""
from __future__ import annotations

import asyncio
import os
import re

import hookloop

PUBLIC_TYPES = [asyncio.BaseTransport, asyncio.ReadTransport, asyncio.WriteTransport,
                asyncio.Transport, asyncio.DatagramTransport, asyncio.SubprocessTransport]
# Every public name of asyncio's transport classes, and the pipes' own.
NAMES = sorted({n for cls in PUBLIC_TYPES for n in dir(cls) if not n.startswith("_")}
               | {"max_size"})
ZERO_ARG = ["is_reading", "pause_reading", "resume_reading", "is_closing", "can_write_eof",
            "get_write_buffer_size", "get_write_buffer_limits", "get_read_buffer_size",
            "get_read_buffer_limits", "get_protocol"]


def loops(backend):
    return [("asyncio", asyncio.new_event_loop()),
            (backend, hookloop.new_event_loop(backend, stall=False))]


def normalise(text):
    text = re.sub(r"\b_?Unix(Read|Write)PipeTransport\b", r"\1PipeTransport", text)
    return re.sub(r"fd=\d+", "fd=N", text)


def outcome(call, *args):
    """What ``call(*args)`` does: ("ok", result) or (exception type, message)."""
    try:
        result = call(*args)
    except Exception as exc:  # noqa: BLE001 - the exception is the observation
        return (type(exc).__name__, normalise(str(exc)))
    if isinstance(result, asyncio.BaseProtocol):
        result = "the protocol"
    return ("ok", result)


class Recorder(asyncio.Protocol):
    def __init__(self, seen, kind):
        self.seen = seen
        self.kind = kind
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.seen.append((self.kind + " repr in connection_made", normalise(repr(transport))))
        self.seen.append((self.kind + " is_reading in connection_made",
                          outcome(getattr(transport, "is_reading", None) or (lambda: "absent"))
                          if self.kind == "read" else None))

    def pause_writing(self):
        self.seen.append((self.kind + " pause_writing", None))

    def resume_writing(self):
        self.seen.append((self.kind + " resume_writing", None))

    def connection_lost(self, exc):
        self.seen.append((self.kind + " connection_lost", repr(exc)))
        self.lost.set_result(exc)


def surface(seen, kind, transport, state):
    """Types, names and zero-argument calls of ``transport`` in ``state``."""
    label = f"{kind} {state}"
    seen.append((label + " repr", normalise(repr(transport))))
    if state == "open":
        seen.append((label + " types", [c.__name__ for c in PUBLIC_TYPES
                                        if isinstance(transport, c)]))
        seen.append((label + " names", [n for n in NAMES if hasattr(transport, n)]))
        seen.append((label + " dir", [n for n in dir(transport) if not n.startswith("_")]))
        seen.append((label + " missing", [outcome(getattr, transport, n)[0] for n in NAMES
                                          if not hasattr(transport, n)]))
    for name in ZERO_ARG:
        if hasattr(transport, name):
            seen.append((f"{label} {name}()", outcome(getattr(transport, name))))


async def pipe_program(loop):
    seen = []
    r, w = os.pipe()
    rfile, wfile = open(r, "rb", 0), open(w, "wb", 0)
    try:
        rt, rp = await loop.connect_read_pipe(lambda: Recorder(seen, "read"), rfile)
        wt, wp = await loop.connect_write_pipe(lambda: Recorder(seen, "write"), wfile)
        seen.append(("extra", rt.get_extra_info("pipe") is rfile,
                     wt.get_extra_info("pipe") is wfile))
        surface(seen, "read", rt, "open")
        surface(seen, "write", wt, "open")
        # Reading paused and resumed, twice each.
        for call in (rt.pause_reading, rt.pause_reading, rt.resume_reading,
                     rt.resume_reading, rt.pause_reading):
            seen.append((f"read {call.__name__}", outcome(call), normalise(repr(rt))))
            surface(seen, "read", rt, "after " + call.__name__)
        rt.resume_reading()
        # Arguments the write side refuses.
        seen.append(("write str", outcome(wt.write, "text")))
        seen.append(("write list", outcome(wt.writelines, ["text"])))
        seen.append(("limits", outcome(wt.set_write_buffer_limits, 10, 20)))
        seen.append(("limits", outcome(wt.set_write_buffer_limits, -1)))
        seen.append(("limits", outcome(wt.set_write_buffer_limits, 1000, 100)))
        seen.append(("limits", outcome(wt.get_write_buffer_limits)))
        # A full pipe: the rest is buffered and polled for, the protocol is
        # paused.  (The pipe holds what the kernel lets it: the same on both
        # loops, which both try one os.write at once.)
        wt.set_write_buffer_limits(high=64 * 1024)
        seen.append(("write 1 MiB", outcome(wt.write, b"x" * (1 << 20))))
        surface(seen, "write", wt, "buffering")
        rt.pause_reading()  # the reader is ours, below
        wt.close()
        surface(seen, "write", wt, "closing")
        seen.append(("write after close", outcome(wt.write, b"more")))
        seen.append(("write_eof after close", outcome(wt.write_eof)))
        # Drain the pipe by hand until the writer is done.
        got = 0
        while not wp.lost.done():
            try:
                got += len(os.read(r, 1 << 20))
            except BlockingIOError:
                await asyncio.sleep(0.001)
        seen.append(("drained", got))
        await wp.lost
        surface(seen, "write", wt, "closed")
        # The read pipe: closing, then closed.
        rt.close()
        surface(seen, "read", rt, "closing")
        seen.append(("read close twice", outcome(rt.close)))
        await rp.lost
        surface(seen, "read", rt, "closed")
    finally:
        rfile.close()
        wfile.close()
    return seen


async def abort_program(loop):
    seen = []
    r, w = os.pipe()
    rfile, wfile = open(r, "rb", 0), open(w, "wb", 0)
    try:
        wt, wp = await loop.connect_write_pipe(lambda: Recorder(seen, "write"), wfile)
        wt.write(b"x" * (1 << 20))
        surface(seen, "write", wt, "before abort")
        seen.append(("abort", outcome(wt.abort)))
        surface(seen, "write", wt, "aborted")
        seen.append(("write after abort", outcome(wt.write, b"more")))
        await wp.lost
        surface(seen, "write", wt, "closed")
        # The other end of a write pipe closing: connection_lost(None) with
        # nothing buffered.
        r2, w2 = os.pipe()
        wfile2 = open(w2, "wb", 0)
        wt2, wp2 = await loop.connect_write_pipe(lambda: Recorder(seen, "write2"), wfile2)
        os.close(r2)
        seen.append(("reader went", repr(await wp2.lost)))
        surface(seen, "write", wt2, "peer gone")
    finally:
        rfile.close()
        wfile.close()
    return seen


def run_both(backend, program):
    results = {}
    for name, loop in loops(backend):
        try:
            results[name] = loop.run_until_complete(asyncio.wait_for(program(loop), 30))
        finally:
            loop.close()
    return results["asyncio"], results[backend]


def test_pipe_transports_are_asyncios(hookloop_backend):
    expected, got = run_both(hookloop_backend, pipe_program)
    assert got == expected
    # The comparison is not vacuous.
    seen = dict((item[0], item[1:]) for item in expected)
    assert seen["read open types"] == (["BaseTransport", "ReadTransport"],)
    assert seen["write open types"] == (["BaseTransport", "ReadTransport", "WriteTransport",
                                         "Transport"],)
    assert seen["write open pause_reading()"] == (("NotImplementedError", ""),)
    assert seen["write open resume_reading()"] == (("NotImplementedError", ""),)
    assert "get_write_buffer_size" not in seen["read open names"][0]
    assert seen["read open repr"] == ("<ReadPipeTransport fd=N polling>",)
    assert seen["write buffering repr"][0].startswith("<WritePipeTransport fd=N polling bufsize=")


def test_pipe_abort_and_peer_close_are_asyncios(hookloop_backend):
    expected, got = run_both(hookloop_backend, abort_program)
    assert got == expected


def test_pipe_reprs_after_the_loop_closed_are_asyncios(hookloop_backend):
    # A loop closed under open pipe transports: they print "open" (asyncio's
    # test_unclosed_pipe_transport checks this).
    results = {}
    for name, loop in loops(hookloop_backend):
        r, w = os.pipe()
        rfile, wfile = open(r, "rb", 0), open(w, "wb", 0)

        async def connect(loop=loop, rfile=rfile, wfile=wfile):
            rt, _ = await loop.connect_read_pipe(asyncio.Protocol, rfile)
            wt, _ = await loop.connect_write_pipe(asyncio.Protocol, wfile)
            return rt, wt

        try:
            rt, wt = loop.run_until_complete(connect())
        finally:
            loop.close()
        results[name] = [normalise(repr(rt)), normalise(repr(wt))]
        rfile.close()
        wfile.close()
        rt._pipe = None  # as asyncio's test does: no ResourceWarning from __del__
        wt._pipe = None
    assert results[hookloop_backend] == results["asyncio"] == [
        "<ReadPipeTransport fd=N open>", "<WritePipeTransport fd=N open>"]


def test_read_pipe_has_no_abort_as_asyncios(hookloop_backend):
    async def program(loop):
        r, w = os.pipe()
        rfile = open(r, "rb", 0)
        rt, rp = await loop.connect_read_pipe(lambda: Recorder([], "read"), rfile)
        try:
            return hasattr(rt, "abort"), outcome(getattr, rt, "abort")[0]
        finally:
            rt.close()
            os.close(w)
            await rp.lost

    expected, got = run_both(hookloop_backend, program)
    assert expected == (False, "AttributeError")
    assert got == expected


def test_write_pipe_is_reading_raises_not_implemented_as_asyncios(hookloop_backend):
    async def program(loop):
        r, w = os.pipe()
        wfile = open(w, "wb", 0)
        wt, wp = await loop.connect_write_pipe(lambda: Recorder([], "write"), wfile)
        try:
            return hasattr(wt, "is_reading"), outcome(getattr(wt, "is_reading", None))
        finally:
            wt.close()
            os.close(r)
            await wp.lost

    expected, got = run_both(hookloop_backend, program)
    assert expected == (True, ("NotImplementedError", ""))
    assert got == expected
