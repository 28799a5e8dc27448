"""What is read back is untrusted, and what is published carries no paths of this machine.

A results store or a results file may hold anything. A spec name read back from a store
becomes a path (``leaderboard/<name>.md``, ``<results>/plots/<name>/``), so it is checked with
the rule of a spec's own ``name`` field (:mod:`regsuite.vocabulary`, where :class:`regsuite.spec.Spec`
takes it from) before it is used, and every file regsuite writes under an output folder is checked to stay
inside it.

Results files (:mod:`regsuite.results_file`) and published leaderboards (:mod:`regsuite.export`)
rewrite the absolute paths in plugin parameters that only say where things are
(:class:`PortablePaths`).
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from regsuite.errors import RegsuiteError
from regsuite.vocabulary import SPEC_NAME_MAX_LENGTH, SPEC_NAME_PATTERN

if TYPE_CHECKING:
    from regsuite.registry import Registry

#: The data folder of this machine, written as ``$REGSUITE_DATA`` in what is published.
DATA_ENV = "REGSUITE_DATA"
PLUGIN_KINDS = ("task", "dataset", "model")


@lru_cache(maxsize=1)
def _name_adapter():
    from typing import Annotated

    from pydantic import Field, TypeAdapter  # heavy-ish: only once a name is checked

    return TypeAdapter(Annotated[str, Field(pattern=SPEC_NAME_PATTERN, max_length=SPEC_NAME_MAX_LENGTH)])


def name_problem(name: object) -> str | None:
    """Why ``name`` is not a valid spec name (None when it is one)."""
    from pydantic import ValidationError

    try:
        _name_adapter().validate_python(name)
    except ValidationError as exc:
        return "; ".join(error["msg"] for error in exc.errors())
    return None


def check_spec_names(names: Iterable[object], source: object | None) -> list[str]:
    """``names`` when every one is a valid spec name; else one error naming every bad one
    (nothing has been written at that point). ``source``: the store or file they were read
    from; None: the command line."""
    names = list(names)
    bad = [(name, problem) for name in names if (problem := name_problem(name)) is not None]
    if not bad:
        return names  # type: ignore[return-value]
    shown = ", ".join(repr(name) for name, _ in bad)
    one = len(bad) == 1
    details = [f"{name!r}: {problem}" for name, problem in bad]
    if source is None:
        raise RegsuiteError(f"{shown} {'is not a valid spec name' if one else 'are not valid spec names'}",
                            details=details, hint="give the name of a spec (letters, digits, '_', '.', '-'), "
                                                  "or its spec file (.toml)")
    raise RegsuiteError(
        f"{source} holds {'a spec named' if one else 'specs named'} {shown}, "
        f"which {'is not a valid spec name' if one else 'are not valid spec names'}; nothing was written",
        details=details,
        hint="regsuite itself stores only valid names (letters, digits, '_', '.', '-'): the store was edited "
             "or made by another program; remove that spec from it, or use another results folder",
    )


def check_spec_name(name: object, source: object | None) -> str:
    return check_spec_names([name], source)[0]


def inside(base: Path, *parts: str) -> Path:
    """``base/<parts…>``, refused unless it lies strictly inside ``base`` once both are
    resolved (``..``, absolute parts and symbolic links included)."""
    target = Path(base).joinpath(*parts)
    root = Path(base).resolve()
    resolved = target.resolve()
    if resolved == root or not resolved.is_relative_to(root):
        raise RegsuiteError(
            f"refusing to write {target}: it lies outside {base}",
            hint="the name it was made from came from a store or a file that regsuite did not write",
        )
    return target


# ---------------------------------------------------------------------------- portable paths


class PortablePaths:
    """Rewrites the where-parameters (``api.NOT_IN_RUN_KEY``) of plugins that hold absolute paths."""

    def __init__(self, cwd: Path, data_dir: str | None):
        self.bases = unique([os.path.normpath(os.path.abspath(cwd)), os.path.realpath(cwd)])
        self.data_dir = os.path.realpath(os.path.expanduser(data_dir)) if data_dir else None

    @classmethod
    def here(cls, cwd: Path | None = None) -> "PortablePaths":
        """Relative to ``cwd`` (default: the working directory); ``$REGSUITE_DATA`` as itself."""
        return cls(cwd or Path.cwd(), os.environ.get(DATA_ENV) or None)

    def path(self, value: str) -> str | None:
        if not os.path.isabs(value):
            return value
        for candidate in unique([os.path.normpath(value), os.path.realpath(value)]):
            for base in self.bases:
                if candidate == base or candidate.startswith(base.rstrip(os.sep) + os.sep):
                    return Path(os.path.relpath(candidate, base)).as_posix()
        if self.data_dir is not None and os.path.realpath(value) == self.data_dir:
            return f"${DATA_ENV}"
        return None

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.path(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        return value

    def params(self, registry: Registry, kind: str, name: str, params: dict[str, Any], where: str) -> dict[str, Any]:
        try:
            where_only = registry.where_params(kind, name)
        except RegsuiteError:
            # Which parameters only say where things are is the plugin's to say: without it,
            # refuse rather than write a path of this machine into the file.
            leaking = sorted(k for k, v in params.items() if holds_absolute_path(v))
            if leaking:
                raise RegsuiteError(
                    f"{where}: {kind} {name!r} is not registered here, and its parameter(s) "
                    f"{', '.join(leaking)} hold an absolute path that the export must not carry",
                    hint=f"install the plugin that provides {kind} {name!r}, or export another spec",
                ) from None
            return dict(params)
        return {k: (self.value(v) if k in where_only else v) for k, v in params.items()}

    def config(self, registry: Registry, config: dict[str, Any], where: str) -> dict[str, Any]:
        """A run's resolved config (``{"dataset": {"name", "params", …}, …}``)."""
        out = dict(config)
        for kind in PLUGIN_KINDS:
            ref = config[kind]
            out[kind] = {**ref, "params": self.params(registry, kind, ref["name"], ref.get("params", {}), where)}
        out["regularizers"] = [{**ref, "params": self.params(registry, "regularizer", ref["name"], ref.get("params", {}), where)}
                               for ref in config["regularizers"]]
        return out

    def spec(self, registry: Registry, spec: dict[str, Any], where: str) -> dict[str, Any]:
        """A stored spec, whose plugin references are ``{"name": …, <params>…}``."""

        def ref(kind: str, value: Any) -> Any:
            if not isinstance(value, dict) or "name" not in value:
                return value
            params = {k: v for k, v in value.items() if k != "name"}
            return {"name": value["name"], **self.params(registry, kind, value["name"], params, where)}

        out = dict(spec)
        for kind in PLUGIN_KINDS:
            if kind in out:
                out[kind] = ref(kind, out[kind])
            if isinstance(out.get(f"{kind}s"), list):
                out[f"{kind}s"] = [ref(kind, item) for item in out[f"{kind}s"]]
        if isinstance(out.get("sets"), list):
            out["sets"] = [
                {**s, "regularizers": [ref("regularizer", r) for r in s["regularizers"]]}
                if isinstance(s, dict) and isinstance(s.get("regularizers"), list) else s
                for s in out["sets"]
            ]
        return out


def holds_absolute_path(value: Any) -> bool:
    if isinstance(value, str):
        return os.path.isabs(value)
    if isinstance(value, list):
        return any(holds_absolute_path(v) for v in value)
    if isinstance(value, dict):
        return any(holds_absolute_path(v) for v in value.values())
    return False


def unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
