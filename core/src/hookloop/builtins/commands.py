"""Builtin plugin ``commands``: the core's ``hookloop`` subcommands.

* ``hookloop plugins``: installed plugins, their versions and hooks, and the
  poller backends (available or not, and which one is the default).
* ``hookloop demo``: runs small scheduling workloads on every installed
  backend and on asyncio's own loop, each in a fresh process, and prints the
  ratios.  The ``hookloop-bench`` plugin's ``bench`` command supersedes it.
"""
from __future__ import annotations

import argparse
from typing import Any

from ..hookspecs import hookimpl


def _cmd_plugins(args: argparse.Namespace) -> int:
    from ..assembly import get_backend, list_backends, plugin_infos
    print("plugins:")
    for info in plugin_infos():
        origin = "builtin" if info.builtin else info.distribution
        print(f"  {info.name:<12} {origin} {info.version}")
        print(f"  {'':<12} hooks: {', '.join(info.hooks) or '(none)'}")
    try:
        default = get_backend().name
    except Exception as exc:  # no backend at all: say so, do not crash
        default = f"none ({exc})"
    print("backends:")
    for backend in list_backends():
        state = "available" if backend.available else f"unavailable: {backend.unavailable}"
        mark = "  (default)" if backend.name == default else ""
        print(f"  {backend.name:<12} priority {backend.priority:<4} {state}{mark}")
    print(f"default backend: {default}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import main
    return main(args)


@hookimpl(trylast=True)
def hookloop_add_commands(subparsers: Any) -> None:
    p = subparsers.add_parser("plugins", help="list installed plugins and backends")
    p.set_defaults(func=_cmd_plugins)
    p = subparsers.add_parser(
        "demo", help="time scheduling and network workloads on each backend and on asyncio's loop")
    p.add_argument("--rounds", type=int, default=3, help="runs per subject and workload")
    p.add_argument("--scale", type=float, default=1.0, help="multiply the workload sizes")
    p.add_argument("--workloads", metavar="A,B", help="only these workloads (default: all)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.set_defaults(func=_cmd_demo)
