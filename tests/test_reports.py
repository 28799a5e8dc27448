"""Reports: leaderboard statistics and sections, plots, the published export, bad input.

Two kinds of stores:
- ``trained``: a tiny real spec (digits, small CNN, 2 epochs, 2 seeds) trained once per session
  through ``regsuite run``, for what only real runs show (plots, the export, CLI plumbing);
- ``handmade``: a real SQLite store whose runs were finished with chosen per-epoch numbers (as
  some task declaring an F1 metric would report them), so that every statistic in the tables
  can be checked against a value computed by hand (:mod:`helpers.reports`).
"""
from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path
from textwrap import dedent

import pytest
from helpers.reports import FINAL, make_handmade, markdown_rows
from typer.testing import CliRunner

from regsuite import cli
from regsuite import leaderboard as lb
from regsuite.cli import app
from regsuite.store import Store

runner = CliRunner()

TRAINED_SPEC = """
name = "tiny"
task = "image_classification"
seeds = [0, 1]

[dataset]
name = "digits"
train_limit = 60

[model]
name = "small_cnn"
width = 4
hidden = 16

[training]
epochs = 2
batch_size = 32

[execution]
workers = 0           # in this process: these tests are about reports, not executors

[[sets]]
label = "none"
regularizers = []
reference = { train_loss = 1.556, val_loss = 2.347 }

[[sets]]
label = "l2 + dropout"
regularizers = [{ name = "l2", weight = 1e-3 }, { name = "dropout", p = 0.25 }]
reference = { train_loss = 1.72, val_loss = 2.295 }
"""


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(autouse=True)
def console_width(monkeypatch):
    monkeypatch.setattr(cli.console, "_width", 120)


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


# ---------------------------------------------------------------------------- a real trained spec


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("trained")
    spec = root / "tiny.toml"
    spec.write_text(dedent(TRAINED_SPEC).lstrip(), encoding="utf-8")
    results = root / "results"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cli.console, "_width", 120)
        result = invoke("run", spec, "--results", results)
    assert result.exit_code == 0, result.output
    return {"spec": spec, "results": results, "output": result.stdout, "text": spec.read_text()}


@pytest.fixture
def trained_copy(trained, tmp_path) -> Path:
    """A private copy of the trained results, for tests that change the store."""
    return Path(shutil.copytree(trained["results"], tmp_path / "results-copy"))


def test_run_writes_the_plots_and_prints_their_paths(trained):
    folder = trained["results"] / "plots" / "tiny"
    names = sorted(p.name for p in folder.glob("*.png"))
    assert names == ["l2-dropout.png", "none.png", "overview.png"]
    assert "plots (3) in" in trained["output"]
    for name in names:
        assert str(folder / name) in trained["output"].replace("\n", "")
        width, height = png_size(folder / name)
        assert 600 <= width <= 1400 and 250 <= height <= 600  # dpi 100: small files
        assert (folder / name).stat().st_size < 250_000


def test_run_with_no_plots_writes_none(trained, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(trained["results"], results, ignore=shutil.ignore_patterns("plots"))
    result = invoke("run", trained["spec"], "--results", results, "--no-plots")
    assert result.exit_code == 0, result.output
    assert "trained 0, already done 4" in result.stdout
    assert not (results / "plots").exists() and "plots (" not in result.stdout


def test_rich_leaderboard_fits_120_columns_and_has_every_section(trained):
    result = invoke("leaderboard", "tiny", "--results", trained["results"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 120
    text = result.stdout
    for expected in ("tiny — image_classification / digits / small_cnn", "none (baseline)", "l2 + dropout",
                     "Δ val loss", "[95% CI]", "Overfitting diagnostics", "best", "reference values",
                     "1.556", "2.347", "0.791", "2.295"):  # 0.791 = the study gap 2.347 − 1.556
        assert expected in text, expected


def test_the_leaderboard_statistics_are_those_of_the_stored_runs(trained):
    with Store(trained["results"], create=False) as store:
        board = lb.build(store, "tiny")
        by_label = {row.label: row for row in board.rows}
        finals = {label: {run.seed: run.summary["final"] for run in row.runs} for label, row in by_label.items()}
    base, other = finals["none"], finals["l2 + dropout"]
    diffs = [other[s]["val_loss"] - base[s]["val_loss"] for s in (0, 1)]
    delta = by_label["l2 + dropout"].deltas["delta_val_loss"]
    mean = sum(diffs) / 2
    sd = abs(diffs[0] - diffs[1]) / 2 ** 0.5  # the sample sd of two values
    half = 12.706205 * sd / 2 ** 0.5  # t(0.975, 1) · sd / √2
    assert delta.n == 2 and delta.mean == pytest.approx(mean)
    assert delta.low == pytest.approx(mean - half, rel=1e-6) and delta.high == pytest.approx(mean + half, rel=1e-6)
    vals = [base[s]["val_loss"] for s in (0, 1)]
    assert by_label["none"].mean("val_loss") == pytest.approx(sum(vals) / 2)
    assert by_label["none"].std("val_loss") == pytest.approx(abs(vals[0] - vals[1]) / 2 ** 0.5)
    assert by_label["none"].is_baseline and not by_label["none"].deltas


def test_export_writes_markdown_with_header_links_and_plots(trained, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec_file = tmp_path / "specs" / "tiny.toml"
    spec_file.parent.mkdir()
    # The spec file says 3 epochs; the stored runs had 2, so the reproduce line must say so.
    spec_file.write_text(trained["text"].replace("epochs = 2", "epochs = 3"), encoding="utf-8")
    args = ["leaderboard", "tiny", "--results", str(trained["results"]), "--export"]
    monkeypatch.setattr("sys.argv", ["regsuite", *args])  # what the shell would have passed
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    md = (tmp_path / "leaderboard" / "tiny.md").read_text(encoding="utf-8")
    import torch

    assert md.startswith("# regsuite leaderboard: tiny\n")
    for expected in (f"torch {torch.__version__}", "- device: cpu", "- generated: ",
                     "- reproduce the runs: `regsuite run specs/tiny.toml --set training.epochs=2`",
                     "- this file: `regsuite leaderboard tiny --results", "--export`",
                     "| regularizers", "Δ val loss [95% CI]", "reference train loss", "gap at best epoch",
                     "## Learning curves", "min–max over seeds", "resolved spec"):
        assert expected in md, expected
    links = [line.split("](")[1].rstrip(")") for line in md.splitlines() if line.startswith("![")]
    assert sorted(links) == ["tiny/l2-dropout.png", "tiny/none.png", "tiny/overview.png"]
    for link in links:
        png_size(tmp_path / "leaderboard" / link)


def test_plot_command_writes_into_out_and_removes_stale_files(trained, tmp_path):
    stale = tmp_path / "plots" / "tiny" / "a-row-that-is-gone.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    # as an earlier `regsuite plot` recorded it: only files regsuite wrote are ever removed
    (stale.parent / ".regsuite-plots.json").write_text(
        json.dumps({"format": "regsuite-plots", "files": ["a-row-that-is-gone.png"]}))
    result = invoke("plot", "--results", trained["results"], "--out", tmp_path / "plots")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in stale.parent.glob("*.png")) == ["l2-dropout.png", "none.png", "overview.png"]
    assert "overview.png" in result.stdout


# ---------------------------------------------------------------------------- hand-made numbers

@pytest.fixture
def handmade(tmp_path) -> Path:
    return make_handmade(tmp_path / "handmade-results", tmp_path)


def test_markdown_statistics_match_hand_computed_values(handmade):
    result = invoke("leaderboard", "handmade", "--results", handmade, "--format", "markdown")
    assert result.exit_code == 0, result.output
    main = markdown_rows(result.stdout, "Final epoch")
    assert list(main) == ["dropout", "none", "l2"]  # ranked by final val loss
    assert main["l2"]["Δ val loss [95% CI]"] == "+2.000 [-0.484, +4.484]"
    assert main["l2"]["Δ gap [95% CI]"] == "+2.000 [-0.484, +4.484]"
    assert main["dropout"]["Δ val loss [95% CI]"] == "**-0.200 [-0.225, -0.175]**"  # excludes 0
    assert main["dropout"]["Δ gap [95% CI]"] == "**-0.700 [-0.725, -0.675]**"
    assert main["none"]["Δ val loss [95% CI]"] == "baseline"
    assert main["l2"]["val loss"] == "4.000 ± 1.000"
    assert main["none"]["val F1"] == "0.620 ± 0.020"  # columns follow the task's declared metrics
    assert main["none"]["n"] == "3"
    assert "val acc" not in result.stdout
    diagnostics = markdown_rows(result.stdout, "Overfitting diagnostics")
    assert diagnostics["none"]["best epoch"] == "2.0 ± 0.0"
    assert diagnostics["none"]["val loss at best"] == "1.900 ± 0.000"
    assert diagnostics["none"]["val loss rise after best (final − best)"] == "0.100 ± 0.000"
    assert diagnostics["none"]["gap at best epoch"] == "0.400 ± 0.000"  # 1.9 − (1.0 + 0.5)
    assert diagnostics["none"]["gap at final epoch"] == "1.000 ± 0.000"
    reference = markdown_rows(result.stdout, "Measured beside")
    assert reference["dropout"]["train loss"] == "1.500 ± 0.000"
    assert reference["dropout"]["reference train loss"] == "1.000"
    assert reference["dropout"]["reference gap"] == "1.500"  # 2.5 − 1.0, derived
    assert reference["none"]["reference val loss"] == "—"


def test_json_and_csv_carry_the_intervals(handmade):
    rows = json.loads(invoke("leaderboard", "handmade", "--results", handmade, "-f", "json").stdout)["rows"]
    l2 = next(r for r in rows if r["label"] == "l2")
    assert l2["delta_val_loss"] == pytest.approx(2.0)
    assert l2["delta_val_loss_ci_low"] == pytest.approx(2 - 2.484138, abs=1e-6)
    assert l2["delta_val_loss_n"] == 3 and l2["val_loss_n"] == 3 and l2["val_loss_std"] == pytest.approx(1.0)
    header = invoke("leaderboard", "handmade", "--results", handmade, "-f", "csv").stdout.splitlines()[0]
    assert "delta_gap_ci_high" in header and "val_f1_std" in header


@pytest.mark.parametrize("column, order", [
    ("val_f1", ["dropout", "none", "l2"]),  # higher is better: highest first
    ("gap", ["dropout", "none", "l2"]),
    ("train_loss", ["none", "l2", "dropout"]),  # ties keep spec order
    ("delta_val_loss", ["dropout", "none", "l2"]),
    ("label", ["dropout", "l2", "none"]),
])
def test_sort_by_any_column(handmade, column, order):
    rows = json.loads(invoke("leaderboard", "handmade", "--results", handmade, "-f", "json", "--sort", column).stdout)
    assert [r["label"] for r in rows["rows"]] == order


def test_unknown_sort_column_is_one_clear_error(handmade):
    result = invoke("leaderboard", "handmade", "--results", handmade, "--sort", "val_acc")
    assert result.exit_code == 2
    assert "cannot sort by 'val_acc'" in result.stderr
    assert "val_f1" in result.stderr and "delta_val_loss" in result.stderr and "best_epoch" in result.stderr
    assert "Traceback" not in result.output


def test_plots_follow_the_declared_metric(handmade, tmp_path):
    result = invoke("plot", "handmade", "--results", handmade)
    assert result.exit_code == 0, result.output
    folder = handmade / "plots" / "handmade"
    assert sorted(p.name for p in folder.glob("*.png")) == ["dropout.png", "l2.png", "none.png", "overview.png"]


def test_model_variants_get_their_own_rows_and_pairings(tmp_path):
    results = make_handmade(tmp_path / "results", tmp_path, two_models=True)
    result = invoke("leaderboard", "handmade", "--results", results, "--format", "markdown")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout[result.stdout.index("Final epoch"):].splitlines()[2:]]
    lines = lines[: next(i for i, line in enumerate(lines) if not line.startswith("|"))]
    heads = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [dict(zip(heads, (c.strip() for c in line.strip("|").split("|")))) for line in lines[2:]]
    assert len(rows) == 6 and {r["model"] for r in rows} == {"small_cnn (width=4)", "small_cnn (width=8)"}
    for row in rows:  # each model against its own baseline: the same differences for both
        if row["regularizers"] == "l2":
            assert row["Δ val loss [95% CI]"] == "+2.000 [-0.484, +4.484]"
            assert row["val loss"] == ("4.000 ± 1.000" if row["model"].endswith("4)") else "5.000 ± 1.000")
    plotted = invoke("plot", "handmade", "--results", results)
    assert plotted.exit_code == 0, plotted.output
    names = {p.name for p in (results / "plots" / "handmade").glob("*.png")}
    assert "digits-small-cnn-width-4-overview.png" in names and "digits-small-cnn-width-8-l2.png" in names
    assert len(names) == 2 + 6


# ---------------------------------------------------------------------------- bad input


def test_unfinished_runs_show_what_exists_and_name_what_is_missing(tmp_path):
    results = make_handmade(tmp_path / "results", tmp_path, unfinished={("l2", 1), ("l2", 2)})
    result = invoke("leaderboard", "handmade", "--results", results, "--format", "markdown")
    assert result.exit_code == 0, result.output
    main = markdown_rows(result.stdout, "Final epoch")
    assert main["l2"]["n"] == "1/3"
    assert main["l2"]["Δ val loss [95% CI]"] == "+1.000 (n too small)"
    assert "2 planned run(s) not finished" in result.stderr
    assert "digits / small_cnn / l2 / seed 1: pending" in result.stderr
    assert "regsuite run specs/handmade.toml" in result.stderr


def test_export_refuses_unfinished_runs_unless_partial(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    results = make_handmade(tmp_path / "results", tmp_path, unfinished={("l2", 2)})
    refused = invoke("leaderboard", "handmade", "--results", results, "--export")
    assert refused.exit_code == 2
    assert "1 unfinished run(s)" in refused.stderr and "--partial" in refused.stderr
    assert not (tmp_path / "leaderboard").exists()
    partial = invoke("leaderboard", "handmade", "--results", results, "--export", "--partial")
    assert partial.exit_code == 0, partial.output
    assert "1 planned run(s) not finished" in (tmp_path / "leaderboard" / "handmade.md").read_text()


def test_no_finished_run_at_all(tmp_path):
    results = make_handmade(tmp_path / "results", tmp_path, unfinished={(l, s) for l in FINAL for s in range(3)})
    for command in ("leaderboard", "plot"):
        result = invoke(command, "handmade", "--results", results)
        assert result.exit_code == 2
        assert "has no finished runs yet (9 pending)" in result.stderr
        assert "Traceback" not in result.output


@pytest.mark.parametrize("command", ["leaderboard", "plot"])
def test_results_folder_without_runs(tmp_path, command):
    missing = invoke(command, "--results", tmp_path / "nothing-here")
    assert missing.exit_code == 2 and "no results store at" in missing.stderr
    Store(tmp_path / "empty").close()
    empty = invoke(command, "--results", tmp_path / "empty")
    assert empty.exit_code == 2 and "holds no runs" in empty.stderr
    unknown = invoke(command, "other", "--results", tmp_path / "empty")
    assert unknown.exit_code == 2 and "no results for spec 'other'" in unknown.stderr
    for result in (missing, empty, unknown):
        assert "Traceback" not in result.output


def test_a_row_that_trained_exactly_as_another_is_named(tmp_path):
    """An early stop that never came leaves a run identical to the baseline's: the table says so
    instead of letting two equal rows pass for two measurements."""
    from helpers.reports import HANDMADE_SPEC, finish_runs, history
    spec = tmp_path / "handmade.toml"
    spec.write_text(dedent(HANDMADE_SPEC).lstrip() + dedent("""
        [[sets]]
        label = "early stopping"
        regularizers = [{ name = "early_stopping", patience = 5 }]
        """), encoding="utf-8")

    def one_seed_apart(run):
        label = "none" if run.label == "early stopping" else run.label
        if run.label == "early stopping" and run.seed == 2:
            return history(label, 1.0, 2.0001, 0.5)
        return history(label, *FINAL[label][run.seed])

    results = finish_runs(tmp_path / "results", spec, one_seed_apart, extra=lambda run: {"metrics": []})
    with Store(results, readonly=True) as store:
        board = lb.build(store, "handmade")
    assert not any("trained exactly as" in note for note in board.notes)  # seed 2 tells them apart

    def same(run):
        label = "none" if run.label == "early stopping" else run.label
        return history(label, *FINAL[label][run.seed])

    results = finish_runs(tmp_path / "same", spec, same, extra=lambda run: {"metrics": []})
    result = invoke("leaderboard", "handmade", "--results", results, "--format", "markdown")
    assert result.exit_code == 0, result.output
    assert "'early stopping' trained exactly as 'none' (every final loss equal to the last bit, seeds 0, 1, 2)" \
        in result.stdout
    assert sum("trained exactly as" in line for line in result.stdout.splitlines()) == 1


def test_a_spec_stored_before_a_setting_existed_still_gets_its_reproduce_command(tmp_path, monkeypatch):
    """Settings added since (training.channels_last, compile) are absent from an older stored
    spec; at their defaults they are no difference, so the spec file plus --set still rebuilds it."""
    from regsuite import export
    from regsuite.registry import get_registry
    from regsuite.spec import load_spec

    monkeypatch.chdir(tmp_path)
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "tiny.toml").write_text(TRAINED_SPEC.replace("epochs = 2", "epochs = 3"), encoding="utf-8")
    stored = json.loads(load_spec(tmp_path / "specs" / "tiny.toml").model_dump_json())
    stored["training"]["epochs"] = 2
    for later in ("channels_last", "compile"):
        del stored["training"][later]
    command = export.reproduce_command("tiny", stored, get_registry())
    assert command == "regsuite run specs/tiny.toml --set training.epochs=2"
    stored["training"]["made_up"] = 1  # not a setting of today's spec: no command rather than a wrong one
    assert export.reproduce_command("tiny", stored, get_registry()) is None
