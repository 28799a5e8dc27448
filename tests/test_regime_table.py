"""The leaderboard's data-regime table (regsuite.regime): per set, its Δ val loss against the
baseline at each training-set size, and the change from the largest size to the smallest with
a Welch interval and a verdict. Generated stores: real SQLite stores whose runs were finished
with chosen final losses and ``train_size``, so every cell can be checked by hand."""
from __future__ import annotations

import csv
import io
import json
import statistics
from pathlib import Path

import pytest
from scipy.stats import ttest_ind

from helpers import reports
from helpers.reports import NONE_VAL, REGIME_SPEC, SIZES, finish_losses, fraction
from regsuite import leaderboard as lb
from regsuite import regime as regimes
from regsuite import stats
from regsuite.store import Store

SPEC = REGIME_SPEC.replace('name = "regime-test"', 'name = "regime-table"') + """
[[sets]]
label = "augmentation"
regularizers = [{ name = "augmentation" }]
"""
# Each set's val loss minus none's, per seed.
DIFFS = {
    # helps at 314 images, hurts at 1,257: change -0.4, Welch CI about [-0.63, -0.17] → better
    "l2": {0.25: [-0.3, -0.2, -0.1], 0.5: [-0.1, 0.0, 0.1], 1.0: [0.1, 0.2, 0.3]},
    # hurts at 314, nothing at 1,257: change +0.6 → worse
    "dropout": {0.25: [0.5, 0.6, 0.7], 0.5: [0.2, 0.2, 0.3], 1.0: [0.0, 0.05, -0.05]},
    # noise around 0 at both ends → no change detected
    "augmentation": {0.25: [-0.2, 0.2, 0.0], 0.5: [0.0, 0.1, -0.1], 1.0: [-0.1, 0.1, 0.0]},
}


def val_loss(run) -> float:
    base = NONE_VAL[fraction(run)][run.seed]
    return base if run.label == "none" else base + DIFFS[run.label][fraction(run)][run.seed]


def finish(tmp_path: Path, text: str = SPEC, sizes: bool = True) -> Path:
    return finish_losses(tmp_path / "results", tmp_path, text, val_loss, (lambda run: SIZES[fraction(run)]) if sizes else None)


def board_of(results: Path, where=None) -> lb.Leaderboard:
    with Store(results, create=False) as store:
        return lb.build(store, "regime-table", where=where)


@pytest.fixture
def results(tmp_path) -> Path:
    return finish(tmp_path)


def test_each_size_shows_the_paired_delta_and_the_change_is_welch(results):
    [table] = board_of(results).regime
    assert table.sizes == [314, 628, 1257] and table.axis.by_size
    lines = {line.label: line for line in table.lines}
    assert list(lines) == ["l2", "dropout", "augmentation"]  # the spec's order, no baseline line
    for label, line in lines.items():
        assert list(line.deltas) == [314, 628, 1257]
        for share, size in SIZES.items():
            assert line.deltas[size].mean == pytest.approx(statistics.fmean(DIFFS[label][share]))
            assert line.deltas[size].n == 3
        scarce, full = DIFFS[label][0.25], DIFFS[label][1.0]
        expected = ttest_ind(scarce, full, equal_var=False).confidence_interval(0.95)
        assert line.change.mean == pytest.approx(statistics.fmean(scarce) - statistics.fmean(full))
        assert (line.change.low, line.change.high) == pytest.approx((expected.low, expected.high))
    assert {label: line.verdict for label, line in lines.items()} == {
        "l2": regimes.BETTER, "dropout": regimes.WORSE, "augmentation": regimes.NO_CHANGE}


def test_the_markdown_table_names_each_size_and_highlights_what_excludes_zero(results):
    text = lb.to_markdown(board_of(results))
    rows = reports.markdown_rows(text, "Data regime: Δ val loss against 'none'")
    assert list(rows["l2"]) == ["regularizers", "Δ at 314 (train_fraction=0.25)", "Δ at 628 (train_fraction=0.5)",
                     "Δ at 1257 (train_fraction=1)", "smallest − largest [95% CI]", "with less data"]
    assert rows["l2"]["with less data"] == "better with less data"
    assert rows["l2"]["smallest − largest [95% CI]"].startswith("**-0.400 [")
    assert rows["dropout"]["Δ at 314 (train_fraction=0.25)"].startswith("**+0.600 [")
    assert rows["augmentation"]["smallest − largest [95% CI]"].startswith("+0.000 [")  # not bold: spans 0
    assert rows["augmentation"]["with less data"] == "no change detected"
    assert "Welch t interval" in text  # the footnote says how the change is computed


def test_json_and_csv_carry_the_regime_records(results):
    board = board_of(results)
    records = json.loads(lb.to_json(board))["regime"]
    by_set = {r["set"]: r for r in records}
    assert by_set["dropout"]["verdict"] == regimes.WORSE and by_set["dropout"]["size_axis"] == "train_size"
    assert [d["size"] for d in by_set["dropout"]["deltas"]] == [314, 628, 1257]
    assert by_set["dropout"]["change"] == pytest.approx(0.6)
    blocks = lb.to_csv(board).split("\n\n")
    regime_rows = list(csv.DictReader(io.StringIO(blocks[1])))
    assert [r["set"] for r in regime_rows] == ["l2", "dropout", "augmentation"]
    assert json.loads(regime_rows[0]["deltas"])[0]["size"] == 314


def test_without_train_size_the_swept_fraction_is_the_axis(tmp_path):
    [table] = board_of(finish(tmp_path, sizes=False)).regime
    assert table.sizes == [0.25, 0.5, 1.0] and not table.axis.by_size and table.axis.name == "train_fraction"
    assert table.axis.heading(0.25) == "train_fraction=0.25"
    assert {line.label: line.verdict for line in table.lines}["l2"] == regimes.BETTER


def test_one_seed_gives_deltas_but_no_verdict(tmp_path):
    [table] = board_of(finish(tmp_path, SPEC.replace("seeds = [0, 1, 2]", "seeds = [0]"))).regime
    line = table.lines[0]
    assert line.deltas[314].low is None and line.change.mean == pytest.approx(-0.3 - 0.1)
    assert line.change.low is None and line.verdict == regimes.TOO_FEW
    assert "(n too small)" in lb.to_markdown(board_of(tmp_path / "results"))


def test_no_regime_table_with_one_size_or_without_a_size_sweep(results, tmp_path):
    assert board_of(results, where={"train_fraction": "0.5"}).regime == []
    assert "Data regime" not in lb.to_markdown(board_of(results, where={"train_fraction": "0.5"}))
    plain = tmp_path / "plain"
    plain.mkdir()
    assert board_of(finish(plain, SPEC.replace("{ sweep = [1.0, 0.25, 0.5] }", "0.5"))).regime == []


def test_mean_difference_matches_welch_and_degenerates_plainly():
    a, b = [1.0, 2.0, 3.5], [0.0, 0.4, 0.1, 0.3]
    expected = ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    d = stats.mean_difference(a, b)
    assert (d.low, d.high) == pytest.approx((expected.low, expected.high)) and (d.n_a, d.n_b) == (3, 4)
    assert stats.mean_difference([1.0, 1.0], [0.5, 0.5]) == stats.MeanDifference(0.5, 0.5, 0.5, 2, 2)
    assert stats.mean_difference([1.0], [0.0, 1.0]).low is None
    assert stats.mean_difference([], [1.0]).mean is None


def test_the_terminal_table_fits_120_columns_and_names_the_parameter_once(results):
    from rich.console import Console

    board = board_of(results)
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(lb.rich_regime(board, board.regime[0]))
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= 120
    assert next(line for line in lines if line.startswith("┏")).endswith("┓")  # not cropped
    text = "\n".join(lines)
    assert "in parentheses, each size's train_fraction" in text and "314 (0.25)" in text
    assert "train_fraction=" not in text
