"""The scheduling workloads: callbacks, task steps, timers, loop creation.

No I/O and no load side: these measure the loop's core (ready queue, timer
heap, the task step path through ``call_soon``) with nothing else running.
Each is a *batch* function: ``batch(loop, n)`` runs ``n`` operations,
checks that exactly those ran (a callback lost, run twice or a cancelled
timer firing raises ``AssertionError``) and returns the seconds they took.
:func:`timed` turns a batch into a rate over a given number of seconds,
after a discarded warm-up.

They must never time anything but the operations themselves (no loop
creation inside a timing, no process start-up).
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

CHAINS = 100

Batch = Callable[[int], float]


def call_soon(loop: asyncio.AbstractEventLoop, n: int) -> float:
    """``n`` callbacks, each scheduling the next, in 100 interleaved chains."""
    per_chain = max(1, n // CHAINS)
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
        loop.call_soon(step, per_chain - 1)
    loop.run_until_complete(done)
    elapsed = time.perf_counter() - t0
    assert ran[0] == CHAINS * per_chain, (ran[0], CHAINS * per_chain)
    return elapsed


def task_steps(loop: asyncio.AbstractEventLoop, n: int) -> float:
    """100 tasks doing ``await asyncio.sleep(0)``, ``n`` steps in all."""
    per_task = max(1, n // CHAINS)
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
    assert count[0] == per_task * CHAINS, (count[0], per_task * CHAINS)
    return elapsed


def timers(loop: asyncio.AbstractEventLoop, n: int) -> float:
    """``n`` timers: per step a 30 s timeout armed and cancelled, then
    ``call_later(0, next)``, in 100 chains."""
    per_chain = max(1, n // (2 * CHAINS))
    done = loop.create_future()
    left = [CHAINS]
    fired = [0]
    wrong = [0]

    def never() -> None:  # counted, not raised: the loop would only log it
        wrong[0] += 1

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
        loop.call_later(0, step, per_chain - 1)
    loop.run_until_complete(done)
    elapsed = time.perf_counter() - t0
    assert not wrong[0], f"{wrong[0]} cancelled timers ran"
    assert fired[0] == CHAINS * per_chain, (fired[0], CHAINS * per_chain)
    return elapsed


def loop_creation(make_loop: Callable[[], asyncio.AbstractEventLoop], n: int) -> float:
    """``n`` loops made and closed; each must run a callback to count."""
    t0 = time.perf_counter()
    for _ in range(n):
        loop = make_loop()
        try:
            assert loop.run_until_complete(asyncio.sleep(0, "ran")) == "ran"
        finally:
            loop.close()
    return time.perf_counter() - t0


def operations(name: str, n: int) -> int:
    """How many operations ``batch(n)`` of workload ``name`` really does."""
    if name == "timers":
        return 2 * CHAINS * max(1, n // (2 * CHAINS))
    if name in ("call_soon", "task_steps"):
        return CHAINS * max(1, n // CHAINS)
    return n


def timed(batch: Batch, ops: Callable[[int], int], seconds: float, warmup: float,
          first: int = 1000) -> float:
    """The rate of ``batch`` over about ``seconds``, after ``warmup`` seconds
    of batches whose figures are discarded (and which size the measured one).

    :param ops: How many operations ``batch(n)`` really does."""
    n = first
    spent = 0.0
    elapsed = batch(n)
    while True:
        spent += elapsed
        if spent >= warmup:
            break
        if elapsed < warmup / 4:
            n *= 2
        elapsed = batch(n)
    rate = ops(n) / max(elapsed, 1e-9)
    n = max(first, int(rate * seconds))
    return ops(n) / batch(n)
