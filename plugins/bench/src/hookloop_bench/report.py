"""The results, for people and for programs: table, JSON, SVG plot.

* :func:`table`: one line per workload, one column per subject, each cell
  the median figure and its ratio to asyncio's loop, with a second line
  giving the spread (the largest distance from the median to the min or
  max, in percent); pairs without a figure show ``not run`` or ``FAILED``
  with the reasons listed under the table.
* :func:`machine`: what the figures depend on (CPUs, Python, kernel,
  versions), written into the JSON next to the settings and every row.
* :func:`plot`: a grouped bar chart of the ratios per workload (whiskers:
  min and max over asyncio's median), with matplotlib
  (``pip install 'hookloop-bench[plot]'``); without it :func:`check_plot`
  raises before anything is measured.

Never measures, never decides what to run.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
from collections.abc import Sequence
from typing import Any

from .progress import _figure
from .stats import Row
from .subjects import Subject
from .workloads import Settings, UsageError, Workload

PLOT_EXTRA = "pip install 'hookloop-bench[plot]'"


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):  # pragma: no cover - not POSIX
        return None


def busy_warning(info: dict[str, Any]) -> str | None:
    """A warning when other work keeps the machine busy (noisy figures)."""
    load = info.get("load_average")
    if load and load[0] > info["cpus_available"] / 2:
        return (f"warning: this machine is busy (load average {load[0]:.1f} on "
                f"{info['cpus_available']} CPUs): expect noisy figures")
    return None


def machine(load_generator: str) -> dict[str, Any]:
    """What the figures were measured on."""
    cpus = available_cpus()
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "cpus_available": cpus,
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "kernel": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "hookloop": _version("hookloop"),
        "hookloop_bench": _version("hookloop-bench"),
        "uvloop": _version("uvloop"),
        "load_generator": load_generator,
        "load_average": _load_average(),
    }
    if cpus < 4:
        info["note"] = (f"only {cpus} CPUs: the load processes share them with the loop "
                        "measured, so network figures are lower than on a bigger machine "
                        "and their ratios closer to 1")
    return info


def to_json(rows: Sequence[Row], subjects: Sequence[Subject], workloads: Sequence[Workload],
            settings: Settings, rounds: int, info: dict[str, Any]) -> dict[str, Any]:
    return {
        "machine": {**info, "load_average_after": _load_average()},
        "settings": {**settings.to_json(), "rounds": rounds},
        "subjects": [s.to_json() for s in subjects],
        "workloads": [{"name": w.name, "unit": w.unit, "description": w.description}
                      for w in workloads],
        "rows": [row.to_json() for row in rows],
    }


def write_json(path: str, data: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")


def _cells(row: Row) -> tuple[str, str]:
    if not row.ok:
        return ("FAILED" if (row.reason or "").startswith("failed") else "not run"), ""
    assert row.median is not None and row.min is not None and row.max is not None
    ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "-"
    spread = max(row.max - row.median, row.median - row.min) / row.median * 100
    return f"{_figure(row.median)} {ratio:>6}", f"±{spread:.0f}%" if len(row.rounds) > 1 else ""


def table(rows: Sequence[Row], subjects: Sequence[Subject],
          workloads: Sequence[Workload]) -> str:
    """The comparison table, as text (with the reasons for missing figures)."""
    by_key = {(r.subject, r.workload): r for r in rows}
    names = [s.name for s in subjects]
    width = max(17, *(len(n) + 2 for n in names))
    lines = ["figures are medians per second; ratio = median / asyncio's median "
             "(higher is faster); ± = spread of the rounds",
             f"{'workload':<17}{'unit':<15}" + "".join(f"{n:>{width}}" for n in names)]
    lines.append("-" * len(lines[-1]))
    notes: dict[str, list[str]] = {}
    for workload in workloads:
        first, second = [], []
        for name in names:
            row = by_key[name, workload.name]
            a, b = _cells(row)
            first.append(f"{a:>{width}}")
            second.append(f"{b:>{width}}")
            if not row.ok:
                notes.setdefault(str(row.reason), []).append(f"{workload.name} on {name}")
        lines.append(f"{workload.name:<17}{workload.unit:<15}" + "".join(first))
        if any(s.strip() for s in second):
            lines.append(" " * 32 + "".join(second))
    for reason, where in notes.items():
        lines.append(f"{reason}: {', '.join(where)}")
    return "\n".join(lines)


def check_plot(path: str | None) -> None:
    """Refuse ``--plot`` early when matplotlib is missing."""
    if path is not None and importlib.util.find_spec("matplotlib") is None:
        raise UsageError(f"--plot needs matplotlib, which is not installed: {PLOT_EXTRA}")


def plot(path: str, rows: Sequence[Row], subjects: Sequence[Subject],
         workloads: Sequence[Workload], title: str) -> None:
    """A bar chart of the ratios to asyncio, grouped by workload."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_key = {(r.subject, r.workload): r for r in rows}
    names = [s.name for s in subjects]
    width = max(8.0, min(16.0, 0.25 * len(workloads) * len(names)))
    fig, ax = plt.subplots(figsize=(width, 5))
    group = 0.8
    bar = group / max(1, len(names))
    for i, name in enumerate(names):
        xs, ys, low, high = [], [], [], []
        for k, workload in enumerate(workloads):
            row = by_key.get((name, workload.name))
            if row is not None and row.ratio is not None and row.median:
                assert row.min is not None and row.max is not None
                scale = row.ratio / row.median  # 1 / asyncio's median
                xs.append(k - group / 2 + (i + 0.5) * bar)
                ys.append(row.ratio)
                low.append(row.ratio - row.min * scale)
                high.append(row.max * scale - row.ratio)
        ax.bar(xs, ys, bar, yerr=[low, high], capsize=2, label=name,
               error_kw={"elinewidth": 0.6})
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(workloads)), [w.name for w in workloads], rotation=30, ha="right")
    ax.set_ylabel("throughput / asyncio's loop (higher is faster)")
    ax.set_title(title)
    ax.legend(ncols=min(len(names), 6), fontsize="small")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
