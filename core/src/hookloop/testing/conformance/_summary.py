"""The CPython conformance run's closing summary, where pytest prints it.

A plugin object the kit's pytest plugin registers in every session
(:func:`register`): with pytest-xdist, the controller prints the terminal
summary but collects nothing, so the numbers come to it in the reports
(and, for what collection deselected, in ``workeroutput``).

What it shows:

* per target, how many conformance tests ran (skipped ones not counted) and
  how many of them ran a hookloop loop, with the number of loops made.  Each
  conformance test's call report carries ``(LOOPS_PROPERTY, (target, made))``
  in its ``user_properties`` (the harness counts the loops with a hookloop
  plugin; xdist ships user_properties to the controller);
* per target, how many tests were deselected because they need a plugin that
  is not installed.  Those never run, so no report carries them: each worker
  (or the single process) puts its collection's counts into
  ``config.workeroutput``, which xdist hands to the controller in
  ``pytest_testnodedown``.  Every worker collects the same tests, so the
  first one's counts are the run's.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

PLUGIN_NAME = "hookloop-conformance-summary"
# A conformance test's call report: user_properties entry (LOOPS_PROPERTY, (target, made)).
LOOPS_PROPERTY = "hookloop_conformance_loops"
MISSING_OUTPUT = "hookloop_conformance_missing"
VIRTUAL = "virtual_time"

_missing_key = pytest.StashKey["Counter[tuple[str, str, str]]"]()


def register(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin(PLUGIN_NAME):
        config.pluginmanager.register(_Summary(config), PLUGIN_NAME)


def missing_services(config: pytest.Config) -> Counter[tuple[str, str, str]]:
    """The counter that collection fills: (target, kind, distribution) -> deselected tests."""
    return config.stash.setdefault(_missing_key, Counter())


class _Summary:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.ran: dict[str, list[int]] = {}  # target -> [tests ran, on a hookloop loop, loops]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call" or (report.skipped and not hasattr(report, "wasxfail")):
            return
        for name, value in report.user_properties:
            if name == LOOPS_PROPERTY:
                target: str
                made: int
                target, made = value  # type: ignore[misc]  # (str, int), as put there
                tally = self.ran.setdefault(target, [0, 0, 0])
                tally[0] += 1
                tally[1] += made > 0
                tally[2] += made

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:  # an xdist worker
            workeroutput[MISSING_OUTPUT] = [
                [*key, count] for key, count in missing_services(self.config).items()]

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        missing = missing_services(self.config)
        found = getattr(node, "workeroutput", {}).get(MISSING_OUTPUT)
        if found and not missing:
            for *key, count in found:
                missing[tuple(key)] = count

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.ran:
            terminalreporter.section("CPython conformance: tests that ran a hookloop loop")
            width = max(len(t) for t in self.ran)
            for target, (ran, on_ours, loops) in sorted(self.ran.items()):
                note = ""
                if target == VIRTUAL:
                    note = " (asyncio's virtual-time TestLoop: run once, not per backend)"
                terminalreporter.write_line(
                    f"{target:<{width}}  {ran:5d} tests ran, {on_ours:5d} of them on a "
                    f"hookloop loop ({loops} loops made){note}")
        missing = missing_services(self.config)
        if missing:
            terminalreporter.section("CPython conformance: tests needing a missing plugin")
            for (target, kind, distribution), count in sorted(missing.items()):
                terminalreporter.write_line(
                    f"{target}: {count} {kind} tests deselected ({distribution} is not installed)")
