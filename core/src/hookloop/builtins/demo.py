"""``hookloop demo``: scheduling workloads on each backend vs asyncio's loop.

Each (subject, workload) measurement runs in a fresh interpreter
(``python -m hookloop.builtins.demo SUBJECT WORKLOAD SCALE``) so that one
subject's garbage, caches and imports cannot help or hurt another; rounds
are interleaved across subjects and the median is reported with its ratio
to asyncio's own loop.  Every workload checks its own result, so a broken
loop cannot produce a figure.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

CHAINS = 100


def _make_loop(subject: str) -> asyncio.AbstractEventLoop:
    if subject == "asyncio":
        return asyncio.new_event_loop()
    import hookloop
    return hookloop.new_event_loop(subject)


def call_soon(loop: asyncio.AbstractEventLoop, n: int) -> float:
    """``n`` callbacks, each scheduling the next, in 100 interleaved chains."""
    per_chain = n // CHAINS
    done = loop.create_future()
    left = [CHAINS]
    ran = [0]

    def step(i: int) -> None:
        ran[0] += 1
        if i:
            loop.call_soon(step, i - 1)
        else:
            left[0] -= 1
            if not left[0]:
                done.set_result(None)

    t0 = time.perf_counter()
    for _ in range(CHAINS):
        loop.call_soon(step, per_chain)
    loop.run_until_complete(done)
    elapsed = time.perf_counter() - t0
    assert ran[0] == CHAINS * (per_chain + 1), ran
    return ran[0] / elapsed


def task_steps(loop: asyncio.AbstractEventLoop, n: int) -> float:
    """100 tasks doing ``await asyncio.sleep(0)``, ``n`` steps in all."""
    per_task = n // CHAINS
    count = [0]

    async def worker() -> None:
        for _ in range(per_task):
            await asyncio.sleep(0)
            count[0] += 1

    async def main() -> None:
        await asyncio.gather(*(worker() for _ in range(CHAINS)))

    t0 = time.perf_counter()
    loop.run_until_complete(main())
    elapsed = time.perf_counter() - t0
    assert count[0] == per_task * CHAINS
    return count[0] / elapsed


def timers(loop: asyncio.AbstractEventLoop, n: int) -> float:
    """Per step: a timeout armed and cancelled, then ``call_later(0, next)``."""
    per_chain = n // CHAINS
    done = loop.create_future()
    left = [CHAINS]
    fired = [0]

    def never() -> None:
        raise AssertionError("a cancelled timer ran")

    def step(i: int) -> None:
        fired[0] += 1
        loop.call_later(30.0, never).cancel()
        if i:
            loop.call_later(0, step, i - 1)
        else:
            left[0] -= 1
            if not left[0]:
                done.set_result(None)

    t0 = time.perf_counter()
    for _ in range(CHAINS):
        loop.call_later(0, step, per_chain)
    loop.run_until_complete(done)
    elapsed = time.perf_counter() - t0
    assert fired[0] == CHAINS * (per_chain + 1)
    return 2 * fired[0] / elapsed  # two timers per step


def loop_creation(subject: str, n: int) -> float:
    """Loops created and closed per second, after the first."""
    _make_loop(subject).close()
    t0 = time.perf_counter()
    for _ in range(n):
        _make_loop(subject).close()
    return n / (time.perf_counter() - t0)


WORKLOADS: dict[str, tuple[int, str]] = {
    "call_soon": (300_000, "callbacks/s"),
    "task_steps": (200_000, "steps/s"),
    "timers": (200_000, "timers/s"),
    "loop_creation": (2_000, "loops/s"),
}
_LOOP_WORKLOADS: dict[str, Callable[[asyncio.AbstractEventLoop, int], float]] = {
    "call_soon": call_soon, "task_steps": task_steps, "timers": timers,
}


def measure(subject: str, workload: str, scale: float) -> float:
    n = max(CHAINS, int(WORKLOADS[workload][0] * scale))
    if workload == "loop_creation":
        return loop_creation(subject, n)
    loop = _make_loop(subject)
    try:
        _LOOP_WORKLOADS[workload](loop, n // 10)  # warm-up, discarded
        return _LOOP_WORKLOADS[workload](loop, n)
    finally:
        loop.close()


def _run_one(subject: str, workload: str, scale: float) -> float:
    out = subprocess.run(
        [sys.executable, "-m", "hookloop.builtins.demo", subject, workload, str(scale)],
        check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(args: argparse.Namespace) -> int:
    import hookloop
    subjects = ["asyncio", *hookloop.available_backends()]
    results: dict[str, dict[str, list[float]]] = {w: {s: [] for s in subjects} for w in WORKLOADS}
    total = args.rounds * len(WORKLOADS) * len(subjects)
    progress = sys.stderr.isatty()
    done = 0
    for _ in range(args.rounds):
        for workload in WORKLOADS:
            for subject in subjects:
                results[workload][subject].append(_run_one(subject, workload, args.scale))
                done += 1
                if progress:
                    print(f"\r{done}/{total} runs", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    rows: list[dict[str, Any]] = []
    print(f"{'workload':<14} {'subject':<10} {'median':>14} {'unit':<12} {'vs asyncio':>10}")
    for workload, (_, unit) in WORKLOADS.items():
        base = statistics.median(results[workload]["asyncio"])
        for subject in subjects:
            runs = results[workload][subject]
            med = statistics.median(runs)
            rows.append({"workload": workload, "subject": subject, "median": med,
                         "min": min(runs), "max": max(runs), "unit": unit,
                         "ratio": med / base})
            print(f"{workload:<14} {subject:<10} {med:>14,.0f} {unit:<12} {med / base:>9.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python": sys.version, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    print(measure(sys.argv[1], sys.argv[2], float(sys.argv[3])))
