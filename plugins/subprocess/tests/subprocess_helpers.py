"""Helpers of hookloop-subprocess's tests (not tests themselves)."""
from __future__ import annotations

import asyncio
import gc
import os
import sys

import pytest

#: Run the tests on asyncio's own loop (see conftest.py).
BASELINE = bool(os.environ.get("HOOKLOOP_SUBPROCESS_BASELINE"))

hookloop_only = pytest.mark.skipif(BASELINE, reason="hookloop-only behaviour")

#: Upper bound of one test's coroutine: a hang fails, not blocks.
TIMEOUT = 60

#: A child that says "ready" on stdout, then sleeps until killed.
READY_THEN_SLEEP = [sys.executable, "-c",
                    "import sys, time; sys.stdout.write('ready'); sys.stdout.flush(); "
                    "time.sleep(3600)"]


def run(loop, coro, timeout=TIMEOUT):
    """Run ``coro`` on ``loop``; ``TimeoutError`` if it takes over ``timeout``."""
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


def fd_count() -> int:
    """Open fds of this process, after a gc pass (no stray close mid-count)."""
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


def unreaped(popens) -> list[int]:
    """Pids of these children that were not reaped yet (zombie or running)."""
    left = []
    for popen in popens:
        try:
            os.waitid(os.P_PID, popen.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            continue  # reaped: not our child any more
        left.append(popen.pid)
    return left


def zombies() -> list[int]:
    """An exited, unreaped child of this process, if any (any test's)."""
    try:
        result = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return []  # no children at all
    return [] if result is None else [result.si_pid]
