"""Instruments: observers of the run loop that cost nothing when absent.

An instrument sees each poll, each callback (``asyncio.Handle``) and each
I/O callback (a plugin's bound method called straight from the fd table
when the poller reports its fd ready).  The loop has two ways to
run an iteration: the fast path, used when no instrument is attached and
debug mode is off, contains no instrumentation code at all; the instrumented
path calls every attached instrument.  Debug mode's slow-callback warning is
itself an instrument (:class:`SlowCallbackWarning`) that the loop attaches
while debug mode is on.

Plugins attach instruments through the ``hookloop_instruments`` hook, or at
run time with ``loop.add_instrument()``.
"""
from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from typing import Any

from .handles import describe_callback

__all__ = ["Instrument", "SlowCallbackWarning", "PollStatistics", "io_callback_target"]

logger = logging.getLogger("asyncio")


class Instrument:
    """Base class: override what you need; every method defaults to nothing.

    Instruments run inside the loop's thread, between callbacks.  An
    exception raised by an instrument is reported to the loop's exception
    handler and the instrument is detached.
    """

    def before_poll(self, timeout: float | None) -> None:
        """About to wait for I/O for at most ``timeout`` seconds."""

    def after_poll(self, timeout: float | None, nevents: int, duration: float) -> None:
        """The poll returned ``nevents`` events after ``duration`` seconds."""

    def before_callback(self, handle: Any) -> None:
        """About to run ``handle`` (an ``asyncio.Handle``)."""

    def after_callback(self, handle: Any, duration: float) -> None:
        """``handle`` ran for ``duration`` seconds (even if it raised)."""

    def before_io_callback(self, fd: int, callback: Any) -> None:
        """About to call ``callback()`` because ``fd`` is ready (a transport's
        or another plugin's bound method, not a ``Handle``)."""

    def after_io_callback(self, fd: int, callback: Any, duration: float) -> None:
        """The I/O ``callback`` for ``fd`` ran for ``duration`` seconds (even
        if it raised)."""


class SlowCallbackWarning(Instrument):
    """Debug mode: log callbacks slower than ``loop.slow_callback_duration``.

    Also tracks the handle being run, so the default exception handler can
    show where it was created.
    """

    def __init__(self, loop: Any) -> None:
        self._loop = loop

    def before_callback(self, handle: Any) -> None:
        self._loop._current_handle = handle

    def after_callback(self, handle: Any, duration: float) -> None:
        self._loop._current_handle = None
        if duration >= self._loop.slow_callback_duration:
            logger.warning("Executing %s took %.3f seconds", _format_handle(handle), duration)

    def after_io_callback(self, fd: int, callback: Any, duration: float) -> None:
        if duration >= self._loop.slow_callback_duration:
            logger.warning("Executing %s took %.3f seconds",
                           _format_io_callback(callback, self._loop), duration)

    def after_poll(self, timeout: float | None, nevents: int, duration: float) -> None:
        if duration >= 1.0:
            level = logging.INFO
        else:
            level = logging.DEBUG
        if logger.isEnabledFor(level):
            logger.log(level, "poll %s took %.3f ms: %s events",
                       "forever" if timeout is None else f"{timeout * 1e3:.3f} ms",
                       duration * 1e3, nevents)


class PollStatistics(Instrument):
    """Counts polls, events, callbacks and time spent in each."""

    def __init__(self) -> None:
        self.polls = 0
        self.events = 0
        self.poll_time = 0.0
        self.callbacks = 0
        self.callback_time = 0.0
        self.io_callbacks = 0
        self.io_callback_time = 0.0

    def after_poll(self, timeout: float | None, nevents: int, duration: float) -> None:
        self.polls += 1
        self.events += nevents
        self.poll_time += duration

    def after_callback(self, handle: Any, duration: float) -> None:
        self.callbacks += 1
        self.callback_time += duration

    def after_io_callback(self, fd: int, callback: Any, duration: float) -> None:
        self.io_callbacks += 1
        self.io_callback_time += duration

    def as_dict(self) -> dict[str, float]:
        return {"polls": self.polls, "events": self.events, "poll_time": self.poll_time,
                "callbacks": self.callbacks, "callback_time": self.callback_time,
                "io_callbacks": self.io_callbacks, "io_callback_time": self.io_callback_time}


def io_callback_target(callback: Any) -> Any:
    """What an fd-table entry calls: ``callback`` itself, or the callable
    inside ``functools.partial(context.run, callable)`` (what
    ``EventLoop.watch_read`` stores when given a context).  For naming
    callbacks in reports; never called on the fast path."""
    if type(callback) is functools.partial and len(callback.args) == 1 \
            and not callback.keywords:
        run = callback.func
        if type(getattr(run, "__self__", None)) is contextvars.Context \
                and getattr(run, "__name__", None) == "run":
            return callback.args[0]
    return callback


def _format_io_callback(callback: Any, loop: Any) -> str:
    # As asyncio's loop names the Handle of a transport's readiness callback
    # ("<Handle _SelectorSocketTransport._read_ready() created at
    # .../selector_events.py:263>"): the callback as a Handle shows it, and,
    # in debug mode, where its watch was set (the loop keeps that while it
    # is in debug mode, as asyncio's handles keep their source).
    callback = io_callback_target(callback)
    text = f"<Handle {describe_callback(callback, (), loop)}"
    source = loop.io_callback_source(callback)
    if source:
        frame = source[-1]
        text += f" created at {frame.filename}:{frame.lineno}"
    return text + ">"


def _format_handle(handle: Any) -> str:
    callback = getattr(handle, "_callback", None)
    task = getattr(callback, "__self__", None)
    if isinstance(task, asyncio.Task):
        return repr(task)
    return str(handle)
