"""Leaderboards from the results store: one row per (dataset, model, regularizer set),
aggregated over seeds, rendered with rich, as GitHub markdown (tabulate), CSV or JSON.

"train loss" is the data loss alone (cross-entropy, mean over the epoch's batches, in
training mode), never the data loss plus a penalty, so an L2 row compares with the none
row; the penalty is stored apart as ``train_penalty``.
"""
from __future__ import annotations

import csv
import io
import json
import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Callable

from regsuite.errors import RegsuiteError
from regsuite.store import RunRecord, Store


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    lower_is_better: bool = True
    digits: int = 4


@dataclass
class Row:
    label: str
    dataset: str
    model: str
    reference: dict[str, float]
    runs: list[RunRecord] = field(default_factory=list)
    expected: int = 0
    values: dict[str, list[float]] = field(default_factory=dict)

    def mean(self, key: str) -> float | None:
        values = self.values.get(key) or []
        return statistics.fmean(values) if values else None

    def std(self, key: str) -> float | None:
        values = self.values.get(key) or []
        return statistics.stdev(values) if len(values) > 1 else None


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

    @property
    def title(self) -> str:
        first = self.rows[0]
        parts = [self.task]
        if not self.show_dataset:
            parts.append(first.dataset)
        if not self.show_model:
            parts.append(first.model)
        return f"{self.spec_name} — {' / '.join(parts)}"


BASE_COLUMNS = [
    Column("train_loss", "train loss"),
    Column("val_loss", "val loss"),
    Column("gap", "gap (val−train)"),
]
TAIL_COLUMNS = [
    Column("best_epoch", "best epoch", digits=1),
    Column("wall_time", "wall s", digits=1),
]
REFERENCE_COLUMNS = [
    Column("ref_train_loss", "study train"),
    Column("ref_val_loss", "study val"),
    Column("ref_gap", "study gap"),
]


def run_values(record: RunRecord) -> dict[str, float]:
    s = record.summary
    final = s.get("final", {})
    values = {
        "train_loss": final.get("train_loss"),
        "val_loss": final.get("val_loss"),
        "gap": s.get("gap"),
        "best_epoch": s.get("best_epoch"),
        "wall_time": record.wall_time,
    }
    for metric in s.get("metrics", []):
        values[f"val_{metric['key']}"] = final.get(f"val_{metric['key']}")
        if f"test_{metric['key']}" in s.get("test", {}):
            values[f"test_{metric['key']}"] = s["test"][f"test_{metric['key']}"]
    return {k: float(v) for k, v in values.items() if v is not None}


def build(store: Store, spec_name: str, sort: str | None = "val_loss") -> Leaderboard:
    info = store.spec_info(spec_name)
    if info is None:
        known = ", ".join(store.spec_names()) or "none"
        raise RegsuiteError(f"no results for spec {spec_name!r} in {store.path}", hint=f"specs with results: {known}")
    rows: dict[tuple[str, str, str], Row] = {}
    missing: list[str] = []
    for label, reference, record in store.spec_rows(spec_name):
        c = record.config
        key = (c["dataset"]["name"], c["model"]["name"], label)
        row = rows.setdefault(key, Row(label, key[0], key[1], reference))
        row.expected += 1
        if record.status == "done":
            row.runs.append(record)
            for name, value in run_values(record).items():
                row.values.setdefault(name, []).append(value)
        else:
            missing.append(f"{key[0]} / {key[1]} / {label} / seed {record.seed}: {record.status}")
    finished = [r for r in rows.values() if r.runs]
    if not finished:
        raise RegsuiteError(
            f"spec {spec_name!r} has no finished runs yet ({len(missing)} planned)",
            hint=f"run it: regsuite run specs/{spec_name}.toml",
        )
    for row in finished:
        add_reference(row)
    task = finished[0].runs[0].config["task"]["name"]
    board = Leaderboard(
        spec_name=spec_name,
        task=task,
        baseline=info["baseline"],
        columns=columns_for(finished),
        rows=finished,
        missing=missing,
        show_dataset=len({r.dataset for r in finished}) > 1,
        show_model=len({r.model for r in finished}) > 1,
    )
    if sort:
        sort_rows(board, sort)
    return board


def add_reference(row: Row) -> None:
    ref = row.reference
    for key in ("train_loss", "val_loss"):
        if key in ref:
            row.values[f"ref_{key}"] = [ref[key]]
    if "train_loss" in ref and "val_loss" in ref:
        row.values["ref_gap"] = [ref["val_loss"] - ref["train_loss"]]


def columns_for(rows: list[Row]) -> list[Column]:
    metrics: dict[str, dict] = {}
    for row in rows:
        for run in row.runs:
            for metric in run.summary.get("metrics", []):
                metrics.setdefault(metric["key"], metric)
    present = {key for row in rows for key in row.values}
    columns = list(BASE_COLUMNS)
    for split in ("val", "test"):
        for key, metric in metrics.items():
            if f"{split}_{key}" in present:
                columns.append(Column(f"{split}_{key}", f"{split} {metric['label']}", lower_is_better=not metric["higher_is_better"]))
    columns += TAIL_COLUMNS
    columns += [c for c in REFERENCE_COLUMNS if c.key in present]
    return columns


def sort_rows(board: Leaderboard, key: str) -> None:
    by_key = {c.key: c for c in board.columns}
    if key not in by_key and key != "label":
        raise RegsuiteError(f"cannot sort by {key!r}", hint=f"choose one of: label, {', '.join(by_key)}")
    if key == "label":
        board.rows.sort(key=lambda r: r.label)
        return
    sign = 1 if by_key[key].lower_is_better else -1

    def order(row: Row) -> tuple[bool, float]:
        mean = row.mean(key)
        return (mean is None, sign * mean if mean is not None else 0.0)

    board.rows.sort(key=order)


# ---------------------------------------------------------------------------- rendering


def cell(row: Row, column: Column) -> str:
    mean = row.mean(column.key)
    if mean is None:
        return "—"
    digits = column.digits
    std = row.std(column.key)
    text = f"{mean:.{digits}f}"
    return f"{text} ± {std:.{digits}f}" if std is not None and not math.isnan(std) else text


def header_cells(board: Leaderboard) -> list[str]:
    heads = ["regularizers"]
    if board.show_dataset:
        heads.append("dataset")
    if board.show_model:
        heads.append("model")
    return heads + ["seeds"] + [c.header for c in board.columns]


def row_cells(board: Leaderboard, row: Row) -> list[str]:
    label = row.label + (" (baseline)" if row.label == board.baseline else "")
    cells = [label]
    if board.show_dataset:
        cells.append(row.dataset)
    if board.show_model:
        cells.append(row.model)
    seeds = f"{len(row.runs)}" if len(row.runs) == row.expected else f"{len(row.runs)}/{row.expected}"
    return cells + [seeds] + [cell(row, c) for c in board.columns]


def footnotes(board: Leaderboard) -> list[str]:
    notes = [
        "train loss = data loss only (mean over the last epoch's batches, training mode); "
        "penalties such as L2 are stored apart. gap = val loss − train loss. "
        "Cells are mean ± sample std over seeds; rows sorted best first.",
    ]
    if board.missing:
        notes.append(f"{len(board.missing)} run(s) not finished: " + "; ".join(board.missing[:5])
                     + (" …" if len(board.missing) > 5 else ""))
    return notes


def to_rich(board: Leaderboard):
    from rich.table import Table

    table = Table(title=board.title, caption="\n".join(footnotes(board)), caption_justify="left")
    for i, head in enumerate(header_cells(board)):
        table.add_column(head, justify="left" if i == 0 else "right", no_wrap=i == 0)
    for row in board.rows:
        table.add_row(*row_cells(board, row))
    return table


def to_markdown(board: Leaderboard) -> str:
    from tabulate import tabulate

    table = tabulate([row_cells(board, r) for r in board.rows], headers=header_cells(board), tablefmt="github",
                     disable_numparse=True)
    notes = "\n".join(f"- {n}" for n in footnotes(board))
    return f"### {board.title}\n\n{table}\n\n{notes}\n"


def records(board: Leaderboard) -> list[dict[str, Any]]:
    out = []
    for row in board.rows:
        item: dict[str, Any] = {"spec": board.spec_name, "task": board.task, "label": row.label,
                                "dataset": row.dataset, "model": row.model, "seeds": len(row.runs)}
        for column in board.columns:
            item[column.key] = row.mean(column.key)
            item[f"{column.key}_std"] = row.std(column.key)
        out.append(item)
    return out


def to_csv(board: Leaderboard) -> str:
    rows = records(board)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def to_json(board: Leaderboard) -> str:
    return json.dumps({"spec": board.spec_name, "task": board.task, "baseline": board.baseline,
                       "rows": records(board), "missing": board.missing}, indent=2)


RENDERERS: dict[str, Callable[[Leaderboard], Any]] = {
    "rich": to_rich, "markdown": to_markdown, "csv": to_csv, "json": to_json,
}
