"""The hookloop plugin ``bench``: adds ``hookloop bench`` to the command line.

Registered under the ``hookloop`` entry-point group; its only hook is
:func:`hookloop_add_commands`, called once per ``hookloop`` invocation.  It
must stay cheap to import (every ``hookloop`` command loads it): the bench
itself is imported only when the command runs.
"""
from __future__ import annotations

import argparse
from typing import Any

from hookloop import hookimpl

#: The hookloop plugin API this plugin is written for; a core that does not
#: support it refuses the plugin, naming both versions.
HOOKLOOP_API = 1


def _run(args: argparse.Namespace) -> int:
    from .cli import main
    return main(args)


@hookimpl
def hookloop_add_commands(subparsers: Any) -> None:
    """Add the ``bench`` subcommand."""
    from .cli import add_parser
    add_parser(subparsers).set_defaults(func=_run)
