"""Bad input to the TLS arguments: the errors asyncio gives, raised before
any connection is made where asyncio does so, and never leaking a socket.

The argument checks without ssl= need no TLS at all; the others (timeouts
that are not positive, server_hostname rules, start_tls on a closing
transport) go through the TLS layer.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import tempfile

import pytest
from net_helpers import (
    Recorder,
    close_server,
    connect,
    run,
    run_without_fd_leak,
    start_server,
)


@pytest.fixture
def unix_path():
    directory = tempfile.mkdtemp(prefix="tls")
    yield os.path.join(directory, "s")
    shutil.rmtree(directory, ignore_errors=True)


def _call(loop, method, unix_path, sock, **kwargs):
    """``method`` with plausible other arguments and ``kwargs`` (``sock``
    for connect_accepted_socket)."""
    if method == "create_connection":
        return loop.create_connection(Recorder, "127.0.0.1", 9, **kwargs)
    if method == "create_server":
        return loop.create_server(Recorder, "127.0.0.1", 0, **kwargs)
    if method == "create_unix_connection":
        return loop.create_unix_connection(Recorder, unix_path, **kwargs)
    if method == "create_unix_server":
        return loop.create_unix_server(Recorder, unix_path, **kwargs)
    if method == "connect_accepted_socket":
        return loop.connect_accepted_socket(Recorder, sock, **kwargs)
    raise AssertionError(method)


ALL_METHODS = ["create_connection", "create_server", "create_unix_connection",
               "create_unix_server", "connect_accepted_socket"]


@pytest.mark.parametrize("method", ALL_METHODS)
def test_timeouts_without_ssl(tls_loop, unix_path, method):
    async def main():
        for argument in ("ssl_handshake_timeout", "ssl_shutdown_timeout"):
            with pytest.raises(ValueError, match=f"{argument} is only meaningful with ssl"):
                await _call(tls_loop, method, unix_path, sock, **{argument: 1.0})

    with socket.socket() as sock:
        run_without_fd_leak(tls_loop, main())
        assert sock.fileno() != -1  # the caller's socket is left alone
    assert not os.path.exists(unix_path)


@pytest.mark.parametrize("method", ["create_connection", "create_unix_connection"])
def test_server_hostname_without_ssl(tls_loop, unix_path, method):
    async def main():
        with pytest.raises(ValueError, match="server_hostname is only meaningful with ssl"):
            await _call(tls_loop, method, unix_path, None, server_hostname="localhost")

    run_without_fd_leak(tls_loop, main())


@pytest.mark.parametrize("method", ["create_server", "create_unix_server"])
def test_ssl_true_on_a_server(tls_loop, unix_path, method):
    # A server has no default context: it needs a certificate.
    async def main():
        with pytest.raises(TypeError, match="ssl argument must be an SSLContext or None"):
            await _call(tls_loop, method, unix_path, None, ssl=True)

    run_without_fd_leak(tls_loop, main())
    assert not os.path.exists(unix_path)


def test_ssl_without_host_needs_server_hostname(tls_loop, client_ctx):
    async def main():
        with socket.socket() as sock:
            with pytest.raises(ValueError, match="server_hostname"):
                await tls_loop.create_connection(Recorder, sock=sock, ssl=client_ctx)
            assert sock.fileno() != -1  # the caller's socket is left alone

    run_without_fd_leak(tls_loop, main())


def test_unix_ssl_needs_server_hostname(tls_loop, client_ctx, unix_path):
    async def main():
        with pytest.raises(ValueError, match="server_hostname"):
            await tls_loop.create_unix_connection(Recorder, unix_path, ssl=client_ctx)

    run_without_fd_leak(tls_loop, main())


TIMEOUTS = ["ssl_handshake_timeout", "ssl_shutdown_timeout"]
NON_POSITIVE = [0, -1.5]


@pytest.mark.parametrize("argument", TIMEOUTS)
def test_non_positive_timeout_connect(tls_loop, client_ctx, argument):
    async def main():
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(len(NON_POSITIVE))
            for value in NON_POSITIVE:
                with pytest.raises(ValueError, match=f"{argument} should be a positive number"):
                    await connect(tls_loop, listener.getsockname(), ssl=client_ctx,
                                  server_hostname="localhost", **{argument: value})

    run_without_fd_leak(tls_loop, main())


@pytest.mark.parametrize("argument", TIMEOUTS)
def test_non_positive_timeout_connect_accepted_socket(tls_loop, loop_name, server_ctx, argument):
    async def main():
        for value in NON_POSITIVE:
            # A connected socket each time: asyncio 3.14 looks at the peer
            # before it checks the timeouts, and closes the socket after.
            sock, peer = socket.socketpair()
            with sock, peer:
                with pytest.raises(ValueError, match=f"{argument} should be a positive number"):
                    await tls_loop.connect_accepted_socket(Recorder, sock, ssl=server_ctx,
                                                           **{argument: value})
                if loop_name != "asyncio":
                    assert sock.fileno() != -1  # ours leaves the caller's socket alone

    run_without_fd_leak(tls_loop, main())


@pytest.mark.parametrize("argument", TIMEOUTS)
def test_non_positive_timeout_start_tls(tls_loop, client_ctx, argument):
    async def main():
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            tr, pr = await connect(tls_loop, listener.getsockname())
            for value in NON_POSITIVE:
                with pytest.raises(ValueError, match=f"{argument} should be a positive number"):
                    await tls_loop.start_tls(tr, pr, client_ctx, server_hostname="localhost",
                                             **{argument: value})
            tr.close()
            await pr.lost
        return pr

    pr = run_without_fd_leak(tls_loop, main())
    assert pr.lost_calls == 1


@pytest.mark.parametrize("argument", TIMEOUTS)
def test_non_positive_timeout_server(tls_loop, server_ctx, client_ctx, argument):
    # asyncio accepts the value in create_server and fails each connection
    # instead (the client sees it reset; the server's protocol hears
    # nothing).  Refusing it in create_server is allowed too, and better.
    async def main():
        for value in NON_POSITIVE:
            try:
                server, addr, protocols = await start_server(tls_loop, Recorder,
                                                             ssl=server_ctx, **{argument: value})
            except ValueError as exc:
                assert f"{argument} should be a positive number" in str(exc)
                continue
            with pytest.raises((ConnectionError, ssl.SSLError)):
                await connect(tls_loop, addr, ssl=client_ctx, server_hostname="localhost")
            await close_server(server)
            assert [p.events for p in protocols] in ([], [[]])

    run_without_fd_leak(tls_loop, main())


@pytest.mark.parametrize("when", ["closing", "closed"])
def test_start_tls_on_a_closing_transport(tls_loop, loop_name, client_ctx, when, request):
    if loop_name == "asyncio":
        # gh-105993: asyncio's start_tls returns None for a transport whose
        # connection_lost is pending, and waits forever on a closed one (seen
        # on 3.11; not strict, should a later asyncio raise).
        request.applymarker(pytest.mark.xfail(reason="asyncio bug gh-105993", strict=False))

    async def main():
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            tr, pr = await connect(tls_loop, listener.getsockname())
            tr.close()
            if when == "closed":
                assert await pr.lost is None
            with pytest.raises(RuntimeError):
                async with asyncio.timeout(1):  # in this task: "closing" stays closing
                    await tls_loop.start_tls(tr, pr, client_ctx, server_hostname="localhost")
            assert await pr.lost is None
        return pr

    pr = run_without_fd_leak(tls_loop, main())
    assert pr.events == ["made", "lost"] and pr.lost_calls == 1


@pytest.mark.parametrize("context", [None, True, "context"])
def test_start_tls_needs_an_ssl_context(tls_loop, context):
    async def main():
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            tr, pr = await connect(tls_loop, listener.getsockname())
            with pytest.raises(TypeError, match="sslcontext is expected to be an instance"):
                await tls_loop.start_tls(tr, pr, context)
            assert not tr.is_closing()  # refused before touching the transport
            tr.close()
            await pr.lost

    run_without_fd_leak(tls_loop, main())


def test_server_side_needs_a_context(tls_loop):
    # connect_accepted_socket's ssl=True: a server side without certificate.
    async def main():
        with socket.socket() as sock:
            with pytest.raises(ValueError, match="Server side SSL needs a valid SSLContext"):
                await tls_loop.connect_accepted_socket(Recorder, sock, ssl=True)

    run(tls_loop, main())
