"""The kqueue emulation's own tests: the kqueue(2) rules it claims to copy.

Each test states one rule of the FreeBSD manual page (or, where marked, of
the kernel's source) and checks it.  They are written against ``select``'s
API only, so on a BSD or macOS, where the emulation does not import, they
run against the real kernel instead and show whether the emulation's rules
hold there; the few tests about what the emulation refuses to emulate are
skipped then.
"""
from __future__ import annotations

import errno
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

try:
    import kqueue_emulation as K
    EMULATED = True
except ImportError:  # pragma: no cover - a BSD: check the real kernel
    K = select  # type: ignore[assignment]
    EMULATED = False

if not hasattr(K, "kqueue"):  # pragma: no cover
    pytest.skip("neither kqueue nor its emulation here", allow_module_level=True)

emulation_only = pytest.mark.skipif(not EMULATED, reason="about the emulation itself")

READ, WRITE, PROC = K.KQ_FILTER_READ, K.KQ_FILTER_WRITE, K.KQ_FILTER_PROC
ADD, DELETE = K.KQ_EV_ADD, K.KQ_EV_DELETE


Pair = tuple[socket.socket, socket.socket]


@pytest.fixture
def kq() -> Iterator[Any]:
    q = K.kqueue()
    try:
        yield q
    finally:
        q.close()


def ev(ident: Any, filt: int = READ, flags: int = ADD, fflags: int = 0) -> Any:
    return K.kevent(ident, filt, flags, fflags)


def events(kq: Any, changes: list[Any] | None = None, n: int = 16,
           timeout: float = 0) -> list[tuple[int, int, int, int]]:
    """``control()`` once, as ``(ident, filter, flags, data)`` tuples."""
    return [(e.ident, e.filter, e.flags, e.data) for e in kq.control(changes, n, timeout)]


def fill(sock: socket.socket) -> None:
    try:
        while True:
            sock.send(b"\0" * 65536)
    except BlockingIOError:
        pass


# -- constants and the kevent type --------------------------------------------

@emulation_only
def test_constants_have_the_bsd_values() -> None:
    assert (K.KQ_FILTER_READ, K.KQ_FILTER_WRITE, K.KQ_FILTER_PROC) == (-1, -2, -5)
    assert (K.KQ_EV_ADD, K.KQ_EV_DELETE, K.KQ_EV_ENABLE, K.KQ_EV_DISABLE) == (1, 2, 4, 8)
    assert (K.KQ_EV_ONESHOT, K.KQ_EV_CLEAR, K.KQ_EV_ERROR, K.KQ_EV_EOF) == (
        0x10, 0x20, 0x4000, 0x8000)
    assert K.KQ_NOTE_EXIT == 0x80000000


def test_kevent_fields_defaults_and_equality(hookloop_socketpair: Pair) -> None:
    a, _ = hookloop_socketpair
    e = K.kevent(a)  # an object with fileno()
    assert (e.ident, e.filter, e.flags, e.fflags, e.data) == (a.fileno(), READ, ADD, 0, 0)
    assert e == K.kevent(a.fileno(), READ, ADD)
    assert e != K.kevent(a.fileno(), WRITE, ADD)
    with pytest.raises(TypeError):
        hash(e)
    with pytest.raises(OverflowError):
        K.kevent(-1)


# -- EV_ADD, level triggering, data --------------------------------------------

def test_read_filter_reports_bytes_available_while_they_last(
        kq: Any, hookloop_socketpair: Pair) -> None:
    """EVFILT_READ: "data contains the number of bytes ... available to read"."""
    a, b = hookloop_socketpair
    fd = a.fileno()
    assert events(kq, [ev(fd)]) == []
    b.send(b"hello")
    assert events(kq, timeout=5) == [(fd, READ, 0, 5)]
    assert events(kq) == [(fd, READ, 0, 5)], "level-triggered: reported while unread"
    a.recv(2)
    assert events(kq) == [(fd, READ, 0, 3)]
    a.recv(3)
    assert events(kq) == []


def test_write_filter_reports_space_and_stops_when_full(
        kq: Any, hookloop_socketpair: Pair) -> None:
    """EVFILT_WRITE: "returns whenever it is possible to write"; data is the space left."""
    a, _ = hookloop_socketpair
    fd = a.fileno()
    ((ident, filt, flags, space),) = events(kq, [ev(fd, WRITE)])
    assert (ident, filt, flags) == (fd, WRITE, 0) and space > 0
    fill(a)
    assert events(kq) == []


def test_filters_of_one_fd_are_separate_knotes(kq: Any, hookloop_socketpair: Pair
                                               ) -> None:
    """ "A kevent is identified by the (ident, filter) pair"."""
    a, b = hookloop_socketpair
    fd = a.fileno()
    b.send(b"x")
    got = events(kq, [ev(fd, READ), ev(fd, WRITE)])
    assert sorted((i, f) for i, f, _, _ in got) == [(fd, WRITE), (fd, READ)]
    events(kq, [ev(fd, WRITE, DELETE)])
    assert [(i, f) for i, f, _, _ in events(kq)] == [(fd, READ)]


def test_re_adding_modifies_and_does_not_duplicate(kq: Any, hookloop_socketpair: Pair
                                                   ) -> None:
    """EV_ADD: "Re-adding an existing event will modify the parameters of the
    original event, and not result in a duplicate entry."  (source: the
    EV_ONESHOT of the first add stays.)"""
    a, b = hookloop_socketpair
    fd = a.fileno()
    b.send(b"x")
    kq.control([K.kevent(fd, READ, ADD | K.KQ_EV_ONESHOT, udata=1)], 0)
    got = kq.control([K.kevent(fd, READ, ADD, udata=2)], 16, 0)
    assert [(e.ident, e.udata) for e in got] == [(fd, 2)]
    assert got[0].flags & K.KQ_EV_ONESHOT
    assert events(kq) == [], "still one-shot, and reported once"


def test_level_knotes_take_turns_when_the_eventlist_is_short(kq: Any) -> None:
    """source: a reported level knote goes back to the tail of the queue."""
    pairs = [socket.socketpair() for _ in range(3)]
    try:
        kq.control([ev(a.fileno(), WRITE) for a, _ in pairs], 0)
        seen = [events(kq, n=1)[0][0] for _ in range(3)]
        assert sorted(seen) == sorted(a.fileno() for a, _ in pairs)
    finally:
        for a, b in pairs:
            a.close()
            b.close()


# -- EV_DELETE and errors --------------------------------------------------------

def test_delete_stops_events(kq: Any, hookloop_socketpair: Pair) -> None:
    a, b = hookloop_socketpair
    b.send(b"x")
    assert events(kq, [ev(a.fileno())])
    assert events(kq, [ev(a.fileno(), READ, DELETE)]) == []


def test_delete_of_unknown_event_is_enoent_in_the_eventlist(
        kq: Any, hookloop_socketpair: Pair) -> None:
    """ "ENOENT The event could not be found to be modified or deleted", placed
    in the eventlist with EV_ERROR set in flags and the system error in data."""
    fd = hookloop_socketpair[0].fileno()
    (e,) = kq.control([K.kevent(fd, READ, DELETE, udata=9)], 4, 0)
    assert (e.ident, e.filter, e.flags, e.data, e.udata) == (
        fd, READ, K.KQ_EV_ERROR, errno.ENOENT, 9)


def test_closed_descriptor_is_ebadf(kq: Any) -> None:
    """ "EBADF The specified descriptor is invalid." """
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    assert events(kq, [ev(r)]) == [(r, READ, K.KQ_EV_ERROR, errno.EBADF)]


def test_without_room_the_call_fails_and_stops_at_the_bad_change(
        kq: Any, hookloop_socketpair: Pair) -> None:
    """ "Otherwise, -1 will be returned, and errno will be set": with no room
    in the eventlist the error is raised, and later changes are not applied."""
    a, b = hookloop_socketpair
    b.send(b"x")
    with pytest.raises(FileNotFoundError):
        kq.control([ev(a.fileno(), READ, DELETE), ev(a.fileno())], 0)
    assert events(kq) == [], "the add after the failing delete was not applied"


def test_errors_come_back_alone(kq: Any, hookloop_socketpair: Pair) -> None:
    """source: when a change failed, kevent() returns the errors only, at once,
    without looking for ready events."""
    a, b = hookloop_socketpair
    b.send(b"x")
    fd = a.fileno()
    got = events(kq, [ev(fd), ev(b.fileno(), READ, DELETE)], timeout=5)
    assert got == [(b.fileno(), READ, K.KQ_EV_ERROR, errno.ENOENT)]
    assert events(kq) == [(fd, READ, 0, 1)], "the add before the error was applied"


def test_invalid_filter_is_einval(kq: Any, hookloop_socketpair: Pair) -> None:
    """ "EINVAL The specified time limit or filter is invalid." """
    assert events(kq, [ev(hookloop_socketpair[0].fileno(), -100)]) == [
        (hookloop_socketpair[0].fileno(), -100, K.KQ_EV_ERROR, errno.EINVAL)]


# -- EV_ONESHOT, EV_CLEAR, EV_ENABLE/EV_DISABLE ------------------------------------

def test_oneshot_reports_once_then_is_deleted(kq: Any, hookloop_socketpair: Pair
                                              ) -> None:
    """EV_ONESHOT: "return only the first occurrence ... After the user retrieves
    the event from the kqueue, it is deleted." """
    a, b = hookloop_socketpair
    fd = a.fileno()
    b.send(b"x")
    assert events(kq, [ev(fd, READ, ADD | K.KQ_EV_ONESHOT)]) == [
        (fd, READ, K.KQ_EV_ONESHOT, 1)]
    assert events(kq) == []
    assert events(kq, [ev(fd, READ, DELETE)])[0][3] == errno.ENOENT


def test_clear_reports_transitions_not_state(kq: Any, hookloop_socketpair: Pair
                                             ) -> None:
    """EV_CLEAR: "After the event is retrieved by the user, its state is reset.
    This is useful for filters which report state transitions"."""
    a, b = hookloop_socketpair
    fd = a.fileno()
    b.send(b"ab")
    # The preexisting condition is found at registration.
    assert events(kq, [ev(fd, READ, ADD | K.KQ_EV_CLEAR)]) == [(fd, READ, K.KQ_EV_CLEAR, 2)]
    assert events(kq) == [], "unread data is no new transition"
    b.send(b"c")
    assert events(kq, timeout=5) == [(fd, READ, K.KQ_EV_CLEAR, 3)]
    assert events(kq) == []


def test_disable_hides_and_enable_shows(kq: Any, hookloop_socketpair: Pair) -> None:
    """EV_DISABLE: "Disable the event so kevent() will not return it";
    EV_ENABLE: "Permit kevent() to return the event if it is triggered"."""
    a, b = hookloop_socketpair
    fd = a.fileno()
    b.send(b"x")
    assert events(kq, [ev(fd, READ, ADD | K.KQ_EV_DISABLE)]) == [], \
        "EV_ADD enables unless overridden by EV_DISABLE"
    assert events(kq, [ev(fd, READ, K.KQ_EV_ENABLE)]) == [(fd, READ, 0, 1)]
    assert events(kq, [ev(fd, READ, K.KQ_EV_DISABLE)]) == []
    assert events(kq, [ev(fd, READ, K.KQ_EV_ENABLE | K.KQ_EV_DISABLE)]) == [(fd, READ, 0, 1)]


def test_a_disabled_filter_still_records_its_trigger(kq: Any, hookloop_socketpair: Pair
                                                     ) -> None:
    """EV_DISABLE: "The filter itself is not disabled": an EV_CLEAR event
    triggered while disabled is returned once enabled."""
    a, b = hookloop_socketpair
    fd = a.fileno()
    events(kq, [ev(fd, READ, ADD | K.KQ_EV_CLEAR | K.KQ_EV_DISABLE)])
    b.send(b"x")
    assert events(kq) == []
    assert events(kq, [ev(fd, READ, K.KQ_EV_ENABLE)]) == [(fd, READ, K.KQ_EV_CLEAR, 1)]


# -- EV_EOF ----------------------------------------------------------------------

def test_socket_eof_with_data_still_pending(kq: Any, hookloop_socketpair: Pair) -> None:
    """ "If the read direction of the socket has shutdown, then the filter also
    sets EV_EOF"; "It is possible for EOF to be returned ... while there is
    still data pending in the socket buffer."  "The filter will set EV_EOF
    when the reader disconnects" (EVFILT_WRITE)."""
    a, b = hookloop_socketpair
    fd = a.fileno()
    b.send(b"bye")
    b.close()
    got = {f: (fl, d) for _, f, fl, d in events(kq, [ev(fd), ev(fd, WRITE)], timeout=5)}
    assert got[READ] == (K.KQ_EV_EOF, 3)
    assert got[WRITE][0] & K.KQ_EV_EOF


def test_pipe_eof_both_ways(kq: Any) -> None:
    """Pipes: "When the last writer disconnects, the filter will set EV_EOF";
    EVFILT_WRITE "will set EV_EOF when the reader disconnects"."""
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    try:
        os.close(w1)
        os.close(r2)
        got = {(i, f): (fl, d) for i, f, fl, d in events(kq, [ev(r1), ev(w2, WRITE)])}
        assert set(got) == {(r1, READ), (w2, WRITE)}
        assert got[(r1, READ)] == (K.KQ_EV_EOF, 0)
        assert got[(w2, WRITE)][0] == K.KQ_EV_EOF
    finally:
        os.close(r1)
        os.close(w2)


# -- close() ---------------------------------------------------------------------

def test_close_removes_the_kevents_of_the_descriptor(kq: Any, hookloop_socketpair: Pair
                                                     ) -> None:
    """ "Calling close() on a file descriptor will remove any kevents that
    reference the descriptor" -- even while a dup() keeps the file open."""
    a, b = hookloop_socketpair
    fd = a.fileno()
    dup = os.dup(fd)
    try:
        events(kq, [ev(fd)])
        kq_fd = kq.fileno()
        a.close()
        b.send(b"x")  # the file is readable through `dup`
        assert events(kq) == []
        assert kq.fileno() == kq_fd
        assert events(kq, [ev(fd, READ, DELETE)]) == [(fd, READ, K.KQ_EV_ERROR, errno.EBADF)]
        os.dup2(dup, fd)  # the number names the file again, under a new descriptor
        assert events(kq, [ev(fd, READ, DELETE)]) == [
            (fd, READ, K.KQ_EV_ERROR, errno.ENOENT)]
    finally:
        os.close(dup)
        try:
            os.close(fd)
        except OSError:
            pass


# -- vnodes ----------------------------------------------------------------------

def test_regular_file_read_until_end_and_no_write_filter(kq: Any, tmp_path: Path) -> None:
    """Vnodes: "Returns when the file pointer is not at the end of file.  data
    contains the offset from current position to end of file"; EVFILT_WRITE:
    "Note that this filter is not supported for vnodes"."""
    path = tmp_path / "f"
    path.write_bytes(b"12345")
    with open(path, "rb", buffering=0) as f:
        fd = f.fileno()
        assert events(kq, [ev(fd)]) == [(fd, READ, 0, 5)]
        f.read(2)
        assert events(kq) == [(fd, READ, 0, 3)]
        f.read()
        assert events(kq) == []
        if EMULATED:  # FreeBSD's code accepts it nowadays, against its manual
            assert events(kq, [ev(fd, WRITE)]) == [(fd, WRITE, K.KQ_EV_ERROR, errno.EINVAL)]


# -- EVFILT_PROC -------------------------------------------------------------------

def test_proc_note_exit_reports_the_status_once(kq: Any) -> None:
    """NOTE_EXIT: "The process has exited.  The exit status will be stored in
    data."  (source: the knote then goes, EV_EOF | EV_ONESHOT.)"""
    child = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    try:
        got = kq.control([ev(child.pid, PROC, ADD, K.KQ_NOTE_EXIT)], 4, 30)
        assert [(e.ident, e.filter, e.fflags, e.data) for e in got] == [
            (child.pid, PROC, K.KQ_NOTE_EXIT, 3 << 8)]
        assert got[0].flags & K.KQ_EV_EOF
        assert events(kq) == []
    finally:
        assert child.wait(30) == 3


def test_proc_of_a_missing_process_is_esrch(kq: Any) -> None:
    """ "ESRCH The specified process to attach to does not exist." """
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(30)  # reaped: the pid names nothing now
    assert events(kq, [ev(child.pid, PROC, ADD, K.KQ_NOTE_EXIT)]) == [
        (child.pid, PROC, K.KQ_EV_ERROR, errno.ESRCH)]


# -- control() itself --------------------------------------------------------------

def test_zero_nevents_returns_at_once(kq: Any, hookloop_socketpair: Pair) -> None:
    """ "When nevents is zero, kevent() will return immediately even if there is
    a timeout specified"."""
    start = time.monotonic()
    assert kq.control([ev(hookloop_socketpair[0].fileno())], 0, 30) == []
    assert time.monotonic() - start < 10


def test_timeout_expires_with_nothing(kq: Any, hookloop_socketpair: Pair) -> None:
    """ "If the time limit expires, then kevent() returns 0." """
    start = time.monotonic()
    assert events(kq, [ev(hookloop_socketpair[0].fileno())], timeout=0.05) == []
    assert time.monotonic() - start >= 0.05


def test_blocking_control_returns_when_an_event_comes(kq: Any,
                                                     hookloop_socketpair: Pair) -> None:
    a, b = hookloop_socketpair
    kq.control([ev(a.fileno())], 0)
    result: list[Any] = []
    waiter = threading.Thread(target=lambda: result.extend(kq.control(None, 1, None)))
    waiter.start()
    b.send(b"x")
    waiter.join(30)
    assert not waiter.is_alive()
    assert [(e.ident, e.data) for e in result] == [(a.fileno(), 1)]


def test_argument_errors_and_close(kq: Any) -> None:
    with pytest.raises(ValueError):
        kq.control(None, -1)
    with pytest.raises(ValueError):
        kq.control(None, 1, -1)
    with pytest.raises(TypeError):
        kq.control([1], 1, 0)
    assert kq.fileno() >= 0 and not kq.closed
    kq.close()
    kq.close()
    assert kq.closed
    with pytest.raises(ValueError):
        kq.control(None, 1, 0)


@emulation_only
def test_unemulated_filters_say_so(kq: Any, hookloop_socketpair: Pair) -> None:
    with pytest.raises(NotImplementedError):
        kq.control([ev(hookloop_socketpair[0].fileno(), K.KQ_FILTER_TIMER)], 1, 0)
    with pytest.raises(NotImplementedError):
        kq.control([ev(os.getpid(), PROC, ADD, K.KQ_NOTE_FORK)], 1, 0)


@emulation_only
def test_install_refuses_to_shadow_and_undoes() -> None:
    import types
    fake = types.ModuleType("fake_select")
    undo = K.install(fake)
    assert fake.kqueue is K.kqueue and fake.KQ_EV_EOF == 0x8000
    with pytest.raises(RuntimeError):
        K.install(fake)
    undo()
    assert not hasattr(fake, "kqueue") and not hasattr(fake, "KQ_EV_EOF")
