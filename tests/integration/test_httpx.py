"""httpx's ``AsyncClient`` against an aiohttp server, both on one hookloop loop.

httpx reaches the loop through a different stack than aiohttp's client:
httpcore's connection pool over anyio's asyncio backend (anyio streams on
``loop.create_connection``, anyio's locks, events and cancel scopes, and
sniffio's detection of the running library through ``asyncio`` tasks).
What is tested:

* HTTP/1.1 keep-alive: 20 requests one after the other go over one
  connection (the server sees a single client port), each answer its own;
* 50 concurrent requests with a pool of at most 10 connections: every body
  (different for each request, 1 to 64 KiB) is exactly what the server
  made for that request, and the server saw at most 10 client ports;
* an upload streamed from an async generator (chunked), checksummed.
"""
from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import httpx
from aiohttp import web
from web_helpers import aiohttp_server, payload, run

SEQUENTIAL = 20
CONCURRENT = 50
MAX_CONNECTIONS = 10


def body_for(n: int) -> bytes:
    """The body ``/body/{n}`` answers (size and contents depend on ``n``)."""
    return payload(1024 + (n * 7919) % (63 * 1024), f"body {n}")


class Server:
    """An aiohttp app that records the client port of every request."""

    def __init__(self) -> None:
        self.ports: list[int] = []
        self.app = web.Application()
        self.app.router.add_get("/body/{n}", self.body)
        self.app.router.add_post("/upload", self.upload)

    def _record(self, request: web.Request) -> None:
        assert request.transport is not None
        self.ports.append(request.transport.get_extra_info("peername")[1])

    async def body(self, request: web.Request) -> web.Response:
        self._record(request)
        return web.Response(body=body_for(int(request.match_info["n"])),
                            content_type="application/octet-stream")

    async def upload(self, request: web.Request) -> web.Response:
        self._record(request)
        digest = hashlib.sha256()
        async for piece in request.content.iter_any():
            digest.update(piece)
        return web.json_response({"sha256": digest.hexdigest(),
                                  "transfer-encoding": request.headers.get("Transfer-Encoding")})


def test_keepalive_reuses_one_connection(hookloop_loop: asyncio.AbstractEventLoop) -> None:
    server = Server()

    async def main() -> list[tuple[int, str, bytes]]:
        async with aiohttp_server(server.app) as url, httpx.AsyncClient(base_url=url) as client:
            out = []
            for n in range(SEQUENTIAL):
                resp = await client.get(f"/body/{n}")
                out.append((resp.status_code, resp.http_version, resp.content))
            return out

    results = run(hookloop_loop, main())
    assert [status for status, _, _ in results] == [200] * SEQUENTIAL
    assert {version for _, version, _ in results} == {"HTTP/1.1"}
    assert [content for _, _, content in results] == [body_for(n) for n in range(SEQUENTIAL)]
    assert len(server.ports) == SEQUENTIAL
    assert len(set(server.ports)) == 1, "keep-alive: one connection for all requests"


def test_concurrent_requests_bodies_correct(hookloop_loop: asyncio.AbstractEventLoop) -> None:
    server = Server()
    limits = httpx.Limits(max_connections=MAX_CONNECTIONS,
                          max_keepalive_connections=MAX_CONNECTIONS)

    async def main() -> list[bytes]:
        async with aiohttp_server(server.app) as url, \
                httpx.AsyncClient(base_url=url, limits=limits) as client:
            async def one(n: int) -> bytes:
                resp = await client.get(f"/body/{n}")
                assert resp.status_code == 200
                assert resp.headers["content-length"] == str(len(resp.content))
                return resp.content

            return list(await asyncio.gather(*(one(n) for n in range(CONCURRENT))))

    bodies = run(hookloop_loop, main())
    for n, body in enumerate(bodies):
        assert body == body_for(n), f"request {n} got the wrong body"
    assert len(server.ports) == CONCURRENT
    assert 1 <= len(set(server.ports)) <= MAX_CONNECTIONS


def test_streamed_upload(hookloop_loop: asyncio.AbstractEventLoop) -> None:
    server = Server()
    data = payload(4 * 1024 * 1024, "httpx upload")

    async def content() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 64 * 1024):
            yield data[start:start + 64 * 1024]

    async def main() -> dict[str, str]:
        async with aiohttp_server(server.app) as url, httpx.AsyncClient(base_url=url) as client:
            resp = await client.post("/upload", content=content())
            assert resp.status_code == 200
            return resp.json()

    assert run(hookloop_loop, main()) == {"sha256": hashlib.sha256(data).hexdigest(),
                                          "transfer-encoding": "chunked"}
