"""Server side of stream sockets: create_server, create_unix_server, Server.

Owns: making and binding listening sockets (asyncio's options and error
messages), the :class:`Server` object, and accepting.  Each listening
socket has a :class:`Listener` whose bound method sits in the loop's fd
table; one readiness event accepts up to ``backlog`` connections and builds
their protocol and transport on the spot (no task per connection; a TLS
server hands the accepted socket to the ``tls`` service instead).

Running out of file descriptors (EMFILE, ENFILE) or memory (ENOBUFS,
ENOMEM) while accepting is reported once to the exception handler; the
listener then stops watching its socket for :data:`ACCEPT_RETRY_DELAY`
seconds, as asyncio does, instead of spinning on a socket it cannot serve.

It must never close a connection's socket itself (transports do), and never
leave a listening socket open once ``close()`` returned.
"""
from __future__ import annotations

import asyncio
import contextvars
import errno
import itertools
import logging
import os
import socket
import sys
from collections.abc import Callable, Iterable
from typing import Any

from hookloop.transport import SocketTransport, TransportSocket

from .addresses import remove_stale_unix_socket, resolve
from .connect import check_not_ssl_socket, check_stream_socket, check_tls_arguments

logger = logging.getLogger("asyncio")

#: Seconds a listener rests after accept() ran out of a system resource.
ACCEPT_RETRY_DELAY = 1.0
_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class Listener:
    """Accepts connections on one listening socket of a :class:`Server`."""

    __slots__ = ("server", "sock", "fd", "resume_handle")

    def __init__(self, server: Server, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.fd = sock.fileno()
        self.resume_handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        # As asyncio's accept reader handle: accepting runs in a copy of the
        # context that started serving (create_server, start_serving()...).
        self.server._loop.watch_read(self.fd, self.on_acceptable, contextvars.copy_context())

    def stop(self) -> None:
        if self.resume_handle is not None:
            self.resume_handle.cancel()
            self.resume_handle = None
        self.server._loop.unwatch_read(self.fd)

    def on_acceptable(self) -> None:
        server = self.server
        accepted = server._accepted
        accept = self.sock.accept
        copy_context = contextvars.copy_context
        for _ in range(server._backlog):
            try:
                conn, address = accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno not in _OUT_OF_RESOURCES:
                    raise
                self._rest(exc)
                return
            # Each connection gets its own copy, as asyncio's task per
            # accepted connection has: the protocol factory and every
            # callback of that connection see the server's context, and
            # what one connection sets stays out of the others.
            copy_context().run(accepted, conn, address)

    def _rest(self, exc: OSError) -> None:
        loop = self.server._loop
        loop.call_exception_handler({
            "message": "socket.accept() out of system resource",
            "exception": exc,
            "socket": self.sock,
        })
        loop.unwatch_read(self.fd)
        self.resume_handle = loop.call_later(ACCEPT_RETRY_DELAY, self._resume)

    def _resume(self) -> None:
        self.resume_handle = None
        if self.server._sockets is not None:
            self.start()


class Server(asyncio.AbstractServer):
    """A listening server, as returned by ``loop.create_server()``."""

    def __init__(self, loop: Any, sockets: list[socket.socket],
                 protocol_factory: Callable[[], Any], ssl: Any, backlog: int,
                 handshake_timeout: float | None, shutdown_timeout: float | None,
                 unix_cleanup: tuple[str | bytes, int] | None = None) -> None:
        self._loop = loop
        self._sockets: list[socket.socket] | None = sockets  # None once closed
        self._listeners = [Listener(self, s) for s in sockets]
        self._protocol_factory = protocol_factory
        self._ssl = ssl
        self._backlog = backlog
        self._handshake_timeout = handshake_timeout
        self._shutdown_timeout = shutdown_timeout
        self._unix_cleanup = unix_cleanup
        self._clients: set[Any] = set()
        self._waiters: list[asyncio.Future[None]] | None = []
        self._serving = False
        self._serving_forever: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} sockets={self.sockets!r}>"

    # -- connections ---------------------------------------------------

    def _accepted(self, conn: socket.socket, address: Any) -> None:
        loop = self._loop
        try:
            conn.setblocking(False)
            protocol = self._protocol_factory()
            if self._ssl:
                loop.service("tls").wrap_transport(
                    conn, protocol, self._ssl, None, server_side=True, server=self,
                    handshake_timeout=self._handshake_timeout,
                    shutdown_timeout=self._shutdown_timeout)
            else:
                SocketTransport(loop, conn, protocol, None, server=self)
        except (SystemExit, KeyboardInterrupt):
            conn.close()
            raise
        except BaseException as exc:
            conn.close()
            loop.call_exception_handler({
                "message": "Error on transport creation for incoming connection",
                "exception": exc,
            })
        else:
            if loop.get_debug():
                logger.debug("%r got a new connection from %r", self, address)

    def _attach(self, transport: Any) -> None:
        self._clients.add(transport)

    def _detach(self, transport: Any) -> None:
        self._clients.discard(transport)
        if not self._clients and self._sockets is None:
            self._wake_waiters()

    def _wake_waiters(self) -> None:
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def close_clients(self) -> None:
        for transport in list(self._clients):
            transport.close()

    def abort_clients(self) -> None:
        for transport in list(self._clients):
            transport.abort()

    # -- serving -------------------------------------------------------

    def get_loop(self) -> asyncio.AbstractEventLoop:
        loop: asyncio.AbstractEventLoop = self._loop
        return loop

    def is_serving(self) -> bool:
        return self._serving

    @property
    def sockets(self) -> tuple[TransportSocket, ...]:
        if self._sockets is None:
            return ()
        return tuple(TransportSocket(sock) for sock in self._sockets)

    def _start_serving(self) -> None:
        if self._serving or self._sockets is None:
            return
        self._serving = True
        for listener in self._listeners:
            listener.sock.listen(self._backlog)
            listener.start()

    async def start_serving(self) -> None:
        self._start_serving()
        await asyncio.sleep(0)  # let the listeners be in place when we return

    async def serve_forever(self) -> None:
        if self._serving_forever is not None:
            raise RuntimeError(f"server {self!r} is already being awaited on serve_forever()")
        if self._sockets is None:
            raise RuntimeError(f"server {self!r} is closed")
        self._start_serving()
        self._serving_forever = self._loop.create_future()
        try:
            await self._serving_forever
        except asyncio.CancelledError:
            # Cancelled (Ctrl+C, say): stop serving and close the open
            # connections too, or wait_closed() would wait for them forever.
            try:
                self.close()
                self.close_clients()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._serving_forever = None

    def close(self) -> None:
        if self._sockets is None:
            return
        self._sockets = None
        for listener in self._listeners:
            if self._serving:
                listener.stop()
            listener.sock.close()
        self._serving = False
        self._remove_unix_socket_file()
        if self._serving_forever is not None and not self._serving_forever.done():
            self._serving_forever.cancel()
        if not self._clients:
            self._wake_waiters()

    def _remove_unix_socket_file(self) -> None:
        """Remove our unix socket's file, unless somebody replaced it."""
        if self._unix_cleanup is None:
            return
        path, inode = self._unix_cleanup
        self._unix_cleanup = None
        try:
            if os.stat(path).st_ino == inode:
                os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            logger.error("Unable to clean up listening UNIX socket %r: %r", path, exc)

    async def wait_closed(self) -> None:
        if self._waiters is None:
            return
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        await waiter

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self.close()
        await self.wait_closed()


def _hosts(host: Any) -> list[Any]:
    if host == "":
        return [None]
    if isinstance(host, str) or not isinstance(host, Iterable):
        return [host]
    return list(host)


def enable_reuse_port(sock: socket.socket) -> None:
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("reuse_port not supported by socket module")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except OSError:
        raise ValueError("reuse_port not supported by socket module, "
                         "SO_REUSEPORT defined but not implemented.") from None


def _bind_error(address: Any, exc: OSError) -> OSError:
    reason = (exc.strerror or str(exc)).lower()
    return OSError(exc.errno, f"error while attempting to bind on address {address!r}: {reason}")


def _check_server_arguments(ssl: Any, handshake_timeout: Any, shutdown_timeout: Any,
                            sock: Any) -> None:
    if isinstance(ssl, bool):
        raise TypeError("ssl argument must be an SSLContext or None")
    check_tls_arguments(ssl, None, handshake_timeout, shutdown_timeout)
    check_not_ssl_socket(sock)


class StreamServers:
    """create_server and create_unix_server."""

    _loop: Any

    async def create_server(
            self, protocol_factory: Callable[[], asyncio.BaseProtocol],
            host: str | Iterable[str] | None = None, port: int | str | None = None, *,
            family: int = socket.AF_UNSPEC, flags: int = socket.AI_PASSIVE,
            sock: socket.socket | None = None, backlog: int = 100, ssl: Any = None,
            reuse_address: bool | None = None, reuse_port: bool | None = None,
            keep_alive: bool | None = None, ssl_handshake_timeout: float | None = None,
            ssl_shutdown_timeout: float | None = None, start_serving: bool = True,
    ) -> Server:
        _check_server_arguments(ssl, ssl_handshake_timeout, ssl_shutdown_timeout, sock)
        if ssl:
            self._loop.service("tls")
        if host is not None or port is not None:
            if sock is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            if reuse_address is None:
                reuse_address = os.name == "posix" and sys.platform != "cygwin"
            sockets = await self._listening_sockets(_hosts(host), port, family, flags,
                                                    reuse_address, reuse_port, keep_alive)
        else:
            if sock is None:
                raise ValueError("Neither host/port nor sock were specified")
            check_stream_socket(sock)
            sockets = [sock]
        for listening in sockets:
            listening.setblocking(False)
        server = Server(self._loop, sockets, protocol_factory, ssl, backlog,
                        ssl_handshake_timeout, ssl_shutdown_timeout)
        if start_serving:
            await server.start_serving()
        return server

    async def _listening_sockets(self, hosts: list[Any], port: Any, family: int, flags: int,
                                 reuse_address: bool, reuse_port: bool | None,
                                 keep_alive: bool | None) -> list[socket.socket]:
        results = await asyncio.gather(*[
            self._server_addresses(host, port, family, flags) for host in hosts])
        infos = list(dict.fromkeys(itertools.chain.from_iterable(results)))
        sockets: list[socket.socket] = []
        try:
            for af, socktype, proto, _, address in infos:
                try:
                    listening = socket.socket(af, socktype, proto)
                except OSError:
                    continue  # a family/type/protocol this host does not support
                sockets.append(listening)
                if reuse_address:
                    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, True)
                if reuse_port:
                    enable_reuse_port(listening)
                if keep_alive:
                    listening.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, True)
                if af == socket.AF_INET6 and hasattr(socket, "IPV6_V6ONLY"):
                    listening.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, True)
                try:
                    listening.bind(address)
                except OSError as exc:
                    if exc.errno == errno.EADDRNOTAVAIL:
                        # The family is not enabled on this host (bpo-30945).
                        sockets.pop().close()
                        continue
                    raise _bind_error(address, exc) from None
            if not sockets:
                raise OSError(f"could not bind on any address out of "
                              f"{[info[4] for info in infos]!r}")
        except BaseException:
            for listening in sockets:
                listening.close()
            raise
        return sockets

    async def _server_addresses(self, host: Any, port: Any, family: int,
                                flags: int) -> list[Any]:
        infos = await resolve(self._loop, host, port, family=family, type=socket.SOCK_STREAM,
                              flags=flags)
        if not infos:
            raise OSError(f"getaddrinfo({host!r}) returned empty list")
        return infos

    async def create_unix_server(
            self, protocol_factory: Callable[[], asyncio.BaseProtocol], path: Any = None, *,
            sock: socket.socket | None = None, backlog: int = 100, ssl: Any = None,
            ssl_handshake_timeout: float | None = None, ssl_shutdown_timeout: float | None = None,
            start_serving: bool = True, cleanup_socket: bool = True,
    ) -> Server:
        _check_server_arguments(ssl, ssl_handshake_timeout, ssl_shutdown_timeout, sock)
        if ssl:
            self._loop.service("tls")
        if path is not None:
            if sock is not None:
                raise ValueError("path and sock can not be specified at the same time")
            sock = bind_unix_socket(os.fspath(path), socket.SOCK_STREAM)
        elif sock is None:
            raise ValueError("path was not specified, and no sock specified")
        else:
            check_stream_socket(sock, socket.AF_UNIX)
        unix_cleanup = None
        if cleanup_socket:
            bound = sock.getsockname()
            if isinstance(bound, (str, bytes)) and bound and bound[0] not in (0, "\0"):
                try:
                    unix_cleanup = (bound, os.stat(bound).st_ino)
                except FileNotFoundError:
                    pass
        sock.setblocking(False)
        server = Server(self._loop, [sock], protocol_factory, ssl, backlog,
                        ssl_handshake_timeout, ssl_shutdown_timeout, unix_cleanup)
        if start_serving:
            await server.start_serving()
        return server


def bind_unix_socket(path: str | bytes, sock_type: int) -> socket.socket:
    """A unix socket bound at ``path``, replacing a stale socket file there.

    Abstract names (a leading NUL) have no file.  A file at ``path`` that
    is not a socket is left alone: binding then fails with EADDRINUSE.
    """
    remove_stale_unix_socket(path)
    sock = socket.socket(socket.AF_UNIX, sock_type)
    try:
        sock.bind(path)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise OSError(errno.EADDRINUSE, f"Address {path!r} is already in use") from None
        raise
    except BaseException:
        sock.close()
        raise
    return sock
