"""The order of one iteration, under preemption, as asyncio's loop has it.

asyncio's loop, each iteration: poll; collect the timers due *now*, at once,
behind what is already ready; run the callbacks ready before the poll, the
I/O callbacks, then the collected timers.  Whatever a callback schedules
waits for the next iteration, so a timer never overtakes a ``call_soon``
made before it, however long the process was stalled in between.

Every test runs on asyncio's own loop and on every hookloop backend, on the
fast path and on the instrumented one (an attached no-op instrument), with
the same assertions: what is asserted is what asyncio's loop does.  The one
guarantee asyncio does not give (timers with the same deadline run in
creation order; asyncio's heap does not keep ties in order) is asserted on
hookloop only, and says so.
"""
from __future__ import annotations

import asyncio
import os
import random
import socket
import time

import pytest

import hookloop
from hookloop.testing import checked_loop

GUARD = 10.0  # seconds: a loop that never stops by itself fails, not hangs


def pytest_generate_tests(metafunc):
    if "order_loop_kind" in metafunc.fixturenames:
        backends = (metafunc.config.getoption("hookloop_backend")
                    or hookloop.available_backends())
        kinds = [*backends, *(f"{b}+instrumented" for b in backends)]
        if not getattr(metafunc.function, "hookloop_only", False):
            kinds.insert(0, "asyncio")
        metafunc.parametrize("order_loop_kind", kinds)


def hookloop_only(test):
    """Run ``test`` on hookloop's loops only (it uses hookloop's plugin API)."""
    test.hookloop_only = True
    return test


@pytest.fixture
def loop(order_loop_kind, hookloop_errors):
    if order_loop_kind == "asyncio":
        new = asyncio.new_event_loop()
    else:
        backend, _, path = order_loop_kind.partition("+")
        new = hookloop.new_event_loop(backend, stall=False)
        if path == "instrumented":
            new.add_instrument(hookloop.Instrument())
    yield from checked_loop(new, hookloop_errors)


def is_hookloop(loop):
    return isinstance(loop, hookloop.EventLoop)


def run_until_stopped(loop):
    guard = loop.call_later(GUARD, loop.stop)
    loop.run_forever()
    guard.cancel()


def recorder(loop, order, expected):
    """``record(x)``: append ``x`` to ``order``; stop the loop at ``expected`` entries."""
    def record(item):
        order.append(item)
        if len(order) == expected:
            loop.stop()
    return record


# ----------------------------------------------------------------------
# A due timer never runs ahead of an earlier call_soon
# ----------------------------------------------------------------------


def test_stalled_callback_timer_waits_behind_its_call_soon(loop):
    # The shape: the process is descheduled (here: sleeps) for longer
    # than the timer's delay, inside the callback that made both.
    order = []
    record = recorder(loop, order, 2)

    def first():
        loop.call_later(0.01, record, "A")
        loop.call_soon(record, "B")
        time.sleep(0.02)

    loop.call_soon(first)
    run_until_stopped(loop)
    assert order == ["B", "A"]


def test_past_call_at_from_a_callback_waits_behind_its_call_soon(loop):
    order = []
    record = recorder(loop, order, 2)

    def first():
        loop.call_at(loop.time() - 1.0, record, "A")
        loop.call_soon(record, "B")

    loop.call_soon(first)
    run_until_stopped(loop)
    assert order == ["B", "A"]


@pytest.mark.parametrize("timer_first", [True, False], ids=["timer-first", "soon-first"])
def test_past_call_at_before_running_runs_after_ready_callbacks(loop, timer_first):
    # Both are there before the first poll: the ready callback was ready
    # before it, the timer is collected after it.
    order = []
    record = recorder(loop, order, 2)
    if timer_first:
        loop.call_at(loop.time() - 1.0, record, "A")
        loop.call_soon(record, "B")
    else:
        loop.call_soon(record, "B")
        loop.call_at(loop.time() - 1.0, record, "A")
    run_until_stopped(loop)
    assert order == ["B", "A"]


def test_timer_made_in_a_timer_callback(loop):
    order = []
    record = recorder(loop, order, 3)

    def timer():
        record("T")
        loop.call_at(loop.time() - 1.0, record, "A")
        loop.call_soon(record, "B")
        time.sleep(0.002)

    loop.call_at(loop.time() - 1.0, timer)
    run_until_stopped(loop)
    assert order == ["T", "B", "A"]


def test_timer_made_in_an_add_reader_callback(loop):
    order = []
    record = recorder(loop, order, 2)
    a, b = socket.socketpair()
    try:
        def readable():
            loop.remove_reader(a)
            a.recv(10)
            loop.call_at(loop.time() - 1.0, record, "A")
            loop.call_soon(record, "B")

        loop.add_reader(a, readable)
        b.send(b"x")
        run_until_stopped(loop)
    finally:
        a.close()
        b.close()
    assert order == ["B", "A"]


def test_timer_made_in_a_protocol_callback(loop):
    # On hookloop data_received runs straight from the fd table (no Handle);
    # the order must still be asyncio's.
    order = []
    record = recorder(loop, order, 2)

    class Proto(asyncio.Protocol):
        def data_received(self, data):
            loop.call_at(loop.time() - 1.0, record, "A")
            loop.call_soon(record, "B")
            time.sleep(0.002)

    a, b = socket.socketpair()
    try:
        transport, _ = loop.run_until_complete(loop.create_connection(Proto, sock=a))
        b.send(b"x")
        run_until_stopped(loop)
        transport.close()
        loop.run_until_complete(asyncio.sleep(0))
    finally:
        b.close()
    assert order == ["B", "A"]


def test_io_callbacks_run_after_callbacks_ready_before_the_poll_and_before_timers(loop):
    # One iteration: a ready callback, a readable fd and a due timer; the
    # order is ready -> I/O -> timer whatever order they were made in.
    order = []
    record = recorder(loop, order, 3)
    a, b = socket.socketpair()
    try:
        def readable():
            loop.remove_reader(a)
            record("io")

        b.send(b"x")
        loop.call_at(loop.time() - 1.0, record, "timer")
        loop.add_reader(a, readable)
        loop.call_soon(record, "ready")
        run_until_stopped(loop)
    finally:
        a.close()
        b.close()
    assert order == ["ready", "io", "timer"]


def test_many_timers_due_at_once_run_by_deadline(loop):
    rng = random.Random(1234)
    now = loop.time()
    deadlines = [now - rng.choice([0.75, 0.5, 0.25, 0.1]) for _ in range(300)]
    order = []
    record = recorder(loop, order, len(deadlines))
    for i, when in enumerate(deadlines):
        loop.call_at(when, record, (when, i))
    run_until_stopped(loop)
    assert [when for when, _ in order] == sorted(deadlines)
    if is_hookloop(loop):
        # hookloop's promise beyond asyncio's: same deadline, creation order.
        assert order == sorted(order)


def test_collected_timer_cancelled_by_a_ready_callback_does_not_run(loop):
    # The timer is collected right after the poll, before the ready
    # callback runs; cancelling it then must still stop it.
    order = []
    timer = loop.call_at(loop.time() - 1.0, order.append, "timer")

    def cancel():
        order.append("cancel")
        timer.cancel()
        loop.call_soon(loop.stop)

    loop.call_soon(cancel)
    run_until_stopped(loop)
    assert order == ["cancel"]
    assert timer.cancelled()


def test_collected_timer_cancelled_by_an_earlier_timer_does_not_run(loop):
    order = []
    now = loop.time()
    second = loop.call_at(now - 0.5, order.append, "second")

    def first():
        order.append("first")
        second.cancel()
        loop.call_soon(loop.stop)

    loop.call_at(now - 1.0, first)
    run_until_stopped(loop)
    assert order == ["first"]


# ----------------------------------------------------------------------
# An interrupted iteration loses nothing
# ----------------------------------------------------------------------


def test_keyboard_interrupt_in_a_callback_leaves_the_rest_queued_in_order(loop):
    order = []

    def interrupt():
        order.append("interrupt")
        raise KeyboardInterrupt

    loop.call_at(loop.time() - 1.0, order.append, "timer")
    loop.call_soon(interrupt)
    loop.call_soon(order.append, "after")
    with pytest.raises(KeyboardInterrupt):
        loop.run_forever()
    assert order == ["interrupt"]
    # Nothing else scheduled: if the rest were lost or unseen, the loop
    # would block until the guard stops it.
    loop.call_at(loop.time() - 0.5, loop.stop)
    run_until_stopped(loop)
    assert order == ["interrupt", "after", "timer"]


def test_keyboard_interrupt_in_an_add_reader_callback_leaves_the_rest_queued(loop):
    order = []
    a, b = socket.socketpair()
    c, d = socket.socketpair()
    try:
        def first_readable():
            loop.remove_reader(a)
            order.append("interrupt")
            raise KeyboardInterrupt

        def second_readable():
            loop.remove_reader(c)
            order.append("io")

        b.send(b"x")
        d.send(b"x")
        loop.add_reader(a, first_readable)
        loop.add_reader(c, second_readable)
        loop.call_at(loop.time() - 1.0, order.append, "timer")
        with pytest.raises(KeyboardInterrupt):
            loop.run_forever()
        loop.call_at(loop.time() - 0.5, loop.stop)
        run_until_stopped(loop)
    finally:
        for s in (a, b, c, d):
            s.close()
    # Which reader the poller reports first is the kernel's choice; after
    # the interrupt, whatever was left runs, I/O before the timer.
    assert order in (["interrupt", "io", "timer"], ["io", "interrupt", "timer"])


@hookloop_only
def test_keyboard_interrupt_in_a_plugin_io_callback_keeps_queued_io_handles(loop):
    # hookloop only: a plugin's callback runs straight from the fd table.  On
    # one fd, the user's add_reader watch (read slot, dispatched first) queues
    # its handle; then the plugin's write callback raises.  The queued handle
    # must run next, before the timer collected in that iteration, and once.
    order = []
    a, b = socket.socketpair()
    try:
        def user_readable():
            loop.remove_reader(a)
            order.append("user")

        def plugin_writable():
            loop.unwatch_write(a.fileno())
            order.append("plugin")
            raise KeyboardInterrupt

        b.send(b"x")
        loop.add_reader(a, user_readable)
        loop.watch_write(a.fileno(), plugin_writable)
        loop.call_at(loop.time() - 1.0, order.append, "timer")
        with pytest.raises(KeyboardInterrupt):
            loop.run_forever()
        assert order == ["plugin"]
        loop.call_at(loop.time() - 0.5, loop.stop)
        run_until_stopped(loop)
    finally:
        a.close()
        b.close()
    assert order == ["plugin", "user", "timer"]


def test_a_loop_that_never_blocks_still_sees_io_from_another_process(loop):
    """Every iteration polls, even when callbacks are ready and nothing else
    makes a system call: a task spinning on ``sleep(0)`` does not starve a
    reader whose data another process sent meanwhile.  (An io_uring ring
    set up with ``COOP_TASKRUN`` posts such completions only when the
    process next enters the kernel; a ``poll(0)`` that just reads the
    completion queue would never see them.)"""
    import subprocess
    import sys

    a, b = socket.socketpair()
    go_r, go_w = os.pipe()
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import os, socket, sys\n"
         "go, fd = int(sys.argv[1]), int(sys.argv[2])\n"
         "os.read(go, 1)\n"
         "socket.socket(fileno=fd).send(b'x')\n", str(go_r), str(b.fileno())],
        pass_fds=(go_r, b.fileno()))
    os.close(go_r)
    b.close()
    a.setblocking(False)
    seen = []
    iterations = [0]

    async def spin():
        os.write(go_w, b"g")  # the last system call this task makes
        deadline = loop.time() + GUARD
        while not seen and loop.time() < deadline:
            iterations[0] += 1
            await asyncio.sleep(0)

    def readable():
        seen.append(a.recv(1))
        loop.remove_reader(a.fileno())

    try:
        loop.add_reader(a.fileno(), readable)
        loop.run_until_complete(spin())
        assert child.wait(GUARD) == 0
    finally:
        loop.remove_reader(a.fileno())
        a.close()
        os.close(go_w)
        child.wait()
    assert seen == [b"x"], f"the reader was never called in {iterations[0]} iterations"
