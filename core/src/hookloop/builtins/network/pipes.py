"""Pipe transports: ``connect_read_pipe`` and ``connect_write_pipe``.

Owns the two pipe transports and the coroutines that make them.  A "pipe"
is whatever file object the caller hands in whose fd is a pipe, a FIFO, a
socket or a character device (a pty, a tty, ``/dev/null``); anything else
is refused with asyncio's ``ValueError`` before the fd is touched.  The fd
is made non-blocking; the *file object* is what gets closed, after
``connection_lost``.

* :class:`ReadPipeTransport` reads up to :data:`~.stream.MAX_READ` bytes per
  readiness event (a default Linux pipe holds 64 KiB, so a larger read
  would only cost an allocation; see :mod:`.stream`).  End of file is
  ``eof_received()`` then ``connection_lost(None)``, both from the ready
  queue, as asyncio does; the return value of ``eof_received`` is ignored
  (a read pipe has no write half to keep open).  ``EIO`` is how a pty
  master reports that its slave side closed: it loses the connection
  quietly, like a peer going away.
* :class:`WritePipeTransport` is :class:`~.base.BufferedWriter` over
  ``os.write``/``os.writev``.  ``write_eof()`` is ``close()``: flush, then
  close the pipe.  Writes after either are dropped (with a warning when they
  pile up), as asyncio's write pipes do.  When the fd is a pipe, a FIFO or
  a socket, it is also watched for *readability*: the write end of a pipe
  polls readable (``POLLERR``) once the reader has gone, so the loss is
  noticed even when nothing is being written.  ``connection_lost`` gets
  ``BrokenPipeError`` if data was still buffered then, ``None`` otherwise.
  Every ``OSError`` of a write pipe is quiet (debug log only).

Their types and surface are asyncio's pipe transports': the read pipe is an
``asyncio.ReadTransport`` only (no write-side flow control; ``max_size`` is
how much one read takes); the write pipe is a full ``asyncio.Transport``, as
asyncio's ``_UnixWritePipeTransport`` is (through its ``_FlowControlMixin``),
so ``isinstance(t, asyncio.Transport)`` holds and ``pause_reading()``/
``resume_reading()`` raise ``NotImplementedError``; ``write()`` refuses what
is not bytes, bytearray or memoryview with asyncio's ``AssertionError``.
Their reprs have asyncio's fields (``closed``/``closing``, ``fd=``,
``polling``/``idle``, a write pipe's ``bufsize=``; ``open`` once the loop
is closed).  As there, the read pipe has no ``abort()`` (its ``close()``
has nothing to flush), and the write pipe's ``is_reading()`` is
``ReadTransport``'s, raising ``NotImplementedError``.

Lifecycle, flow control and the write buffer are :mod:`.base`'s; this
module adds only what is pipe-specific.  It must never close a pipe it
refused, never read before ``connection_made`` ran, and never block.
"""
from __future__ import annotations

import asyncio
import contextvars
import errno
import functools
import logging
import os
import stat
import sys
from collections.abc import Callable
from inspect import getattr_static
from typing import Any

from hookloop.transport import (
    MAX_READ,
    PEER_GONE,
    BufferedWriter,
    ReadControl,
    started,
    wake_waiter,
)

logger = logging.getLogger("asyncio")

#: Platforms where the write end of a *named* FIFO polls readable while
#: unread data sits in it and gets no event when the reader closes, so the
#: readability trick could only report false disconnections (gh-145030).
_FIFO_WITHOUT_CLOSE_EVENT = frozenset({"darwin", "ios", "tvos", "watchos", "sunos5"})


def _notices_reader_closing(mode: int, nlink: int) -> bool:
    """Whether a write pipe's fd polls readable when its reader goes away."""
    if stat.S_ISSOCK(mode):
        return True
    if not stat.S_ISFIFO(mode) or sys.platform.startswith("aix"):
        return False
    # An os.pipe() end has st_nlink == 0; a FIFO in the filesystem does not.
    return not (sys.platform in _FIFO_WITHOUT_CLOSE_EVENT and nlink > 0)


def _pipe_extra(pipe: Any, extra: dict[str, Any] | None) -> dict[str, Any]:
    info = dict(extra) if extra else {}
    info["pipe"] = pipe
    return info


class _Absent:
    """A name the transport's base classes define but asyncio's transport of
    that kind does not have: reading it raises ``AttributeError`` (so
    ``hasattr()`` is false), as it does there.  :meth:`PipeAttribute.__dir__`
    leaves it out."""

    __slots__ = ("name",)

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            owner = objtype.__name__ if objtype is not None else "?"
            raise AttributeError(f"type object {owner!r} has no attribute "
                                 f"{self.name!r}")
        raise AttributeError(f"{type(obj).__name__!r} object has no attribute {self.name!r}")


class PipeAttribute:
    """``_pipe``: the pipe object, under the name asyncio's pipe transports
    give it.  Code written for asyncio sets it to None to drop the pipe
    without closing it (test_asyncio's test_unclosed_pipe_transport does)."""

    __slots__ = ()

    _fileobj: Any
    _closing: bool
    _fd: int
    _loop: Any

    @property
    def _pipe(self) -> Any:
        return self._fileobj

    @_pipe.setter
    def _pipe(self, value: Any) -> None:
        self._fileobj = value

    def __dir__(self) -> list[str]:
        cls = type(self)
        return [name for name in super().__dir__()
                if not isinstance(getattr_static(cls, name, None), _Absent)]

    def _repr(self, polling: bool, *live: str) -> str:
        # asyncio's fields, in asyncio's order: "polling"/"idle" (and
        # ``live``) while the loop is open, "open" once it is closed.
        info = [type(self).__name__]
        if self._fileobj is None:
            info.append("closed")
        elif self._closing:
            info.append("closing")
        info.append(f"fd={self._fd}")
        if self._fileobj is None:
            info.append("closed")
        elif self._loop is None or self._loop.is_closed():
            info.append("open")
        else:
            info.append("polling" if polling else "idle")
            info.extend(live)
        return "<{}>".format(" ".join(info))


class ReadPipeTransport(PipeAttribute, ReadControl, asyncio.ReadTransport):
    """The read end of a pipe (or a FIFO, socket, character device)."""

    # "__dict__": like asyncio's pipe transports, an instance takes new
    # attributes; code written for asyncio patches methods on them
    # (test_asyncio's test_pause_reading mocks pause_reading on a child's
    # stdout pipe).  Slot access is not slowed by it.
    __slots__ = ("_loop", "_fileobj", "_fd", "_protocol", "_closing", "_lost", "_lost_writes",
                 "_high_water", "_low_water", "_protocol_paused", "_server", "_reading",
                 "_reader", "_read_context", "_begun", "__weakref__", "__dict__")

    #: The most one read takes (asyncio's read pipe has this attribute too).
    max_size = MAX_READ

    # asyncio's read pipe is a ReadTransport only: none of the write side,
    # and no abort() (close() has nothing to flush).
    abort = _Absent()
    get_write_buffer_size = _Absent()
    get_write_buffer_limits = _Absent()
    set_write_buffer_limits = _Absent()

    def __init__(self, loop: Any, pipe: Any, protocol: Any,
                 waiter: asyncio.Future[Any] | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        fd = pipe.fileno()
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)):
            raise ValueError("Pipe transport is for pipes/sockets only.")
        os.set_blocking(fd, False)
        self._init_core(loop, pipe, fd, protocol, _pipe_extra(pipe, extra))
        self._reading = True
        self._reader = self._on_readable
        self._begun = False
        loop.call_soon(protocol.connection_made, self)
        loop.call_soon(self._begin, waiter)

    def _begin(self, waiter: asyncio.Future[Any] | None) -> None:
        self._begun = True
        super()._begin(waiter)

    def __repr__(self) -> str:
        return self._repr(self._begun and self._reading and not self._closing)

    def _is_quiet_error(self, exc: BaseException) -> bool:
        # A pty whose other side closed says EIO; anything else is reported.
        return isinstance(exc, PEER_GONE) or (isinstance(exc, OSError) and exc.errno == errno.EIO)

    def _on_readable(self) -> None:
        try:
            data = os.read(self._fd, self.max_size)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal_error(exc, "Fatal read error on pipe transport")
            return
        if data:
            try:
                self._protocol.data_received(data)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")
            return
        if self._loop.get_debug():
            logger.info("%r was closed by peer", self)
        self._loop.call_soon(self._protocol.eof_received)
        self.close()


class WritePipeTransport(PipeAttribute, BufferedWriter, asyncio.Transport):
    """The write end of a pipe (or a FIFO, socket, character device).

    An ``asyncio.Transport``, as asyncio's write pipe is: ``pause_reading()``
    and ``resume_reading()`` are ``asyncio.ReadTransport``'s, which raise
    ``NotImplementedError``.
    """

    __slots__ = ("_loop", "_fileobj", "_fd", "_protocol", "_closing", "_lost", "_lost_writes",
                 "_high_water", "_low_water", "_protocol_paused", "_server", "_buffer",
                 "_buffer_size", "_eof_written", "_sendfile_waiter", "_send", "_sendv",
                 "_watch_reader", "__weakref__", "__dict__")  # "__dict__": see ReadPipeTransport

    _write_error_message = "Fatal write error on pipe transport"

    def __init__(self, loop: Any, pipe: Any, protocol: Any,
                 waiter: asyncio.Future[Any] | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        fd = pipe.fileno()
        info = os.fstat(fd)
        mode = info.st_mode
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)):
            raise ValueError("Pipe transport is only for pipes, sockets and character devices")
        os.set_blocking(fd, False)
        self._init_core(loop, pipe, fd, protocol, _pipe_extra(pipe, extra))
        self._init_writer()
        self._send = functools.partial(os.write, fd)
        self._sendv = functools.partial(os.writev, fd)
        self._watch_reader = _notices_reader_closing(mode, info.st_nlink)
        loop.call_soon(protocol.connection_made, self)
        loop.call_soon(self._begin, waiter)

    def __repr__(self) -> str:
        return self._repr(bool(self._buffer_size) and not self._lost,
                          f"bufsize={self.get_write_buffer_size()}")

    def _begin(self, waiter: asyncio.Future[Any] | None) -> None:
        # Scheduled at creation, as asyncio's reader of a write pipe: what
        # it triggers (connection_lost) sees a copy of the creator's context.
        if self._watch_reader and not self._closing:
            self._loop.watch_read(self._fd, self._on_reader_closed, contextvars.copy_context())
        wake_waiter(waiter)

    def _stop_reading(self) -> None:
        if self._watch_reader:
            self._loop.unwatch_read(self._fd)

    def _on_reader_closed(self) -> None:
        if self._loop.get_debug():
            logger.info("%r was closed by peer", self)
        self._force_close(BrokenPipeError() if self._buffer_size else None)

    def write(self, data: Any) -> None:
        # asyncio's write pipe checks its argument with an assert: an
        # AssertionError naming the data, for anything but bytes, bytearray
        # and memoryview.  (Raised, not asserted: the same under python -O,
        # and not rewritten by pytest, which rewrites the asserts of every
        # module of a distribution that has a pytest plugin.)
        if type(data) is not bytes and not isinstance(data, (bytearray, memoryview)):
            raise AssertionError(repr(data))
        BufferedWriter.write(self, data)

    def writelines(self, list_of_data: Any) -> None:
        # asyncio.WriteTransport's: one write of the chunks joined (the
        # TypeError for a chunk that is not bytes-like is bytes.join's).
        self.write(b"".join(list_of_data))

    def close(self) -> None:
        self._eof_written = True  # from now on writes are dropped: see _refuse_write
        super().close()

    def write_eof(self) -> None:
        self.close()

    def _refuse_write(self) -> bool:
        # asyncio's write pipes drop writes after close() and write_eof(),
        # as after a lost connection, instead of raising.
        self._drop_write("pipe closed by peer or os.write(pipe, data) raised exception.")
        return True


class PipeEndpoints:
    """``connect_read_pipe`` and ``connect_write_pipe``."""

    _loop: Any

    async def connect_read_pipe(self, protocol_factory: Callable[[], Any],
                                pipe: Any) -> tuple[ReadPipeTransport, Any]:
        return await self._connect_pipe(ReadPipeTransport, protocol_factory, pipe, "Read")

    async def connect_write_pipe(self, protocol_factory: Callable[[], Any],
                                 pipe: Any) -> tuple[WritePipeTransport, Any]:
        return await self._connect_pipe(WritePipeTransport, protocol_factory, pipe, "Write")

    async def _connect_pipe(self, transport_class: Any, protocol_factory: Callable[[], Any],
                            pipe: Any, kind: str) -> tuple[Any, Any]:
        loop = self._loop
        protocol = protocol_factory()
        waiter = loop.create_future()
        transport = transport_class(loop, pipe, protocol, waiter)
        await started(transport, waiter)
        if loop.get_debug():
            logger.debug("%s pipe %r connected: (%r, %r)", kind, pipe.fileno(), transport, protocol)
        return transport, protocol
