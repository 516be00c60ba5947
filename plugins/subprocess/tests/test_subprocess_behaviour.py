"""hookloop-subprocess: what a subprocess does, on every backend.

Each test runs on every installed backend (``sp_loop``) and, with
``HOOKLOOP_SUBPROCESS_BASELINE=1``, on asyncio's own loop, where it passes
too (``hookloop_only`` tests excepted).  Waits are on events (futures,
readiness lines from the child, EOF), never on timed sleeps.
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading

import pytest
from subprocess_helpers import (
    BASELINE,
    READY_THEN_SLEEP,
    fd_count,
    hookloop_only,
    run,
    unreaped,
)

PIPE = asyncio.subprocess.PIPE


class Recorder(asyncio.SubprocessProtocol):
    """Records every protocol call, in order; ``lost`` when connection_lost."""

    def __init__(self, loop):
        self.events = []
        self.data = {1: b"", 2: b""}
        self.transport = None
        self.lost = loop.create_future()
        self.pipe_lost = {fd: loop.create_future() for fd in range(3)}

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("connection_made")

    def pipe_data_received(self, fd, data):
        self.events.append(("data", fd))
        self.data[fd] += data

    def pipe_connection_lost(self, fd, exc):
        self.events.append(("pipe_lost", fd))
        self.pipe_lost[fd].set_result(exc)

    def process_exited(self):
        self.events.append(("exited", self.transport.get_returncode()))

    def connection_lost(self, exc):
        self.events.append("connection_lost")
        self.lost.set_result(exc)


def test_spawn_and_wait_many_leaves_no_zombie_and_no_fd(spawned, sp_loop):
    async def one():
        proc = await asyncio.create_subprocess_exec("true")
        return await proc.wait()

    async def main():
        codes = []
        for _ in range(20):  # 1,000 children, 50 at a time
            codes += await asyncio.gather(*(one() for _ in range(50)))
        return codes

    run(sp_loop, asyncio.sleep(0))
    before = fd_count()
    codes = run(sp_loop, main())
    assert codes == [0] * 1000
    assert len(spawned) == 1000
    assert unreaped(spawned) == []
    assert fd_count() == before


def test_communicate_16_mib_each_way(sp_loop):
    payload = os.urandom(1 << 20) * 16

    async def main():
        proc = await asyncio.create_subprocess_exec("cat", stdin=PIPE, stdout=PIPE)
        out, err = await proc.communicate(payload)
        return out, err, proc.returncode

    out, err, code = run(sp_loop, main())
    assert (len(out), err, code) == (len(payload), None, 0)
    assert out == payload


def test_protocol_callbacks_in_asyncios_order(sp_loop):
    code = "import sys; sys.stdout.write('out'); sys.stderr.write('err'); sys.exit(5)"

    async def main():
        transport, proto = await sp_loop.subprocess_exec(
            lambda: Recorder(sp_loop), sys.executable, "-c", code, stdin=None)
        # subprocess_exec returns after connection_made ran.
        assert proto.events[0] == "connection_made"
        assert transport.get_pipe_transport(0) is None
        assert await proto.lost is None
        transport.close()
        return transport, proto

    transport, proto = run(sp_loop, main())
    events = proto.events
    assert events[0] == "connection_made" and events[-1] == "connection_lost"
    assert ("exited", 5) in events
    for fd in (1, 2):
        assert events.index(("data", fd)) < events.index(("pipe_lost", fd))
    assert proto.data == {1: b"out", 2: b"err"}
    assert transport.get_returncode() == 5
    assert isinstance(transport.get_extra_info("subprocess"), subprocess.Popen)
    with pytest.raises(ProcessLookupError):
        transport.kill()  # after connection_lost, as asyncio's


@pytest.mark.parametrize(("how", "expected"), [
    ("terminate", -signal.SIGTERM),
    ("kill", -signal.SIGKILL),
    ("send_signal", -signal.SIGUSR1),
])
def test_terminate_kill_send_signal(sp_loop, how, expected):
    async def main():
        proc = await asyncio.create_subprocess_exec(*READY_THEN_SLEEP, stdout=PIPE)
        assert await proc.stdout.readexactly(5) == b"ready"
        assert proc.returncode is None
        if how == "send_signal":
            proc.send_signal(signal.SIGUSR1)
        else:
            getattr(proc, how)()
        code = await proc.wait()
        assert await proc.stdout.read() == b""
        return code

    assert run(sp_loop, main()) == expected


def test_signals_after_exit_never_reach_the_pid(sp_loop, monkeypatch):
    # gh-127049: once the child is reaped (its exit published), signalling it
    # is a no-op: os.kill is not called with a pid the kernel may reuse.
    killed = []
    real_kill = os.kill

    def kill(pid, sig):
        killed.append((pid, sig))
        real_kill(pid, sig)

    class SignalOnExit(Recorder):
        def process_exited(self):
            super().process_exited()
            self.transport.kill()
            self.transport.terminate()
            self.transport.send_signal(signal.SIGUSR1)

    async def main():
        transport, proto = await sp_loop.subprocess_exec(
            lambda: SignalOnExit(sp_loop), *READY_THEN_SLEEP, stdin=None, stderr=None)
        monkeypatch.setattr(os, "kill", kill)
        transport.kill()
        assert await proto.lost is None
        transport.close()
        return transport.get_pid(), transport.get_returncode()

    pid, code = run(sp_loop, main())
    assert code == -signal.SIGKILL
    assert killed == [(pid, signal.SIGKILL)]


def test_child_closing_stdout_early(sp_loop):
    # The child closes its stdout at once, then waits for stdin to end.
    code = "import os, sys; os.close(1); sys.stdin.buffer.read(); sys.exit(3)"

    async def main():
        transport, proto = await sp_loop.subprocess_exec(
            lambda: Recorder(sp_loop), sys.executable, "-c", code, stderr=None)
        assert await proto.pipe_lost[1] is None
        assert transport.get_returncode() is None
        assert "connection_lost" not in proto.events
        stdin = transport.get_pipe_transport(0)
        stdin.write(b"bye")
        stdin.close()
        assert await proto.lost is None
        transport.close()
        return proto.events

    events = run(sp_loop, main())
    assert events.index(("pipe_lost", 1)) < events.index(("exited", 3))
    assert events[-1] == "connection_lost"
    assert ("pipe_lost", 0) in events


def test_stdin_broken_pipe(sp_loop):
    # The child exits, unread, while we still have data buffered for its
    # stdin: drain() raises, nothing is reported to the exception handler
    # (sp_loop fails the test if it is).
    rfd, wfd = os.pipe()
    try:
        async def main():
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", f"import os; os.read({rfd}, 1)", stdin=PIPE,
                pass_fds=(rfd,))
            proc.stdin.write(b"x" * (4 << 20))  # more than the pipe holds: buffered
            os.write(wfd, b"go")  # now the child exits
            with pytest.raises((BrokenPipeError, ConnectionResetError)):
                await proc.stdin.drain()
            assert await proc.wait() == 0

        run(sp_loop, main())
    finally:
        os.close(rfd)
        os.close(wfd)


def test_communicate_ignores_broken_stdin(sp_loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import os; os.close(0)", stdin=PIPE, stdout=PIPE)
        out, _ = await proc.communicate(b"x" * (4 << 20))
        return out, proc.returncode

    assert run(sp_loop, main()) == (b"", 0)


def test_stdio_choices(sp_loop, tmp_path):
    # DEVNULL, STDOUT, a file object and a bare fd.
    code = ("import sys; data = sys.stdin.buffer.read(); sys.stdout.write('o%d' % len(data)); "
            "sys.stdout.flush(); sys.stderr.write('e')")
    target = tmp_path / "out"

    async def main():
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, stdin=asyncio.subprocess.DEVNULL, stdout=PIPE,
            stderr=asyncio.subprocess.STDOUT)
        merged = await proc.stdout.read()
        await proc.wait()
        with open(target, "wb") as f:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", code, stdin=PIPE, stdout=f, stderr=f.fileno())
            await proc.communicate(b"abc")
        return merged

    assert run(sp_loop, main()) == b"o0e"
    assert target.read_bytes() == b"o3e"


def test_shell_cwd_env_and_new_session(sp_loop, tmp_path):
    async def main():
        proc = await asyncio.create_subprocess_shell(
            'echo "$HOOKLOOP_X $(pwd)"; exit 7', stdout=PIPE, cwd=tmp_path,
            env={**os.environ, "HOOKLOOP_X": "x"}, start_new_session=True)
        out, _ = await proc.communicate()
        return out, proc.returncode

    out, code = run(sp_loop, main())
    assert (out, code) == (f"x {tmp_path}\n".encode(), 7)


def test_pass_fds(sp_loop):
    r, w = os.pipe()
    try:
        async def main():
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", f"import os; os.write({w}, b'via pass_fds')",
                pass_fds=iter([w]))  # any iterable, as Popen takes
            return await proc.wait()

        assert run(sp_loop, main()) == 0
        assert os.read(r, 100) == b"via pass_fds"
    finally:
        os.close(r)
        os.close(w)


def test_flow_control_pauses_reading_of_a_chatty_child(sp_loop):
    # A StreamReader over its limit pauses the stdout pipe transport, and
    # resumes it as it is read: the whole output arrives.
    size = 1 << 20

    async def main():
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", f"import sys; sys.stdout.buffer.write(b'x' * {size})",
            stdout=PIPE, limit=16)
        transport = proc._transport.get_pipe_transport(1)
        assert transport.is_reading()
        first = await proc.stdout.readexactly(1)  # the first chunk is over 2 * limit
        assert not transport.is_reading()
        data = first + await proc.stdout.read()
        assert await proc.wait() == 0
        return len(data)

    assert run(sp_loop, main()) == size


def test_cancelled_spawn_leaves_no_child_and_no_fd(spawned, sp_loop):
    async def main():
        task = asyncio.ensure_future(asyncio.create_subprocess_exec(
            *READY_THEN_SLEEP, stdin=PIPE, stdout=PIPE, stderr=PIPE))
        sp_loop.call_soon(task.cancel)
        with pytest.raises(asyncio.CancelledError):
            await task

    run(sp_loop, asyncio.sleep(0))
    before = fd_count()
    run(sp_loop, main())
    run(sp_loop, asyncio.sleep(0))
    assert len(spawned) == 1
    assert unreaped(spawned) == []
    assert fd_count() == before


def test_close_kills_a_running_child(spawned, sp_loop):
    async def main():
        transport, proto = await sp_loop.subprocess_exec(
            lambda: Recorder(sp_loop), *READY_THEN_SLEEP)
        transport.close()
        assert await proto.lost is None
        return transport.get_returncode()

    assert run(sp_loop, main()) == -signal.SIGKILL
    assert unreaped(spawned) == []


def test_wait_returns_while_a_grandchild_holds_the_pipe(sp_loop):
    # gh-119710: the child exits; its child keeps stdout open until stdin ends.
    code = ("import subprocess, sys; subprocess.Popen([sys.executable, '-c', "
            "'import sys; sys.stdout.write(\"r\"); sys.stdout.flush(); sys.stdin.read()'])")

    async def main():
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, stdin=PIPE, stdout=PIPE)
        assert await proc.stdout.readexactly(1) == b"r"
        code_ = await proc.wait()
        proc.stdin.close()  # the grandchild exits
        assert await proc.stdout.read() == b""
        return code_

    assert run(sp_loop, main()) == 0


def _worker_thread_main():
    async def main():
        proc = await asyncio.create_subprocess_exec(
            "cat", stdin=PIPE, stdout=PIPE)
        out, _ = await proc.communicate(b"from a thread")
        killed = await asyncio.create_subprocess_exec(*READY_THEN_SLEEP, stdout=PIPE)
        await killed.stdout.readexactly(5)
        killed.kill()
        return out, proc.returncode, await killed.wait(), threading.current_thread().name

    return main()


def test_loop_in_a_worker_thread(spawned, hookloop_backend):
    results = []

    def worker():
        if BASELINE:
            results.append(asyncio.run(_worker_thread_main()))
        else:
            import hookloop
            results.append(hookloop.run(_worker_thread_main(), backend=hookloop_backend))

    thread = threading.Thread(target=worker, name="sp-worker")
    thread.start()
    thread.join(60)
    assert not thread.is_alive()
    assert results == [(b"from a thread", 0, -signal.SIGKILL, "sp-worker")]
    assert unreaped(spawned) == []


@hookloop_only
def test_loop_close_kills_and_reaps_running_children(spawned, hookloop_backend):
    import hookloop

    before = fd_count()
    loop = hookloop.new_event_loop(hookloop_backend)

    async def main():
        procs = []
        for _ in range(3):
            proc = await asyncio.create_subprocess_exec(*READY_THEN_SLEEP, stdin=PIPE,
                                                        stdout=PIPE)
            await proc.stdout.readexactly(5)
            procs.append(proc)
        return procs

    procs = run(loop, main())
    loop.close()
    for proc in procs:
        assert proc.returncode == -signal.SIGKILL
        with pytest.raises(ChildProcessError):
            os.waitpid(proc.pid, os.WNOHANG)  # reaped already
    del procs
    assert unreaped(spawned) == []
    assert fd_count() == before  # pidfds, pipe ends and the loop's own fds


def test_pipe_transports_take_patched_methods(sp_loop):
    # As on asyncio's loop, code may patch methods on a child's pipe
    # transports (test_asyncio's test_pause_reading does); the core's pipe
    # transports have an instance __dict__ for that.
    from unittest import mock

    async def main():
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import sys; sys.stdout.write('x' * 64)", stdout=PIPE,
            limit=8)
        transport = proc._transport.get_pipe_transport(1)
        transport.pause_reading = mock.Mock()
        transport.resume_reading = mock.Mock()
        out, _ = await proc.communicate()
        return out, transport

    out, transport = run(sp_loop, main())
    assert out == b"x" * 64
    assert transport.pause_reading.called and transport.resume_reading.called


def test_process_group_and_umask(sp_loop):
    code = ("import os; old = os.umask(0); "
            "print(os.getpgid(0) == os.getpid(), oct(old))")

    async def main():
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, stdout=PIPE, process_group=0, umask=0o027)
        out, _ = await proc.communicate()
        return out.split(), proc.returncode

    assert run(sp_loop, main()) == ([b"True", b"0o27"], 0)


def test_debug_mode_spawn_and_close(sp_loop, caplog):
    # Debug mode logs what it does and changes nothing else.
    sp_loop.set_debug(True)

    async def main():
        transport, proto = await sp_loop.subprocess_exec(
            lambda: Recorder(sp_loop), *READY_THEN_SLEEP, stdin=None, stderr=None)
        assert f"pid={transport.get_pid()}" in repr(transport)
        assert "running" in repr(transport)
        transport.close()  # kills it, with a warning in debug mode
        assert await proto.lost is None
        assert f"returncode={-signal.SIGKILL}" in repr(transport)
        return transport.get_returncode()

    with caplog.at_level("DEBUG", logger="asyncio"):
        assert run(sp_loop, main()) == -signal.SIGKILL
    assert "Close running child process: kill" in caplog.text
