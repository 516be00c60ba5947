"""Progress while the bench runs: a rich progress bar, or plain lines.

With rich installed (``pip install 'hookloop-bench[rich]'``) a bar on
stderr shows how many measurements are done, the one running and the time
elapsed; without it each measurement prints one line to stderr as it ends.
Both go to stderr so stdout carries only the table.  Nothing here may
influence a measurement: the bar refreshes from its own thread only while
the parent waits for a measuring process.
"""
from __future__ import annotations

import sys
from typing import Any, TextIO

from .runner import Cell


def _figure(value: float) -> str:
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.2f}{suffix}"
    return f"{value:.1f}"


def _outcome(cell: Cell, unit: str) -> str:
    if cell.reason is not None:  # failed, or not run
        return cell.reason
    return f"{_figure(cell.values[-1])} {unit}" if cell.values else "-"


class PlainProgress:
    """``[ 3/40] round 1/3: timers on epoll: 1.23M timers/s`` per measurement."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.total = 0
        self.count = 0

    def start(self, total: int) -> None:
        self.total = total

    def step(self, description: str) -> None:
        pass

    def done(self, description: str, cell: Cell, unit: str) -> None:
        self.count += 1
        width = len(str(self.total))
        print(f"[{self.count:>{width}}/{self.total}] {description}: {_outcome(cell, unit)}",
              file=self.stream, flush=True)

    def stop(self) -> None:
        pass


class RichProgress:
    """A rich progress bar on stderr."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        self.console = Console(stderr=True)
        self.bar = Progress(SpinnerColumn(), TextColumn("[bold]bench"), BarColumn(),
                            MofNCompleteColumn(), TimeElapsedColumn(),
                            TextColumn("{task.description}"), console=self.console,
                            transient=False)
        self.task: Any = None

    def start(self, total: int) -> None:
        self.bar.start()
        self.task = self.bar.add_task("", total=total)

    def step(self, description: str) -> None:
        self.bar.update(self.task, description=description)

    def done(self, description: str, cell: Cell, unit: str) -> None:
        if cell.failed:
            self.bar.console.print(f"[red]{description}: {cell.reason}")
        self.bar.update(self.task, advance=1, description=f"{description}: "
                        f"{_outcome(cell, unit)}")

    def stop(self) -> None:
        self.bar.update(self.task, description="done")
        self.bar.stop()


def make_progress(plain: bool = False) -> PlainProgress | RichProgress:
    """Rich's bar when rich is installed (and not ``plain``), else lines."""
    if not plain:
        try:
            return RichProgress()
        except ImportError:
            pass
    return PlainProgress()
