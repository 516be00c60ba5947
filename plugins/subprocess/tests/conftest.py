"""Fixtures of hookloop-subprocess's tests.

``sp_loop`` is the testing kit's ``hookloop_loop`` (one per installed backend,
failing on unexpected exception-handler calls).  With
``HOOKLOOP_SUBPROCESS_BASELINE=1`` in the environment it is asyncio's own
loop instead (same exception-handler check), so every test can first be
shown to pass on asyncio -- it tests behaviour, not our implementation.
Tests of hookloop-only behaviour (watchers, the missing-plugin error, loop
close killing children) skip themselves there with ``hookloop_only``.
"""
from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from subprocess_helpers import BASELINE

from hookloop.testing import checked_loop


@pytest.fixture
def sp_loop(request: pytest.FixtureRequest, hookloop_backend: str,
            hookloop_errors: Any) -> Iterator[Any]:
    if not BASELINE:
        yield request.getfixturevalue("hookloop_loop")
        return
    yield from checked_loop(asyncio.new_event_loop(), hookloop_errors)


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every ``subprocess.Popen`` made during the test (both loops spawn
    through ``subprocess.Popen``, looked up at call time), to check that each
    child was reaped without counting other tests' children."""
    made: list[Any] = []

    class RecordingPopen(subprocess.Popen):  # type: ignore[type-arg]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            try:
                super().__init__(*args, **kwargs)
            finally:
                if getattr(self, "pid", None) is not None:  # forked, even if exec failed
                    made.append(self)

    monkeypatch.setattr(subprocess, "Popen", RecordingPopen)
    return made
