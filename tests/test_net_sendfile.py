"""loop.sendfile (transports) and loop.sock_sendfile (sockets)."""
from __future__ import annotations

import asyncio
import io
import socket

import pytest
from net_helpers import Recorder, barrier, read_all, run

DATA = bytes(range(256)) * 4096 + b"tail"  # 1 MiB and a bit


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "payload.bin"
    path.write_bytes(DATA)
    with open(path, "rb") as f:
        yield f


async def _read_n_concurrently(loop, sock, n):
    return asyncio.ensure_future(read_all(loop, sock, n))


async def _sendfile_steps(task):
    # The peer reads nothing yet, so a 32 MiB sendfile cannot finish; one
    # step of the task starts it, a poll lets it fill the socket buffer.
    await asyncio.sleep(0)
    await barrier(asyncio.get_running_loop())


@pytest.mark.parametrize("fallback", [True, False])
def test_sendfile_whole_file(hookloop_loop, raw_peer, data_file, fallback):
    async def main():
        tr, pr, peer = await raw_peer()
        reader = await _read_n_concurrently(hookloop_loop, peer, len(DATA))
        sent = await hookloop_loop.sendfile(tr, data_file, fallback=fallback)
        assert sent == len(DATA)
        assert await reader == DATA
        assert data_file.tell() == len(DATA)
        # The transport is usable afterwards.
        tr.write(b"after")
        assert await read_all(hookloop_loop, peer, 5) == b"after"
        tr.close()
        await pr.lost

    run(hookloop_loop, main())


@pytest.mark.parametrize("fallback", [True, False])
def test_sendfile_offset_and_count(hookloop_loop, raw_peer, data_file, fallback):
    async def main():
        tr, pr, peer = await raw_peer()
        reader = await _read_n_concurrently(hookloop_loop, peer, 1000)
        sent = await hookloop_loop.sendfile(tr, data_file, 100, 1000, fallback=fallback)
        assert sent == 1000
        assert await reader == DATA[100:1100]
        assert data_file.tell() == 1100
        tr.close()
        await pr.lost

    run(hookloop_loop, main())


def test_sendfile_offset_past_end(hookloop_loop, raw_peer, data_file):
    async def main():
        tr, pr, peer = await raw_peer()
        assert await hookloop_loop.sendfile(tr, data_file, len(DATA) + 10) == 0
        tr.close()
        assert await read_all(hookloop_loop, peer) == b""
        await pr.lost

    run(hookloop_loop, main())


def test_sendfile_after_pending_writes_keeps_order(hookloop_loop, raw_peer, data_file):
    async def main():
        tr, pr, peer = await raw_peer()
        tr.set_write_buffer_limits(high=1 << 30)
        head = b"H" * (4 << 20)
        tr.write(head)
        reader = await _read_n_concurrently(hookloop_loop, peer, len(head) + len(DATA))
        await hookloop_loop.sendfile(tr, data_file)
        tr.write(b"T")
        got = await reader
        assert got == head + DATA
        assert await read_all(hookloop_loop, peer, 1) == b"T"
        tr.close()
        await pr.lost

    run(hookloop_loop, main())


def test_write_during_sendfile_is_refused(hookloop_loop, raw_peer, tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * (32 << 20))

    async def main():
        tr, pr, peer = await raw_peer()
        with open(path, "rb") as big:
            task = asyncio.ensure_future(hookloop_loop.sendfile(tr, big, fallback=False))
            await _sendfile_steps(task)
            assert not task.done()
            with pytest.raises(RuntimeError):
                tr.write(b"interleaved")
            reader = await _read_n_concurrently(hookloop_loop, peer, 32 << 20)
            assert await task == 32 << 20
            assert await reader == b"x" * (32 << 20)
        tr.close()
        await pr.lost

    run(hookloop_loop, main())


def test_sendfile_not_regular_file_needs_fallback(hookloop_loop, raw_peer):
    async def main():
        tr, pr, peer = await raw_peer()
        with pytest.raises(asyncio.SendfileNotAvailableError):
            await hookloop_loop.sendfile(tr, io.BytesIO(b"not a file"), fallback=False)
        reader = await _read_n_concurrently(hookloop_loop, peer, 10)
        assert await hookloop_loop.sendfile(tr, io.BytesIO(b"not a file")) == 10
        assert await reader == b"not a file"
        tr.close()
        await pr.lost

    run(hookloop_loop, main())


def test_sendfile_text_file_is_refused(hookloop_loop, raw_peer, tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("text")

    async def main():
        tr, pr, peer = await raw_peer()
        with open(path) as f:
            with pytest.raises(ValueError):
                await hookloop_loop.sendfile(tr, f)
        tr.close()
        await pr.lost

    run(hookloop_loop, main())


def test_sendfile_on_closing_transport_is_refused(hookloop_loop, raw_peer, data_file):
    async def main():
        tr, pr, peer = await raw_peer()
        tr.close()
        with pytest.raises(RuntimeError):
            await hookloop_loop.sendfile(tr, data_file)
        await pr.lost

    run(hookloop_loop, main())


def test_sendfile_over_unix_socket(hookloop_loop, data_file):
    a, b = socket.socketpair()
    b.setblocking(False)

    async def main():
        tr, pr = await hookloop_loop.create_unix_connection(Recorder, sock=a)
        reader = await _read_n_concurrently(hookloop_loop, b, len(DATA))
        assert await hookloop_loop.sendfile(tr, data_file, fallback=False) == len(DATA)
        assert await reader == DATA
        tr.close()
        await pr.lost

    try:
        run(hookloop_loop, main())
    finally:
        b.close()


def test_sock_sendfile(hookloop_loop, hookloop_socketpair, data_file):
    a, b = hookloop_socketpair

    async def main():
        reader = await _read_n_concurrently(hookloop_loop, b, len(DATA))
        assert await hookloop_loop.sock_sendfile(a, data_file) == len(DATA)
        assert await reader == DATA
        assert data_file.tell() == len(DATA)

    run(hookloop_loop, main())


def test_sock_sendfile_offset_count(hookloop_loop, hookloop_socketpair, data_file):
    a, b = hookloop_socketpair

    async def main():
        reader = await _read_n_concurrently(hookloop_loop, b, 300)
        assert await hookloop_loop.sock_sendfile(a, data_file, 7, 300) == 300
        assert await reader == DATA[7:307]

    run(hookloop_loop, main())


def test_sock_sendfile_fallback(hookloop_loop, hookloop_socketpair):
    a, b = hookloop_socketpair

    async def main():
        with pytest.raises(asyncio.SendfileNotAvailableError):
            await hookloop_loop.sock_sendfile(a, io.BytesIO(b"mem"), fallback=False)
        reader = await _read_n_concurrently(hookloop_loop, b, 3)
        assert await hookloop_loop.sock_sendfile(a, io.BytesIO(b"mem")) == 3
        assert await reader == b"mem"

    run(hookloop_loop, main())


def test_sock_sendfile_blocking_socket_is_refused_in_debug_mode(hookloop_loop, data_file):
    # asyncio checks for a blocking socket in debug mode only.
    hookloop_loop.set_debug(True)
    a, b = socket.socketpair()
    a.settimeout(2)  # not non-blocking; a loop that accepts it fails, not hangs

    async def main():
        with pytest.raises(ValueError):
            await hookloop_loop.sock_sendfile(a, data_file)

    try:
        run(hookloop_loop, main())
    finally:
        a.close()
        b.close()


def test_sock_sendfile_datagram_socket_is_refused(hookloop_loop, data_file):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)

    async def main():
        with pytest.raises(ValueError):
            await hookloop_loop.sock_sendfile(s, data_file)

    try:
        run(hookloop_loop, main())
    finally:
        s.close()
