"""The sample project's code under test: a TCP echo service on asyncio streams."""
from __future__ import annotations

import asyncio
import contextlib

HOST = "127.0.0.1"


async def handle_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Send back everything the client sends, until it closes its side."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def start_echo_server() -> asyncio.Server:
    """An echo server listening on a free port of the loopback interface."""
    return await asyncio.start_server(handle_echo, HOST, 0)


def server_port(server: asyncio.Server) -> int:
    """The port ``server`` listens on."""
    port: int = server.sockets[0].getsockname()[1]
    return port


async def echo(port: int, payload: bytes) -> bytes:
    """Send ``payload`` to the echo server on ``port``, close the sending
    side, and return everything that comes back."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(payload)
        await writer.drain()
        writer.write_eof()
        return await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
