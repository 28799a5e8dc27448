"""Plugin discovery: one pluggy manager, a fixed load order, and a broken third-party plugin
costing only itself.

The built-in plugins are strict: one that fails is regsuite's bug and an error. A third-party
plugin (an entry point of the group ``regsuite``) that fails to import, whose register hook
raises, that implements a hook regsuite does not define, or that returns something that is not
a named plugin class is *broken*: it is left out whole, a warning names its distribution, its
version and the reason, and every other plugin loads. A name a third-party plugin registers
that is taken is *withheld*: a built-in keeps its name; a name two third-party plugins register
goes to neither (each is flagged, naming the other), since either choice would make a run's
meaning depend on what else happens to be installed. A spec that names what a broken plugin
provides, or a withheld name, fails with the reason.
"""
from __future__ import annotations

import difflib
import hashlib
import os
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
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
DISABLE_SOME_ENV = "REGSUITE_DISABLE_PLUGINS"
BUILTIN_PROVIDER = f"{NAME} {__version__} (built-in)"


def external_plugins_enabled() -> bool:
    """False when ``$REGSUITE_DISABLE_EXTERNAL_PLUGINS`` is 1, true or yes: built-ins only."""
    return os.environ.get(DISABLE_ENV, "") not in ("1", "true", "yes")


def normalize_distribution(name: str) -> str:
    """PEP 503: ``Regsuite_Cutout`` and ``regsuite-cutout`` are one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower().strip()


def disabled_distributions() -> frozenset[str]:
    """The distributions ``$REGSUITE_DISABLE_PLUGINS`` (comma-separated names) skips."""
    raw = os.environ.get(DISABLE_SOME_ENV, "")
    return frozenset(normalize_distribution(part) for part in raw.split(",") if part.strip())


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    cls: type[api.Plugin]
    provider: str  # "regsuite 0.1.0 (built-in)" or "<distribution> <version>"
    plugin_name: str
    builtin: bool = True

    @property
    def code(self) -> str | None:
        """A hash of a third-party plugin's code (see :func:`code_hash`); None for a built-in,
        which regsuite's version stands for."""
        return None if self.builtin else code_hash(self.cls)


@dataclass(frozen=True)
class Problem:
    """What went wrong with one third-party plugin (an entry point of a distribution)."""

    distribution: str
    version: str
    plugin_name: str
    reason: str
    #: (kind, name) pairs lost: the names a broken plugin registered (as far as it got), or
    #: the withheld names of a plugin that otherwise loaded.
    names: tuple[tuple[str, str], ...] = ()
    #: True: the plugin loaded and only ``names`` are withheld; False: it is left out whole.
    loaded: bool = False

    @property
    def provider(self) -> str:
        return f"{self.distribution} {self.version}"

    def describe(self) -> str:
        what = "" if self.loaded else "did not load: "
        return f"plugin {self.plugin_name!r} of {self.provider} {what}{self.reason}"


@dataclass(frozen=True)
class Disabled:
    distribution: str
    version: str


class Registry:
    """Every registered task, dataset, model and regularizer, by kind and name, and the
    third-party plugins that are broken, withheld in part or disabled."""

    def __init__(self, entries: list[Entry], problems: list[Problem] = (), disabled: list[Disabled] = ()):
        self.entries: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
        self.problems: list[Problem] = list(problems)
        self.disabled: list[Disabled] = list(disabled)
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
            raise RegsuiteError(self.missing_message(kind, name)) from None

    def missing_message(self, kind: str, name: str) -> str:
        lost = [p for p in self.problems if (kind, name) in p.names]
        if lost:
            return f"the {kind} {name!r} is unavailable: " + "; ".join(p.describe() for p in lost)
        message = unknown_name_message(kind, name, self.names(kind))
        unknown = [p for p in self.problems if not p.loaded and not p.names]
        if unknown:  # failed before saying what it provides: it may be the one
            message += ("; these plugins did not load and may provide it: "
                        + "; ".join(f"{p.plugin_name!r} of {p.provider} ({p.reason})" for p in unknown))
        return message

    def cls(self, kind: str, name: str) -> type[api.Plugin]:
        return self.get(kind, name).cls

    def where_params(self, kind: str, name: str) -> set[str]:
        """The parameters of a plugin that only say where things are (``api.NOT_IN_RUN_KEY``)."""
        params = self.cls(kind, name).Params
        return set(params.model_fields) - api.run_key_fields(params)

    def warnings(self) -> list[str]:
        lines = []
        for problem in self.problems:
            lost = ", ".join(f"{kind} {name!r}" for kind, name in problem.names)
            if problem.loaded:
                lines.append(f"plugin {problem.plugin_name!r} of {problem.provider}: {problem.reason}")
            else:
                lines.append(f"{problem.describe()}" + (f" (lost: {lost})" if lost else "")
                             + f"; the other plugins are loaded ({DISABLE_SOME_ENV}={problem.distribution} skips it)")
        return lines


def unknown_name_message(kind: str, name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    suggestion = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown {kind} {name!r}: {suggestion}known {kind}s: {', '.join(known) or 'none'}"


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, with what loading the third-party plugins found."""

    def __init__(self) -> None:
        super().__init__(NAME)
        self.external: dict[str, tuple[str, str]] = {}  # plugin name → (distribution, version)
        self.problems: list[Problem] = []
        self.disabled: list[Disabled] = []


def make_plugin_manager(load_external: bool | None = None,
                        disabled: frozenset[str] | None = None) -> PluginManager:
    """The hook specs, then the built-in plugins (and ``check_pending()`` on them), then the
    entry points of the group ``regsuite`` (unless ``load_external`` is false; default:
    :func:`external_plugins_enabled`), less the distributions in ``disabled`` (default:
    :func:`disabled_distributions`).

    Why this order: the built-ins are registered first, so they never depend on what happens
    to be installed, and a built-in that breaks the contract is an error before any
    third-party code runs. A third-party plugin that fails to import, to register, or
    implements a hook regsuite does not define is recorded in ``pm.problems`` and left out;
    the others load (see the module's docstring for names that clash).
    """
    # Heavy (torch, albumentations, NLTK): imported when a registry is built, not with this module.
    from regsuite import plugins as builtin

    pm = PluginManager()
    pm.add_hookspecs(hookspecs)
    for module in builtin.MODULES:
        pm.register(module, name=f"{NAME}.builtin.{module.__name__.rsplit('.', 1)[-1]}")
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise RegsuiteError(f"a plugin implements a hook regsuite does not define: {exc}") from exc
    if load_external is None:
        load_external = external_plugins_enabled()
    if load_external:
        load_entry_points(pm, disabled_distributions() if disabled is None else disabled)
    return pm


def describe_exception(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def load_entry_points(pm: PluginManager, disabled: frozenset[str]) -> None:
    import importlib.metadata

    for dist in list(importlib.metadata.distributions()):
        points = [ep for ep in dist.entry_points if ep.group == NAME]
        if not points:
            continue
        dist_name, version = dist.metadata["name"] or "?", dist.version or "?"
        if normalize_distribution(dist_name) in disabled:
            pm.disabled.append(Disabled(dist_name, version))
            continue
        for ep in points:
            plugin_name = ep.name if not pm.has_plugin(ep.name) else f"{dist_name}:{ep.name}"
            if pm.has_plugin(plugin_name):  # the same distribution twice on sys.path: the first one counts
                continue

            def broken(reason: str) -> None:
                pm.problems.append(Problem(dist_name, version, plugin_name, reason))

            try:
                plugin = ep.load()
            except (Exception, SystemExit) as exc:  # anything its import raises costs only this plugin
                broken(f"importing it failed: {describe_exception(exc)}")
                continue
            try:
                pm.register(plugin, name=plugin_name)
            except Exception as exc:
                broken(f"registering it failed: {describe_exception(exc)}")
                continue
            unknown = sorted(caller.name for caller in pm.get_hookcallers(plugin) or []
                             if not caller.has_spec()
                             and any(impl.plugin is plugin and not impl.optionalhook for impl in caller.get_hookimpls()))
            if unknown:
                pm.unregister(plugin)
                known = ", ".join(hook for hook, _ in KINDS.values())
                broken(f"it implements hooks regsuite does not define: {', '.join(unknown)} (regsuite's hooks: {known})")
                continue
            pm.external[plugin_name] = (dist_name, version)


def collect(pm: pluggy.PluginManager) -> Registry:
    """The registry of ``pm``'s plugins: the built-ins strictly (an error is regsuite's bug),
    each third-party plugin whole or not at all, then the names that clash withheld."""
    external: dict[str, tuple[str, str]] = getattr(pm, "external", {})
    problems: list[Problem] = list(getattr(pm, "problems", []))
    builtin_entries: list[Entry] = []
    for kind, (hook_name, base) in KINDS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            if impl.plugin_name in external:
                continue
            for cls in impl.function() or []:
                check_plugin_class(cls, base, kind, impl.plugin_name)
                builtin_entries.append(Entry(kind, cls.name, cls, BUILTIN_PROVIDER, impl.plugin_name))

    offered: list[Entry] = []
    for plugin_name, (dist_name, version) in external.items():
        entries, error = plugin_entries(pm, plugin_name, f"{dist_name} {version}")
        if error is None:
            offered.extend(entries)
        else:
            problems.append(Problem(dist_name, version, plugin_name, error,
                                    tuple(dict.fromkeys((e.kind, e.name) for e in entries))))

    taken = {(e.kind, e.name): e for e in builtin_entries}
    claims: dict[tuple[str, str], list[Entry]] = {}
    for entry in offered:
        claims.setdefault((entry.kind, entry.name), []).append(entry)
    accepted = []
    for (kind, name), group in claims.items():
        if (kind, name) not in taken and len(group) == 1:
            accepted.append(group[0])
            continue
        for entry in group:
            if (kind, name) in taken:
                reason = (f"its {kind} {name!r} is not loaded: the name is taken by the built-in {kind} of "
                          f"{BUILTIN_PROVIDER}, which keeps it (rename the plugin's {kind})")
            else:
                others = ", ".join(f"plugin {o.plugin_name!r} of {o.provider}" for o in group if o is not entry)
                reason = (f"its {kind} {name!r} is not loaded: {others} registers the same name, so neither "
                          f"gets it (uninstall one, or set {DISABLE_SOME_ENV} to the one to skip)")
            dist_name, version = external[entry.plugin_name]
            problems.append(Problem(dist_name, version, entry.plugin_name, reason, ((kind, name),), loaded=True))
    return Registry(builtin_entries + accepted, problems, getattr(pm, "disabled", []))


def plugin_entries(pm: pluggy.PluginManager, plugin_name: str, provider: str) -> tuple[list[Entry], str | None]:
    """Every class one third-party plugin registers, and the first reason it is broken (None:
    it is not). After a failure the other hooks are still asked, to learn the names lost."""
    plugin = pm.get_plugin(plugin_name)
    entries: list[Entry] = []
    error: str | None = None
    for kind, (hook_name, base) in KINDS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            if impl.plugin is not plugin:
                continue
            try:
                returned = impl.function()
            except Exception as exc:
                error = error or f"its hook {hook_name} raised {describe_exception(exc)}"
                continue
            if returned is None:
                continue
            if not isinstance(returned, (list, tuple)):
                error = error or f"its hook {hook_name} returned {type(returned).__name__}, not a list of classes"
                continue
            for cls in returned:
                try:
                    check_plugin_class(cls, base, kind, plugin_name)
                except RegsuiteError as exc:
                    error = error or exc.message
                    continue
                entries.append(Entry(kind, cls.name, cls, provider, plugin_name, builtin=False))
    return entries, error


def check_plugin_class(cls: object, base: type, kind: str, plugin_name: str) -> None:
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise RegsuiteError(f"plugin {plugin_name} registered {cls!r} as a {kind}, but it is not a {base.__module__}.{base.__name__} subclass")
    if not isinstance(getattr(cls, "name", None), str) or not cls.name:
        raise RegsuiteError(f"plugin {plugin_name} registered the {kind} class {cls.__name__} without a name")


# ---------------------------------------------------------------------------- plugin code

MAX_CODE_FILES = 2000


@lru_cache(maxsize=None)
def code_hash(cls: type) -> str:
    """A hash of the code of a third-party plugin class: the bytes of every ``.py`` file of the
    top-level package its module belongs to (by path within the package), or of its module's
    file when that is a lone module (or the package is larger than ``MAX_CODE_FILES`` files);
    ``inspect.getsource`` of the class when there is no file. Part of the key of every run that
    uses the class, so that editing an installed plugin makes new runs, not old results."""
    module_name = getattr(cls, "__module__", "") or ""
    module = sys.modules.get(module_name)
    top = sys.modules.get(module_name.partition(".")[0])
    files: list[tuple[str, Path]] = []
    for root in list(getattr(top, "__path__", None) or []):
        base = Path(root)
        files.extend((f"{base.name}/{p.relative_to(base).as_posix()}", p) for p in base.rglob("*.py") if p.is_file())
    if not files or len(files) > MAX_CODE_FILES:
        path = getattr(module, "__file__", None)
        files = [(Path(path).name, Path(path))] if path and Path(path).is_file() else []
    digest = hashlib.sha256(b"regsuite-plugin-code-v1\0")
    try:
        for relative, path in sorted(files):
            digest.update(relative.encode() + b"\0" + path.read_bytes() + b"\0")
        if not files:
            import inspect

            digest.update(inspect.getsource(cls).encode())
    except (OSError, TypeError):
        return "unknown"
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------------------- the default registry


@lru_cache(maxsize=None)
def _default(load_external: bool, disabled: frozenset[str] = frozenset()) -> Registry:
    registry = collect(make_plugin_manager(load_external, disabled))
    for line in registry.warnings():
        print(f"regsuite: warning: {line}", file=sys.stderr)
    return registry


def get_registry() -> Registry:
    """The registry of this environment (built once per process; broken third-party plugins
    are reported on stderr when it is built)."""
    return _default(external_plugins_enabled(), disabled_distributions())


def reset() -> None:
    """Forget the cached registry (tests that install or fake plugins call this)."""
    _default.cache_clear()
    code_hash.cache_clear()
