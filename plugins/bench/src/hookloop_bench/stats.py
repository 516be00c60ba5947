"""From measured values to rows: median, min, max, and the ratio to asyncio.

Each (subject, workload) becomes one :class:`Row`.  The figure is the
median of the rounds (robust to one slow round on a shared machine), shown
with the min and max so the spread is visible; the ratio is the subject's
median over asyncio's median for the same workload, so 1.50 means 50 % more
work per second than asyncio's own loop.  Every figure is a rate, so higher
is always better.  A pair without a figure keeps its reason ("not run: ..."
or "failed: ...") and has no statistics.

Pure functions only: no I/O, no clock.
"""
from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .runner import Cell
from .subjects import Subject
from .workloads import Workload

BASELINE = "asyncio"


@dataclass(frozen=True)
class Row:
    """One (subject, workload) of the results."""

    subject: str
    workload: str
    unit: str
    median: float | None = None
    min: float | None = None
    max: float | None = None
    ratio: float | None = None
    rounds: list[float] = field(default_factory=list)
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.median is not None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def summarize(subjects: Sequence[Subject], workloads: Sequence[Workload],
              cells: Mapping[tuple[str, str], Cell]) -> list[Row]:
    """Rows in table order: workload by workload, subjects in the given order."""
    rows = []
    for workload in workloads:
        base = cells.get((BASELINE, workload.name))
        base_median = (statistics.median(base.values)
                       if base is not None and base.values and not base.failed else None)
        for subject in subjects:
            cell = cells[subject.name, workload.name]
            if cell.failed or not cell.values:
                rows.append(Row(subject.name, workload.name, workload.unit,
                                rounds=list(cell.values),
                                reason=cell.reason or "not run: no round completed"))
                continue
            median = statistics.median(cell.values)
            rows.append(Row(subject.name, workload.name, workload.unit, median=median,
                            min=min(cell.values), max=max(cell.values),
                            ratio=median / base_median if base_median else None,
                            rounds=list(cell.values), detail=dict(cell.detail)))
    return rows
