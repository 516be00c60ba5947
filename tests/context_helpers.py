"""What the context tests share (tests/test_loop_context.py, hookloop-tls's
tests/test_tls_context.py): the ``ContextVar`` they watch and a protocol that
records what each callback sees of it."""
from __future__ import annotations

import asyncio
import contextvars

where: contextvars.ContextVar[str] = contextvars.ContextVar("where", default="unset")


class Recorder(asyncio.Protocol):
    """Records ``(name, callback, where.get())`` at every callback, then sets
    ``where`` to ``"name:callback"``: which callback sees which value shows
    which of them share a copy of the context.

    ``set_in_factory=False`` leaves the factory's context alone (asyncio
    runs a client's factory in the caller's own task).  ``keep_open`` is
    what ``eof_received`` returns.  With ``echo``, data ending in ``b"!"`` is
    written back; whatever comes is put in ``inbox``."""

    def __init__(self, name, seen, lost=None, *, set_in_factory=True, keep_open=None,
                 echo=False):
        self.name = name
        self.echo = echo
        self.seen = seen
        self.lost = lost
        self.keep_open = keep_open
        self.transport = None
        self.inbox = asyncio.Queue()
        self.eof = asyncio.get_running_loop().create_future()
        self.note("factory", set_in_factory)

    def note(self, callback, set_where=True):
        self.seen.append((self.name, callback, where.get()))
        if set_where:
            where.set(f"{self.name}:{callback}")

    def connection_made(self, transport):
        self.transport = transport
        self.note("connection_made")

    def data_received(self, data):
        self.note("data_received")
        if self.echo and data.endswith(b"!"):
            self.transport.write(data)
        self.inbox.put_nowait(data)

    def eof_received(self):
        self.note("eof_received")
        self.eof.set_result(None)
        return self.keep_open

    def connection_lost(self, exc):
        self.note("connection_lost")
        if self.lost is not None:
            self.lost.set_result(exc)
