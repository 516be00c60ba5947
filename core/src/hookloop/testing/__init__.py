"""hookloop's testing kit: fixtures and contract tests for backend authors.

Installed with the core, it is a pytest plugin (entry point ``pytest11``,
like anyio's), so in any project where hookloop is installed:

* ``hookloop_backend`` is parametrized over every installed, available
  backend (or only those named with ``--hookloop-backend=NAME``, repeatable);
* ``hookloop_loop`` is a new loop on that backend, closed after the test; its
  teardown fails when the loop's exception handler was called and the test
  did not claim the report with ``hookloop_errors.expect(...)``;
* ``hookloop_socketpair`` is a connected, non-blocking socket pair, closed
  after the test;
* ``pytest --pyargs hookloop.testing.contract`` runs the contract tests that
  every poller backend must pass, against whatever backends are installed —
  a third-party backend shows up by being installed;
* ``pytest --pyargs hookloop.testing.conformance`` runs CPython's own
  ``test.test_asyncio`` suites on hookloop loops of every installed backend
  (see :mod:`hookloop.testing.conformance`).

``Certificates()`` makes a throwaway CA and server certificate (with
``trustme``) for TLS tests, and fresh server and client contexts.

``checked_loop(loop, recorder)`` is the body of that loop fixture for any
loop, asyncio's own included: a project's fixture that compares loops
(``yield from checked_loop(loop, recorder)``) fails the same way.

The loop fixture is not called ``loop`` because other plugins (aiohttp's)
own that name; a project may alias it in its ``conftest.py``.
"""
from .certificates import Certificates
from .plugin import ExceptionRecorder, checked_loop

__all__ = ["Certificates", "ExceptionRecorder", "checked_loop"]
