"""The plugin guide's backend, built and installed as a third party's would be.

``docs/examples/minimal_backend`` is a distribution of its own (pyproject.toml,
an entry point in the ``hookloop`` group, only public hookloop names).  These
tests build it with pip into a temporary directory -- offline: no build
isolation, no index, the setuptools of this environment (``run.py`` installs
one that builds wheels) -- and then, in fresh processes with that directory on
``PYTHONPATH``, check what a user and a backend author see: the backend is
listed by ``hookloop.available_backends()`` and ``hookloop plugins``, a loop
on it runs a program with a timer and a TCP echo, and the contract kit
(``pytest --pyargs hookloop.testing.contract --hookloop-backend=minimal``)
passes on it.
"""
from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import hookloop

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "minimal_backend"
PACKAGE = EXAMPLE / "src" / "hookloop_minimal"
#: Public hookloop modules a plugin may import besides ``hookloop`` itself.
PUBLIC_MODULES = {"hookloop", "hookloop.poller", "hookloop.testing"}
#: Each child process; generous, so only a hang fails by time.
TIMEOUT = 120


def _setuptools_builds_wheels() -> bool:
    try:
        version = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        return False
    major, minor = (int(n) for n in re.findall(r"\d+", version)[:2])
    return (major, minor) >= (70, 1)  # bdist_wheel is setuptools' own from 70.1


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example, built and installed (``pip install --target``) into a temp dir."""
    if not _setuptools_builds_wheels():
        pytest.fail("building the example offline needs setuptools>=70.1 in this "
                    "environment (python3 run.py test installs it)", pytrace=False)
    root = tmp_path_factory.mktemp("out_of_tree")
    source = root / "source"  # pip builds in the source tree: build a copy
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "__pycache__"))
    target = root / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
         "--no-index", "--disable-pip-version-check", "-q", "--target", str(target),
         str(source)],
        capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (target / "hookloop_minimal" / "__init__.py").is_file()
    return target


def _run(site: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLOOP_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          env=env, cwd=cwd or site.parent, timeout=TIMEOUT)


def _python(site: Path, code: str) -> str:
    done = _run(site, "-c", textwrap.dedent(code))
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_example_imports_only_public_names() -> None:
    """What a third party can rely on: ``hookloop.__all__``, ``hookloop.poller``,
    ``hookloop.testing``."""
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "hookloop":
                        assert alias.name in PUBLIC_MODULES, (path, alias.name)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hookloop"):
                assert node.module in PUBLIC_MODULES, (path, node.module)
                if node.module == "hookloop":
                    for alias in node.names:
                        assert alias.name in hookloop.__all__, (path, alias.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id == "hookloop":
                assert node.attr in hookloop.__all__ or f"hookloop.{node.attr}" in \
                    PUBLIC_MODULES, (path, node.attr)


def test_available_backends_lists_it(site: Path) -> None:
    out = _python(site, """
        import hookloop, hookloop_minimal
        print(hookloop.available_backends())
        backend = hookloop.get_backend("minimal")
        print(backend.distribution, backend.priority, backend.factory.__module__)
        print(hookloop_minimal.__file__)
    """).splitlines()
    assert "'minimal'" in out[0]
    assert out[1] == "hookloop-minimal 10 hookloop_minimal"
    assert Path(out[2]).resolve() == (site / "hookloop_minimal" / "__init__.py").resolve()


def test_hookloop_plugins_shows_it(site: Path) -> None:
    done = _run(site, "-m", "hookloop", "plugins")
    assert done.returncode == 0, done.stderr
    lines = [line.split() for line in done.stdout.splitlines()]
    assert ["minimal", "hookloop-minimal", "0.1.0"] in lines
    hooks = lines[lines.index(["minimal", "hookloop-minimal", "0.1.0"]) + 1]
    assert hooks == ["hooks:", "hookloop_pollers"]
    assert ["minimal", "priority", "10", "available"] in lines


def test_a_loop_on_it_runs_a_program(site: Path) -> None:
    out = _python(site, """
        import asyncio, hookloop

        async def echo(reader, writer):
            writer.write(await reader.read(100))
            await writer.drain()
            writer.close()

        async def main():
            loop = asyncio.get_running_loop()
            started = loop.time()
            await asyncio.sleep(0.05)
            slept = loop.time() - started
            server = await asyncio.start_server(echo, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"ping")
            answer = await reader.read()
            writer.close()
            await writer.wait_closed()
            server.close()
            await server.wait_closed()
            return (loop.backend, type(loop.poller).__module__, slept >= 0.05, answer,
                    loop.poller.statistics()["polls"] > 0)

        print(hookloop.run(main(), backend="minimal"))
    """)
    assert out.strip() == "('minimal', 'hookloop_minimal', True, b'ping', True)"


def test_the_contract_kit_passes_on_it(site: Path) -> None:
    (site.parent / "pytest.ini").write_text("[pytest]\n")  # a project of its own
    done = _run(site, "-m", "pytest", "-c", str(site.parent / "pytest.ini"),
                "-p", "no:cacheprovider", "-v", "--pyargs", "hookloop.testing.contract",
                "--hookloop-backend=minimal")
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr
    ran = re.findall(r"^\S+::(test_\w+)\[(\w+)\] PASSED", done.stdout, re.MULTILINE)
    assert ran and {backend for _, backend in ran} == {"minimal"}
    assert len(ran) >= 25, done.stdout[-3000:]
    assert not re.search(r"\b(failed|error|skipped)\b", done.stdout.splitlines()[-1])
