"""aiohttp's server and client, both on one hookloop loop, on every backend.

aiohttp is the asyncio HTTP stack that leans hardest on the loop's own
transports (it brings no I/O layer of its own): its server is a
``loop.create_server`` protocol, its client a ``loop.create_connection``
one, with flow control (``pause_reading``/``pause_writing``), TLS through
the loop's ``ssl=`` and ``start_tls`` paths, and its connection pool on top.
What is tested:

* routing: path parameters, query strings, JSON in and out, a redirect,
  404 and 405, a request and a response header;
* a 16 MiB chunked upload and a 16 MiB chunked download, sha256-checked at
  the far end (the server reads the upload as it comes; the client writes it
  from an async generator; the download is written in 256 KiB pieces);
* a ``web.FileResponse`` of 4 MiB, which aiohttp hands to ``loop.sendfile``
  (the loop sends it with ``os.sendfile`` on a plain connection and falls
  back to reads and writes on a TLS one), sha256-checked both ways;
* a websocket echo: 200 text and binary messages, pipelined, one of 1 MiB,
  in order and intact, and a clean 1000 close seen on both sides;
* the client's connection pool: ``limit=10``, 100 concurrent requests; the
  first ten are held in the handler until ten are in at once, so the server
  must see exactly ten client ports, and never more than ten requests;
* TLS with a trustme CA: HTTPS requests (the server sees a TLS connection),
  a 1 MiB upload checksummed, a ``wss://`` echo, and a client that trusts
  another CA refused with a certificate error.
"""
from __future__ import annotations

import asyncio
import functools
import hashlib
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web
from web_helpers import aiohttp_server, certificates, payload, run

BIG = 16 * 1024 * 1024
PIECE = 256 * 1024
POOL = 10
POOL_REQUESTS = 100


@functools.cache
def big_payload() -> tuple[bytes, str]:
    """16 MiB and their sha256, once per process."""
    data = payload(BIG, "16 MiB")
    return data, hashlib.sha256(data).hexdigest()


async def _upload(request: web.Request) -> web.Response:
    digest, size = hashlib.sha256(), 0
    async for piece in request.content.iter_any():
        digest.update(piece)
        size += len(piece)
    return web.json_response({"sha256": digest.hexdigest(), "size": size,
                              "transfer-encoding": request.headers.get("Transfer-Encoding")})


async def _download(request: web.Request) -> web.StreamResponse:
    data, _ = big_payload()
    resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    view = memoryview(data)
    for start in range(0, len(data), PIECE):
        await resp.write(view[start:start + PIECE])
    await resp.write_eof()
    return resp


async def _ws_echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            await ws.send_str(msg.data)
        elif msg.type == WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    request.app[CLOSE_CODES].append(ws.close_code)
    return ws


CLOSE_CODES = web.AppKey("close_codes", list)


def make_app() -> web.Application:
    routes = web.RouteTableDef()

    @routes.get("/")
    async def index(request: web.Request) -> web.Response:
        return web.Response(text="hello", headers={"X-Served-By": "hookloop-test"})

    @routes.get(r"/items/{id:\d+}")
    async def item(request: web.Request) -> web.Response:
        return web.json_response({"id": int(request.match_info["id"]),
                                  "q": request.query.getall("q", []),
                                  "header": request.headers.get("X-Request")})

    @routes.post("/json")
    async def echo_json(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"got": body, "keys": sorted(body)})

    @routes.get("/old")
    async def old(request: web.Request) -> web.Response:
        raise web.HTTPFound("/")

    @routes.get("/tls")
    async def tls(request: web.Request) -> web.Response:
        assert request.transport is not None
        ssl_object = request.transport.get_extra_info("ssl_object")
        return web.json_response({"secure": request.secure,
                                  "version": ssl_object.version() if ssl_object else None})

    app = web.Application(client_max_size=BIG * 2)
    app[CLOSE_CODES] = []
    app.add_routes(routes)
    app.router.add_post("/upload", _upload)
    app.router.add_get("/download", _download)
    app.router.add_get("/ws", _ws_echo)
    return app


def test_routes(hookloop_loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        async with aiohttp_server(make_app()) as url, aiohttp.ClientSession(url) as session:
            async with session.get("/") as resp:
                assert (resp.status, await resp.text()) == (200, "hello")
                assert resp.headers["X-Served-By"] == "hookloop-test"
            async with session.get("/items/42", params=[("q", "a b"), ("q", "ü")],
                                   headers={"X-Request": "yes"}) as resp:
                assert resp.status == 200
                assert await resp.json() == {"id": 42, "q": ["a b", "ü"], "header": "yes"}
            async with session.post("/json", json={"b": [1, 2], "a": None}) as resp:
                assert await resp.json() == {"got": {"b": [1, 2], "a": None}, "keys": ["a", "b"]}
            async with session.get("/old") as resp:
                assert (resp.status, await resp.text()) == (200, "hello")
                assert [r.status for r in resp.history] == [302]
            async with session.get("/items/abc") as resp:
                assert resp.status == 404
            async with session.delete("/") as resp:
                assert resp.status == 405
                assert "GET" in resp.headers["Allow"]

    run(hookloop_loop, main())


def test_chunked_upload_16mib(hookloop_loop: asyncio.AbstractEventLoop) -> None:
    data, digest = big_payload()

    async def body() -> AsyncIterator[bytes]:
        for start in range(0, len(data), PIECE):
            yield data[start:start + PIECE]

    async def main() -> dict[str, Any]:
        async with aiohttp_server(make_app()) as url, aiohttp.ClientSession(url) as session, \
                session.post("/upload", data=body()) as resp:
            assert resp.status == 200
            return await resp.json()

    assert run(hookloop_loop, main()) == {"sha256": digest, "size": BIG,
                                          "transfer-encoding": "chunked"}


def test_chunked_download_16mib(hookloop_loop: asyncio.AbstractEventLoop) -> None:
    _, digest = big_payload()

    async def main() -> tuple[str | None, int, str]:
        async with aiohttp_server(make_app()) as url, aiohttp.ClientSession(url) as session, \
                session.get("/download") as resp:
            assert resp.status == 200
            received, size = hashlib.sha256(), 0
            async for piece in resp.content.iter_chunked(64 * 1024):
                received.update(piece)
                size += len(piece)
            return resp.headers.get("Transfer-Encoding"), size, received.hexdigest()

    assert run(hookloop_loop, main()) == ("chunked", BIG, digest)


def _ws_messages(count: int) -> list[str | bytes]:
    rng = random.Random("ws")
    messages: list[str | bytes] = []
    for i in range(count):
        size = rng.randrange(0, 16 * 1024)
        if i % 2:
            messages.append(rng.randbytes(size))
        else:
            messages.append(f"{i}:" + "".join(rng.choices("abcdefé€😀", k=size // 4)))
    messages[count // 2] = rng.randbytes(1024 * 1024)
    return messages


async def _ws_round_trip(ws: aiohttp.ClientWebSocketResponse,
                         messages: list[str | bytes]) -> list[str | bytes]:
    async def send_all() -> None:
        for message in messages:
            if isinstance(message, str):
                await ws.send_str(message)
            else:
                await ws.send_bytes(message)

    sender = asyncio.ensure_future(send_all())
    received: list[str | bytes] = []
    try:
        while len(received) < len(messages):
            msg = await ws.receive()
            assert msg.type in (WSMsgType.TEXT, WSMsgType.BINARY), msg
            received.append(msg.data)
    finally:
        await sender
    return received


def test_websocket_echo(hookloop_loop: asyncio.AbstractEventLoop) -> None:
    messages = _ws_messages(200)
    app = make_app()

    async def main() -> tuple[list[str | bytes], int | None]:
        async with aiohttp_server(app) as url, aiohttp.ClientSession(url) as session, \
                session.ws_connect("/ws") as ws:
            received = await _ws_round_trip(ws, messages)
            await ws.close()
            return received, ws.close_code

    received, close_code = run(hookloop_loop, main())
    assert [type(m) for m in received] == [type(m) for m in messages]
    assert received == messages
    assert close_code == 1000
    assert app[CLOSE_CODES] == [1000]


def test_connection_pool_reuse(hookloop_loop: asyncio.AbstractEventLoop) -> None:
    """``limit=10``: 100 concurrent requests on exactly ten connections.

    The first ten requests wait in the handler until ten are in at once, so
    ten connections must be opened (a pool that serialised requests would
    hang here and time out) and the other ninety must reuse them (a pool
    that ignored the limit would show up to 100 ports)."""
    ports: list[int] = []
    in_flight = max_in_flight = 0
    full = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        nonlocal in_flight, max_in_flight
        assert request.transport is not None
        ports.append(request.transport.get_extra_info("peername")[1])
        in_flight += 1
        max_in_flight = max(max_in_flight, in_flight)
        try:
            if in_flight == POOL:
                full.set()
            await asyncio.wait_for(full.wait(), 10)
        finally:
            in_flight -= 1
        return web.json_response({"n": int(request.query["n"])})

    app = web.Application()
    app.router.add_get("/pool", handler)

    async def main() -> list[int]:
        connector = aiohttp.TCPConnector(limit=POOL)
        async with aiohttp_server(app) as url, \
                aiohttp.ClientSession(url, connector=connector) as session:
            async def one(n: int) -> int:
                async with session.get("/pool", params={"n": str(n)}) as resp:
                    assert resp.status == 200
                    return int((await resp.json())["n"])

            return list(await asyncio.gather(*(one(n) for n in range(POOL_REQUESTS))))

    assert run(hookloop_loop, main()) == list(range(POOL_REQUESTS))
    assert len(ports) == POOL_REQUESTS
    assert len(set(ports)) == POOL
    assert max_in_flight == POOL


def test_file_response_uses_sendfile(hookloop_loop: asyncio.AbstractEventLoop,
                                     tmp_path: Path) -> None:
    """aiohttp's ``FileResponse`` is the common user of ``loop.sendfile``.

    The loop's own ``sendfile`` is wrapped (the real one does the work) to
    count its calls, so that the test fails if aiohttp went around it (it
    does with ``AIOHTTP_NOSENDFILE``).  On a plain connection the loop
    sends natively; on a TLS one it must fall back to reads and writes.
    The file is checksummed both times."""
    data = payload(4 * 1024 * 1024, "file")
    path = tmp_path / "file.bin"
    path.write_bytes(data)
    certs = certificates()
    app = web.Application()

    async def file(request: web.Request) -> web.FileResponse:
        return web.FileResponse(path)

    app.router.add_get("/file", file)
    sendfile_calls: list[int] = []
    real_sendfile = hookloop_loop.sendfile

    async def counting_sendfile(*args: Any, **kwargs: Any) -> int:
        sendfile_calls.append(1)
        return await real_sendfile(*args, **kwargs)

    hookloop_loop.sendfile = counting_sendfile  # type: ignore[method-assign]

    async def fetch(ssl_context: Any = None) -> tuple[str | None, str]:
        server_ctx = certs.server_context() if ssl_context is not None else None
        async with aiohttp_server(app, server_ctx) as url, aiohttp.ClientSession(url) as session, \
                session.get("/file", ssl=ssl_context if ssl_context is not None else True) as resp:
            assert resp.status == 200
            return resp.headers.get("Content-Length"), hashlib.sha256(await resp.read()).hexdigest()

    try:
        plain = run(hookloop_loop, fetch())
        assert len(sendfile_calls) == 1
        tls = run(hookloop_loop, fetch(certs.client_context()))
        assert len(sendfile_calls) == 2
    finally:
        del hookloop_loop.sendfile  # type: ignore[method-assign]
    expected = (str(len(data)), hashlib.sha256(data).hexdigest())
    assert plain == expected
    assert tls == expected


def test_tls_with_trustme_ca(hookloop_loop: asyncio.AbstractEventLoop) -> None:
    certs = certificates()
    upload = payload(1024 * 1024, "tls upload")
    messages = _ws_messages(20)
    app = make_app()

    async def main() -> None:
        client_ctx = certs.client_context()
        async with aiohttp_server(app, certs.server_context()) as url, \
                aiohttp.ClientSession(url) as session:
            assert url.startswith("https://127.0.0.1:")
            async with session.get("/tls", ssl=client_ctx) as resp:
                assert resp.status == 200
                info = await resp.json()
                assert info["secure"] is True
                assert info["version"] in ("TLSv1.2", "TLSv1.3")
            async with session.post("/upload", data=upload, ssl=client_ctx) as resp:
                assert (await resp.json())["sha256"] == hashlib.sha256(upload).hexdigest()
            async with session.ws_connect("/ws", ssl=client_ctx) as ws:
                assert ws.get_extra_info("ssl_object") is not None
                assert await _ws_round_trip(ws, messages) == messages
                await ws.close()
            # A client that trusts another CA must refuse the server.
            untrusting = certs.client_context(certs.other_ca)
            try:
                async with session.get("/tls", ssl=untrusting):
                    raise AssertionError("a certificate from an untrusted CA was accepted")
            except aiohttp.ClientConnectorCertificateError as exc:
                assert "CERTIFICATE_VERIFY_FAILED" in str(exc)

    run(hookloop_loop, main())
    assert app[CLOSE_CODES] == [1000]
