"""Every backend this repository ships for this platform is available here.

The test suite runs on ``hookloop.available_backends()``: a backend whose
probe fails (io_uring refused by the kernel, say) would silently drop out of
every backend-parametrized test, and CI would pass without testing it.  This
test makes that loud.  A developer whose machine cannot run one of them
(an old kernel, ``kernel.io_uring_disabled``) sets
``HOOKLOOP_ALLOW_UNAVAILABLE=uring`` (comma-separated names) and the rest of
the suite runs as usual.
"""
from __future__ import annotations

import os
import sys

import pytest

import hookloop

#: What the repository ships per platform (kqueue runs under emulation on Linux).
SHIPPED = {"linux": ["epoll", "uring", "kqueue", "poll", "select"]}


@pytest.mark.parametrize("name", SHIPPED.get(sys.platform, ["poll", "select"]))
def test_shipped_backend_is_available(name: str) -> None:
    allowed = os.environ.get("HOOKLOOP_ALLOW_UNAVAILABLE", "").split(",")
    if os.environ.get("HOOKLOOP_NO_KQUEUE_EMULATION"):  # the root conftest's switch
        allowed.append("kqueue")
    (record,) = [b for b in hookloop.list_backends() if b.name == name] or [None]
    assert record is not None, f"the {name!r} backend is not installed (python3 run.py test " \
                               "installs every distribution under plugins/)"
    if name in allowed:
        return
    assert record.available, (
        f"the {name!r} backend is unavailable here: {record.unavailable}; its tests would "
        f"not run. Set HOOKLOOP_ALLOW_UNAVAILABLE={name} to run the suite without it")
