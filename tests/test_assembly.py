"""Assembly: backend choice, environment, disabling, broken and missing plugins."""
from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import textwrap

import pytest

import hookloop
from hookloop import assembly, hookimpl


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("HOOKLOOP_BACKEND", "HOOKLOOP_DISABLE", "HOOKLOOP_NO_AUTOLOAD"):
        monkeypatch.delenv(name, raising=False)


def test_default_backend_is_best_available():
    backends = hookloop.list_backends()
    best = max((b for b in backends if b.available), key=lambda b: b.priority)
    loop = hookloop.new_event_loop()
    try:
        assert loop.backend == best.name
    finally:
        loop.close()
    if sys.platform.startswith("linux"):
        assert best.name == "epoll"


def test_available_backends_best_first():
    names = hookloop.available_backends()
    assert set(names) >= {"select", "poll"}
    priorities = [hookloop.get_backend(n).priority for n in names]
    assert priorities == sorted(priorities, reverse=True)


def test_backend_argument(hookloop_backend):
    loop = hookloop.new_event_loop(hookloop_backend)
    try:
        assert loop.backend == hookloop_backend
        assert loop.poller.name == hookloop_backend
    finally:
        loop.close()


def test_backend_from_environment(monkeypatch, hookloop_backend):
    monkeypatch.setenv("HOOKLOOP_BACKEND", hookloop_backend)
    loop = hookloop.new_event_loop()
    try:
        assert loop.backend == hookloop_backend
    finally:
        loop.close()


def test_backend_argument_beats_environment(monkeypatch):
    monkeypatch.setenv("HOOKLOOP_BACKEND", "select")
    loop = hookloop.new_event_loop("poll")
    try:
        assert loop.backend == "poll"
    finally:
        loop.close()


def test_unknown_backend_lists_installed_ones():
    with pytest.raises(ValueError) as info:
        hookloop.new_event_loop("io_uring_nope")
    message = str(info.value)
    assert "io_uring_nope" in message
    for name in hookloop.available_backends():
        assert name in message
    assert isinstance(info.value, hookloop.BackendUnavailableError)


def test_unknown_backend_from_environment(monkeypatch):
    monkeypatch.setenv("HOOKLOOP_BACKEND", "nope")
    with pytest.raises(ValueError, match="unknown backend 'nope'; installed backends: "):
        hookloop.new_event_loop()


def test_no_autoload_means_no_backend(monkeypatch):
    monkeypatch.setenv("HOOKLOOP_NO_AUTOLOAD", "1")
    with pytest.raises(hookloop.PluginMissingError, match=r"pip install hookloop-\w+"):
        hookloop.new_event_loop()
    names = {i.name for i in hookloop.plugin_infos()}
    assert names == {"executor", "signals", "transports", "resolver", "commands"}


def test_no_autoload_with_explicit_backend_plugin(monkeypatch):
    import hookloop_select
    monkeypatch.setenv("HOOKLOOP_NO_AUTOLOAD", "1")
    loop = hookloop.new_event_loop(plugins=[hookloop_select])
    try:
        assert loop.backend == "poll"  # the best of what was given
        assert loop.run_until_complete(asyncio.sleep(0, 1)) == 1
    finally:
        loop.close()


def test_disable_builtin_by_environment(monkeypatch, hookloop_backend):
    monkeypatch.setenv("HOOKLOOP_DISABLE", "executor, signals")
    loop = hookloop.new_event_loop(hookloop_backend)
    try:
        with pytest.raises(hookloop.PluginMissingError, match="'executor'.*disabled"):
            loop.run_in_executor(None, print)
        with pytest.raises(hookloop.PluginMissingError, match="'signals'.*disabled"):
            loop.add_signal_handler(10, print)
    finally:
        loop.close()


def test_disable_argument(hookloop_backend):
    loop = hookloop.new_event_loop(hookloop_backend, disable=["executor"])
    other = hookloop.new_event_loop(hookloop_backend)
    try:
        with pytest.raises(hookloop.PluginMissingError):
            loop.run_in_executor(None, print)
        # Only that loop: the process's plugin manager is unchanged.
        assert other.run_until_complete(other.run_in_executor(None, int, "7")) == 7
    finally:
        loop.close()
        other.close()


def test_disable_backend_plugin(monkeypatch):
    monkeypatch.setenv("HOOKLOOP_DISABLE", "epoll")
    assert "epoll" not in hookloop.available_backends()
    with pytest.raises(ValueError, match="unknown backend 'epoll'"):
        hookloop.new_event_loop("epoll")


def test_recipe_is_cached_so_hooks_run_once(hookloop_backend):
    calls = []

    class Plugin:
        @hookimpl
        def hookloop_executor(self):
            calls.append(1)
            return None  # fall through to the builtin

    plugin = Plugin()
    for _ in range(3):
        hookloop.new_event_loop(hookloop_backend, plugins=[plugin]).close()
    assert calls == [1]


def test_missing_feature_error_is_not_implemented_error(hookloop_backend):
    # hookloop-subprocess may be installed: leave it out.
    loop = hookloop.new_event_loop(hookloop_backend, disable=("subprocess",))
    try:
        with pytest.raises(NotImplementedError):
            loop.run_until_complete(loop.subprocess_exec(asyncio.SubprocessProtocol, "true"))
        with pytest.raises(hookloop.PluginMissingError,
                           match="subprocesses needs hookloop-subprocess: "
                                 "pip install hookloop-subprocess"):
            loop.run_until_complete(loop.subprocess_shell(asyncio.SubprocessProtocol, "true"))
    finally:
        loop.close()


def _fake_distribution(tmp_path, name, module_source, entry_point="broken"):
    """Install a real (if tiny) distribution into tmp_path: module + dist-info."""
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(module_source))
    info = tmp_path / f"{name}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[hookloop]\n{entry_point} = {name}\n")


def _run_python(tmp_path, code, **env):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLOOP_")}
    environ.update(env)
    environ["PYTHONPATH"] = str(tmp_path)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=environ,
                          capture_output=True, text=True, timeout=60)


def test_broken_plugin_is_reported_by_entry_point_and_distribution(tmp_path):
    _fake_distribution(tmp_path, "brokendist", "raise ImportError('no such thing: libfoo')")
    out = _run_python(tmp_path, """
        import hookloop
        try:
            hookloop.new_event_loop()
        except hookloop.PluginLoadError as exc:
            print("ERROR", exc)
    """)
    assert out.returncode == 0, out.stderr
    assert "ERROR hookloop plugin 'broken'" in out.stdout
    assert "entry point 'broken = brokendist' of distribution brokendist 1.2.3" in out.stdout
    assert "no such thing: libfoo" in out.stdout
    assert "HOOKLOOP_DISABLE=broken" in out.stdout


def test_broken_plugin_can_be_disabled(tmp_path):
    _fake_distribution(tmp_path, "brokendist", "raise ImportError('nope')")
    out = _run_python(tmp_path, """
        import asyncio, hookloop
        loop = hookloop.new_event_loop()
        print(loop.run_until_complete(asyncio.sleep(0, "fine")))
        loop.close()
    """, HOOKLOOP_DISABLE="broken")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "fine"


def test_third_party_backend_found_by_entry_point(tmp_path):
    _fake_distribution(tmp_path, "thirdparty", """
        import hookloop
        from hookloop_select import SelectPoller

        class ThirdPoller(SelectPoller):
            name = "third"

        @hookloop.hookimpl
        def hookloop_pollers():
            return [hookloop.Backend("third", ThirdPoller, priority=1,
                                     distribution="thirdparty")]
    """, entry_point="third")
    out = _run_python(tmp_path, """
        import asyncio, hookloop
        print(hookloop.available_backends())
        loop = hookloop.new_event_loop("third")
        print(loop.backend, loop.run_until_complete(asyncio.sleep(0, "ok")))
        loop.close()
    """)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "'third'" in lines[0]
    assert lines[1] == "third ok"


def test_plugin_with_unknown_hook_from_entry_point(tmp_path):
    _fake_distribution(tmp_path, "typodist", """
        import hookloop

        @hookloop.hookimpl
        def hookloop_pollerz():
            return []
    """, entry_point="typo")
    out = _run_python(tmp_path, """
        import hookloop
        try:
            hookloop.new_event_loop()
        except hookloop.PluginLoadError as exc:
            print("ERROR", exc)
    """)
    assert re.search(r"ERROR hookloop plugin 'typo' implements a hook that hookloop \S+ does "
                     r"not define: .*hookloop_pollerz.* \(a hook of a newer hookloop can be "
                     r"marked @hookimpl\(optionalhook=True\)\)", out.stdout), out.stderr


def test_plugin_with_an_optional_hook_unknown_to_this_core_loads(tmp_path):
    # A plugin written for a newer core marks hooks this one lacks optional.
    _fake_distribution(tmp_path, "newerdist", """
        import hookloop

        @hookloop.hookimpl(optionalhook=True)
        def hookloop_from_the_future():
            return []
    """, entry_point="newer")
    out = _run_python(tmp_path, """
        import hookloop
        hookloop.new_event_loop().close()
        print("OK", "newer" in {info.name for info in hookloop.plugin_infos()})
    """)
    assert "OK True" in out.stdout, out.stderr


def test_clear_cache_rereads_plugins():
    before = assembly.plugin_manager()
    assembly.clear_cache()
    after = assembly.plugin_manager()
    assert before is not after
    assert {i.name for i in hookloop.plugin_infos()} >= {"select", "epoll", "signals"}


def test_cache_never_confuses_two_plugin_objects(hookloop_backend):
    """A plugin object that died must not lend its recipe to a new one."""
    results = []
    for i in range(20):
        class Plugin:
            @hookimpl
            def hookloop_loop_created(self, loop, i=i):
                results.append(i)

        hookloop.new_event_loop(hookloop_backend, plugins=[Plugin()]).close()
    assert results == list(range(20))


def test_cache_is_bounded(hookloop_backend):
    for _ in range(assembly._CACHE_SIZE + 10):
        hookloop.new_event_loop(hookloop_backend, plugins=[type("P", (), {})()]).close()
    assert len(assembly._recipes) <= assembly._CACHE_SIZE
    assert len(assembly._managers) <= assembly._CACHE_SIZE


def test_missing_core_feature_says_upgrade():
    # Every core feature has its builtin now; the message is for the next one.
    exc = hookloop.PluginMissingError("a feature", "hookloop")
    assert str(exc).endswith("this version of hookloop does not have yet: "
                             "pip install --upgrade hookloop")


def test_disabled_resolver_says_enable_it(hookloop_backend):
    loop = hookloop.new_event_loop(hookloop_backend, disable=["resolver"])
    try:
        with pytest.raises(hookloop.PluginMissingError, match="'resolver'.*disabled"):
            loop.run_until_complete(loop.getaddrinfo("localhost", 80))
    finally:
        loop.close()
