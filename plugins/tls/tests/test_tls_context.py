"""TLS protocols' callbacks run in the context their connection was made in, as on asyncio.

The app protocol of a TLS connection is called from the plain transport's
reads, so it sees what those reads see: the context current at
``create_server``/``create_connection`` (each accepted connection in its
own copy), and after ``start_tls()`` a copy of the context of its caller
(asyncio's start_tls pauses reading and resumes it from a handle made
there).  Since the app's ``connection_made`` comes from the read that
completes the handshake, it shares the reads' copy: what it sets,
``data_received`` sees (unlike on a plain connection).  A client's
``close()`` ends in the read of the peer's close_notify, so its
``eof_received`` and ``connection_lost`` run in the reads' copy too; after
``abort()``, ``connection_lost`` runs in a copy of the aborter's context.
This holds for ``connect_accepted_socket(ssl=...)`` and unix sockets too.

Each test runs on asyncio's own loop and on every hookloop backend
with the same assertions.  Broken on purpose (reads without a context, as
before issue #14), the second connection's first ``data_received`` sees
what the first connection set, and after start_tls the reads still see the
context of ``create_connection``.  The tests of ``connect_accepted_socket``
and unix sockets also fail when hookloop-tls calls the app's
``connection_made`` in a copy of the read's context, or its
``connection_lost`` in an empty one.
"""
from __future__ import annotations

import asyncio
import os
import socket
import uuid

from context_helpers import Recorder, where
from net_helpers import no_fd_leak

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


# -- connect_accepted_socket(ssl=), unix sockets, abort, two clients ---------
# (with tests/context_helpers.py's Recorder)

def calls_of(seen, name):
    return [(callback, value) for who, callback, value in seen if who == name]


def run_without_fd_leak(loop, coro):
    """``run``, failing if ``coro`` leaves an fd open (the loop goes round
    once first: what it makes lazily is not counted)."""
    run(loop, asyncio.sleep(0))
    with no_fd_leak():
        return run(loop, coro)


def test_tls_connect_accepted_socket_sees_its_callers_context(tls_loop, server_ctx, client_ctx):
    loop = tls_loop
    seen = []

    async def main():
        a, b = socket.socketpair()  # each taken over by a transport
        with a, b:
            lost = {"server": loop.create_future(), "client": loop.create_future()}
            where.set("accepted")
            # Two tasks, each with a copy of the context current here: the
            # handshake needs both ends at once.
            accepting = asyncio.ensure_future(loop.connect_accepted_socket(
                lambda: Recorder("server", seen, lost["server"], echo=True), a,
                ssl=server_ctx))
            where.set("client")
            connecting = asyncio.ensure_future(loop.create_connection(
                lambda: Recorder("client", seen, lost["client"], set_in_factory=False),
                sock=b, ssl=client_ctx, server_hostname="localhost"))
            (_, server), (client_transport, client) = await asyncio.gather(accepting,
                                                                           connecting)
            client_transport.write(b"ping!")
            assert await server.inbox.get() == b"ping!"
            assert await client.inbox.get() == b"ping!"
            where.set("closer")
            client_transport.close()
            assert await lost["client"] is None
            assert await lost["server"] is None

    run_without_fd_leak(loop, main())
    # asyncio calls a TLS app protocol's connection_made when the handshake
    # completes, from the read that completed it: connection_made and the
    # reads share one copy (unlike a plain connection's), so data_received
    # sees what connection_made set.
    assert calls_of(seen, "server") == [
        ("factory", "accepted"), ("connection_made", "server:factory"),
        ("data_received", "server:connection_made"),
        ("eof_received", "server:data_received"),  # the client's close_notify
        ("connection_lost", "server:eof_received")]
    assert calls_of(seen, "client") == [
        ("factory", "client"), ("connection_made", "client"),
        ("data_received", "client:connection_made"),
        # close() sends close_notify; the shutdown ends in the read of the
        # server's answer (asyncio calls eof_received there too), so the
        # closer's context is not seen.
        ("eof_received", "client:data_received"),
        ("connection_lost", "client:eof_received")]


def test_tls_unix_connections_each_in_their_own_copy_and_abort(tls_loop, server_ctx, client_ctx):
    loop = tls_loop
    seen = []
    losses = []
    path = f"/tmp/hl-tls-ctx-{uuid.uuid4().hex[:12]}.sock"  # AF_UNIX paths are short

    def factory():
        losses.append(loop.create_future())
        return Recorder(f"conn{len(losses)}", seen, losses[-1], echo=True)

    async def main():
        where.set("server")
        server = await loop.create_unix_server(factory, path, ssl=server_ctx)
        where.set("client")
        lost = {name: loop.create_future() for name in ("c1", "c2")}
        connections = {}
        for name in ("c1", "c2"):
            connections[name] = await loop.create_unix_connection(
                lambda name=name: Recorder(name, seen, lost[name], set_in_factory=False),
                path, ssl=client_ctx, server_hostname="localhost")
        assert where.get() == "client"
        for name in ("c1", "c2", "c1"):
            transport, protocol = connections[name]
            transport.write(b"ping!")
            assert await protocol.inbox.get() == b"ping!"
        where.set("aborter")
        connections["c1"][0].abort()
        assert await lost["c1"] is None
        where.set("closer")
        connections["c2"][0].close()
        assert await lost["c2"] is None
        await asyncio.gather(*losses)
        server.close()
        await server.wait_closed()

    try:
        run_without_fd_leak(loop, main())
    finally:
        if os.path.exists(path):
            os.unlink(path)
    assert calls_of(seen, "c1") == [
        ("factory", "client"), ("connection_made", "client"),
        ("data_received", "c1:connection_made"),
        ("data_received", "c1:data_received"),
        # asyncio: abort() schedules the plain transport's connection_lost
        # from its caller, and the app's follows from there.
        ("connection_lost", "aborter")]
    assert calls_of(seen, "c2") == [
        ("factory", "client"), ("connection_made", "client"),
        ("data_received", "c2:connection_made"),  # c1's sets are not in c2's copy
        ("eof_received", "c2:data_received"), ("connection_lost", "c2:eof_received")]
    for conn in ("conn1", "conn2"):
        # Each accepted connection in its own copy.  (What follows the
        # first read of conn1, whose client aborted, is left out: a FIN or
        # an RST, depending on what the client had not read yet.)
        assert calls_of(seen, conn)[:3] == [
            ("factory", "server"), ("connection_made", f"{conn}:factory"),
            ("data_received", f"{conn}:connection_made")]
