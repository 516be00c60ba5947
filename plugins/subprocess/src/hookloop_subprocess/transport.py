"""The subprocess transport: one child process, its pipes, its exit.

:class:`SubprocessTransport` is an ``asyncio.SubprocessTransport`` over a
``subprocess.Popen`` object (what ``get_extra_info("subprocess")`` returns,
as asyncio documents).  It owns:

* the **pipes**: the child's stdin/stdout/stderr ends that ``Popen`` made,
  each connected with the loop's own ``connect_write_pipe``/
  ``connect_read_pipe`` (so the transports plugin's pipe transports serve
  them; nothing is copied here) to a small adapter protocol that forwards to
  ``pipe_data_received(fd, data)``/``pipe_connection_lost(fd, exc)``;
* the **exit**: a child watcher (:mod:`.watchers`) calls
  :meth:`SubprocessTransport._on_child_exit`; the transport reaps the child in
  the loop thread and publishes the return code at once (``get_returncode()``,
  ``Popen.returncode``, waiters of ``_wait()``), then schedules
  ``process_exited()``;
* the **order of protocol callbacks**, asyncio's: ``connection_made`` once
  every pipe is connected (callbacks that were due before are held and
  delivered after it, in order); then ``pipe_data_received``/
  ``pipe_connection_lost``/``process_exited`` from the ready queue as they
  happen; ``connection_lost(None)`` only once the child has exited *and*
  every pipe is closed.  ``_wait()`` (what ``asyncio.subprocess.Process.wait``
  awaits) returns as soon as the child has exited, even while a grandchild
  keeps a pipe open (gh-119710).

What it must never do: signal a pid it has reaped (``send_signal`` after the
exit is a no-op, ``ProcessLookupError`` after ``connection_lost``), leave a
child unreaped (``close()`` kills a running child, as asyncio's does; the
service reaps what is left when the loop closes), or touch asyncio's private
subprocess machinery.  Nothing here is on a hot path but the forwarding of
pipe data, one ``call_soon`` per chunk, as asyncio does.
"""
from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import os
import signal
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .watchers import reap_soon

if TYPE_CHECKING:
    import subprocess

    from .service import SubprocessService
    from .watchers import ChildWatcher

__all__ = ["SubprocessTransport"]

logger = logging.getLogger("asyncio")

#: What asyncio reports when a child's status was read by somebody else.
UNKNOWN_RETURNCODE = 255


class _PipeProtocol(asyncio.Protocol):
    """Connects one of the child's pipes to the subprocess transport."""

    __slots__ = ("proc", "fd", "pipe", "disconnected")

    def __init__(self, proc: SubprocessTransport, fd: int) -> None:
        self.proc: SubprocessTransport | None = proc
        self.fd = fd
        self.pipe: Any = None
        self.disconnected = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} fd={self.fd} pipe={self.pipe!r}>"

    def connection_made(self, transport: Any) -> None:
        self.pipe = transport

    def data_received(self, data: bytes) -> None:
        proc = self.proc
        if proc is not None:
            proc._call(proc._protocol.pipe_data_received, self.fd, data)

    def eof_received(self) -> None:
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        self.disconnected = True
        proc, self.proc = self.proc, None
        if proc is not None:
            proc._pipe_connection_lost(self.fd, exc)

    def pause_writing(self) -> None:
        if self.proc is not None:
            self.proc._protocol.pause_writing()

    def resume_writing(self) -> None:
        if self.proc is not None:
            self.proc._protocol.resume_writing()


class SubprocessTransport(asyncio.SubprocessTransport):
    """A child process and its pipes, for a ``SubprocessProtocol``."""

    _extra: dict[str, Any]  # asyncio.BaseTransport's, set by its __init__

    def __init__(self, loop: Any, service: SubprocessService, watcher: ChildWatcher,
                 protocol: Any, popen: subprocess.Popen[bytes],
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(extra)
        self._loop: Any = loop
        self._service: SubprocessService | None = service
        self._watcher = watcher
        self._protocol: Any = protocol
        self._proc: subprocess.Popen[bytes] | None = popen
        self._pid: int = popen.pid
        self._returncode: int | None = None
        self._closed = False
        self._finished = False
        self._exit_waiters: list[asyncio.Future[int]] | None = []
        # Protocol calls due before connection_made, delivered after it.
        self._pending_calls: list[tuple[Callable[..., Any], tuple[Any, ...]]] | None = []
        self._pipes: dict[int, _PipeProtocol | None] = {}
        if popen.stdin is not None:
            self._pipes[0] = None
        if popen.stdout is not None:
            self._pipes[1] = None
        if popen.stderr is not None:
            self._pipes[2] = None
        self._extra["subprocess"] = popen
        #: What the child watcher calls: :meth:`_on_child_exit` in a copy of
        #: the context the process was started in, so ``process_exited``
        #: sees that context whichever watcher (thread, pidfd, kqueue) runs.
        self._exit_callback: Callable[..., None] = functools.partial(
            contextvars.copy_context().run, self._on_child_exit)

    def __repr__(self) -> str:
        info = [type(self).__name__]
        if self._closed:
            info.append("closed")
        info.append(f"pid={self._pid}")
        if self._returncode is not None:
            info.append(f"returncode={self._returncode}")
        else:
            info.append("running")
        stdin = self._pipes.get(0)
        if stdin is not None:
            info.append(f"stdin={stdin.pipe}")
        stdout = self._pipes.get(1)
        if stdout is not None:
            info.append(f"stdout={stdout.pipe}")
        stderr = self._pipes.get(2)
        if stderr is not None:
            info.append(f"stderr={stderr.pipe}")
        return f"<{' '.join(info)}>"

    # -- starting ---------------------------------------------------------

    async def _connect_pipes(self) -> None:
        """Connect the child's pipes, then deliver ``connection_made``.

        Returns once ``connection_made`` (and the calls held before it)
        has run.  On failure or cancellation the pipes are closed and the
        error propagates (the caller kills and reaps the child).
        """
        proc = self._proc
        loop = self._loop
        assert proc is not None
        try:
            if proc.stdin is not None:
                _, self._pipes[0] = await loop.connect_write_pipe(
                    lambda: _PipeProtocol(self, 0), proc.stdin)
            if proc.stdout is not None:
                _, self._pipes[1] = await loop.connect_read_pipe(
                    lambda: _PipeProtocol(self, 1), proc.stdout)
            if proc.stderr is not None:
                _, self._pipes[2] = await loop.connect_read_pipe(
                    lambda: _PipeProtocol(self, 2), proc.stderr)
        except BaseException:
            self._close_pipes_after_failure()
            raise
        loop.call_soon(self._protocol.connection_made, self)
        pending, self._pending_calls = self._pending_calls, None
        for callback, args in pending or ():
            loop.call_soon(callback, *args)
        # One step of the ready queue: connection_made (queued above) runs
        # before the caller gets the transport, as with asyncio's loop.
        await asyncio.sleep(0)

    def _close_pipes_after_failure(self) -> None:
        for proto in self._pipes.values():
            if proto is not None and proto.pipe is not None:
                proto.pipe.close()
        proc = self._proc
        if proc is not None:
            for raw in (proc.stdin, proc.stdout, proc.stderr):
                if raw is not None:
                    raw.close()

    # -- asyncio.SubprocessTransport ----------------------------------------

    def get_pid(self) -> int:
        return self._pid

    def get_returncode(self) -> int | None:
        return self._returncode

    def get_pipe_transport(self, fd: int) -> Any:
        proto = self._pipes.get(fd)
        return None if proto is None else proto.pipe

    def get_protocol(self) -> Any:
        return self._protocol

    def set_protocol(self, protocol: Any) -> None:
        self._protocol = protocol

    def is_closing(self) -> bool:
        return self._closed

    def _check_proc(self) -> None:
        if self._proc is None:
            raise ProcessLookupError()

    def send_signal(self, signal: int) -> None:
        self._check_proc()
        if self._returncode is not None or self._proc.returncode is not None:  # type: ignore[union-attr]
            return  # reaped: the pid may belong to somebody else by now
        try:
            os.kill(self._pid, signal)
        except ProcessLookupError:
            pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            for proto in self._pipes.values():
                if proto is not None and proto.pipe is not None:
                    proto.pipe.close()
        proc = self._proc
        if proc is not None and self._returncode is None and proc.poll() is None:
            if loop is not None and loop.get_debug():
                logger.warning("Close running child process: kill %r", self)
            try:
                proc.kill()
            except (ProcessLookupError, PermissionError):
                pass  # exited meanwhile, or setuid

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        if not getattr(self, "_closed", True):
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self.close()

    async def _wait(self) -> int:
        """The return code, once the child has exited (what
        ``asyncio.subprocess.Process.wait()`` awaits on any loop)."""
        if self._returncode is not None:
            return self._returncode
        waiter: asyncio.Future[int] = self._loop.create_future()
        waiters = self._exit_waiters
        assert waiters is not None
        waiters.append(waiter)
        try:
            return await waiter
        finally:
            if self._exit_waiters is not None:
                try:
                    self._exit_waiters.remove(waiter)
                except ValueError:
                    pass

    # -- events -----------------------------------------------------------

    def _call(self, callback: Callable[..., Any], *args: Any) -> None:
        if self._pending_calls is not None:
            self._pending_calls.append((callback, args))
        else:
            self._loop.call_soon(callback, *args)

    def _pipe_connection_lost(self, fd: int, exc: BaseException | None) -> None:
        self._call(self._protocol.pipe_connection_lost, fd, exc)
        self._try_finish()

    def _on_child_exit(self, *_: Any) -> None:
        """The watcher says the child may have exited: reap and publish."""
        if self._returncode is not None:
            return
        pid = self._pid
        watcher = self._watcher
        try:
            status = watcher.reap(pid)
        except ChildProcessError:
            # Somebody else read the status: Popen.wait()/poll() did (then
            # Popen has it), or a foreign waitpid(-1) (then nobody has).
            proc = self._proc
            returncode = proc.returncode if proc is not None else None
            if returncode is None:
                logger.warning("Unknown child process pid %d, will report returncode 255", pid)
                returncode = UNKNOWN_RETURNCODE
        else:
            if status is None:
                watcher.rearm(pid, self._exit_callback)
                return
            returncode = os.waitstatus_to_exitcode(status)
        watcher.unwatch(pid)
        self._process_exited(returncode)

    def _process_exited(self, returncode: int) -> None:
        self._returncode = returncode
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.returncode = returncode
        service, self._service = self._service, None
        if service is not None:
            service._forget(self._pid)
        loop = self._loop
        if loop is not None and loop.get_debug():
            logger.info("%r exited with return code %r", self, returncode)
        if loop is not None and not loop.is_closed():
            self._call(self._protocol.process_exited)
            self._try_finish()
        waiters, self._exit_waiters = self._exit_waiters, None
        if loop is not None and loop.is_closed():
            return  # nobody can await them any more
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(returncode)

    def _try_finish(self) -> None:
        if self._returncode is None or self._finished:
            return
        if all(p is not None and p.disconnected for p in self._pipes.values()):
            self._finished = True
            self._call(self._call_connection_lost, None)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._loop = None
            self._proc = None
            self._protocol = None

    # -- the loop is closing ------------------------------------------------

    def _abandon(self) -> None:
        """The loop closes with this child still running: abort its pipe
        transports (close a read pipe: it has nothing to flush, and, as
        asyncio's, no abort()), close our ends of its pipes, kill it and
        reap it (a thread finishes the job if it does not die within a
        second)."""
        self._closed = True
        for proto in self._pipes.values():
            if proto is not None and proto.pipe is not None:
                pipe = proto.pipe
                try:
                    if isinstance(pipe, asyncio.WriteTransport):
                        pipe.abort()
                    else:
                        pipe.close()
                except RuntimeError:
                    # "Event loop is closed": the transport is lost (aborted)
                    # but its connection_lost cannot be scheduled any more,
                    # so it will not close its file: done just below.
                    pass
        proc = self._proc
        if proc is not None:
            # Their transports' connection_lost will not run any more: close
            # the files here (closing twice is harmless).
            for raw in (proc.stdin, proc.stdout, proc.stderr):
                if raw is not None:
                    raw.close()
        if self._returncode is not None:
            return
        pid = self._pid
        self._watcher.unwatch(pid)
        if proc is not None and proc.returncode is not None:
            self._process_exited(proc.returncode)
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        status = reap_soon(pid, timeout=1.0)
        if status is None:
            returncode = -signal.SIGKILL
        elif status < 0:
            returncode = UNKNOWN_RETURNCODE
        else:
            returncode = os.waitstatus_to_exitcode(status)
        self._process_exited(returncode)
