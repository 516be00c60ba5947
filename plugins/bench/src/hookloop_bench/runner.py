"""Running the plan: every (round, workload, subject), each in a fresh process.

Rounds are interleaved: round 1 measures every workload on every subject,
then round 2 does it all again, and so on, so a slow minute on a shared
machine spreads over all subjects instead of landing on one.  Within a
round the subjects' order rotates, so no subject always runs right after
the same neighbour.  A (subject, workload) pair that cannot run (see
:func:`hookloop_bench.subjects.not_run_reason`, or its measuring process
says so) is skipped with its reason; a measurement that fails is recorded
with the last line its process wrote to stderr.  Either way the pair is not
measured again.

The runner only starts processes and collects numbers; it never measures
anything in its own process, and never prints (the progress object does).
"""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .measure import job
from .network import GRACE
from .subjects import Subject, not_run_reason
from .workloads import Settings, Workload


@dataclass
class Cell:
    """Everything measured for one (subject, workload)."""

    values: list[float] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)
    #: "not run: ..." or "failed: ..." when there is no figure.
    reason: str | None = None
    failed: bool = False


class Progress(Protocol):
    """What the runner reports while it works (see :mod:`hookloop_bench.progress`)."""

    def start(self, total: int) -> None: ...

    def step(self, description: str) -> None: ...

    def done(self, description: str, cell: Cell, unit: str) -> None: ...

    def stop(self) -> None: ...


def run_one(subject: Subject, workload: Workload, settings: Settings
            ) -> tuple[float | None, dict[str, Any], str | None]:
    """One measurement in a fresh interpreter: (value, detail, reason), with
    a reason ("failed: ..." or "not run: ...") instead of a value."""
    argv = [sys.executable, "-m", "hookloop_bench.measure", job(subject, workload, settings)]
    try:
        # Twice the measurement's own deadline, so that its own (more
        # telling) error comes first, however slow the machine.
        out = subprocess.run(argv, capture_output=True, text=True,
                             timeout=2 * (settings.warmup + settings.seconds + GRACE))
    except subprocess.TimeoutExpired:
        return None, {}, "failed: timed out"
    if out.returncode:
        lines = out.stderr.strip().splitlines() or [f"exit status {out.returncode}"]
        return None, {}, f"failed: {lines[-1]}"
    try:
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if "not_run" in result:
            return None, {}, f"not run: {result['not_run']}"
        return float(result["value"]), dict(result["detail"]), None
    except (ValueError, KeyError, IndexError):
        return None, {}, f"failed: unreadable result {out.stdout.strip()[-200:]!r}"


def run(subjects: Sequence[Subject], workloads: Sequence[Workload], rounds: int,
        settings: Settings, progress: Progress) -> dict[tuple[str, str], Cell]:
    """Measure; the cells by (subject name, workload name)."""
    cells = {(s.name, w.name): Cell() for s in subjects for w in workloads}
    runnable = []
    for workload in workloads:
        for subject in subjects:
            reason = not_run_reason(subject, workload)
            if reason is not None:
                cells[subject.name, workload.name].reason = f"not run: {reason}"
            else:
                runnable.append((subject, workload))
    progress.start(rounds * len(runnable))
    try:
        for r in range(rounds):
            shift = r % len(subjects)
            order = [*subjects[shift:], *subjects[:shift]]
            for workload in workloads:
                for subject in order:
                    if (subject, workload) not in runnable:
                        continue
                    cell = cells[subject.name, workload.name]
                    where = f"round {r + 1}/{rounds}: {workload.name} on {subject.name}"
                    progress.step(where)
                    if cell.reason is None:
                        value, detail, reason = run_one(subject, workload, settings)
                        if reason is not None:
                            cell.failed = reason.startswith("failed")
                            cell.reason = reason
                        else:
                            assert value is not None
                            cell.values.append(value)
                            cell.detail = detail
                    progress.done(where, cell, workload.unit)
    finally:
        progress.stop()
    return cells
