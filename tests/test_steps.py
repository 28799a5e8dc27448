"""A run's length in optimizer steps (``training.steps``) instead of epochs: the same steps at
every training-set size, in whole epochs."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from regsuite.cli import app
from regsuite.errors import SpecError
from regsuite.registry import get_registry
from regsuite.spec import load_spec, run_key_view
from regsuite.store import Store

from helpers.specs import TINY_SPEC, plan_of

STEPS_SPEC = TINY_SPEC.replace("epochs = 2", "steps = 5").replace(
    "train_limit = 60", "train_limit = 60\ntrain_fraction = { sweep = [0.5, 1.0] }")


def test_steps_replace_epochs_and_leave_other_run_ids_alone(files, tiny_spec):
    plan = plan_of(files({"steps.toml": STEPS_SPEC}) / "steps.toml")
    training = plan.runs[0].config["training"]
    assert training["steps"] == 5 and training["epochs"] is None
    epochs_only = plan_of(tiny_spec)
    assert "steps" not in epochs_only.runs[0].config["training"]  # stored as before steps existed
    assert "steps" not in run_key_view(get_registry(), epochs_only.runs[0].config)["training"]
    five = {r.run_id for r in plan_of(tiny_spec, "training.steps=5").runs}
    assert not five & {r.run_id for r in epochs_only.runs}
    assert five != {r.run_id for r in plan_of(tiny_spec, "training.steps=6").runs}


def test_set_on_the_command_line_switches_the_length(files, tiny_spec):
    in_steps = load_spec(tiny_spec, ["training.steps=7"])
    assert (in_steps.training.steps, in_steps.training.epochs) == (7, None)
    back = load_spec(files({"steps.toml": STEPS_SPEC}) / "steps.toml", ["training.epochs=3"])
    assert (back.training.steps, back.training.epochs) == (None, 3)
    swept = plan_of(tiny_spec, "training.steps={ sweep = [4, 8] }")
    assert sorted({r.config["training"]["steps"] for r in swept.runs}) == [4, 8]


@pytest.mark.parametrize("training, expected", [
    ("epochs = 2\nsteps = 5", "give epochs or steps, not both"),
    ("steps = 0", r"training\.steps: Input should be greater than or equal to 1"),
    ('steps = "many"', r"training\.steps: Input should be a valid integer"),
])
def test_bad_lengths_name_the_field(files, training, expected):
    path = files({"bad.toml": TINY_SPEC.replace("epochs = 2", training)}) / "bad.toml"
    with pytest.raises(SpecError, match=expected):
        plan_of(path)


def test_every_size_trains_the_same_steps_in_whole_epochs(files, isolated_results):
    path = files({"steps.toml": STEPS_SPEC}) / "steps.toml"
    result = CliRunner().invoke(app, ["run", str(path), "--set", "seeds=[0]"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    with Store(isolated_results, readonly=True) as store:
        summaries = [run.summary for run in store.runs_with_status("done")]
    # 60 images → 2 batches of 32 an epoch: 3 epochs hold 5 steps (6 taken); half of them (28,
    # class-balanced) → 1 batch: 5 epochs.
    steps = lambda s: s["epochs_run"] * -(-s["train_images_per_epoch"] // 32)
    seen = sorted({(s["train_size"], s["epochs_run"], steps(s)) for s in summaries})
    assert seen == [(28, 5, 5), (60, 3, 6)]
    markdown = CliRunner().invoke(app, ["leaderboard", "tiny", "--format", "markdown"]).stdout
    assert "epochs run" in markdown  # the epochs differ by size, so the diagnostics show them


def test_steps_that_fill_whole_epochs_train_exactly_as_those_epochs(tiny_spec, isolated_results):
    # 60 images in batches of 32: 2 steps an epoch, so 4 steps are the spec's 2 epochs, batch for batch.
    for length in ("training.epochs=2", "training.steps=4"):
        result = CliRunner().invoke(app, ["run", str(tiny_spec), "--set", "seeds=[0]", "--set", length],
                                    env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
    with Store(isolated_results, readonly=True) as store:
        runs = store.runs_with_status("done")
    finals = {}
    for run in runs:
        regularizers = tuple(reg["name"] for reg in run.config["regularizers"])
        measured = {k: v for k, v in run.summary["final"].items() if k not in ("epoch_time", "train_samples_per_s")}
        finals.setdefault(run.config["training"].get("steps"), {})[regularizers] = measured
    assert finals[4] == finals[None] and len(finals[4]) == 2
