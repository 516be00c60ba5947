"""hookloop: an asyncio event loop assembled from plugins.

Use it as a loop factory::

    asyncio.run(main(), loop_factory=hookloop.new_event_loop)
    hookloop.run(main(), backend="epoll")

or, for code that still uses policies, ``hookloop.install()``.

The public API is the ``__all__`` of this package and of
:mod:`hookloop.poller` (the poller contract, for backend authors),
:mod:`hookloop.services` (the service contracts), :mod:`hookloop.transport`
(the transport toolkit) and :mod:`hookloop.testing` (the testing kit);
``docs/plugins.md`` is the plugin author's guide.  Everything else may change
in any release.
"""
from __future__ import annotations

from .assembly import (
    PluginInfo,
    available_backends,
    get_backend,
    list_backends,
    new_event_loop,
    plugin_infos,
)
from .backends import Backend
from .errors import (
    BackendUnavailableError,
    HookloopError,
    PluginAPIWarning,
    PluginLoadError,
    PluginMissingError,
)
from .facilities import check_signal
from .hookspecs import hookimpl, hookspec
from .instruments import Instrument, PollStatistics
from .loop import EventLoop
from .policy import EventLoopPolicy, install, run
from .stall import StallInjector

__all__ = [
    "Backend",
    "BackendUnavailableError",
    "EventLoop",
    "EventLoopPolicy",
    "HookloopError",
    "Instrument",
    "PluginAPIWarning",
    "PluginInfo",
    "PluginLoadError",
    "PluginMissingError",
    "PollStatistics",
    "StallInjector",
    "available_backends",
    "check_signal",
    "get_backend",
    "hookimpl",
    "hookspec",
    "install",
    "list_backends",
    "new_event_loop",
    "plugin_infos",
    "run",
]
