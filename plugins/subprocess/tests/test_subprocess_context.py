"""A subprocess protocol's callbacks run in the context the process was started in.

As on asyncio's loop (3.12+, whose child watcher on Linux is a pidfd in the
loop): ``connection_made``, ``pipe_data_received``,
``pipe_connection_lost``, ``process_exited`` and ``connection_lost`` all see
the ``ContextVar`` values current at ``subprocess_exec``/``subprocess_shell``
time, whichever of hookloop's watchers (pidfd, thread, kqueue) hears of the
exit; what a callback sets stays out of the spawner's context.

Each test runs on asyncio's own loop and on every hookloop backend with the
same assertions.  On 3.11, asyncio's default watcher is a thread whose
callbacks run in the thread's empty context; the reference loop there gets
asyncio's ``PidfdChildWatcher``, the default asyncio chose from 3.12 on.
Broken on purpose (the exit callback given to the watcher without the
spawner's context), ``process_exited`` sees ``unset`` with the thread
watcher, and the test fails.
"""
from __future__ import annotations

import asyncio
import contextvars
import sys
import warnings

import pytest
from hookloop_subprocess import watchers

import hookloop
from hookloop.testing import checked_loop

GUARD = 10.0

where: contextvars.ContextVar[str] = contextvars.ContextVar("where", default="unset")


@pytest.fixture
def loop(context_loop_kind, hookloop_errors, monkeypatch):
    """asyncio's loop, or hookloop's on a backend; ``+no-pidfd``: the thread
    watcher where the backend has no watcher of its own (kqueue has)."""
    if context_loop_kind != "asyncio":
        backend, _, variant = context_loop_kind.partition("+")
        if variant == "no-pidfd":
            monkeypatch.setattr(watchers, "_pidfd_works", False)
        yield from checked_loop(hookloop.new_event_loop(backend), hookloop_errors)
        return
    new = asyncio.new_event_loop()
    if sys.version_info < (3, 12):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            policy = asyncio.get_event_loop_policy()
            previous = policy._watcher  # noqa: SLF001 - restored below, test plumbing
            watcher = asyncio.PidfdChildWatcher()
            watcher.attach_loop(new)
            policy.set_child_watcher(watcher)
        try:
            yield from checked_loop(new, hookloop_errors)
        finally:
            policy._watcher = previous  # noqa: SLF001
        return
    yield from checked_loop(new, hookloop_errors)


def pytest_generate_tests(metafunc):
    if "context_loop_kind" in metafunc.fixturenames:
        backends = (metafunc.config.getoption("hookloop_backend")
                    or hookloop.available_backends())
        kinds = ["asyncio", *backends, *(f"{b}+no-pidfd" for b in backends)]
        metafunc.parametrize("context_loop_kind", kinds)


class Observer(asyncio.SubprocessProtocol):
    def __init__(self, seen, done):
        self.seen = seen
        self.done = done

    def connection_made(self, transport):
        self.seen.append(("connection_made", where.get()))
        where.set("connection_made")

    def pipe_data_received(self, fd, data):
        self.seen.append((f"pipe_data_received {fd}", where.get()))

    def pipe_connection_lost(self, fd, exc):
        self.seen.append((f"pipe_connection_lost {fd}", where.get()))

    def process_exited(self):
        self.seen.append(("process_exited", where.get()))
        where.set("process_exited")

    def connection_lost(self, exc):
        self.seen.append(("connection_lost", where.get()))
        self.done.set_result(None)


@pytest.mark.parametrize("how", ["exec", "shell"])
def test_subprocess_callbacks_see_the_spawners_context(loop, how):
    seen = []

    async def scenario():
        done = loop.create_future()
        where.set("spawner")
        if how == "exec":
            transport, _ = await loop.subprocess_exec(
                lambda: Observer(seen, done), sys.executable, "-c", "print('out')",
                stdin=None)
        else:
            transport, _ = await loop.subprocess_shell(
                lambda: Observer(seen, done), f"'{sys.executable}' -c \"print('out')\"",
                stdin=None)
        where.set("after spawn")
        await done
        transport.close()
        return where.get()

    assert loop.run_until_complete(asyncio.wait_for(scenario(), GUARD)) == "after spawn"
    # The order of the exit and the pipes' ends is the kernel's, and the
    # output may come in more than one read; the contexts are fixed.
    assert seen[0] == ("connection_made", "spawner")
    assert seen[-1][0] == "connection_lost"
    assert set(seen) == set([
        ("connection_made", "spawner"), ("pipe_data_received 1", "spawner"),
        ("pipe_connection_lost 1", "spawner"), ("pipe_connection_lost 2", "spawner"),
        ("process_exited", "spawner"), ("connection_lost", "spawner")])
