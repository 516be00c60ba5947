"""hookloop-kqueue: the ``kqueue`` poller backend (macOS and the BSDs).

This distribution is a hookloop plugin (entry-point group ``hookloop``, plugin
name ``kqueue``).  Its only hook is :func:`hookloop_pollers`, called once per
process at assembly; it offers one backend, ``kqueue`` (:class:`KqueuePoller`,
priority 250: the native choice wherever kqueue exists, where epoll never
does).  Where Python's ``select`` module has no ``kqueue`` -- Linux, Windows --
the backend is still offered, marked unavailable with the reason, so
``hookloop plugins`` can say why it is not used and choosing it raises
:class:`~hookloop.BackendUnavailableError`; importing this package never fails
and never breaks loop creation there.  Availability is decided when the hook
runs, not at import, by looking at ``select`` then.

:class:`KqueuePoller` has the contract's optional process-watching capability
(``capabilities`` holds :data:`hookloop.poller.PROCESS_WATCHING`): child-exit
watching (:meth:`KqueuePoller.watch_process`) for the subprocess service.

The self-pipe and the statistics counters come from
:class:`hookloop.poller.PollerBase`, as for every backend.
"""
from __future__ import annotations

from hookloop import Backend, hookimpl

from .kqueue_poller import KqueuePoller, kqueue_unavailable

__all__ = ["KqueuePoller", "hookloop_pollers"]

#: The hookloop plugin API this plugin is written for; a core that does not
#: support it refuses the plugin, naming both versions.
HOOKLOOP_API = 1

DISTRIBUTION = "hookloop-kqueue"


@hookimpl
def hookloop_pollers() -> list[Backend]:
    """Offer the ``kqueue`` backend (unavailable, with the reason, without ``select.kqueue``)."""
    return [
        Backend(
            name="kqueue",
            factory=KqueuePoller,
            priority=250,
            unavailable=kqueue_unavailable(),
            distribution=DISTRIBUTION,
        ),
    ]
