"""An emulation of BSD ``select.kqueue``/``select.kevent`` over Linux epoll, for tests only.

Why it exists
-------------
hookloop-kqueue is for macOS and the BSDs, and no such machine is at hand.
So that its code runs in every test session anyway, :func:`install` puts this
module's :class:`kqueue`, :class:`kevent` and ``KQ_*`` constants into the
``select`` module of a Linux Python, where they are missing; the backend,
which looks ``select.kqueue`` up when a poller is built, then runs unchanged
on top of it.  The repository's root ``conftest.py`` installs it for the test
session (and ``emulated_site/sitecustomize.py`` for the Python processes the
tests start).  It lives under ``tests/`` and is never shipped.

What it copies, and from where
------------------------------
The rules are those of the FreeBSD kqueue(2) manual page for the parts
hookloop uses; each rule below carries the sentence it copies (quoted as
"man: ...").  Where the manual is silent and the emulation follows the
kernel's source (``sys/kern/kern_event.c``), the comment says "source: ...".
The constants have the values of FreeBSD's ``<sys/event.h>`` (macOS uses the
same ones for everything here), so ``flags``/``fflags`` arithmetic in the
backend is tested against the real numbers.

How it works
------------
Each knote (one registration, keyed by ``(ident, filter)``) lives in a dict
in this process.  Readiness comes from two epoll instances: a level-triggered
one for ordinary knotes and an edge-triggered one (nested in the first, so a
single ``epoll_wait`` sleeps on both) for ``EV_CLEAR`` knotes.  ``control()``
applies the changes in order, then scans: it asks epoll what is ready without
blocking, turns that into kevents by the filter rules below, and only sleeps
in epoll when nothing is.  ``EVFILT_PROC`` with ``NOTE_EXIT`` is a pidfd
(``os.pidfd_open``) in the level-triggered epoll.  Regular files and
directories, which epoll refuses, are "vnode" knotes evaluated in software.

What it cannot prove (the plugin's README repeats this)
-------------------------------------------------------
* It is not a kernel.  Races between the kernel's knote activation and a
  concurrent ``close()`` or ``fork()``, memory limits (``ENOMEM``), and the
  timing of real wakeups are not reproduced.
* "close() removes the kevents of a descriptor" is detected when
  ``control()`` next runs, by ``fstat``-ing every watched descriptor and
  comparing ``(st_dev, st_ino)``; a descriptor closed and re-opened on the
  *same* file between two calls is not noticed.
* ``data`` is what Linux tells: ``FIONREAD`` for readable bytes (for a UDP
  socket that is the next datagram's size, where FreeBSD gives the whole
  buffer), 0 for a listening socket (Linux cannot tell the backlog length),
  ``SO_SNDBUF - SIOCOUTQ`` or pipe size minus content for write space (an
  approximation).  ``fflags`` never carries a socket error (reading
  ``SO_ERROR`` would clear it).
* ``EVFILT_PROC`` knows ``NOTE_EXIT`` only, and only through pidfds (Linux
  5.3+); ``NOTE_FORK``/``NOTE_EXEC``/``NOTE_TRACK`` raise
  ``NotImplementedError``, as do the filters it does not emulate at all
  (AIO, VNODE, SIGNAL, TIMER).  A vnode knote does not wake a sleeping
  ``control()`` when its file grows.
* ``kqueue.fromfd`` is missing: an emulated queue has no kernel object to
  adopt.
"""
from __future__ import annotations

import array
import errno
import fcntl
import os
import select
import socket
import stat
import sys
import termios
import time
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

if not sys.platform.startswith("linux"):  # pragma: no cover
    raise ImportError("the kqueue emulation runs on Linux (it is built on epoll)")

# -- FreeBSD <sys/event.h> ---------------------------------------------------

KQ_FILTER_READ = -1
KQ_FILTER_WRITE = -2
KQ_FILTER_AIO = -3
KQ_FILTER_VNODE = -4
KQ_FILTER_PROC = -5
KQ_FILTER_SIGNAL = -6
KQ_FILTER_TIMER = -7

KQ_EV_ADD = 0x0001
KQ_EV_DELETE = 0x0002
KQ_EV_ENABLE = 0x0004
KQ_EV_DISABLE = 0x0008
KQ_EV_ONESHOT = 0x0010
KQ_EV_CLEAR = 0x0020
KQ_EV_SYSFLAGS = 0xF000
KQ_EV_FLAG1 = 0x2000
KQ_EV_ERROR = 0x4000
KQ_EV_EOF = 0x8000

KQ_NOTE_LOWAT = 0x0001
KQ_NOTE_DELETE = 0x0001
KQ_NOTE_WRITE = 0x0002
KQ_NOTE_EXTEND = 0x0004
KQ_NOTE_ATTRIB = 0x0008
KQ_NOTE_LINK = 0x0010
KQ_NOTE_RENAME = 0x0020
KQ_NOTE_REVOKE = 0x0040
KQ_NOTE_EXIT = 0x80000000
KQ_NOTE_FORK = 0x40000000
KQ_NOTE_EXEC = 0x20000000
KQ_NOTE_PCTRLMASK = 0xF0000000
KQ_NOTE_PDATAMASK = 0x000FFFFF
KQ_NOTE_TRACK = 0x00000001
KQ_NOTE_TRACKERR = 0x00000002
KQ_NOTE_CHILD = 0x00000004

#: Every name CPython's ``select`` module has on a BSD, with our values.
CONSTANTS: dict[str, int] = {
    name: value for name, value in globals().items() if name.startswith("KQ_")
}

_NOT_EMULATED_FILTERS = {KQ_FILTER_AIO, KQ_FILTER_VNODE, KQ_FILTER_SIGNAL, KQ_FILTER_TIMER}
# Flags a knote keeps and reports back; the action flags are not kept.
# source: kqueue_register() stores ``flags & ~(EV_ADD|EV_DELETE|EV_ENABLE|EV_DISABLE)``.
_ACTIONS = KQ_EV_ADD | KQ_EV_DELETE | KQ_EV_ENABLE | KQ_EV_DISABLE
# man: the kernel's 24-hour limit (BUGS: "The timeout value is limited to 24
# hours; longer timeouts will be silently reinterpreted as 24 hours.").
_MAX_TIMEOUT = 24 * 3600.0
_SIOCOUTQ = 0x5411  # Linux: bytes not yet sent, for write space
_HIGH_FD = 512  # where the emulation's own extra fds go

_EPOLL_READ = select.EPOLLIN | select.EPOLLRDHUP
_EPOLL_WRITE = select.EPOLLOUT
_EPOLL_BITS = {KQ_FILTER_READ: _EPOLL_READ, KQ_FILTER_WRITE: _EPOLL_WRITE,
               KQ_FILTER_PROC: select.EPOLLIN}


class kevent:  # noqa: N801 - the name select.kevent has
    """``select.kevent``: one change or one event; the fields of ``struct kevent``."""

    __slots__ = ("ident", "filter", "flags", "fflags", "data", "udata")
    __hash__ = None  # type: ignore[assignment]  # CPython's kevent is unhashable too

    def __init__(self, ident: Any, filter: int = KQ_FILTER_READ, flags: int = KQ_EV_ADD,
                 fflags: int = 0, data: int = 0, udata: int = 0) -> None:
        if isinstance(ident, int):
            if ident < 0:  # ident is a uintptr_t; CPython converts with PyLong_AsSize_t
                raise OverflowError("can't convert negative int to unsigned")
        else:
            ident = ident.fileno()
        self.ident = ident
        self.filter = filter
        self.flags = flags
        self.fflags = fflags
        self.data = data
        self.udata = udata

    def _fields(self) -> tuple[int, ...]:
        return (self.ident, self.filter, self.flags, self.fflags, self.data, self.udata)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, kevent):
            return NotImplemented
        return self._fields() == other._fields()

    def __repr__(self) -> str:
        ident, filt, flags, fflags, data, udata = self._fields()
        return (f"<select.kevent ident={ident} filter={filt} flags={flags:#x} "
                f"fflags={fflags:#x} data={data:#x} udata={udata!r}>")


class _Knote:
    """One registration.  ``efd`` is the fd epoll watches for it (the ident, or a pidfd)."""

    __slots__ = ("ident", "filter", "flags", "fflags", "udata", "enabled", "identity",
                 "kind", "efd", "edge", "edge_events")

    def __init__(self, kev: kevent, efd: int, identity: tuple[int, int] | None,
                 kind: str) -> None:
        self.ident = kev.ident
        self.filter = kev.filter
        self.flags = kev.flags & ~_ACTIONS & ~KQ_EV_SYSFLAGS
        self.fflags = kev.fflags
        self.udata = kev.udata
        # man (EV_ADD): "Adding an event automatically enables it, unless
        # overridden by the EV_DISABLE flag."
        self.enabled = True
        self.identity = identity
        self.kind = kind  # "socket", "fifo", "vnode", "other" or "proc"
        self.efd = efd
        self.edge = False  # EV_CLEAR: triggered since last retrieved
        self.edge_events = 0


class kqueue:  # noqa: N801 - the name select.kqueue has
    """``select.kqueue`` emulated over epoll; see the module docstring."""

    def __init__(self) -> None:
        self._level = select.epoll()  # the one fd kqueue() itself opens
        try:
            self._edge = _epoll_out_of_the_way()
        except BaseException:
            self._level.close()
            raise
        self._level.register(self._edge.fileno(), select.EPOLLIN)
        self._knotes: dict[tuple[int, int], _Knote] = {}
        self._on_efd: dict[int, list[tuple[int, int]]] = {}
        self._level_masks: dict[int, int] = {}
        self._edge_masks: dict[int, int] = {}
        self._closed = False

    # -- the select.kqueue API -------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def fileno(self) -> int:
        self._check_open()
        return self._level.fileno()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for knote in self._knotes.values():
            if knote.kind == "proc":
                os.close(knote.efd)
        self._knotes.clear()
        self._edge.close()
        self._level.close()

    def control(self, changelist: Iterable[kevent] | None, maxevents: int,
                timeout: float | None = None) -> list[kevent]:
        """Apply ``changelist`` in order, then return up to ``maxevents`` events."""
        self._check_open()
        if maxevents < 0:
            raise ValueError(f"Length of eventlist must be 0 or positive, got {maxevents}")
        if timeout is not None and timeout < 0:
            raise ValueError("timeout must be positive or None")
        changes = list(changelist) if changelist is not None else []
        if not all(isinstance(kev, kevent) for kev in changes):
            raise TypeError("changelist must be an iterable of select.kevent objects")
        self._forget_closed_descriptors()
        # man: "All changes contained in the changelist are applied before
        # any pending events are read from the queue."
        errors: list[kevent] = []
        for kev in changes:
            error = self._apply(kev)
            if not error:
                continue
            # man (RETURN VALUES): "If an error occurs while processing an
            # element of the changelist and there is enough room in the
            # eventlist, then the event will be placed in the eventlist with
            # EV_ERROR set in flags and the system error in data.  Otherwise,
            # -1 will be returned, and errno will be set" -- the changes
            # after the failing one are then not applied.
            if len(errors) < maxevents:
                errors.append(kevent(kev.ident, kev.filter, KQ_EV_ERROR, kev.fflags, error,
                                     kev.udata))
            else:
                raise OSError(error, os.strerror(error))
        if errors:
            # source: kern_kevent_fp() returns at once with only the error
            # events when any change failed (``if (nerrors) goto done``),
            # without scanning for ready events.  macOS does the same.
            return errors
        if maxevents == 0:
            # man: "When nevents is zero, kevent() will return immediately
            # even if there is a timeout specified unlike select(2)."
            return []
        deadline = None
        if timeout is not None:
            deadline = time.monotonic() + min(timeout, _MAX_TIMEOUT)
        while True:
            ready = self._scan(maxevents)
            if ready:
                return ready
            if deadline is None:
                wait = -1.0
            else:
                wait = deadline - time.monotonic()
                if wait <= 0:
                    # man: "If the time limit expires, then kevent() returns 0."
                    return []
            self._level.poll(wait, 1)

    # -- changes ---------------------------------------------------------------

    def _apply(self, kev: kevent) -> int:
        """Apply one change; return 0 or the errno it fails with."""
        filt, flags, key = kev.filter, kev.flags, (kev.ident, kev.filter)
        if filt == 0:
            return 0  # source: kern_kevent_fp() skips an entry whose filter is 0
        if filt in _NOT_EMULATED_FILTERS:
            raise NotImplementedError(f"the kqueue emulation has no filter {filt}")
        if filt not in _EPOLL_BITS:
            # man (ERRORS): "EINVAL The specified time limit or filter is invalid."
            return errno.EINVAL
        st = None
        if filt != KQ_FILTER_PROC:
            try:
                st = os.fstat(kev.ident)
            except OSError:
                # man (ERRORS): "EBADF The specified descriptor is invalid."
                return errno.EBADF
        knote = self._knotes.get(key)
        if knote is None:
            if not flags & KQ_EV_ADD:
                # man (ERRORS): "ENOENT The event could not be found to be
                # modified or deleted."
                return errno.ENOENT
            created = self._attach(kev, st)
            if isinstance(created, int):
                return created
            knote = self._knotes[key] = created
            self._on_efd.setdefault(knote.efd, []).append(key)
        elif flags & KQ_EV_DELETE:
            # man (EV_DELETE): "Removes the event from the kqueue."
            self._drop(key)
            return 0
        else:
            # man (EV_ADD): "Re-adding an existing event will modify the
            # parameters of the original event, and not result in a duplicate
            # entry."  source: only fflags/data/udata change; the ONESHOT and
            # CLEAR flags of the first EV_ADD stay.
            knote.fflags = kev.fflags
            knote.udata = kev.udata
        # source: EV_DISABLE is applied before EV_ENABLE.
        if flags & KQ_EV_DISABLE:
            # man (EV_DISABLE): "Disable the event so kevent() will not return
            # it.  The filter itself is not disabled."
            knote.enabled = False
        if flags & KQ_EV_ENABLE:
            # man (EV_ENABLE): "Permit kevent() to return the event if it is
            # triggered."
            knote.enabled = True
        # man: "The filter is executed upon the initial registration of a
        # kevent in order to detect whether a preexisting condition is
        # present" -- and again on a re-add (source: done_ev_add), which is
        # why the edge-triggered registration is re-armed here.
        self._sync(knote.efd, rearm=bool(flags & KQ_EV_ADD))
        return 0

    def _attach(self, kev: kevent, st: os.stat_result | None) -> _Knote | int:
        if kev.filter == KQ_FILTER_PROC:
            if kev.fflags & ~KQ_NOTE_EXIT & KQ_NOTE_PCTRLMASK or kev.fflags & KQ_NOTE_TRACK:
                raise NotImplementedError("the kqueue emulation knows NOTE_EXIT only")
            try:
                pidfd = _out_of_the_way(os.pidfd_open(kev.ident))
            except (OSError, OverflowError):
                # man (ERRORS): "ESRCH The specified process to attach to does
                # not exist."
                return errno.ESRCH
            return _Knote(kev, pidfd, None, "proc")
        assert st is not None
        mode = st.st_mode
        if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
            if kev.filter == KQ_FILTER_WRITE:
                # man (EVFILT_WRITE): "Note that this filter is not supported
                # for vnodes or BPF devices."
                return errno.EINVAL
            kind = "vnode"
        elif stat.S_ISSOCK(mode):
            kind = "socket"
        elif stat.S_ISFIFO(mode):
            kind = "fifo"
        else:
            kind = "other"
        return _Knote(kev, kev.ident, (st.st_dev, st.st_ino), kind)

    def _drop(self, key: tuple[int, int]) -> None:
        knote = self._knotes.pop(key)
        keys = self._on_efd[knote.efd]
        keys.remove(key)
        if not keys:
            del self._on_efd[knote.efd]
        self._sync(knote.efd)
        if knote.kind == "proc":
            os.close(knote.efd)

    def _sync(self, efd: int, rearm: bool = False) -> None:
        """Make both epoll registrations of ``efd`` match its knotes."""
        level = edge = 0
        for key in self._on_efd.get(efd, ()):
            knote = self._knotes[key]
            if knote.kind == "vnode":
                continue  # epoll refuses them; evaluated in _scan
            if knote.flags & KQ_EV_CLEAR:
                # Kept while disabled, so a trigger meanwhile is remembered.
                edge |= _EPOLL_BITS[knote.filter]
            elif knote.enabled:
                # A disabled level knote must not make epoll_wait return.
                level |= _EPOLL_BITS[knote.filter]
        _set_mask(self._level, self._level_masks, efd, level, False)
        _set_mask(self._edge, self._edge_masks, efd, edge | select.EPOLLET if edge else 0,
                  rearm)

    # -- close() behind our back -------------------------------------------------

    def _forget_closed_descriptors(self) -> None:
        # man: "Calling close() on a file descriptor will remove any kevents
        # that reference the descriptor."  Detected here, not at close time:
        # a descriptor that no longer exists, or now names another file.
        gone: set[int] = set()
        checked: set[int] = set()
        for knote in self._knotes.values():
            fd = knote.ident
            if knote.identity is None or fd in checked:
                continue
            checked.add(fd)
            try:
                st = os.fstat(fd)
            except OSError:
                gone.add(fd)
                continue
            if (st.st_dev, st.st_ino) != knote.identity:
                gone.add(fd)
        if not gone:
            return
        for key in [k for k, kn in self._knotes.items()
                    if kn.identity is not None and kn.ident in gone]:
            knote = self._knotes.pop(key)
            self._on_efd[knote.efd].remove(key)
            if not self._on_efd[knote.efd]:
                del self._on_efd[knote.efd]
        self._rebuild()

    def _rebuild(self) -> None:
        # epoll keeps an entry whose fd was closed while a dup() of it lives
        # on, and it can no longer be removed; fresh instances drop it.  The
        # fresh level instance takes the old one's number (dup2), so the
        # queue's fileno() stays what it was, as a kqueue's does.
        fresh = select.epoll()
        os.dup2(fresh.fileno(), self._level.fileno(), inheritable=False)
        fresh.close()
        old_edge, self._edge = self._edge, _epoll_out_of_the_way()
        old_edge.close()
        self._level.register(self._edge.fileno(), select.EPOLLIN)
        self._level_masks.clear()
        self._edge_masks.clear()
        for efd in self._on_efd:
            self._sync(efd)

    # -- the scan ----------------------------------------------------------------

    def _scan(self, maxevents: int) -> list[kevent]:
        self._forget_closed_descriptors()
        level = dict(self._level.poll(0, len(self._level_masks) + 1))
        if level.pop(self._edge.fileno(), 0):
            for efd, events in self._edge.poll(0, len(self._edge_masks) + 1):
                for key in self._on_efd.get(efd, ()):
                    knote = self._knotes[key]
                    if knote.flags & KQ_EV_CLEAR:
                        knote.edge = True
                        knote.edge_events |= events
        out: list[kevent] = []
        for key, knote in list(self._knotes.items()):
            if len(out) == maxevents:
                break
            if not knote.enabled:
                continue
            if knote.flags & KQ_EV_CLEAR:
                if not knote.edge:
                    continue
                events = knote.edge_events
            else:
                events = level.get(knote.efd, 0)
            event = self._filter(knote, events)
            if event is None:
                continue
            out.append(event)
            if knote.flags & KQ_EV_ONESHOT:
                # man (EV_ONESHOT): "Causes the event to return only the first
                # occurrence of the filter being triggered.  After the user
                # retrieves the event from the kqueue, it is deleted."
                self._drop(key)
            elif knote.flags & KQ_EV_CLEAR:
                # man (EV_CLEAR): "After the event is retrieved by the user,
                # its state is reset."
                knote.edge = False
                knote.edge_events = 0
            else:
                # man: "The filter is also run when the user attempts to
                # retrieve the kevent from the kqueue.  If the filter indicates
                # that the condition that triggered the event no longer holds,
                # the kevent is removed from the kqueue and is not returned."
                # So a level knote stays queued -- source: at the tail
                # (TAILQ_INSERT_TAIL in kqueue_scan), so a full eventlist does
                # not starve the others.
                del self._knotes[key]
                self._knotes[key] = knote
        return out

    def _filter(self, knote: _Knote, events: int) -> kevent | None:
        """What the knote's filter reports for these epoll ``events``, if anything."""
        flags, fflags, data = knote.flags, 0, 0
        if knote.kind == "vnode":
            # man (EVFILT_READ, Vnodes): "Returns when the file pointer is not
            # at the end of file.  data contains the offset from current
            # position to end of file, and may be negative."
            try:
                data = os.fstat(knote.ident).st_size - os.lseek(knote.ident, 0, os.SEEK_CUR)
            except OSError:
                return None
            if data == 0:
                return None
        elif knote.filter == KQ_FILTER_READ:
            if not events & (_EPOLL_READ | select.EPOLLHUP | select.EPOLLERR):
                return None
            # man (EVFILT_READ, Sockets): "data contains the number of bytes
            # of protocol data available to read"; (Fifos, Pipes): "data
            # contains the number of bytes available."
            data = _readable_bytes(knote.ident)
            if events & (select.EPOLLRDHUP | select.EPOLLHUP):
                # man: "If the read direction of the socket has shutdown, then
                # the filter also sets EV_EOF in flags"; (Pipes): "When the
                # last writer disconnects, the filter will set EV_EOF in
                # flags."  "It is possible for EOF to be returned (indicating
                # the connection is gone) while there is still data pending in
                # the socket buffer."
                flags |= KQ_EV_EOF
        elif knote.filter == KQ_FILTER_WRITE:
            if not events & (_EPOLL_WRITE | select.EPOLLHUP | select.EPOLLERR):
                return None
            # man (EVFILT_WRITE): "For sockets, pipes and fifos, data will
            # contain the amount of space remaining in the write buffer."
            data = _write_space(knote.ident, knote.kind)
            if events & (select.EPOLLHUP | select.EPOLLERR):
                # man: "The filter will set EV_EOF when the reader disconnects"
                flags |= KQ_EV_EOF
        else:  # KQ_FILTER_PROC
            if not events & select.EPOLLIN:
                return None
            # man (NOTE_EXIT): "The process has exited.  The exit status will
            # be stored in data."  On return, "fflags contains the events
            # which triggered the filter."  source: filt_proc() also sets
            # EV_EOF | EV_ONESHOT, so the knote goes once it is reported.
            fflags = KQ_NOTE_EXIT & knote.fflags
            data = _exit_status(knote.efd)
            flags |= KQ_EV_EOF | KQ_EV_ONESHOT
            knote.flags |= KQ_EV_ONESHOT
        return kevent(knote.ident, knote.filter, flags, fflags, data, knote.udata)

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("I/O operation on closed kqueue object")

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"knotes={len(self._knotes)}"
        return f"<emulated select.kqueue {state}>"


def _out_of_the_way(fd: int) -> int:
    """Move an fd the emulation opens to a high number (kevent() opens none, so
    it must not take the lowest free number a test expects to stay free)."""
    try:
        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _HIGH_FD)
    except OSError:
        return fd  # a low limit on open files: keep the number we have
    os.close(fd)
    return high


def _epoll_out_of_the_way() -> select.epoll:
    ep = select.epoll()
    fd = _out_of_the_way(os.dup(ep.fileno()))
    ep.close()
    return select.epoll.fromfd(fd)


def _set_mask(ep: select.epoll, masks: dict[int, int], fd: int, mask: int,
              rearm: bool) -> None:
    old = masks.get(fd, 0)
    if old == mask and not (rearm and mask):
        return
    if not mask:
        del masks[fd]
        try:
            ep.unregister(fd)
        except OSError:
            pass  # closed meanwhile: the rebuild takes care of it
    elif not old:
        ep.register(fd, mask)
        masks[fd] = mask
    else:
        ep.modify(fd, mask)  # also re-arms an edge-triggered entry
        masks[fd] = mask


def _readable_bytes(fd: int) -> int:
    buf = array.array("i", [0])
    try:
        fcntl.ioctl(fd, termios.FIONREAD, buf, True)
    except OSError:
        return 0  # a listening socket: Linux cannot tell the backlog length
    return buf[0]


def _write_space(fd: int, kind: str) -> int:
    queued = array.array("i", [0])
    try:
        if kind == "fifo":
            fcntl.ioctl(fd, termios.FIONREAD, queued, True)
            return max(fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ) - queued[0], 0)
        if kind == "socket":
            fcntl.ioctl(fd, _SIOCOUTQ, queued, True)
            sock = socket.socket(fileno=fd)
            try:
                size = sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
            finally:
                sock.detach()
            return max(size - queued[0], 0)
    except OSError:
        pass
    return 0


def _exit_status(pidfd: int) -> int:
    """The wait(2) status of the exited process, without reaping it (0 if unknown)."""
    try:
        info = os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except (OSError, AttributeError):
        return 0  # not our child: we may watch it, but not read its status
    if info is None:
        return 0
    if info.si_code == os.CLD_EXITED:
        return (info.si_status & 0xFF) << 8
    if info.si_code == os.CLD_DUMPED:
        return info.si_status | 0x80
    return info.si_status


def install(module: ModuleType = select) -> Callable[[], None]:
    """Put the emulation into ``module`` (``select``); return the undo function.

    Refuses to shadow a real kqueue.
    """
    if hasattr(module, "kqueue"):
        raise RuntimeError(f"{module.__name__} has a real kqueue; not emulating it")
    names: dict[str, Any] = {"kqueue": kqueue, "kevent": kevent, **CONSTANTS}
    for name, value in names.items():
        setattr(module, name, value)

    def uninstall() -> None:
        for name in names:
            delattr(module, name)

    return uninstall
