"""Futures, tasks, task factories, async generators and executors."""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import sys
import threading

import pytest

var = contextvars.ContextVar("var", default="unset")


# ----------------------------------------------------------------------
# create_future / create_task
# ----------------------------------------------------------------------


def test_create_future(hookloop_loop):
    fut = hookloop_loop.create_future()
    assert isinstance(fut, asyncio.Future)
    assert fut.get_loop() is hookloop_loop
    assert not fut.done()
    hookloop_loop.call_soon(fut.set_result, 5)
    assert hookloop_loop.run_until_complete(fut) == 5


def test_create_task_runs_coroutine(hookloop_loop):
    async def work(x):
        await asyncio.sleep(0)
        return x + 1

    task = hookloop_loop.create_task(work(1))
    assert isinstance(task, asyncio.Task)
    assert task.get_loop() is hookloop_loop
    assert hookloop_loop.run_until_complete(task) == 2


def test_create_task_name(hookloop_loop):
    async def work():
        return asyncio.current_task().get_name()

    task = hookloop_loop.create_task(work(), name="my-task")
    assert task.get_name() == "my-task"
    assert hookloop_loop.run_until_complete(task) == "my-task"


def test_create_task_context(hookloop_loop):
    ctx = contextvars.copy_context()
    ctx.run(var.set, "task ctx")

    async def work():
        before = var.get()
        var.set("set by task")
        return before

    task = hookloop_loop.create_task(work(), context=ctx)
    assert hookloop_loop.run_until_complete(task) == "task ctx"
    assert ctx[var] == "set by task"
    assert var.get() == "unset"


def test_task_factory_used(hookloop_loop):
    calls = []

    def factory(loop, coro, **kwargs):
        calls.append((loop, kwargs))
        return asyncio.Task(coro, loop=loop, **kwargs)

    async def work():
        return var.get()

    assert hookloop_loop.get_task_factory() is None
    hookloop_loop.set_task_factory(factory)
    assert hookloop_loop.get_task_factory() is factory
    task = hookloop_loop.create_task(work(), name="factory-made")
    assert task.get_name() == "factory-made"
    assert hookloop_loop.run_until_complete(task) == "unset"
    assert len(calls) == 1 and calls[0][0] is hookloop_loop

    ctx = contextvars.copy_context()
    ctx.run(var.set, "factory ctx")
    task = hookloop_loop.create_task(work(), context=ctx)
    assert hookloop_loop.run_until_complete(task) == "factory ctx"
    assert calls[1][1].get("context") is ctx

    # Tasks made for run_until_complete(coro) go through the factory too.
    assert hookloop_loop.run_until_complete(work()) == "unset"
    assert len(calls) == 3


def test_task_factory_reset_with_none(hookloop_loop):
    calls = []

    def factory(loop, coro, **kwargs):
        calls.append(coro)
        return asyncio.Task(coro, loop=loop, **kwargs)

    async def work():
        return 1

    hookloop_loop.set_task_factory(factory)
    hookloop_loop.set_task_factory(None)
    assert hookloop_loop.get_task_factory() is None
    assert hookloop_loop.run_until_complete(hookloop_loop.create_task(work())) == 1
    assert calls == []


def test_task_factory_not_callable(hookloop_loop):
    with pytest.raises(TypeError):
        hookloop_loop.set_task_factory(42)
    assert hookloop_loop.get_task_factory() is None


def test_gather_and_wait_for(hookloop_loop):
    async def work(i):
        await asyncio.sleep(0.001 * (5 - i))
        return i

    async def main():
        results = await asyncio.gather(*(work(i) for i in range(5)))
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.sleep(10), 0.01)
        return results

    assert hookloop_loop.run_until_complete(main()) == [0, 1, 2, 3, 4]


# ----------------------------------------------------------------------
# Async generators
# ----------------------------------------------------------------------


def test_shutdown_asyncgens_finalizes_suspended_generator(hookloop_loop):
    events = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            events.append("finally")
            await asyncio.sleep(0)  # finalisation may await
            events.append("finally awaited")

    async def main():
        gen = agen()
        assert await gen.__anext__() == 1
        return gen

    gen = hookloop_loop.run_until_complete(main())  # kept alive: no GC finaliser
    assert events == []
    hookloop_loop.run_until_complete(hookloop_loop.shutdown_asyncgens())
    assert events == ["finally", "finally awaited"]
    del gen


def test_shutdown_asyncgens_reports_errors(hookloop_loop, hookloop_errors):
    async def agen():
        try:
            yield 1
        finally:
            raise ZeroDivisionError("in finally")

    async def main():
        gen = agen()
        await gen.__anext__()
        return gen

    gen = hookloop_loop.run_until_complete(main())
    hookloop_loop.run_until_complete(hookloop_loop.shutdown_asyncgens())
    ctx = hookloop_errors.expect("closing of asynchronous generator", ZeroDivisionError)
    assert ctx["asyncgen"] is gen


def test_garbage_collected_asyncgen_is_finalized(hookloop_loop):
    events = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            events.append(asyncio.get_running_loop())

    async def main():
        gen = agen()
        await gen.__anext__()
        del gen  # the finaliser hook schedules aclose() on the loop
        for _ in range(5):
            await asyncio.sleep(0)

    hookloop_loop.run_until_complete(main())
    assert events == [hookloop_loop]


# ----------------------------------------------------------------------
# Executors
# ----------------------------------------------------------------------


def test_run_in_executor_default(hookloop_loop):
    def work(a, b):
        return a + b, threading.get_ident()

    result, ident = hookloop_loop.run_until_complete(
        hookloop_loop.run_in_executor(None, work, 2, 3))
    assert result == 5
    assert ident != threading.get_ident()


def test_run_in_executor_explicit(hookloop_loop):
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="explicit") as pool:
        name = hookloop_loop.run_until_complete(
            hookloop_loop.run_in_executor(pool, lambda: threading.current_thread().name))
    assert name.startswith("explicit")


def test_run_in_executor_exception_propagates(hookloop_loop):
    def fail():
        raise OSError(5, "executor failure")

    fut = hookloop_loop.run_in_executor(None, fail)
    assert isinstance(fut, asyncio.Future)
    with pytest.raises(OSError, match="executor failure"):
        hookloop_loop.run_until_complete(fut)


def test_run_in_executor_coroutine_function_in_debug(hookloop_loop):
    async def coro_fn():
        pass

    hookloop_loop.set_debug(True)
    with pytest.raises(TypeError, match="coroutines cannot be used with run_in_executor"):
        hookloop_loop.run_in_executor(None, coro_fn)


def test_set_default_executor(hookloop_loop):
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="my-default")
    hookloop_loop.set_default_executor(pool)
    name = hookloop_loop.run_until_complete(
        hookloop_loop.run_in_executor(None, lambda: threading.current_thread().name))
    assert name.startswith("my-default")
    hookloop_loop.run_until_complete(hookloop_loop.shutdown_default_executor())


def test_set_default_executor_rejects_other_executors(hookloop_loop):
    with concurrent.futures.ProcessPoolExecutor(1) as pool:
        with pytest.raises(TypeError, match="ThreadPoolExecutor"):
            hookloop_loop.set_default_executor(pool)
    with pytest.raises(TypeError):
        hookloop_loop.set_default_executor(object())


def test_shutdown_default_executor_joins_threads(hookloop_loop):
    release = threading.Event()
    threads = []

    def work():
        threads.append(threading.current_thread())
        release.wait(10)
        return "worked"

    async def main():
        fut = hookloop_loop.run_in_executor(None, work)
        # Let the worker start, then let it finish only once the shutdown
        # is already waiting for it.
        hookloop_loop.call_soon(release.set)
        await hookloop_loop.shutdown_default_executor()
        assert fut.done()
        return await fut

    assert hookloop_loop.run_until_complete(main()) == "worked"
    assert len(threads) == 1
    assert not threads[0].is_alive()


def test_run_in_executor_after_shutdown_default_executor(hookloop_loop):
    hookloop_loop.run_until_complete(hookloop_loop.run_in_executor(None, int))
    hookloop_loop.run_until_complete(hookloop_loop.shutdown_default_executor())
    # asyncio: "Executor shutdown has been called"
    with pytest.raises(RuntimeError, match="Executor shutdown has been called"):
        hookloop_loop.run_in_executor(None, int)


def test_run_in_executor_after_shutdown_of_unused_executor(hookloop_loop):
    hookloop_loop.run_until_complete(hookloop_loop.shutdown_default_executor())
    with pytest.raises(RuntimeError, match="Executor shutdown has been called"):
        hookloop_loop.run_in_executor(None, int)


def test_explicit_executor_still_works_after_default_shutdown(hookloop_loop):
    hookloop_loop.run_until_complete(hookloop_loop.shutdown_default_executor())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert hookloop_loop.run_until_complete(
            hookloop_loop.run_in_executor(pool, int, "12")) == 12


def test_asyncgen_after_shutdown_asyncgens_warns(hookloop_loop):
    async def agen():
        yield 1

    async def main():
        gen = agen()
        try:
            with pytest.warns(ResourceWarning, match="after"):
                await gen.__anext__()
        finally:
            await gen.aclose()

    hookloop_loop.run_until_complete(hookloop_loop.shutdown_asyncgens())
    hookloop_loop.run_until_complete(main())


@pytest.mark.skipif(sys.version_info < (3, 12),
                    reason="shutdown_default_executor(timeout=) is new in Python 3.12")
def test_shutdown_default_executor_timeout(hookloop_loop):
    release = threading.Event()

    def stuck():
        release.wait(10)

    async def main():
        fut = hookloop_loop.run_in_executor(None, stuck)
        with pytest.warns(RuntimeWarning, match="did not finish joining"):
            await hookloop_loop.shutdown_default_executor(timeout=0.01)
        release.set()
        await fut

    try:
        hookloop_loop.run_until_complete(main())
    finally:
        release.set()
