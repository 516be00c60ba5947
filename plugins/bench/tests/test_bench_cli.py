"""``hookloop bench`` run as a user runs it, plus its statistics and report.

The quick run is what CI runs: its JSON must have a row for every installed
backend and for asyncio on every workload.  A backend installed from
outside this repository (a dummy distribution in a temporary directory) must
show up with no change to the bench; a loop given as ``module:factory``
too; a loop that breaks a workload must produce ``FAILED`` and exit status
1, never a figure; a framework that cannot be imported (blocked for real, in
the bench's processes) must produce "not run: install ..." and nothing
failed.  Speed is never asserted.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from hookloop_bench import report, stats
from hookloop_bench.runner import Cell, run_one
from hookloop_bench.subjects import Subject, not_run_reason
from hookloop_bench.workloads import WORKLOADS, Settings, UsageError, install_hint, select_workloads

import hookloop

#: Only a guard against a hang: the quick matrix takes ~25 s on an idle
#: 2-CPU machine and several times that on a busy one.
TIMEOUT = 900


def _bench(*args, pythonpath=None, timeout=TIMEOUT):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLOOP_")}
    if pythonpath:
        environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (pythonpath, environ.get("PYTHONPATH")) if p)
    return subprocess.run([sys.executable, "-m", "hookloop", "bench", "--plain", *args],
                          capture_output=True, text=True, env=environ, timeout=timeout)


def _rows(path):
    return json.loads(path.read_text())


def test_quick_run_has_a_row_for_every_backend_and_asyncio_on_every_workload(tmp_path):
    out = _bench("--quick", "--json", str(tmp_path / "r.json"))
    assert out.returncode == 0, out.stderr
    data = _rows(tmp_path / "r.json")
    rows = {(r["subject"], r["workload"]): r for r in data["rows"]}
    subjects = {"asyncio", *hookloop.available_backends()}
    assert subjects <= {s["name"] for s in data["subjects"]}
    for workload in WORKLOADS.values():
        for name in subjects:
            row = rows[name, workload.name]
            subject = Subject(name, "asyncio" if name == "asyncio" else "hookloop", name)
            reason = not_run_reason(subject, workload)
            if reason is None:
                assert row["median"] > 0 and row["min"] <= row["median"] <= row["max"], row
                assert len(row["rounds"]) == data["settings"]["rounds"] == 1
                assert row["unit"] == workload.unit
            else:  # only a missing service (hookloop-tls, -subprocess), trustme,
                # aiohttp or uvicorn
                assert row["median"] is None and row["reason"] == f"not run: {reason}"
        # asyncio's loop is the baseline wherever it ran; where the workload
        # could not run (no trustme, no aiohttp...) there is no ratio at all.
        baseline_ran = not_run_reason(Subject("asyncio", "asyncio", "asyncio"), workload) is None
        assert rows["asyncio", workload.name]["ratio"] == (1.0 if baseline_ran else None)
    machine = data["machine"]
    assert machine["cpu_count"] >= 1 and machine["python"] == sys.version.split()[0]
    assert machine["kernel"] and machine["hookloop"] and machine["hookloop_bench"]
    assert len(machine["load_average"]) == len(machine["load_average_after"]) == 3
    for name in subjects:  # the table has a column per subject
        assert name in out.stdout.splitlines()[1]
    assert "tcp_echo_64k" in out.stdout and "round trips/s" in out.stdout


def _dummy_backend(tmp_path):
    """A backend distribution from outside the repository: module + dist-info."""
    (tmp_path / "dummybackend.py").write_text(textwrap.dedent("""
        import hookloop
        from hookloop_select import PollPoller

        class DummyPoller(PollPoller):
            name = "dummy"

        @hookloop.hookimpl
        def hookloop_pollers():
            return [hookloop.Backend("dummy", DummyPoller, priority=1,
                                     distribution="dummybackend")]
    """))
    info = tmp_path / "dummybackend-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: dummybackend\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[hookloop]\ndummy = dummybackend\n")
    (tmp_path / "otherloop.py").write_text(textwrap.dedent("""
        import asyncio

        def new_loop():
            return asyncio.new_event_loop()

        def BrokenLoop():
            loop = asyncio.new_event_loop()
            schedule, calls = loop.call_soon, [0]

            def call_soon(callback, *args, **kwargs):
                calls[0] += 1
                if calls[0] % 1000 == 0:  # runs one callback twice
                    schedule(callback, *args, **kwargs)
                return schedule(callback, *args, **kwargs)

            loop.call_soon = call_soon
            return loop
    """))


def test_a_backend_installed_from_elsewhere_is_a_subject(tmp_path):
    _dummy_backend(tmp_path)
    out = _bench("--quick", "--workloads", "tcp_echo_1k", "--json",
                 str(tmp_path / "r.json"), pythonpath=str(tmp_path))
    assert out.returncode == 0, out.stderr
    rows = {(r["subject"], r["workload"]): r for r in _rows(tmp_path / "r.json")["rows"]}
    assert rows["dummy", "tcp_echo_1k"]["median"] > 0
    assert rows["dummy", "tcp_echo_1k"]["ratio"] > 0
    assert {s for s, _ in rows} >= {"asyncio", "dummy", *hookloop.available_backends()}


def test_module_factory_subjects_and_a_broken_loop_fails_not_measures(tmp_path):
    _dummy_backend(tmp_path)
    out = _bench("--quick", "--workloads", "call_soon", "--subjects",
                 "otherloop:new_loop,otherloop:BrokenLoop", "--json", str(tmp_path / "r.json"),
                 pythonpath=str(tmp_path))
    assert out.returncode == 1, out.stderr
    rows = {r["subject"]: r for r in _rows(tmp_path / "r.json")["rows"]}
    assert set(rows) == {"asyncio", "otherloop:new_loop", "otherloop:BrokenLoop"}
    assert rows["otherloop:new_loop"]["median"] > 0
    broken = rows["otherloop:BrokenLoop"]
    assert broken["median"] is None and broken["reason"].startswith("failed: AssertionError")
    assert "FAILED" in out.stdout


FRAMEWORKS = [w for w in WORKLOADS.values() if w.framework]
BEST = hookloop.available_backends()[0]


def _blocked_frameworks(path):
    """A sitecustomize making aiohttp and uvicorn unimportable in every
    process started with ``path`` on PYTHONPATH, as if not installed (their
    spec is None; importing them raises ModuleNotFoundError)."""
    path.mkdir(exist_ok=True)
    (path / "sitecustomize.py").write_text(
        "import sys\n" + "".join(f"sys.modules[{w.framework!r}] = None\n" for w in FRAMEWORKS))
    return str(path)


def test_without_the_frameworks_their_workloads_are_not_run_and_nothing_fails(tmp_path):
    out = _bench("--quick", "--workloads", "http,aiohttp_http,uvicorn_asgi", "--subjects", BEST,
                 "--json", str(tmp_path / "r.json"),
                 pythonpath=_blocked_frameworks(tmp_path / "blocked"))
    assert out.returncode == 0, out.stderr
    rows = {(r["subject"], r["workload"]): r for r in _rows(tmp_path / "r.json")["rows"]}
    for name in ("asyncio", BEST):
        assert rows[name, "http"]["median"] > 0
        for workload in FRAMEWORKS:
            row = rows[name, workload.name]
            assert row["median"] is None and row["rounds"] == []
            assert row["reason"] == f"not run: {install_hint(workload.framework)}"
    assert "not run: install aiohttp" in out.stdout and "not run: install uvicorn" in out.stdout
    assert "FAILED" not in out.stdout


@pytest.mark.parametrize("workload", FRAMEWORKS, ids=lambda w: w.name)
def test_the_measuring_process_says_not_run_when_the_framework_cannot_be_imported(
        tmp_path, monkeypatch, workload):
    # The parent found the framework (or was not asked): the measuring
    # process, where it is imported, has the last word.
    tiny = Settings(seconds=0.05, warmup=0.02, clients=1, connections=2, wrk=False)
    subject = Subject(BEST, "hookloop", BEST)
    monkeypatch.setenv("PYTHONPATH", _blocked_frameworks(tmp_path / "blocked"))
    assert run_one(subject, workload, tiny) == (
        None, {}, f"not run: {install_hint(workload.framework)}")
    # Installed but broken (something it imports is missing): not run either,
    # with the import error.
    broken = tmp_path / "broken" / workload.framework
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("import hookloop_bench_no_such_dependency\n")
    monkeypatch.setenv("PYTHONPATH", str(broken.parent))
    assert run_one(subject, workload, tiny) == (
        None, {}, f"not run: {install_hint(workload.framework)}; importing it failed: "
                  "No module named 'hookloop_bench_no_such_dependency'")


def test_not_run_reason_looks_the_framework_up_without_importing_it(monkeypatch):
    for workload in FRAMEWORKS:
        monkeypatch.setitem(sys.modules, workload.framework, None)  # as if not installed
        for subject in (Subject("asyncio", "asyncio"), Subject(BEST, "hookloop", BEST)):
            assert not_run_reason(subject, workload) == install_hint(workload.framework)
    assert install_hint("aiohttp").startswith("install aiohttp")


@pytest.mark.parametrize("args, message", [
    (["--workloads", "tcp_echo_1k,nope"], "--workloads: unknown workload(s) nope; choose from"),
    (["--subjects", "nosuchloop"], "--subjects: unknown subject 'nosuchloop'; installed: asyncio"),
    (["--subjects", "no_such_module_x:new_loop"],
     "--subjects: cannot import 'no_such_module_x' for 'no_such_module_x:new_loop'"),
    (["--subjects", "asyncio:no_such_factory"], "has no attribute 'no_such_factory'"),
    (["--rounds", "0"], "argument --rounds: must be positive"),
])
def test_bad_arguments_exit_2_naming_the_argument(args, message):
    out = _bench(*args)
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_plot_without_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(UsageError, match=r"--plot needs matplotlib.*hookloop-bench\[plot\]"):
        report.check_plot("out.svg")
    report.check_plot(None)


SUBJECTS = [Subject("asyncio", "asyncio"), Subject("epoll", "hookloop", "epoll"),
            Subject("poll", "hookloop", "poll")]
CHOSEN = select_workloads("call_soon,tls_echo")


def _summary():
    cells = {("asyncio", "call_soon"): Cell([100.0, 300.0, 200.0]),
             ("epoll", "call_soon"): Cell([500.0, 400.0, 300.0]),
             ("poll", "call_soon"): Cell([50.0], failed=True, reason="failed: echo differs"),
             ("asyncio", "tls_echo"): Cell([10.0]),
             ("epoll", "tls_echo"): Cell(reason="not run: hookloop-tls is not installed"),
             ("poll", "tls_echo"): Cell([20.0])}
    return stats.summarize(SUBJECTS, CHOSEN, cells)


def test_statistics_median_min_max_and_ratio_to_asyncio():
    rows = {(r.subject, r.workload): r for r in _summary()}
    epoll = rows["epoll", "call_soon"]
    assert (epoll.median, epoll.min, epoll.max, epoll.ratio) == (400.0, 300.0, 500.0, 2.0)
    assert rows["asyncio", "call_soon"].ratio == 1.0
    assert rows["poll", "call_soon"].median is None  # a failed pair has no figure at all
    assert rows["poll", "call_soon"].reason == "failed: echo differs"
    assert rows["epoll", "tls_echo"].reason == "not run: hookloop-tls is not installed"
    assert rows["poll", "tls_echo"].ratio == 2.0


def test_table_shows_figures_ratios_spread_and_reasons():
    text = report.table(_summary(), SUBJECTS, CHOSEN)
    lines = text.splitlines()
    assert lines[1].split() == ["workload", "unit", "asyncio", "epoll", "poll"]
    call_soon = next(line for line in lines if line.startswith("call_soon"))
    assert call_soon.split() == ["call_soon", "callbacks/s", "200.0", "1.00x", "400.0", "2.00x",
                                 "FAILED"]
    assert "±50%" in text and "±25%" in text
    assert "failed: echo differs: call_soon on poll" in text
    assert "not run: hookloop-tls is not installed: tls_echo on epoll" in text


def test_plot_draws_an_svg(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "ratios.svg"
    report.plot(str(path), _summary(), SUBJECTS, CHOSEN, "test")
    assert "<svg" in path.read_text()[:1000]


def test_progress_plain_lines_and_rich_bar(capsys):
    from hookloop_bench.progress import PlainProgress, make_progress
    plain = PlainProgress()
    plain.start(3)
    plain.done("round 1/1: timers on epoll", Cell([1234567.0]), "timers/s")
    plain.done("round 1/1: timers on poll", Cell(failed=True, reason="failed: boom"), "timers/s")
    plain.done("round 1/1: uvicorn_asgi on poll", Cell(reason="not run: install uvicorn"),
               "requests/s")
    plain.stop()
    assert capsys.readouterr().err.splitlines() == [
        "[1/3] round 1/1: timers on epoll: 1.23M timers/s",
        "[2/3] round 1/1: timers on poll: failed: boom",
        "[3/3] round 1/1: uvicorn_asgi on poll: not run: install uvicorn"]
    assert isinstance(make_progress(plain=True), PlainProgress)
    pytest.importorskip("rich")
    bar = make_progress()
    assert not isinstance(bar, PlainProgress)
    bar.start(1)
    bar.step("round 1/1: timers on epoll")
    bar.done("round 1/1: timers on epoll", Cell([5.0]), "timers/s")
    bar.stop()
    assert "1/1" in capsys.readouterr().err


def test_a_busy_machine_is_called_out():
    busy = {"cpus_available": 2, "load_average": [3.1, 2.0, 1.0]}
    assert report.busy_warning(busy) == ("warning: this machine is busy (load average 3.1 on "
                                         "2 CPUs): expect noisy figures")
    assert report.busy_warning({"cpus_available": 2, "load_average": [0.4, 2.0, 1.0]}) is None
