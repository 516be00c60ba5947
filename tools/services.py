#!/usr/bin/env python3
"""Throwaway PostgreSQL and Redis servers for hookloop's integration tests.

This file owns everything about the database services the tests in
``tests/integration`` talk to: installing the Debian packages when they are
missing, making a fresh PostgreSQL cluster and a Redis, starting them on free
127.0.0.1 ports, waiting until they accept connections, recording them in a
state file, and stopping them.  Nothing here is specific to pytest; the
integration tests' ``conftest.py`` drives it through its command line::

    python3 tools/services.py install                      # packages only
    python3 tools/services.py start   [--base DIR] [--only postgres|redis]
    python3 tools/services.py env     [--base DIR]         # HOOKLOOP_PG_DSN=..., ...
    python3 tools/services.py stop    [--base DIR] [--only postgres|redis]
    python3 tools/services.py restart [--base DIR] [--only postgres|redis]

Everything lives in the base directory (default: ``$TMPDIR/hookloop-services``):
``state.json`` (DSN, Redis URL, ports, pids), ``postgres/`` (data directory,
unix socket directory, log) and ``redis/`` (working directory, pid file, log).
Several base directories can be in use at once (one per pytest-xdist
worker); each gets its own ports and processes.

``start`` makes each selected service that the state does not record, and
starts again (on its recorded port, with its data) one that ``stop --only``
stopped.  ``stop`` without ``--only`` stops everything and removes the base
directory; with ``--only`` it stops those services and keeps their record, so
that ``start``/``restart`` bring them back on the same port.

Packages (Debian 12): ``postgresql`` (binaries in /usr/lib/postgresql/*/bin)
and ``redis-server``.  A missing one is installed with apt-get when running
as root; otherwise, or when apt-get fails, the command exits non-zero naming
the package and the command to run.  PostgreSQL refuses to run as root, so as
root the cluster belongs to the ``postgres`` system user (``runuser``).

Standard library only; Python 3.11+.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVICES = ("postgres", "redis")
PACKAGES = {"postgres": "postgresql", "redis": "redis-server"}
PG_USER = "hookloop"
PG_DATABASE = "hookloop"
#: How long a server may take to accept connections (a busy 2-CPU machine).
START_DEADLINE = 60.0
STOP_DEADLINE = 30.0
#: A free port can be taken by someone else between our probe and the
#: server's bind; a server that fails to bind is started again on another.
PORT_ATTEMPTS = 5
APT_LOCK = Path(tempfile.gettempdir()) / "hookloop-services-apt.lock"


class ServiceError(Exception):
    """A service could not be installed, started or stopped (the message says why)."""


class AlreadyRunning(ServiceError):
    """``start`` of a service that runs already (nothing is undone)."""


def default_base() -> Path:
    return Path(tempfile.gettempdir()) / "hookloop-services"


# ---------------------------------------------------------------- packages

def _pg_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(found[-1]).parent if found else None


def _redis_server() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK) else None)


def _have(service: str) -> bool:
    return (_pg_bindir() if service == "postgres" else _redis_server()) is not None


def _dpkg_installed(package: str) -> bool:
    try:
        result = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                                capture_output=True, text=True)
    except FileNotFoundError:
        return False
    return result.returncode == 0 and result.stdout.strip().endswith(" installed")


def _install_hint(packages: Sequence[str]) -> str:
    names = " ".join(packages)
    sudo = "" if os.geteuid() == 0 else "sudo "
    return (f"{sudo}apt-get update && {sudo}env DEBIAN_FRONTEND=noninteractive "
            f"apt-get install -y --no-install-recommends {names}")


@contextlib.contextmanager
def _apt_lock() -> Iterator[None]:
    """Serialise the check-and-install of parallel ``start``s (xdist workers)."""
    with open(APT_LOCK, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def ensure_packages(services: Sequence[str]) -> None:
    """Install the Debian packages of ``services`` that are missing.

    Nothing runs when the binaries are there already.  ``apt-get update`` runs
    once, and only when something must be installed.
    """
    missing = [PACKAGES[s] for s in services if not _have(s)]
    if not missing:
        return
    hint = _install_hint(missing)
    if os.geteuid() != 0:
        raise ServiceError(f"missing Debian package(s) {' '.join(missing)} and not root, "
                           f"so cannot install them; run: {hint}")
    if shutil.which("apt-get") is None:
        raise ServiceError(f"missing package(s) {' '.join(missing)} and no apt-get here; "
                           f"install them with the system's package manager "
                           f"(on Debian: {hint})")
    with _apt_lock():
        missing = [PACKAGES[s] for s in services if not _have(s)]
        if not missing:  # another process installed them while we waited
            return
        hint = _install_hint(missing)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        print(f"services: installing {' '.join(missing)} with apt-get ...",
              file=sys.stderr, flush=True)
        for cmd in (["apt-get", "update", "-q"],
                    ["apt-get", "install", "-y", "-q", "--no-install-recommends",
                     "-o", "DPkg::Lock::Timeout=300", *missing]):
            result = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL,
                                    capture_output=True, text=True)
            if result.returncode != 0:
                raise ServiceError(
                    f"could not install Debian package(s) {' '.join(missing)}: "
                    f"`{' '.join(cmd)}` exited with {result.returncode}:\n"
                    f"{_tail(result.stdout + result.stderr)}\nrun: {hint}")
        still = [PACKAGES[s] for s in services if not _have(s)]
        if still:
            states = ", ".join(f"{p}: {'installed' if _dpkg_installed(p) else 'not installed'}"
                               for p in still)
            raise ServiceError(f"apt-get ran, but the binaries of {' '.join(still)} are still "
                               f"missing ({states}); run: {hint}")


# ---------------------------------------------------------------- helpers

def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _log_tail(path: Path) -> str:
    try:
        return _tail(path.read_text(errors="replace"))
    except OSError:
        return "(no log)"


def _log_since(path: Path, offset: int) -> str:
    """What ``path`` gained after ``offset`` (one start attempt's messages)."""
    with open(path, errors="replace") as f:
        f.seek(offset)
        return f.read()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie -- dead, not yet reaped -- does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_dead(pid: int, deadline: float) -> bool:
    delay = 0.005
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(delay)  # polling a process we cannot wait() for (not our child)
        delay = min(delay * 2, 0.1)
    return True


def _kill(pid: int) -> None:
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        if _wait_dead(pid, time.monotonic() + grace):
            return
    raise ServiceError(f"process {pid} survived SIGKILL")


class _Poll:
    """Back-off for readiness polling, up to a deadline."""

    def __init__(self, what: str, timeout: float = START_DEADLINE) -> None:
        self.what = what
        self.deadline = time.monotonic() + timeout
        self.delay = 0.005

    def wait(self) -> bool:
        """Sleep a little; False once the deadline has passed."""
        if time.monotonic() > self.deadline:
            return False
        time.sleep(self.delay)
        self.delay = min(self.delay * 1.5, 0.1)
        return True


@dataclass
class _Runner:
    """Runs commands as the user that owns the PostgreSQL cluster."""

    owner: str | None  # a user to switch to (we are root), or None: ourselves

    @classmethod
    def for_postgres(cls) -> _Runner:
        if os.geteuid() != 0:
            return cls(None)
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise ServiceError("running as root, and there is no `postgres` user to own the "
                               "cluster (PostgreSQL refuses to run as root); install the "
                               f"`postgresql` package: {_install_hint(['postgresql'])}") from None
        if shutil.which("runuser") is None:
            raise ServiceError("running as root and `runuser` (util-linux) is missing: it is "
                               "needed to run PostgreSQL as the `postgres` user")
        return cls("postgres")

    def argv(self, *cmd: object) -> list[str]:
        prefix = ["runuser", "-u", self.owner, "--"] if self.owner else []
        return prefix + [str(c) for c in cmd]

    def chown(self, path: Path) -> None:
        if self.owner:
            entry = pwd.getpwnam(self.owner)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def run(self, *cmd: object, cwd: Path, timeout: float = START_DEADLINE
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*cmd), cwd=cwd, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=timeout)


# ---------------------------------------------------------------- state

def _state_file(base: Path) -> Path:
    return base / "state.json"


def load_state(base: Path) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads(_state_file(base).read_text())
    except FileNotFoundError:
        return {}
    return state


def _save_state(base: Path, state: dict[str, Any]) -> None:
    tmp = _state_file(base).with_suffix(".tmp")
    tmp.touch(mode=0o600)  # it holds the test user's password
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    tmp.replace(_state_file(base))


# ---------------------------------------------------------------- PostgreSQL

def _pg_start(base: Path, record: dict[str, Any] | None) -> dict[str, Any]:
    """Start the cluster in ``base/postgres`` (made first when ``record`` is
    None); return its record once it accepts connections over TCP."""
    bindir = _pg_bindir()
    assert bindir is not None
    runner = _Runner.for_postgres()
    root = base / "postgres"
    data, sockets, log = root / "data", root / "run", root / "postgres.log"
    if record is None:
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(mode=0o755)
        for d in (data, sockets):
            d.mkdir(mode=0o700)
            runner.chown(d)
        log.touch()
        runner.chown(log)
        probe = runner.run("test", "-w", data, cwd=root)
        if probe.returncode != 0:
            raise ServiceError(f"the `{runner.owner}` user cannot write to {data}: every parent "
                               f"directory of the base dir must be searchable by it "
                               f"(chmod o+x), or choose another --base")
        result = runner.run(bindir / "initdb", "-D", data, "-U", "postgres",
                            "--auth-local=trust", "--auth-host=scram-sha-256",
                            "--encoding=UTF8", "--no-locale", "--no-sync",
                            cwd=root)
        if result.returncode != 0:
            raise ServiceError(f"initdb failed ({result.returncode}):\n"
                               f"{_tail(result.stdout + result.stderr)}")
        with open(data / "postgresql.conf", "a") as f:
            f.write("\n# tools/services.py\ninclude 'hookloop.conf'\n")
        record = {"password": secrets.token_hex(16), "port": None}
    port_wanted: int | None = record.get("port")
    for attempt in range(PORT_ATTEMPTS):
        port = port_wanted or _free_port()
        conf = data / "hookloop.conf"
        conf.write_text(
            f"listen_addresses = '127.0.0.1'\n"
            f"port = {port}\n"
            f"unix_socket_directories = '{sockets}'\n"
            "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            "shared_buffers = 32MB\nmax_connections = 100\nssl = off\n"
            "log_min_messages = warning\n")
        runner.chown(conf)
        offset = log.stat().st_size
        # -w: pg_ctl waits (polling the pid file, up to -t) until the server
        # is ready or has exited; then pg_isready checks the TCP listener.
        result = runner.run(bindir / "pg_ctl", "-D", data, "-l", log, "-w",
                            "-t", int(START_DEADLINE), "start", cwd=root,
                            timeout=START_DEADLINE + 10)
        pid = _pg_wait_ready(bindir, data, log, port) if result.returncode == 0 else None
        if pid is not None:
            break
        new_log = _log_since(log, offset)
        if port_wanted is None and "could not bind" in new_log and attempt + 1 < PORT_ATTEMPTS:
            continue  # the port was taken under us: another one
        raise ServiceError(f"PostgreSQL did not start on port {port} (pg_ctl start exited "
                           f"with {result.returncode}):\n"
                           f"{_tail(result.stdout + result.stderr)}\n{_tail(new_log)}")
    else:  # pragma: no cover - the loop breaks or raises
        raise AssertionError
    if "dsn" not in record:
        _pg_setup(bindir, sockets, port, record["password"], root)
    password = record["password"]
    return {"pid": pid, "port": port, "password": password, "socket_dir": str(sockets),
            "data_dir": str(data), "log": str(log), "bindir": str(bindir),
            "dsn": f"postgresql://{PG_USER}:{password}@127.0.0.1:{port}/{PG_DATABASE}"}


def _pg_pid(data: Path) -> int | None:
    try:
        first = (data / "postmaster.pid").read_text().split("\n", 1)[0]
    except (FileNotFoundError, PermissionError):
        return None
    return int(first) if first.strip().isdigit() else None


def _pg_wait_ready(bindir: Path, data: Path, log: Path, port: int) -> int | None:
    """The postmaster's pid once it accepts TCP connections on ``port``;
    None if it is not running.  ServiceError at the deadline."""
    poll = _Poll("PostgreSQL")
    while True:
        pid = _pg_pid(data)
        if pid is None or not _alive(pid):
            return None
        # pg_isready: 0 accepting, 1 rejecting (starting up), 2 no answer.
        ready = subprocess.run([str(bindir / "pg_isready"), "-q", "-h", "127.0.0.1",
                                "-p", str(port), "-t", "2"], stdin=subprocess.DEVNULL)
        if ready.returncode == 0:
            return pid
        if not poll.wait():
            raise ServiceError(f"PostgreSQL did not accept connections on 127.0.0.1:{port} "
                               f"within {START_DEADLINE:g} s:\n{_log_tail(log)}")


def _pg_setup(bindir: Path, sockets: Path, port: int, password: str, cwd: Path) -> None:
    """Make the tests' password user and database (as the superuser, over the socket)."""
    psql = [str(bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(sockets),
            "-p", str(port), "-U", "postgres", "-d", "postgres",
            "-c", f"CREATE ROLE {PG_USER} LOGIN PASSWORD '{password}'",
            "-c", f"CREATE DATABASE {PG_DATABASE} OWNER {PG_USER}"]
    result = subprocess.run(psql, cwd=cwd, capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, timeout=START_DEADLINE)
    if result.returncode != 0:
        raise ServiceError(f"creating the test user and database failed:\n"
                           f"{_tail(result.stdout + result.stderr)}")


def _pg_stop(record: dict[str, Any]) -> None:
    data, pid = Path(record["data_dir"]), record.get("pid")
    if not data.exists():
        return
    if pid is not None and not _alive(pid):
        return
    runner = _Runner.for_postgres()
    try:
        result = runner.run(Path(record["bindir"]) / "pg_ctl", "-D", data, "stop", "-m", "fast",
                            "-w", "-t", int(STOP_DEADLINE), cwd=data.parent,
                            timeout=STOP_DEADLINE + 5)
        failed = result.returncode != 0 and _pg_pid(data) is not None
    except subprocess.TimeoutExpired:
        failed = True
    if failed and pid is not None and _alive(pid):
        _kill(pid)


# ---------------------------------------------------------------- Redis

def _redis_command(port: int, *args: str, timeout: float = 2.0) -> bytes:
    """Send one command (RESP) to the Redis on ``port``; the raw first reply line."""
    payload = f"*{len(args)}\r\n".encode() + b"".join(
        f"${len(a.encode())}\r\n{a}\r\n".encode() for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
        return reply


def _redis_start(base: Path, record: dict[str, Any] | None) -> dict[str, Any]:
    server = _redis_server()
    assert server is not None
    root = base / "redis"
    if record is None:
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(mode=0o755)
    pidfile, log = root / "redis.pid", root / "redis.log"
    port_wanted: int | None = record.get("port") if record else None
    for attempt in range(PORT_ATTEMPTS):
        port = port_wanted or _free_port()
        pidfile.unlink(missing_ok=True)
        offset = log.stat().st_size if log.exists() else 0
        result = subprocess.run(
            [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
             "--appendonly", "no", "--dir", str(root), "--daemonize", "yes",
             "--pidfile", str(pidfile), "--logfile", str(log), "--protected-mode", "yes",
             "--databases", "16"],
            cwd=root, capture_output=True, text=True, stdin=subprocess.DEVNULL,
            timeout=START_DEADLINE)
        if result.returncode != 0:
            raise ServiceError(f"redis-server failed ({result.returncode}):\n"
                               f"{_tail(result.stdout + result.stderr)}\n{_log_tail(log)}")
        pid = _redis_wait_ready(pidfile, log, port)
        if pid is not None:
            break
        new_log = _log_since(log, offset)
        if port_wanted is None and "in use" in new_log and attempt + 1 < PORT_ATTEMPTS:
            continue
        raise ServiceError(f"Redis did not start on port {port}:\n{_tail(new_log)}")
    else:  # pragma: no cover
        raise AssertionError
    return {"pid": pid, "port": port, "dir": str(root), "log": str(log),
            "url": f"redis://127.0.0.1:{port}/0"}


def _redis_wait_ready(pidfile: Path, log: Path, port: int) -> int | None:
    """Redis's pid once it answers PING; None if it exited first."""
    poll = _Poll("Redis")
    pid: int | None = None
    while True:
        if pid is None:
            with contextlib.suppress(FileNotFoundError, ValueError):
                pid = int(pidfile.read_text().strip())
        if pid is not None and not _alive(pid):
            return None
        if pid is not None:
            try:
                if _redis_command(port, "PING").startswith(b"+PONG"):
                    return pid
            except OSError:
                pass
        if not poll.wait():
            raise ServiceError(f"Redis did not answer PING on 127.0.0.1:{port} within "
                               f"{START_DEADLINE:g} s:\n{_log_tail(log)}")


def _redis_stop(record: dict[str, Any]) -> None:
    pid = record.get("pid")
    if pid is None or not _alive(pid):
        return
    with contextlib.suppress(OSError):
        _redis_command(record["port"], "SHUTDOWN", "NOSAVE")  # the server closes: no reply
    if not _wait_dead(pid, time.monotonic() + STOP_DEADLINE):
        _kill(pid)


# ---------------------------------------------------------------- commands

_STARTERS = {"postgres": _pg_start, "redis": _redis_start}
_STOPPERS = {"postgres": _pg_stop, "redis": _redis_stop}


def start(base: Path, services: Sequence[str] = SERVICES) -> dict[str, Any]:
    """Start ``services`` in ``base``; return the state."""
    ensure_packages(services)
    base.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0 and "postgres" in services:
        base.chmod((base.stat().st_mode & 0o7777) | 0o005)  # the postgres user goes through it
    state = load_state(base)
    for name in services:
        record = state.get(name)
        if record is not None and record.get("running"):
            pid = record.get("pid")
            if pid is not None and _alive(pid):
                raise AlreadyRunning(f"{name} is already running in {base} (pid {pid}); run "
                                     f"`python3 tools/services.py stop --base {base}` first")
            state.pop(name)  # a stale record (the machine restarted?): make it anew
    for name in services:
        record = state.get(name)
        try:
            new = _STARTERS[name](base, record)
        except subprocess.TimeoutExpired as exc:
            raise ServiceError(f"{name}: `{' '.join(map(str, exc.cmd))}` timed out") from None
        state[name] = dict(new, running=True)
        _save_state(base, state)
    return state


def stop(base: Path, services: Sequence[str] | None = None) -> None:
    """Stop ``services`` (all, and remove ``base``, when None)."""
    state = load_state(base)
    errors: list[str] = []
    for name in services or SERVICES:
        record = state.get(name)
        if record is None or not record.get("running"):
            continue
        try:
            _STOPPERS[name](record)
        except (ServiceError, OSError) as exc:
            errors.append(f"{name}: {exc}")
        record["running"] = False
        record["pid"] = None
        if services is not None:
            _save_state(base, state)
    if errors:
        raise ServiceError("\n".join(errors))
    if services is None and base.exists():
        shutil.rmtree(base)


def env_lines(state: dict[str, Any]) -> list[str]:
    lines = []
    if state.get("postgres", {}).get("running"):
        lines.append(f"HOOKLOOP_PG_DSN={state['postgres']['dsn']}")
    if state.get("redis", {}).get("running"):
        lines.append(f"HOOKLOOP_REDIS_URL={state['redis']['url']}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tools/services.py",
        description="Throwaway PostgreSQL and Redis for hookloop's integration tests.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("install", "install the missing Debian packages only"),
                            ("start", "start the services, wait until they accept connections"),
                            ("stop", "stop them (and remove the base dir, without --only)"),
                            ("restart", "stop and start them again on the same ports"),
                            ("env", "print HOOKLOOP_PG_DSN=... and HOOKLOOP_REDIS_URL=...")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--base", type=Path, default=default_base(),
                       help=f"directory for state, data and logs (default {default_base()})")
        if name != "env":
            p.add_argument("--only", action="append", choices=SERVICES,
                           help="this service only (repeatable; default: both)")
    args = parser.parse_args(argv)
    base: Path = args.base.resolve()
    only: list[str] | None = getattr(args, "only", None)
    selected = list(dict.fromkeys(only)) if only else list(SERVICES)
    try:
        if args.command == "install":
            ensure_packages(selected)
        elif args.command == "start":
            try:
                state = start(base, selected)
            except AlreadyRunning:
                raise
            except BaseException:
                with contextlib.suppress(Exception):  # leave nothing half-started behind
                    stop(base, selected if only else None)
                raise
            print("\n".join(env_lines(state)))
        elif args.command == "stop":
            stop(base, only)
        elif args.command == "restart":
            stop(base, selected)
            print("\n".join(env_lines(start(base, selected))))
        else:
            if not _state_file(base).exists():
                raise ServiceError(f"no services started in {base}; run "
                                   f"`python3 tools/services.py start --base {base}`")
            print("\n".join(env_lines(load_state(base))))
    except ServiceError as exc:
        print(f"services: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
