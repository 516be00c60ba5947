"""The demo's network workloads, run in-process at a tiny size.

Speed is not checked here (the demo reports it); what is checked is that
each workload runs to the end on every subject, verifies its result (a
corrupted echo or response fails it), and leaves no socket open.
"""
from __future__ import annotations

import os
import warnings

import pytest

import hookloop
from hookloop.builtins import demo

NETWORK = ["tcp_echo_1k", "tcp_echo_64k", "streams_echo", "http"]
SUBJECTS = ["asyncio", *hookloop.available_backends()]


def _fd_count():
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("subject", SUBJECTS)
@pytest.mark.parametrize("workload", NETWORK)
def test_network_workload_runs_and_closes_everything(subject, workload):
    loop = demo._make_loop(subject)
    try:
        before = _fd_count()
        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)
            rate = demo._LOOP_WORKLOADS[workload](loop, 2 * demo.CONNECTIONS)
        assert rate > 0
        assert _fd_count() == before
    finally:
        loop.close()


def _corrupt_echo(self, data):
    self.transport.write(data[:-1] + bytes([data[-1] ^ 1]))


@pytest.mark.parametrize("subject", ["asyncio", hookloop.available_backends()[0]])
def test_a_corrupted_echo_fails_the_workload(subject, monkeypatch):
    monkeypatch.setattr(demo._EchoServer, "data_received", _corrupt_echo)
    loop = demo._make_loop(subject)
    try:
        before = _fd_count()
        with pytest.raises(AssertionError, match="differs"):
            demo.tcp_echo_1k(loop, demo.CONNECTIONS)
        assert _fd_count() == before  # everything aborted and closed
    finally:
        loop.close()


@pytest.mark.parametrize("subject", ["asyncio", hookloop.available_backends()[0]])
def test_a_wrong_http_response_fails_the_workload(subject, monkeypatch):
    def respond(self, head):
        self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhi\n")
    monkeypatch.setattr(demo._HttpServer, "respond", respond)
    loop = demo._make_loop(subject)
    try:
        before = _fd_count()
        with pytest.raises(AssertionError, match="bad response"):
            demo.http(loop, demo.CONNECTIONS)
        assert _fd_count() == before
    finally:
        loop.close()


@pytest.mark.parametrize("subject", ["asyncio", hookloop.available_backends()[0]])
def test_a_corrupted_stream_echo_fails_the_workload(subject, monkeypatch):
    real_write = demo.asyncio.StreamWriter.write

    def write(self, data):
        if self.transport.get_extra_info("sockname")[1] == self._demo_port:
            data = data[:-1] + b"?"
        real_write(self, data)

    loop = demo._make_loop(subject)
    real_listening = demo._listening_socket

    def listening():
        sock = real_listening()
        monkeypatch.setattr(demo.asyncio.StreamWriter, "_demo_port",
                            sock.getsockname()[1], raising=False)
        return sock

    monkeypatch.setattr(demo, "_listening_socket", listening)
    monkeypatch.setattr(demo.asyncio.StreamWriter, "write", write)
    try:
        before = _fd_count()
        with pytest.raises(AssertionError, match="differs"):
            demo.streams_echo(loop, demo.CONNECTIONS)
        assert _fd_count() == before
    finally:
        loop.close()


def test_workload_selection():
    assert demo.selected_workloads(None) == list(demo.WORKLOADS)
    assert demo.selected_workloads("http,call_soon") == ["call_soon", "http"]
    with pytest.raises(SystemExit, match="unknown workload.*nope"):
        demo.selected_workloads("http,nope")
