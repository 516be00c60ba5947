"""Fixtures shared by the integration tests: real servers, and running a test
body on the testing kit's loop.

Services: ``postgres_dsn`` and ``redis_url`` are session-scoped.  Each starts
its server with ``tools/services.py`` (a throwaway PostgreSQL cluster, a
Redis without persistence, both on free 127.0.0.1 ports) the first time a
test asks for it, in a base directory of its own per pytest-xdist worker, so
parallel workers never share a server; the session's end stops them and
removes the directory.  A server that cannot be installed or started FAILS
the tests that need it, with the script's message (naming the package and
the command to run): integration tests that silently skip test nothing.
``service_dir_factory`` makes further, dedicated service directories for a
test that must disturb its server (a restart).

Loop: ``run_async(body)`` runs a coroutine (or a coroutine function) to
completion on ``hookloop_loop`` -- the kit's loop on each installed backend,
whose teardown fails the test if the loop's exception handler was called
unexpectedly -- under a deadline, so a lost wake-up fails instead of hanging.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

SERVICES_PY = Path(__file__).resolve().parents[2] / "tools" / "services.py"
#: A first run may install Debian packages (apt-get update + install).
START_TIMEOUT = 600.0
#: Default deadline of one test body on the loop.
BODY_TIMEOUT = 60.0

T = TypeVar("T")


class ServiceDir:
    """One ``tools/services.py`` base directory and the servers started in it."""

    def __init__(self, base: Path) -> None:
        self.base = base

    def _argv(self, command: str, only: tuple[str, ...]) -> list[str]:
        argv = [sys.executable, str(SERVICES_PY), command, "--base", str(self.base)]
        for name in only:
            argv += ["--only", name]
        return argv

    @staticmethod
    def _env_lines(output: str) -> dict[str, str]:
        return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)

    def run(self, command: str, *only: str) -> dict[str, str]:
        """``services.py COMMAND --base ... [--only ...]``; the ``KEY=value``
        lines it printed.  The test fails, with the script's message, if it
        exits non-zero."""
        result = subprocess.run(self._argv(command, only), capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=START_TIMEOUT)
        if result.returncode != 0:
            pytest.fail(f"`{' '.join(self._argv(command, only))}` exited with "
                        f"{result.returncode}:\n{result.stderr.strip()}", pytrace=False)
        return self._env_lines(result.stdout)

    async def arun(self, command: str, *only: str) -> dict[str, str]:
        """:meth:`run` from a coroutine: the script is a child process of the
        running loop, which goes on serving its other tasks meanwhile."""
        process = await asyncio.create_subprocess_exec(
            *self._argv(command, only), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await process.communicate()
        if process.returncode != 0:
            raise AssertionError(f"`services.py {command}` exited with {process.returncode}:\n"
                                 f"{err.decode(errors='replace').strip()}")
        return self._env_lines(out.decode())

    def remove(self) -> None:
        """Stop everything still running here and remove the directory."""
        try:
            if (self.base / "state.json").exists():
                self.run("stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


def _new_base(label: str) -> Path:
    # Not pytest's tmp_path: /tmp/pytest-of-root is 0700, and as root the
    # cluster runs as the ``postgres`` user, who must get through it.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return Path(tempfile.mkdtemp(prefix=f"hookloop-{label}-{worker}-"))


@pytest.fixture(scope="session")
def services_dir() -> Iterator[ServiceDir]:
    """This worker's service directory: whatever was started in it is
    stopped, and it is removed, at the session's end (one ``stop``)."""
    services = ServiceDir(_new_base("services"))
    yield services
    services.remove()


@pytest.fixture(scope="session")
def postgres_dsn(services_dir: ServiceDir) -> str:
    """The DSN of this worker's PostgreSQL: user and database ``hookloop``
    with a password, on 127.0.0.1 (``HOOKLOOP_PG_DSN``)."""
    return services_dir.run("start", "postgres")["HOOKLOOP_PG_DSN"]


@pytest.fixture(scope="session")
def redis_url(services_dir: ServiceDir) -> str:
    """The URL of this worker's Redis on 127.0.0.1 (``HOOKLOOP_REDIS_URL``)."""
    return services_dir.run("start", "redis")["HOOKLOOP_REDIS_URL"]


@pytest.fixture
def service_dir_factory() -> Iterator[Callable[[], ServiceDir]]:
    """``service_dir_factory()`` -> a new, empty :class:`ServiceDir` for
    servers of the test's own; all are stopped and removed after the test."""
    made: list[ServiceDir] = []

    def make() -> ServiceDir:
        made.append(ServiceDir(_new_base("dedicated")))
        return made[-1]

    yield make
    for services in made:
        services.remove()


@pytest.fixture
def run_async(hookloop_loop: asyncio.AbstractEventLoop
              ) -> Callable[..., Any]:
    """``run_async(body, timeout=60)``: run ``body`` (a coroutine or a
    coroutine function) on ``hookloop_loop`` and return its result; a body
    still running at the deadline fails with ``TimeoutError``."""

    def run(body: Coroutine[Any, Any, T] | Callable[[], Coroutine[Any, Any, T]],
            timeout: float = BODY_TIMEOUT) -> T:
        coro = body() if callable(body) else body
        return hookloop_loop.run_until_complete(asyncio.wait_for(coro, timeout))

    return run
