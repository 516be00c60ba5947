"""The ``uring`` poller: readiness through Linux's io_uring.

It owns one io_uring instance (made through PyPI's ``liburing`` binding), a
table of the interest of every fd registered in it, and a ``select.poll``
object watching the ring's own fd.  Every registered fd has one poll request
(``IORING_OP_POLL_ADD``) in the ring; readiness arrives as completion queue
entries (CQEs), one per event, read straight from the shared memory ring
without a system call.

What it must never do: block inside the binding (see **The GIL** below),
call a hook, or do per-event work beyond turning one CQE into one
``(fd, events)`` pair and arming the fd again.  It uses only hookloop's public names
(:mod:`hookloop.poller`, :class:`hookloop.BackendUnavailableError`), as any
third-party backend would.

Some facts about io_uring, and what we do about them
----------------------------------------------------

**One-shot poll requests, re-armed: level-triggered.**  An asyncio reader
stays registered while it reads, and must be called again every iteration
while data is waiting (a transport reads at most its buffer's size per
call; an ``add_reader`` callback may read one byte).  A multishot poll
request (``IORING_POLL_ADD_MULTI``, 5.13) does not do that: it posts a CQE
when the file's wait queue is woken -- new data arrived -- and never again
for data still unread, so a reader that leaves some behind would sleep
forever (the contract kit's level-triggered test fails on it).  So every
fd has one *one-shot* ``IORING_OP_POLL_ADD`` request; when its CQE is read,
the request is over and we arm it again at once.  The arm checks the
file's state, so a file still ready completes during the next submit,
without waiting; a regular file (no wait queue) completes at every arm and
is "always ready", as with ``poll(2)``.  The price is one SQE per event,
all of an iteration's re-arms going to the kernel in one submit.

**Interest changes are batched.**  ``register`` and ``modify`` only write
submission queue entries (SQEs) into the shared ring; ``poll()`` submits all
of them with one ``io_uring_enter``, or none when nothing changed.  A
``modify`` is a remove of the old request plus an arm of a new one (two
SQEs, one submit); ``IORING_OP_POLL_UPDATE`` would be one SQE, but it fails
when the old request has just ended, and the change would be lost.  When
the submission queue is full (more changes in one iteration than the ring
has entries), it is submitted at once and filling goes on: nothing is lost.

**Except unregister, which is submitted at once.**  An armed poll request
holds a reference to the *file*, so an fd closed while its request is armed
does not close the file: a socket would send no FIN, and its peer would wait,
until the request goes.  Owners unregister right before they close, so
``unregister`` submits its remove immediately: one system call, as epoll's
``EPOLL_CTL_DEL`` is.  (For an fd closed behind our back without an
unregister, the file stays open until the poller closes; the contract
forbids that order anyway.)

**The GIL.**  The ``liburing`` binding holds the GIL while it waits in
``io_uring_enter``: a loop blocked there would stop every other Python
thread -- the default executor, ``getaddrinfo``, any thread calling
``call_soon_threadsafe``.  So we never wait in the ring.  ``poll()``
submits without waiting, reads the CQEs that are there, and only when there
are none and the timeout is not zero does it block, in ``poll(2)`` on the
ring's fd (CPython releases the GIL there, retries ``EINTR`` with the
remaining time, and rounds milliseconds up).  The ring's fd is readable
whenever its completion queue is not empty.  A ``poll(0)`` with nothing
ready costs no system call at all.

**Task work.**  The kernel posts a poll request's CQE from "task work" run
in our own process.  By default it interrupts the process to run it (as a
signal would), which made every ``send`` of a busy server slower:
``streams_echo`` ran at 0.63x epoll that way, 0.94x with
``IORING_SETUP_COOP_TASKRUN``, which runs the work the next time the process
enters the kernel or returns from an interrupt instead.  A process blocked
in ``poll(2)`` is still woken at once.  With ``IORING_SETUP_TASKRUN_FLAG``
the kernel also flags pending work in the ring, and ``poll()`` always calls
``io_uring_submit``, which enters the kernel when that flag (or a queued
SQE) says so and is free otherwise: a loop that never blocks sees its I/O
every iteration.  ``IORING_SETUP_DEFER_TASKRUN`` would be cheaper still, but
needs ``SINGLE_ISSUER``: only the thread that made the ring could submit,
and an asyncio loop may be made in one thread and run in another.

**The wakeup** is :class:`hookloop.poller.PollerBase`'s self-pipe, whose read
end the core registers like any reader: it is watched by a poll request in
the ring like every other fd.  (An eventfd would not do:
``signal.set_wakeup_fd`` writes single bytes, which an eventfd refuses.)

**Errors.**  A poll request that fails (its CQE has a negative result, e.g.
``EBADF`` for an fd closed between ``register`` and the submit) is reported
once as ``POLLNVAL``, in both masks, as ``poll(2)`` reports a closed fd, and
is not armed again: the owner's next system call tells it what happened.
``register`` checks the fd with ``fstat`` first, so a closed fd raises
``OSError`` and registers nothing.  Ring setup failing (``ENOMEM``,
``EPERM`` under a seccomp or container policy, ``ENOSYS`` on old kernels)
raises :class:`hookloop.BackendUnavailableError` with the errno's text.

**fork.**  The ring's memory is a shared mapping: a child writing SQEs would
write into the parent's ring.  The core refuses every watch in a forked
child, so the child only ever closes the poller, which unmaps its own copy.
"""
from __future__ import annotations

import errno
import math
import platform
import select
from typing import Any

from hookloop import BackendUnavailableError
from hookloop.poller import READ, WRITE, PollerBase, check_fd

__all__ = ["BINDING_UNAVAILABLE", "DEFAULT_ENTRIES", "MAX_ENTRIES", "UringPoller",
           "check_entries", "missing_cpu_features"]

#: The x86-64 instruction set extensions the ``liburing`` wheel (2026.3.30,
#: built by Zig for a newer CPU than the baseline) executes without checking
#: for them: AVX-512 F/BW/VL (``zmm`` stores in ``Ring()``, masked byte
#: compares), AVX, BMI2 (``shlx``, ``mulx``) and ``movbe``, found by
#: disassembling its ``liburing.so``.  On a CPU without one of them the
#: binding dies of ``SIGILL``, which no ``except`` catches, so it is not even
#: imported there.
X86_FEATURES_THE_WHEEL_USES = ("avx", "avx512bw", "avx512f", "avx512vl", "bmi2", "movbe")


def missing_cpu_features(cpuinfo: str | None = None) -> list[str]:
    """The features of :data:`X86_FEATURES_THE_WHEEL_USES` this CPU lacks.

    ``cpuinfo`` is the text of ``/proc/cpuinfo`` (read when ``None``).  Empty
    off x86-64, and when the flags cannot be read (nothing to go by).
    """
    if platform.machine() not in ("x86_64", "AMD64"):
        return []
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:
            return []
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "flags":
            flags = set(value.split())
            return [f for f in X86_FEATURES_THE_WHEEL_USES if f not in flags]
    return []


#: ``None`` where the binding is imported, else why it is not.
BINDING_UNAVAILABLE: str | None = None
_missing = missing_cpu_features()
liburing: Any = None  # the binding's module, once imported
if _missing:
    BINDING_UNAVAILABLE = (
        f"the liburing wheel uses instructions this CPU lacks ({', '.join(_missing)}): "
        "importing it would kill the process (SIGILL)")
else:
    try:
        import liburing as _binding
    except ImportError as exc:
        BINDING_UNAVAILABLE = (f"the liburing package does not import ({exc}): "
                               "pip install liburing")
    else:
        liburing = _binding

#: Submission queue size by default (the completion queue gets twice as many).
DEFAULT_ENTRIES = 1024
#: The most entries the kernel gives a ring (``IORING_MAX_ENTRIES``).
MAX_ENTRIES = 32768

_POLLIN = select.POLLIN
_POLLOUT = select.POLLOUT
_POLLNVAL = select.POLLNVAL
_HANGUP = select.POLLERR | select.POLLHUP | _POLLNVAL
_READABLE = _POLLIN | select.POLLPRI | select.POLLRDHUP | _HANGUP
_WRITABLE = _POLLOUT | _HANGUP

# The core's interest masks (READ=1, WRITE=2) translated to poll(2)'s bits.
_POLL_MASKS = (0, _POLLIN, _POLLOUT, _POLLIN | _POLLOUT)

# Errors of a submit that mean "try again later"; the SQEs stay queued.
_SUBMIT_LATER = (errno.EAGAIN, errno.EBUSY, errno.EINTR)

#: io_uring_setup flags, best first: every SQE of a submit even if one fails
#: (5.18); completions posted without interrupting the process (5.19, see
#: **Task work** above) and flagged so that the next submit posts them.
_SETUP_FLAGS = (
    (liburing.IORING_SETUP_SUBMIT_ALL | liburing.IORING_SETUP_COOP_TASKRUN
     | liburing.IORING_SETUP_TASKRUN_FLAG) if liburing is not None else 0,
    liburing.IORING_SETUP_SUBMIT_ALL if liburing is not None else 0,
    0,
)


def check_entries(entries: int, backend: str = "uring") -> int:
    """Validate the ``entries`` factory option (submission queue size).

    An ``int`` from 1 to :data:`MAX_ENTRIES`; anything else raises
    ``TypeError`` or ``ValueError`` naming the option and the backend.
    """
    if not isinstance(entries, int) or isinstance(entries, bool):
        raise TypeError(f"the {backend!r} backend's entries option must be an int, "
                        f"not {type(entries).__name__}")
    if not 1 <= entries <= MAX_ENTRIES:
        raise ValueError(f"the {backend!r} backend's entries option must be from 1 to "
                         f"{MAX_ENTRIES}, got {entries}")
    return entries


def open_ring(entries: int) -> Any:
    """A new ``liburing.Ring`` with ``entries`` submission entries.

    Raises :class:`BackendUnavailableError` naming the errno when the kernel
    refuses (``ENOMEM``, ``EPERM``, ``ENOSYS``, ``EMFILE`` ...), chained to
    the ``OSError``.  The set-up flags of :data:`_SETUP_FLAGS` are asked
    for, best first, and dropped where the kernel does not know them.
    """
    if BINDING_UNAVAILABLE is not None:
        raise BackendUnavailableError(f"the uring backend cannot work here: {BINDING_UNAVAILABLE}")
    ring = liburing.Ring()
    for flags in _SETUP_FLAGS:
        try:
            liburing.io_uring_queue_init(entries, ring, flags)
        except OSError as exc:
            if exc.errno == errno.EINVAL and flags:
                continue
            raise BackendUnavailableError(
                f"the uring backend cannot work here: io_uring_setup failed: "
                f"[Errno {exc.errno}] {exc.strerror}") from exc
        return ring
    raise AssertionError("unreachable: the last set-up flags are 0")  # pragma: no cover


class UringPoller(PollerBase):
    """A poller over io_uring poll requests; see the module docstring."""

    name = "uring"
    READABLE = _READABLE
    WRITABLE = _WRITABLE

    def __init__(self, *, entries: int = DEFAULT_ENTRIES) -> None:
        """:param entries: The submission queue's size (the ``backend_options``
            option of that name; the completion queue is twice as big):
            how many interest changes one iteration batches before it
            submits early."""
        check_entries(entries)
        ring = open_ring(entries)
        try:
            super().__init__()
        except BaseException:
            liburing.io_uring_queue_exit(ring)  # no fd leaks, even under EMFILE
            raise
        self._ring: Any = ring
        self._cqe = liburing.Cqe()
        waiter = select.poll()
        waiter.register(ring.ring_fd, _POLLIN)
        self._wait = waiter.poll
        #: token -> (fd, poll(2) mask), for every live registration.
        self._tokens: dict[int, tuple[int, int]] = {}
        #: fd -> (token of its armed request or 0, interest mask of the core).
        self._interest: dict[int, tuple[int, int]] = {}
        self._next_token = 1  # 0 is the user_data of control requests
        self._queued = False  # SQEs written since the last submit
        self._submits = 0
        self._waits = 0
        self._entries = entries

    # -- the contract --------------------------------------------------------

    def register(self, fd: int, events: int) -> None:
        """Start watching ``fd`` for ``events`` (a mask of READ and WRITE).

        A closed fd raises ``OSError(EBADF)`` and a negative one
        ``ValueError``, with nothing registered.  An fd already registered
        gets its mask replaced.  The request is submitted by the next
        ``poll()``.
        """
        mask = _translate(fd, events)
        check_fd(fd)
        if fd in self._interest:
            self._replace(fd, mask, events)
            return
        self._arm(fd, mask, events)
        self._registered = len(self._interest)

    def modify(self, fd: int, events: int) -> None:
        """Change the mask of a registered fd (``FileNotFoundError`` if it is not)."""
        mask = _translate(fd, events)
        if fd not in self._interest:
            raise FileNotFoundError(errno.ENOENT, f"fd {fd} is not registered")
        self._replace(fd, mask, events)

    def unregister(self, fd: int) -> None:
        """Stop watching ``fd``; its request is removed at once (see the module
        docstring); never raises for an fd closed behind our back."""
        entry = self._interest.pop(fd, None)
        if entry is None:
            return
        self._registered = len(self._interest)
        token = entry[0]
        if token:
            del self._tokens[token]
            self._remove(token)
            self._submit()

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        """Submit the queued changes, then return the ``(fd, poll bits)`` of the
        CQEs there are, waiting at most ``timeout`` seconds for one."""
        self._polls += 1
        ring = self._ring
        if ring is None:
            raise ValueError("I/O operation on closed uring poller")
        self._submit()  # no system call when nothing is queued or flagged
        if not liburing.io_uring_cq_ready(ring):
            if timeout is not None and timeout <= 0:
                return []
            self._waits += 1
            self._wait(-1 if timeout is None else math.ceil(timeout * 1000))
        return self._reap()

    def statistics(self) -> dict[str, Any]:
        stats = super().statistics()
        stats["entries"] = self._entries
        stats["submits"] = self._submits
        stats["waits"] = self._waits
        return stats

    def close(self) -> None:
        """Close the ring (which cancels every request) and the self-pipe; idempotent."""
        ring, self._ring = self._ring, None
        if ring is not None:
            liburing.io_uring_queue_exit(ring)
            self._tokens.clear()
            self._interest.clear()
            self._registered = 0
            self._close_waker()

    # -- requests ------------------------------------------------------------

    def _sqe(self) -> Any:
        """A free SQE; when the queue is full, submit it and take one then."""
        ring = self._ring
        if ring is None:
            raise ValueError("I/O operation on closed uring poller")
        sqe = liburing.io_uring_get_sqe(ring)
        while sqe is None:
            self._submit()
            sqe = liburing.io_uring_get_sqe(ring)
        self._queued = True
        return sqe

    def _arm(self, fd: int, mask: int, events: int) -> None:
        token = self._next_token
        sqe = self._sqe()  # first: it raises on a closed poller
        liburing.io_uring_prep_poll_add(sqe, fd, mask)
        liburing.io_uring_sqe_set_data64(sqe, token)
        self._next_token = token + 1
        self._tokens[token] = (fd, mask)
        self._interest[fd] = (token, events)

    def _remove(self, token: int) -> None:
        sqe = self._sqe()
        liburing.io_uring_prep_poll_remove(sqe, token)
        liburing.io_uring_sqe_set_data64(sqe, 0)
        sqe.flags = liburing.IOSQE_CQE_SKIP_SUCCESS

    def _replace(self, fd: int, mask: int, events: int) -> None:
        token = self._interest[fd][0]
        if token:
            del self._tokens[token]
            self._remove(token)
        self._arm(fd, mask, events)

    def _submit(self) -> None:
        """Hand every queued SQE to the kernel, and let it post the completions
        it has flagged (``IORING_SQ_TASKRUN``): one ``io_uring_enter``, or
        none when there is neither (liburing reads both from the ring).

        If the kernel asks us to come back later (it has completions to
        post first), the SQEs stay in the ring and go with the next submit.
        """
        if self._queued:
            self._submits += 1
        try:
            liburing.io_uring_submit(self._ring)
        except OSError as exc:
            if exc.errno not in _SUBMIT_LATER:
                raise
            return
        self._queued = False

    def _reap(self) -> list[tuple[int, int]]:
        """Turn the CQEs that are there into ``(fd, poll bits)`` pairs, and arm
        each reported fd again (the one per-event path: kept inline)."""
        ring, cqe, tokens = self._ring, self._cqe, self._tokens
        get_sqe, prep, set_data = _get_sqe, _prep_poll_add, _set_data64
        events: list[tuple[int, int]] = []
        seen = 0
        for _ in _CqeIter(ring, cqe):
            seen += 1
            entry = cqe[0]
            token = entry.user_data
            armed = tokens.get(token)
            if armed is None:  # a control request, or a request we removed
                continue
            fd, mask = armed
            try:
                bits = entry.res
            except OSError:  # the request failed: report it once, as poll(2) would
                del tokens[token]
                self._interest[fd] = (0, self._interest[fd][1])
                events.append((fd, _POLLNVAL))
                continue
            events.append((fd, bits))
            sqe = get_sqe(ring) or self._sqe()
            prep(sqe, fd, mask)
            set_data(sqe, token)
        if seen:
            _cq_advance(ring, seen)
        if events:
            self._queued = True  # the re-arms (a failed request's one aside)
        return events


if liburing is not None:
    _CqeIter = liburing.CqeIter
    _get_sqe = liburing.io_uring_get_sqe
    _prep_poll_add = liburing.io_uring_prep_poll_add
    _set_data64 = liburing.io_uring_sqe_set_data64
    _cq_advance = liburing.io_uring_cq_advance


def _translate(fd: int, events: int) -> int:
    if isinstance(events, int) and READ <= events <= READ | WRITE:
        return _POLL_MASKS[events]
    raise ValueError(f"invalid events mask {events!r} for fd {fd}")
