"""The pytest plugin behind :mod:`hookloop.testing` (see its docstring)."""
from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest


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
