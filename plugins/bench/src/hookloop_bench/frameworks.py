"""The framework workloads' servers: an aiohttp app and a uvicorn ASGI app,
on the measured loop.

``aiohttp_http`` and ``uvicorn_asgi`` are the ``http`` workload with its
server written the way a framework user writes it, so that the table shows
what such a user gets from a loop, not only echo figures.  Everything else
is ``http``'s (:func:`hookloop_bench.network.run`): the listening socket,
the load (the in-repo clients, or ``wrk``), the settings, the fresh process
and the checks.  Each app answers ``GET <target>`` with 200 and the body
naming the target (:func:`hookloop_bench.load.http_body`), which the clients
check for every request; the framework adds its own headers (Date, Server).

* **aiohttp**: a ``web.Application`` with one GET route (any path), run by
  ``web.AppRunner`` (access log off, no signal handling) and a
  ``web.SockSite`` on the bench's socket.
* **uvicorn**: ``uvicorn.Server(uvicorn.Config(app, ...)).serve(sockets=[sock])``
  awaited on the measured loop, never ``uvicorn.run`` (which makes a loop
  of its own): ``loop="none"`` (no loop factory, no policy), no lifespan,
  no logging configuration, access log off, and its signal capture left
  out, so the process keeps its own SIGINT/SIGTERM handlers.  The HTTP
  protocol is uvicorn's ``auto`` choice (httptools when installed, else
  h11), named in the JSON.

So that ``http``'s checks hold for them too, this module counts into the
:class:`~hookloop_bench.network.ServerStats` every connection the
framework's protocol makes and loses (through the notifications of
aiohttp's ``web.Server``; through a subclass of uvicorn's protocol class,
given as ``Config(http=...)``) and every request answered; every warning or
error the framework logs (an exception in a handler, a protocol error)
voids the measurement, as the loop's exception handler does; and each
request checks that it is served on the measured loop.

The framework is imported in the measuring process only, and only for its
own workload: :func:`server` raises
:class:`~hookloop_bench.workloads.NotRunnable` ("install aiohttp") when it
cannot be (or for a uvicorn older than 0.29, whose ``serve()`` sets signal
handlers on the loop).
"""
from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any, cast

from .network import ServerStats, WorkloadError
from .workloads import NotRunnable, Workload, install_hint

#: A framework workload's server: entered with the stats, the listening
#: socket and its backlog, it serves until left; it yields details for the JSON.
Serving = Callable[[ServerStats, socket.socket, int],
                   AbstractAsyncContextManager[dict[str, Any]]]
#: Seconds uvicorn keeps an idle keep-alive connection open: aiohttp's
#: default, so that a client a starved machine did not run for uvicorn's own
#: 5 s does not find its connection closed.
KEEP_ALIVE = 75
#: The modules each framework workload imports first.
MODULES = {"aiohttp": ["aiohttp", "aiohttp.web"], "uvicorn": ["uvicorn"]}


def server(workload: Workload) -> Serving:
    """The server of a framework workload, its framework imported.

    :raises NotRunnable: the framework cannot be imported.
    """
    try:
        for module in MODULES[workload.framework]:
            importlib.import_module(module)
    except ImportError as exc:
        reason = install_hint(workload.framework)
        if exc.name != workload.framework:  # installed, but something it needs is not
            reason += f"; importing it failed: {exc}"
        raise NotRunnable(reason) from None
    if workload.framework == "uvicorn" and not hasattr(sys.modules["uvicorn"].Server,
                                                       "capture_signals"):
        # Before 0.29 serve() put its signal handlers on the loop itself.
        raise NotRunnable("install uvicorn 0.29 or later (an older one's serve() "
                          "sets signal handlers on the loop)")
    servers: dict[str, Serving] = {"aiohttp": aiohttp_server, "uvicorn": uvicorn_server}
    return servers[workload.framework]


class _LoggedErrors(logging.Handler):
    """Every warning or error a framework logs, as one of the server's errors."""

    def __init__(self, stats: ServerStats) -> None:
        super().__init__(logging.WARNING)
        self.stats = stats

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        self.stats.errors.append(f"{record.name} logged {record.getMessage()!r}"
                                 + (f": {exc!r}" if exc is not None else ""))


@contextlib.contextmanager
def _logged_errors(stats: ServerStats, logger_name: str) -> Iterator[None]:
    logger = logging.getLogger(logger_name)
    handler = _LoggedErrors(stats)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def _on_measured_loop(stats: ServerStats) -> None:
    if asyncio.get_running_loop() is not stats.loop:
        raise WorkloadError("a request was served on a loop other than the measured one")


# -- aiohttp ----------------------------------------------------------------

def _count_aiohttp_connections(manager: Any, stats: ServerStats) -> None:
    """Count the connections of ``manager``, aiohttp's ``web.Server``: each
    connection's ``RequestHandler`` tells it of being made and lost (the
    handlers have ``__slots__``, so the manager's two notifications are
    wrapped, on this instance)."""
    made, lost = manager.connection_made, manager.connection_lost

    def connection_made(handler: Any, transport: asyncio.Transport) -> None:
        made(handler, transport)
        stats.made_one(handler)

    def connection_lost(handler: Any, exc: BaseException | None = None) -> None:
        lost(handler, exc)
        stats.lost_one(handler, exc)

    manager.connection_made = connection_made
    manager.connection_lost = connection_lost


@contextlib.asynccontextmanager
async def aiohttp_server(stats: ServerStats, sock: socket.socket,
                         backlog: int) -> AsyncIterator[dict[str, Any]]:
    """An aiohttp ``web.Application`` on ``sock``: ``GET /<anything>``
    answered with a short text body."""
    import aiohttp
    from aiohttp import web

    async def hello(request: web.Request) -> web.Response:
        _on_measured_loop(stats)
        return web.Response(body=stats.answer(request.raw_path.encode("latin-1")),
                            content_type="text/plain")

    app = web.Application()
    app.router.add_get("/{target:.*}", hello)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    with _logged_errors(stats, "aiohttp"):
        await runner.setup()
        try:
            assert runner.server is not None
            _count_aiohttp_connections(runner.server, stats)
            await web.SockSite(runner, sock, backlog=backlog).start()
            yield {"framework": f"aiohttp {aiohttp.__version__}"}
        finally:
            await runner.cleanup()


# -- uvicorn ----------------------------------------------------------------
#
# The two subclasses below are made with type(): a class statement on a base
# that is Any where uvicorn is not installed would not type-check there.

@contextlib.contextmanager
def _no_signal_capture(server: Any) -> Iterator[None]:
    """``uvicorn.Server.capture_signals`` for the bench: none (``serve()``
    would put its own SIGINT/SIGTERM handlers on the process for the run)."""
    yield


def _counted(base: type[asyncio.Protocol], stats: ServerStats) -> type[asyncio.Protocol]:
    """A subclass of uvicorn's HTTP protocol class ``base`` counting its connections."""
    def connection_made(self: asyncio.Protocol, transport: asyncio.BaseTransport) -> None:
        base.connection_made(self, transport)
        stats.made_one(self)

    def connection_lost(self: asyncio.Protocol, exc: Exception | None) -> None:
        base.connection_lost(self, exc)
        stats.lost_one(self, exc)

    return cast(type[asyncio.Protocol],
                type(f"Counted{base.__name__}", (base,),
                     {"connection_made": connection_made, "connection_lost": connection_lost}))


@contextlib.asynccontextmanager
async def uvicorn_server(stats: ServerStats, sock: socket.socket,
                         backlog: int) -> AsyncIterator[dict[str, Any]]:
    """uvicorn serving a minimal ASGI app on ``sock``, on the running loop:
    any ``GET`` answered with a short text body."""
    import uvicorn
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    async def app(scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]],
                  send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        if scope["type"] != "http":  # lifespan is off: nothing else comes
            raise WorkloadError(f"unexpected ASGI scope type {scope['type']!r}")
        _on_measured_loop(stats)
        body = stats.answer(scope.get("raw_path") or scope["path"].encode("latin-1"))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"),
                                (b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})

    config = uvicorn.Config(app, loop="none", http=_counted(AutoHTTPProtocol, stats),
                            lifespan="off", log_config=None, access_log=False,
                            backlog=backlog, timeout_keep_alive=KEEP_ALIVE)
    server_class = type("Server", (uvicorn.Server,), {"capture_signals": _no_signal_capture})
    serving = cast(uvicorn.Server, server_class(config))
    with _logged_errors(stats, "uvicorn"):
        task = stats.loop.create_task(serving.serve(sockets=[sock]))
        try:
            while not serving.started:  # uvicorn says nothing else when it has started
                if task.done():
                    task.result()
                    raise WorkloadError("uvicorn's server stopped before it started")
                await asyncio.sleep(0.005)
            yield {"framework": f"uvicorn {uvicorn.__version__}",
                   "http": AutoHTTPProtocol.__name__}
        finally:
            serving.should_exit = True  # its main loop sees it within 0.1 s
            await task
