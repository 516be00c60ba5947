"""A loop and its process: base exceptions, hooks, threads, fork, fds, GC.

Split from test_loop_run.py: what happens around a loop rather than in it.
"""
from __future__ import annotations

import asyncio
import gc
import os
import socket
import sys
import threading

import pytest

import hookloop

# ----------------------------------------------------------------------
# Fork, fds, garbage collection
# ----------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
# Python 3.12+ warns on fork() with other threads alive (earlier tests' executor
# threads); the child here only calls into the loop and _exit()s.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_forked_child_cannot_run_loop(hookloop_loop):
    async def main():
        return "child ran the parent's loop"

    hookloop_loop.run_until_complete(asyncio.sleep(0))  # the loop has run once
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        status = 3
        try:
            coro = main()
            try:
                hookloop_loop.run_until_complete(coro)
                status = 1
            except RuntimeError as exc:
                status = 0 if "fork" in str(exc) else 2
            finally:
                coro.close()
        finally:
            os._exit(status)
    _, wstatus = os.waitpid(pid, 0)
    assert os.WIFEXITED(wstatus)
    code = os.WEXITSTATUS(wstatus)
    assert code == 0, {1: "the child ran the loop", 2: "RuntimeError without 'fork'",
                       3: "unexpected exception in the child"}.get(code, code)
    # The parent's loop is untouched by the child.
    assert hookloop_loop.run_until_complete(main()) == "child ran the parent's loop"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
# Python 3.12+ warns on fork() with other threads alive (earlier tests' executor
# threads); the child here only calls into the loop and _exit()s.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_forked_child_cannot_unregister_parent_fds(hookloop_loop):
    # The child shares the kernel's interest set with the parent on some
    # backends (an epoll instance is inherited, not copied).  Whatever the
    # child does with the inherited loop must not cost the parent its
    # readers; DESIGN: a loop used in a forked child raises RuntimeError.
    r, w = socket.socketpair()
    try:
        fut = hookloop_loop.create_future()
        hookloop_loop.add_reader(r, lambda: fut.done() or fut.set_result(r.recv(10)))
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit status
            status = 3
            try:
                hookloop_loop.remove_reader(r)
                status = 1
            except RuntimeError:
                status = 0
            finally:
                os._exit(status)
        _, wstatus = os.waitpid(pid, 0)
        child = {0: "RuntimeError", 1: "remove_reader() succeeded",
                 3: "unexpected exception"}.get(os.WEXITSTATUS(wstatus))
        w.send(b"still mine")

        async def wait():
            try:
                return await asyncio.wait_for(fut, 20)  # the data is there already
            except TimeoutError:
                return f"parent's reader lost after the child's remove_reader ({child})"

        assert hookloop_loop.run_until_complete(wait()) == b"still mine"
        assert child == "RuntimeError"
        assert hookloop_loop.remove_reader(r) is True
    finally:
        r.close()
        w.close()


def _open_fds():
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_no_fd_leak_over_many_loops(hookloop_backend):
    # One loop first, so that lazily imported modules/caches are in place.
    hookloop.new_event_loop(hookloop_backend).close()
    before = _open_fds()
    for _ in range(50):
        loop = hookloop.new_event_loop(hookloop_backend)
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()
    assert _open_fds() == before


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_unclosed_loop_resource_warning(hookloop_backend):
    before = _open_fds()
    loop = hookloop.new_event_loop(hookloop_backend)
    assert _open_fds() > before
    with pytest.warns(ResourceWarning, match="unclosed event loop"):
        del loop
        gc.collect()
    # ... and the collected loop released its fds.
    assert _open_fds() == before


# ----------------------------------------------------------------------
# Base exceptions, hooks, threads
# ----------------------------------------------------------------------


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_base_exception_in_callback_propagates(hookloop_loop, exc_type):
    calls = []

    def interrupt():
        raise exc_type()

    hookloop_loop.call_soon(interrupt)
    hookloop_loop.call_soon(calls.append, "queued behind")
    with pytest.raises(exc_type):
        hookloop_loop.run_forever()
    assert not hookloop_loop.is_running()
    assert asyncio._get_running_loop() is None
    # What was queued behind the interrupted callback is still there.
    hookloop_loop.call_soon(hookloop_loop.stop)
    hookloop_loop.run_forever()
    assert calls == ["queued behind"]


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_base_exception_in_task_propagates(hookloop_loop, exc_type):
    async def main():
        await asyncio.sleep(0)
        raise exc_type()

    with pytest.raises(exc_type):
        hookloop_loop.run_until_complete(main())
    assert not hookloop_loop.is_running()


def test_asyncgen_hooks_installed_and_restored(hookloop_loop):
    before = sys.get_asyncgen_hooks()

    async def main():
        return sys.get_asyncgen_hooks()

    inside = hookloop_loop.run_until_complete(main())
    assert inside.firstiter is not None and inside.finalizer is not None
    assert inside != before
    assert sys.get_asyncgen_hooks() == before


def test_run_until_complete_future_of_other_loop(hookloop_loop, hookloop_backend):
    other = hookloop.new_event_loop(hookloop_backend)
    try:
        fut = other.create_future()
        with pytest.raises(ValueError):
            hookloop_loop.run_until_complete(fut)
    finally:
        other.close()


def test_loop_in_other_thread(hookloop_backend):
    started = threading.Event()
    release = threading.Event()
    result = []
    loop = hookloop.new_event_loop(hookloop_backend)

    async def main():
        started.set()
        await loop.run_in_executor(None, release.wait, 10)
        return threading.get_ident()

    def in_thread():
        result.append(loop.run_until_complete(main()))

    thread = threading.Thread(target=in_thread)
    try:
        thread.start()
        assert started.wait(10)
        assert loop.is_running()  # seen from another thread
        release.set()
        thread.join()
    finally:
        release.set()
        thread.join()
        loop.close()
    assert result and result[0] != threading.get_ident()
    assert not loop.is_running()
