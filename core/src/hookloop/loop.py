"""The scheduler: hookloop's event loop class.

What it owns, and nothing more:

* the **ready queue** (a deque of ``asyncio.Handle``), the **timer heap** of
  ``(when, seq, handle)`` tuples, and the **run loop** that drains both and
  waits on the poller in between;
* the **fd table**: for each file descriptor watched, one two-slot record
  ``[reader, writer]`` of zero-argument callables.  The interest mask given
  to the poller is always computed from that record (trio's rule: never
  tracked twice).  Plugins (transports, signals, subprocess watchers) put
  their bound methods there with :meth:`EventLoop.watch_read` and friends;
  user ``add_reader`` callbacks are wrapped so that they run as
  ``asyncio.Handle``s with their context, as asyncio runs them;
* the **exception handler** API and **debug mode** (handle source
  tracebacks, coroutine origin tracking, thread checks, slow callbacks);
* **lazy services**: every feature that is not scheduling (executor,
  signals, transports, TLS, DNS, subprocesses) is a service object made by a
  factory that a plugin returned at assembly time.  The loop makes it the
  first time the feature is used and raises
  :class:`~hookloop.PluginMissingError` when no plugin provides it.

What it must never do: call pluggy (the hooks ran before the loop was
built; see :mod:`hookloop.assembly`), import a backend or feature plugin by
name, or touch asyncio's private loop machinery.  asyncio's public pieces it
relies on are ``Future``/``Task`` (C-accelerated), ``Handle``/``TimerHandle``
and the documented hooks for third-party loops (``_set_running_loop``,
``_get_running_loop``, ``sys.set_asyncgen_hooks``).

The rest of the loop's API (executor, async generators, signals, the
exception handler, debug mode, instruments, and the methods feature plugins
serve) is the mixin :class:`hookloop.facilities.LoopFacilities`.  This
module is still longer than our usual 600 lines, for one reason: the four
``call_*`` methods build their handles inline, and the run loop exists in a
fast and an instrumented version, both kept next to each other so they stay
in step.

What is hot: :meth:`call_soon`, :meth:`call_at`, and :meth:`_run_once`,
which runs every iteration.  They avoid Python calls that are not needed
(no ``Handle._run()``, no ``TimerHandle.__lt__``: the heap compares floats
and ints in C) and read attributes once into locals.  Anything optional
(debug mode, instruments) lives in :meth:`_run_once_instrumented`, which
the loop switches to only while it is needed.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import heapq
import itertools
import logging
import os
import sys
import threading
import time
import warnings
import weakref
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, overload

from .facilities import LoopFacilities, _is_coroutine_function, _missing
from .handles import (
    CallbackHandle,
    ThreadsafeCallbackHandle,
    TimerCallbackHandle,
    describe_callback,
    extract_source,
)
from .instruments import Instrument, io_callback_target
from .poller import MAX_TIMEOUT, READ, WRITE, Poller
from .stall import StallInjector

if TYPE_CHECKING:
    from typing import TypeVar, TypeVarTuple

    from _typeshed import FileDescriptorLike

    from .assembly import Recipe
    from .services import (
        ResolverService,
        SignalService,
        SubprocessService,
        TLSService,
        TransportService,
    )

    _H = TypeVar("_H")
    _Ts = TypeVarTuple("_Ts")

__all__ = ["EventLoop"]

logger = logging.getLogger("asyncio")

_heappush = heapq.heappush
if TYPE_CHECKING:
    def _new(cls: type[_H]) -> _H: ...
else:
    _new = object.__new__
_copy_context = contextvars.copy_context
_partial = functools.partial
_heappop = heapq.heappop
_monotonic = time.monotonic
_CLOCK_RESOLUTION = time.get_clock_info("monotonic").resolution
# Compact the timer heap when more than this many cancelled timers sit in it
# and they are more than half of it (lazy deletion otherwise).
_MIN_CANCELLED_TO_COMPACT = 100


def _debug_from_environment() -> bool:
    """Whether a new loop starts in debug mode: asyncio's own answer.

    asyncio decides this in one function (``-X dev`` or
    ``PYTHONASYNCIODEBUG``), which tools and CPython's tests patch; we ask
    it rather than keep a copy that would disagree.  The one private name of
    asyncio the core reads, allowed by name in ``tests/test_source_rules.py``;
    the copy below is the fallback should a Python drop it.
    """
    is_debug_mode = getattr(asyncio.coroutines, "_is_debug_mode", None)
    if is_debug_mode is not None:
        return bool(is_debug_mode())
    return sys.flags.dev_mode or (
        not sys.flags.ignore_environment and bool(os.environ.get("PYTHONASYNCIODEBUG")))


def _fileobj_to_fd(fileobj: Any) -> int:
    if isinstance(fileobj, int):
        fd = fileobj
    else:
        try:
            fd = int(fileobj.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f"Invalid file object: {fileobj!r}") from None
    if fd < 0:
        raise ValueError(f"Invalid file descriptor: {fd}")
    return fd


def _run_until_complete_cb(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        exc = fut.exception()
        if isinstance(exc, (SystemExit, KeyboardInterrupt)):
            # The loop re-raises these from run_forever(); stopping here
            # would swallow them.
            return
    fut.get_loop().stop()


class _UserWatch:
    """An ``add_reader``/``add_writer`` callback in the fd table.

    Ready fds run their callbacks directly; a user callback instead queues
    its ``Handle`` in the loop's ``_io_handles``, so it runs in its context,
    right after the I/O dispatch and before the due timers, exactly where
    asyncio's loop runs it.
    """

    __slots__ = ("handle", "loop", "fd", "slot")

    def __init__(self, handle: CallbackHandle, loop: EventLoop, fd: int, slot: int) -> None:
        self.handle = handle
        self.loop = loop
        self.fd = fd
        self.slot = slot

    def __call__(self) -> None:
        if self.handle._cancelled:
            self.loop._unwatch(self.fd, self.slot)
        else:
            self.loop._io_handles.append(self.handle)


class EventLoop(LoopFacilities, asyncio.AbstractEventLoop):
    """An asyncio event loop assembled from hookloop plugins.

    Build it with :func:`hookloop.new_event_loop`; constructing it directly
    with a poller gives a loop with scheduling and fd watching only.
    """

    slow_callback_duration = 0.1

    def __init__(self, poller: Poller, recipe: Recipe | None = None) -> None:
        self._poller = poller
        self._recipe = recipe
        self._ready: deque[asyncio.Handle] = deque()
        self._io_handles: list[asyncio.Handle] = []  # this iteration's add_reader/writer calls
        self._timers: list[tuple[float, int, TimerCallbackHandle]] = []
        self._timer_seq = itertools.count().__next__
        self._cancelled_timers = 0
        self._fds: dict[int, list[Callable[[], Any] | None]] = {}
        # Debug mode: where each plugin callback in the fd table was set
        # (watch_read/watch_write), by callback, for the reports that name it.
        self._io_sources: dict[Callable[[], Any], Any] = {}
        self._fd_owners: dict[int, Any] = {}
        self._stopping = False
        self._closed = False
        self._thread_id: int | None = None
        self._pid = os.getpid()
        self._forked = False  # set in a forked child by _mark_loops_forked()
        self._debug = False
        self._guarded = False  # closed or debug: the slow path of call_*
        self._instruments: list[Instrument] = []
        self._instrumented = False
        self._stall: StallInjector | None = None
        self._current_handle: asyncio.Handle | None = None
        self._exception_handler: Callable[..., Any] | None = None
        self._task_factory: Callable[..., asyncio.Task[Any]] | None = None
        self._services: dict[str, Any] = {}
        self._default_executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._executor_shutdown_called = False
        self._asyncgens: weakref.WeakSet[Any] = weakref.WeakSet()
        self._asyncgens_shutdown_called = False
        self._coroutine_origin_tracking = False
        self._saved_origin_depth: int | None = None
        self._wakeup = poller.wakeup
        self._poll = poller.poll
        self.watch_read(poller.waker_fd, poller.drain_wakeup)
        self.set_debug(_debug_from_environment())
        _live_loops.add(self)

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} backend={self._poller.name} running={self.is_running()} "
                f"closed={self._closed} debug={self._debug}>")

    # ------------------------------------------------------------------
    # Identity and services
    # ------------------------------------------------------------------

    @property
    def backend(self) -> str:
        """The name of the poller backend this loop runs on."""
        return self._poller.name

    @property
    def poller(self) -> Poller:
        """The poller (for plugins; not for use while the loop polls)."""
        return self._poller

    @overload
    def service(self, kind: Literal["transports"]) -> TransportService: ...
    @overload
    def service(self, kind: Literal["tls"]) -> TLSService: ...
    @overload
    def service(self, kind: Literal["resolver"]) -> ResolverService: ...
    @overload
    def service(self, kind: Literal["signals"]) -> SignalService: ...
    @overload
    def service(self, kind: Literal["subprocess"]) -> SubprocessService: ...
    @overload
    def service(self, kind: str) -> Any: ...

    def service(self, kind: str) -> Any:
        """The service object for a feature, made on first use.

        ``kind`` is one of ``"transports"``, ``"tls"``, ``"resolver"``,
        ``"signals"``, ``"subprocess"``.  Raises
        :class:`~hookloop.PluginMissingError` when no plugin provides it.
        A type checker sees the kind's contract from :mod:`hookloop.services`
        (``service("tls")`` is a ``TLSService``); another kind is ``Any``.
        """
        svc = self._services.get(kind)
        if svc is None:
            self._check_closed()
            recipe = self._recipe
            factory = recipe.factories.get(kind) if recipe is not None else None
            if factory is None:
                raise _missing(kind, recipe)
            svc = self._services[kind] = factory(self)
        return svc

    # ------------------------------------------------------------------
    # Running and stopping
    # ------------------------------------------------------------------

    def run_forever(self) -> None:
        self._check_closed()
        self._check_not_running()
        if self._forked:
            self._refuse_forked()
        self._thread_id = threading.get_ident()
        old_agen_hooks = sys.get_asyncgen_hooks()
        sys.set_asyncgen_hooks(firstiter=self._asyncgen_firstiter_hook,
                               finalizer=self._asyncgen_finalizer_hook)
        self._set_coroutine_origin_tracking(self._debug)
        asyncio._set_running_loop(self)
        try:
            run_once = self._run_once
            while True:
                if self._instrumented:
                    self._run_once_instrumented()
                else:
                    run_once()
                if self._stopping:
                    break
        finally:
            self._stopping = False
            self._thread_id = None
            asyncio._set_running_loop(None)
            self._set_coroutine_origin_tracking(False)
            sys.set_asyncgen_hooks(*old_agen_hooks)

    def run_until_complete(self, future: Any) -> Any:
        self._check_closed()
        self._check_not_running()
        new_task = not asyncio.isfuture(future)
        future = asyncio.ensure_future(future, loop=self)
        if new_task:
            # The task is ours: if run_forever() is interrupted, do not log
            # "Task was destroyed but it is pending!" for it.
            future._log_destroy_pending = False
        future.add_done_callback(_run_until_complete_cb)
        try:
            self.run_forever()
        except BaseException:
            if new_task and future.done() and not future.cancelled():
                # Mark the exception retrieved: the caller gets the one
                # raised here, a second report would be noise.
                future.exception()
            raise
        finally:
            future.remove_done_callback(_run_until_complete_cb)
        if not future.done():
            raise RuntimeError("Event loop stopped before Future completed.")
        return future.result()

    def stop(self) -> None:
        self._stopping = True

    def is_running(self) -> bool:
        return self._thread_id is not None

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self._closed:
            return
        if self._debug:
            logger.debug("Close %r", self)
        recipe = self._recipe
        if recipe is not None and recipe.loop_closing is not None:
            recipe.loop_closing(loop=self)
        self._closed = True
        self._guarded = True
        self._ready.clear()
        self._io_handles.clear()
        self._timers.clear()
        self._cancelled_timers = 0
        executor, self._default_executor = self._default_executor, None
        if executor is not None:
            executor.shutdown(wait=False)
        services, self._services = self._services, {}
        try:
            for svc in services.values():
                close = getattr(svc, "close", None)
                if close is not None:
                    close()
        finally:
            self._fds.clear()
            self._io_sources.clear()
            self._fd_owners.clear()
            self._poller.close()

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        if getattr(self, "_closed", True) is False:
            _warn(f"unclosed event loop {self!r}", ResourceWarning, source=self)
            if not self.is_running():
                self.close()

    def _check_closed(self) -> None:
        if self._closed:
            raise RuntimeError("Event loop is closed")

    def _refuse_forked(self) -> None:
        raise RuntimeError(
            f"this event loop was created in process {self._pid} and cannot be used in the "
            f"forked child {os.getpid()} (it shares the parent's kernel objects); close it and "
            "create a new loop in the child")

    def _check_not_running(self) -> None:
        if self.is_running():
            raise RuntimeError("This event loop is already running")
        if asyncio._get_running_loop() is not None:
            raise RuntimeError("Cannot run the event loop while another loop is running")

    def time(self) -> float:
        return _monotonic()

    # ------------------------------------------------------------------
    # One iteration
    # ------------------------------------------------------------------

    def _timeout(self) -> float | None:
        """How long the next poll may block."""
        if self._cancelled_timers:
            self._drop_cancelled_timers()
        if self._ready or self._stopping:
            return 0
        timers = self._timers
        if not timers:
            return None
        timeout = timers[0][0] - _monotonic()
        if timeout <= 0:
            return 0
        return MAX_TIMEOUT if timeout > MAX_TIMEOUT else timeout

    # One iteration, in asyncio's order (BaseEventLoop._run_once), on both
    # paths (fast and instrumented):
    #
    #   1. poll for I/O, for as long as _timeout() allows;
    #   2. collect the timers due now, at once, before any callback runs, and
    #      append them to the ready queue behind what is already there;
    #   3. run the callbacks that were ready before the poll (their count is
    #      fixed when the poll returns);
    #   4. dispatch the I/O: plugins' callbacks run straight from the fd
    #      table; add_reader/add_writer handles gather in ``_io_handles`` and
    #      are then put in front of the collected timers;
    #   5. run those I/O handles, then the timers collected at step 2.
    #
    # Whatever a callback schedules (call_soon, or a timer that is already
    # due) waits for the next iteration: a timer can never overtake a
    # call_soon() made before it, however long a callback took (a stalled
    # process, a GC pause).  Steps 3 and 5 run from the ready queue itself,
    # so an iteration cut short by KeyboardInterrupt/SystemExit leaves every
    # unrun handle and collected timer queued, in order: the next _timeout()
    # returns 0 and they run first.

    def _run_once(self) -> None:
        """One iteration (see above): the fast path, no instruments.

        Keep it in step with :meth:`_run_once_instrumented`.
        """
        events = self._poll(self._timeout())
        ready = self._ready
        count = len(ready)
        due = self._queue_due_timers() if self._timers else 0
        if count:
            self._run_ready(count)
        if events:
            try:
                self._dispatch(events)
            finally:
                if self._io_handles:
                    due += self._queue_io_handles()
        if due:
            self._run_ready(due)

    def _queue_io_handles(self) -> int:
        """Put this iteration's add_reader/add_writer handles in front of
        the collected timers; returns how many."""
        front = self._io_handles
        self._ready.extendleft(reversed(front))
        count = len(front)
        front.clear()
        return count

    def _run_ready(self, count: int) -> None:
        """Run the first ``count`` handles of the ready queue."""
        popleft = self._ready.popleft
        for _ in range(count):
            handle = popleft()
            if handle._cancelled:
                continue
            try:
                # asyncio.Handle's _context and _callback slots (typeshed leaves
                # them out; handles._check_layout checks them at import).
                handle._context.run(handle._callback, *handle._args)  # type: ignore[attr-defined]
            except BaseException as exc:
                self._callback_failed(handle, exc)

    def _run_once_instrumented(self) -> None:
        """:meth:`_run_once` with every attached instrument called."""
        timeout = self._timeout()
        for inst in self._instruments:
            self._instrument_call(inst, inst.before_poll, timeout)
        t0 = _monotonic()
        events = self._poll(timeout)
        duration = _monotonic() - t0
        for inst in self._instruments:
            self._instrument_call(inst, inst.after_poll, timeout, len(events), duration)
        count = len(self._ready)
        due = self._queue_due_timers() if self._timers else 0
        if count:
            self._run_ready_instrumented(count)
        if events:
            try:
                self._dispatch_instrumented(events)
            finally:
                if self._io_handles:
                    due += self._queue_io_handles()
        if due:
            self._run_ready_instrumented(due)

    def _run_ready_instrumented(self, count: int) -> None:
        # self._instruments is replaced, never mutated, when an instrument is
        # detached (even by a failure in the middle of these loops), so each
        # loop below reads the current list and finishes the one it started.
        ready = self._ready
        for _ in range(count):
            handle = ready.popleft()
            if handle._cancelled:
                continue
            for inst in self._instruments:
                self._instrument_call(inst, inst.before_callback, handle)
            t0 = _monotonic()
            try:
                # asyncio.Handle's _context and _callback slots (typeshed leaves
                # them out; handles._check_layout checks them at import).
                handle._context.run(handle._callback, *handle._args)  # type: ignore[attr-defined]
            except BaseException as exc:
                self._callback_failed(handle, exc)
            finally:
                duration = _monotonic() - t0
                for inst in self._instruments:
                    self._instrument_call(inst, inst.after_callback, handle, duration)

    def _queue_due_timers(self) -> int:
        """Append the timers due now (within the clock's resolution) to the
        ready queue, in deadline order (ties: creation order); drop the
        cancelled ones.  Returns how many were queued."""
        timers = self._timers
        ready = self._ready
        before = len(ready)
        end = _monotonic() + _CLOCK_RESOLUTION
        while timers and timers[0][0] < end:
            handle = _heappop(timers)[2]
            handle._scheduled = False
            if handle._cancelled:
                self._cancelled_timers -= 1
            else:
                ready.append(handle)
        return len(ready) - before

    def _dispatch(self, events: list[tuple[int, int]]) -> None:
        """Run the fd table's callbacks for what the poller reported."""
        fds = self._fds
        readable = self._poller.READABLE
        writable = self._poller.WRITABLE
        for fd, mask in events:
            record = fds.get(fd)
            if record is None:
                continue
            if mask & readable:
                callback = record[0]
                if callback is not None:
                    try:
                        callback()
                    except BaseException as exc:
                        self._io_callback_failed(callback, exc)
            if mask & writable:
                callback = record[1]
                if callback is not None:
                    try:
                        callback()
                    except BaseException as exc:
                        self._io_callback_failed(callback, exc)

    def _dispatch_instrumented(self, events: list[tuple[int, int]]) -> None:
        """:meth:`_dispatch` with every attached instrument called around
        each fd callback (``before_io_callback``/``after_io_callback``)."""
        fds = self._fds
        readable = self._poller.READABLE
        writable = self._poller.WRITABLE
        for fd, mask in events:
            record = fds.get(fd)
            if record is None:
                continue
            if mask & readable and record[0] is not None:
                self._run_io_instrumented(fd, record[0])
            if mask & writable and record[1] is not None:
                self._run_io_instrumented(fd, record[1])

    def _run_io_instrumented(self, fd: int, callback: Callable[[], Any]) -> None:
        target = io_callback_target(callback)
        for inst in self._instruments:
            self._instrument_call(inst, inst.before_io_callback, fd, target)
        t0 = _monotonic()
        try:
            callback()
        except BaseException as exc:
            self._io_callback_failed(callback, exc)
        finally:
            duration = _monotonic() - t0
            for inst in self._instruments:
                self._instrument_call(inst, inst.after_io_callback, fd, target, duration)

    def _callback_failed(self, handle: asyncio.Handle, exc: BaseException) -> None:
        if isinstance(exc, (SystemExit, KeyboardInterrupt)):
            raise exc
        # asyncio.Handle's _callback and _source_traceback slots (typeshed
        # leaves them out; handles._check_layout checks them), and its _args,
        # a tuple (typeshed: a Sequence).
        context = {
            "message": ("Exception in callback "
                        f"{describe_callback(handle._callback, handle._args, self)}"),  # type: ignore[attr-defined, arg-type]
            "exception": exc,
            "handle": handle,
        }
        if handle._source_traceback:  # type: ignore[attr-defined]
            context["source_traceback"] = handle._source_traceback  # type: ignore[attr-defined]
        self.call_exception_handler(context)

    def _io_callback_failed(self, callback: Any, exc: BaseException) -> None:
        # Reported as asyncio reports an exception escaping a transport's
        # readiness callback (its Handle's): "Exception in callback
        # T._read_ready()", with a handle (made here, for the report) and,
        # in debug mode, where the watch was set.
        if isinstance(exc, (SystemExit, KeyboardInterrupt)):
            raise exc
        target = io_callback_target(callback)
        source = self._io_sources.get(target)
        # The handle's context is the one the callback ran in (a transport
        # watches in its connection's; a bare callback ran in the loop's).
        ran_in = callback.func.__self__ if target is not callback else _copy_context()
        context = {
            "message": f"Exception in callback {describe_callback(target, (), self)}",
            "exception": exc,
            "handle": CallbackHandle(target, (), self, ran_in, source),
        }
        if source:
            context["source_traceback"] = source
        self.call_exception_handler(context)

    # ------------------------------------------------------------------
    # Scheduling callbacks
    # ------------------------------------------------------------------

    # call_soon, call_soon_threadsafe, call_later and call_at build their
    # handle inline (no __init__ frame): they are the hottest code in the
    # loop.  The four bodies are kept in step with CallbackHandle.__init__
    # and TimerCallbackHandle.__init__, which build the same objects.

    def call_soon(self, callback: Callable[[*_Ts], object], *args: *_Ts,
                  context: contextvars.Context | None = None) -> asyncio.Handle:
        if self._guarded:
            return self._call_soon_guarded(callback, args, context, "call_soon")
        if not callable(callback):
            self._check_callback(callback, "call_soon")
        handle: CallbackHandle = _new(CallbackHandle)
        # asyncio.Handle's slots; typeshed leaves out the private ones marked
        # (handles._check_layout checks them at import).
        handle._context = _copy_context() if context is None else context  # type: ignore[attr-defined]
        handle._loop = self  # type: ignore[attr-defined]
        handle._callback = callback  # type: ignore[attr-defined]
        handle._args = args
        handle._cancelled = False
        handle._repr = None  # type: ignore[attr-defined]
        handle._source_traceback = None  # type: ignore[attr-defined]
        self._ready.append(handle)
        return handle

    def _call_soon_guarded(self, callback: Any, args: tuple[Any, ...], context: Any,
                           method: str) -> asyncio.Handle:
        """call_soon on a closed loop or in debug mode."""
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if method == "call_soon":
            self._check_thread()
        self._check_callback(callback, method)
        kind = ThreadsafeCallbackHandle if method == "call_soon_threadsafe" else CallbackHandle
        handle = kind(callback, args, self, context, extract_source(3))
        self._ready.append(handle)
        return handle

    def call_soon_threadsafe(self, callback: Callable[[*_Ts], object], *args: *_Ts,
                             context: contextvars.Context | None = None) -> asyncio.Handle:
        if self._guarded:
            handle = self._call_soon_guarded(callback, args, context, "call_soon_threadsafe")
        else:
            if not callable(callback):
                self._check_callback(callback, "call_soon_threadsafe")
            handle = ThreadsafeCallbackHandle(callback, args, self, context)
            self._ready.append(handle)
        self._wakeup()
        return handle

    def call_later(self, delay: float, callback: Callable[[*_Ts], object], *args: *_Ts,
                   context: contextvars.Context | None = None) -> asyncio.TimerHandle:
        if delay is None:
            raise TypeError("delay must not be None")
        when = _monotonic() + delay
        if self._guarded:
            return self._call_at_guarded(when, callback, args, context, "call_later")
        if not callable(callback):
            self._check_callback(callback, "call_later")
        timer = _new(TimerCallbackHandle)
        # asyncio.Handle's slots; typeshed leaves out the private ones marked
        # (handles._check_layout checks them at import).
        timer._context = _copy_context() if context is None else context  # type: ignore[attr-defined]
        timer._loop = self  # type: ignore[attr-defined]
        timer._callback = callback  # type: ignore[attr-defined]
        timer._args = args
        timer._cancelled = False
        timer._repr = None  # type: ignore[attr-defined]
        timer._source_traceback = None  # type: ignore[attr-defined]
        timer._when = when
        timer._scheduled = True
        _heappush(self._timers, (when, self._timer_seq(), timer))
        return timer

    def call_at(self, when: float, callback: Callable[[*_Ts], object], *args: *_Ts,
                context: contextvars.Context | None = None) -> asyncio.TimerHandle:
        if when is None:
            raise TypeError("when cannot be None")
        if self._guarded:
            return self._call_at_guarded(when, callback, args, context, "call_at")
        if not callable(callback):
            self._check_callback(callback, "call_at")
        timer = _new(TimerCallbackHandle)
        # asyncio.Handle's slots; typeshed leaves out the private ones marked
        # (handles._check_layout checks them at import).
        timer._context = _copy_context() if context is None else context  # type: ignore[attr-defined]
        timer._loop = self  # type: ignore[attr-defined]
        timer._callback = callback  # type: ignore[attr-defined]
        timer._args = args
        timer._cancelled = False
        timer._repr = None  # type: ignore[attr-defined]
        timer._source_traceback = None  # type: ignore[attr-defined]
        timer._when = when
        timer._scheduled = True
        _heappush(self._timers, (when, self._timer_seq(), timer))
        return timer

    def _call_at_guarded(self, when: float, callback: Any, args: tuple[Any, ...],
                         context: Any, method: str) -> asyncio.TimerHandle:
        """call_at/call_later on a closed loop or in debug mode."""
        if self._closed:
            raise RuntimeError("Event loop is closed")
        self._check_thread()
        self._check_callback(callback, method)
        timer = TimerCallbackHandle(when, callback, args, self, context, extract_source(3))
        _heappush(self._timers, (when, self._timer_seq(), timer))
        timer._scheduled = True
        return timer

    def schedule_handle(self, handle: asyncio.Handle, *, threadsafe: bool = False) -> None:
        """Plugin API: put an existing ``Handle`` on the ready queue.

        For services that keep one handle per registration (signal handlers).
        With ``threadsafe=True`` it may be called from another thread or a
        signal handler; the poller is woken up.
        """
        self._ready.append(handle)
        if threadsafe:
            self._wakeup()

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        # The hook asyncio.TimerHandle.cancel() calls (our TimerCallbackHandle
        # does the same inline); the timer stays in the heap until it reaches
        # the top or the heap is compacted.
        # TimerHandle's _scheduled slot (typeshed leaves it out; checked at import).
        if handle._scheduled:  # type: ignore[attr-defined]
            self._cancelled_timers += 1

    def _drop_cancelled_timers(self) -> None:
        timers = self._timers
        if (self._cancelled_timers > _MIN_CANCELLED_TO_COMPACT
                and self._cancelled_timers * 2 > len(timers)):
            keep = []
            for entry in timers:
                if entry[2]._cancelled:
                    entry[2]._scheduled = False
                else:
                    keep.append(entry)
            heapq.heapify(keep)
            self._timers[:] = keep
            self._cancelled_timers = 0
            return
        while timers and timers[0][2]._cancelled:
            _heappop(timers)[2]._scheduled = False
            self._cancelled_timers -= 1

    def _check_callback(self, callback: Any, method: str) -> None:
        if asyncio.iscoroutine(callback) or _is_coroutine_function(callback):
            raise TypeError(f"coroutines cannot be used with {method}()")
        if not callable(callback):
            raise TypeError(f"a callable object was expected by {method}(), got {callback!r}")

    def _check_thread(self) -> None:
        if self._thread_id is not None and self._thread_id != threading.get_ident():
            raise RuntimeError(
                "Non-thread-safe operation invoked on an event loop other than the current one")

    # ------------------------------------------------------------------
    # Futures and tasks
    # ------------------------------------------------------------------

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.Future(loop=self)

    # asyncio's create_task, in the running Python's signature (the test
    # tests/test_loop_signatures.py holds us to it): 3.14 hands every keyword
    # to the task factory or to Task (so did 3.13.3, by accident); 3.13.4
    # went back to name= and context= for the factory and passes any other
    # keyword on too (gh-133745); before 3.13.3 there were only those two.
    # A type checker knows the minor version only: the TYPE_CHECKING terms
    # (False at run time) make it see one variant per Python, 3.13.4's for 3.13.
    if sys.version_info >= (3, 14) or (
            not TYPE_CHECKING and sys.version_info[:3] == (3, 13, 3)):
        def create_task(self, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
            """Wrap a coroutine in a task, made by the task factory if one is set."""
            self._check_closed()
            if self._task_factory is not None:
                return self._task_factory(self, coro, **kwargs)
            task = asyncio.Task(coro, loop=self, **kwargs)
            # asyncio.Task's _source_traceback (the C Task has it; typeshed leaves it out).
            if task._source_traceback:  # type: ignore[attr-defined]
                del task._source_traceback[-1]  # type: ignore[attr-defined]
            return task
    else:
        if sys.version_info >= (3, 13) and (TYPE_CHECKING or sys.version_info >= (3, 13, 4)):
            def create_task(self, coro: Any, *, name: str | None = None, context: Any = None,
                            **kwargs: Any) -> asyncio.Task[Any]:
                """Wrap a coroutine in a task, made by the task factory if one is set."""
                self._check_closed()
                if self._task_factory is not None:
                    return self._factory_task(self._task_factory, coro, name, context, kwargs)
                task = asyncio.Task(coro, loop=self, name=name, context=context, **kwargs)
                # asyncio.Task's _source_traceback (typeshed leaves it out).
                if task._source_traceback:  # type: ignore[attr-defined]
                    del task._source_traceback[-1]  # type: ignore[attr-defined]
                return task
        else:
            def create_task(self, coro: Any, *, name: str | None = None,
                            context: Any = None) -> asyncio.Task[Any]:
                """Wrap a coroutine in a task, made by the task factory if one is set."""
                self._check_closed()
                if self._task_factory is not None:
                    return self._factory_task(self._task_factory, coro, name, context, {})
                task = asyncio.Task(coro, loop=self, name=name, context=context)
                # asyncio.Task's _source_traceback (typeshed leaves it out).
                if task._source_traceback:  # type: ignore[attr-defined]
                    del task._source_traceback[-1]  # type: ignore[attr-defined]
                return task

        def _factory_task(self, factory: Callable[..., asyncio.Task[Any]], coro: Any,
                          name: str | None, context: Any,
                          kwargs: dict[str, Any]) -> asyncio.Task[Any]:
            """The factory's task: context= only when given, the name set afterwards."""
            if context is None:
                task = factory(self, coro, **kwargs)
            else:
                task = factory(self, coro, context=context, **kwargs)
            if name is not None:
                task.set_name(name)
            return task

    def set_task_factory(self, factory: Callable[..., Any] | None) -> None:
        if factory is not None and not callable(factory):
            raise TypeError("task factory must be a callable or None")
        self._task_factory = factory

    def get_task_factory(self) -> Callable[..., Any] | None:
        return self._task_factory

    # ------------------------------------------------------------------
    # Watching file descriptors
    # ------------------------------------------------------------------

    def watch_read(self, fd: int, callback: Callable[[], Any],
                   context: contextvars.Context | None = None) -> None:
        """Plugin API: call ``callback()`` whenever ``fd`` is readable.

        The callback runs directly from the I/O dispatch (no ``Handle``): it
        is meant for plugins' bound methods.  With ``context``, every call
        runs in it (``context.run(callback)``, one C call: no Python frame
        is added); a transport passes a copy of the context current when it
        starts reading, as asyncio's ``add_reader`` captures one, so its
        protocol callbacks see the context their connection was made in.
        It replaces any previous reader of ``fd``.  Raises
        ``OSError``/``ValueError`` from the poller for a bad fd, leaving
        nothing registered.
        """
        old = self._watch(fd, 0, callback if context is None else _partial(context.run, callback))
        if self._debug or self._io_sources:
            self._note_io_source(old, callback)

    def watch_write(self, fd: int, callback: Callable[[], Any],
                    context: contextvars.Context | None = None) -> None:
        """Plugin API: like :meth:`watch_read`, for writability."""
        old = self._watch(fd, 1, callback if context is None else _partial(context.run, callback))
        if self._debug or self._io_sources:
            self._note_io_source(old, callback)

    def _note_io_source(self, old: Any, callback: Callable[[], Any]) -> None:
        # Debug mode: remember where a watch was set (the plugin's line that
        # called watch_read/watch_write), as asyncio's handles keep theirs.
        if old is not None:
            self._io_sources.pop(io_callback_target(old), None)
        if self._debug:
            self._io_sources[callback] = extract_source(3)

    def io_callback_source(self, callback: Callable[[], Any]) -> Any:
        """Where the watch calling ``callback`` was set, as a
        ``traceback.StackSummary``, if it was set in debug mode; else None."""
        return self._io_sources.get(callback)

    def unwatch_read(self, fd: int) -> Callable[[], Any] | None:
        """Plugin API: stop watching ``fd`` for reading; return what was
        watching it (the callback, or ``functools.partial(context.run,
        callback)`` if it was given a context; see :func:`io_callback_target`)."""
        return self._unwatch(fd, 0)

    def unwatch_write(self, fd: int) -> Callable[[], Any] | None:
        """Plugin API: stop watching ``fd`` for writing; return the callback."""
        return self._unwatch(fd, 1)

    def _watch(self, fd: int, slot: int, callback: Callable[[], Any]) -> Callable[[], Any] | None:
        if self._forked:
            self._refuse_forked()
        record = self._fds.get(fd)
        if record is None:
            self._poller.register(fd, WRITE if slot else READ)
            self._fds[fd] = record = [None, None]
        elif record[slot] is None:
            self._poller.modify(fd, READ | WRITE)
        old, record[slot] = record[slot], callback
        return old

    def _unwatch(self, fd: int, slot: int) -> Callable[[], Any] | None:
        if self._forked:
            self._refuse_forked()
        record = self._fds.get(fd)
        if record is None or record[slot] is None:
            return None
        callback, record[slot] = record[slot], None
        if self._io_sources:
            self._io_sources.pop(io_callback_target(callback), None)
        if record[1 - slot] is None:
            del self._fds[fd]
            self._poller.unregister(fd)
        else:
            try:
                self._poller.modify(fd, READ if slot else WRITE)
            except OSError:
                # Closed behind our back: the kernel dropped it already.
                pass
        return callback

    def claim_fd(self, fd: int, owner: Any) -> None:
        """Plugin API: ``owner`` (a transport) uses ``fd`` until released.

        While claimed, ``add_reader``/``add_writer``/``remove_*`` and the
        ``sock_*`` methods refuse the fd with ``RuntimeError``, as asyncio
        refuses the fd of a transport, whether or not it is being watched
        right now (a transport paused for reading is not in the fd table).
        """
        self._fd_owners[fd] = owner

    def release_fd(self, fd: int) -> None:
        """Plugin API: undo :meth:`claim_fd` (no error if not claimed)."""
        self._fd_owners.pop(fd, None)

    def check_fd_free(self, fd: int) -> None:
        """Plugin API: raise ``RuntimeError`` if a plugin owns or watches ``fd``."""
        self._refuse_internal_fd(fd)

    def add_reader(self, fd: FileDescriptorLike, callback: Callable[[*_Ts], Any],
                   *args: *_Ts) -> None:
        self._add_user_watch(fd, 0, callback, args, "add_reader")

    def add_writer(self, fd: FileDescriptorLike, callback: Callable[[*_Ts], Any],
                   *args: *_Ts) -> None:
        self._add_user_watch(fd, 1, callback, args, "add_writer")

    def remove_reader(self, fd: Any) -> bool:
        return self._remove_user_watch(fd, 0)

    def remove_writer(self, fd: Any) -> bool:
        return self._remove_user_watch(fd, 1)

    def _add_user_watch(self, fileobj: Any, slot: int, callback: Callable[..., Any],
                        args: tuple[Any, ...], method: str) -> None:
        self._check_closed()
        fd = _fileobj_to_fd(fileobj)
        self._refuse_internal_fd(fd)
        self._check_callback(callback, method)
        source = extract_source(3) if self._debug else None
        handle = CallbackHandle(callback, args, self, None, source)
        old = self._watch(fd, slot, _UserWatch(handle, self, fd, slot))
        if isinstance(old, _UserWatch):
            old.handle.cancel()

    def _remove_user_watch(self, fileobj: Any, slot: int) -> bool:
        if self._closed:
            return False
        fd = _fileobj_to_fd(fileobj)
        self._refuse_internal_fd(fd)
        old = self._unwatch(fd, slot)
        if old is None:
            return False
        if isinstance(old, _UserWatch):
            old.handle.cancel()
        return True

    def _refuse_internal_fd(self, fd: int) -> None:
        """add_/remove_reader/writer must not touch an fd a plugin watches.

        Like asyncio's "File descriptor ... is used by transport": replacing a
        transport's (or the self-pipe's) callback would break it silently.
        """
        owner = self._fd_owners.get(fd)
        if owner is not None:
            raise RuntimeError(f"File descriptor {fd!r} is used by transport {owner!r}")
        record = self._fds.get(fd)
        if record is None:
            return
        for callback in record:
            if callback is not None and not isinstance(callback, _UserWatch):
                owner = getattr(callback, "__self__", callback)
                raise RuntimeError(f"File descriptor {fd!r} is used by {owner!r}")


# Loops alive in this process; a forked child marks them all unusable.
_live_loops: weakref.WeakSet[EventLoop] = weakref.WeakSet()


def _mark_loops_forked() -> None:
    for loop in list(_live_loops):
        loop._forked = True


os.register_at_fork(after_in_child=_mark_loops_forked)
