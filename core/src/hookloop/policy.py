"""Entry points for programs: ``run()``, the policy, ``install()``.

New code passes a loop factory: ``asyncio.run(main(),
loop_factory=hookloop.new_event_loop)``, ``asyncio.Runner(loop_factory=...)``
or simply ``hookloop.run(main())``.  Code that still relies on event loop
policies (deprecated since Python 3.14) uses :class:`EventLoopPolicy` or
:func:`install`.  Nothing here is used once a loop runs.
"""
from __future__ import annotations

import asyncio
import functools
import sys
import threading
import warnings
from collections.abc import Coroutine
from typing import Any, TypeVar

from .assembly import new_event_loop
from .loop import EventLoop

__all__ = ["EventLoopPolicy", "install", "run"]

T = TypeVar("T")

with warnings.catch_warnings():
    # Python 3.14 deprecates the policy system, and warns on access.
    warnings.simplefilter("ignore", DeprecationWarning)
    _AbstractPolicy = asyncio.AbstractEventLoopPolicy


def run(main: Coroutine[Any, Any, T], *, backend: str | None = None,
        debug: bool | None = None) -> T:
    """Run a coroutine on a new hookloop loop, like ``asyncio.run``.

    :param backend: The poller backend; default as in
        :func:`hookloop.new_event_loop`.
    :param debug: Turn asyncio debug mode on or off (default: from the
        environment, as asyncio does).
    """
    factory = functools.partial(new_event_loop, backend)
    with asyncio.Runner(debug=debug, loop_factory=factory) as runner:
        return runner.run(main)


class EventLoopPolicy(_AbstractPolicy):
    """An event loop policy whose loops are hookloop loops.

    Behaves like asyncio's default policy: one current loop per thread, set
    with ``set_event_loop``; ``get_event_loop()`` makes one implicitly only
    in the main thread, and only on Pythons before 3.14 (as asyncio does).
    """

    def __init__(self, backend: str | None = None, **loop_options: Any) -> None:
        self._backend = backend
        self._loop_options = loop_options
        self._local = threading.local()

    def new_event_loop(self) -> EventLoop:
        return new_event_loop(self._backend, **self._loop_options)

    def get_event_loop(self) -> asyncio.AbstractEventLoop:
        loop: asyncio.AbstractEventLoop | None = getattr(self._local, "loop", None)
        if loop is None and not getattr(self._local, "set_called", False) \
                and threading.current_thread() is threading.main_thread() \
                and _implicit_loop_allowed():
            if sys.version_info >= (3, 12):
                warnings.warn("There is no current event loop", DeprecationWarning,
                              stacklevel=2)
            loop = self.new_event_loop()
            self.set_event_loop(loop)
        if loop is None:
            raise RuntimeError(
                f"There is no current event loop in thread {threading.current_thread().name!r}.")
        return loop

    def set_event_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        if loop is not None and not isinstance(loop, asyncio.AbstractEventLoop):
            raise TypeError(f"loop must be an instance of AbstractEventLoop or None, "
                            f"not '{type(loop).__name__}'")
        self._local.set_called = True
        self._local.loop = loop

    # Python < 3.14 asks policies for a child watcher; hookloop's subprocess
    # plugin watches children itself, so there is nothing to give.
    def get_child_watcher(self) -> Any:
        raise NotImplementedError("hookloop loops watch their children themselves")

    def set_child_watcher(self, watcher: Any) -> None:
        raise NotImplementedError("hookloop loops watch their children themselves")


def _implicit_loop_allowed() -> bool:
    return sys.version_info < (3, 14)


def install(backend: str | None = None) -> EventLoopPolicy:
    """Make hookloop the event loop policy of this process and return it."""
    policy = EventLoopPolicy(backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_event_loop_policy(policy)
    return policy
