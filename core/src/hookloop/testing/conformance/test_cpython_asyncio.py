"""CPython's own ``test.test_asyncio`` suites, run against every hookloop backend.

What this module does
---------------------
CPython's asyncio tests are ``unittest.TestCase`` classes, mostly written as a
mixin plus small concrete subclasses.  At import time this module imports each
suite listed in ``SUITES``, finds every concrete ``TestCase`` subclass in it
(the same classes ``unittest.TestLoader.loadTestsFromModule`` would run;
mixins that are not TestCases are never picked up on their own), and for every
*target* (one per hookloop backend, plus asyncio's own loop as a baseline when
asked) defines a subclass in this module's globals, e.g.::

    TestTasks_epoll__CTask_CFuture_Tests(_Harness, test_tasks.CTask_CFuture_Tests)

pytest collects those subclasses directly, so one pytest run (one closing
summary line) covers every suite on every backend.  Adding a suite is one line
in ``SUITES``; a suite whose tests create loops through an overridable method
(``new_loop``, ``create_event_loop``...) gets one more entry in
``LOOP_METHODS``.

The suites: the scheduling ones (tasks, locks, queues, taskgroups, timeouts,
waitfor, runners, threads, futures2, context; on 3.12+ eager_task_factory and
staggered; on 3.14 graph and free_threading: every suite that makes its loops
through the policy, a loop factory or an overridable method), the networking
ones of issue #4 (events, sock_lowlevel, sendfile, server, buffered_proto,
streams), ssl and subprocess.  ``SUITE_PYTHONS`` gives the Pythons a suite
exists on; elsewhere it is not looked for.  Left out: futures, protocols,
transports, pep492 (no test makes a real loop: mock or TestLoop loops only),
tools (3.14; parses ``ps`` output), base_events, selector_events,
proactor_events, sslproto, windows_* and unix_events (they test asyncio's
own loop classes, transports and child watchers through their privates; a
few unix_events classes, TestFork and TestFunctional, do use public
``asyncio.run``/``new_event_loop`` and could be generated alone one day).

Counting what ran on our loop
-----------------------------
A suite can pass on a backend without touching it: a test may build
asyncio's virtual-time ``TestLoop``, a mock loop, or ``asyncio.EventLoop``
by name.  So nothing is assumed: every hookloop target makes its loops
through ``hookloop.new_event_loop(..., plugins=[LoopCounter, ...])`` (directly
and through its policy), a plugin counting ``hookloop_loop_created``; the
harness reads the count around each test, the test's report carries it, and
the closing summary prints per target how many tests ran and how many of
them ran a hookloop loop (:mod:`._summary`).

Tests that run on ``TestLoop`` only (most of test_tasks: the tests of a
class whose setUp calls ``self.new_test_loop()``, except those whose own
source makes a real loop, see ``LOOP_MAKING_CALLS``) would run the same
code on every backend; they run once, on the target ``virtual_time``, and
are left out of the backends' classes (their names set to ``None``, which
unittest's loader skips).  The split is checked when they run: a
virtual-time test that made a hookloop loop fails, and so does a test sent
to the backends for making one that made none (:mod:`._hooks`).

Stall injection (issue #13): the scheduling suites in ``STALLED_SUITES`` run
a second time per backend on a target named ``<backend>_stall``
(``TestQueues_epoll_stall__QueuePutTests``) whose loops inject stalls
(``hookloop.stall``, ``STALL``): after a random fraction of the callbacks
the loop sleeps, as a busy machine makes it, without reordering anything.
asyncio's suites must pass there too; a loop that breaks asyncio's order
under preemption (a due timer overtaking an earlier ``call_soon``) hangs
test_queues' ``test_blocking_put_wait`` there.  The random source is seeded
from ``$HOOKLOOP_STALL_SEED``, which the testing kit sets for the session
and prints in the header; a failed stalled test's report says how to replay
it.  ``-k "not _stall__"`` leaves them out.  Run one group with ``-k``, e.g.
``-k "TestEvents_ or TestSockLowlevel_ or TestSendfile_ or TestServer_ or
TestBufferedProto_ or TestStreams_"``.

How our loop gets in (the "harness")
------------------------------------
* For the whole of ``TestCase.run()`` (setUp, the test, tearDown, cleanups, and
  also around setUpClass/tearDownClass) the event loop policy is
  ``hookloop.EventLoopPolicy(backend=NAME)``; the previous policy is restored
  afterwards.  So ``asyncio.new_event_loop()``, ``asyncio.run()``,
  ``asyncio.Runner()`` and (on Python < 3.13) ``IsolatedAsyncioTestCase`` all
  get a hookloop loop.  The DeprecationWarning 3.14 raises for policies is
  suppressed while *we* install them (tests that assert on those warnings are
  unaffected).
* ``IsolatedAsyncioTestCase.loop_factory`` (Python >= 3.13): a class whose
  factory is the default (``None``) or ``asyncio.EventLoop`` gets
  ``functools.partial(hookloop.new_event_loop, NAME)``; any other factory must
  be adapted explicitly in ``LOOP_FACTORY_ADAPTERS`` or it stays as written.
* ``test.test_asyncio.utils.TestCase.close_loop`` (the cleanup registered by
  ``self.set_event_loop(loop)``) reads ``loop._default_executor``, a
  BaseEventLoop private.  For a loop that is not a ``BaseEventLoop`` we do the
  same thing through the public API (``shutdown_default_executor()`` then
  ``close()``) and then let the original finish (its 3.11 child-watcher wait).
  This is harness plumbing, not what any test checks.
* ``self.new_test_loop()`` builds asyncio's virtual-time ``TestLoop`` (a
  ``BaseEventLoop`` subclass driven by a generator of fake timeouts).  Tests
  written against it stay on it: they step the loop with ``_run_once()`` and
  read ``_ready``; they exercise Task/Future/gather, not the loop.
* ``test_runners.BaseTest.new_loop`` builds a bare ``asyncio.BaseEventLoop``
  whose ``_selector``/``_process_events``/``_write_to_self`` are mocks.  Those
  mocks only make an abstract loop runnable without I/O; no test body looks at
  them.  What the tests check through it (``asyncio.run``/``Runner`` run, close
  the loop, call ``shutdown_asyncgens``, handle SIGINT, contexts...) is public
  behaviour, so we substitute a real loop of the target, keeping the
  ``shutdown_ag_run`` flag the tearDown asserts on (and still calling the real
  ``shutdown_asyncgens``).  The baseline applies the very same substitution
  with asyncio's own loop (from its default policy), which proves it honest:
  the baseline's counts equal those of the unmodified suites.

* Three private names of asyncio's loop that test_events' EventLoopTestsMixin
  uses: ``test_timeout_rounding`` puts ``loop._clock_resolution`` and
  ``loop._selector.__class__.__name__`` in its failure message (evaluated
  whether it fails or not), ``test_prompt_cancellation`` cleans up with
  ``loop._stop_serving(sock)``.  hookloop's loop does not have them (they are
  no part of the loop API); every loop a hookloop target makes gets them from
  the plugin ``AsyncioLoopNames`` (``hookloop_loop_created``), as instance
  attributes: the monotonic clock's resolution (asyncio's value), the loop's
  poller, and asyncio's cleanup step (stop reading the socket, close it).
  No test checks what they are; without them those two tests fail with
  AttributeError.
* ``create_event_loop`` (events, sock_lowlevel, sendfile) and ``new_loop``
  (server, buffered_proto) return the target's loop on hookloop targets; the
  originals build ``asyncio.SelectorEventLoop(...)``.  3.14's
  ``events.UnixPipeObjectSupportTests`` builds ``asyncio.SelectorEventLoop()``
  in ``setUp`` itself; its 3-line setUp is redone on the target's loop.  The
  baseline keeps all the originals.  test_streams' ``StreamTests`` and the
  other events classes call ``asyncio.new_event_loop()``: the policy does it.
* Child watchers (Python < 3.14): ``hookloop.EventLoopPolicy`` refuses
  ``get/set_child_watcher`` (as uvloop's and asyncio's Windows policies do),
  but events' ``UnixEventLoopTestsMixin``/``GetEventLoopTestsMixin`` install a
  ``SafeChildWatcher`` through the policy in every setUp.  The harness policy
  is a subclass that, where the real one refuses, keeps the watcher in a
  plain slot, as asyncio's Unix policy does; see ``_with_child_watcher_slot``.

Per-selector classes
--------------------
events, sock_lowlevel and sendfile define their mixin once per asyncio
selector (``KqueueEventLoopTests``, ``EPollEventLoopTests``,
``PollEventLoopTests``, ``SelectEventLoopTests``, whichever the platform
has), each differing only in ``create_event_loop``.  On a hookloop target the
selector is irrelevant (every copy would run the same loop), so one class per
such group is generated: the one named after the backend
(``TestEvents_poll__PollEventLoopTests``) if there is one, else the first the
suite defines.  A group is "two or more concrete classes with the same bases,
each defining ``create_event_loop`` itself" (``_per_selector_choice``).  The
baseline keeps every class as it is, so it runs each mixin once per selector.

Classes that deliberately use one asyncio loop class are listed in
``ASYNCIO_LOOP_CLASSES`` with the reason and are not generated for hookloop
targets (the Proactor ones: Windows only; on Unix they are skipped on the
baseline).

TLS and subprocess tests
------------------------
TLS (hookloop-tls, issue #5) and subprocesses (hookloop-subprocess, issue #6)
come from optional plugins.  ``NEEDS_SERVICE`` lists, per suite, the tests
that need one (patterns made by reading the test bodies, not just the
names).  On a hookloop target whose recipe (``hookloop.assembly.recipe(NAME)
.factories``) has no factory for that service, they are *deselected* at
collection (not skipped, not xfailed, never counted as passes), and the
terminal summary prints one line per target and service, e.g.
``epoll: 17 tls tests deselected (hookloop-tls is not installed)``.  Once the
plugin is installed they run like any other test.  The baseline runs them all.

Child-watcher classes (subprocess suite)
----------------------------------------
test_subprocess runs its ``SubprocessWatcherMixin`` once per asyncio child
watcher (3.11-3.13: ``SubprocessThreadedWatcherTests``, ``...SafeWatcher...``,
``...FastWatcher...``, ``...MultiLoopWatcher...``, ``...PidfdWatcher...``,
each putting that watcher in the policy's slot; 3.14: Threaded and Pidfd,
differing in which watcher asyncio's own loop would pick).  hookloop-subprocess
never asks for a watcher (it watches its children itself: the poller's
``watch_process``, a pidfd, or its own thread), so on a hookloop target these
classes run the very same tests on the very same loop.  One is generated:
``SubprocessThreadedWatcherTests``, which exists on every version, holds every
test of the others (3.14 adds its own), and whose 3.11-3.13 watcher acts only
on pids registered with it.  The others are listed in
``DUPLICATE_ON_HOOKLOOP`` with the reason and not generated for hookloop
targets; the baseline runs them all.  (``FastChildWatcher`` even reaps every
child of the process with ``waitpid(-1)`` from a SIGCHLD handler on the loop
under test, taking our children's exit statuses, which asyncio documents as
that watcher's known interference with other code spawning processes.)

What stays on asyncio's loop (by the test's own choice, not ours): tests on
``new_test_loop()``; tests passing ``loop_factory=asyncio.EventLoop`` to
``asyncio.run`` or constructing ``asyncio.EventLoop()``/``SelectorEventLoop()``
themselves; mock loops; events' ``PolicyTests`` (they test
``asyncio.DefaultEventLoopPolicy`` itself) and ``HandleTests``/``TimerTests``
(mock loops, except ``test_handle_source_traceback``, which gets ours through
the policy).

Selecting targets
-----------------
* Backends: ``hookloop.available_backends()``.  Because the classes are made at
  import time, the restriction by name is read from the environment:
  ``HOOKLOOP_BACKEND=epoll`` (or ``epoll,poll``) keeps only those.  The
  ``--hookloop-backend=NAME`` option of the ``hookloop.testing`` plugin is
  honoured too, by deselecting the other backends' tests at collection
  (:mod:`._hooks`).
* ``HOOKLOOP_CONFORMANCE_BASELINE=1`` adds the target ``asyncio``: asyncio's
  own ``SelectorEventLoop`` through the default policy, with the same harness.
  Compare its counts with a backend's to see what hookloop changes.
  ``HOOKLOOP_CONFORMANCE_BASELINE=only`` runs the baseline alone (no hookloop
  target; hookloop need not even be importable), to validate the harness.
* If ``import hookloop`` fails (the core is missing or broken), only the
  baseline runs (whatever the variable says), plus one skipped test naming the
  import error, so that the harness itself can still be exercised.
* If ``test.test_asyncio`` or one suite is not importable (some distributions
  strip the test package; ``support.requires_working_socket`` raises SkipTest
  where sockets don't work), one skipped test says so instead.

Module-level fixtures: each suite's ``setUpModule``/``tearDownModule`` (today
only ``tearDownModule(): set_event_loop_policy(None)``) are run around every
generated class, inside our policy context, followed by
``unittest.doModuleCleanups()``.  A suite defining ``load_tests`` is refused
loudly, since its test set could differ from what we collect.

Warnings: the workspace's pytest filters apply (unraisable exceptions are
errors, stricter than ``python -m unittest``).  The baseline has the same
outcomes under them as the unmodified suites; should a later suite trip over
them on asyncio's own loop too, give the generated classes a ``pytestmark``
with ``filterwarnings`` in ``_class_namespace``.

``KNOWN_INCOMPATIBLE`` marks tests that check asyncio-private behaviour of the
loop itself and cannot pass on a third-party loop: ``xfail(strict=True)`` on
hookloop targets only (never on the baseline), so a fix shows up as XPASS.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import functools
import importlib
import inspect
import os
import sys
import threading
import time
import traceback
import unittest
import warnings
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

# One line per suite: the module name is ``test.test_asyncio.test_<suite>``.
SUITES = [
    "tasks",
    "locks",
    "queues",
    "taskgroups",
    "timeouts",
    "waitfor",
    "runners",
    "threads",
    "futures2",
    "context",
    "eager_task_factory",  # 3.12+
    "staggered",  # 3.12+
    "graph",  # 3.14+
    "free_threading",  # 3.14+
    # networking (issue #4)
    "events",
    "sock_lowlevel",
    "sendfile",
    "server",
    "buffered_proto",
    "streams",
    # TLS (issue #5) and subprocesses (issue #6): deselected without their plugin
    "ssl",
    "subprocess",
]

# Suites that exist only on some Pythons: suite -> (first version, first version
# without it or None).  Outside that range the suite is not looked for at all
# (no test, no skip); inside it, a missing module is a skip saying so.
SUITE_PYTHONS: dict[str, tuple[tuple[int, int], tuple[int, int] | None]] = {
    "eager_task_factory": ((3, 12), None),
    "staggered": ((3, 12), None),
    "graph": ((3, 14), None),
    "free_threading": ((3, 14), None),
}

# "suite::TestClass::test_method" (fnmatch patterns) -> why it cannot pass on
# a loop that is not asyncio's.  Applies to hookloop targets only.
KNOWN_INCOMPATIBLE: dict[str, str] = {
    "events::*EventLoopTests::test_create_server_multiple_hosts_ipv[46]": (
        "mock.patch('asyncio.base_events.socket') and mocked loop._start_serving/_stop_serving: "
        "the sockets it checks (getsockbyname, a method only its Mock has) are made by "
        "asyncio.base_events.create_server; another loop's create_server binds real sockets"
    ),
    "events::*EventLoopTests::test_internal_fds": (
        "skips itself unless the loop is a selector_events.BaseSelectorEventLoop: checks its "
        "privates _internal_fds/_csock/_ssock (reported as skipped, never as passed)"
    ),
    "events::*EventLoopTests::test_create_server_trsock": (
        "asserts Server.sockets holds asyncio.trsock.TransportSocket, asyncio's own class, "
        "which our rules keep us from reusing; ours has the same guarded methods "
        "(tests/test_net_transport.py, tests/test_net_server.py)"
    ),
    "ssl::*::test_remote_shutdown_receives_trailing_data_on_slow_socket": (  # 3.13+
        "its subject is asyncio's _SelectorSocketTransport under TLS (gh-115514): it takes the "
        "plain transport as transport._ssl_protocol._transport, checks its _read_ready_cb and "
        "swaps its _sock; the same trailing-data behaviour is checked by "
        "test_remote_shutdown_receives_trailing_data, which passes"
    ),
    "sendfile::*::test_sendfile_force_unsupported_native": (
        "replaces loop._sendfile_native with base_events.BaseEventLoop._sendfile_native, "
        "asyncio's private per-loop hook; our loop.sendfile has no such hook to replace "
        "(the not-available path is covered by tests/test_net_impl_sendfile.py)"
    ),
    # ---- subprocesses (hookloop-subprocess, issue #6)
    "subprocess::GenericWatcherTests::test_create_subprocess_fails_with_inactive_watcher": (
        "installs a mock asyncio child watcher reporting itself inactive and expects "
        "create_subprocess_exec to refuse with RuntimeError: asyncio's loop (3.11-3.13) asks the "
        "policy for its child watcher; hookloop-subprocess watches its children itself (the "
        "poller's watch_process, a pidfd, or its own thread) and never asks for one"
    ),
    "subprocess::*::test_watcher_implementation": (  # 3.14
        "asserts that loop._watcher, asyncio's private attribute, is asyncio's private "
        "_PidfdChildWatcher/_ThreadedChildWatcher"
    ),
    "subprocess::*::test_pid_not_reaped_before_exit_published": (  # 3.14
        "joins the thread it finds in loop._watcher._threads, asyncio's private watcher state; "
        "what it checks (the loop thread reaps and publishes the exit in one step) is tested in "
        "plugins/subprocess/tests"
    ),
}

# Tests that need an optional service: "suite::TestClass::test_method" (fnmatch
# patterns) -> (service kind, as in hookloop.features.FEATURES, what in the test
# body needs it).  On a hookloop target whose recipe has no factory for that
# kind they are deselected at collection (see the module docstring); the
# baseline and targets with the plugin run them.  Made by reading the bodies:
# a name is not enough (events' test_connect_accepted_socket_ssl_timeout_for_
# plain_socket only checks argument validation and needs no TLS; streams'
# test_streamwriter_start_tls_updates_reader_transport mocks loop.start_tls).
NEEDS_SERVICE: dict[str, tuple[str, str]] = {
    # ---- TLS (hookloop-tls, issue #5)
    "ssl::*": ("tls", "the whole TLS suite"),
    "events::*::test_create_*ssl*": (
        "tls",
        "create_connection/create_server/create_unix_* with ssl= (run_test_server(use_ssl=True), "
        "dummy_ssl_context, SSLContext)",
    ),
    "events::*::test_ssl_connect_accepted_socket": (
        "tls",
        "connect_accepted_socket(ssl=simple_server_sslcontext())",
    ),
    "sendfile::*::test_sendfile_ssl*": (
        "tls",
        "prepare_sendfile(is_ssl=True): create_server/create_connection with ssl=",
    ),
    "streams::*::test_open_connection_no_loop_ssl": (
        "tls",
        "open_connection(ssl=dummy_ssl_context())",
    ),
    "streams::*::test_open_unix_connection_no_loop_ssl": (
        "tls",
        "open_unix_connection(ssl=dummy_ssl_context())",
    ),
    "streams::*::test_start_tls": ("tls", "StreamWriter.start_tls() over a real connection"),
    "streams::*::test_start_tls_buffered_data": (  # 3.13+
        "tls",
        "StreamWriter.start_tls() over a real connection",
    ),
    # ---- subprocesses (hookloop-subprocess, issue #6)
    "subprocess::*": ("subprocess", "the whole subprocess suite"),
    "events::*::test_subprocess_*": (
        "subprocess",
        "SubprocessTestsMixin: subprocess_exec/subprocess_shell",
    ),
    "streams::*::test_read_all_from_pipe_reader": (  # up to 3.11
        "subprocess",
        "create_subprocess_exec() with a SafeChildWatcher",
    ),
}

# "suite::TestClass" -> why it stays on the asyncio loop class it names and is
# not generated for hookloop targets (the baseline keeps it).
ASYNCIO_LOOP_CLASSES: dict[str, str] = {
    "server::ProactorStartServerTests": "new_loop() is asyncio.ProactorEventLoop (Windows only)",
    "buffered_proto::BufferedProtocolProactorTests": (
        "new_loop() is asyncio.ProactorEventLoop (Windows only)"
    ),
    "events::ProactorEventLoopTests": "asyncio.ProactorEventLoop (defined on Windows only)",
    "sock_lowlevel::ProactorEventLoopTests": "asyncio.ProactorEventLoop (defined on Windows only)",
    "sendfile::ProactorEventLoopTests": "asyncio.ProactorEventLoop (defined on Windows only)",
}

# "suite::TestClass" -> why it is not generated for hookloop targets: on our loop
# it would run the same tests as another generated class, differing only in
# something our loop never consults (see "Child-watcher classes"; the baseline
# keeps it).
_NO_WATCHER = (
    "same tests as SubprocessThreadedWatcherTests; the child watcher it installs is never "
    "consulted by hookloop-subprocess, which watches its children itself"
)
DUPLICATE_ON_HOOKLOOP: dict[str, str] = {
    "subprocess::SubprocessSafeWatcherTests": _NO_WATCHER + " (3.11-3.13)",
    "subprocess::SubprocessMultiLoopWatcherTests": _NO_WATCHER + " (3.11-3.13, skipped there)",
    "subprocess::SubprocessPidfdWatcherTests": _NO_WATCHER + " (3.14: the one asyncio's loop "
    "would pick when the kernel has pidfds; ours decides by itself)",
    "subprocess::SubprocessFastWatcherTests": _NO_WATCHER + "; worse, attached to the loop "
    "under test it reaps every child with waitpid(-1), taking our children's exit statuses "
    "(3.11-3.13)",
}

BASELINE = "asyncio"

# The scheduling suites run a second time on every backend with stall
# injection on (hookloop.stall; issue #13): the loop sleeps up to MAX_MS ms
# after a random fraction PROB of its callbacks, as a busy machine would make
# it, without reordering anything.  A test relying on a callback order that
# asyncio does not promise, or a loop breaking asyncio's order under
# preemption (a due timer overtaking an earlier call_soon), fails or hangs
# here.  The seed is the session's $HOOKLOOP_STALL_SEED (printed in the
# header by the testing kit; a failed test's report says how to replay it).
STALLED_SUITES = ["tasks", "locks", "queues", "taskgroups", "timeouts", "waitfor"]
STALL = "0.2:20"

# Virtual-time tests (see "Counting what ran on our loop"): the tests of a
# class whose setUp builds asyncio's ``TestLoop`` (``self.new_test_loop()``)
# run once, on the target VIRTUAL, not once per backend, unless the test's
# own source makes a real loop too (one of LOOP_MAKING_CALLS: test_tasks'
# ``loop = asyncio.new_event_loop()`` tests) or REAL_LOOP_IN_VIRTUAL_CLASS
# ("suite::TestClass::test_method", fnmatch -> what makes the loop) names
# it: those run on every backend.  Neither side is taken on trust: the
# harness counts the loops each test made, and _hooks.py fails a
# virtual-time test that made a hookloop loop, and a real-loop one that made
# none, saying which rule to change.
VIRTUAL = "virtual_time"
LOOP_MAKING_CALLS = ("new_event_loop(", "asyncio.run(", "Runner(")
# ...unless the source names asyncio's own loop class for it (3.14's
# test_eager_start_*: ``asyncio.run(main(), loop_factory=asyncio.EventLoop)``):
# that test runs on asyncio's loop by its own choice and stays virtual-time.
ASYNCIO_LOOP_NAMED = ("loop_factory=asyncio.EventLoop", "asyncio.EventLoop(",
                      "SelectorEventLoop(")
REAL_LOOP_IN_VIRTUAL_CLASS: dict[str, str] = {}


# ---------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    """One loop implementation the suites run on."""

    name: str
    new_loop: Callable[[], asyncio.AbstractEventLoop]
    new_policy: Callable[[], object]  # None means "asyncio's default policy"
    is_baseline: bool = False
    # Service kinds (as in NEEDS_SERVICE) no installed plugin provides, with the
    # distribution that would: their tests are deselected on this target.
    missing_services: tuple[tuple[str, str], ...] = ()
    backend: str = ""  # the hookloop backend ("" for the baseline and VIRTUAL)
    stall: str | None = None  # stall injection ("PROB:MAX_MS"), on STALLED_SUITES only
    # Counts the hookloop loops made (LoopCounter); None on the baseline.
    counter: LoopCounter | None = None
    virtual: bool = False  # runs the virtual-time tests only, once


class LoopCounter:
    """Counts the loops hookloop's assembly makes, as a plugin (``hookloop_loop_created``).

    Every hookloop target passes the one instance in ``plugins=[...]`` to
    ``hookloop.new_event_loop``, directly and through its policy, so it counts
    the loops actually built, however a suite asked for them (policy,
    ``loop_factory``, ``create_event_loop``...).  The harness reads it before
    and after each test.  Loops made by other threads count too (the lock).
    """

    def __init__(self, hookimpl: Callable[..., Any]) -> None:
        self._lock = threading.Lock()
        self.made = 0

        def hookloop_loop_created(loop: Any) -> None:
            with self._lock:
                self.made += 1

        self.hookloop_loop_created = hookimpl(hookloop_loop_created)


# asyncio's BaseEventLoop._clock_resolution.
_CLOCK_RESOLUTION = time.get_clock_info("monotonic").resolution


def _stop_serving(loop_ref: Callable[[], Any], sock: Any) -> None:
    """asyncio's ``loop._stop_serving(sock)``: stop reading ``sock``, close it."""
    loop_ref().remove_reader(sock)
    sock.close()


class AsyncioLoopNames:
    """Gives every hookloop loop the private names of asyncio's loop that
    test_events uses (see "How our loop gets in"), as a plugin
    (``hookloop_loop_created``) that every target passes with its
    LoopCounter."""

    def __init__(self, hookimpl: Callable[..., Any]) -> None:
        def hookloop_loop_created(loop: Any) -> None:
            loop._clock_resolution = _CLOCK_RESOLUTION
            loop._selector = loop.poller
            # A weak reference: no cycle, so an unclosed loop is still
            # reported as soon as it is dropped, as asyncio's is.
            loop._stop_serving = functools.partial(_stop_serving, weakref.ref(loop))

        self.hookloop_loop_created = hookimpl(hookloop_loop_created)


def _hookloop_targets() -> tuple[list[Target], str | None]:
    """Targets for the installed backends, or ([], why not)."""
    try:
        import hookloop
    except Exception:  # noqa: BLE001 - any failure means "no hookloop"
        return [], "import hookloop failed:\n" + traceback.format_exc(limit=3)
    try:
        names = list(hookloop.available_backends())
    except Exception:  # noqa: BLE001
        return [], "hookloop.available_backends() failed:\n" + traceback.format_exc(limit=3)
    wanted = [n.strip() for n in os.environ.get("HOOKLOOP_BACKEND", "").split(",") if n.strip()]
    if wanted:
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            return [], f"HOOKLOOP_BACKEND names {unknown}; installed backends: {names}"
        names = [n for n in names if n in wanted]
    if not names:
        return [], "hookloop reports no available backend"

    policy_class = _with_child_watcher_slot(hookloop.EventLoopPolicy)
    counter = LoopCounter(hookloop.hookimpl)
    plugins = [counter, AsyncioLoopNames(hookloop.hookimpl)]

    def new_loop_for(
        name: str, stall: str | None = None
    ) -> Callable[[], asyncio.AbstractEventLoop]:
        return functools.partial(hookloop.new_event_loop, name, stall=stall, plugins=plugins)

    def policy_for(name: str, stall: str | None = None) -> Callable[[], object]:
        def new_policy() -> object:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                return policy_class(backend=name, stall=stall, plugins=plugins)

        return new_policy

    try:
        missing = {name: _missing_services(name) for name in names}
    except Exception:  # noqa: BLE001
        return [], "hookloop.assembly.recipe() failed:\n" + traceback.format_exc(limit=3)

    # The plain targets inject stalls only if the session asks for them
    # (--hookloop-stall, $HOOKLOOP_STALL); the stalled ones always do, STALL.
    plain = [
        Target(
            name,
            new_loop_for(name),
            policy_for(name),
            missing_services=missing[name],
            backend=name,
            counter=counter,
        )
        for name in names
    ]
    stalled = [
        Target(
            f"{name}_stall",
            new_loop_for(name, STALL),
            policy_for(name, STALL),
            missing_services=missing[name],
            backend=name,
            stall=STALL,
            counter=counter,
        )
        for name in names
    ]
    # Any loop a virtual-time test made would be one of the first backend:
    # counted, so the harness can refuse it.
    virtual = Target(VIRTUAL, new_loop_for(names[0]), policy_for(names[0]),
                     missing_services=missing[names[0]], counter=counter, virtual=True)
    return [*plain, *stalled, virtual], None


def _with_child_watcher_slot(policy_class: type) -> type:
    """``policy_class`` with asyncio's Unix child-watcher slot where it has none.

    ``hookloop.EventLoopPolicy`` refuses ``get/set_child_watcher`` with
    NotImplementedError (hookloop-subprocess watches children itself), as
    uvloop's policy and asyncio's Windows policies do.  Python < 3.14 fixtures
    (events' ``UnixEventLoopTestsMixin`` and ``GetEventLoopTestsMixin``
    setUp/tearDown) install a ``SafeChildWatcher`` through the policy for
    every test, for the sake of the subprocess tests.  Where the policy
    refuses, the harness keeps that watcher in a plain slot (set stores, get
    returns it, ``None`` at first), as asyncio's Unix policy does.  No test
    outside the subprocess ones (hookloop-subprocess) looks at the watcher.
    """

    class HarnessPolicy(policy_class):  # type: ignore[misc]  # policy_class is only known at runtime
        _harness_child_watcher: Any = None

        def get_child_watcher(self) -> Any:
            try:
                return super().get_child_watcher()
            except NotImplementedError:
                return self._harness_child_watcher

        def set_child_watcher(self, watcher: Any) -> Any:
            try:
                return super().set_child_watcher(watcher)
            except NotImplementedError:
                self._harness_child_watcher = watcher

    HarnessPolicy.__name__ = HarnessPolicy.__qualname__ = f"Harness{policy_class.__name__}"
    return HarnessPolicy


def _missing_services(backend: str) -> tuple[tuple[str, str], ...]:
    """(kind, distribution) for each NEEDS_SERVICE kind the backend's recipe lacks."""
    from hookloop import assembly
    from hookloop.features import FEATURES

    factories = assembly.recipe(backend).factories
    kinds = sorted({kind for kind, _ in NEEDS_SERVICE.values()})
    return tuple((kind, FEATURES[kind].distribution)
                 for kind in kinds if factories.get(kind) is None)


def _baseline_target() -> Target:
    return Target(BASELINE, _asyncio_own_loop, lambda: None, is_baseline=True)


def _asyncio_own_loop() -> asyncio.AbstractEventLoop:
    """asyncio's own loop, as its default policy makes it: that policy is put
    in place for the call, since the installed one may be a test_runners
    policy that routes new_event_loop() back into the substituted new_loop
    (a recursion)."""
    with _policy_installed(None):
        return asyncio.new_event_loop()


# ------------------------------------------------------------- policy swap


def _current_policy() -> Any:
    # The raw slot, so that "no policy yet" (None) is restored as such.
    return getattr(asyncio.events, "_event_loop_policy", None)


@contextlib.contextmanager
def _policy_installed(policy: Any) -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        saved = _current_policy()
        asyncio.set_event_loop_policy(policy)
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            asyncio.set_event_loop_policy(saved)


# ----------------------------------------------------------------- harness


class _Harness:
    """First base of every generated class (not a TestCase, never collected)."""

    _hookloop_target: Target
    _hookloop_suite_module: Any = None
    # Set per generated class by _class_namespace / by unittest.TestCase.
    _hookloop_loops_made: dict[str, int]
    _testMethodName: str

    @classmethod
    def setUpClass(cls) -> None:
        with _policy_installed(cls._hookloop_target.new_policy()):
            setup_module = getattr(cls._hookloop_suite_module, "setUpModule", None)
            if setup_module is not None:
                setup_module()
            super().setUpClass()  # type: ignore[misc]  # the TestCase is the next base

    @classmethod
    def tearDownClass(cls) -> None:
        with _policy_installed(cls._hookloop_target.new_policy()):
            try:
                super().tearDownClass()  # type: ignore[misc]  # the TestCase is the next base
            finally:
                teardown_module = getattr(cls._hookloop_suite_module, "tearDownModule", None)
                try:
                    if teardown_module is not None:
                        teardown_module()
                finally:
                    unittest.case.doModuleCleanups()

    def run(self, result: Any = None) -> Any:
        counter = self._hookloop_target.counter
        before = counter.made if counter is not None else 0
        try:
            with _policy_installed(self._hookloop_target.new_policy()):
                return super().run(result)  # type: ignore[misc]  # the TestCase is the next base
        finally:
            if counter is not None:
                self._hookloop_loops_made[self._testMethodName] = counter.made - before


class _PublicLoopView:
    """A loop as ``utils.TestCase.close_loop`` sees it once the executor is gone."""

    _default_executor = None

    def __init__(self, loop: Any) -> None:
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)


def _make_close_loop(original: Callable[[Any], Any]) -> staticmethod[[Any], Any]:
    def close_loop(loop: Any) -> Any:
        from hookloop import EventLoop
        if not isinstance(loop, EventLoop):  # TestLoop, the baseline: asyncio's own
            return original(loop)
        # The public spelling of "shut the default executor down, then close".
        if not loop.is_closed():
            loop.run_until_complete(loop.shutdown_default_executor())
        return original(_PublicLoopView(loop))

    return staticmethod(close_loop)


def _runners_new_loop(target: Target) -> Callable[[Any], Any]:
    """test_runners.BaseTest.new_loop on a real loop of ``target``; see above."""

    def new_loop(self: Any) -> Any:
        loop: Any = target.new_loop()
        real_shutdown_asyncgens = loop.shutdown_asyncgens
        loop.shutdown_ag_run = False

        async def shutdown_asyncgens() -> None:
            loop.shutdown_ag_run = True
            await real_shutdown_asyncgens()

        loop.shutdown_asyncgens = shutdown_asyncgens
        return loop

    return new_loop


def _target_loop_method(target: Target) -> Callable[[Any], Any] | None:
    """``create_event_loop``/``new_loop``: the target's loop; the baseline keeps the original.

    The originals build ``asyncio.SelectorEventLoop(<one selector>)`` (one
    class per selector, see "Per-selector classes") or plain
    ``asyncio.SelectorEventLoop()``; the tests only use what they return.
    """
    if target.is_baseline:
        return None

    def make_loop(self: Any) -> asyncio.AbstractEventLoop:
        return target.new_loop()

    return make_loop


def _own_loop_set_up(target: Target) -> Callable[[Any], None] | None:
    """setUp of classes that build ``asyncio.SelectorEventLoop()`` in setUp itself.

    The original (3.14's events.UnixPipeObjectSupportTests) is, in full:
    ``super().setUp(); self.loop = asyncio.SelectorEventLoop();
    self.addCleanup(self.loop.close)``; this is the same on the target's loop.
    """
    if target.is_baseline:
        return None

    def setUp(self: Any) -> None:  # noqa: N802 - unittest's name
        unittest.TestCase.setUp(self)
        self.loop = target.new_loop()
        self.addCleanup(self.loop.close)

    return setUp


# "suite" or "suite::TestClass" -> {method name: builder(target) -> method, or
# None to keep the original}.  A method is replaced only in classes that have
# it.  Suites whose loop-making method pokes BaseEventLoop internals in the
# tests themselves must not be listed here.
LOOP_METHODS: dict[str, dict[str, Callable[[Target], Callable[..., Any] | None]]] = {
    "runners": {"new_loop": _runners_new_loop},
    "events": {"create_event_loop": _target_loop_method},
    "events::UnixPipeObjectSupportTests": {"setUp": _own_loop_set_up},  # 3.14
    "sock_lowlevel": {"create_event_loop": _target_loop_method},
    "sendfile": {"create_event_loop": _target_loop_method},
    "server": {"new_loop": _target_loop_method},
    "buffered_proto": {"new_loop": _target_loop_method},
}


def _eager_factory(target: Target) -> Callable[[], asyncio.AbstractEventLoop]:
    def loop_factory() -> asyncio.AbstractEventLoop:
        loop = target.new_loop()
        loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined]  # 3.12+
        return loop

    return loop_factory


# (suite, class name) -> builder(target) -> loop_factory, for
# IsolatedAsyncioTestCase classes whose loop_factory is neither None nor
# asyncio.EventLoop.  Each must reproduce the original on the target's loop.
LOOP_FACTORY_ADAPTERS: dict[tuple[str, str], Callable[[Target], Callable[..., Any]]] = {
    # 3.14: loop_factory() = asyncio.EventLoop() + eager_task_factory.
    ("taskgroups", "TestEagerTaskTaskGroup"): _eager_factory,
}

# Classes whose loop_factory we could not substitute (filled at import; shown
# by ``python test_cpython_asyncio.py``).
NOT_SUBSTITUTED: list[str] = []


def _class_namespace(target: Target, suite: str, module: Any, cls: Any) -> dict[str, Any]:
    ns: dict[str, Any] = {
        "__module__": __name__,
        "_hookloop_target": target,
        "_hookloop_backend": target.backend or target.name,
        "_hookloop_loops_made": {},  # test name -> hookloop loops its run made
        "_hookloop_stall": target.stall,
        "_hookloop_suite": suite,
        "_hookloop_suite_module": module,
    }
    utils = sys.modules.get("test.test_asyncio.utils")
    if utils is not None and issubclass(cls, utils.TestCase):
        ns["close_loop"] = _make_close_loop(cls.close_loop)

    if issubclass(cls, unittest.IsolatedAsyncioTestCase) and hasattr(
        unittest.IsolatedAsyncioTestCase, "loop_factory"
    ):
        current = cls.loop_factory
        if current is None or current is getattr(asyncio, "EventLoop", object()):
            ns["loop_factory"] = staticmethod(target.new_loop)
        elif (suite, cls.__name__) in LOOP_FACTORY_ADAPTERS:
            ns["loop_factory"] = staticmethod(LOOP_FACTORY_ADAPTERS[suite, cls.__name__](target))
        else:
            NOT_SUBSTITUTED.append(f"{suite}::{cls.__name__} (loop_factory={current!r})")

    for key in (suite, f"{suite}::{cls.__name__}"):
        for meth, builder in LOOP_METHODS.get(key, {}).items():
            if hasattr(cls, meth):
                method = builder(target)
                if method is not None:
                    ns[meth] = method

    if not target.is_baseline:
        loader = unittest.TestLoader()
        xfails: dict[str, str] = {}
        needs: dict[str, tuple[str, str, str]] = {}
        missing = dict(target.missing_services)
        for test_name in loader.getTestCaseNames(cls):
            test_id = f"{suite}::{cls.__name__}::{test_name}"
            for pattern, reason in KNOWN_INCOMPATIBLE.items():
                if fnmatch.fnmatchcase(test_id, pattern):
                    xfails[test_name] = reason
            for pattern, (kind, why) in NEEDS_SERVICE.items():
                if kind in missing and fnmatch.fnmatchcase(test_id, pattern):
                    needs[test_name] = (kind, missing[kind], why)
        ns["_hookloop_known_incompatible"] = xfails
        # Deselected at collection by _hooks.py (never run, never counted).
        ns["_hookloop_needs_missing_service"] = needs
    return ns


# --------------------------------------------------------------- discovery


def _suite_test_cases(module: Any) -> list[tuple[str, type]]:
    """What ``unittest.TestLoader.loadTestsFromModule`` would run, by name."""
    if hasattr(module, "load_tests"):
        raise RuntimeError(f"{module.__name__} defines load_tests(); teach {__name__} what it does")
    loader = unittest.TestLoader()
    found = []
    for name in dir(module):
        obj = getattr(module, name)
        if (
            isinstance(obj, type)
            and issubclass(obj, unittest.TestCase)
            and obj not in (unittest.TestCase, unittest.FunctionTestCase)
            and (loader.getTestCaseNames(obj) or hasattr(obj, "runTest"))
        ):
            found.append((name, obj))
    return found


def _per_selector_choice(cases: list[tuple[str, type]], target: Target) -> set[str]:
    """Names of the per-selector classes *not* to generate for a hookloop target.

    A per-selector group is two or more concrete classes of one suite that have
    the same bases and each define ``create_event_loop`` themselves
    (``EPollEventLoopTests``, ``PollEventLoopTests``, ``SelectEventLoopTests``,
    ``KqueueEventLoopTests``...: one asyncio selector each).  On a hookloop
    target they would all run the same loop, so one is kept: the one named
    after the backend (``PollEventLoopTests`` for ``poll``) if the group has
    it, else the first the suite defines.
    """
    groups: dict[tuple[type, ...], list[type]] = {}
    for _, cls in cases:
        if "create_event_loop" in vars(cls):
            groups.setdefault(cls.__bases__, []).append(cls)
    dropped: set[str] = set()
    for members in groups.values():
        if len(members) < 2:
            continue
        members.sort(
            key=lambda c: c.create_event_loop.__code__.co_firstlineno  # type: ignore[attr-defined]  # checked above
        )
        named = [c for c in members if c.__name__.lower() == f"{target.backend}eventlooptests"]
        keep = (named or members)[0]
        dropped.update(c.__name__ for c in members if c is not keep)
    return dropped


def _virtual_time_tests(suite: str, cls: type) -> tuple[set[str], set[str]]:
    """(virtual-time tests, real-loop tests of a virtual-time class) of ``cls``.

    The virtual-time ones run on asyncio's ``TestLoop`` only: the tests of a
    class whose setUp (any in its MRO: they chain through ``super()``) calls
    ``self.new_test_loop()``, but for those whose own source makes a real
    loop (LOOP_MAKING_CALLS) or REAL_LOOP_IN_VIRTUAL_CLASS names.  Whether
    they really make no hookloop loop, and the others do, is checked when
    they run (:mod:`._hooks`), not assumed.
    """
    builds_test_loop = False
    for klass in cls.__mro__:
        set_up = vars(klass).get("setUp")
        if set_up is not None:
            try:
                source = inspect.getsource(set_up)
            except (OSError, TypeError):
                continue
            if "new_test_loop(" in source:
                builds_test_loop = True
                break
    if not builds_test_loop:
        return set(), set()
    names = set(unittest.TestLoader().getTestCaseNames(cls))
    real = {name for name in names
            if _makes_a_loop(getattr(cls, name))
            or any(fnmatch.fnmatchcase(f"{suite}::{cls.__name__}::{name}", pattern)
                   for pattern in REAL_LOOP_IN_VIRTUAL_CLASS)}
    return names - real, real


def _makes_a_loop(test: Any) -> bool:
    """Whether a test method's own source calls one of LOOP_MAKING_CALLS
    without naming asyncio's loop class for it (ASYNCIO_LOOP_NAMED)."""
    try:
        source = inspect.getsource(inspect.unwrap(test))
    except (OSError, TypeError):
        return False
    return (any(call in source for call in LOOP_MAKING_CALLS)
            and not any(name in source for name in ASYNCIO_LOOP_NAMED))


def _camel(suite: str) -> str:
    return "".join(part.capitalize() for part in suite.split("_"))


def _skipped_test(name: str, reason: str) -> Callable[[], None]:
    def test() -> None:
        pytest.skip(reason)

    test.__name__ = test.__qualname__ = name
    test.__module__ = __name__
    return test


def _import_suite(suite: str) -> tuple[Any, str | None]:
    """The suite module, or a skip reason."""
    try:
        return importlib.import_module(f"test.test_asyncio.test_{suite}"), None
    except unittest.SkipTest as exc:
        return None, f"test.test_asyncio.test_{suite} skipped itself: {exc}"
    except ImportError as exc:
        return None, f"test.test_asyncio.test_{suite} is not importable: {exc}"


def _build() -> dict[str, object]:
    generated: dict[str, object] = {}
    baseline = os.environ.get("HOOKLOOP_CONFORMANCE_BASELINE", "")
    if baseline == "only":
        targets: list[Target] = []
        why_not: str | None = None
    else:
        targets, why_not = _hookloop_targets()
    if why_not is not None:
        generated["test_hookloop_unavailable"] = _skipped_test(
            "test_hookloop_unavailable",
            f"{why_not}\nonly asyncio's own loop (the baseline) runs",
        )
    if why_not is not None or baseline in ("1", "only"):
        targets.append(_baseline_target())

    try:
        import test.test_asyncio  # type: ignore[import-not-found]  # noqa: F401 - runs requires_working_socket()
    except (ImportError, unittest.SkipTest) as exc:
        generated["test_cpython_test_asyncio_unavailable"] = _skipped_test(
            "test_cpython_test_asyncio_unavailable",
            f"CPython's test.test_asyncio is not available in this Python "
            f"({sys.version.split()[0]}, {sys.executable}): {exc!r}",
        )
        return generated

    for suite in SUITES:
        since, until = SUITE_PYTHONS.get(suite, ((0, 0), None))
        if sys.version_info < since or (until is not None and sys.version_info >= until):
            continue
        module, reason = _import_suite(suite)
        if module is None:
            name = f"test_cpython_asyncio_{suite}_unavailable"
            generated[name] = _skipped_test(name, reason)  # type: ignore[arg-type]  # set when module is None
            continue
        cases = _suite_test_cases(module)
        for target in targets:
            if target.stall is not None and suite not in STALLED_SUITES:
                continue
            skip = set() if target.is_baseline else _per_selector_choice(cases, target)
            for _, cls in cases:
                if not target.is_baseline and (
                    cls.__name__ in skip or f"{suite}::{cls.__name__}" in ASYNCIO_LOOP_CLASSES
                    or f"{suite}::{cls.__name__}" in DUPLICATE_ON_HOOKLOOP
                ):
                    continue
                # Virtual-time tests run on VIRTUAL only; the rest everywhere else.
                left_out: set[str] = set()
                listed: set[str] = set()
                if not target.is_baseline:
                    virtual, listed = _virtual_time_tests(suite, cls)
                    names = set(unittest.TestLoader().getTestCaseNames(cls))
                    left_out = names - virtual if target.virtual else virtual
                    if names and left_out == names:
                        continue
                name = f"Test{_camel(suite)}_{target.name}__{cls.__name__}"
                assert name not in generated, f"duplicate generated class {name}"
                ns = _class_namespace(target, suite, module, cls)
                # None is not callable: unittest's loader (and so pytest) skips the name.
                ns.update(dict.fromkeys(left_out))
                ns["_hookloop_listed_real"] = listed
                new_cls = type(name, (_Harness, cls), ns)
                new_cls.__qualname__ = name
                generated[name] = new_cls
    return generated


globals().update(_build())


if __name__ == "__main__":  # a quick inventory, no tests run
    classes = [v for k, v in dict(globals()).items() if k.startswith("Test")]
    loader = unittest.TestLoader()
    ids: set[str] = set()
    for c in classes:
        names = loader.getTestCaseNames(c)
        needs = getattr(c, "_hookloop_needs_missing_service", {})
        extra = f" ({len(needs)} deselected: missing service)" if needs else ""
        print(f"{c.__name__}: {len(names)} tests{extra}")
        ids.update(f"{c._hookloop_suite}::{c.__mro__[2].__name__}::{n}" for n in names)
    print("loop_factory not substituted:", NOT_SUBSTITUTED or "none")
    for table in ("NEEDS_SERVICE", "KNOWN_INCOMPATIBLE"):
        unused = [p for p in globals()[table] if not fnmatch.filter(ids, p)]
        print(f"{table} patterns matching no test in this Python:", unused or "none")
