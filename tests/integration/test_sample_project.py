"""A third-party project's own test suite, run on hookloop with one option.

``sample_project/`` is a small project as its authors would have it: its own
``pytest.ini`` (strict pytest-asyncio and anyio modes, warnings are errors),
pytest-asyncio tests with function- and module-scoped async fixtures, a TCP
echo server and its clients, timeouts and cancellation, and anyio tests.
Its files are ``check_*.py`` so that this repository's own run does not
collect them.  Each test here copies it to a temporary directory (outside
this repository's configuration and caches, like any project) and runs it
in a pytest of its own, with the command line the README gives:

* with no option: every test must run on asyncio's own loop;
* with ``--hookloop-loop=NAME`` for each installed backend, and ``default``:
  every test (pytest-asyncio's and anyio's, fixtures included) must run on a
  hookloop loop of that backend.

The project's tests check that themselves (``loop_expectation.py``, told the
expected loop by ``SAMPLE_EXPECTED_LOOP``); this side checks that the run
passed and that all of its tests ran (the summary line), so a test that is
skipped, deselected or not collected fails here too.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

import hookloop

SAMPLE = Path(__file__).resolve().parent / "sample_project"
#: How many tests the sample project has (check_*.py).
SAMPLE_TESTS = 12
#: The README's command line ("Try hookloop on your project's tests").
README_COMMAND = "pytest --hookloop-loop={name}"


def _pytest_command() -> list[str]:
    """``pytest`` as the README runs it: the console script of this Python."""
    script = Path(sys.executable).with_name("pytest")
    return [str(script)] if script.exists() else [sys.executable, "-m", "pytest"]


def run_sample(tmp_path: Path, args: list[str], expected_loop: str
               ) -> subprocess.CompletedProcess[str]:
    """Run a fresh copy of the sample project's tests with ``args``."""
    missing = [name for name in ("pytest_asyncio", "anyio") if find_spec(name) is None]
    if missing:
        pytest.fail(f"the sample project needs {' and '.join(missing)}: "
                    "pip install pytest-asyncio anyio", pytrace=False)
    project = tmp_path / "sample_project"
    shutil.copytree(SAMPLE, project, ignore=shutil.ignore_patterns("__pycache__", ".*"))
    # This session's pytest settings (PYTEST_ADDOPTS, xdist's worker variables)
    # and backend choice are not the project's.
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("PYTEST_") and key != "HOOKLOOP_BACKEND"}
    env["SAMPLE_EXPECTED_LOOP"] = expected_loop
    return subprocess.run(args, cwd=project, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def summary(output: str) -> dict[str, int]:
    """The counts of pytest's closing line: ``{"passed": 12}``."""
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines, "pytest printed nothing"
    closing = lines[-1]
    assert re.fullmatch(r"=+ .* in [\d.]+s( \(.*\))? =+", closing), closing
    return {word: int(count) for count, word in re.findall(r"(\d+) (\w+)", closing)}


def assert_all_passed(result: subprocess.CompletedProcess[str]) -> None:
    report = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, report
    assert summary(result.stdout) == {"passed": SAMPLE_TESTS}, report


def test_without_the_option_the_project_runs_on_asyncio(tmp_path: Path) -> None:
    result = run_sample(tmp_path, _pytest_command(), "asyncio")
    assert_all_passed(result)
    assert "--hookloop-loop" not in result.stdout


@pytest.mark.parametrize("name", [*hookloop.available_backends(), "default"])
def test_with_the_option_the_project_runs_on_hookloop(tmp_path: Path, name: str) -> None:
    backend = hookloop.available_backends()[0] if name == "default" else name
    command = shlex.split(README_COMMAND.format(name=name))
    assert command[0] == "pytest"
    result = run_sample(tmp_path, [*_pytest_command(), *command[1:]], backend)
    assert_all_passed(result)
    header = f"hookloop: --hookloop-loop={name}: {backend} loops for pytest-asyncio ("
    assert header in result.stdout and "anyio (" in result.stdout, result.stdout


def test_the_sample_project_can_fail(tmp_path: Path) -> None:
    """The project's loop checks are real: told to expect a hookloop loop
    in a run without the option, the tests that check the loop fail."""
    result = run_sample(tmp_path, _pytest_command(), hookloop.available_backends()[0])
    assert result.returncode == 1, result.stdout
    assert summary(result.stdout) == {"failed": 6, "passed": SAMPLE_TESTS - 6}, result.stdout
