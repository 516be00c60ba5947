"""pytest-asyncio tests as a project writes them: async fixtures of function
and module scope, a TCP echo server and its clients, a sync test using an
async fixture."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from echo_app import echo, server_port, start_echo_server
from loop_expectation import assert_expected_loop


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def echo_server() -> AsyncIterator[tuple[asyncio.Server, asyncio.AbstractEventLoop]]:
    """One echo server for the module, on the module's loop."""
    server = await start_echo_server()
    yield server, asyncio.get_running_loop()
    server.close()
    await server.wait_closed()


@pytest_asyncio.fixture
async def fixture_loop() -> asyncio.AbstractEventLoop:
    """The loop a function-scoped async fixture runs on."""
    return asyncio.get_running_loop()


@pytest_asyncio.fixture(loop_scope="module")
async def connection(echo_server: tuple[asyncio.Server, asyncio.AbstractEventLoop]
                     ) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A client connection to the module's echo server, closed after the test."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server_port(echo_server[0]))
    yield reader, writer
    writer.close()
    await writer.wait_closed()


@pytest.mark.asyncio
async def test_runs_on_the_expected_loop(fixture_loop: asyncio.AbstractEventLoop,
                                         pytestconfig: pytest.Config) -> None:
    loop = asyncio.get_running_loop()
    assert_expected_loop(loop, pytestconfig)
    assert fixture_loop is loop


@pytest.mark.asyncio(loop_scope="module")
async def test_module_fixture_shares_the_module_loop(
        echo_server: tuple[asyncio.Server, asyncio.AbstractEventLoop],
        pytestconfig: pytest.Config) -> None:
    loop = asyncio.get_running_loop()
    assert_expected_loop(loop, pytestconfig)
    assert echo_server[1] is loop


@pytest.mark.asyncio(loop_scope="module")
async def test_echo_lines(connection: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
    reader, writer = connection
    for i in range(50):
        writer.write(f"line {i}\n".encode())
        await writer.drain()
        assert await reader.readline() == f"line {i}\n".encode()


@pytest.mark.asyncio(loop_scope="module")
async def test_echo_a_large_payload(
        echo_server: tuple[asyncio.Server, asyncio.AbstractEventLoop]) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB: many reads, writes and drains
    assert await echo(server_port(echo_server[0]), payload) == payload


@pytest.mark.asyncio(loop_scope="module")
async def test_concurrent_clients(
        echo_server: tuple[asyncio.Server, asyncio.AbstractEventLoop]) -> None:
    port = server_port(echo_server[0])
    payloads = [f"client {i} ".encode() * 1000 for i in range(20)]
    assert await asyncio.gather(*(echo(port, p) for p in payloads)) == payloads


def test_sync_test_with_an_async_fixture(fixture_loop: asyncio.AbstractEventLoop,
                                         pytestconfig: pytest.Config) -> None:
    assert_expected_loop(fixture_loop, pytestconfig)
