"""Exceptions hookloop raises for configuration and plugin problems."""
from __future__ import annotations

__all__ = ["HookloopError", "PluginMissingError", "PluginLoadError", "BackendUnavailableError",
           "PluginAPIWarning"]


class HookloopError(RuntimeError):
    """Base class of hookloop's own errors."""


class PluginMissingError(HookloopError, NotImplementedError):
    """A feature was used whose plugin is not installed (or is disabled).

    It is a ``NotImplementedError`` too, so code that probes a loop for
    optional features the way it would probe ``AbstractEventLoop`` keeps
    working.  The message names the distribution to install.
    """

    def __init__(self, feature: str, distribution: str, plugin: str | None = None,
                 disabled: bool = False) -> None:
        self.feature = feature
        self.distribution = distribution
        self.plugin = plugin
        self.disabled = disabled
        if disabled and plugin:
            msg = (f"{feature} needs the hookloop plugin {plugin!r}, which is disabled "
                   f"(HOOKLOOP_DISABLE or disable=); enable it again")
        elif distribution == "hookloop":
            # A feature the core itself is to provide, missing from this version.
            msg = (f"{feature} needs a plugin that this version of hookloop does not have "
                   f"yet: pip install --upgrade {distribution}")
        else:
            msg = f"{feature} needs {distribution}: pip install {distribution}"
        super().__init__(msg)


class PluginLoadError(HookloopError):
    """An installed plugin failed to import or to register."""


class BackendUnavailableError(HookloopError, ValueError):
    """The requested poller backend is unknown or cannot work here."""


class PluginAPIWarning(UserWarning):
    """An installed plugin was not loaded: it is written for a plugin API
    version this hookloop does not support (the message names both)."""
