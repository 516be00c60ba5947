"""The loop's methods have asyncio's signatures, on the Python running the test.

For every public method of ``asyncio.AbstractEventLoop``, hookloop's loop
must take the same parameters as asyncio's: same names, in the same order,
of the same kinds (positional, keyword-only, ``*args``, ``**kwargs``), with
the same defaults (equal and of the same type: ``socket.AF_UNSPEC``, not
``0``), and be a coroutine function exactly where asyncio's is.

The yardstick is the loop ``asyncio.new_event_loop()`` returns, not
``AbstractEventLoop``.  Where the two agree it makes no difference; where
they differ, the abstract class is vaguer or out of date and the concrete
loop is what code written for asyncio actually calls: ``sock_recv``'s second
parameter is ``nbytes`` there but ``n`` on the loop; ``sock_sendfile`` has
``fallback=None`` there, ``True`` on the loop; ``create_datagram_endpoint``
still lists ``reuse_address``, which the loop has refused since 3.11;
``subprocess_exec``/``subprocess_shell`` take bare ``**kwargs`` there, where
the loop names ``universal_newlines`` ... ``text`` (and ``program``); and
3.12's ``create_connection(all_errors=)`` and
``shutdown_default_executor(timeout=)`` and 3.13's
``create_unix_server(cleanup_socket=)`` exist on the loop only.  So the
concrete loop is the strictest yardstick that is honest: whatever asyncio's
loop accepts, ours accepts; whatever it refuses with a TypeError, so does
ours.  ``AbstractEventLoop`` still decides *which* methods are checked, so a
method a new Python adds is checked as soon as it exists.
"""
from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import hookloop

METHODS = sorted(name for name, value in vars(asyncio.AbstractEventLoop).items()
                 if not name.startswith("_") and callable(value))


@pytest.fixture(scope="module")
def loops() -> Iterator[tuple[asyncio.AbstractEventLoop, asyncio.AbstractEventLoop]]:
    """(asyncio's loop, hookloop's loop), both made the way users make them."""
    ours = hookloop.new_event_loop()
    theirs = asyncio.new_event_loop()
    try:
        yield theirs, ours
    finally:
        ours.close()
        theirs.close()


def _shape(method: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    """What a caller depends on: (name, kind, (default type, default)) per parameter."""
    return [(p.name, p.kind, (type(p.default), p.default))
            for p in inspect.signature(method).parameters.values()]


def test_abstract_event_loop_methods_found() -> None:
    # Guards the parametrization below against an empty list.
    assert {"call_soon", "create_server", "sock_recv", "subprocess_exec"} <= set(METHODS)


@pytest.mark.parametrize("name", METHODS)
def test_signature_matches_asyncio(loops, name: str) -> None:
    theirs, ours = loops
    expected, actual = getattr(theirs, name), getattr(ours, name)
    assert _shape(actual) == _shape(expected), (
        f"loop.{name}: asyncio has {inspect.signature(expected)}, "
        f"hookloop has {inspect.signature(actual)}")
    assert inspect.iscoroutinefunction(actual) == inspect.iscoroutinefunction(expected)


@pytest.mark.parametrize("name", METHODS)
def test_method_is_type_hinted(loops, name: str) -> None:
    # asyncio's have no hints; ours must, for help(), IDEs and type checkers.
    _, ours = loops
    signature = inspect.signature(getattr(ours, name))
    unannotated = [p.name for p in signature.parameters.values()
                   if p.annotation is inspect.Parameter.empty]
    assert not unannotated, f"loop.{name}: parameters without a type hint: {unannotated}"
    assert signature.return_annotation is not inspect.Signature.empty, (
        f"loop.{name}: no return type hint")
