"""What each optional feature is, and which distribution provides it.

A leaf module (it imports only :mod:`hookloop.errors`): the one place that knows
the names of the distributions the project ships, so that the error for a
feature nobody provides can say what to ``pip install``.  The scheduler
never reads it; :mod:`hookloop.assembly` puts the error for a missing
service into each recipe, and the loop raises what the recipe gives it.

A third-party service kind needs no entry here: its hookspec and its
plugin bring their own error text.
"""
from __future__ import annotations

import sys
from typing import NamedTuple

from .errors import PluginMissingError

__all__ = ["FEATURES", "Feature", "missing_feature", "suggested_backend"]


class Feature(NamedTuple):
    """A service kind: what it does, who provides it, the builtin plugin
    that provides it by default (``None``: no builtin)."""

    description: str
    distribution: str
    builtin: str | None


FEATURES: dict[str, Feature] = {
    "transports": Feature("sockets, servers and pipes", "hookloop", "transports"),
    "tls": Feature("TLS (ssl=, start_tls)", "hookloop-tls", None),
    "resolver": Feature("name resolution (getaddrinfo, getnameinfo)", "hookloop", "resolver"),
    "signals": Feature("signal handlers", "hookloop", "signals"),
    "executor": Feature("run_in_executor(None, ...)", "hookloop", "executor"),
    "subprocess": Feature("subprocesses", "hookloop-subprocess", None),
}


def missing_feature(kind: str, disabled: frozenset[str] = frozenset()) -> PluginMissingError:
    """The error for a feature whose service no plugin provides, naming the
    distribution to install (or the builtin plugin that is ``disabled``)."""
    feature = FEATURES[kind]
    return PluginMissingError(feature.description, feature.distribution,
                              plugin=feature.builtin,
                              disabled=feature.builtin is not None and feature.builtin in disabled)


def suggested_backend(platform: str = sys.platform) -> str:
    """The distribution of the best poller backend for ``platform``."""
    if platform.startswith("linux"):
        return "hookloop-epoll"
    if platform == "darwin" or "bsd" in platform:
        return "hookloop-kqueue"
    return "hookloop-select"
