"""The subjects: the event loops the bench compares.

* every **available hookloop backend**, found through the plugins
  (``hookloop.available_backends()``), so a backend installed from anywhere
  is a subject by being installed; the bench never names one;
* **asyncio**'s own loop, always (the baseline of every ratio);
* **uvloop**, when it is importable;
* any other loop given as ``module:factory`` (a zero-argument callable
  returning a new loop), e.g. ``uvloop:new_event_loop``.

A :class:`Subject` is plain data that crosses into the measuring process as
JSON; :func:`make_loop` turns it into a loop there.  :func:`not_run_reason`
says, in the parent, why a workload cannot run on a subject: a hookloop
subject without the ``tls`` or ``subprocess`` service (asked of its recipe;
the bench never imports hookloop-tls or hookloop-subprocess), no trustme
for TLS anywhere, or no aiohttp/uvicorn for the framework workloads (looked
up, never imported, here; the measuring process reports "not run" as well
if the import fails there).  Peer loops are assumed to serve all of asyncio.

This module must never create a loop in the parent process.
"""
from __future__ import annotations

import asyncio
import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from .workloads import UsageError, Workload, install_hint

PEERS = ("asyncio", "uvloop")


@dataclass(frozen=True)
class Subject:
    """One loop to measure.

    :param name: Its column in the table.
    :param kind: ``hookloop``, ``asyncio`` or ``factory``.
    :param target: The backend name (hookloop) or ``module:factory``.
    """

    name: str
    kind: str
    target: str = ""

    def to_json(self) -> dict[str, str]:
        return asdict(self)


def _resolve(spec: str) -> Callable[[], Any]:
    """The callable named by ``module:attr.path``; :class:`UsageError` if none."""
    module_name, sep, attr_path = spec.partition(":")
    if not sep or not module_name or not attr_path:
        raise UsageError(f"--subjects: {spec!r} is not module:factory")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"--subjects: cannot import {module_name!r} for {spec!r}: {exc}") from None
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(f"--subjects: {spec!r}: {obj!r} has no attribute {part!r}") from None
    if not callable(obj):
        raise UsageError(f"--subjects: {spec!r} is not callable")
    return obj  # type: ignore[no-any-return]


def uvloop_installed() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def installed() -> list[Subject]:
    """asyncio, every available hookloop backend, and uvloop if installed."""
    import hookloop
    subjects = [Subject("asyncio", "asyncio")]
    for backend in hookloop.available_backends():
        name = backend if backend not in PEERS else f"hookloop-{backend}"
        subjects.append(Subject(name, "hookloop", backend))
    if uvloop_installed():
        subjects.append(Subject("uvloop", "factory", "uvloop:new_event_loop"))
    return subjects


def select_subjects(spec: str | None) -> list[Subject]:
    """The subjects named in ``spec`` (names from :func:`installed`, or
    ``module:factory``), asyncio always first; all installed ones for
    ``None``.  Anything unknown or unimportable raises :class:`UsageError`."""
    known = installed()
    if spec is None:
        return known
    by_name = {s.name: s for s in known}
    chosen = [known[0]]
    names = [name.strip() for name in spec.split(",") if name.strip()]
    if not names:
        raise UsageError(f"--subjects: no subject in {spec!r}")
    for name in names:
        if name in by_name:
            subject = by_name[name]
        elif ":" in name:
            _resolve(name)
            subject = Subject(name, "factory", name)
        else:
            raise UsageError(f"--subjects: unknown subject {name!r}; installed: "
                             f"{', '.join(by_name)} (or give a loop factory as module:factory)")
        if subject not in chosen:
            chosen.append(subject)
    return chosen


def not_run_reason(subject: Subject, workload: Workload) -> str | None:
    """Why ``workload`` cannot run on ``subject`` here, or ``None``."""
    if workload.framework and importlib.util.find_spec(workload.framework) is None:
        return install_hint(workload.framework)
    if workload.needs == "tls" and importlib.util.find_spec("trustme") is None:
        return "trustme is not installed (pip install 'hookloop-bench[tls]')"
    if subject.kind != "hookloop" or workload.needs is None:
        return None
    import hookloop
    loop = hookloop.new_event_loop(subject.target, stall=False)
    try:
        loop.service(workload.needs)
    except hookloop.PluginMissingError as missing:
        return f"{missing.distribution} is not installed"
    finally:
        loop.close()
    return None


def make_loop(subject: Subject) -> Callable[[], asyncio.AbstractEventLoop]:
    """(In the measuring process.)  A zero-argument factory of the subject's loops."""
    if subject.kind == "asyncio":
        return asyncio.new_event_loop
    if subject.kind == "hookloop":
        import hookloop
        backend = subject.target
        return lambda: hookloop.new_event_loop(backend)
    factory = _resolve(subject.target)

    def checked() -> asyncio.AbstractEventLoop:
        loop = factory()
        if not isinstance(loop, asyncio.AbstractEventLoop):
            raise TypeError(f"{subject.target} returned {loop!r}, not an event loop")
        return loop
    return checked
