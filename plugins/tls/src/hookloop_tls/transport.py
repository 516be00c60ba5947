"""The TLS transport: an ``ssl.SSLObject`` over two memory BIOs, riding on a
plain transport.

One object, two faces.  To the application it is an ``asyncio.Transport``
(``write``, ``close``, flow control, extra info).  To the plain transport
underneath -- our socket transport for ``ssl=``, or whatever transport
``loop.start_tls()`` upgrades -- it is the protocol: ``data_received``,
``eof_received``, ``connection_lost``, ``pause_writing``/``resume_writing``.
Not having a separate protocol object saves a call per event.

States::

    HANDSHAKING --ok--> OPEN --close() or peer's close_notify/EOF--> SHUTTING_DOWN --> CLOSED
         |                                                                            ^
         +--- handshake error or timeout, abort(), a fatal error, the plain transport lost

* **Reading** (the hot path): the plain transport hands us ciphertext; it
  goes into the incoming BIO and ``SSLObject.read`` turns it into plaintext
  for the app, one ``data_received`` per event however many records came
  (or straight into a ``BufferedProtocol``'s buffer).  While the app has
  paused reading, ciphertext waits in the BIO; past the read high-water mark
  the plain transport is paused too.
* **Writing**: ``SSLObject.write`` encrypts into the outgoing BIO and its
  contents go to the plain transport in one ``write``, so the plain
  transport's coalescing and flow control apply.  While the plain transport
  has paused us, ciphertext waits in the BIO; the app is paused when BIO
  plus backlog pass our high-water mark (asyncio's 512 KiB).  The backlog
  only holds plaintext the ``SSLObject`` could not take yet (before the
  handshake, or when it wants to read first).
* **Closing**: ``close()`` encrypts the backlog, sends close_notify
  (``unwrap``), waits for the peer's (at most ``ssl_shutdown_timeout``),
  then closes the plain transport, which flushes the ciphertext still in its
  buffer before the fd goes.  A peer's close_notify is the app's
  ``eof_received`` and starts the same shutdown (TLS has no half-close here,
  as in asyncio).  ``abort()`` drops everything at once.

The app protocol sees ``connection_made`` once the handshake is done (not at
all for ``start_tls``, whose caller already has it), and ``connection_lost``
once, only if it saw ``connection_made``.  A handshake that fails or times
out reaches the ``create_*`` caller through the waiter.

The module is over our usual ~600 lines because it is one class whose two
faces and state machine share every attribute; split across files, one
object's invariants would be too.

This module must never: block; call a hook (nothing here is assembly);
touch a socket (the plain transport owns the fd); call the app after
``connection_lost``; drop bytes written before ``close()``.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import ssl
import warnings
from collections.abc import Callable, Iterable
from typing import Any, cast

from hookloop.transport import (
    LOST_WRITES_WARNING,
    check_bytes_like,
    notify_flow_control,
    report_error,
    water_marks,
)

logger = logging.getLogger("asyncio")

#: asyncio's defaults, in seconds.
HANDSHAKE_TIMEOUT = 60.0
SHUTDOWN_TIMEOUT = 30.0
#: Default high-water marks: of our write buffer (backlog + outgoing BIO) and
#: of ciphertext waiting in the incoming BIO while the app has paused reading.
WRITE_HIGH_WATER = 512 * 1024
READ_HIGH_WATER = 256 * 1024
#: Size of the buffer ciphertext is received into (a 64 KiB message in one
#: event).  One per loop, shared by its TLS transports (see ``get_buffer``).
RECEIVE_BUFFER = 256 * 1024
#: Plaintext asked for per ``SSLObject.read`` call.  A TLS record carries at
#: most 16 KiB and one read returns at most one record, so asking for more
#: only makes a larger allocation to shrink.
READ_CHUNK = 16 * 1024

HANDSHAKING, OPEN, SHUTTING_DOWN, CLOSED = range(4)

#: What a handshake cut short by the peer fails with.
HANDSHAKE_LOST = "Connection lost during the TLS handshake"

#: "Not yet": the SSLObject needs more input (or, for asyncio's parity, a
#: syscall-level error a memory BIO reports while data is still missing).
_AGAIN = (ssl.SSLWantReadError, ssl.SSLSyscallError)


class SSLTransport(asyncio.Transport, asyncio.BufferedProtocol):
    """TLS over a plain transport (see the module docstring).

    Named after the ``ssl`` module it drives (``SSLObject``, ``SSLContext``);
    asyncio's tests also recognise a TLS transport by "ssl" in its class name.
    """

    #: ``loop.start_tls()`` may put TLS on top of this one (TLS in TLS).
    _start_tls_compatible = True

    def __init__(self, loop: Any, app_protocol: Any, context: ssl.SSLContext,
                 waiter: asyncio.Future[Any] | None, *, server_side: bool,
                 server_hostname: str | None, handshake_timeout: float | None,
                 shutdown_timeout: float | None, receive_buffer: memoryview,
                 call_connection_made: bool = True) -> None:
        super().__init__()
        self._loop = loop
        self._waiter = waiter
        self._server_side = server_side
        self._handshake_timeout = HANDSHAKE_TIMEOUT if handshake_timeout is None \
            else handshake_timeout
        self._shutdown_timeout = SHUTDOWN_TIMEOUT if shutdown_timeout is None \
            else shutdown_timeout
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._sslobj = context.wrap_bio(
            self._incoming, self._outgoing, server_side=server_side,
            server_hostname=None if server_side or not server_hostname else server_hostname)
        self._extra: dict[str, Any] = {"sslcontext": context}
        self._state = HANDSHAKING
        self._plain: Any = None  # the transport underneath, from connection_made
        self._timer: asyncio.TimerHandle | None = None
        self._close_exc: BaseException | None = None  # what connection_lost reports
        # The application side.
        self._app: Any = None
        self._app_buffered = False
        self.set_protocol(app_protocol)
        self._app_made = not call_connection_made  # start_tls: the caller has it
        self._app_closing = False  # close()/abort() called, or shutting down
        self._app_eof = False  # eof_received delivered
        self._lost_writes = 0
        # Writing.
        self._backlog: collections.deque[Any] = collections.deque()
        self._backlog_size = 0
        self._plain_paused = False  # the plain transport paused our writing
        self._app_paused = False  # we paused the app's writing
        self._high_water, self._low_water = water_marks(WRITE_HIGH_WATER, None)
        # Reading.
        self._app_reading = True
        self._plain_reading = True
        self._peer_eof = False  # no more ciphertext will come
        self._read_high, self._read_low = water_marks(READ_HIGH_WATER, None)
        self._receive_view = receive_buffer

    def __repr__(self) -> str:
        state = ("handshaking", "open", "shutting down", "closed")[self._state]
        side = "server" if self._server_side else "client"
        return f"<{type(self).__name__} {side} {state}>"

    # ==================================================================
    # The application's face: asyncio.Transport
    # ==================================================================

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name in self._extra:
            return self._extra[name]
        if self._plain is not None:
            return self._plain.get_extra_info(name, default)
        return default

    def get_protocol(self) -> Any:
        return self._app

    def set_protocol(self, protocol: Any) -> None:
        self._app = protocol
        self._app_buffered = isinstance(protocol, asyncio.BufferedProtocol)

    def is_closing(self) -> bool:
        return self._app_closing

    def close(self) -> None:
        if self._app_closing:
            return
        self._app_closing = True
        if self._state == HANDSHAKING:
            self._abort(None)
        elif self._state == OPEN:
            self._start_shutdown()

    def abort(self) -> None:
        self._app_closing = True
        self._abort(None)

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        if getattr(self, "_state", CLOSED) == OPEN and not self._app_closing:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)

    # -- reading -------------------------------------------------------

    def is_reading(self) -> bool:
        return self._app_reading and not self._app_closing

    def pause_reading(self) -> None:
        self._app_reading = False

    def resume_reading(self) -> None:
        if self._app_reading:
            return
        self._app_reading = True
        self._loop.call_soon(self._resume_app_reading)

    def _resume_app_reading(self) -> None:
        if self._state == OPEN and self._app_reading:
            self._read_app_data()

    def set_read_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._read_high, self._read_low = water_marks(high, low)
        self._control_plain_reading()

    def get_read_buffer_limits(self) -> tuple[int, int]:
        return (self._read_low, self._read_high)

    def get_read_buffer_size(self) -> int:
        return self._incoming.pending

    # -- writing -------------------------------------------------------

    def write(self, data: Any) -> None:
        if type(data) is not bytes:
            check_bytes_like(data)
            if type(data) is memoryview and data.itemsize != 1:
                data = data.cast("B")
        if not data:
            return
        if self._state != OPEN or self._app_closing:
            self._refused_write()
            return
        if self._backlog:  # keep the order: behind what waits already
            self._queue(data)
            self._write_backlog()
            return
        try:
            self._sslobj.write(data)
        except _AGAIN:
            self._queue(data)
        except ssl.SSLError as exc:
            self._fatal_error(exc, "Fatal error on SSL transport")
            return
        self._send_outgoing()

    def writelines(self, list_of_data: Iterable[Any]) -> None:
        items = list(list_of_data)
        for item in items:
            check_bytes_like(item)
        self.write(b"".join(items))

    def write_eof(self) -> None:
        raise NotImplementedError("TLS transports cannot write EOF; close() sends close_notify")

    def can_write_eof(self) -> bool:
        return False

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high_water, self._low_water = water_marks(high, low)
        self._control_app_writing()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low_water, self._high_water)

    def get_write_buffer_size(self) -> int:
        return self._backlog_size + self._outgoing.pending

    @property
    def _ssl_protocol(self) -> SSLTransport:
        """The object the plain transport talks to (test_asyncio's test_ssl
        pauses and resumes it by this name): this one."""
        return self

    def _test__append_write_backlog(self, data: bytes) -> None:
        """Queue plaintext unsent: the name test_asyncio's test_ssl uses to
        fill a TLS transport's backlog."""
        self._queue(data)

    def _queue(self, data: Any) -> None:
        self._backlog.append(data if type(data) is bytes else bytes(data))
        self._backlog_size += len(data)

    def _refused_write(self) -> None:
        if self._lost_writes >= LOST_WRITES_WARNING:
            logger.warning("SSL connection is closed")
        self._lost_writes += 1

    # ==================================================================
    # The plain transport's face: its protocol
    # ==================================================================

    def connection_made(self, transport: Any) -> None:
        self._plain = transport
        loop = self._loop
        self._timer = loop.call_later(self._handshake_timeout, self._handshake_timed_out)
        if loop.get_debug():
            logger.debug("%r starts the TLS handshake", self)
        self._do_handshake()

    def feed_early_ciphertext(self, data: bytes) -> None:
        """Ciphertext that arrived before this transport took over the plain
        one (see :meth:`hookloop_tls.service.TLSService.start_tls`)."""
        self._incoming.write(data)

    def get_buffer(self, sizehint: int) -> memoryview:
        # The loop's shared receive buffer: the plain transport fills it and
        # buffer_updated() copies it into our BIO at once, so no two
        # transports ever hold it at the same time (TLS in TLS included: the
        # outer one is done with it before it decrypts into the inner one's).
        # A buffer per connection would be 256 KiB each, allocated and
        # zeroed per handshake.
        return self._receive_view

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self._receive_view[:nbytes])

    def data_received(self, data: Any) -> None:
        self._incoming.write(data)
        state = self._state
        if state == OPEN:
            self._read_app_data()
        elif state == HANDSHAKING:
            self._do_handshake()
        elif state == SHUTTING_DOWN:
            self._do_shutdown()

    def eof_received(self) -> bool | None:
        self._peer_eof = True
        if self._loop.get_debug():
            logger.debug("%r received EOF", self)
        state = self._state
        if state == HANDSHAKING:
            self._handshake_done(ConnectionResetError(HANDSHAKE_LOST))
        elif state == OPEN:
            if not self._app_reading:
                return True  # what is still in the BIO is delivered on resume
            self._read_app_data()
        elif state == SHUTTING_DOWN:
            self._do_shutdown()
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        exc = exc or self._close_exc
        self._state = CLOSED
        self._app_closing = True
        self._cancel_timer()
        self._backlog.clear()
        self._backlog_size = 0
        self._outgoing.read()
        app, self._app = self._app, None
        if self._app_made:
            self._app_made = False
            app.connection_lost(exc)
        if self._waiter is not None:
            self._wake_waiter(exc or ConnectionResetError(HANDSHAKE_LOST))

    def pause_writing(self) -> None:
        self._plain_paused = True

    def resume_writing(self) -> None:
        self._plain_paused = False
        self._send_outgoing()

    # ==================================================================
    # The TLS state machine
    # ==================================================================

    def _do_handshake(self) -> None:
        try:
            self._sslobj.do_handshake()
        except _AGAIN:
            self._send_outgoing()
            return
        except ssl.SSLError as exc:
            self._handshake_done(exc)
            return
        self._handshake_done(None)

    def _handshake_done(self, exc: BaseException | None) -> None:
        self._cancel_timer()
        sslobj = self._sslobj
        if exc is None:
            try:
                peercert = sslobj.getpeercert()
            except Exception as error:  # noqa: BLE001 - reported as the handshake's failure
                exc = error
        if exc is not None:
            self._state = CLOSED
            message = ("SSL handshake failed on verifying the certificate"
                       if isinstance(exc, ssl.CertificateError) else "SSL handshake failed")
            self._fatal_error(exc, message)
            self._wake_waiter(exc)
            return
        self._state = OPEN
        self._extra.update(peercert=peercert, cipher=sslobj.cipher(),
                           compression=sslobj.compression(), ssl_object=sslobj)
        self._send_outgoing()  # our last handshake flight
        if not self._app_made:
            self._app_made = True
            self._app.connection_made(self)
        self._wake_waiter(None)
        self._read_app_data()

    def _handshake_timed_out(self) -> None:
        self._timer = None
        if self._state == HANDSHAKING:
            self._fatal_error(ConnectionAbortedError(
                f"SSL handshake is taking longer than {self._handshake_timeout} seconds: "
                "aborting the connection"))

    def _read_app_data(self) -> None:
        """Decrypt what the incoming BIO holds and give it to the app."""
        if self._app_reading:
            try:
                if self._app_buffered:
                    closed = self._read_into_app()
                else:
                    closed = self._read_to_app()
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal error on SSL transport")
                return
            if closed or (self._peer_eof and self._state == OPEN):
                self._call_app_eof()
                self._start_shutdown()
                return
            if self._outgoing.pending:  # key updates, session tickets, renegotiation
                self._send_outgoing()
            if self._backlog:
                self._write_backlog()
        self._control_plain_reading()

    def _read_to_app(self) -> bool:
        """Protocol app: one ``data_received`` with everything readable.
        True if the peer's close_notify came."""
        read = self._sslobj.read
        incoming = self._incoming
        first = None
        chunks = None
        closed = False
        try:
            while True:
                chunk = read(READ_CHUNK)
                if not chunk:
                    closed = True
                    break
                if first is None:
                    first = chunk
                elif chunks is None:
                    chunks = [first, chunk]
                else:
                    chunks.append(chunk)
                if not incoming.pending and not self._sslobj.pending():
                    break
        except _AGAIN:
            pass
        if first is not None:
            self._app.data_received(first if chunks is None else b"".join(chunks))
        return closed

    def _read_into_app(self) -> bool:
        """BufferedProtocol app: decrypt straight into its buffers.
        True if the peer's close_notify came."""
        sslobj = self._sslobj
        incoming = self._incoming
        while True:
            buf = self._app.get_buffer(incoming.pending or -1)
            size = len(buf)
            if not size:
                raise RuntimeError("get_buffer() returned an empty buffer")
            filled = 0
            closed = False
            try:
                while filled < size:
                    # With a buffer, read() returns a count (typeshed says bytes).
                    count = cast(int, sslobj.read(size - filled, memoryview(buf)[filled:]))
                    if not count:
                        closed = True
                        break
                    filled += count
                    if not incoming.pending and not sslobj.pending():
                        break
            except _AGAIN:
                pass
            if filled:
                self._app.buffer_updated(filled)
            if closed or filled < size or self._state != OPEN or not self._app_reading:
                return closed

    def _call_app_eof(self) -> None:
        if self._app_eof or not self._app_made:
            return
        self._app_eof = True
        try:
            keep_open = self._app.eof_received()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Error calling eof_received()")
            return
        if keep_open:
            logger.warning("returning true from eof_received() has no effect when using ssl")

    def _write_backlog(self) -> None:
        """Encrypt queued plaintext, as far as the SSLObject takes it."""
        backlog = self._backlog
        write = self._sslobj.write
        try:
            while backlog:
                data = backlog[0]
                sent = write(data)
                if sent < len(data):
                    backlog[0] = memoryview(data)[sent:]
                else:
                    backlog.popleft()
                self._backlog_size -= sent
        except _AGAIN:
            pass
        except ssl.SSLError as exc:
            self._fatal_error(exc, "Fatal error on SSL transport")
            return
        self._send_outgoing()

    def _send_outgoing(self) -> None:
        """Hand the ciphertext to the plain transport (unless it paused us)."""
        if not self._plain_paused and self._outgoing.pending and self._plain is not None:
            self._plain.write(self._outgoing.read())
        self._control_app_writing()

    def _start_shutdown(self) -> None:
        """Flush, send close_notify, wait for the peer's (bounded)."""
        if self._state != OPEN:
            return
        self._app_closing = True
        self._state = SHUTTING_DOWN
        self._timer = self._loop.call_later(self._shutdown_timeout, self._shutdown_timed_out)
        if self._backlog:
            self._write_backlog()
        self._do_shutdown()

    def _do_shutdown(self) -> None:
        if self._state != SHUTTING_DOWN:
            return
        if not self._peer_eof:
            try:
                self._sslobj.unwrap()
            except _AGAIN:
                self._send_outgoing()  # our close_notify; now wait for theirs
                return
            except ssl.SSLError as exc:
                self._fatal_error(exc, "Fatal error on SSL transport")
                return
        self._send_outgoing()
        self._call_app_eof()
        self._state = CLOSED
        # The plain transport flushes its buffer before it closes, which a
        # peer that does not read can delay forever: the shutdown timer
        # keeps running until connection_lost.
        self._plain.close()

    def _shutdown_timed_out(self) -> None:
        self._timer = None
        self._abort(TimeoutError("SSL shutdown timed out"))

    # -- flow control --------------------------------------------------

    def _control_app_writing(self) -> None:
        size = self._backlog_size + self._outgoing.pending
        if self._app_paused:
            if size <= self._low_water:
                self._app_paused = False
                notify_flow_control(self._loop, self, self._app, "resume_writing")
        elif size > self._high_water:
            self._app_paused = True
            notify_flow_control(self._loop, self, self._app, "pause_writing")

    def _control_plain_reading(self) -> None:
        plain = self._plain
        if plain is None or self._state == CLOSED:
            return
        size = self._incoming.pending
        if self._plain_reading:
            if size >= self._read_high and size:
                self._plain_reading = False
                plain.pause_reading()
        elif size <= self._read_low:
            self._plain_reading = True
            plain.resume_reading()

    # -- endings -------------------------------------------------------

    def _cancel_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def _wake_waiter(self, exc: BaseException | None) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is None or waiter.done():
            return
        if exc is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(exc)

    def _abort(self, exc: BaseException | None) -> None:
        """Drop the connection now; ``connection_lost(exc)`` follows."""
        self._state = CLOSED
        self._cancel_timer()
        if self._close_exc is None:
            self._close_exc = exc
        if self._plain is not None:
            self._plain.abort()
        else:  # never connected (start_tls cancelled before connection_made)
            self.connection_lost(exc)

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on SSL transport"
                     ) -> None:
        """Report ``exc`` (OSErrors, ssl errors included, only in debug mode,
        as asyncio; a cancellation not at all) and abort."""
        if not isinstance(exc, asyncio.CancelledError):
            report_error(self._loop, exc, message, self, self._app,
                         quiet=isinstance(exc, OSError))
        self._abort(exc)
