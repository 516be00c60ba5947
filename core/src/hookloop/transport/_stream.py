"""The stream socket transport (TCP and unix stream sockets).

It owns one connected, non-blocking stream socket.  Reading is a bound
method in the loop's fd table that calls ``recv`` (or ``recv_into`` for a
``BufferedProtocol``) and hands the result straight to the protocol; writing
is :class:`~hookloop.transport.BufferedWriter` over ``send`` and
``sendmsg``.  Everything else (lifecycle, flow control) is inherited.

It must never block, never call a protocol method while another one of the
same transport is running, and never read before ``connection_made`` ran.
"""
from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

from ._base import BufferedWriter, ReadControl
from ._socketview import TransportSocket

logger = logging.getLogger("asyncio")

#: Largest read per readiness event.  asyncio reads up to 256 KiB; we read
#: 64 KiB.  ``recv(n)`` allocates ``n`` bytes and shrinks the result: with
#: glibc, a 256 KiB request is an mmap()/munmap() pair per call, measured at
#: 15-20 us for a 1 KiB message against 2.5-3 us for 64 KiB, while 64 KiB
#: messages cost the same either way.
MAX_READ = 64 * 1024


def socket_extra(sock: socket.socket) -> dict[str, Any]:
    """``get_extra_info`` values of a socket transport."""
    extra: dict[str, Any] = {"socket": TransportSocket(sock)}
    try:
        extra["sockname"] = sock.getsockname()
    except OSError:
        extra["sockname"] = None
    try:
        extra["peername"] = sock.getpeername()
    except OSError:
        extra["peername"] = None
    return extra


def set_nodelay(sock: socket.socket) -> None:
    """Turn Nagle off on TCP sockets, as asyncio does."""
    if (sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM
            and sock.proto in (0, socket.IPPROTO_TCP)):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class SocketTransport(BufferedWriter, ReadControl, asyncio.Transport):
    """A transport over a connected stream socket."""

    __slots__ = ("_loop", "_fileobj", "_fd", "_protocol", "_closing", "_lost", "_lost_writes",
                 "_high_water", "_low_water", "_protocol_paused", "_server", "_buffer",
                 "_buffer_size", "_eof_written", "_sendfile_waiter", "_send", "_sendv", "_sock",
                 "_reading", "_reader", "_read_context", "_recv", "_recv_into", "__weakref__")

    _write_error_message = "Fatal write error on socket transport"
    #: ``loop.start_tls()`` may put TLS on top of this transport.
    _start_tls_compatible = True

    def __init__(self, loop: Any, sock: socket.socket, protocol: Any,
                 waiter: asyncio.Future[Any] | None = None, extra: dict[str, Any] | None = None,
                 server: Any = None) -> None:
        base_extra = socket_extra(sock)
        if extra:
            base_extra.update(extra)
        self._init_core(loop, sock, sock.fileno(), protocol, base_extra, server)
        self._init_writer()
        self._sock = sock
        self._send = sock.send
        self._sendv = sock.sendmsg
        self._recv = sock.recv
        self._recv_into = sock.recv_into
        self._reading = True
        self._reader = self._pick_reader(protocol)
        self._read_context = None  # set when reading starts (_begin)
        set_nodelay(sock)
        loop.call_soon(protocol.connection_made, self)
        loop.call_soon(self._begin, waiter)

    def _pick_reader(self, protocol: Any) -> Any:
        if isinstance(protocol, asyncio.BufferedProtocol):
            return self._on_readable_into
        return self._on_readable

    # -- reading -------------------------------------------------------

    def set_protocol(self, protocol: Any) -> None:
        reader = self._pick_reader(protocol)
        if reader != self._reader:
            self._reader = reader
            # Same context as before: asyncio's reader handle stays.  Before
            # _begin, nothing is watched yet and _begin will use the new one.
            if self._reading and not self._closing and self._read_context is not None:
                self._loop.watch_read(self._fd, reader, self._read_context)
        self._protocol = protocol

    def _on_readable(self) -> None:
        try:
            data = self._recv(MAX_READ)
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on socket transport")
            return
        if not data:
            self._on_eof()
            return
        try:
            self._protocol.data_received(data)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")

    def _on_readable_into(self) -> None:
        protocol = self._protocol
        try:
            buf = protocol.get_buffer(-1)
            if not len(buf):
                raise RuntimeError("get_buffer() returned an empty buffer")
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.get_buffer() call failed.")
            return
        try:
            nbytes = self._recv_into(buf)
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on socket transport")
            return
        if not nbytes:
            self._on_eof()
            return
        try:
            protocol.buffer_updated(nbytes)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.buffer_updated() call failed.")

    def _on_eof(self) -> None:
        if self._loop.get_debug():
            logger.debug("%r received EOF", self)
        try:
            keep_open = self._protocol.eof_received()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.eof_received() call failed.")
            return
        if keep_open:
            # Half-closed: the peer sent all it will; we may still write.
            self._loop.unwatch_read(self._fd)
        else:
            self.close()

    # -- writing -------------------------------------------------------

    def _shutdown_write(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            self._fatal_error(exc, "Fatal error on socket shutdown")
