"""hookloop-tls: TLS for the hookloop event loop (``ssl=``, ``start_tls``).

This distribution is a hookloop plugin (entry-point group ``hookloop``,
plugin name ``tls``).  Its only hook is :func:`hookloop_tls`, called at
assembly: it returns the factory of the loop's ``tls`` service
(:class:`~hookloop_tls.service.TLSService`), which the networking service
asks for whenever ``ssl=`` is given and ``loop.start_tls()`` delegates to.
Without this distribution those raise :class:`hookloop.PluginMissingError`
naming it.

The TLS itself is :class:`~hookloop_tls.transport.SSLTransport`: our own
transport over ``ssl.SSLContext.wrap_bio`` and memory BIOs, riding on the
plain socket transport; asyncio's ``sslproto`` is not used.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hookloop import hookimpl

from .service import TLSService
from .transport import SSLTransport

__all__ = ["TLSService", "SSLTransport", "hookloop_tls"]

#: The hookloop plugin API this plugin is written for; a core that does not
#: support it refuses the plugin, naming both versions.
HOOKLOOP_API = 1


@hookimpl
def hookloop_tls() -> Callable[[Any], TLSService]:
    """Provide the ``tls`` service."""
    return TLSService
