"""hookloop-epoll: the ``epoll`` poller backend (Linux).

This distribution is a hookloop plugin (entry-point group ``hookloop``, plugin
name ``epoll``).  Its only hook is :func:`hookloop_pollers`, called once per
process at assembly; it offers one backend, ``epoll``
(:class:`EpollPoller`, priority 300, so the default wherever it works).  Off
Linux the backend is still offered, marked unavailable with the reason, so
``hookloop plugins`` can say why it is not used; importing this package never
fails there.

The self-pipe and the statistics counters come from
:class:`hookloop.poller.PollerBase`, as for every backend.
"""
from __future__ import annotations

from hookloop import Backend, hookimpl

from .epoll_poller import EPOLL_UNAVAILABLE, EpollPoller

__all__ = ["EpollPoller", "hookloop_pollers"]

#: The hookloop plugin API this plugin is written for; a core that does not
#: support it refuses the plugin, naming both versions.
HOOKLOOP_API = 1

DISTRIBUTION = "hookloop-epoll"


@hookimpl
def hookloop_pollers() -> list[Backend]:
    """Offer the ``epoll`` backend."""
    return [
        Backend(
            name="epoll",
            factory=EpollPoller,
            priority=300,
            unavailable=EPOLL_UNAVAILABLE,
            distribution=DISTRIBUTION,
        ),
    ]
