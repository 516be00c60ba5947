"""Builtin plugin ``resolver``: ``getaddrinfo``/``getnameinfo`` for the loop.

The C library's resolver blocks, so like asyncio we run it in the loop's
default executor (``loop.run_in_executor(None, ...)``), one call per thread.
Unlike asyncio we first look at the arguments: a numeric host with a
numeric port has an answer that needs no lookup at all, and
:func:`~hookloop.builtins.network.addresses.numeric_addrinfo` builds exactly
the list the C library would return, here, without the thread hop.

In debug mode each threaded lookup is timed and logged to the ``asyncio``
logger like asyncio does: at DEBUG level, or at INFO when it took longer
than the loop's ``slow_callback_duration``.

It is registered ``trylast``: any installed plugin implementing
``hookloop_resolver`` (a caching resolver, c-ares, a test double) replaces
it, and the transports resolve through ``loop.getaddrinfo`` so they use that
replacement too.  This module must never block the loop's thread and never
keep state between calls (no cache: that is another plugin's job).
"""
from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from hookloop import hookimpl

from .addresses import AddrInfo, numeric_addrinfo

logger = logging.getLogger("asyncio")


def _timed_getaddrinfo(host: Any, port: Any, family: int, type: int, proto: int, flags: int,
                       slow: float) -> list[AddrInfo]:
    """``socket.getaddrinfo`` with asyncio's debug-mode logging (runs in a thread)."""
    request = f"{host}:{port!r}, family={family!r}, type={type!r}, proto={proto!r}, flags={flags!r}"
    logger.debug("Get address info %s", request)
    started = time.monotonic()
    infos: list[AddrInfo] = socket.getaddrinfo(  # type: ignore[assignment]
        host, port, family, type, proto, flags)  # typeshed's tuple union; the same values
    elapsed = time.monotonic() - started
    level = logging.INFO if elapsed >= slow else logging.DEBUG
    logger.log(level, "Getting address info %s took %.3f ms: %r", request, elapsed * 1e3, infos)
    return infos


class Resolver:
    """Name resolution for one loop."""

    def __init__(self, loop: Any) -> None:
        self._loop = loop

    async def getaddrinfo(self, host: Any, port: Any, *, family: int = 0, type: int = 0,
                          proto: int = 0, flags: int = 0) -> list[AddrInfo]:
        loop = self._loop
        infos = numeric_addrinfo(host, port, family, type, proto, flags)
        if infos is not None:
            if loop.is_closed():
                raise RuntimeError("Event loop is closed")
            return infos
        if loop.get_debug():
            found: list[AddrInfo] = await loop.run_in_executor(
                None, _timed_getaddrinfo, host, port, family, type, proto, flags,
                loop.slow_callback_duration)
        else:
            found = await loop.run_in_executor(None, socket.getaddrinfo, host, port, family,
                                               type, proto, flags)
        return found

    async def getnameinfo(self, sockaddr: tuple[Any, ...], flags: int = 0) -> tuple[str, str]:
        name: tuple[str, str] = await self._loop.run_in_executor(None, socket.getnameinfo,
                                                                 sockaddr, flags)
        return name


@hookimpl(trylast=True)
def hookloop_resolver() -> Callable[[Any], Resolver]:
    return Resolver
