"""resolver.py and addresses.py: the numeric short-circuit is exactly
socket.getaddrinfo, names go to the executor, resolve() is asyncio's."""
from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket

import pytest
from net_helpers import StaticResolver, resolver_loop, run

import hookloop
from hookloop.builtins.network import addresses
from hookloop.builtins.network.addresses import (
    numeric_addrinfo,
    parse_numeric_host,
    remove_stale_unix_socket,
    resolve,
)

HOSTS = ["127.0.0.1", "0.0.0.0", "255.255.255.255", "::1", "::", "0:0::1", "::FFFF:1.2.3.4",
         "FE80::1%lo", "fe80::1%1", "fe80::1%0", "::1%1", "::1%lo", "ff02::1%lo", "ff01::1%lo",
         "ff05::1%lo", "fe80::1%nosuchif", "fe80::1%", "fe80::1%lo%lo", "1.2.3.4%lo",
         b"10.0.0.1", b"::1", None, "", "127.1", "010.0.0.1", " 127.0.0.1", "localhost",
         "\u0661.0.0.1"]
PORTS = [0, 80, 65535, 65536, -1, "80", "0080", b"443", "", b"", None, "http", " 80", "+5",
         "\u0668\u0660", True, 8.0]
FAMILIES = [0, socket.AF_INET, socket.AF_INET6, socket.AF_UNIX]
TYPES = [0, socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW, socket.SOCK_SEQPACKET]
PROTOS = [0, socket.IPPROTO_TCP, socket.IPPROTO_UDP]
FLAGS = [0, socket.AI_PASSIVE, socket.AI_CANONNAME, socket.AI_NUMERICHOST,
         socket.AI_NUMERICSERV, socket.AI_PASSIVE | socket.AI_CANONNAME, socket.AI_ADDRCONFIG,
         socket.AI_V4MAPPED]


def _real(*args):
    try:
        return socket.getaddrinfo(*args)
    except Exception as exc:  # noqa: BLE001 - any error means "not the same answer"
        return exc


def test_numeric_answers_are_exactly_getaddrinfo():
    answered = 0
    for args in itertools.product(HOSTS, PORTS, FAMILIES, TYPES, PROTOS, FLAGS):
        if args[0] == "localhost":
            continue  # a name: never answered here (checked below)
        mine = numeric_addrinfo(*args)
        if mine is None:
            continue
        answered += 1
        real = _real(*args)
        # repr compares the enum types too (AddressFamily, SocketKind).
        assert repr(mine) == repr(real), args
    assert answered > 5000  # the short-circuit is not just refusing everything


@pytest.mark.parametrize(("host", "port", "family", "type_", "proto", "flags"), [
    ("127.0.0.1", 80, 0, 0, 0, 0),  # one entry per socket type
    ("127.0.0.1", "80", 0, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST),
    ("::1", None, 0, socket.SOCK_DGRAM, 0, socket.AI_CANONNAME),
    ("0:0::1", 443, socket.AF_INET6, 0, socket.IPPROTO_TCP, 0),
    ("fe80::1%lo", 80, 0, socket.SOCK_STREAM, 0, 0),
    ("fe80::1%1", 80, 0, socket.SOCK_STREAM, 0, 0),
    (None, 80, socket.AF_INET, socket.SOCK_STREAM, 0, socket.AI_PASSIVE),
    (None, 80, socket.AF_INET6, 0, 0, 0),
    (b"10.0.0.1", b"8080", 0, 0, socket.IPPROTO_UDP, 0),
])
def test_common_numeric_cases_are_answered(host, port, family, type_, proto, flags):
    mine = numeric_addrinfo(host, port, family, type_, proto, flags)
    assert mine is not None
    assert repr(mine) == repr(socket.getaddrinfo(host, port, family, type_, proto, flags))


@pytest.mark.parametrize(("host", "port", "family", "flags"), [
    ("localhost", 80, 0, 0),  # a name
    ("127.0.0.1", "http", 0, 0),  # a service name
    ("127.0.0.1", 70000, 0, 0),  # getaddrinfo wraps it to 4464
    ("127.1", 80, 0, 0),  # inet_aton's reading, not inet_pton's
    (None, 80, 0, socket.AI_PASSIVE),  # both families, the C library's order
    (None, None, socket.AF_INET, 0),  # an error
    ("127.0.0.1", 80, socket.AF_INET6, socket.AI_V4MAPPED),  # a mapped address
    ("127.0.0.1", 80, 0, socket.AI_ADDRCONFIG),  # depends on the host's interfaces
    ("fe80::1%nosuchif", 80, 0, 0),
])
def test_unsure_cases_go_to_the_resolver(host, port, family, flags):
    assert numeric_addrinfo(host, port, family, 0, 0, flags) is None


def test_parse_numeric_host():
    assert parse_numeric_host("::FFFF:1.2.3.4") == (socket.AF_INET6, "::ffff:1.2.3.4", 0)
    assert parse_numeric_host("127.0.0.1", socket.AF_INET6) is None
    assert parse_numeric_host("fe80::1%1")[2] == 1
    assert parse_numeric_host("host.example") is None
    assert parse_numeric_host(42) is None


def test_numeric_getaddrinfo_needs_no_thread(hookloop_loop, recording_executor):
    async def main():
        infos = await hookloop_loop.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
        assert infos == socket.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
        assert recording_executor.calls == []
        await hookloop_loop.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)
        assert recording_executor.calls == ["getaddrinfo"]
        assert await hookloop_loop.getnameinfo(("127.0.0.1", 80), socket.NI_NUMERICSERV) == \
            socket.getnameinfo(("127.0.0.1", 80), socket.NI_NUMERICSERV)
        assert recording_executor.calls == ["getaddrinfo", "getnameinfo"]

    run(hookloop_loop, main())


def test_resolver_errors_are_getaddrinfos(hookloop_loop):
    with pytest.raises(socket.gaierror):
        run(hookloop_loop, hookloop_loop.getaddrinfo("localhost", 80,
                                                     flags=socket.AI_NUMERICHOST))
    # The C library wraps an out-of-range port; so do we (through it).
    infos = run(hookloop_loop, hookloop_loop.getaddrinfo("127.0.0.1", 70000,
                                                         type=socket.SOCK_STREAM))
    assert infos == socket.getaddrinfo("127.0.0.1", 70000, type=socket.SOCK_STREAM)


def test_debug_mode_logs_threaded_lookups(hookloop_loop, caplog):
    hookloop_loop.set_debug(True)
    hookloop_loop.slow_callback_duration = 0.0  # every lookup is "slow"
    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        run(hookloop_loop, hookloop_loop.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM))
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert any(level == logging.DEBUG and msg.startswith("Get address info localhost:80")
               for level, msg in messages)
    assert any(level == logging.INFO and msg.startswith("Getting address info localhost:80")
               and " ms: [" in msg for level, msg in messages)


def test_numeric_getaddrinfo_on_closed_loop(hookloop_loop):
    resolver = hookloop_loop.service("resolver")
    hookloop_loop.close()
    with pytest.raises(RuntimeError, match="closed"):
        resolver.getaddrinfo("127.0.0.1", 80).send(None)


def test_resolver_is_a_replaceable_builtin(hookloop_backend):
    assert "resolver" in {info.name for info in hookloop.plugin_infos() if info.builtin}
    resolver = StaticResolver({"db.example": []})
    loop = resolver_loop(hookloop_backend, resolver)
    try:
        assert loop.run_until_complete(loop.getaddrinfo("db.example", 1)) == []
        assert resolver.asked == ["db.example"]
    finally:
        loop.close()


def test_resolve_skips_the_resolver_for_numeric_hosts(hookloop_backend):
    resolver = StaticResolver({})
    loop = resolver_loop(hookloop_backend, resolver)

    async def main():
        infos = await resolve(loop, "::1", "8080", type=socket.SOCK_STREAM,
                              flags=socket.AI_ADDRCONFIG)
        assert infos == socket.getaddrinfo("::1", 8080, type=socket.SOCK_STREAM)
        passive = await resolve(loop, None, 0, family=socket.AF_INET, type=socket.SOCK_STREAM,
                                flags=socket.AI_PASSIVE)
        assert passive[0][4] == ("0.0.0.0", 0)
        assert resolver.asked == []
        await resolve(loop, "localhost", 80, type=socket.SOCK_STREAM)
        await resolve(loop, None, 80, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        assert resolver.asked == ["localhost", None]

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


def test_resolve_keeps_out_of_range_ports_like_asyncio(hookloop_loop):
    # asyncio's loop does not resolve numeric hosts, so connect()/bind()
    # raise OverflowError; getaddrinfo would have wrapped 70000 to 4464.
    infos = run(hookloop_loop, resolve(hookloop_loop, "127.0.0.1", 70000,
                                       type=socket.SOCK_STREAM))
    assert infos[0][4] == ("127.0.0.1", 70000)
    with socket.socket() as s, pytest.raises(OverflowError):
        s.connect(infos[0][4])


def test_any_type_table_is_asked_once_per_family(monkeypatch):
    monkeypatch.setattr(addresses, "_ANY_TYPE", {})
    calls = []
    real = socket.getaddrinfo

    def counting(*args):
        calls.append(args[0])
        return real(*args)

    monkeypatch.setattr(socket, "getaddrinfo", counting)
    for _ in range(3):
        numeric_addrinfo("127.0.0.1", 80)
    assert calls == ["127.0.0.1"]


def test_remove_stale_unix_socket(tmp_path):
    path = str(tmp_path / "s")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(path)
    remove_stale_unix_socket(path)
    assert not os.path.exists(path)
    regular = tmp_path / "file"
    regular.write_text("keep")
    remove_stale_unix_socket(str(regular))
    assert regular.read_text() == "keep"
    remove_stale_unix_socket(b"\0abstract")  # no file: nothing to do
    remove_stale_unix_socket(str(tmp_path / "missing"))


def test_create_connection_port_overflow_like_asyncio(hookloop_loop):
    async def attempt():
        loop = asyncio.get_running_loop()
        with pytest.raises(OverflowError):
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", 70000)

    run(hookloop_loop, attempt())
    with asyncio.Runner(loop_factory=asyncio.new_event_loop) as reference:
        reference.run(attempt())
