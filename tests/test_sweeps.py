"""Sweeps: { sweep = [...] } at any value becomes an axis of the grid (regsuite.sweeps)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers.specs import TINY_SPEC
from regsuite.cli import app
from regsuite.errors import SpecError
from regsuite.registry import get_registry
from regsuite.spec import load_spec, resolve

SWEPT = TINY_SPEC.replace("train_limit = 60", "train_limit = { sweep = [40, 60] }").replace(
    'regularizers = [{ name = "l2", weight = 1e-3 }, { name = "dropout", p = 0.25 }]',
    'regularizers = [{ name = "l2", weight = { sweep = [1e-4, 1e-3, 1e-2] } }, { name = "dropout", p = 0.25 }]',
).replace("epochs = 2", "epochs = 1")


def plan_of(files, text: str, *overrides: str):
    return resolve(load_spec(files({"spec.toml": text}) / "spec.toml", list(overrides)), get_registry())


def test_the_grid_is_the_product_of_every_axis(files):
    plan = plan_of(files, SWEPT)
    spec = plan.spec
    assert [axis.path for axis in spec.sweeps] == ["dataset.train_limit", "sets[1].regularizers[0].weight"]
    assert [s.label for s in spec.sets] == ["none", "l2 + dropout (weight=0.0001)", "l2 + dropout (weight=0.001)",
                                            "l2 + dropout (weight=0.01)"]
    assert [d.params["train_limit"] for d in spec.datasets] == [40, 60]
    assert len(plan.runs) == 2 * 4 * 2  # datasets × sets × seeds
    assert len({run.run_id for run in plan.runs}) == len(plan.runs)
    weights = {run.config["regularizers"][0]["params"]["weight"] for run in plan.runs if run.config["regularizers"]}
    assert weights == {1e-4, 1e-3, 1e-2}


def test_a_spec_without_sweeps_keeps_its_run_ids_and_stored_form(files):
    plain = plan_of(files, TINY_SPEC)
    stored = json.loads(plain.spec.model_dump_json())
    assert "sweeps" not in stored and "trainings" not in stored and all("swept" not in s for s in stored["sets"])
    one_value = TINY_SPEC.replace("train_limit = 60", "train_limit = { sweep = [60] }")
    assert [r.run_id for r in plan_of(files, one_value).runs] == [r.run_id for r in plain.runs]


def test_a_swept_point_is_the_same_run_as_the_plain_value(files):
    swept = {run.run_id for run in plan_of(files, SWEPT).runs}
    plain = plan_of(files, TINY_SPEC.replace("train_limit = 60", "train_limit = 40").replace("epochs = 2", "epochs = 1"))
    assert {run.run_id for run in plain.runs} <= swept


def test_training_sweeps_add_training_settings(files):
    plan = plan_of(files, TINY_SPEC, "training.lr={ sweep = [1e-4, 1e-3] }")
    assert [t.lr for t in plan.spec.trainings] == [1e-4, 1e-3] and plan.spec.sweeps[0].path == "training.lr"
    assert len(plan.runs) == 2 * 2 * 2
    assert {run.config["training"]["lr"] for run in plan.runs} == {1e-4, 1e-3}


@pytest.mark.parametrize("bad, overrides, expected", [
    (SWEPT.replace("{ sweep = [1e-4, 1e-3, 1e-2] }", "{ sweep = [1e-4, -1.0] }"), (),
     "sets[1].regularizers[0].weight, at the sweep point sets[1].regularizers[0].weight = -1: "
     "Input should be greater than 0 (got -1.0)"),
    (SWEPT.replace("{ sweep = [40, 60] }", "{ sweep = [40, -60] }"), (),
     "dataset.train_limit, at the sweep point dataset.train_limit = -60: "),
    (TINY_SPEC, ("training.lr={ sweep = [1e-3, -1.0] }",),
     "training.lr, at the sweep point training.lr = -1: Input should be greater than 0 (got -1.0)"),
])
def test_every_point_is_validated_as_a_plain_value_and_an_error_names_the_axis(files, bad, overrides, expected):
    with pytest.raises(SpecError) as raised:
        plan_of(files, bad, *overrides)
    assert any(line.startswith(expected) for line in raised.value.details), raised.value.details


def test_an_error_in_a_set_after_a_swept_one_names_the_set_as_written(files):
    bad = SWEPT + '\n[[sets]]\nlabel = "dropout"\nregularizers = [{ name = "dropout", p = 1.5 }]\n'
    with pytest.raises(SpecError) as raised:
        plan_of(files, bad)  # expanded, the dropout set is sets[4]; the spec wrote sets[2]
    assert raised.value.details == ["sets[2].regularizers[0].p: Input should be less than 1 (got 1.5)"]


@pytest.mark.parametrize("change, message", [
    (("seeds = [0, 1]", "seeds = { sweep = [[0], [1]] }"), "seeds cannot be swept: seeds already are an axis"),
    (('task = "image_classification"', 'task = { sweep = ["image_classification", "x"] }'), "task cannot be swept"),
    (('name = "tiny"', 'name = { sweep = ["a", "b"] }'), "name cannot be swept"),
    (("train_limit = 60", 'train_limit = { sweep = [40, "many"] }'), "train_limit.*many"),
    (('label = "none"', 'label = { sweep = ["a", "b"] }'), r"sets\[0\].label cannot be swept"),
    (('name = "l2"', 'name = { sweep = ["l2", "dropout"] }'), "a regularizer's name cannot be swept"),
    (("train_limit = 60", "train_limit = { sweep = [] }"), "sweep must be a non-empty list"),
    (("train_limit = 60", "train_limit = { sweep = [40, 40] }"), "the sweep repeats 40"),
    (("train_limit = 60", "train_limit = { sweep = [40], step = 2 }"), "unknown key\\(s\\) step"),
    (("train_limit = 60", "train_limit = { sweep = [{ sweep = [1] }] }"), "cannot hold sweeps themselves"),
])
def test_sweeps_that_make_no_sense_are_one_clear_error(files, change, message):
    with pytest.raises(SpecError, match=message):
        plan_of(files, TINY_SPEC.replace(*change))


def test_sweeps_is_written_by_regsuite_not_by_users(files):
    with pytest.raises(SpecError, match="'sweeps' and a set's 'swept' are written by regsuite"):
        plan_of(files, 'sweeps = []\n' + TINY_SPEC)


def test_validate_shows_the_axes_and_the_grid_size(files):
    path = files({"spec.toml": SWEPT}) / "spec.toml"
    result = CliRunner().invoke(app, ["validate", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "sets[1].regularizers[0].weight" in result.output and "0.0001, 0.001, 0.01" in result.output
    assert "grid: 2 datasets × 1 model × 1 training setting × 4 sets × 2 seeds = 16 runs" in result.output


def test_the_leaderboard_shows_swept_values_and_selects_a_slice(files, isolated_results: Path):
    path = files({"spec.toml": SWEPT.replace("seeds = [0, 1]", "seeds = [0]")}) / "spec.toml"
    runner = CliRunner()
    assert runner.invoke(app, ["run", str(path), "--no-plots"]).exit_code == 0
    board = json.loads(runner.invoke(app, ["leaderboard", "tiny", "--format", "json"]).output)
    rows = board["rows"] if isinstance(board, dict) else board
    weights = sorted(str(r["swept"].get("weight")) for r in rows)
    assert weights == ["0.0001", "0.0001", "0.001", "0.001", "0.01", "0.01", "None", "None"]
    table = runner.invoke(app, ["leaderboard", "tiny", "--format", "markdown"]).output
    header = next(line for line in table.splitlines() if line.startswith("| regularizers"))
    # the swept dataset value is a column of its own, so the dataset is named once, in the title
    assert "train_limit" in header and "dataset" not in header and "train_limit=" not in table
    assert "image_classification / digits / small_cnn" in table
    sliced = json.loads(runner.invoke(app, ["leaderboard", "tiny", "--format", "json",
                                            "--where", "weight=1e-3", "--where", "train_limit=40"]).output)
    sliced = sliced["rows"] if isinstance(sliced, dict) else sliced
    assert sorted(r["label"] for r in sliced) == ["l2 + dropout (weight=0.001)", "none"]
    wrong = runner.invoke(app, ["leaderboard", "tiny", "--where", "width=4"])
    assert wrong.exit_code == 2 and "'width' is not a swept value of this spec" in wrong.output


def test_a_run_stored_without_a_later_parameter_is_labelled_with_the_specs_value():
    """A run planned before train_fraction existed keeps its key (no train_fraction in its
    config); beside swept fractions it is the spec's 1.0 variant, not an unlabelled one."""
    from regsuite import leaderboard as lb

    spec = {"datasets": [{"name": "digits", "train_limit": 60, "train_fraction": 0.5},
                         {"name": "digits", "train_limit": 60, "train_fraction": 1.0}],
            "training": {"epochs": 2, "channels_last": False}}
    refs = [{"name": "digits", "params": {"train_limit": 60}},
            {"name": "digits", "params": {"train_limit": 60, "train_fraction": 0.5}}]
    filled = lb.with_defaults("dataset", refs, spec)
    assert filled[0]["params"] == {"train_limit": 60, "train_fraction": 1.0} and filled[1] == refs[1]
    variants = lb.plugin_variants(filled)
    assert [lb.plugin_label(r, variants) for r in filled] == ["digits (train_fraction=1.0)", "digits (train_fraction=0.5)"]
    other = [{"name": "digits", "params": {"train_limit": 30}}, refs[1]]  # agrees with no entry: left as it is
    assert lb.with_defaults("dataset", other, spec)[0] == other[0]
    trainings = lb.with_defaults("training", [{"name": "training", "params": {"epochs": 2}},
                                              {"name": "training", "params": {"epochs": 2, "channels_last": False}}], spec)
    assert len(lb.plugin_variants(trainings)["training"]) == 1  # a setting added later, at its value: one setting


def test_a_parameter_only_newer_runs_hold_does_not_label_the_rows():
    """regime-tiny's case: its 100% runs (the paper's, stored before subset_seed existed) lack
    subset_seed, its smaller fractions hold subset_seed = 0. The spec writes no subset_seed,
    so every run it plans has the default: the fraction alone tells the rows apart. Runs that
    hold different values of it stay apart, labelled by it."""
    from regsuite import leaderboard as lb

    spec = {"datasets": [{"name": "tiny_imagenet", "classes": 25, "train_fraction": 0.1},
                         {"name": "tiny_imagenet", "classes": 25, "train_fraction": 1.0}]}
    refs = [{"name": "tiny_imagenet", "params": {"classes": 25, "train_fraction": 1.0}},
            {"name": "tiny_imagenet", "params": {"classes": 25, "train_fraction": 0.1, "subset_seed": 0}}]
    filled = lb.with_defaults("dataset", refs + refs[:1], spec)  # two seeds' runs of the old config
    assert filled[0]["params"] == filled[2]["params"] == {"classes": 25, "train_fraction": 1.0, "subset_seed": 0}
    filled = filled[:2]
    variants = lb.plugin_variants(filled)
    assert [lb.plugin_label(r, variants) for r in filled] == ["tiny_imagenet (train_fraction=1.0)",
                                                              "tiny_imagenet (train_fraction=0.1)"]
    disagreeing = refs + [{"name": "tiny_imagenet", "params": {"classes": 25, "train_fraction": 0.1, "subset_seed": 5}}]
    filled = lb.with_defaults("dataset", disagreeing, spec)
    assert filled[0] == disagreeing[0]  # two values held: which one is the default is not known here
    variants = lb.plugin_variants(filled)
    labels = [lb.plugin_label(r, variants) for r in filled]
    assert len(set(labels)) == 3 and labels[1] == "tiny_imagenet (subset_seed=0, train_fraction=0.1)"
