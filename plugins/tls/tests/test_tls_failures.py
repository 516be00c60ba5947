"""TLS connections that fail: certificates that do not verify, peers that
never speak or reset mid-handshake or mid-stream, a server closed while
handshakes are in progress, the handshake timeout; and many handshakes at
once.  No path may leak a file descriptor, and a protocol whose
connection_made was called gets connection_lost exactly once.

The error types are asyncio's (its own loop is one of the ``tls_loop``
params): a peer that resets gives ``ConnectionResetError``, a handshake cut
by its timeout ``ConnectionAbortedError``, a bad certificate
``ssl.SSLCertVerificationError``.  A server whose handshake fails never
calls the protocol it made (neither connection_made nor connection_lost).
"""
from __future__ import annotations

import asyncio
import socket
import ssl

import pytest
from net_helpers import (
    Echo,
    Recorder,
    close_server,
    connect,
    fd_count,
    no_fd_leak,
    run,
    run_without_fd_leak,
    start_server,
)
from tls_helpers import RawTLSPeer, raw_client_hello, read_socket_to_end, reset


async def eventually(loop, condition, timeout=10, what="condition"):
    """Poll ``condition()`` every 10 ms until true; AssertionError after
    ``timeout``.  For what no callback reports (a server dropping a
    connection whose handshake failed: its protocol hears nothing)."""
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def test_untrusted_certificate(tls_loop, server_ctx, certificates):
    async def main():
        base = fd_count()
        server, addr, protocols = await start_server(tls_loop, Recorder, ssl=server_ctx)
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            await connect(tls_loop, addr, ssl=certificates.untrusting_client_context(),
                          server_hostname="localhost")
        assert info.value.verify_code == 20  # unable to get local issuer certificate
        # The server's handshake fails on the client's alert: it drops the
        # connection; the protocol it made was never connected.
        await eventually(tls_loop, lambda: fd_count() == base + 1, what="server drop")
        assert [p.events for p in protocols] == [[]]
        await close_server(server)

    run_without_fd_leak(tls_loop, main())


def test_hostname_mismatch(tls_loop, server_ctx, client_ctx):
    async def main():
        base = fd_count()
        server, addr, protocols = await start_server(tls_loop, Recorder, ssl=server_ctx)
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            await connect(tls_loop, addr, ssl=client_ctx, server_hostname="example.org")
        assert info.value.verify_code == 62  # hostname mismatch
        assert "example.org" in info.value.verify_message
        await eventually(tls_loop, lambda: fd_count() == base + 1, what="server drop")
        assert [p.events for p in protocols] == [[]]
        await close_server(server)

    run_without_fd_leak(tls_loop, main())


def test_silent_client_is_cut_at_the_handshake_timeout(tls_loop, server_ctx):
    async def main():
        server, addr, protocols = await start_server(tls_loop, Recorder, ssl=server_ctx,
                                                     ssl_handshake_timeout=0.2)
        with socket.socket() as peer:
            peer.setblocking(False)
            # Before the connect: the server may accept (and start its
            # timer) before this task runs again.
            start = tls_loop.time()
            await tls_loop.sock_connect(peer, addr)
            data, end = await read_socket_to_end(tls_loop, peer)
            elapsed = tls_loop.time() - start
        assert (data, end) == (b"", "eof")
        # At 0.2 s, not at asyncio's default of 60 s; late only by the
        # machine's load.
        assert 0.15 <= elapsed < 15, elapsed
        assert [p.events for p in protocols] == [[]]
        await close_server(server)

    run_without_fd_leak(tls_loop, main())


def test_silent_server_is_cut_at_the_handshake_timeout(tls_loop, client_ctx):
    async def main():
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            start = tls_loop.time()
            protocols = []

            def factory():
                protocols.append(Recorder())
                return protocols[-1]

            with pytest.raises(ConnectionAbortedError):
                await tls_loop.create_connection(
                    factory, *listener.getsockname(), ssl=client_ctx,
                    server_hostname="localhost", ssl_handshake_timeout=0.2)
            elapsed = tls_loop.time() - start
            conn, _ = listener.accept()
            with conn:
                conn.setblocking(False)
                hello, end = await read_socket_to_end(tls_loop, conn)
        assert hello[:1] == b"\x16"  # a TLS handshake record: the ClientHello
        assert end == "eof"
        assert 0.15 <= elapsed < 15, elapsed  # 0.2 s, not the default 60 s
        assert [p.events for p in protocols] == [[]]

    run_without_fd_leak(tls_loop, main())


def test_start_tls_handshake_timeout(tls_loop, client_ctx):
    async def main():
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            tr, pr = await connect(tls_loop, listener.getsockname())
            conn, _ = listener.accept()
            with conn:
                conn.setblocking(False)
                with pytest.raises(ConnectionAbortedError):
                    await tls_loop.start_tls(tr, pr, client_ctx, server_hostname="localhost",
                                             ssl_handshake_timeout=0.2)
                # The failed upgrade closed the transport under it.
                hello, end = await read_socket_to_end(tls_loop, conn)
        assert hello[:1] == b"\x16" and end == "eof"
        assert tr.is_closing()

    run_without_fd_leak(tls_loop, main())


def test_client_resets_mid_handshake(tls_loop, server_ctx):
    async def main():
        base = fd_count()
        server, addr, protocols = await start_server(tls_loop, Recorder, ssl=server_ctx)
        peer = socket.socket()
        peer.setblocking(False)
        await tls_loop.sock_connect(peer, addr)
        hello = await raw_client_hello()
        await tls_loop.sock_sendall(peer, hello)
        # The server answers (ServerHello ...): the handshake is under way.
        assert (await tls_loop.sock_recv(peer, 1 << 16))[:1] == b"\x16"
        reset(peer)
        await eventually(tls_loop, lambda: fd_count() == base + 1, what="server drop")
        assert [p.events for p in protocols] == [[]]
        await close_server(server)

    run_without_fd_leak(tls_loop, main())


def test_server_resets_mid_handshake(tls_loop, client_ctx):
    async def main():
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            listener.setblocking(False)

            async def reset_after_hello():
                conn, _ = await tls_loop.sock_accept(listener)
                assert (await tls_loop.sock_recv(conn, 1 << 16))[:1] == b"\x16"
                reset(conn)

            protocols = []

            def factory():
                protocols.append(Recorder())
                return protocols[-1]

            resetter = tls_loop.create_task(reset_after_hello())
            with pytest.raises(ConnectionResetError):
                await tls_loop.create_connection(factory, *listener.getsockname(),
                                                 ssl=client_ctx, server_hostname="localhost")
            await resetter
        assert [p.events for p in protocols] == [[]]

    run_without_fd_leak(tls_loop, main())


def test_client_resets_mid_stream(tls_loop, server_ctx, client_ctx):
    async def main():
        server, addr, protocols = await start_server(tls_loop, Recorder, ssl=server_ctx)
        peer = await RawTLSPeer.connect(tls_loop, addr, client_ctx)
        await peer.handshake()
        await peer.send(b"some data")
        (sp,) = protocols
        assert await sp.received(9) == b"some data"
        peer.reset()
        assert isinstance(await sp.lost, ConnectionResetError)
        await close_server(server)
        return sp

    sp = run_without_fd_leak(tls_loop, main())
    assert sp.events == ["made", "data", "lost"]
    assert sp.lost_calls == 1


async def raw_tls_server(loop, listener, server_ctx):
    """Accept one connection on ``listener`` and do the server's handshake."""
    conn, _ = await loop.sock_accept(listener)
    peer = RawTLSPeer(loop, conn, server_ctx, server_side=True)
    await peer.handshake()
    return peer


def test_server_resets_mid_stream(tls_loop, server_ctx, client_ctx):
    async def main():
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            listener.setblocking(False)
            peer, (tr, pr) = await asyncio.gather(
                raw_tls_server(tls_loop, listener, server_ctx),
                connect(tls_loop, listener.getsockname(), ssl=client_ctx,
                        server_hostname="localhost"))
        await peer.send(b"hello")
        assert await pr.received(5) == b"hello"
        peer.reset()
        assert isinstance(await pr.lost, ConnectionResetError)
        tr.close()  # harmless after the loss
        return pr

    pr = run_without_fd_leak(tls_loop, main())
    assert pr.events == ["made", "data", "lost"]
    assert pr.lost_calls == 1


def test_eof_without_close_notify(tls_loop, server_ctx, client_ctx):
    # A peer that closes its socket without close_notify: asyncio reports it
    # as an EOF (eof_received, then connection_lost(None)), like close_notify.
    async def main():
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            listener.setblocking(False)
            peer, (tr, pr) = await asyncio.gather(
                raw_tls_server(tls_loop, listener, server_ctx),
                connect(tls_loop, listener.getsockname(), ssl=client_ctx,
                        server_hostname="localhost"))
        await peer.send(b"last words")
        peer.close()
        assert await pr.lost is None
        assert bytes(pr.data) == b"last words"
        return pr

    pr = run_without_fd_leak(tls_loop, main())
    assert pr.events == ["made", "data", "eof", "lost"]
    assert pr.lost_calls == 1


def test_server_close_while_handshakes_are_in_progress(tls_loop, server_ctx, client_ctx):
    # Silent clients hold handshakes open; closing the server refuses new
    # connections, and the pending handshakes end (at the latest at their
    # timeout) without ever reaching the protocol, and without a leaked fd.
    async def main():
        base = fd_count()
        server, addr, protocols = await start_server(tls_loop, Recorder, ssl=server_ctx,
                                                     ssl_handshake_timeout=0.3)
        peers = []
        try:
            for _ in range(5):
                peer = socket.socket()
                peers.append(peer)
                peer.setblocking(False)
                await tls_loop.sock_connect(peer, addr)
            # listener + 5 peers + 5 accepted connections
            await eventually(tls_loop, lambda: fd_count() == base + 11, what="accepts")
            start = tls_loop.time()
            server.close()
            await server.wait_closed()
            with pytest.raises(ConnectionRefusedError):
                await connect(tls_loop, addr, ssl=client_ctx, server_hostname="localhost")
            for peer in peers:
                assert await read_socket_to_end(tls_loop, peer) == (b"", "eof")
            assert tls_loop.time() - start < 15  # not the default 60 s
        finally:
            for peer in peers:
                peer.close()
        assert [p.events for p in protocols] == [[]] * len(protocols)

    run_without_fd_leak(tls_loop, main())


def test_many_concurrent_handshakes(tls_loop, server_ctx, client_ctx):
    count = 100

    async def one(i):
        tr, pr = await connect(tls_loop, addr, ssl=client_ctx, server_hostname="localhost")
        message = b"client %d\n" % i
        tr.write(message)
        assert await pr.received(len(message)) == message
        tr.close()
        assert await pr.lost is None
        assert pr.lost_calls == 1

    async def main():
        nonlocal addr
        server, addr, protocols = await start_server(tls_loop, Echo, ssl=server_ctx,
                                                     backlog=count)
        await asyncio.gather(*(one(i) for i in range(count)))
        assert len(protocols) == count
        for p in protocols:
            assert await p.lost is None
            assert p.lost_calls == 1
        await close_server(server)

    addr = None
    with no_fd_leak():
        run(tls_loop, main())


def test_cancelled_connect_mid_handshake(tls_loop, client_ctx):
    async def main():
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            listener.setblocking(False)
            protocols = []

            def factory():
                protocols.append(Recorder())
                return protocols[-1]

            task = tls_loop.create_task(tls_loop.create_connection(
                factory, *listener.getsockname(), ssl=client_ctx,
                server_hostname="localhost"))
            conn, _ = await tls_loop.sock_accept(listener)
            with conn:
                # The ClientHello arrived: the handshake is under way.
                assert (await tls_loop.sock_recv(conn, 1 << 16))[:1] == b"\x16"
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                assert (await read_socket_to_end(tls_loop, conn))[1] in ("eof", "reset")
        assert [p.events for p in protocols] == [[]]

    run_without_fd_leak(tls_loop, main())


def test_cancelled_start_tls_mid_handshake(tls_loop, client_ctx):
    async def main():
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            tr, pr = await connect(tls_loop, listener.getsockname())
            conn, _ = listener.accept()
            with conn:
                conn.setblocking(False)
                task = tls_loop.create_task(tls_loop.start_tls(
                    tr, pr, client_ctx, server_hostname="localhost"))
                assert (await tls_loop.sock_recv(conn, 1 << 16))[:1] == b"\x16"
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                # The transport under the aborted upgrade is closed.
                assert (await read_socket_to_end(tls_loop, conn))[1] in ("eof", "reset")
        assert tr.is_closing()
        return pr

    run_without_fd_leak(tls_loop, main())


def test_connect_accepted_socket_handshake_failure(tls_loop, server_ctx, certificates):
    # The server side of connect_accepted_socket fails the handshake when the
    # client rejects its certificate.  asyncio's client drops the connection
    # without sending its alert, so the server sees the connection reset;
    # the accepted socket is closed.
    async def main():
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            listener.setblocking(False)
            protocols = []

            def factory():
                protocols.append(Recorder())
                return protocols[-1]

            async def serve():
                conn, _ = await tls_loop.sock_accept(listener)
                try:
                    await tls_loop.connect_accepted_socket(factory, conn, ssl=server_ctx)
                finally:
                    served.append(conn)

            served = []
            results = await asyncio.gather(
                serve(), connect(tls_loop, listener.getsockname(),
                                 ssl=certificates.untrusting_client_context(),
                                 server_hostname="localhost"),
                return_exceptions=True)
        assert isinstance(results[1], ssl.SSLCertVerificationError), results
        assert isinstance(results[0], ConnectionResetError), results
        assert served[0].fileno() == -1
        assert [p.events for p in protocols] == [[]]

    run_without_fd_leak(tls_loop, main())


def test_client_certificate_missing(tls_loop, server_ctx, client_ctx, certificates):
    # A server that requires a client certificate.  With TLS 1.3 the client
    # finishes its handshake first; the server then fails its own and drops
    # the connection (asyncio sends no alert), which the client takes as an
    # EOF.  The server's protocol hears nothing.
    certificates.ca.configure_trust(server_ctx)
    server_ctx.verify_mode = ssl.CERT_REQUIRED

    async def main():
        server, addr, protocols = await start_server(tls_loop, Recorder, ssl=server_ctx)
        tr, pr = await connect(tls_loop, addr, ssl=client_ctx, server_hostname="localhost")
        assert await pr.lost is None
        await close_server(server)
        assert [p.events for p in protocols] == [[]]
        return pr

    pr = run_without_fd_leak(tls_loop, main())
    assert pr.events == ["made", "eof", "lost"] and pr.lost_calls == 1
