"""Fixtures for hookloop-tls's tests: certificates and the loops they run on.

Every behavioural test here is written against asyncio's public API only and
runs on asyncio's own loop (``loop_name == "asyncio"``, the reference: a test
that fails there is a wrong test) and on each installed hookloop backend.
``--hookloop-backend=NAME`` (repeatable; ``asyncio`` is accepted too) picks
some of them.  Tests of what only hookloop has (the plugin disabled) take
``hookloop_name`` instead, which never includes asyncio.

Certificates come from trustme, once per session: a CA, a server
certificate for ``localhost``, ``127.0.0.1`` and ``::1``, and contexts built
from them for each test (tests may change their context: ALPN, limits).

The shared networking helpers (``net_helpers``) live in the repository's
``tests/`` directory, which is on ``sys.path`` when pytest runs from the
repository root over every test path; when it runs on this directory alone
it is not, so it is added here.
"""
from __future__ import annotations

import asyncio
import ssl
import sys
from pathlib import Path

import pytest

_REPO_TESTS = Path(__file__).resolve().parents[3] / "tests"
if str(_REPO_TESTS) not in sys.path:
    sys.path.append(str(_REPO_TESTS))

import hookloop  # noqa: E402
from hookloop.testing import Certificates, ExceptionRecorder, checked_loop  # noqa: E402


def _chosen(config: pytest.Config) -> list[str] | None:
    return config.getoption("hookloop_backend")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    chosen = _chosen(metafunc.config)
    if "loop_name" in metafunc.fixturenames:
        names = chosen or ["asyncio", *hookloop.available_backends()]
        metafunc.parametrize("loop_name", names, scope="session")
    if "hookloop_name" in metafunc.fixturenames:
        names = [n for n in chosen if n != "asyncio"] if chosen else \
            hookloop.available_backends()
        metafunc.parametrize("hookloop_name", names, scope="session")


@pytest.fixture(scope="session")
def certificates() -> Certificates:
    return Certificates()


@pytest.fixture
def server_ctx(certificates: Certificates) -> ssl.SSLContext:
    return certificates.server_context()


@pytest.fixture
def client_ctx(certificates: Certificates) -> ssl.SSLContext:
    return certificates.client_context()


@pytest.fixture
def loop_errors() -> ExceptionRecorder:
    """Reports made to ``tls_loop``'s exception handler; claim the expected
    ones with ``loop_errors.expect(...)``."""
    return ExceptionRecorder()


@pytest.fixture
def tls_loop(loop_name: str, loop_errors: ExceptionRecorder):
    """A new loop: asyncio's own, or hookloop's on a backend.  Teardown fails
    when its exception handler was called and the test did not claim it."""
    loop = asyncio.new_event_loop() if loop_name == "asyncio" else \
        hookloop.new_event_loop(loop_name)
    yield from checked_loop(loop, loop_errors)
