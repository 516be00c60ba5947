"""Rule 1 of DEVELOPERS.md, enforced: our own loop, not asyncio's machinery.

Product code (everything shipped: core/src and plugins/*/src) may reuse
asyncio's public types only.  It must never import or reach into
base_events, selector_events, unix_events, sslproto, base_subprocess,
proactor_events, SelectorEventLoop/BaseEventLoop, or the selectors module,
under whatever name (``import asyncio as aio``, ``from asyncio import events
as ev``, ``getattr(asyncio, "...")``), nor read or write the private
attributes that only asyncio's own code defines (``protocol._stream_reader``).

The few exceptions are allowed one source line at a time: each names its
file, the exact text of its line, the violations it excuses there and why.
Any other line doing the same thing, in the same file or elsewhere, fails;
so does an exception whose line is gone or appears twice.
"""
from __future__ import annotations

import ast
import asyncio
import dataclasses
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PRIVATE_MODULES = {"base_events", "selector_events", "unix_events", "sslproto",
                   "base_subprocess", "proactor_events", "windows_events", "format_helpers",
                   "coroutines", "futures", "tasks", "events", "constants"}
PRIVATE_NAMES = {"SelectorEventLoop", "BaseEventLoop", "_SelectorTransport", "SSLProtocol",
                 "BaseSelectorEventLoop", "_UnixSelectorEventLoop", "DefaultEventLoopPolicy",
                 "BaseDefaultEventLoopPolicy", "_UnixDefaultEventLoopPolicy"}
# The documented hooks for third-party loops (asyncio.events.__all__).
ALLOWED_PRIVATE_ATTRS = {"_set_running_loop", "_get_running_loop"}


@dataclasses.dataclass(frozen=True)
class Allowed:
    """One line of product code allowed to do what rule 1 forbids."""

    file: str    # relative to the repository root
    line: str    # the exact text of the line, without its indentation
    what: frozenset[str]  # the violations it excuses on that line (see violations())
    reason: str


ALLOWED_EXCEPTIONS = [
    Allowed(
        "core/src/hookloop/testing/conformance/test_cpython_asyncio.py",
        'return getattr(asyncio.events, "_event_loop_policy", None)',
        frozenset({"asyncio.events", "private attribute _event_loop_policy"}),
        "The conformance kit's harness (test code shipped in the testing kit, never run by a "
        "loop): it puts back the policy slot exactly as a CPython suite found it, None "
        "included, which get_event_loop_policy() would replace by a new default policy."),
    Allowed(
        "core/src/hookloop/loop.py",
        'is_debug_mode = getattr(asyncio.coroutines, "_is_debug_mode", None)',
        frozenset({"asyncio.coroutines", "private attribute _is_debug_mode"}),
        "asyncio's single switch for 'debug mode by default' (-X dev, PYTHONASYNCIODEBUG); "
        "CPython's test_runners patches it and expects every loop to follow.  Configuration, "
        "not loop machinery; read via getattr with a fallback."),
    Allowed(
        "core/src/hookloop/handles.py",
        '_AsyncioThreadSafeHandle: Any = getattr(asyncio.events, "_ThreadSafeHandle", None)',
        # The second is only a violation where asyncio defines the name (3.13.1+).
        frozenset({"asyncio.events", "private attribute _ThreadSafeHandle"}),
        "The *type* asyncio's call_soon_threadsafe returns on 3.13.1+/3.14 (a Handle "
        "subclass): our thread-safe handle derives from it so isinstance() checks hold "
        "(test_asyncio checks it); handles._check_layout() verifies its slots and methods at "
        "import; the locking is ours."),
    Allowed(
        "plugins/tls/src/hookloop_tls/service.py",
        'buffer = getattr(getattr(protocol, "_stream_reader", None), "_buffer", None)',
        frozenset({"private attribute _stream_reader"}),
        "start_tls on a StreamReaderProtocol: the bytes its reader read ahead of the "
        "handshake (the client's first TLS flight) must go to the TLS protocol, or the "
        "handshake waits for bytes that already came.  asyncio has no public way to take "
        "them; its own start_tls does the same through the same two attributes since 3.14 "
        "(gh-142352)."),
]


def _defined_private_names(sources) -> set[str]:
    """Every private (single underscore) name the given sources define: attributes
    they assign, functions, classes, variables, arguments, __slots__ entries,
    setattr() names."""
    names: set[str] = set()
    for source in sources:
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif (isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets)):
                names.update(c.value for c in ast.walk(node.value)
                             if isinstance(c, ast.Constant) and isinstance(c.value, str))
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "setattr" and len(node.args) >= 2
                    and isinstance(node.args[1], ast.Constant)
                    and isinstance(node.args[1].value, str)):
                names.add(node.args[1].value)
    return {n for n in names
            if n.startswith("_") and not (n.startswith("__") and n.endswith("__"))}


def _product_files():
    roots = [ROOT / "core" / "src", *(p for p in (ROOT / "plugins").glob("*/src"))]
    files = [f for root in roots for f in root.rglob("*.py")]
    assert len(files) > 10, "the scan found too few files: is the layout different?"
    return files


def _asyncio_only_private_names() -> set[str]:
    """Private names asyncio's own source defines and product code does not:
    reading one means reaching into asyncio's internals (``_stream_reader``).
    Names product code defines itself (``_buffer``, ``_loop``, the Handle slots
    the loop sets) are its own attributes and are not flagged by name."""
    asyncio_dir = pathlib.Path(asyncio.__file__).parent
    theirs = _defined_private_names(f.read_text() for f in asyncio_dir.glob("*.py"))
    assert len(theirs) > 200, "asyncio's source was not found: cannot list its private names"
    ours = _defined_private_names(f.read_text() for f in _product_files())
    return theirs - ours - ALLOWED_PRIVATE_ATTRS


ASYNCIO_ONLY_PRIVATE = _asyncio_only_private_names()
_ATTR_FUNCS = {"getattr", "hasattr", "setattr", "delattr"}


@dataclasses.dataclass(frozen=True)
class Violation:
    line: int
    what: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.what}"


def _private_module(dotted: str) -> bool:
    parts = dotted.split(".")
    return parts[0] == "asyncio" and len(parts) > 1 and parts[1] in PRIVATE_MODULES


def violations(source: str, private_attrs: set[str] = ASYNCIO_ONLY_PRIVATE) -> list[Violation]:
    """Every use of asyncio's private loop machinery in ``source``."""
    found: list[Violation] = []
    tree = ast.parse(source)
    # Names bound to the asyncio package, and to its private modules.
    asyncio_names = {"asyncio"}
    module_names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "selectors" or _private_module(alias.name):
                    found.append(Violation(node.lineno, f"import {alias.name}"))
                if alias.asname:
                    if alias.name == "asyncio":
                        asyncio_names.add(alias.asname)
                    elif _private_module(alias.name):
                        module_names[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module == "selectors" or _private_module(module):
                found.append(Violation(node.lineno, f"from {module} import ..."))
            if module == "asyncio":
                for alias in node.names:
                    if alias.name in PRIVATE_MODULES | PRIVATE_NAMES or (
                            alias.name.startswith("_")
                            and alias.name not in ALLOWED_PRIVATE_ATTRS):
                        found.append(Violation(node.lineno, f"from asyncio import {alias.name}"))
                    if alias.name in PRIVATE_MODULES:
                        module_names[alias.asname or alias.name] = f"asyncio.{alias.name}"
        elif (isinstance(node, ast.Assign) and isinstance(node.value, ast.Name)
                and node.value.id in asyncio_names):
            # aio = asyncio
            asyncio_names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    for node in ast.walk(tree):
        base = attr = None
        if isinstance(node, ast.Attribute):
            base, attr = node.value, node.attr
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in _ATTR_FUNCS and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str)):
            base, attr = node.args[0], node.args[1].value
        elif (isinstance(node, ast.Call) and node.args
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
                and ((isinstance(node.func, ast.Name) and node.func.id == "__import__")
                     or (isinstance(node.func, ast.Attribute)
                         and node.func.attr == "import_module"))):
            name = node.args[0].value
            if name == "selectors" or _private_module(name):
                found.append(Violation(node.lineno, f"dynamic import of {name}"))
            continue
        elif (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute)
                and node.value.attr == "modules" and isinstance(node.slice, ast.Constant)
                and isinstance(node.slice.value, str)):
            name = node.slice.value
            if name == "selectors" or _private_module(name):
                found.append(Violation(node.lineno, f"sys.modules[{name!r}]"))
            continue
        else:
            continue
        if isinstance(base, ast.Name) and base.id in asyncio_names:
            if attr in PRIVATE_MODULES | PRIVATE_NAMES or (
                    attr.startswith("_") and attr not in ALLOWED_PRIVATE_ATTRS):
                found.append(Violation(node.lineno, f"asyncio.{attr}"))
        elif isinstance(base, ast.Name) and base.id in module_names:
            found.append(Violation(node.lineno, f"{module_names[base.id]}.{attr}"))
        if attr in private_attrs:
            found.append(Violation(node.lineno, f"private attribute {attr}"))
    return sorted(set(found), key=lambda v: (v.line, v.what))


def unexcused(name: str, source: str, allowed=ALLOWED_EXCEPTIONS,
              private_attrs: set[str] = ASYNCIO_ONLY_PRIVATE) -> tuple[list[str], set[Allowed]]:
    """The violations in file ``name`` that no allowed exception excuses,
    plus problems with the exceptions themselves; and the exceptions used."""
    lines = source.splitlines()
    mine = [a for a in allowed if a.file == name]
    problems = []
    for a in mine:
        count = sum(1 for line in lines if line.strip() == a.line)
        if count != 1:
            problems.append(f"allowed exception line found {count} times, not once: {a.line!r}")
    used = set()
    for v in violations(source, private_attrs):
        text = lines[v.line - 1].strip()
        match = [a for a in mine if a.line == text and v.what in a.what]
        if match:
            used.update(match)
        else:
            problems.append(str(v))
    return problems, used


def test_product_code_does_not_use_asyncio_private_machinery():
    bad = {}
    used: set[Allowed] = set()
    for path in _product_files():
        name = str(path.relative_to(ROOT))
        problems, excused = unexcused(name, path.read_text())
        used |= excused
        if problems:
            bad[name] = problems
    assert bad == {}
    # Every exception still excuses something (a stale one would excuse a
    # future violation on a line that happens to have that text).
    assert set(ALLOWED_EXCEPTIONS) - used == set()


def test_each_allowed_exception_gives_its_reason():
    files = {str(p.relative_to(ROOT)) for p in _product_files()}
    for a in ALLOWED_EXCEPTIONS:
        assert a.file in files, a
        assert len(a.reason) > 40 and a.what, a


def test_scanner_catches_each_kind_of_violation():
    # The scan must be able to fail: each sample below is a violation.
    samples = [
        "import selectors",
        "from asyncio import base_events",
        "import asyncio.selector_events",
        "from asyncio.unix_events import _UnixSelectorEventLoop",
        "import asyncio\nclass L(asyncio.SelectorEventLoop): pass",
        "import asyncio\nasyncio.base_events.BaseEventLoop",
        "import asyncio\nasyncio.sslproto.SSLProtocol",
        "from asyncio import BaseEventLoop",
        "import asyncio\nasyncio.events._get_event_loop_policy",
        "import asyncio\nasyncio._private_helper()",
        "x = __import__('asyncio.proactor_events')",
        # Aliases.
        "import asyncio as aio\naio.base_events.BaseEventLoop",
        "import asyncio as aio\nclass L(aio.SelectorEventLoop): pass",
        "import asyncio as aio\naio._private_helper()",
        "import asyncio\naio = asyncio\naio.events._ThreadSafeHandle",
        "from asyncio import events as ev",
        "import asyncio.events as ev",
        "import asyncio.base_events as be",
        # Through getattr() and friends, importlib, sys.modules.
        "import asyncio\ngetattr(asyncio, 'base_events')",
        "import asyncio as aio\ngetattr(aio, '_private_helper', None)",
        "import importlib\nimportlib.import_module('asyncio.selector_events')",
        "import sys\nsys.modules['asyncio.base_events']",
        # Private attributes only asyncio defines, on any object.
        "reader = protocol._stream_reader",
        "buffer = getattr(getattr(protocol, '_stream_reader', None), '_buffer', None)",
        "if hasattr(protocol, '_stream_reader'): pass",
        "fut._log_traceback = False",
    ]
    for sample in samples:
        assert violations(sample), sample
    # The uses of a private module's alias are violations too, not only its import.
    assert [v.what for v in violations("from asyncio import events as ev\nev.Handle")] == [
        "from asyncio import events", "asyncio.events.Handle"]
    assert [v.what for v in violations("import asyncio.events as ev\n\nev.Handle")] == [
        "import asyncio.events", "asyncio.events.Handle"]
    assert violations("import asyncio\nasyncio._set_running_loop(None)\n"
                      "asyncio.Handle\nasyncio.Future\nimport asyncio as aio\naio.Handle\n"
                      "self._buffer = bytearray()\nother._loop\n"
                      "getattr(asyncio, 'TimerHandle')") == []


def test_an_allowed_exception_excuses_its_own_line_only():
    allowed = [Allowed("pkg/mod.py", 'reader = getattr(protocol, "_stream_reader", None)',
                       frozenset({"private attribute _stream_reader"}), "a reason")]
    ok = ('import asyncio\n\ndef f(protocol):\n'
          '    reader = getattr(protocol, "_stream_reader", None)\n')
    problems, used = unexcused("pkg/mod.py", ok, allowed)
    assert problems == [] and used == set(allowed)
    # The same access on another line of the same file is not excused.
    problems, _ = unexcused("pkg/mod.py", ok + "other = protocol._stream_reader\n", allowed)
    assert problems == ["line 5: private attribute _stream_reader"]
    # Nor is the very same line repeated: the exception names one line.
    problems, _ = unexcused("pkg/mod.py", ok + ok.splitlines()[-1] + "\n", allowed)
    assert problems == [
        "allowed exception line found 2 times, not once: "
        "'reader = getattr(protocol, \"_stream_reader\", None)'"]
    # Nor the same line in another file.
    problems, _ = unexcused("pkg/other.py", ok, allowed)
    assert problems == ["line 4: private attribute _stream_reader"]
    # Nor another violation on that very line.
    line = 'reader = getattr(protocol, "_stream_reader", None) or asyncio.base_events'
    problems, _ = unexcused("pkg/mod.py", ok.replace(allowed[0].line, line),
                            [dataclasses.replace(allowed[0], line=line)])
    assert problems == ["line 4: asyncio.base_events"]
