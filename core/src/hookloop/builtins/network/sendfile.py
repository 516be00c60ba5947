"""``sock_sendfile`` and ``sendfile``: a file to a socket or a transport.

Owns argument checking (asyncio's messages), the native path over
``os.sendfile`` and the two fallbacks that read the file and write it.

**Native path.**  :class:`_FileSender` is a small state machine driven by
the loop's fd table: one ``os.sendfile`` call at once, then one per
writability event of the socket, advancing the offset, until ``count``
bytes went out or the file ended.  It keeps its write watch registered
across events and removes it when it finishes, fails or is cancelled.  An
``OSError`` before the first byte went out means this socket/file pair
cannot do it (a pipe or a socket as the file, an odd filesystem...): that
is ``asyncio.SendfileNotAvailableError``, and the callers fall back.  The
file position is set to the end of what was sent on every exit, even when
nothing was (then it is ``offset``), as asyncio does since 3.14.

**On a transport** (``loop.sendfile``), the native path serves only our
own :class:`~.stream.SocketTransport`: reading is paused, writes are
refused (``RuntimeError``), its buffer is left to drain, the socket is fed
by ``os.sendfile`` and reading resumes.  The transport's
``_sendfile_waiter`` (see :class:`~.base.BufferedWriter`) holds the future
being awaited, so the transport resolves it when its buffer is empty and
fails it if the connection is lost, before it closes the socket: a sender
never watches a closed fd.

**Fallbacks** read the file in the default executor (the read may block on
the disk) in chunks of at most :data:`FALLBACK_CHUNK` bytes.  For a socket
the chunks go out through ``loop.sock_sendall``.  For a transport they go
through ``transport.write``, so any transport with ``write`` works, TLS
included; :class:`_WriteGate` stands in for the protocol meanwhile, to
hear ``pause_writing``/``resume_writing`` and wait for the transport to
drain before the next chunk, and gives the protocol back at the end.

It must never leave a watch on the fd when it returns or raises, and never
let a closed transport's socket be written.
"""
from __future__ import annotations

import asyncio
import errno
import io
import os
import socket
import stat
import sys
from typing import Any

from hookloop.transport import SocketTransport

from .connect import check_not_ssl_socket

#: Largest chunk the fallbacks read and write at a time (asyncio's read size).
FALLBACK_CHUNK = 256 * 1024
#: Largest count given to one os.sendfile() call (an ssize_t on 32-bit too).
MAX_SENDFILE_BLOCK = sys.maxsize // 2 + 1


def check_sendfile_arguments(file: Any, offset: Any, count: Any,
                             sock: socket.socket | None = None) -> None:
    """Validate like asyncio: binary file, stream socket, sane offset and count."""
    if "b" not in getattr(file, "mode", "b"):
        raise ValueError("file should be opened in binary mode")
    if sock is not None and sock.type != socket.SOCK_STREAM:
        raise ValueError("only SOCK_STREAM type sockets are supported")
    if count is not None:
        if not isinstance(count, int):
            raise TypeError(f"count must be a positive integer (got {count!r})")
        if count <= 0:
            raise ValueError(f"count must be a positive integer (got {count!r})")
    if not isinstance(offset, int):
        raise TypeError(f"offset must be a non-negative integer (got {offset!r})")
    if offset < 0:
        raise ValueError(f"offset must be a non-negative integer (got {offset!r})")


def _native_source(file: Any, count: int | None) -> tuple[int, int]:
    """The file's fd and the size of the first os.sendfile() request
    (0: nothing to send); SendfileNotAvailableError unless it is a regular
    file.  (asyncio trusts ``st_size``, which is 0 for a pipe: it would
    send nothing and return 0; the fallback sends what the pipe holds.)"""
    try:
        fileno = file.fileno()
    except (AttributeError, io.UnsupportedOperation) as exc:
        raise asyncio.SendfileNotAvailableError("not a regular file") from exc
    try:
        info = os.fstat(fileno)
    except OSError as exc:
        raise asyncio.SendfileNotAvailableError("not a regular file") from exc
    if not stat.S_ISREG(info.st_mode):
        raise asyncio.SendfileNotAvailableError("not a regular file")
    return fileno, min(count or info.st_size, MAX_SENDFILE_BLOCK)


class _FileSender:
    """Feeds a non-blocking stream socket from a file with os.sendfile()."""

    __slots__ = ("_loop", "_fd", "_fileno", "offset", "_count", "_blocksize", "sent",
                 "future", "_watching")

    def __init__(self, loop: Any, fd: int, fileno: int, offset: int, count: int | None,
                 blocksize: int) -> None:
        self._loop = loop
        self._fd = fd
        self._fileno = fileno
        self.offset = offset
        self._count = count
        self._blocksize = blocksize
        self.sent = 0
        self.future: asyncio.Future[int] = loop.create_future()
        self._watching = False

    def start(self) -> asyncio.Future[int]:
        """Send what the socket takes now; the future gives the total sent."""
        self._on_writable()
        if not self.future.done():
            self.future.add_done_callback(self._on_done)
        return self.future

    def _on_writable(self) -> None:
        if self.future.done():
            return  # cancelled or failed by the transport; _on_done cleans up
        blocksize = self._blocksize
        if self._count:
            blocksize = min(blocksize, self._count - self.sent)
        try:
            sent = os.sendfile(self._fd, self._fileno, self.offset, blocksize)
        except (BlockingIOError, InterruptedError):
            self._wait()
            return
        except OSError as exc:
            if not self.sent:
                error: BaseException = asyncio.SendfileNotAvailableError("os.sendfile call failed")
                error.__cause__ = exc
            elif exc.errno == errno.ENOTCONN and not isinstance(exc, ConnectionError):
                # The peer left midway; say so the same way on every system.
                error = ConnectionError("socket is not connected", errno.ENOTCONN)
                error.__cause__ = exc
            else:
                error = exc
            self._finish(error)
            return
        except Exception as exc:  # OverflowError and the like: fail, never hang
            self._finish(exc)
            return
        self.offset += sent
        self.sent += sent
        if sent == 0 or (self._count and self.sent >= self._count):
            self._finish(None)
        else:
            self._wait()

    def _wait(self) -> None:
        if not self._watching:
            self._loop.watch_write(self._fd, self._on_writable)
            self._watching = True

    def _unwatch(self) -> None:
        if self._watching:
            self._watching = False
            self._loop.unwatch_write(self._fd)

    def _finish(self, error: BaseException | None) -> None:
        self._unwatch()
        if error is None:
            self.future.set_result(self.sent)
        else:
            self.future.set_exception(error)

    def _on_done(self, future: asyncio.Future[int]) -> None:
        self._unwatch()


async def _send_native(loop: Any, fd: int, file: Any, source: tuple[int, int], offset: int,
                       count: int | None, transport: SocketTransport | None = None) -> int:
    """Send with os.sendfile(); ``source`` is what :func:`_native_source` gave."""
    fileno, blocksize = source
    if not blocksize:
        return 0
    sender = _FileSender(loop, fd, fileno, offset, count, blocksize)
    try:
        future = sender.start()
        if transport is not None:
            transport._sendfile_waiter = future
        return await future
    finally:
        file.seek(sender.offset)  # a regular file (checked): seeking works


async def _sendfile_on_socket_transport(loop: Any, transport: SocketTransport, file: Any,
                                        offset: int, count: int | None) -> int:
    """The native path of loop.sendfile() on our socket transport."""
    if transport._sendfile_waiter is not None:
        raise RuntimeError("sendfile is already in progress on this transport")
    source = _native_source(file, count)  # no fd: fall back before touching the transport
    if not source[1]:
        return 0
    resume_reading = transport.is_reading()
    transport.pause_reading()
    drained = transport._sendfile_waiter = loop.create_future()
    try:
        if not transport.get_write_buffer_size():
            drained.set_result(None)
        await drained
        if transport.is_closing():
            # Closed while draining: its socket is about to be closed.
            raise ConnectionError("Connection is closed")
        return await _send_native(loop, transport._fd, file, source, offset, count, transport)
    finally:
        transport._sendfile_waiter = None
        if resume_reading:
            transport.resume_reading()


class _WriteGate(asyncio.Protocol):
    """Stands in for a transport's protocol while the fallback writes to it.

    It hears the transport's flow control (the real protocol does not: the
    writes are ours), and passes ``connection_lost`` on.  Reading is paused
    meanwhile, so data arriving is a transport bug and fails loudly.
    """

    def __init__(self, loop: Any, transport: Any) -> None:
        self._loop = loop
        self._transport = transport
        self._protocol = transport.get_protocol()
        self._resume_reading = _is_reading(transport)
        # Paused before we came: the resume_writing that ends it is ours.
        self._was_paused = bool(getattr(transport, "_protocol_paused", False))
        self._resumed: asyncio.Future[None] | None = (
            loop.create_future() if self._was_paused else None)
        if self._resume_reading:
            transport.pause_reading()
        transport.set_protocol(self)

    async def drain(self) -> None:
        """Return when the transport takes more; ConnectionError once it closes."""
        if self._resumed is not None and not self._transport.is_closing():
            await self._resumed
        if self._transport.is_closing():
            raise ConnectionError("Connection closed by peer")

    def pause_writing(self) -> None:
        if self._resumed is None:
            self._resumed = self._loop.create_future()

    def resume_writing(self) -> None:
        resumed, self._resumed = self._resumed, None
        if resumed is not None and not resumed.done():
            resumed.set_result(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.resume_writing()  # wake drain(), which then sees the transport closing
        self._protocol.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        raise RuntimeError("Invalid state: reading should be paused")

    def eof_received(self) -> bool | None:
        raise RuntimeError("Invalid state: reading should be paused")

    def restore(self) -> None:
        """Give the transport its protocol back."""
        transport = self._transport
        if transport.get_protocol() is not self:
            return  # lost (connection_lost went through) or replaced by the user
        transport.set_protocol(self._protocol)
        if transport.is_closing():
            return
        if self._resume_reading:
            transport.resume_reading()
        if self._was_paused:
            self._protocol.resume_writing()


def _is_reading(transport: Any) -> bool:
    """Whether ``transport`` reads now.  A write pipe does not: its
    ``is_reading()`` is ``asyncio.ReadTransport``'s, which raises
    ``NotImplementedError`` (as asyncio's write pipe's does)."""
    try:
        reading: bool = transport.is_reading()
    except NotImplementedError:
        return False
    return reading


def _seekable(file: Any) -> bool:
    """Whether the fallbacks can set the file position (not in a pipe)."""
    seekable = getattr(file, "seekable", None)
    return seekable() if seekable is not None else hasattr(file, "seek")


async def _sendfile_fallback(loop: Any, transport: Any, file: Any, offset: int,
                             count: int | None) -> int:
    if offset or _seekable(file):
        file.seek(offset)  # an offset in a pipe fails here, as it should
    gate = _WriteGate(loop, transport)
    total = 0
    try:
        while True:
            size = min(count - total, FALLBACK_CHUNK) if count else FALLBACK_CHUNK
            if size <= 0:
                return total
            data = await loop.run_in_executor(None, file.read, size)
            if not data:
                return total
            transport.write(data)
            await gate.drain()
            total += len(data)
    finally:
        if total and _seekable(file):
            file.seek(offset + total)
        gate.restore()


async def _sock_sendfile_fallback(loop: Any, sock: socket.socket, file: Any, offset: int,
                                  count: int | None) -> int:
    if offset or _seekable(file):
        file.seek(offset)  # an offset in a pipe fails here, as it should
    view = memoryview(bytearray(min(count, FALLBACK_CHUNK) if count else FALLBACK_CHUNK))
    total = 0
    try:
        while True:
            size = min(count - total, len(view)) if count else len(view)
            if size <= 0:
                return total
            read = await loop.run_in_executor(None, file.readinto, view[:size])
            if not read:
                return total
            await loop.sock_sendall(sock, view[:read])
            total += read
    finally:
        if total and _seekable(file):
            file.seek(offset + total)


def _writable_transport(transport: Any) -> bool:
    return (not isinstance(transport, asyncio.DatagramTransport)
            and callable(getattr(transport, "write", None)))


class Sendfile:
    """``sock_sendfile`` and ``sendfile``."""

    _loop: Any

    async def sock_sendfile(self, sock: socket.socket, file: Any, offset: int = 0,
                            count: int | None = None, *, fallback: bool = True) -> int:
        loop = self._loop
        if loop.get_debug() and sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")
        check_not_ssl_socket(sock)
        check_sendfile_arguments(file, offset, count, sock)
        fd = sock.fileno()
        loop.check_fd_free(fd)
        try:
            return await _send_native(loop, fd, file, _native_source(file, count), offset, count)
        except asyncio.SendfileNotAvailableError:
            if not fallback:
                raise
        return await _sock_sendfile_fallback(loop, sock, file, offset, count)

    async def sendfile(self, transport: Any, file: Any, offset: int = 0,
                       count: int | None = None, *, fallback: bool = True) -> int:
        loop = self._loop
        if transport.is_closing():
            raise RuntimeError("Transport is closing")
        native = isinstance(transport, SocketTransport)
        if not native and not _writable_transport(transport):
            raise RuntimeError(f"sendfile is not supported for transport {transport!r}")
        check_sendfile_arguments(file, offset, count)
        if native:
            try:
                return await _sendfile_on_socket_transport(loop, transport, file, offset, count)
            except asyncio.SendfileNotAvailableError:
                if not fallback:
                    raise
        elif not fallback:
            raise RuntimeError("fallback is disabled and native sendfile is not supported "
                               f"for transport {transport!r}")
        return await _sendfile_fallback(loop, transport, file, offset, count)
