"""What a backend plugin contributes: a named poller factory.

A :class:`Backend` is plain data returned from the ``hookloop_pollers``
hook.  The core never imports a backend module by name; it only sees these
records, picks one at assembly time, and calls its ``factory`` once per loop,
with the options given to ``new_event_loop(backend_options=...)``.

The options a factory accepts are its keyword parameters (see
:attr:`Backend.options`): nothing is declared twice, and the signature is the
documentation.  Every option has a default, because the factory is called
without options most of the time.  Nothing here runs per event; the
signature is read once per backend record.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from .poller import Poller

__all__ = ["Backend"]

_KEYWORD = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


@dataclass(frozen=True)
class Backend:
    """A poller backend offered by a plugin.

    :param name: What users pass as ``backend=`` or ``HOOKLOOP_BACKEND``.
    :param factory: Callable returning a new :class:`~hookloop.poller.Poller`.
        Called with no arguments, or with the options of
        ``new_event_loop(backend_options={...})`` as keyword arguments: its
        keyword parameters (keyword-only ones, preferably), each with a
        default, are the options the backend accepts (:attr:`options`).  It
        checks their values itself, before it opens anything.
    :param priority: Higher wins when no backend is requested
        (epoll 300, uring 280, kqueue 250, poll 200, select 100).
    :param unavailable: ``None`` if the backend works here, else the reason
        it does not (shown by ``hookloop plugins``; choosing it raises).
    :param distribution: The distribution that ships it, for messages.
    """

    name: str
    factory: Callable[..., Poller]
    priority: int = 0
    unavailable: str | None = None
    distribution: str = ""

    @property
    def available(self) -> bool:
        return self.unavailable is None

    @cached_property
    def options(self) -> frozenset[str] | None:
        """The option names ``factory`` accepts; ``None`` if it takes any
        keyword (``**kwargs``: the factory then checks the names itself)."""
        try:
            parameters = inspect.signature(self.factory).parameters.values()
        except (TypeError, ValueError):  # no signature to read (a builtin)
            return frozenset()
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            return None
        return frozenset(p.name for p in parameters if p.kind in _KEYWORD)

    def check_options(self, options: Mapping[str, Any]) -> None:
        """Raise ``TypeError`` unless ``factory`` accepts every name in ``options``.

        The message names ``backend_options``, the option, the backend and
        the options it does accept.  Values are the factory's to check.
        """
        accepted = self.options
        if accepted is None:
            return
        for option in options:
            if option not in accepted:
                where = f" ({self.distribution})" if self.distribution else ""
                takes = (f"it accepts: {', '.join(sorted(accepted))}" if accepted
                         else "it accepts none")
                raise TypeError(f"backend_options: the {self.name!r} backend{where} has no "
                                f"option {option!r}; {takes}")

    def make_poller(self, options: Mapping[str, Any] | None = None) -> Poller:
        """A new poller from ``factory``, with ``options`` checked first."""
        if not options:
            return self.factory()
        self.check_options(options)
        return self.factory(**options)
