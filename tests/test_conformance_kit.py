"""The shipped conformance kit (``pytest --pyargs hookloop.testing.conformance``)
as a third-party backend's author runs it: from outside this repository, on
one backend, with a plugin missing.

It must run CPython's suites on that backend only, deselect (not skip, not
fail) the tests that need the missing plugin, say so per target, and print
the table of tests that ran on a hookloop loop.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

import hookloop


def test_the_kit_runs_from_anywhere_on_one_backend_with_a_plugin_missing(tmp_path):
    backend = hookloop.available_backends()[-1]
    env = {**os.environ, "HOOKLOOP_DISABLE": "tls"}
    env.pop("PYTEST_XDIST_WORKER", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-p", "no:xdist",
         "--pyargs", "hookloop.testing.conformance", f"--hookloop-backend={backend}",
         "-k", "TestStreams_ and (test_start_tls or test_open_connection or test_readline)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "CPython conformance: tests that ran a hookloop loop" in out, out
    assert f"{backend} " in out and "of them on a hookloop loop" in out, out
    assert re.search(rf"^{backend}: [1-9]\d* tls tests deselected \(hookloop-tls is not "
                     r"installed\)$", out, re.M), out
    ran = [line for line in out.splitlines() if "tests ran," in line]
    assert ran and all(line.split()[0] in (backend, f"{backend}_stall", "virtual_time")
                       for line in ran), ran


def test_the_baseline_runs_the_suites_on_asyncios_own_loop(tmp_path):
    # HOOKLOOP_CONFORMANCE_BASELINE=only: the harness alone, on asyncio's loop
    # (what proves the harness honest). test_runners routes its policies'
    # new_event_loop() back into the harness's new_loop: a baseline made
    # through asyncio.new_event_loop() recursed there.
    env = {**os.environ, "HOOKLOOP_CONFORMANCE_BASELINE": "only"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-p", "no:xdist",
         "--pyargs", "hookloop.testing.conformance", "-k", "TestRunners_ or TestContext_"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert re.search(r"^\d+ passed", out.splitlines()[-1]), out
