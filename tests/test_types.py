"""``mypy --strict`` passes on the core and on every plugin.

The public API is typed (``py.typed`` in every distribution), so a type
checker is how a plugin author reads it: a hole here is a hole in the
contract.  Each distribution is checked as its own source tree, the way its
users' checkers see it; the kqueue backend as on macOS, the platform its
``select.kqueue`` exists on (Linux's typeshed has none).  The workspace's
``[tool.mypy]`` settings apply (strict; matplotlib, the bench's optional
extra, untyped).

mypy is a test dependency (run.py installs it); the test fails, naming
what to install, rather than skip where it is missing.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TREES = [("core", ROOT / "core" / "src", ["hookloop"], [])]
for src in sorted((ROOT / "plugins").glob("*/src")):
    packages = sorted(p.name for p in src.iterdir()
                      if (p / "__init__.py").is_file())
    platform = ["--platform", "darwin"] if src.parent.name == "kqueue_backend" else []
    TREES.append((src.parent.name, src, packages, platform))


@pytest.mark.parametrize("name, src, packages, extra", TREES, ids=[t[0] for t in TREES])
def test_mypy_strict(name, src, packages, extra, tmp_path):
    assert importlib.util.find_spec("mypy") is not None, \
        "mypy is not installed: pip install mypy (python3 run.py test installs it)"
    assert packages, f"no package found under {src}"
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(tmp_path / "cache"), *extra, *packages],
        cwd=src, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"mypy --strict on {name}:\n{result.stdout}{result.stderr}"
