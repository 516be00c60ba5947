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

The methods feature plugins serve are written out by hand (no generator),
one ``async def`` each with asyncio's parameter names, kinds and defaults,
type hints and a docstring, so that ``help()``, ``inspect.signature``, IDEs
and type checkers see what asyncio's loop offers.  Each hands every
argument it has, as given or defaulted, to its service
(``self.service("transports").create_server(protocol_factory, host, port,
family=family, ...)``: positional parameters by position, keyword-only ones
by keyword) and returns what the service returns; argument checks are the
service's.  The signature is that of asyncio's loop *on the running
Python*: where it changed between versions (3.12 added
``create_connection(all_errors=)`` and ``shutdown_default_executor(timeout=)``,
3.13 ``create_server(keep_alive=)`` and ``create_unix_server(cleanup_socket=)``),
the class body defines one variant per version under
``if sys.version_info >= ...``, so only the running Python's exists at all: a
keyword the running asyncio lacks is a TypeError here too, a service never
gets a keyword of a later Python, and type checkers pick the variant of the
Python they check for.  (``EventLoop.create_task`` in :mod:`hookloop.loop`
does the same.)  ``tests/test_loop_signatures.py`` compares every method of
``asyncio.AbstractEventLoop`` with asyncio's on the Python it runs on.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import signal
import socket
import subprocess
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Any

from .errors import PluginMissingError
from .features import missing_feature
from .instruments import Instrument, SlowCallbackWarning
from .stall import StallInjector, make_stall

if TYPE_CHECKING:
    import ssl
    from socket import _GetAddrInfoResult
    from typing import TypeVar, TypeVarTuple

    from _typeshed import ReadableBuffer, StrOrBytesPath, StrPath, WriteableBuffer

    from .assembly import Recipe

    # The protocol type a protocol factory makes (the methods feature plugins serve).
    _ProtocolT = TypeVar("_ProtocolT", bound=asyncio.BaseProtocol)
    _T = TypeVar("_T")
    _Ts = TypeVarTuple("_Ts")

    # For a type checker the mixin is what it is part of, an asyncio loop:
    # its methods are checked as overrides of AbstractEventLoop's, and it
    # may call the loop's (call_soon_threadsafe, create_future, ...).
    _MixinBase = asyncio.AbstractEventLoop
else:
    _MixinBase = object

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


class LoopFacilities(_MixinBase):
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

    if TYPE_CHECKING:
        # EventLoop's own methods the mixin uses.  ``service`` is typed per
        # kind on EventLoop; the methods below read it untyped, as the
        # service contracts take ``*args, **kwargs`` and promise looser
        # results than asyncio's signatures here do: each names the type of
        # what its service returns instead.
        def service(self, kind: str) -> Any: ...
        def _check_closed(self) -> None: ...
        def _check_callback(self, callback: Any, method: str) -> None: ...

    # ------------------------------------------------------------------
    # Executor
    # ------------------------------------------------------------------

    def run_in_executor(self, executor: concurrent.futures.Executor | None,
                        func: Callable[[*_Ts], _T], *args: *_Ts) -> asyncio.Future[_T]:
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

    if sys.version_info >= (3, 12):
        async def shutdown_default_executor(self, timeout: float | None = None) -> None:
            """Wait for the default executor's threads (at most ``timeout`` s)."""
            await self._shutdown_default_executor(timeout)
    else:
        async def shutdown_default_executor(self) -> None:
            """Wait for the default executor's threads."""
            await self._shutdown_default_executor(None)

    async def _shutdown_default_executor(self, timeout: float | None) -> None:
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
                          "seconds.", RuntimeWarning, stacklevel=3)  # past the public method
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

    def add_signal_handler(self, sig: int, callback: Callable[[*_Ts], object],
                           *args: *_Ts) -> None:
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
        # asyncio.Handle's _source_traceback slot (typeshed leaves it out;
        # handles._check_layout checks it at import).
        if ("source_traceback" not in context and current is not None
                and current._source_traceback):  # type: ignore[attr-defined]
            context["handle_traceback"] = current._source_traceback  # type: ignore[attr-defined]
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
        if self.is_running():
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

    # ------------------------------------------------------------------
    # Methods feature plugins serve
    # ------------------------------------------------------------------
    # Each has asyncio's signature and hands its arguments on, unchanged, to
    # the service of its kind; the service validates them.  The service is
    # looked up when the coroutine runs, so a missing plugin raises
    # PluginMissingError from the await, as it always has.  Where asyncio's
    # signature changed between Pythons, the variant for the running Python
    # is the one defined (see the module docstring).

    if sys.version_info >= (3, 12):
        async def create_connection(
                self, protocol_factory: Callable[[], _ProtocolT], host: str | None = None,
                port: int | str | None = None, *, ssl: ssl.SSLContext | bool | None = None,
                family: int = 0, proto: int = 0, flags: int = 0, sock: socket.socket | None = None,
                local_addr: tuple[str, int] | None = None, server_hostname: str | None = None,
                ssl_handshake_timeout: float | None = None,
                ssl_shutdown_timeout: float | None = None,
                happy_eyeballs_delay: float | None = None, interleave: int | None = None,
                all_errors: bool = False,
        ) -> tuple[asyncio.Transport, _ProtocolT]:
            """Open a TCP connection (served by the ``transports`` plugin)."""
            result: tuple[asyncio.Transport, _ProtocolT]
            result = await self.service("transports").create_connection(
                protocol_factory, host, port, ssl=ssl, family=family, proto=proto, flags=flags,
                sock=sock, local_addr=local_addr, server_hostname=server_hostname,
                ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout,
                happy_eyeballs_delay=happy_eyeballs_delay, interleave=interleave,
                all_errors=all_errors)
            return result
    else:
        async def create_connection(
                self, protocol_factory: Callable[[], _ProtocolT], host: str | None = None,
                port: int | str | None = None, *, ssl: ssl.SSLContext | bool | None = None,
                family: int = 0, proto: int = 0, flags: int = 0, sock: socket.socket | None = None,
                local_addr: tuple[str, int] | None = None, server_hostname: str | None = None,
                ssl_handshake_timeout: float | None = None,
                ssl_shutdown_timeout: float | None = None,
                happy_eyeballs_delay: float | None = None, interleave: int | None = None,
        ) -> tuple[asyncio.Transport, _ProtocolT]:
            """Open a TCP connection (served by the ``transports`` plugin)."""
            result: tuple[asyncio.Transport, _ProtocolT]
            result = await self.service("transports").create_connection(
                protocol_factory, host, port, ssl=ssl, family=family, proto=proto, flags=flags,
                sock=sock, local_addr=local_addr, server_hostname=server_hostname,
                ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout,
                happy_eyeballs_delay=happy_eyeballs_delay, interleave=interleave)
            return result

    if sys.version_info >= (3, 13):
        # typeshed's AbstractEventLoop returns Server; asyncio's documented
        # (and our transports') result is an AbstractServer.
        async def create_server(  # type: ignore[override]
                self, protocol_factory: Callable[[], asyncio.BaseProtocol],
                host: str | Sequence[str] | None = None, port: int | str | None = None, *,
                family: int = socket.AF_UNSPEC, flags: int = socket.AI_PASSIVE,
                sock: socket.socket | None = None, backlog: int = 100,
                ssl: ssl.SSLContext | bool | None = None, reuse_address: bool | None = None,
                reuse_port: bool | None = None, keep_alive: bool | None = None,
                ssl_handshake_timeout: float | None = None,
                ssl_shutdown_timeout: float | None = None, start_serving: bool = True,
        ) -> asyncio.AbstractServer:
            """Listen on TCP (served by the ``transports`` plugin)."""
            result: asyncio.AbstractServer
            result = await self.service("transports").create_server(
                protocol_factory, host, port, family=family, flags=flags, sock=sock,
                backlog=backlog, ssl=ssl, reuse_address=reuse_address, reuse_port=reuse_port,
                keep_alive=keep_alive, ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout, start_serving=start_serving)
            return result
    else:
        # typeshed's AbstractEventLoop returns Server; asyncio's documented
        # (and our transports') result is an AbstractServer.
        async def create_server(  # type: ignore[override]
                self, protocol_factory: Callable[[], asyncio.BaseProtocol],
                host: str | Sequence[str] | None = None, port: int | str | None = None, *,
                family: int = socket.AF_UNSPEC, flags: int = socket.AI_PASSIVE,
                sock: socket.socket | None = None, backlog: int = 100,
                ssl: ssl.SSLContext | bool | None = None, reuse_address: bool | None = None,
                reuse_port: bool | None = None, ssl_handshake_timeout: float | None = None,
                ssl_shutdown_timeout: float | None = None, start_serving: bool = True,
        ) -> asyncio.AbstractServer:
            """Listen on TCP (served by the ``transports`` plugin)."""
            result: asyncio.AbstractServer
            result = await self.service("transports").create_server(
                protocol_factory, host, port, family=family, flags=flags, sock=sock,
                backlog=backlog, ssl=ssl, reuse_address=reuse_address, reuse_port=reuse_port,
                ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout, start_serving=start_serving)
            return result

    async def create_unix_connection(
            self, protocol_factory: Callable[[], _ProtocolT], path: StrPath | None = None, *,
            ssl: ssl.SSLContext | bool | None = None, sock: socket.socket | None = None,
            server_hostname: str | None = None, ssl_handshake_timeout: float | None = None,
            ssl_shutdown_timeout: float | None = None,
    ) -> tuple[asyncio.Transport, _ProtocolT]:
        """Open a unix stream connection (served by the ``transports`` plugin)."""
        result: tuple[asyncio.Transport, _ProtocolT]
        result = await self.service("transports").create_unix_connection(
            protocol_factory, path, ssl=ssl, sock=sock, server_hostname=server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout)
        return result

    if sys.version_info >= (3, 13):
        # typeshed's AbstractEventLoop returns Server; asyncio's documented
        # (and our transports') result is an AbstractServer.
        async def create_unix_server(  # type: ignore[override]
                self, protocol_factory: Callable[[], asyncio.BaseProtocol],
                path: StrPath | None = None, *, sock: socket.socket | None = None,
                backlog: int = 100, ssl: ssl.SSLContext | bool | None = None,
                ssl_handshake_timeout: float | None = None,
                ssl_shutdown_timeout: float | None = None, start_serving: bool = True,
                cleanup_socket: bool = True,
        ) -> asyncio.AbstractServer:
            """Listen on a unix socket (served by the ``transports`` plugin)."""
            result: asyncio.AbstractServer
            result = await self.service("transports").create_unix_server(
                protocol_factory, path, sock=sock, backlog=backlog, ssl=ssl,
                ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout, start_serving=start_serving,
                cleanup_socket=cleanup_socket)
            return result
    else:
        # typeshed's AbstractEventLoop returns Server; asyncio's documented
        # (and our transports') result is an AbstractServer.
        async def create_unix_server(  # type: ignore[override]
                self, protocol_factory: Callable[[], asyncio.BaseProtocol],
                path: StrPath | None = None, *, sock: socket.socket | None = None,
                backlog: int = 100, ssl: ssl.SSLContext | bool | None = None,
                ssl_handshake_timeout: float | None = None,
                ssl_shutdown_timeout: float | None = None, start_serving: bool = True,
        ) -> asyncio.AbstractServer:
            """Listen on a unix socket (served by the ``transports`` plugin)."""
            result: asyncio.AbstractServer
            result = await self.service("transports").create_unix_server(
                protocol_factory, path, sock=sock, backlog=backlog, ssl=ssl,
                ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout, start_serving=start_serving)
            return result

    async def connect_accepted_socket(
            self, protocol_factory: Callable[[], _ProtocolT], sock: socket.socket, *,
            ssl: ssl.SSLContext | bool | None = None, ssl_handshake_timeout: float | None = None,
            ssl_shutdown_timeout: float | None = None,
    ) -> tuple[asyncio.Transport, _ProtocolT]:
        """Wrap an accepted connection in a transport (served by the ``transports`` plugin)."""
        result: tuple[asyncio.Transport, _ProtocolT]
        result = await self.service("transports").connect_accepted_socket(
            protocol_factory, sock, ssl=ssl, ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout)
        return result

    # No reuse_address, as on asyncio's running loop (removed in 3.11, disabled
    # since 3.8.1); asyncio's AbstractEventLoop and typeshed still declare it.
    async def create_datagram_endpoint(  # type: ignore[override]
            self, protocol_factory: Callable[[], _ProtocolT],
            local_addr: tuple[str, int] | str | None = None,
            remote_addr: tuple[str, int] | str | None = None, *, family: int = 0,
            proto: int = 0, flags: int = 0, reuse_port: bool | None = None,
            allow_broadcast: bool | None = None, sock: socket.socket | None = None,
    ) -> tuple[asyncio.DatagramTransport, _ProtocolT]:
        """Open a datagram endpoint (served by the ``transports`` plugin)."""
        result: tuple[asyncio.DatagramTransport, _ProtocolT]
        result = await self.service("transports").create_datagram_endpoint(
            protocol_factory, local_addr, remote_addr, family=family, proto=proto, flags=flags,
            reuse_port=reuse_port, allow_broadcast=allow_broadcast, sock=sock)
        return result

    async def connect_read_pipe(self, protocol_factory: Callable[[], _ProtocolT],
                                pipe: Any) -> tuple[asyncio.ReadTransport, _ProtocolT]:
        """Read from a pipe's file object (served by the ``transports`` plugin)."""
        result: tuple[asyncio.ReadTransport, _ProtocolT]
        result = await self.service("transports").connect_read_pipe(protocol_factory, pipe)
        return result

    async def connect_write_pipe(self, protocol_factory: Callable[[], _ProtocolT],
                                 pipe: Any) -> tuple[asyncio.WriteTransport, _ProtocolT]:
        """Write to a pipe's file object (served by the ``transports`` plugin)."""
        result: tuple[asyncio.WriteTransport, _ProtocolT]
        result = await self.service("transports").connect_write_pipe(protocol_factory, pipe)
        return result

    async def sendfile(self, transport: asyncio.WriteTransport, file: IO[bytes],
                       offset: int = 0, count: int | None = None, *,
                       fallback: bool = True) -> int:
        """Send a file over a transport (served by the ``transports`` plugin)."""
        result: int
        result = await self.service("transports").sendfile(transport, file, offset, count,
                                                            fallback=fallback)
        return result

    async def sock_recv(self, sock: socket.socket, n: int) -> bytes:
        """Receive up to ``n`` bytes (served by the ``transports`` plugin)."""
        result: bytes
        result = await self.service("transports").sock_recv(sock, n)
        return result

    async def sock_recv_into(self, sock: socket.socket, buf: WriteableBuffer) -> int:
        """Receive into ``buf`` (served by the ``transports`` plugin)."""
        result: int
        result = await self.service("transports").sock_recv_into(sock, buf)
        return result

    async def sock_recvfrom(self, sock: socket.socket, bufsize: int) -> tuple[bytes, Any]:
        """Receive a datagram and its sender (served by the ``transports`` plugin)."""
        result: tuple[bytes, Any]
        result = await self.service("transports").sock_recvfrom(sock, bufsize)
        return result

    async def sock_recvfrom_into(self, sock: socket.socket, buf: WriteableBuffer,
                                 nbytes: int = 0) -> tuple[int, Any]:
        """Receive a datagram into ``buf`` (served by the ``transports`` plugin)."""
        result: tuple[int, Any]
        result = await self.service("transports").sock_recvfrom_into(sock, buf, nbytes)
        return result

    async def sock_sendall(self, sock: socket.socket, data: ReadableBuffer) -> None:
        """Send all of ``data`` (served by the ``transports`` plugin)."""
        await self.service("transports").sock_sendall(sock, data)

    async def sock_sendto(self, sock: socket.socket, data: ReadableBuffer,
                          address: Any) -> int:
        """Send a datagram to ``address`` (served by the ``transports`` plugin)."""
        result: int
        result = await self.service("transports").sock_sendto(sock, data, address)
        return result

    async def sock_connect(self, sock: socket.socket, address: Any) -> None:
        """Connect a non-blocking socket (served by the ``transports`` plugin)."""
        await self.service("transports").sock_connect(sock, address)

    async def sock_accept(self, sock: socket.socket) -> tuple[socket.socket, Any]:
        """Accept a connection (served by the ``transports`` plugin)."""
        result: tuple[socket.socket, Any]
        result = await self.service("transports").sock_accept(sock)
        return result

    async def sock_sendfile(self, sock: socket.socket, file: IO[bytes], offset: int = 0,
                            count: int | None = None, *, fallback: bool | None = True) -> int:
        """Send a file over a socket (served by the ``transports`` plugin)."""
        result: int
        result = await self.service("transports").sock_sendfile(sock, file, offset, count,
                                                                fallback=fallback)
        return result

    async def start_tls(self, transport: asyncio.BaseTransport,
                        protocol: asyncio.BaseProtocol, sslcontext: ssl.SSLContext, *,
                        server_side: bool = False, server_hostname: str | None = None,
                        ssl_handshake_timeout: float | None = None,
                        ssl_shutdown_timeout: float | None = None) -> asyncio.Transport:
        """Upgrade a connection to TLS (served by the ``tls`` plugin)."""
        result: asyncio.Transport
        result = await self.service("tls").start_tls(
            transport, protocol, sslcontext, server_side=server_side,
            server_hostname=server_hostname, ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout)
        return result

    async def getaddrinfo(self, host: bytes | str | None, port: bytes | str | int | None, *,
                          family: int = 0, type: int = 0, proto: int = 0,
                          flags: int = 0) -> _GetAddrInfoResult:
        """Resolve a host and port (served by the ``resolver`` plugin)."""
        result: _GetAddrInfoResult
        result = await self.service("resolver").getaddrinfo(host, port, family=family, type=type,
                                                            proto=proto, flags=flags)
        return result

    async def getnameinfo(self, sockaddr: tuple[str, int] | tuple[str, int, int, int],
                          flags: int = 0) -> tuple[str, str]:
        """Look up the host and port name of an address (served by the ``resolver`` plugin)."""
        result: tuple[str, str]
        result = await self.service("resolver").getnameinfo(sockaddr, flags)
        return result

    async def subprocess_exec(
            self, protocol_factory: Callable[[], _ProtocolT], program: StrOrBytesPath,
            *args: StrOrBytesPath, stdin: int | IO[Any] | None = subprocess.PIPE,
            stdout: int | IO[Any] | None = subprocess.PIPE,
            stderr: int | IO[Any] | None = subprocess.PIPE,
            universal_newlines: bool = False, shell: bool = False, bufsize: int = 0,
            encoding: str | None = None, errors: str | None = None, text: bool | None = None,
            **kwargs: Any,
    ) -> tuple[asyncio.SubprocessTransport, _ProtocolT]:
        """Run a program (served by the ``subprocess`` plugin)."""
        result: tuple[asyncio.SubprocessTransport, _ProtocolT]
        result = await self.service("subprocess").subprocess_exec(
            protocol_factory, program, *args, stdin=stdin, stdout=stdout, stderr=stderr,
            universal_newlines=universal_newlines, shell=shell, bufsize=bufsize,
            encoding=encoding, errors=errors, text=text, **kwargs)
        return result

    async def subprocess_shell(
            self, protocol_factory: Callable[[], _ProtocolT], cmd: bytes | str, *,
            stdin: int | IO[Any] | None = subprocess.PIPE,
            stdout: int | IO[Any] | None = subprocess.PIPE,
            stderr: int | IO[Any] | None = subprocess.PIPE, universal_newlines: bool = False,
            shell: bool = True, bufsize: int = 0, encoding: str | None = None,
            errors: str | None = None, text: bool | None = None, **kwargs: Any,
    ) -> tuple[asyncio.SubprocessTransport, _ProtocolT]:
        """Run a shell command (served by the ``subprocess`` plugin)."""
        result: tuple[asyncio.SubprocessTransport, _ProtocolT]
        result = await self.service("subprocess").subprocess_shell(
            protocol_factory, cmd, stdin=stdin, stdout=stdout, stderr=stderr,
            universal_newlines=universal_newlines, shell=shell, bufsize=bufsize,
            encoding=encoding, errors=errors, text=text, **kwargs)
        return result


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
    return recipe.missing(kind) if recipe is not None else missing_feature(kind)
