"""Fixtures shared by the networking tests (helpers are in ``net_helpers``),
and the registration of the CPython conformance summary.

The workspace-wide setup (the emulated kqueue backend) is in the repository
root's ``conftest.py``; the loop fixtures come from ``hookloop.testing``.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from net_helpers import RawPeers, RecordingExecutor


def _conformance_summary():
    """``conformance/conformance_summary.py``, imported under its own name.

    Under the name ``conformance/conftest.py`` imports it by, so that both
    get the one module (that directory is on ``sys.path`` only once its
    conftest is loaded, which the xdist controller never does).
    """
    name = "conformance_summary"
    if name not in sys.modules:
        path = Path(__file__).with_name("conformance") / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def pytest_configure(config):
    # The CPython conformance summary must be where the terminal summary is
    # printed: with xdist, the controller, which loads this file but not
    # conformance/conftest.py (see conformance_summary.py).
    _conformance_summary().register(config)


@pytest.fixture
def raw_peer(hookloop_loop):
    """``await raw_peer(factory=Recorder)`` -> (transport, protocol, peer): a
    transport on one end of a TCP connection and a plain non-blocking socket
    on the other, closed after the test."""
    peers = RawPeers(hookloop_loop)
    yield peers
    peers.close()


@pytest.fixture
def recording_executor(hookloop_loop):
    """The loop's default executor, a real one recording what it runs."""
    executor = RecordingExecutor()
    hookloop_loop.set_default_executor(executor)
    yield executor
    executor.shutdown(wait=True)
