"""Install the kqueue emulation in Python processes started by the test session.

The repository's root ``conftest.py`` puts this directory on ``PYTHONPATH``
after installing the emulation in the test process itself, so that a test
which compares what it sees with what a ``python -m hookloop ...`` child
reports (``hookloop plugins``, ``hookloop bench``) finds the same backends in
both.  Test-only, never shipped.  Without ``select.kqueue`` missing, or
without hookloop-kqueue installed, it does nothing.
"""
import importlib.util
import select
import sys
from pathlib import Path

if not hasattr(select, "kqueue") and importlib.util.find_spec("hookloop_kqueue") is not None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    try:
        import kqueue_emulation
    finally:
        del sys.path[0]
    kqueue_emulation.install()
