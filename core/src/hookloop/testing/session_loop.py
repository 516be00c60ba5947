"""``--hookloop-loop=NAME``: a project's own async tests on hookloop loops.

A project tests its asyncio code with pytest-asyncio or anyio's pytest
plugin.  Given ``--hookloop-loop=NAME`` (a backend name, or ``default``
for the backend :func:`hookloop.new_event_loop` picks), the testing kit
makes the loops those plugins create hookloop loops of that backend, for the
whole session, without a line changed in the project:

pytest-asyncio 1.4 and newer
    through its ``pytest_asyncio_loop_factories`` hook, the mechanism it
    provides for exactly this (parametrizing asyncio tests by loop
    factory).  Chosen over the ``event_loop_policy`` fixture because that
    override is deprecated there (pytest-asyncio 1.4) and asyncio's
    policies are deprecated themselves (Python 3.14, removal planned for
    3.16): a loop factory works the same on 3.11 to 3.14 and beyond.  The
    kit's implementation is a wrapper around the hook's other
    implementations: with none (the usual case) every asyncio test and the
    async fixtures it uses run on one factory, ``hookloop``; when the
    project has its own factories (``{"asyncio": ..., "uvloop": ...}``),
    their names are kept, so ``mark.asyncio(loop_factories=[...])`` still
    selects, and each of them makes hookloop loops.  A single factory keeps
    test names unchanged (pytest 8.4+).  The hook parametrizes asyncio tests
    only; for a synchronous test that requests an async fixture, the kit
    also hands pytest-asyncio's runner the factory (see
    ``_PytestAsyncioFactories.pytest_fixture_setup``).
pytest-asyncio before 1.4
    which has no such hook: the kit overrides its ``event_loop_policy``
    fixture with a :class:`hookloop.EventLoopPolicy`, the way those
    versions document for choosing loops (a project's own
    ``event_loop_policy`` fixture in a ``conftest.py`` takes precedence).
anyio 4
    its plugin reads the ``anyio_backend`` fixture (the project's or
    anyio's own), whose value may be ``"asyncio"`` or ``("asyncio",
    options)``; the asyncio backend takes a ``loop_factory`` option.  The kit
    adds that option to every asyncio value the fixture gives (replacing a
    ``loop_factory`` or ``use_uvloop`` the project chose), so anyio's tests and
    async fixtures run on hookloop; other backends (``"trio"``) are left
    alone, and test ids do not change.

Neither library is required: the kit acts on those that are installed and
active, and without the option it registers nothing at all.  An unknown or
unavailable backend name is a usage error that lists the installed backends.
The report header says which libraries were switched, and how.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

__all__ = ["SessionLoop", "add_option", "configure", "header_line", "session_loop"]

#: The factory name the kit gives pytest-asyncio when the project has none.
FACTORY_NAME = "hookloop"
_key = pytest.StashKey["SessionLoop"]()


@dataclass(frozen=True)
class SessionLoop:
    """What ``--hookloop-loop`` chose: the backend, and what was switched."""

    #: The option's value, as given (a backend name or ``default``).
    requested: str
    #: The backend's name (``default`` resolved).
    backend: str
    #: One ``"library (mechanism)"`` per library the kit switched.
    switched: tuple[str, ...] = ()

    def new_event_loop(self) -> Any:
        """A new hookloop loop on the chosen backend (the loop factory)."""
        import hookloop
        return hookloop.new_event_loop(self.backend)

    def anyio_backend(self, value: object) -> object:
        """An ``anyio_backend`` fixture value with the asyncio backend's
        ``loop_factory`` set to hookloop's; any other value unchanged
        (anyio itself rejects malformed ones)."""
        options: dict[str, Any]
        if isinstance(value, str):
            name, options = value, {}
        elif (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)
              and isinstance(value[1], dict)):
            name, options = value
        else:
            return value
        if name != "asyncio":
            return value
        return name, {**options, "loop_factory": self.new_event_loop}


def add_option(group: pytest.OptionGroup) -> None:
    """Add ``--hookloop-loop`` to the kit's option group."""
    group.addoption("--hookloop-loop", dest="hookloop_loop", default=None, metavar="NAME",
                    help="for the whole session, the loops of pytest-asyncio and of anyio's "
                         "asyncio backend are hookloop loops of backend NAME ('default': the "
                         "one hookloop.new_event_loop() picks: $HOOKLOOP_BACKEND or the best)")


def resolve_backend(requested: str) -> str:
    """The backend ``--hookloop-loop=requested`` names; ``pytest.UsageError``
    (listing the installed backends) if there is no such available backend."""
    import hookloop
    if not requested.strip():
        raise pytest.UsageError("--hookloop-loop: expected a backend name or 'default', "
                                f"got an empty string; installed backends: "
                                f"{', '.join(hookloop.available_backends()) or 'none'}")
    try:
        return hookloop.get_backend(None if requested == "default" else requested).name
    except hookloop.HookloopError as exc:
        raise pytest.UsageError(f"--hookloop-loop={requested}: {exc}") from None


def _active(pluginmanager: pytest.PytestPluginManager, module: str) -> bool:
    """Whether the plugin module ``module`` is imported and registered (by
    entry point or ``-p``; not when blocked with ``-p no:NAME``)."""
    plugin = sys.modules.get(module)
    return plugin is not None and pluginmanager.is_registered(plugin)


def configure(config: pytest.Config) -> None:
    """Act on ``--hookloop-loop``: check it, then register the parts for the
    libraries that are active.  Without the option: nothing."""
    requested = config.getoption("hookloop_loop", default=None)
    if requested is None:
        return
    backend = resolve_backend(requested)
    pluginmanager = config.pluginmanager
    asyncio_via: str | None = None
    if _active(pluginmanager, "pytest_asyncio.plugin"):
        # The hookspec is there from pytest-asyncio 1.4 on (added in its pytest_addoption).
        asyncio_via = ("pytest_asyncio_loop_factories hook"
                       if hasattr(config.hook, "pytest_asyncio_loop_factories")
                       else "event_loop_policy fixture")
    anyio = _active(pluginmanager, "anyio.pytest_plugin")
    switched = ((f"pytest-asyncio ({asyncio_via})",) if asyncio_via else ()) + (
        ("anyio (anyio_backend loop_factory)",) if anyio else ())
    chosen = config.stash[_key] = SessionLoop(requested, backend, switched)
    if asyncio_via == "event_loop_policy fixture":
        from . import _asyncio_policy
        config.stash[_asyncio_policy.BACKEND] = backend
        pluginmanager.register(_asyncio_policy, "hookloop-loop-pytest-asyncio")
    elif asyncio_via:
        pluginmanager.register(_PytestAsyncioFactories(chosen), "hookloop-loop-pytest-asyncio")
    if anyio:
        pluginmanager.register(_AnyioBackends(chosen), "hookloop-loop-anyio")


def session_loop(config: pytest.Config) -> SessionLoop | None:
    """What ``--hookloop-loop`` chose in this session, or ``None``."""
    return config.stash.get(_key, None)


def header_line(config: pytest.Config) -> str | None:
    """The report header's line about ``--hookloop-loop``, if given."""
    chosen = session_loop(config)
    if chosen is None:
        return None
    what = ", ".join(chosen.switched) or "nothing: neither pytest-asyncio nor anyio is active"
    return f"hookloop: --hookloop-loop={chosen.requested}: {chosen.backend} loops for {what}"


class _PytestAsyncioFactories:
    """pytest-asyncio 1.4+: the loop factories its tests are parametrized by."""

    def __init__(self, chosen: SessionLoop) -> None:
        self._chosen = chosen

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_asyncio_loop_factories(self) -> Generator[None, object, object]:
        """Every factory the project configured (or one, ``hookloop``, if it
        configured none) makes hookloop loops."""
        chosen = yield
        factory: Callable[[], Any] = self._chosen.new_event_loop
        if chosen is None:
            return {FACTORY_NAME: factory}
        if isinstance(chosen, Mapping) and chosen:
            return {name: factory for name in chosen}
        return chosen  # invalid: left for pytest-asyncio to report

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef: pytest.FixtureDef[Any]
                             ) -> Generator[None, object, object]:
        """The one case the hook does not reach: a synchronous test that
        requests an async fixture.  pytest-asyncio parametrizes only asyncio
        tests by factory, so its (private) ``_asyncio_loop_factory`` fixture
        is ``None`` there and the fixture's runner would make asyncio's own
        loop; the kit gives it the factory instead.  Should pytest-asyncio
        rename that fixture, this does nothing, and the sample project's
        test of that case (tests/integration) says so."""
        value = yield
        if (value is None and fixturedef.argname == "_asyncio_loop_factory"
                and getattr(fixturedef.func, "__module__", None) == "pytest_asyncio.plugin"):
            factory: Callable[[], Any] = self._chosen.new_event_loop
            _replace_value(fixturedef, factory)
            return factory
        return value


class _AnyioBackends:
    """anyio: the asyncio backend's ``loop_factory`` option."""

    def __init__(self, chosen: SessionLoop) -> None:
        self._chosen = chosen

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef: pytest.FixtureDef[Any]
                             ) -> Generator[None, object, object]:
        """Rewrite the value of an ``anyio_backend`` fixture (whoever defines
        it: the project or anyio) as it is made."""
        value = yield
        if fixturedef.argname != "anyio_backend":
            return value
        converted = self._chosen.anyio_backend(value)
        if converted is not value:
            _replace_value(fixturedef, converted)
        return converted


def _replace_value(fixturedef: pytest.FixtureDef[Any], value: object) -> None:
    """Make ``value`` the value of the fixture just set up.  pytest hands a
    fixture's users the value cached in ``fixturedef.cached_result`` (what
    ``pytest_fixture_setup`` returns is not used), so it is replaced there."""
    cached = fixturedef.cached_result
    if cached is not None and cached[2] is None:
        fixturedef.cached_result = (value, cached[1], None)
