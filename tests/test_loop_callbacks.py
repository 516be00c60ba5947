"""Scheduling callbacks: call_soon, call_soon_threadsafe, call_later, call_at.

Order, arguments, contexts, the handles returned, cancellation, the timer
heap's lazy compaction, waking a blocked loop from another thread, and the
argument validation asyncio does.
"""
from __future__ import annotations

import asyncio
import contextvars
import random
import socket
import threading

import pytest
from loop_helpers import wake_blocked_loop

var = contextvars.ContextVar("var", default="unset")


# ----------------------------------------------------------------------
# call_soon
# ----------------------------------------------------------------------


def test_call_soon_fifo_and_args(hookloop_loop):
    calls = []
    for i in range(100):
        hookloop_loop.call_soon(calls.append, i)
    hookloop_loop.call_soon(lambda *a: calls.append(a), "x", 2, None)
    hookloop_loop.call_soon(hookloop_loop.stop)
    hookloop_loop.run_forever()
    assert calls == [*range(100), ("x", 2, None)]


def test_call_soon_returns_handle(hookloop_loop):
    calls = []
    handle = hookloop_loop.call_soon(calls.append, 1)
    assert isinstance(handle, asyncio.Handle)
    assert not isinstance(handle, asyncio.TimerHandle)
    assert not handle.cancelled()
    assert "append" in repr(handle)
    hookloop_loop.call_soon(hookloop_loop.stop)
    hookloop_loop.run_forever()
    assert calls == [1]


def test_call_soon_cancel(hookloop_loop):
    calls = []
    hookloop_loop.call_soon(calls.append, 1)
    handle = hookloop_loop.call_soon(calls.append, 2)
    hookloop_loop.call_soon(calls.append, 3)
    handle.cancel()
    assert handle.cancelled()
    handle.cancel()  # idempotent
    hookloop_loop.call_soon(hookloop_loop.stop)
    hookloop_loop.run_forever()
    assert calls == [1, 3]


def test_call_soon_cancelled_by_earlier_callback(hookloop_loop):
    calls = []
    later = None

    def first():
        calls.append("first")
        later.cancel()

    hookloop_loop.call_soon(first)
    later = hookloop_loop.call_soon(calls.append, "later")
    hookloop_loop.call_soon(hookloop_loop.stop)
    hookloop_loop.run_forever()
    assert calls == ["first"]


def test_call_soon_runs_in_copy_of_current_context(hookloop_loop):
    seen = []

    def callback():
        seen.append(var.get())
        var.set("changed by callback")

    token = var.set("outer")
    try:
        handle = hookloop_loop.call_soon(callback)
        var.set("changed after call_soon")
        hookloop_loop.call_soon(hookloop_loop.stop)
        hookloop_loop.run_forever()
        # The callback saw the context as it was at call_soon time, and its
        # change did not leak out.
        assert seen == ["outer"]
        assert var.get() == "changed after call_soon"
        assert isinstance(handle, asyncio.Handle)
    finally:
        var.reset(token)


def test_call_soon_explicit_context(hookloop_loop):
    ctx = contextvars.copy_context()
    ctx.run(var.set, "in ctx")
    seen = []

    def callback():
        seen.append(var.get())
        var.set("written in ctx")

    hookloop_loop.call_soon(callback, context=ctx)
    hookloop_loop.call_soon(hookloop_loop.stop)
    hookloop_loop.run_forever()
    assert seen == ["in ctx"]
    assert ctx[var] == "written in ctx"
    assert var.get() == "unset"


def test_callback_exception_does_not_stop_others(hookloop_loop, hookloop_errors):
    calls = []

    def bad():
        raise ValueError("bad callback")

    hookloop_loop.call_soon(bad)
    hookloop_loop.call_soon(calls.append, "next")
    hookloop_loop.call_soon(hookloop_loop.stop)
    hookloop_loop.run_forever()
    assert calls == ["next"]
    ctx = hookloop_errors.expect("Exception in callback", ValueError)
    assert isinstance(ctx["handle"], asyncio.Handle)


# ----------------------------------------------------------------------
# call_later / call_at
# ----------------------------------------------------------------------


def test_call_later_returns_timer_handle(hookloop_loop):
    t0 = hookloop_loop.time()
    handle = hookloop_loop.call_later(10, lambda: None)
    t1 = hookloop_loop.time()
    assert isinstance(handle, asyncio.TimerHandle)
    assert t0 + 10 <= handle.when() <= t1 + 10
    handle.cancel()
    assert handle.cancelled()


def test_call_at_returns_timer_handle(hookloop_loop):
    when = hookloop_loop.time() + 10
    handle = hookloop_loop.call_at(when, lambda: None)
    assert isinstance(handle, asyncio.TimerHandle)
    assert handle.when() == when
    handle.cancel()


def test_timers_fire_in_time_order(hookloop_loop):
    calls = []
    now = hookloop_loop.time()
    for delay in (0.03, 0.01, 0.02, 0.0):
        hookloop_loop.call_at(now + delay, calls.append, delay)
    hookloop_loop.call_at(now + 0.04, hookloop_loop.stop)
    hookloop_loop.run_forever()
    assert calls == [0.0, 0.01, 0.02, 0.03]


def test_timers_fire_not_before_their_time(hookloop_loop):
    fired = []
    handle = hookloop_loop.call_later(0.02, lambda: fired.append(hookloop_loop.time()))
    hookloop_loop.call_later(0.03, hookloop_loop.stop)
    hookloop_loop.run_forever()
    assert len(fired) == 1
    # The loop's clock resolution is the only slack asyncio allows.
    assert fired[0] >= handle.when() - 0.001


def test_timer_ties_are_fifo(hookloop_loop):
    calls = []
    when = hookloop_loop.time() + 0.005
    for i in range(50):
        hookloop_loop.call_at(when, calls.append, i)
    hookloop_loop.call_at(when, hookloop_loop.stop)
    hookloop_loop.run_forever()
    assert calls == list(range(50))


def test_call_later_args_and_context(hookloop_loop):
    ctx = contextvars.copy_context()
    ctx.run(var.set, "timer ctx")
    seen = []
    hookloop_loop.call_later(0, lambda a, b: seen.append((a, b, var.get())), 1, "two",
                             context=ctx)
    hookloop_loop.call_later(0, hookloop_loop.stop)
    hookloop_loop.run_forever()
    assert seen == [(1, "two", "timer ctx")]


def test_call_later_cancel(hookloop_loop):
    calls = []
    handle = hookloop_loop.call_later(0.001, calls.append, "cancelled")
    hookloop_loop.call_later(0.001, calls.append, "kept")
    handle.cancel()
    hookloop_loop.call_later(0.002, hookloop_loop.stop)
    hookloop_loop.run_forever()
    assert calls == ["kept"]


def test_cancel_timer_from_earlier_timer(hookloop_loop):
    calls = []
    now = hookloop_loop.time()
    second = None

    def first():
        calls.append("first")
        second.cancel()

    hookloop_loop.call_at(now, first)
    second = hookloop_loop.call_at(now, calls.append, "second")
    hookloop_loop.call_at(now, hookloop_loop.stop)
    hookloop_loop.run_forever()
    assert calls == ["first"]


def test_many_cancelled_timers_compaction_keeps_order(hookloop_loop):
    rng = random.Random(1234)
    now = hookloop_loop.time()
    # 10,000 timers spread over the next 50 ms, inserted in random order.
    whens = [now + i * 5e-6 for i in range(10_000)]
    order = list(range(10_000))
    rng.shuffle(order)
    fired = []
    handles = {i: hookloop_loop.call_at(whens[i], fired.append, i) for i in order}
    cancelled = set(rng.sample(range(10_000), 9_000))
    for i in cancelled:
        handles[i].cancel()
    hookloop_loop.call_at(now + 0.06, hookloop_loop.stop)
    hookloop_loop.run_forever()
    live = sorted(set(range(10_000)) - cancelled)
    assert len(live) == 1_000
    assert fired == live


def test_cancelled_timers_then_more_timers(hookloop_loop):
    # Cancel enough timers to make the heap compact, keep scheduling after
    # the compaction, and check that old and new live timers all fire, in
    # order, with none of the cancelled ones.
    fired = []
    now = hookloop_loop.time()
    first = [hookloop_loop.call_at(now + 0.001 * (i % 10), fired.append, ("a", i))
             for i in range(1000)]
    for i, h in enumerate(first):
        if i % 10:
            h.cancel()

    def more():
        t = hookloop_loop.time()
        for i in range(5):
            hookloop_loop.call_at(t + 0.001 * i, fired.append, ("b", i))
        hookloop_loop.call_at(t + 0.01, hookloop_loop.stop)

    hookloop_loop.call_soon(more)
    hookloop_loop.run_forever()
    assert [f for f in fired if f[0] == "a"] == [("a", i) for i in range(0, 1000, 10)]
    assert [f for f in fired if f[0] == "b"] == [("b", i) for i in range(5)]


def test_call_later_none_delay(hookloop_loop):
    with pytest.raises(TypeError):
        hookloop_loop.call_later(None, lambda: None)


def test_call_at_none_when(hookloop_loop):
    with pytest.raises(TypeError):
        hookloop_loop.call_at(None, lambda: None)


# ----------------------------------------------------------------------
# Bad callbacks
# ----------------------------------------------------------------------


async def _coroutine_function():
    pass


def _schedulers():
    return {
        "call_soon": lambda loop, cb: loop.call_soon(cb),
        "call_soon_threadsafe": lambda loop, cb: loop.call_soon_threadsafe(cb),
        "call_later": lambda loop, cb: loop.call_later(0.1, cb),
        "call_at": lambda loop, cb: loop.call_at(loop.time() + 0.1, cb),
    }


def _name(method):
    """The method named in the message (asyncio's call_later says call_at())."""
    if method == "call_later":
        return r"call_(later|at)\(\)"
    return rf"{method}\(\)"


@pytest.mark.parametrize("debug", [False, True], ids=["nodebug", "debug"])
@pytest.mark.parametrize("method", sorted(_schedulers()))
def test_coroutine_object_rejected(hookloop_loop, method, debug):
    hookloop_loop.set_debug(debug)
    coro = _coroutine_function()
    try:
        with pytest.raises(TypeError, match=rf"coroutines cannot be used with {_name(method)}"):
            _schedulers()[method](hookloop_loop, coro)
    finally:
        coro.close()


@pytest.mark.parametrize("debug", [False, True], ids=["nodebug", "debug"])
@pytest.mark.parametrize("method", sorted(_schedulers()))
def test_non_callable_rejected(hookloop_loop, method, debug):
    hookloop_loop.set_debug(debug)
    with pytest.raises(TypeError,
                       match=rf"a callable object was expected by {_name(method)}, got 42"):
        _schedulers()[method](hookloop_loop, 42)


@pytest.mark.parametrize("method", sorted(_schedulers()))
def test_coroutine_function_rejected_in_debug(hookloop_loop, method):
    hookloop_loop.set_debug(True)
    with pytest.raises(TypeError, match=rf"coroutines cannot be used with {_name(method)}"):
        _schedulers()[method](hookloop_loop, _coroutine_function)


# ----------------------------------------------------------------------
# call_soon_threadsafe
# ----------------------------------------------------------------------


def test_call_soon_threadsafe_wakes_blocked_loop(hookloop_loop):
    results = []
    caller = []

    def callback(value):
        results.append(value)
        caller.append(threading.get_ident())
        hookloop_loop.stop()

    woke = wake_blocked_loop(
        hookloop_loop, lambda: hookloop_loop.call_soon_threadsafe(callback, "from thread"))
    assert woke, "call_soon_threadsafe did not wake the loop"
    assert results == ["from thread"]
    assert caller == [threading.get_ident()]


def test_call_soon_threadsafe_from_many_threads(hookloop_loop):
    n_threads, per_thread = 8, 200
    fut = hookloop_loop.create_future()
    got = []

    def record(t, i):
        got.append((t, i))
        if len(got) == n_threads * per_thread and not fut.done():
            fut.set_result(None)

    def worker(t):
        for i in range(per_thread):
            hookloop_loop.call_soon_threadsafe(record, t, i)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]

    async def main():
        for th in threads:
            th.start()
        await asyncio.wait_for(fut, 10)

    try:
        hookloop_loop.run_until_complete(main())
    finally:
        for th in threads:
            th.join()
    assert len(got) == n_threads * per_thread
    for t in range(n_threads):
        assert [i for (tt, i) in got if tt == t] == list(range(per_thread))


def test_call_soon_threadsafe_returns_handle_and_context(hookloop_loop):
    ctx = contextvars.copy_context()
    ctx.run(var.set, "ts ctx")
    seen = []
    handle = hookloop_loop.call_soon_threadsafe(lambda: seen.append(var.get()), context=ctx)
    assert isinstance(handle, asyncio.Handle)
    assert handle.get_context() is ctx
    hookloop_loop.call_soon(hookloop_loop.stop)
    hookloop_loop.run_forever()
    assert seen == ["ts ctx"]


@pytest.mark.parametrize("ask", ["cancel", "cancelled"])
def test_threadsafe_handle_waits_for_its_running_callback(hookloop_loop, ask):
    # cancel()/cancelled() from another thread while the callback runs
    # return only once it has finished (asyncio 3.14's thread-safe handles).
    started, release, finished = threading.Event(), threading.Event(), threading.Event()
    seen = []

    def callback():
        started.set()
        release.wait(30)
        finished.set()

    def other_thread():
        handle = hookloop_loop.call_soon_threadsafe(callback)
        started.wait(30)  # generous: if it gives up, the test fails (seen == [False])
        release.set()  # the callback may finish now; the lock keeps us waiting
        getattr(handle, ask)()
        seen.append(finished.is_set())
        hookloop_loop.call_soon_threadsafe(hookloop_loop.stop)

    thread = threading.Thread(target=other_thread)
    thread.start()
    hookloop_loop.run_forever()
    thread.join()
    assert seen == [True]


def test_threadsafe_handle_cancelled_before_it_runs(hookloop_loop):
    ran = []
    handle = hookloop_loop.call_soon_threadsafe(ran.append, 1)
    handle.cancel()
    assert handle.cancelled()
    hookloop_loop.call_soon(hookloop_loop.stop)
    hookloop_loop.run_forever()
    assert ran == []


@pytest.mark.parametrize("delay", [1e12, float("inf")])
def test_far_timers_capped(hookloop_loop, delay):
    # The nearest timer is very far away: the poll timeout must be capped
    # (epoll and poll reject timeouts this large).
    r, w = socket.socketpair()
    far = hookloop_loop.call_later(delay, lambda: None)
    try:
        hookloop_loop.add_reader(r, hookloop_loop.stop)
        w.send(b"x")
        hookloop_loop.run_forever()
        assert hookloop_loop.remove_reader(r) is True
    finally:
        far.cancel()
        r.close()
        w.close()
