"""hookloop-subprocess: bad input, each refused with a clear error and nothing
left behind (no fd, no child).  Runs on every backend and, with
``HOOKLOOP_SUBPROCESS_BASELINE=1``, on asyncio's own loop (same exceptions)."""
from __future__ import annotations

import asyncio
import errno
import os

import pytest
from subprocess_helpers import BASELINE, fd_count, run, unreaped, zombies

import hookloop

PIPE = asyncio.subprocess.PIPE


def _no_leak(loop, spawned, coro_fn, exc_type, match=None):
    run(loop, asyncio.sleep(0))
    before = fd_count()
    with pytest.raises(exc_type, match=match) as info:
        run(loop, coro_fn())
    run(loop, asyncio.sleep(0))
    assert fd_count() == before
    assert unreaped(spawned) == []
    return info.value


def test_missing_program(sp_loop, spawned):
    exc = _no_leak(sp_loop, spawned, lambda: asyncio.create_subprocess_exec(
        "/nonexistent/hookloop-no-such-program", stdin=PIPE, stdout=PIPE, stderr=PIPE),
        FileNotFoundError)
    assert exc.filename == "/nonexistent/hookloop-no-such-program"
    # The child was forked, its exec failed, Popen reaped it.  (Python 3.14's
    # Popen leaves pid None then, so look for any zombie as well.)
    assert len(spawned) <= 1
    assert zombies() == []


def test_missing_cwd(sp_loop, spawned, tmp_path):
    _no_leak(sp_loop, spawned, lambda: asyncio.create_subprocess_exec(
        "true", stdout=PIPE, cwd=tmp_path / "missing"), FileNotFoundError)


def test_shell_with_a_list(sp_loop, spawned):
    _no_leak(sp_loop, spawned, lambda: sp_loop.subprocess_shell(
        asyncio.SubprocessProtocol, ["ls", "-l"]), ValueError, "cmd must be a string")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"text": True}, "text must be False"),
    ({"encoding": "utf-8"}, "encoding must be None"),
    ({"errors": "strict"}, "errors must be None"),
    ({"universal_newlines": True}, "universal_newlines must be False"),
    ({"bufsize": 4096}, "bufsize must be 0"),
])
@pytest.mark.parametrize("method", ["subprocess_exec", "subprocess_shell"])
def test_text_mode_arguments(sp_loop, spawned, method, kwargs, message):
    _no_leak(sp_loop, spawned, lambda: getattr(sp_loop, method)(
        asyncio.SubprocessProtocol, "true", **kwargs), ValueError, message)


@pytest.mark.parametrize(("method", "kwargs", "message"), [
    ("subprocess_exec", {"shell": True}, "shell must be False"),
    ("subprocess_shell", {"shell": False}, "shell must be True"),
])
def test_shell_argument_must_match_the_method(sp_loop, spawned, method, kwargs, message):
    _no_leak(sp_loop, spawned, lambda: getattr(sp_loop, method)(
        asyncio.SubprocessProtocol, "true", **kwargs), ValueError, message)


@pytest.mark.parametrize("create", ["create_subprocess_exec", "create_subprocess_shell"])
def test_streams_api_text_mode(sp_loop, spawned, create):
    _no_leak(sp_loop, spawned, lambda: getattr(asyncio, create)("true", text=True), ValueError)


def test_invalid_fd_in_pass_fds(sp_loop, spawned):
    # Far above every open fd, so the pipes made for the child cannot take it.
    closed = max(map(int, os.listdir("/proc/self/fd"))) + 100
    exc = _no_leak(sp_loop, spawned, lambda: asyncio.create_subprocess_exec(
        "true", stdin=PIPE, stdout=PIPE, pass_fds=(closed,)), OSError)
    assert exc.errno == errno.EBADF
    if not BASELINE:
        assert "pass_fds" in str(exc)


def test_negative_fd_in_pass_fds(sp_loop, spawned):
    _no_leak(sp_loop, spawned, lambda: asyncio.create_subprocess_exec(
        "true", stdout=PIPE, pass_fds=(-1,)), ValueError)


@pytest.mark.skipif(BASELINE, reason="hookloop-only behaviour")
@pytest.mark.parametrize("method", ["subprocess_exec", "subprocess_shell"])
def test_plugin_disabled_names_the_distribution(hookloop_backend, method):
    loop = hookloop.new_event_loop(hookloop_backend, disable=("subprocess",))
    try:
        with pytest.raises(hookloop.PluginMissingError,
                           match="pip install hookloop-subprocess") as info:
            run(loop, getattr(loop, method)(asyncio.SubprocessProtocol, "true"))
        with pytest.raises(hookloop.PluginMissingError):
            run(loop, asyncio.create_subprocess_exec("true"))
    finally:
        loop.close()
    assert info.value.distribution == "hookloop-subprocess"
