"""Tests of what is particular to hookloop-uring (the contract kit covers the rest).

Each one is about a fact of io_uring the module docstring of
:mod:`hookloop_uring.uring_poller` states: batching, the submission queue
filling up, the file reference an armed request holds, tokens, the GIL,
failed requests, ring set-up failures, fork.
"""
from __future__ import annotations

import errno
import os
import resource
import select
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import hookloop
import hookloop_uring
from hookloop import BackendUnavailableError
from hookloop.poller import READ, WRITE
from hookloop_uring import UringPoller, probe
from hookloop_uring import uring_poller as module

Pair = tuple[socket.socket, socket.socket]

UNAVAILABLE = probe()


@pytest.fixture
def poller() -> Iterator[UringPoller]:
    if UNAVAILABLE is not None:
        pytest.skip(UNAVAILABLE)
    p = UringPoller()
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def pairs() -> Iterator[list[Pair]]:
    made: list[Pair] = []
    try:
        yield made
    finally:
        for a, b in made:
            a.close()
            b.close()


def ready(poller: UringPoller) -> dict[int, int]:
    events: dict[int, int] = {}
    for fd, bits in poller.poll(0):
        events[fd] = events.get(fd, 0) | bits
    return events


def test_hook_offers_uring() -> None:
    (record,) = hookloop_uring.hookloop_pollers()
    assert (record.name, record.priority, record.distribution) == (
        "uring", 280, "hookloop-uring")
    assert record.factory is UringPoller
    assert record.unavailable == UNAVAILABLE
    # Below epoll until the bench says otherwise (issue #16).
    assert record.priority < 300


def test_masks_are_poll_bits(poller: UringPoller) -> None:
    hangup = select.POLLERR | select.POLLHUP | select.POLLNVAL
    assert poller.READABLE & hangup == hangup
    assert poller.WRITABLE & hangup == hangup
    assert not poller.READABLE & select.POLLOUT
    assert not poller.WRITABLE & select.POLLIN


def test_interest_changes_go_in_one_submit(poller: UringPoller, pairs: list[Pair]) -> None:
    for _ in range(50):
        pairs.append(socket.socketpair())
    before = poller.statistics()["submits"]
    for a, _ in pairs:
        poller.register(a.fileno(), WRITE)
    for a, _ in pairs[:25]:
        poller.modify(a.fileno(), READ | WRITE)
    assert poller.statistics()["submits"] == before, "a change was submitted before poll()"
    events = ready(poller)
    assert poller.statistics()["submits"] == before + 1
    assert set(events) == {a.fileno() for a, _ in pairs}


def test_a_full_submission_queue_is_flushed_never_lost(pairs: list[Pair]) -> None:
    """More changes in one iteration than the ring has entries: all take effect."""
    if UNAVAILABLE is not None:
        pytest.skip(UNAVAILABLE)
    p = UringPoller(entries=8)
    try:
        for _ in range(100):
            pairs.append(socket.socketpair())
        for a, _ in pairs:
            p.register(a.fileno(), READ)
        for a, _ in pairs:
            p.modify(a.fileno(), WRITE)  # 2 SQEs each: 300 SQEs in all
        assert p.statistics()["submits"] >= 300 // 8 - 1, "the queue was never flushed early"
        seen: dict[int, int] = {}
        while len(seen) < len(pairs):
            batch = p.poll(5.0)
            assert batch, f"only {len(seen)} of {len(pairs)} fds reported"
            for fd, bits in batch:
                seen[fd] = seen.get(fd, 0) | bits
        assert set(seen) == {a.fileno() for a, _ in pairs}
        for bits in seen.values():  # the modify took effect: writable, not read-armed
            assert bits & p.WRITABLE and not bits & select.POLLIN
    finally:
        p.close()


def test_unregister_releases_the_file_at_once(poller: UringPoller,
                                              hookloop_socketpair: Pair) -> None:
    """An armed request holds the file; unregister must drop it before the
    owner's close, or the peer sees no end of file until the next poll()."""
    a, b = hookloop_socketpair
    poller.register(a.fileno(), READ)
    poller.poll(0)  # armed in the kernel
    poller.unregister(a.fileno())
    a.close()
    b.settimeout(10.0)  # a safety net, not a synchronisation: EOF is immediate
    assert b.recv(1) == b"", "the peer did not see the close"


def test_a_completion_of_a_removed_registration_is_dropped(
        poller: UringPoller, hookloop_socketpair: Pair) -> None:
    a, b = hookloop_socketpair
    c, d = socket.socketpair()
    fd = a.fileno()
    try:
        poller.register(fd, READ)
        b.send(b"x")
        poller._submit()  # the request completes at once: its CQE waits in the ring
        assert module.liburing.io_uring_cq_ready(poller._ring) == 1
        poller.unregister(fd)
        a.close()
        os.dup2(c.fileno(), fd)  # the number now names an unregistered, idle file
        poller.register(fd, READ)
        assert poller.poll(0) == [], "the old file's completion was reported for the new one"
        d.send(b"y")
        assert ready(poller).get(fd, 0) & select.POLLIN
        poller.unregister(fd)
    finally:
        os.close(fd)
        c.close()
        d.close()


def test_level_triggered_while_data_is_unread(poller: UringPoller,
                                              hookloop_socketpair: Pair) -> None:
    a, b = hookloop_socketpair
    poller.register(a.fileno(), READ)
    b.send(b"xyz")
    for _ in range(3):  # every poll reports it again until it is read
        assert poller.poll(5.0) == [(a.fileno(), select.POLLIN)]
        a.recv(1)
    assert poller.poll(0) == []


def test_poll_zero_with_nothing_ready_does_not_enter_the_kernel(
        poller: UringPoller, hookloop_socketpair: Pair) -> None:
    a, _ = hookloop_socketpair
    poller.register(a.fileno(), READ)
    poller.poll(0)
    before = poller.statistics()
    for _ in range(10):
        assert poller.poll(0) == []
    after = poller.statistics()
    assert (after["submits"], after["waits"]) == (before["submits"], before["waits"])


def test_a_blocked_poll_lets_other_threads_run(poller: UringPoller) -> None:
    """poll() waits with the GIL released: a thread can wake it.  (Waiting
    inside the binding's io_uring_enter would hold the GIL: the thread could
    not run until the timeout, and poll would return nothing.)"""
    poller.register(poller.waker_fd, READ)
    go = threading.Event()

    def wake() -> None:
        go.wait()
        poller.wakeup()

    thread = threading.Thread(target=wake)
    thread.start()
    try:
        go.set()
        events = poller.poll(60.0)
    finally:
        thread.join()
    assert (poller.waker_fd, select.POLLIN) in events


def test_a_failed_request_is_reported_once(poller: UringPoller,
                                           hookloop_socketpair: Pair) -> None:
    """An fd closed after register and before the submit: its request fails
    (EBADF); that is reported once, in both masks, then not again."""
    a, b = hookloop_socketpair
    c, d = socket.socketpair()
    try:
        poller.register(a.fileno(), WRITE)
        fd = c.fileno()
        poller.register(fd, READ)
        c.close()  # behind the poller's back, before anything was submitted
        events = ready(poller)
        assert events[fd] & poller.READABLE and events[fd] & poller.WRITABLE
        assert fd not in ready(poller)
        poller.unregister(fd)  # never raises
        assert poller.statistics()["registered_fds"] == 1
        assert ready(poller) == {a.fileno(): select.POLLOUT}
    finally:
        d.close()


def test_regular_file_is_always_ready(poller: UringPoller, tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    with open(path, "rb") as f:
        poller.register(f.fileno(), READ)
        for _ in range(3):
            assert poller.poll(5.0) == [(f.fileno(), select.POLLIN)]
        poller.unregister(f.fileno())
    assert poller.poll(0) == []


def test_closed_poller_refuses_use(hookloop_socketpair: Pair) -> None:
    if UNAVAILABLE is not None:
        pytest.skip(UNAVAILABLE)
    p = UringPoller()
    p.close()
    with pytest.raises(ValueError, match="closed uring poller"):
        p.register(hookloop_socketpair[0].fileno(), READ)
    with pytest.raises(ValueError, match="closed uring poller"):
        p.poll(0)
    p.unregister(hookloop_socketpair[0].fileno())  # unknown fd: a no-op still
    p.close()


@pytest.mark.parametrize("entries, error, says", [
    (0, ValueError, "entries option must be from 1 to 32768, got 0"),
    (40000, ValueError, "entries option must be from 1 to 32768, got 40000"),
    ("8", TypeError, "entries option must be an int, not str"),
    (True, TypeError, "entries option must be an int, not bool"),
])
def test_bad_entries_are_refused_before_anything_is_made(entries: object,
                                                         error: type[Exception],
                                                         says: str) -> None:
    if UNAVAILABLE is not None:
        pytest.skip(UNAVAILABLE)
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(error, match=says):
        hookloop.new_event_loop("uring", backend_options={"entries": entries})
    assert len(os.listdir("/proc/self/fd")) == before


def test_entries_option_sizes_the_ring() -> None:
    if UNAVAILABLE is not None:
        pytest.skip(UNAVAILABLE)
    loop = hookloop.new_event_loop("uring", backend_options={"entries": 16})
    try:
        assert loop.poller.statistics()["entries"] == 16
    finally:
        loop.close()


def test_ring_setup_failure_names_the_errno() -> None:
    """A real refusal: no fd left for the ring (EMFILE).  Nothing leaks."""
    if UNAVAILABLE is not None:
        pytest.skip(UNAVAILABLE)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
    before = len(fds)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(fds) + 1, hard))
    try:
        # Fill every free number below the limit, so the ring gets none.
        filler = []
        try:
            while True:
                filler.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass
        try:
            with pytest.raises(BackendUnavailableError) as info:
                UringPoller()
        finally:
            for fd in filler:
                os.close(fd)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert str(info.value) == ("the uring backend cannot work here: io_uring_setup failed: "
                               f"[Errno {errno.EMFILE}] {os.strerror(errno.EMFILE)}")
    assert isinstance(info.value.__cause__, OSError)
    assert len(os.listdir("/proc/self/fd")) == before


@pytest.mark.parametrize("code", [errno.EPERM, errno.ENOMEM, errno.ENOSYS])
def test_a_refused_ring_makes_the_backend_unavailable(monkeypatch: pytest.MonkeyPatch,
                                                      code: int) -> None:
    """seccomp and container policies (EPERM), memory limits (ENOMEM) and old
    kernels (ENOSYS) cannot be arranged in a test; the kernel's answer is put
    in the binding's place.  The probe reports it, `hookloop plugins` lists
    it, and choosing the backend raises with it; the other backends are
    untouched."""
    if UNAVAILABLE is not None:
        pytest.skip(UNAVAILABLE)

    def refuse(*args: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(module.liburing, "io_uring_queue_init", refuse)
    reason = f"io_uring_setup failed: [Errno {code}] {os.strerror(code)}"
    assert probe() == reason
    with pytest.raises(BackendUnavailableError, match=rf"\[Errno {code}\]"):
        UringPoller()
    # Through the assembly too (a fresh one: the probe runs at assembly).
    import hookloop.assembly
    hookloop.assembly.clear_cache()
    hookloop_uring.unavailable_reason.cache_clear()
    try:
        with pytest.raises(BackendUnavailableError) as info:
            hookloop.new_event_loop("uring")
        assert reason in str(info.value)
        (record,) = [b for b in hookloop.list_backends() if b.name == "uring"]
        assert record.unavailable == reason
        assert "uring" not in hookloop.available_backends()
        hookloop.new_event_loop("poll").close()  # nothing else changes
    finally:
        monkeypatch.undo()
        hookloop_uring.unavailable_reason.cache_clear()
        hookloop.assembly.clear_cache()


#: Appended to the set-up of each subprocess below: list the plugins, try the
#: backend, check the default loop still works.
LISTING = (
    "import hookloop, hookloop.cli\n"
    "hookloop.cli.main(['plugins'])\n"
    "try:\n"
    "    hookloop.new_event_loop('uring')\n"
    "except hookloop.BackendUnavailableError as exc:\n"
    "    print('RAISED', exc)\n"
    "hookloop.new_event_loop().close()\n"
    "print('DEFAULT OK')\n")


def listing_after(setup: str, tmp_path: Path) -> tuple[str, str]:
    """Run ``setup`` then :data:`LISTING` in a fresh interpreter: (its output,
    the ``uring`` line of ``hookloop plugins``' backend table)."""
    script = tmp_path / "listing.py"
    script.write_text(setup + LISTING)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLOOP_")}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "DEFAULT OK" in out.stdout, "the default loop no longer works"
    line = next(ln for ln in out.stdout.splitlines() if ln.lstrip().startswith("uring ")
                and "priority" in ln)
    return out.stdout, line


def test_without_the_binding_the_backend_is_listed_unavailable(tmp_path: Path) -> None:
    """liburing missing: importing the plugin still works, `hookloop plugins`
    says what to install, and choosing the backend raises with it."""
    stdout, line = listing_after(
        "import sys\n"
        "sys.modules['liburing'] = None  # import liburing raises ImportError\n", tmp_path)
    assert "unavailable" in line and "pip install liburing" in line
    assert "RAISED" in stdout and "pip install liburing" in stdout


# Python 3.12+ warns on fork() with other threads alive (earlier tests' threads
# and xdist's); the child only closes the poller and leaves with os._exit.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_closing_the_poller_leaves_the_parent_working(
        poller: UringPoller, hookloop_socketpair: Pair) -> None:
    a, b = hookloop_socketpair
    poller.register(a.fileno(), READ)
    poller.poll(0)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            poller.close()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    b.send(b"x")
    assert poller.poll(5.0) == [(a.fileno(), select.POLLIN)]


CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
flags\t\t: fpu sse2 avx avx2 bmi1 bmi2 movbe
bugs\t\t: sysret_ss_attrs
"""


def test_missing_cpu_features_reads_the_flags_line() -> None:
    if module.platform.machine() != "x86_64":
        assert module.missing_cpu_features(CPUINFO) == []
        return
    assert module.missing_cpu_features(CPUINFO) == ["avx512bw", "avx512f", "avx512vl"]
    full = CPUINFO.replace("movbe", "movbe avx512f avx512bw avx512vl")
    assert module.missing_cpu_features(full) == []
    assert module.missing_cpu_features("processor : 0\n") == []  # nothing to go by


@pytest.mark.skipif(sys.platform != "linux" or module.platform.machine() != "x86_64",
                    reason="the CPU gate is for the x86-64 wheel")
def test_on_a_cpu_the_wheel_cannot_run_the_binding_is_never_imported(tmp_path: Path) -> None:
    """The wheel would die of SIGILL there: it must not even be imported, and
    the backend is listed unavailable with the reason."""
    stdout, line = listing_after(
        "import builtins, io, sys\n"
        f"CPUINFO = {CPUINFO!r}\n"
        "real_open = builtins.open\n"
        "def fake_open(path, *args, **kwargs):\n"
        "    if path == '/proc/cpuinfo':\n"
        "        return io.StringIO(CPUINFO)\n"
        "    return real_open(path, *args, **kwargs)\n"
        "builtins.open = fake_open\n"
        "class NoBinding:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'liburing':\n"
        "            raise AssertionError('liburing imported on a CPU it cannot run on')\n"
        "sys.meta_path.insert(0, NoBinding())\n", tmp_path)
    assert "unavailable: the liburing wheel uses instructions this CPU lacks " \
           "(avx512bw, avx512f, avx512vl)" in line
    assert "RAISED" in stdout and "avx512f" in stdout.split("RAISED", 1)[1]
