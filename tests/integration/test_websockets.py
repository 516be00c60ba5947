"""The ``websockets`` library (its asyncio implementation) on hookloop.

``websockets.asyncio`` runs its protocol state machine (sans-I/O) over the
loop's streams: ``loop.create_server``/``create_connection`` with a protocol
that feeds bytes in and writes frames out, a background reading task per
connection, ``call_later`` for its close and keepalive timeouts, and
permessage-deflate on by default.  Server and client both run on one
hookloop loop per backend.  What is tested:

* 1,000 messages each way on one connection, text and binary alternately,
  pipelined (sending and receiving at once): the server tags each reply
  with its own count of what it received, so the client checks that the
  server saw them in order and that the replies came back in order, intact;
* ping/pong: three pings outstanding at once from the client (each waiter
  resolves with a latency), and a ping from the server answered by the
  client's reader;
* close codes: the server closes with 4001 and a reason, the client sees
  both (``ConnectionClosedError``, ``close_code``/``close_reason``); the
  client closes with 1000 and a reason, the server sees both
  (``ConnectionClosedOK``).

What the server handler sees is passed back through futures, so a failure
on the server side fails the test (websockets would only log it).
"""
from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator

import pytest
from web_helpers import run
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK

MESSAGES = 1000


def tagged(index: int, message: str | bytes) -> str | bytes:
    """The server's reply to the ``index``-th message it received."""
    if isinstance(message, str):
        return f"{index}|{message}"
    return index.to_bytes(4, "big") + message


def messages(count: int) -> list[str | bytes]:
    rng = random.Random("websockets")
    out: list[str | bytes] = []
    for i in range(count):
        size = rng.randrange(0, 2048)
        if i % 2:
            out.append(rng.randbytes(size))
        else:
            out.append("".join(rng.choices("abcxyz é€😀", k=size // 3)))
    return out


class App:
    """The server: one handler, routed on the request path; what it
    observed goes into futures the test awaits."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.server_pong: asyncio.Future[float] = loop.create_future()
        self.client_close: asyncio.Future[tuple[int, str]] = loop.create_future()
        self.close_4001_seen: asyncio.Future[tuple[int | None, str | None]] = \
            loop.create_future()

    async def handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        path = ws.request.path
        if path == "/echo":
            count = 0
            async for message in ws:
                await ws.send(tagged(count, message))
                count += 1
        elif path == "/ping":
            waiter = await ws.ping(b"from the server")
            try:
                self.server_pong.set_result(await waiter)
            except BaseException as exc:
                self.server_pong.set_exception(exc)
                raise
            await ws.send("server got its pong")
            await ws.wait_closed()
        elif path == "/close-4001":
            await ws.close(4001, "go away")
            self.close_4001_seen.set_result((ws.close_code, ws.close_reason))
        elif path == "/wait-for-close":
            try:
                await ws.recv()
            except ConnectionClosedOK as exc:
                assert exc.rcvd is not None
                self.client_close.set_result((exc.rcvd.code, exc.rcvd.reason))
            else:
                self.client_close.set_exception(AssertionError("a message, not a close"))
        else:
            await ws.close(1008, f"no route {path}")


class Running:
    def __init__(self, app: App, server: Server) -> None:
        self.app = app
        self.server = server
        port = server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"


@contextlib.asynccontextmanager
async def started() -> AsyncIterator[Running]:
    """The server on ``127.0.0.1:0``, closed (and waited for) afterwards."""
    app = App()
    async with serve(app.handler, "127.0.0.1", 0) as server:
        yield Running(app, server)


def test_thousand_messages_both_ways(hookloop_loop: asyncio.AbstractEventLoop) -> None:
    sent = messages(MESSAGES)

    async def main() -> tuple[list[str | bytes], int | None]:
        async with started() as running, connect(f"{running.url}/echo") as ws:
            async def send_all() -> None:
                for message in sent:
                    await ws.send(message)

            sender = asyncio.ensure_future(send_all())
            try:
                replies = [await ws.recv() for _ in range(MESSAGES)]
            finally:
                await sender
            await ws.close()
            return replies, ws.close_code

    replies, close_code = run(hookloop_loop, main())
    assert len(replies) == MESSAGES
    for i, (message, reply) in enumerate(zip(sent, replies, strict=True)):
        assert reply == tagged(i, message), f"reply {i} wrong"
    assert close_code == 1000


def test_ping_pong(hookloop_loop: asyncio.AbstractEventLoop) -> None:
    """Pong waiters resolve (a lost or unanswered pong times the test out)."""
    async def main() -> tuple[list[float], float, str | bytes]:
        async with started() as running, connect(f"{running.url}/ping") as ws:
            waiters = [await ws.ping(data) for data in (b"one", "two", None)]
            latencies = [await waiter for waiter in waiters]
            server_latency = await running.app.server_pong
            greeting = await ws.recv()
            return latencies, server_latency, greeting

    latencies, server_latency, greeting = run(hookloop_loop, main())
    assert all(isinstance(x, float) and x >= 0 for x in [*latencies, server_latency])
    assert greeting == "server got its pong"


def test_close_codes(hookloop_loop: asyncio.AbstractEventLoop) -> None:
    async def main() -> None:
        async with started() as running:
            async with connect(f"{running.url}/close-4001") as ws:
                with pytest.raises(ConnectionClosedError) as info:
                    await ws.recv()
                assert info.value.rcvd is not None
                assert (info.value.rcvd.code, info.value.rcvd.reason) == (4001, "go away")
                assert (ws.close_code, ws.close_reason) == (4001, "go away")
            assert await running.app.close_4001_seen == (4001, "go away")

            client: ClientConnection
            async with connect(f"{running.url}/wait-for-close") as client:
                await client.close(1000, "bye")
                assert (client.close_code, client.close_reason) == (1000, "bye")
            assert await running.app.client_close == (1000, "bye")

    run(hookloop_loop, main())
