"""What a backend plugin contributes: a named poller factory.

A :class:`Backend` is plain data returned from the ``hookloop_pollers``
hook.  The core never imports a backend module by name; it only sees these
records, picks one at assembly time, and calls its ``factory`` once per loop.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .poller import Poller


@dataclass(frozen=True)
class Backend:
    """A poller backend offered by a plugin.

    :param name: What users pass as ``backend=`` or ``HOOKLOOP_BACKEND``.
    :param factory: Zero-argument callable returning a new
        :class:`~hookloop.poller.Poller`.
    :param priority: Higher wins when no backend is requested
        (epoll 300, kqueue 250, poll 200, select 100).
    :param unavailable: ``None`` if the backend works here, else the reason
        it does not (shown by ``hookloop plugins``; choosing it raises).
    :param distribution: The distribution that ships it, for messages.
    """

    name: str
    factory: Callable[[], Poller]
    priority: int = 0
    unavailable: str | None = None
    distribution: str = ""

    @property
    def available(self) -> bool:
        return self.unavailable is None
