"""anyio tests, on the asyncio backend, as anyio's documentation shows them."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import anyio
import pytest
from anyio.abc import SocketAttribute, SocketStream
from loop_expectation import assert_expected_loop

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _echo(stream: SocketStream) -> None:
    async with stream:
        async for data in stream:
            await stream.send(data)


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    """An anyio TCP echo listener, served by a task group for the test."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port: int = listener.extra(SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, _echo)
        yield port
        tg.cancel_scope.cancel()


async def test_anyio_runs_on_the_expected_loop(pytestconfig: pytest.Config) -> None:
    assert_expected_loop(asyncio.get_running_loop(), pytestconfig)


async def test_anyio_tcp_echo(echo_port: int, pytestconfig: pytest.Config) -> None:
    assert_expected_loop(asyncio.get_running_loop(), pytestconfig)
    async with await anyio.connect_tcp("127.0.0.1", echo_port) as stream:
        for i in range(20):
            await stream.send(b"ping %d" % i)
            assert await stream.receive() == b"ping %d" % i


async def test_anyio_timeouts() -> None:
    with pytest.raises(TimeoutError):
        with anyio.fail_after(0.05):
            await anyio.sleep_forever()
    with anyio.move_on_after(0.05) as scope:
        await anyio.sleep_forever()
    assert scope.cancelled_caught
