"""The ``kqueue`` poller: kqueue(2) of macOS and the BSDs.

It owns one kqueue (an fd), the interest mask of every fd registered in it,
a batch of changes not yet handed to the kernel, and the processes it
watches for :meth:`KqueuePoller.watch_process`.  It must never run a
callback of the fd table (the core does that from what ``poll()`` returns),
never block anywhere but in ``kevent``, and never import a select-module
name at import time: ``select.kqueue``, ``select.kevent`` and the ``KQ_*``
constants are looked up when a poller is built, so the package imports
everywhere and a Linux test session can slip an emulation underneath.

Some facts about kqueue
-----------------------

**One registration per (fd, filter).**  epoll has one entry per fd with a
mask; kqueue has a *knote* per ``(ident, filter)``: ``EVFILT_READ`` and
``EVFILT_WRITE`` for an fd are independent, added (``EV_ADD``) and removed
(``EV_DELETE``) one by one.  ``register(fd, READ|WRITE)`` is two knotes.
Level-triggered is the default (no ``EV_CLEAR``): a knote stays reported
while its condition holds, as an asyncio reader needs.

**Changes ride along with the next wait.**  ``kevent()`` takes a change list
*and* an event list: "all changes contained in the changelist are applied
before any pending events are read".  So ``register``/``modify``/
``unregister`` cost no system call here; they record the change in a dict
keyed by ``(fd, filter)`` (so an add then a delete of the same knote before a
poll leaves one change, the last), and ``poll()`` hands the batch to the
kernel.  The price is that the kernel's verdict on a change comes later, in
``poll()``.  The contract wants ``register`` of a closed or negative fd to
fail at once, so ``register`` checks with one ``fstat``
(:func:`hookloop.poller.check_fd`) first; what can still fail later is an fd
closed between ``register`` and the next ``poll()``.

**Errors come back as events.**  A change that fails is returned in the
event list with ``EV_ERROR`` in ``flags`` and the errno in ``data``, provided
there is room; otherwise the whole call fails with that errno and the
changes after it are not applied.  So ``poll()`` always leaves one slot per
change on top of its usual batch.  Two more kernel habits follow from the
source, not the manual: the error entry's ``flags`` is exactly ``EV_ERROR``
(whether the change was an add or a delete is lost, so we look it up in the
batch we sent), and when any change failed the kernel returns *only* the
errors, at once, without looking for ready events (FreeBSD's
``kern_kevent_fp``, and macOS alike).  A failed change must not hide the
readiness of the others, so ``poll()`` then asks once more, without changes,
and merges both answers.

What we do with a failed change:

* ``EV_DELETE`` failing with ``ENOENT`` or ``EBADF`` is the normal case of an
  fd closed behind our back: "calling close() on a file descriptor will
  remove any kevents that reference the descriptor", so the knote is gone
  already (``EBADF`` if the number is free, ``ENOENT`` if it names another
  file now).  Ignored.  (CPython also re-sends the change list when it
  retries ``kevent`` after ``EINTR``; the repeated delete fails with
  ``ENOENT`` and is ignored the same way.)
* ``EV_ADD`` failing (the fd was closed after ``register``) is reported as
  both readable and writable: an error wakes both directions, whose
  callbacks then learn what happened from their failing system call.
* ``EVFILT_PROC`` failing with ``ESRCH`` means the process is gone already;
  it is delivered as an exit (see below).

**EOF is an event of its own direction.**  ``EV_EOF`` comes with the read
filter when the peer stopped writing or the pipe's last writer went away,
and with the write filter when the reader disconnected; each wakes its own
direction (a reader waiting on a socket whose peer closed sees EOF, a writer
sees ``EV_EOF`` on the write filter and then ``EPIPE``).  So
:attr:`KqueuePoller.READABLE` is :data:`~hookloop.poller.READ` and
:attr:`~KqueuePoller.WRITABLE` is :data:`~hookloop.poller.WRITE`: ``poll()``
returns ``(fd, READ)`` or ``(fd, WRITE)`` per kevent, ``(fd, READ|WRITE)``
for an error.  That tuple per event is the only per-event Python work; the
kernel's ``kevent`` objects are no ``(fd, mask)`` pairs.

**Regular files** are accepted (epoll refuses them): the read filter fires
while the file offset is not at the end, unlike poll's "always ready".  The
write filter is "not supported for vnodes"; such a change fails at the next
``poll()`` and is reported as both directions, like any failed add.

**Timeouts.**  ``kqueue.control`` takes seconds as a float and converts them
to a ``timespec`` rounding up, so a timer is not woken early; ``None``
blocks.  Kernels limit the wait: FreeBSD documents 24 hours, macOS refuses
more than 10^8 seconds with ``EINVAL``.  The core caps every timeout at
:data:`hookloop.poller.MAX_TIMEOUT` (a day); ``poll()`` applies the same cap
for callers that are not the core (the contract kit, a third party), and
turns a negative timeout into 0.

**maxevents.**  As with epoll: 64 to start, doubled after a full batch, up
to 4096; the kernel moves a reported level-triggered knote to the tail of
its queue, so a small batch starves nobody.  The factory option
``max_events`` (``backend_options={"max_events": N}``) fixes it at ``N``; a
poll that hands changes over still asks for one more slot per change (above),
so only that poll may return more.

**Wakeup.**  The self-pipe of :class:`hookloop.poller.PollerBase`, watched
with ``EVFILT_READ`` like any fd.  ``EVFILT_USER`` would save the pipe, but
CPython's ``select`` module does not export it, and ``signal.set_wakeup_fd``
needs an fd anyway.

**Processes** (:meth:`KqueuePoller.watch_process`, the poller contract's
optional :data:`~hookloop.poller.PROCESS_WATCHING` capability, declared in
:attr:`KqueuePoller.capabilities`).  ``EVFILT_PROC`` with
``NOTE_EXIT`` reports a pid's exit without ``SIGCHLD`` or a thread, which is
what a subprocess service wants.  A pid is no fd, so it cannot go through
the core's fd table; instead the poller keeps the callback per pid, queues
exited pids, and reports its own waker fd as readable: the core then calls
:meth:`KqueuePoller.drain_wakeup`, which runs the queued callbacks.  So exit
callbacks run from the loop's I/O dispatch, like plugins' fd callbacks, and
a failing one is reported by the core and leaves the others queued for the
next iteration.

**fork.**  "The queue is not inherited by a child created with fork(2)": in
a child the fd is useless.  The core refuses to use a loop in a forked child.

**EINTR** is retried by CPython with the remaining timeout (PEP 475).
"""
from __future__ import annotations

import errno
import select
from collections import deque
from collections.abc import Callable
from typing import Any

from hookloop import BackendUnavailableError
from hookloop.poller import (
    MAX_TIMEOUT,
    PROCESS_WATCHING,
    READ,
    WRITE,
    PollerBase,
    check_fd,
    check_max_events,
)

__all__ = ["KqueuePoller", "kqueue_unavailable"]

_BOTH = READ | WRITE
_MIN_MAXEVENTS = 64
_MAX_MAXEVENTS = 4096


def kqueue_unavailable() -> str | None:
    """``None`` where ``select.kqueue`` exists, else why the backend cannot work.

    Asked when the backend is offered (at assembly), not at import time.
    """
    if hasattr(select, "kqueue"):
        return None
    return "select.kqueue is missing: kqueue exists on macOS and the BSDs only"


class KqueuePoller(PollerBase):
    """A poller over ``select.kqueue``; see the module docstring."""

    name = "kqueue"
    READABLE = READ
    WRITABLE = WRITE
    #: ``EVFILT_PROC``: :meth:`watch_process` and :meth:`unwatch_process`.
    capabilities = frozenset({PROCESS_WATCHING})

    def __init__(self, *, max_events: int | None = None) -> None:
        """:param max_events: The most events one ``poll()`` asks the kernel
            for, besides one slot per change it hands over (the
            ``backend_options`` option of that name): a fixed batch size, or
            ``None`` for the adaptive one (see **maxevents** above)."""
        reason = kqueue_unavailable()
        if reason is not None:
            raise BackendUnavailableError(f"the kqueue backend cannot work here: {reason}")
        fixed = check_max_events(max_events, self.name)
        kq = select.kqueue()
        try:
            super().__init__()
        except BaseException:
            kq.close()  # no fd leaks, even under EMFILE
            raise
        self._kqueue = kq
        self._control = kq.control
        self._kevent = select.kevent
        self._read = select.KQ_FILTER_READ
        self._write = select.KQ_FILTER_WRITE
        self._proc = select.KQ_FILTER_PROC
        self._add = select.KQ_EV_ADD
        self._delete = select.KQ_EV_DELETE
        self._error = select.KQ_EV_ERROR
        self._oneshot = select.KQ_EV_ONESHOT
        self._note_exit = select.KQ_NOTE_EXIT
        self._filter_bits = {self._read: READ, self._write: WRITE}
        self._interest: dict[int, int] = {}
        self._changes: dict[tuple[int, int], Any] = {}
        self._maxevents = _MIN_MAXEVENTS if fixed is None else fixed
        self._max_maxevents = _MAX_MAXEVENTS if fixed is None else fixed
        self._exit_callbacks: dict[int, Callable[[int], object]] = {}
        self._exited: deque[int] = deque()
        self._change_errors = 0

    # -- the contract --------------------------------------------------------

    def register(self, fd: int, events: int) -> None:
        """Start watching ``fd`` for ``events`` (a mask of READ and WRITE).

        The fd is checked at once (negative → ``ValueError``, closed →
        ``OSError(EBADF)``, nothing registered); the knotes are added with
        the next ``poll()``.  An fd already registered gets its mask
        replaced; every wanted filter is added again, which the kernel treats
        as a modification, so a number reused by a new file is watched too.
        """
        _check_events(fd, events)
        check_fd(fd)
        old = self._interest.get(fd, 0)
        self._queue(fd, events, old & ~events)
        self._interest[fd] = events
        self._registered = len(self._interest)

    def modify(self, fd: int, events: int) -> None:
        """Change the mask of a registered fd (``FileNotFoundError`` if it is not)."""
        old = self._interest.get(fd)
        if old is None:
            raise FileNotFoundError(errno.ENOENT, f"fd {fd} is not registered")
        _check_events(fd, events)
        self._queue(fd, events & ~old, old & ~events)
        self._interest[fd] = events

    def unregister(self, fd: int) -> None:
        """Stop watching ``fd``; never raises (see the module docstring)."""
        old = self._interest.pop(fd, 0)
        if old:
            self._registered = len(self._interest)
            self._queue(fd, 0, old)

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        """Send the pending changes, wait at most ``timeout`` seconds, return
        ``(fd, READ)``, ``(fd, WRITE)`` or ``(fd, READ|WRITE)`` pairs."""
        self._polls += 1
        if self._exited:
            timeout = 0  # exits are waiting to be delivered
        elif timeout is not None:
            timeout = min(max(timeout, 0), MAX_TIMEOUT)
        maxevents = self._maxevents
        ready: list[tuple[int, int]] = []
        if self._changes:
            sent, self._changes = self._changes, {}
            events = self._control(list(sent.values()), maxevents + len(sent), timeout)
            if self._translate(events, ready, sent):
                # Only the errors came back (see the module docstring): ask
                # again for the readiness the kernel did not look at.
                wait = 0 if ready or self._exited else timeout
                events = self._control(None, maxevents, wait)
                self._translate(events, ready, None)
        else:
            events = self._control(None, maxevents, timeout)
            self._translate(events, ready, None)
        if len(events) >= maxevents and maxevents < self._max_maxevents:
            self._maxevents = maxevents * 2
        if self._exited:
            ready.append((self.waker_fd, READ))
        return ready

    def drain_wakeup(self) -> None:
        """Empty the self-pipe, then run the exit callbacks of exited processes."""
        super().drain_wakeup()
        exited = self._exited
        while exited:
            pid = exited.popleft()
            callback = self._exit_callbacks.pop(pid, None)
            if callback is not None:
                callback(pid)  # if it raises, the rest wait for the next poll

    def statistics(self) -> dict[str, Any]:
        stats = super().statistics()
        stats["maxevents"] = self._maxevents
        stats["pending_changes"] = len(self._changes)
        stats["change_errors"] = self._change_errors
        stats["watched_processes"] = len(self._exit_callbacks)
        return stats

    def close(self) -> None:
        """Close the kqueue and the self-pipe; idempotent."""
        self._kqueue.close()
        self._interest.clear()
        self._changes.clear()
        self._exit_callbacks.clear()
        self._exited.clear()
        self._registered = 0
        self._close_waker()

    # -- processes (the optional PROCESS_WATCHING capability) -----------------

    def watch_process(self, pid: int, callback: Callable[[int], object]) -> None:
        """Call ``callback(pid)`` from the loop once process ``pid`` has exited.

        For the subprocess service: ``EVFILT_PROC``/``NOTE_EXIT``, no
        ``SIGCHLD``, no thread.  The callback runs once, from the loop's I/O
        dispatch (inside :meth:`drain_wakeup`); it must reap the child itself
        (``os.waitpid(pid, os.WNOHANG)``), since the kernel only reports the
        exit.  A pid that no longer exists when the watch reaches the kernel
        (``ESRCH``: exited and reaped already) is delivered as an exit as
        well, so the callback may find nothing to reap.  Watching a pid again
        replaces its callback.  Loop thread only, like ``register``.
        """
        self._exit_callbacks[pid] = callback
        self._changes[(pid, self._proc)] = self._kevent(
            pid, self._proc, self._add | self._oneshot, self._note_exit)

    def unwatch_process(self, pid: int) -> None:
        """Forget ``pid``: its callback will not be called.  Unknown pids are ignored."""
        if self._exit_callbacks.pop(pid, None) is None:
            return
        # The knote may be gone already (reported exit): ENOENT is ignored.
        self._changes[(pid, self._proc)] = self._kevent(pid, self._proc, self._delete)

    # -- internals -----------------------------------------------------------

    def _queue(self, fd: int, add: int, delete: int) -> None:
        changes, kev = self._changes, self._kevent
        if add & READ:
            changes[(fd, self._read)] = kev(fd, self._read, self._add)
        elif delete & READ:
            changes[(fd, self._read)] = kev(fd, self._read, self._delete)
        if add & WRITE:
            changes[(fd, self._write)] = kev(fd, self._write, self._add)
        elif delete & WRITE:
            changes[(fd, self._write)] = kev(fd, self._write, self._delete)

    def _translate(self, events: list[Any], ready: list[tuple[int, int]],
                   sent: dict[tuple[int, int], Any] | None) -> bool:
        """Append the ``(fd, bits)`` of ``events`` to ``ready``; True if any was an error."""
        append = ready.append
        filter_bits = self._filter_bits
        error = self._error
        errors = False
        for kev in events:
            if kev.flags & error:
                errors = True
                self._failed_change(kev, sent, append)
                continue
            bits = filter_bits.get(kev.filter)
            if bits is not None:
                append((kev.ident, bits))
            elif kev.filter == self._proc:  # NOTE_EXIT
                self._exited.append(kev.ident)
        return errors

    def _failed_change(self, kev: Any, sent: dict[tuple[int, int], Any] | None,
                       append: Callable[[tuple[int, int]], None]) -> None:
        self._change_errors += 1
        change = sent.get((kev.ident, kev.filter)) if sent is not None else None
        if change is None or change.flags & self._delete:
            # ENOENT/EBADF, the only documented errors of a delete: the knote
            # is gone already, which is what we wanted.
            return
        if kev.filter == self._proc:
            self._exited.append(kev.ident)  # ESRCH: the process is gone already
        else:
            append((kev.ident, _BOTH))


def _check_events(fd: int, events: int) -> None:
    if events < 0 or events & ~_BOTH:
        raise ValueError(f"invalid events mask {events!r} for fd {fd}")
