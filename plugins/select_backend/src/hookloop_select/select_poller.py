"""The ``select`` poller: ``select(2)``, the lowest common denominator.

It owns two sets of fds (readers and writers) derived from the interest table
in :mod:`hookloop_select._table`, and one system call per loop iteration.  It
is the fallback backend (priority 100): everything else is faster with more
than a handful of fds, but ``select`` is everywhere.

Some facts about select
-----------------------

``select(2)`` takes three ``fd_set`` bitmaps and overwrites them with the
ready subsets.  CPython's ``select.select`` hides the bitmaps: it takes
iterables of fds, builds the bitmaps on every call (O(number of fds), plus
O(highest fd) in the kernel), and returns lists.  Three consequences shape
this module:

**FD_SETSIZE.**  An ``fd_set`` is a fixed bitmap of ``FD_SETSIZE`` bits, 1024
on Linux and the BSDs.  An fd of 1024 or more cannot be represented at all;
CPython raises ``ValueError("filedescriptor out of range in select()")`` -- but
only when ``select()`` is called, for the whole set, long after the code that
added the fd has returned.  The contract says a mechanism that cannot
represent an fd raises ``ValueError`` at ``register``, so we check there and
name the fd and the way out (the poll or epoll backend).

**EBADF poisons the whole call.**  If any fd in the sets is closed, the kernel
fails the entire ``select()`` with ``EBADF`` and tells us nothing about the
others (``poll(2)`` instead flags the one fd with ``POLLNVAL``).  An fd closed
behind our back (its owner closed it before ``remove_reader``) would therefore
make every later poll raise and kill the loop.  Instead we catch ``EBADF``,
find the culprits with ``fstat``, report each of them as both readable and
writable -- its callbacks run, their ``recv``/``send`` fails with ``EBADF``,
and the owner cleans up, exactly what the other backends do -- and select
once more, without blocking, on the fds that are still good so their
readiness is not lost for this iteration.  If the fd number has already been
reused by a new file there is no ``EBADF`` and nothing to detect; that is
true of every backend, and the owner's bug.

**Hang-up and error.**  The kernel (``fs/select.c``) puts an fd in the read
set for ``POLLIN``, ``POLLHUP`` and ``POLLERR``, and in the write set for
``POLLOUT`` and ``POLLERR``.  So a socket whose peer went away is reported
readable (``recv`` returns EOF) and writable (``send`` fails), a pipe whose
reader closed is reported writable even when it is full, and the contract's
"hang-up wakes both directions" holds with no work of ours.  The
exceptional set only reports TCP urgent data (``POLLPRI``) on Linux; hookloop
does not use it.

**Timeouts.**  ``select.select`` takes seconds as a float (``None`` blocks) and
converts them to a ``timeval`` rounding up to the microsecond, so a timer is
never woken early.  The core caps every timeout at
:data:`hookloop.poller.MAX_TIMEOUT` (a day), far below what a ``timeval``
holds, so no cap is needed here; a negative timeout (which CPython rejects)
is treated as 0.

The native bits of :meth:`SelectPoller.poll` are the core's own ``READ`` and
``WRITE``: an fd that is both readable and writable appears twice, once per
direction, as the contract allows.  That costs one small tuple per ready fd,
the only per-event Python work of all hookloop backends; ``select`` is for
few fds anyway.
"""
from __future__ import annotations

import errno
import os
import select
from typing import Any

from hookloop.poller import READ, WRITE, check_fd

from ._table import InterestTablePoller

__all__ = ["FD_SETSIZE", "SelectPoller"]

#: The size of an ``fd_set`` bitmap: fds must be smaller than this.  Python
#: does not export it; 1024 is the value on Linux, macOS and the BSDs.
FD_SETSIZE = 1024

_select = select.select
_BOTH = READ | WRITE
_NO_FDS: tuple[int, ...] = ()


class SelectPoller(InterestTablePoller):
    """A poller over ``select.select``; see the module docstring."""

    name = "select"
    READABLE = READ
    WRITABLE = WRITE

    def __init__(self) -> None:
        super().__init__()
        self._readers: set[int] = set()
        self._writers: set[int] = set()
        self._ebadf_recoveries = 0

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        """Wait at most ``timeout`` seconds; return ``(fd, READ or WRITE)`` pairs."""
        self._polls += 1
        if timeout is not None and timeout < 0:
            timeout = 0
        try:
            readable, writable, _ = _select(self._readers, self._writers, _NO_FDS, timeout)
        except OSError as exc:
            if exc.errno != errno.EBADF:
                raise
            return self._poll_after_ebadf()
        if writable:
            return [(fd, READ) for fd in readable] + [(fd, WRITE) for fd in writable]
        return [(fd, READ) for fd in readable]

    def statistics(self) -> dict[str, Any]:
        stats = super().statistics()
        stats["readers"] = len(self._readers)
        stats["writers"] = len(self._writers)
        stats["ebadf_recoveries"] = self._ebadf_recoveries
        return stats

    # -- the interest table's hooks ------------------------------------------

    def _validate_fd(self, fd: int) -> None:
        check_fd(fd)
        if fd >= FD_SETSIZE:
            raise ValueError(
                f"fd {fd} is out of range for select() (FD_SETSIZE is {FD_SETSIZE}); "
                f"use the 'poll' or 'epoll' backend for high fd numbers"
            )

    def _apply(self, fd: int, events: int) -> None:
        if events & READ:
            self._readers.add(fd)
        else:
            self._readers.discard(fd)
        if events & WRITE:
            self._writers.add(fd)
        else:
            self._writers.discard(fd)

    def _discard(self, fd: int) -> None:
        self._readers.discard(fd)
        self._writers.discard(fd)

    def _clear(self) -> None:
        self._readers.clear()
        self._writers.clear()

    # -- the slow path -------------------------------------------------------

    def _poll_after_ebadf(self) -> list[tuple[int, int]]:
        """Recover from ``select()`` failing with ``EBADF``; see the module docstring.

        Stays registered: the bad fds are reported at every poll until their
        owner unregisters them, as ``POLLNVAL`` is with the poll backend.
        """
        self._ebadf_recoveries += 1
        bad = [fd for fd in self._interest if not _is_open(fd)]
        readers = self._readers.difference(bad)
        writers = self._writers.difference(bad)
        # Never block here: the bad fds are "ready" now.  If this raises
        # EBADF again, another thread closed an fd in the last microseconds;
        # let it propagate rather than loop.
        readable, writable, _ = _select(readers, writers, _NO_FDS, 0)
        events = [(fd, _BOTH) for fd in bad]
        events += [(fd, READ) for fd in readable]
        events += [(fd, WRITE) for fd in writable]
        return events


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True
