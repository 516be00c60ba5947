"""Handles: asyncio's public ``Handle``/``TimerHandle`` types, made cheaply.

Every user callback scheduled on a hookloop loop is represented by an
``asyncio.Handle`` (or ``asyncio.TimerHandle``), so ``cancel()``,
``cancelled()``, ``when()``, ``get_context()`` and ``repr()`` behave exactly
as on asyncio's own loop.  The subclasses here only replace the constructor
and ``cancel()``: asyncio's call ``loop.get_debug()`` every time, ours read
the loop's flag, and the timer's ``cancel()`` counts the cancellation itself
instead of calling ``loop._timer_handle_cancelled()``.  They add no slots
and no behaviour.  Only a hookloop :class:`~hookloop.EventLoop` makes them.

Their reprs are asyncio's, class name included: ``<Handle f() at file:line>``,
``<TimerHandle when=... f() ...>``, and for ``call_soon_threadsafe`` whatever
asyncio's own loop prints on this Python (``<Handle ...>`` up to 3.13.0,
``<_ThreadSafeHandle ...>`` after).  The slow-callback warning ("Executing
<Handle ...> took ...") and log parsers see the same text on both loops.

The loop reads the slots ``_callback``, ``_args``, ``_context`` and
``_cancelled`` directly in its run loop (instead of calling ``_run()``): one
Python frame less per callback.  :func:`_check_layout` verifies at import
that asyncio's ``Handle`` still has exactly the slots we set, so a future
CPython that changes them fails loudly here rather than subtly at run time.
"""
from __future__ import annotations

import asyncio
import contextvars
import sys
import threading
import traceback
from typing import TYPE_CHECKING, Any, cast

__all__ = ["CallbackHandle", "ThreadsafeCallbackHandle", "TimerCallbackHandle",
           "describe_callback", "extract_source"]

_copy_context = contextvars.copy_context


def _init_handle(handle: Any, callback: Any, args: tuple[Any, ...],
                 loop: asyncio.AbstractEventLoop, context: contextvars.Context | None,
                 source: Any = None) -> None:
    # What asyncio.Handle.__init__ does, minus the loop.get_debug() call: the
    # loop passes the source traceback when it is in debug mode.
    handle._context = _copy_context() if context is None else context
    handle._loop = loop
    handle._callback = callback
    handle._args = args
    handle._cancelled = False
    handle._repr = None
    handle._source_traceback = source


def _cancel_handle(handle: Any) -> None:
    # What asyncio.Handle.cancel() does, reading the loop's flag instead of
    # calling loop.get_debug().
    if not handle._cancelled:
        handle._cancelled = True
        if handle._loop._debug:
            handle._repr = repr(handle)
        handle._callback = None
        handle._args = None


def _asyncio_name(cls: type) -> str:
    """The class name asyncio's own loop prints for a handle of this kind:
    that of the nearest asyncio class among ``cls``'s bases."""
    for base in cls.__mro__:
        if base.__module__.startswith("asyncio."):
            return base.__name__
    raise TypeError(f"{cls!r} derives from no asyncio class")  # pragma: no cover


def _as_asyncio_repr_info(handle: Any, info: list[str]) -> list[str]:
    # asyncio's Handle._repr_info() (and TimerHandle's) starts with the
    # handle's class name: put asyncio's class name there instead of ours.
    # Everything after it (cancelled, when=, the callback, "created at") is
    # asyncio's own code.
    if info and info[0] == type(handle).__name__:
        info[0] = _asyncio_name(type(handle))
    return info


class CallbackHandle(asyncio.Handle):
    """An ``asyncio.Handle`` built without asking the loop for its debug flag."""

    __slots__ = ()
    __init__ = _init_handle
    cancel = _cancel_handle

    def _repr_info(self) -> list[str]:
        # asyncio's own method (typeshed does not declare it; _check_layout does).
        return _as_asyncio_repr_info(self, super()._repr_info())  # type: ignore[misc]


class _LockedContext:
    """A thread-safe handle's context, as the run loop sees it.

    The run loop calls ``handle._context.run(callback, *args)`` for every
    handle; for a thread-safe handle that call holds the handle's lock and
    checks cancellation again under it, so ``cancel()``/``cancelled()`` from
    another thread wait until a running callback has returned.  Ordinary
    handles pay nothing for this.
    """

    __slots__ = ("context", "handle")

    def __init__(self, context: contextvars.Context, handle: ThreadsafeCallbackHandle) -> None:
        self.context = context
        self.handle: ThreadsafeCallbackHandle | None = handle

    def run(self, callback: Any, *args: Any) -> Any:
        handle, self.handle = self.handle, None  # no cycle left once it ran
        if handle is None:
            return None
        with handle._lock:
            if handle._cancelled:
                return None
            return self.context.run(callback, *args)


# asyncio's own call_soon_threadsafe returns an events._ThreadSafeHandle
# where it has one (3.13.1+, 3.14); test_asyncio checks that type.  Ours
# derives from it there, so isinstance() holds, and brings its own lock
# elsewhere.  Only the type is used: the locking below is ours.  Its layout
# is checked by _check_layout() above, before the class below is made.
# (An exception to rule 1 allowed on this one line by tests/test_source_rules.py.)
_AsyncioThreadSafeHandle: Any = getattr(asyncio.events, "_ThreadSafeHandle", None)


def _methods(cls: type) -> set[str]:
    """The names of the functions ``cls`` itself defines."""
    return {name for name, value in vars(cls).items()
            if callable(value) or isinstance(value, (staticmethod, classmethod))}


def _check_layout() -> None:
    """Fail at import, loudly, when asyncio's handle types are not what this
    module was written against: the slots we set and read, and the methods
    we override or inherit.  A future CPython that changes them must not
    fail subtly at run time."""
    def unsupported(what: str) -> ImportError:
        return ImportError(f"{what}; this Python version is not supported by this hookloop "
                           "version (hookloop/handles.py needs an update)")

    expected = {"_callback", "_args", "_cancelled", "_loop", "_source_traceback", "_repr",
                "_context"}
    have = set(asyncio.Handle.__slots__) - {"__weakref__"}
    if have != expected:  # pragma: no cover - only on an incompatible CPython
        raise unsupported(f"asyncio.Handle has slots {sorted(have)}, hookloop expects "
                          f"{sorted(expected)}")
    if set(asyncio.TimerHandle.__slots__) != {"_scheduled", "_when"}:  # pragma: no cover
        raise unsupported("asyncio.TimerHandle changed its slots")
    # Overridden here (reprs: _repr_info returns [class name, ...]).
    for cls, names in ((asyncio.Handle, {"__init__", "cancel", "_repr_info", "__repr__"}),
                       (asyncio.TimerHandle, {"__init__", "cancel", "_repr_info"})):
        missing = names - _methods(cls)
        if missing:  # pragma: no cover
            raise unsupported(f"asyncio.{cls.__name__} no longer defines {sorted(missing)}")
    threadsafe = _AsyncioThreadSafeHandle
    if threadsafe is not None:
        # ThreadsafeCallbackHandle derives from it for isinstance() only: it
        # sets the one slot (_lock), overrides __init__/cancel/cancelled and
        # inherits _run, which takes that lock and calls Handle._run (that
        # calls our _LockedContext.run: an RLock, taken twice, is fine).
        if threadsafe.__bases__ != (asyncio.Handle,):  # pragma: no cover
            raise unsupported(f"{threadsafe!r} has bases {threadsafe.__bases__}")
        slots = threadsafe.__dict__.get("__slots__")
        if slots is None or set([slots] if isinstance(slots, str) else slots) != {"_lock"}:
            raise unsupported(f"{threadsafe!r} has slots {slots!r}, hookloop expects ('_lock',)")
        methods = _methods(threadsafe)
        if methods != {"__init__", "cancel", "cancelled", "_run"}:  # pragma: no cover
            raise unsupported(f"{threadsafe!r} defines {sorted(methods)}, hookloop expects "
                              "['__init__', '_run', 'cancel', 'cancelled']")


_check_layout()

if _AsyncioThreadSafeHandle is None or TYPE_CHECKING:
    # (What a type checker sees: asyncio's class is private, untyped.)
    class _ThreadsafeBase(CallbackHandle):
        __slots__ = ("_lock",)
else:
    class _ThreadsafeBase(CallbackHandle, _AsyncioThreadSafeHandle):
        __slots__ = ()


class ThreadsafeCallbackHandle(_ThreadsafeBase):
    """The handle ``call_soon_threadsafe`` returns.

    ``cancel()`` and ``cancelled()`` take the handle's lock, which the run
    loop holds while the callback runs (see :class:`_LockedContext`): once
    another thread's ``cancel()`` returns, the callback has either finished
    or will never start.
    """

    __slots__ = ()

    def __init__(self, callback: Any, args: tuple[Any, ...], loop: asyncio.AbstractEventLoop,
                 context: contextvars.Context | None, source: Any = None) -> None:
        locked = _LockedContext(_copy_context() if context is None else context, self)
        # The run loop calls handle._context.run(...): ours is the locked one.
        _init_handle(self, callback, args, loop, cast(Any, locked), source)
        self._lock = threading.RLock()

    def cancel(self) -> None:
        with self._lock:
            _cancel_handle(self)

    def cancelled(self) -> bool:
        with self._lock:
            return self._cancelled

    def get_context(self) -> contextvars.Context:
        # asyncio.Handle's _context slot (typeshed leaves it out), ours set above.
        return cast(_LockedContext, self._context).context  # type: ignore[attr-defined]


class TimerCallbackHandle(asyncio.TimerHandle):
    """An ``asyncio.TimerHandle`` built the same cheap way.

    ``_scheduled`` is true while the handle sits in the loop's timer heap.
    ``asyncio.TimerHandle.cancel()`` would call
    ``loop._timer_handle_cancelled(handle)``; ours counts the cancellation
    for the loop's lazy heap compaction itself.
    """

    __slots__ = ()

    def __init__(self, when: float, callback: Any, args: tuple[Any, ...],
                 loop: asyncio.AbstractEventLoop, context: contextvars.Context | None,
                 source: Any = None) -> None:
        _init_handle(self, callback, args, loop, context, source)
        self._when = when
        self._scheduled = False

    def cancel(self) -> None:
        if self._scheduled and not self._cancelled:
            # asyncio.Handle's _loop slot (typeshed leaves it out; _check_layout checks it).
            self._loop._cancelled_timers += 1  # type: ignore[attr-defined]
        _cancel_handle(self)

    def _repr_info(self) -> list[str]:
        # asyncio's own method (typeshed does not declare it; _check_layout does).
        return _as_asyncio_repr_info(self, super()._repr_info())  # type: ignore[misc]


def describe_callback(callback: Any, args: tuple[Any, ...],
                      loop: asyncio.AbstractEventLoop) -> str:
    """A callback as asyncio's messages name it ("Exception in callback
    T.m()", "... f(1) at file:line"): the text its ``Handle`` repr shows
    for it, taken from the repr of a handle made for the purpose (no
    source, not cancelled: ``<Handle TEXT>``).  Error paths only."""
    text = repr(CallbackHandle(callback, args, loop, None))
    return text[len("<Handle "):-1]


def extract_source(depth: int = 2) -> traceback.StackSummary:
    """The caller's stack, for ``Handle._source_traceback`` in debug mode."""
    return traceback.extract_stack(sys._getframe(depth), limit=10)
