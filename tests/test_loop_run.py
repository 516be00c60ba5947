"""Running, stopping and closing a hookloop loop, on every installed backend.

Covers run_forever, run_until_complete, stop, close, is_running, is_closed,
time, the running-loop checks (nested runs, two loops in one thread), calls
on a closed loop and the entry points (asyncio.Runner, hookloop.run).  Fork,
fds, GC, threads and base exceptions are in test_loop_process.py.
"""
from __future__ import annotations

import asyncio
import functools
import signal
import sys
import time

import pytest

import hookloop

# ----------------------------------------------------------------------
# run_until_complete
# ----------------------------------------------------------------------


def test_run_until_complete_returns_result(hookloop_loop):
    async def main(x):
        await asyncio.sleep(0)
        return x * 2

    assert hookloop_loop.run_until_complete(main(21)) == 42


def test_run_until_complete_accepts_future(hookloop_loop):
    fut = hookloop_loop.create_future()
    hookloop_loop.call_soon(fut.set_result, "done")
    assert hookloop_loop.run_until_complete(fut) == "done"


def test_run_until_complete_raises_exception(hookloop_loop):
    class Boom(Exception):
        pass

    async def main():
        await asyncio.sleep(0)
        raise Boom("from the coroutine")

    with pytest.raises(Boom, match="from the coroutine"):
        hookloop_loop.run_until_complete(main())


def test_run_until_complete_cancelled_future(hookloop_loop):
    fut = hookloop_loop.create_future()
    hookloop_loop.call_soon(fut.cancel)
    with pytest.raises(asyncio.CancelledError):
        hookloop_loop.run_until_complete(fut)


def test_run_until_complete_stopped_before_completion(hookloop_loop):
    fut = hookloop_loop.create_future()
    hookloop_loop.call_soon(hookloop_loop.stop)
    with pytest.raises(RuntimeError, match="Event loop stopped before Future completed."):
        hookloop_loop.run_until_complete(fut)
    assert not fut.done()
    # The loop is usable afterwards: the same future can still be awaited.
    hookloop_loop.call_soon(fut.set_result, 7)
    assert hookloop_loop.run_until_complete(fut) == 7


def test_run_until_complete_while_running(hookloop_loop):
    caught = []

    async def inner():
        return 1

    def reenter():
        coro = inner()
        try:
            hookloop_loop.run_until_complete(coro)
        except RuntimeError as exc:
            caught.append(exc)
        finally:
            coro.close()
        hookloop_loop.stop()

    hookloop_loop.call_soon(reenter)
    hookloop_loop.run_forever()
    assert len(caught) == 1
    assert "already running" in str(caught[0])


def test_run_forever_while_running(hookloop_loop):
    caught = []

    def reenter():
        try:
            hookloop_loop.run_forever()
        except RuntimeError as exc:
            caught.append(exc)
        hookloop_loop.stop()

    hookloop_loop.call_soon(reenter)
    hookloop_loop.run_forever()
    assert len(caught) == 1
    assert "already running" in str(caught[0])
    assert not hookloop_loop.is_running()


def test_two_loops_in_one_thread(hookloop_loop, hookloop_backend):
    other = hookloop.new_event_loop(hookloop_backend)
    try:
        async def inner():
            return "never"

        async def main():
            coro = inner()
            try:
                other.run_until_complete(coro)
            finally:
                coro.close()

        with pytest.raises(RuntimeError, match="another loop is running"):
            hookloop_loop.run_until_complete(main())
        # Both loops still work afterwards, one after the other.
        assert other.run_until_complete(asyncio.sleep(0, "b")) == "b"
        assert hookloop_loop.run_until_complete(asyncio.sleep(0, "a")) == "a"
    finally:
        other.close()


def test_run_forever_of_other_loop_while_running(hookloop_loop, hookloop_backend):
    other = hookloop.new_event_loop(hookloop_backend)
    caught = []

    def reenter():
        try:
            other.run_forever()
        except RuntimeError as exc:
            caught.append(exc)
        hookloop_loop.stop()

    try:
        hookloop_loop.call_soon(reenter)
        hookloop_loop.run_forever()
    finally:
        other.close()
    assert len(caught) == 1
    assert "another loop is running" in str(caught[0])


# ----------------------------------------------------------------------
# run_forever, stop, is_running
# ----------------------------------------------------------------------


def test_run_forever_until_stop(hookloop_loop):
    calls = []
    hookloop_loop.call_soon(calls.append, 1)
    hookloop_loop.call_soon(calls.append, 2)
    hookloop_loop.call_soon(hookloop_loop.stop)
    hookloop_loop.run_forever()
    assert calls == [1, 2]


def test_stop_runs_already_scheduled_callbacks_only(hookloop_loop):
    calls = []

    def first():
        calls.append("first")
        hookloop_loop.call_soon(calls.append, "scheduled-by-first")

    hookloop_loop.call_soon(first)
    hookloop_loop.call_soon(hookloop_loop.stop)
    hookloop_loop.call_soon(calls.append, "after-stop")
    hookloop_loop.run_forever()
    # Callbacks scheduled before stop() ran (even the one queued after the
    # stop() call, which was already in the ready queue); the one scheduled
    # by them runs in the next run.
    assert calls == ["first", "after-stop"]
    hookloop_loop.call_soon(hookloop_loop.stop)
    hookloop_loop.run_forever()
    assert calls == ["first", "after-stop", "scheduled-by-first"]


def test_stop_before_run_forever_runs_one_iteration(hookloop_loop):
    calls = []
    hookloop_loop.call_soon(calls.append, 1)
    hookloop_loop.stop()
    hookloop_loop.run_forever()
    assert calls == [1]
    # stop() was consumed: the next run_forever() does not stop by itself
    # before the ready queue is processed again.
    hookloop_loop.call_soon(calls.append, 2)
    hookloop_loop.call_soon(hookloop_loop.stop)
    hookloop_loop.run_forever()
    assert calls == [1, 2]


def test_is_running(hookloop_loop):
    seen = []

    async def main():
        seen.append(hookloop_loop.is_running())

    assert not hookloop_loop.is_running()
    hookloop_loop.run_until_complete(main())
    assert seen == [True]
    assert not hookloop_loop.is_running()


def test_is_running_false_after_exception(hookloop_loop):
    async def main():
        raise KeyError("x")

    with pytest.raises(KeyError):
        hookloop_loop.run_until_complete(main())
    assert not hookloop_loop.is_running()
    assert asyncio._get_running_loop() is None


def test_get_running_loop_inside(hookloop_loop):
    async def main():
        return asyncio.get_running_loop(), asyncio.get_event_loop()

    running, current = hookloop_loop.run_until_complete(main())
    assert running is hookloop_loop
    assert current is hookloop_loop
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()


def test_time_is_monotonic_clock(hookloop_loop):
    before = time.monotonic()
    t1 = hookloop_loop.time()
    t2 = hookloop_loop.time()
    after = time.monotonic()
    assert before <= t1 <= t2 <= after


# ----------------------------------------------------------------------
# close
# ----------------------------------------------------------------------


def test_close_is_idempotent(hookloop_loop):
    assert not hookloop_loop.is_closed()
    hookloop_loop.close()
    assert hookloop_loop.is_closed()
    hookloop_loop.close()
    assert hookloop_loop.is_closed()


def test_close_running_loop_raises(hookloop_loop):
    caught = []

    def try_close():
        try:
            hookloop_loop.close()
        except RuntimeError as exc:
            caught.append(exc)
        hookloop_loop.stop()

    hookloop_loop.call_soon(try_close)
    hookloop_loop.run_forever()
    assert len(caught) == 1
    assert "running" in str(caught[0])
    assert not hookloop_loop.is_closed()


def test_close_drops_pending_callbacks(hookloop_loop):
    calls = []
    hookloop_loop.call_soon(calls.append, 1)
    hookloop_loop.call_later(0, calls.append, 2)
    hookloop_loop.close()
    assert calls == []


def _closed_loop_calls():
    def noop():
        pass

    async def coro():
        pass

    def create_task(loop):
        c = coro()
        try:
            loop.create_task(c)
        finally:
            c.close()

    def run_until_complete(loop):
        c = coro()
        try:
            loop.run_until_complete(c)
        finally:
            c.close()

    return {
        "call_soon": lambda loop: loop.call_soon(noop),
        "call_soon_threadsafe": lambda loop: loop.call_soon_threadsafe(noop),
        "call_later": lambda loop: loop.call_later(0.1, noop),
        "call_at": lambda loop: loop.call_at(loop.time() + 0.1, noop),
        "create_task": create_task,
        "run_forever": lambda loop: loop.run_forever(),
        "run_until_complete": run_until_complete,
        "run_in_executor": lambda loop: loop.run_in_executor(None, noop),
        "add_reader": lambda loop: loop.add_reader(0, noop),
        "add_writer": lambda loop: loop.add_writer(1, noop),
        "add_signal_handler": lambda loop: loop.add_signal_handler(signal.SIGUSR2, noop),
    }


@pytest.mark.parametrize("debug", [False, True], ids=["nodebug", "debug"])
@pytest.mark.parametrize("method", sorted(_closed_loop_calls()))
def test_closed_loop_raises(hookloop_loop, method, debug):
    hookloop_loop.set_debug(debug)
    hookloop_loop.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        _closed_loop_calls()[method](hookloop_loop)


def test_remove_reader_writer_after_close(hookloop_loop):
    hookloop_loop.close()
    assert hookloop_loop.remove_reader(0) is False
    assert hookloop_loop.remove_writer(1) is False


# ----------------------------------------------------------------------
# Entry points
# ----------------------------------------------------------------------


def test_asyncio_runner_with_loop_factory(hookloop_backend):
    factory = functools.partial(hookloop.new_event_loop, hookloop_backend)

    async def main(x):
        loop = asyncio.get_running_loop()
        await asyncio.sleep(0)
        return loop, x

    with asyncio.Runner(loop_factory=factory) as runner:
        loop1, a = runner.run(main(1))
        loop2, b = runner.run(main(2))
        assert runner.get_loop() is loop1
    assert (a, b) == (1, 2)
    assert loop1 is loop2
    assert isinstance(loop1, hookloop.EventLoop)
    assert loop1.backend == hookloop_backend
    assert loop1.is_closed()


def test_hookloop_run_with_debug(hookloop_backend):
    before = sys.get_coroutine_origin_tracking_depth()

    async def main():
        loop = asyncio.get_running_loop()
        return (loop, loop.backend, loop.get_debug(),
                sys.get_coroutine_origin_tracking_depth())

    loop, backend, debug, depth = hookloop.run(main(), backend=hookloop_backend, debug=True)
    assert isinstance(loop, hookloop.EventLoop)
    assert backend == hookloop_backend
    assert debug is True
    assert depth > 0
    assert loop.is_closed()
    assert sys.get_coroutine_origin_tracking_depth() == before


def test_hookloop_run_propagates_exception(hookloop_backend):
    async def main():
        raise LookupError("inside run")

    with pytest.raises(LookupError, match="inside run"):
        hookloop.run(main(), backend=hookloop_backend)
