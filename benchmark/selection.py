"""Tuned comparisons: the ``[selection]`` table.

A spec with ``[selection]`` carves a selection split out of each run's training data (a
deterministic ``fraction`` of it, class-balanced, the same for every set and seed), trains on
the rest, and lets each set choose among its candidates by the mean selection loss over seeds;
the leaderboard's tuned table reports the chosen candidate on the split the choice never saw
(val, or test where the data has one).

A set declares its candidates in its regularizers' parameters:

- ``{ range = [lo, hi] }`` or ``{ range = [lo, hi], log = true }`` (log: log-uniform, lo > 0):
  real numbers between lo and hi;
- ``{ sweep = [a, b, c] }``: these values (under ``[selection]`` a set's sweep lists are
  candidates to choose among, not separate rows of their own).

Every set gets the same ``budget``. ``method = "grid"``: the set's sweep lists (L combinations of
their values; more than ``budget`` is an error) times, on each of its k range axes, the largest n
with n ** k <= budget // L values, evenly spaced (log-spaced when log, the midpoint when n = 1). ``method =
"random"``: exactly ``budget`` points (fewer when the set's sweep lists have fewer
combinations), drawn by a generator seeded by ``seed`` and the set's label. Drawn and grid
values are rounded to 3 significant digits, the value the label shows. Expansion works on the
spec's table before it is validated (as sweeps do): every candidate is validated as a plain set,
labelled ``"l2 (weight=3.16e-05)"`` with its ``swept`` values and ``tuned_from = "l2"``; a set
without ranges or sweeps is one candidate, its own label.
"""
from __future__ import annotations

import hashlib
import itertools
import math
import random
from typing import Any, Literal

import torch
from pydantic import ConfigDict, Field

from regsuite import api
from regsuite.errors import DataError, SpecError
from regsuite.sweeps import canonical, fill_points, find_marked, find_sweeps, point_label

RANGE = "range"
SIGNIFICANT = 3


class SelectionConfig(api.NoBooleanNumbers):
    """The ``[selection]`` table."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    fraction: float = Field(gt=0, lt=1, description="share of the training split held out for selection")
    seed: int = Field(0, ge=0, lt=2**63, description="seeds the selection split and the random draws")
    budget: int = Field(ge=1, le=10_000, description="candidates per set")
    method: Literal["grid", "random"] = "random"

    def run_config(self) -> dict[str, Any]:
        """What a run's config (and so its key) holds of the selection."""
        return {"fraction": self.fraction, "seed": self.seed}


def is_range(value: Any) -> bool:
    return isinstance(value, dict) and RANGE in value


def find_ranges(node: Any, path: str = "") -> list[tuple[str, list[str | int], dict[str, Any]]]:
    """Every range under ``node``: (printed path, key path relative to node, the range table)."""
    return find_marked(node, path, is_range)


def check_ranges_placed(data: dict[str, Any], selection_given: bool) -> None:
    """Ranges belong in a set's regularizer parameters, and only with ``[selection]``."""
    ranges = find_ranges(data)
    if not ranges:
        return
    if not selection_given:
        raise SpecError(f"{ranges[0][0]}: a range ({{ range = [lo, hi] }}) needs a [selection] table",
                        hint="add [selection] with fraction and budget (e.g. fraction = 0.2, budget = 4), "
                             "or give one value")
    for where, keys, _ in ranges:
        if not (len(keys) == 5 and keys[0] == "sets" and keys[2] == "regularizers"):
            raise SpecError(f"{where}: ranges are allowed only in a set's regularizer parameters "
                            "(sets[i].regularizers[j].<param> = { range = [lo, hi] })")


def range_bounds(value: dict[str, Any], where: str) -> tuple[float, float, bool]:
    extra = sorted(set(value) - {RANGE, "log"})
    if extra:
        raise SpecError(f"{where}: a range is {{ range = [lo, hi], log = true|false }}; unknown key(s) {', '.join(extra)}")
    bounds, log = value[RANGE], value.get("log", False)
    if not isinstance(log, bool):
        raise SpecError(f"{where}: log must be true or false (got {log!r})")
    if (not isinstance(bounds, list) or len(bounds) != 2
            or any(isinstance(b, bool) or not isinstance(b, (int, float)) or not math.isfinite(b) for b in bounds)):
        raise SpecError(f"{where}: range must be two finite numbers [lo, hi] (got {bounds!r})")
    lo, hi = float(bounds[0]), float(bounds[1])
    if not lo < hi:
        raise SpecError(f"{where}: range [{bounds[0]}, {bounds[1]}] is empty: lo must be below hi")
    if log and lo <= 0:
        raise SpecError(f"{where}: a log range needs lo > 0 (got {bounds[0]})")
    return lo, hi, log


def rounded(value: float) -> float:
    """``value`` to 3 significant digits: the number the candidate's label shows."""
    return float(f"{value:.{SIGNIFICANT}g}")


def grid_values(lo: float, hi: float, log: bool, n: int) -> list[float]:
    """``n`` evenly spaced values from lo to hi (log-spaced when ``log``); the middle for n = 1."""
    a, b = (math.log(lo), math.log(hi)) if log else (lo, hi)
    points = [(a + b) / 2] if n == 1 else [a + (b - a) * i / (n - 1) for i in range(n)]
    return [rounded(math.exp(p) if log else p) for p in points]


def draw(lo: float, hi: float, log: bool, rng: random.Random) -> float:
    if log:
        return rounded(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    return rounded(rng.uniform(lo, hi))


def per_axis(budget: int, k: int) -> int:
    """The largest n with n ** k <= budget."""
    n = 1
    while (n + 1) ** k <= budget:
        n += 1
    return n


def set_rng(config: SelectionConfig, label: str) -> random.Random:
    digest = hashlib.sha256(f"regsuite-selection\0{config.seed}\0{label}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "little"))


def candidates(regset: dict[str, Any], where: str, config: SelectionConfig) -> tuple[list[dict[str, Any]], dict[str, list]]:
    """The candidate points of one set, each the swept values by printed path (ranges and sweep
    lists of its regularizers' parameters; ``[{}]`` for a set without either), and the key path
    of each of those values in the set."""
    axes: list[tuple[str, Any]] = []  # (printed path, ("range", lo, hi, log) | ("list", values))
    located: dict[str, list] = {}
    for w, keys, value in find_ranges(regset, where):
        axes.append((w, ("range", *range_bounds(value, w))))
        located[w] = keys
    for w, keys, values in find_sweeps(regset, where):
        axes.append((w, ("list", values)))
        located[w] = keys
    if not axes:
        return [{}], located
    paths = [w for w, _ in axes]
    ranges = [(w, a) for w, a in axes if a[0] == "range"]
    lists = [(w, a) for w, a in axes if a[0] == "list"]
    combos = math.prod(len(a[1]) for _, a in lists)
    label = regset.get("label", "")
    if config.method == "grid":
        if combos > config.budget:
            raise SpecError(f"{where} ({label!r}): the grid has at least {combos} candidates (its sweep lists), "
                            f"more than the budget of {config.budget}",
                            hint="raise selection.budget, or shorten the set's sweep lists")
        n = per_axis(config.budget // combos, len(ranges)) if ranges else 1
        columns = [grid_values(*a[1:], n) for _, a in ranges] + [a[1] for _, a in lists]
        names = [w for w, _ in ranges] + [w for w, _ in lists]
        points = [dict(zip(names, combo)) for combo in itertools.product(*columns)]
    else:
        rng = set_rng(config, label)
        if not ranges:  # only lists: their combinations, a seeded sample of them past the budget
            names = [w for w, _ in lists]
            points = [dict(zip(names, combo)) for combo in itertools.product(*(a[1] for _, a in lists))]
            if len(points) > config.budget:
                points = [points[i] for i in sorted(rng.sample(range(len(points)), config.budget))]
        else:
            points, seen = [], set()
            for _ in range(100 * config.budget):
                if len(points) == config.budget:
                    break
                point = {}
                for w, a in axes:
                    point[w] = draw(*a[1:], rng) if a[0] == "range" else a[1][rng.randrange(len(a[1]))]
                key = canonical(point)
                if key not in seen:
                    seen.add(key)
                    points.append(point)
            if len(points) < config.budget:
                raise SpecError(f"{where} ({label!r}): could not draw {config.budget} distinct candidates "
                                "(values are rounded to 3 significant digits)", hint="widen the ranges or lower the budget")
    return [{w: p[w] for w in paths} for p in points], located


def expand(data: dict[str, Any], config: SelectionConfig) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The spec table with every set replaced by its candidates, and the candidate axes (path
    and the values used, as :mod:`regsuite.sweeps` records its axes)."""
    sets = data.get("sets")
    if not isinstance(sets, list):
        return data, []
    expanded: list[Any] = []
    axes: dict[str, list[Any]] = {}
    for i, regset in enumerate(sets):
        where = f"sets[{i}]"
        if not isinstance(regset, dict):
            expanded.append(regset)
            continue
        for key in ("label", "reference"):
            if find_ranges(regset.get(key)) or is_range(regset.get(key)):
                raise SpecError(f"{where}.{key} cannot be a range: give a regularizer's parameter a range")
        label = regset.get("label", "")
        points, located = candidates(regset, where, config)
        if points == [{}]:
            expanded.append({**regset, "tuned_from": label})
            continue
        for point, values in zip(fill_points(regset, located, points), points):
            for w, value in values.items():
                seen = axes.setdefault(w, [])
                if value not in seen:
                    seen.append(value)
            point["label"] = f"{label} ({point_label(values)})"
            point["swept"] = values
            point["tuned_from"] = label
            expanded.append(point)
    data = dict(data)
    data["sets"] = expanded
    return data, [{"path": path, "values": values} for path, values in axes.items()]


# ---------------------------------------------------------------------------- the split


def selection_seed(seed: int) -> int:
    """The subset seed of the selection split: apart from a dataset's own ``subset_seed``."""
    digest = hashlib.sha256(f"regsuite-selection-split\0{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def selection_indices(targets: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Sorted indices of the selection split of a training split with ``targets``: class-balanced
    (:func:`regsuite.api.balanced_subset`) for one class index per sample, else a seeded random
    share (:func:`regsuite.api.random_subset`, token data). Independent of the run seed and the
    regularizers: every set and seed holds out the same samples."""
    if targets.dim() == 1:
        return api.balanced_subset(targets, fraction=fraction, seed=selection_seed(seed))
    return api.random_subset(len(targets), fraction=fraction, seed=selection_seed(seed))


def carve(split: api.Split, fraction: float, seed: int) -> tuple[api.Split, api.Split]:
    """(the training part, the selection split) of ``split``."""
    chosen = selection_indices(split.targets, fraction, seed)
    keep = torch.ones(len(split), dtype=torch.bool)
    keep[chosen] = False
    rest = keep.nonzero().flatten()
    if len(rest) == 0:
        raise DataError(f"selection.fraction = {fraction} leaves no training samples of the {len(split)} loaded",
                        hint="lower selection.fraction, or load more training data")
    return (api.Split(split.inputs[rest], split.targets[rest]),
            api.Split(split.inputs[chosen], split.targets[chosen]))
