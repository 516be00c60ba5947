"""The ``sock_*`` coroutines: one socket operation, awaited.

``sock_recv``, ``sock_recv_into``, ``sock_recvfrom``,
``sock_recvfrom_into``, ``sock_sendall``, ``sock_sendto``, ``sock_connect``
and ``sock_accept``, with asyncio's signatures, results and errors.  Each
one tries its system call at once and only waits when the kernel says it
would block (``BlockingIOError``/``InterruptedError``); then the operation
is parked in a queue of its fd and direction, the fd is watched with the
queue's bound method, and the call is retried when the fd is ready.

**Several operations on one socket.**  Each (fd, direction) has one FIFO
queue.  Readiness serves it in order, each operation with its own system
call, until one would block.  An operation that arrives while others wait
in its direction joins the end of the queue without trying first, so two
``sock_recv`` get data in the order they were called and two
``sock_sendall`` never interleave their bytes.  (asyncio's selector loop
lets the newer waiter replace the older one, which then never completes.)
Reading and writing are independent: a ``sock_recv`` may wait while a
``sock_sendall`` runs.

**Cancellation** is noticed through a done-callback on the operation's
future: the operation leaves its queue and, if the queue is empty, the fd
is unwatched.  A cancelled operation never touches the socket again (its
future is checked before each retry), so it consumes no data.

**A socket closed while an operation waits** cannot be noticed (the kernel
says nothing; epoll forgets the fd).  If a later operation comes for the
same fd number, the stale ones are failed with ``EBADF`` (what the closed
socket raises) before the new one is queued, and the fd is watched afresh.

Refused like asyncio: an ``ssl.SSLSocket`` (``TypeError``); in debug mode
a blocking socket (``ValueError``); an fd a transport or another plugin
uses (``RuntimeError``, from :meth:`loop.check_fd_free`), checked before
the first system call, so a transport's data is never stolen.

This module must never block, never leave an fd watched with an empty
queue, and never complete a future twice.
"""
from __future__ import annotations

import collections
import errno
import os
import socket
from collections.abc import Callable, Sequence
from functools import partial
from operator import methodcaller
from typing import Any

from .addresses import resolve
from .connect import check_not_ssl_socket

_READ = 0
_WRITE = 1
_RETRY = (BlockingIOError, InterruptedError)


class _Operation:
    """One parked socket operation: ``call(sock)`` resolves ``future``.

    ``call`` looks the socket's method up at each attempt (a
    ``methodcaller``), as asyncio does: a socket whose method was replaced
    while the operation waited is retried with the new one.
    """

    __slots__ = ("future", "sock", "call")

    def __init__(self, future: Any, sock: socket.socket,
                 call: Callable[[socket.socket], Any]) -> None:
        self.future = future
        self.sock = sock
        self.call = call

    def attempt(self) -> bool:
        """Try once; False if the kernel would block, True when settled."""
        try:
            result = self.call(self.sock)
        except _RETRY:
            return False
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self.future.set_exception(exc)
        else:
            self.future.set_result(result)
        # The exception's traceback holds this frame: drop the cycle through it.
        self.future = None
        return True


class _SendAll:
    """``sock_sendall``'s rest, ``view[offset:]``; queued like an _Operation."""

    __slots__ = ("future", "sock", "view", "offset")

    def __init__(self, future: Any, sock: socket.socket, view: memoryview,
                 offset: int) -> None:
        self.future = future
        self.sock = sock
        self.view = view
        self.offset = offset

    def attempt(self) -> bool:
        view = self.view
        try:
            offset = self.offset + self.sock.send(view[self.offset:])
        except _RETRY:
            return False
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self.future.set_exception(exc)
            self.future = None
            return True
        if offset < len(view):
            self.offset = offset
            return False
        self.future.set_result(None)
        self.future = None
        return True


class _Queue:
    """The operations waiting on one fd in one direction."""

    __slots__ = ("loop", "table", "fd", "slot", "ops")

    def __init__(self, loop: Any, table: dict[int, _Queue], fd: int, slot: int) -> None:
        self.loop = loop
        self.table = table
        self.fd = fd
        self.slot = slot
        self.ops: collections.deque[_Operation | _SendAll] = collections.deque()

    def on_ready(self) -> None:
        ops = self.ops
        while ops:
            op = ops[0]
            if op.future is not None and not op.future.done() and not op.attempt():
                return
            ops.popleft()
        self.stop()

    def forget(self, future: Any) -> None:
        """Done-callback of a parked operation's future."""
        if not future.cancelled():
            return  # settled by on_ready(), which dequeued it
        for op in self.ops:
            if op.future is future:
                self.ops.remove(op)
                break
        if not self.ops:
            self.stop()

    def purge(self) -> None:
        """Forget operations already settled (a cancelled one's forget() may
        still wait in the ready queue), and fail those whose socket was
        closed while they waited."""
        settled = [op for op in self.ops if op.future is None or op.future.done()]
        for op in settled:
            self.ops.remove(op)
        if not self.ops:
            self.stop()
            return
        stale = [op for op in self.ops if op.sock.fileno() != self.fd]
        if not stale:
            return
        for op in stale:
            self.ops.remove(op)
            if op.future is not None and not op.future.done():
                op.future.set_exception(OSError(errno.EBADF, os.strerror(errno.EBADF)))
        # The number may belong to a new file now: watch it afresh.
        self.stop()
        if self.ops:
            self.start()

    def start(self) -> None:
        if self.slot == _READ:
            self.loop.watch_read(self.fd, self.on_ready)
        else:
            self.loop.watch_write(self.fd, self.on_ready)
        self.table[self.fd] = self

    def stop(self) -> None:
        if self.table.get(self.fd) is not self:
            return
        del self.table[self.fd]
        loop = self.loop
        unwatch, watch = ((loop.unwatch_read, loop.watch_read) if self.slot == _READ
                          else (loop.unwatch_write, loop.watch_write))
        previous = unwatch(self.fd)
        if previous is not None and previous != self.on_ready:
            # The fd number was reused and someone else watches it now.
            watch(self.fd, previous)


def _accept(sock: socket.socket) -> tuple[socket.socket, Any]:
    conn, address = sock.accept()
    try:
        conn.setblocking(False)
    except BaseException:
        conn.close()
        raise
    return conn, address


def _connect_result(sock: socket.socket, address: Any) -> None:
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        raise OSError(err, f"Connect call failed {address}")


class SocketOperations:
    """The loop's ``sock_*`` coroutines (``sock_sendfile`` is in sendfile.py).

    Keeps one private attribute, ``_sock_queues``: per direction, fd -> its
    :class:`_Queue`, made on first use.
    """

    _loop: Any
    _sock_queues: tuple[dict[int, _Queue], dict[int, _Queue]]

    def _queues(self) -> tuple[dict[int, _Queue], dict[int, _Queue]]:
        try:
            return self._sock_queues
        except AttributeError:
            self._sock_queues = ({}, {})
            return self._sock_queues

    def _usable_fd(self, sock: socket.socket, slot: int) -> tuple[int, _Queue | None]:
        """Check ``sock`` as asyncio does; its fd and its queue in ``slot``."""
        check_not_ssl_socket(sock)
        loop = self._loop
        if loop.get_debug() and sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")
        fd = sock.fileno()
        tables = self._queues()
        queue = tables[slot].get(fd)
        other = tables[1 - slot].get(fd)
        for q in (queue, other):
            if q is not None:
                q.purge()
        queue = tables[slot].get(fd)
        if queue is None and tables[1 - slot].get(fd) is None:
            loop.check_fd_free(fd)
        return fd, queue

    async def _run(self, sock: socket.socket, slot: int,
                   call: Callable[[socket.socket], Any]) -> Any:
        fd, queue = self._usable_fd(sock, slot)
        if queue is None:
            try:
                return call(sock)
            except _RETRY:
                pass
        return await self._park(fd, slot, queue, lambda future: _Operation(future, sock, call))

    def _park(self, fd: int, slot: int, queue: _Queue | None,
              make: Callable[[Any], _Operation | _SendAll]) -> Any:
        """Queue ``make(future)`` to retry when ``fd`` is ready; the future."""
        loop = self._loop
        if loop.is_closed():
            raise RuntimeError("Event loop is closed")
        future = loop.create_future()
        if queue is None:
            queue = _Queue(loop, self._queues()[slot], fd, slot)
            queue.start()
        queue.ops.append(make(future))
        future.add_done_callback(queue.forget)
        return future

    async def sock_recv(self, sock: socket.socket, n: int) -> bytes:
        data: bytes = await self._run(sock, _READ, methodcaller("recv", n))
        return data

    async def sock_recv_into(self, sock: socket.socket, buf: Any) -> int:
        nbytes: int = await self._run(sock, _READ, methodcaller("recv_into", buf))
        return nbytes

    async def sock_recvfrom(self, sock: socket.socket, bufsize: int) -> tuple[bytes, Any]:
        got: tuple[bytes, Any] = await self._run(sock, _READ, methodcaller("recvfrom", bufsize))
        return got

    async def sock_recvfrom_into(self, sock: socket.socket, buf: Any,
                                 nbytes: int = 0) -> tuple[int, Any]:
        got: tuple[int, Any] = await self._run(
            sock, _READ, methodcaller("recvfrom_into", buf, nbytes or len(buf)))
        return got

    async def sock_sendto(self, sock: socket.socket, data: Any, address: Any) -> int:
        sent: int = await self._run(sock, _WRITE, methodcaller("sendto", data, address))
        return sent

    async def sock_accept(self, sock: socket.socket) -> tuple[socket.socket, Any]:
        accepted: tuple[socket.socket, Any] = await self._run(sock, _READ, _accept)
        return accepted

    async def sock_sendall(self, sock: socket.socket, data: Any) -> None:
        fd, queue = self._usable_fd(sock, _WRITE)
        view = memoryview(data)
        if view.itemsize != 1 or view.ndim != 1:
            view = view.cast("B")
        sent = 0
        if queue is None:
            try:
                sent = sock.send(view)
            except _RETRY:
                pass
            if sent == len(view):
                return
        await self._park(fd, _WRITE, queue, lambda future: _SendAll(future, sock, view, sent))

    async def sock_connect(self, sock: socket.socket, address: Any) -> None:
        check_not_ssl_socket(sock)
        if self._loop.get_debug() and sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")
        if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, (tuple, list)):
            address = await self._resolved(sock, address)
        fd, queue = self._usable_fd(sock, _WRITE)
        if queue is None:
            try:
                sock.connect(address)
                return
            except _RETRY:
                # Connecting in the background: writable means done or failed.
                pass
        await self._park(fd, _WRITE, queue, lambda future: _Operation(
            future, sock, partial(_connect_result, address=address)))

    async def _resolved(self, sock: socket.socket, address: Sequence[Any]) -> Any:
        """The sockaddr to connect ``sock`` to (a numeric host: no lookup)."""
        host, port, *rest = address
        infos = await resolve(self._loop, host, port, family=sock.family, type=sock.type,
                              proto=sock.proto)
        if not infos:
            raise OSError("getaddrinfo() returned empty list")
        resolved = infos[0][4]
        if rest and len(resolved) == 4:
            # An IPv6 address given with flowinfo/scope id keeps them.
            flowinfo = rest[0] or resolved[2]
            scope_id = (rest[1] if len(rest) > 1 else 0) or resolved[3]
            resolved = (resolved[0], resolved[1], flowinfo, scope_id)
        return resolved
