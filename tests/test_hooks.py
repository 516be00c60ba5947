"""Every hook in hookloop.hookspecs, exercised through a plugin passed as plugins=.

A plugin here is a plain class instance with @hookimpl methods; the
assembly registers it next to the installed plugins, so these tests go
through exactly the path a third-party distribution takes.
"""
from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import functools
import inspect

import pytest

import hookloop
from hookloop import hookimpl, hookspecs
from hookloop.cli import build_parser


class Service:
    """A feature service that records how the loop used it."""

    def __init__(self, loop):
        self.loop = loop
        self.calls = []
        self.closed = False

    def __getattr__(self, name):
        async def method(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            return name
        return method

    def close(self):
        self.closed = True


def _service_plugin(hook_name):
    made = []

    def factory(loop):
        svc = Service(loop)
        made.append(svc)
        return svc

    plugin = type(f"{hook_name}_plugin", (), {
        hook_name: staticmethod(hookimpl(lambda: factory)),
    })()
    return plugin, made


@pytest.mark.parametrize(("hook", "method", "args"), [
    ("hookloop_transports", "create_connection", (object, "host", 1)),
    ("hookloop_transports", "sock_recv", (None, 10)),
    ("hookloop_tls", "start_tls", (None, None, None)),
    ("hookloop_resolver", "getaddrinfo", ("localhost", 80)),
    ("hookloop_subprocess", "subprocess_exec", (object, "true")),
])
def test_service_hooks_serve_loop_methods(hookloop_backend, hook, method, args):
    plugin, made = _service_plugin(hook)
    loop = hookloop.new_event_loop(hookloop_backend, plugins=[plugin])
    try:
        assert made == []  # services are made lazily, on first use
        result = loop.run_until_complete(getattr(loop, method)(*args))
        assert result == method
        assert len(made) == 1
        assert made[0].loop is loop
        # The service gets every argument of the loop method (asyncio's
        # signature, tests/test_loop_signatures.py), as given or defaulted:
        # positional parameters by position, keyword-only ones by keyword.
        given = inspect.signature(getattr(loop, method)).bind(*args)
        given.apply_defaults()
        assert made[0].calls == [(method, given.args, given.kwargs)]
        loop.run_until_complete(getattr(loop, method)(*args))
        assert len(made) == 1  # made once per loop
    finally:
        loop.close()
    assert made[0].closed  # the loop closes its services


def test_service_missing_names_distribution(hookloop_backend):
    # Left out, so the test holds whether hookloop-tls is installed or not.
    loop = hookloop.new_event_loop(hookloop_backend, disable=["tls"])
    try:
        with pytest.raises(hookloop.PluginMissingError, match="pip install hookloop-tls"):
            loop.run_until_complete(loop.start_tls(None, None, None))
    finally:
        loop.close()


def test_pollers_hook_adds_a_backend():
    from hookloop_select import SelectPoller

    class Renamed(SelectPoller):
        name = "renamed-select"

    class Plugin:
        @hookimpl
        def hookloop_pollers(self):
            return [hookloop.Backend("renamed-select", Renamed, priority=1),
                    hookloop.Backend("nowhere", Renamed, unavailable="needs a BSD kernel")]

    plugin = Plugin()
    loop = hookloop.new_event_loop("renamed-select", plugins=[plugin])
    try:
        assert loop.backend == "renamed-select"
        assert loop.run_until_complete(asyncio.sleep(0, "ok")) == "ok"
    finally:
        loop.close()
    with pytest.raises(hookloop.BackendUnavailableError, match="needs a BSD kernel"):
        hookloop.new_event_loop("nowhere", plugins=[plugin])


def test_signals_hook_overrides_builtin(hookloop_backend):
    seen = []

    class FakeSignals:
        def __init__(self, loop):
            pass

        def add_signal_handler(self, sig, callback, *args):
            seen.append(("add", sig, callback, args))

        def remove_signal_handler(self, sig):
            seen.append(("remove", sig))
            return True

    class Plugin:
        @hookimpl
        def hookloop_signals(self):
            return FakeSignals

    loop = hookloop.new_event_loop(hookloop_backend, plugins=[Plugin()])
    try:
        loop.add_signal_handler(10, print, 1)
        assert loop.remove_signal_handler(10) is True
    finally:
        loop.close()
    assert seen == [("add", 10, print, (1,)), ("remove", 10)]


def test_executor_hook_overrides_builtin(hookloop_backend):
    made = []

    def factory():
        ex = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="custom")
        made.append(ex)
        return ex

    class Plugin:
        @hookimpl
        def hookloop_executor(self):
            return factory

    loop = hookloop.new_event_loop(hookloop_backend, plugins=[Plugin()])
    try:
        import threading
        name = loop.run_until_complete(
            loop.run_in_executor(None, lambda: threading.current_thread().name))
        assert name.startswith("custom")
        assert len(made) == 1
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


def test_lifecycle_hooks(hookloop_backend):
    events = []

    class Plugin:
        @hookimpl
        def hookloop_loop_created(self, loop):
            events.append(("created", loop.is_closed()))

        @hookimpl
        def hookloop_loop_closing(self, loop):
            events.append(("closing", loop.is_closed()))

    loop = hookloop.new_event_loop(hookloop_backend, plugins=[Plugin()])
    assert events == [("created", False)]
    loop.close()
    loop.close()
    assert events == [("created", False), ("closing", False)]


def test_failing_loop_created_closes_the_loop(hookloop_backend):
    made = []

    class Plugin:
        @hookimpl
        def hookloop_loop_created(self, loop):
            made.append(loop)
            raise RuntimeError("plugin refused")

    with pytest.raises(RuntimeError, match="plugin refused"):
        hookloop.new_event_loop(hookloop_backend, plugins=[Plugin()])
    assert made[0].is_closed()


def test_instruments_hook(hookloop_backend):
    stats = hookloop.PollStatistics()

    class Plugin:
        @hookimpl
        def hookloop_instruments(self, loop):
            return [stats]

    loop = hookloop.new_event_loop(hookloop_backend, plugins=[Plugin()])
    try:
        loop.run_until_complete(asyncio.sleep(0))
    finally:
        loop.close()
    assert stats.polls >= 1
    assert stats.callbacks >= 1


def test_add_commands_hook(capsys):
    class Plugin:
        @hookimpl
        def hookloop_add_commands(self, subparsers):
            p = subparsers.add_parser("hello")
            p.add_argument("who")
            p.set_defaults(func=lambda args: print(f"hello {args.who}") or 3)

    manager = hookloop.assembly._manager((plugin := Plugin(),))
    assert manager.pm.get_plugin(type(plugin).__name__ + f"-{id(plugin):x}") is plugin
    parser = argparse.ArgumentParser(prog="hookloop")
    sub = parser.add_subparsers()
    manager.pm.hook.hookloop_add_commands(subparsers=sub)
    args = parser.parse_args(["hello", "world"])
    assert args.func(args) == 3
    assert capsys.readouterr().out == "hello world\n"
    # The core's own commands come through the same hook.
    assert "plugins" in build_parser()._subparsers._group_actions[0].choices


def test_every_hookspec_is_tested_and_documented():
    """datasette's rule: the docs and the tests cannot drift from the hookspecs."""
    import pathlib
    specs = {name for name in dir(hookspecs) if name.startswith("hookloop_")}
    assert len(specs) == 11
    here = pathlib.Path(__file__).read_text()
    readme = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    for name in specs:
        assert name in here, f"{name} has no test in {__file__}"
        assert name in readme, f"{name} is not documented in README.md"
        doc = getattr(hookspecs, name).__doc__
        assert doc and (":returns:" in doc or ":param" in doc), f"{name} lacks :param:/:returns:"


def test_unknown_hook_in_plugin_fails_loudly():
    class Typo:
        @hookimpl
        def hookloop_poller(self):  # missing "s": no such hook
            return []

    with pytest.raises(hookloop.PluginLoadError, match="does not define"):
        hookloop.new_event_loop(plugins=[Typo()])


def test_loop_factory_partial_works_with_runner(hookloop_backend):
    factory = functools.partial(hookloop.new_event_loop, hookloop_backend)
    with asyncio.Runner(loop_factory=factory) as runner:
        assert runner.run(asyncio.sleep(0, "done")) == "done"
        assert runner.get_loop().backend == hookloop_backend
