"""The service contracts: what a plugin's service object must provide.

A service hook (``hookloop_transports``, ``hookloop_tls``,
``hookloop_resolver``, ``hookloop_signals``, ``hookloop_subprocess``)
returns a *factory*; the loop calls it with itself the first time the
feature is used and keeps the object it returns for its lifetime.  Each
``typing.Protocol`` below is that object's contract.  The loop's method of
the same name forwards exactly what it was given (the loop's methods carry
asyncio's signatures), so a service method takes the arguments of
asyncio's ``AbstractEventLoop`` method it serves and validates them as
asyncio does.  ``hookloop_executor`` returns a zero-argument callable that
makes a ``concurrent.futures.Executor`` (:data:`ExecutorFactory`).  Any
service may also have ``close()``: the loop calls it once, when it closes
(the signal service restores the handlers it set).  The poller contract is
:class:`hookloop.poller.Poller`.

A service that lacks a method of its contract is refused when it is made
(a factory that is a class is checked at assembly already), with an error
naming the plugin, the service and what is missing
(:func:`check_service`), never with an ``AttributeError`` later on.

This module only describes; it imports nothing of the loop's, and the
scheduler imports it for the type checker only (``loop.service(kind)`` is
typed by these contracts); the assembly uses :func:`check_service`.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from .errors import PluginLoadError

if TYPE_CHECKING:
    from .loop import EventLoop

__all__ = [
    "ExecutorFactory",
    "ResolverService",
    "SERVICE_CONTRACTS",
    "ServiceFactory",
    "SignalService",
    "SubprocessService",
    "TLSService",
    "TransportService",
    "check_service",
    "contract_methods",
]

_Service = TypeVar("_Service")

#: What a service hook returns: ``factory(loop) -> service``, e.g.
#: ``ServiceFactory[TLSService]`` (a class whose constructor takes the loop is one).
ServiceFactory = Callable[["EventLoop"], _Service]

#: What ``hookloop_executor`` returns.
ExecutorFactory = Callable[[], concurrent.futures.Executor]

_Pair = tuple[asyncio.BaseTransport, asyncio.BaseProtocol]


@runtime_checkable
class TransportService(Protocol):
    """``hookloop_transports``: sockets, servers, datagram endpoints, pipes,
    ``sendfile`` and the ``sock_*`` operations (the builtin ``transports``
    plugin is the reference implementation).  Each is a coroutine function
    taking what asyncio's method of that name takes (``*args, **kwargs``
    here: any signature satisfies it; the loop's methods carry asyncio's)."""

    async def create_connection(self, *args: Any, **kwargs: Any) -> _Pair: ...
    async def create_server(self, *args: Any, **kwargs: Any) -> asyncio.AbstractServer: ...
    async def create_unix_connection(self, *args: Any, **kwargs: Any) -> _Pair: ...
    async def create_unix_server(self, *args: Any, **kwargs: Any) -> asyncio.AbstractServer: ...
    async def create_datagram_endpoint(self, *args: Any, **kwargs: Any) -> _Pair: ...
    async def connect_accepted_socket(self, *args: Any, **kwargs: Any) -> _Pair: ...
    async def sendfile(self, *args: Any, **kwargs: Any) -> int: ...
    async def connect_read_pipe(self, *args: Any, **kwargs: Any) -> _Pair: ...
    async def connect_write_pipe(self, *args: Any, **kwargs: Any) -> _Pair: ...
    async def sock_recv(self, *args: Any, **kwargs: Any) -> bytes: ...
    async def sock_recv_into(self, *args: Any, **kwargs: Any) -> int: ...
    async def sock_recvfrom(self, *args: Any, **kwargs: Any) -> tuple[bytes, Any]: ...
    async def sock_recvfrom_into(self, *args: Any, **kwargs: Any) -> tuple[int, Any]: ...
    async def sock_sendall(self, *args: Any, **kwargs: Any) -> None: ...
    async def sock_sendto(self, *args: Any, **kwargs: Any) -> int: ...
    async def sock_connect(self, *args: Any, **kwargs: Any) -> None: ...
    async def sock_accept(self, *args: Any, **kwargs: Any) -> tuple[socket.socket, Any]: ...
    async def sock_sendfile(self, *args: Any, **kwargs: Any) -> int: ...


@runtime_checkable
class TLSService(Protocol):
    """``hookloop_tls``: TLS for ``ssl=`` and ``start_tls`` (hookloop-tls).

    ``wrap_transport`` is how a transport service hands a connected socket
    to TLS: the builtin ``transports`` plugin calls it for ``ssl=`` on
    ``create_connection``, ``create_server`` (each accepted connection),
    ``create_unix_*`` and ``connect_accepted_socket``, with the timeouts
    already checked (:func:`hookloop.transport.check_tls_timeouts`).
    """

    def wrap_transport(self, sock: socket.socket, protocol: asyncio.BaseProtocol,
                       ssl_arg: Any, waiter: asyncio.Future[Any] | None, *,
                       server_side: bool, server_hostname: str | None = None,
                       handshake_timeout: float | None = None,
                       shutdown_timeout: float | None = None,
                       server: Any = None) -> asyncio.Transport:
        """TLS over the connected, non-blocking stream socket ``sock``.

        :param ssl_arg: The ``ssl=`` argument: an ``ssl.SSLContext``, or a
            true value on a client for the default context.
        :param waiter: Resolved once the handshake is done (or failed);
            ``None`` for a server's accepted connections.
        :param server: The ``Server`` an accepted connection counts against.
        :returns: The application's transport; ``protocol.connection_made``
            follows the handshake.
        """
        ...

    def start_tls(self, transport: asyncio.BaseTransport, protocol: asyncio.BaseProtocol,
                  sslcontext: Any, *, server_side: bool = False,
                  server_hostname: str | None = None,
                  ssl_handshake_timeout: float | None = None,
                  ssl_shutdown_timeout: float | None = None) -> Awaitable[asyncio.Transport]:
        """asyncio's ``loop.start_tls``: upgrade ``transport`` in place."""
        ...


@runtime_checkable
class ResolverService(Protocol):
    """``hookloop_resolver``: ``getaddrinfo`` and ``getnameinfo`` (the builtin
    ``resolver`` plugin runs ``socket.getaddrinfo`` in the executor)."""

    async def getaddrinfo(self, *args: Any, **kwargs: Any) -> Sequence[tuple[Any, ...]]: ...
    async def getnameinfo(self, *args: Any, **kwargs: Any) -> tuple[str, str]: ...


@runtime_checkable
class SignalService(Protocol):
    """``hookloop_signals``: asyncio's signal-handler methods (the builtin
    ``signals`` plugin uses ``signal.set_wakeup_fd`` on the poller's
    ``wakeup_fd``, and restores what it changed in its ``close()``)."""

    def add_signal_handler(self, sig: int, callback: Callable[..., object],
                           *args: Any) -> None: ...

    def remove_signal_handler(self, sig: int) -> bool: ...


@runtime_checkable
class SubprocessService(Protocol):
    """``hookloop_subprocess``: ``subprocess_exec``/``subprocess_shell``
    (hookloop-subprocess), coroutine functions taking what asyncio's take."""

    async def subprocess_exec(self, *args: Any, **kwargs: Any) -> _Pair: ...
    async def subprocess_shell(self, *args: Any, **kwargs: Any) -> _Pair: ...


#: Service kind (the hook's name without ``hookloop_``) -> its contract.
SERVICE_CONTRACTS: dict[str, type] = {
    "transports": TransportService,
    "tls": TLSService,
    "resolver": ResolverService,
    "signals": SignalService,
    "subprocess": SubprocessService,
}


def contract_methods(contract: type) -> tuple[str, ...]:
    """The names a service must have to satisfy ``contract``: its methods
    and its callable attributes, in the order they are declared."""
    names = [name for cls in reversed(contract.__mro__) if cls.__module__ == __name__
             for name in (*getattr(cls, "__annotations__", {}), *vars(cls))
             if not name.startswith("_")]
    return tuple(dict.fromkeys(names))


def check_service(kind: str, service: Any, plugin: str) -> None:
    """Refuse ``service`` (or a class of services) lacking a method of its
    contract, naming the plugin, the service kind and what is missing.

    :raises PluginLoadError: something of the contract is missing or not
        callable.
    """
    contract = SERVICE_CONTRACTS.get(kind)
    if contract is None:
        return
    missing = [name for name in contract_methods(contract)
               if not callable(getattr(service, name, None))]
    if missing:
        what = "class" if isinstance(service, type) else "object"
        raise PluginLoadError(
            f"hookloop plugin {plugin!r} provides a {kind!r} service whose {what} "
            f"{getattr(service, '__qualname__', type(service).__qualname__)!r} lacks "
            f"{', '.join(missing)} of {contract.__name__} (hookloop.services)")
