"""TLS protocols' callbacks run in the context their connection was made in, as on asyncio.

The app protocol of a TLS connection is called from the plain transport's
reads, so it sees what those reads see: the context current at
``create_server``/``create_connection`` (each accepted connection in its
own copy), and after ``start_tls()`` a copy of the context of its caller
(asyncio's start_tls pauses reading and resumes it from a handle made
there).  Each test runs on asyncio's own loop and on every hookloop backend
with the same assertions.  Broken on purpose (reads without a context, as
before issue #14), the second connection's first ``data_received`` sees
what the first connection set, and after start_tls the reads still see the
context of ``create_connection``.
"""
from __future__ import annotations

import asyncio
import contextvars

where: contextvars.ContextVar[str] = contextvars.ContextVar("where", default="unset")

GUARD = 10.0


class Observer(asyncio.Protocol):
    def __init__(self, name, seen, lost=None):
        self.name = name
        self.seen = seen
        self.lost = lost
        self.transport = None
        self.note("factory")

    def note(self, callback):
        self.seen.append((self.name, callback, where.get()))

    def connection_made(self, transport):
        self.transport = transport
        self.note("connection_made")

    def data_received(self, data):
        self.note("data_received")
        where.set(self.name)
        self.transport.write(data)

    def eof_received(self):
        self.note("eof_received")

    def connection_lost(self, exc):
        self.note("connection_lost")
        if self.lost is not None:
            self.lost.set_result(None)


def run(loop, coro):
    return loop.run_until_complete(asyncio.wait_for(coro, GUARD))


def test_tls_server_connections_see_the_servers_context(tls_loop, server_ctx, client_ctx):
    loop = tls_loop
    seen = []
    losses = []

    def factory():
        losses.append(loop.create_future())
        return Observer(f"conn{len(losses)}", seen, losses[-1])

    async def main():
        where.set("server")
        server = await loop.create_server(factory, "127.0.0.1", 0, ssl=server_ctx)
        where.set("client")
        port = server.sockets[0].getsockname()[1]
        for _ in range(2):
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost")
            writer.write(b"ping")
            assert await reader.readexactly(4) == b"ping"
            writer.close()
            await writer.wait_closed()
            await losses[-1]
        server.close()
        await server.wait_closed()

    run(loop, main())
    for conn in ("conn1", "conn2"):
        assert [(cb, value) for name, cb, value in seen if name == conn] == [
            ("factory", "server"), ("connection_made", "server"),
            ("data_received", "server"), ("eof_received", conn), ("connection_lost", conn)]


def test_tls_client_and_start_tls_contexts(tls_loop, server_ctx, client_ctx):
    loop = tls_loop
    seen = []

    async def echo(reader, writer):
        while data := await reader.read(100):
            writer.write(data)
        writer.close()

    async def main():
        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        where.set("client")
        lost = loop.create_future()
        transport, protocol = await loop.create_connection(
            lambda: Observer("client", seen, lost), "127.0.0.1", port, ssl=client_ctx,
            server_hostname="localhost")
        transport.write(b"ping")
        while len(seen) < 3:
            await asyncio.sleep(0)
        transport.close()
        await lost
        server.close()
        await server.wait_closed()

        # start_tls: the reads after it run in a copy of its caller's context.
        plain_server = await asyncio.start_server(
            lambda r, w: upgrade_and_echo(r, w, server_ctx), "127.0.0.1", 0)
        port = plain_server.sockets[0].getsockname()[1]
        where.set("plain")
        lost = loop.create_future()
        plain, protocol = await loop.create_connection(
            lambda: Observer("upgraded", seen, lost), "127.0.0.1", port)
        where.set("upgrader")
        tls = await loop.start_tls(plain, protocol, client_ctx, server_hostname="localhost")
        protocol.transport = tls
        where.set("after")
        tls.write(b"ping")
        while len(seen) < 8:
            await asyncio.sleep(0)
        tls.close()
        await lost
        plain_server.close()
        await plain_server.wait_closed()

    async def upgrade_and_echo(reader, writer, ctx):
        await writer.start_tls(ctx)
        while data := await reader.read(100):
            writer.write(data)
        writer.close()

    run(loop, main())
    assert [(name, cb, value) for name, cb, value in seen] == [
        ("client", "factory", "client"), ("client", "connection_made", "client"),
        ("client", "data_received", "client"),
        # the server's close_notify answering ours, read in the same copy
        ("client", "eof_received", "client"), ("client", "connection_lost", "client"),
        ("upgraded", "factory", "plain"), ("upgraded", "connection_made", "plain"),
        ("upgraded", "data_received", "upgrader"),
        ("upgraded", "eof_received", "upgraded"), ("upgraded", "connection_lost", "upgraded"),
    ]
