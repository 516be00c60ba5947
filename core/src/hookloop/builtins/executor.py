"""Builtin plugin ``executor``: the default executor for ``run_in_executor``.

A ``ThreadPoolExecutor`` made lazily by the loop on first use, with thread
names that say whose threads they are.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from hookloop import hookimpl


@hookimpl(trylast=True)
def hookloop_executor() -> Callable[[], ThreadPoolExecutor]:
    return functools.partial(ThreadPoolExecutor, thread_name_prefix="hookloop")
