"""What ``regsuite plugins`` shows: every registered plugin in one table per kind, or one
plugin in full, as rich renderables the CLI prints.

Plugin names never break across lines, at any width down to 80 columns: their columns do not
wrap, and everything else (descriptions, providers, types) wraps around them.
"""
from __future__ import annotations

import difflib
import inspect
import types
import typing
from typing import Any, Callable, Iterable

from pydantic.fields import FieldInfo
from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from regsuite import api
from regsuite.errors import RegsuiteError
from regsuite.registry import DISABLE_SOME_ENV, KINDS, Entry, Registry, unknown_name_message

NONE = "—"
#: The regularizer methods through which it acts (api.Regularizer), in training order.
REGULARIZER_HOOKS = ("setup", "transform_dataset", "configure_model", "param_groups", "wrap_loss", "transform_batch",
                     "penalty", "output_penalty", "after_step", "after_epoch")


def check_kind(kind: str | None) -> list[str]:
    """The kinds to show: ``kind``, or all of them when None."""
    if kind is None:
        return list(KINDS)
    if kind not in KINDS:
        raise RegsuiteError(unknown_name_message("kind", kind, list(KINDS)))
    return [kind]


# ---------------------------------------------------------------------------- facts of a plugin


def names(values: Iterable[str] | None, empty: str = NONE) -> str:
    return ", ".join(sorted(values)) if values else empty


def tasks_of(entry: Entry) -> str:
    """The tasks a plugin serves: a dataset's one, a model's, a regularizer's ("all": None)."""
    cls = entry.cls
    if entry.kind == "dataset":
        return cls.task
    if entry.kind == "model":
        return names(cls.tasks)
    if entry.kind == "regularizer":
        return "all" if cls.tasks is None else names(cls.tasks)
    return entry.name


def facts(entry: Entry) -> list[tuple[str, str]]:
    """``(label, value)`` pairs of what a plugin serves and declares, by kind."""
    cls = entry.cls
    if entry.kind == "task":
        return [("metrics", names(f"{m.key} ({m.label})" for m in cls.metrics))]
    if entry.kind == "dataset":
        return [("task", tasks_of(entry))]
    if entry.kind == "model":
        return [("tasks", tasks_of(entry)), ("slots", names(cls.slots))]
    return [("tasks", tasks_of(entry)), ("claims slots", names(cls.claims_slots)),
            ("conflicts", names(cls.conflicts_with))]


# ---------------------------------------------------------------------------- the overview


def overview(registry: Registry, kind: str | None = None) -> list[RenderableType]:
    """One table per kind (name, provider, description with what it serves and declares),
    then the broken, withheld and disabled third-party plugins."""
    shown: list[RenderableType] = [kind_table(registry, k) for k in check_kind(kind)]
    if registry.problems:
        shown.append(problems_table(registry))
    if registry.disabled:
        skipped = ", ".join(f"{d.distribution} {d.version}" for d in registry.disabled)
        shown.append(Text(f"disabled by ${DISABLE_SOME_ENV}: {skipped}"))
    shown.append(Text("regsuite plugins NAME shows one plugin in full, with its parameters",
                      style="dim"))
    return shown


class Fitted:
    """A renderable built for the width it is given (``build(max_width)``)."""

    def __init__(self, build: Callable[[int], RenderableType]):
        self.build = build

    def __rich_console__(self, console, options):
        yield self.build(options.max_width)


#: Columns the description keeps beside the name and the provider, unless a word of the provider needs them.
DESCRIPTION_ROOM = 36


def kind_table(registry: Registry, kind: str) -> Fitted:
    entries = [registry.get(kind, name) for name in registry.names(kind)]
    return Fitted(lambda width: build_kind_table(kind, entries, width))


def build_kind_table(kind: str, entries: list[Entry], width: int) -> Table:
    providers = [e.provider for e in entries]
    names_width = max([4, *(len(e.name) for e in entries)])
    room = width - names_width - DESCRIPTION_ROOM - 10  # 10: the borders and padding of three columns
    # as wide as there is room for, and never narrower than a word: "regsuite 0.1.0" over "(built-in)"
    provider_width = max(longest_word(providers), min(room, max([8, *map(len, providers)])))
    table = Table(title=f"{kind}s ({len(entries)})", title_justify="left", show_lines=True)
    table.add_column("name", no_wrap=True, style="bold")
    table.add_column("provider", width=provider_width, overflow="fold")
    table.add_column("description", overflow="fold")
    for entry in entries:
        about = Text(entry.cls.describe() or NONE)
        for label, value in facts(entry):
            if value != NONE or label == "tasks":  # the overview leaves out what is not there
                about.append(f"\n{label}: {value}", style="dim")
        table.add_row(Text(entry.name), Text(entry.provider), about)
    return table


def longest_word(texts: Iterable[str], at_least: int = 8) -> int:
    return max([at_least, *(len(word) for text in texts for word in text.split())])


def problems_table(registry: Registry) -> Table:
    table = Table(title="broken plugins (left out, or some of their names withheld)", show_lines=True,
                  title_justify="left")
    table.add_column("plugin", no_wrap=True)
    table.add_column("provided by", overflow="fold")
    table.add_column("lost", overflow="fold")
    table.add_column("reason", overflow="fold")
    for problem in registry.problems:
        lost = ", ".join(f"{kind} {name}" for kind, name in problem.names)
        lost = lost if problem.loaded else "the whole plugin" + (f" ({lost})" if lost else "")
        table.add_row(*map(Text, (problem.plugin_name, problem.provider, lost, problem.reason)))
    return table


# ---------------------------------------------------------------------------- one plugin in full


def details(registry: Registry, name: str, kind: str | None = None) -> list[RenderableType]:
    """Everything about the plugin ``name`` (of each kind it is registered under, or of
    ``kind``): a clear error with a suggestion when there is none."""
    kinds = check_kind(kind)
    found = [registry.entries[k][name] for k in kinds if name in registry.entries[k]]
    if not found:
        raise RegsuiteError(registry.missing_message(kind, name) if kind else unknown_plugin_message(registry, name))
    shown: list[RenderableType] = []
    for entry in found:
        shown.extend(plugin_details(entry))
    return shown


def unknown_plugin_message(registry: Registry, name: str) -> str:
    """As :meth:`Registry.missing_message`, for a name of any kind: the kind of the closest
    known name, or every name when none is close."""
    for kind in KINDS:
        if any((kind, name) in problem.names for problem in registry.problems):
            return registry.missing_message(kind, name)
    every = sorted({known for kind in KINDS for known in registry.names(kind)})
    close = difflib.get_close_matches(name, every, n=1, cutoff=0.5)
    if close:
        return registry.missing_message(next(k for k in KINDS if close[0] in registry.entries[k]), name)
    message = unknown_name_message("plugin", name, every)
    unloaded = [p for p in registry.problems if not p.loaded and not p.names]
    if unloaded:
        message += ("; these plugins did not load and may provide it: "
                    + "; ".join(f"{p.plugin_name!r} of {p.provider} ({p.reason})" for p in unloaded))
    return message


def plugin_details(entry: Entry) -> list[RenderableType]:
    cls = entry.cls
    heading = Text.assemble((f"{entry.kind} ", "bold"), (entry.name, "bold cyan"))
    doc = inspect.cleandoc(cls.__doc__ or "") or NONE
    about = Table.grid(padding=(0, 2))
    about.add_column(no_wrap=True, style="bold")
    about.add_column(overflow="fold")
    rows = [("provided by", entry.provider), ("module", cls.__module__), *facts(entry), *kind_extras(entry)]
    if entry.code is not None:
        rows.append(("code hash", f"{entry.code} (part of the key of every run that uses it)"))
    for label, value in rows:
        about.add_row(Text(label), Text(value))
    return [Group(heading, Text(doc), Text(""), about, Text(""), params_table(cls.Params)), Text("")]


def kind_extras(entry: Entry) -> list[tuple[str, str]]:
    cls = entry.cls
    if entry.kind == "dataset" and getattr(cls.download, "__func__", None) is not api.Dataset.download.__func__:
        return [("download", f"regsuite data download {entry.name}")]
    if entry.kind == "regularizer":
        acts = [hook for hook in REGULARIZER_HOOKS if getattr(cls, hook) is not getattr(api.Regularizer, hook)]
        return [("acts in", ", ".join(acts) or "nothing (no hook method overridden)")]
    return []


# ---------------------------------------------------------------------------- parameters


def params_table(params: type[api.Params]) -> RenderableType:
    """One column each for name, type, default, range and description where there is room
    (``WIDE`` columns), else the name beside the rest, which wraps."""
    if not params.model_fields:
        return Text("parameters: none")
    rows = [(name, type_name(f.annotation), default_of(f), constraints(f.metadata) or NONE, describe_field(f))
            for name, f in params.model_fields.items()]
    return Fitted(lambda width: build_params_table(rows, wide=width >= WIDE))


WIDE = 120


def build_params_table(rows: list[tuple[str, str, str, str, str]], wide: bool) -> Table:
    table = Table(title="parameters", title_justify="left", show_lines=True, box=box.SQUARE)
    table.add_column("name", no_wrap=True, style="bold")
    if wide:
        for head in ("type", "default", "range", "description"):
            table.add_column(head, overflow="fold")
        for row in rows:
            table.add_row(*map(Text, row))
        return table
    table.add_column("type = default, range; description", overflow="fold")
    for name, kind, default, bounds, description in rows:
        head = Text.assemble((kind, "cyan"), " = ", (default, "green"),
                             *([", ", (bounds, "yellow")] if bounds != NONE else []))
        table.add_row(Text(name), Text.assemble(head, "\n", description))
    return table


def default_of(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    return repr(list(value) if isinstance(value, tuple) else value)


def describe_field(field: FieldInfo) -> str:
    text = field.description or ""
    rule = api.key_rule(field)
    if rule is False:
        text += " (not part of the run key: it says where, not what)"
    elif rule == "unless-default":
        text += " (part of the run key only when it is not the default)"
    return text.strip() or NONE


BOUNDS = (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<"), ("multiple_of", "multiple of"))


def constraints(metadata: Iterable[Any]) -> str:
    """``ge``/``gt``/``le``/``lt`` (and lengths, multiples, patterns) of a field's pydantic
    metadata, as ``"> 0, ≤ 1"``."""
    parts = []
    for item in metadata:
        parts += [f"{sign} {getattr(item, key)}" for key, sign in BOUNDS if getattr(item, key, None) is not None]
        if getattr(item, "min_length", None) is not None:
            parts.append(f"length ≥ {item.min_length}")
        if getattr(item, "max_length", None) is not None:
            parts.append(f"length ≤ {item.max_length}")
        if getattr(item, "pattern", None) is not None:
            parts.append(f"matches {item.pattern}")
    return ", ".join(parts)


def type_name(annotation: Any) -> str:
    """A parameter's type as a reader writes it: ``int | None``, ``'online' | 'double'``,
    ``tuple[int ≥ 1, ...]``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is type(None):
        return "None"
    if origin is typing.Annotated:
        bounds = constraints(m for meta in args[1:] for m in (getattr(meta, "metadata", None) or [meta]))
        return f"{type_name(args[0])} {bounds}".strip()
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(arg) for arg in args)
    if origin is typing.Literal:
        return " | ".join(repr(arg) for arg in args)
    if origin is not None and args:
        inner = ", ".join("..." if arg is Ellipsis else type_name(arg) for arg in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")
