"""Stall injection (hookloop.stall): it only moves time, never reorders;
its knobs refuse bad input by name; it is off unless asked for; the testing
kit's --hookloop-stall turns it on for a whole session and reports the seed."""
from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import textwrap

import pytest

import hookloop
from hookloop.stall import DEFAULT_MAX_MS, StallInjector, parse_stall


@pytest.fixture
def no_stall_environment(monkeypatch):
    monkeypatch.delenv("HOOKLOOP_STALL", raising=False)


def _fd_count():
    return len(os.listdir("/proc/self/fd"))


# ----------------------------------------------------------------------
# The specification and its errors
# ----------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("0.05:20", (0.05, 20.0)),
    ("1", (1.0, DEFAULT_MAX_MS)),
    ("0", (0.0, DEFAULT_MAX_MS)),
    (" 0.5:0 ", (0.5, 0.0)),
    ("1e-3:2.5", (0.001, 2.5)),
])
def test_parse_stall(text, expected):
    assert parse_stall(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("1.5", r"--opt: PROB must be in \[0, 1\], got '1.5'"),
    ("-0.1", r"--opt: PROB must be in \[0, 1\], got '-0.1'"),
    ("nan", r"--opt: PROB must be in \[0, 1\], got 'nan'"),
    ("often", r"--opt: PROB must be a number in \[0, 1\], got 'often'"),
    ("", r"--opt: PROB must be a number in \[0, 1\], got ''"),
    ("0.5:-1", r"--opt: MAX_MS must be a finite number of milliseconds >= 0, got '-1'"),
    ("0.5:inf", r"--opt: MAX_MS must be a finite number of milliseconds >= 0, got 'inf'"),
    ("0.5:soon", r"--opt: MAX_MS must be a number of milliseconds >= 0, got 'soon'"),
    ("0.5:", r"--opt: expected PROB\[:MAX_MS\], got '0.5:'"),
])
def test_parse_stall_refuses_bad_input_naming_it(text, message):
    with pytest.raises(ValueError, match=message):
        parse_stall(text, name="--opt")


@pytest.mark.parametrize(("probability", "max_ms", "message"), [
    (2, 1, "probability must be in"),
    (0.5, -3, "max_ms must be a finite number"),
    ("x", 1, "probability must be a number"),
])
def test_injector_refuses_bad_arguments_naming_them(probability, max_ms, message):
    with pytest.raises(ValueError, match=message):
        StallInjector(probability, max_ms)


def test_new_event_loop_refuses_a_bad_stall_before_making_anything(hookloop_backend):
    before = _fd_count()
    with pytest.raises(ValueError, match=r"^stall: PROB must be in \[0, 1\]"):
        hookloop.new_event_loop(hookloop_backend, stall="3:10")
    with pytest.raises(TypeError, match="stall must be a 'PROB"):
        hookloop.new_event_loop(hookloop_backend, stall=0.5)
    assert _fd_count() == before


def test_a_bad_environment_variable_is_named(hookloop_backend, monkeypatch):
    monkeypatch.setenv("HOOKLOOP_STALL", "0.1:-5")
    with pytest.raises(ValueError, match="^HOOKLOOP_STALL: MAX_MS"):
        hookloop.new_event_loop(hookloop_backend)


# ----------------------------------------------------------------------
# Where it comes from
# ----------------------------------------------------------------------


def test_off_by_default(hookloop_backend, no_stall_environment):
    loop = hookloop.new_event_loop(hookloop_backend)
    try:
        assert loop.get_stall() is None
    finally:
        loop.close()


def test_environment_argument_and_false(hookloop_backend, monkeypatch):
    monkeypatch.setenv("HOOKLOOP_STALL", "0.25:3")
    monkeypatch.setenv("HOOKLOOP_STALL_SEED", "77")
    loops = [hookloop.new_event_loop(hookloop_backend),
             hookloop.new_event_loop(hookloop_backend, stall="1:1"),
             hookloop.new_event_loop(hookloop_backend, stall=False),
             hookloop.new_event_loop(hookloop_backend, stall="0")]
    try:
        from_env, given, off, zero = (loop.get_stall() for loop in loops)
        assert (from_env.probability, from_env.max_ms) == (0.25, 3.0)
        assert (given.probability, given.max_ms) == (1.0, 1.0)
        assert off is None and zero is None
        # Seeds: the base seed, the test, the loop's number in the test.
        assert from_env.seed.startswith("77/") and from_env.seed.endswith("/1")
        assert given.seed.endswith("/2") and from_env.seed != given.seed
        assert "test_environment_argument_and_false" in from_env.seed
    finally:
        for loop in loops:
            loop.close()


def test_policy_loops_take_the_environment(hookloop_backend, monkeypatch):
    monkeypatch.setenv("HOOKLOOP_STALL", "0.5")
    loop = hookloop.EventLoopPolicy(hookloop_backend).new_event_loop()
    try:
        assert loop.get_stall().probability == 0.5
    finally:
        loop.close()


def test_set_stall_on_a_running_loop_is_refused_and_changes_nothing(hookloop_loop):
    injector = StallInjector(0.5, 1.0, seed=3)
    hookloop_loop.set_stall(injector)
    errors = []

    def change():
        for value in (None, "1:1"):
            try:
                hookloop_loop.set_stall(value)
            except RuntimeError as exc:
                errors.append(str(exc))

    hookloop_loop.run_until_complete(asyncio.sleep(0, result=hookloop_loop.call_soon(change)))
    assert errors == ["set_stall() cannot be called while the loop is running"] * 2
    assert hookloop_loop.get_stall() is injector
    hookloop_loop.set_stall(None)  # stopped: allowed
    assert hookloop_loop.get_stall() is None


def test_set_stall_with_a_bad_value_changes_nothing(hookloop_loop):
    injector = StallInjector(0.5, 1.0, seed=3)
    hookloop_loop.set_stall(injector)
    with pytest.raises(ValueError, match="^stall: PROB"):
        hookloop_loop.set_stall("11")
    assert hookloop_loop.get_stall() is injector


# ----------------------------------------------------------------------
# What it does
# ----------------------------------------------------------------------


def _echo_round_trips(loop, count):
    """``count`` echo round trips over a socket pair: data_received is an
    I/O callback (straight from the fd table on hookloop)."""
    done = loop.create_future()

    class Echo(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport

        def data_received(self, data):
            self.transport.write(data)

    class Client(asyncio.Protocol):
        def __init__(self):
            self.left = count

        def connection_made(self, transport):
            self.transport = transport
            transport.write(b"x")

        def data_received(self, data):
            self.left -= len(data)
            if self.left <= 0:
                done.set_result(None)
            else:
                self.transport.write(b"x" * len(data))

    a, b = socket.socketpair()

    async def main():
        server, _ = await loop.create_connection(Echo, sock=a)
        client, _ = await loop.create_connection(Client, sock=b)
        await done
        server.close()
        client.close()
        await asyncio.sleep(0)

    loop.run_until_complete(main())


def test_every_callback_and_io_callback_can_stall(hookloop_loop):
    stats = hookloop.PollStatistics()
    hookloop_loop.add_instrument(stats)
    injector = StallInjector(1.0, max_ms=0.5, seed=11)
    hookloop_loop.set_stall(injector)
    _echo_round_trips(hookloop_loop, 20)
    assert stats.io_callbacks >= 20  # the echo's reads, at least
    assert injector.stalls == stats.callbacks + stats.io_callbacks
    assert 0 < injector.stalled <= injector.stalls * 0.0005


def test_a_seed_replays_the_same_decisions(hookloop_backend):
    def run(seed):
        loop = hookloop.new_event_loop(hookloop_backend, stall=StallInjector(0.5, 0.2, seed))
        try:
            for _ in range(200):
                loop.call_soon(lambda: None)
            loop.run_until_complete(asyncio.sleep(0))
            stall = loop.get_stall()
            return stall.stalls, stall.stalled
        finally:
            loop.close()

    assert run("a seed") == run("a seed")
    assert run("a seed") != run("another seed")


def _program(loop):
    """A deterministic program: call_soon chains, timers already due, tasks,
    an echo.  Returns what ran, in order."""
    order = []

    async def worker(name, n):
        for i in range(n):
            order.append((name, i))
            await asyncio.sleep(0)

    def chain(i):
        order.append(("soon", i))
        if i < 30:
            loop.call_soon(chain, i + 1)
        if i % 7 == 0:
            loop.call_at(loop.time() - 1.0 + i / 1000, order.append, ("timer", i))

    async def main():
        loop.call_soon(chain, 0)
        await asyncio.gather(worker("w1", 20), worker("w2", 15))
        await asyncio.sleep(0.001)

    loop.run_until_complete(main())
    _echo_round_trips(loop, 5)
    return order


def test_stalls_move_time_but_never_the_order(hookloop_backend):
    reference_loop = asyncio.new_event_loop()
    try:
        reference = _program(reference_loop)
    finally:
        reference_loop.close()
    for stall in (False, "1:2", "0.3:5"):
        loop = hookloop.new_event_loop(hookloop_backend, stall=stall)
        try:
            assert _program(loop) == reference, stall
            if stall:
                assert loop.get_stall().stalls > 0
        finally:
            loop.close()


# ----------------------------------------------------------------------
# The testing kit's options
# ----------------------------------------------------------------------


def _pytest(tmp_path, *args):
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("HOOKLOOP_STALL", "HOOKLOOP_STALL_SEED", "PYTEST_CURRENT_TEST",
                        "PYTEST_XDIST_WORKER", "PYTEST_ADDOPTS")}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:xdist", *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("value", "message"), [
    ("1.5", "--hookloop-stall: PROB must be in [0, 1], got '1.5'"),
    ("0.5:-2", "--hookloop-stall: MAX_MS must be a finite number of milliseconds >= 0"),
    ("0.5:abc", "--hookloop-stall: MAX_MS must be a number of milliseconds >= 0, got 'abc'"),
    ("sometimes", "--hookloop-stall: PROB must be a number"),
])
def test_kit_option_refuses_bad_values_naming_the_option(tmp_path, value, message):
    (tmp_path / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    out = _pytest(tmp_path, f"--hookloop-stall={value}")
    assert out.returncode == 4, out.stdout + out.stderr  # pytest's usage error
    assert message in out.stderr


def test_kit_option_stalls_every_loop_and_reports_the_seed(tmp_path):
    (tmp_path / "test_stalled.py").write_text(textwrap.dedent("""
        import hookloop

        def test_loops_get_the_stall():
            loop = hookloop.new_event_loop()
            try:
                stall = loop.get_stall()
                assert (stall.probability, stall.max_ms) == (0.25, 4.0)
                assert stall.seed == "1234/test_stalled.py::test_loops_get_the_stall/1"
            finally:
                loop.close()

        def test_fails():
            assert False
    """))
    out = _pytest(tmp_path, "--hookloop-stall=0.25:4", "--hookloop-stall-seed=1234")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "hookloop: stall injection on: probability 0.25, up to 4 ms, seed 1234" in out.stdout
    assert "1 failed, 1 passed" in out.stdout
    assert ("replay with: pytest 'test_stalled.py::test_fails' --hookloop-stall=0.25:4 "
            "--hookloop-stall-seed=1234") in out.stdout


def test_kit_without_the_option_leaves_loops_alone(tmp_path):
    (tmp_path / "test_plain.py").write_text(textwrap.dedent("""
        import hookloop

        def test_no_stall():
            loop = hookloop.new_event_loop()
            try:
                assert loop.get_stall() is None
            finally:
                loop.close()
    """))
    out = _pytest(tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "hookloop: stall injection off" in out.stdout
