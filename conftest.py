"""Workspace-wide test setup: the kqueue backend runs here, under emulation;
what collection made is frozen out of the garbage collector's sight.

hookloop-kqueue is for macOS and the BSDs.  On a machine whose ``select``
module has no ``kqueue`` (Linux), this file installs the emulation kept in
``plugins/kqueue_backend/tests/kqueue_emulation.py`` into ``select`` before
any test module is imported and before any loop is assembled, so ``kqueue``
is an available backend for the whole session: the testing kit's
``hookloop_backend`` parametrization, the contract tests, ``tests/`` and the
CPython conformance classes (made at import time from
``hookloop.available_backends()``) all run it.  Python processes the tests
start get it too, through ``emulated_site/sitecustomize.py`` on
``PYTHONPATH``.  Where a real kqueue exists, or hookloop-kqueue is not
installed, nothing happens.  ``HOOKLOOP_NO_KQUEUE_EMULATION=1`` turns it off.
"""
from __future__ import annotations

import gc
import importlib.util
import os
import select
import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parent / "plugins" / "kqueue_backend" / "tests"


def _install_kqueue_emulation() -> None:
    if hasattr(select, "kqueue") or os.environ.get("HOOKLOOP_NO_KQUEUE_EMULATION"):
        return
    if importlib.util.find_spec("hookloop_kqueue") is None:
        return
    spec = importlib.util.spec_from_file_location("kqueue_emulation",
                                                  _TESTS / "kqueue_emulation.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["kqueue_emulation"] = module  # the plugin's tests import it by this name
    spec.loader.exec_module(module)
    module.install()
    site = str(_TESTS / "emulated_site")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (site, os.environ.get("PYTHONPATH")) if p)
    import hookloop.assembly
    hookloop.assembly.clear_cache()  # nothing assembled before the emulation counts


_install_kqueue_emulation()


def pytest_collection_finish(session: object) -> None:
    """Freeze the heap collection leaves behind (``gc.freeze``).

    Collection imports CPython's asyncio test modules and generates their
    classes once per backend: a large heap that no test frees.  Every full
    ``gc.collect()`` a test makes used to scan it all -- test_tasks'
    ``test_task_del_collect`` calls it from 100 ``__del__`` methods, which
    took 10-20 s per class, most of the CI run.  Frozen objects are never
    collected; everything the tests create afterwards is collected as usual,
    so leak and ``__del__`` tests still see their own objects go.
    """
    gc.collect()
    gc.freeze()
