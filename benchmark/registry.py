"""Plugin discovery: one pluggy manager, a fixed load order, and name clashes caught."""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from functools import lru_cache

import pluggy

from regsuite import NAME, __version__, api, hookspecs
from regsuite.errors import RegsuiteError

KINDS: dict[str, tuple[str, type[api.Plugin]]] = {
    "task": ("regsuite_register_tasks", api.Task),
    "dataset": ("regsuite_register_datasets", api.Dataset),
    "model": ("regsuite_register_models", api.Model),
    "regularizer": ("regsuite_register_regularizers", api.Regularizer),
}
DISABLE_ENV = "REGSUITE_DISABLE_EXTERNAL_PLUGINS"


def external_plugins_enabled() -> bool:
    """False when ``$REGSUITE_DISABLE_EXTERNAL_PLUGINS`` is 1, true or yes: built-ins only."""
    return os.environ.get(DISABLE_ENV, "") not in ("1", "true", "yes")


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    cls: type[api.Plugin]
    provider: str  # "regsuite 0.1.0 (built-in)" or "<distribution> <version>"
    plugin_name: str


class Registry:
    """Every registered task, dataset, model and regularizer, by kind and name."""

    def __init__(self, entries: list[Entry]):
        self.entries: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
        for entry in entries:
            existing = self.entries[entry.kind].get(entry.name)
            if existing is not None:
                raise RegsuiteError(
                    f"two plugins register the {entry.kind} {entry.name!r}: "
                    f"{existing.provider} ({existing.plugin_name}) and "
                    f"{entry.provider} ({entry.plugin_name})",
                    hint="uninstall one of them, or set "
                    f"{DISABLE_ENV}=1 to load built-in plugins only",
                )
            self.entries[entry.kind][entry.name] = entry

    def names(self, kind: str) -> list[str]:
        return sorted(self.entries[kind])

    def get(self, kind: str, name: str) -> Entry:
        try:
            return self.entries[kind][name]
        except KeyError:
            raise RegsuiteError(unknown_name_message(kind, name, self.names(kind))) from None

    def cls(self, kind: str, name: str) -> type[api.Plugin]:
        return self.get(kind, name).cls

    def where_params(self, kind: str, name: str) -> set[str]:
        """The parameters of a plugin that only say where things are (``api.NOT_IN_RUN_KEY``)."""
        params = self.cls(kind, name).Params
        return set(params.model_fields) - api.run_key_fields(params)


def unknown_name_message(kind: str, name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    suggestion = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown {kind} {name!r}: {suggestion}known {kind}s: {', '.join(known) or 'none'}"


def make_plugin_manager(load_external: bool | None = None) -> pluggy.PluginManager:
    """The hook specs, then the built-in plugins, then the entry points of the group
    ``regsuite`` (unless ``load_external`` is false; default: :func:`external_plugins_enabled`),
    then ``check_pending()``.

    Why this order: the built-ins are registered first, so they never depend on what happens
    to be installed, and a third-party plugin that fails to load, or registers a name that is
    taken, is reported against a registry that already holds them (the clash names the
    built-in as the existing provider). Order decides nothing else: a name registered twice is
    an error, never one plugin shadowing another. ``check_pending()`` comes last, so that a
    plugin implementing a hook regsuite does not define is refused whoever provides it.
    """
    # Heavy (torch, albumentations, NLTK): imported when a registry is built, not with this module.
    from regsuite import plugins as builtin

    pm = pluggy.PluginManager(NAME)
    pm.add_hookspecs(hookspecs)
    for module in builtin.MODULES:
        pm.register(module, name=f"{NAME}.builtin.{module.__name__.rsplit('.', 1)[-1]}")
    if load_external is None:
        load_external = external_plugins_enabled()
    if load_external:
        try:
            pm.load_setuptools_entrypoints(NAME)
        except Exception as exc:  # a broken third-party plugin must not look like our bug
            raise RegsuiteError(
                f"a plugin from the entry-point group {NAME!r} failed to load: {exc}",
                hint=f"fix or uninstall it, or set {DISABLE_ENV}=1",
            ) from exc
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise RegsuiteError(f"a plugin implements a hook regsuite does not define: {exc}") from exc
    return pm


def providers(pm: pluggy.PluginManager) -> dict[int, str]:
    """Map id(plugin object) → "<distribution> <version>" for every registered plugin."""
    found = {id(plugin): f"{dist.project_name} {dist.version}" for plugin, dist in pm.list_plugin_distinfo()}
    for plugin in pm.get_plugins():
        found.setdefault(id(plugin), f"{NAME} {__version__} (built-in)")
    return found


def collect(pm: pluggy.PluginManager) -> Registry:
    provider_of = providers(pm)
    entries = []
    for kind, (hook_name, base) in KINDS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            for cls in impl.function() or []:
                check_plugin_class(cls, base, kind, impl.plugin_name)
                entries.append(Entry(kind, cls.name, cls, provider_of[id(impl.plugin)], impl.plugin_name))
    return Registry(entries)


def check_plugin_class(cls: object, base: type, kind: str, plugin_name: str) -> None:
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise RegsuiteError(f"plugin {plugin_name} registered {cls!r} as a {kind}, but it is not a {base.__module__}.{base.__name__} subclass")
    if not isinstance(getattr(cls, "name", None), str) or not cls.name:
        raise RegsuiteError(f"plugin {plugin_name} registered the {kind} class {cls.__name__} without a name")


@lru_cache(maxsize=None)
def _default(load_external: bool) -> Registry:
    return collect(make_plugin_manager(load_external))


def get_registry() -> Registry:
    return _default(external_plugins_enabled())


def reset() -> None:
    """Forget the cached registry (tests that install or fake plugins call this)."""
    _default.cache_clear()
