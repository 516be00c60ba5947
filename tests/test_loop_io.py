"""add_reader / remove_reader / add_writer / remove_writer."""
from __future__ import annotations

import asyncio
import contextvars
import os
import socket

import pytest

var = contextvars.ContextVar("var", default="unset")


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def _registered(loop):
    return loop.poller.statistics()["registered_fds"]


def test_reader_callback_with_args(hookloop_loop, pair):
    r, w = pair
    got = []

    def on_readable(sock, tag):
        got.append((tag, sock.recv(100)))
        hookloop_loop.remove_reader(sock)
        hookloop_loop.stop()

    hookloop_loop.add_reader(r.fileno(), on_readable, r, "tag")
    w.send(b"hello")
    hookloop_loop.run_forever()
    assert got == [("tag", b"hello")]


def test_reader_not_called_until_readable(hookloop_loop, pair):
    r, w = pair
    got = []

    def on_readable():
        got.append(r.recv(100))
        hookloop_loop.stop()

    hookloop_loop.add_reader(r, on_readable)
    hookloop_loop.call_later(0.01, w.send, b"late")
    hookloop_loop.run_forever()
    assert got == [b"late"]
    assert hookloop_loop.remove_reader(r) is True


def test_reader_runs_in_context_of_add_reader(hookloop_loop, pair):
    r, w = pair
    seen = []

    def on_readable():
        r.recv(100)
        seen.append(var.get())
        var.set("changed by reader")
        hookloop_loop.remove_reader(r)
        hookloop_loop.stop()

    token = var.set("at add_reader")
    try:
        hookloop_loop.add_reader(r, on_readable)
        var.set("changed afterwards")
        w.send(b"x")
        hookloop_loop.run_forever()
        assert seen == ["at add_reader"]
        assert var.get() == "changed afterwards"
    finally:
        var.reset(token)


def test_reader_exception_goes_to_handler(hookloop_loop, hookloop_errors, pair):
    r, w = pair

    def on_readable():
        r.recv(100)
        hookloop_loop.remove_reader(r)
        hookloop_loop.call_soon(hookloop_loop.stop)
        raise KeyError("reader failed")

    hookloop_loop.add_reader(r, on_readable)
    w.send(b"x")
    hookloop_loop.run_forever()
    ctx = hookloop_errors.expect("Exception in callback", KeyError)
    assert isinstance(ctx["handle"], asyncio.Handle)


def test_replacing_reader(hookloop_loop, pair):
    r, w = pair
    got = []

    def first():
        got.append("first")
        r.recv(100)

    def second():
        got.append("second")
        r.recv(100)
        hookloop_loop.stop()

    hookloop_loop.add_reader(r, first)
    hookloop_loop.add_reader(r, second)
    assert _registered(hookloop_loop) == 2  # the waker and r, once
    w.send(b"x")
    hookloop_loop.run_forever()
    assert got == ["second"]
    assert hookloop_loop.remove_reader(r) is True
    assert hookloop_loop.remove_reader(r) is False


def test_remove_reader_return_values(hookloop_loop, pair):
    r, _ = pair
    before = _registered(hookloop_loop)
    assert hookloop_loop.remove_reader(r) is False
    hookloop_loop.add_reader(r, lambda: None)
    assert _registered(hookloop_loop) == before + 1
    assert hookloop_loop.remove_reader(r.fileno()) is True
    assert hookloop_loop.remove_reader(r) is False
    assert _registered(hookloop_loop) == before


def test_removed_reader_not_called(hookloop_loop, pair):
    r, w = pair
    got = []
    hookloop_loop.add_reader(r, got.append, "reader")
    w.send(b"x")
    assert hookloop_loop.remove_reader(r) is True
    hookloop_loop.call_later(0.01, hookloop_loop.stop)
    hookloop_loop.run_forever()
    assert got == []


def test_reader_removed_by_earlier_callback_same_iteration(hookloop_loop, pair):
    # Two readable sockets; whichever reader runs first removes the other.
    # Exactly one may run, as on asyncio's loop (the removed one's handle is
    # cancelled even if it was already queued).
    r1, w1 = pair
    r2, w2 = socket.socketpair()
    got = []
    try:
        def make(me):
            def cb():
                got.append(me)
                assert hookloop_loop.remove_reader(r1) is True
                assert hookloop_loop.remove_reader(r2) is True
                hookloop_loop.call_soon(hookloop_loop.stop)
            return cb

        hookloop_loop.add_reader(r1, make(1))
        hookloop_loop.add_reader(r2, make(2))
        w1.send(b"x")
        w2.send(b"x")
        hookloop_loop.run_forever()
        assert len(got) == 1
    finally:
        r2.close()
        w2.close()


def test_writer_callback_with_args(hookloop_loop, pair):
    _, w = pair
    got = []

    def on_writable(tag):
        got.append(tag)
        hookloop_loop.remove_writer(w)
        hookloop_loop.stop()

    hookloop_loop.add_writer(w, on_writable, "writable")
    hookloop_loop.run_forever()
    assert got == ["writable"]
    assert hookloop_loop.remove_writer(w) is False


def test_writer_replacement_and_removal(hookloop_loop, pair):
    _, w = pair
    got = []

    def second():
        got.append("second")
        hookloop_loop.stop()

    hookloop_loop.add_writer(w, got.append, "first")
    hookloop_loop.add_writer(w.fileno(), second)
    hookloop_loop.run_forever()
    assert got == ["second"]
    assert hookloop_loop.remove_writer(w) is True
    assert hookloop_loop.remove_writer(w) is False


def test_reader_and_writer_on_same_fd(hookloop_loop, pair):
    a, b = pair
    got = []
    hookloop_loop.add_writer(a, got.append, "writer")
    hookloop_loop.add_reader(a, lambda: (got.append(a.recv(10)), hookloop_loop.stop()))
    assert _registered(hookloop_loop) == 2
    # Removing the writer keeps the reader.
    assert hookloop_loop.remove_writer(a) is True
    b.send(b"ping")
    hookloop_loop.run_forever()
    assert got == [b"ping"]
    assert hookloop_loop.remove_reader(a) is True
    assert _registered(hookloop_loop) == 1


def test_file_objects_accepted(hookloop_loop):
    rfd, wfd = os.pipe()
    with os.fdopen(rfd, "rb", buffering=0) as rf, os.fdopen(wfd, "wb", buffering=0) as wf:
        got = []

        def on_readable():
            got.append(rf.read(10))
            hookloop_loop.stop()

        hookloop_loop.add_reader(rf, on_readable)
        hookloop_loop.add_writer(wf, lambda: (wf.write(b"pipe"), hookloop_loop.remove_writer(wf)))
        hookloop_loop.run_forever()
        assert got == [b"pipe"]
        assert hookloop_loop.remove_reader(rf) is True
        assert hookloop_loop.remove_writer(wf) is False


def test_add_reader_fd_minus_one(hookloop_loop):
    before = _registered(hookloop_loop)
    with pytest.raises(ValueError):
        hookloop_loop.add_reader(-1, lambda: None)
    with pytest.raises(ValueError):
        hookloop_loop.add_writer(-1, lambda: None)
    assert _registered(hookloop_loop) == before


def test_add_reader_object_without_fileno(hookloop_loop):
    with pytest.raises(ValueError):
        hookloop_loop.add_reader(object(), lambda: None)
    with pytest.raises(ValueError):
        hookloop_loop.add_writer("not a file", lambda: None)
    with pytest.raises(ValueError):
        hookloop_loop.remove_reader(object())


@pytest.mark.parametrize("method", ["add_reader", "add_writer"])
def test_add_on_closed_fd_leaves_nothing(hookloop_loop, method):
    s1, s2 = socket.socketpair()
    fd = s1.fileno()
    s1.close()
    before = _registered(hookloop_loop)
    with pytest.raises((OSError, ValueError)):
        getattr(hookloop_loop, method)(fd, lambda: None)
    assert _registered(hookloop_loop) == before
    assert hookloop_loop.remove_reader(fd) is False
    assert hookloop_loop.remove_writer(fd) is False
    # A valid fd (possibly the same number, reused) still works afterwards,
    # and so does the loop.
    r, w = socket.socketpair()
    try:
        got = []
        hookloop_loop.add_reader(r, lambda: (got.append(r.recv(10)), hookloop_loop.stop()))
        w.send(b"ok")
        hookloop_loop.run_forever()
        assert got == [b"ok"]
        assert hookloop_loop.remove_reader(r) is True
        assert hookloop_loop.run_until_complete(asyncio.sleep(0.001, "runs")) == "runs"
    finally:
        r.close()
        w.close()
        s2.close()


@pytest.mark.parametrize("debug", [False, True], ids=["nodebug", "debug"])
def test_add_reader_bad_callback(hookloop_loop, pair, debug):
    r, _ = pair
    hookloop_loop.set_debug(debug)
    before = _registered(hookloop_loop)
    with pytest.raises(TypeError):
        hookloop_loop.add_reader(r, 42)
    assert _registered(hookloop_loop) == before
    assert hookloop_loop.remove_reader(r) is False


def test_fd_watched_by_a_plugin_is_refused(hookloop_loop, hookloop_socketpair):
    """add_/remove_reader/writer cannot take over an fd a plugin watches."""
    a, b = hookloop_socketpair
    ran = []
    hookloop_loop.watch_read(a.fileno(), lambda: ran.append(a.recv(10)))
    for method in (hookloop_loop.add_reader, hookloop_loop.add_writer):
        with pytest.raises(RuntimeError, match=f"File descriptor {a.fileno()} is used by"):
            method(a, print)
    for method in (hookloop_loop.remove_reader, hookloop_loop.remove_writer):
        with pytest.raises(RuntimeError, match="is used by"):
            method(a)
    # The plugin's watcher is intact.
    b.send(b"x")
    hookloop_loop.run_until_complete(_until(lambda: ran))
    assert ran == [b"x"]
    assert hookloop_loop.unwatch_read(a.fileno()) is not None


def test_self_pipe_cannot_be_removed(hookloop_loop):
    waker = hookloop_loop.poller.waker_fd
    with pytest.raises(RuntimeError, match="is used by"):
        hookloop_loop.remove_reader(waker)


async def _until(predicate):
    while not predicate():
        await asyncio.sleep(0)


def test_claimed_fd_is_refused_until_released(hookloop_loop, hookloop_socketpair):
    # Plugin API: claim_fd/release_fd/check_fd_free, as a transport uses them.
    r, _ = hookloop_socketpair
    owner = object()
    hookloop_loop.check_fd_free(r.fileno())
    hookloop_loop.claim_fd(r.fileno(), owner)
    with pytest.raises(RuntimeError, match=f"File descriptor {r.fileno()} is used by transport"):
        hookloop_loop.check_fd_free(r.fileno())
    with pytest.raises(RuntimeError, match="is used by transport"):
        hookloop_loop.add_reader(r, lambda: None)
    hookloop_loop.release_fd(r.fileno())
    hookloop_loop.release_fd(r.fileno())  # not claimed any more: no error
    hookloop_loop.check_fd_free(r.fileno())
    hookloop_loop.add_reader(r, lambda: None)
    assert hookloop_loop.remove_reader(r) is True


def test_check_fd_free_refuses_a_plugin_watched_fd(hookloop_loop, hookloop_socketpair):
    r, _ = hookloop_socketpair
    hookloop_loop.watch_read(r.fileno(), lambda: None)
    with pytest.raises(RuntimeError, match="is used by"):
        hookloop_loop.check_fd_free(r.fileno())
    hookloop_loop.unwatch_read(r.fileno())
    hookloop_loop.check_fd_free(r.fileno())
