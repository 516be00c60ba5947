"""hookloop without hookloop-tls: every TLS entry point raises
PluginMissingError naming the distribution, before any socket is made.

The plugin is left out with ``disable=["tls"]`` or ``HOOKLOOP_DISABLE=tls``
(what ``hookloop plugins`` calls it); the result is the same as a machine
where it is not installed.  These tests are about hookloop only
(``hookloop_name``: the hookloop backends, never asyncio's loop).
"""
from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile

import pytest
from net_helpers import Recorder, connect, run, run_without_fd_leak

import hookloop


@pytest.fixture
def unix_path():
    directory = tempfile.mkdtemp(prefix="tls")
    yield os.path.join(directory, "s")
    shutil.rmtree(directory, ignore_errors=True)


def _calls(loop, client_ctx, server_ctx, unix_path, sock):
    return {
        "create_connection": lambda: loop.create_connection(
            Recorder, "127.0.0.1", 9, ssl=client_ctx),
        "create_connection ssl=True": lambda: loop.create_connection(
            Recorder, "127.0.0.1", 9, ssl=True),
        "create_server": lambda: loop.create_server(Recorder, "127.0.0.1", 0, ssl=server_ctx),
        "create_unix_connection": lambda: loop.create_unix_connection(
            Recorder, unix_path, ssl=client_ctx, server_hostname="localhost"),
        "create_unix_server": lambda: loop.create_unix_server(
            Recorder, unix_path, ssl=server_ctx),
        "connect_accepted_socket": lambda: loop.connect_accepted_socket(
            Recorder, sock, ssl=server_ctx),
        "open_connection": lambda: asyncio.open_connection("127.0.0.1", 9, ssl=client_ctx),
        "start_server": lambda: asyncio.start_server(
            lambda r, w: None, "127.0.0.1", 0, ssl=server_ctx),
    }


CALLS = ["create_connection", "create_connection ssl=True", "create_server",
         "create_unix_connection", "create_unix_server", "connect_accepted_socket",
         "open_connection", "start_server"]


def _check(exc):
    assert isinstance(exc, hookloop.PluginMissingError)
    assert isinstance(exc, NotImplementedError)
    assert exc.distribution == "hookloop-tls"
    assert "hookloop-tls" in str(exc)
    assert "pip install hookloop-tls" in str(exc)


@pytest.fixture(params=["disable", "environment"])
def tls_less_loop(request, hookloop_name, monkeypatch):
    """A hookloop loop without TLS: ``disable=["tls"]`` or HOOKLOOP_DISABLE."""
    if request.param == "disable":
        loop = hookloop.new_event_loop(hookloop_name, disable=["tls"])
    else:
        monkeypatch.setenv("HOOKLOOP_DISABLE", "tls")
        loop = hookloop.new_event_loop(hookloop_name)
    yield loop
    loop.close()


@pytest.mark.parametrize("call", CALLS)
def test_ssl_argument_needs_the_plugin(hookloop_name, client_ctx, server_ctx, unix_path, call):
    loop = hookloop.new_event_loop(hookloop_name, disable=["tls"])

    async def main():
        with pytest.raises(hookloop.PluginMissingError) as info:
            await _calls(loop, client_ctx, server_ctx, unix_path, sock)[call]()
        _check(info.value)

    try:
        with socket.socket() as sock:
            run_without_fd_leak(loop, main())
            assert sock.fileno() != -1
        assert not os.path.exists(unix_path)
    finally:
        loop.close()


def test_every_ssl_entry_point_needs_the_plugin(
        tls_less_loop, client_ctx, server_ctx, unix_path):
    async def main():
        for call in CALLS:
            with pytest.raises(hookloop.PluginMissingError) as info:
                await _calls(tls_less_loop, client_ctx, server_ctx, unix_path, sock)[call]()
            _check(info.value)

    with socket.socket() as sock:
        run_without_fd_leak(tls_less_loop, main())
    assert not os.path.exists(unix_path)


def test_start_tls_needs_the_plugin(tls_less_loop, client_ctx):
    async def main():
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            tr, pr = await connect(tls_less_loop, listener.getsockname())
            with pytest.raises(hookloop.PluginMissingError) as info:
                await tls_less_loop.start_tls(tr, pr, client_ctx, server_hostname="localhost")
            _check(info.value)
            # The transport was not touched: it still works as plain TCP.
            assert not tr.is_closing()
            conn, _ = listener.accept()
            with conn:
                tr.write(b"plain")
                conn.setblocking(False)
                assert await tls_less_loop.sock_recv(conn, 10) == b"plain"
            tr.close()
            assert await pr.lost is None

    run_without_fd_leak(tls_less_loop, main())


def test_plain_tcp_works_without_the_plugin(tls_less_loop):
    async def main():
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            tr, pr = await connect(tls_less_loop, listener.getsockname())
            tr.close()
            assert await pr.lost is None

    run(tls_less_loop, main())


def test_other_loops_keep_tls(hookloop_name):
    # Disabling the plugin for one loop leaves it for the next.
    without = hookloop.new_event_loop(hookloop_name, disable=["tls"])
    with_tls = hookloop.new_event_loop(hookloop_name)
    try:
        with pytest.raises(hookloop.PluginMissingError):
            without.service("tls")
        assert with_tls.service("tls") is not None
    finally:
        without.close()
        with_tls.close()
