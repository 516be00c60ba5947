"""Plugins use only hookloop's public API; the core's import graph has no cycle.

The public API is what a plugin written outside this repository can rely
on: the names in ``__all__`` of the public modules below.  Every plugin
under ``plugins/`` and the core's own builtin plugins
(``core/src/hookloop/builtins``, "a layer above the kernel") are scanned for
``import``/``from ... import`` of hookloop names and for attribute chains
starting at an imported hookloop module (``hookloop.assembly.recipe``); any
name outside the public surface fails the test, naming the file and line.

The import graph of ``core/src/hookloop`` is built from the sources: every
``import`` that runs (module level or inside a function; not those under
``if TYPE_CHECKING:``, which never run).  A cycle fails the test; so does a
kernel module importing a builtin plugin or ``hookloop.transport``.

Both checkers are tested on made-up sources first, so each can fail.
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "core" / "src" / "hookloop"

#: The public modules a plugin may import from, each with its ``__all__``.
PUBLIC_MODULES = ("hookloop", "hookloop.transport", "hookloop.services", "hookloop.poller",
                  "hookloop.testing")
#: The scheduler core: it must never import the layers above it.
KERNEL = ("hookloop.loop", "hookloop.handles", "hookloop.poller", "hookloop.hookspecs",
          "hookloop.assembly", "hookloop.instruments", "hookloop.errors", "hookloop.backends",
          "hookloop.stall", "hookloop.facilities", "hookloop.features", "hookloop.services",
          "hookloop.policy")
ABOVE_KERNEL = ("hookloop.builtins", "hookloop.transport")


def public_surface() -> dict[str, set[str]]:
    return {name: set(importlib.import_module(name).__all__) for name in PUBLIC_MODULES}


# ---------------------------------------------------------------- the import scan

def non_public_uses(source: str, surface: dict[str, set[str]]) -> list[tuple[int, str]]:
    """(line, what) for each use of a non-public hookloop name in ``source``."""
    tree = ast.parse(source)
    found: list[tuple[int, str]] = []
    modules: dict[str, str] = {}  # local name -> hookloop module it is bound to

    def check_attribute_of(module: str, attr: str, line: int) -> None:
        if f"{module}.{attr}" in surface:
            return
        if attr not in surface.get(module, set()):
            found.append((line, f"{module}.{attr}"))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "hookloop" or alias.name.startswith("hookloop."):
                    if alias.name not in surface:
                        found.append((node.lineno, alias.name))
                    elif alias.asname:
                        modules[alias.asname] = alias.name
                    else:
                        modules["hookloop"] = "hookloop"
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and (node.module == "hookloop" or node.module.startswith("hookloop.")):
            if node.module not in surface:
                found.append((node.lineno, node.module))
                continue
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if full in surface:
                    modules[alias.asname or alias.name] = full
                elif alias.name not in surface[node.module]:
                    found.append((node.lineno, full))
    # hookloop.x.y attribute chains from the modules bound above.
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain = []
            inner: ast.expr = node
            while isinstance(inner, ast.Attribute):
                chain.append(inner.attr)
                inner = inner.value
            if isinstance(inner, ast.Name) and inner.id in modules:
                module = modules[inner.id]
                attr = chain[-1]
                # hookloop.transport.X: look at X in hookloop.transport.
                while f"{module}.{attr}" in surface and len(chain) > 1:
                    module = f"{module}.{attr}"
                    chain.pop()
                    attr = chain[-1]
                check_attribute_of(module, attr, node.lineno)
    return sorted(set(found))


SURFACE_FOR_SELF_TEST = {"hookloop": {"hookimpl", "EventLoop"},
                         "hookloop.transport": {"SocketTransport"}}


@pytest.mark.parametrize("source, expected", [
    ("from hookloop import hookimpl", []),
    ("from hookloop.transport import SocketTransport", []),
    ("import hookloop\nhookloop.EventLoop", []),
    ("import hookloop.transport as t\nt.SocketTransport", []),
    ("from hookloop import transport\ntransport.SocketTransport", []),
    ("from hookloop.hookspecs import hookimpl", [(1, "hookloop.hookspecs")]),
    ("from hookloop.builtins.network.base import x", [(1, "hookloop.builtins.network.base")]),
    ("from hookloop.transport import _base", [(1, "hookloop.transport._base")]),
    ("import hookloop\nhookloop.assembly.recipe()", [(2, "hookloop.assembly")]),
    ("import hookloop.loop", [(1, "hookloop.loop")]),
    ("import hookloop.transport as t\nt.TransportCore", [(2, "hookloop.transport.TransportCore")]),
    ("def f():\n    from hookloop.assembly import FEATURES", [(2, "hookloop.assembly")]),
])
def test_the_scan_finds_non_public_names(source, expected):
    assert non_public_uses(source, SURFACE_FOR_SELF_TEST) == expected


def scanned_files() -> list[Path]:
    files = sorted((ROOT / "plugins").glob("*/src/**/*.py"))
    files += sorted((CORE / "builtins").rglob("*.py"))
    return files


def test_plugins_and_builtins_use_only_public_names():
    surface = public_surface()
    files = scanned_files()
    assert len(files) > 30, "the scan found too few files: is the layout different?"
    violations = [f"{path.relative_to(ROOT)}:{line}: {what}"
                  for path in files
                  for line, what in non_public_uses(path.read_text(), surface)]
    assert violations == [], "non-public hookloop names used:\n" + "\n".join(violations)


# ---------------------------------------------------------------- the import graph

def _module_name(path: Path) -> str:
    parts = list(path.relative_to(CORE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(sources: dict[str, tuple[str, bool]]) -> dict[str, set[str]]:
    """module -> the hookloop modules it imports when it runs.

    :param sources: module name -> (source, whether it is a package).
    """
    known = set(sources)
    graph: dict[str, set[str]] = {}
    for module, (source, is_package) in sources.items():
        tree = ast.parse(source)
        never_run = {id(n) for branch in ast.walk(tree)
                     if isinstance(branch, ast.If) and "TYPE_CHECKING" in ast.unparse(branch.test)
                     for n in ast.walk(branch)}
        package = module if is_package else module.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in never_run:
                continue
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name in known)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:
                    full = f"{target}.{alias.name}"
                    deps.add(full if full in known else target)
        graph[module] = {d for d in deps if d in known and d != module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (as a path ending where it starts), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep not in state:
                cycle = visit(dep)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    graph = import_graph({
        "p": ("", True),
        "p.a": ("from . import b\n", False),
        "p.b": ("def f():\n    from .a import x\n", False),
        "p.c": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import y\n",
                False),
    })
    assert graph == {"p": set(), "p.a": {"p.b"}, "p.b": {"p.a"}, "p.c": set()}
    assert find_cycle(graph) == ["p.a", "p.b", "p.a"]


def core_graph() -> dict[str, set[str]]:
    return import_graph({_module_name(p): (p.read_text(), p.name == "__init__.py")
                         for p in CORE.rglob("*.py")})


def test_the_core_has_no_import_cycle():
    graph = core_graph()
    assert len(graph) > 30, "too few modules: is the layout different?"
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or ())


def test_the_kernel_imports_nothing_above_it():
    graph = core_graph()
    offending = sorted(f"{module} imports {dep}" for module in KERNEL for dep in graph[module]
                       if dep.startswith(ABOVE_KERNEL))
    assert offending == []
