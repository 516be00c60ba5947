"""TLS over every way asyncio makes a connection: create_connection and
create_server, unix sockets, connect_accepted_socket, streams, start_tls
(client and server side); what get_extra_info tells, ALPN, the
server_hostname rules, sendfile.

Each test runs on asyncio's own loop and on every hookloop backend
(``tls_loop``; see conftest.py) and checks that connection_lost is called
exactly once on each side.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import tempfile
import zlib

import pytest
from net_helpers import (
    Echo,
    Recorder,
    close_server,
    connect,
    has_ipv6,
    run,
    run_without_fd_leak,
    start_server,
)
from tls_helpers import Checksum


@pytest.fixture
def short_tmp():
    """A short directory for unix socket paths (108 bytes at most)."""
    path = tempfile.mkdtemp(prefix="tls")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def assert_lifecycle(protocol, events):
    assert protocol.events == events
    assert protocol.lost_calls == 1


def test_create_connection_and_server(tls_loop, server_ctx, client_ctx):
    async def main():
        server, addr, protocols = await start_server(tls_loop, Echo, ssl=server_ctx)
        tr, pr = await connect(tls_loop, addr, ssl=client_ctx, server_hostname="localhost")
        tr.write(b"hello ")
        tr.writelines([b"over ", bytearray(b"TLS"), memoryview(b"!")])
        assert await pr.received(15) == b"hello over TLS!"
        tr.close()
        assert tr.is_closing()
        assert await pr.lost is None
        (sp,) = protocols
        assert await sp.lost is None
        await close_server(server)
        return pr, sp

    pr, sp = run_without_fd_leak(tls_loop, main())
    # The client's close sends close_notify; the server takes it as EOF and
    # closes, answering with its own close_notify, which asyncio reports to
    # the client's protocol as eof_received too (before connection_lost).
    assert_lifecycle(pr, ["made", "data", "eof", "lost"])
    assert_lifecycle(sp, ["made", "data", "eof", "lost"])


def test_server_closes_first(tls_loop, server_ctx, client_ctx):
    class CloseAtOnce(Recorder):
        def connection_made(self, transport):
            super().connection_made(transport)
            transport.write(b"bye")
            transport.close()

    async def main():
        server, addr, protocols = await start_server(tls_loop, CloseAtOnce, ssl=server_ctx)
        tr, pr = await connect(tls_loop, addr, ssl=client_ctx, server_hostname="localhost")
        assert await pr.lost is None
        assert bytes(pr.data) == b"bye"
        (sp,) = protocols
        assert await sp.lost is None
        await close_server(server)
        return pr, sp

    pr, sp = run_without_fd_leak(tls_loop, main())
    assert_lifecycle(pr, ["made", "data", "eof", "lost"])
    assert sp.events[0] == "made" and sp.events[-1] == "lost" and sp.lost_calls == 1


def test_connect_to_host_name_checks_it(tls_loop, server_ctx, client_ctx):
    # Without server_hostname the host is the name checked: "localhost" (the
    # certificate's DNS name) and "127.0.0.1" (its IP address) both pass.
    async def main():
        server, addr, _ = await start_server(tls_loop, Echo, ssl=server_ctx)
        for host in ("localhost", "127.0.0.1"):
            tr, pr = await tls_loop.create_connection(Recorder, host, addr[1], ssl=client_ctx)
            tr.write(b"x")
            assert await pr.received(1) == b"x"
            tr.close()
            assert await pr.lost is None
        await close_server(server)

    run_without_fd_leak(tls_loop, main())


@pytest.mark.skipif(not has_ipv6(), reason="no IPv6 loopback on this machine")
def test_ipv6(tls_loop, server_ctx, client_ctx):
    # The certificate names ::1 too: the host is the name checked.
    async def main():
        server, addr, _ = await start_server(tls_loop, Echo, host="::1", ssl=server_ctx)
        tr, pr = await tls_loop.create_connection(Recorder, "::1", addr[1], ssl=client_ctx)
        assert tr.get_extra_info("peername")[:2] == ("::1", addr[1])
        tr.write(b"six")
        assert await pr.received(3) == b"six"
        tr.close()
        assert await pr.lost is None
        await close_server(server)

    run_without_fd_leak(tls_loop, main())


def test_connect_with_sock(tls_loop, server_ctx, client_ctx):
    async def main():
        server, addr, _ = await start_server(tls_loop, Echo, ssl=server_ctx)
        sock = socket.socket()
        sock.setblocking(False)
        await tls_loop.sock_connect(sock, addr)
        tr, pr = await tls_loop.create_connection(Recorder, sock=sock, ssl=client_ctx,
                                                  server_hostname="localhost")
        tr.write(b"ping")
        assert await pr.received(4) == b"ping"
        tr.close()
        assert await pr.lost is None
        assert sock.fileno() == -1  # the transport closed the socket it was given
        await close_server(server)

    run_without_fd_leak(tls_loop, main())


def test_unix_connection_and_server(tls_loop, server_ctx, client_ctx, short_tmp):
    path = os.path.join(short_tmp, "s")

    async def main():
        protocols = []

        def factory():
            protocols.append(Echo())
            return protocols[-1]

        server = await tls_loop.create_unix_server(factory, path, ssl=server_ctx)
        tr, pr = await tls_loop.create_unix_connection(Recorder, path, ssl=client_ctx,
                                                       server_hostname="localhost")
        assert isinstance(tr.get_extra_info("ssl_object"), ssl.SSLObject)
        tr.write(b"unix")
        assert await pr.received(4) == b"unix"
        tr.close()
        assert await pr.lost is None
        (sp,) = protocols
        assert await sp.lost is None
        await close_server(server)
        return sp

    sp = run_without_fd_leak(tls_loop, main())
    assert_lifecycle(sp, ["made", "data", "eof", "lost"])


def test_connect_accepted_socket(tls_loop, server_ctx, client_ctx):
    async def main():
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            listener.setblocking(False)

            async def serve():
                conn, _ = await tls_loop.sock_accept(listener)
                return await tls_loop.connect_accepted_socket(Echo, conn, ssl=server_ctx)

            (str_, spr), (tr, pr) = await asyncio.gather(
                serve(), connect(tls_loop, listener.getsockname(), ssl=client_ctx,
                                 server_hostname="localhost"))
        assert str_.get_extra_info("ssl_object").server_side
        tr.write(b"accepted")
        assert await pr.received(8) == b"accepted"
        tr.close()
        assert await pr.lost is None
        assert await spr.lost is None
        return spr

    spr = run_without_fd_leak(tls_loop, main())
    assert_lifecycle(spr, ["made", "data", "eof", "lost"])


def test_streams(tls_loop, server_ctx, client_ctx):
    async def main():
        handled = tls_loop.create_future()

        async def handle(reader, writer):
            try:
                line = await reader.readline()
                writer.write(line.upper())
                await writer.drain()
                assert await reader.read() == b""  # the client's close_notify
                writer.close()
                await writer.wait_closed()
                handled.set_result(line)
            except BaseException as exc:
                handled.set_exception(exc)

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx,
                                                       server_hostname="localhost")
        assert writer.get_extra_info("ssl_object") is not None
        writer.write(b"hello streams\n")
        assert await reader.readline() == b"HELLO STREAMS\n"
        writer.close()
        await writer.wait_closed()
        assert await handled == b"hello streams\n"
        await close_server(server)

    run_without_fd_leak(tls_loop, main())


def test_streams_start_tls(tls_loop, server_ctx, client_ctx):
    # StreamWriter.start_tls (3.11) on the client, loop.start_tls through the
    # server's streams.
    async def main():
        done = tls_loop.create_future()

        async def handle(reader, writer):
            try:
                assert await reader.readline() == b"STARTTLS\n"
                writer.write(b"GO\n")
                await writer.drain()
                await writer.start_tls(server_ctx)
                line = await reader.readline()
                writer.write(line.upper())
                await writer.drain()
                writer.close()
                await writer.wait_closed()
                done.set_result(None)
            except BaseException as exc:
                done.set_exception(exc)

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"STARTTLS\n")
        assert await reader.readline() == b"GO\n"
        await writer.start_tls(client_ctx, server_hostname="localhost")
        assert writer.get_extra_info("ssl_object") is not None
        writer.write(b"secret\n")
        assert await reader.readline() == b"SECRET\n"
        await done
        writer.close()
        await writer.wait_closed()
        await close_server(server)

    run_without_fd_leak(tls_loop, main())


class StartTLSServer(Recorder):
    """Plain text until "STARTTLS\\n", then TLS (server side); echoes after."""

    def __init__(self, context):
        super().__init__()
        self.context = context
        self.plain = None
        self.tls = None
        self.upgraded = self.loop.create_future()

    def data_received(self, data):
        super().data_received(data)
        if self.tls is None and self.data == b"STARTTLS\n":
            self.plain = self.transport
            self.transport.write(b"GO\n")
            self.loop.create_task(self._upgrade())
        elif self.tls is not None:
            self.tls.write(data)

    async def _upgrade(self):
        try:
            self.tls = await self.loop.start_tls(self.plain, self, self.context,
                                                 server_side=True)
            self.transport = self.tls
            self.data.clear()
            self.upgraded.set_result(self.tls)
        except BaseException as exc:
            self.upgraded.set_exception(exc)


def test_start_tls_client_and_server(tls_loop, server_ctx, client_ctx):
    async def main():
        server, addr, protocols = await start_server(
            tls_loop, lambda: StartTLSServer(server_ctx))
        plain, pr = await connect(tls_loop, addr)
        plain.write(b"STARTTLS\n")
        assert await pr.received(3) == b"GO\n"
        pr.data.clear()
        tls = await tls_loop.start_tls(plain, pr, client_ctx, server_hostname="localhost")
        assert tls is not plain
        assert isinstance(tls, asyncio.Transport)
        assert tls.get_protocol() is pr
        assert tls.get_extra_info("peercert") is not None
        (sp,) = protocols
        stls = await sp.upgraded
        assert stls.get_extra_info("ssl_object").server_side
        tls.write(b"upgraded")
        assert await pr.received(8) == b"upgraded"
        tls.close()
        assert await pr.lost is None
        assert await sp.lost is None
        await close_server(server)
        return pr, sp

    pr, sp = run_without_fd_leak(tls_loop, main())
    assert pr.lost_calls == 1 and sp.lost_calls == 1
    assert pr.events.count("made") == 1  # start_tls does not call connection_made again
    assert sp.events.count("made") == 1


def test_get_extra_info(tls_loop, server_ctx, client_ctx):
    async def main():
        server, addr, protocols = await start_server(tls_loop, Echo, ssl=server_ctx)
        tr, pr = await connect(tls_loop, addr, ssl=client_ctx, server_hostname="localhost")
        (sp,) = protocols
        await sp.connected
        str_ = sp.transport
        obj = tr.get_extra_info("ssl_object")
        assert isinstance(obj, ssl.SSLObject)
        assert not obj.server_side
        assert obj.server_hostname == "localhost"
        assert obj.version() in ("TLSv1.2", "TLSv1.3")
        peercert = tr.get_extra_info("peercert")
        assert ("DNS", "localhost") in peercert["subjectAltName"]
        assert peercert == obj.getpeercert()
        cipher = tr.get_extra_info("cipher")
        assert cipher == obj.cipher() and len(cipher) == 3
        assert tr.get_extra_info("compression") == obj.compression()
        assert tr.get_extra_info("sslcontext") is client_ctx
        sock = tr.get_extra_info("socket")
        assert sock.family == socket.AF_INET and sock.type == socket.SOCK_STREAM
        assert sock.getpeername() == addr
        assert tr.get_extra_info("peername") == addr
        assert tr.get_extra_info("sockname") == sock.getsockname()
        assert tr.get_extra_info("no such thing", "default") == "default"
        # The server side: no client certificate was asked for.
        sobj = str_.get_extra_info("ssl_object")
        assert isinstance(sobj, ssl.SSLObject) and sobj.server_side
        assert str_.get_extra_info("peercert") is None
        assert str_.get_extra_info("sslcontext") is server_ctx
        assert str_.get_extra_info("cipher") == cipher
        assert str_.get_extra_info("sockname") == addr
        assert str_.get_extra_info("peername") == tr.get_extra_info("sockname")
        tr.close()
        await pr.lost
        await sp.lost
        await close_server(server)

    run_without_fd_leak(tls_loop, main())


def test_alpn(tls_loop, server_ctx, client_ctx):
    server_ctx.set_alpn_protocols(["http/1.1", "x-hookloop"])
    client_ctx.set_alpn_protocols(["x-hookloop", "h2"])

    async def main():
        server, addr, protocols = await start_server(tls_loop, Echo, ssl=server_ctx)
        tr, pr = await connect(tls_loop, addr, ssl=client_ctx, server_hostname="localhost")
        (sp,) = protocols
        await sp.connected
        assert tr.get_extra_info("ssl_object").selected_alpn_protocol() == "x-hookloop"
        assert sp.transport.get_extra_info("ssl_object").selected_alpn_protocol() == \
            "x-hookloop"
        tr.close()
        await pr.lost
        await sp.lost
        await close_server(server)

    run(tls_loop, main())


def test_default_context_for_ssl_true(tls_loop, server_ctx):
    # ssl=True on a client means a default context: it verifies against the
    # system's CAs, which do not include our test CA.
    async def main():
        server, addr, protocols = await start_server(tls_loop, Echo, ssl=server_ctx)
        with pytest.raises(ssl.SSLCertVerificationError):
            await connect(tls_loop, addr, ssl=True, server_hostname="localhost")
        await close_server(server)
        assert all(p.events == [] for p in protocols)

    run_without_fd_leak(tls_loop, main())


def _wrap_bio_refuses_no_name(context: ssl.SSLContext) -> bool:
    """Newer Pythons (3.14 here) refuse a client SSLObject without a name
    when the context checks hostnames; 3.11 made one."""
    try:
        context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_side=False)
    except ValueError:
        return True
    return False


def test_empty_server_hostname_skips_the_name_check(tls_loop, server_ctx, client_ctx):
    # server_hostname="" sends no name and checks none, even with a context
    # whose check_hostname is on (asyncio documents it: "a serious security
    # risk") -- where the ssl module still allows that; where it does not,
    # the connection fails with the ssl module's error, on asyncio's loop too.
    assert client_ctx.check_hostname

    async def main():
        server, addr, _ = await start_server(tls_loop, Echo, ssl=server_ctx)
        if _wrap_bio_refuses_no_name(client_ctx):
            with pytest.raises(ValueError, match="check_hostname requires server_hostname"):
                await connect(tls_loop, addr, ssl=client_ctx, server_hostname="")
            await close_server(server)
            return
        tr, pr = await connect(tls_loop, addr, ssl=client_ctx, server_hostname="")
        assert tr.get_extra_info("ssl_object").server_hostname is None
        tr.write(b"anon")
        assert await pr.received(4) == b"anon"
        tr.close()
        assert await pr.lost is None
        await close_server(server)

    run_without_fd_leak(tls_loop, main())


def test_sendfile_uses_the_fallback(tls_loop, server_ctx, client_ctx, tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    path = tmp_path / "payload"
    path.write_bytes(data)

    async def main():
        server, addr, protocols = await start_server(tls_loop, Checksum, ssl=server_ctx)
        tr, pr = await connect(tls_loop, addr, ssl=client_ctx, server_hostname="localhost")
        with open(path, "rb") as f:
            with pytest.raises(RuntimeError):
                # No zero-copy path under TLS.
                await tls_loop.sendfile(tr, f, fallback=False)
            assert f.tell() == 0
            assert await tls_loop.sendfile(tr, f, offset=17) == len(data) - 17
            assert f.tell() == len(data)
        (sp,) = protocols
        assert await sp.got(len(data) - 17) == len(data) - 17
        assert sp.crc == zlib.crc32(data[17:])
        tr.write(b"after")  # the transport works on after sendfile
        assert await sp.got(len(data) - 12) == len(data) - 12
        tr.close()
        assert await pr.lost is None
        assert await sp.lost is None
        await close_server(server)

    run_without_fd_leak(tls_loop, main())


def test_client_certificate(tls_loop, server_ctx, client_ctx, certificates):
    # Mutual TLS: the server asks for and verifies a client certificate.
    certificates.ca.configure_trust(server_ctx)
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    certificates.ca.issue_cert("client.example").configure_cert(client_ctx)

    async def main():
        server, addr, protocols = await start_server(tls_loop, Echo, ssl=server_ctx)
        tr, pr = await connect(tls_loop, addr, ssl=client_ctx, server_hostname="localhost")
        tr.write(b"me")
        assert await pr.received(2) == b"me"
        (sp,) = protocols
        peercert = sp.transport.get_extra_info("peercert")
        assert ("DNS", "client.example") in peercert["subjectAltName"]
        tr.close()
        assert await pr.lost is None
        assert await sp.lost is None
        await close_server(server)

    run_without_fd_leak(tls_loop, main())


def test_tls_1_2(tls_loop, server_ctx, client_ctx):
    server_ctx.maximum_version = ssl.TLSVersion.TLSv1_2

    async def main():
        server, addr, protocols = await start_server(tls_loop, Echo, ssl=server_ctx)
        tr, pr = await connect(tls_loop, addr, ssl=client_ctx, server_hostname="localhost")
        assert tr.get_extra_info("ssl_object").version() == "TLSv1.2"
        tr.write(b"older")
        assert await pr.received(5) == b"older"
        tr.close()
        assert await pr.lost is None
        (sp,) = protocols
        assert await sp.lost is None
        await close_server(server)
        return pr, sp

    pr, sp = run_without_fd_leak(tls_loop, main())
    assert_lifecycle(pr, ["made", "data", "eof", "lost"])
    assert_lifecycle(sp, ["made", "data", "eof", "lost"])
