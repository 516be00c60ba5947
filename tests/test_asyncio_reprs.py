"""Handles print as asyncio's; debug mode's slow-callback warning and the
exception handler's messages read as asyncio's.

Each test runs the same program on asyncio's own loop and on a hookloop loop
of every backend and compares what they print.  Only what legitimately
differs between two loops is normalised, and each such place says why:
the clock reading inside a ``call_later`` handle (``when=``, taken at two
different instants), the duration a slow callback took, and the names of
the loops' own internal I/O callbacks (asyncio's
``_SelectorSocketTransport._read_ready`` is not a hookloop method).
"""
from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import re
import socket
import sys
import threading
import time

import pytest

import hookloop
from hookloop.handles import CallbackHandle, ThreadsafeCallbackHandle, TimerCallbackHandle
from hookloop.instruments import SlowCallbackWarning

# Where asyncio has it (3.13.1+), call_soon_threadsafe returns this type and
# test_asyncio checks for it.
ASYNCIO_THREADSAFE_TYPE = getattr(asyncio.events, "_ThreadSafeHandle", None)


def func():
    pass


def func_with_args(a, b):
    pass


class Thing:
    def method(self):
        pass


def loops(backend):
    """asyncio's loop and a hookloop loop on ``backend``, in that order."""
    return [("asyncio", asyncio.new_event_loop()),
            (backend, hookloop.new_event_loop(backend, stall=False))]


def handle_reprs(loop):
    """Everything a program can see of the handles the scheduling methods
    return: repr() and str(), pending and cancelled, plain and in debug mode."""
    seen = []

    def show(label, handle):
        seen.append((label, repr(handle)))
        seen.append((label + " str", str(handle)))

    def when_normalised(text):
        # call_later's deadline is the clock read inside the call: two loops,
        # two instants.  Only the number is replaced.
        return re.sub(r"when=[0-9.e+-]+", "when=<now+10>", text)

    thing = Thing()
    for debug in (False, True):
        loop.set_debug(debug)
        tag = "debug " if debug else ""
        cases = [
            ("call_soon", loop.call_soon(func)),
            ("call_soon args", loop.call_soon(func_with_args, 1, "two")),
            ("call_soon method", loop.call_soon(thing.method)),
            ("call_soon partial", loop.call_soon(functools.partial(func_with_args, 1), 2)),
            ("call_soon lambda", loop.call_soon(lambda: None)),
            ("call_soon builtin", loop.call_soon(print)),
            ("call_soon context", loop.call_soon(func, context=contextvars.copy_context())),
            ("call_at", loop.call_at(12345.5, func)),
            ("call_at args", loop.call_at(12345.5, func_with_args, 1, 2)),
            ("call_soon_threadsafe", loop.call_soon_threadsafe(func)),
            ("call_soon_threadsafe args", loop.call_soon_threadsafe(func_with_args, 1, 2)),
        ]
        later = loop.call_later(10, func)
        for label, handle in cases:
            show(tag + label, handle)
        seen.append((tag + "call_later", when_normalised(repr(later))))
        for label, handle in cases:
            handle.cancel()
            show(tag + label + " cancelled", handle)
        later.cancel()
        seen.append((tag + "call_later cancelled", when_normalised(repr(later))))
    # A handle made from another thread.
    made = []
    thread = threading.Thread(target=lambda: made.append(loop.call_soon_threadsafe(func)))
    thread.start()
    thread.join()
    show("call_soon_threadsafe from a thread", made[0])
    made[0].cancel()
    show("call_soon_threadsafe from a thread cancelled", made[0])
    loop.set_debug(False)
    return seen


def test_handle_reprs_are_asyncios(hookloop_backend):
    results = {}
    for name, loop in loops(hookloop_backend):
        try:
            results[name] = handle_reprs(loop)
        finally:
            loop.close()
    expected = results["asyncio"]
    assert results[hookloop_backend] == expected
    # The comparison is not vacuous: asyncio's reprs are what we think.
    reprs = dict(expected)
    assert reprs["call_soon"] == f"<Handle func() at {__file__}:{func.__code__.co_firstlineno}>"
    assert reprs["call_soon cancelled"] == "<Handle cancelled>"
    assert reprs["call_at"].startswith("<TimerHandle when=12345.5 func() at ")
    assert reprs["call_at cancelled"] == "<TimerHandle cancelled when=12345.5>"
    assert re.fullmatch(r"<Handle cancelled func\(\) at \S+ created at \S+:\d+>",
                        reprs["debug call_soon cancelled"])
    threadsafe_name = (ASYNCIO_THREADSAFE_TYPE or asyncio.Handle).__name__
    assert reprs["call_soon_threadsafe"].startswith(f"<{threadsafe_name} func() at ")


def here(handle):
    """``handle`` and the line number of the caller's current line."""
    return handle, sys._getframe(1).f_lineno


def test_debug_reprs_name_the_line_that_scheduled(hookloop_backend):
    # "created at" is the user's line, for each scheduling method, on both loops.
    for name, loop in loops(hookloop_backend):
        loop.set_debug(True)
        try:
            made = [here(loop.call_soon(func)),
                    here(loop.call_later(1, func)),
                    here(loop.call_at(1.0, func)),
                    here(loop.call_soon_threadsafe(func))]
            assert len({line for _, line in made}) == 4
            for handle, line in made:
                assert repr(handle).endswith(f" created at {__file__}:{line}>"), (name, handle)
        finally:
            loop.close()


def test_handle_types(hookloop_backend):
    # The classes keep their names; the types asyncio's loop returns hold.
    for name, loop in loops(hookloop_backend):
        try:
            soon = loop.call_soon(func)
            timer = loop.call_later(1, func)
            threadsafe = loop.call_soon_threadsafe(func)
            assert isinstance(soon, asyncio.Handle) and not isinstance(soon, asyncio.TimerHandle)
            assert isinstance(timer, asyncio.TimerHandle)
            assert isinstance(threadsafe, asyncio.Handle)
            if ASYNCIO_THREADSAFE_TYPE is not None:
                assert isinstance(threadsafe, ASYNCIO_THREADSAFE_TYPE), name
                assert not isinstance(soon, ASYNCIO_THREADSAFE_TYPE), name
            if name != "asyncio":
                assert type(soon) is CallbackHandle
                assert type(timer) is TimerCallbackHandle
                assert type(threadsafe) is ThreadsafeCallbackHandle
        finally:
            loop.close()


# --- the slow-callback warning ----------------------------------------------------------

SLOW = 0.05  # seconds each slow callback blocks; the threshold is well below it


def slow_callback():
    time.sleep(SLOW)


async def slow_step():
    time.sleep(SLOW)


class SlowProtocol(asyncio.Protocol):
    def __init__(self, received):
        self.received = received

    def data_received(self, data):
        time.sleep(SLOW)
        self.received.set_result(data)


async def slow_program(loop):
    loop.call_soon(slow_callback)
    loop.call_later(0.001, slow_callback)
    await asyncio.sleep(0.05)
    await loop.create_task(slow_step(), name="slow-task")
    # A slow protocol callback: asyncio reports its transport's readiness
    # callback; hookloop its transport's.
    a, b = socket.socketpair()
    received = loop.create_future()
    transport, _ = await loop.create_connection(lambda: SlowProtocol(received), sock=a)
    b.send(b"x")
    await received
    transport.close()
    b.close()
    # A slow add_reader callback.
    r, w = socket.socketpair()
    done = loop.create_future()

    def on_readable():
        r.recv(10)
        time.sleep(SLOW)
        loop.remove_reader(r)
        done.set_result(None)

    loop.add_reader(r, on_readable)
    w.send(b"x")
    await done
    r.close()
    w.close()
    await asyncio.sleep(0)


def slow_warnings(loop, caplog):
    loop.set_debug(True)
    loop.slow_callback_duration = SLOW / 5
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop.run_until_complete(slow_program(loop))
    return [r.getMessage() for r in caplog.records
            if r.name == "asyncio" and r.getMessage().startswith("Executing ")]


def normalised(message):
    # The duration is measured, not compared; a timer's deadline is a clock
    # reading.
    message = re.sub(r" took \d+\.\d{3} seconds$", " took <t> seconds", message)
    message = re.sub(r"when=[0-9.e+-]+", "when=<t>", message)
    # The loops' own I/O callbacks have their own names, and asyncio's Handle
    # for one was made inside asyncio (selector_events.py): keep the shape.
    # In debug mode both name where the callback's watch was set (asyncio:
    # the add_reader call in selector_events.py; hookloop: the transport's
    # watch_read call): required, not compared.
    message = re.sub(r"^Executing <Handle (_SelectorSocketTransport\._read_ready|"
                     r"SocketTransport\._on_readable)\(\) created at \S+>",
                     "Executing <Handle <transport read callback>()>", message)
    # asyncio makes the Handle of an add_reader callback inside its own
    # selector_events.py; hookloop names the add_reader() call.  The callback
    # and its source are compared.
    return re.sub(r"(on_readable\(\) at \S+) created at \S+>", r"\1 created at <add_reader>>",
                  message)


# What slow_program makes slow on purpose.  A busy machine can make any
# other callback (the program's own task steps, a loop's internal ones)
# cross the 10 ms threshold on one loop and not the other: those warnings
# are dropped on both sides.
SUBJECTS = ("slow_callback() at", "name='slow-task'", "<transport read callback>",
            "on_readable() at")


def test_slow_callback_warnings_are_asyncios(hookloop_backend, caplog):
    results = {}
    for name, loop in loops(hookloop_backend):
        try:
            results[name] = [m for m in map(normalised, slow_warnings(loop, caplog))
                             if any(subject in m for subject in SUBJECTS)]
        finally:
            loop.close()
    expected = results["asyncio"]
    assert results[hookloop_backend] == expected
    # Each kind was reported, in asyncio's words.
    line = slow_program.__code__.co_firstlineno
    source = f"slow_callback() at {__file__}:{slow_callback.__code__.co_firstlineno}"
    assert f"Executing <Handle {source} created at {__file__}:{line + 1}> took <t> seconds" \
        in expected, expected
    assert (f"Executing <TimerHandle when=<t> {source} created at {__file__}:{line + 2}> "
            "took <t> seconds") in expected, expected
    assert any(m.startswith("Executing <Task finished name='slow-task' coro=<slow_step() done")
               for m in expected), expected
    assert "Executing <Handle <transport read callback>()> took <t> seconds" in expected
    assert any("on_readable() at" in m for m in expected), expected


def test_slow_io_callback_named_through_its_context_partial(caplog):
    # The fd table may hold functools.partial(context.run, bound_method) for
    # a transport callback that runs in its connection's context: the
    # warning names the method, as asyncio's names its Handle's callback.
    loop = hookloop.new_event_loop(stall=False)
    try:
        loop.slow_callback_duration = 0.1
        warning = SlowCallbackWarning(loop)
        thing = Thing()
        with caplog.at_level(logging.WARNING, logger="asyncio"):
            warning.after_io_callback(5, functools.partial(contextvars.copy_context().run,
                                                           thing.method), 0.25)
            warning.after_io_callback(5, thing.method, 0.25)
            warning.after_io_callback(5, thing.method, 0.05)  # under the threshold
        assert [r.getMessage() for r in caplog.records] == [
            "Executing <Handle Thing.method()> took 0.250 seconds"] * 2
    finally:
        loop.close()


# --- the exception handler's messages ---------------------------------------------

class T:
    def method(self):
        raise ZeroDivisionError


def failing():
    raise ZeroDivisionError


class FailingDatagrams(asyncio.DatagramProtocol):
    """datagram_received raises: on asyncio's loop the exception escapes the
    transport's readiness callback (3.11-3.14 do not catch it there) and is
    reported as that callback's Handle's."""

    def datagram_received(self, data, addr):
        raise ZeroDivisionError


def reported(loop, debug):
    """The exception handler's contexts for a failing call_soon callback of
    each kind and for a failing datagram_received, as text."""
    loop.set_debug(debug)
    contexts = []

    def handler(loop, context):
        # The handle as the handler sees it (asyncio's is cancelled later,
        # when the transport closes; ours was made for the report).
        contexts.append({**context, "handle": repr(context["handle"])})
        if len(contexts) == 4:
            everything.set_result(None)

    async def program():
        loop.set_exception_handler(handler)
        loop.call_soon(T().method)
        loop.call_soon(failing)
        loop.call_soon(functools.partial(failing))
        transport, _ = await loop.create_datagram_endpoint(FailingDatagrams,
                                                           local_addr=("127.0.0.1", 0))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
            peer.sendto(b"x", transport.get_extra_info("sockname"))
            await everything
        transport.close()
        await asyncio.sleep(0)

    everything = loop.create_future()
    loop.run_until_complete(asyncio.wait_for(program(), 10))
    seen = []
    for context in contexts:
        source = context.get("source_traceback")
        seen.append((
            io_normalised(context["message"]),
            sorted(context),
            type(context["exception"]).__name__,
            io_normalised(context["handle"]),
            # Where the handle was made, in debug mode: this file's line for
            # call_soon; for the transport's callback, the loop's own source.
            None if source is None else (
                source[-1].lineno if source[-1].filename == __file__ else "loop's own"),
        ))
    return seen


def io_normalised(text):
    # The transports' readiness callbacks have each loop's own name, and in
    # debug mode each names where its loop set the watch.
    text = re.sub(r"(_SelectorDatagramTransport\._read_ready|DatagramTransport\._on_readable)"
                  r"\(\)", "<datagram read callback>()", text)
    return re.sub(r"(<datagram read callback>\(\)) created at \S+>",
                  r"\1 created at <the loop's source>>", text)


@pytest.mark.parametrize("debug", [False, True], ids=["normal", "debug"])
def test_exception_handler_contexts_are_asyncios(hookloop_backend, debug):
    results = {}
    for name, loop in loops(hookloop_backend):
        try:
            results[name] = reported(loop, debug)
        finally:
            loop.close()
    expected = results["asyncio"]
    assert results[hookloop_backend] == expected
    messages = [message for message, *_ in expected]
    here = f"{__file__}:{failing.__code__.co_firstlineno}"
    assert messages == ["Exception in callback T.method()",
                        f"Exception in callback failing() at {here}",
                        f"Exception in callback failing()() at {here}",
                        "Exception in callback <datagram read callback>()"]
