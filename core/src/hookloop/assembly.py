"""Assembly: from installed plugins to a ready-to-run loop.

This is the only place where pluggy runs.  It owns:

* the **plugin manager**, built once per process and configuration: the
  core's builtin plugins (registered through the same hooks as everybody
  else, ``trylast`` so any plugin overrides them), then every entry point of
  the ``hookloop`` group, imported once.  A plugin that fails to import or
  implements a hook nobody specified is reported by entry-point and
  distribution name (:class:`~hookloop.PluginLoadError`);
* the **recipe** for a configuration (backend, disabled plugins, explicit
  plugins): which poller backend, which service factories, which lifecycle
  hooks have implementations.  Recipes are cached, so every loop after the
  first is built without calling pluggy at all unless a plugin implements a
  lifecycle hook;
* :func:`new_event_loop`, the loop factory for ``asyncio.run(...,
  loop_factory=...)`` and ``asyncio.Runner``.

The core's builtin plugins are a layer above this kernel: they use only
public names, as an installed plugin would, and are registered here by
module name (``BUILTIN_PLUGINS``, as pytest lists its default plugins), so
the kernel imports none of them.  What distribution provides a missing
feature comes from :mod:`hookloop.features`, a leaf module.

Plugin API versions: a plugin module may say which plugin API it is
written for (``HOOKLOOP_API = 1``); one asking for a version this core does
not support (``PLUGIN_API``) is refused with a warning naming the plugin and
both versions, and the loop is assembled without it.  A hook this core does
not define is refused unless its implementation says
``@hookimpl(optionalhook=True)`` (a plugin written for a newer core).

Configuration, in order of precedence: arguments (``backend=``,
``disable=``, ``plugins=``), then the environment: ``HOOKLOOP_BACKEND``,
``HOOKLOOP_DISABLE=a,b`` (plugin names, as ``hookloop plugins`` lists
them), ``HOOKLOOP_NO_AUTOLOAD=1`` (builtins and explicit plugins only).

It must never construct a loop service itself (the loop does that lazily)
nor be reached from the run loop.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pluggy

from . import hookspecs
from .backends import Backend
from .errors import BackendUnavailableError, PluginAPIWarning, PluginLoadError, PluginMissingError
from .features import missing_feature, suggested_backend
from .loop import EventLoop
from .poller import Poller, check_capabilities
from .services import check_service
from .stall import make_stall, stall_from_environment

__all__ = [
    "new_event_loop",
    "available_backends",
    "list_backends",
    "get_backend",
    "plugin_manager",
    "plugin_infos",
    "PluginInfo",
    "PLUGIN_API",
    "Recipe",
    "clear_cache",
]

ENTRY_POINT_GROUP = hookspecs.PROJECT

#: The plugin API versions this core supports (a plugin's ``HOOKLOOP_API``).
PLUGIN_API: frozenset[int] = frozenset({1})

#: The core's own plugins: (plugin name, module), registered first, by name.
BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("executor", "hookloop.builtins.executor"),
    ("signals", "hookloop.builtins.signals"),
    ("transports", "hookloop.builtins.network.service"),
    ("resolver", "hookloop.builtins.network.resolver"),
    ("commands", "hookloop.builtins.commands"),
)
_SERVICE_HOOKS = ("transports", "tls", "resolver", "signals", "subprocess")


@dataclass(frozen=True)
class PluginInfo:
    """What ``hookloop plugins`` shows about one registered plugin."""

    name: str
    distribution: str
    version: str
    hooks: tuple[str, ...]
    builtin: bool = False


@dataclass(frozen=True)
class Recipe:
    """Everything a new loop needs, resolved once per configuration."""

    backend: Backend
    factories: dict[str, Callable[[EventLoop], Any] | None]
    executor: Callable[[], Any] | None
    loop_created: Any = None
    instruments: Any = None
    loop_closing: Any = None
    disabled: frozenset[str] = field(default_factory=frozenset)

    def missing(self, kind: str) -> PluginMissingError:
        """The error for a feature whose service no plugin provides."""
        return missing_feature(kind, self.disabled)


@dataclass
class _Manager:
    pm: pluggy.PluginManager
    infos: dict[str, PluginInfo]


_lock = threading.RLock()
# Plugin managers and recipes, per configuration.  Keys hold explicit
# plugins by identity (and keep them alive, so an id is never reused while
# cached); the caches are bounded for programs that pass a new plugin object
# for every loop.
_CACHE_SIZE = 64
_managers: OrderedDict[tuple[Any, ...], _Manager] = OrderedDict()
_recipes: OrderedDict[tuple[Any, ...], Recipe] = OrderedDict()
_entry_point_plugins: dict[str, tuple[Any, PluginInfo]] = {}

T = TypeVar("T")


class _Identity:
    """Hashes and compares a plugin object by identity (plugins may be unhashable)."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Identity) and other.obj is self.obj


def _cached(cache: OrderedDict[tuple[Any, ...], T], key: tuple[Any, ...],
            build: Callable[[], T]) -> T:
    """``cache[key]``, built once under the lock; least recently used dropped."""
    found = cache.get(key)
    if found is None:
        with _lock:
            found = cache.get(key)
            if found is None:
                found = cache[key] = build()
                while len(cache) > _CACHE_SIZE:
                    cache.popitem(last=False)
    return found


def clear_cache() -> None:
    """Forget plugin managers and recipes (entry points are re-read)."""
    with _lock:
        _managers.clear()
        _recipes.clear()
        _entry_point_plugins.clear()


# ----------------------------------------------------------------------
# The plugin manager
# ----------------------------------------------------------------------

def _builtin_plugins() -> list[tuple[str, Any]]:
    return [(name, importlib.import_module(module)) for name, module in BUILTIN_PLUGINS]


def _supports_api(name: str, plugin: Any, where: str) -> bool:
    """Whether this core supports the plugin API version ``plugin`` asks for
    (its ``HOOKLOOP_API``; none asked: yes); warn and say no otherwise."""
    wanted = getattr(plugin, "HOOKLOOP_API", None)
    if wanted is None or wanted in PLUGIN_API:
        return True
    warnings.warn(
        f"hookloop plugin {name!r} ({where}) is written for hookloop plugin API "
        f"{wanted!r}; this hookloop {_core_version()} supports plugin API "
        f"{', '.join(map(str, sorted(PLUGIN_API)))}: the plugin is not loaded "
        f"(upgrade hookloop or the plugin's distribution)", PluginAPIWarning, stacklevel=2)
    return False


def _load_entry_point(ep: importlib.metadata.EntryPoint) -> tuple[Any, PluginInfo]:
    dist = getattr(ep, "dist", None)
    dist_name = dist.metadata["Name"] if dist is not None else "?"
    version = dist.version if dist is not None else "?"
    where = f"entry point '{ep.name} = {ep.value}' of distribution {dist_name} {version}"
    try:
        plugin = ep.load()
    except Exception as exc:
        raise PluginLoadError(
            f"hookloop plugin {ep.name!r} ({where}) failed to import: "
            f"{type(exc).__name__}: {exc}. Uninstall {dist_name}, or skip the plugin with "
            f"HOOKLOOP_DISABLE={ep.name}") from exc
    return plugin, PluginInfo(ep.name, dist_name, version, ())


def _entry_points(blocked: frozenset[str]) -> list[tuple[str, Any, PluginInfo]]:
    found = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in blocked:
            continue
        cached = _entry_point_plugins.get(ep.name)
        if cached is None:
            cached = _entry_point_plugins[ep.name] = _load_entry_point(ep)
        found.append((ep.name, *cached))
    return found


def _register(pm: pluggy.PluginManager, name: str, plugin: Any, where: str) -> None:
    if pm.get_plugin(name) is not None or pm.is_registered(plugin):
        return  # the same plugin installed twice (e.g. two entry points)
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginLoadError(f"hookloop plugin {name!r} ({where}) is invalid: {exc}") from exc


def _build_manager(autoload: bool, blocked: frozenset[str],
                   extra: Sequence[Any]) -> _Manager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}
    version = _core_version()
    for name, plugin in _builtin_plugins():
        if name in blocked:
            pm.set_blocked(name)
            continue
        _register(pm, name, plugin, "builtin")
        infos[name] = PluginInfo(name, "hookloop", version, (), builtin=True)
    if autoload:
        for name, plugin, info in _entry_points(blocked):
            where = f"distribution {info.distribution} {info.version}"
            if _supports_api(name, plugin, where):
                _register(pm, name, plugin, where)
                infos.setdefault(name, info)
    for plugin in extra:
        name = getattr(plugin, "__name__", None) or f"{type(plugin).__name__}-{id(plugin):x}"
        if _supports_api(name, plugin, "passed as plugins="):
            _register(pm, name, plugin, "passed as plugins=")
            infos.setdefault(name, PluginInfo(name, "(explicit)", "", ()))
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        owner = pm.get_name(exc.plugin) if exc.plugin is not None else "?"
        raise PluginLoadError(
            f"hookloop plugin {owner!r} implements a hook that hookloop {_core_version()} "
            f"does not define: {exc} (a hook of a newer hookloop can be marked "
            f"@hookimpl(optionalhook=True))") from exc
    for name in list(infos):
        plugin = pm.get_plugin(name)
        hooks = tuple(sorted(h.name for h in pm.get_hookcallers(plugin) or ()))
        infos[name] = PluginInfo(infos[name].name, infos[name].distribution,
                                 infos[name].version, hooks, infos[name].builtin)
    return _Manager(pm, infos)


def _core_version() -> str:
    try:
        return importlib.metadata.version("hookloop")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def _environment() -> tuple[bool, frozenset[str], str | None]:
    autoload = os.environ.get("HOOKLOOP_NO_AUTOLOAD", "") in ("", "0")
    blocked = frozenset(n.strip() for n in os.environ.get("HOOKLOOP_DISABLE", "").split(",")
                        if n.strip())
    backend = os.environ.get("HOOKLOOP_BACKEND") or None
    return autoload, blocked, backend


def _manager(extra: Sequence[Any] = ()) -> _Manager:
    autoload, blocked, _ = _environment()
    key = (autoload, blocked, tuple(map(_Identity, extra)))
    return _cached(_managers, key, lambda: _build_manager(autoload, blocked, extra))


def plugin_manager() -> pluggy.PluginManager:
    """The process's plugin manager for the current environment."""
    return _manager().pm


def plugin_infos() -> list[PluginInfo]:
    """Every registered plugin, builtins first."""
    infos = _manager().infos.values()
    return sorted(infos, key=lambda i: (not i.builtin, i.name))


# ----------------------------------------------------------------------
# Backends
# ----------------------------------------------------------------------

def list_backends() -> list[Backend]:
    """Every backend the plugins offer, available or not, best first."""
    return _collect_backends(plugin_manager().hook.hookloop_pollers)


def _collect_backends(hook_caller: Any) -> list[Backend]:
    seen: dict[str, Backend] = {}
    for group in hook_caller():
        for backend in group or ():
            seen.setdefault(backend.name, backend)
    return sorted(seen.values(), key=lambda b: (-b.priority, b.name))


def available_backends() -> list[str]:
    """Names of the backends that work here, best first."""
    return [b.name for b in list_backends() if b.available]


def _choose_backend(backends: list[Backend], name: str | None) -> Backend:
    usable = [b for b in backends if b.available]
    if name is None:
        if not usable:
            raise PluginMissingError("an event loop (a poller backend)", suggested_backend())
        return usable[0]
    for backend in backends:
        if backend.name == name:
            if not backend.available:
                raise BackendUnavailableError(
                    f"backend {name!r} is not available here: {backend.unavailable}; "
                    f"available backends: {_names(usable)}")
            return backend
    raise BackendUnavailableError(
        f"unknown backend {name!r}; installed backends: {_names(usable)}")


def _names(backends: Iterable[Backend]) -> str:
    return ", ".join(b.name for b in backends) or "none (pip install hookloop-select)"


def get_backend(name: str | None = None) -> Backend:
    """The backend ``new_event_loop(name)`` would use."""
    return _choose_backend(list_backends(), name or _environment()[2])


# ----------------------------------------------------------------------
# Recipes and loops
# ----------------------------------------------------------------------

def _assemble(backend_name: str | None, disable: frozenset[str],
              extra: Sequence[Any]) -> Recipe:
    manager = _manager(extra)
    pm = manager.pm
    removed = [pm.get_plugin(n) for n in disable if pm.get_plugin(n) is not None]

    def caller(hook: str) -> Any:
        if removed:
            return pm.subset_hook_caller(hook, remove_plugins=removed)
        return getattr(pm.hook, hook)

    def caller_if_implemented(hook: str) -> Any:
        hc = caller(hook)
        return hc if hc.get_hookimpls() else None

    backend = _choose_backend(_collect_backends(caller("hookloop_pollers")), backend_name)
    factories = {kind: _service_factory(kind, caller(f"hookloop_{kind}"), pm)
                 for kind in _SERVICE_HOOKS}
    _, env_blocked, _ = _environment()
    return Recipe(
        backend=backend,
        factories=factories,
        executor=caller("hookloop_executor")(),
        loop_created=caller_if_implemented("hookloop_loop_created"),
        instruments=caller_if_implemented("hookloop_instruments"),
        loop_closing=caller_if_implemented("hookloop_loop_closing"),
        disabled=disable | env_blocked,
    )


def _service_factory(kind: str, hook_caller: Any,
                     pm: pluggy.PluginManager) -> Callable[[EventLoop], Any] | None:
    """The factory a ``firstresult`` service hook gives, checked against the
    service's contract (:mod:`hookloop.services`): at once if the factory is
    a class, else on the service it makes (once per loop, when the feature is
    first used).  The plugin whose implementation won is named in errors."""
    for impl in reversed(hook_caller.get_hookimpls()):  # pluggy's call order
        if impl.hookwrapper or getattr(impl, "wrapper", False):
            continue
        factory = impl.function()
        if factory is None:
            continue
        plugin = impl.plugin_name
        if isinstance(factory, type):
            check_service(kind, factory, plugin)
            return factory

        def checked(loop: EventLoop, _factory: Any = factory, _plugin: str = plugin) -> Any:
            service = _factory(loop)
            check_service(kind, service, _plugin)
            return service

        return checked
    return None


def recipe(backend: str | None = None, *, plugins: Sequence[Any] | None = None,
           disable: Iterable[str] = ()) -> Recipe:
    """The (cached) recipe for a configuration; see :func:`new_event_loop`."""
    autoload, blocked, env_backend = _environment()
    extra = tuple(plugins or ())
    disabled = frozenset(disable)
    name = backend or env_backend
    key = (name, disabled, tuple(map(_Identity, extra)), autoload, blocked)
    return _cached(_recipes, key, lambda: _assemble(name, disabled, extra))


def new_event_loop(backend: str | None = None, *,
                   backend_options: Mapping[str, Any] | None = None,
                   plugins: Sequence[Any] | None = None,
                   disable: Iterable[str] = (), stall: Any = None) -> EventLoop:
    """Create a new hookloop event loop from the installed plugins.

    :param backend: Poller backend name (``"epoll"``, ``"poll"``, ...);
        default ``$HOOKLOOP_BACKEND``, else the best available one.  An unknown
        or unavailable name raises :class:`~hookloop.BackendUnavailableError`
        (a ``ValueError``) listing the installed backends.
    :param backend_options: Options for the chosen backend's poller factory,
        passed to it as keyword arguments (``{"max_events": 256}`` for epoll
        and kqueue); :attr:`hookloop.Backend.options` lists what a backend
        accepts.  They go to whichever backend is chosen, so name the backend
        too.  An option the backend does not accept raises ``TypeError``
        naming ``backend_options``, the option and the backend, and a bad
        value the backend's ``TypeError``/``ValueError``, before anything
        is made.
    :param plugins: Extra plugin objects (modules or instances with
        ``@hookimpl`` functions) for this loop, in addition to the installed
        ones; they take precedence over them.
    :param disable: Names of plugins to leave out for this loop (as
        ``HOOKLOOP_DISABLE`` does for the whole process).
    :param stall: Stall injection (:mod:`hookloop.stall`): ``"PROB[:MAX_MS]"``
        or a :class:`~hookloop.StallInjector`; ``None`` (the default) reads
        ``$HOOKLOOP_STALL``, ``False`` turns it off whatever that says.  A
        malformed value raises ``ValueError`` naming ``stall`` (or the
        variable) before anything is made.
    """
    injector = stall_from_environment() if stall is None else make_stall(stall)
    if backend_options is not None and not isinstance(backend_options, Mapping):
        raise TypeError(f"backend_options must be a mapping of option names to values, "
                        f"not {type(backend_options).__name__}")
    r = recipe(backend, plugins=plugins, disable=disable)
    poller = _make_poller(r.backend, backend_options)
    try:
        loop = EventLoop(poller, r)
    except BaseException:
        poller.close()
        raise
    try:
        if r.instruments is not None:
            for group in r.instruments(loop=loop):
                for instrument in group or ():
                    loop.add_instrument(instrument)
        if injector is not None:
            loop.set_stall(injector)
        if r.loop_created is not None:
            r.loop_created(loop=loop)
    except BaseException:
        loop.close()
        raise
    return loop


def _make_poller(backend: Backend, options: Mapping[str, Any] | None) -> Poller:
    """``backend``'s poller, made with ``options``, its capabilities checked."""
    poller = backend.make_poller(options)
    try:
        check_capabilities(poller)
    except TypeError as exc:
        poller.close()
        where = f" ({backend.distribution})" if backend.distribution else ""
        raise PluginLoadError(f"backend {backend.name!r}{where} is refused: {exc}") from None
    return poller
