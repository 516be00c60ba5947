"""The catalogue of workloads and the settings one measurement runs with.

This module only *describes*: each :class:`Workload` has a name (what
``--workloads`` takes), the unit of its figure (always a rate, so higher is
better and a ratio above 1 means faster than asyncio's loop), what it does,
which kind of code runs it, which loop service it needs beyond the basics
(``tls``, ``subprocess``) and which web framework its server is written with
(``aiohttp``, ``uvicorn``), so the runner can say "not run" instead of
failing when a hookloop subject lacks the plugin or the framework is not
installed.  The code that runs a workload is in
:mod:`hookloop_bench.scheduling`, :mod:`hookloop_bench.network` (with
:mod:`hookloop_bench.frameworks`) and :mod:`hookloop_bench.spawn`;
:mod:`hookloop_bench.measure` dispatches.

It must never import a loop, a plugin, a framework or the load generator:
the parent process reads it to parse arguments and print tables.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any


class UsageError(Exception):
    """A bad command-line argument; the message names it (exit status 2)."""


class NotRunnable(Exception):
    """The workload cannot run here (its framework cannot be imported): the
    row says "not run" with the message, and nothing failed."""


def install_hint(framework: str) -> str:
    """The reason a framework workload is not run without ``framework``."""
    return f"install {framework} (pip install 'hookloop-bench[frameworks]')"


@dataclass(frozen=True)
class Workload:
    """One thing the bench measures."""

    name: str
    unit: str
    #: ``scheduling`` (no I/O), ``network`` (a server on the measured loop,
    #: load from other processes) or ``process`` (child processes).
    kind: str
    description: str
    #: The loop service it needs beyond scheduling and sockets, if any.
    needs: str | None = None
    #: For ``network``: the load generator's protocol and message size.
    load: str = ""
    size: int = 0
    #: For ``network``: at most this many connections per load process
    #: (``--connections`` beyond it is ignored); 0 for no cap.
    max_connections: int = 0
    #: For the framework workloads: the module the server is written with;
    #: not run where it cannot be imported.
    framework: str = ""

    def connections(self, settings: Settings) -> int:
        """Connections (or handshake slots, or UDP sockets) per load process."""
        if self.max_connections:
            return min(settings.connections, self.max_connections)
        return settings.connections


WORKLOADS: dict[str, Workload] = {w.name: w for w in [
    Workload("call_soon", "callbacks/s", "scheduling",
             "100 chains of call_soon callbacks, each scheduling the next"),
    Workload("task_steps", "steps/s", "scheduling",
             "100 tasks each looping on await asyncio.sleep(0)"),
    Workload("timers", "timers/s", "scheduling",
             "per step a 30 s timeout armed and cancelled, then call_later(0, next)"),
    Workload("loop_creation", "loops/s", "scheduling",
             "new event loops created and closed, after the first"),
    Workload("tcp_echo_1k", "round trips/s", "network",
             "echo server Protocol, 1 KiB messages, one in flight per connection",
             load="echo", size=1024),
    Workload("tcp_echo_64k", "round trips/s", "network",
             "echo server Protocol, 64 KiB messages, one in flight per connection",
             load="echo", size=64 * 1024),
    Workload("streams_echo", "round trips/s", "network",
             "asyncio.start_server handler: readexactly/write/drain, 1 KiB messages",
             load="echo", size=1024),
    Workload("http", "requests/s", "network",
             "minimal HTTP/1.1 keep-alive server Protocol, one request in flight "
             "per connection (wrk when on PATH)", load="http"),
    # What a framework user gets: the same load and checks as http, the
    # server written with the framework (see hookloop_bench.frameworks).
    Workload("aiohttp_http", "requests/s", "network",
             "aiohttp web.Application, one GET route answering a short body, run by "
             "web.AppRunner + web.SockSite; http's load and checks",
             load="http", framework="aiohttp"),
    Workload("uvicorn_asgi", "requests/s", "network",
             "uvicorn.Server(uvicorn.Config(app)).serve() of a minimal ASGI app, access "
             "log off; http's load and checks", load="http", framework="uvicorn"),
    Workload("udp_echo", "round trips/s", "network",
             "datagram endpoint echoing 1 KiB datagrams to many client sockets",
             load="udp", size=1024),
    Workload("tls_echo", "round trips/s", "network",
             "echo server Protocol over TLS (ssl=, a trustme certificate), 1 KiB",
             needs="tls", load="echo", size=1024),
    Workload("tls_echo_64k", "round trips/s", "network",
             "echo server Protocol over TLS (ssl=, a trustme certificate), 64 KiB",
             needs="tls", load="echo", size=64 * 1024),
    # Each slot: connect, full TLS handshake (no session resumption), one
    # checked 64-byte echo, close_notify both ways, close; then again.  A
    # handshake costs the clients about as much CPU as the server, so more
    # slots only queue up in the accept backlog: 16 per process keep the
    # server busy.
    Workload("tls_handshakes", "handshakes/s", "network",
             "echo server Protocol over TLS: connect, handshake, one 64-byte echo, "
             "close, again; at most 16 connections per load process",
             needs="tls", load="handshake", size=64, max_connections=16),
    Workload("subprocess_spawn", "spawns/s", "process",
             "asyncio.create_subprocess_exec of true/false and wait(), 4 at a time",
             needs="subprocess"),
]}


def select_workloads(spec: str | None) -> list[Workload]:
    """The workloads named in ``spec`` (comma-separated), in catalogue order;
    all of them for ``None``.  An unknown name raises :class:`UsageError`."""
    if spec is None:
        return list(WORKLOADS.values())
    names = [name.strip() for name in spec.split(",") if name.strip()]
    unknown = [name for name in names if name not in WORKLOADS]
    if unknown or not names:
        raise UsageError(f"--workloads: unknown workload(s) {', '.join(unknown) or repr(spec)}; "
                         f"choose from {', '.join(WORKLOADS)}")
    return [w for w in WORKLOADS.values() if w.name in names]


def default_clients() -> int:
    """Load processes for the network workloads: one per CPU but the one the
    measured loop needs, at least two, and no more than four (four clients
    outrun one Python server core; more only add scheduling noise)."""
    return min(4, max(2, (os.cpu_count() or 2) - 1))


@dataclass(frozen=True)
class Settings:
    """How long and how hard one measurement runs (the same for every subject)."""

    #: Seconds counted; the figure is the rate over them.
    seconds: float = 0.5
    #: Seconds run before the counted ones, in the same process, discarded.
    warmup: float = 0.15
    #: Load processes for the network workloads.
    clients: int = 2
    #: Connections (or UDP sockets) per load process.
    connections: int = 50
    #: Use ``wrk`` for the http workload when it is on PATH.
    wrk: bool = True
    #: Server on one CPU, load processes on the others (where possible).
    pin: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Settings:
        return cls(**data)
