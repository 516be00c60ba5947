"""Tests of what is particular to hookloop-epoll (the contract kit covers the rest)."""
from __future__ import annotations

import os
import select
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import hookloop_epoll
from hookloop.poller import READ, WRITE
from hookloop_epoll import EpollPoller
from hookloop_epoll.epoll_poller import EPOLL_UNAVAILABLE

Pair = tuple[socket.socket, socket.socket]

linux_only = pytest.mark.skipif(EPOLL_UNAVAILABLE is not None, reason=str(EPOLL_UNAVAILABLE))


@pytest.fixture
def poller() -> Iterator[EpollPoller]:
    if EPOLL_UNAVAILABLE is not None:
        pytest.skip(EPOLL_UNAVAILABLE)
    p = EpollPoller()
    try:
        yield p
    finally:
        p.close()


def test_hook_offers_epoll() -> None:
    (record,) = hookloop_epoll.hookloop_pollers()
    assert (record.name, record.priority, record.distribution) == (
        "epoll", 300, "hookloop-epoll")
    assert record.factory is EpollPoller
    assert record.available == sys.platform.startswith("linux")


@linux_only
def test_masks_are_native(poller: EpollPoller) -> None:
    hangup = select.EPOLLERR | select.EPOLLHUP
    assert poller.READABLE & hangup == hangup
    assert poller.WRITABLE & hangup == hangup
    assert poller.READABLE & select.EPOLLRDHUP and poller.READABLE & select.EPOLLPRI
    assert not poller.READABLE & select.EPOLLOUT
    assert not poller.WRITABLE & select.EPOLLIN


def test_poll_returns_the_kernel_list(poller: EpollPoller, hookloop_socketpair: Pair
                                      ) -> None:
    a, b = hookloop_socketpair
    poller.register(a.fileno(), READ | WRITE)
    b.send(b"x")
    assert poller.poll(0) == [(a.fileno(), select.EPOLLIN | select.EPOLLOUT)]


def test_maxevents_grows_on_full_batches(poller: EpollPoller) -> None:
    pairs = [socket.socketpair() for _ in range(300)]
    try:
        for a, _ in pairs:
            poller.register(a.fileno(), WRITE)
        assert poller.statistics()["maxevents"] == 64
        sizes = [len(poller.poll(0)) for _ in range(4)]
        assert sizes == [64, 128, 256, 300]
        assert poller.statistics()["maxevents"] == 512
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def test_rebuild_only_for_fds_we_had(poller: EpollPoller, hookloop_socketpair: Pair
                                     ) -> None:
    a, b = hookloop_socketpair
    poller.unregister(b.fileno())  # never registered: ENOENT, no rebuild
    assert poller.statistics()["rebuilds"] == 0
    poller.register(b.fileno(), WRITE)
    poller.register(a.fileno(), READ)
    fd = a.fileno()
    dup = os.dup(fd)
    try:
        a.close()
        poller.unregister(fd)
        stats = poller.statistics()
        assert (stats["rebuilds"], stats["registered_fds"]) == (1, 1)
        assert poller.poll(0) == [(b.fileno(), select.EPOLLOUT)]  # b survived the rebuild
    finally:
        os.close(dup)


def test_register_again_replaces_the_mask(poller: EpollPoller, hookloop_socketpair: Pair
                                          ) -> None:
    a, b = hookloop_socketpair
    b.send(b"x")
    poller.register(a.fileno(), READ)
    poller.register(a.fileno(), WRITE)  # EEXIST -> modify
    assert poller.poll(0) == [(a.fileno(), select.EPOLLOUT)]
    assert poller.statistics()["registered_fds"] == 1


def test_regular_file_is_refused(poller: EpollPoller, tmp_path: Path) -> None:
    with open(tmp_path / "f", "w") as f:
        with pytest.raises(PermissionError):
            poller.register(f.fileno(), READ)
    assert poller.statistics()["registered_fds"] == 0


@pytest.mark.parametrize("events", [-1, 4])
def test_bad_event_mask(poller: EpollPoller, hookloop_socketpair: Pair,
                        events: int) -> None:
    with pytest.raises(ValueError):
        poller.register(hookloop_socketpair[0].fileno(), events)
    assert poller.statistics()["registered_fds"] == 0


def test_negative_timeout_does_not_block(poller: EpollPoller) -> None:
    assert poller.poll(-1.0) == []
