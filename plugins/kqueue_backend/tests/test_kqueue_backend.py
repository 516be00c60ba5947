"""Tests of what is particular to hookloop-kqueue (the contract kit covers the rest).

On Linux they run the real backend code over the emulation that the root
``conftest.py`` installs (``kqueue_emulation.py``); the availability tests
take it away again to see what a Linux user gets.
"""
from __future__ import annotations

import asyncio
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hookloop
import hookloop_kqueue
from hookloop.assembly import clear_cache
from hookloop.poller import MAX_TIMEOUT, READ, WRITE
from hookloop_kqueue import KqueuePoller

needs_kqueue = pytest.mark.skipif(not hasattr(select, "kqueue"),
                                  reason="no kqueue and no emulation of it")
pytestmark = needs_kqueue

EMULATED_SITE = Path(__file__).resolve().parent / "emulated_site"


Pair = tuple[socket.socket, socket.socket]


@pytest.fixture
def poller() -> Iterator[KqueuePoller]:
    p = KqueuePoller()
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def kevent_calls(poller: KqueuePoller) -> list[tuple[list[Any] | None, int, float | None]]:
    """Every ``kqueue.control`` call the poller makes from now on."""
    calls: list[tuple[list[Any] | None, int, float | None]] = []
    real = poller._control

    def spy(changes: list[Any] | None, maxevents: int, timeout: float | None) -> list[Any]:
        calls.append((changes, maxevents, timeout))
        return real(changes, maxevents, timeout)

    poller._control = spy  # type: ignore[method-assign]
    return calls


def spawn(code: str) -> int:
    """A child Python running ``code``, not reaped by anybody but the test."""
    return os.posix_spawn(sys.executable, [sys.executable, "-c", code], os.environ)


# -- the hook and availability ------------------------------------------------

def test_hook_offers_kqueue() -> None:
    (record,) = hookloop_kqueue.hookloop_pollers()
    assert (record.name, record.priority, record.distribution) == (
        "kqueue", 250, "hookloop-kqueue")
    assert record.factory is KqueuePoller
    assert record.available


@pytest.fixture
def without_kqueue(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process as Linux has it: no select.kqueue (assembly re-run)."""
    for name in ("kqueue", "kevent"):
        monkeypatch.delattr(select, name)
    clear_cache()
    yield
    monkeypatch.undo()
    clear_cache()


@pytest.mark.usefixtures("without_kqueue")
def test_without_kqueue_listed_unavailable_and_choosing_it_raises() -> None:
    (record,) = [b for b in hookloop.list_backends() if b.name == "kqueue"]
    assert record.unavailable == (
        "select.kqueue is missing: kqueue exists on macOS and the BSDs only")
    assert "kqueue" not in hookloop.available_backends()
    with pytest.raises(hookloop.BackendUnavailableError, match="select.kqueue is missing"):
        hookloop.new_event_loop("kqueue")
    with pytest.raises(hookloop.BackendUnavailableError, match="select.kqueue is missing"):
        KqueuePoller()
    loop = hookloop.new_event_loop()  # loop creation does not break
    try:
        assert loop.backend != "kqueue"
    finally:
        loop.close()


@pytest.mark.skipif(sys.platform == "darwin" or "bsd" in sys.platform,
                    reason="a real kqueue exists here")
def test_a_fresh_linux_process_lists_kqueue_unavailable() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLOOP_")}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(EMULATED_SITE))
    out = subprocess.run([sys.executable, "-m", "hookloop", "plugins"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "kqueue       priority 250  unavailable: select.kqueue is missing" in out.stdout
    code = ("import hookloop\n"
            "try:\n    hookloop.new_event_loop('kqueue')\n"
            "except hookloop.BackendUnavailableError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120)
    assert "backend 'kqueue' is not available here: select.kqueue is missing" in out.stdout


# -- changes are batched ------------------------------------------------------

def test_changes_wait_for_the_next_poll(poller: KqueuePoller, hookloop_socketpair: Pair,
                                        kevent_calls: list[Any]) -> None:
    a, b = hookloop_socketpair
    poller.register(a.fileno(), READ | WRITE)
    assert kevent_calls == [], "register made a system call"
    assert poller.statistics()["pending_changes"] == 2
    assert sorted(poller.poll(0)) == [(a.fileno(), WRITE)]
    poller.modify(a.fileno(), READ)
    assert len(kevent_calls) == 1, "modify made a system call"
    b.send(b"x")
    assert poller.poll(0) == [(a.fileno(), READ)]
    first, second = ([(c.ident, c.filter, c.flags) for c in changes]
                     for changes, _, _ in kevent_calls)
    assert first == [(a.fileno(), select.KQ_FILTER_READ, select.KQ_EV_ADD),
                     (a.fileno(), select.KQ_FILTER_WRITE, select.KQ_EV_ADD)]
    assert second == [(a.fileno(), select.KQ_FILTER_WRITE, select.KQ_EV_DELETE)]
    assert [maxevents for _, maxevents, _ in kevent_calls] == [64 + 2, 64 + 1], \
        "room for an EV_ERROR per change"
    assert poller.statistics()["pending_changes"] == 0


def test_add_then_remove_before_a_poll_is_one_change(poller: KqueuePoller,
                                                     hookloop_socketpair: Pair) -> None:
    a, b = hookloop_socketpair
    b.send(b"x")
    poller.register(a.fileno(), READ)
    poller.unregister(a.fileno())
    assert poller.statistics()["pending_changes"] == 1
    assert poller.poll(0) == []


def test_fd_closed_before_its_add_reached_the_kernel(poller: KqueuePoller,
                                                     hookloop_socketpair: Pair) -> None:
    """The failed EV_ADD wakes both directions; the others' readiness is not lost
    although the kernel answered with the error alone."""
    a, b = hookloop_socketpair
    c, d = socket.socketpair()
    try:
        fd = a.fileno()
        poller.register(fd, READ)
        poller.register(c.fileno(), READ)
        d.send(b"x")
        a.close()
        assert sorted(poller.poll(5)) == sorted([(fd, READ | WRITE), (c.fileno(), READ)])
        assert poller.statistics()["change_errors"] == 1
        poller.unregister(fd)  # EV_DELETE fails with EBADF: ignored
        assert poller.poll(0) == [(c.fileno(), READ)]
        assert poller.statistics()["change_errors"] == 2
    finally:
        c.close()
        d.close()


# -- poll() ---------------------------------------------------------------------

def test_one_pair_per_filter(poller: KqueuePoller, hookloop_socketpair: Pair) -> None:
    a, b = hookloop_socketpair
    poller.register(a.fileno(), READ | WRITE)
    b.send(b"x")
    assert sorted(poller.poll(0)) == [(a.fileno(), READ), (a.fileno(), WRITE)]


def test_timeouts_are_capped_and_never_negative(poller: KqueuePoller,
                                                kevent_calls: list[Any]) -> None:
    poller.register(poller.waker_fd, READ)
    poller.wakeup()
    poller.poll(1e12)
    poller.poll(-5)
    poller.poll(None)
    assert [timeout for _, _, timeout in kevent_calls] == [MAX_TIMEOUT, 0, None]


def test_maxevents_grows_after_full_batches(poller: KqueuePoller) -> None:
    pairs = [socket.socketpair() for _ in range(200)]
    try:
        for a, _ in pairs:
            poller.register(a.fileno(), WRITE)
        # The first poll has room for 64 events plus one per change sent.
        sizes = [len(poller.poll(0)) for _ in range(3)]
        assert sizes == [200, 128, 200]
        assert poller.statistics()["maxevents"] == 256
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def test_regular_file_is_readable_until_its_end(poller: KqueuePoller, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    with open(tmp_path / "f", "rb", buffering=0) as f:
        poller.register(f.fileno(), READ)
        assert poller.poll(0) == [(f.fileno(), READ)]
        f.read()
        assert poller.poll(0) == []


# -- child processes ------------------------------------------------------------

def test_watch_process_calls_back_from_the_loop() -> None:
    loop = hookloop.new_event_loop("kqueue")
    try:
        exited = loop.create_future()

        def reap(pid: int) -> None:
            exited.set_result(os.waitpid(pid, 0))

        pid = spawn("raise SystemExit(7)")
        loop.poller.watch_process(pid, reap)
        got_pid, status = loop.run_until_complete(asyncio.wait_for(exited, 30))
        assert got_pid == pid and os.waitstatus_to_exitcode(status) == 7
        assert loop.poller.statistics()["watched_processes"] == 0
    finally:
        loop.close()


def test_watching_a_pid_that_is_gone_still_calls_back(poller: KqueuePoller) -> None:
    pid = spawn("pass")
    os.waitpid(pid, 0)  # reaped: EVFILT_PROC fails with ESRCH
    called: list[int] = []
    poller.register(poller.waker_fd, READ)
    poller.watch_process(pid, called.append)
    start = time.monotonic()
    assert poller.poll(30) == [(poller.waker_fd, READ)]
    assert time.monotonic() - start < 15, "an exit was due, yet poll() waited"
    poller.drain_wakeup()
    assert called == [pid]


def test_unwatched_process_is_not_reported(poller: KqueuePoller) -> None:
    pid = spawn("pass")
    called: list[int] = []
    poller.register(poller.waker_fd, READ)
    poller.watch_process(pid, called.append)
    poller.poll(0)  # the watch reaches the kernel
    poller.unwatch_process(pid)
    os.waitpid(pid, 0)  # it has exited now
    assert poller.poll(0) == []
    poller.drain_wakeup()
    assert called == [] and poller.statistics()["watched_processes"] == 0
    poller.unwatch_process(pid)  # unknown now: ignored


def test_a_failing_exit_callback_leaves_the_others_queued(poller: KqueuePoller) -> None:
    pids = [spawn("pass"), spawn("pass")]
    for pid in pids:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped
    called: list[int] = []

    def boom(pid: int) -> None:
        called.append(pid)
        raise RuntimeError("callback failed")

    poller.register(poller.waker_fd, READ)
    for pid in pids:
        poller.watch_process(pid, boom)
    try:
        assert poller.poll(5) == [(poller.waker_fd, READ)]
        with pytest.raises(RuntimeError):
            poller.drain_wakeup()
        assert poller.poll(30) == [(poller.waker_fd, READ)], "the second exit is still due"
        with pytest.raises(RuntimeError):
            poller.drain_wakeup()
        assert sorted(called) == sorted(pids)
    finally:
        for pid in pids:
            os.waitpid(pid, 0)

