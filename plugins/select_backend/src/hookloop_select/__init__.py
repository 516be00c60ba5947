"""hookloop-select: the ``select`` and ``poll`` poller backends.

This distribution is a hookloop plugin (entry-point group ``hookloop``, plugin
name ``select``).  Its only hook is :func:`hookloop_pollers`, called once per
process at assembly; it offers two backends:

* ``poll`` (:class:`PollPoller`, priority 200) over ``select.poll``; listed as
  unavailable, with the reason, where Python has no ``select.poll``.
* ``select`` (:class:`SelectPoller`, priority 100) over ``select.select``;
  available everywhere, limited to fds below ``FD_SETSIZE`` (1024).

Both keep their interest set in this process (the system calls are
stateless); that shared part is :class:`hookloop_select._table.InterestTablePoller`.
The self-pipe and the statistics counters come from
:class:`hookloop.poller.PollerBase`, as for every backend.
"""
from __future__ import annotations

from hookloop import Backend, hookimpl

from .poll_poller import POLL_UNAVAILABLE, PollPoller
from .select_poller import SelectPoller

__all__ = ["PollPoller", "SelectPoller", "hookloop_pollers"]

#: The hookloop plugin API this plugin is written for; a core that does not
#: support it refuses the plugin, naming both versions.
HOOKLOOP_API = 1

DISTRIBUTION = "hookloop-select"


@hookimpl
def hookloop_pollers() -> list[Backend]:
    """Offer the ``poll`` and ``select`` backends."""
    return [
        Backend(
            name="poll",
            factory=PollPoller,
            priority=200,
            unavailable=POLL_UNAVAILABLE,
            distribution=DISTRIBUTION,
        ),
        Backend(
            name="select",
            factory=SelectPoller,
            priority=100,
            distribution=DISTRIBUTION,
        ),
    ]
