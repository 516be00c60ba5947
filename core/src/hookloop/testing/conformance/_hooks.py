"""The conformance run's pytest hooks: what test_cpython_asyncio.py cannot do itself.

Registered by the kit's pytest plugin (:mod:`hookloop.testing.plugin`, loaded
in every pytest session through the ``pytest11`` entry point), so they are
there however the suites are collected (``--pyargs
hookloop.testing.conformance``, a path, an xdist worker).  Each hook acts on
the generated conformance classes only (they carry ``_hookloop_backend``) and
leaves every other test alone.

* ``--hookloop-backend=NAME`` (added by the ``hookloop.testing`` plugin, when
  installed): the generated classes exist for every installed backend because
  they are made at import time, before options are at hand; here the other
  backends' tests are deselected.  The baseline target ("asyncio") is kept,
  since it is only there when asked for (HOOKLOOP_CONFORMANCE_BASELINE=1).
* ``KNOWN_INCOMPATIBLE``: each generated class lists, in
  ``_hookloop_known_incompatible``, its tests that cannot pass on a
  third-party loop; they get ``xfail(strict=True)`` with the reason.
* Tests that need a service no installed plugin provides (TLS, subprocesses;
  ``NEEDS_SERVICE`` in the test module): each generated class lists them in
  ``_hookloop_needs_missing_service``; they are deselected (not skipped, not
  xfailed, never counted as passes), and the terminal summary says, per
  target, how many were deselected for which missing distribution.
* Stalled classes (``*_stall__*``, the scheduling suites run with stall
  injection): a failed test's report gets a section with the seed and the
  command that replays it.
* What ran on our loop: each test's report carries its target and how many
  hookloop loops its run made (the harness counts them with a plugin; see
  "Counting what ran on our loop" in test_cpython_asyncio.py).  A
  virtual-time test that made one, or a REAL_LOOP_IN_VIRTUAL_CLASS test that
  made none, fails, saying which list is wrong.  The terminal summary
  (:mod:`._summary`, a plugin so that the xdist controller has it too)
  prints, per target, how many tests ran and how many of them ran a
  hookloop loop, and how many were deselected for a missing plugin.
* SIGINT (only once conformance tests were collected): test_runners
  interrupts itself with ``_thread.interrupt_main()`` and expects
  ``asyncio.Runner`` to turn that into a cancellation, which Runner only
  does when SIGINT has Python's default handler.  A process
  started in the background by a non-interactive shell (``cmd &``, some CI
  runners) inherits SIGINT *ignored*, and those tests then hang forever on
  every loop, asyncio's own included.  So the default handler is put back
  for the session, as an interactive ``python -m test`` would have it.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Generator
from typing import Any

import pytest

from ._summary import LOOPS_PROPERTY, VIRTUAL, missing_services

# Targets kept whatever --hookloop-backend says: asyncio's loop (only there
# when asked for) and the virtual-time tests, which run no backend's loop.
ALWAYS_KEPT = {"asyncio", VIRTUAL}


def _default_sigint() -> None:
    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL)):
        signal.signal(signal.SIGINT, signal.default_int_handler)


# trylast: after -k/-m deselection, so the missing-plugin counts cover only what was asked for.
@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = config.getoption("hookloop_backend", default=None)
    if isinstance(wanted, (list, tuple)):
        wanted = set(wanted) or None
    elif wanted:
        wanted = {n.strip() for n in str(wanted).split(",") if n.strip()}
    keep, drop = [], []
    missing = missing_services(config)
    conformance = False
    for item in items:
        cls = getattr(item, "cls", None)
        backend = getattr(cls, "_hookloop_backend", None)
        if backend is None:
            keep.append(item)
            continue
        conformance = True
        if wanted and backend not in ALWAYS_KEPT and backend not in wanted:
            drop.append(item)
            continue
        needs = getattr(cls, "_hookloop_needs_missing_service", {}).get(item.name)
        if needs is not None:
            kind, distribution, _ = needs
            missing[backend, kind, distribution] += 1
            drop.append(item)
            continue
        reason = getattr(cls, "_hookloop_known_incompatible", {}).get(item.name)
        if reason is not None:
            item.add_marker(pytest.mark.xfail(reason=reason, strict=True))
        keep.append(item)
    if wanted and conformance:
        present = {getattr(getattr(i, "cls", None), "_hookloop_backend", None) for i in keep + drop}
        if not wanted & present:
            raise pytest.UsageError(
                f"--hookloop-backend={','.join(sorted(wanted))}: the CPython conformance "
                f"classes exist for {sorted(b for b in present if b)} only"
            )
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    if conformance:
        _default_sigint()


def _account_for_loops(item: pytest.Item, cls: Any, report: pytest.TestReport) -> None:
    """Put the loop count on the report; fail a test on the wrong side of the split."""
    target = cls._hookloop_target
    made = cls._hookloop_loops_made.get(item.name)
    if made is None:  # the baseline: nothing counted
        return
    listed = item.name in cls._hookloop_listed_real
    # A new list: the report's is the item's own, which later reports reuse.
    report.user_properties = [*report.user_properties, (LOOPS_PROPERTY, (target.name, made))]
    if not report.passed:
        return
    if target.virtual and made:
        why = (f"this virtual-time test made {made} hookloop loop(s), so it runs on a real "
               f"loop: list it in REAL_LOOP_IN_VIRTUAL_CLASS (test_cpython_asyncio.py) "
               f"to run it on every backend")
    elif listed and not target.virtual and not made:
        why = ("this test of a virtual-time class runs on every backend, since its source "
               "calls one of LOOP_MAKING_CALLS or REAL_LOOP_IN_VIRTUAL_CLASS names it "
               "(test_cpython_asyncio.py), but it made no hookloop loop: it runs on "
               "TestLoop only; change the rule that sent it here")
    else:
        return
    report.outcome = "failed"
    report.longrepr = why


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    cls = getattr(item, "cls", None)
    if report.when == "call" and cls is not None and hasattr(cls, "_hookloop_loops_made"):
        _account_for_loops(item, cls, report)
    stall = getattr(cls, "_hookloop_stall", None)
    if report.failed and stall:
        seed = os.environ.get("HOOKLOOP_STALL_SEED", "?")
        report.sections.append((
            "hookloop stall injection",
            f"this class injects stalls ({stall}), seed {seed}; replay with: "
            f"pytest '{item.nodeid}' --hookloop-stall-seed={seed}",
        ))
    return report
