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


class ConstantOutputPenalty:
    """An output penalty whose gradient is zero: training must be exactly as without it."""

    def __new__(cls):
        from regsuite import api

        class Penalty(api.Regularizer):
            name = "constant_output_penalty"

            def output_penalty(self, outputs, batch):
                assert outputs.dtype == torch.float32 and len(outputs) == len(batch.targets)
                return outputs.sum() * 0 + 5.0

        return Penalty()


def test_output_penalty_is_added_and_reported_apart_from_the_data_loss():
    from helpers.images import make_context, ref

    plain = run_training(make_context(ref("small_cnn"), epochs=2))
    context = make_context(ref("small_cnn"), epochs=2)
    context.regularizers.append(ConstantOutputPenalty())
    penalized = run_training(context)
    assert penalized["final"]["train_penalty"] == 5.0
    assert penalized["final"]["train_loss"] == plain["final"]["train_loss"]  # the data loss alone
    assert penalized["final"]["val_loss"] == plain["final"]["val_loss"]


def test_after_step_runs_once_per_optimizer_step_without_autograd():
    from helpers.images import make_context, ref

    from regsuite import api

    calls = []

    class Clip(api.Regularizer):
        name = "clip_under_test"

        def after_step(self, model):
            calls.append(torch.is_grad_enabled())
            for p in model.parameters():
                p.clamp_(-0.01, 0.01)

    context = make_context(ref("small_cnn"), epochs=2, batch_size=8)  # 24 images: 3 steps an epoch
    context.regularizers.append(Clip())
    models = []
    run_training(context, on_epoch=lambda state, metrics: models.append(state.model))
    assert calls == [False] * 6
    assert max(float(p.detach().abs().max()) for p in models[-1].parameters()) <= 0.01


def test_a_model_that_normalizes_needs_the_datasets_mean_and_std():
    import pytest

    from regsuite import api
    from regsuite.errors import DataError

    info = api.DataInfo(num_classes=3, input_shape=(3, 8, 8))
    with pytest.raises(DataError, match="no DataInfo.mean/std"):
        info.normalization()
