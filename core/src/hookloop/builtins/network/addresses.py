"""Addresses without a resolver: numeric hosts, and the transports' resolve().

Most addresses a program hands to the loop are already numeric
(``"127.0.0.1"``, ``"::1"``, ``None`` for "any"), and sending those to
``getaddrinfo`` in a worker thread costs a thread hop per connection for
nothing.  This module answers them directly, in two flavours:

* :func:`numeric_addrinfo` is exact: it returns the very list
  ``socket.getaddrinfo`` would return (same tuples, same order, same enum
  types, ``canonname`` included), or ``None`` whenever it cannot be *sure*
  of that.  "Not sure" is broad on purpose: a service name, a port the C
  library would wrap around (``70000``), a non-ASCII or oddly written host
  (``"127.1"``, which ``inet_aton`` accepts), flags other than
  ``AI_PASSIVE``/``AI_NUMERICHOST``/``AI_NUMERICSERV``/``AI_CANONNAME``, a
  socket type other than stream/datagram, ``None`` with both families (the C
  library orders those by its own rules).  ``None`` means "ask the real
  resolver", which is always correct.  The resolver plugin uses it.
* :func:`resolve` is what the transports (connections, servers, datagram
  endpoints, ``sock_connect``) call.  It behaves as asyncio's loop does: a
  numeric host skips resolution whatever the flags, and its port is taken
  as ``int(port)`` *without* a range check, so ``port=70000`` fails in
  ``connect()``/``bind()`` with asyncio's ``OverflowError`` instead of
  silently becoming port 4464, which is what ``getaddrinfo`` makes of it.
  Anything else goes to ``loop.getaddrinfo``, so a replaced resolver plugin
  sees every name.

For ``type=0`` the C library returns one entry per socket type.  Which
types, in which order, is the library's business, so it is asked once per
family (with a numeric host: no lookup, no I/O) and remembered.

Scoped IPv6 literals (``"fe80::1%lo"``) follow glibc's rules: an interface
name is accepted for link-local and node/link-local multicast addresses, a
number for any address.  Elsewhere than Linux they go to the resolver.

This module must never block, never do I/O (beyond that one numeric
``getaddrinfo`` per family and ``if_nametoindex``), and never guess: when
in doubt, return ``None``.
"""
from __future__ import annotations

import logging
import os
import socket
import stat
import sys
from typing import Any

logger = logging.getLogger("asyncio")

AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]

#: Flags that do not change the answer for a numeric host.
_HARMLESS_FLAGS = (socket.AI_PASSIVE | socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
                   | socket.AI_CANONNAME)
_FAMILIES = (socket.AF_INET, socket.AF_INET6) if socket.has_ipv6 else (socket.AF_INET,)
_GLIBC_SCOPES = sys.platform.startswith("linux")
_MAX_SCOPE = 0xFFFFFFFF

#: family -> the (type, proto) pairs getaddrinfo gives for type=0, or None.
_ANY_TYPE: dict[int, list[tuple[socket.SocketKind, int]] | None] = {}


def _kinds_for_any_type(family: int) -> list[tuple[socket.SocketKind, int]] | None:
    try:
        return _ANY_TYPE[family]
    except KeyError:
        pass
    literal = "127.0.0.1" if family == socket.AF_INET else "::1"
    try:
        infos = socket.getaddrinfo(literal, 0, family, 0, 0,
                                   socket.AI_NUMERICHOST | socket.AI_NUMERICSERV)
        kinds: list[tuple[socket.SocketKind, int]] | None = [
            (kind, proto) for _, kind, proto, _, _ in infos]
    except (OSError, UnicodeError):
        kinds = None
    _ANY_TYPE[family] = kinds
    return kinds


def _socket_kinds(type: int, proto: int, family: int) -> list[tuple[socket.SocketKind, int]] | None:
    """The (type, proto) of each entry getaddrinfo returns, or None if unsure."""
    if type == socket.SOCK_STREAM:
        return [(socket.SOCK_STREAM, socket.IPPROTO_TCP)] if proto in (0, socket.IPPROTO_TCP) \
            else None
    if type == socket.SOCK_DGRAM:
        return [(socket.SOCK_DGRAM, socket.IPPROTO_UDP)] if proto in (0, socket.IPPROTO_UDP) \
            else None
    if type != 0:
        return None
    kinds = _kinds_for_any_type(family)
    if kinds is None or not proto:
        return kinds
    return [kind for kind in kinds if kind[1] == proto] or None


def _scope_id(address: bytes, scope: str) -> int | None:
    """glibc's reading of the part after ``%`` of an IPv6 literal."""
    if not scope or not scope.isascii() or not _GLIBC_SCOPES:
        return None
    link_local = address[0] == 0xFE and address[1] & 0xC0 == 0x80
    local_multicast = address[0] == 0xFF and address[1] & 0x0F in (1, 2)
    if link_local or local_multicast:
        try:
            return socket.if_nametoindex(scope)
        except OSError:
            pass
    if scope.isdigit():
        number = int(scope)
        return number if number <= _MAX_SCOPE else None
    return None


def parse_numeric_host(host: Any, family: int = 0) -> tuple[int, str, int] | None:
    """``(family, canonical text, scope id)`` if ``host`` is an IP literal
    of ``family`` (0: either), else ``None``.  ``"fe80::1%lo"`` is scoped."""
    if isinstance(host, bytes):
        try:
            host = host.decode("ascii")
        except UnicodeDecodeError:
            return None
    elif not isinstance(host, str) or not host.isascii():
        return None
    text, percent, scope = host.partition("%")
    for af in _FAMILIES if family == 0 else (family,):
        if af not in _FAMILIES or (percent and af != socket.AF_INET6):
            continue
        try:
            packed = socket.inet_pton(af, text)
        except (OSError, ValueError):
            continue
        scope_id = 0
        if percent:
            found = _scope_id(packed, scope)
            if found is None:
                return None
            scope_id = found
        return af, socket.inet_ntop(af, packed), scope_id
    return None


def getaddrinfo_port(port: Any) -> int | None:
    """The port ``socket.getaddrinfo`` would put in its sockaddrs, when it
    is certainly a plain number in range; else ``None``."""
    if port is None:
        return 0
    if type(port) is int:
        return port if 0 <= port <= 0xFFFF else None
    if isinstance(port, bytes):
        if not port.isdigit():
            return 0 if port == b"" else None
        number = int(port)
    elif isinstance(port, str):
        if not (port.isascii() and port.isdigit()):
            return 0 if port == "" else None
        number = int(port)
    else:
        return None
    return number if number <= 0xFFFF else None


def _build(family: int, text: str, port: int, scope_id: int,
           kinds: list[tuple[socket.SocketKind, int]], canonname: str) -> list[AddrInfo]:
    af = socket.AddressFamily(family)
    sockaddr: tuple[Any, ...] = ((text, port, 0, scope_id) if af == socket.AF_INET6
                                 else (text, port))
    infos = [(af, kind, proto, "", sockaddr) for kind, proto in kinds]
    if canonname:
        infos[0] = (af, kinds[0][0], kinds[0][1], canonname, sockaddr)
    return infos


def _numeric_infos(host: Any, port: int, family: int, type: int, proto: int,
                   flags: int) -> list[AddrInfo] | None:
    if flags & ~_HARMLESS_FLAGS or family not in (0, *_FAMILIES):
        return None
    if host is None:
        if family == 0 or flags & socket.AI_CANONNAME:
            return None  # both families, in the C library's order; or an error
        passive = flags & socket.AI_PASSIVE
        if family == socket.AF_INET:
            text = "0.0.0.0" if passive else "127.0.0.1"
        else:
            text = "::" if passive else "::1"
        parsed: tuple[int, str, int] | None = (family, text, 0)
    else:
        parsed = parse_numeric_host(host, family)
    if parsed is None:
        return None
    kinds = _socket_kinds(type, proto, parsed[0])
    if kinds is None:
        return None
    canonname = ""
    if flags & socket.AI_CANONNAME:
        canonname = host.decode("ascii") if isinstance(host, bytes) else host
    return _build(parsed[0], parsed[1], port, parsed[2], kinds, canonname)


def numeric_addrinfo(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0,
                     flags: int = 0) -> list[AddrInfo] | None:
    """Exactly ``socket.getaddrinfo(host, port, family, type, proto, flags)``
    when that needs no resolver, else ``None`` (see the module docstring)."""
    number = getaddrinfo_port(port)
    if number is None or (host is None and port is None):
        return None
    return _numeric_infos(host, number, family, type, proto, flags)


def _asyncio_port(port: Any) -> int | None:
    """The port asyncio's loop would use for a numeric host, unchecked."""
    if port is None or port == "" or port == b"":
        return 0
    if isinstance(port, (int, str, bytes)) and not isinstance(port, bool):
        try:
            return int(port)
        except ValueError:
            return None
    return None


async def resolve(loop: Any, host: Any, port: Any, *, family: int = 0, type: int = 0,
                  proto: int = 0, flags: int = 0) -> list[Any]:
    """Address infos for the transports, as asyncio's loop computes them.

    A numeric host is answered here, whatever ``flags`` (only
    ``AI_PASSIVE`` matters, for ``host=None``); anything else is resolved by
    ``loop.getaddrinfo``, that is by the resolver plugin.
    """
    if host is not None or port is not None:
        number = _asyncio_port(port)
        if number is not None:
            infos = _numeric_infos(host, number, family, type, proto,
                                   flags & socket.AI_PASSIVE)
            if infos is not None:
                return infos
    resolved: list[Any] = await loop.getaddrinfo(host, port, family=family, type=type,
                                                 proto=proto, flags=flags)
    return resolved


def remove_stale_unix_socket(path: str | bytes) -> None:
    """Remove a socket file left at ``path`` by an earlier process.

    Abstract names (a leading NUL) have no file; a file that is not a
    socket is left alone (binding then fails with EADDRINUSE).  A failure to
    check is logged, as asyncio does, and binding will report the problem.
    """
    if not path or path[0] in (0, "\0"):
        return
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        logger.error("Unable to check or remove stale UNIX socket %r: %r", path, exc)
