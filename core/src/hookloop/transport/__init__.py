"""``hookloop.transport``: the public toolkit for transport and TLS plugin authors.

A plugin that makes transports (a TLS layer, a QUIC or io_uring transport,
another pipe kind) builds them from these pieces, as the core's own
``transports`` plugin and hookloop-tls do; nothing else of the core's is
needed, and nothing here is the kernel's: the scheduler never imports this
package.

What it offers:

* **Fd transports** -- :class:`TransportCore` (lifecycle: ``close()`` flushes
  then loses the connection once, ``abort()`` drops the buffer, fatal
  errors, ``connection_lost`` exactly once from the ready queue, the fd
  claimed from the loop while the transport owns it and released after),
  :class:`ReadControl` (``pause_reading``/``resume_reading``/``is_reading``,
  reads in the connection's context), :class:`BufferedWriter` (write now,
  buffer only what the kernel refused, flush with one vectored call,
  ``pause_writing``/``resume_writing`` at the water marks, ``write_eof``).
  A subclass supplies ``_send``/``_sendv`` and its readiness methods.
* **The socket transport** -- :class:`SocketTransport`, the transport of a
  connected stream socket, which a TLS layer runs over (hookloop-tls makes
  one with its TLS protocol as the protocol), and :func:`socket_extra`, its
  ``get_extra_info`` values; :class:`TransportSocket`, the guarded socket
  view ``get_extra_info("socket")`` returns (no ``close``/``detach``).
* **asyncio's behaviour, shared** -- :func:`report_error` (a transport's
  error reported as asyncio reports it: quiet ones to the debug log, others
  to the exception handler), :func:`notify_flow_control`,
  :func:`water_marks` (``set_write_buffer_limits``' checks),
  :func:`check_bytes_like`, :func:`check_tls_timeouts`, :data:`PEER_GONE`,
  :func:`started`/:func:`wake_waiter` (the ``create_*`` waiter),
  :data:`DEFAULT_HIGH_WATER`, :data:`MAX_READ`, :data:`LOST_WRITES_WARNING`.

The TLS service contract (``wrap_transport``, ``start_tls``) is
:class:`hookloop.services.TLSService`.

Stability: the names in ``__all__`` keep their meaning and signatures
within a major version of hookloop; anything else (the underscore modules
behind this package, attributes starting with ``_`` other than the hooks a
subclass supplies) may change in any release.
"""
from __future__ import annotations

from ._base import (
    DEFAULT_HIGH_WATER,
    LOST_WRITES_WARNING,
    PEER_GONE,
    BufferedWriter,
    ReadControl,
    TransportCore,
    check_bytes_like,
    check_tls_timeouts,
    notify_flow_control,
    report_error,
    started,
    wake_waiter,
    water_marks,
)
from ._socketview import TransportSocket
from ._stream import MAX_READ, SocketTransport, socket_extra

__all__ = [
    "DEFAULT_HIGH_WATER",
    "LOST_WRITES_WARNING",
    "MAX_READ",
    "PEER_GONE",
    "BufferedWriter",
    "ReadControl",
    "SocketTransport",
    "TransportCore",
    "TransportSocket",
    "check_bytes_like",
    "check_tls_timeouts",
    "notify_flow_control",
    "report_error",
    "socket_extra",
    "started",
    "wake_waiter",
    "water_marks",
]
