"""The testing kit's loop fixture body, ``checked_loop``: a report left on the
loop's exception handler fails the test; a claimed one does not; the loop is
closed either way, asyncio's own loop as well as ours.

And ``--hookloop-loop`` (``hookloop.testing.session_loop``): nothing without
it, a usage error for a backend that is not there, anyio's asyncio backend
given hookloop's loop factory, a project's own pytest-asyncio loop factories
kept by name.  A whole project run with it: tests/integration/test_sample_project.py.
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import hookloop
from hookloop.testing import ExceptionRecorder, checked_loop
from hookloop.testing.session_loop import SessionLoop


def _new_loop(name: str) -> asyncio.AbstractEventLoop:
    return asyncio.new_event_loop() if name == "asyncio" else hookloop.new_event_loop(name)


@pytest.fixture(params=["asyncio", *hookloop.available_backends()])
def loop_name(request: pytest.FixtureRequest) -> str:
    return request.param


def test_an_unclaimed_report_fails_the_test(loop_name):
    errors = ExceptionRecorder()
    body = checked_loop(_new_loop(loop_name), errors)
    loop = next(body)
    loop.call_soon(loop.call_exception_handler, {"message": "boom", "exception": OSError(5)})
    loop.run_until_complete(asyncio.sleep(0))
    with pytest.raises(pytest.fail.Exception, match=r"unexpectedly:\n- boom: OSError\(5\)"):
        next(body)
    assert loop.is_closed()


def test_a_claimed_report_passes(loop_name):
    errors = ExceptionRecorder()
    body = checked_loop(_new_loop(loop_name), errors)
    loop = next(body)
    loop.call_exception_handler({"message": "expected trouble", "exception": ValueError()})
    assert errors.expect("expected", ValueError)["message"] == "expected trouble"
    with pytest.raises(StopIteration):
        next(body)
    assert loop.is_closed()


def test_expect_refuses_what_was_not_reported():
    errors = ExceptionRecorder()
    errors(None, {"message": "one thing", "exception": KeyError()})
    with pytest.raises(AssertionError, match="no exception handler call matching 'other'"):
        errors.expect("other")
    with pytest.raises(AssertionError):
        errors.expect("one thing", ValueError)  # the right message, the wrong exception


def test_an_already_closed_loop_is_left_alone(loop_name):
    body = checked_loop(_new_loop(loop_name), ExceptionRecorder())
    next(body).close()
    with pytest.raises(StopIteration):
        next(body)


# ----------------------------------------------------------------------
# --hookloop-loop
# ----------------------------------------------------------------------

INI = """\
[pytest]
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""


def run_pytest(tmp_path: Path, *args: str, files: dict[str, str] | None = None,
               ini: str = INI) -> subprocess.CompletedProcess[str]:
    """pytest in a fresh project in ``tmp_path`` made of ``files``."""
    (tmp_path / "pytest.ini").write_text(ini)
    for name, text in (files or {}).items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def test_without_hookloop_loop_nothing_is_registered(pytestconfig):
    if pytestconfig.getoption("hookloop_loop") is not None:
        pytest.skip("this session was given --hookloop-loop")
    names = [name for name, _ in pytestconfig.pluginmanager.list_name_plugin()]
    assert not [name for name in names if name.startswith("hookloop-loop")], names
    factories = getattr(pytestconfig.hook, "pytest_asyncio_loop_factories", None)
    assert factories is None or not factories.get_hookimpls()


def test_an_unknown_backend_is_a_usage_error(tmp_path):
    result = run_pytest(tmp_path, "--hookloop-loop=nosuch")
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout
    installed = ", ".join(hookloop.available_backends())
    assert (f"ERROR: --hookloop-loop=nosuch: unknown backend 'nosuch'; "
            f"installed backends: {installed}") in result.stderr


def test_an_empty_backend_name_is_a_usage_error(tmp_path):
    result = run_pytest(tmp_path, "--hookloop-loop=")
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout
    assert "--hookloop-loop: expected a backend name or 'default'" in result.stderr


def test_with_neither_library_the_option_switches_nothing(tmp_path):
    result = run_pytest(tmp_path, "-p", "no:asyncio", "-p", "no:anyio", "--hookloop-loop=select",
                        files={"test_plain.py": "def test_plain():\n    pass\n"},
                        ini="[pytest]\nfilterwarnings = error\n")
    assert result.returncode == 0, result.stdout + result.stderr
    assert ("hookloop: --hookloop-loop=select: select loops for nothing: "
            "neither pytest-asyncio nor anyio is active") in result.stdout


@pytest.mark.parametrize("backend", hookloop.available_backends())
def test_anyio_asyncio_backend_values_get_the_loop_factory(backend):
    chosen = SessionLoop(backend, backend)
    name, options = chosen.anyio_backend("asyncio")
    assert name == "asyncio" and list(options) == ["loop_factory"]
    loop = options["loop_factory"]()
    try:
        assert isinstance(loop, hookloop.EventLoop) and loop.backend == backend
    finally:
        loop.close()
    # A project's options are kept; its own loop choice is what the option replaces.
    project = {"debug": True, "use_uvloop": True, "loop_factory": asyncio.new_event_loop}
    name, options = chosen.anyio_backend(("asyncio", project))
    assert name == "asyncio" and options["debug"] is True and options["use_uvloop"] is True
    assert options["loop_factory"] == chosen.new_event_loop
    assert project["loop_factory"] is asyncio.new_event_loop  # the project's dict is not changed


@pytest.mark.parametrize("value", ["trio", ("trio", {"restrict_keyboard_interrupt_to_checkpoints":
                                                     True}), ("asyncio",), 42, ("asyncio", [])])
def test_other_anyio_backend_values_are_left_alone(value):
    assert SessionLoop("select", "select").anyio_backend(value) is value


def test_a_projects_own_loop_factories_are_kept_by_name(tmp_path):
    plugin = pytest.importorskip("pytest_asyncio.plugin")
    if not hasattr(plugin.PytestAsyncioSpecs, "pytest_asyncio_loop_factories"):
        pytest.skip("pytest-asyncio before 1.4 has no loop factory hook")
    backend = hookloop.available_backends()[-1]
    files = {
        "conftest.py": """\
            import asyncio

            def pytest_asyncio_loop_factories(config, item):
                return {"plain": asyncio.new_event_loop, "other": asyncio.new_event_loop}
            """,
        "test_factories.py": f"""\
            import asyncio
            import pytest
            import hookloop

            def check():
                loop = asyncio.get_running_loop()
                assert isinstance(loop, hookloop.EventLoop) and loop.backend == {backend!r}

            @pytest.mark.asyncio
            async def test_each_factory():
                check()

            @pytest.mark.asyncio(loop_factories=["other"])
            async def test_one_factory():
                check()
            """,
    }
    result = run_pytest(tmp_path, "-v", f"--hookloop-loop={backend}", files=files)
    assert result.returncode == 0, result.stdout + result.stderr
    for test in ("test_each_factory[plain]", "test_each_factory[other]", "test_one_factory"):
        assert f"test_factories.py::{test} PASSED" in result.stdout, result.stdout
    assert "3 passed" in result.stdout
    without = run_pytest(tmp_path, files=files)  # the same project fails on asyncio's loops
    assert "3 failed" in without.stdout, without.stdout
