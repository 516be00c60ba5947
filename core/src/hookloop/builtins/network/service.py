"""Builtin plugin ``transports``, and its service: the networking methods.

One object per loop, made lazily the first time a networking method is
called (see :meth:`hookloop.loop.EventLoop.service`).  It is assembled from
one mixin per area, each in its own module; they share only ``self._loop``.
It keeps no per-connection state of its own: transports and servers hold
theirs.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hookloop import hookimpl

from .connect import StreamClients
from .datagram import DatagramEndpoints
from .pipes import PipeEndpoints
from .sendfile import Sendfile
from .server import StreamServers
from .sockops import SocketOperations


class NetworkService(StreamClients, StreamServers, DatagramEndpoints, PipeEndpoints, Sendfile,
                     SocketOperations):
    """What ``hookloop_transports`` returns a factory for."""

    def __init__(self, loop: Any) -> None:
        self._loop = loop


@hookimpl(trylast=True)
def hookloop_transports() -> Callable[[Any], NetworkService]:
    return NetworkService
