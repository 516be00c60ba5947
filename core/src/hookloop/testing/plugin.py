"""The pytest plugin behind :mod:`hookloop.testing` (see its docstring)."""
from __future__ import annotations

import os
import random
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from ..stall import ENV_SEED, ENV_STALL, parse_stall
from . import session_loop


class ExceptionRecorder:
    """An exception handler that keeps every context it is given.

    Tests that expect the loop to report an error claim it with
    :meth:`expect`; whatever is left at teardown fails the test.
    """

    def __init__(self) -> None:
        self.contexts: list[dict[str, Any]] = []

    def __call__(self, loop: Any, context: dict[str, Any]) -> None:
        self.contexts.append(context)

    def expect(self, message: str, exception: type[BaseException] | None = None
               ) -> dict[str, Any]:
        """Remove and return the first report whose message contains
        ``message`` (and whose exception is an ``exception``, if given);
        ``AssertionError`` if there is none."""
        for i, context in enumerate(self.contexts):
            if message in str(context.get("message", "")) and (
                    exception is None or isinstance(context.get("exception"), exception)):
                return self.contexts.pop(i)
        raise AssertionError(f"no exception handler call matching {message!r}; "
                             f"got {self.contexts!r}")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hookloop")
    group.addoption("--hookloop-backend", action="append", dest="hookloop_backend",
                    default=None, metavar="NAME",
                    help="run hookloop fixtures on this backend only (repeatable)")
    group.addoption("--hookloop-stall", dest="hookloop_stall", default=None,
                    metavar="PROB[:MAX_MS]",
                    help="stall injection: every hookloop loop made in this session sleeps a "
                         "random 0..MAX_MS ms (default 20) after a random fraction PROB of its "
                         "callbacks and I/O callbacks, to find timing assumptions (it only "
                         "moves time, it never reorders)")
    group.addoption("--hookloop-stall-seed", dest="hookloop_stall_seed", default=None,
                    metavar="SEED",
                    help="seed of the stalls' random source (default: drawn at random and "
                         "printed in the header), to replay a failure")
    session_loop.add_option(group)


_saved_environment = pytest.StashKey[dict[str, str | None]]()


def pytest_configure(config: pytest.Config) -> None:
    """Check ``--hookloop-stall``; export it and the seed to the environment;
    register the conformance kit's hooks and summary (they act on its tests
    only, and must be on the xdist controller too, which collects nothing);
    act on ``--hookloop-loop`` (:mod:`hookloop.testing.session_loop`).

    The environment is what every hookloop loop reads when it is made
    (``hookloop.new_event_loop``, the policy, loop factories), in this
    process, in pytest-xdist's workers (started after this, they inherit it
    and find the seed already chosen) and in the processes tests start.
    """
    from .conformance import _hooks, _summary
    if not config.pluginmanager.has_plugin("hookloop-conformance"):
        config.pluginmanager.register(_hooks, "hookloop-conformance")
    _summary.register(config)
    spec = config.getoption("hookloop_stall", default=None)
    if spec is not None:
        try:
            parse_stall(spec, name="--hookloop-stall")
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None
    seed = config.getoption("hookloop_stall_seed", default=None)
    if seed is not None and not seed.strip():
        raise pytest.UsageError("--hookloop-stall-seed: expected a seed, got an empty string")
    seed = seed or os.environ.get(ENV_SEED) or str(random.SystemRandom().randrange(10**9))
    session_loop.configure(config)
    saved = config.stash[_saved_environment] = {}
    for name, value in ((ENV_SEED, seed), (ENV_STALL, spec)):
        if value is not None:
            saved[name] = os.environ.get(name)
            os.environ[name] = value


def pytest_unconfigure(config: pytest.Config) -> None:
    for name, value in config.stash.get(_saved_environment, {}).items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def stall_replay_hint(nodeid: str, spec: str) -> str:
    """How to rerun one test with the stalls it had."""
    seed = os.environ.get(ENV_SEED, "?")
    return (f"stall injection was on ({spec}, seed {seed}); replay with: "
            f"pytest '{nodeid}' --hookloop-stall={spec} --hookloop-stall-seed={seed}")


def pytest_report_header(config: pytest.Config) -> list[str]:
    spec = os.environ.get(ENV_STALL)
    seed = os.environ.get(ENV_SEED)
    if spec:
        probability, max_ms = parse_stall(spec, name=ENV_STALL)
        lines = [f"hookloop: stall injection on: probability {probability}, up to {max_ms:g} ms, "
                 f"seed {seed} (--hookloop-stall={spec} --hookloop-stall-seed={seed})"]
    else:
        lines = [f"hookloop: stall injection off; stall seed {seed} (--hookloop-stall-seed={seed})"]
    loop_line = session_loop.header_line(config)
    return lines if loop_line is None else [*lines, loop_line]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    spec = os.environ.get(ENV_STALL)
    if report.failed and spec:
        report.sections.append(("hookloop stall injection", stall_replay_hint(item.nodeid, spec)))
    return report


def _backends(config: pytest.Config) -> list[str]:
    chosen = config.getoption("hookloop_backend")
    if chosen:
        return list(chosen)
    import hookloop
    return hookloop.available_backends()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "hookloop_backend" in metafunc.fixturenames:
        metafunc.parametrize("hookloop_backend", _backends(metafunc.config), scope="session")


@pytest.fixture
def hookloop_socketpair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected, non-blocking socket pair, closed after the test."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


@pytest.fixture
def hookloop_errors() -> ExceptionRecorder:
    """Reports made to the test loop's exception handler."""
    return ExceptionRecorder()


@pytest.fixture
def hookloop_loop(hookloop_backend: str, hookloop_errors: ExceptionRecorder) -> Iterator[Any]:
    """A new hookloop loop on ``hookloop_backend``; fails on unclaimed errors."""
    import hookloop
    yield from checked_loop(hookloop.new_event_loop(hookloop_backend), hookloop_errors)


def checked_loop(loop: Any, errors: ExceptionRecorder) -> Iterator[Any]:
    """The body of a loop fixture, for any loop (asyncio's own too): yield
    ``loop`` with ``errors`` as its exception handler, close it afterwards,
    then fail the test if a report is left unclaimed."""
    loop.set_exception_handler(errors)
    try:
        yield loop
    finally:
        if not loop.is_closed():
            if not loop.is_running():
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
    if errors.contexts:
        lines = [f"- {c.get('message')}: {c.get('exception')!r}" for c in errors.contexts]
        pytest.fail("the loop's exception handler was called unexpectedly:\n" + "\n".join(lines),
                    pytrace=False)
