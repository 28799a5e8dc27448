"""The sweep summaries among a spec's figures (regsuite.plots): the regime figure (Δ val loss
against the baseline over the training-set size, for a spec sweeping a dataset parameter that
changes it) and the sensitivity figure (val loss over a swept regularizer parameter).

Most tests use generated stores: real SQLite stores whose runs were finished with chosen
final losses and ``train_size``, so that every plotted point can be checked by hand. One
trains a tiny real digits sweep (1 epoch, 40 images) to see ``train_size`` come from a run.
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from helpers.reports import NONE_VAL, REGIME_SPEC, SIZES, finish_losses, fraction
from regsuite import plots, stats
from regsuite import regime as regimes
from regsuite import leaderboard as lb
from regsuite.store import Store

# Each set's val loss minus none's, per seed: the paired differences the figure must show.
DIFFS = {
    "l2": {0.25: [-0.3, -0.2, -0.1], 0.5: [-0.1, 0.0, 0.1], 1.0: [0.1, 0.2, 0.3]},
    "dropout": {0.25: [-0.4, -0.5, -0.6], 0.5: [-0.2, -0.2, -0.3], 1.0: [0.0, 0.05, -0.05]},
}

SENSITIVITY_SPEC = """
name = "strength-test"
task = "image_classification"
seeds = [0, 1]

[dataset]
name = "digits"

[model]
name = "small_cnn"

[training]
epochs = 2

[[sets]]
label = "none"

[[sets]]
label = "l2"
regularizers = [{ name = "l2", weight = { sweep = [1e-2, 1e-4, 1e-3] } }]
"""
STRENGTH_VAL = {None: [1.0, 1.2], 1e-4: [0.9, 1.1], 1e-3: [0.8, 0.9], 1e-2: [1.4, 1.6]}  # by weight, per seed


def regime_val(run) -> float:
    base = NONE_VAL[fraction(run)][run.seed]
    return base if run.label == "none" else base + DIFFS[run.label][fraction(run)][run.seed]


@pytest.fixture
def regime_store(tmp_path) -> Path:
    return finish_losses(tmp_path / "regime-results", tmp_path, REGIME_SPEC, regime_val,
                       lambda run: SIZES[fraction(run)])


def figures(results: Path, name: str, kind, where=None):
    with Store(results, create=False) as store:
        board = lb.build(store, name, where=where)
        return kind(board, store.spec_info(name)["spec"])


def written(results: Path, name: str, folder: Path, where=None) -> set[str]:
    with Store(results, create=False) as store:
        board = lb.build(store, name, where=where) if where else None
        files = plots.write_plots(store, name, folder, board)
    names = {f.path.name for f in files}
    assert all((folder / name).is_file() for name in names)
    return names


def by_label(panel: plots.Panel) -> dict[str, plots.Line]:
    return {line.label: line for line in panel.lines}


# ---------------------------------------------------------------------------- the regime figure


def test_the_regime_figure_is_written_with_the_other_summary_figures(regime_store, tmp_path):
    folder = tmp_path / "plots"
    with Store(regime_store, create=False) as store:
        files = plots.write_plots(store, "regime-test", folder)
    names = [f.path.name for f in files]
    assert "regime.png" in names and "sensitivity.png" not in names
    overviews = [n for n in names if n.endswith("overview.png")]
    assert len(overviews) == 3 and names.index("regime.png") == len(overviews)  # after the overviews, before rows
    regime = files[names.index("regime.png")]
    assert regime.row is None and "Δ val loss against 'none' by training-set size" in regime.title
    assert regime.band == "line = mean Δ over seeds, band = 95% t interval"  # the export says so below it
    assert {f.band for f in files if f is not regime} == {plots.BAND}
    assert (folder / "regime.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "regime.png" in json.loads((folder / plots.MANIFEST).read_text())["files"]


def test_the_regime_points_are_the_paired_differences_over_sorted_sizes(regime_store):
    [figure] = figures(regime_store, "regime-test", plots.regime_figures)
    [panel] = figure.panels
    assert figure.stem == "regime" and panel.log_x and "train_size" in panel.xlabel
    assert [level.y for level in panel.levels] == [0.0] and "none" in panel.levels[0].label
    lines = by_label(panel)
    assert list(lines) == ["l2", "dropout"]  # the spec's order; no line for the baseline
    for label, line in lines.items():
        assert [p.x for p in line.points] == [314, 628, 1257]
        for point, share in zip(line.points, (0.25, 0.5, 1.0)):
            diffs = DIFFS[label][share]
            assert point.mean == pytest.approx(statistics.fmean(diffs))
            expected = stats.paired_difference(
                {s: NONE_VAL[share][s] + d for s, d in enumerate(diffs)}, dict(enumerate(NONE_VAL[share])))
            assert (point.low, point.high, point.n) == pytest.approx((expected.low, expected.high, 3))
    # l2 goes from helping at 314 images to hurting at 1,257: -0.2, 0.0, +0.2
    assert [p.mean for p in lines["l2"].points] == pytest.approx([-0.2, 0.0, 0.2])
    # each tick names the size and the swept fraction it came from
    assert panel.ticks == {314.0: "314\ntrain_fraction=0.25", 628.0: "628\ntrain_fraction=0.5",
                           1257.0: "1257\ntrain_fraction=1"}


def test_runs_without_train_size_fall_back_to_the_swept_value(tmp_path):
    results = finish_losses(tmp_path / "old-results", tmp_path, REGIME_SPEC, regime_val)  # no train_size
    [figure] = figures(results, "regime-test", plots.regime_figures)
    [panel] = figure.panels
    assert panel.xlabel == "train_fraction, log scale"
    line = by_label(panel)["dropout"]
    assert [p.x for p in line.points] == [0.25, 0.5, 1.0]
    assert [p.mean for p in line.points] == pytest.approx([-0.5, -0.7 / 3, 0.0])
    assert "regime.png" in written(results, "regime-test", tmp_path / "plots")


def test_a_regime_figure_that_no_longer_applies_is_removed(regime_store, tmp_path):
    folder = tmp_path / "plots"
    mine = folder / "notes.png"
    assert "regime.png" in written(regime_store, "regime-test", folder)
    mine.write_bytes(b"the user's own file")
    # one fraction left: no sizes to compare, so no regime figure, and the old one goes
    names = written(regime_store, "regime-test", folder, where={"train_fraction": "0.5"})
    assert "regime.png" not in names and not (folder / "regime.png").exists()
    assert {p.name for p in folder.glob("*.png")} == names | {"notes.png"}
    assert mine.read_bytes() == b"the user's own file"


def test_no_regime_figure_without_a_size_changing_dataset_sweep(tmp_path):
    plain = REGIME_SPEC.replace("train_fraction = { sweep = [1.0, 0.25, 0.5] }", "train_fraction = 0.5")
    results = finish_losses(tmp_path / "plain", tmp_path, plain, lambda run: 1.0 + run.seed, lambda run: 628)
    assert figures(results, "regime-test", plots.regime_figures) == []
    assert not {"regime.png", "sensitivity.png"} & written(results, "regime-test", tmp_path / "plain-plots")
    # a dataset sweep that keeps the size (another subsample of the same size) is no regime either
    reseeded = REGIME_SPEC.replace("train_fraction = { sweep = [1.0, 0.25, 0.5] }",
                                   "train_fraction = 0.5\nsubset_seed = { sweep = [0, 1] }")
    results = finish_losses(tmp_path / "reseeded", tmp_path, reseeded, lambda run: 1.0 + run.seed, lambda run: 628)
    assert figures(results, "regime-test", plots.regime_figures) == []
    assert "regime.png" not in written(results, "regime-test", tmp_path / "reseeded-plots")


# ---------------------------------------------------------------------------- the sensitivity figure


def weight(run) -> float | None:
    return run.config["regularizers"][0]["params"]["weight"] if run.config["regularizers"] else None


def test_the_sensitivity_figure_plots_val_loss_over_the_swept_strength(tmp_path):
    results = finish_losses(tmp_path / "results", tmp_path, SENSITIVITY_SPEC,
                          lambda run: STRENGTH_VAL[weight(run)][run.seed], lambda run: 1257)
    assert figures(results, "strength-test", plots.regime_figures) == []
    [figure] = figures(results, "strength-test", plots.sensitivity_figures)
    [panel] = figure.panels
    assert figure.stem == "sensitivity" and panel.title == "l2: weight"
    assert panel.log_x and panel.xlabel == "weight (log scale)"  # 1e-4 … 1e-2 spans 100×
    [line] = panel.lines
    assert [p.x for p in line.points] == [1e-4, 1e-3, 1e-2]
    assert [p.mean for p in line.points] == pytest.approx([1.0, 0.85, 1.5])
    assert [p.low for p in line.points] == pytest.approx([0.9, 0.8, 1.4])  # the band: min–max over seeds
    assert [p.high for p in line.points] == pytest.approx([1.1, 0.9, 1.6]) and {p.n for p in line.points} == {2}
    [level] = panel.levels
    assert level.y == pytest.approx(1.1) and level.label.startswith("none (baseline)")
    names = written(results, "strength-test", tmp_path / "plots")
    assert "sensitivity.png" in names and "regime.png" not in names


def test_sensitivity_draws_one_line_per_dataset_variant_and_a_narrow_sweep_stays_linear(tmp_path):
    text = SENSITIVITY_SPEC.replace('name = "digits"', 'name = "digits"\ntrain_fraction = { sweep = [0.5, 1.0] }')
    text = text.replace("{ sweep = [1e-2, 1e-4, 1e-3] }", "{ sweep = [2e-3, 1e-3] }")
    vals = {None: 1.0, 1e-3: 0.9, 2e-3: 0.8}
    results = finish_losses(tmp_path / "results", tmp_path, text,
                          lambda run: vals[weight(run)] + (1 - fraction(run)) + 0.1 * run.seed,
                          lambda run: int(1257 * fraction(run)))
    [figure] = figures(results, "strength-test", plots.sensitivity_figures)
    [panel] = figure.panels
    assert not panel.log_x and panel.xlabel == "weight"  # 2× is no span for a log axis
    lines = by_label(panel)
    assert set(lines) == {"digits (train_fraction=0.5)", "digits (train_fraction=1.0)"}
    assert [p.mean for p in lines["digits (train_fraction=0.5)"].points] == pytest.approx([1.45, 1.35])
    assert sorted(level.y for level in panel.levels) == pytest.approx([1.05, 1.55])  # each variant's baseline
    # the same spec sweeps a size: its regime figure has one line per swept weight
    [regime] = figures(results, "strength-test", plots.regime_figures)
    assert [line.label for line in regime.panels[0].lines] == ["l2 (weight=0.002)", "l2 (weight=0.001)"]
    assert {"regime.png", "sensitivity.png"} <= written(results, "strength-test", tmp_path / "plots")


# ---------------------------------------------------------------------------- real runs


def test_a_real_sweep_records_train_size_and_gets_both_figures(files, tmp_path):
    from typer.testing import CliRunner

    from regsuite.cli import app

    spec = files({"real.toml": """
        name = "real"
        task = "image_classification"
        seeds = [0, 1]

        [dataset]
        name = "digits"
        train_limit = 40
        train_fraction = { sweep = [0.5, 1.0] }

        [model]
        name = "small_cnn"
        width = 4
        hidden = 16

        [training]
        epochs = 1
        batch_size = 32

        [execution]
        workers = 0

        [[sets]]
        label = "none"

        [[sets]]
        label = "l2"
        regularizers = [{ name = "l2", weight = { sweep = [1e-4, 1e-2] } }]
    """}) / "real.toml"
    results = tmp_path / "real-results"
    result = CliRunner().invoke(app, ["run", str(spec), "--results", str(results), "--no-plots"])
    assert result.exit_code == 0, result.output
    with Store(results, create=False) as store:
        board = lb.build(store, "real")
        assert {r.swept["train_fraction"]: regimes.train_size(r) for r in board.rows} == {0.5: 20, 1.0: 40}
    [regime] = figures(results, "real", plots.regime_figures)
    assert all([p.x for p in line.points] == [20, 40] for line in regime.panels[0].lines)
    assert {"regime.png", "sensitivity.png"} <= written(results, "real", tmp_path / "plots")


def test_a_point_whose_neighbours_have_no_band_shows_its_interval_as_an_error_bar():
    panel = plots.Panel(title="t", xlabel="x", ylabel="y", lines=[])
    alone = plots.Line("alone", [plots.Point(1, 0.1), plots.Point(2, 0.2, 0.0, 0.4, 2), plots.Point(4, 0.3)])
    paired = plots.Line("paired", [plots.Point(1, 0.1, 0.0, 0.2, 3), plots.Point(2, 0.2, 0.1, 0.3, 3)])
    _, (ax,) = plots.new_figure(1)
    plots.draw_line(ax, panel, alone, "C0")
    assert len(ax.containers) == 1
    (bar,) = ax.containers[0].lines[2]
    assert [list(map(list, segment)) for segment in bar.get_segments()] == [[[2.0, 0.0], [2.0, 0.4]]]
    plots.draw_line(ax, panel, paired, "C1")
    assert len(ax.containers) == 1  # a band between its two points, no error bar


def test_tick_labels_that_would_overprint_their_neighbour_are_left_blank():
    ticks = {3.75e-3: "0.00375", 6.25e-4: "0.000625", 6.57e-4: "0.000657", 1.26e-5: "1.26e-05"}
    assert plots.uncrowded(ticks, log_x=True) == ["1.26e-05", "0.000625", "", "0.00375"]
    assert plots.uncrowded({0.1: "0.1", 0.5: "0.5", 1.0: "1"}, log_x=False) == ["0.1", "0.5", "1"]


def test_the_regime_lines_are_drawn_side_by_side_around_each_size(regime_store):
    """Intervals at one size would hide each other: each line is drawn a little apart (a share
    of a decade on the log axis), symmetric around the true size, which the points keep."""
    [figure] = figures(regime_store, "regime-test", plots.regime_figures)
    [panel] = figure.panels
    first, second = (plots.x_positions(panel, line.points, i) for i, line in enumerate(panel.lines))
    sizes = [314.0, 628.0, 1257.0]
    assert [p.x for p in panel.lines[0].points] == sizes  # the numbers are the sizes
    assert list(first) == pytest.approx([x * 10 ** (-panel.dodge / 2) for x in sizes])
    assert list(second) == pytest.approx([x * 10 ** (panel.dodge / 2) for x in sizes])
    assert 0 < panel.dodge < 0.05  # far less than the gap between two sizes
    figure_path = plots.save(plots.summary_figure(figure), regime_store / "regime.png")
    assert figure_path.read_bytes()[:4] == b"\x89PNG"
