"""``hookloop bench``: the options, and the run from arguments to table.

:func:`add_parser` declares the options (the plugin's
``hookloop_add_commands`` calls it); :func:`main` validates them all before
anything runs (a bad ``--workloads``, ``--subjects``, an unimportable
``module:factory``, ``--plot`` without matplotlib: one precise line and exit
status 2), then runs the plan (:mod:`hookloop_bench.runner`), prints the
table (:mod:`hookloop_bench.report`) and writes ``--json``/``--plot``.  The
exit status is 1 when any measurement failed its self-check.

``--quick`` makes everything small (one round of 0.05 s per measurement,
fewer connections) so that the whole matrix runs in CI in well under a
minute; explicit options still win over it.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from typing import Any

from . import report, runner, stats
from .progress import make_progress
from .subjects import select_subjects
from .workloads import WORKLOADS, Settings, UsageError, default_clients, select_workloads

FULL = {"rounds": 3, "seconds": 0.5, "connections": 50}
QUICK = {"rounds": 1, "seconds": 0.05, "connections": 10}


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
        return value
    return parse


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "bench", help="compare the installed backends with asyncio's loop (and uvloop)",
        description="Time workloads on every installed hookloop backend, asyncio's own loop, "
                    "uvloop when installed and any loop given as module:factory; each "
                    "measurement in a fresh process, rounds interleaved, warm-up discarded; "
                    "prints medians and their ratio to asyncio's loop.")
    p.add_argument("--quick", action="store_true",
                   help="everything small: 1 round of 0.05 s, 10 connections per client "
                        "(under a minute; CI runs it)")
    p.add_argument("--workloads", metavar="A,B",
                   help=f"only these workloads (default: all): {', '.join(WORKLOADS)}")
    p.add_argument("--subjects", metavar="A,B",
                   help="only these loops (asyncio, the hookloop backend names, uvloop, or "
                        "module:factory); asyncio's loop is always measured, as the baseline")
    p.add_argument("--rounds", type=_positive(int), metavar="N",
                   help=f"measured rounds per subject and workload (default {FULL['rounds']})")
    p.add_argument("--seconds", type=_positive(float), metavar="S",
                   help=f"counted seconds per measurement (default {FULL['seconds']}), after "
                        "a discarded warm-up of a third of that")
    p.add_argument("--clients", type=_positive(int), metavar="N",
                   help=f"load processes for network workloads (default {default_clients()}: "
                        "the CPUs but one, from 2 to 4)")
    p.add_argument("--connections", type=_positive(int), metavar="N",
                   help=f"connections per load process (default {FULL['connections']})")
    p.add_argument("--no-wrk", action="store_true",
                   help="use the in-repo load client for http even when wrk is on PATH")
    p.add_argument("--pin", action="store_true",
                   help="pin the measured server to one CPU and the load processes to the "
                        "others (steadier on a dedicated machine, worse on a shared one)")
    p.add_argument("--json", metavar="FILE", help="also write machine info and every row as JSON")
    p.add_argument("--plot", metavar="FILE.svg",
                   help="also draw the ratios per workload (needs hookloop-bench[plot])")
    p.add_argument("--plain", action="store_true", help="plain progress lines, no progress bar")
    p.set_defaults(func=main)
    return p


def settings_from(args: argparse.Namespace) -> tuple[Settings, int]:
    """The measurement settings and the number of rounds the options ask for."""
    base = QUICK if args.quick else FULL
    seconds = args.seconds or base["seconds"]
    settings = Settings(seconds=seconds, warmup=min(0.5, max(0.02, seconds / 3)),
                        clients=args.clients or default_clients(),
                        connections=int(args.connections or base["connections"]),
                        wrk=not args.no_wrk, pin=args.pin)
    return settings, int(args.rounds or base["rounds"])


def main(args: argparse.Namespace) -> int:
    try:
        workloads = select_workloads(args.workloads)
        subjects = select_subjects(args.subjects)
        report.check_plot(args.plot)
    except UsageError as exc:
        print(f"hookloop bench: {exc}", file=sys.stderr)
        return 2
    settings, rounds = settings_from(args)
    wrk = shutil.which("wrk") if settings.wrk else None
    load_generator = (f"{settings.clients} processes x {settings.connections} connections "
                      f"(in-repo client{'; wrk for http' if wrk else ''})")
    print(f"hookloop bench: {len(subjects)} subjects ({', '.join(s.name for s in subjects)}), "
          f"{len(workloads)} workloads, {rounds} round(s) of {settings.seconds:g} s, "
          f"load: {load_generator}, {report.available_cpus()} CPUs", file=sys.stderr)
    info = report.machine(load_generator)
    warning = report.busy_warning(info)
    if warning:
        print(warning, file=sys.stderr)
    started = time.monotonic()
    cells = runner.run(subjects, workloads, rounds, settings, make_progress(args.plain))
    rows = stats.summarize(subjects, workloads, cells)
    print(report.table(rows, subjects, workloads))
    print(f"{info['kernel']}, Python {info['python']}, {info['cpus_available']} CPUs; "
          f"took {time.monotonic() - started:.0f} s" + (f"; {info['note']}" if "note" in info
                                                        else ""))
    if args.json:
        report.write_json(args.json, report.to_json(rows, subjects, workloads, settings,
                                                    rounds, info))
    if args.plot:
        report.plot(args.plot, rows, subjects, workloads,
                    f"hookloop bench: {info['kernel']}, Python {info['python']}, "
                    f"{info['cpus_available']} CPUs")
    failed = [r for r in rows if (r.reason or "").startswith("failed")]
    return 1 if failed else 0
