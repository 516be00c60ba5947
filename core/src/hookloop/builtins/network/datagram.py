"""Datagram endpoints: ``create_datagram_endpoint`` and its transport.

Owns the argument checking of ``create_datagram_endpoint`` (asyncio's
exceptions and messages), resolving and pairing the local and remote
addresses by (family, protocol), making the socket (``SO_REUSEPORT``,
``SO_BROADCAST``, bind, connect) and the :class:`DatagramTransport`.  Unix
datagram sockets (``family=AF_UNIX``) take ``str`` or ``bytes`` paths
(asyncio: ``str`` only); a stale socket file at the local path is removed
first, as asyncio does.  ``reuse_address`` is not a parameter: Python 3.11
removed it, so passing it is a ``TypeError`` as on asyncio's loop.

The transport reads one datagram per readiness event (``recvfrom_into`` a
per-thread 256 KiB buffer, so a small datagram costs a copy of its own size,
not a 256 KiB allocation), and ``sendto`` tries the kernel at once; only
datagrams the kernel refused with EAGAIN wait in a queue, sent when the fd
is writable.  Flow control counts each queued datagram as its size plus 8
bytes (so that empty datagrams, which are sent like any other, still
count), as asyncio 3.13 reports it.  ``OSError`` from ``sendto``/``recvfrom``
(an ICMP port unreachable on a connected socket: ``ConnectionRefusedError``)
goes to ``protocol.error_received`` and the transport carries on.  Once the
connection is lost, ``sendto`` drops its data, warning from the fifth call
on, like the stream transports (asyncio drops it only on connected
endpoints).  ``sendto(data)`` without an address on an endpoint with no
remote address is the kernel's ``send()``: its error (``EDESTADDRREQ``)
goes to ``error_received`` (asyncio's loop aborts the transport with a
``TypeError``).

This module must never leave a socket it created open on a failure path,
never close a socket the caller passed in unless a transport took it over,
and never call the protocol before ``connection_made``.
"""
from __future__ import annotations

import asyncio
import collections
import contextvars
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

from hookloop.transport import TransportCore, check_bytes_like, socket_extra, started, wake_waiter

from .addresses import remove_stale_unix_socket, resolve
from .server import enable_reuse_port

logger = logging.getLogger("asyncio")

#: Largest datagram read (asyncio's ``max_size``); longer ones are truncated.
MAX_DATAGRAM = 256 * 1024
#: What a queued datagram adds to the write buffer size besides its payload.
DATAGRAM_OVERHEAD = 8


class _ReadBuffer(threading.local):
    """One receive buffer per thread: a loop reads, copies out, then calls
    the protocol, so a buffer is never used by two reads at once."""

    def __init__(self) -> None:
        self.view = memoryview(bytearray(MAX_DATAGRAM))


_read_buffer = _ReadBuffer()


class DatagramTransport(TransportCore, asyncio.Transport, asyncio.DatagramTransport):
    """A transport over a datagram socket (UDP, unix datagram, raw).

    Also an ``asyncio.Transport``, as asyncio's own datagram transport is
    (test_asyncio checks it); the stream-only methods (``write``,
    ``pause_reading``...) raise ``NotImplementedError`` there as here.
    """

    __slots__ = ("_loop", "_fileobj", "_fd", "_protocol", "_closing", "_lost", "_lost_writes",
                 "_high_water", "_low_water", "_protocol_paused", "_server", "_sock",
                 "_address", "_connected", "_reading", "_queue", "_queue_size", "__weakref__")

    def __init__(self, loop: Any, sock: socket.socket, protocol: Any, address: Any = None,
                 waiter: asyncio.Future[Any] | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        base_extra = socket_extra(sock)
        if extra:
            base_extra.update(extra)
        self._init_core(loop, sock, sock.fileno(), protocol, base_extra)
        self._sock = sock
        self._address = address
        self._connected = base_extra["peername"] is not None
        self._reading = False
        self._queue: collections.deque[tuple[bytes, Any]] = collections.deque()
        self._queue_size = 0
        loop.call_soon(protocol.connection_made, self)
        loop.call_soon(self._begin, waiter)

    def _begin(self, waiter: asyncio.Future[Any] | None) -> None:
        # Scheduled at creation: reads run in a copy of the context the
        # endpoint was made in, as asyncio's reader handle does.
        if not self._closing:
            self._loop.watch_read(self._fd, self._on_readable, contextvars.copy_context())
            self._reading = True
        wake_waiter(waiter)

    # -- reading -------------------------------------------------------

    def _stop_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._loop.unwatch_read(self._fd)

    def _on_readable(self) -> None:
        view = _read_buffer.view
        try:
            nbytes, addr = self._sock.recvfrom_into(view)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._protocol.error_received(exc)
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on datagram transport")
            return
        self._protocol.datagram_received(bytes(view[:nbytes]), addr)

    # -- writing -------------------------------------------------------

    def get_write_buffer_size(self) -> int:
        return self._queue_size

    def _has_pending_writes(self) -> bool:
        return bool(self._queue)

    def _drop_pending_writes(self) -> None:
        if self._queue:
            self._queue.clear()
            self._queue_size = 0
            self._loop.unwatch_write(self._fd)

    def sendto(self, data: Any, addr: Any = None) -> None:
        check_bytes_like(data)
        if self._address is not None:
            if addr not in (None, self._address):
                raise ValueError(f"Invalid address: must be None or {self._address}")
            addr = self._address
        if self._lost_writes and self._address is not None:
            # As asyncio: only a connected endpoint drops datagrams once its
            # connection is lost; an unconnected one still tries each, and
            # a failure goes to error_received().
            self._drop_write()
            return
        if self._connected:
            addr = None  # send(): a connected unix socket refuses an address
        if not self._queue:
            try:
                self._send_one(data, addr)
                return
            except (BlockingIOError, InterruptedError):
                self._loop.watch_write(self._fd, self._on_writable, contextvars.copy_context())
            except OSError as exc:
                self._protocol.error_received(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on datagram transport")
                return
        self._queue.append((data if type(data) is bytes else bytes(data), addr))
        self._queue_size += len(data) + DATAGRAM_OVERHEAD
        self._maybe_pause_protocol()

    def _send_one(self, data: Any, addr: Any) -> None:
        if addr is None:
            self._sock.send(data)
        else:
            self._sock.sendto(data, addr)

    def _on_writable(self) -> None:
        queue = self._queue
        while queue:
            data, addr = queue[0]
            try:
                self._send_one(data, addr)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                queue.popleft()
                self._queue_size -= len(data) + DATAGRAM_OVERHEAD
                self._protocol.error_received(exc)
                break
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on datagram transport")
                return
            queue.popleft()
            self._queue_size -= len(data) + DATAGRAM_OVERHEAD
        if self._lost:
            return  # error_received() aborted the transport
        self._maybe_resume_protocol()
        if not queue:
            self._loop.unwatch_write(self._fd)
            if self._closing:
                self._lose_connection(None)


def _unix_address(addr: Any) -> Any:
    if addr is not None and not isinstance(addr, (str, bytes)):
        raise TypeError("string is expected")
    return addr


class DatagramEndpoints:
    """``create_datagram_endpoint``."""

    _loop: Any

    async def create_datagram_endpoint(
            self, protocol_factory: Callable[[], asyncio.BaseProtocol], local_addr: Any = None,
            remote_addr: Any = None, *, family: int = 0, proto: int = 0, flags: int = 0,
            reuse_port: bool | None = None, allow_broadcast: bool | None = None,
            sock: socket.socket | None = None,
    ) -> tuple[asyncio.DatagramTransport, asyncio.BaseProtocol]:
        loop = self._loop
        owned = sock is None
        r_addr = None
        if sock is not None:
            if sock.type == socket.SOCK_STREAM:
                raise ValueError(f"A datagram socket was expected, got {sock!r}")
            modifiers = {"local_addr": local_addr, "remote_addr": remote_addr,
                         "family": family, "proto": proto, "flags": flags,
                         "reuse_port": reuse_port, "allow_broadcast": allow_broadcast}
            problems = ", ".join(f"{name}={value}" for name, value in modifiers.items() if value)
            if problems:
                raise ValueError(f"socket modifier keyword arguments can not be used "
                                 f"when sock is specified. ({problems})")
            sock.setblocking(False)
        else:
            pairs = await self._address_pairs(local_addr, remote_addr, family, proto, flags)
            sock, r_addr = await self._open(pairs, bool(local_addr), bool(remote_addr),
                                            reuse_port, allow_broadcast)
        try:
            protocol = protocol_factory()
            waiter = loop.create_future()
            transport = DatagramTransport(loop, sock, protocol, r_addr, waiter)
        except BaseException:
            if owned:
                sock.close()
            raise
        if loop.get_debug():
            if local_addr:
                logger.info("Datagram endpoint local_addr=%r remote_addr=%r created: (%r, %r)",
                            local_addr, remote_addr, transport, protocol)
            else:
                logger.debug("Datagram endpoint remote_addr=%r created: (%r, %r)",
                             remote_addr, transport, protocol)
        await started(transport, waiter)
        return transport, protocol

    async def _address_pairs(self, local_addr: Any, remote_addr: Any, family: int, proto: int,
                             flags: int) -> list[tuple[tuple[int, int], list[Any]]]:
        """``((family, proto), [local sockaddr, remote sockaddr])`` to try, in order."""
        if not (local_addr or remote_addr):
            if family == 0:
                raise ValueError("unexpected address family")
            return [((family, proto), [None, None])]
        if family == socket.AF_UNIX:
            local_addr = _unix_address(local_addr)
            remote_addr = _unix_address(remote_addr)
            if local_addr:
                remove_stale_unix_socket(local_addr)
            return [((family, proto), [local_addr, remote_addr])]
        by_key: dict[tuple[int, int], list[Any]] = {}
        for index, addr in enumerate((local_addr, remote_addr)):
            if addr is None:
                continue
            if not (isinstance(addr, tuple) and len(addr) == 2):
                raise TypeError("2-tuple is expected")
            infos = await resolve(self._loop, addr[0], addr[1], family=family,
                                  type=socket.SOCK_DGRAM, proto=proto, flags=flags)
            if not infos:
                raise OSError("getaddrinfo() returned empty list")
            for info_family, _, info_proto, _, address in infos:
                pair = by_key.setdefault((info_family, info_proto), [None, None])
                if pair[index] is None:
                    pair[index] = address
        pairs = [(key, pair) for key, pair in by_key.items()
                 if not ((local_addr and pair[0] is None) or (remote_addr and pair[1] is None))]
        if not pairs:
            raise ValueError("can not get address information")
        return pairs

    async def _open(self, pairs: list[tuple[tuple[int, int], list[Any]]], bind: bool,
                    connect: bool, reuse_port: bool | None, allow_broadcast: bool | None,
                    ) -> tuple[socket.socket, Any]:
        """The first socket that could be set up for one of ``pairs``, and
        the remote address the transport is tied to (or None)."""
        errors: list[OSError] = []
        for (family, proto), (local, remote) in pairs:
            sock = None
            try:
                sock = socket.socket(family, socket.SOCK_DGRAM, proto)
                if reuse_port:
                    enable_reuse_port(sock)
                if allow_broadcast:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                sock.setblocking(False)
                if bind:
                    sock.bind(local)
                if connect and not allow_broadcast:
                    await self._loop.sock_connect(sock, remote)
                return sock, (remote if connect else None)
            except OSError as exc:
                if sock is not None:
                    sock.close()
                errors.append(exc)
            except BaseException:
                if sock is not None:
                    sock.close()
                raise
        try:
            raise errors[0]
        finally:
            del errors
