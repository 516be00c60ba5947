"""What a loop says about itself, and methods whose plugins are not installed."""
from __future__ import annotations

import asyncio
import errno
import os
import re
import socket

import pytest
from net_helpers import refused_address

import hookloop
from hookloop.poller import Poller
from hookloop.testing import ExceptionRecorder, checked_loop


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


def _plugin_calls(address=("127.0.0.1", 9)):
    """Each coroutine method served by a plugin, with plausible arguments;
    ``address`` is where the connecting calls connect to."""
    def sock():
        return socket.socket()

    def connected(res):
        a, b = socket.socketpair()
        res(b)
        return a

    return {
        "create_connection": lambda loop, res: loop.create_connection(
            asyncio.Protocol, *address),
        "create_server": lambda loop, res: loop.create_server(asyncio.Protocol, "127.0.0.1", 0),
        "create_unix_connection": lambda loop, res: loop.create_unix_connection(
            asyncio.Protocol, "/nonexistent/socket"),
        "create_unix_server": lambda loop, res: loop.create_unix_server(
            asyncio.Protocol, "/nonexistent/socket"),
        "create_datagram_endpoint": lambda loop, res: loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)),
        "connect_accepted_socket": lambda loop, res: loop.connect_accepted_socket(
            asyncio.Protocol, res(connected(res))),
        "sendfile": lambda loop, res: loop.sendfile(None, None),
        "connect_read_pipe": lambda loop, res: loop.connect_read_pipe(asyncio.Protocol, None),
        "connect_write_pipe": lambda loop, res: loop.connect_write_pipe(asyncio.Protocol, None),
        "sock_recv": lambda loop, res: loop.sock_recv(res(sock()), 10),
        "sock_recv_into": lambda loop, res: loop.sock_recv_into(res(sock()), bytearray(10)),
        "sock_recvfrom": lambda loop, res: loop.sock_recvfrom(res(sock()), 10),
        "sock_recvfrom_into": lambda loop, res: loop.sock_recvfrom_into(
            res(sock()), bytearray(10)),
        "sock_sendall": lambda loop, res: loop.sock_sendall(res(sock()), b"x"),
        "sock_sendto": lambda loop, res: loop.sock_sendto(res(sock()), b"x", address),
        "sock_connect": lambda loop, res: loop.sock_connect(res(sock()), address),
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


def _served_by_builtins_expected(address):
    """What each call of :func:`_plugin_calls` does when the builtin plugins
    serve it, as :func:`_served_outcome` describes it: exactly what
    asyncio's loop does with the same arguments (the sockets are blocking,
    unconnected TCP sockets; ``address`` refuses connections)."""
    def os_error(kind, code, strerror=None):
        return ("raises", kind, code, os.strerror(code) if strerror is None else strerror)

    def no_attribute(name):
        return ("raises", AttributeError, None, f"'NoneType' object has no attribute '{name}'")

    not_connected = os_error(OSError, errno.ENOTCONN)
    return {
        "connect_accepted_socket": ("transport", "stream", asyncio.Protocol, False, True),
        "connect_read_pipe": no_attribute("fileno"),
        "connect_write_pipe": no_attribute("fileno"),
        "create_connection": os_error(ConnectionRefusedError, errno.ECONNREFUSED,
                                      f"Connect call failed {address}"),
        "create_datagram_endpoint": ("transport", "datagram",
                                     asyncio.DatagramProtocol, False, True),
        "create_server": ("server", True, (("127.0.0.1", socket.AF_INET),), False, ()),
        "create_unix_connection": os_error(FileNotFoundError, errno.ENOENT),
        "create_unix_server": os_error(FileNotFoundError, errno.ENOENT),
        "getaddrinfo": ("returns", socket.getaddrinfo("localhost", 80)),
        "getnameinfo": ("returns", socket.getnameinfo(("127.0.0.1", 80), 0)),
        "sendfile": no_attribute("is_closing"),
        "sock_accept": os_error(OSError, errno.EINVAL),
        "sock_connect": os_error(ConnectionRefusedError, errno.ECONNREFUSED),
        "sock_recv": not_connected,
        "sock_recv_into": not_connected,
        "sock_recvfrom": not_connected,
        "sock_recvfrom_into": not_connected,
        "sock_sendall": os_error(BrokenPipeError, errno.EPIPE),
        "sock_sendfile": no_attribute("readinto"),
        "sock_sendto": os_error(BrokenPipeError, errno.EPIPE),
    }


def _served_outcome(loop, method, address):
    """Run one call of :func:`_plugin_calls` on ``loop``: the exception it
    raised (exact type, errno, strerror or message), or what it made, closed
    again (stream or datagram, protocol type, is_closing before and after close;
    a server's is_serving, addresses and families before, is_serving and
    sockets after close; anything else as it is)."""
    resources = []

    def res(obj):
        resources.append(obj)
        return obj

    async def main():
        try:
            result = await asyncio.wait_for(_plugin_calls(address)[method](loop, res), 10)
        except OSError as exc:
            return ("raises", type(exc), exc.errno, exc.strerror)
        except Exception as exc:
            return ("raises", type(exc), None, str(exc))
        if isinstance(result, asyncio.AbstractServer):
            before = (result.is_serving(),
                      tuple((s.getsockname()[0], s.family) for s in result.sockets))
            result.close()
            await result.wait_closed()
            return ("server", *before, result.is_serving(), tuple(result.sockets))
        if isinstance(result, tuple) and isinstance(result[0], asyncio.BaseTransport):
            transport, protocol = result
            # By what it offers: asyncio's own datagram transport is no
            # asyncio.DatagramTransport before 3.13.
            kind = "datagram" if hasattr(transport, "sendto") else "stream"
            closing = transport.is_closing()
            transport.close()
            return ("transport", kind, type(protocol), closing, transport.is_closing())
        return ("returns", result)

    try:
        return loop.run_until_complete(main())
    finally:
        for r in resources:
            r.close()


@pytest.fixture
def asyncio_loop():
    """asyncio's own loop, to run the same calls on and compare with; fails on
    unclaimed exception handler calls as ``hookloop_loop`` does."""
    yield from checked_loop(asyncio.new_event_loop(), ExceptionRecorder())


@pytest.mark.parametrize("method", SERVED_BY_CORE)
def test_network_methods_served_by_builtin_plugins(hookloop_loop, asyncio_loop, method):
    # With the builtin plugins in place, the same calls reach a real
    # implementation and do exactly what they do on asyncio's loop: the same
    # exception (type, errno, message) or the same kind of object made.
    with refused_address() as address:
        expected = _served_by_builtins_expected(address)[method]
        assert _served_outcome(asyncio_loop, method, address) == expected
        assert _served_outcome(hookloop_loop, method, address) == expected
