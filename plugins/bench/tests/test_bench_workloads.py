"""The workloads, run in this process at a tiny size (the load side still
runs in client processes).

Speed is never checked here.  What is checked: each workload runs to the
end on asyncio's loop and on hookloop's best backend, leaves no socket or
pipe open, and checks its own results: a corrupted echo, a wrong HTTP
response, a miscounting server, an error a framework logs, a wrong exit
status each void the measurement instead of producing a figure.  The
framework workloads run where aiohttp/uvicorn are installed (their absence
is tested in test_bench_cli.py).
"""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import warnings

import pytest
from hookloop_bench import load as load_module
from hookloop_bench import network, scheduling, spawn
from hookloop_bench.subjects import Subject, make_loop, not_run_reason
from hookloop_bench.workloads import WORKLOADS, Settings

import hookloop

BEST = hookloop.available_backends()[0]
SUBJECTS = [Subject("asyncio", "asyncio"), Subject(BEST, "hookloop", BEST)]
TINY = Settings(seconds=0.05, warmup=0.02, clients=1, connections=4, wrk=False)
NETWORK = [w for w in WORKLOADS.values() if w.kind == "network"]
#: The workloads on the http load: the bench's own server and the frameworks'.
HTTP = [w.name for w in NETWORK if w.load == "http"]
FRAMEWORKS = [w.name for w in NETWORK if w.framework]


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture(params=SUBJECTS, ids=lambda s: s.name)
def subject(request):
    return request.param


@pytest.fixture
def loop(subject):
    loop = make_loop(subject)()
    yield loop
    loop.close()


@pytest.mark.parametrize("workload", NETWORK, ids=lambda w: w.name)
def test_network_workload_runs_checks_and_closes_everything(subject, workload):
    reason = not_run_reason(subject, workload)
    if reason is not None:
        pytest.skip(reason)
    loop = make_loop(subject)()
    try:
        before = _fd_count()
        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)
            outcome = network.run(loop, workload, TINY)
        assert outcome.rate > 0
        assert outcome.detail["load"] == "python"
        assert outcome.detail["exchanges"] > 0
        assert _fd_count() == before
    finally:
        loop.close()


def test_two_load_processes_with_many_connections(loop):
    settings = Settings(seconds=0.05, warmup=0.02, clients=2, connections=20, wrk=False)
    outcome = network.run(loop, WORKLOADS["tcp_echo_1k"], settings)
    assert outcome.detail["clients"] == 2 and outcome.detail["connections"] == 40


def test_pinning_splits_the_cpus_and_restores_the_affinity(loop):
    before = os.sched_getaffinity(0)
    settings = Settings(**{**TINY.to_json(), "pin": True})
    outcome = network.run(loop, WORKLOADS["tcp_echo_1k"], settings)
    assert outcome.detail["pinned"] == (len(before) >= 2)
    assert os.sched_getaffinity(0) == before


def _void(loop, name, match):
    before = _fd_count()
    with pytest.raises(AssertionError, match=match):
        network.run(loop, WORKLOADS[name], TINY)
    assert _fd_count() == before  # everything aborted and closed


def test_a_corrupted_echo_voids_the_measurement(loop, monkeypatch):
    def corrupt(self, data):
        self.stats.echoed += len(data)
        self.transport.write(data[:-1] + bytes([data[-1] ^ 1]))
    monkeypatch.setattr(network.EchoServer, "data_received", corrupt)
    _void(loop, "tcp_echo_1k", "echo 1 on connection .* differs")


def test_a_miscounting_server_voids_the_measurement(loop, monkeypatch):
    def uncounted(self, data):
        self.transport.write(data)  # right bytes, but the server's tally disagrees
    monkeypatch.setattr(network.EchoServer, "data_received", uncounted)
    _void(loop, "tcp_echo_64k", "the server echoed 0 bytes, the clients checked")


def test_a_corrupted_stream_echo_voids_the_measurement(loop, monkeypatch):
    real_write = asyncio.StreamWriter.write

    def write(self, data):  # only the server writes through streams in this process
        real_write(self, data[:-1] + b"?")
    monkeypatch.setattr(asyncio.StreamWriter, "write", write)
    _void(loop, "streams_echo", "differs")


def test_a_wrong_http_response_voids_the_measurement(loop, monkeypatch):
    def respond(self, head):
        self.stats.requests += 1
        self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhi\n")
    monkeypatch.setattr(network.HttpServer, "respond", respond)
    _void(loop, "http", "bad response")


def _needs_framework(name):
    reason = not_run_reason(SUBJECTS[0], WORKLOADS[name])
    if reason is not None:
        pytest.skip(reason)


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_a_wrong_framework_response_voids_the_measurement(loop, monkeypatch, name):
    _needs_framework(name)
    real = network.ServerStats.answer

    def answer(self, target):
        real(self, target)  # counted, but the body names another target
        return load_module.http_body(target + b"x")
    monkeypatch.setattr(network.ServerStats, "answer", answer)
    _void(loop, name, "bad response b'HTTP/1.1 200 OK' b'hello from /c0-0/r1x")


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_a_framework_server_that_miscounts_voids_the_measurement(loop, monkeypatch, name):
    _needs_framework(name)
    monkeypatch.setattr(network.ServerStats, "answer",
                        lambda self, target: load_module.http_body(target))  # not counted
    _void(loop, name, r"the server answered 0 requests, the clients checked \d+")


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_an_error_the_framework_logs_voids_the_measurement(loop, monkeypatch, name):
    # The framework catches the handler's exception, logs it and answers
    # 500: the log voids the measurement (named first), as the 500 does.
    _needs_framework(name)
    real = network.ServerStats.answer

    def answer(self, target):
        if self.requests == 5:
            raise RuntimeError("handler bug")
        return real(self, target)
    monkeypatch.setattr(network.ServerStats, "answer", answer)
    _void(loop, name, r"^(aiohttp|uvicorn)\S* logged .*RuntimeError\('handler bug'\); "
                      r"then load client: .*b'HTTP/1.1 500 Internal Server Error")


def test_uvicorn_leaves_the_signal_handlers_and_the_loop_alone(loop, monkeypatch):
    # serve() is awaited on the measured loop (each request checks that it
    # runs there): no handler is installed, on the process or on the loop,
    # and no loop policy or loop factory comes into play.
    _needs_framework("uvicorn_asgi")
    installed = []
    real_signal = signal.signal

    def record(sig, handler):
        installed.append(sig)
        return real_signal(sig, handler)
    monkeypatch.setattr(signal, "signal", record)
    monkeypatch.setattr(loop, "add_signal_handler",
                        lambda sig, *args: installed.append(sig), raising=False)
    policy = asyncio.get_event_loop_policy()
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    outcome = network.run(loop, WORKLOADS["uvicorn_asgi"], TINY)
    assert outcome.detail["framework"].startswith("uvicorn ") and outcome.detail["http"]
    assert installed == []
    assert handlers == {sig: signal.getsignal(sig) for sig in handlers}
    assert asyncio.get_event_loop_policy() is policy


def test_a_wrong_datagram_voids_the_measurement(loop, monkeypatch):
    def datagram_received(self, data, addr):
        self.stats.datagrams += 1
        self.transport.sendto(data[:8] + bytes(len(data) - 8), addr)
    monkeypatch.setattr(network.DatagramEcho, "datagram_received", datagram_received)
    _void(loop, "udp_echo", "came back wrong")


def test_a_server_that_stops_answering_voids_the_measurement(loop, monkeypatch):
    monkeypatch.setattr(network.EchoServer, "data_received", lambda self, data: None)
    monkeypatch.setattr(network, "GRACE", 0.5)
    _void(loop, "tcp_echo_1k", "the load side did not finish in 1 s")


def _late_echo(monkeypatch, delay):
    """The echo server answers each connection's first message ``delay`` s
    late (a starved machine, made deterministic), the rest at once."""
    def data_received(self, data):
        self.stats.echoed += len(data)
        if getattr(self, "held", None) is not None:
            self.held += data
        elif not getattr(self, "delayed", False):
            self.delayed, self.held = True, bytearray(data)
            self.stats.loop.call_later(delay, release, self)
        else:
            self.transport.write(data)

    def release(self):
        held, self.held = bytes(self.held), None
        self.transport.write(held)
    monkeypatch.setattr(network.EchoServer, "data_received", data_received)


def test_a_counted_window_with_nothing_finished_is_extended_not_voided(loop, monkeypatch):
    # Every first echo comes back long after the 50 ms window has ended
    # (and after the client's 0.5 s poll while counting): the window goes
    # on until one has, and the rate is over its real length.
    _late_echo(monkeypatch, 1.0)
    outcome = network.run(loop, WORKLOADS["tcp_echo_1k"], TINY)
    assert outcome.rate > 0 and outcome.detail["exchanges"] > 0
    assert outcome.detail["window"] >= TINY.seconds


def test_a_counted_window_that_stays_empty_voids_the_measurement(monkeypatch):
    # A server that accepts (the backlog does) but never answers: the
    # extended window gives up after WINDOW_TIMEOUT.
    monkeypatch.setattr(load_module, "WINDOW_TIMEOUT", 0.2)
    with socket.create_server(("127.0.0.1", 0)) as server:
        config = {"id": 0, "kind": "echo", "host": "127.0.0.1",
                  "port": server.getsockname()[1], "connections": 2, "size": 1024,
                  "warmup": 0.02, "seconds": 0.05, "ca_pem": None}
        before = _fd_count()
        with pytest.raises(load_module.LoadError,
                           match="no exchange completed in the counted window"):
            load_module.run(config)
        assert _fd_count() == before  # its sockets and its epoll closed at once


def test_an_error_the_loop_reports_voids_the_measurement(loop, monkeypatch):
    real = network.EchoServer.data_received

    def data_received(self, data):
        real(self, data)
        if self.stats.echoed > 4096:
            raise RuntimeError("protocol bug")
    monkeypatch.setattr(network.EchoServer, "data_received", data_received)
    with pytest.raises(AssertionError, match="protocol bug"):
        network.run(loop, WORKLOADS["tcp_echo_1k"], TINY)


def _needs_tls(subject):
    reason = not_run_reason(subject, WORKLOADS["tls_handshakes"])
    if reason is not None:
        pytest.skip(reason)


def test_a_corrupted_tls_echo_voids_the_measurement(subject, loop, monkeypatch):
    _needs_tls(subject)

    def corrupt(self, data):
        self.stats.echoed += len(data)
        self.transport.write(data[:-1] + bytes([data[-1] ^ 1]))
    monkeypatch.setattr(network.EchoServer, "data_received", corrupt)
    _void(loop, "tls_echo_64k", "echo 1 on connection .* differs")


def test_tls_handshakes_cycle_connections_and_cap_them(subject, loop):
    _needs_tls(subject)
    made = []
    real = network.ServerStats.made_one

    def made_one(self, who):
        made.append(who)
        real(self, who)
    settings = Settings(**{**TINY.to_json(), "connections": 40})
    with pytest.MonkeyPatch.context() as m:
        m.setattr(network.ServerStats, "made_one", made_one)
        outcome = network.run(loop, WORKLOADS["tls_handshakes"], settings)
    assert outcome.detail["connections"] == 16  # capped per load process
    # One server connection per checked cycle, and the slots went round.
    # More than 16 whatever the machine's speed: each of the 16 slots ends
    # the cycle it is in, and the counted window holds at least one finished
    # cycle (it is extended until it does), whose slot then starts another.
    assert outcome.detail["exchanges"] == len(made) > 16


def test_a_corrupted_echo_after_a_handshake_voids_the_measurement(subject, loop, monkeypatch):
    _needs_tls(subject)

    def corrupt(self, data):
        self.stats.echoed += len(data)
        self.transport.write(bytes(len(data)))
    monkeypatch.setattr(network.EchoServer, "data_received", corrupt)
    _void(loop, "tls_handshakes", "handshake slot .* the echo differs")


def test_a_miscounted_handshake_voids_the_measurement(subject, loop, monkeypatch):
    _needs_tls(subject)
    real = network.ServerStats.made_one

    def made_one(self, who):
        real(self, who)
        if self.made == 3:
            self.made += 1  # one connection counted twice
    monkeypatch.setattr(network.ServerStats, "made_one", made_one)
    _void(loop, "tls_handshakes",
          r"the server made \d+ TLS connections, the clients completed \d+ handshakes")


def test_unechoed_handshake_bytes_void_the_measurement(subject, loop, monkeypatch):
    _needs_tls(subject)
    monkeypatch.setattr(network.EchoServer, "data_received",
                        lambda self, data: self.transport.write(data))  # not tallied
    _void(loop, "tls_handshakes", "the server echoed 0 bytes, the clients checked")


@pytest.mark.parametrize("name", ["call_soon", "task_steps", "timers"])
def test_scheduling_batches_do_exactly_their_operations(loop, name):
    batch = getattr(scheduling, name)
    assert batch(loop, 1000) > 0
    rate = scheduling.timed(lambda n: batch(loop, n),
                            lambda n: scheduling.operations(name, n), 0.01, 0.01)
    assert rate > 0


def test_a_cancelled_timer_that_fires_fails_the_timers_workload(loop, monkeypatch):
    class Uncancellable:
        def __init__(self, handle):
            self.handle = handle

        def cancel(self):
            pass  # the timer stays armed

    real_call_later = loop.call_later

    def call_later(delay, callback, *args):
        handle = real_call_later(0 if delay == 30.0 else delay, callback, *args)
        return Uncancellable(handle) if delay == 30.0 else handle
    monkeypatch.setattr(loop, "call_later", call_later)
    with pytest.raises(AssertionError, match="cancelled timers ran"):
        scheduling.timers(loop, 1000)


def test_a_callback_run_twice_fails_call_soon(loop, monkeypatch):
    real = loop.call_soon
    calls = [0]

    def doubling(callback, *args, **kwargs):
        calls[0] += 1
        if calls[0] == 500:
            real(callback, *args, **kwargs)
        return real(callback, *args, **kwargs)
    monkeypatch.setattr(loop, "call_soon", doubling)
    with pytest.raises(AssertionError):
        scheduling.call_soon(loop, 1000)


def test_loop_creation_counts_loops(subject):
    assert scheduling.loop_creation(make_loop(subject), 3) > 0


def test_spawn_checks_exit_statuses(subject, monkeypatch):
    if not_run_reason(subject, WORKLOADS["subprocess_spawn"]):
        pytest.skip("no subprocess service")
    loop = make_loop(subject)()
    try:
        assert spawn.spawn(loop, 4) > 0
        true, false = spawn._programs()
        monkeypatch.setattr(spawn, "_programs", lambda: (false, true))  # swapped
        with pytest.raises(AssertionError, match="exited with"):
            spawn.spawn(loop, 4)
    finally:
        loop.close()


def test_wrk_report_is_read_and_its_errors_void_the_run():
    report = """Running 1s test @ http://127.0.0.1:8080/
  2 threads and 100 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.55ms  308.12us   5.08ms   88.01%
    Req/Sec    32.10k     1.57k   34.56k    70.00%
  63870 requests in 1.00s, 6.15MB read
Requests/sec:  63790.45
Transfer/sec:      6.14MB
"""
    figures = network.parse_wrk(report)
    assert figures["counted"] == 63870 and figures["elapsed"] == 1.0
    assert figures["rate"] == 63790.45
    with pytest.raises(AssertionError, match="non-2xx"):
        network.parse_wrk(report + "  Non-2xx or 3xx responses: 12\n")
    with pytest.raises(AssertionError, match="Socket errors"):
        network.parse_wrk(report + "  Socket errors: connect 0, read 3, write 0, timeout 0\n")
    with pytest.raises(AssertionError, match="cannot read"):
        network.parse_wrk("wrk: command not understood")


FAKE_WRK = '''#!{python}
import socket, sys, time
url = sys.argv[-1]
host, port = url.split("//")[1].rstrip("/").split(":")
sock = socket.create_connection((host, int(port)))
t0 = time.monotonic()
for _ in range(20):
    sock.sendall(b"GET / HTTP/1.1\\r\\nHost: " + host.encode() + b"\\r\\n\\r\\n")
    data = b""
    while not data.endswith(b"hello from /\\n"):
        data += sock.recv(4096)
sock.close()
elapsed = time.monotonic() - t0
print("  20 requests in %.2fms, 2KB read" % (elapsed * 1000))
print("Requests/sec: %.2f" % (20 / elapsed))
'''


@pytest.mark.parametrize("name", HTTP)
def test_wrk_on_path_is_the_http_load_generator(tmp_path, monkeypatch, loop, name):
    if name in FRAMEWORKS:
        _needs_framework(name)
    wrk = tmp_path / "wrk"
    wrk.write_text(FAKE_WRK.format(python=sys.executable))
    wrk.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with_wrk = Settings(**{**TINY.to_json(), "wrk": True})
    outcome = network.run(loop, WORKLOADS[name], with_wrk)
    assert outcome.detail["load"] == "wrk"
    assert outcome.detail["exchanges"] == 40  # the warm-up run's and the counted run's
    assert outcome.rate > 0
    assert network.run(loop, WORKLOADS[name], TINY).detail["load"] == "python"  # --no-wrk
