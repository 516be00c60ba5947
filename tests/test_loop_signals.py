"""add_signal_handler / remove_signal_handler (Unix only)."""
from __future__ import annotations

import asyncio
import os
import signal
import threading

import pytest
from loop_helpers import wake_blocked_loop

import hookloop

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="needs Unix signals")


def _invalid_signals():
    """Signal numbers asyncio rejects with ValueError."""
    numbers = [0, -1, signal.NSIG]
    gaps = sorted(set(range(1, signal.NSIG)) - set(signal.valid_signals()))
    return numbers + gaps[:1]


@pytest.fixture(autouse=True)
def restore_sigusr():
    """Make sure no test leaves its SIGUSR1/SIGUSR2/SIGINT handler or the wakeup fd behind.

    Autouse, so it is set up before the loop fixture and torn down after it.
    """
    saved = {s: signal.getsignal(s) for s in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGINT)}
    wakeup = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(wakeup)
    yield
    for s, h in saved.items():
        signal.signal(s, h)
    assert signal.set_wakeup_fd(wakeup) == wakeup, "the wakeup fd was not restored"


def test_signal_handler_runs_with_args(hookloop_loop):
    got = []
    fut = hookloop_loop.create_future()

    def handler(*args):
        got.append(args)
        assert asyncio.get_running_loop() is hookloop_loop
        if not fut.done():
            fut.set_result(None)

    hookloop_loop.add_signal_handler(signal.SIGUSR1, handler, "a", 2)

    async def main():
        os.kill(os.getpid(), signal.SIGUSR1)
        await asyncio.wait_for(fut, 10)

    hookloop_loop.run_until_complete(main())
    assert got == [("a", 2)]


def test_signal_wakes_loop_blocked_without_timers(hookloop_loop):
    got = []

    def handler():
        got.append(signal.SIGUSR1)
        hookloop_loop.stop()

    hookloop_loop.add_signal_handler(signal.SIGUSR1, handler)
    woke = wake_blocked_loop(hookloop_loop, lambda: os.kill(os.getpid(), signal.SIGUSR1))
    assert woke, "the signal did not wake the blocked loop"
    assert got == [signal.SIGUSR1]


def test_remove_signal_handler(hookloop_loop):
    hookloop_loop.add_signal_handler(signal.SIGUSR1, lambda: None)
    assert signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, signal.SIG_IGN)
    assert hookloop_loop.remove_signal_handler(signal.SIGUSR1) is True
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
    assert hookloop_loop.remove_signal_handler(signal.SIGUSR1) is False


def test_remove_sigint_handler_restores_default_int_handler(hookloop_loop):
    hookloop_loop.add_signal_handler(signal.SIGINT, lambda: None)
    assert hookloop_loop.remove_signal_handler(signal.SIGINT) is True
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_remove_signal_handler_never_added(hookloop_loop):
    assert hookloop_loop.remove_signal_handler(signal.SIGUSR2) is False


def test_replacing_signal_handler(hookloop_loop):
    got = []
    fut = hookloop_loop.create_future()
    hookloop_loop.add_signal_handler(signal.SIGUSR1, got.append, "old")
    hookloop_loop.add_signal_handler(signal.SIGUSR1, lambda: (got.append("new"),
                                                             fut.set_result(None)))

    async def main():
        os.kill(os.getpid(), signal.SIGUSR1)
        await asyncio.wait_for(fut, 10)

    hookloop_loop.run_until_complete(main())
    assert got == ["new"]


def test_close_removes_signal_handlers(hookloop_loop):
    hookloop_loop.add_signal_handler(signal.SIGUSR2, lambda: None)
    hookloop_loop.close()
    assert signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL


@pytest.mark.parametrize("sig", _invalid_signals())
def test_add_invalid_signal(hookloop_loop, sig):
    with pytest.raises(ValueError):
        hookloop_loop.add_signal_handler(sig, lambda: None)


@pytest.mark.parametrize("sig", _invalid_signals())
def test_remove_invalid_signal(hookloop_loop, sig):
    with pytest.raises(ValueError):
        hookloop_loop.remove_signal_handler(sig)


@pytest.mark.parametrize("sig", ["SIGUSR1", 1.5, None])
def test_signal_not_an_int(hookloop_loop, sig):
    with pytest.raises(TypeError):
        hookloop_loop.add_signal_handler(sig, lambda: None)
    with pytest.raises(TypeError):
        hookloop_loop.remove_signal_handler(sig)


@pytest.mark.parametrize("name", ["SIGKILL", "SIGSTOP"])
def test_uncatchable_signal(hookloop_loop, name):
    with pytest.raises(RuntimeError):
        hookloop_loop.add_signal_handler(getattr(signal, name), lambda: None)


def test_uncatchable_signal_leaves_nothing(hookloop_loop):
    with pytest.raises(RuntimeError):
        hookloop_loop.add_signal_handler(signal.SIGKILL, lambda: None)
    assert hookloop_loop.remove_signal_handler(signal.SIGKILL) is False


def test_coroutine_function_callback(hookloop_loop):
    async def handler():
        pass

    with pytest.raises(TypeError, match="coroutines cannot be used with add_signal_handler"):
        hookloop_loop.add_signal_handler(signal.SIGUSR1, handler)
    coro = handler()
    try:
        with pytest.raises(TypeError, match="coroutines cannot be used"):
            hookloop_loop.add_signal_handler(signal.SIGUSR1, coro)
    finally:
        coro.close()
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_add_signal_handler_from_non_main_thread(hookloop_backend):
    outcome = []

    def in_thread():
        loop = hookloop.new_event_loop(hookloop_backend)
        try:
            loop.add_signal_handler(signal.SIGUSR1, lambda: None)
        except BaseException as exc:
            outcome.append(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
    assert len(outcome) == 1
    assert isinstance(outcome[0], RuntimeError)
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
