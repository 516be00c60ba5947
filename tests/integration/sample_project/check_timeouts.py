"""Timeouts and cancellation, over real sockets where it matters."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from loop_expectation import assert_expected_loop


@pytest_asyncio.fixture
async def silent_server() -> AsyncIterator[int]:
    """A server that accepts connections and never answers; its port."""
    closed = asyncio.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await closed.wait()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    closed.set()
    server.close()
    await server.wait_closed()


@pytest.mark.asyncio
async def test_a_read_times_out(silent_server: int, pytestconfig: pytest.Config) -> None:
    assert_expected_loop(asyncio.get_running_loop(), pytestconfig)
    reader, writer = await asyncio.open_connection("127.0.0.1", silent_server)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await reader.read(1)
    writer.close()
    await writer.wait_closed()


@pytest.mark.asyncio
async def test_wait_for_cancels_what_it_waits_for() -> None:
    cleaned_up = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned_up.set()

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(forever(), 0.05)
    assert cleaned_up.is_set()


@pytest.mark.asyncio
async def test_cancelling_a_task() -> None:
    started = asyncio.Event()
    steps: list[str] = []

    async def worker() -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            steps.append("cancelled")
            raise
        finally:
            steps.append("cleanup")

    task = asyncio.create_task(worker())
    await started.wait()
    task.cancel("stop")
    with pytest.raises(asyncio.CancelledError, match="stop"):
        await task
    assert task.cancelled()
    assert steps == ["cancelled", "cleanup"]
