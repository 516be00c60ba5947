"""The ``hookloop`` command line.

Subcommands come from plugins through the ``hookloop_add_commands`` hook;
the core's own (``plugins``) is added by the builtin plugin
:mod:`hookloop.builtins.commands` through that same hook.  Parsing happens
after assembly, so a broken plugin is reported as such, not as a traceback.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .assembly import plugin_manager
from .errors import HookloopError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hookloop", description="hookloop: an asyncio event loop made of plugins")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    plugin_manager().hook.hookloop_add_commands(subparsers=subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
    except HookloopError as exc:
        print(f"hookloop: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except HookloopError as exc:
        print(f"hookloop {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
