"""redis-py's asyncio client (``redis.asyncio``) on hookloop, against a real
Redis (``redis_url``, started by ``tools/services.py``), on every installed
backend.

redis-py uses the loop through asyncio streams (``open_connection``): reads
of whatever arrived, writes that must be drained under flow control, a
connection pool whose waiters are woken by futures, and timeouts.  What is
tested:

* a pipeline of 10,000 commands (about 5 MB each way, so both directions hit
  flow control): every reply is checked, and replies that depend on order
  (running INCRBY sums, RPUSH lengths) show a lost or reordered one;
* pub/sub: 1,000 messages published on a channel and on channels matching a
  pattern arrive complete and in publication order;
* a blocking pool of 10 connections under 500 concurrent clients: each
  gets its own answers, the counter they all add to is exact, and the server
  saw more than one and at most 10 of the pool's connections;
* a server restart mid-run (a dedicated Redis, so the session's is not
  disturbed): a worker sending commands all along, with redis-py's
  ``Retry``/``ExponentialBackoff`` and ``health_check_interval`` as a user
  would configure them, rides through the outage -- every command gets its
  right answer, retries are seen to have happened, and the answers after the
  restart come from the new server (another ``run_id``).

Each test fails on a wrong, lost or reordered reply (the comparisons), on a
lost wake-up (``run_async``'s deadline), or on a report to the loop's
exception handler (``hookloop_loop``'s teardown).  The restart test fails if
retries are turned off (``retries=0``: the worker gets ``ConnectionError``).
"""
from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

Run = Callable[..., Any]

PIPELINE_COMMANDS = 10_000
MESSAGES = 1_000


def _prefix() -> str:
    """Keys of one test run: the tests share the session's Redis."""
    return f"hookloop:{uuid.uuid4().hex}"


def test_pipeline_of_10000_commands(run_async: Run, redis_url: str) -> None:
    """10,000 commands in one non-transactional pipeline: 2,500 each of SET,
    GET, INCRBY and RPUSH, interleaved, with values up to 2 KB; every reply is
    the one its command must get, in order."""
    prefix = _prefix()
    rng = random.Random(17)
    quarter = PIPELINE_COMMANDS // 4
    values = [rng.randbytes(rng.randrange(2048)) for _ in range(quarter)]

    async def body() -> None:
        client = aioredis.Redis.from_url(redis_url)
        try:
            async with client.pipeline(transaction=False) as pipe:
                expected: list[Any] = []
                total = 0
                for i, value in enumerate(values):
                    total += i
                    pipe.set(f"{prefix}:k{i}", value)
                    pipe.get(f"{prefix}:k{i}")
                    pipe.incrby(f"{prefix}:counter", i)
                    pipe.rpush(f"{prefix}:list", i)
                    expected += [True, value, total, i + 1]
                assert len(pipe) == PIPELINE_COMMANDS
                replies = await pipe.execute()
            assert len(replies) == PIPELINE_COMMANDS
            wrong = [i for i, (got, want) in enumerate(zip(replies, expected, strict=True))
                     if got != want]
            assert not wrong, f"{len(wrong)} wrong replies, first at {wrong[:5]}"
            assert await client.lrange(f"{prefix}:list", 0, -1) == [
                str(i).encode() for i in range(quarter)]
        finally:
            await client.aclose()

    run_async(body)


def test_pubsub_messages_arrive_in_order(run_async: Run, redis_url: str) -> None:
    """A subscriber to one channel and one pattern gets 1,000 messages (up
    to 1 KB each) published alternately on the channel and on channels the
    pattern matches, all of them, in publication order.  Each PUBLISH reports
    one receiver, so the subscriptions were in force (their confirmations
    are awaited before publishing)."""
    prefix = _prefix()
    channel, pattern = f"{prefix}:news", f"{prefix}:topic:*"
    rng = random.Random(17)
    published: list[tuple[str, bytes, bytes]] = []
    for i in range(MESSAGES):
        data = f"{i}:".encode() + rng.randbytes(rng.randrange(1024))
        if i % 2:
            published.append(("pmessage", f"{prefix}:topic:{i % 7}".encode(), data))
        else:
            published.append(("message", channel.encode(), data))

    async def body() -> None:
        subscriber = aioredis.Redis.from_url(redis_url)
        publisher = aioredis.Redis.from_url(redis_url)
        pubsub = subscriber.pubsub()
        try:
            await pubsub.subscribe(channel)
            await pubsub.psubscribe(pattern)
            confirmations = [await pubsub.get_message(timeout=None) for _ in range(2)]
            assert [(m["type"], m["channel"]) for m in confirmations] == [
                ("subscribe", channel.encode()), ("psubscribe", pattern.encode())]

            async def receive() -> list[tuple[str, bytes, bytes]]:
                got = []
                async for message in pubsub.listen():
                    got.append((message["type"], message["channel"], message["data"]))
                    if len(got) == MESSAGES:
                        return got
                raise AssertionError("the subscription ended")

            receiving = asyncio.ensure_future(receive())
            for _, target, data in published:
                assert await publisher.publish(target, data) == 1
            assert await receiving == published
        finally:
            await pubsub.aclose()
            await publisher.aclose()
            await subscriber.aclose()

    run_async(body)


def test_connection_pool_under_concurrency(run_async: Run, redis_url: str) -> None:
    """500 concurrent clients of one ``BlockingConnectionPool`` of 10: each
    writes its own key and reads it back, echoes its number, and adds it to a
    shared counter; the counter is exact, and the server saw more than one and
    at most 10 connections of the pool (by client name)."""
    prefix = _prefix()
    name = f"pool-{uuid.uuid4().hex[:12]}"
    clients = 500

    async def body() -> None:
        pool = aioredis.BlockingConnectionPool.from_url(
            redis_url, max_connections=10, timeout=30, client_name=name)
        client = aioredis.Redis(connection_pool=pool)
        seen_connections: set[int] = set()

        async def one(i: int) -> None:
            value = f"value-{i}-".encode() * (i % 50 + 1)
            assert await client.set(f"{prefix}:k{i}", value)
            assert await client.echo(f"echo {i}") == f"echo {i}".encode()
            await client.incrby(f"{prefix}:counter", i)
            assert await client.get(f"{prefix}:k{i}") == value
            seen_connections.add(await client.client_id())

        try:
            await asyncio.gather(*(one(i) for i in range(clients)))
            assert await client.get(f"{prefix}:counter") == str(sum(range(clients))).encode()
            ours = [c for c in await client.client_list() if c["name"] == name]
            assert 1 < len(ours) <= 10, ours
            assert 1 < len(seen_connections) <= 10, seen_connections
            assert seen_connections == {int(c["id"]) for c in ours}
        finally:
            await client.aclose()
            await pool.disconnect()

    run_async(body)


class CountingBackoff(ExponentialBackoff):
    """Exponential backoff that counts the waits: one per retried failure."""

    def __init__(self, cap: float, base: float) -> None:
        super().__init__(cap=cap, base=base)
        self.waits = 0

    def compute(self, failures: int) -> float:
        self.waits += 1
        return super().compute(failures)

    def __deepcopy__(self, memo: dict[int, Any]) -> CountingBackoff:
        # redis-py deep-copies the Retry (and so its backoff) into every
        # connection; the copies must count into this one object.
        return self


def test_server_restart_client_reconnects(run_async: Run,
                                          service_dir_factory: Callable[[], Any]) -> None:
    """A dedicated Redis is stopped (SHUTDOWN NOSAVE) and started again on
    the same port while a worker keeps sending commands through a client
    configured to retry connection errors with exponential backoff.

    The worker never sees an error and every reply is right: each
    operation is an ECHO and a MULTI/EXEC of SET+GET+STRLEN, whose answers do
    not depend on what the old server held.  While the server is down, a
    client without retries gets ``ConnectionError`` (so the outage was real),
    the retrying client's backoff ran (so the worker hit it), and after the
    restart the same client reports the new server's ``run_id``.  An idle
    client connected before the outage (with a health check interval) works
    on its first command after it.  Readiness is ``services.py``'s: it
    returns once the server answers PING."""
    services = service_dir_factory()
    url = services.run("start", "redis")["HOOKLOOP_REDIS_URL"]
    backoff = CountingBackoff(cap=0.05, base=0.002)
    # ~400 retries at <= 50 ms each: rides an outage of up to ~20 s.
    retry = Retry(backoff, retries=400)

    async def body() -> None:
        client = aioredis.Redis.from_url(
            url, retry=retry, retry_on_error=[RedisConnectionError, RedisTimeoutError],
            socket_connect_timeout=5, socket_timeout=10, health_check_interval=1)
        idle = aioredis.Redis.from_url(
            url, retry=Retry(ExponentialBackoff(cap=0.05, base=0.002), retries=400),
            retry_on_error=[RedisConnectionError], health_check_interval=1)
        no_retry = aioredis.Redis.from_url(url, retry=Retry(NoBackoff(), 0))
        warmed_up, restarted = asyncio.Event(), asyncio.Event()
        after_restart = 0

        async def worker() -> int:
            nonlocal after_restart
            i = 0
            while after_restart < 100:
                payload = f"op {i} ".encode() * (i % 20 + 1)
                assert await client.echo(payload) == payload
                async with client.pipeline(transaction=True) as pipe:
                    pipe.set(f"key:{i % 10}", payload)
                    pipe.get(f"key:{i % 10}")
                    pipe.strlen(f"key:{i % 10}")
                    assert await pipe.execute() == [True, payload, len(payload)]
                i += 1
                if i == 100:
                    warmed_up.set()
                if restarted.is_set():
                    after_restart += 1
            return i

        working: asyncio.Future[int] | None = None
        try:
            assert await idle.set("idle", "before")
            before = (await client.info("server"))["run_id"]
            working = asyncio.ensure_future(worker())
            warm = asyncio.ensure_future(warmed_up.wait())
            await asyncio.wait([working, warm], return_when=asyncio.FIRST_COMPLETED)
            warm.cancel()
            if working.done():
                working.result()  # the worker failed before the outage: its error
            await services.arun("stop", "redis")
            with pytest.raises(RedisConnectionError):
                await no_retry.ping()
            await services.arun("start", "redis")
            restarted.set()
            operations = await working
            assert operations >= 200
            assert backoff.waits > 0, "the worker never had to retry"
            after = (await client.info("server"))["run_id"]
            assert after != before
            assert await idle.get("idle") is None  # a new, empty server
            assert await no_retry.ping()
        finally:
            if working is not None and not working.done():
                working.cancel()
                await asyncio.wait([working])
            for c in (client, idle, no_retry):
                await c.aclose()

    run_async(body, timeout=40)
