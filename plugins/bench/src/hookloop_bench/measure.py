"""One measurement, in a fresh process: ``python -m hookloop_bench.measure JOB``.

``JOB`` is JSON: the subject, the workload's name and the settings.  This
process makes the subject's loop, runs the workload's discarded warm-up and
then its counted run, and prints one JSON line: ``{"value": rate,
"detail": {...}}``.  A workload whose self-check fails (an echo differs, a
cancelled timer fires, a child's exit status is wrong, the server's counters
disagree with the clients') exits with status 1 and the reason as the last
line of stderr; the runner turns that into a failed row, never a figure.  A
workload that cannot run here (its framework cannot be imported) prints
``{"not_run": reason}`` instead and exits with status 0: not the loop's
doing, so nothing failed.

A fresh process per measurement means one subject's garbage, caches and
imports cannot help or hurt another.  This module must never run two
measurements in one process, and imports only what the subject needs (no
hookloop for asyncio's own loop).
"""
from __future__ import annotations

import json
import sys
import traceback
from typing import Any

from . import scheduling, spawn
from .subjects import Subject, make_loop
from .workloads import WORKLOADS, NotRunnable, Settings, Workload


def measure(subject: Subject, workload: Workload, settings: Settings
            ) -> tuple[float, dict[str, Any]]:
    """The figure of ``workload`` on ``subject`` (and details for the JSON)."""
    factory = make_loop(subject)
    if workload.name == "loop_creation":
        def batch_creation(n: int) -> float:
            return scheduling.loop_creation(factory, n)
        rate = scheduling.timed(batch_creation, lambda n: n, settings.seconds,
                                settings.warmup, first=20)
        return rate, {}
    loop = factory()
    try:
        if workload.kind == "network":
            from . import network
            outcome = network.run(loop, workload, settings)
            return outcome.rate, outcome.detail
        if workload.kind == "process":
            rate = scheduling.timed(lambda n: spawn.spawn(loop, n), spawn.count,
                                    settings.seconds, settings.warmup, first=8)
            return rate, {}
        batch = {"call_soon": scheduling.call_soon, "task_steps": scheduling.task_steps,
                 "timers": scheduling.timers}[workload.name]
        rate = scheduling.timed(lambda n: batch(loop, n),
                                lambda n: scheduling.operations(workload.name, n),
                                settings.seconds, settings.warmup)
        return rate, {}
    finally:
        loop.close()


def job(subject: Subject, workload: Workload, settings: Settings) -> str:
    """The command-line argument for one measurement."""
    return json.dumps({"subject": subject.to_json(), "workload": workload.name,
                       "settings": settings.to_json()})


def main(argv: list[str]) -> int:
    spec = json.loads(argv[1])
    subject = Subject(**spec["subject"])
    workload = WORKLOADS[spec["workload"]]
    settings = Settings.from_json(spec["settings"])
    try:
        value, detail = measure(subject, workload, settings)
    except NotRunnable as exc:
        print(json.dumps({"not_run": str(exc)}))
        return 0
    except Exception as exc:  # any failure voids the measurement; say which
        traceback.print_exc()
        message = str(exc).strip().replace("\n", " ") or "(no message)"
        print(f"{type(exc).__name__}: {message}", file=sys.stderr)
        return 1
    print(json.dumps({"value": value, "detail": detail}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
