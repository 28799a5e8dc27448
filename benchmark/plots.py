"""Learning curves as PNG files (matplotlib's Agg canvas: no display, no pyplot state).

For a spec, :func:`write_plots` draws

- one figure per leaderboard row: data loss per epoch (train vs val) and each of the task's
  declared metrics per epoch (train vs val);
- one overview figure per (dataset, model): the val loss and the gap (val − train loss) per
  epoch of every row, so the regularizers compare at a glance.

Seeds are drawn as the mean line with a band from the lowest to the highest seed at each
epoch (min–max: with the 2–5 seeds a benchmark affords, a ±std band would pretend to know
the spread better than it does). Only finished runs are drawn, as in the leaderboard.

A plot folder may hold files of the user's: regsuite lists the files it wrote in
``.regsuite-plots.json`` there, and removes only files of that list that it no longer writes.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from regsuite import leaderboard as lb
from regsuite.safety import check_spec_name, inside
from regsuite.store import Store

DPI = 100
BAND = "line = mean over seeds, band = min–max over seeds"
TRAIN_COLOR, VAL_COLOR = "tab:blue", "tab:orange"
LOG_SPREAD = 5.0  # a loss axis spanning more than this factor is drawn on a log scale
MANIFEST = ".regsuite-plots.json"  # in a plot folder: the files regsuite wrote there

History = list[dict[str, float]]  # one run's epochs, as Store.epochs returns them


@dataclass
class Curve:
    epochs: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray


@dataclass
class PlotFile:
    path: Path
    title: str
    row: str | None = None  # the row label; None for an overview


def curve(histories: list[History], value) -> Curve | None:
    """Aggregate one quantity over seeds, epoch by epoch. ``value(epoch_metrics)`` returns the
    quantity or None; a seed that stopped early simply stops contributing."""
    per_epoch: dict[int, list[float]] = {}
    for history in histories:
        for metrics in history:
            v = value(metrics)
            if v is not None and np.isfinite(v):
                per_epoch.setdefault(int(metrics["epoch"]), []).append(float(v))
    if not per_epoch:
        return None
    epochs = sorted(per_epoch)
    values = [np.asarray(per_epoch[e]) for e in epochs]
    return Curve(np.asarray(epochs), np.array([v.mean() for v in values]),
                 np.array([v.min() for v in values]), np.array([v.max() for v in values]))


def key(name: str):
    return lambda metrics: metrics.get(name)


def gap(metrics: dict[str, float]) -> float | None:
    if "val_loss" not in metrics or "train_loss" not in metrics:
        return None
    return metrics["val_loss"] - metrics["train_loss"]


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "row"


# ---------------------------------------------------------------------------- drawing


def new_figure(panels: int, height: float = 3.6):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width = 4.6 * panels + 0.6
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    # Fixed margins in inches (room for the two-line title and the axis labels): constrained
    # layout would find the same ones at twice the drawing time.
    figure.subplots_adjust(left=0.75 / width, right=1 - 0.2 / width, bottom=0.55 / height, top=1 - 0.85 / height,
                           wspace=0.75 * panels / width)
    return figure, figure.subplots(1, panels, squeeze=False)[0]


def literal(text: str) -> str:
    """User text for matplotlib: a ``$`` would start mathtext (and ``$\\frac$`` fail to save)."""
    return str(text).replace("$", r"\$")


def draw(ax, c: Curve, label: str, color: str, linestyle: str = "-") -> None:
    marker = "o" if len(c.epochs) <= 15 else None
    ax.plot(c.epochs, c.mean, color=color, linestyle=linestyle, marker=marker, markersize=3, linewidth=1.6, label=label)
    if np.any(c.high > c.low):
        ax.fill_between(c.epochs, c.low, c.high, color=color, alpha=0.18, linewidth=0)


def mark_minimum(ax, c: Curve) -> None:
    """Where the mean val loss is lowest: the epoch after which training stops paying off."""
    best = int(np.argmin(c.mean))
    ax.plot([c.epochs[best]], [c.mean[best]], marker="*", markersize=11, color="black", linestyle="none",
            label=f"lowest mean val loss (epoch {c.epochs[best]})")


def style_axes(ax, title: str, ylabel: str, log_if_spread: bool = False) -> None:
    from matplotlib.ticker import MaxNLocator

    low, high = ax.dataLim.y0, ax.dataLim.y1
    if log_if_spread and low > 0 and high / low > LOG_SPREAD:
        # Losses fall by orders of magnitude early on; on a linear axis the late epochs, where
        # the regularizers differ, would be a flat line.
        ax.set_yscale("log")
        ylabel += " (log scale)"
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)


def row_figure(board: lb.Leaderboard, row: lb.Row, histories: list[History]):
    metrics = metric_declarations(row)
    figure, axes = new_figure(1 + len(metrics))
    for split, color in (("train", TRAIN_COLOR), ("val", VAL_COLOR)):
        c = curve(histories, key(f"{split}_loss"))
        if c is not None:
            draw(axes[0], c, f"{split} loss", color)
            if split == "val":
                mark_minimum(axes[0], c)
    style_axes(axes[0], "data loss per epoch", "loss", log_if_spread=True)
    for ax, metric in zip(axes[1:], metrics):
        for split, color in (("train", TRAIN_COLOR), ("val", VAL_COLOR)):
            c = curve(histories, key(f"{split}_{metric['key']}"))
            if c is not None:
                draw(ax, c, f"{split} {literal(metric['label'])}", color)
        name = metric["key"].replace("_", " ")
        style_axes(ax, f"{name} per epoch", name)
    figure.suptitle(f"{board.spec_name}: {literal(row.label)}\n{literal(row.dataset)} / {literal(row.model)}, "
                    f"{row.n} seed(s); {BAND}",
                    fontsize=11)
    return figure


def metric_declarations(row: lb.Row) -> list[dict]:
    declared: dict[str, dict] = {}
    for run in row.runs:
        for metric in run.summary.get("metrics", []):
            declared.setdefault(metric["key"], metric)
    return list(declared.values())


def overview_figure(board: lb.Leaderboard, rows: list[lb.Row], histories: dict[int, list[History]], where: str):
    from matplotlib import colormaps

    figure, (loss_ax, gap_ax) = new_figure(2, height=4.0)
    palette = colormaps["tab10" if len(rows) <= 10 else "tab20"].colors
    others = iter(palette)
    for row in rows:
        color, style = ("black", "--") if row.is_baseline else (next(others), "-")
        name = literal(row.label) + (" (baseline)" if row.is_baseline else "")
        for ax, value in ((loss_ax, key("val_loss")), (gap_ax, gap)):
            c = curve(histories[id(row)], value)
            if c is not None:
                draw(ax, c, name, color, style)
    gap_ax.axhline(0.0, color="grey", linewidth=0.8)
    style_axes(loss_ax, "val loss per epoch", "val loss", log_if_spread=True)
    style_axes(gap_ax, "gap (val loss − train loss) per epoch", "gap")
    figure.suptitle(f"{board.spec_name}: every row{literal(where)}\n{BAND}", fontsize=11)
    return figure


def save(figure, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    figure.savefig(tmp, dpi=DPI, format="png")
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------------------- files


def write_spec_plots(store: Store, spec_name: str, root: Path) -> list[PlotFile]:
    """Write the spec's figures into ``root/<spec_name>/``. The name may come from the store:
    it is checked (a spec name's rule) before anything is written."""
    board = lb.build(store, spec_name, sort="val_loss")
    check_spec_name(spec_name, f"the results store {store.path}")
    return write_plots(store, spec_name, inside(root, spec_name), board)


def write_plots(store: Store, spec_name: str, directory: Path, board: lb.Leaderboard | None = None) -> list[PlotFile]:
    """Write the spec's figures into ``directory`` (created; PNGs that regsuite wrote there
    for rows that no longer exist are removed, other files are left alone). Returns the
    files, overviews first, then rows in leaderboard order."""
    board = board or lb.build(store, spec_name, sort="val_loss")
    histories = {id(row): [store.epochs(run.run_id) for run in row.runs] for row in board.rows}
    directory.mkdir(parents=True, exist_ok=True)
    written: list[PlotFile] = []
    groups: dict[tuple[str, str], list[lb.Row]] = {}
    for row in board.rows:
        groups.setdefault((row.dataset, row.model), []).append(row)
    several = len(groups) > 1
    for (dataset, model), rows in groups.items():
        prefix = f"{slug(dataset)}-{slug(model)}-" if several else ""
        where = f" ({dataset} / {model})" if several else ""
        figure = overview_figure(board, rows, histories, where)
        written.append(PlotFile(save(figure, inside(directory, f"{prefix}overview.png")), f"every row{where}"))
    used: set[str] = {p.path.name for p in written}
    for row in board.rows:
        prefix = f"{slug(row.dataset)}-{slug(row.model)}-" if several else ""
        name = unique(f"{prefix}{slug(row.label)}", used)
        figure = row_figure(board, row, histories[id(row)])
        written.append(PlotFile(save(figure, inside(directory, name)), row.label, row.label))
    remove_stale(directory, used)
    return written


def unique(stem: str, used: set[str]) -> str:
    name, i = f"{stem}.png", 2
    while name in used or name == "overview.png":
        name, i = f"{stem}-{i}.png", i + 1
    used.add(name)
    return name


def remove_stale(directory: Path, keep: set[str]) -> None:
    """Remove the files that the manifest says regsuite wrote and ``keep`` no longer lists,
    then record ``keep`` as what regsuite wrote. A file regsuite did not write is never removed."""
    for name in sorted(written_before(directory) - keep):
        path = directory / name
        if path.is_file() and not path.is_symlink():
            path.unlink()
    manifest = directory / MANIFEST
    tmp = manifest.with_name(f"{manifest.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"format": "regsuite-plots", "files": sorted(keep)}, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, manifest)


def written_before(directory: Path) -> set[str]:
    """The PNG names the folder's manifest lists (a damaged or foreign manifest: none)."""
    try:
        listed = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    files = listed.get("files") if isinstance(listed, dict) and listed.get("format") == "regsuite-plots" else None
    if not isinstance(files, list):
        return set()
    return {name for name in files if isinstance(name, str) and name == Path(name).name
            and name.endswith(".png") and not name.startswith(".")}


def default_directory(results: Path, spec_name: str) -> Path:
    return results / "plots" / spec_name
