"""The ``poll`` poller: ``poll(2)`` through a ``select.poll`` object.

It owns one ``select.poll`` object, kept in step with the interest table of
:mod:`hookloop_select._table`, and hands the kernel's answer to the core
untouched: ``poll()`` does no per-event Python work at all.  Priority 200:
better than ``select`` (no ``FD_SETSIZE``, no ``EBADF`` poisoning), worse than
epoll or kqueue (every call still passes the whole interest list to the
kernel, which scans it).

Some facts about poll
---------------------

**It is stateless, CPython is not.**  ``poll(2)`` takes an array of
``struct pollfd`` on every call.  ``select.poll`` keeps a dict of fd to mask
and rebuilds that array only after a ``register``/``modify``/``unregister``,
so a loop whose interest is stable pays for the array once.  ``register`` on
an fd that is already in the dict simply replaces its mask.  The object is
not safe for concurrent ``poll()`` calls (CPython raises ``RuntimeError``);
the core polls from one thread only and other threads only call
``wakeup()``, which never touches it.

**Some bits are reported whether asked for or not.**  ``POLLHUP``, ``POLLERR``
and ``POLLNVAL`` are output-only: the kernel sets them in ``revents`` whatever
``events`` asked for.  They must wake both the reader and the writer, which
is why all three are in both :attr:`PollPoller.READABLE` and
:attr:`PollPoller.WRITABLE`.  It matters in practice: when the write end of a
pipe is closed and the pipe is empty, the read end gets ``POLLHUP`` *without*
``POLLIN``; when the read end is closed, a full pipe's write end gets
``POLLERR`` *without* ``POLLOUT``.  A reader watching only ``POLLIN`` (or a
writer watching only ``POLLOUT``) would sleep forever.  ``POLLPRI`` (urgent
data) and ``POLLRDHUP`` (peer shut down writing) only appear if requested;
we request neither -- ``POLLIN`` already fires at end of file, and a reader
that never reads urgent data would spin on ``POLLPRI`` -- but they are in
``READABLE`` so the masks describe every bit poll can return.

**A closed fd is not an error.**  Unlike ``select(2)``, ``poll(2)`` does not
fail when an fd in the array is closed; it sets ``POLLNVAL`` on that entry.
So an fd closed behind our back shows up as readable and writable until its
owner unregisters it -- exactly the select backend's behaviour after its
``EBADF`` recovery.  The flip side is that ``select.poll.register`` accepts a
closed fd without complaint, so :meth:`register` checks with ``fstat`` first
(the contract wants ``OSError`` and nothing registered).  Unregistering is
pure bookkeeping and cannot fail.

**Timeouts are integer milliseconds.**  ``poll(2)`` takes an ``int`` of
milliseconds, negative meaning "block".  We convert seconds with ``ceil`` so a
timer due in 10.4 ms is not polled for 10 ms and then found not yet due (the
loop would spin once more for nothing); ``None`` blocks.  An ``int`` of
milliseconds overflows at about 24.8 days; the core caps every timeout at
:data:`hookloop.poller.MAX_TIMEOUT` (a day), so no cap is needed here.  A
negative timeout is treated as 0, not as "block".

**macOS.**  Darwin's ``poll`` does not work on some devices (ttys, ``/dev``
nodes); kqueue has its own caveats there.  The poll backend is still correct
for sockets and pipes, which is what the loop watches.
"""
from __future__ import annotations

import math
import select
from typing import TYPE_CHECKING

from hookloop import BackendUnavailableError

from ._table import InterestTablePoller

__all__ = ["POLL_UNAVAILABLE", "PollPoller"]

#: ``None`` where ``select.poll`` exists, else why the backend cannot work.
POLL_UNAVAILABLE: str | None = (
    None if hasattr(select, "poll") else "select.poll is not available on this platform"
)

if POLL_UNAVAILABLE is None or TYPE_CHECKING:
    _POLLIN = select.POLLIN
    _POLLOUT = select.POLLOUT
    _HANGUP = select.POLLERR | select.POLLHUP | select.POLLNVAL
    _READABLE = _POLLIN | select.POLLPRI | getattr(select, "POLLRDHUP", 0) | _HANGUP
    _WRITABLE = _POLLOUT | _HANGUP
else:  # pragma: no cover - platforms without poll(2)
    _POLLIN = _POLLOUT = _READABLE = _WRITABLE = 0

# The core's interest masks (READ=1, WRITE=2) translated to poll's bits.
_POLL_MASKS = (0, _POLLIN, _POLLOUT, _POLLIN | _POLLOUT)


class PollPoller(InterestTablePoller):
    """A poller over ``select.poll``; see the module docstring."""

    name = "poll"
    READABLE = _READABLE
    WRITABLE = _WRITABLE

    def __init__(self) -> None:
        if POLL_UNAVAILABLE is not None:
            raise BackendUnavailableError(f"the poll backend cannot work here: {POLL_UNAVAILABLE}")
        super().__init__()
        self._poller = select.poll()
        self._kernel_poll = self._poller.poll

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        """Wait at most ``timeout`` seconds; return the kernel's ``(fd, revents)`` list."""
        self._polls += 1
        if timeout is None:
            return self._kernel_poll()
        if timeout <= 0:
            return self._kernel_poll(0)
        return self._kernel_poll(math.ceil(timeout * 1000))

    # -- the interest table's hooks ------------------------------------------

    def _apply(self, fd: int, events: int) -> None:
        self._poller.register(fd, _POLL_MASKS[events])

    def _discard(self, fd: int) -> None:
        self._poller.unregister(fd)

    def _clear(self) -> None:
        # A select.poll object holds no fd of its own; a fresh one drops
        # the registrations in one step.
        self._poller = select.poll()
        self._kernel_poll = self._poller.poll
