"""Leaderboards from the results store: one row per (dataset, model, regularizer set),
aggregated over seeds, rendered with rich, as GitHub markdown (tabulate), CSV or JSON.

"train loss" is the data loss alone (cross-entropy, mean over the epoch's batches, in
training mode), never the data loss plus a penalty, so an L2 row compares with the none
row; the penalty is stored apart as ``train_penalty``.

A board has three sections, each a table:

- ``main``: final train loss, val loss, gap and the task's declared metrics, each as
  mean ± standard deviation over seeds, and Δ val loss / Δ gap against the baseline row,
  paired by seed, with a t confidence interval (:mod:`regsuite.stats`);
- ``diagnostics``: where overfitting sets in — the epoch of minimum val loss, the val loss
  there, how far val loss rose after it, and the gap at the best and at the final epoch;
- ``reference``: the spec's ``reference`` values (the study's Table 1, say) beside the
  measured means.

A spec that sweeps the training-set size (``train_fraction``, say) adds the ``regime`` table
(:mod:`regsuite.regime`): per set, its Δ val loss at each size and how that Δ changes from the
largest training set to the smallest, with a verdict.

A spec with ``[selection]`` (:mod:`regsuite.selection`) adds the ``tuned`` table: per set (its
candidates grouped by ``tuned_from``) the candidate with the lowest mean selection loss over
seeds, that candidate's metrics on the held-out split (val, or test where the runs have one),
and the paired Δ held-out loss against the tuned baseline's chosen candidate. The spec's claims
are then judged on the tuned rows.
"""
from __future__ import annotations

import csv
import io
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from regsuite import claims as claim_checks
from regsuite import regime as regimes
from regsuite import stats
from regsuite.errors import RegsuiteError, at_most
from regsuite.store import RunRecord, Store

SECTIONS = {
    "main": "Final epoch, mean ± std over seeds; Δ against the baseline",
    "diagnostics": "Overfitting diagnostics (best epoch = epoch of minimum val loss)",
    "reference": "Measured beside the spec's reference values",
}


@dataclass(frozen=True)
class Column:
    key: str
    header: str  # markdown, CSV and error messages
    short: str = ""  # rich header: the terminal table has to fit ~120 columns
    lower_is_better: bool = True
    digits: int = 3
    kind: str = "stat"  # stat: mean ± std over seeds; delta: paired Δ vs baseline; reference: a spec value
    section: str = "main"

    @property
    def rich_header(self) -> str:
        return self.short or self.header


@dataclass
class Row:
    label: str
    dataset: str
    model: str
    reference: dict[str, float]
    runs: list[RunRecord] = field(default_factory=list)
    expected: int = 0
    by_seed: dict[str, dict[int, float]] = field(default_factory=dict)
    deltas: dict[str, stats.PairedDifference] = field(default_factory=dict)
    is_baseline: bool = False
    #: The values of the spec's swept axes this row stands for, by column header.
    swept: dict[str, Any] = field(default_factory=dict)
    #: The dataset and model as the main table shows them: without the parameters that have a
    #: swept column of their own (None: as ``dataset`` and ``model``).
    shown_dataset: str | None = None
    shown_model: str | None = None

    def __post_init__(self) -> None:
        self.shown_dataset = self.shown_dataset or self.dataset
        self.shown_model = self.shown_model or self.model

    @property
    def n(self) -> int:
        return len(self.runs)

    def stat(self, key: str) -> stats.Described:
        return stats.describe(list(self.by_seed.get(key, {}).values()))

    def mean(self, key: str) -> float | None:
        return self.stat(key).mean

    def std(self, key: str) -> float | None:
        return self.stat(key).std

    def value(self, column: Column) -> float | None:
        """The number this row is ranked by in ``column``."""
        if column.kind == "delta":
            delta = self.deltas.get(column.key)
            return delta.mean if delta is not None else None
        if column.kind == "reference":
            return reference_values(self.reference).get(column.key.removeprefix("ref_"))
        return self.mean(column.key)


@dataclass
class Leaderboard:
    spec_name: str
    task: str
    baseline: str | None
    columns: list[Column]
    rows: list[Row]
    missing: list[str]
    show_dataset: bool
    show_model: bool
    sorted_by: str | None = None
    swept_headers: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    claims: list[claim_checks.JudgedClaim] = field(default_factory=list)
    #: The tuned table of a spec with [selection] (None without one).
    tuned: list["TunedRow"] | None = None
    #: Per model, the data-regime table of a spec that sweeps the training-set size.
    regime: list[regimes.Table] = field(default_factory=list)

    @property
    def dataset_column(self) -> bool:
        """Whether the main table needs a dataset column: rows differ in more than swept values."""
        return len({r.shown_dataset for r in self.rows}) > 1

    @property
    def model_column(self) -> bool:
        return len({r.shown_model for r in self.rows}) > 1

    @property
    def title(self) -> str:
        first = self.rows[0]
        parts = [self.task]
        if not self.dataset_column:
            parts.append(first.shown_dataset)
        if not self.model_column:
            parts.append(first.shown_model)
        return f"{self.spec_name} — {' / '.join(parts)}"

    def section(self, name: str) -> list[Column]:
        return [c for c in self.columns if c.section == name]


LOSS_COLUMNS = [
    Column("train_loss", "train loss"),
    Column("val_loss", "val loss"),
    Column("gap", "gap (val − train)", "gap"),
]
DELTA_COLUMNS = [
    Column("delta_val_loss", "Δ val loss [95% CI]", "Δ val loss\n[95% CI]", kind="delta"),
    Column("delta_gap", "Δ gap [95% CI]", "Δ gap\n[95% CI]", kind="delta"),
]
DIAGNOSTIC_COLUMNS = [
    Column("best_epoch", "best epoch", digits=1, section="diagnostics"),
    Column("epochs_run", "epochs run", lower_is_better=False, digits=1, section="diagnostics"),
    Column("best_val_loss", "val loss at best", section="diagnostics"),
    Column("val_rise", "val loss rise after best (final − best)", "val rise after best", section="diagnostics"),
    Column("gap_at_best", "gap at best epoch", "gap at best", section="diagnostics"),
    Column("gap", "gap at final epoch", "gap at final", section="diagnostics"),
    Column("wall_time", "wall s", "wall s", digits=1, section="diagnostics"),
]
REFERENCE_ORDER = ("train_loss", "val_loss", "gap")


def run_values(record: RunRecord) -> dict[str, float]:
    """Every number one finished run contributes to its row."""
    s = record.summary
    final = s.get("final", {})
    values = {
        "train_loss": final.get("train_loss"),
        "val_loss": final.get("val_loss"),
        "gap": s.get("gap"),
        "train_penalty": final.get("train_penalty"),
        "best_epoch": s.get("best_epoch"),
        "best_val_loss": s.get("best_val_loss"),
        "gap_at_best": s.get("gap_at_best"),
        "epochs_run": s.get("epochs_run"),
        "wall_time": record.wall_time,
    }
    if values["val_loss"] is not None and values["best_val_loss"] is not None:
        values["val_rise"] = values["val_loss"] - values["best_val_loss"]
    if "sel_loss" in final:  # a spec with [selection]: the candidate's selection split
        values["sel_loss"] = final["sel_loss"]
    for metric in s.get("metrics", []):
        for split in ("train", "val", "sel"):
            values[f"{split}_{metric['key']}"] = final.get(f"{split}_{metric['key']}")
        if f"test_{metric['key']}" in s.get("test", {}):
            values[f"test_{metric['key']}"] = s["test"][f"test_{metric['key']}"]
    return {k: float(v) for k, v in values.items() if v is not None}


def reference_values(reference: dict[str, float]) -> dict[str, float]:
    """The spec's reference values, plus the reference gap when both losses are given."""
    values = dict(reference)
    if "train_loss" in values and "val_loss" in values and "gap" not in values:
        values["gap"] = values["val_loss"] - values["train_loss"]
    return values


def build(store: Store, spec_name: str, sort: str | None = "val_loss",
          where: dict[str, str] | None = None) -> Leaderboard:
    """The leaderboard of ``spec_name``; ``where`` keeps the rows whose swept values match
    (``{"weight": "0.0001"}``; a row without that axis, the baseline say, stays)."""
    info = store.spec_info(spec_name)
    if info is None:
        known = ", ".join(store.spec_names()) or "none"
        raise RegsuiteError(f"no results for spec {spec_name!r} in {store.path}", hint=f"specs with results: {known}")
    rows, missing, statuses = collect_rows(store, spec_name, info["spec"])
    all_rows = dict(rows)  # the tuned table chooses among every candidate, whatever --where keeps
    headers = swept_headers(info["spec"])
    if where:
        rows = select_rows(rows, where, headers)
    finished = [r for r in rows.values() if r.runs]
    if not finished:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
        raise RegsuiteError(
            f"spec {spec_name!r} has no finished runs yet ({counts})",
            hint=f"run it: regsuite run specs/{spec_name}.toml",
            details=at_most(missing),
        )
    board = Leaderboard(
        spec_name=spec_name,
        task=finished[0].runs[0].config["task"]["name"],
        baseline=info["baseline"],
        columns=[],
        rows=finished,
        missing=missing,
        show_dataset=len({r.dataset for r in finished}) > 1,
        show_model=len({r.model for r in finished}) > 1,
        swept_headers=list(headers.values()),
    )
    has_deltas = compare_with_baseline(board)
    board.columns = columns_for(finished, has_deltas, info)
    dataset_headers = [h for path, h in headers.items() if axis_kind(path) == "dataset"]
    board.regime = regimes.tables(finished, list(dict.fromkeys(dataset_headers)), board.baseline,
                                  {s.get("label"): i for i, s in enumerate(info["spec"].get("sets", []))})
    if info["spec"].get("selection"):
        board.tuned = tuned_rows(all_rows, info["spec"], info["baseline"])
        board.claims = judge_tuned_claims(board, info)
        if board.claims:
            board.notes.append("claims are judged on the tuned table (each set's chosen candidate)")
    else:
        board.claims = judge_claims(board, info, rows)
    board.notes += identical_training_notes(finished)
    if sort:
        sort_rows(board, sort)
    return board


#: The final values two runs must share, to the last bit, to count as having trained alike.
SAME_TRAINING_KEYS = ("train_loss", "val_loss", "train_penalty", "best_val_loss", "epochs_run")


def identical_training_notes(rows: list[Row]) -> list[str]:
    """A note for each row that trained exactly like an earlier row of its group on every seed
    both have (the same final losses to the last bit): whatever sets the two apart, an early
    stop that never came or a constraint that never bound, changed nothing in these runs."""
    seen: dict[tuple, list[int]] = {}  # (dataset, model, seed, final values) → indexes of rows
    notes = []
    for index, row in enumerate(rows):
        finals = {seed: final_values(row, seed) for seed in row.by_seed.get("val_loss", {})}
        candidates = sorted({i for seed, values in finals.items() for i in seen.get((row.dataset, row.model, seed, values), [])})
        for other in (rows[i] for i in candidates):
            seeds = sorted(set(finals) & set(other.by_seed.get("val_loss", {})))
            if all(final_values(other, seed) == finals[seed] for seed in seeds):
                listed = ", ".join(map(str, seeds))
                notes.append(f"{row.label!r} trained exactly as {other.label!r} (every final loss equal to the last "
                             f"bit, seed{'s' if len(seeds) > 1 else ''} {listed}): what sets the two apart changed "
                             "nothing in these runs")
                break
        for seed, values in finals.items():
            seen.setdefault((row.dataset, row.model, seed, values), []).append(index)
    return notes


def final_values(row: Row, seed: int) -> tuple:
    return tuple(row.by_seed.get(key, {}).get(seed) for key in SAME_TRAINING_KEYS)


def judge_claims(board: Leaderboard, info: dict[str, Any], rows: dict[tuple[str, str, str], Row]) -> list:
    """Every claim of the stored spec, judged within each (dataset, model) group."""
    labels = [s["label"] for s in info["spec"].get("sets", [])]
    return judge_stated(board, info, labels, ((d, m, label, row.by_seed) for (d, m, label), row in rows.items()))


def judge_stated(board: Leaderboard, info: dict[str, Any], labels: list[str],
                 entries: Iterable[tuple[str, str, str, dict[str, dict[int, float]]]]) -> list:
    """The stored spec's claims, judged on ``entries`` (dataset, model, row label, per-seed
    values), each (dataset, model) group apart when the board shows several."""
    stated = info["spec"].get("claims") or []
    if not stated:
        return []
    groups: dict[str, dict[str, dict[str, dict[int, float]]]] = {}
    several = board.show_dataset or board.show_model
    for dataset, model, label, by_seed in entries:
        group = f"{dataset} / {model}" if several else ""
        groups.setdefault(group, {})[label] = by_seed
    return [claim_checks.judge(claim, groups, labels) for claim in stated]


def collect_rows(store: Store, spec_name: str, spec: dict[str, Any]) -> tuple[dict[tuple[str, str, str], Row], list[str], Counter]:
    rows: dict[tuple[str, str, str], Row] = {}
    missing: list[str] = []
    statuses: Counter = Counter()
    entries = store.spec_rows(spec_name)
    filled = {kind: with_defaults(kind, [record.config[kind] for _, _, record in entries], spec) for kind in ("dataset", "model")}
    variants = {kind: plugin_variants(filled[kind]) for kind in ("dataset", "model")}
    filled["training"] = with_defaults("training", [{"name": "training", "params": r.config["training"]} for _, _, r in entries],
                                       spec)
    trainings = plugin_variants(filled["training"])
    headers = swept_headers(spec)
    in_columns = {kind: {path.rsplit(".", 1)[-1] for path in headers if axis_kind(path) == kind}
                  for kind in ("dataset", "model", "training")}
    set_values = {s["label"]: s.get("swept", {}) for s in spec.get("sets", [])}
    for index, (label, reference, record) in enumerate(entries):
        c = {**record.config, "dataset": filled["dataset"][index], "model": filled["model"][index],
             "training": filled["training"][index]["params"]}
        model = model_label(c["model"], variants["model"], filled["training"][index], trainings, {})
        key = (plugin_label(c["dataset"], variants["dataset"]), model, label)
        row = rows.get(key)
        if row is None:  # the row's first run: what the tables show of it
            row = rows[key] = Row(
                label, key[0], key[1], reference, swept=swept_values(headers, c, set_values.get(label, {})),
                shown_dataset=plugin_label(c["dataset"], variants["dataset"], in_columns["dataset"]),
                shown_model=model_label(c["model"], variants["model"], filled["training"][index], trainings, in_columns))
        row.expected += 1
        statuses[record.status] += 1
        if record.status == "done":
            row.runs.append(record)
            for name, value in run_values(record).items():
                row.by_seed.setdefault(name, {})[record.seed] = value
        else:
            missing.append(f"{key[0]} / {key[1]} / {label} / seed {record.seed}: {record.status}")
    return rows, missing, statuses


def swept_headers(spec: dict[str, Any]) -> dict[str, str]:
    """Each swept axis's path → its column header: the swept key (``weight``, ``lr``), or the
    whole path where two axes share a key."""
    paths = [axis["path"] for axis in spec.get("sweeps") or []]
    keys = [path.rsplit(".", 1)[-1] for path in paths]
    return {path: key if keys.count(key) == 1 else path for path, key in zip(paths, keys)}


def model_label(model: dict[str, Any], variants: dict[str, list[dict[str, Any]]], training: dict[str, Any],
                trainings: dict[str, list[dict[str, Any]]], hidden: dict[str, set[str]]) -> str:
    """The model's label, followed by its training setting's where the grid has several (each
    pairs with its own baseline); ``hidden`` keys by kind are left out (see plugin_label)."""
    label = plugin_label(model, variants, hidden.get("model", ()))
    setting = plugin_label(training, trainings, hidden.get("training", ()))
    return label if setting == "training" else f"{label} {setting.removeprefix('training ')}"


def axis_kind(path: str) -> str:
    """What a swept axis's path varies: ``sets``, ``training``, ``dataset`` or ``model``."""
    if path.startswith("sets["):
        return "sets"
    if path.startswith("training"):
        return "training"
    return "dataset" if path.startswith("dataset") else "model"


def swept_values(headers: dict[str, str], config: dict[str, Any], set_swept: dict[str, Any]) -> dict[str, Any]:
    """A run's values on the swept axes, by header; axes that do not apply to it are left out."""
    values = {}
    for path, header in headers.items():
        key = path.rsplit(".", 1)[-1]
        kind = axis_kind(path)
        if kind == "sets":
            found = path in set_swept
            value = set_swept.get(path)
        elif kind == "training":
            found, value = key in config["training"], config["training"].get(key)
        else:
            params = config[kind].get("params", {})
            found, value = key in params, params.get(key)
        if found:
            values[header] = value
    return values


def shown_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def select_rows(rows: dict[tuple[str, str, str], Row], where: dict[str, str],
                headers: dict[str, str]) -> dict[tuple[str, str, str], Row]:
    known = sorted(set(headers.values()))
    for name in where:
        if name not in known:
            raise RegsuiteError(f"--where {name}=…: {name!r} is not a swept value of this spec",
                                hint=f"swept: {', '.join(known)}" if known else "this spec sweeps nothing")
    return {key: row for key, row in rows.items()
            if all(name not in row.swept or same_value(row.swept[name], wanted) for name, wanted in where.items())}


def same_value(value: Any, wanted: str) -> bool:
    """``1e-4`` matches 0.0001; other values compare as shown."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return math.isclose(float(wanted), float(value), rel_tol=1e-9)
        except ValueError:
            return False
    return shown_value(value) == wanted


def with_defaults(kind: str, refs: list[dict[str, Any]], spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Each plugin reference (``kind``: dataset, model, or the training settings) with every
    parameter that another reference to the same plugin sets, where the spec as stored gives
    its value. A stored config leaves out parameters added after its run was planned (its run
    key must not change): without this, such a run would be a variant of its own, labelled
    with nothing, and split from its seeds."""
    held: dict[str, dict[str, set[str]]] = {}  # name → key → the values the refs that set it hold
    for ref in refs:
        for key, value in ref.get("params", {}).items():
            held.setdefault(ref["name"], {}).setdefault(key, set()).add(json.dumps(value, sort_keys=True))
    written = spec_entries(spec, kind)
    out = []
    for ref in refs:
        params = ref.get("params", {})
        missing = set(held.get(ref["name"], {})) - set(params)
        if missing:
            fill = written_values(ref["name"], params, {k: held[ref["name"]][k] for k in missing}, written)
            ref = {**ref, "params": {**fill, **params}}
        out.append(ref)
    return out


def spec_entries(spec: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The stored spec's plugin references of ``kind`` (its training settings for ``training``)."""
    if kind == "training":
        return [{"name": "training", "params": dict(t)} for t in spec.get("trainings") or [spec.get("training") or {}]]
    items = spec.get(f"{kind}s") or [spec.get(kind)]
    return [{"name": item["name"], "params": {k: v for k, v in item.items() if k != "name"}}
            for item in items if isinstance(item, dict) and "name" in item]


def written_values(name: str, params: dict[str, Any], missing: dict[str, set[str]],
                   written: list[dict[str, Any]]) -> dict[str, Any]:
    """The value of each missing key. Where the spec writes it: among its entries that agree
    with ``params`` wherever both have a value, the one value no other run holds explicitly
    (the other runs are the other points of a sweep). Where the spec writes it nowhere, every
    run it plans has the parameter's default, so the one value the runs that hold it hold.
    Not filled when that is not one value."""
    matching = [w["params"] for w in written if w["name"] == name
                and all(w["params"][k] == v for k, v in params.items() if k in w["params"])]
    fill = {}
    for key, taken in sorted(missing.items()):
        values = {json.dumps(m[key], sort_keys=True) for m in matching if key in m}
        if not any(key in w["params"] for w in written if w["name"] == name):
            values = set(taken)
        left = values - taken if len(values) > 1 else values
        if len(left) == 1:
            fill[key] = json.loads(left.pop())
    return fill


def plugin_variants(refs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The distinct parameter sets each plugin name appears with."""
    variants: dict[str, list[dict[str, Any]]] = {}
    for ref in refs:
        seen = variants.setdefault(ref["name"], [])
        if ref.get("params", {}) not in seen:
            seen.append(ref.get("params", {}))
    return variants


def plugin_label(ref: dict[str, Any], variants: dict[str, list[dict[str, Any]]], hidden: Iterable[str] = ()) -> str:
    """``small_cnn``, or ``small_cnn (width=8)`` when the grid holds it with other parameters
    (so that two variants never share a row, nor their seeds a pairing). ``hidden`` parameters
    are left out of the label (they have a column of their own)."""
    params = ref.get("params", {})
    others = variants.get(ref["name"], [])
    varying = [k for k in sorted(params) if k not in hidden and any(o.get(k) != params[k] for o in others)]
    if len(others) <= 1 or not varying:
        return ref["name"]
    return f"{ref['name']} ({', '.join(f'{k}={params[k]}' for k in varying)})"


def compare_with_baseline(board: Leaderboard) -> bool:
    """Fill each row's paired Δ against the baseline row of the same dataset and model.
    Returns whether any row got a Δ."""
    if board.baseline is None:
        board.notes.append('no baseline row (a set labelled "none", or baseline = "<label>" in the spec), '
                           "so there is no Δ column")
        return False
    baselines = {(r.dataset, r.model): r for r in board.rows if r.label == board.baseline}
    if not baselines:
        board.notes.append(f"the baseline row {board.baseline!r} has no finished runs, so there is no Δ column")
        return False
    for row in board.rows:
        base = baselines.get((row.dataset, row.model))
        if base is None:
            continue
        row.is_baseline = row is base
        if row.is_baseline:
            continue
        for key in ("val_loss", "gap"):
            row.deltas[f"delta_{key}"] = stats.paired_difference(row.by_seed.get(key, {}), base.by_seed.get(key, {}))
    return len(board.rows) > 1


def columns_for(rows: list[Row], has_deltas: bool, info: dict[str, Any]) -> list[Column]:
    metrics: dict[str, dict] = {}
    for row in rows:
        for run in row.runs:
            for metric in run.summary.get("metrics", []):
                metrics.setdefault(metric["key"], metric)
    present = {key for row in rows for key in row.by_seed}
    columns = list(LOSS_COLUMNS)
    for split in ("val", "test"):
        for key, metric in metrics.items():
            if f"{split}_{key}" in present:
                columns.append(Column(f"{split}_{key}", f"{split} {metric['label']}",
                                      lower_is_better=not metric["higher_is_better"]))
    if has_deltas:
        columns += DELTA_COLUMNS
    planned_epochs = info["spec"].get("training", {}).get("epochs")
    stopped_early = any(v != planned_epochs for r in rows for v in r.by_seed.get("epochs_run", {}).values())
    columns += [c for c in DIAGNOSTIC_COLUMNS if c.key in present and (c.key != "epochs_run" or stopped_early)]
    columns += reference_columns(rows, columns)
    return columns


def reference_columns(rows: list[Row], measured: list[Column]) -> list[Column]:
    """For each reference key: the measured column, then the reference value beside it."""
    keys = {key for row in rows for key in reference_values(row.reference)}
    ordered = [k for k in REFERENCE_ORDER if k in keys] + sorted(keys - set(REFERENCE_ORDER))
    by_key: dict[str, Column] = {}
    for column in measured:
        if column.kind == "stat":
            by_key.setdefault(column.key, column)  # the main table's header, not a diagnostic's
    columns = []
    for key in ordered:
        base = by_key.get(key, Column(key, key.replace("_", " ")))
        name = base.header.split(" (")[0]
        columns.append(Column(key, name, base.rich_header, base.lower_is_better, base.digits, section="reference"))
        columns.append(Column(f"ref_{key}", f"reference {name}", f"ref. {name}", base.lower_is_better, base.digits,
                              kind="reference", section="reference"))
    return columns


def sort_keys(board: Leaderboard) -> list[str]:
    keys = ["label"]
    for column in board.columns:
        if column.key not in keys:
            keys.append(column.key)
    return keys


def sort_rows(board: Leaderboard, key: str) -> None:
    by_key = {c.key: c for c in board.columns}
    if key not in by_key and key != "label":
        raise RegsuiteError(f"cannot sort by {key!r}: no such column in {board.spec_name!r}",
                            hint=f"choose one of: {', '.join(sort_keys(board))}")
    board.sorted_by = key
    # Rows rank within their (dataset, model) group, as each group has its own baseline.
    groups: dict[tuple[str, str], int] = {}
    for row in board.rows:
        groups.setdefault((row.dataset, row.model), len(groups))
    if key == "label":
        board.rows.sort(key=lambda r: (groups[(r.dataset, r.model)], r.label))
        return
    column = by_key[key]
    sign = 1 if column.lower_is_better else -1

    def order(row: Row) -> tuple[int, bool, float]:
        value = row.value(column)
        if value is None and column.kind == "delta" and row.is_baseline:
            value = 0.0  # the baseline differs from itself by nothing
        if value is not None and not math.isfinite(value):
            value = None  # a diverged row (NaN, ±inf) ranks last, as one without the value
        return (groups[(row.dataset, row.model)], value is None, sign * value if value is not None else 0.0)

    board.rows.sort(key=order)


# ---------------------------------------------------------------------------- tuned


TUNED_CAPTION = ("Tuned: per set the candidate with the lowest mean selection loss over seeds, "
                 "measured on the held-out split; Δ against the tuned baseline")


@dataclass
class TunedRow:
    """One set of a tuned comparison: its candidates (rows of the main table) and the one chosen."""

    label: str  # the set's own label (the candidates' tuned_from)
    dataset: str
    model: str
    candidates: list[Row]
    chosen: Row | None = None
    #: The chosen candidate's mean selection loss over its seeds.
    sel_loss: stats.Described | None = None
    #: "val", or "test" where the chosen candidate's runs have a test split.
    held_out: str = "val"
    #: Per-seed values on the held-out split: heldout_loss, heldout_gap, heldout_<metric>.
    by_seed: dict[str, dict[int, float]] = field(default_factory=dict)
    delta: stats.PairedDifference | None = None
    is_baseline: bool = False

    @property
    def n(self) -> int:
        return self.chosen.n if self.chosen is not None else 0

    def stat(self, key: str) -> stats.Described:
        return stats.describe(list(self.by_seed.get(key, {}).values()))


def choose(candidates: list[Row]) -> tuple[Row | None, stats.Described | None]:
    """The candidate with the lowest mean selection loss over its seeds (the first of equals);
    candidates without a finished run (or a selection loss) cannot be chosen."""
    best, best_stat = None, None
    for row in candidates:
        described = row.stat("sel_loss")
        if described.mean is None or not math.isfinite(described.mean):
            continue
        if best_stat is None or described.mean < best_stat.mean:
            best, best_stat = row, described
    return best, best_stat


def held_out_values(row: Row) -> tuple[str, dict[str, dict[int, float]]]:
    """The chosen candidate's per-seed numbers on the split the choice never saw: test where its
    runs have one, else val (a run of a spec with [selection] never trains or chooses on val)."""
    split = "test" if all("test_loss" in run.summary.get("test", {}) for run in row.runs) and row.runs else "val"
    values: dict[str, dict[int, float]] = {}
    for run in row.runs:
        final, test = run.summary.get("final", {}), run.summary.get("test", {})
        source = test if split == "test" else final
        for key, value in source.items():
            if key.startswith(f"{split}_") and isinstance(value, (int, float)):
                values.setdefault("heldout_" + key.removeprefix(f"{split}_"), {})[run.seed] = float(value)
        if f"{split}_loss" in source and "train_loss" in final:
            values.setdefault("heldout_gap", {})[run.seed] = float(source[f"{split}_loss"]) - float(final["train_loss"])
    return split, values


def tuned_rows(rows: dict[tuple[str, str, str], Row], spec: dict[str, Any], baseline: str | None) -> list[TunedRow]:
    """Group the candidates by (dataset, model, tuned_from), choose, and pair with the baseline."""
    tuned_from = {s["label"]: s.get("tuned_from") or s["label"] for s in spec.get("sets", [])}
    order = {label: i for i, label in enumerate(tuned_from)}
    groups: dict[tuple[str, str, str], TunedRow] = {}
    for (dataset, model, label), row in sorted(rows.items(), key=lambda item: order.get(item[0][2], len(order))):
        key = (dataset, model, tuned_from.get(label, label))
        groups.setdefault(key, TunedRow(key[2], dataset, model, [])).candidates.append(row)
    for tuned in groups.values():
        tuned.chosen, tuned.sel_loss = choose(tuned.candidates)
        if tuned.chosen is not None:
            tuned.held_out, tuned.by_seed = held_out_values(tuned.chosen)
    bases = {(t.dataset, t.model): t for t in groups.values() if t.label == baseline and t.chosen is not None}
    for tuned in groups.values():
        base = bases.get((tuned.dataset, tuned.model))
        if base is None or tuned.chosen is None:
            continue
        tuned.is_baseline = tuned is base
        if not tuned.is_baseline:
            tuned.delta = stats.paired_difference(tuned.by_seed.get("heldout_loss", {}), base.by_seed.get("heldout_loss", {}))
    return list(groups.values())


def judge_tuned_claims(board: Leaderboard, info: dict[str, Any]) -> list:
    """The spec's claims, judged on each tuned set's chosen candidate (by the set's label)."""
    if not board.tuned:
        return []
    labels = list(dict.fromkeys(s.get("tuned_from") or s["label"] for s in info["spec"].get("sets", [])))
    return judge_stated(board, info, labels, ((t.dataset, t.model, t.label, t.chosen.by_seed)
                                              for t in board.tuned if t.chosen is not None))


def tuned_metrics(board: Leaderboard) -> list[tuple[str, str]]:
    """(key, label) of the task's metrics the held-out split has, e.g. ("accuracy", "accuracy")."""
    metrics: dict[str, str] = {}
    for tuned in board.tuned or []:
        for run in tuned.chosen.runs if tuned.chosen is not None else []:
            for metric in run.summary.get("metrics", []):
                if f"heldout_{metric['key']}" in tuned.by_seed:
                    metrics.setdefault(metric["key"], metric["label"])
    return list(metrics.items())


def chosen_values(tuned: TunedRow) -> str:
    """``weight=3.16e-05, p=0.25``: the chosen candidate's values, as its label shows them."""
    if tuned.chosen is None:
        return "—"
    label = tuned.chosen.label
    if label == tuned.label:
        return "(as given)" if len(tuned.candidates) == 1 else label
    return label.removeprefix(tuned.label).strip().removeprefix("(").removesuffix(")")


def described_cell(described: stats.Described | None, digits: int = 3) -> str:
    mean, spread = described_parts(described, digits)
    return f"{mean} {spread}".strip()


def tuned_table(board: Leaderboard) -> tuple[list[str], list[list[str]]]:
    """Headers and plain-text cells of the tuned table (the Δ cell is mean and interval)."""
    metrics = tuned_metrics(board)
    heads = ["set"] + (["dataset"] if board.show_dataset else []) + (["model"] if board.show_model else [])
    heads += ["chosen", "candidates", "n", "sel loss", "held-out", "held-out loss",
              *(f"held-out {label}" for _, label in metrics), "gap (held-out − train)", "Δ held-out loss [95% CI]"]
    out = []
    for tuned in board.tuned or []:
        cells = [tuned.label + (" (baseline)" if tuned.is_baseline else "")]
        cells += [tuned.dataset] if board.show_dataset else []
        cells += [tuned.model] if board.show_model else []
        finished = sum(1 for c in tuned.candidates if c.runs)
        mean, interval = difference_parts(tuned.delta, tuned.is_baseline, 3)
        n = f"{tuned.n}" if tuned.chosen is None or tuned.n == tuned.chosen.expected else f"{tuned.n}/{tuned.chosen.expected}"
        cells += [chosen_values(tuned), f"{finished}" if finished == len(tuned.candidates) else f"{finished}/{len(tuned.candidates)}",
                  n, described_cell(tuned.sel_loss), tuned.held_out, described_cell(tuned.stat("heldout_loss")),
                  *(described_cell(tuned.stat(f"heldout_{key}")) for key, _ in metrics),
                  described_cell(tuned.stat("heldout_gap")), f"{mean} {interval}".strip()]
        out.append(cells)
    return heads, out


def tuned_records(board: Leaderboard) -> list[dict[str, Any]]:
    """One flat record per tuned set: the choice, every held-out value's mean, std and n, the Δ."""
    out = []
    for tuned in board.tuned or []:
        chosen = tuned.chosen
        item: dict[str, Any] = {
            "spec": board.spec_name, "set": tuned.label, "dataset": tuned.dataset, "model": tuned.model,
            "chosen": chosen.label if chosen is not None else None,
            "chosen_swept": dict(chosen.swept) if chosen is not None else {},
            "candidates": len(tuned.candidates), "candidates_finished": sum(1 for c in tuned.candidates if c.runs),
            "seeds": tuned.n, "baseline": tuned.is_baseline, "held_out": tuned.held_out,
            "sel_loss": tuned.sel_loss.mean if tuned.sel_loss else None,
            "sel_loss_std": tuned.sel_loss.std if tuned.sel_loss else None,
        }
        for key in sorted(tuned.by_seed):
            described = tuned.stat(key)
            item[key], item[f"{key}_std"], item[f"{key}_n"] = described.mean, described.std, described.n
        d = tuned.delta
        item["delta_heldout_loss"] = d.mean if d else None
        item["delta_heldout_loss_ci_low"] = d.low if d else None
        item["delta_heldout_loss_ci_high"] = d.high if d else None
        item["delta_heldout_loss_n"] = d.n if d else 0
        out.append(item)
    return out


def tuned_notes(board: Leaderboard) -> list[str]:
    return [
        "Tuned: each set's candidates trained on the training split minus the selection split; chosen = the "
        "candidate with the lowest mean selection loss (sel loss) over seeds, the first of equals; held-out = the "
        "split the choice never saw (test where the data has one, else val); Δ held-out loss = chosen − the "
        "tuned baseline's chosen, paired by seed, 95% t interval.",
    ]


REGIME_CHANGE = "smallest − largest [95% CI]"
REGIME_VERDICT = "with less data"


def regime_caption(board: Leaderboard, table: regimes.Table) -> str:
    where = f" ({table.model})" if len(board.regime) > 1 else ""
    return (f"Data regime{where}: Δ val loss against {board.baseline!r} at each training-set size "
            f"({table.axis.name}), and how it changes from the largest to the smallest")


def regime_cells(table: regimes.Table) -> tuple[list[str], list[list[str]]]:
    """Headers and plain-text cells of one regime table: a Δ cell per size, the change, the verdict."""
    heads = ["regularizers", *(f"Δ at {table.axis.heading(x)}" for x in table.sizes), REGIME_CHANGE, REGIME_VERDICT]
    rows = []
    for line in table.lines:
        differences = [line.deltas.get(x) for x in table.sizes] + [line.change]
        rows.append([line.label, *map(difference_cell, differences), line.verdict])
    return heads, rows


def difference_cell(difference: stats.PairedDifference | stats.MeanDifference | None) -> str:
    """``-0.185 [-0.293, -0.078]``, ``-0.036 (n too small)``, or ``—``."""
    if difference is None:
        return "—"
    mean, interval = difference_parts(difference, False, 3)
    return f"{mean} ({interval})" if interval == "n too small" else f"{mean} {interval}".strip()


def regime_emphasis(table: regimes.Table) -> list[list[bool]]:
    """Per line, per number cell (each size's Δ, then the change): whether its interval excludes 0."""
    return [[x in line.deltas and line.deltas[x].excludes_zero for x in table.sizes]
            + [line.change is not None and line.change.excludes_zero] for line in table.lines]


def regime_records(board: Leaderboard) -> list[dict[str, Any]]:
    """One record per regime line: its Δ at every size, the change and the verdict."""
    out = []
    for table in board.regime:
        for line in table.lines:
            c = line.change
            out.append({
                "spec": board.spec_name, "model": table.model, "set": line.set_label, "line": line.label,
                "size_axis": table.axis.name,
                "deltas": [{"size": x, "delta_val_loss": d.mean, "ci_low": d.low, "ci_high": d.high, "n": d.n}
                           for x, d in line.deltas.items()],
                "change": c.mean if c else None, "change_ci_low": c.low if c else None,
                "change_ci_high": c.high if c else None, "verdict": line.verdict,
            })
    return out


def regime_notes(board: Leaderboard) -> list[str]:
    return [
        "Data regime: each size's Δ val loss is the main table's (set − baseline on the same training data, paired "
        f"by seed, 95% t interval); {REGIME_CHANGE} = the set's Δ at its smallest training set minus its Δ at its "
        "largest, with a Welch t interval (the two sizes train on different data, so no seed pairs them). "
        f"The verdict ({REGIME_VERDICT}) is '{regimes.BETTER}' when that interval lies below 0 (the set gains on the "
        f"baseline as data shrinks), '{regimes.WORSE}' above 0, '{regimes.NO_CHANGE}' across 0.",
    ]


# ---------------------------------------------------------------------------- user text

# Labels, claim texts, plugin names and parameters, descriptions and paths are shown as they
# were written: rich gets them as ``Text`` (never markup), markdown escaped (never structure).

_MD_LINE_BREAK = re.compile(r"\r\n|[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]")
# Backslash and the characters of inline markup; ``_`` only where it could open emphasis
# (not inside small_cnn); ``<`` where it could open an HTML tag, comment or autolink;
# ``&`` where it would start an entity.
_MD_SPECIAL = re.compile(r"[\\`*\[\]|#~$]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])|<(?=[A-Za-z/!?])|&(?=#?[A-Za-z0-9]+;)")
_MD_STRUCTURAL = re.compile(r"[\\|]|<(?=[A-Za-z/!?])|&(?=#?[A-Za-z0-9]+;)")
_MD_BLOCK_START = re.compile(r"^(?:[>+=-]|\d+(?=[.)]))")  # what would open a quote, list or heading line


def one_line(text: Any) -> str:
    """``text`` on one line: every line break becomes a space."""
    return _MD_LINE_BREAK.sub(" ", str(text))


def md_text(text: Any, block_start: bool = False) -> str:
    """User text as literal markdown inline text, safe in a table cell, a heading, a list item
    and an image's alt text: one line, ``|`` as ``\\|``, and every character that could start
    markup (emphasis, code, links, HTML, headings) backslash-escaped. ``block_start``: the text
    begins a block (``> text``), so a leading ``-``, ``+``, ``>``, ``=`` or ``1.`` is escaped too."""
    text = _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), one_line(text).strip())
    match = _MD_BLOCK_START.match(text) if block_start else None
    if match:
        end = match.end()
        text = text[:end] + "\\" + text[end:] if match.group(0)[0].isdigit() else "\\" + text
    return text


def md_header(text: Any) -> str:
    """Our own column headers (which may hold a plugin's metric label): one line, ``|``
    escaped, no HTML; brackets and the like are left as they are."""
    return _MD_STRUCTURAL.sub(lambda m: "\\" + m.group(0), one_line(text))


def md_code(text: Any) -> str:
    """``text`` as a markdown code span (on one line), fenced by more backticks than it holds."""
    text = one_line(text)
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def json_safe(value: Any) -> Any:
    """``value`` with every NaN and ±infinity (which JSON lacks) as None, tuples as lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def strict_dumps(value: Any, **kwargs: Any) -> str:
    """Strict JSON: non-finite floats become null, and any that slip through fail loudly."""
    return json.dumps(json_safe(value), allow_nan=False, **kwargs)


# ---------------------------------------------------------------------------- cells


def number(value: float, digits: int, signed: bool = False) -> str:
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def stat_parts(row: Row, column: Column) -> tuple[str, str]:
    """(mean, spread) of a stat column: spread is ``± std`` and ``n=k`` when k ≠ the row's n."""
    return described_parts(row.stat(column.key), column.digits, row.n)


def described_parts(described: stats.Described | None, digits: int, n: int | None = None) -> tuple[str, str]:
    """(mean, spread): spread is ``± std``, and ``n=k`` when k ≠ ``n`` (given)."""
    if described is None or described.mean is None:
        return "—", ""
    spread = f"± {number(described.std, digits)}" if described.std is not None else ""
    if n is not None and described.n != n:
        spread = f"{spread} (n={described.n})".strip()
    return number(described.mean, digits), spread


def delta_parts(row: Row, column: Column) -> tuple[str, str]:
    """(mean difference, interval) of a Δ column."""
    return difference_parts(row.deltas.get(column.key), row.is_baseline, column.digits)


def difference_parts(delta: stats.PairedDifference | stats.MeanDifference | None, is_baseline: bool,
                     digits: int) -> tuple[str, str]:
    """(mean difference, interval) of a paired Δ against the baseline, or of any difference with an interval."""
    if is_baseline:
        return "baseline", ""
    if delta is None or delta.mean is None:
        return "—", "no paired seeds" if delta is not None else ""
    mean = number(delta.mean, digits, signed=True)
    if delta.low is None:
        return mean, "n too small"
    return mean, f"[{number(delta.low, digits, True)}, {number(delta.high, digits, True)}]"


def reference_part(row: Row, column: Column) -> str:
    value = row.value(column)
    return "—" if value is None else number(value, column.digits)


def markdown_cell(row: Row, column: Column) -> str:
    if column.kind == "reference":
        return reference_part(row, column)
    if column.kind == "delta":
        mean, interval = delta_parts(row, column)
        delta = row.deltas.get(column.key)
        text = f"{mean} {interval}".strip() if interval != "n too small" else f"{mean} (n too small)"
        return f"**{text}**" if delta is not None and delta.excludes_zero else text
    mean, spread = stat_parts(row, column)
    return f"{mean} {spread}".strip()


def rich_cell(row: Row, column: Column):
    from rich.text import Text

    if column.kind == "reference":
        return Text(reference_part(row, column), style="cyan")
    if column.kind == "delta":
        mean, interval = delta_parts(row, column)
        delta = row.deltas.get(column.key)
        style = ""
        if delta is not None and delta.excludes_zero:
            style = "bold green" if (delta.mean < 0) == column.lower_is_better else "bold red"
        text = Text(mean, style=style or ("dim" if row.is_baseline else ""))
    else:
        mean, interval = stat_parts(row, column)
        text = Text(mean)
    if interval:
        text.append("\n" + interval, style="dim")
    return text


def label_cells(board: Leaderboard, row: Row) -> list[str]:
    cells = [row.label + (" (baseline)" if row.is_baseline else "")]
    if board.dataset_column:
        cells.append(row.shown_dataset)
    if board.model_column:
        cells.append(row.shown_model)
    cells += [shown_value(row.swept[h]) if h in row.swept else "—" for h in board.swept_headers]
    cells.append(f"{row.n}" if row.n == row.expected else f"{row.n}/{row.expected}")
    return cells


def label_headers(board: Leaderboard) -> list[str]:
    heads = ["regularizers"]
    if board.dataset_column:
        heads.append("dataset")
    if board.model_column:
        heads.append("model")
    return heads + board.swept_headers + ["n"]


def footnotes(board: Leaderboard, text: Callable[[str], str] = str, header: Callable[[str], str] = str) -> list[str]:
    """The notes under the tables; ``text`` renders user text (labels) and ``header`` column
    headers in them (markdown escapes both)."""
    by = {c.key: header(c.header) for c in board.columns}
    notes = [
        "train loss = data loss only (mean over the last epoch's batches, training mode); penalties such as L2 "
        "are stored apart. gap = val loss − train loss. Losses and metrics are those of the final epoch.",
        "Cells are mean ± sample standard deviation over seeds; n = seeds finished (of planned); "
        f"rows ranked by {by.get(board.sorted_by, board.sorted_by or 'spec order')}"
        + (", best first." if board.sorted_by not in (None, "label") else "."),
    ]
    if any(c.kind == "delta" for c in board.columns):
        notes.append(
            f"Δ = row − baseline {text(repr(board.baseline))}, paired by seed (only seeds both rows have); [low, high] = 95% "
            "confidence interval, t-distribution over the paired differences (n − 1 degrees of freedom); "
            "'n too small' for fewer than 2 pairs. Negative Δ = lower than the baseline; "
            "intervals that exclude 0 are highlighted."
        )
    if board.regime:
        notes += regime_notes(board)
    if board.tuned is not None:
        notes += tuned_notes(board)
    notes += [text(note) for note in board.notes]
    if board.missing:
        notes.append(missing_summary(board, text=text))
    return notes


def missing_summary(board: Leaderboard, limit: int = 5, text: Callable[[str], str] = str) -> str:
    listed = "; ".join(text(m) for m in board.missing[:limit]) + (" …" if len(board.missing) > limit else "")
    return f"{len(board.missing)} planned run(s) not finished, left out of the table: {listed}"


# ---------------------------------------------------------------------------- renderers


def section_rows(board: Leaderboard, name: str, cell: Callable[[Row, Column], Any],
                 text: Callable[[str], Any] = str) -> tuple[list[str], list[list[Any]]]:
    """Headers of the label columns, and each row's cells; ``text`` renders the label cells
    (user text: ``Text`` for rich, escaped for markdown)."""
    columns = board.section(name)
    return label_headers(board), [[text(c) for c in label_cells(board, row)] + [cell(row, c) for c in columns]
                                  for row in board.rows]


def to_rich(board: Leaderboard):
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    tables = []
    for name, caption in SECTIONS.items():
        columns = board.section(name)
        if not columns:
            continue
        title = f"{board.title}\n{caption}" if name == "main" else caption
        table = Table(title=Text(title), show_lines=True, title_justify="left")
        heads, rows = section_rows(board, name, rich_cell, Text)
        for i, head in enumerate(heads):
            widest = max(cells[i].cell_len for cells in rows)
            if head in ("regularizers", "dataset", "model"):  # names may wrap; numbers may not
                table.add_column(head, min_width=min(widest, 12), max_width=24, overflow="fold")
            else:
                table.add_column(head, justify="right", no_wrap=True, min_width=widest)
        for column in columns:
            table.add_column(Text(column.rich_header), justify="right", no_wrap=True)
        for cells in rows:
            table.add_row(*cells)
        tables.append(table)
    tables += [rich_regime(board, table) for table in board.regime]
    if board.tuned is not None:
        tables.append(rich_tuned(board))
    if board.claims:
        tables.append(rich_claims(board))
    notes = Text("\n".join(f"• {note}" for note in footnotes(board)), style="dim")
    return Group(*tables, notes)


def rich_regime(board: Leaderboard, table: regimes.Table):
    from rich.table import Table
    from rich.text import Text

    axis = table.axis
    caption = regime_caption(board, table) + (f"; in parentheses, each size's {axis.under_name}" if axis.under_name else "")
    out = Table(title=Text(caption), show_lines=True, title_justify="left")
    heads, rows = regime_cells(table)
    out.add_column(heads[0], max_width=24, overflow="fold")
    for x in table.sizes:  # the size alone: the swept parameter's name is in the title
        out.add_column(Text(f"Δ at\n{axis.short_heading(x)}"), justify="right")
    out.add_column(Text(REGIME_CHANGE.replace(" [95% CI]", "\n[95% CI]")), justify="right")
    out.add_column(heads[-1], overflow="fold")
    for cells, emphasis, line in zip(rows, regime_emphasis(table), table.lines):
        numbers = []
        for cell, strong in zip(cells[1:-1], emphasis):
            mean, _, interval = cell.partition(" ")
            style = ("bold green" if mean.startswith("-") else "bold red") if strong else ""
            numbers.append(Text(mean, style=style) + Text(f"\n{interval}" if interval else "", style="dim"))
        verdict_style = {regimes.BETTER: "bold green", regimes.WORSE: "bold red"}.get(line.verdict, "dim")
        out.add_row(Text(cells[0]), *numbers, Text(cells[-1], style=verdict_style))
    return out


def rich_tuned(board: Leaderboard):
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(TUNED_CAPTION), show_lines=True, title_justify="left")
    heads, rows = tuned_table(board)
    for i, head in enumerate(heads):
        if head in ("set", "dataset", "model", "chosen"):
            widest = max([len(cells[i]) for cells in rows] or [len(head)])
            table.add_column(Text(head), overflow="fold", min_width=min(widest, 14), max_width=28)
        else:
            table.add_column(Text(head.replace(" [95% CI]", "\n[95% CI]")), justify="right", no_wrap=True)
    for cells, tuned in zip(rows, board.tuned or []):
        delta = tuned.delta
        style = ""
        if delta is not None and delta.excludes_zero:
            style = "bold green" if delta.mean < 0 else "bold red"
        table.add_row(*map(Text, cells[:-1]), Text(cells[-1], style=style))
    return table


VERDICT_STYLES = {claim_checks.HELD: "bold green", claim_checks.CONTRADICTED: "bold red",
                  claim_checks.INCONCLUSIVE: "yellow", claim_checks.TOO_FEW: "dim"}
CLAIM_HEADERS = ("claim", "verdict", "comparison", "Δ", "95% CI", "n", "this comparison")


def claim_rows(board: Leaderboard) -> list[tuple[str, str, list[str]]]:
    """(claim text or "", its verdict or "", the comparison's cells) per comparison."""
    out = []
    for judged in board.claims:
        for i, part in enumerate(judged.parts or [None]):
            head = (judged.text, judged.verdict) if i == 0 else ("", "")
            if part is None:
                out.append((*head, ["no rows to compare", "—", "", "0", ""]))
                continue
            d = part.difference
            mean = "—" if d.mean is None else number(d.mean, 3, signed=True)
            interval = "" if d.low is None else f"[{number(d.low, 3, True)}, {number(d.high, 3, True)}]"
            out.append((*head, [part.comparison.description, mean, interval, str(d.n), part.verdict]))
    return out


def rich_claims(board: Leaderboard):
    from rich.table import Table
    from rich.text import Text

    table = Table(title="Claims (each judged from the paired differences over seeds, 95% t interval)",
                  show_lines=True, title_justify="left")
    for head in CLAIM_HEADERS:
        table.add_column(head, overflow="fold", max_width=40 if head == "claim" else None,
                         justify="right" if head in ("Δ", "95% CI", "n") else "left")
    for text, verdict, cells in claim_rows(board):
        *rest, part_verdict = cells
        table.add_row(Text(text), Text(verdict, style=VERDICT_STYLES.get(verdict, "")), *map(Text, rest),
                      Text(part_verdict, style=VERDICT_STYLES.get(part_verdict, "")))
    return table


def markdown_claims(board: Leaderboard, hashes: str) -> str:
    from tabulate import tabulate

    rows = [[md_text(text), f"**{verdict}**" if verdict else "", md_text(comparison), *numbers]
            for text, verdict, (comparison, *numbers) in claim_rows(board)]
    table = tabulate(rows, headers=list(CLAIM_HEADERS), tablefmt="pipe", disable_numparse=True,
                     colalign=["left", "left", "left", "right", "right", "right", "left"])
    counts = Counter(judged.verdict for judged in board.claims)
    summary = ", ".join(f"{counts[v]} {v}" for v in claim_checks.VERDICTS if counts[v])
    return f"{hashes}# Claims\n\n{summary}.\n\n{table}\n"


def markdown_regime(board: Leaderboard, table: regimes.Table, hashes: str) -> str:
    from tabulate import tabulate

    heads, rows = regime_cells(table)
    cells = []
    for row, emphasis in zip(rows, regime_emphasis(table)):
        numbers = [f"**{cell}**" if strong else cell for cell, strong in zip(row[1:-1], emphasis)]
        cells.append([md_text(row[0]), *numbers, row[-1]])
    out = tabulate(cells, headers=[md_header(h) for h in heads], tablefmt="pipe", disable_numparse=True,
                   colalign=["left"] + ["right"] * (len(heads) - 2) + ["left"])
    return f"{hashes}# {md_text(regime_caption(board, table))}\n\n{out}\n"


def markdown_tuned(board: Leaderboard, hashes: str) -> str:
    from tabulate import tabulate

    heads, rows = tuned_table(board)
    text_columns = {"set", "dataset", "model", "chosen"}
    cells = [[md_text(c) if h in text_columns else c for h, c in zip(heads, row)] for row in rows]
    for row, tuned in zip(cells, board.tuned or []):
        if tuned.delta is not None and tuned.delta.excludes_zero:
            row[-1] = f"**{row[-1]}**"
    table = tabulate(cells, headers=[md_header(h) for h in heads], tablefmt="pipe", disable_numparse=True,
                     colalign=["left" if h in text_columns else "right" for h in heads])
    return f"{hashes}# {md_text(TUNED_CAPTION)}\n\n{table}\n"


def to_markdown(board: Leaderboard, heading_level: int = 3) -> str:
    from tabulate import tabulate

    hashes = "#" * heading_level
    parts = [f"{hashes} {md_text(board.title)}\n"]
    for name, caption in SECTIONS.items():
        columns = board.section(name)
        if not columns:
            continue
        heads, rows = section_rows(board, name, markdown_cell, md_text)
        align = ["left" if head == "regularizers" else "right" for head in heads] + ["right"] * len(columns)
        table = tabulate(rows, headers=heads + [md_header(c.header) for c in columns], tablefmt="pipe",
                         disable_numparse=True, colalign=align)
        parts.append(f"{hashes}# {caption}\n\n{table}\n")
    parts += [markdown_regime(board, table, hashes) for table in board.regime]
    if board.tuned is not None:
        parts.append(markdown_tuned(board, hashes))
    if board.claims:
        parts.append(markdown_claims(board, hashes))
    parts.append("\n".join(f"- {n}" for n in footnotes(board, md_text, md_header)) + "\n")
    return "\n".join(parts)


def records(board: Leaderboard) -> list[dict[str, Any]]:
    """One flat record per row: every value's mean, std and n; every Δ with its interval."""
    out = []
    for rank, row in enumerate(board.rows, 1):
        item: dict[str, Any] = {"spec": board.spec_name, "task": board.task, "label": row.label,
                                "dataset": row.dataset, "model": row.model, "rank": rank, "seeds": row.n,
                                "planned_seeds": row.expected, "baseline": row.is_baseline,
                                **({"swept": dict(row.swept)} if board.swept_headers else {})}
        for key in value_keys(board):
            described = row.stat(key)
            item[key], item[f"{key}_std"], item[f"{key}_n"] = described.mean, described.std, described.n
        for column in board.columns:
            if column.kind == "delta":
                delta = row.deltas.get(column.key)
                item[column.key] = delta.mean if delta else None
                item[f"{column.key}_ci_low"] = delta.low if delta else None
                item[f"{column.key}_ci_high"] = delta.high if delta else None
                item[f"{column.key}_n"] = delta.n if delta else 0
            elif column.kind == "reference":
                item[column.key] = row.value(column)
        out.append(item)
    return out


def value_keys(board: Leaderboard) -> list[str]:
    keys: list[str] = []
    for column in board.columns:
        if column.kind == "stat" and column.key not in keys:
            keys.append(column.key)
    extra = sorted({k for row in board.rows for k in row.by_seed} - set(keys))
    return keys + extra


def claim_records(board: Leaderboard) -> list[dict[str, Any]]:
    """One record per claim, with every comparison it implies."""
    out = []
    for judged in board.claims:
        parts = []
        for part in judged.parts:
            c, d = part.comparison, part.difference
            parts.append({"comparison": c.description, "row": c.row, "other": c.other, "metric": c.metric,
                          "direction": "lower" if c.lower else "higher", "threshold": c.threshold, "group": c.group,
                          "delta": d.mean, "ci_low": d.low, "ci_high": d.high, "n": d.n, "verdict": part.verdict})
        out.append({"claim": judged.text, "verdict": judged.verdict, "comparisons": parts})
    return out


def to_csv(board: Leaderboard) -> str:
    """The rows table; with claims, a blank line and the claims table (one line per comparison)."""
    buffer = io.StringIO()
    write_csv(buffer, records(board))
    if board.regime:
        buffer.write("\n")
        write_csv(buffer, [{key: strict_dumps(value) if key == "deltas" else value for key, value in item.items()}
                           for item in regime_records(board)])
    if board.tuned is not None:
        buffer.write("\n")
        write_csv(buffer, [{key: json.dumps(value) if key == "chosen_swept" else value for key, value in item.items()}
                           for item in tuned_records(board)])
    if board.claims:
        buffer.write("\n")
        write_csv(buffer, [{"claim": c["claim"], "claim_verdict": c["verdict"], **part}
                           for c in claim_records(board) for part in c["comparisons"]])
    return buffer.getvalue()


def write_csv(buffer: io.StringIO, rows: list[dict[str, Any]]) -> None:
    fieldnames: list[str] = []
    for row in rows:
        fieldnames += [k for k in row if k not in fieldnames]
    writer = csv.DictWriter(buffer, fieldnames=fieldnames, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def to_json(board: Leaderboard) -> str:
    """Strict JSON: a NaN or infinite value (a diverged run, a reference of inf) is null."""
    return strict_dumps({"spec": board.spec_name, "task": board.task, "baseline": board.baseline,
                       "sorted_by": board.sorted_by, "confidence": stats.CONFIDENCE,
                       "rows": records(board), "claims": claim_records(board), "missing": board.missing,
                       **({"regime": regime_records(board)} if board.regime else {}),
                       **({"tuned": tuned_records(board)} if board.tuned is not None else {})},
                      indent=2)


RENDERERS: dict[str, Callable[[Leaderboard], Any]] = {
    "rich": to_rich, "markdown": to_markdown, "csv": to_csv, "json": to_json,
}
