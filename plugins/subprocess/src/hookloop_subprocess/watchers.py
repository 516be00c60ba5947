"""Child watching: learning, in the loop thread, that a child has exited.

A watcher owns one thing: the kernel object (or thread) through which the
loop hears that a child it spawned is gone.  It never decides anything
about the child: the transport reaps it (``os.waitpid(pid, WNOHANG)`` in the
loop thread, through :meth:`ChildWatcher.reap`) and publishes the exit status
in the same step, so there is no moment in which the pid is free for reuse
while the transport still believes the child runs (gh-127049: a
``send_signal`` then could hit an unrelated process).

Three watchers, the first that works is used, per loop:

* :class:`PollerWatcher` -- the poller watches pids itself
  (``poller.watch_process``: kqueue's ``EVFILT_PROC``/``NOTE_EXIT``).  The
  callback comes from the poller's dispatch.
* :class:`PidfdWatcher` -- Linux 5.3+: ``os.pidfd_open(pid)`` gives an fd that
  polls readable once the child has exited; it goes into the loop's fd table
  with :meth:`~hookloop.EventLoop.watch_read` like any transport's fd.  No
  signal handler, no thread, any thread's loop.
* :class:`ThreadWatcher` -- everywhere else: one daemon thread per child
  blocks in ``os.waitid(P_PID, pid, WEXITED | WNOWAIT)`` (which does *not*
  reap) and tells the loop with ``call_soon_threadsafe``; the loop thread
  reaps.  Where ``os.waitid`` is missing the thread has to reap
  (``waitpid(pid, 0)``) and hands the status over; that is racy against
  ``send_signal`` exactly as asyncio's own fallback is.  If the loop is gone
  by then, the thread reaps the child itself so it never stays a zombie.

What a watcher must never do: install a ``SIGCHLD`` handler (it would need
the main thread and would steal other code's children), call
``waitpid(-1, ...)``, or run a callback outside the loop thread.  Nothing here
is per event except the single callback per child exit.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from hookloop.poller import PROCESS_WATCHING

__all__ = [
    "ChildWatcher",
    "PidfdWatcher",
    "PollerWatcher",
    "ThreadWatcher",
    "choose_watcher",
    "pidfd_works",
    "reap_soon",
]

logger = logging.getLogger("asyncio")

#: ``callback(*ignored)``: the child may have exited; reap it now.
ExitCallback = Callable[..., Any]

_pidfd_works: bool | None = None


def pidfd_works() -> bool:
    """Whether ``os.pidfd_open`` exists and the kernel supports it (cached)."""
    global _pidfd_works
    if _pidfd_works is None:
        works = False
        if hasattr(os, "pidfd_open"):
            try:
                os.close(os.pidfd_open(os.getpid()))
                works = True
            except OSError:
                works = False
        _pidfd_works = works
    return _pidfd_works


class ChildWatcher:
    """The interface the transport uses; see the module docstring."""

    name = "abstract"

    def watch(self, pid: int, callback: ExitCallback) -> None:
        """Call ``callback()`` in the loop thread once ``pid`` has exited."""
        raise NotImplementedError

    def unwatch(self, pid: int) -> None:
        """Stop watching ``pid`` (no error if it is not watched)."""

    def rearm(self, pid: int, callback: ExitCallback) -> None:
        """``callback`` fired but the child had not exited: keep watching."""

    def reap(self, pid: int) -> int | None:
        """Reap ``pid`` if it has exited: its wait status, or ``None`` if it
        still runs.  ``ChildProcessError`` if somebody else reaped it."""
        # Looked up at call time: tests (CPython's among them) patch os.waitpid.
        rpid, status = os.waitpid(pid, os.WNOHANG)
        return None if rpid == 0 else status

    def close(self) -> None:
        """Release every kernel object; the loop is closing."""


class PollerWatcher(ChildWatcher):
    """The poller's own ``watch_process(pid, callback)`` (kqueue)."""

    name = "poller"

    def __init__(self, poller: Any) -> None:
        self._watch_process = poller.watch_process
        self._unwatch_process = poller.unwatch_process
        self._pids: set[int] = set()

    def watch(self, pid: int, callback: ExitCallback) -> None:
        self._watch_process(pid, callback)
        self._pids.add(pid)

    def rearm(self, pid: int, callback: ExitCallback) -> None:
        self.watch(pid, callback)  # NOTE_EXIT is one-shot

    def unwatch(self, pid: int) -> None:
        if pid in self._pids:
            self._pids.discard(pid)
            self._unwatch_process(pid)

    def close(self) -> None:
        for pid in list(self._pids):
            self.unwatch(pid)


class PidfdWatcher(ChildWatcher):
    """A pidfd per child in the loop's fd table (Linux 5.3+)."""

    name = "pidfd"

    def __init__(self, loop: Any) -> None:
        self._loop = loop
        self._pidfds: dict[int, int] = {}

    def watch(self, pid: int, callback: ExitCallback) -> None:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            # Reaped already, by somebody else's waitpid(-1): report it now.
            self._loop.call_soon(callback)
            return
        try:
            self._loop.watch_read(fd, callback)
        except BaseException:
            os.close(fd)
            raise
        self._pidfds[pid] = fd

    def unwatch(self, pid: int) -> None:
        fd = self._pidfds.pop(pid, None)
        if fd is not None:
            try:
                self._loop.unwatch_read(fd)
            finally:
                os.close(fd)

    def close(self) -> None:
        for pid in list(self._pidfds):
            self.unwatch(pid)


class ThreadWatcher(ChildWatcher):
    """A daemon thread per child waiting without reaping (the fallback)."""

    name = "thread"

    def __init__(self, loop: Any) -> None:
        self._loop = loop
        self._threads: dict[int, threading.Thread] = {}
        # Statuses reaped by a thread (only where os.waitid is missing).
        self._reaped: dict[int, int] = {}
        self._closed = False

    def watch(self, pid: int, callback: ExitCallback) -> None:
        thread = threading.Thread(target=self._wait, args=(pid, callback), daemon=True,
                                  name=f"hookloop-waitpid-{pid}")
        self._threads[pid] = thread
        thread.start()

    def _wait(self, pid: int, callback: ExitCallback) -> None:
        waitid = getattr(os, "waitid", None)
        try:
            if waitid is not None:
                try:
                    while True:
                        result = waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
                        # macOS reports stopped children to WEXITED as well
                        # (gh-158287): consume the stop and wait on.
                        if result is not None and result.si_code == os.CLD_STOPPED:
                            waitid(os.P_PID, pid, os.WSTOPPED | os.WNOHANG)
                            continue
                        break
                except ChildProcessError:
                    pass  # reaped already; the loop will find out
            else:
                try:
                    _, status = os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
                else:
                    self._reaped[pid] = status
            if pid not in self._threads:
                return  # unwatched: the loop thread reaps it (see _abandon)
            if self._closed:
                self._reap_orphan(pid)
                return
            try:
                self._loop.call_soon_threadsafe(callback)
            except RuntimeError:  # the loop closed meanwhile
                self._reap_orphan(pid)
        finally:
            self._threads.pop(pid, None)

    def unwatch(self, pid: int) -> None:
        # The thread finds its pid gone and leaves reaping to the loop thread.
        self._threads.pop(pid, None)

    def _reap_orphan(self, pid: int) -> None:
        self._reaped.pop(pid, None)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass

    def reap(self, pid: int) -> int | None:
        status = self._reaped.pop(pid, None)
        if status is not None:
            return status
        return super().reap(pid)

    def close(self) -> None:
        self._closed = True


def choose_watcher(loop: Any) -> ChildWatcher:
    """The best watcher for ``loop``: the poller's, a pidfd, or a thread."""
    poller = loop.poller
    if PROCESS_WATCHING in poller.capabilities:
        return PollerWatcher(poller)
    if pidfd_works():
        return PidfdWatcher(loop)
    return ThreadWatcher(loop)


def reap_soon(pid: int, timeout: float) -> int | None:
    """Reap ``pid``, which was just sent ``SIGKILL``, waiting at most
    ``timeout`` seconds: its wait status, ``-1`` if somebody else reaped it,
    or ``None`` if it is still there, in which case a daemon thread reaps it
    whenever it dies, so it never stays a zombie.  For loop close only (it
    blocks): a pidfd is polled where there are pidfds, else the reaping
    thread is joined for ``timeout``."""
    try:
        rpid, status = os.waitpid(pid, os.WNOHANG)
        if rpid:
            return status
        if pidfd_works():
            import select

            try:
                fd = os.pidfd_open(pid)
            except ProcessLookupError:
                return -1
            except OSError:
                fd = -1  # out of fds, say: the thread below does it
            if fd >= 0:
                try:
                    select.select([fd], [], [], timeout)
                finally:
                    os.close(fd)
                rpid, status = os.waitpid(pid, os.WNOHANG)
                if rpid:
                    return status
    except ChildProcessError:
        return -1
    result: list[int] = []
    thread = threading.Thread(target=_reap_blocking, args=(pid, result), daemon=True,
                              name=f"hookloop-reap-{pid}")
    thread.start()
    thread.join(timeout)
    return result[0] if result else None


def _reap_blocking(pid: int, result: list[int]) -> None:
    try:
        result.append(os.waitpid(pid, 0)[1])
    except ChildProcessError:
        result.append(-1)
