"""Tests of what is particular to hookloop-select (the contract kit covers the rest)."""
from __future__ import annotations

import os
import resource
import select
import socket
from collections.abc import Iterator

import pytest

import hookloop_select
from hookloop.poller import READ, WRITE
from hookloop_select import PollPoller, SelectPoller
from hookloop_select.select_poller import FD_SETSIZE

Pair = tuple[socket.socket, socket.socket]

needs_poll = pytest.mark.skipif(not hasattr(select, "poll"), reason="no select.poll")


@pytest.fixture(params=["select", pytest.param("poll", marks=needs_poll)])
def poller(request: pytest.FixtureRequest) -> Iterator[SelectPoller | PollPoller]:
    p = SelectPoller() if request.param == "select" else PollPoller()
    try:
        yield p
    finally:
        p.close()


def test_hook_offers_both_backends() -> None:
    records = {b.name: b for b in hookloop_select.hookloop_pollers()}
    assert set(records) == {"select", "poll"}
    assert records["select"].priority == 100 and records["select"].available
    assert records["poll"].priority == 200
    assert records["poll"].available == hasattr(select, "poll")
    assert {b.distribution for b in records.values()} == {"hookloop-select"}
    assert records["select"].factory is SelectPoller
    assert records["poll"].factory is PollPoller


@pytest.fixture
def high_fd(hookloop_socketpair: Pair) -> Iterator[int]:
    """A duplicate of ``hookloop_socketpair[0]`` numbered above select's FD_SETSIZE."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft <= FD_SETSIZE + 10:
        pytest.skip(f"RLIMIT_NOFILE {soft} too low to open an fd >= FD_SETSIZE")
    high = os.dup2(hookloop_socketpair[0].fileno(), FD_SETSIZE + 5)
    try:
        yield high
    finally:
        os.close(high)


def test_high_fd_rejected_by_select_at_register(high_fd: int) -> None:
    p = SelectPoller()
    try:
        with pytest.raises(ValueError, match=str(high_fd)):
            p.register(high_fd, READ)
        assert p.statistics()["registered_fds"] == 0
        assert p.poll(0) == []
    finally:
        p.close()


@needs_poll
def test_high_fd_fine_with_poll(hookloop_socketpair: Pair, high_fd: int) -> None:
    p = PollPoller()
    try:
        p.register(high_fd, READ)
        hookloop_socketpair[1].send(b"x")
        assert any(fd == high_fd and ev & p.READABLE for fd, ev in p.poll(1))
    finally:
        p.close()


def test_select_ebadf_recovery_is_counted_and_repeats(hookloop_socketpair: Pair) -> None:
    a, b = hookloop_socketpair
    c, d = socket.socketpair()
    p = SelectPoller()
    try:
        p.register(a.fileno(), READ)
        p.register(c.fileno(), WRITE)
        fd = a.fileno()
        a.close()
        for n in (1, 2):  # reported at every poll until unregistered
            events = p.poll(0)
            assert (fd, READ | WRITE) in events
            assert (c.fileno(), WRITE) in events
            assert p.statistics()["ebadf_recoveries"] == n
        p.unregister(fd)
        assert p.poll(0) == [(c.fileno(), WRITE)]
    finally:
        p.close()
        c.close()
        d.close()


def test_select_reports_each_direction_separately(hookloop_socketpair: Pair) -> None:
    a, b = hookloop_socketpair
    p = SelectPoller()
    try:
        p.register(a.fileno(), READ | WRITE)
        b.send(b"x")
        assert sorted(p.poll(0)) == [(a.fileno(), READ), (a.fileno(), WRITE)]
        stats = p.statistics()
        assert (stats["readers"], stats["writers"]) == (1, 1)
    finally:
        p.close()


@needs_poll
def test_poll_rounds_timeouts_up_to_milliseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    p = PollPoller()
    seen: list[object] = []
    monkeypatch.setattr(p, "_kernel_poll", lambda *args: seen.append(args) or [])
    try:
        for timeout in (None, 0, -3.0, 0.0000001, 0.0104, 0.5, 86400.0):
            p.poll(timeout)
        assert seen == [(), (0,), (0,), (1,), (11,), (500,), (86_400_000,)]
    finally:
        p.close()


@needs_poll
def test_poll_reports_pollnval_for_closed_fd(hookloop_socketpair: Pair) -> None:
    a, _ = hookloop_socketpair
    p = PollPoller()
    try:
        p.register(a.fileno(), READ)
        fd = a.fileno()
        a.close()
        (event,) = p.poll(0)
        assert event == (fd, select.POLLNVAL)
        assert event[1] & p.READABLE and event[1] & p.WRITABLE
    finally:
        p.close()


def test_register_again_replaces_the_mask(poller: SelectPoller | PollPoller,
                                          hookloop_socketpair: Pair) -> None:
    a, b = hookloop_socketpair
    b.send(b"x")
    poller.register(a.fileno(), READ)
    poller.register(a.fileno(), WRITE)
    events = poller.poll(0)
    assert events and all(ev & poller.WRITABLE and not ev & poller.READABLE
                          for _, ev in events)
    assert poller.statistics()["registered_fds"] == 1


def test_modify_unregistered_fd_is_enoent(poller: SelectPoller | PollPoller,
                                          hookloop_socketpair: Pair) -> None:
    with pytest.raises(FileNotFoundError):
        poller.modify(hookloop_socketpair[0].fileno(), READ)


def test_unregister_unknown_fd_is_a_no_op(poller: SelectPoller | PollPoller) -> None:
    poller.unregister(12345)
    assert poller.statistics()["registered_fds"] == 0


@pytest.mark.parametrize("events", [-1, 4, 8])
def test_bad_event_mask(poller: SelectPoller | PollPoller, hookloop_socketpair: Pair,
                        events: int) -> None:
    with pytest.raises(ValueError):
        poller.register(hookloop_socketpair[0].fileno(), events)
    assert poller.statistics()["registered_fds"] == 0
