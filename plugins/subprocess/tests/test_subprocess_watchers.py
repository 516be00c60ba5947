"""hookloop-subprocess: the child watchers (hookloop-only).

Which watcher a loop uses (the poller's ``watch_process`` on kqueue, a pidfd
elsewhere on Linux), and the thread fallback, forced by making pidfds look
unavailable, doing the same work: exit codes, kill, no zombie, no fd left.
"""
from __future__ import annotations

import asyncio
import errno
import os
import signal
import subprocess

import pytest
from hookloop_subprocess import watchers
from subprocess_helpers import BASELINE, READY_THEN_SLEEP, fd_count, run, unreaped

import hookloop
from hookloop.poller import PROCESS_WATCHING

pytestmark = pytest.mark.skipif(BASELINE, reason="hookloop-only behaviour")

PIPE = asyncio.subprocess.PIPE


def test_watcher_choice(hookloop_loop, hookloop_backend):
    watcher = hookloop_loop.service("subprocess").watcher
    if PROCESS_WATCHING in hookloop_loop.poller.capabilities:
        assert watcher.name == "poller"
    elif watchers.pidfd_works():
        assert watcher.name == "pidfd"
    else:
        assert watcher.name == "thread"
    if hookloop_backend == "kqueue":
        assert watcher.name == "poller"


def test_the_capability_flag_decides_not_the_methods(hookloop_backend):
    """A poller is used as the child watcher when it declares PROCESS_WATCHING,
    whatever methods it has: with the flag taken away after the loop was made
    (the methods stay), the service uses a pidfd or a thread instead."""
    loop = hookloop.new_event_loop(hookloop_backend)
    try:
        declared = PROCESS_WATCHING in loop.poller.capabilities
        assert declared == (hookloop_backend == "kqueue")
        if declared:
            loop.poller.capabilities = frozenset()
        assert loop.service("subprocess").watcher.name != "poller"
    finally:
        loop.close()


@pytest.fixture
def no_pidfd(monkeypatch):
    monkeypatch.setattr(watchers, "_pidfd_works", False)


async def _workout():
    true = await asyncio.create_subprocess_exec("true")
    false = await asyncio.create_subprocess_exec("false")
    blocked = await asyncio.create_subprocess_exec(*READY_THEN_SLEEP, stdout=PIPE)
    await blocked.stdout.readexactly(5)
    blocked.kill()
    cat = await asyncio.create_subprocess_exec("cat", stdin=PIPE, stdout=PIPE)
    out, _ = await cat.communicate(b"thread")
    return [await true.wait(), await false.wait(), await blocked.wait(), out]


def test_thread_watcher_fallback(spawned, no_pidfd, hookloop_backend):
    loop = hookloop.new_event_loop(hookloop_backend)
    try:
        expected = "poller" if PROCESS_WATCHING in loop.poller.capabilities else "thread"
        assert loop.service("subprocess").watcher.name == expected
        run(loop, asyncio.sleep(0))
        before = fd_count()
        assert run(loop, _workout()) == [0, 1, -signal.SIGKILL, b"thread"]
        assert fd_count() == before
        assert unreaped(spawned) == []
    finally:
        loop.close()


def test_thread_watcher_reaps_in_the_loop_thread(no_pidfd, hookloop_backend, monkeypatch):
    # The thread waits with WNOWAIT; the loop thread reaps and publishes.
    reapers = []
    real_waitpid = os.waitpid

    def waitpid(pid, options):
        import threading
        result = real_waitpid(pid, options)
        if result[0]:
            reapers.append(threading.current_thread())
        return result

    loop = hookloop.new_event_loop(hookloop_backend)
    try:
        if loop.service("subprocess").watcher.name != "thread":
            pytest.skip("this backend's poller watches processes itself")
        monkeypatch.setattr(os, "waitpid", waitpid)
        assert run(loop, _workout()) == [0, 1, -signal.SIGKILL, b"thread"]
    finally:
        loop.close()
    import threading
    assert reapers and set(reapers) == {threading.main_thread()}


def test_thread_watcher_loop_close_reaps(no_pidfd, hookloop_backend):
    before = fd_count()
    loop = hookloop.new_event_loop(hookloop_backend)

    async def main():
        proc = await asyncio.create_subprocess_exec(*READY_THEN_SLEEP, stdout=PIPE)
        await proc.stdout.readexactly(5)
        return proc

    proc = run(loop, main())
    loop.close()
    assert proc.returncode == -signal.SIGKILL
    with pytest.raises(ChildProcessError):
        os.waitpid(proc.pid, os.WNOHANG)
    del proc
    assert fd_count() == before


def test_foreign_reaping_reports_255(hookloop_loop, hookloop_errors, caplog):
    # Somebody else reads the child's status (as asyncio's FastChildWatcher
    # would): the transport reports 255 and says so, as asyncio does.
    async def main():
        proc = await asyncio.create_subprocess_exec(*READY_THEN_SLEEP, stdout=PIPE)
        await proc.stdout.readexactly(5)
        os.kill(proc.pid, signal.SIGKILL)
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        os.waitpid(proc.pid, 0)  # the foreign reaper
        return await proc.wait()

    assert run(hookloop_loop, main()) == 255
    assert "will report returncode 255" in caplog.text


def test_a_child_that_cannot_be_watched_is_killed_and_reaped(hookloop_loop, monkeypatch):
    if hookloop_loop.service("subprocess").watcher.name != "pidfd":
        pytest.skip("this loop does not watch children with pidfds")

    def no_pidfd(pid, flags=0):
        raise OSError(errno.EMFILE, "Too many open files")

    spawned = []

    class RecordingPopen(subprocess.Popen):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            spawned.append(self)

    run(hookloop_loop, asyncio.sleep(0))
    before = fd_count()
    monkeypatch.setattr(os, "pidfd_open", no_pidfd)
    monkeypatch.setattr(subprocess, "Popen", RecordingPopen)
    with pytest.raises(OSError, match="Too many open files"):
        run(hookloop_loop, asyncio.create_subprocess_exec(*READY_THEN_SLEEP, stdin=PIPE,
                                                          stdout=PIPE))
    monkeypatch.undo()
    assert fd_count() == before
    [popen] = spawned
    assert popen.returncode == -signal.SIGKILL
    with pytest.raises(ChildProcessError):  # killed and reaped
        os.waitpid(popen.pid, os.WNOHANG)


def test_a_loop_dropped_without_close_is_collected(hookloop_backend):
    import gc
    import warnings
    import weakref

    loop = hookloop.new_event_loop(hookloop_backend)

    async def main():
        proc = await asyncio.create_subprocess_exec("true")
        return await proc.wait()

    assert run(loop, main()) == 0
    ref = weakref.ref(loop)
    # The loop's own __del__ says it was not closed (and closes it); in a
    # cyclic collection its poller's sockets may be finalized first and say
    # so too: that is the core's business, not counted here.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del loop
        gc.collect()
    assert ref() is None
    assert any("unclosed event loop" in str(w.message) for w in caught)
