"""What a loop says about itself, and methods whose plugins are not installed."""
from __future__ import annotations

import asyncio
import re
import socket

import pytest

import hookloop
from hookloop.poller import Poller


def test_loop_is_abstract_event_loop(hookloop_loop, hookloop_backend):
    assert isinstance(hookloop_loop, hookloop.EventLoop)
    assert isinstance(hookloop_loop, asyncio.AbstractEventLoop)
    assert hookloop_loop.backend == hookloop_backend
    assert hookloop_backend in repr(hookloop_loop)


def test_poller_property(hookloop_loop, hookloop_backend):
    poller = hookloop_loop.poller
    assert isinstance(poller, Poller)
    assert poller.name == hookloop_backend
    stats = poller.statistics()
    assert stats["backend"] == hookloop_backend
    # The loop watches the poller's waker and nothing else yet.
    assert stats["registered_fds"] == 1


def test_every_abstract_method_is_implemented():
    # An AbstractEventLoop method left as is would raise a bare
    # NotImplementedError naming no plugin.
    missing = [name for name in dir(asyncio.AbstractEventLoop)
               if not name.startswith("_")
               and getattr(hookloop.EventLoop, name) is getattr(asyncio.AbstractEventLoop, name)]
    assert missing == []


def _plugin_calls():
    """Each coroutine method served by a plugin, with plausible arguments."""
    def sock():
        return socket.socket()

    return {
        "create_connection": lambda loop, res: loop.create_connection(
            asyncio.Protocol, "127.0.0.1", 9),
        "create_server": lambda loop, res: loop.create_server(asyncio.Protocol, "127.0.0.1", 0),
        "create_unix_connection": lambda loop, res: loop.create_unix_connection(
            asyncio.Protocol, "/nonexistent/socket"),
        "create_unix_server": lambda loop, res: loop.create_unix_server(
            asyncio.Protocol, "/nonexistent/socket"),
        "create_datagram_endpoint": lambda loop, res: loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)),
        "connect_accepted_socket": lambda loop, res: loop.connect_accepted_socket(
            asyncio.Protocol, res(sock())),
        "sendfile": lambda loop, res: loop.sendfile(None, None),
        "connect_read_pipe": lambda loop, res: loop.connect_read_pipe(asyncio.Protocol, None),
        "connect_write_pipe": lambda loop, res: loop.connect_write_pipe(asyncio.Protocol, None),
        "sock_recv": lambda loop, res: loop.sock_recv(res(sock()), 10),
        "sock_recv_into": lambda loop, res: loop.sock_recv_into(res(sock()), bytearray(10)),
        "sock_recvfrom": lambda loop, res: loop.sock_recvfrom(res(sock()), 10),
        "sock_recvfrom_into": lambda loop, res: loop.sock_recvfrom_into(
            res(sock()), bytearray(10)),
        "sock_sendall": lambda loop, res: loop.sock_sendall(res(sock()), b"x"),
        "sock_sendto": lambda loop, res: loop.sock_sendto(res(sock()), b"x", ("127.0.0.1", 9)),
        "sock_connect": lambda loop, res: loop.sock_connect(res(sock()), ("127.0.0.1", 9)),
        "sock_accept": lambda loop, res: loop.sock_accept(res(sock())),
        "sock_sendfile": lambda loop, res: loop.sock_sendfile(res(sock()), None),
        "start_tls": lambda loop, res: loop.start_tls(None, None, None),
        "getaddrinfo": lambda loop, res: loop.getaddrinfo("localhost", 80),
        "getnameinfo": lambda loop, res: loop.getnameinfo(("127.0.0.1", 80)),
        "subprocess_exec": lambda loop, res: loop.subprocess_exec(
            asyncio.SubprocessProtocol, "true"),
        "subprocess_shell": lambda loop, res: loop.subprocess_shell(
            asyncio.SubprocessProtocol, "true"),
    }


#: The builtin plugins serving networking; disabling them brings back the
#: "missing plugin" error.
NETWORK_PLUGINS = ("transports", "resolver")
#: Methods whose plugin ships separately (not installed in this checkout).
SEPARATE = {"start_tls": "hookloop-tls"}
#: Methods served by hookloop-subprocess (a separate distribution, installed in
#: this checkout): disabling it (plugin name "subprocess") brings back the
#: "missing plugin" error naming it.
SUBPROCESS = {"subprocess_exec": "hookloop-subprocess",
              "subprocess_shell": "hookloop-subprocess"}
SERVED_BY_CORE = sorted(set(_plugin_calls()) - set(SEPARATE) - set(SUBPROCESS))


def _expect_missing(loop, method, disabled=False):
    resources = []

    def res(obj):
        resources.append(obj)
        return obj

    async def main():
        return await _plugin_calls()[method](loop, res)

    try:
        with pytest.raises(hookloop.PluginMissingError) as info:
            loop.run_until_complete(main())
    finally:
        for r in resources:
            r.close()
    exc = info.value
    assert isinstance(exc, NotImplementedError)
    assert isinstance(exc, RuntimeError)
    assert exc.distribution.startswith("hookloop")
    if disabled:
        # A builtin plugin left out says so, and how to get it back.
        assert "disabled" in str(exc)
    else:
        assert re.search(rf"pip install (--upgrade )?{re.escape(exc.distribution)}$", str(exc))
    return exc


#: Separately shipped plugins that may be installed in this checkout: their
#: rows leave the plugin out (by its entry-point name), so they hold either way.
LEFT_OUT = {"start_tls": "tls"}


@pytest.mark.parametrize("method", sorted(SEPARATE))
def test_missing_plugin_error(hookloop_loop, hookloop_backend, method):
    if method in LEFT_OUT:
        loop = hookloop.new_event_loop(hookloop_backend, disable=[LEFT_OUT[method]])
        try:
            exc = _expect_missing(loop, method)
        finally:
            loop.close()
    else:
        exc = _expect_missing(hookloop_loop, method)
    assert exc.distribution == SEPARATE[method]


@pytest.mark.parametrize("method", sorted(SUBPROCESS))
def test_missing_subprocess_plugin_error_when_disabled(hookloop_backend, method):
    loop = hookloop.new_event_loop(hookloop_backend, disable=("subprocess",))
    try:
        exc = _expect_missing(loop, method)
    finally:
        loop.close()
    assert exc.distribution == SUBPROCESS[method]


@pytest.mark.parametrize("method", sorted(SUBPROCESS))
def test_subprocess_methods_served_by_plugin(hookloop_loop, method):
    # With hookloop-subprocess installed, the same calls reach it.
    async def main():
        lost = hookloop_loop.create_future()

        class Protocol(asyncio.SubprocessProtocol):
            def connection_lost(self, exc):
                lost.set_result(exc)

        transport, _ = await getattr(hookloop_loop, method)(Protocol, "true")
        assert isinstance(transport, asyncio.SubprocessTransport)
        assert await lost is None
        transport.close()
        return transport.get_returncode()

    assert hookloop_loop.run_until_complete(main()) == 0


@pytest.mark.parametrize("method", SERVED_BY_CORE)
def test_missing_network_plugin_error_when_disabled(hookloop_backend, method):
    loop = hookloop.new_event_loop(hookloop_backend, disable=NETWORK_PLUGINS)
    try:
        exc = _expect_missing(loop, method, disabled=True)
    finally:
        loop.close()
    assert exc.distribution == "hookloop"
    plugin = "resolver" if method in ("getaddrinfo", "getnameinfo") else "transports"
    assert repr(plugin) in str(exc)


@pytest.mark.parametrize("method", SERVED_BY_CORE)
def test_network_methods_served_by_builtin_plugins(hookloop_loop, method):
    # With the builtin plugins in place, the same calls reach a real
    # implementation: whatever they raise, it is not "missing plugin".
    resources = []

    def res(obj):
        resources.append(obj)
        return obj

    async def main():
        coro = _plugin_calls()[method](hookloop_loop, res)
        try:
            result = await asyncio.wait_for(coro, 5)
        except hookloop.PluginMissingError:
            raise
        except (TimeoutError, OSError, ValueError, TypeError, AttributeError, RuntimeError) as exc:
            return exc
        # A transport or server was made: close it.
        for obj in result if isinstance(result, tuple) else (result,):
            close = getattr(obj, "close", None)
            if callable(close) and not isinstance(obj, socket.socket):
                close()
        if hasattr(result, "wait_closed"):
            await result.wait_closed()
        return result

    try:
        hookloop_loop.run_until_complete(main())
    finally:
        for r in resources:
            r.close()
