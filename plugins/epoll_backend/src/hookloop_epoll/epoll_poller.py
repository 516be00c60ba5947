"""The ``epoll`` poller: Linux's ``epoll(7)``, hookloop's fastest backend.

It owns one epoll instance (an fd, close-on-exec) and a dict of the interest
mask of every fd registered in it.  ``poll()`` is one ``epoll_wait`` whose
result list goes to the core as is: no per-event Python work.  ``register``,
``modify`` and ``unregister`` are one ``epoll_ctl`` each.  The dict is not
consulted on any of those paths except to keep it current; it exists for the
two places that need it: :meth:`EpollPoller.statistics` and the rebuild
described below.

Some facts about epoll
----------------------

**Level-triggered, no EPOLLONESHOT.**  trio uses ``EPOLLONESHOT`` and re-arms
after every event, because each of its waits is one-shot anyway.  An asyncio
reader is not: it stays registered for as long as the transport reads, and
the loop must call it every iteration while data is waiting.  That is plain
level-triggered epoll, with no ``epoll_ctl`` per event.  Interest only changes
when the core's record for an fd changes (a writer added on ``EAGAIN`` and
removed once the buffer drained, a reader paused), and then with one
``EPOLL_CTL_MOD``.

**The interest set is keyed by (fd number, open file description).**
``epoll_ctl`` looks the fd up once, at registration, and remembers the pair.
Closing the fd does *not* remove the registration; it goes away only when
the *description* is freed, i.e. when its last reference is closed.  If the
description lives on elsewhere -- a ``dup()``, a child after ``fork()``, a
socket passed over ``SCM_RIGHTS`` -- the stale entry stays, keeps reporting
events under the old fd number, and cannot be removed any more: there is no
fd left to name it with (``EPOLL_CTL_DEL`` on the number fails with ``EBADF``,
or with ``ENOENT`` once the number names another file).  Level-triggered, a
readable stale entry would make every ``epoll_wait`` return at once: a loop
spinning at 100% CPU.

hookloop's answer: the contract lets an fd closed behind our back be
unregistered without error, and that is the moment we learn about it.  When
``EPOLL_CTL_DEL`` fails with ``EBADF`` or ``ENOENT`` *for an fd we had
registered*, a stale entry may exist, so we rebuild: a new epoll instance,
every remaining fd registered again from the dict (an fd that fails is
itself stale and is dropped), the old instance closed -- which is the only
way to get rid of the stale entry.  That costs one ``epoll_ctl`` per
registered fd, on an error path; a core that unregisters before closing, as
it should, never pays it.  ``unregister`` of an fd we never registered
(``ENOENT``, nothing known) is a plain no-op.  What no backend can handle is
an owner that closes an fd and *never* unregisters it; with epoll that is
silent as long as nobody else holds the description, and a spin otherwise.

**EPOLLHUP and EPOLLERR are always reported**, whatever the mask asked for.
Both are in :attr:`EpollPoller.READABLE` and :attr:`EpollPoller.WRITABLE`, so a
peer that hangs up wakes the reader and the writer: the write end of a pipe
whose reader closed gets ``EPOLLERR`` *without* ``EPOLLOUT`` when the pipe is
full, and the read end of a pipe whose writer closed gets ``EPOLLHUP``
*without* ``EPOLLIN`` when it is empty.  ``EPOLLPRI`` and ``EPOLLRDHUP`` only
appear if requested.  We request neither (``EPOLLIN`` fires at end of file
anyway, and a reader that never reads urgent data would spin on ``EPOLLPRI``),
but ``READABLE`` includes them so the masks cover every bit epoll can return.

**epoll refuses regular files** (``EPERM``: they are always ready), so
``register`` raises ``PermissionError`` and registers nothing; select and
poll accept them and report them ready at once.  The loop core documents
this as asyncio does for its epoll selector.

**Timeouts.**  ``epoll_wait`` takes an ``int`` of milliseconds, ``-1``
blocking.  CPython's ``epoll.poll`` takes seconds as a float and converts
them rounding *up*, so a timer is never woken early; ``None`` becomes ``-1``.
An ``int`` of milliseconds overflows at about 24.8 days (CPython raises
``OverflowError``); the core caps every timeout at
:data:`hookloop.poller.MAX_TIMEOUT` (a day), so no cap is needed here.  A
negative timeout means "block" to epoll; we turn it into 0.

**maxevents.**  CPython allocates a buffer of ``maxevents`` events on every
``epoll.poll`` call, so a huge value costs on every iteration, and a tiny one
makes the loop go round once per batch.  We start at 64 and double whenever a
poll returns a full batch, up to 4096.  Nothing starves meanwhile: the
kernel moves the fds it reported to the back of its ready list, so the next
call reports the others first.  The factory option ``max_events``
(``new_event_loop("epoll", backend_options={"max_events": N})``) fixes the
batch at ``N`` instead, for a program that knows its fd count, or wants the
loop to come back to its timers and callbacks after at most ``N`` events.

**fork.**  A child inherits the epoll fd, and it names the *same* instance:
a child calling ``epoll_ctl`` changes the parent's interest set.  The core
refuses to use a loop in a forked child; this module never touches the
instance outside the methods the core calls.

**EINTR** is retried by CPython with the remaining timeout (PEP 475).
"""
from __future__ import annotations

import errno
import select
import sys
from typing import TYPE_CHECKING, Any

from hookloop import BackendUnavailableError
from hookloop.poller import PollerBase, check_max_events

__all__ = ["EPOLL_UNAVAILABLE", "EpollPoller"]

#: ``None`` where epoll works, else why the backend cannot work here.
EPOLL_UNAVAILABLE: str | None
if not sys.platform.startswith("linux"):
    EPOLL_UNAVAILABLE = f"epoll is Linux-only (this is {sys.platform})"
elif not hasattr(select, "epoll"):  # pragma: no cover - exotic builds
    EPOLL_UNAVAILABLE = "this Python was built without select.epoll"
else:
    EPOLL_UNAVAILABLE = None

if EPOLL_UNAVAILABLE is None or TYPE_CHECKING:
    _EPOLLIN = select.EPOLLIN
    _EPOLLOUT = select.EPOLLOUT
    _HANGUP = select.EPOLLERR | select.EPOLLHUP
    _READABLE = _EPOLLIN | select.EPOLLPRI | select.EPOLLRDHUP | _HANGUP
    _WRITABLE = _EPOLLOUT | _HANGUP
else:  # pragma: no cover - not Linux
    _EPOLLIN = _EPOLLOUT = _READABLE = _WRITABLE = 0

# The core's interest masks (READ=1, WRITE=2) translated to epoll's bits.
_EPOLL_MASKS = (0, _EPOLLIN, _EPOLLOUT, _EPOLLIN | _EPOLLOUT)

_MIN_MAXEVENTS = 64
_MAX_MAXEVENTS = 4096

# epoll_ctl errors meaning "that fd is not (or no longer) in the set".
_GONE = (errno.EBADF, errno.ENOENT)


class EpollPoller(PollerBase):
    """A poller over ``select.epoll``; see the module docstring."""

    name = "epoll"
    READABLE = _READABLE
    WRITABLE = _WRITABLE

    def __init__(self, *, max_events: int | None = None) -> None:
        """:param max_events: The most events one ``poll()`` returns (the
            ``backend_options`` option of that name): a fixed batch size, or
            ``None`` for the adaptive one (see **maxevents** above)."""
        if EPOLL_UNAVAILABLE is not None:
            raise BackendUnavailableError(
                f"the epoll backend cannot work here: {EPOLL_UNAVAILABLE}"
            )
        fixed = check_max_events(max_events, self.name)
        epoll = select.epoll()
        try:
            super().__init__()
        except BaseException:
            epoll.close()  # no fd leaks, even under EMFILE
            raise
        self._epoll = epoll
        self._kernel_poll = epoll.poll
        self._interest: dict[int, int] = {}
        self._maxevents = _MIN_MAXEVENTS if fixed is None else fixed
        self._max_maxevents = _MAX_MAXEVENTS if fixed is None else fixed
        self._rebuilds = 0

    # -- the contract --------------------------------------------------------

    def register(self, fd: int, events: int) -> None:
        """Start watching ``fd`` for ``events`` (a mask of READ and WRITE).

        ``epoll_ctl`` itself validates the fd: negative → ``ValueError``
        (from CPython), closed → ``OSError(EBADF)``, regular file →
        ``PermissionError``; in each case nothing is registered.  An fd that
        is already registered gets its mask replaced.
        """
        mask = _translate(fd, events)
        try:
            self._epoll.register(fd, mask)
        except FileExistsError:
            self._epoll.modify(fd, mask)
        self._interest[fd] = events
        self._registered = len(self._interest)

    def modify(self, fd: int, events: int) -> None:
        """Change the mask of a registered fd (``FileNotFoundError`` if it is not)."""
        self._epoll.modify(fd, _translate(fd, events))
        self._interest[fd] = events

    def unregister(self, fd: int) -> None:
        """Stop watching ``fd``; never raises for an fd closed behind our back."""
        known = self._interest.pop(fd, None) is not None
        self._registered = len(self._interest)
        try:
            self._epoll.unregister(fd)
        except OSError as exc:
            if exc.errno not in _GONE:
                raise
            if known:
                self._rebuild()

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        """Wait at most ``timeout`` seconds; return the kernel's ``(fd, events)`` list."""
        self._polls += 1
        if timeout is None:
            timeout = -1
        elif timeout < 0:
            timeout = 0
        maxevents = self._maxevents
        events = self._kernel_poll(timeout, maxevents)
        if len(events) == maxevents and maxevents < self._max_maxevents:
            self._maxevents = maxevents * 2
        return events

    def statistics(self) -> dict[str, Any]:
        stats = super().statistics()
        stats["maxevents"] = self._maxevents
        stats["rebuilds"] = self._rebuilds
        return stats

    def close(self) -> None:
        """Close the epoll instance and the self-pipe; idempotent."""
        self._epoll.close()
        self._interest.clear()
        self._registered = 0
        self._close_waker()

    # -- the slow path -------------------------------------------------------

    def _rebuild(self) -> None:
        """Replace the epoll instance to drop a stale entry; see the module docstring."""
        try:
            new = select.epoll()
        except OSError:
            # Out of fds: keep the old instance (and maybe its stale entry)
            # rather than fail an unregister, which must not raise.
            return
        for fd, events in list(self._interest.items()):
            try:
                new.register(fd, _EPOLL_MASKS[events])
            except OSError:
                # Closed behind our back too; its owner's unregister will
                # find nothing and do nothing.
                del self._interest[fd]
        old, self._epoll, self._kernel_poll = self._epoll, new, new.poll
        old.close()
        self._registered = len(self._interest)
        self._rebuilds += 1


def _translate(fd: int, events: int) -> int:
    if 0 <= events <= 3:
        return _EPOLL_MASKS[events]
    raise ValueError(f"invalid events mask {events!r} for fd {fd}")
