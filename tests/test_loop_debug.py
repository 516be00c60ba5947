"""The exception handler API, debug mode and instruments."""
from __future__ import annotations

import asyncio
import logging
import sys
import threading

import pytest

import hookloop

# ----------------------------------------------------------------------
# Exception handler API
# ----------------------------------------------------------------------


def test_set_get_exception_handler(hookloop_loop, hookloop_errors):
    # The fixture installed its recorder.
    assert hookloop_loop.get_exception_handler() is hookloop_errors

    def handler(loop, context):
        pass

    hookloop_loop.set_exception_handler(handler)
    assert hookloop_loop.get_exception_handler() is handler
    hookloop_loop.set_exception_handler(None)
    assert hookloop_loop.get_exception_handler() is None


def test_set_exception_handler_not_callable(hookloop_loop, hookloop_errors):
    with pytest.raises(TypeError):
        hookloop_loop.set_exception_handler("not callable")
    assert hookloop_loop.get_exception_handler() is hookloop_errors


def test_handler_gets_loop_and_context(hookloop_loop):
    calls = []
    hookloop_loop.set_exception_handler(lambda loop, ctx: calls.append((loop, ctx)))
    context = {"message": "custom report", "extra": 1}
    hookloop_loop.call_exception_handler(context)
    assert len(calls) == 1
    assert calls[0][0] is hookloop_loop
    assert calls[0][1]["message"] == "custom report"
    assert calls[0][1]["extra"] == 1


def test_callback_exception_reaches_handler(hookloop_loop):
    calls = []
    hookloop_loop.set_exception_handler(lambda loop, ctx: calls.append(ctx))

    def failing(arg):
        raise ArithmeticError(arg)

    handle = hookloop_loop.call_soon(failing, "boom")
    hookloop_loop.call_soon(hookloop_loop.stop)
    hookloop_loop.run_forever()
    assert len(calls) == 1
    ctx = calls[0]
    assert "Exception in callback" in ctx["message"]
    assert "failing" in ctx["message"]
    assert isinstance(ctx["exception"], ArithmeticError)
    assert ctx["handle"] is handle


def test_timer_exception_reaches_handler(hookloop_loop, hookloop_errors):
    def failing():
        raise ArithmeticError("timer")

    handle = hookloop_loop.call_later(0.001, failing)
    hookloop_loop.call_later(0.002, hookloop_loop.stop)
    hookloop_loop.run_forever()
    ctx = hookloop_errors.expect("Exception in callback", ArithmeticError)
    assert ctx["handle"] is handle


def test_task_exception_never_retrieved_reported(hookloop_loop, hookloop_errors):
    async def failing():
        raise ArithmeticError("never retrieved")

    task = hookloop_loop.create_task(failing())
    hookloop_loop.run_until_complete(asyncio.sleep(0))
    assert task.done()
    del task
    import gc
    gc.collect()
    hookloop_errors.expect("Task exception was never retrieved", ArithmeticError)


def test_handler_raising_is_logged(hookloop_loop, caplog):
    def bad_handler(loop, context):
        raise RuntimeError("handler is broken")

    hookloop_loop.set_exception_handler(bad_handler)
    caplog.set_level(logging.ERROR, logger="asyncio")
    hookloop_loop.call_soon(lambda: 1 / 0)
    hookloop_loop.call_soon(hookloop_loop.stop)
    hookloop_loop.run_forever()
    records = [r for r in caplog.records if r.name == "asyncio"]
    assert len(records) == 1
    assert "Unhandled error in exception handler" in records[0].getMessage()
    assert records[0].exc_info[0] is RuntimeError
    assert "Exception in callback" in records[0].getMessage()  # the original context


def test_default_exception_handler_logs(hookloop_loop, caplog):
    caplog.set_level(logging.ERROR, logger="asyncio")
    try:
        raise LookupError("for the log")
    except LookupError as exc:
        error = exc
    hookloop_loop.default_exception_handler({"message": "something failed",
                                             "exception": error, "detail": 42})
    records = [r for r in caplog.records if r.name == "asyncio"]
    assert len(records) == 1
    assert records[0].levelno == logging.ERROR
    assert "something failed" in records[0].getMessage()
    assert "detail: 42" in records[0].getMessage()
    assert records[0].exc_info[1] is error


def test_call_exception_handler_without_handler_uses_default(hookloop_loop, caplog):
    hookloop_loop.set_exception_handler(None)
    caplog.set_level(logging.ERROR, logger="asyncio")
    hookloop_loop.call_exception_handler({"message": "to the default handler"})
    assert any("to the default handler" in r.getMessage()
               for r in caplog.records if r.name == "asyncio")


def test_custom_handler_can_delegate_to_default(hookloop_loop, caplog):
    caplog.set_level(logging.ERROR, logger="asyncio")
    seen = []

    def handler(loop, context):
        seen.append(context["message"])
        loop.default_exception_handler(context)

    hookloop_loop.set_exception_handler(handler)
    hookloop_loop.call_exception_handler({"message": "delegated"})
    assert seen == ["delegated"]
    assert any("delegated" in r.getMessage() for r in caplog.records)


# ----------------------------------------------------------------------
# Debug mode
# ----------------------------------------------------------------------


def test_get_set_debug(hookloop_loop):
    hookloop_loop.set_debug(True)
    assert hookloop_loop.get_debug() is True
    hookloop_loop.set_debug(False)
    assert hookloop_loop.get_debug() is False


def test_debug_from_environment(hookloop_backend, monkeypatch):
    monkeypatch.setenv("PYTHONASYNCIODEBUG", "1")
    loop = hookloop.new_event_loop(hookloop_backend)
    try:
        assert loop.get_debug() is (not sys.flags.ignore_environment)
    finally:
        loop.close()


def test_slow_callback_warning(hookloop_loop, caplog):
    hookloop_loop.set_debug(True)
    hookloop_loop.slow_callback_duration = 0

    def a_trivial_callback():
        pass

    caplog.set_level(logging.WARNING, logger="asyncio")
    hookloop_loop.call_soon(a_trivial_callback)
    hookloop_loop.call_soon(hookloop_loop.stop)
    hookloop_loop.run_forever()
    warnings = [r.getMessage() for r in caplog.records
                if r.name == "asyncio" and r.levelno == logging.WARNING]
    assert any("Executing" in m and "took" in m and "a_trivial_callback" in m
               for m in warnings), warnings


def test_no_slow_callback_warning_without_debug(hookloop_loop, caplog):
    hookloop_loop.slow_callback_duration = 0
    caplog.set_level(logging.WARNING, logger="asyncio")
    hookloop_loop.call_soon(lambda: None)
    hookloop_loop.call_soon(hookloop_loop.stop)
    hookloop_loop.run_forever()
    assert not [r for r in caplog.records if "Executing" in r.getMessage()]


@pytest.mark.parametrize("method", ["call_soon", "call_later", "call_at"])
def test_non_threadsafe_call_from_other_thread_in_debug(hookloop_loop, method):
    hookloop_loop.set_debug(True)
    outcome = []
    calls = {
        "call_soon": lambda: hookloop_loop.call_soon(lambda: None),
        "call_later": lambda: hookloop_loop.call_later(1, lambda: None),
        "call_at": lambda: hookloop_loop.call_at(hookloop_loop.time() + 1, lambda: None),
    }

    def other_thread():
        try:
            calls[method]()
            outcome.append("no error")
        except RuntimeError as exc:
            outcome.append(exc)

    def while_running():
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
        hookloop_loop.stop()

    hookloop_loop.call_soon(while_running)
    hookloop_loop.run_forever()
    assert len(outcome) == 1
    assert isinstance(outcome[0], RuntimeError), outcome
    assert "Non-thread-safe operation" in str(outcome[0])


def test_threadsafe_call_from_other_thread_in_debug(hookloop_loop):
    hookloop_loop.set_debug(True)
    got = []

    def while_running():
        thread = threading.Thread(
            target=lambda: hookloop_loop.call_soon_threadsafe(got.append, "ok"))
        thread.start()
        thread.join()
        hookloop_loop.call_soon(hookloop_loop.stop)

    hookloop_loop.call_soon(while_running)
    hookloop_loop.run_forever()
    assert got == ["ok"]


def test_coroutine_origin_tracking(hookloop_loop):
    before = sys.get_coroutine_origin_tracking_depth()
    hookloop_loop.set_debug(True)

    async def main():
        return sys.get_coroutine_origin_tracking_depth()

    assert hookloop_loop.run_until_complete(main()) > 0
    assert sys.get_coroutine_origin_tracking_depth() == before


def test_coroutine_origin_tracking_restores_custom_depth(hookloop_loop):
    before = sys.get_coroutine_origin_tracking_depth()
    sys.set_coroutine_origin_tracking_depth(3)
    try:
        hookloop_loop.set_debug(True)
        hookloop_loop.run_until_complete(asyncio.sleep(0))
        assert sys.get_coroutine_origin_tracking_depth() == 3
    finally:
        sys.set_coroutine_origin_tracking_depth(before)


def test_no_origin_tracking_without_debug(hookloop_loop):
    before = sys.get_coroutine_origin_tracking_depth()

    async def main():
        return sys.get_coroutine_origin_tracking_depth()

    assert hookloop_loop.run_until_complete(main()) == before


def test_debug_handles_have_source_traceback(hookloop_loop):
    hookloop_loop.set_debug(True)

    async def coro():
        pass

    handles = [
        hookloop_loop.call_soon(lambda: None),
        hookloop_loop.call_later(10, lambda: None),
        hookloop_loop.call_at(hookloop_loop.time() + 10, lambda: None),
        hookloop_loop.call_soon_threadsafe(lambda: None),
    ]
    task = hookloop_loop.create_task(coro())
    for obj in [*handles, task]:
        tb = obj._source_traceback
        assert tb, obj
        assert any(frame.filename == __file__ for frame in tb), obj
    for h in handles:
        h.cancel()
    hookloop_loop.run_until_complete(task)


def test_no_source_traceback_without_debug(hookloop_loop):
    handle = hookloop_loop.call_soon(lambda: None)
    assert not handle._source_traceback


# ----------------------------------------------------------------------
# Instruments
# ----------------------------------------------------------------------


def test_poll_statistics(hookloop_loop):
    stats = hookloop.PollStatistics()
    hookloop_loop.add_instrument(stats)
    for _ in range(3):
        hookloop_loop.call_soon(lambda: None)
    hookloop_loop.call_soon(hookloop_loop.stop)
    hookloop_loop.run_forever()
    assert stats.callbacks == 4
    assert stats.polls >= 1
    assert set(stats.as_dict()) >= {"polls", "events", "callbacks"}


def test_poll_statistics_counts_events(hookloop_loop):
    import socket
    stats = hookloop.PollStatistics()
    hookloop_loop.add_instrument(stats)
    r, w = socket.socketpair()
    try:
        hookloop_loop.add_reader(r, lambda: (r.recv(10), hookloop_loop.stop()))
        w.send(b"x")
        hookloop_loop.run_forever()
        hookloop_loop.remove_reader(r)
    finally:
        r.close()
        w.close()
    assert stats.events >= 1
    assert stats.callbacks >= 1


def test_remove_instrument(hookloop_loop):
    stats = hookloop.PollStatistics()
    hookloop_loop.add_instrument(stats)
    hookloop_loop.call_soon(hookloop_loop.stop)
    hookloop_loop.run_forever()
    counted = stats.as_dict()
    hookloop_loop.remove_instrument(stats)
    hookloop_loop.call_soon(lambda: None)
    hookloop_loop.call_soon(hookloop_loop.stop)
    hookloop_loop.run_forever()
    assert stats.as_dict() == counted
    with pytest.raises(ValueError):
        hookloop_loop.remove_instrument(stats)


def test_add_instrument_type_check(hookloop_loop):
    with pytest.raises(TypeError):
        hookloop_loop.add_instrument(object())


class _Failing(hookloop.Instrument):
    def __init__(self, where):
        self.where = where
        self.calls = 0

    def _maybe_fail(self, name):
        if name == self.where:
            self.calls += 1
            raise ZeroDivisionError(f"instrument failed in {name}")

    def before_poll(self, timeout):
        self._maybe_fail("before_poll")

    def after_poll(self, timeout, nevents, duration):
        self._maybe_fail("after_poll")

    def before_callback(self, handle):
        self._maybe_fail("before_callback")

    def after_callback(self, handle, duration):
        self._maybe_fail("after_callback")


class _Counter(hookloop.Instrument):
    def __init__(self):
        self.counts = {"before_poll": 0, "after_poll": 0,
                       "before_callback": 0, "after_callback": 0}

    def before_poll(self, timeout):
        self.counts["before_poll"] += 1

    def after_poll(self, timeout, nevents, duration):
        self.counts["after_poll"] += 1

    def before_callback(self, handle):
        self.counts["before_callback"] += 1

    def after_callback(self, handle, duration):
        self.counts["after_callback"] += 1


WHERE = ["before_poll", "after_poll", "before_callback", "after_callback"]


@pytest.mark.parametrize("where", WHERE)
def test_failing_instrument_detached_and_reported(hookloop_loop, hookloop_errors, where):
    bad = _Failing(where)
    hookloop_loop.add_instrument(bad)
    for _ in range(3):
        hookloop_loop.call_soon(lambda: None)
    hookloop_loop.call_soon(hookloop_loop.stop)
    hookloop_loop.run_forever()
    hookloop_loop.call_soon(hookloop_loop.stop)
    hookloop_loop.run_forever()
    assert bad.calls == 1  # detached after its first failure
    hookloop_errors.expect("failed and was detached", ZeroDivisionError)
    with pytest.raises(ValueError):
        hookloop_loop.remove_instrument(bad)


@pytest.mark.parametrize("where", WHERE)
def test_failing_instrument_does_not_starve_the_next(hookloop_loop, hookloop_errors, where):
    # Detaching a failing instrument must not make the loop skip the
    # instrument after it for that call: every poll and callback the second
    # instrument saw start, it must also see finish.
    counter = _Counter()
    hookloop_loop.add_instrument(_Failing(where))
    hookloop_loop.add_instrument(counter)
    for _ in range(3):
        hookloop_loop.call_soon(lambda: None)
    hookloop_loop.call_soon(hookloop_loop.stop)
    hookloop_loop.run_forever()
    hookloop_errors.expect("failed and was detached", ZeroDivisionError)
    c = counter.counts
    assert c["before_poll"] == c["after_poll"], c
    assert c["before_callback"] == c["after_callback"] == 4, c


def test_set_debug_while_running(hookloop_loop):
    before = sys.get_coroutine_origin_tracking_depth()

    async def main():
        outside = sys.get_coroutine_origin_tracking_depth()
        hookloop_loop.set_debug(True)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return outside, sys.get_coroutine_origin_tracking_depth()

    outside, inside = hookloop_loop.run_until_complete(main())
    assert outside == before
    assert inside > 0
    assert sys.get_coroutine_origin_tracking_depth() == before


def test_debug_default_handler_shows_where_handle_was_created(hookloop_loop, caplog):
    hookloop_loop.set_debug(True)
    hookloop_loop.set_exception_handler(None)
    caplog.set_level(logging.ERROR, logger="asyncio")

    def failing():
        raise ArithmeticError("debug report")

    hookloop_loop.call_soon(failing)
    hookloop_loop.call_soon(hookloop_loop.stop)
    hookloop_loop.run_forever()
    messages = [r.getMessage() for r in caplog.records if r.name == "asyncio"
                and r.levelno == logging.ERROR]
    assert len(messages) == 1
    assert "Exception in callback" in messages[0]
    assert "created at" in messages[0]
    assert __file__ in messages[0]


# ----------------------------------------------------------------------
# Instruments and debug mode see I/O callbacks (called straight from the
# fd table: a transport's bound method, not a Handle)
# ----------------------------------------------------------------------


class _IOCounter(hookloop.Instrument):
    def __init__(self, fail_in=None):
        self.fail_in = fail_in
        self.before = []
        self.after = []

    def before_io_callback(self, fd, callback):
        self.before.append((fd, callback))
        if self.fail_in == "before_io_callback":
            raise ZeroDivisionError("before")

    def after_io_callback(self, fd, callback, duration):
        self.after.append((fd, callback, duration))
        if self.fail_in == "after_io_callback":
            raise ZeroDivisionError("after")


def _one_read(loop, on_data=lambda data: None):
    """A transport on one end of a socket pair receives one message; returns
    the transport's fd (closed by now)."""
    import socket
    got = loop.create_future()

    class Proto(asyncio.Protocol):
        def data_received(self, data):
            on_data(data)
            got.set_result(data)

    a, b = socket.socketpair()
    fd = a.fileno()
    try:
        transport, _ = loop.run_until_complete(loop.create_connection(Proto, sock=a))
        b.send(b"ping")
        assert loop.run_until_complete(got) == b"ping"
        transport.close()
        loop.run_until_complete(asyncio.sleep(0))
    finally:
        b.close()
    return fd


def test_instruments_see_io_callbacks(hookloop_loop):
    counter = _IOCounter()
    stats = hookloop.PollStatistics()
    hookloop_loop.add_instrument(counter)
    hookloop_loop.add_instrument(stats)
    transport_fd = _one_read(hookloop_loop)
    reads = [(fd, cb) for fd, cb in counter.before if fd == transport_fd]
    assert reads, counter.before
    assert [(fd, cb) for fd, cb, _ in counter.after] == counter.before
    assert all(duration >= 0 for _, _, duration in counter.after)
    assert stats.io_callbacks == len(counter.after)
    assert stats.as_dict()["io_callbacks"] == len(counter.after)


@pytest.mark.parametrize("where", ["before_io_callback", "after_io_callback"])
def test_failing_io_instrument_detached_and_reported(hookloop_loop, hookloop_errors, where):
    bad = _IOCounter(fail_in=where)
    counter = _IOCounter()
    hookloop_loop.add_instrument(bad)
    hookloop_loop.add_instrument(counter)
    _one_read(hookloop_loop)
    assert len(bad.before) == 1  # detached after its first failure
    hookloop_errors.expect("failed and was detached", ZeroDivisionError)
    assert len(counter.before) == len(counter.after) >= 1


def test_slow_io_callback_warning_in_debug_mode(hookloop_loop, caplog):
    import time
    hookloop_loop.set_debug(True)
    hookloop_loop.slow_callback_duration = 0.05
    caplog.set_level(logging.WARNING, logger="asyncio")
    _one_read(hookloop_loop, on_data=lambda data: time.sleep(0.06))
    warnings = [r.getMessage() for r in caplog.records
                if r.name == "asyncio" and r.levelno == logging.WARNING]
    assert any(m.startswith("Executing <Handle ") and m.endswith(" seconds") for m in warnings), \
        warnings


def test_no_slow_io_callback_warning_without_debug(hookloop_loop, caplog):
    import time
    hookloop_loop.slow_callback_duration = 0.05
    caplog.set_level(logging.WARNING, logger="asyncio")
    _one_read(hookloop_loop, on_data=lambda data: time.sleep(0.06))
    assert not [r for r in caplog.records if "Executing" in r.getMessage()]


def test_io_callback_source_is_kept_in_debug_mode_until_the_watch_goes(hookloop_loop):
    # In debug mode the loop remembers where each plugin watch was set (for
    # the reports that name an I/O callback, as asyncio's handles keep their
    # source); the entry goes with the watch, so churn leaves nothing behind.
    import os
    r, w = os.pipe()
    try:
        def on_readable():
            pass

        def other():
            pass

        hookloop_loop.watch_read(r, on_readable)
        assert hookloop_loop.io_callback_source(on_readable) is None  # debug off
        hookloop_loop.unwatch_read(r)
        hookloop_loop.set_debug(True)
        line = sys._getframe().f_lineno + 1
        hookloop_loop.watch_read(r, on_readable)
        source = hookloop_loop.io_callback_source(on_readable)
        assert (source[-1].filename, source[-1].lineno) == (__file__, line)
        hookloop_loop.watch_read(r, other)  # replaced: the old entry goes
        assert hookloop_loop.io_callback_source(on_readable) is None
        assert hookloop_loop.io_callback_source(other) is not None
        hookloop_loop.unwatch_read(r)
        assert hookloop_loop.io_callback_source(other) is None
        # A hundred connections made and closed in debug mode leave no entry.
        for _ in range(100):
            _one_read(hookloop_loop)
        assert hookloop_loop._io_sources == {}
    finally:
        os.close(r)
        os.close(w)


def test_exception_handler_runs_in_the_failing_codes_context_as_asyncios(hookloop_backend):
    # asyncio 3.12+ (gh-96704) runs a custom exception handler in the
    # context of the task, future or handle it is told about, so it sees
    # what the failing code set; 3.11's runs it in the loop's.  Whatever
    # this Python's asyncio does, hookloop does: a failing callback, a task
    # whose exception nobody retrieved, and a protocol callback raising out
    # of its transport's readiness callback.
    import contextvars
    import gc
    import socket

    name = contextvars.ContextVar("name", default="unset")

    class Failing(asyncio.DatagramProtocol):
        def datagram_received(self, data, addr):
            name.set("datagram")
            raise ZeroDivisionError

    def callback():
        name.set("callback")
        raise ZeroDivisionError

    async def task():
        name.set("task")
        raise ZeroDivisionError

    def observe(loop):
        seen = []
        done = loop.create_future()

        def handler(loop, context):
            seen.append((context["message"].split(" ")[0:3], name.get()))
            if len(seen) == 3:
                done.set_result(None)

        async def program():
            loop.set_exception_handler(handler)
            loop.call_soon(callback)
            loop.create_task(task())
            await asyncio.sleep(0)
            gc.collect()  # the task, nobody's by now, reports its exception
            transport, _ = await loop.create_datagram_endpoint(Failing,
                                                               local_addr=("127.0.0.1", 0))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
                peer.sendto(b"x", transport.get_extra_info("sockname"))
                await asyncio.wait_for(done, 10)
            transport.close()
            await asyncio.sleep(0)

        try:
            loop.run_until_complete(program())
        finally:
            loop.close()
        return sorted(seen)

    expected = observe(asyncio.new_event_loop())
    assert observe(hookloop.new_event_loop(hookloop_backend, stall=False)) == expected
    values = sorted(value for _, value in expected)
    assert values == (["callback", "datagram", "task"] if sys.version_info >= (3, 12)
                      else ["unset"] * 3)
