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
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "READ",
    "WRITE",
    "MAX_TIMEOUT",
    "Poller",
    "PollerBase",
    "check_fd",
]

#: Interest in readability, for :meth:`Poller.register`.
READ = 1
#: Interest in writability, for :meth:`Poller.register`.
WRITE = 2
#: The longest timeout the core ever passes to :meth:`Poller.poll` (one day).
MAX_TIMEOUT = 24 * 3600.0


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

    def register(self, fd: int, events: int) -> None: ...
    def modify(self, fd: int, events: int) -> None: ...
    def unregister(self, fd: int) -> None: ...
    def poll(self, timeout: float | None) -> list[tuple[int, int]]: ...
    def wakeup(self) -> None: ...
    def drain_wakeup(self) -> None: ...
    def statistics(self) -> dict[str, Any]: ...
    def close(self) -> None: ...


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
