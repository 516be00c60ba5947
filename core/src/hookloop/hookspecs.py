"""Hook specifications: every way a plugin can extend hookloop.

hookloop is a microkernel.  The core owns the ready queue, the timer heap,
the run loop, the exception handler and debug machinery, and assembly.
Everything else arrives through the hooks below, which pluggy calls *only at
assembly time*: when the plugin manager is built, when a loop is created or
closed, when the CLI starts.  No hook is ever called per event; a hook that
returns a service returns a *factory*, and the loop calls that factory once,
lazily, the first time the feature is used.

Builtin features of the core (the default executor, the signal service) are
plugins registered through these same hooks with ``trylast=True``, as pytest
registers its own features, so any installed plugin overrides them and
``HOOKLOOP_DISABLE=name`` removes them.

The hooks are grouped by the phase in which they run:

* **Assembly** (once per process and configuration, result cached):
  :func:`hookloop_pollers`, :func:`hookloop_transports`, :func:`hookloop_tls`,
  :func:`hookloop_resolver`, :func:`hookloop_signals`,
  :func:`hookloop_executor`, :func:`hookloop_subprocess`.
* **Loop lifecycle** (once per loop, skipped entirely when no plugin
  implements them): :func:`hookloop_loop_created`,
  :func:`hookloop_instruments`, :func:`hookloop_loop_closing`.
* **Command line** (once per ``hookloop`` invocation):
  :func:`hookloop_add_commands`.
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pluggy

from .services import (
    ExecutorFactory,
    ResolverService,
    ServiceFactory,
    SignalService,
    SubprocessService,
    TLSService,
    TransportService,
)

if TYPE_CHECKING:
    from .backends import Backend
    from .instruments import Instrument
    from .loop import EventLoop

#: The project name used by pluggy and by the entry-point group.
PROJECT = "hookloop"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# Each service hook returns a ServiceFactory of the service's contract (a
# typing.Protocol in hookloop.services); a service lacking a method of it is
# refused when it is made, naming the plugin (a class factory at assembly).


# --------------------------------------------------------------------------
# Assembly hooks
# --------------------------------------------------------------------------

@hookspec
def hookloop_pollers() -> Sequence[Backend]:  # type: ignore[empty-body]
    """Contribute poller backends.

    Called once per process.  Every implementation's result is collected;
    a backend plugin returns one :class:`hookloop.Backend` per poller it
    offers (``hookloop-select`` returns two: ``select`` and ``poll``).  A
    backend that cannot work on this platform is still returned, with
    ``unavailable`` set to the reason, so ``hookloop plugins`` can show it.

    The loop picks ``backend=`` if given, else ``$HOOKLOOP_BACKEND``, else
    the available backend with the highest ``priority``
    (epoll 300 > uring 280 > kqueue 250 > poll 200 > select 100).

    :returns: A sequence of :class:`hookloop.Backend`.
    """


@hookspec(firstresult=True)
def hookloop_transports() -> ServiceFactory[TransportService] | None:
    """Provide the socket transport service (TCP, unix, UDP, pipes, sock_*).

    ``firstresult``: the first non-``None`` result wins.

    :returns: A factory ``factory(loop) -> service``.  The service implements
        the loop's transport methods (``create_connection``,
        ``create_server``, ``sock_recv``, ...) as methods of the same names
        and signatures.  ``None`` if this plugin does not provide it.
    """


@hookspec(firstresult=True)
def hookloop_tls() -> ServiceFactory[TLSService] | None:
    """Provide TLS: wrapping transports for ``ssl=`` and ``start_tls``.

    ``firstresult``: the first non-``None`` result wins.  Without any
    implementation, TLS features raise :class:`hookloop.PluginMissingError`
    naming ``hookloop-tls``.

    :returns: A factory ``factory(loop) -> service``, or ``None``.
    """


@hookspec(firstresult=True)
def hookloop_resolver() -> ServiceFactory[ResolverService] | None:
    """Provide name resolution (``getaddrinfo`` and ``getnameinfo``).

    ``firstresult``: the first non-``None`` result wins.

    :returns: A factory ``factory(loop) -> resolver`` whose ``getaddrinfo``
        and ``getnameinfo`` are coroutine functions with the loop's
        signatures, or ``None``.
    """


@hookspec(firstresult=True)
def hookloop_signals() -> ServiceFactory[SignalService] | None:
    """Provide the signal-handler service.

    ``firstresult``: the first non-``None`` result wins.  The builtin
    implementation (plugin ``signals``) uses ``signal.set_wakeup_fd`` with the
    poller's :attr:`~hookloop.poller.Poller.wakeup_fd`.

    :returns: A factory ``factory(loop) -> service`` with
        ``add_signal_handler(sig, callback, *args)``,
        ``remove_signal_handler(sig) -> bool`` and ``close()``, or ``None``.
    """


@hookspec(firstresult=True)
def hookloop_executor() -> ExecutorFactory | None:
    """Provide the default executor factory for ``run_in_executor(None, ...)``.

    ``firstresult``: the first non-``None`` result wins.  The builtin
    implementation (plugin ``executor``) makes a ``ThreadPoolExecutor``.

    :returns: A zero-argument callable returning a
        ``concurrent.futures.ThreadPoolExecutor``, or ``None``.
    """


@hookspec(firstresult=True)
def hookloop_subprocess() -> ServiceFactory[SubprocessService] | None:
    """Provide subprocess support (``subprocess_exec``/``subprocess_shell``).

    ``firstresult``: the first non-``None`` result wins.  Without any
    implementation these raise :class:`hookloop.PluginMissingError` naming
    ``hookloop-subprocess``.

    :returns: A factory ``factory(loop) -> service``, or ``None``.
    """


# --------------------------------------------------------------------------
# Loop lifecycle hooks
# --------------------------------------------------------------------------

@hookspec
def hookloop_loop_created(loop: EventLoop) -> None:
    """Called once when a loop has been constructed, before it is returned.

    Not called at all (not even as an empty pluggy call) when no plugin
    implements it.

    :param loop: The new loop.
    """


@hookspec
def hookloop_instruments(loop: EventLoop) -> Sequence[Instrument] | None:
    """Attach instruments to a new loop.

    Instruments observe the run loop (each poll, each callback, each I/O
    callback the poller's events call).  A loop with no instrument runs the
    uninstrumented fast path, so they cost nothing when none is installed.
    Every implementation's result is collected.

    :param loop: The new loop.
    :returns: A sequence of :class:`hookloop.Instrument`, or ``None``.
    """


@hookspec
def hookloop_loop_closing(loop: EventLoop) -> None:
    """Called once from ``loop.close()``, before the loop releases anything.

    :param loop: The loop being closed; it is not running.
    """


# --------------------------------------------------------------------------
# Command-line hooks
# --------------------------------------------------------------------------

@hookspec
def hookloop_add_commands(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add subcommands to the ``hookloop`` command line.

    Call ``subparsers.add_parser(name, help=...)`` and set the parser's
    default ``func`` to a callable ``func(args) -> int | None`` (the exit
    status).  ``hookloop plugins`` is itself added through this hook.

    :param subparsers: The object returned by ``add_subparsers()``.
    """
