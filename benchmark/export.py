"""Published leaderboards: ``leaderboard/<spec>.md`` with everything needed to reproduce it,
and its learning curves beside it in ``leaderboard/<spec>/*.png``.

User text (the description, labels, paths in the command) is escaped (:func:`leaderboard.md_text`,
:func:`leaderboard.md_code`): it cannot break a table or add a heading; the resolved spec is
strict JSON (NaN and infinities as null)."""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from regsuite import atomic
from regsuite import leaderboard as lb
from regsuite import plots
from regsuite.errors import RegsuiteError, at_most
from regsuite.safety import DATA_ENV, PortablePaths, check_spec_name, holds_absolute_path, inside
from regsuite.spec import Spec, load_spec, read_toml
from regsuite.store import Store

if TYPE_CHECKING:
    from regsuite.registry import Registry

SPECS_DIR = Path("specs")


def write_markdown(store: Store, name: str, directory: Path, command: str, sort: str = "val_loss",
                   partial: bool = False, *, registry: Registry) -> Path:
    """Write ``directory/<name>.md`` and its figures in ``directory/<name>/``. ``registry``
    says which plugin parameters only say where things are (they are made portable)."""
    board = lb.build(store, name, sort)
    if board.missing and not partial:
        raise RegsuiteError(
            f"spec {name!r} has {len(board.missing)} unfinished run(s); a published leaderboard would be partial",
            details=at_most(board.missing),
            hint=f"finish them (regsuite run specs/{name}.toml), or pass --partial to publish what exists",
        )
    # The name may come from the store, which may hold anything: checked before it becomes a path.
    check_spec_name(name, f"the results store {store.path}")
    path, figure_folder = inside(directory, f"{name}.md"), inside(directory, name)
    stored = store.spec_info(name)
    # No paths of this machine in a published file (the rule of results files).
    info = {**stored, "spec": portable_spec(registry, stored["spec"], f"spec {name!r}")}
    command = portable_command(command)
    directory.mkdir(parents=True, exist_ok=True)
    figures = plots.write_plots(store, name, figure_folder)
    text = "\n".join([*header(board, info, command, registry), lb.to_markdown(board, heading_level=2),
                      *figure_section(name, figures), *spec_section(info)])
    return atomic.write_text(path, text)


def header(board: lb.Leaderboard, info: dict[str, Any], command: str, registry: Registry) -> list[str]:
    runs = [run for row in board.rows for run in row.runs]
    versions = runs[0].config["versions"]
    devices = sorted({run.device or "?" for run in runs})
    wall = sum(run.wall_time or 0 for run in runs)
    spec = info["spec"]
    seeds = ", ".join(str(s) for s in spec.get("seeds", []))
    lines = [f"# regsuite leaderboard: {lb.md_text(board.spec_name)}", ""]
    if spec.get("description"):
        lines += [f"> {lb.md_text(spec['description'], block_start=True)}", ""]
    lines += [
        f"- generated: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- regsuite {versions['regsuite']}, torch {versions['torch']}, python {versions['python']}",
        f"- device: {lb.md_text(', '.join(devices))}; {len(runs)} finished runs, {wall:.0f} s of training in all",
        f"- seeds: {seeds}; {run_length(spec.get('training', {}))}",
    ]
    rerun = reproduce_command(board.spec_name, spec, registry)
    if rerun:
        lines.append(f"- reproduce the runs: {lb.md_code(rerun)}")
    else:
        lines.append("- reproduce the runs: save the resolved spec at the end of this file as a .toml-equivalent "
                     "spec and `regsuite run` it (no spec file here matches it)")
    lines += [f"- this file: {lb.md_code(command)}", ""]
    return lines


def run_length(training: dict[str, Any]) -> str:
    if training.get("steps") is not None:
        return f"optimizer steps: {training['steps']} (in whole epochs, as many as each training set needs)"
    return f"epochs: {training.get('epochs')}"


def figure_section(name: str, figures: list[plots.PlotFile]) -> list[str]:
    text = lb.md_text
    lines = ["## Learning curves", "", f"{sentence(plots.BAND)}, unless a figure says otherwise. "
             f"PNG files in {lb.md_code(name + '/')}.", ""]
    for figure in figures:
        relative = f"{name}/{figure.path.name}"
        if figure.row is None:
            lines += [f"![{text(name)}: {text(figure.title)}]({relative})", ""]
            if figure.band != plots.BAND:
                lines += [f"{sentence(figure.band)}.", ""]
    lines += ["| row | loss and metrics per epoch, train vs val |", "|:--|:--|"]
    lines += [f"| {text(f.row)} | [{text(f.path.name)}]({name}/{f.path.name}) |" for f in figures if f.row is not None]
    lines.append("")
    for figure in figures:
        if figure.row is not None:
            lines += [f"### {text(figure.row)}", "", f"![{text(name)}: {text(figure.row)}]({name}/{figure.path.name})", ""]
    return lines


def sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def spec_section(info: dict[str, Any]) -> list[str]:
    return ["<details><summary>resolved spec (as stored with the results)</summary>", "", "```json",
            lb.strict_dumps(info["spec"], indent=2, ensure_ascii=False), "```", "", "</details>", ""]


# ---------------------------------------------------------------------------- reproduce


def reproduce_command(name: str, stored: dict[str, Any], registry: Registry) -> str | None:
    """``regsuite run <spec file> --set …`` that rebuilds the stored spec from a spec file in
    ``specs/``, or None when there is no such file or --set cannot express the difference."""
    path = find_spec_file(name)
    if path is None:
        return None
    try:
        # Made portable as the stored spec shown here is, so that the two compare.
        current = portable_spec(registry, json.loads(load_spec(path).model_dump_json()), path.as_posix())
    except RegsuiteError:
        return None
    # How runs were executed never changes their results, so it is not compared.
    current.pop("execution", None)
    stored = with_later_settings(stored)
    overrides = differences(current, {k: v for k, v in stored.items() if k != "execution"}, [])
    if overrides is None:
        return None
    sets = [f"--set {shlex.quote(f'{key}={value}')}" for key, value in overrides]
    return " ".join(["regsuite run", shlex.quote(path.as_posix()), *sets])


def with_later_settings(stored: dict[str, Any]) -> dict[str, Any]:
    """The stored spec with the spec settings added since it was stored at their defaults (a
    run stored before ``training.channels_last`` existed ran without it), as the spec file's
    resolution has them; the stored spec itself when today's spec model refuses it."""
    try:
        return json.loads(Spec.model_validate(stored).model_dump_json())
    except ValidationError:
        return stored


def find_spec_file(name: str) -> Path | None:
    candidates = [SPECS_DIR / f"{name}.toml"] + sorted(SPECS_DIR.glob("*.toml"))
    for path in candidates:
        if not path.is_file():
            continue
        try:
            if read_toml(path).get("name") == name:
                return path
        except RegsuiteError:
            continue
    return None


def differences(current: Any, stored: Any, path: list[str]) -> list[tuple[str, str]] | None:
    """The ``--set key=value`` pairs that turn ``current`` into ``stored``; None when some
    difference cannot be written as --set (a removed key, a null)."""
    if current == stored:
        return []
    if isinstance(current, dict) and isinstance(stored, dict):
        if set(current) - set(stored):
            return None
        parts = [differences(current.get(key, _ABSENT), stored[key], [*path, key]) for key in stored]
    elif (isinstance(current, list) and isinstance(stored, list) and len(current) == len(stored)
          and all(isinstance(item, dict) for item in stored)):
        parts = [differences(a, b, [*path, str(i)]) for i, (a, b) in enumerate(zip(current, stored))]
    else:
        value = toml_value(stored)
        return None if value is None or not path else [(".".join(path), value)]
    if any(part is None for part in parts):
        return None
    return [pair for part in parts for pair in part]


_ABSENT = object()


def toml_value(value: Any) -> str | None:
    """A TOML literal for ``value``; None when TOML has none (null)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        items = [toml_value(v) for v in value]
        return None if None in items else "[" + ", ".join(items) + "]"
    if isinstance(value, dict):
        items = [(k, toml_value(v)) for k, v in value.items()]
        if any(v is None for _, v in items):
            return None
        return "{ " + ", ".join(f"{json.dumps(k)} = {v}" for k, v in items) + " }"
    return None


# ---------------------------------------------------------------------------- portable


class ShownPaths(PortablePaths):
    """Paths as results files write them (:class:`regsuite.safety.PortablePaths`): relative to
    the working directory when under it, ``$REGSUITE_DATA`` when that folder, else null. A
    plugin not registered here: each of its parameters that holds an absolute path."""

    def params(self, registry, kind, name, params, where):
        try:
            return super().params(registry, kind, name, params, where)
        except RegsuiteError:  # which parameters only say where things are is unknown here
            return {k: (self.value(v) if holds_absolute_path(v) else v) for k, v in params.items()}


def here_paths() -> tuple[ShownPaths, str]:
    return ShownPaths.here(), DATA_ENV


def portable_spec(registry: Registry, spec: dict[str, Any], where: str) -> dict[str, Any]:
    """A stored spec with its plugins' path parameters portable (see :class:`ShownPaths`)."""
    paths, _ = here_paths()
    return paths.spec(registry, spec, where)


def portable_command(command: str) -> str:
    """The recorded command line with its absolute paths portable: relative to the working
    directory when under it, ``"$REGSUITE_DATA"`` when that folder, else ``<its name>``
    (a placeholder: the path of the machine the file was made on is not published)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return command
    paths, data_env = here_paths()
    return " ".join(portable_word(word, paths, data_env) for word in words)


def portable_word(word: str, paths: Any, data_env: str) -> str:
    prefix, value = "", word
    if not os.path.isabs(word) and "=" in word:  # --results=/x, dataset.root=/x
        key, _, value = word.partition("=")
        prefix = key + "="
    quote = value[0] if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'" else ""
    bare = value[1:-1] if quote else value
    if not os.path.isabs(bare):
        return shlex.quote(word)
    shown = paths.path(bare)
    if shown == f"${data_env}":
        return shlex.quote(prefix) + f'"${data_env}"' if prefix else f'"${data_env}"'
    if shown is None:
        placeholder = f"<{Path(bare).name or 'path'}>"
        return shlex.quote(f"{prefix}{quote}{placeholder}{quote}") if prefix or quote else placeholder
    return shlex.quote(f"{prefix}{quote}{shown}{quote}")
