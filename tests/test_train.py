from __future__ import annotations

import torch

from regsuite.registry import get_registry
from regsuite.spec import load_spec, resolve
from regsuite.train import build_context, run_training


def summaries(spec_path, *overrides):
    registry = get_registry()
    plan = resolve(load_spec(spec_path, list(overrides)), registry)
    return [run_training(build_context(run.config, registry)) for run in plan.runs]


def test_same_seed_same_result_other_seed_differs(tiny_spec):
    # (two sets with the same regularizers would be the same runs: a validation error)
    first = summaries(tiny_spec, "seeds=[0,1]")
    again = summaries(tiny_spec, "seeds=[0,1]")
    deterministic = ("train_loss", "val_loss", "val_accuracy")
    assert [first[0]["final"][k] for k in deterministic] == [again[0]["final"][k] for k in deterministic]
    assert first[0]["final"]["val_loss"] != first[1]["final"]["val_loss"]


def test_penalty_is_reported_apart_from_the_data_loss(tiny_spec):
    none, _, with_l2, _ = summaries(tiny_spec)
    assert none["final"]["train_penalty"] == 0
    assert with_l2["final"]["train_penalty"] > 0
    assert with_l2["final"]["train_loss"] < 5  # data loss only: a cross-entropy, not loss + penalty


def test_summary_fields(tiny_spec):
    summary = summaries(tiny_spec, "seeds=[0]")[0]
    assert summary["epochs_run"] == 2 and 1 <= summary["best_epoch"] <= 2
    assert summary["gap"] == summary["final"]["val_loss"] - summary["final"]["train_loss"]
    assert summary["class_names"] == [str(d) for d in range(10)]
    assert summary["metrics"] == [{"key": "accuracy", "label": "acc", "higher_is_better": True}]
    assert 0 <= summary["final"]["val_accuracy"] <= 1
