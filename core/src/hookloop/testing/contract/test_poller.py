"""Contract tests for pollers: every installed backend must pass all of them.

Each test takes ``hookloop_backend`` (a backend name, parametrized by the
hookloop pytest plugin) and builds its poller the way the loop does, with
``hookloop.get_backend(name).factory()``.  There is no event loop here: the
tests drive the poller with sockets and pipes and check what ``poll()``
returns against the poller's native :attr:`~hookloop.poller.Poller.READABLE`
and :attr:`~hookloop.poller.Poller.WRITABLE` masks.

Readiness of a socket pair or a pipe is synchronous on every system we know
of (the peer's ``send`` has returned, so the data is there), but tests that
expect an event still poll with a timeout (:func:`wait_for`) so a backend on
a slower kernel path is not failed for it; tests that expect *no* event use
``poll(0)``.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import hookloop
from hookloop.poller import CAPABILITIES, READ, WRITE, Poller, check_capabilities

#: How long a test waits for an event it expects before failing.
PATIENCE = 10.0


# --------------------------------------------------------------------------
# Helpers and fixtures
# --------------------------------------------------------------------------

def make_poller(backend: str) -> Poller:
    """Build a poller exactly as the loop does."""
    return hookloop.get_backend(backend).factory()


@pytest.fixture
def poller(hookloop_backend: str) -> Iterator[Poller]:
    p = make_poller(hookloop_backend)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def pair(hookloop_socketpair: tuple[socket.socket, socket.socket]
         ) -> tuple[socket.socket, socket.socket]:
    """The testing kit's non-blocking socket pair."""
    return hookloop_socketpair


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    """A non-blocking pipe ``(read_fd, write_fd)``; whatever is still open is closed after."""
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    fds = [r, w]
    try:
        yield r, w
    finally:
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass


def ready(poller: Poller, timeout: float | None = 0) -> dict[int, int]:
    """One ``poll()``, the events of each fd OR-ed together (an fd may repeat)."""
    merged: dict[int, int] = {}
    for fd, events in poller.poll(timeout):
        merged[fd] = merged.get(fd, 0) | events
    return merged


def wait_for(poller: Poller, fd: int, mask: int, timeout: float = PATIENCE) -> int:
    """Poll until ``fd`` shows a bit of ``mask``; return its events then, 0 on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return 0
        events = ready(poller, remaining).get(fd, 0)
        if events & mask:
            return events


def fill_socket(sock: socket.socket) -> None:
    """Send until the kernel refuses: the socket is then not writable."""
    chunk = b"\0" * 65536
    try:
        while True:
            sock.send(chunk)
    except BlockingIOError:
        pass


def fill_pipe(fd: int) -> None:
    chunk = b"\0" * 65536
    try:
        while True:
            os.write(fd, chunk)
    except BlockingIOError:
        pass


def open_fds() -> set[str]:
    for path in ("/proc/self/fd", "/dev/fd"):
        try:
            return set(os.listdir(path))
        except OSError:
            continue
    pytest.skip("cannot list open fds here (no /proc/self/fd nor /dev/fd)")


def closed_fd() -> int:
    """A number that is certainly not an open fd right now."""
    fd = os.open(os.devnull, os.O_RDONLY)
    os.close(fd)
    return fd


def registered(poller: Poller) -> int:
    return int(poller.statistics()["registered_fds"])


# --------------------------------------------------------------------------
# Shape
# --------------------------------------------------------------------------

def test_poller_has_the_contract_shape(hookloop_backend: str, poller: Poller) -> None:
    """The poller implements the Protocol, is named as its backend, has masks."""
    assert isinstance(poller, Poller)
    assert poller.name == hookloop_backend
    assert isinstance(poller.READABLE, int) and poller.READABLE
    assert isinstance(poller.WRITABLE, int) and poller.WRITABLE
    assert poller.waker_fd != poller.wakeup_fd
    os.fstat(poller.waker_fd)
    os.fstat(poller.wakeup_fd)


def test_capabilities_match_methods(poller: Poller) -> None:
    """``capabilities`` is a frozenset, and each optional capability the core
    knows is declared exactly when the poller has its methods (the check the
    loop makes when it is created)."""
    assert isinstance(poller.capabilities, frozenset)
    assert check_capabilities(poller) == poller.capabilities
    for capability, methods in CAPABILITIES.items():
        has = [callable(getattr(poller, m, None)) for m in methods]
        assert all(has) if capability in poller.capabilities else not any(has), capability


def test_statistics(hookloop_backend: str, poller: Poller, pair: tuple[socket.socket, ...]
                    ) -> None:
    """statistics() names the backend and counts registered fds and polls."""
    a, b = pair
    stats = poller.statistics()
    assert stats["backend"] == hookloop_backend
    assert stats["registered_fds"] == 0
    assert stats["polls"] == 0
    poller.register(a.fileno(), READ)
    poller.register(b.fileno(), WRITE)
    assert registered(poller) == 2
    poller.modify(a.fileno(), READ | WRITE)
    assert registered(poller) == 2
    for _ in range(3):
        poller.poll(0)
    assert poller.statistics()["polls"] == 3
    poller.unregister(a.fileno())
    assert registered(poller) == 1
    with pytest.raises(OSError):
        poller.register(closed_fd(), READ)
    assert registered(poller) == 1
    stats = poller.statistics()
    assert (stats["backend"], stats["registered_fds"], stats["polls"]) == (
        hookloop_backend, 1, 3)


# --------------------------------------------------------------------------
# Interest and readiness
# --------------------------------------------------------------------------

def test_register_read(poller: Poller, pair: tuple[socket.socket, ...]) -> None:
    """A READ registration is silent until data arrives, then READABLE only."""
    a, b = pair
    poller.register(a.fileno(), READ)
    assert a.fileno() not in ready(poller)
    b.send(b"x")
    events = wait_for(poller, a.fileno(), poller.READABLE)
    assert events & poller.READABLE
    assert not events & poller.WRITABLE, "only READ was registered"
    # Level-triggered: still reported while the data is unread.
    assert ready(poller).get(a.fileno(), 0) & poller.READABLE
    a.recv(1)
    assert a.fileno() not in ready(poller)


def test_register_write(poller: Poller, pair: tuple[socket.socket, ...]) -> None:
    """A WRITE registration is WRITABLE only, even with data waiting to be read."""
    a, b = pair
    b.send(b"x")
    poller.register(a.fileno(), WRITE)
    events = wait_for(poller, a.fileno(), poller.WRITABLE)
    assert events & poller.WRITABLE
    assert not events & poller.READABLE, "only WRITE was registered"


def test_register_read_and_write(poller: Poller, pair: tuple[socket.socket, ...]) -> None:
    """READ|WRITE with data waiting is reported in both masks."""
    a, b = pair
    poller.register(a.fileno(), READ | WRITE)
    b.send(b"x")
    events = wait_for(poller, a.fileno(), poller.READABLE)
    events |= ready(poller).get(a.fileno(), 0)
    assert events & poller.READABLE and events & poller.WRITABLE


def test_modify(poller: Poller, pair: tuple[socket.socket, ...]) -> None:
    """modify() switches the reported directions both ways."""
    a, b = pair
    fd = a.fileno()
    poller.register(fd, READ)
    assert fd not in ready(poller)
    poller.modify(fd, WRITE)
    events = wait_for(poller, fd, poller.WRITABLE)
    assert events & poller.WRITABLE and not events & poller.READABLE
    poller.modify(fd, READ)
    assert fd not in ready(poller), "WRITE interest was dropped by modify()"
    b.send(b"x")
    events = wait_for(poller, fd, poller.READABLE)
    assert events & poller.READABLE and not events & poller.WRITABLE
    poller.modify(fd, READ | WRITE)
    events = wait_for(poller, fd, poller.WRITABLE) | ready(poller).get(fd, 0)
    assert events & poller.READABLE and events & poller.WRITABLE
    assert registered(poller) == 1


def test_unregister_stops_events(poller: Poller, pair: tuple[socket.socket, ...]) -> None:
    """After unregister() an fd with pending data is never reported again."""
    a, b = pair
    poller.register(a.fileno(), READ | WRITE)
    b.send(b"x")
    assert wait_for(poller, a.fileno(), poller.READABLE)
    poller.unregister(a.fileno())
    assert registered(poller) == 0
    assert a.fileno() not in ready(poller)
    assert a.fileno() not in ready(poller, 0.01)


# --------------------------------------------------------------------------
# The interest rules of hookloop.poller: re-register, unknown fds
# --------------------------------------------------------------------------

def both(poller: Poller, fd: int, mask: int) -> int:
    """Wait for a bit of ``mask`` on ``fd``, then OR in one more ``poll(0)``:
    the directions reported right now (select reports them as two pairs)."""
    return wait_for(poller, fd, mask) | ready(poller).get(fd, 0)


def directions(poller: Poller, events: int) -> int:
    """Native ``events`` as the core's READ/WRITE mask."""
    return (READ if events & poller.READABLE else 0) | (WRITE if events & poller.WRITABLE else 0)


@pytest.mark.parametrize("poll_between", [True, False],
                         ids=["applied", "before-any-poll"])
def test_register_again_replaces_the_mask(poller: Poller, pair: tuple[socket.socket, ...],
                                          poll_between: bool) -> None:
    """Rule: ``register`` of an fd already registered *replaces* its mask.

    The new mask is not OR-ed into the old one (the fd is readable and
    writable all along, so a direction kept by mistake shows), the fd stays
    registered once, and one ``unregister`` removes it.  Both when the first
    registration has reached the kernel (a poll in between) and when it has
    not (kqueue batches changes until the next poll)."""
    a, b = pair
    fd = a.fileno()
    b.send(b"x")  # from now on `a` is readable and writable
    steps = [(READ, "READ"), (WRITE, "WRITE"), (READ | WRITE, "READ|WRITE"), (READ, "READ"),
             (WRITE, "WRITE")]
    for i, (mask, label) in enumerate(steps):
        poller.register(fd, mask)
        assert registered(poller) == 1, f"register({label}) of a registered fd added an entry"
        if not poll_between and i < len(steps) - 1:
            continue  # only the last mask is looked at, all changes in one batch
        got = directions(poller, both(poller, fd, poller.READABLE | poller.WRITABLE))
        assert got == mask, (f"after register({label}) the fd is reported for "
                             f"{got:#x}, not {mask:#x}: the old mask was kept")
    poller.unregister(fd)
    assert registered(poller) == 0
    assert fd not in ready(poller), "one unregister() left part of a re-registered fd"


def test_modify_of_an_unregistered_fd_raises_file_not_found(
        poller: Poller, pair: tuple[socket.socket, ...]) -> None:
    """Rule: ``modify`` of an fd not registered raises ``FileNotFoundError``.

    For an open fd never registered and for one registered then
    unregistered; in neither case does the failed call register anything
    (the fd is readable and writable, so a registration would be reported),
    and the fd can be registered normally afterwards."""
    a, b = pair
    fd = a.fileno()
    b.send(b"x")  # `a` is readable and writable
    for when in ("never registered", "unregistered"):
        with pytest.raises(FileNotFoundError):
            poller.modify(fd, READ | WRITE)
        assert registered(poller) == 0, f"modify() of an fd {when} registered it"
        assert fd not in ready(poller), f"modify() of an fd {when} registered it"
        poller.register(fd, READ)
        events = both(poller, fd, poller.READABLE)
        assert events & poller.READABLE and not events & poller.WRITABLE, \
            f"the failed modify() of an fd {when} left its mask behind"
        assert registered(poller) == 1
        poller.unregister(fd)
        assert fd not in ready(poller)


def test_unregister_of_an_unknown_fd_does_nothing(poller: Poller,
                                                  pair: tuple[socket.socket, ...]) -> None:
    """Rule: ``unregister`` of an unknown fd does nothing.

    No exception, and nothing changes: the statistics are the same before
    and after, the other registrations keep being reported, the fd is not
    reported, and it can be registered normally afterwards.  Unknown means
    an open fd never registered, an fd unregistered already, and a number
    that is no open fd at all."""
    a, b = pair
    witness = b.fileno()
    poller.register(witness, WRITE)
    assert wait_for(poller, witness, poller.WRITABLE)
    fd = a.fileno()
    b.send(b"x")  # `a` is readable and writable: a registration would show

    def unknown(number: int, what: str) -> None:
        before = poller.statistics()
        poller.unregister(number)
        assert poller.statistics() == before, f"unregister() of {what} changed the statistics"
        events = both(poller, witness, poller.WRITABLE)
        assert events & poller.WRITABLE, f"unregister() of {what} dropped another fd"
        assert number not in ready(poller)
        assert registered(poller) == 1

    unknown(fd, "an open fd never registered")
    poller.register(fd, READ)
    assert wait_for(poller, fd, poller.READABLE)
    poller.unregister(fd)
    unknown(fd, "an fd unregistered already")
    unknown(closed_fd(), "a number that is no open fd")
    poller.register(fd, READ)
    events = both(poller, fd, poller.READABLE)
    assert events & poller.READABLE and not events & poller.WRITABLE
    assert registered(poller) == 2


# --------------------------------------------------------------------------
# Regular files
# --------------------------------------------------------------------------

#: poller.py: "A regular file is refused by epoll (PermissionError) and
#: reported always ready by select and poll, as the kernels do."
REGULAR_FILE_RULE = {"epoll": "refused", "select": "always ready", "poll": "always ready"}


@pytest.fixture
def regular_files(tmp_path: Path) -> Iterator[dict[str, int]]:
    """Open regular files (read and write): ``empty`` and ``data`` (3 bytes)."""
    fds: dict[str, int] = {}
    try:
        for name, content in (("empty", b""), ("data", b"abc")):
            path = tmp_path / name
            path.write_bytes(content)
            fds[name] = os.open(path, os.O_RDWR)
        yield fds
    finally:
        for fd in fds.values():
            os.close(fd)


def test_regular_file(hookloop_backend: str, poller: Poller, regular_files: dict[str, int],
                      pair: tuple[socket.socket, ...]) -> None:
    """Rule: a regular file is refused by epoll (``PermissionError``) and
    reported always ready by select and poll.

    epoll: ``register`` raises ``PermissionError`` for every mask and leaves
    nothing registered.  select and poll: ``register`` is accepted and the
    file is reported at once, in exactly the directions registered, whether
    it is empty, has data, or has been read to its end.  A backend the rule
    does not name (kqueue reports a file readable while its offset is not at
    the end) must do one of the two for a file with data registered for
    both directions: refuse it as epoll does, or report it in both masks.
    Either way the poller keeps working for sockets."""
    rule = REGULAR_FILE_RULE.get(hookloop_backend)
    data = regular_files["data"]
    if rule is None:
        try:
            poller.register(data, READ | WRITE)
        except PermissionError:
            rule = "refused"
        else:
            events = both(poller, data, poller.READABLE | poller.WRITABLE)
            assert directions(poller, events) == READ | WRITE, \
                "a regular file with data was accepted, then not reported in both masks"
            poller.unregister(data)
    if rule == "refused":
        for name, fd in regular_files.items():
            for mask in (READ, WRITE, READ | WRITE):
                with pytest.raises(PermissionError):
                    poller.register(fd, mask)
                assert registered(poller) == 0, f"a refused regular file ({name}) was registered"
                assert poller.poll(0) == [], f"a refused regular file ({name}) is reported"
    elif rule == "always ready":
        for name, fd in regular_files.items():
            for mask in (READ, WRITE, READ | WRITE):
                poller.register(fd, mask)
                assert registered(poller) == 1
                got = directions(poller, ready(poller).get(fd, 0))
                assert got == mask, (f"a regular file ({name}) registered for {mask:#x} is "
                                     f"reported for {got:#x} by poll(0)")
                poller.unregister(fd)
                assert fd not in ready(poller)
        # At its end a file is still "ready": read() would return b"" at once.
        os.lseek(data, 0, os.SEEK_END)
        poller.register(data, READ)
        assert directions(poller, ready(poller).get(data, 0)) == READ
        poller.unregister(data)
    assert registered(poller) == 0
    a, b = pair
    poller.register(a.fileno(), READ)
    b.send(b"x")
    assert wait_for(poller, a.fileno(), poller.READABLE), "the poller stopped working"


# --------------------------------------------------------------------------
# Timeouts and wakeups
# --------------------------------------------------------------------------

def test_poll_zero_does_not_block(poller: Poller, pair: tuple[socket.socket, ...]) -> None:
    """poll(0) returns at once, with nothing, when nothing is ready.

    No wall-clock bound tighter than :data:`PATIENCE` (a busy machine may
    deschedule the test for a while); a poll(0) that blocks is woken by
    another thread after that long, and then fails on the event it got."""
    a, _ = pair
    poller.register(a.fileno(), READ)
    poller.register(poller.waker_fd, READ)
    rescue = threading.Timer(PATIENCE, poller.wakeup)
    rescue.start()
    try:
        start = time.monotonic()
        for timeout in (0, 0.0):
            assert poller.poll(timeout) == []
        assert time.monotonic() - start < PATIENCE
    finally:
        rescue.cancel()
        rescue.join()


@pytest.mark.parametrize("timeout", [0.0005, 0.0109, 0.1])
def test_timeout_is_honoured(poller: Poller, pair: tuple[socket.socket, ...],
                             timeout: float) -> None:
    """poll(t) with nothing ready waits at least t (sub-millisecond parts round up)."""
    a, _ = pair
    poller.register(a.fileno(), READ)
    start = time.monotonic()
    result = poller.poll(timeout)
    elapsed = time.monotonic() - start
    assert result == []
    assert elapsed >= timeout, f"poll({timeout}) returned early, after {elapsed:.6f}s"
    assert elapsed < timeout + PATIENCE


def _poll_in_thread(poller: Poller) -> tuple[threading.Thread, threading.Event,
                                             threading.Event, list[list[tuple[int, int]]]]:
    polling = threading.Event()
    done = threading.Event()
    results: list[list[tuple[int, int]]] = []

    def run() -> None:
        polling.set()
        results.append(poller.poll(None))
        done.set()

    thread = threading.Thread(target=run, name="contract-poll", daemon=True)
    thread.start()
    return thread, polling, done, results


def test_poll_none_returns_on_wakeup_from_another_thread(poller: Poller) -> None:
    """poll(None) blocked in one thread returns when another thread calls wakeup()."""
    poller.register(poller.waker_fd, READ)
    thread, polling, done, results = _poll_in_thread(poller)
    assert polling.wait(PATIENCE)
    poller.wakeup()
    assert done.wait(PATIENCE), "poll(None) did not return after wakeup()"
    thread.join(PATIENCE)
    assert any(fd == poller.waker_fd and ev & poller.READABLE for fd, ev in results[0])


def test_wakeup_before_poll_is_not_lost(poller: Poller) -> None:
    """A wakeup() that happens before poll(None) makes that poll return at once."""
    poller.register(poller.waker_fd, READ)
    poller.wakeup()
    thread, _, done, results = _poll_in_thread(poller)
    assert done.wait(PATIENCE), "poll(None) missed a wakeup() made before it"
    thread.join(PATIENCE)
    assert any(fd == poller.waker_fd and ev & poller.READABLE for fd, ev in results[0])


def test_drain_wakeup_empties_the_pipe(poller: Poller) -> None:
    """wakeup() many times (past a full buffer), drain_wakeup(): nothing is left."""
    poller.register(poller.waker_fd, READ)
    poller.drain_wakeup()  # nothing pending: must neither block nor raise
    assert poller.waker_fd not in ready(poller)
    for _ in range(3):
        poller.wakeup()
    assert wait_for(poller, poller.waker_fd, poller.READABLE)
    poller.drain_wakeup()
    assert poller.waker_fd not in ready(poller)
    for _ in range(20_000):  # fills any socket buffer: must not block or raise
        poller.wakeup()
    assert wait_for(poller, poller.waker_fd, poller.READABLE)
    poller.drain_wakeup()
    assert poller.waker_fd not in ready(poller)


# --------------------------------------------------------------------------
# Hang-up and error wake both directions
# --------------------------------------------------------------------------

def test_peer_hangup_is_readable_and_writable(poller: Poller,
                                               pair: tuple[socket.socket, ...]) -> None:
    """A socket whose peer closed shows in READABLE and WRITABLE."""
    a, b = pair
    poller.register(a.fileno(), READ | WRITE)
    b.close()
    events = wait_for(poller, a.fileno(), poller.READABLE)
    events |= ready(poller).get(a.fileno(), 0)
    assert events & poller.READABLE, "the reader must be woken by a hang-up"
    assert events & poller.WRITABLE, "the writer must be woken by a hang-up"


def test_peer_hangup_wakes_blocked_writer(poller: Poller,
                                          pair: tuple[socket.socket, ...]) -> None:
    """A writer waiting on a full socket is woken when the peer goes away."""
    a, b = pair
    fill_socket(a)
    poller.register(a.fileno(), WRITE)
    assert not ready(poller).get(a.fileno(), 0) & poller.WRITABLE, "buffer should be full"
    b.close()
    assert wait_for(poller, a.fileno(), poller.WRITABLE), "writer not woken by hang-up"


def test_pipe_writer_closed_wakes_reader(poller: Poller, pipe: tuple[int, int]) -> None:
    """Writer closed, pipe empty: the kernel says HUP without IN; READABLE must cover it."""
    r, w = pipe
    poller.register(r, READ)
    assert r not in ready(poller)
    os.close(w)
    assert wait_for(poller, r, poller.READABLE), "reader not woken when the writer closed"


def test_pipe_reader_closed_wakes_full_writer(poller: Poller, pipe: tuple[int, int]) -> None:
    """Reader closed, pipe full: the kernel says ERR without OUT; WRITABLE must cover it."""
    r, w = pipe
    fill_pipe(w)
    poller.register(w, WRITE)
    assert w not in ready(poller), "pipe should be full"
    os.close(r)
    assert wait_for(poller, w, poller.WRITABLE), "writer not woken when the reader closed"


# --------------------------------------------------------------------------
# Bad and closed fds
# --------------------------------------------------------------------------

def test_negative_fd_is_a_value_error(poller: Poller) -> None:
    with pytest.raises(ValueError):
        poller.register(-1, READ)
    assert registered(poller) == 0
    assert poller.poll(0) == []


def test_register_closed_fd_raises_and_registers_nothing(poller: Poller,
                                                         pair: tuple[socket.socket, ...]
                                                         ) -> None:
    """register() of a closed fd raises OSError and leaves no trace."""
    fd = closed_fd()
    with pytest.raises(OSError):
        poller.register(fd, READ | WRITE)
    assert registered(poller) == 0
    assert poller.poll(0) == [], "a closed fd was left registered (e.g. POLLNVAL/EBADF)"
    # The poller still works.
    a, b = pair
    poller.register(a.fileno(), READ)
    b.send(b"x")
    assert wait_for(poller, a.fileno(), poller.READABLE)


def test_fd_closed_behind_our_back(poller: Poller, pair: tuple[socket.socket, ...]) -> None:
    """An fd closed while registered: poll keeps working, unregister never raises."""
    a, b = pair
    c, d = socket.socketpair()
    try:
        fd = a.fileno()
        poller.register(fd, READ)
        poller.register(c.fileno(), READ)
        d.send(b"x")
        a.close()  # behind the poller's back
        events = ready(poller)  # must not raise
        assert events.get(c.fileno(), 0) & poller.READABLE, \
            "a closed fd must not hide the readiness of the others"
        if fd in events:  # reporting it is allowed, then in both masks
            assert events[fd] & poller.READABLE and events[fd] & poller.WRITABLE
        poller.unregister(fd)  # must not raise
        assert registered(poller) == 1
        events = ready(poller)
        assert fd not in events
        assert events.get(c.fileno(), 0) & poller.READABLE
    finally:
        c.close()
        d.close()


def test_closed_fd_whose_file_lives_on_is_really_unregistered(
        poller: Poller, pair: tuple[socket.socket, ...]) -> None:
    """Close a registered fd while a dup keeps the file open: after unregister,
    the old number must never be reported (epoll keeps such entries alive)."""
    a, b = pair
    poller.register(poller.waker_fd, READ)
    fd = a.fileno()
    dup = os.dup(fd)
    try:
        poller.register(fd, READ)
        a.close()  # the file lives on through `dup`
        poller.unregister(fd)  # must not raise
        b.send(b"x")  # the file is readable now
        assert fd not in ready(poller), "stale registration still reported"
        assert fd not in ready(poller, 0.01)
        assert registered(poller) == 1
        # Everything else still works.
        poller.wakeup()
        assert wait_for(poller, poller.waker_fd, poller.READABLE)
    finally:
        os.close(dup)


def test_unregister_after_fd_number_was_reused(poller: Poller,
                                               pair: tuple[socket.socket, ...]) -> None:
    """Close a registered fd and reuse its number for another file before unregister."""
    a, b = pair
    c, d = socket.socketpair()
    fd = a.fileno()
    try:
        poller.register(fd, READ)
        a.close()
        os.dup2(c.fileno(), fd)  # the number now names an unregistered file
        poller.unregister(fd)  # must not raise
        d.send(b"x")
        assert fd not in ready(poller)
        assert registered(poller) == 0
        poller.register(fd, READ)  # and the new file can be registered
        assert wait_for(poller, fd, poller.READABLE)
        poller.unregister(fd)
    finally:
        os.close(fd)
        c.close()
        d.close()


# --------------------------------------------------------------------------
# Resources and scale
# --------------------------------------------------------------------------

def test_close_releases_every_fd_and_is_idempotent(hookloop_backend: str,
                                                   pair: tuple[socket.socket, ...]) -> None:
    """close() closes what the poller opened, nothing else, and can be repeated."""
    a, b = pair
    before = open_fds()
    p = make_poller(hookloop_backend)
    p.register(p.waker_fd, READ)
    p.register(a.fileno(), READ | WRITE)
    p.wakeup()
    p.poll(0)
    p.drain_wakeup()
    p.close()
    assert open_fds() == before
    p.close()
    assert open_fds() == before
    os.fstat(a.fileno())  # fds the poller did not open are left alone
    os.fstat(b.fileno())


def test_many_fds_all_reported(poller: Poller) -> None:
    """Hundreds of fds (readers and writers) are all reported.

    A backend may report them over several polls (epoll's maxevents), but
    each poll must report something new until all have been seen.
    """
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    highest = max(int(fd) for fd in open_fds())
    # Stay below select()'s FD_SETSIZE and the process limit for every backend.
    budget = min(soft, 1024) - highest - 32
    n = min(500, budget // 2)
    if n < 50:
        pytest.skip(f"not enough fds available ({budget})")
    pairs = []
    try:
        for _ in range(n):
            a, b = socket.socketpair()
            pairs.append((a, b))
            b.send(b"x")
            poller.register(a.fileno(), READ)
            poller.register(b.fileno(), WRITE)
        assert registered(poller) == 2 * n
        readers = {a.fileno() for a, _ in pairs}
        writers = {b.fileno() for _, b in pairs}
        seen_r: set[int] = set()
        seen_w: set[int] = set()
        for _ in range(2 * n):
            for fd, events in poller.poll(PATIENCE):
                if events & poller.READABLE:
                    seen_r.add(fd)
                if events & poller.WRITABLE:
                    seen_w.add(fd)
            if seen_r >= readers and seen_w >= writers:
                break
        assert seen_r == readers
        assert seen_w == writers
    finally:
        for a, b in pairs:
            a.close()
            b.close()
