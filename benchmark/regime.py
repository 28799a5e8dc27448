"""The data regime: does a regularizer help more when data is scarce?

For a spec whose grid sweeps a dataset parameter that changes the training-set size
(``train_fraction``, ``per_class``, ``train_limit``), :func:`tables` gives, per model, each
non-baseline set's Δ val loss against the baseline trained on the same data, at every size
(the leaderboard's Δ: paired by seed, with its 95% t interval), and how that Δ changes from
the largest training set to the smallest:

    change = Δ at the smallest size − Δ at the largest size

with a Welch t interval. The two sizes train on different data, so no seed pairs a run at
one with a run at the other: the interval is that of a difference of two independent means.
Below 0 (the interval wholly below), the set does better against the baseline with less data;
above 0, worse; an interval across 0 detects no change.

The regime figure (:func:`regsuite.plots.regime_figures`) draws the same lines. Rows are
read as the leaderboard builds them (label, dataset, model, swept values, per-seed values,
is_baseline, runs); this module never imports the leaderboard, which imports it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from regsuite import stats
from regsuite.sweeps import format_value

if TYPE_CHECKING:  # pragma: no cover
    from regsuite.leaderboard import Row

#: Dataset parameters that set the training-set size: the x axis for runs made before
#: summaries recorded ``train_size``.
SIZE_PARAMS = ("train_fraction", "per_class", "train_limit")
#: The verdicts on the change from the largest training set to the smallest.
BETTER, WORSE, NO_CHANGE, TOO_FEW = ("better with less data", "worse with less data", "no change detected",
                                     "n too small")
DELTA_KEY = "val_loss"


@dataclass
class SizeAxis:
    """Where each dataset variant sits on the training-set-size axis."""

    x_of: dict[str, Any]  # a row's dataset (variant label) → its x
    by_size: bool  # x is train_size (what the dataset loaded); else the swept value of moving[0]
    moving: list[str]  # the swept dataset headers that move the size
    context: list[str]  # the other swept dataset headers: each value of them is a line of its own
    #: x → the swept value under it, as "train_fraction=0.1" (by_size, one moving axis only)
    swept_under: dict[Any, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return "train_size" if self.by_size else self.moving[0]

    def heading(self, x: Any) -> str:
        """``1250 (train_fraction=0.1)``, ``train_fraction=0.1`` without train_size."""
        if not self.by_size:
            return f"{self.moving[0]}={format_value(x)}"
        under = self.swept_under.get(x)
        return f"{format_value(x)} ({under})" if under else format_value(x)

    def short_heading(self, x: Any) -> str:
        """``1250 (0.1)``, ``0.1`` without train_size: :meth:`heading` without the swept
        parameter's name (a terminal table names it once, in its title)."""
        under = self.swept_under.get(x) if self.by_size else None
        return f"{format_value(x)} ({under.split('=', 1)[1]})" if under else format_value(x)

    @property
    def under_name(self) -> str | None:
        """The swept parameter that :meth:`short_heading` shows in parentheses, if any."""
        return param_name(self.moving[0]) if self.by_size and self.swept_under else None


@dataclass
class Line:
    """One set (in one dataset-and-context variant) across the training-set sizes."""

    label: str  # the set, with its dataset and context values where there are several
    set_label: str
    variant: tuple[str, str]  # the (dataset, model) of its first point
    deltas: dict[Any, stats.PairedDifference] = field(default_factory=dict)  # x → Δ val loss
    per_seed: dict[Any, list[float]] = field(default_factory=dict)  # x → the paired differences
    change: stats.MeanDifference | None = None  # Δ at the smallest x − Δ at the largest

    @property
    def verdict(self) -> str:
        change = self.change
        if change is None or change.low is None:
            return TOO_FEW
        if change.high < 0:
            return BETTER
        return WORSE if change.low > 0 else NO_CHANGE


@dataclass
class Table:
    model: str
    axis: SizeAxis
    sizes: list[Any]  # every x of the lines, sorted
    lines: list[Line]

    @property
    def numeric(self) -> bool:
        return all(is_number(x) for x in self.sizes)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def train_size(row: "Row") -> int | None:
    """The training samples its runs loaded (summaries have ``train_size`` since regsuite
    recorded it); None when a run lacks it or the runs disagree."""
    sizes = {run.summary.get("train_size") for run in row.runs}
    size = sizes.pop() if len(sizes) == 1 else None
    return int(size) if is_number(size) and size > 0 else None


def dataset_of(row: "Row") -> str:
    return row.runs[0].config["dataset"]["name"] if row.runs else row.dataset


def size_axis(rows: list["Row"], headers: list[str]) -> SizeAxis | None:
    """The size axis of one model's rows, given the spec's swept dataset headers: the
    ``train_size`` their runs recorded where every variant has one, else the swept value of a
    parameter in :data:`SIZE_PARAMS`; None when no swept header moves the size."""
    variants: dict[str, tuple[dict[str, Any], set[int | None]]] = {}
    for row in rows:
        _, sizes = variants.setdefault(row.dataset, ({h: row.swept.get(h) for h in headers}, set()))
        sizes.add(train_size(row))
    swept = {name: values for name, (values, _) in variants.items()}
    if all(len(sizes) == 1 and None not in sizes for _, sizes in variants.values()):
        x_of = {name: next(iter(sizes)) for name, (_, sizes) in variants.items()}
        moving = [h for h in headers if changes_size(h, headers, swept, x_of)]
        axis = SizeAxis(x_of, True, moving, [h for h in headers if h not in moving])
        if len(moving) == 1:
            under: dict[Any, set[str]] = {}
            for name, x in x_of.items():
                if swept[name].get(moving[0]) is not None:
                    under.setdefault(x, set()).add(format_value(swept[name][moving[0]]))
            axis.swept_under = {x: f"{param_name(moving[0])}={values.pop()}" for x, values in under.items()
                                if len(values) == 1 and values != {format_value(x)}}  # not "40 (train_limit=40)"
    else:
        moving = [h for h in headers if param_name(h) in SIZE_PARAMS][:1]
        axis = SizeAxis({name: values.get(moving[0]) for name, values in swept.items()} if moving else {},
                        False, moving, [h for h in headers if h not in moving])
    return axis if axis.moving else None


def param_name(header: str) -> str:
    return header.rsplit(".", 1)[-1]


def changes_size(header: str, headers: list[str], swept: dict[str, dict[str, Any]], x_of: dict[str, int]) -> bool:
    """Whether the training-set size moves with ``header`` while the other axes stay put."""
    sizes: dict[tuple, set[int]] = {}
    for name, values in swept.items():
        others = tuple(format_value(values.get(h)) for h in headers if h != header)
        sizes.setdefault(others, set()).add(x_of[name])
    return any(len(found) > 1 for found in sizes.values())


def tables(rows: Iterable["Row"], headers: list[str], baseline: str | None, order: dict[str, int]) -> list[Table]:
    """Per model, the regime table of ``rows`` (the leaderboard's, with their Δ filled),
    given the spec's swept dataset headers and its sets' order; none without a baseline, a
    size-moving sweep or two sizes to compare."""
    if not headers or baseline is None:
        return []
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.model, []).append(row)
    out = []
    for model, members in groups.items():
        axis = size_axis(members, headers)
        table = build_table(model, members, axis, order) if axis is not None else None
        if table is not None:
            out.append(table)
    return out


def build_table(model: str, rows: list["Row"], axis: SizeAxis, order: dict[str, int]) -> Table | None:
    bases = {row.dataset: row for row in rows if row.is_baseline}
    several_datasets = len({dataset_of(row) for row in rows}) > 1
    lines: dict[tuple, Line] = {}
    for row in rows:
        delta = row.deltas.get(f"delta_{DELTA_KEY}")
        x = axis.x_of.get(row.dataset)
        if row.is_baseline or delta is None or delta.mean is None or not math.isfinite(delta.mean) or x is None:
            continue
        shown = {h: row.swept[h] for h in axis.context if h in row.swept}
        parts = [row.label, *([dataset_of(row)] if several_datasets else []),
                 *([", ".join(f"{h}={format_value(v)}" for h, v in shown.items())] if shown else [])]
        key = (order.get(row.label, len(order)), row.label, dataset_of(row), tuple(map(format_value, shown.values())))
        line = lines.setdefault(key, Line(", ".join(parts), row.label, (row.dataset, row.model)))
        line.deltas[x] = delta
        base = bases[row.dataset].by_seed.get(DELTA_KEY, {})
        mine = row.by_seed.get(DELTA_KEY, {})
        line.per_seed[x] = [mine[s] - base[s] for s in delta.seeds]
    sizes = {x for line in lines.values() for x in line.deltas}
    if len(sizes) < 2:
        return None
    numeric = all(is_number(x) for x in sizes)
    ordered = sorted(sizes, key=lambda x: float(x) if numeric else format_value(x))
    for line in lines.values():
        line.deltas = {x: line.deltas[x] for x in ordered if x in line.deltas}
        if numeric and len(line.deltas) >= 2:
            smallest, largest = next(iter(line.deltas)), list(line.deltas)[-1]
            line.change = stats.mean_difference(line.per_seed[smallest], line.per_seed[largest])
    return Table(model, axis, ordered, [lines[k] for k in sorted(lines)])
