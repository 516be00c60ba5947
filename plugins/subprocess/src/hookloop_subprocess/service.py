"""The subprocess service: ``loop.subprocess_exec`` and ``loop.subprocess_shell``.

One :class:`SubprocessService` per loop, made the first time a subprocess is
asked for (the loop delegates both methods here; see
:func:`hookloop.hookspecs.hookloop_subprocess`).  It owns:

* **argument checking**, asyncio's rules and messages: ``universal_newlines``,
  ``text``, ``encoding``, ``errors`` and a non-zero ``bufsize`` are refused
  (the pipes carry bytes), ``shell`` must match the method, a shell command
  must be a ``str``/``bytes``; every other keyword goes to ``subprocess.Popen``
  unchanged (``cwd``, ``env``, ``pass_fds``, ``start_new_session``,
  ``process_group``, ``user``/``group``/``extra_groups``, ``umask``,
  ``close_fds``, ``executable``, ...), which checks them as it always does.
  ``pass_fds`` entries are checked first so that a closed fd is an
  ``OSError`` naming ``pass_fds``;
* **spawning** with ``subprocess.Popen`` (looked up at call time): it has every
  argument asyncio accepts, closes inherited fds, uses ``vfork`` where it can,
  reports a failed ``exec`` as the exception the child hit, closes every pipe
  and reaps the child when that happens, and is what
  ``get_extra_info("subprocess")`` must return;
* the **child watcher** of the loop (:mod:`.watchers`), chosen once, and the
  table of children not reaped yet;
* **loop close** (the loop calls the service's ``close()``): children still
  running are killed and reaped, their pipe transports aborted and pipe
  ends closed, pidfds closed, so nothing outlives the loop.

What it must never do: block the loop (but for loop close, which waits a
bounded time for killed children), leave a zombie or an fd behind on any
path, or use asyncio's child watchers and private subprocess classes.
"""
from __future__ import annotations

import asyncio
import logging
import os
import subprocess
from collections.abc import Callable
from typing import Any

from .transport import SubprocessTransport
from .watchers import ChildWatcher, choose_watcher

__all__ = ["SubprocessService"]

logger = logging.getLogger("asyncio")

PIPE = subprocess.PIPE

def _check_text_mode(universal_newlines: Any, bufsize: Any, encoding: Any, errors: Any,
                     text: Any) -> None:
    if universal_newlines:
        raise ValueError("universal_newlines must be False")
    if bufsize != 0:
        raise ValueError("bufsize must be 0")
    if text:
        raise ValueError("text must be False")
    if encoding is not None:
        raise ValueError("encoding must be None")
    if errors is not None:
        raise ValueError("errors must be None")


def _check_pass_fds(pass_fds: Any) -> None:
    """A closed fd in ``pass_fds`` fails here, with its name, instead of in
    the child (where ``Popen`` reports a bare ``EBADF``)."""
    for fd in pass_fds:
        if isinstance(fd, int) and fd >= 0:
            try:
                os.fstat(fd)
            except OSError as exc:
                raise OSError(exc.errno, f"pass_fds: {fd} is not an open file descriptor "
                                         f"({exc.strerror})") from None


class SubprocessService:
    """``subprocess_exec``/``subprocess_shell`` for one loop."""

    def __init__(self, loop: Any) -> None:
        self._loop = loop
        self._watcher: ChildWatcher = choose_watcher(loop)
        self._children: dict[int, SubprocessTransport] = {}

    @property
    def watcher(self) -> ChildWatcher:
        """The child watcher this loop uses (``.name``: poller, pidfd, thread)."""
        return self._watcher

    async def subprocess_exec(self, protocol_factory: Callable[[], Any], program: Any,
                              *args: Any, stdin: Any = PIPE, stdout: Any = PIPE,
                              stderr: Any = PIPE, universal_newlines: bool = False,
                              shell: bool = False, bufsize: int = 0,
                              encoding: str | None = None, errors: str | None = None,
                              text: bool | None = None,
                              **kwargs: Any) -> tuple[SubprocessTransport, Any]:
        _check_text_mode(universal_newlines, bufsize, encoding, errors, text)
        if shell:
            raise ValueError("shell must be False")
        protocol = protocol_factory()
        if self._loop.get_debug():
            logger.debug("execute program %r", program)
        transport = await self._spawn(protocol, (program, *args), False, stdin, stdout,
                                      stderr, kwargs)
        return transport, protocol

    async def subprocess_shell(self, protocol_factory: Callable[[], Any], cmd: Any, *,
                               stdin: Any = PIPE, stdout: Any = PIPE, stderr: Any = PIPE,
                               universal_newlines: bool = False, shell: bool = True,
                               bufsize: int = 0, encoding: str | None = None,
                               errors: str | None = None, text: bool | None = None,
                               **kwargs: Any) -> tuple[SubprocessTransport, Any]:
        if not isinstance(cmd, (bytes, str)):
            raise ValueError("cmd must be a string")
        _check_text_mode(universal_newlines, bufsize, encoding, errors, text)
        if not shell:
            raise ValueError("shell must be True")
        protocol = protocol_factory()
        if self._loop.get_debug():
            logger.debug("run shell command %r", cmd)
        transport = await self._spawn(protocol, cmd, True, stdin, stdout, stderr, kwargs)
        return transport, protocol

    async def _spawn(self, protocol: Any, args: Any, shell: bool, stdin: Any, stdout: Any,
                     stderr: Any, kwargs: dict[str, Any]) -> SubprocessTransport:
        loop = self._loop
        pass_fds = kwargs.get("pass_fds")
        if pass_fds:
            kwargs["pass_fds"] = pass_fds = tuple(pass_fds)  # an iterator is read once
            _check_pass_fds(pass_fds)
        popen = subprocess.Popen(args, shell=shell, stdin=stdin, stdout=stdout, stderr=stderr,
                                 universal_newlines=False, bufsize=0, **kwargs)
        transport = SubprocessTransport(loop, self, self._watcher, protocol, popen)
        pid = popen.pid
        try:
            self._watcher.watch(pid, transport._exit_callback)
        except BaseException:
            # No way to hear of its exit: do not leave it running unwatched.
            transport._abandon()
            raise
        self._children[pid] = transport
        if loop.get_debug():
            logger.debug("process %r created: pid %s", args, pid)
        try:
            await transport._connect_pipes()
        except (SystemExit, KeyboardInterrupt):
            transport.close()  # kills it; reaped when it exits or the loop closes
            raise
        except BaseException:
            transport.close()
            await asyncio.shield(transport._wait())
            raise
        return transport

    def _forget(self, pid: int) -> None:
        self._children.pop(pid, None)

    def close(self) -> None:
        """The loop is closing: kill and reap the children still running
        (their pipe transports aborted, pipe ends closed), drop the watcher."""
        try:
            for transport in list(self._children.values()):
                transport._abandon()
        finally:
            self._children.clear()
            self._watcher.close()
