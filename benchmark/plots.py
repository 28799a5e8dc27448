"""Learning curves as PNG files (matplotlib's Agg canvas: no display, no pyplot state).

For a spec, :func:`write_plots` draws

- one figure per leaderboard row: data loss per epoch (train vs val) and each of the task's
  declared metrics per epoch (train vs val);
- one overview figure per (dataset, model): the val loss and the gap (val − train loss) per
  epoch of every row, so the regularizers compare at a glance;
- for a spec that sweeps a dataset parameter which changes the training-set size
  (``train_fraction``, ``per_class``, ``train_limit``: any whose runs' ``train_size`` differ),
  a regime figure per model: every non-baseline set's Δ val loss against the baseline of the
  same dataset variant (paired by seed, mean with its 95% t band, as the leaderboard's Δ
  column) over the training-set size, one line per set (:func:`regime_figures`);
- for a spec that sweeps a regularizer's parameter, a sensitivity figure: the final val loss
  over each swept value, one line per dataset / model variant, the baseline's val loss dashed
  (:func:`sensitivity_figures`).

Seeds are drawn as the mean line with a band from the lowest to the highest seed at each
epoch (min–max: with the 2–5 seeds a benchmark affords, a ±std band would pretend to know
the spread better than it does). Only finished runs are drawn, as in the leaderboard.

A plot folder may hold files of the user's: regsuite lists the files it wrote in
``.regsuite-plots.json`` there, and removes only files of that list that it no longer writes.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from regsuite import atomic
from regsuite import leaderboard as lb
from regsuite import regime as regimes
from regsuite import stats
from regsuite.safety import check_spec_name, inside
from regsuite.store import Store
from regsuite.sweeps import format_value, point_label

DPI = 100
BAND = "line = mean over seeds, band = min–max over seeds"
REGIME_BAND = "line = mean Δ over seeds, band = 95% t interval"
TRAIN_COLOR, VAL_COLOR = "tab:blue", "tab:orange"
LOG_SPREAD = 5.0  # a loss axis spanning more than this factor is drawn on a log scale
MANIFEST = ".regsuite-plots.json"  # in a plot folder: the files regsuite wrote there
LOG_X_SPAN = 10.0  # a swept strength spanning more than this factor is drawn on a log axis
REGIME_DODGE = 0.012  # the regime figure's lines, side by side at each size (decades on its log axis)

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
    band: str = BAND  # what its lines and bands are, for the export's text


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


def new_figure(panels: int, height: float = 3.6, width: float | None = None):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width = width or 4.6 * panels + 0.6
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
    with atomic.replacing(path) as temporary:
        figure.savefig(temporary, dpi=DPI, format="png")
    return path


# ---------------------------------------------------------------------------- sweep summaries
#
# What the regime and sensitivity figures plot is computed apart from the drawing
# (:func:`regime_figures`, :func:`sensitivity_figures`), so that it can be checked as numbers.


@dataclass
class Point:
    x: Any  # a training-set size, a swept value
    mean: float
    low: float | None = None  # the band (None: no band at this point, as for n < 2)
    high: float | None = None
    n: int = 0


@dataclass
class Line:
    label: str
    points: list[Point]  # sorted by x (in sweep order for values that are not numbers)
    variant: tuple[str, str] = ("", "")  # the (dataset, model) group the points come from


@dataclass
class Level:
    """A horizontal line: 0 for the baseline of Δ, the baseline's val loss."""
    label: str
    y: float
    variant: tuple[str, str] | None = None  # drawn in the colour of this variant's first line


@dataclass
class Panel:
    title: str
    xlabel: str
    ylabel: str
    lines: list[Line]
    levels: list[Level] = field(default_factory=list)
    log_x: bool = False
    categories: list[str] | None = None  # x values that are not numbers, in sweep order
    ticks: dict[float, str] = field(default_factory=dict)  # x → tick label, when each value gets a tick
    #: Lines drawn side by side around each x, this share of the x axis apart (of a decade on a
    #: log axis), so that intervals at the same x do not hide each other; 0: at x exactly.
    dodge: float = 0.0


@dataclass
class SummaryFigure:
    stem: str  # the file name without .png
    title: str  # the PlotFile's title
    heading: str  # the figure's title: its first line names the spec
    panels: list[Panel]
    band: str = BAND


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def log_worthy(values: list[Any], span: float = LOG_X_SPAN) -> bool:
    """All positive numbers, spanning more than ``span`` (1 = any spread)."""
    numbers = [float(v) for v in values if is_number(v)]
    return (len(numbers) == len(values) and len(set(numbers)) > 1 and min(numbers) > 0
            and max(numbers) / min(numbers) > span)


def finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def axis_headers(spec: dict[str, Any], *prefixes: str) -> dict[str, str]:
    """The spec's swept axes under ``prefixes`` (path → the leaderboard's column header)."""
    return {path: header for path, header in lb.swept_headers(spec).items() if path.startswith(prefixes)}


def context_label(values: dict[str, Any]) -> str:
    return ", ".join(f"{header}={lb.shown_value(value)}" for header, value in values.items())


def regime_figures(board: lb.Leaderboard, spec: dict[str, Any]) -> list[SummaryFigure]:
    """For a spec whose grid sweeps a dataset parameter that changes the training-set size:
    per model (with its training setting), each non-baseline set's Δ val loss against the
    baseline of the same dataset variant, over the training-set size: the lines of the
    leaderboard's regime table (:mod:`regsuite.regime`). The Δ is paired by seed
    (:func:`regsuite.stats.paired_difference`), the band its 95% t interval. x is
    ``train_size`` (what the dataset loaded, before any regularizer's transform); runs without
    it fall back to the swept value of a parameter in :data:`regsuite.regime.SIZE_PARAMS`. A
    spec sweeping no such parameter gets none."""
    several = len(board.regime) > 1
    figures = []
    for table in board.regime:
        where = f" ({table.model})" if several else ""
        figures.append(SummaryFigure(
            stem=f"{slug(table.model)}-regime" if several else "regime",
            title=f"Δ val loss against {board.baseline!r} by training-set size{where}",
            heading=(f"{board.spec_name}: Δ val loss against {board.baseline!r} by training-set size{where}\n"
                     f"Δ = set − {board.baseline!r} on the same training data, paired by seed "
                     f"(below 0: the set lowers val loss)"),
            panels=[regime_panel(board, table)], band=REGIME_BAND))
    return figures


def regime_panel(board: lb.Leaderboard, table: regimes.Table) -> Panel:
    axis = table.axis
    lines = [Line(line.label, [Point(x, d.mean, d.low, d.high, d.n) for x, d in line.deltas.items()], line.variant)
             for line in table.lines]
    xlabel = "training-set size (train_size: images the dataset loaded)" if axis.by_size else axis.name
    panel = Panel(title=REGIME_BAND, xlabel=xlabel, ylabel=f"Δ val loss vs {board.baseline}", lines=lines,
                  levels=[Level(f"{board.baseline} (baseline): Δ = 0", 0.0)],
                  log_x=table.numeric and log_worthy(table.sizes, span=1.0), dodge=REGIME_DODGE)
    if panel.log_x:
        panel.xlabel += ", log scale"
    if not table.numeric:
        panel.categories = sorted(lb.shown_value(x) for x in table.sizes)
    elif len(table.sizes) <= 8:
        panel.ticks = {float(x): lb.shown_value(x) + (f"\n{axis.swept_under[x]}" if x in axis.swept_under else "")
                       for x in table.sizes}
    return panel


def sensitivity_figures(board: lb.Leaderboard, spec: dict[str, Any]) -> list[SummaryFigure]:
    """For a spec that sweeps a regularizer's parameter (``sets[i].regularizers[j].<param>``):
    one panel per swept parameter, the final val loss (mean over seeds, band min–max) against
    its value, one line per dataset / model variant, and the baseline's val loss of each
    variant as a dashed line. x is a log axis when every value is positive and they span more
    than :data:`LOG_X_SPAN`×; values that are not numbers are categories in sweep order."""
    axes = axis_headers(spec, "sets[")
    if not axes:
        return []
    swept_values = {axis["path"]: axis["values"] for axis in spec.get("sweeps") or []}
    set_headers = set(axes.values())
    stored_sets = {s.get("label"): s for s in spec.get("sets", [])}
    baselines = {(r.dataset, r.model): r for r in board.rows if r.is_baseline or r.label == board.baseline}
    variants = list(dict.fromkeys((r.dataset, r.model) for r in board.rows))
    show_dataset = len({v[0] for v in variants}) > 1
    show_model = len({v[1] for v in variants}) > 1
    panels = []
    for path, header in axes.items():
        rows = [r for r in board.rows if header in r.swept and finite(r.mean("val_loss"))]
        if not rows:
            continue
        values = swept_values.get(path) or list(dict.fromkeys(r.swept[header] for r in rows))
        numeric = all(is_number(v) for v in values)
        lines: dict[tuple, Line] = {}
        for row in rows:
            others = {h: row.swept[h] for h in row.swept if h in set_headers and h != header}
            variant = (row.dataset, row.model)
            parts = ([row.dataset] if show_dataset else []) + ([row.model] if show_model else [])
            parts += [context_label(others)] if others else []
            line = lines.setdefault((variants.index(variant), tuple(map(str, others.values()))),
                                    Line(", ".join(parts) or base_label(row.label, stored_sets), [], variant))
            seeds = list(row.by_seed.get("val_loss", {}).values())
            described = stats.describe(seeds)
            line.points.append(Point(row.swept[header], described.mean, min(seeds), max(seeds), described.n))
        position = {lb.shown_value(v): i for i, v in enumerate(values)}
        for line in lines.values():
            line.points.sort(key=lambda p: float(p.x) if numeric else position.get(lb.shown_value(p.x), len(position)))
        shown_lines = [lines[k] for k in sorted(lines)]
        levels = []
        for variant in dict.fromkeys(line.variant for line in shown_lines):
            base = baselines.get(variant)
            if base is not None and finite(base.mean("val_loss")):
                name = ", ".join(([variant[0]] if show_dataset else []) + ([variant[1]] if show_model else []))
                label = f"{base.label} (baseline)" + (f", {name}" if name else "")
                levels.append(Level(label, base.mean("val_loss"), variant))
        log_x = numeric and log_worthy(values)
        set_label = base_label(rows[0].label, stored_sets)
        panel = Panel(title=f"{set_label}: {header}", xlabel=header + (" (log scale)" if log_x else ""),
                      ylabel="final val loss", lines=shown_lines, levels=levels, log_x=log_x)
        if not numeric:
            panel.categories = [lb.shown_value(v) for v in values]
        elif len(values) <= 8:
            panel.ticks = {float(v): format_value(v) for v in values}
        panels.append(panel)
    if not panels:
        return []
    baseline = f"; dashed = the baseline {board.baseline!r}" if any(p.levels for p in panels) else ""
    return [SummaryFigure(
        stem="sensitivity", title="final val loss against each swept regularizer parameter",
        heading=(f"{board.spec_name}: final val loss against each swept regularizer parameter\n"
                 f"{BAND}{baseline}"),
        panels=panels)]


def base_label(label: str, stored_sets: dict[str, dict[str, Any]]) -> str:
    """``l2`` for the swept point ``l2 (weight=0.0001)``."""
    swept = (stored_sets.get(label) or {}).get("swept") or {}
    return label.removesuffix(f" ({point_label(swept)})") if swept else label


def summary_figure(summary: SummaryFigure):
    from matplotlib import colormaps

    panels, height = len(summary.panels), 4.4
    figure, axes = new_figure(panels, height=height, width=max(7.4, 5.2 * panels + 0.6))
    if any("\n" in tick for panel in summary.panels for tick in panel.ticks.values()):
        figure.subplots_adjust(bottom=0.95 / height)  # room for two-line ticks and the axis label
    for ax, panel in zip(axes, summary.panels):
        palette = colormaps["tab10" if len(panel.lines) <= 10 else "tab20"].colors
        colors: dict[tuple[str, str], str] = {}
        for index, (line, color) in enumerate(zip(panel.lines, palette * (1 + len(panel.lines) // len(palette)))):
            colors.setdefault(line.variant, color)
            draw_line(ax, panel, line, color, index)
        for level in panel.levels:
            color = colors.get(level.variant, "black") if level.variant is not None else "black"
            ax.axhline(level.y, color=color, linestyle="--", linewidth=1.2, label=literal(level.label))
        style_summary_axes(ax, panel)
    figure.suptitle(literal(summary.heading), fontsize=10)
    return figure


def x_positions(panel: Panel, points: list[Point], line_index: int = 0) -> np.ndarray:
    if panel.categories is not None:
        index = {name: i for i, name in enumerate(panel.categories)}
        return np.array([index.get(lb.shown_value(p.x), len(index)) for p in points], dtype=float)
    x = np.array([float(p.x) for p in points])
    if not panel.dodge or len(panel.lines) < 2:
        return x
    shift = (line_index - (len(panel.lines) - 1) / 2) * panel.dodge
    if panel.log_x:
        return x * 10.0 ** shift
    xs = [float(p.x) for other in panel.lines for p in other.points]
    return x + shift * ((max(xs) - min(xs)) or 1.0)


def draw_line(ax, panel: Panel, line: Line, color, line_index: int = 0) -> None:
    x = x_positions(panel, line.points, line_index)
    mean = np.array([p.mean for p in line.points])
    ax.plot(x, mean, color=color, marker="o", markersize=4, linewidth=1.6, label=literal(line.label))
    low = np.array([p.low if finite(p.low) else np.nan for p in line.points])
    high = np.array([p.high if finite(p.high) else np.nan for p in line.points])
    band = np.isfinite(low) & np.isfinite(high)
    if band.any() and np.any(high[band] > low[band]):
        ax.fill_between(x, low, high, where=band, color=color, alpha=0.15, linewidth=0)
    # A band needs a neighbour with one too: a point whose neighbours have none (the only
    # point with two seeds, say) shows its interval as an error bar.
    alone = band & ~np.r_[False, band[:-1]] & ~np.r_[band[1:], False]
    if alone.any():
        ax.errorbar(x[alone], mean[alone], yerr=[mean[alone] - low[alone], high[alone] - mean[alone]],
                    fmt="none", ecolor=color, elinewidth=1.2, capsize=3, alpha=0.6)


#: Tick labels closer than this share of the x span to the last one shown are left blank.
MIN_TICK_GAP = 0.07


def uncrowded(ticks: dict[float, str], log_x: bool) -> list[str]:
    """The tick labels in order, those that would overprint their left neighbour's blank (seeded
    random draws can land close together)."""
    where = {x: math.log10(x) if log_x else x for x in ticks}
    span = (max(where.values()) - min(where.values())) or 1.0
    shown, last = [], None
    for x in sorted(ticks):
        if last is None or where[x] - last >= MIN_TICK_GAP * span:
            shown.append(ticks[x])
            last = where[x]
        else:
            shown.append("")
    return shown


def style_summary_axes(ax, panel: Panel) -> None:
    from matplotlib.ticker import NullFormatter, NullLocator

    if panel.log_x:
        ax.set_xscale("log")
    if panel.categories is not None:
        ax.set_xticks(range(len(panel.categories)), [literal(c) for c in panel.categories])
    elif panel.ticks:
        ax.set_xticks(sorted(panel.ticks), [literal(t) for t in uncrowded(panel.ticks, panel.log_x)], fontsize=8)
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.margins(x=0.08)  # the first and last ticks' labels stay inside the figure
    ax.set_title(literal(panel.title), fontsize=10)
    ax.set_xlabel(literal(panel.xlabel))
    ax.set_ylabel(literal(panel.ylabel))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)


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
    files, overviews first, then the regime and sensitivity figures of a spec with sweeps,
    then rows in leaderboard order."""
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
    spec = store.spec_info(spec_name)["spec"]
    for summary in regime_figures(board, spec) + sensitivity_figures(board, spec):
        figure = summary_figure(summary)
        written.append(PlotFile(save(figure, inside(directory, f"{summary.stem}.png")), summary.title, band=summary.band))
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
            path.unlink(missing_ok=True)  # another regsuite writing the same folder may remove it first
    manifest = directory / MANIFEST
    atomic.write_text(manifest, json.dumps({"format": "regsuite-plots", "files": sorted(keep)}, indent=1) + "\n")


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
