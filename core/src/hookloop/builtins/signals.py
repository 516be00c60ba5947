"""Builtin plugin ``signals``: ``add_signal_handler`` over ``set_wakeup_fd``.

How a signal reaches the loop: the C-level handler writes the signal number
to the poller's self-pipe (``signal.set_wakeup_fd``), which wakes a loop
blocked in ``poll()``; Python then runs :meth:`SignalService._on_signal` in
the main thread between two bytecodes, which appends the user's ``Handle``
to the ready queue.  Appending to a deque is atomic, so it is safe wherever
the main thread was interrupted; the self-pipe's bytes are drained by the
poller and otherwise ignored.  The wakeup fd is installed when the first
handler is added and the previous one restored when the last is removed.

Like asyncio, handlers can only be added from the main thread (that is where
Python runs signal handlers) and ``SIGKILL``/``SIGSTOP`` cannot be caught.
"""
from __future__ import annotations

import asyncio
import errno
import signal
import warnings
from collections.abc import Callable
from typing import Any

from hookloop import EventLoop, check_signal, hookimpl


class SignalService:
    """Signal handlers for one loop."""

    def __init__(self, loop: EventLoop) -> None:
        self._loop = loop
        self._handlers: dict[int, asyncio.Handle] = {}
        self._previous_wakeup_fd = -1

    def add_signal_handler(self, sig: int, callback: Callable[..., Any], *args: Any) -> None:
        check_signal(sig)
        loop = self._loop
        if not self._handlers:
            try:
                self._previous_wakeup_fd = signal.set_wakeup_fd(
                    loop.poller.wakeup_fd, warn_on_full_buffer=False)
            except (ValueError, OSError) as exc:
                raise RuntimeError(str(exc)) from None
        previous = self._handlers.get(sig)
        self._handlers[sig] = asyncio.Handle(callback, args, loop, None)
        try:
            signal.signal(sig, self._on_signal)
            signal.siginterrupt(sig, False)
        except OSError as exc:
            if previous is None:
                del self._handlers[sig]
            else:
                self._handlers[sig] = previous
            if not self._handlers:
                self._restore_wakeup_fd()
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig:d} cannot be caught") from None
            raise
        if previous is not None:
            previous.cancel()

    def remove_signal_handler(self, sig: int) -> bool:
        check_signal(sig)
        handle = self._handlers.pop(sig, None)
        if handle is None:
            return False
        handle.cancel()
        default = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        try:
            signal.signal(sig, default)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig:d} cannot be caught") from None
            raise
        finally:
            if not self._handlers:
                self._restore_wakeup_fd()
        return True

    def _on_signal(self, signum: int, frame: Any) -> None:
        handle = self._handlers.get(signum)
        if handle is None or handle.cancelled() or self._loop.is_closed():
            return
        self._loop.schedule_handle(handle, threadsafe=True)

    def _restore_wakeup_fd(self) -> None:
        try:
            signal.set_wakeup_fd(self._previous_wakeup_fd)
        except (ValueError, OSError):
            pass  # not in the main thread any more: nothing we can restore
        self._previous_wakeup_fd = -1

    def close(self) -> None:
        for sig in list(self._handlers):
            try:
                self.remove_signal_handler(sig)
            except ValueError:
                # signal.signal() only works in the main thread.
                warnings.warn(f"could not remove the handler of signal {sig} from a "
                              "thread other than the main thread", ResourceWarning,
                              stacklevel=2, source=self._loop)
                self._handlers.clear()


@hookimpl(trylast=True)
def hookloop_signals() -> Callable[[EventLoop], SignalService]:
    return SignalService
