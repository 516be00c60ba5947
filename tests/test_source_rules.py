"""Rule 1 of DEVELOPERS.md, enforced: our own loop, not asyncio's machinery.

Product code (everything shipped: core/src and plugins/*/src) may reuse
asyncio's public types only.  It must never import or reach into
base_events, selector_events, unix_events, sslproto, base_subprocess,
proactor_events, SelectorEventLoop/BaseEventLoop, or the selectors module.
"""
from __future__ import annotations

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
PRIVATE_MODULES = {"base_events", "selector_events", "unix_events", "sslproto",
                   "base_subprocess", "proactor_events", "windows_events", "format_helpers",
                   "coroutines", "futures", "tasks", "events", "constants"}
PRIVATE_NAMES = {"SelectorEventLoop", "BaseEventLoop", "_SelectorTransport", "SSLProtocol",
                 "BaseSelectorEventLoop", "_UnixSelectorEventLoop", "DefaultEventLoopPolicy",
                 "BaseDefaultEventLoopPolicy", "_UnixDefaultEventLoopPolicy"}
# The documented hooks for third-party loops (asyncio.events.__all__).
ALLOWED_PRIVATE_ATTRS = {"_set_running_loop", "_get_running_loop"}
# Exact places allowed to touch a private module, each with its reason.
ALLOWED_EXCEPTIONS = {
    # asyncio's single switch for "debug mode by default" (-X dev,
    # PYTHONASYNCIODEBUG); CPython's test_runners patches it and expects every
    # loop to follow. Configuration, not loop machinery; read via getattr with
    # a fallback.
    ("core/src/hookloop/loop.py", "asyncio.coroutines"),
    # The *type* asyncio's call_soon_threadsafe returns on 3.13.1+/3.14
    # (events._ThreadSafeHandle, a Handle subclass): our thread-safe handle
    # derives from it so isinstance() checks hold; the locking is ours.
    ("core/src/hookloop/handles.py", "asyncio.events"),
}


def _product_files():
    roots = [ROOT / "core" / "src", *(p for p in (ROOT / "plugins").glob("*/src"))]
    files = [f for root in roots for f in root.rglob("*.py")]
    assert len(files) > 10, "the scan found too few files: is the layout different?"
    return files


def violations(source: str) -> list[str]:
    """Every use of asyncio's private loop machinery in ``source``."""
    found = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "selectors" or (
                        alias.name.startswith("asyncio.")
                        and alias.name.split(".")[1] in PRIVATE_MODULES):
                    found.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module == "selectors" or (module.startswith("asyncio.")
                                         and module.split(".")[1] in PRIVATE_MODULES):
                found.append(f"line {node.lineno}: from {module} import ...")
            if module == "asyncio":
                for alias in node.names:
                    if alias.name in PRIVATE_MODULES | PRIVATE_NAMES or (
                            alias.name.startswith("_")
                            and alias.name not in ALLOWED_PRIVATE_ATTRS):
                        found.append(f"line {node.lineno}: from asyncio import {alias.name}")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == "asyncio":
            attr = node.attr
            if attr in PRIVATE_MODULES | PRIVATE_NAMES or (
                    attr.startswith("_") and attr not in ALLOWED_PRIVATE_ATTRS):
                found.append(f"line {node.lineno}: asyncio.{attr}")
    for match in re.finditer(r"__import__\(\s*['\"](asyncio\.\w+|selectors)", source):
        found.append(f"dynamic import of {match.group(1)}")
    return found


def test_product_code_does_not_use_asyncio_private_machinery():
    bad = {}
    for path in _product_files():
        name = str(path.relative_to(ROOT))
        problems = [p for p in violations(path.read_text())
                    if not any(name == f and p.endswith(": " + what)
                               for f, what in ALLOWED_EXCEPTIONS)]
        if problems:
            bad[name] = problems
    assert bad == {}


def test_scanner_catches_each_kind_of_violation():
    # The scan must be able to fail: each line below is a violation.
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
    ]
    for sample in samples:
        assert violations(sample), sample
    assert violations("import asyncio\nasyncio._set_running_loop(None)\n"
                      "asyncio.Handle\nasyncio.Future") == []
