"""asyncpg on hookloop, against a real PostgreSQL (``postgres_dsn``, started
by ``tools/services.py``), on every installed backend.

asyncpg drives the loop the way a busy application does: its protocol is a
C-accelerated ``asyncio.Protocol`` on a TCP transport (SSL negotiation first,
then SCRAM password authentication), with flow control on big results and
COPY, futures completed from ``data_received``, a pool of connections whose
maintenance task reconnects in the background, and notifications delivered
to callbacks via ``call_soon``.  What is tested:

* connecting over TCP with a password, and values round-tripping;
* prepared statements (server-side, reused with many arguments);
* transactions: a rolled-back block's rows (and a rolled-back savepoint's)
  are absent, a committed block's are present;
* ``copy_records_to_table`` of 100,000 rows, read back and compared row by
  row, and a digest computed by the server compared with the local one;
* LISTEN/NOTIFY: 100 notifications from a second connection arrive, in
  order, with their payloads and the sender's pid, awaited from a queue;
* a pool of 10 under 500 concurrent queries: every answer belongs to its
  query, and the work was spread over the pool's connections;
* a backend killed mid-query (``pg_terminate_backend`` while it runs
  ``pg_sleep``): the query fails with ``ConnectionDoesNotExistError`` whose
  cause is the server's ``AdminShutdownError``, and the pool recovers.

Each test fails on a wrong answer, a lost or reordered byte (a comparison
fails), a lost wake-up (the body's deadline in ``run_async``), or a report to
the loop's exception handler (``hookloop_loop``'s teardown).
"""
from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import asyncpg

Run = Callable[..., Any]

COPY_ROWS = 100_000


def test_connect_over_tcp_with_password(run_async: Run, postgres_dsn: str) -> None:
    """A connection to the server's TCP port as the password user; values
    of several types survive the round trip."""
    port = urlsplit(postgres_dsn).port

    async def body() -> None:
        conn = await asyncpg.connect(postgres_dsn)
        try:
            row = await conn.fetchrow(
                "SELECT current_user AS usr, current_database() AS db, "
                "inet_server_port() AS port, $1::int8 AS i, $2::text AS t, $3::bytea AS b, "
                "$4::numeric AS n, $5::timestamptz AS ts, $6::int4[] AS a",
                2**62, "żółw ✓", b"\x00\xff" * 1000, Decimal("12345.678901"),
                datetime(2024, 2, 29, 12, 30, tzinfo=UTC), [1, 2, 3])
            assert (row["usr"], row["db"], row["port"]) == ("hookloop", "hookloop", port)
            assert row["i"] == 2**62 and row["t"] == "żółw ✓"
            assert row["b"] == b"\x00\xff" * 1000
            assert row["n"] == Decimal("12345.678901")
            assert row["ts"] == datetime(2024, 2, 29, 12, 30, tzinfo=UTC)
            assert row["a"] == [1, 2, 3]
            assert conn.get_server_version().major >= 12
        finally:
            await conn.close()
        assert conn.is_closed()

    run_async(body)


def test_prepared_statements(run_async: Run, postgres_dsn: str) -> None:
    """A statement prepared once on the server answers 1,000 executions with
    different arguments correctly, and is listed in pg_prepared_statements;
    ``executemany`` fills a table through one prepared INSERT."""

    async def body() -> None:
        conn = await asyncpg.connect(postgres_dsn)
        try:
            stmt = await conn.prepare("SELECT $1::int8 * $2::int8 AS product, "
                                      "$3::text || '!' AS shout")
            assert [t.name for t in stmt.get_parameters()] == ["int8", "int8", "text"]
            assert [a.name for a in stmt.get_attributes()] == ["product", "shout"]
            for i in range(1000):
                product, shout = await stmt.fetchrow(i, i + 7, f"n{i}")
                assert (product, shout) == (i * (i + 7), f"n{i}!")
            assert await conn.fetchval(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1",
                stmt.get_query()) == 1
            await conn.execute("CREATE TEMP TABLE items (k int PRIMARY KEY, v text)")
            await conn.executemany("INSERT INTO items VALUES ($1, $2)",
                                   [(k, f"v{k}") for k in range(500)])
            rows = await conn.fetch("SELECT k, v FROM items ORDER BY k")
            assert [tuple(r) for r in rows] == [(k, f"v{k}") for k in range(500)]
        finally:
            await conn.close()

    run_async(body)


class Rollback(Exception):
    """Raised inside a transaction block to roll it back."""


def test_transaction_rollback(run_async: Run, postgres_dsn: str) -> None:
    """Rows inserted in a block that raised are absent, rows of a committed
    block are present, and a rolled-back savepoint drops only its own rows."""

    async def body() -> None:
        conn = await asyncpg.connect(postgres_dsn)
        try:
            await conn.execute("CREATE TEMP TABLE t (k int PRIMARY KEY)")
            async with conn.transaction():
                await conn.executemany("INSERT INTO t VALUES ($1)", [(k,) for k in range(10)])
            try:
                async with conn.transaction():
                    await conn.executemany("INSERT INTO t VALUES ($1)",
                                           [(k,) for k in range(10, 20)])
                    assert await conn.fetchval("SELECT count(*) FROM t") == 20  # visible inside
                    raise Rollback
            except Rollback:
                pass
            assert not conn.is_in_transaction()
            async with conn.transaction():
                await conn.execute("INSERT INTO t VALUES (100)")
                try:
                    async with conn.transaction():  # a savepoint
                        await conn.execute("INSERT INTO t VALUES (101)")
                        raise Rollback
                except Rollback:
                    pass
                await conn.execute("INSERT INTO t VALUES (102)")
            keys = [r["k"] for r in await conn.fetch("SELECT k FROM t ORDER BY k")]
            assert keys == [*range(10), 100, 102]
        finally:
            await conn.close()

    run_async(body)


def test_copy_records_100k_rows(run_async: Run, postgres_dsn: str) -> None:
    """100,000 rows (ints, floats, text, bytea: about 8 MB on the wire) go
    in through COPY and come back equal, row for row; the server's own digest
    of what it stored matches the local one."""
    rng = random.Random(17)
    records = [(i, rng.random(), f"row-{i}-{rng.randrange(10**9)}", rng.randbytes(32))
               for i in range(COPY_ROWS)]
    digest = hashlib.md5(",".join(r[2] for r in records).encode()).hexdigest()

    async def body() -> None:
        conn = await asyncpg.connect(postgres_dsn)
        try:
            await conn.execute("CREATE TEMP TABLE bulk (id int8, x float8, name text, blob bytea)")
            status = await conn.copy_records_to_table(
                "bulk", records=records, columns=["id", "x", "name", "blob"])
            assert status == f"COPY {COPY_ROWS}"
            server = await conn.fetchrow(
                "SELECT count(*) AS n, sum(id) AS s, "
                "md5(string_agg(name, ',' ORDER BY id)) AS digest FROM bulk")
            assert (server["n"], server["s"], server["digest"]) == (
                COPY_ROWS, COPY_ROWS * (COPY_ROWS - 1) // 2, digest)
            rows = await conn.fetch("SELECT id, x, name, blob FROM bulk ORDER BY id")
            assert len(rows) == COPY_ROWS
            mismatched = [r["id"] for r, expected in zip(rows, records, strict=True)
                          if tuple(r) != expected]
            assert not mismatched, f"{len(mismatched)} rows differ, first ids {mismatched[:5]}"
        finally:
            await conn.close()

    run_async(body)


def test_listen_notify(run_async: Run, postgres_dsn: str) -> None:
    """100 notifications sent by a second connection reach the listener's
    callback in order, with their payloads and the sender's backend pid
    (awaited from a queue: the test waits for each notification, not for
    time to pass)."""
    count = 100

    async def body() -> None:
        listener = await asyncpg.connect(postgres_dsn)
        sender = await asyncpg.connect(postgres_dsn)
        received: asyncio.Queue[tuple[int, str, str]] = asyncio.Queue()

        def on_notify(conn: Any, pid: int, channel: str, payload: str) -> None:
            assert asyncio.get_running_loop() is loop
            received.put_nowait((pid, channel, payload))

        loop = asyncio.get_running_loop()
        try:
            await listener.add_listener("hookloop_events", on_notify)
            sender_pid = sender.get_server_pid()
            for i in range(count):
                await sender.execute("SELECT pg_notify('hookloop_events', $1)", f"event {i}")
            got = [await received.get() for _ in range(count)]
            assert got == [(sender_pid, "hookloop_events", f"event {i}") for i in range(count)]
            # After remove_listener the server no longer sends to us: a
            # notification on another, listened channel arrives alone.
            await listener.remove_listener("hookloop_events", on_notify)
            await listener.add_listener("hookloop_other", on_notify)
            await sender.execute("NOTIFY hookloop_events, 'unheard'")
            await sender.execute("NOTIFY hookloop_other, 'heard'")
            assert await received.get() == (sender_pid, "hookloop_other", "heard")
            assert received.empty()
        finally:
            await sender.close()
            await listener.close()

    run_async(body)


def test_pool_of_10_under_500_concurrent_queries(run_async: Run, postgres_dsn: str) -> None:
    """500 queries at once through a pool of 10: each gets its own answer
    (the query's number, doubled, and a payload derived from it), and the
    answers came from more than one and at most 10 server backends."""

    async def body() -> None:
        async with asyncpg.create_pool(postgres_dsn, min_size=10, max_size=10) as pool:
            assert pool.get_size() == 10

            async def query(i: int) -> tuple[int, int, str, int]:
                row = await pool.fetchrow(
                    "SELECT $1::int AS i, $1::int * 2 AS double, md5($1::text) AS digest, "
                    "pg_backend_pid() AS pid", i)
                return row["i"], row["double"], row["digest"], row["pid"]

            results = await asyncio.gather(*(query(i) for i in range(500)))
            assert [(i, d, h) for i, d, h, _ in results] == [
                (i, 2 * i, hashlib.md5(str(i).encode()).hexdigest()) for i in range(500)]
            pids = {pid for *_, pid in results}
            assert 1 < len(pids) <= 10, pids
            assert pool.get_size() == 10

    run_async(body)


def test_backend_killed_mid_query_pool_recovers(run_async: Run, postgres_dsn: str) -> None:
    """``pg_terminate_backend`` on a connection running ``pg_sleep(60)``:
    the server sends a FATAL error and closes; asyncpg raises
    ``ConnectionDoesNotExistError`` whose cause is the server's
    ``AdminShutdownError`` (57P01), at once, not after the sleep (the body's
    deadline is 20 s).  The error needs the loop to deliver the server's last
    bytes before ``connection_lost``.  Then the pool serves queries again on
    a new backend, with all its connections."""

    async def body() -> None:
        async with asyncpg.create_pool(postgres_dsn, min_size=2, max_size=2) as pool:
            admin = await asyncpg.connect(postgres_dsn)
            try:
                async with pool.acquire() as conn:
                    victim = await conn.fetchval("SELECT pg_backend_pid()")
                    sleeping = asyncio.ensure_future(conn.fetchval("SELECT pg_sleep(60)"))
                    # Wait until the server is inside pg_sleep (polling the
                    # server's own view of that backend: no event exists).
                    while not await admin.fetchval(
                            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND "
                            "state = 'active' AND wait_event = 'PgSleep'", victim):
                        assert not sleeping.done(), sleeping
                        await asyncio.sleep(0.01)
                    assert await admin.fetchval("SELECT pg_terminate_backend($1)", victim)
                    try:
                        await sleeping
                    except asyncpg.ConnectionDoesNotExistError as exc:
                        error = exc
                    else:
                        raise AssertionError("pg_sleep returned on a terminated backend")
                    assert isinstance(error.__cause__, asyncpg.AdminShutdownError), (
                        repr(error.__cause__))
                    assert "terminating connection due to administrator command" in str(error)
                # Recovered: both connections answer, neither is the victim.
                async with pool.acquire() as a, pool.acquire() as b:
                    pids = {await a.fetchval("SELECT pg_backend_pid()"),
                            await b.fetchval("SELECT pg_backend_pid()")}
                assert len(pids) == 2 and victim not in pids
                assert await pool.fetchval("SELECT 41 + 1") == 42
                assert not await admin.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", victim)
            finally:
                await admin.close()

    run_async(body, timeout=20)
