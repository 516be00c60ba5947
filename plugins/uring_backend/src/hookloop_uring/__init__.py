"""hookloop-uring: the ``uring`` poller backend, on Linux's io_uring.

This distribution is a hookloop plugin (entry-point group ``hookloop``, plugin
name ``uring``) written the way a third party writes one: it uses only
hookloop's public API (:mod:`hookloop`, :mod:`hookloop.poller`).  Its only
hook is :func:`hookloop_pollers`, called once per process at assembly; it
offers one backend, ``uring`` (:class:`UringPoller`, priority 280: below
epoll, which the bench still finds faster, above poll and select).

Whether io_uring works here is found out once per process, the first time
the hook is called (:func:`probe`, cached by :func:`unavailable_reason`):
the ``liburing`` binding must import (and the CPU must run its wheel's
code: :data:`~hookloop_uring.uring_poller.X86_FEATURES_THE_WHEEL_USES`), the
kernel must make a ring with the features this backend relies on (Linux
5.17), and a poll request must fire.  Where it does not (no Linux, a CPU
without AVX-512, a kernel before 5.17, ``io_uring_disabled``, a seccomp or
container policy refusing ``io_uring_setup``), the backend is
still offered, marked unavailable with the reason, so ``hookloop plugins``
says why and choosing it raises :class:`hookloop.BackendUnavailableError`
with that reason; importing this package never fails.
"""
from __future__ import annotations

import functools
import select
import socket
import sys

from hookloop import Backend, BackendUnavailableError, hookimpl

from .uring_poller import BINDING_UNAVAILABLE, UringPoller, liburing, open_ring

__all__ = ["UringPoller", "hookloop_pollers", "probe", "unavailable_reason"]

#: The hookloop plugin API this plugin is written for; a core that does not
#: support it refuses the plugin, naming both versions.
HOOKLOOP_API = 1

DISTRIBUTION = "hookloop-uring"

#: The ring features the poller relies on: completions never dropped, and
#: ``IOSQE_CQE_SKIP_SUCCESS`` for its remove requests.
REQUIRED_FEATURES = ("IORING_FEAT_NODROP", "IORING_FEAT_CQE_SKIP")


def probe() -> str | None:
    """``None`` if the ``uring`` backend works here, else why it does not."""
    if not sys.platform.startswith("linux"):
        return f"io_uring is Linux-only (this is {sys.platform})"
    if BINDING_UNAVAILABLE is not None:
        return BINDING_UNAVAILABLE
    try:
        ring = open_ring(2)
    except BackendUnavailableError as exc:
        return str(exc).removeprefix("the uring backend cannot work here: ")
    try:
        a, b = socket.socketpair()
    except OSError as exc:
        liburing.io_uring_queue_exit(ring)
        return f"no socket pair to probe io_uring with: {exc}"
    try:
        for feature in REQUIRED_FEATURES:
            if not ring.features & getattr(liburing, feature):
                return f"this kernel's io_uring lacks {feature} (Linux 5.17 has it)"
        sqe = liburing.io_uring_get_sqe(ring)
        liburing.io_uring_prep_poll_add(sqe, a.fileno(), select.POLLIN)
        liburing.io_uring_sqe_set_data64(sqe, 1)
        b.send(b"x")
        liburing.io_uring_submit_and_wait(ring, 1)
        cqe = liburing.Cqe()
        results = [cqe[0].res for _ in liburing.CqeIter(ring, cqe)]
        if not results or not results[0] & select.POLLIN:
            return f"a poll request on a readable socket completed with {results}"
        return None
    except OSError as exc:
        return f"a poll request failed: [Errno {exc.errno}] {exc.strerror}"
    finally:
        liburing.io_uring_queue_exit(ring)
        a.close()
        b.close()


@functools.cache
def unavailable_reason() -> str | None:
    """:func:`probe`'s answer, found once per process (a ring set up and torn
    down costs some 50 µs; ``hookloop.list_backends()`` calls the hook each
    time)."""
    return probe()


@hookimpl
def hookloop_pollers() -> list[Backend]:
    """Offer the ``uring`` backend."""
    return [
        Backend(
            name="uring",
            factory=UringPoller,
            priority=280,
            unavailable=unavailable_reason(),
            distribution=DISTRIBUTION,
        ),
    ]
