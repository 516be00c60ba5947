"""The README's "Using hookloop with uvicorn, aiohttp and pytest" snippets work.

Each snippet is read from README.md (the fenced block after its
``<!-- snippet: NAME -->`` marker) and run as a user would, on every
backend: the uvicorn command line on a small app of that name, the aiohttp
script as ``app.py``.  Both servers answer with the backend their loop runs
on, so a snippet that silently ran on asyncio's own loop (or on another
backend) fails.  The pytest one-liner is the command
``test_sample_project.py`` runs (its ``README_COMMAND``).
"""
from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
DEADLINE = 60.0


def snippet(name: str) -> str:
    """The fenced block after ``<!-- snippet: name -->`` in the README."""
    found = re.search(rf"<!-- snippet: {name} -->\n```\w*\n(.*?)```", README, re.S)
    assert found, f"README.md has no snippet {name!r}"
    return found.group(1)


class Server:
    """A server process whose output is watched for the line saying where it listens."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self.output: list[str] = []
        self._ready = threading.Event()
        self._pattern: re.Pattern[str] | None = None
        self.match: re.Match[str] | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)

    def wait_for(self, pattern: str) -> re.Match[str]:
        self._pattern = re.compile(pattern)
        self._reader.start()
        if not self._ready.wait(DEADLINE) or self.match is None:
            self.stop()
            raise AssertionError(f"no line matching {pattern!r}:\n{''.join(self.output)}")
        return self.match

    def _read(self) -> None:
        assert self.proc.stdout is not None and self._pattern is not None
        for line in self.proc.stdout:
            self.output.append(line)
            if self.match is None and (found := self._pattern.search(line)):
                self.match = found
                self._ready.set()
        self._ready.set()  # end of output: wait_for reports it

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(DEADLINE)
        self._reader.join(DEADLINE)


@pytest.fixture
def environment(hookloop_backend: str) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLOOP_")}
    env["PYTHONUNBUFFERED"] = "1"
    yield env


def get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=DEADLINE) as response:
        return str(response.read().decode())


MYAPP = '''\
import asyncio


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = f"hello from {asyncio.get_running_loop().backend}".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})
'''


def test_uvicorn_snippet(hookloop_backend: str, environment: dict[str, str],
                         tmp_path: Path) -> None:
    words = shlex.split(snippet("uvicorn"))
    assignments = dict(w.split("=", 1) for w in words if re.match(r"^[A-Z_]+=", w))
    argv = [w for w in words if not re.match(r"^[A-Z_]+=", w)]
    assert argv[0] == "uvicorn" and assignments.keys() == {"HOOKLOOP_BACKEND"}
    (tmp_path / "myapp.py").write_text(MYAPP)
    environment["HOOKLOOP_BACKEND"] = hookloop_backend
    uvicorn = Path(sys.executable).with_name("uvicorn")
    server = Server([str(uvicorn), *argv[1:], "--host", "127.0.0.1", "--port", "0"],
                    environment, tmp_path)
    try:
        port = int(server.wait_for(r"Uvicorn running on http://127\.0\.0\.1:(\d+)").group(1))
        assert get(port) == f"hello from {hookloop_backend}"
    finally:
        server.stop()


def test_aiohttp_snippet(hookloop_backend: str, environment: dict[str, str],
                         tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(snippet("aiohttp"))
    with socket.socket() as probe:  # a free port for PORT (the snippet's own knob)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment.update(HOOKLOOP_BACKEND=hookloop_backend, PORT=str(port))
    server = Server([sys.executable, "app.py"], environment, tmp_path)
    try:
        server.wait_for(r"Running on http://")
        assert get(port) == f"hello from {hookloop_backend}"
    finally:
        server.stop()


def test_pytest_snippet_is_the_command_the_sample_project_runs() -> None:
    from test_sample_project import README_COMMAND

    assert README_COMMAND.format(name="epoll") in README
    assert README_COMMAND.format(name="default") in README
