"""Poller factory options: ``new_event_loop(backend_options={...})``.

The options a backend accepts are its factory's keyword parameters
(:attr:`hookloop.Backend.options`).  An option it does not accept is refused
with a ``TypeError`` naming ``backend_options``, the option and the backend,
before anything is made; a bad value is refused by the factory, before it
opens anything.  epoll and kqueue take ``max_events``, a fixed batch size.
"""
from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

import hookloop
from hookloop.poller import Poller
from hookloop_select import SelectPoller

#: The options each in-tree backend documents.
DOCUMENTED = {"epoll": {"max_events"}, "kqueue": {"max_events"}, "poll": set(), "select": set(),
              "uring": {"entries"}}


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"),
                                reason="needs /proc/self/fd to count fds")


class LoopCounter:
    """Counts the loops made with it among their plugins."""

    __name__ = "loop-counter"

    def __init__(self) -> None:
        self.created = 0

    @hookloop.hookimpl
    def hookloop_loop_created(self, loop: Any) -> None:
        self.created += 1


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("HOOKLOOP_BACKEND", "HOOKLOOP_DISABLE", "HOOKLOOP_NO_AUTOLOAD"):
        monkeypatch.delenv(name, raising=False)
    yield


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # The max_events tests run on the installed backends that take the
    # option (epoll, kqueue), not skipped on the others.
    if "max_events_backend" in metafunc.fixturenames:
        wanted = metafunc.config.getoption("hookloop_backend", default=None) or ()
        names = [name for name in hookloop.available_backends()
                 if "max_events" in (hookloop.get_backend(name).options or ())
                 and (not wanted or name in wanted)]
        metafunc.parametrize("max_events_backend", names)


def test_options_are_the_factory_keyword_parameters(hookloop_backend: str) -> None:
    backend = hookloop.get_backend(hookloop_backend)
    if hookloop_backend not in DOCUMENTED:
        pytest.skip("not an in-tree backend")
    assert backend.options == DOCUMENTED[hookloop_backend]


@needs_proc
def test_unknown_option_is_refused_before_anything_is_made(hookloop_backend: str) -> None:
    counter = LoopCounter()
    accepted = sorted(hookloop.get_backend(hookloop_backend).options or ())
    before = _fd_count()
    with pytest.raises(TypeError) as info:
        hookloop.new_event_loop(hookloop_backend, backend_options={"max_event": 8},
                                plugins=[counter])
    message = str(info.value)
    assert message.startswith(f"backend_options: the {hookloop_backend!r} backend (")
    assert "has no option 'max_event'" in message
    assert message.endswith(f"it accepts: {', '.join(accepted)}" if accepted
                            else "it accepts none")
    assert counter.created == 0
    assert _fd_count() == before


@needs_proc
@pytest.mark.parametrize("value, error, says", [
    (0, ValueError, "max_events option must be at least 1, got 0"),
    (-5, ValueError, "max_events option must be at least 1, got -5"),
    ("64", TypeError, "max_events option must be an int or None, not str"),
    (True, TypeError, "max_events option must be an int or None, not bool"),
])
def test_bad_max_events_is_refused_before_anything_is_made(
        max_events_backend: str, value: Any, error: type[Exception], says: str) -> None:
    counter = LoopCounter()
    before = _fd_count()
    with pytest.raises(error) as info:
        hookloop.new_event_loop(max_events_backend, backend_options={"max_events": value},
                                plugins=[counter])
    assert str(info.value) == f"the {max_events_backend!r} backend's {says}"
    assert counter.created == 0
    assert _fd_count() == before


def test_max_events_fixes_the_batch(max_events_backend: str) -> None:
    """With max_events=3, one poll reports at most 3 events and the batch never
    grows; the loop still serves every ready fd, over several iterations."""
    loop = hookloop.new_event_loop(max_events_backend, backend_options={"max_events": 3})
    pairs = [socket.socketpair() for _ in range(10)]
    try:
        poller: Poller = loop.poller
        assert poller.statistics()["maxevents"] == 3
        for a, _ in pairs:
            poller.register(a.fileno(), 2)  # WRITE: every one is ready
        # kqueue hands the registrations over with the first poll, which has
        # one more slot per change (for their errors); the others have 3.
        assert len(poller.poll(0)) == (10 if max_events_backend == "kqueue" else 3)
        sizes = [len(poller.poll(0)) for _ in range(5)]
        assert sizes == [3] * 5
        assert poller.statistics()["maxevents"] == 3
        for a, _ in pairs:
            poller.unregister(a.fileno())

        served: set[int] = set()
        done = loop.create_future()

        def writable(fd: int) -> None:
            served.add(fd)
            loop.remove_writer(fd)
            if len(served) == len(pairs) and not done.done():
                done.set_result(None)

        for a, _ in pairs:
            loop.add_writer(a.fileno(), writable, a.fileno())
        loop.run_until_complete(done)
        assert served == {a.fileno() for a, _ in pairs}
        assert poller.statistics()["maxevents"] == 3
    finally:
        for a, b in pairs:
            a.close()
            b.close()
        loop.close()


def test_without_options_the_batch_adapts(max_events_backend: str) -> None:
    for options in (None, {}, {"max_events": None}):
        loop = hookloop.new_event_loop(max_events_backend, backend_options=options)
        try:
            assert loop.poller.statistics()["maxevents"] == 64
        finally:
            loop.close()


def test_backend_options_must_be_a_mapping() -> None:
    counter = LoopCounter()
    with pytest.raises(TypeError, match="^backend_options must be a mapping of option names "
                                        "to values, not list$"):
        hookloop.new_event_loop("select", backend_options=[("max_events", 3)],  # type: ignore[arg-type]
                                plugins=[counter])
    assert counter.created == 0


def test_options_go_to_the_default_backend_too() -> None:
    """Without ``backend=``, the options go to the backend chosen, and the
    error names it."""
    default = hookloop.get_backend().name
    with pytest.raises(TypeError, match=f"^backend_options: the '{default}' backend "):
        hookloop.new_event_loop(backend_options={"no_such_option": 1})


def test_the_policy_forwards_backend_options(max_events_backend: str) -> None:
    policy = hookloop.EventLoopPolicy(max_events_backend, backend_options={"max_events": 5})
    loop = policy.new_event_loop()
    try:
        assert loop.poller.statistics()["maxevents"] == 5
    finally:
        loop.close()


class _OptionsPlugin:
    """A backend whose factory takes ``**options`` and one whose takes one."""

    __name__ = "options-test"

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def any_options(self, **options: Any) -> SelectPoller:
        self.seen.append(options)
        return SelectPoller()

    @staticmethod
    def one_option(*, cap: int = 1) -> SelectPoller:
        return SelectPoller()

    @hookloop.hookimpl
    def hookloop_pollers(self) -> list[hookloop.Backend]:
        return [hookloop.Backend("select", self.any_options, priority=1000),
                hookloop.Backend("select", self.one_option, priority=999)]


def test_a_factory_taking_any_keyword_checks_them_itself() -> None:
    plugin = _OptionsPlugin()
    assert hookloop.Backend("x", plugin.any_options).options is None
    assert hookloop.Backend("x", plugin.one_option).options == {"cap"}
    assert hookloop.Backend("x", SelectPoller).options == frozenset()
    loop = hookloop.new_event_loop("select", backend_options={"anything": 1},
                                   plugins=[plugin])
    try:
        assert plugin.seen == [{"anything": 1}]
    finally:
        loop.close()
