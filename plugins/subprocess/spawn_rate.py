"""Spawn-and-wait rate of ``true``: hookloop against asyncio's own loop.

Not shipped, not a test: the measurement behind issue #6's closing note (the
bench plugin has a ``subprocess_spawn`` workload of its own).  Each round runs
every loop in a fresh process, loops interleaved, so a busy machine hurts all
of them alike.  Printed: the median rate, its spread, the ratio to asyncio's,
and the CPU per spawn of the parent (the loop) and of the children
(``os.times()``), which a busy machine moves much less than the rates.

    .venv/bin/python plugins/subprocess/spawn_rate.py [--rounds 5] [--spawns 400]
        [--concurrency 1,16] [--backends epoll]

A child: ``await asyncio.create_subprocess_exec("true")`` then ``await
proc.wait()``; with concurrency C, C such children at a time (``gather``).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time


def _child(loop_name: str, spawns: int, concurrency: int) -> None:
    async def one() -> None:
        proc = await asyncio.create_subprocess_exec("true")
        await proc.wait()

    async def main() -> tuple[float, float, float]:
        for _ in range(10):  # warm up
            await one()
        wall, before = time.perf_counter(), os.times()
        for _ in range(spawns // concurrency):
            await asyncio.gather(*(one() for _ in range(concurrency)))
        after = os.times()
        done = spawns // concurrency * concurrency
        parent = after.user + after.system - before.user - before.system
        children = (after.children_user + after.children_system
                    - before.children_user - before.children_system)
        return done / (time.perf_counter() - wall), parent / done * 1e6, children / done * 1e6

    if loop_name == "asyncio":
        rate, cpu, child = asyncio.run(main())
    else:
        import hookloop

        rate, cpu, child = hookloop.run(main(), backend=loop_name)
    print(json.dumps({"rate": rate, "cpu_us": cpu, "child_cpu_us": child}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--spawns", type=int, default=400)
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--backends", default="epoll")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], int(args.child[1]), int(args.child[2]))
        return
    loops = ["asyncio", *args.backends.split(",")]
    for concurrency in map(int, args.concurrency.split(",")):
        results: dict[str, list[dict[str, float]]] = {name: [] for name in loops}
        for _ in range(args.rounds):
            for name in loops:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", name, str(args.spawns),
                     str(concurrency)], check=True, capture_output=True, text=True).stdout
                results[name].append(json.loads(out))
        base = statistics.median(r["rate"] for r in results["asyncio"])
        print(f"concurrency {concurrency}, {args.spawns} spawns x {args.rounds} rounds")
        for name in loops:
            rates = [r["rate"] for r in results[name]]
            cpu = statistics.median(r["cpu_us"] for r in results[name])
            child = statistics.median(r["child_cpu_us"] for r in results[name])
            median = statistics.median(rates)
            print(f"  {name:8} {median:7.0f}/s  (min {min(rates):.0f}, max {max(rates):.0f})  "
                  f"x{median / base:.2f}  CPU per spawn: parent {cpu:.0f} us, "
                  f"child {child:.0f} us")


if __name__ == "__main__":
    main()
