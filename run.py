#!/usr/bin/env python3
"""Set up and run hookloop on a fresh machine: `python3 run.py bench|test`.

Needs only python3 (3.11+) and pip.  Creates ./.venv (once), installs the
core and every plugin distribution in ./plugins (editable, so a checkout is
always what runs) plus the test dependencies, then:

  python3 run.py bench [ARGS]   compare the installed backends with asyncio's
                                loop on this machine (`hookloop bench ARGS`)
  python3 run.py test [ARGS]    run the whole test suite (pytest ARGS), in 4
                                pytest-xdist workers (`-n 0`: one process)
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
# setuptools: tests/test_out_of_tree_backend.py builds the plugin guide's example
# offline (pip --no-build-isolation), with a setuptools that builds wheels itself.
# mypy: tests/test_types.py type-checks the core and every plugin (--strict).
# tests/integration/: real clients of PostgreSQL (asyncpg) and Redis (redis-py),
# started by tools/services.py; the web stack (uvicorn, aiohttp, websockets,
# httpx); pytest-asyncio and anyio for the sample project run with the kit's
# --hookloop-loop.
TEST_DEPS = ["pytest>=8", "pytest-xdist>=3.5", "pytest-timeout>=2.3", "trustme>=1.1",
             "pluggy>=1.5", "setuptools>=77", "mypy>=1.10",
             "asyncpg>=0.32", "redis>=8.2", "uvicorn>=0.36", "aiohttp>=3.9",
             "websockets>=15", "httpx>=0.27", "pytest-asyncio>=1.4", "anyio>=4.1"]
#: pytest-xdist workers for `run.py test`.  Most of the run is CPython's
#: asyncio suites, whose tests mostly wait (timeouts, sleeps, child
#: processes): four workers overlap the waits even on two CPUs (about 2 min
#: instead of 10-12 on the 2-CPU machine this is developed on).  Classes stay
#: whole on one worker (--dist loadscope) for their setUpClass/tearDownClass.
#: `python3 run.py test -n 0` runs in one process.
TEST_WORKERS = ["-n", "4", "--dist", "loadscope"]
# Optional extras installed with a distribution: the bench's progress bar and its
# framework workloads (aiohttp, uvicorn).
# (matplotlib for `--plot` and uvloop are left to the user: see README.md.)
EXTRAS = {"bench": "[rich,frameworks]"}


def _python() -> Path:
    return VENV / "bin" / "python"


def _distributions() -> list[Path]:
    return [ROOT / "core", *sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml"))]


def _stamp() -> str:
    digest = hashlib.sha256()
    for dist in _distributions():
        digest.update(str(dist).encode())
        digest.update((dist / "pyproject.toml").read_bytes())
    digest.update(" ".join(TEST_DEPS).encode())
    digest.update(repr(sorted(EXTRAS.items())).encode())
    return digest.hexdigest()


def _run(*cmd: object) -> None:
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT)


def setup() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - run.py may meet any python3
        sys.exit(f"hookloop needs Python 3.11 or newer, this is {sys.version.split()[0]}")
    if not _python().exists():
        print("creating .venv ...", flush=True)
        try:
            _run(sys.executable, "-m", "venv", VENV)
        except subprocess.CalledProcessError:
            # Some distributions ship python3 without ensurepip; virtualenv
            # from PyPI does the same job.
            _run(sys.executable, "-m", "pip", "install", "--user", "-q", "virtualenv")
            _run(sys.executable, "-m", "virtualenv", "-q", VENV)
    stamp_file = VENV / ".hookloop-installed"
    stamp = _stamp()
    if stamp_file.exists() and stamp_file.read_text() == stamp:
        return
    print("installing hookloop and its plugins into .venv ...", flush=True)
    pip = [_python(), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    _run(*pip, "--upgrade", "pip")
    _run(*pip, *TEST_DEPS)
    editable = [arg for dist in _distributions()
                for arg in ("-e", f"{dist}{EXTRAS.get(dist.name, '')}")]
    _run(*pip, *editable)
    stamp_file.write_text(stamp)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("bench", "test"):
        print(__doc__, file=sys.stderr)
        return 2
    setup()
    command, rest = argv[0], argv[1:]
    if command == "bench":
        cmd = [_python(), "-m", "hookloop", "bench", *rest]
    else:
        cmd = [_python(), "-m", "pytest", *TEST_WORKERS, *rest]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([str(c) for c in cmd], cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
