"""The ``subprocess_spawn`` workload: child processes started and reaped.

Four workers, each running ``asyncio.create_subprocess_exec`` of ``true``
and ``false`` in turn and awaiting ``wait()``, through the public asyncio
API, the same call on every subject.  Each exit status is checked (0 for
``true``, 1 for ``false``), so a loop that loses a child or mixes up
statuses cannot produce a figure.

On a hookloop subject this needs the ``subprocess`` service
(hookloop-subprocess); the runner asks the subject's recipe first and
reports "not run" without it.  This module must never import that plugin.
"""
from __future__ import annotations

import asyncio
import shutil
import time

WORKERS = 4


def _programs() -> tuple[str, str]:
    true, false = shutil.which("true"), shutil.which("false")
    if true is None or false is None:
        raise RuntimeError("subprocess_spawn needs the true and false programs on PATH")
    return true, false


def spawn(loop: asyncio.AbstractEventLoop, n: int) -> float:
    """Spawn and reap ``n`` children (rounded to the workers); seconds taken."""
    true, false = _programs()
    per_worker = max(1, n // WORKERS)
    statuses: list[int] = []

    async def worker(offset: int) -> None:
        for i in range(per_worker):
            fail = (i + offset) & 1
            proc = await asyncio.create_subprocess_exec(false if fail else true)
            status = await proc.wait()
            if status != fail:
                raise AssertionError(f"{'false' if fail else 'true'} exited with {status}")
            statuses.append(status)

    async def main() -> None:
        await asyncio.gather(*(worker(k) for k in range(WORKERS)))

    t0 = time.perf_counter()
    loop.run_until_complete(main())
    elapsed = time.perf_counter() - t0
    assert len(statuses) == WORKERS * per_worker
    return elapsed


def count(n: int) -> int:
    return WORKERS * max(1, n // WORKERS)
