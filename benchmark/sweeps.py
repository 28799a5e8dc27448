"""Sweeps: any value of a spec written ``{ sweep = [a, b, c] }`` becomes an axis of the grid.

Expansion works on the spec's table before it is validated, so every point is validated as a
plain value would be. Each axis lands in the dimension it belongs to:

- ``dataset.<param>`` / ``datasets[i].<param>``: that dataset becomes one entry per value
  (the grid's ``datasets`` list); the leaderboard labels the variants by their values;
- ``model.<param>`` / ``models[i].<param>``: the same for models;
- ``training.<key>``: one training setting per value (the grid's ``trainings`` list);
- ``sets[i].regularizers[j].<param>``: set ``i`` becomes one set per value, labelled
  ``"<label> (<param>=<value>)"``.

Several axes multiply. A sweep of one value is that value, and a spec without sweeps is left
exactly as it was (so its run ids do not change). What was swept is kept in the spec's
``sweeps`` (path and values of each axis), for ``validate`` and the leaderboard.
"""
from __future__ import annotations

import itertools
import json
import re
from typing import Any, Callable

from regsuite.errors import SpecError

SWEEP = "sweep"
PLUGIN_LISTS = {"dataset": "datasets", "model": "models"}
NOT_SWEEPABLE = {
    "name": "the spec's name names its results",
    "description": "a description is text",
    "task": "one spec has one task (write one spec per task)",
    "seeds": "seeds already are an axis: list them (seeds = [0, 1, 2])",
    "baseline": "the baseline is one set's label",
    "claims": "claims are judged on the rows; they are not part of a run",
    "execution": "execution settings say where runs train, never what they compute",
    "sweeps": "sweeps is written by regsuite: write { sweep = [...] } at the value to sweep",
    "trainings": "write training.<key> = { sweep = [...] } instead",
}


def is_sweep(value: Any) -> bool:
    return isinstance(value, dict) and SWEEP in value


def sweep_values(value: dict[str, Any], where: str) -> list[Any]:
    extra = sorted(set(value) - {SWEEP})
    if extra:
        raise SpecError(f"{where}: a sweep is {{ sweep = [values] }}; unknown key(s) {', '.join(extra)}")
    values = value[SWEEP]
    if not isinstance(values, list) or not values:
        raise SpecError(f"{where}: sweep must be a non-empty list of values (got {values!r})",
                        hint=f"e.g. {where.rsplit('.', 1)[-1]} = {{ sweep = [1e-4, 1e-3] }}")
    for item in values:
        if contains_sweep(item):
            raise SpecError(f"{where}: a sweep's values cannot hold sweeps themselves")
    keys = [canonical(v) for v in values]
    if len(set(keys)) != len(keys):
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        raise SpecError(f"{where}: the sweep repeats {', '.join(repeated)} (each value would be the same runs)")
    return values


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def contains_sweep(node: Any) -> bool:
    if is_sweep(node):
        return True
    if isinstance(node, dict):
        return any(contains_sweep(v) for v in node.values())
    if isinstance(node, list):
        return any(contains_sweep(v) for v in node)
    return False


def find_marked(node: Any, path: str, marked: Callable[[Any], bool]) -> list[tuple[str, list[str | int], Any]]:
    """Every value under ``node`` that ``marked`` picks (a sweep, a range), not looking inside
    it: (printed path, key path relative to node, the value)."""
    found = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        where = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else str(key)
        if marked(value):
            found.append((where, [key], value))
        else:
            found += [(w, [key, *rest], v) for w, rest, v in find_marked(value, where, marked)]
    return found


def find_sweeps(node: Any, path: str) -> list[tuple[str, list[str | int], list[Any]]]:
    """Every sweep under ``node``: (printed path, key path relative to node, values)."""
    return [(where, keys, sweep_values(value, where)) for where, keys, value in find_marked(node, path, is_sweep)]


def set_at(node: Any, keys: list[str | int], value: Any) -> None:
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value


def expand_table(table: Any, where: str) -> tuple[list[Any], list[dict[str, Any]]]:
    """The points of ``table``'s sweeps (the table itself when it has none) and each point's
    swept values by printed path."""
    sweeps = find_sweeps(table, where)
    if not sweeps:
        return [table], [{}]
    chosen = [{w: value for (w, _, _), value in zip(sweeps, combination)}
              for combination in itertools.product(*(values for _, _, values in sweeps))]
    return fill_points(table, {w: keys for w, keys, _ in sweeps}, chosen), chosen


def fill_points(table: Any, located: dict[str, list[str | int]], chosen: list[dict[str, Any]]) -> list[Any]:
    """A copy of ``table`` per point of ``chosen`` (values by printed path), each value set at
    its key path in ``located``."""
    template = json.loads(json.dumps(table))
    for keys in located.values():
        set_at(template, keys, None)  # so that a point's copy does not copy every axis's values
    skeleton = json.dumps(template)
    points = []
    for values in chosen:
        point = json.loads(skeleton)
        for w, value in values.items():
            set_at(point, located[w], value)
        points.append(point)
    return points


#: Where each entry of an expanded list came from: ``"trainings[1]"`` → (``"training"``, the
#: swept values of that point by path), so that an error in a point names the spec's own axis.
Origins = dict[str, tuple[str, dict[str, Any]]]


def expand(data: dict[str, Any], origins: Origins | None = None) -> dict[str, Any]:
    """The spec table with every sweep expanded (``data`` itself when it has none); ``origins``,
    when given, receives where each expanded entry came from."""
    if not contains_sweep(data):
        return data
    for key, why in NOT_SWEEPABLE.items():
        if key in data and contains_sweep(data[key]) or (key == "sweeps" and key in data):
            raise SpecError(f"{key} cannot be swept: {why}")
    data = dict(data)
    axes: list[dict[str, Any]] = []
    origins = {} if origins is None else origins
    for single, many in PLUGIN_LISTS.items():
        expand_plugins(data, single, many, axes, origins)
    expand_training(data, axes, origins)
    expand_sets(data, axes, origins)
    data["sweeps"] = axes
    return data


def axis(where: str, values: list[Any]) -> dict[str, Any]:
    return {"path": where, "values": values}


def expand_plugins(data: dict[str, Any], single: str, many: str, axes: list[dict[str, Any]], origins: Origins) -> None:
    if isinstance(data.get(single), dict):
        entries, wheres = [data[single]], [single]
    elif isinstance(data.get(many), list):
        entries, wheres = data[many], [f"{many}[{i}]" for i in range(len(data[many]))]
    else:
        return
    if is_sweep(entries[0]) if entries else False:
        raise SpecError(f"{wheres[0]}: sweep values inside the table ({single}.<param> = {{ sweep = [...] }}), "
                        f"or list the variants in {many} = [...]")
    expanded, swept = [], False
    for entry, where in zip(entries, wheres):
        if isinstance(entry, dict) and is_sweep(entry.get("name")):
            raise SpecError(f"{where}.name cannot be swept: list the {many} instead ({many} = [{{ name = ... }}, ...])")
        for found_where, _, values in find_sweeps(entry, where):
            axes.append(axis(found_where, values))
            swept = True
        points, chosen = expand_table(entry, where)
        for k, values in enumerate(chosen):
            origins[f"{many}[{len(expanded) + k}]"] = (where, values)
        expanded += points
    if swept:
        data.pop(single, None)
        data[many] = expanded


def expand_training(data: dict[str, Any], axes: list[dict[str, Any]], origins: Origins) -> None:
    training = data.get("training")
    if not isinstance(training, dict):
        return
    sweeps = find_sweeps(training, "training")
    if not sweeps:
        return
    axes += [axis(where, values) for where, _, values in sweeps]
    data.pop("training")
    points, chosen = expand_table(training, "training")
    origins.update({f"trainings[{k}]": ("training", values) for k, values in enumerate(chosen)})
    data["trainings"] = points


def expand_sets(data: dict[str, Any], axes: list[dict[str, Any]], origins: Origins) -> None:
    sets = data.get("sets")
    if not isinstance(sets, list):
        return
    expanded = []
    for i, regset in enumerate(sets):
        where = f"sets[{i}]"
        if not isinstance(regset, dict):
            origins[f"sets[{len(expanded)}]"] = (where, {})
            expanded.append(regset)
            continue
        for key in ("label", "reference"):
            if contains_sweep(regset.get(key)):
                raise SpecError(f"{where}.{key} cannot be swept: sweep a regularizer's parameter "
                                "(sets[i].regularizers[j].<param> = { sweep = [...] })")
        regs = regset.get("regularizers")
        if any(isinstance(r, dict) and is_sweep(r.get("name")) for r in regs or []):
            raise SpecError(f"{where}: a regularizer's name cannot be swept: write one set per regularizer")
        points, chosen = expand_table(regset, where)
        if len(points) == 1 and not chosen[0]:
            origins[f"sets[{len(expanded)}]"] = (where, {})
            expanded.append(regset)
            continue
        axes += [axis(w, v) for w, _, v in find_sweeps(regset, where)]
        for point, values in zip(points, chosen):
            point["label"] = f"{regset.get('label', '')} ({point_label(values)})"
            point["swept"] = values
            origins[f"sets[{len(expanded)}]"] = (where, values)
            expanded.append(point)
    if expanded != sets:
        data["sets"] = expanded


ENTRY = re.compile(r"^(\w+\[\d+\])")


def relocate(line: str, origins: Origins) -> str:
    """An error line about an expanded entry (``trainings[1].lr: ...``) as the spec wrote it
    (``training.lr, at the sweep point training.lr = -1: ...``)."""
    match = ENTRY.match(line)
    if not match or match.group(1) not in origins:
        return line
    where, values = origins[match.group(1)]
    location, sep, message = line[len(match.group(1)):].partition(": ")
    if not sep:
        return line
    point = ", ".join(f"{path} = {format_value(value)}" for path, value in values.items())
    return f"{where}{location}" + (f", at the sweep point {point}" if point else "") + f": {message}"


def point_label(values: dict[str, Any]) -> str:
    """``weight=0.0001`` for one swept parameter; the parameter's path below the set when two
    swept parameters share a name (``regularizers[0].p=0.1, regularizers[1].p=0.2``)."""
    names = [where.rsplit(".", 1)[-1] for where in values]
    parts = []
    for (where, value), name in zip(values.items(), names):
        shown = name if names.count(name) == 1 else where.split("].", 1)[-1]
        parts.append(f"{shown}={format_value(value)}")
    return ", ".join(parts)


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:g}"
    return json.dumps(value)
