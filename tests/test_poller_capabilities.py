"""Optional poller capabilities: a declared flag, checked against the methods
when a loop is made.

A poller declares what it can do beyond the fd contract in ``capabilities``
(:data:`hookloop.poller.PROCESS_WATCHING`, ...).  The loop refuses, naming the
backend, a poller that declares a capability without its methods or has the
methods without declaring it, and leaks nothing doing so.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import hookloop
from hookloop.poller import CAPABILITIES, PROCESS_WATCHING, check_capabilities
from hookloop_select import SelectPoller


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"),
                                reason="needs /proc/self/fd to count fds")


class _Watching(SelectPoller):
    """A select poller with (pretend) process watching."""

    def watch_process(self, pid: int, callback: Callable[[int], object]) -> None:
        pass

    def unwatch_process(self, pid: int) -> None:
        pass


class ClaimsWithoutMethods(SelectPoller):
    name = "claims"
    capabilities = frozenset({PROCESS_WATCHING})


class MethodsWithoutClaim(_Watching):
    name = "unclaimed"


class HalfTheMethods(SelectPoller):
    name = "half"
    capabilities = frozenset({PROCESS_WATCHING})

    def watch_process(self, pid: int, callback: Callable[[int], object]) -> None:
        pass


class CapabilitiesAsString(_Watching):
    name = "stringly"
    capabilities = PROCESS_WATCHING  # type: ignore[assignment]


class Declared(_Watching):
    name = "declared"
    capabilities = frozenset({PROCESS_WATCHING, "some-future-capability"})


class _Plugin:
    """Offers one backend over ``poller_type`` and counts loops made."""

    def __init__(self, poller_type: type[SelectPoller]) -> None:
        self.__name__ = f"capability-test-{poller_type.name}"
        self.poller_type = poller_type
        self.created = 0
        self.made: list[Any] = []

    def _factory(self) -> SelectPoller:
        poller = self.poller_type()
        self.made.append(poller)
        return poller

    @hookloop.hookimpl
    def hookloop_pollers(self) -> list[hookloop.Backend]:
        return [hookloop.Backend(self.poller_type.name, self._factory,
                                 distribution="capability-test-dist")]

    @hookloop.hookimpl
    def hookloop_loop_created(self, loop: Any) -> None:
        self.created += 1


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("HOOKLOOP_BACKEND", "HOOKLOOP_DISABLE", "HOOKLOOP_NO_AUTOLOAD"):
        monkeypatch.delenv(name, raising=False)
    yield


def test_every_installed_backend_is_consistent(hookloop_backend: str) -> None:
    loop = hookloop.new_event_loop(hookloop_backend)
    try:
        capabilities = check_capabilities(loop.poller)
        assert capabilities == loop.poller.capabilities
        assert isinstance(loop.poller.capabilities, frozenset)
        if hookloop_backend == "kqueue":
            assert PROCESS_WATCHING in capabilities
        elif hookloop_backend in ("epoll", "poll", "select"):
            assert capabilities == frozenset()
    finally:
        loop.close()


@needs_proc
@pytest.mark.parametrize("poller_type, says", [
    (ClaimsWithoutMethods,
     "ClaimsWithoutMethods declares the capability 'process-watching' but has no "
     "watch_process(), unwatch_process()"),
    (HalfTheMethods,
     "HalfTheMethods declares the capability 'process-watching' but has no "
     "unwatch_process()"),
    (MethodsWithoutClaim,
     "MethodsWithoutClaim has watch_process(), unwatch_process() but does not declare "
     "the capability 'process-watching'"),
    (CapabilitiesAsString,
     "CapabilitiesAsString.capabilities must be a frozenset of capability names"),
])
def test_inconsistent_poller_is_refused_naming_the_backend(
        poller_type: type[SelectPoller], says: str) -> None:
    plugin = _Plugin(poller_type)
    before = _fd_count()
    with pytest.raises(hookloop.PluginLoadError) as info:
        hookloop.new_event_loop(poller_type.name, plugins=[plugin])
    message = str(info.value)
    assert message.startswith(f"backend {poller_type.name!r} (capability-test-dist) is refused: ")
    assert says in message
    # The poller was made, then closed: no fd left, no loop made.
    assert len(plugin.made) == 1 and plugin.made[0]._closed
    assert plugin.created == 0
    assert _fd_count() == before


def test_declared_capability_with_its_methods_is_accepted() -> None:
    """A complete declaration passes; names the core does not know are ignored."""
    plugin = _Plugin(Declared)
    loop = hookloop.new_event_loop("declared", plugins=[plugin])
    try:
        assert loop.poller.capabilities == {PROCESS_WATCHING, "some-future-capability"}
        assert plugin.created == 1
    finally:
        loop.close()


def test_every_known_capability_names_its_methods() -> None:
    assert PROCESS_WATCHING == "process-watching"
    assert CAPABILITIES[PROCESS_WATCHING] == ("watch_process", "unwatch_process")
    assert hookloop.poller.PollerBase.capabilities == frozenset()
