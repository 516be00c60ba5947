"""Client side of stream sockets: create_connection and friends.

Owns: argument checking (asyncio's messages), resolving the peer and local
addresses, the connection attempts (one after the other, or staggered
"happy eyeballs" races, RFC 8305), and turning the connected socket into a
:class:`~hookloop.transport.SocketTransport`.  ``ssl=`` is
handed to the ``tls`` service, so without hookloop-tls it fails at once,
before any socket is made, naming the distribution to install.

It must never leave a socket it created open on a failure path, and never
close a socket the caller passed in unless a transport took it over.
"""
from __future__ import annotations

import asyncio
import itertools
import os
import socket
from collections.abc import Callable, Sequence
from typing import Any

from hookloop.transport import SocketTransport, check_tls_timeouts, started

from .addresses import resolve

AddrInfo = tuple[int, int, int, str, Any]


def check_tls_arguments(ssl: Any, server_hostname: Any = None, handshake_timeout: Any = None,
                        shutdown_timeout: Any = None) -> None:
    """The TLS-only arguments make no sense without ``ssl``; the timeouts
    must be positive."""
    if ssl:
        check_tls_timeouts(handshake_timeout, shutdown_timeout)
        return
    if server_hostname is not None:
        raise ValueError("server_hostname is only meaningful with ssl")
    if handshake_timeout is not None:
        raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
    if shutdown_timeout is not None:
        raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")


def check_not_ssl_socket(sock: Any) -> None:
    if sock is not None and type(sock).__name__ == "SSLSocket":
        raise TypeError("Socket cannot be of type SSLSocket")


def check_stream_socket(sock: Any, family: int | None = None) -> None:
    if not isinstance(sock, socket.socket):
        raise TypeError(f"sock must be a socket.socket, got {type(sock).__name__!r}")
    if family == socket.AF_UNIX:
        if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
            raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")
    elif sock.type != socket.SOCK_STREAM:
        raise ValueError(f"A Stream Socket was expected, got {sock!r}")


def interleave_families(infos: Sequence[AddrInfo], first_family_count: int) -> list[AddrInfo]:
    """Reorder addresses so families alternate (RFC 8305, section 4).

    The first family keeps its first ``first_family_count`` addresses in
    front; after that one address of each family in turn.
    """
    by_family: dict[int, list[AddrInfo]] = {}
    for info in infos:
        by_family.setdefault(info[0], []).append(info)
    queues = list(by_family.values())
    head = queues[0][:first_family_count - 1]
    queues[0] = queues[0][first_family_count - 1:]
    rounds = itertools.zip_longest(*queues)
    return head + [info for row in rounds for info in row if info is not None]


def connection_error(errors: list[OSError], all_errors: bool) -> BaseException:
    """The one exception create_connection raises when every attempt failed."""
    if all_errors:
        return ExceptionGroup("create_connection failed", errors)
    if len(errors) == 1 or all(str(exc) == str(errors[0]) for exc in errors):
        return errors[0]
    return OSError(f"Multiple exceptions: {', '.join(str(exc) for exc in errors)}")


def _close_socket_of(task: asyncio.Task[socket.socket]) -> None:
    """Done callback of a losing attempt: close what it connected."""
    if not task.cancelled() and task.exception() is None:
        task.result().close()


class StreamClients:
    """create_connection, create_unix_connection, connect_accepted_socket."""

    _loop: Any

    async def create_connection(
            self, protocol_factory: Callable[[], asyncio.BaseProtocol], host: str | None = None,
            port: int | str | None = None, *, ssl: Any = None, family: int = 0, proto: int = 0,
            flags: int = 0, sock: socket.socket | None = None, local_addr: Any = None,
            server_hostname: str | None = None, ssl_handshake_timeout: float | None = None,
            ssl_shutdown_timeout: float | None = None, happy_eyeballs_delay: float | None = None,
            interleave: int | None = None, all_errors: bool = False,
    ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        check_tls_arguments(ssl, server_hostname, ssl_handshake_timeout, ssl_shutdown_timeout)
        if ssl and server_hostname is None:
            if not host:
                raise ValueError("You must set server_hostname when using ssl without a host")
            server_hostname = host
        if ssl:
            self._loop.service("tls")  # fail now if TLS is not installed
        check_not_ssl_socket(sock)
        if happy_eyeballs_delay is not None and interleave is None:
            interleave = 1  # RFC 8305 recommends a "First Address Family Count" of 1
        if host is not None or port is not None:
            if sock is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            sock = await self._connect_host(host, port, family, proto, flags, local_addr,
                                            happy_eyeballs_delay, interleave, all_errors)
            return await self._start_client(sock, protocol_factory, ssl, server_hostname,
                                            ssl_handshake_timeout, ssl_shutdown_timeout,
                                            owned=True)
        if sock is None:
            raise ValueError("host and port was not specified and no sock specified")
        check_stream_socket(sock)
        return await self._start_client(sock, protocol_factory, ssl, server_hostname,
                                        ssl_handshake_timeout, ssl_shutdown_timeout)

    async def _connect_host(self, host: Any, port: Any, family: int, proto: int, flags: int,
                            local_addr: Any, delay: float | None, interleave: int | None,
                            all_errors: bool) -> socket.socket:
        infos = await resolve(self._loop, host, port, family=family, type=socket.SOCK_STREAM,
                              proto=proto, flags=flags)
        if not infos:
            raise OSError("getaddrinfo() returned empty list")
        local_infos = None
        if local_addr is not None:
            local_infos = await resolve(self._loop, *local_addr, family=family,
                                        type=socket.SOCK_STREAM, proto=proto, flags=flags)
            if not local_infos:
                raise OSError("getaddrinfo() returned empty list")
        if interleave:
            infos = interleave_families(infos, interleave)
        errors: list[list[OSError]] = []
        if delay is None:
            sock = None
            for info in infos:
                try:
                    sock = await self._connect_one(info, local_infos, errors)
                    break
                except OSError:
                    continue
        else:
            sock = await self._race(infos, local_infos, delay, errors)
        if sock is None:
            flat = [exc for attempt in errors for exc in attempt]
            try:
                raise connection_error(flat, all_errors)
            finally:
                del flat, errors  # no reference cycle through the tracebacks
        return sock

    async def _connect_one(self, info: AddrInfo, local_infos: list[AddrInfo] | None,
                           errors: list[list[OSError]]) -> socket.socket:
        """One connection attempt; its errors are appended to its own list."""
        mine: list[OSError] = []
        errors.append(mine)
        family, type_, proto, _, address = info
        sock = None
        try:
            sock = socket.socket(family, type_, proto)
            sock.setblocking(False)
            if local_infos is not None:
                self._bind_local(sock, family, local_infos, mine)
            await self._loop.sock_connect(sock, address)
            return sock
        except OSError as exc:
            mine.append(exc)
            if sock is not None:
                sock.close()
            raise
        except BaseException:
            if sock is not None:
                sock.close()
            raise

    @staticmethod
    def _bind_local(sock: socket.socket, family: int, local_infos: list[AddrInfo],
                    mine: list[OSError]) -> None:
        for local_family, _, _, _, local_address in local_infos:
            if local_family != family:
                continue
            try:
                sock.bind(local_address)
                return
            except OSError as exc:
                reason = (exc.strerror or str(exc)).lower()
                mine.append(OSError(exc.errno, f"error while attempting to bind on "
                                               f"address {local_address!r}: {reason}"))
        if mine:
            raise mine.pop()
        raise OSError(f"no matching local address with family={family!r} found")

    async def _race(self, infos: Sequence[AddrInfo], local_infos: list[AddrInfo] | None,
                    delay: float, errors: list[list[OSError]]) -> socket.socket | None:
        """Happy eyeballs: start an attempt every ``delay`` seconds, or as
        soon as the newest one failed; the first connected socket wins."""
        loop = self._loop
        pending: set[asyncio.Task[socket.socket]] = set()
        try:
            for info in infos:
                newest = loop.create_task(self._connect_one(info, local_infos, errors))
                pending.add(newest)
                deadline = loop.time() + delay
                while pending:
                    done, pending = await asyncio.wait(
                        pending, timeout=max(0.0, deadline - loop.time()),
                        return_when=asyncio.FIRST_COMPLETED)
                    winner = self._winner(done)
                    if winner is not None:
                        return winner
                    if not done or newest in done:
                        break  # delay over, or the newest failed: start the next
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                winner = self._winner(done)
                if winner is not None:
                    return winner
            return None
        finally:
            for task in pending:
                task.cancel()
                task.add_done_callback(_close_socket_of)

    @staticmethod
    def _winner(done: set[asyncio.Task[socket.socket]]) -> socket.socket | None:
        """The first connected socket among ``done``; close any other one."""
        winner = None
        for task in done:
            if task.exception() is None:
                if winner is None:
                    winner = task.result()
                else:
                    task.result().close()
        return winner

    async def create_unix_connection(
            self, protocol_factory: Callable[[], asyncio.BaseProtocol], path: Any = None, *,
            ssl: Any = None, sock: socket.socket | None = None, server_hostname: str | None = None,
            ssl_handshake_timeout: float | None = None, ssl_shutdown_timeout: float | None = None,
    ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        check_tls_arguments(ssl, server_hostname, ssl_handshake_timeout, ssl_shutdown_timeout)
        if ssl:
            if server_hostname is None:
                raise ValueError("you have to pass server_hostname when using ssl")
            self._loop.service("tls")
        check_not_ssl_socket(sock)
        if path is not None:
            if sock is not None:
                raise ValueError("path and sock can not be specified at the same time")
            path = os.fspath(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0)
            try:
                sock.setblocking(False)
                await self._loop.sock_connect(sock, path)
            except BaseException:
                sock.close()
                raise
            return await self._start_client(sock, protocol_factory, ssl, server_hostname,
                                            ssl_handshake_timeout, ssl_shutdown_timeout,
                                            owned=True)
        if sock is None:
            raise ValueError("no path and sock were specified")
        check_stream_socket(sock, socket.AF_UNIX)
        return await self._start_client(sock, protocol_factory, ssl, server_hostname,
                                        ssl_handshake_timeout, ssl_shutdown_timeout)

    async def connect_accepted_socket(
            self, protocol_factory: Callable[[], asyncio.BaseProtocol], sock: socket.socket, *,
            ssl: Any = None, ssl_handshake_timeout: float | None = None,
            ssl_shutdown_timeout: float | None = None,
    ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        check_stream_socket(sock)
        check_tls_arguments(ssl, None, ssl_handshake_timeout, ssl_shutdown_timeout)
        if ssl:
            self._loop.service("tls")
        check_not_ssl_socket(sock)
        return await self._start_client(sock, protocol_factory, ssl, "", ssl_handshake_timeout,
                                        ssl_shutdown_timeout, server_side=True)

    async def _start_client(self, sock: socket.socket, protocol_factory: Callable[[], Any],
                            ssl: Any, server_hostname: str | None,
                            handshake_timeout: float | None, shutdown_timeout: float | None, *,
                            server_side: bool = False, owned: bool = False,
                            ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        """Make the transport over a connected socket and wait until it runs.

        ``owned``: the socket was made here, so it is closed if no transport
        could take it over.
        """
        loop = self._loop
        try:
            sock.setblocking(False)
            protocol = protocol_factory()
            waiter = loop.create_future()
            if ssl:
                transport = loop.service("tls").wrap_transport(
                    sock, protocol, ssl, waiter, server_side=server_side,
                    server_hostname=server_hostname, handshake_timeout=handshake_timeout,
                    shutdown_timeout=shutdown_timeout)
            else:
                transport = SocketTransport(loop, sock, protocol, waiter)
        except BaseException:
            if owned:
                sock.close()
            raise
        await started(transport, waiter)
        return transport, protocol
