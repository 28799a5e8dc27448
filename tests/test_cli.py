from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from regsuite.cli import app

from helpers.specs import TINY_SPEC

runner = CliRunner()


def invoke(*args: str, env: dict | None = None):
    return runner.invoke(app, list(args), env={"COLUMNS": "200", **(env or {})})


def test_run_then_rerun_trains_nothing_and_prints_the_same_table(tiny_spec, isolated_results):
    first = invoke("run", str(tiny_spec))
    assert first.exit_code == 0, first.output
    assert "trained 4, already done 0, failed 0" in first.stdout
    for text in ("train loss", "val loss", "gap", "val acc", "best epoch", "none (baseline)", "l2 + dropout"):
        assert text in first.stdout
    assert (isolated_results / "regsuite.db").is_file()
    second = invoke("run", str(tiny_spec))
    assert second.exit_code == 0
    assert "trained 0, already done 4, failed 0" in second.stdout
    table = lambda out: out[out.index("tiny —"): out.index("results:")]
    assert table(first.stdout) == table(second.stdout)


def test_leaderboard_formats(tiny_spec):
    assert invoke("run", str(tiny_spec)).exit_code == 0
    markdown = invoke("leaderboard", "--format", "markdown")
    assert markdown.exit_code == 0
    lines = [l for l in markdown.stdout.splitlines() if l.startswith("|")]
    assert lines[0].startswith("| regularizers") and set(lines[1]) <= set("|-: ")
    assert len(lines) == 3 * (2 + 2)  # main, diagnostics and reference tables: header, rule, two rows each
    rows = json.loads(invoke("leaderboard", "tiny", "--format", "json").stdout)["rows"]
    assert {r["label"] for r in rows} == {"none", "l2 + dropout"}
    assert all(r["seeds"] == 2 for r in rows)
    assert rows[0]["val_loss"] <= rows[1]["val_loss"]  # ranked by val loss
    by_label = {r["label"]: r for r in rows}
    assert by_label["l2 + dropout"]["ref_val_loss"] == 2.0
    assert abs(by_label["none"]["gap"] - (by_label["none"]["val_loss"] - by_label["none"]["train_loss"])) < 1e-9
    csv_out = invoke("leaderboard", str(tiny_spec), "--format", "csv").stdout.splitlines()
    assert csv_out[0].startswith("spec,task,label") and len(csv_out) == 3


def test_leaderboard_out_and_export(tiny_spec, tmp_path):
    assert invoke("run", str(tiny_spec)).exit_code == 0
    out = tmp_path / "board.md"
    assert invoke("leaderboard", "--format", "markdown", "--out", str(out)).exit_code == 0
    assert "| regularizers" in out.read_text()
    exported = invoke("leaderboard", "--export")
    assert exported.exit_code == 0, exported.output
    text = (tmp_path / "leaderboard" / "tiny.md").read_text()
    assert text.startswith("# regsuite leaderboard: tiny") and "torch" in text and "| regularizers" in text


def test_validate_lists_runs_and_writes_nothing(tiny_spec, isolated_results):
    result = invoke("validate", str(tiny_spec))
    assert result.exit_code == 0
    assert "4 runs, 0 done, 4 to train" in result.stdout
    assert not isolated_results.exists()
    assert invoke("run", str(tiny_spec), "--set", "seeds=[0]").exit_code == 0
    again = invoke("validate", str(tiny_spec))
    assert "4 runs, 2 done, 2 to train" in again.stdout
    assert again.stdout.count("done") >= 2


def test_plugins_lists_every_kind_with_provider_and_parameters():
    result = invoke("plugins")
    assert result.exit_code == 0
    for text in ("tasks", "datasets", "models", "regularizers", "image_classification", "digits", "small_cnn",
                 "dropout", "regsuite 0.1.0 (built-in)"):
        assert text in result.stdout, text
    for name, texts in (("dropout", ("float", "0.25", "≥ 0, < 1")), ("digits", ("train_limit", "int | None", "≥ 10"))):
        shown = invoke("plugins", name)  # the parameters: `regsuite plugins NAME`
        assert shown.exit_code == 0 and all(text in shown.stdout for text in texts), shown.output


BAD = {
    "missing": (None, "spec file not found"),
    "syntax": ('name = "x"\ntask =\n', "line 2"),
    "unknown plugin": (TINY_SPEC.replace('name = "l2"', 'name = "l3"'), "did you mean 'l2'"),
    "out of range": (TINY_SPEC.replace("p = 0.25", "p = 1.5"), "sets[1].regularizers[1].p"),
    "negative lr": (TINY_SPEC.replace("batch_size = 32", "batch_size = 32\nlr = -1"), "training.lr"),
    "zero epochs": (TINY_SPEC.replace("epochs = 2", "epochs = 0"), "training.epochs"),
    "unknown key": (TINY_SPEC.replace("epochs = 2", "epochs = 2\nepochz = 3"), "training.epochz: unknown key"),
    "no runs": ("models = []\n" + TINY_SPEC.replace('[model]\nname = "small_cnn"\nwidth = 4\nhidden = 16\n', ""), "'models' is empty"),
}


@pytest.mark.parametrize("command", ["run", "validate"])
@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_one_message_exit_2_nothing_written(case, command, files, tmp_path, isolated_results):
    text, expected = BAD[case]
    path = tmp_path / "missing.toml" if text is None else files({"bad.toml": text}) / "bad.toml"
    result = invoke(command, str(path))
    assert result.exit_code == 2, result.output
    assert expected in result.stderr
    assert "Traceback" not in result.output and result.stdout == ""
    assert not isolated_results.exists()


def test_bad_override_is_validated_like_the_file(tiny_spec, isolated_results):
    result = invoke("run", str(tiny_spec), "--set", "training.epochs=0")
    assert result.exit_code == 2 and "training.epochs" in result.stderr
    assert not isolated_results.exists()


def test_debug_env_shows_the_traceback(tmp_path):
    result = invoke("validate", str(tmp_path / "missing.toml"), env={"REGSUITE_DEBUG": "1"})
    assert result.exit_code != 0 and result.exception is not None


def test_leaderboard_without_results_is_a_clear_error(isolated_results):
    result = invoke("leaderboard")
    assert result.exit_code == 2 and "no results store" in result.stderr


def test_unknown_sort_column(tiny_spec):
    assert invoke("run", str(tiny_spec)).exit_code == 0
    result = invoke("leaderboard", "--sort", "nope")
    assert result.exit_code == 2 and "cannot sort by 'nope'" in result.stderr


def test_runs_of_a_part_of_the_grid_gather_in_the_whole_specs_leaderboard(tiny_spec):
    def seeds_per_row() -> dict[str, tuple[int, int]]:
        rows = json.loads(invoke("leaderboard", "tiny", "--format", "json").stdout)["rows"]
        return {r["label"]: (r["seeds"], r["planned_seeds"]) for r in rows}

    first = invoke("run", str(tiny_spec), "--set", "seeds=[0]")
    assert first.exit_code == 0, first.output
    assert "--set picks 2 of the spec's 4 runs" in first.stdout and "trained 2," in first.stdout
    assert seeds_per_row() == {"none": (1, 2), "l2 + dropout": (1, 2)}  # the whole spec, half of it done
    second = invoke("run", str(tiny_spec), "--set", "seeds=[1]")
    assert second.exit_code == 0 and "trained 2," in second.stdout
    assert seeds_per_row() == {"none": (2, 2), "l2 + dropout": (2, 2)}
    assert "trained 0, already done 4" in invoke("run", str(tiny_spec)).stdout
    # An override that changes what the runs compute is a spec of its own: its leaderboard is its runs.
    shorter = invoke("run", str(tiny_spec), "--set", "training.epochs=1", "--set", "seeds=[0]")
    assert shorter.exit_code == 0 and "picks" not in shorter.stdout and "trained 2," in shorter.stdout
    assert seeds_per_row() == {"none": (1, 1), "l2 + dropout": (1, 1)}
