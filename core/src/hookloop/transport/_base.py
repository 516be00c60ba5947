"""What every fd transport shares: lifecycle, extra info, flow control, writing.

A transport here owns one file descriptor (a socket or a pipe end) and one
protocol.  This module holds the parts that do not depend on what the fd
is:

* **lifecycle** -- ``close()`` (stop reading, flush, then lose the
  connection), ``abort()`` (drop the buffer, lose it now), fatal errors, and
  ``connection_lost`` called exactly once, from the ready queue, after
  which the fd is closed and released;
* **write-side flow control** -- water marks, ``pause_writing`` /
  ``resume_writing`` when the buffer crosses them;
* **the write buffer** -- ``write()`` tries the fd at once and buffers only
  what the kernel did not take; the writable callback sends the buffer in
  one vectored call (``sendmsg``/``writev``).  A transport supplies the two
  primitives ``_send(data) -> int`` and ``_sendv(buffers) -> int``.

The loop's fd table calls a transport's ``_on_readable``/``_on_writable``
bound methods directly (see :meth:`hookloop.loop.EventLoop.watch_read`):
no ``Handle``, no hook call.  Protocol callbacks that are not driven by I/O
(``connection_made``, ``connection_lost``) go through the ready queue, as
asyncio schedules them, so their order relative to user callbacks is the
same.

**Contexts** are asyncio's, where its handles put them: ``connection_made``
and ``connection_lost`` run in a copy of the context current when they are
scheduled (``call_soon``); reads run in a copy taken when reading starts
(``_begin``, scheduled when the transport is made) or resumes
(``resume_reading``, in its caller's context); a flush of the write buffer
in a copy taken by the ``write()`` that had to wait.  The fd table runs
them as ``context.run(bound_method)``: one ``Context.run`` per event, no
extra Python frame.  So a protocol sees the context its connection was
made in, and what one connection sets never reaches another.

What this module must never do: touch a socket API beyond ``_send``,
``_sendv`` and ``close`` of the fd object, or know about TLS.
"""
from __future__ import annotations

import collections
import contextvars
import logging
import os
import warnings
from collections.abc import Callable, Iterable
from itertools import islice
from typing import TYPE_CHECKING, Any

logger = logging.getLogger("asyncio")
_copy_context = contextvars.copy_context

#: Default high water mark of the write buffer (asyncio's: 64 KiB).
DEFAULT_HIGH_WATER = 64 * 1024
#: How many writes after the connection was lost before we warn about them.
LOST_WRITES_WARNING = 5
#: Most buffers given to one sendmsg()/writev() call.
MAX_IOV = min(1024, os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 16)

_BYTES_LIKE = (bytes, bytearray, memoryview)

#: Errors that mean "the peer went away"; reported at debug level only.
PEER_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


def check_bytes_like(data: Any, argument: str = "data") -> None:
    if not isinstance(data, _BYTES_LIKE):
        raise TypeError(f"{argument} argument must be a bytes-like object, "
                        f"not {type(data).__name__!r}")


def check_tls_timeouts(handshake_timeout: Any, shutdown_timeout: Any) -> None:
    """``ssl_handshake_timeout``/``ssl_shutdown_timeout``: None (asyncio's
    defaults, 60 s and 30 s) or a positive number of seconds."""
    for name, value in (("ssl_handshake_timeout", handshake_timeout),
                        ("ssl_shutdown_timeout", shutdown_timeout)):
        if value is not None and not value > 0:
            raise ValueError(f"{name} should be a positive number, got {value}")


async def started(transport: Any, waiter: Any) -> None:
    """Wait until ``transport`` runs (its ``connection_made`` was called);
    close it if that fails or the wait is cancelled."""
    try:
        await waiter
    except BaseException:
        transport.close()
        raise


def wake_waiter(waiter: Any) -> None:
    """Tell a ``create_*`` call waiting for a transport that it runs."""
    if waiter is not None and not waiter.cancelled():
        waiter.set_result(None)


def report_error(loop: Any, exc: BaseException, message: str, transport: Any,
                 protocol: Any, *, quiet: bool) -> None:
    """Report a transport's error the way asyncio does: a quiet one (the
    protocol hears of it through ``connection_lost``) only in the debug log,
    any other to the loop's exception handler."""
    if quiet:
        if loop.get_debug():
            logger.debug("%r: %s", transport, message, exc_info=True)
    else:
        loop.call_exception_handler({
            "message": message,
            "exception": exc,
            "transport": transport,
            "protocol": protocol,
        })


def notify_flow_control(loop: Any, transport: Any, protocol: Any, method: str) -> None:
    """Call ``protocol.pause_writing()``/``resume_writing()`` (``method``);
    a failure goes to the loop's exception handler, as in asyncio."""
    try:
        getattr(protocol, method)()
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        report_error(loop, exc, f"protocol.{method}() failed", transport, protocol, quiet=False)


def water_marks(high: int | None, low: int | None) -> tuple[int, int]:
    """Validate ``set_write_buffer_limits`` arguments the way asyncio does."""
    if high is None:
        high = DEFAULT_HIGH_WATER if low is None else 4 * low
    if low is None:
        low = high // 4
    if not high >= low >= 0:
        raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
    return high, low


class TransportCore:
    """Lifecycle, extra info and write-side flow control of a transport.

    Subclasses set ``_fd`` and ``_fileobj`` (what gets closed) and call
    :meth:`_init_core` from their ``__init__``.
    """

    if not TYPE_CHECKING:
        # The concrete transports list every slot (see SocketTransport); to a
        # type checker the attributes are the annotations below.
        __slots__ = ()

    _loop: Any
    _fileobj: Any
    _fd: int
    _protocol: Any
    _extra: dict[str, Any]
    _closing: bool
    _lost: bool
    _lost_writes: int
    _high_water: int
    _low_water: int
    _protocol_paused: bool
    _server: Any

    def _init_core(self, loop: Any, fileobj: Any, fd: int, protocol: Any,
                   extra: dict[str, Any] | None, server: Any = None) -> None:
        self._loop = loop
        self._fileobj = fileobj
        self._fd = fd
        self._protocol = protocol
        self._extra = {} if extra is None else extra
        self._closing = False
        self._lost = False  # connection_lost scheduled
        self._lost_writes = 0
        self._high_water, self._low_water = water_marks(None, None)
        self._protocol_paused = False
        self._server = server
        loop.claim_fd(fd, self)
        if server is not None:
            server._attach(self)

    def __repr__(self) -> str:
        state = "closed" if self._fileobj is None else (
            "closing" if self._closing else "open")
        return f"<{type(self).__name__} fd={self._fd} {state}>"

    # -- BaseTransport -------------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def is_closing(self) -> bool:
        return self._closing

    def get_protocol(self) -> Any:
        return self._protocol

    def set_protocol(self, protocol: Any) -> None:
        self._protocol = protocol

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._stop_reading()
        self._loop.release_fd(self._fd)
        if not self._has_pending_writes():
            self._lose_connection(None)

    def abort(self) -> None:
        self._force_close(None)

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        if getattr(self, "_fileobj", None) is not None and not self._lost:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self._fileobj.close()

    # -- hooks for subclasses ------------------------------------------

    def _stop_reading(self) -> None:
        """Stop watching for input (the transport is closing)."""

    def _has_pending_writes(self) -> bool:
        return False

    def _drop_pending_writes(self) -> None:
        """Forget buffered output (the transport is being aborted)."""

    # -- losing the connection -----------------------------------------

    def _fatal_error(self, exc: BaseException, message: str) -> None:
        """Report ``exc`` (unless it is a quiet one) and abort."""
        report_error(self._loop, exc, message, self, self._protocol,
                     quiet=self._is_quiet_error(exc))
        self._force_close(exc)

    def _is_quiet_error(self, exc: BaseException) -> bool:
        """True if ``exc`` is logged at debug level instead of reported.

        By default every ``OSError``, as asyncio's socket transports do: it
        reaches the protocol through ``connection_lost(exc)`` anyway.
        """
        return isinstance(exc, OSError)

    def _force_close(self, exc: BaseException | None) -> None:
        if self._lost:
            return
        self._drop_pending_writes()
        if not self._closing:
            self._closing = True
            self._stop_reading()
            self._loop.release_fd(self._fd)
        self._lose_connection(exc)

    def _lose_connection(self, exc: BaseException | None) -> None:
        """Schedule ``connection_lost(exc)``; the fd closes right after it."""
        self._lost = True
        self._lost_writes += 1
        self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            fileobj, self._fileobj = self._fileobj, None
            if fileobj is not None:
                fileobj.close()
            self._protocol = None
            self._loop = None
            server, self._server = self._server, None
            if server is not None:
                server._detach(self)

    def _drop_write(self, warning: str = "socket.send() raised exception.") -> None:
        """Forget a write made after the connection was lost or closed,
        warning from the :data:`LOST_WRITES_WARNING`-th one on, as asyncio."""
        if self._lost_writes >= LOST_WRITES_WARNING:
            logger.warning(warning)
        self._lost_writes += 1

    # -- write-side flow control ---------------------------------------

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high_water, self._low_water = water_marks(high, low)
        self._maybe_pause_protocol()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low_water, self._high_water)

    def get_write_buffer_size(self) -> int:
        return 0

    def _maybe_pause_protocol(self) -> None:
        if self._protocol_paused or self.get_write_buffer_size() <= self._high_water:
            return
        self._protocol_paused = True
        notify_flow_control(self._loop, self, self._protocol, "pause_writing")

    def _maybe_resume_protocol(self) -> None:
        if not self._protocol_paused or self.get_write_buffer_size() > self._low_water:
            return
        self._protocol_paused = False
        notify_flow_control(self._loop, self, self._protocol, "resume_writing")


class ReadControl(TransportCore):
    """``pause_reading``/``resume_reading``/``is_reading`` of a transport
    whose fd is watched for reading by the bound method ``_reader``.

    ``_reading`` is false only while paused: like asyncio, a transport that
    got EOF but stays open for writing still says it is reading.
    """

    if not TYPE_CHECKING:
        # The concrete transports list every slot (see SocketTransport); to a
        # type checker the attributes are the annotations below.
        __slots__ = ()

    _reading: bool
    _reader: Callable[[], Any]
    _read_context: contextvars.Context | None

    def is_reading(self) -> bool:
        return self._reading and not self._closing

    def pause_reading(self) -> None:
        if self._closing or not self._reading:
            return
        self._reading = False
        self._read_context = None  # resume_reading takes a new one
        self._loop.unwatch_read(self._fd)
        if self._loop.get_debug():
            logger.debug("%r pauses reading", self)

    def resume_reading(self) -> None:
        if self._closing or self._reading:
            return
        self._reading = True
        # asyncio's resume_reading adds a new reader handle, which copies
        # the context of the caller: so do we.
        self._read_context = _copy_context()
        self._loop.watch_read(self._fd, self._reader, self._read_context)
        if self._loop.get_debug():
            logger.debug("%r resumes reading", self)

    def _stop_reading(self) -> None:
        # The context goes with the reads, as asyncio's reader handle does:
        # a closed transport keeps no request-scoped values alive.
        self._read_context = None
        if self._reading:
            self._loop.unwatch_read(self._fd)

    def _begin(self, waiter: Any) -> None:
        """After ``connection_made``: start reading (unless paused or
        closed already), then wake ``waiter``.  A poller may refuse an fd it
        cannot poll (epoll: ``/dev/null``): the transport is closed then and
        the waiter gets the error.

        Runs from the ready queue, scheduled when the transport was made,
        so the reads run in a copy of the context the transport was made in
        (a separate one from ``connection_made``'s copy, as with asyncio).
        """
        if self.is_reading():
            self._read_context = _copy_context()
            try:
                self._loop.watch_read(self._fd, self._reader, self._read_context)
            except OSError as exc:
                self._force_close(exc)
                if waiter is not None and not waiter.cancelled():
                    waiter.set_exception(exc)
                return
        wake_waiter(waiter)


class BufferedWriter(TransportCore):
    """``write``/``writelines``/``write_eof`` over ``_send`` and ``_sendv``.

    The buffer is a deque of bytes-like chunks plus their total size.  A
    chunk the kernel took part of is replaced by a memoryview of the rest.
    Data the caller may mutate later (``bytearray``, ``memoryview``) is
    copied when it has to wait in the buffer, never when it is sent at once.

    ``_sendfile_waiter`` is None unless ``loop.sendfile()`` owns the fd (see
    :mod:`.sendfile`): then it is the future that sendfile awaits, writes
    are refused, the future is resolved when the buffer becomes empty and
    failed if the connection is lost first.
    """

    if not TYPE_CHECKING:
        # The concrete transports list every slot (see SocketTransport); to a
        # type checker the attributes are the annotations below.
        __slots__ = ()

    _buffer: collections.deque[Any]
    _buffer_size: int
    _eof_written: bool
    _send: Callable[[Any], int]
    _sendv: Callable[[list[Any]], int]
    _write_error_message: str
    _sendfile_waiter: Any

    def _init_writer(self) -> None:
        self._buffer = collections.deque()
        self._buffer_size = 0
        self._eof_written = False
        self._sendfile_waiter = None

    def get_write_buffer_size(self) -> int:
        return self._buffer_size

    def _has_pending_writes(self) -> bool:
        return self._buffer_size > 0

    def _drop_pending_writes(self) -> None:
        if self._buffer_size:
            self._buffer.clear()
            self._buffer_size = 0
            self._loop.unwatch_write(self._fd)

    def _refuse_write(self) -> bool:
        """True if a write must be dropped (after close or a lost connection)."""
        if self._sendfile_waiter is not None:
            raise RuntimeError("unable to write; sendfile is in progress")
        if self._eof_written:
            raise RuntimeError("Cannot call write() after write_eof()")
        if self._lost_writes:
            self._drop_write()
            return True
        return False

    def write(self, data: Any) -> None:
        if type(data) is not bytes:
            check_bytes_like(data)
            if type(data) is memoryview and data.itemsize != 1:
                data = data.cast("B")
        if self._eof_written or self._lost_writes or self._sendfile_waiter is not None:
            if self._refuse_write():
                return
        if not data:
            return
        if self._buffer_size:
            self._append(data)
            self._maybe_pause_protocol()
            return
        try:
            sent = self._send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, self._write_error_message)
            return
        if sent == len(data):
            return
        self._append(memoryview(data)[sent:] if sent else data)
        # Like asyncio's add_writer here: the flush runs in a copy of the
        # writer's context (resume_writing sees it).
        self._loop.watch_write(self._fd, self._on_writable, _copy_context())
        self._maybe_pause_protocol()

    def writelines(self, list_of_data: Iterable[Any]) -> None:
        chunks = list(list_of_data)
        for data in chunks:
            check_bytes_like(data)
        if self._eof_written or self._lost_writes or self._sendfile_waiter is not None:
            if self._refuse_write():
                return
        was_empty = not self._buffer_size
        for data in chunks:
            if data:
                self._append(data)
        if not self._buffer_size:
            return
        if was_empty:
            self._flush(first=True)
        self._maybe_pause_protocol()

    def _append(self, data: Any) -> None:
        if type(data) is not bytes and not (type(data) is memoryview and data.readonly):
            data = bytes(data)
        self._buffer.append(data)
        self._buffer_size += len(data)

    def _on_writable(self) -> None:
        self._flush(first=False)

    def _flush(self, first: bool) -> None:
        """Send as much of the buffer as the kernel takes now.

        ``first`` is true when nobody watches the fd for writing yet; the
        writable callback is installed if anything is left.
        """
        buffer = self._buffer
        try:
            if len(buffer) == 1:
                sent = self._send(buffer[0])
            else:
                sent = self._sendv(list(buffer) if len(buffer) <= MAX_IOV
                                   else list(islice(buffer, MAX_IOV)))
        except (BlockingIOError, InterruptedError):
            sent = 0
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            if not first:
                self._loop.unwatch_write(self._fd)
            buffer.clear()
            self._buffer_size = 0
            self._fatal_error(exc, self._write_error_message)
            return
        self._consume(sent)
        if self._buffer_size:
            if first:
                self._loop.watch_write(self._fd, self._on_writable, _copy_context())
            return
        if not first:
            self._loop.unwatch_write(self._fd)
        self._maybe_resume_protocol()
        waiter = self._sendfile_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self._closing:
            if not self._lost:
                self._lose_connection(None)
        elif self._eof_written:
            self._shutdown_write()

    def _lose_connection(self, exc: BaseException | None) -> None:
        waiter = self._sendfile_waiter
        if waiter is not None and not waiter.done():
            # Its done callbacks run before connection_lost and the close
            # of the fd (both are scheduled after them).
            lost = ConnectionError("Connection is closed by peer")
            lost.__cause__ = exc
            waiter.set_exception(lost)
        super()._lose_connection(exc)

    def _consume(self, sent: int) -> None:
        """Drop ``sent`` bytes from the front of the buffer."""
        self._buffer_size -= sent
        buffer = self._buffer
        while sent:
            head = buffer[0]
            size = len(head)
            if size > sent:
                buffer[0] = memoryview(head)[sent:]
                return
            buffer.popleft()
            sent -= size

    def write_eof(self) -> None:
        if self._closing or self._eof_written:
            return
        self._eof_written = True
        if not self._buffer_size:
            self._shutdown_write()

    def can_write_eof(self) -> bool:
        return True

    def _shutdown_write(self) -> None:
        """Half-close the fd for writing (the buffer is empty)."""
        raise NotImplementedError
