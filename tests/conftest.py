"""Fixtures shared by the networking tests (helpers are in ``net_helpers``).

The workspace-wide setup (the emulated kqueue backend) is in the repository
root's ``conftest.py``; the loop fixtures come from ``hookloop.testing``.
"""
from __future__ import annotations

import pytest
from net_helpers import RawPeers, RecordingExecutor


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
