"""start_tls on a stream whose reader already holds the start of the handshake.

A client may send its first TLS flight right behind its last plain bytes
("STARTTLS\\n" + ClientHello in one segment).  The server's StreamReader then
holds the ClientHello in its buffer when the server calls start_tls; unless
start_tls hands those bytes to the TLS protocol, the handshake waits for
bytes that already came.  asyncio does this since gh-142352 (3.14), and
hookloop-tls's ``_take_read_ahead`` does it on every Python, through the
StreamReaderProtocol's private reader (an exception to rule 1, named in
tests/test_source_rules.py).  This test is what fails should asyncio rename
the attributes it reads: nothing would be taken and the handshake would
never finish.
"""
from __future__ import annotations

import asyncio
import inspect
import ssl

import pytest
from net_helpers import run_without_fd_leak


def _base_start_tls_reads_reader() -> bool:
    """Whether asyncio's own start_tls has gh-142352 (it reads the reader)."""
    loop = asyncio.new_event_loop()
    try:
        return "_stream_reader" in inspect.getsource(type(loop).start_tls)
    finally:
        loop.close()


def test_start_tls_takes_the_handshake_already_read(tls_loop, loop_name, server_ctx,
                                                    client_ctx):
    if loop_name == "asyncio" and not _base_start_tls_reads_reader():
        pytest.skip("asyncio's loop on this Python predates gh-142352: its start_tls "
                    "would wait for the ClientHello its reader already holds")

    async def main():
        loop = asyncio.get_running_loop()
        handled = loop.create_future()

        async def handle(reader, writer):
            try:
                assert await reader.readline() == b"STARTTLS\n"
                await writer.start_tls(server_ctx)
                line = await reader.readline()
                writer.write(line.upper())
                await writer.drain()
                writer.close()
                await writer.wait_closed()
                handled.set_result(line)
            except BaseException as exc:
                handled.set_exception(exc)

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        # The client's TLS by hand, over memory BIOs: its ClientHello goes
        # out in the same write as the plain "STARTTLS\n".
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = client_ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
        with pytest.raises(ssl.SSLWantReadError):
            tls.do_handshake()
        hello = outgoing.read()
        assert hello
        writer.write(b"STARTTLS\n" + hello)
        await writer.drain()
        # Finish the handshake: whatever the server sends, fed to the BIO.
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                pass
            out = outgoing.read()
            if out:
                writer.write(out)
                await writer.drain()
            data = await reader.read(65536)
            assert data, "the server closed the connection during the handshake"
            incoming.write(data)
        tls.write(b"secret\n")
        writer.write(outgoing.read())
        await writer.drain()
        got = b""
        while not got.endswith(b"\n"):
            data = await reader.read(65536)
            assert data, "the server closed the connection before answering"
            incoming.write(data)
            try:
                got += tls.read(65536)
            except ssl.SSLWantReadError:
                pass
        assert got == b"SECRET\n"
        # The server's TLS close waits for our close_notify or our EOF: give
        # it the EOF (this hand-made client sends no close_notify).
        writer.close()
        await writer.wait_closed()
        assert await handled == b"secret\n"
        server.close()
        await server.wait_closed()

    run_without_fd_leak(tls_loop, asyncio.wait_for(main(), 20))
