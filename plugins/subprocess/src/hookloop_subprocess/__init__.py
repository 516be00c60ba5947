"""hookloop-subprocess: subprocesses for the hookloop event loop.

This distribution is a hookloop plugin (entry-point group ``hookloop``,
plugin name ``subprocess``).  Its only hook is :func:`hookloop_subprocess`,
called once per process at assembly (no lifecycle hook: a loop close with
this plugin installed costs no hook call); it returns the factory of
:class:`~hookloop_subprocess.service.SubprocessService`, which the loop makes
the first time ``loop.subprocess_exec``/``loop.subprocess_shell`` (and so
``asyncio.create_subprocess_exec``/``create_subprocess_shell``) is used.
Without this distribution those raise :class:`hookloop.PluginMissingError`
naming ``hookloop-subprocess``.

The pieces: :mod:`.service` (arguments, spawning with ``subprocess.Popen``,
the children of a loop, loop close), :mod:`.transport` (the
``asyncio.SubprocessTransport``: pipes through the loop's own pipe transports,
the exit, the order of protocol callbacks) and :mod:`.watchers` (how the loop
hears that a child exited: the poller's ``watch_process`` where it has one,
a pidfd in the loop's fd table on Linux, a thread per child elsewhere).
Nothing here calls pluggy or runs per event but the forwarding of pipe data
and the one callback per child exit.
"""
from __future__ import annotations

from hookloop import hookimpl, services

from .service import SubprocessService
from .transport import SubprocessTransport

__all__ = ["SubprocessService", "SubprocessTransport", "hookloop_subprocess"]

#: The hookloop plugin API this plugin is written for; a core that does not
#: support it refuses the plugin, naming both versions.
HOOKLOOP_API = 1

DISTRIBUTION = "hookloop-subprocess"


@hookimpl
def hookloop_subprocess() -> services.ServiceFactory[services.SubprocessService]:
    """Serve ``subprocess_exec``/``subprocess_shell`` with :class:`SubprocessService`."""
    return SubprocessService

