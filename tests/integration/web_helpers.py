"""Helpers shared by the web integration tests (not tests themselves).

* :func:`run`: run a coroutine on the test's loop with a deadline, so that a
  hang fails instead of blocking the run.
* :class:`UvicornProcess`: uvicorn started through its command line in a
  child process, on hookloop (``--loop hookloop:new_event_loop``) and the
  backend named in ``HOOKLOOP_BACKEND``; its log is read line by line by a
  thread, and the test waits for a line (an event) rather than sleeping.
* :func:`aiohttp_server`: an ``aiohttp.web.Application`` served by
  ``AppRunner``/``TCPSite`` on ``127.0.0.1:0`` on the running loop.
* :func:`certificates`: a trustme CA and a server certificate for
  ``localhost``/``127.0.0.1``, made once per process, with fresh contexts.
* :func:`payload`: deterministic pseudo-random bytes, so that sender and
  receiver can both compute what must arrive.

This directory is on ``sys.path`` when pytest imports the test modules here
(they are not in a package: pytest's default ``prepend`` import mode puts
their directory first), as ``tests/`` is for ``net_helpers``.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import random
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from hookloop.testing import Certificates

T = TypeVar("T")

HERE = Path(__file__).resolve().parent

#: Upper bound on one test's coroutine: a hang fails, not blocks.
TIMEOUT = 30.0

#: How long a child process may take to print a line the test waits for
#: (uvicorn's start imports a good deal; CI runs four workers on two CPUs).
PROCESS_TIMEOUT = 30.0


def run(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T] | Awaitable[T],
        timeout: float = TIMEOUT) -> T:
    """Run ``coro`` on ``loop``; ``TimeoutError`` if it takes over ``timeout``."""
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


def payload(size: int, seed: object = 0) -> bytes:
    """``size`` pseudo-random bytes, the same for the same ``seed``."""
    return random.Random(seed).randbytes(size)


def chunks(data: bytes, size: int) -> list[bytes]:
    """``data`` cut into pieces of ``size`` bytes (the last may be shorter)."""
    return [data[i:i + size] for i in range(0, len(data), size)]


# --------------------------------------------------------------------- uvicorn

class UvicornProcess:
    """``python -m uvicorn asgi_app:app`` on hookloop with ``backend``.

    uvicorn (0.36 and newer) takes ``--loop module:callable`` as a *loop
    factory*: it passes the callable to ``asyncio.Runner(loop_factory=...)``
    as it is (no call with ``use_subprocess``), so ``hookloop:new_event_loop``
    is what is wanted, and it picks its backend from ``HOOKLOOP_BACKEND``.
    The server listens on port 0; the port is read from uvicorn's
    "Uvicorn running on" line, which it logs once it is accepting.
    """

    def __init__(self, backend: str, *extra_args: str) -> None:
        env = dict(os.environ, HOOKLOOP_BACKEND=backend, PYTHONUNBUFFERED="1")
        self.args = [sys.executable, "-m", "uvicorn", "asgi_app:app",
                     "--app-dir", str(HERE), "--host", "127.0.0.1", "--port", "0",
                     "--loop", "hookloop:new_event_loop", "--http", "h11",
                     "--lifespan", "on", "--no-access-log", "--log-level", "info",
                     *extra_args]
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=env)
        self.lines: list[str] = []
        self._eof = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, name="uvicorn-log", daemon=True)
        self._reader.start()
        self.port = 0

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            with self._changed:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    @property
    def log(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for_line(self, needle: str, timeout: float = PROCESS_TIMEOUT) -> str:
        """The first log line containing ``needle``, waiting for it to come;
        ``AssertionError`` (with the log) if the process ends or ``timeout``
        passes first."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    if needle in line:
                        return line
                seen = len(self.lines)
                remaining = deadline - time.monotonic()
                if self._eof or remaining <= 0:
                    state = "ended" if self._eof else f"was silent for {timeout:g} s"
                    raise AssertionError(f"uvicorn {state} before logging {needle!r}; "
                                         f"log:\n" + "\n".join(self.lines))
                self._changed.wait(remaining)

    def start(self) -> UvicornProcess:
        line = self.wait_for_line("Uvicorn running on")
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        self.port = int(match.group(1))
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = PROCESS_TIMEOUT) -> int:
        """The exit status once the process has ended and its log is read."""
        returncode = self.proc.wait(timeout)
        self._reader.join(timeout)
        return returncode

    def stop(self) -> None:
        """End the process whatever its state (teardown)."""
        if self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# --------------------------------------------------------------------- aiohttp

@contextlib.asynccontextmanager
async def aiohttp_server(app: web.Application, ssl_context: ssl.SSLContext | None = None
                         ) -> AsyncIterator[str]:
    """Serve ``app`` on ``127.0.0.1:0`` on the running loop; yields the base
    URL (``http://`` or ``https://``), cleans up (runner and sockets) after."""
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        host, port = runner.addresses[0][:2]
        scheme = "https" if ssl_context is not None else "http"
        yield f"{scheme}://{host}:{port}"
    finally:
        await runner.cleanup()


# ------------------------------------------------------------------------- TLS

@functools.cache
def certificates() -> Certificates:
    return Certificates()
