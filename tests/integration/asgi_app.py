"""The ASGI application ``test_uvicorn`` serves through uvicorn's CLI.

Plain ASGI 3 (no framework), so that what runs is uvicorn and the loop and
nothing else.  Every answer is something the client can check:

``GET /health``
    ``ok``: readiness.
``GET /loop``
    JSON ``{"module", "class", "backend"}`` of the running loop: proof that
    uvicorn really ran the app on hookloop, on the backend asked for.
``GET /request?n=N``
    JSON ``{"n": N, "port": <the client's port>}``: the client checks its
    own number came back and counts distinct ports (connection reuse).
``GET /stream?chunks=N&size=S``
    A streamed (chunked) body of ``N`` frames, each one ``ASGI`` message:
    ``frame(i, S)`` (its index, then ``S`` bytes that depend on ``i``).
``POST /hold``
    Answers ``HOLD_STARTED`` at once (so the client knows the request is in
    flight), then reads the whole request body, then sends the rest:
    ``sha256(request body)`` and ``hold_payload()``; the length is declared
    up front (``content-length``).

Lifespan startup and shutdown are written to stderr (``LIFESPAN_*``), where
the test reads uvicorn's own log.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import random
import struct
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HOLD_STARTED = b"started\n"
HOLD_PAYLOAD_SIZE = 1 << 20
LIFESPAN_STARTUP = "asgi_app: lifespan startup"
LIFESPAN_SHUTDOWN = "asgi_app: lifespan shutdown"


def frame(index: int, size: int) -> bytes:
    """Frame ``index`` of ``/stream``: ``!II`` (index, size) then ``size``
    bytes drawn from a generator seeded with ``index``."""
    return struct.pack("!II", index, size) + random.Random(index).randbytes(size)


def hold_payload() -> bytes:
    """What ``/hold`` sends after the request body is in (deterministic)."""
    return random.Random("hold").randbytes(HOLD_PAYLOAD_SIZE)


def hold_response_size() -> int:
    return len(HOLD_STARTED) + hashlib.sha256().digest_size + HOLD_PAYLOAD_SIZE


async def _send_simple(send: Send, body: bytes, content_type: bytes = b"text/plain",
                       status: int = 200) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _send_json(send: Send, value: object) -> None:
    await _send_simple(send, json.dumps(value).encode(), b"application/json")


async def _read_body(receive: Receive) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("client went away before the request body was in")
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return bytes(body)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            loop = asyncio.get_running_loop()
            print(f"{LIFESPAN_STARTUP} on {type(loop).__module__} "
                  f"{getattr(loop, 'backend', None)}", file=sys.stderr, flush=True)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            print(LIFESPAN_SHUTDOWN, file=sys.stderr, flush=True)
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    assert scope["type"] == "http", scope["type"]
    path, method = scope["path"], scope["method"]
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    if path == "/health":
        await _send_simple(send, b"ok")
    elif path == "/loop":
        loop = asyncio.get_running_loop()
        await _send_json(send, {"module": type(loop).__module__,
                                "class": type(loop).__name__,
                                "backend": getattr(loop, "backend", None)})
    elif path == "/request":
        await _send_json(send, {"n": int(query["n"]), "port": scope["client"][1]})
    elif path == "/stream":
        chunks, size = int(query["chunks"]), int(query["size"])
        # No content-length: uvicorn sends the body chunked, one chunk per message.
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")]})
        for i in range(chunks):
            await send({"type": "http.response.body", "body": frame(i, size),
                        "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/hold" and method == "POST":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream"),
                                (b"content-length", str(hold_response_size()).encode())]})
        await send({"type": "http.response.body", "body": HOLD_STARTED, "more_body": True})
        body = await _read_body(receive)
        await send({"type": "http.response.body",
                    "body": hashlib.sha256(body).digest() + hold_payload()})
    else:
        await _send_simple(send, b"not found", status=404)
