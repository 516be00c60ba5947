"""A hookloop backend in about 30 lines: ``poll(2)``, its answer passed on as is."""
from __future__ import annotations

import math
import select

import hookloop
from hookloop.poller import READ, WRITE, PollerBase, check_fd

_MASKS = {0: 0, READ: select.POLLIN, WRITE: select.POLLOUT,
          READ | WRITE: select.POLLIN | select.POLLOUT}
_HANGUP = select.POLLHUP | select.POLLERR | select.POLLNVAL  # wakes both directions


class MinimalPoller(PollerBase):
    name = "minimal"
    READABLE = select.POLLIN | _HANGUP
    WRITABLE = select.POLLOUT | _HANGUP

    def __init__(self) -> None:
        super().__init__()  # the self-pipe for wakeup(), the statistics counters
        self._poll, self._fds = select.poll(), set[int]()

    def register(self, fd: int, events: int) -> None:
        self._poll.register(check_fd(fd), _MASKS[events])  # check_fd: EBADF now, not later
        self._fds.add(fd)
        self._registered = len(self._fds)

    def modify(self, fd: int, events: int) -> None:
        self._poll.modify(fd, _MASKS[events])  # FileNotFoundError if not registered

    def unregister(self, fd: int) -> None:
        if fd in self._fds:  # unknown fds are ignored; a closed one is no error for poll(2)
            self._fds.discard(fd)
            self._poll.unregister(fd)
            self._registered = len(self._fds)

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        self._polls += 1  # the core passes 0 <= timeout <= a day, or None
        return self._poll.poll(None if timeout is None else math.ceil(timeout * 1000))

    def close(self) -> None:
        self._fds.clear()
        self._registered = 0
        self._close_waker()


@hookloop.hookimpl
def hookloop_pollers() -> list[hookloop.Backend]:
    return [hookloop.Backend("minimal", MinimalPoller, priority=10,
                             distribution="hookloop-minimal")]
