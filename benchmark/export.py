"""Published leaderboards: ``leaderboard/<spec>.md`` with everything needed to reproduce it,
and its learning curves beside it in ``leaderboard/<spec>/*.png``."""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import shlex
from pathlib import Path
from typing import Any

from regsuite import leaderboard as lb
from regsuite import plots
from regsuite.errors import RegsuiteError
from regsuite.store import Store

SPECS_DIR = Path("specs")


def write_markdown(store: Store, name: str, directory: Path, command: str, sort: str = "val_loss",
                   partial: bool = False) -> Path:
    """Write ``directory/<name>.md`` and its figures in ``directory/<name>/``."""
    board = lb.build(store, name, sort)
    if board.missing and not partial:
        raise RegsuiteError(
            f"spec {name!r} has {len(board.missing)} unfinished run(s); a published leaderboard would be partial",
            details=board.missing[:10] + ([f"… and {len(board.missing) - 10} more"] if len(board.missing) > 10 else []),
            hint=f"finish them (regsuite run specs/{name}.toml), or pass --partial to publish what exists",
        )
    info = store.spec_info(name)
    directory.mkdir(parents=True, exist_ok=True)
    figures = plots.write_plots(store, name, directory / name)
    text = "\n".join([*header(board, info, command), lb.to_markdown(board, heading_level=2),
                      *figure_section(name, figures), *spec_section(info)])
    path = directory / f"{name}.md"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def header(board: lb.Leaderboard, info: dict[str, Any], command: str) -> list[str]:
    runs = [run for row in board.rows for run in row.runs]
    versions = runs[0].config["versions"]
    devices = sorted({run.device or "?" for run in runs})
    wall = sum(run.wall_time or 0 for run in runs)
    spec = info["spec"]
    seeds = ", ".join(str(s) for s in spec.get("seeds", []))
    lines = [f"# regsuite leaderboard: {board.spec_name}", ""]
    if spec.get("description"):
        lines += [f"> {spec['description']}", ""]
    lines += [
        f"- generated: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- regsuite {versions['regsuite']}, torch {versions['torch']}, python {versions['python']}",
        f"- device: {', '.join(devices)}; {len(runs)} finished runs, {wall:.0f} s of training in all",
        f"- seeds: {seeds}; epochs: {spec.get('training', {}).get('epochs')}",
    ]
    rerun = reproduce_command(board.spec_name, spec)
    if rerun:
        lines.append(f"- reproduce the runs: `{rerun}`")
    else:
        lines.append("- reproduce the runs: save the resolved spec at the end of this file as a .toml-equivalent "
                     "spec and `regsuite run` it (no spec file here matches it)")
    lines += [f"- this file: `{command}`", ""]
    return lines


def figure_section(name: str, figures: list[plots.PlotFile]) -> list[str]:
    lines = ["## Learning curves", "", f"{plots.BAND[0].upper()}{plots.BAND[1:]}. PNG files in `{name}/`.", ""]
    for figure in figures:
        relative = f"{name}/{figure.path.name}"
        if figure.row is None:
            lines += [f"![{name}: {figure.title}]({relative})", ""]
    lines += ["| row | loss and metrics per epoch, train vs val |", "|:--|:--|"]
    lines += [f"| {f.row} | [{f.path.name}]({name}/{f.path.name}) |" for f in figures if f.row is not None]
    lines.append("")
    for figure in figures:
        if figure.row is not None:
            lines += [f"### {figure.row}", "", f"![{name}: {figure.row}]({name}/{figure.path.name})", ""]
    return lines


def spec_section(info: dict[str, Any]) -> list[str]:
    return ["<details><summary>resolved spec (as stored with the results)</summary>", "", "```json",
            json.dumps(info["spec"], indent=2, ensure_ascii=False), "```", "", "</details>", ""]


# ---------------------------------------------------------------------------- reproduce


def reproduce_command(name: str, stored: dict[str, Any]) -> str | None:
    """``regsuite run <spec file> --set …`` that rebuilds the stored spec from a spec file in
    ``specs/``, or None when there is no such file or --set cannot express the difference."""
    path = find_spec_file(name)
    if path is None:
        return None
    from regsuite.spec import load_spec

    try:
        current = json.loads(load_spec(path).model_dump_json())
    except RegsuiteError:
        return None
    # How runs were executed never changes their results, so it is not compared.
    current.pop("execution", None)
    overrides = differences(current, {k: v for k, v in stored.items() if k != "execution"}, [])
    if overrides is None:
        return None
    sets = [f"--set {shlex.quote(f'{key}={value}')}" for key, value in overrides]
    return " ".join(["regsuite run", shlex.quote(path.as_posix()), *sets])


def find_spec_file(name: str) -> Path | None:
    from regsuite.spec import read_toml

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
