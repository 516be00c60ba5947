"""Which event loop the sample project's tests must be running on.

``SAMPLE_EXPECTED_LOOP`` says it (``asyncio``, or a hookloop backend name);
hookloop's tests/integration/test_sample_project.py sets it for each run.
When it is unset (the project run by hand), the expectation follows the
``--hookloop-loop`` option of hookloop's testing kit.
"""
from __future__ import annotations

import asyncio
import os

import pytest

ENV = "SAMPLE_EXPECTED_LOOP"


def expected_backend(config: pytest.Config) -> str | None:
    """The hookloop backend expected, or ``None`` for asyncio's own loop."""
    value = os.environ.get(ENV)
    if value is not None:
        return None if value == "asyncio" else value
    option = config.getoption("hookloop_loop", default=None)
    if option is None:
        return None
    import hookloop
    return hookloop.get_backend(None if option == "default" else option).name


def assert_expected_loop(loop: asyncio.AbstractEventLoop, config: pytest.Config) -> None:
    """Fail unless ``loop`` is the loop this run must use."""
    import hookloop
    backend = expected_backend(config)
    if backend is None:
        assert not isinstance(loop, hookloop.EventLoop), f"expected asyncio's own loop: {loop!r}"
        assert isinstance(loop, asyncio.BaseEventLoop), f"expected asyncio's own loop: {loop!r}"
    else:
        assert isinstance(loop, hookloop.EventLoop), f"expected a hookloop loop: {loop!r}"
        assert loop.backend == backend, f"expected backend {backend}: {loop!r}"
