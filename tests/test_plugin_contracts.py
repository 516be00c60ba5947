"""What the core asks of a plugin: a supported plugin API version, services
that satisfy their contracts (hookloop.services), a declared hookloop range.

Bad plugins are refused at assembly with an error naming the plugin, the
service and what is missing, never with an AttributeError later; a plugin
written for another plugin API is left out with a warning naming both
versions, and the loop works without it.
"""
from __future__ import annotations

import asyncio
import re
import tomllib
from pathlib import Path

import pytest

import hookloop
from hookloop.assembly import PLUGIN_API, clear_cache
from hookloop.services import SERVICE_CONTRACTS, TransportService, contract_methods

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _fresh_recipes():
    # Recipes are cached per plugin object; these tests make new ones.
    yield
    clear_cache()


class FromTheFuture:
    """A plugin written for a plugin API this core does not have."""

    __name__ = "future_plugin"
    HOOKLOOP_API = 99

    @hookloop.hookimpl
    def hookloop_transports(self):
        raise AssertionError("a refused plugin is never called")


def test_a_plugin_for_another_plugin_api_is_refused_naming_both_versions(hookloop_backend):
    with pytest.warns(hookloop.PluginAPIWarning) as warned:
        loop = hookloop.new_event_loop(hookloop_backend, plugins=[FromTheFuture()])
    try:
        message = str(warned[0].message)
        assert "'future_plugin'" in message
        assert "plugin API 99" in message
        assert f"supports plugin API {', '.join(map(str, sorted(PLUGIN_API)))}" in message
        # The loop works without it: the builtin transports serve.
        async def echo():
            r, w = await asyncio.open_connection(*server.sockets[0].getsockname())
            w.write(b"ping\n")
            line = await r.readline()
            w.close()
            await w.wait_closed()
            return line

        async def main():
            nonlocal server
            server = await asyncio.start_server(echo_handler, "127.0.0.1", 0)
            try:
                return await echo()
            finally:
                server.close()
                await server.wait_closed()

        async def echo_handler(reader, writer):
            writer.write(await reader.readline())
            await writer.drain()
            writer.close()

        server = None
        assert loop.run_until_complete(main()) == b"ping\n"
    finally:
        loop.close()


def test_a_plugin_for_this_plugin_api_is_loaded(hookloop_backend):
    made = []

    class Current:
        __name__ = "current_plugin"
        HOOKLOOP_API = min(PLUGIN_API)

        @hookloop.hookimpl
        def hookloop_loop_created(self, loop):
            made.append(loop)

    loop = hookloop.new_event_loop(hookloop_backend, plugins=[Current()])
    loop.close()
    assert made == [loop]


class HalfTransports:
    """A transports service lacking most of its contract."""

    def __init__(self, loop):
        self.loop = loop

    async def create_connection(self, *args, **kwargs):
        raise AssertionError("never called")


def test_a_service_class_lacking_methods_is_refused_at_assembly(hookloop_backend):
    class Plugin:
        __name__ = "half_transports"

        @hookloop.hookimpl
        def hookloop_transports(self):
            return HalfTransports

    with pytest.raises(hookloop.PluginLoadError) as refused:
        hookloop.new_event_loop(hookloop_backend, plugins=[Plugin()])
    message = str(refused.value)
    assert "'half_transports'" in message and "'transports' service" in message
    assert "'HalfTransports'" in message and "TransportService" in message
    missing = [m for m in contract_methods(TransportService) if m != "create_connection"]
    assert f"lacks {', '.join(missing)} of" in message


def test_a_service_made_by_a_function_is_checked_when_it_is_made(hookloop_backend):
    class Plugin:
        __name__ = "function_factory"

        @hookloop.hookimpl
        def hookloop_resolver(self):
            return lambda loop: object()

    loop = hookloop.new_event_loop(hookloop_backend, plugins=[Plugin()])
    try:
        with pytest.raises(hookloop.PluginLoadError,
                           match=r"'function_factory' provides a 'resolver' service whose "
                                 r"object 'object' lacks getaddrinfo, getnameinfo of "
                                 r"ResolverService"):
            loop.run_until_complete(loop.getaddrinfo("127.0.0.1", 80))
    finally:
        loop.close()


def test_every_contract_lists_what_the_shipped_services_have():
    # The contracts describe the real services: each installed one has every
    # method its contract names (a contract naming a method nobody has, or a
    # renamed method, fails here).
    loop = hookloop.new_event_loop(stall=False)
    try:
        for kind, contract in SERVICE_CONTRACTS.items():
            service = loop.service(kind)
            assert isinstance(service, contract), kind
            methods = contract_methods(contract)
            assert methods, kind
            assert all(callable(getattr(service, m)) for m in methods), kind
    finally:
        loop.close()


def _plugin_dirs():
    return sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml"))


@pytest.mark.parametrize("plugin_dir", _plugin_dirs(), ids=lambda p: p.name)
def test_each_plugin_declares_a_hookloop_range_and_its_plugin_api(plugin_dir):
    project = tomllib.loads((plugin_dir / "pyproject.toml").read_text())["project"]
    ranges = [d for d in project["dependencies"] if re.match(r"hookloop\b(?!-)", d)]
    assert len(ranges) == 1 and re.fullmatch(r"hookloop>=[\d.]+,<[\d.]+", ranges[0]), ranges
    entry_points = project["entry-points"]["hookloop"]
    for value in entry_points.values():
        module = __import__(value, fromlist=["_"])
        assert getattr(module, "HOOKLOOP_API", None) in PLUGIN_API, value


def test_the_plugin_guide_names_every_hook_and_contract():
    # The guide cannot drift from the code: every hook and every service
    # contract is in docs/plugins.md, as is each public module.
    import hookloop.hookspecs
    guide = (ROOT / "docs" / "plugins.md").read_text()
    hooks = [name for name in dir(hookloop.hookspecs) if name.startswith("hookloop_")]
    assert len(hooks) >= 10
    missing = [name for name in hooks if f"`{name}(" not in guide]
    missing += [c.__name__ for c in SERVICE_CONTRACTS.values() if f"`{c.__name__}`" not in guide]
    missing += [m for m in ("hookloop.poller", "hookloop.services", "hookloop.transport",
                            "hookloop.testing") if f"`{m}`" not in guide]
    assert missing == []
