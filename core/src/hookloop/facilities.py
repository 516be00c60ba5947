"""The loop's facilities: everything in its API that is not scheduling.

:class:`LoopFacilities` is a mixin of :class:`hookloop.EventLoop` holding the
executor methods, async-generator tracking, the signal-handler front end,
the exception handler API, debug mode and instruments, and the coroutine
methods that feature plugins serve (``create_connection``, ``getaddrinfo``,
``start_tls``, ``subprocess_exec``, ...).  It lives apart from
:mod:`hookloop.loop` so the scheduler stays small enough to read in one
sitting; it uses the state that ``EventLoop.__init__`` creates and is not
usable on its own.

Nothing here is on the hot path except :meth:`call_exception_handler`, and
that only when a callback fails.  Like the scheduler, it never calls pluggy
and never imports a plugin by name: services come from the loop's recipe,
made on first use by :meth:`EventLoop.service`.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import PluginMissingError
from .instruments import Instrument, SlowCallbackWarning
from .stall import StallInjector, make_stall

if TYPE_CHECKING:
    from .assembly import Recipe

__all__ = ["LoopFacilities", "check_signal"]

logger = logging.getLogger("asyncio")
_COROUTINE_ORIGIN_DEPTH = 10

# asyncio's loop runs a custom exception handler in the context of the
# task, future or handle the report is about from Python 3.12 on
# (gh-96704): a handler reading a ContextVar sees what the failing code
# set.  3.11's does not; we do as this Python's asyncio does.
_HANDLER_IN_ITS_SUBJECTS_CONTEXT = sys.version_info >= (3, 12)


def _subject_context(context: dict[str, Any]) -> Any:
    """The ``contextvars.Context`` of what an exception-handler context is
    about (its "task", else "future", else "handle"), or None."""
    for key in ("task", "future", "handle"):
        subject = context.get(key)
        if subject is not None:
            get_context = getattr(subject, "get_context", None)
            found = get_context() if get_context is not None else None
            return found if hasattr(found, "run") else None
    return None


class LoopFacilities:
    """Executor, async generators, signals, errors, debug mode, instruments."""

    # Created by EventLoop.__init__; listed for readers and type checkers.
    _closed: bool
    _debug: bool
    _guarded: bool
    _recipe: Recipe | None
    _services: dict[str, Any]
    _instruments: list[Instrument]
    _instrumented: bool
    _stall: StallInjector | None
    _current_handle: asyncio.Handle | None
    _exception_handler: Callable[..., Any] | None
    _default_executor: concurrent.futures.ThreadPoolExecutor | None
    _executor_shutdown_called: bool
    _asyncgens: Any
    _asyncgens_shutdown_called: bool
    _coroutine_origin_tracking: bool
    _saved_origin_depth: int | None

    # ------------------------------------------------------------------
    # Executor
    # ------------------------------------------------------------------

    def run_in_executor(self, executor: Any, func: Callable[..., Any],
                        *args: Any) -> asyncio.Future[Any]:
        self._check_closed()
        if self._debug:
            self._check_callback(func, "run_in_executor")
        if executor is None:
            if self._executor_shutdown_called:
                raise RuntimeError("Executor shutdown has been called")
            executor = self._default_executor
            if executor is None:
                factory = self._recipe.executor if self._recipe is not None else None
                if factory is None:
                    raise _missing("executor", self._recipe)
                executor = self._default_executor = factory()
        return asyncio.wrap_future(executor.submit(func, *args), loop=self)

    def set_default_executor(self, executor: Any) -> None:
        if not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
            raise TypeError("executor must be ThreadPoolExecutor")
        self._default_executor = executor

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        """Wait for the default executor's threads (at most ``timeout`` s)."""
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is None:
            return
        done = self.create_future()
        thread = threading.Thread(target=self._join_executor, args=(executor, done),
                                  name="hookloop-executor-shutdown")
        thread.start()
        try:
            async with asyncio.timeout(timeout):
                await done
        except TimeoutError:
            warnings.warn(f"The executor did not finish joining its threads within {timeout} "
                          "seconds.", RuntimeWarning, stacklevel=2)
            executor.shutdown(wait=False)
        else:
            thread.join()

    def _join_executor(self, executor: concurrent.futures.Executor,
                       done: asyncio.Future[None]) -> None:
        try:
            executor.shutdown(wait=True)
            result: BaseException | None = None
        except Exception as exc:
            result = exc
        if not self._closed:
            self.call_soon_threadsafe(_settle, done, result)

    # ------------------------------------------------------------------
    # Async generators
    # ------------------------------------------------------------------

    def _asyncgen_finalizer_hook(self, agen: Any) -> None:
        self._asyncgens.discard(agen)
        if not self._closed:
            self.call_soon_threadsafe(self.create_task, agen.aclose())

    def _asyncgen_firstiter_hook(self, agen: Any) -> None:
        if self._asyncgens_shutdown_called:
            warnings.warn(f"asynchronous generator {agen!r} was scheduled after "
                          "loop.shutdown_asyncgens() call", ResourceWarning, stacklevel=2,
                          source=self)
        self._asyncgens.add(agen)

    async def shutdown_asyncgens(self) -> None:
        self._asyncgens_shutdown_called = True
        if not len(self._asyncgens):
            return
        closing = list(self._asyncgens)
        self._asyncgens.clear()
        results = await asyncio.gather(*[agen.aclose() for agen in closing],
                                       return_exceptions=True)
        for result, agen in zip(results, closing, strict=True):
            if isinstance(result, Exception):
                self.call_exception_handler({
                    "message": f"an error occurred during closing of asynchronous generator "
                               f"{agen!r}",
                    "exception": result,
                    "asyncgen": agen,
                })

    # ------------------------------------------------------------------
    # Signals (delegated to the signal service)
    # ------------------------------------------------------------------

    def add_signal_handler(self, sig: int, callback: Callable[..., Any], *args: Any) -> None:
        self._check_closed()
        if asyncio.iscoroutine(callback) or _is_coroutine_function(callback):
            raise TypeError("coroutines cannot be used with add_signal_handler()")
        self.service("signals").add_signal_handler(sig, callback, *args)

    def remove_signal_handler(self, sig: int) -> bool:
        if "signals" not in self._services:
            # No handler was ever added; validate like the service would.
            check_signal(sig)
            return False
        return bool(self._services["signals"].remove_signal_handler(sig))

    # ------------------------------------------------------------------
    # Errors and debug mode
    # ------------------------------------------------------------------

    def get_exception_handler(self) -> Callable[..., Any] | None:
        return self._exception_handler

    def set_exception_handler(self, handler: Callable[..., Any] | None) -> None:
        if handler is not None and not callable(handler):
            raise TypeError(f"A callable object or None is expected, got {handler!r}")
        self._exception_handler = handler

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        message = context.get("message") or "Unhandled exception in event loop"
        exception = context.get("exception")
        exc_info: Any = False
        if exception is not None:
            exc_info = (type(exception), exception, exception.__traceback__)
        current = self._current_handle
        if ("source_traceback" not in context and current is not None
                and current._source_traceback):
            context["handle_traceback"] = current._source_traceback
        lines = [message]
        for key in sorted(context):
            if key in {"message", "exception"}:
                continue
            value = context[key]
            if key in ("source_traceback", "handle_traceback"):
                what = "Object" if key == "source_traceback" else "Handle"
                tb = "".join(traceback.format_list(value)).rstrip()
                value = f"{what} created at (most recent call last):\n{tb}"
            else:
                value = repr(value)
            lines.append(f"{key}: {value}")
        logger.error("\n".join(lines), exc_info=exc_info)

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        handler = self._exception_handler
        if handler is None:
            try:
                self.default_exception_handler(context)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error("Exception in default exception handler", exc_info=True)
            return
        try:
            subject_context = (_subject_context(context) if _HANDLER_IN_ITS_SUBJECTS_CONTEXT
                               else None)
            if subject_context is not None:
                subject_context.run(handler, self, context)
            else:
                handler(self, context)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            try:
                self.default_exception_handler({
                    "message": "Unhandled error in exception handler",
                    "exception": exc,
                    "context": context,
                })
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error("Exception in default exception handler while handling an "
                             "unexpected error in custom exception handler", exc_info=True)

    def get_debug(self) -> bool:
        return self._debug

    def set_debug(self, enabled: bool) -> None:
        self._debug = bool(enabled)
        self._guarded = self._debug or self._closed
        instruments = [i for i in self._instruments if not isinstance(i, SlowCallbackWarning)]
        if self._debug:
            instruments.append(SlowCallbackWarning(self))
        self._instruments = instruments
        self._instrumented = bool(self._instruments)
        if self.is_running():
            self.call_soon_threadsafe(self._set_coroutine_origin_tracking, self._debug)

    def _set_coroutine_origin_tracking(self, enabled: bool) -> None:
        if bool(enabled) == self._coroutine_origin_tracking:
            return
        if enabled:
            self._saved_origin_depth = sys.get_coroutine_origin_tracking_depth()
            sys.set_coroutine_origin_tracking_depth(_COROUTINE_ORIGIN_DEPTH)
        else:
            sys.set_coroutine_origin_tracking_depth(self._saved_origin_depth or 0)
        self._coroutine_origin_tracking = bool(enabled)

    # ------------------------------------------------------------------
    # Instruments
    # ------------------------------------------------------------------

    def add_instrument(self, instrument: Instrument) -> None:
        """Attach an :class:`~hookloop.Instrument` to this loop."""
        if not isinstance(instrument, Instrument):
            raise TypeError(f"instrument must be a hookloop.Instrument, got {instrument!r}")
        self._instruments = [*self._instruments, instrument]
        self._instrumented = True

    def remove_instrument(self, instrument: Instrument) -> None:
        """Detach an instrument; ``ValueError`` if it is not attached."""
        if instrument not in self._instruments:
            raise ValueError(f"{instrument!r} is not attached to this loop")
        self._instruments = [i for i in self._instruments if i is not instrument]
        self._instrumented = bool(self._instruments)

    def set_stall(self, stall: Any) -> None:
        """Inject stalls (see :mod:`hookloop.stall`), or stop injecting them.

        :param stall: ``"PROB[:MAX_MS]"`` (sleep up to MAX_MS ms, default 20,
            after a random fraction PROB of callbacks and I/O callbacks), a
            :class:`~hookloop.StallInjector`, or ``None`` for no stalls.
        :raises RuntimeError: the loop is running (nothing is changed).
        :raises ValueError: a malformed specification, naming ``stall``.
        """
        if self.is_running():  # type: ignore[attr-defined]
            raise RuntimeError("set_stall() cannot be called while the loop is running")
        injector = make_stall(stall)
        old = self._stall
        if old is not None and old in self._instruments:
            self.remove_instrument(old)
        self._stall = injector
        if injector is not None:
            self.add_instrument(injector)

    def get_stall(self) -> StallInjector | None:
        """The stall injector attached by :meth:`set_stall`, or ``None``."""
        return self._stall

    def _instrument_call(self, instrument: Instrument, method: Callable[..., Any],
                         *args: Any) -> None:
        try:
            method(*args)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            if instrument in self._instruments:
                self.remove_instrument(instrument)
            self.call_exception_handler({
                "message": f"Instrument {instrument!r} failed and was detached",
                "exception": exc,
            })


def _settle(fut: asyncio.Future[None], exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is None:
        fut.set_result(None)
    else:
        fut.set_exception(exc)


def _is_coroutine_function(func: Any) -> bool:
    return inspect.iscoroutinefunction(func)


def check_signal(sig: Any) -> int:
    """Validate a signal number as asyncio does; shared by signal services."""
    if not isinstance(sig, int):
        raise TypeError(f"sig must be an int, not {sig!r}")
    if sig not in signal.valid_signals():
        raise ValueError(f"invalid signal number {sig}")
    return sig


def _missing(kind: str, recipe: Recipe | None) -> PluginMissingError:
    from .assembly import missing_feature
    return missing_feature(kind, recipe)


# The rest of AbstractEventLoop: coroutine methods served by feature plugins.
_DELEGATED = {
    "transports": (
        "create_connection", "create_server", "create_unix_connection", "create_unix_server",
        "create_datagram_endpoint", "connect_accepted_socket", "sendfile",
        "connect_read_pipe", "connect_write_pipe",
        "sock_recv", "sock_recv_into", "sock_recvfrom", "sock_recvfrom_into", "sock_sendall",
        "sock_sendto", "sock_connect", "sock_accept", "sock_sendfile",
    ),
    "tls": ("start_tls",),
    "resolver": ("getaddrinfo", "getnameinfo"),
    "subprocess": ("subprocess_exec", "subprocess_shell"),
}


def _delegate(kind: str, name: str) -> Callable[..., Any]:
    async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return await getattr(self.service(kind), name)(*args, **kwargs)

    method.__name__ = name
    method.__qualname__ = f"LoopFacilities.{name}"
    method.__doc__ = (f"asyncio's ``{name}``, provided by the {kind!r} plugin "
                      f"(see :func:`hookloop.hookspecs.hookloop_{kind}`).")
    return method


for _kind, _names in _DELEGATED.items():
    for _name in _names:
        setattr(LoopFacilities, _name, _delegate(_kind, _name))
del _kind, _names, _name
