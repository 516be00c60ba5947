"""Policy support: EventLoopPolicy, install(), run()."""
from __future__ import annotations

import asyncio
import threading
import warnings

import pytest

import hookloop


@pytest.fixture
def restore_policy():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = asyncio.get_event_loop_policy()
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_event_loop_policy(old)


def test_install_makes_asyncio_build_our_loops(restore_policy, hookloop_backend):
    policy = hookloop.install(hookloop_backend)
    assert isinstance(policy, hookloop.EventLoopPolicy)
    loop = asyncio.new_event_loop()
    try:
        assert isinstance(loop, hookloop.EventLoop)
        assert loop.backend == hookloop_backend
    finally:
        loop.close()


def test_asyncio_run_uses_installed_policy(restore_policy, hookloop_backend):
    hookloop.install(hookloop_backend)

    async def main():
        return asyncio.get_running_loop()

    loop = asyncio.run(main())
    assert isinstance(loop, hookloop.EventLoop)
    assert loop.is_closed()


def test_policy_set_and_get_event_loop(hookloop_backend):
    policy = hookloop.EventLoopPolicy(hookloop_backend)
    loop = policy.new_event_loop()
    try:
        policy.set_event_loop(loop)
        assert policy.get_event_loop() is loop
        policy.set_event_loop(None)
        with pytest.raises(RuntimeError, match="no current event loop"):
            policy.get_event_loop()
    finally:
        loop.close()


def test_policy_is_per_thread(hookloop_backend):
    policy = hookloop.EventLoopPolicy(hookloop_backend)
    loop = policy.new_event_loop()
    policy.set_event_loop(loop)
    seen = []

    def worker():
        try:
            policy.get_event_loop()
        except RuntimeError as exc:
            seen.append(exc)

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    loop.close()
    assert len(seen) == 1 and "no current event loop" in str(seen[0])


def test_policy_rejects_non_loop():
    with pytest.raises(TypeError, match="loop must be an instance of AbstractEventLoop"):
        hookloop.EventLoopPolicy().set_event_loop(object())


def test_run_with_backend_and_debug(hookloop_backend):
    async def main():
        loop = asyncio.get_running_loop()
        return loop.backend, loop.get_debug()

    assert hookloop.run(main(), backend=hookloop_backend, debug=True) == (hookloop_backend, True)


def test_run_propagates_exceptions(hookloop_backend):
    async def main():
        raise KeyError("inner")

    with pytest.raises(KeyError, match="inner"):
        hookloop.run(main(), backend=hookloop_backend)
