"""The poller contract: what a backend author implements.

A poller is the only part of hookloop that talks to the kernel's readiness
API (``select``, ``poll``, ``epoll``, ``kqueue``, ...).  It is deliberately
small, in the spirit of trio's ``_io_epoll.py``:

* ``register(fd, events)`` / ``modify(fd, events)`` / ``unregister(fd)`` set
  the interest for one file descriptor.  ``events`` is a mask of
  :data:`READ` and :data:`WRITE`.  The loop core keeps the one record of who
  waits on each fd and computes the mask from it; a poller never tracks
  callbacks, only interest.
* ``poll(timeout)`` waits at most ``timeout`` seconds (``None``: until
  something happens, ``0``: do not block) and returns a list of
  ``(fd, events)`` pairs in the poller's *native* bit layout.  The core tests
  them against the poller's :attr:`~Poller.READABLE` and
  :attr:`~Poller.WRITABLE` masks, so epoll and poll can hand the kernel's list
  over without rebuilding it.  Hang-up and error conditions must be included
  in *both* masks: a peer that went away wakes the reader and the writer, who
  then find out what happened from the failing system call.  An fd may appear
  more than once in the list.
* ``wakeup()`` makes a concurrent or future ``poll()`` return promptly; it
  is called from other threads (``call_soon_threadsafe``) and from signal
  handlers.  :attr:`~Poller.wakeup_fd` is the write end handed to
  ``signal.set_wakeup_fd``.  The read end is :attr:`~Poller.waker_fd`; the core
  registers it like any other reader, with :meth:`~Poller.drain_wakeup` as the
  callback.
* ``statistics()`` returns a dict about the poller with at least the keys
  ``backend`` (its name), ``registered_fds`` and ``polls``; ``close()``
  releases every fd the poller owns; ``name`` is the backend name users pass
  as ``backend=``.
* ``capabilities`` is a ``frozenset`` of the optional capabilities below that
  the poller has; :class:`PollerBase` declares none.

Optional capabilities
---------------------

Some mechanisms can watch things that are not fds.  A poller that offers such
a feature says so in :attr:`~Poller.capabilities`, and whoever uses it (a
plugin's service) tests the flag, never the presence of a method.  Each
capability obliges the poller to have certain methods (:data:`CAPABILITIES`);
the loop checks, when it is made, that a poller declares a capability
exactly when it has its methods (:func:`check_capabilities`), and refuses,
naming the backend, a poller that has one without the other.  Names the core
does not know are ignored (a newer plugin on an older core).

* :data:`PROCESS_WATCHING` (``"process-watching"``): the poller reports a
  process's exit without ``SIGCHLD``, a pidfd or a thread (kqueue's
  ``EVFILT_PROC``/``NOTE_EXIT``).  Methods (:class:`ProcessWatchingPoller`):
  ``watch_process(pid, callback)`` -- call ``callback(pid)`` once, from the
  loop's I/O dispatch (the poller reports its own :attr:`~Poller.waker_fd`
  readable and runs the callbacks in :meth:`~Poller.drain_wakeup`), after
  ``pid`` has exited, including when it is gone already; watching again
  replaces the callback; the callback reaps the child itself.
  ``unwatch_process(pid)`` -- forget ``pid`` (unknown pids are ignored).
  Loop thread only, like ``register``.  The subprocess service uses it when
  the flag is set, else a pidfd or a thread.

Factory options
---------------

A backend's factory (:class:`hookloop.Backend` ``factory``) may take options,
passed by ``hookloop.new_event_loop(backend_options={...})``: the options it
accepts are its keyword parameters, each with a default, since the factory is
called with none of them most of the time (and by the contract kit).  Make
them keyword-only (``def __init__(self, *, max_events: int | None = None)``).
An option the factory does not take is refused by the core before the factory
is called; the factory validates the values, before it opens anything.  The
epoll and kqueue backends take ``max_events``, the most events one ``poll()``
returns (:func:`check_max_events` validates it for any backend with a batch).

Rules every backend follows, so every backend has one semantics:

* ``unregister`` of an fd that was closed behind our back must not raise
  (EBADF/ENOENT are swallowed): the object that owned it is gone anyway.
* ``register`` of a closed or invalid fd must raise ``OSError`` (or
  ``ValueError`` for an fd the mechanism cannot represent) *and leave nothing
  registered*.
* ``register`` of an fd already registered replaces its mask; ``modify``
  of an fd not registered raises ``FileNotFoundError``; ``unregister`` of an
  unknown fd does nothing.
* A regular file is refused by epoll (``PermissionError``) and reported
  always ready by select and poll, as the kernels do; the core passes that on.
* Timeouts are never negative and are capped by the core at
  :data:`MAX_TIMEOUT` (a day); pollers can rely on both.
* Owners of an fd unregister it *before* closing it.  A backend must survive
  an fd closed behind its back (and epoll even one whose file lives on in a
  ``dup()``), but that path may be slow: the epoll backend rebuilds its
  kernel object from its records.
* ``EINTR`` is handled by Python itself (PEP 475); pollers do not loop on it.

This module also holds :class:`PollerBase`, the part every backend shares:
the self-pipe used for ``wakeup()`` and its statistics counters.  It must
never import a backend, and nothing here runs per event except
:meth:`PollerBase.drain_wakeup`.
"""
from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "READ",
    "WRITE",
    "MAX_TIMEOUT",
    "PROCESS_WATCHING",
    "CAPABILITIES",
    "Poller",
    "ProcessWatchingPoller",
    "PollerBase",
    "check_capabilities",
    "check_fd",
    "check_max_events",
]

#: Interest in readability, for :meth:`Poller.register`.
READ = 1
#: Interest in writability, for :meth:`Poller.register`.
WRITE = 2
#: The longest timeout the core ever passes to :meth:`Poller.poll` (one day).
MAX_TIMEOUT = 24 * 3600.0

#: Capability: the poller watches process exits (``watch_process`` and
#: ``unwatch_process``); see "Optional capabilities" above.
PROCESS_WATCHING = "process-watching"

#: Every optional capability the core knows, and the methods it obliges a
#: poller that declares it to have.
CAPABILITIES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    PROCESS_WATCHING: ("watch_process", "unwatch_process"),
})


@runtime_checkable
class Poller(Protocol):
    """The interface the loop core uses; see the module docstring."""

    #: The backend name, e.g. ``"epoll"``.
    name: str
    #: Native bits of ``poll()`` results that mean "run the reader".
    READABLE: int
    #: Native bits of ``poll()`` results that mean "run the writer".
    WRITABLE: int
    #: Write end of the self-pipe (for ``signal.set_wakeup_fd``).
    wakeup_fd: int
    #: Read end of the self-pipe; the core watches it.
    waker_fd: int
    #: The optional capabilities it has (:data:`PROCESS_WATCHING`, ...).
    capabilities: frozenset[str]

    def register(self, fd: int, events: int) -> None: ...
    def modify(self, fd: int, events: int) -> None: ...
    def unregister(self, fd: int) -> None: ...
    def poll(self, timeout: float | None) -> list[tuple[int, int]]: ...
    def wakeup(self) -> None: ...
    def drain_wakeup(self) -> None: ...
    def statistics(self) -> dict[str, Any]: ...
    def close(self) -> None: ...


@runtime_checkable
class ProcessWatchingPoller(Poller, Protocol):
    """A poller with the :data:`PROCESS_WATCHING` capability."""

    def watch_process(self, pid: int, callback: Callable[[int], object]) -> None: ...
    def unwatch_process(self, pid: int) -> None: ...


class PollerBase:
    """Shared plumbing for pollers: the self-pipe and statistics.

    Subclasses implement ``register``/``modify``/``unregister``/``poll`` and
    call :meth:`_close_waker` from their ``close()``.  They keep the two
    counters :meth:`statistics` reports up to date: ``_registered`` (fds
    registered now) and ``_polls`` (calls to ``poll()``).  The self-pipe is a
    non-blocking socket pair (a pipe would do as well on Unix; a socket pair
    also works where ``signal.set_wakeup_fd`` insists on sockets).
    """

    name = "base"
    READABLE = READ
    WRITABLE = WRITE
    #: None; a subclass with a capability replaces this.
    capabilities: frozenset[str] = frozenset()

    def __init__(self) -> None:
        rsock, wsock = socket.socketpair()
        rsock.setblocking(False)
        wsock.setblocking(False)
        self._wake_rsock = rsock
        self._wake_wsock = wsock
        self.waker_fd = rsock.fileno()
        self.wakeup_fd = wsock.fileno()
        self._wake_send = wsock.send
        self._wake_recv = rsock.recv
        self._registered = 0
        self._polls = 0
        self._closed = False

    def wakeup(self) -> None:
        """Make the current or next ``poll()`` return; safe from any thread."""
        try:
            self._wake_send(b"\0")
        except OSError:
            # Buffer full (a wakeup is pending anyway) or already closed.
            pass

    def drain_wakeup(self) -> None:
        """Empty the self-pipe; the core calls this when it is readable."""
        recv = self._wake_recv
        try:
            while recv(4096):
                pass
        except OSError:
            # BlockingIOError: drained; anything else: closed meanwhile.
            pass

    def statistics(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "registered_fds": self._registered,
            "polls": self._polls,
        }

    def _close_waker(self) -> None:
        self._closed = True
        self._wake_rsock.close()
        self._wake_wsock.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"fds={self._registered}"
        return f"<{type(self).__name__} {state}>"


def check_fd(fd: int) -> int:
    """Validate an fd as every backend must before registering it.

    Raises ``OSError(EBADF)`` for a closed fd and ``ValueError`` for a
    negative one, so that nothing half-registered is ever left behind.
    """
    if fd < 0:
        raise ValueError(f"Invalid file descriptor: {fd}")
    os.fstat(fd)  # raises OSError(EBADF) when closed
    return fd


def check_capabilities(poller: object) -> frozenset[str]:
    """Check that ``poller`` declares a capability exactly when it has its methods.

    Returns the capabilities it declares.  Raises ``TypeError`` saying what is
    wrong when ``capabilities`` is not a set of strings, when a declared
    capability lacks one of its methods (:data:`CAPABILITIES`), or when the
    poller has such a method without declaring the capability.  The loop
    calls this once per loop it makes; the contract kit calls it too.
    """
    kind = type(poller).__name__
    declared = getattr(poller, "capabilities", None)
    if not isinstance(declared, (set, frozenset)) or \
            not all(isinstance(c, str) for c in declared):
        raise TypeError(f"{kind}.capabilities must be a frozenset of capability names "
                        f"(hookloop.poller.PROCESS_WATCHING, ...), not {declared!r}")
    for capability, methods in CAPABILITIES.items():
        present = [m for m in methods if callable(getattr(poller, m, None))]
        if capability in declared and len(present) < len(methods):
            missing = ", ".join(f"{m}()" for m in methods if m not in present)
            raise TypeError(f"{kind} declares the capability {capability!r} but has no "
                            f"{missing}")
        if capability not in declared and present:
            raise TypeError(f"{kind} has {', '.join(f'{m}()' for m in present)} but does "
                            f"not declare the capability {capability!r} in its "
                            f"capabilities: add it, or rename the method")
    return frozenset(declared)


def check_max_events(max_events: int | None, backend: str) -> int | None:
    """Validate a ``max_events`` factory option (a batch size per ``poll()``).

    ``None`` (the backend's own adaptive batch) or an ``int`` of at least 1;
    anything else raises ``TypeError`` or ``ValueError`` naming the option
    and ``backend``.  For factories, before they open anything.
    """
    if max_events is None:
        return None
    if not isinstance(max_events, int) or isinstance(max_events, bool):
        raise TypeError(f"the {backend!r} backend's max_events option must be an int or "
                        f"None, not {type(max_events).__name__}")
    if max_events < 1:
        raise ValueError(f"the {backend!r} backend's max_events option must be at least 1, "
                         f"got {max_events}")
    return max_events
