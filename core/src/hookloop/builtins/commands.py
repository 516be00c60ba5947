"""Builtin plugin ``commands``: the core's ``hookloop`` subcommands.

* ``hookloop plugins``: installed plugins, their versions and hooks, and the
  poller backends (available or not, and which one is the default).

``hookloop bench`` is not the core's: the ``hookloop-bench`` plugin adds it
through the same hook.
"""
from __future__ import annotations

import argparse
from typing import Any

from hookloop import get_backend, hookimpl, list_backends, plugin_infos


def _cmd_plugins(args: argparse.Namespace) -> int:
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


@hookimpl(trylast=True)
def hookloop_add_commands(subparsers: Any) -> None:
    p = subparsers.add_parser("plugins", help="list installed plugins and backends")
    p.set_defaults(func=_cmd_plugins)
