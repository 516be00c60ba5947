"""uvicorn on hookloop, started the way users start it: its command line.

Each backend gets a uvicorn child process (``python -m uvicorn asgi_app:app
--loop hookloop:new_event_loop``, ``HOOKLOOP_BACKEND=<backend>``) serving
the plain ASGI app in ``asgi_app.py``; the client side runs on a hookloop
loop of the same backend in the test process (aiohttp's client, and raw
streams where the test must control every byte).  What is tested:

* that the server really runs on hookloop, on that backend (``/loop`` and
  the app's lifespan line name the loop's module and ``loop.backend``);
* 1,000 requests: 500 over a keep-alive pool of 10 connections (the server
  sees at most 10 client ports, every answer carries the request's number)
  and 500 with ``Connection: close`` (the server closes each connection, so
  the client must open new ones: more than 10 ports);
* a streamed response: 256 frames sent as 256 chunks arrive complete and in
  order (index, size, contents and a sha256 over all);
* graceful shutdown on SIGTERM with a request in flight: the listening
  socket goes, the in-flight request completes with its full body, lifespan
  shutdown runs, the connection is closed, and the process ends.

Readiness is an event, not a sleep: the test waits (with a deadline) for
uvicorn's "Uvicorn running on" line, which it logs once it is accepting on
the port it reports, then asks ``/health``.

About the exit status: uvicorn (0.29 and newer) restores the default SIGTERM
handler after its graceful shutdown and raises the signal again, so the
process ends *by* SIGTERM (``returncode == -SIGTERM``), on asyncio's own
loop exactly as on hookloop.  The test asserts that, and that the shutdown
really was graceful (the log's last lines), rather than an exit status 0
that uvicorn does not give.
"""
from __future__ import annotations

import asyncio
import hashlib
import signal
import struct
import urllib.request
from collections.abc import Iterator

import aiohttp
import asgi_app
import pytest
from web_helpers import UvicornProcess, payload, run

KEEPALIVE_REQUESTS = 500
CLOSING_REQUESTS = 500
POOL = 10
STREAM_FRAMES = 256
STREAM_FRAME_SIZE = 4096


def assert_on_hookloop(server: UvicornProcess, backend: str) -> None:
    line = server.wait_for_line(asgi_app.LIFESPAN_STARTUP)
    assert line.endswith(f"on hookloop.loop {backend}"), line


def assert_clean_log(server: UvicornProcess) -> None:
    """A graceful end: lifespan shutdown ran, uvicorn finished, no errors."""
    log = server.lines
    assert asgi_app.LIFESPAN_SHUTDOWN in log, server.log
    assert any("Application shutdown complete" in line for line in log), server.log
    assert "Finished server process" in log[-1], server.log
    assert not any("Traceback" in line or "ERROR" in line for line in log), server.log


@pytest.fixture(scope="module")
def uvicorn_server(hookloop_backend: str) -> Iterator[UvicornProcess]:
    """One uvicorn process per backend for the tests that only send requests;
    at the end it must shut down cleanly, with nothing logged as an error."""
    server = UvicornProcess(hookloop_backend)
    try:
        server.start()
        with urllib.request.urlopen(f"{server.base_url}/health", timeout=10) as resp:
            assert resp.read() == b"ok"
        yield server
        server.terminate()
        assert server.wait() == -signal.SIGTERM, server.log  # see the module docstring
        assert_clean_log(server)
    finally:
        server.stop()


def test_server_runs_on_hookloop_backend(hookloop_backend: str,
                                         hookloop_loop: asyncio.AbstractEventLoop,
                                         uvicorn_server: UvicornProcess) -> None:
    """``--loop hookloop:new_event_loop`` + ``HOOKLOOP_BACKEND`` really put
    the app on hookloop with that backend (the default backend would pass
    for one backend only; ``--loop asyncio`` would pass for none)."""
    async def main() -> dict[str, str]:
        async with aiohttp.ClientSession() as session, \
                session.get(f"{uvicorn_server.base_url}/loop") as resp:
            assert resp.status == 200
            return await resp.json()

    assert run(hookloop_loop, main()) == {"module": "hookloop.loop", "class": "EventLoop",
                                          "backend": hookloop_backend}
    assert_on_hookloop(uvicorn_server, hookloop_backend)


def test_thousand_requests_keepalive_and_not(hookloop_loop: asyncio.AbstractEventLoop,
                                             uvicorn_server: UvicornProcess) -> None:
    url = f"{uvicorn_server.base_url}/request"

    async def main() -> tuple[list[tuple[int, int, str | None]], ...]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=POOL)) as session:
            async def one(n: int, close: bool) -> tuple[int, int, str | None]:
                headers = {"Connection": "close"} if close else {}
                async with session.get(url, params={"n": str(n)}, headers=headers) as resp:
                    assert resp.status == 200
                    body = await resp.json()
                    return body["n"], body["port"], resp.headers.get("Connection")

            keepalive = await asyncio.gather(*(one(n, False) for n in range(KEEPALIVE_REQUESTS)))
            total = KEEPALIVE_REQUESTS + CLOSING_REQUESTS
            closing = await asyncio.gather(*(one(n, True)
                                             for n in range(KEEPALIVE_REQUESTS, total)))
            return keepalive, closing

    keepalive, closing = run(hookloop_loop, main())
    assert [n for n, _, _ in keepalive] == list(range(KEEPALIVE_REQUESTS))
    assert [n for n, _, _ in closing] == list(range(KEEPALIVE_REQUESTS,
                                                    KEEPALIVE_REQUESTS + CLOSING_REQUESTS))
    # Reuse: 500 requests on at most POOL connections, none closed by the server.
    assert len({port for _, port, _ in keepalive}) <= POOL
    assert {connection for _, _, connection in keepalive} == {None}
    # No reuse: every request on a connection of its own, closed after it.  Kept
    # alive, they would come from at most POOL ports.  (Not "500 ports": once a
    # connection has closed, the kernel may hand its port out again.)
    assert {connection for _, _, connection in closing} == {"close"}
    assert len({port for _, port, _ in closing}) > POOL


def test_streaming_response_in_order(hookloop_loop: asyncio.AbstractEventLoop,
                                     uvicorn_server: UvicornProcess) -> None:
    url = (f"{uvicorn_server.base_url}/stream"
           f"?chunks={STREAM_FRAMES}&size={STREAM_FRAME_SIZE}")

    async def main() -> tuple[str | None, bytes]:
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            assert resp.status == 200
            body = bytearray()
            async for data in resp.content.iter_any():
                body += data
            return resp.headers.get("Transfer-Encoding"), bytes(body)

    encoding, body = run(hookloop_loop, main())
    assert encoding == "chunked"
    expected = b"".join(asgi_app.frame(i, STREAM_FRAME_SIZE) for i in range(STREAM_FRAMES))
    assert len(body) == len(expected)
    # Frame by frame first (a reordering or a loss names the frame), then the digest.
    offset, index = 0, 0
    while offset < len(body):
        got_index, size = struct.unpack_from("!II", body, offset)
        assert (got_index, size) == (index, STREAM_FRAME_SIZE)
        end = offset + 8 + size
        assert body[offset:end] == asgi_app.frame(index, size), f"frame {index} corrupted"
        offset, index = end, index + 1
    assert index == STREAM_FRAMES
    assert hashlib.sha256(body).digest() == hashlib.sha256(expected).digest()


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    status, *fields = head.rstrip("\r\n").split("\r\n")
    headers = {}
    for field in fields:
        name, _, value = field.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


def test_sigterm_graceful_shutdown_with_request_in_flight(
        hookloop_backend: str, hookloop_loop: asyncio.AbstractEventLoop) -> None:
    """SIGTERM while ``/hold`` is mid-request: the client has the response
    headers and the first bytes, the server still waits for the rest of
    the request body.  Only after uvicorn says it is waiting for
    connections does the client send the rest; the full body must come.
    (If SIGTERM did not reach uvicorn's loop, the wait for the log line
    fails; if shutdown cut the request, the body is short.)"""
    request_body = payload(256 * 1024, "hold request")
    half = len(request_body) // 2
    server = UvicornProcess(hookloop_backend, "--timeout-graceful-shutdown", "20")
    writers: list[asyncio.StreamWriter] = []
    try:
        server.start()
        assert_on_hookloop(server, hookloop_backend)

        async def start_request() -> tuple[asyncio.StreamReader, str, dict[str, str]]:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writers.append(writer)
            writer.write(b"POST /hold HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Type: application/octet-stream\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(request_body))
            writer.write(request_body[:half])
            await writer.drain()
            status, headers = await _read_head(reader)
            assert await reader.readexactly(len(asgi_app.HOLD_STARTED)) == asgi_app.HOLD_STARTED
            return reader, status, headers

        reader, status, headers = run(hookloop_loop, start_request())
        assert status == "HTTP/1.1 200 OK"
        assert int(headers["content-length"]) == asgi_app.hold_response_size()

        server.terminate()
        server.wait_for_line("Waiting for connections to close")

        async def finish_request() -> tuple[bytes, bytes]:
            # The listening socket is gone: shutdown really is under way.
            with pytest.raises(ConnectionRefusedError):
                await asyncio.open_connection("127.0.0.1", server.port)
            writer = writers[0]
            writer.write(request_body[half:])
            await writer.drain()
            rest = await reader.readexactly(asgi_app.hold_response_size()
                                            - len(asgi_app.HOLD_STARTED))
            after = await reader.read()  # the server closes the connection
            writer.close()
            await writer.wait_closed()
            return rest, after

        rest, after = run(hookloop_loop, finish_request())
        assert rest[:32] == hashlib.sha256(request_body).digest()
        assert rest[32:] == asgi_app.hold_payload()
        assert after == b""

        assert server.wait() == -signal.SIGTERM, server.log  # see the module docstring
        assert_clean_log(server)
    finally:
        for writer in writers:
            writer.close()
        server.stop()
