"""Training settings that change what a run computes (precision) and the data check that
guards every run's key (a run must train on the data its grid was planned with)."""
from __future__ import annotations

import math

import pytest

from regsuite.errors import DataError, RegsuiteError
from regsuite.registry import get_registry
from regsuite.spec import load_spec, resolve
from regsuite.train import build_context, run_training

from helpers.specs import TINY_SPEC


def train_first_run(path, *overrides):
    plan = resolve(load_spec(path, ["seeds=[0]", "training.epochs=1", *overrides]), get_registry())
    return run_training(build_context(plan.runs[0].config, get_registry()))


def test_bf16_autocast_trains_on_cpu_with_fp32_losses(tiny_spec):
    fp32 = train_first_run(tiny_spec)
    bf16 = train_first_run(tiny_spec, "training.precision=bf16")
    for summary in (fp32, bf16):
        assert math.isfinite(summary["final"]["train_loss"]) and math.isfinite(summary["final"]["val_loss"])
    assert bf16["final"]["train_loss"] != fp32["final"]["train_loss"]  # bf16 really ran: other rounding
    assert bf16["final"]["train_loss"] == pytest.approx(fp32["final"]["train_loss"], rel=0.05)


def test_tf32_needs_a_gpu(tiny_spec):
    with pytest.raises(RegsuiteError, match="needs a CUDA GPU"):
        train_first_run(tiny_spec, "training.precision=tf32", "training.device=cpu")


def test_an_unknown_precision_is_a_spec_error(tiny_spec):
    from regsuite.errors import SpecError

    with pytest.raises(SpecError) as info:
        load_spec(tiny_spec, ["training.precision=fp16"])
    assert "training.precision" in str(info.value)


def test_a_run_refuses_data_that_changed_after_planning(files, tmp_path):
    from regsuite.plugins.datasets.tiny_imagenet import write_tiny_layout

    text = TINY_SPEC.replace('[dataset]\nname = "digits"\ntrain_limit = 60', '[dataset]\nname = "tiny_imagenet"\nclasses = 2')
    path = files({"tiny.toml": text}) / "tiny.toml"
    archive = write_tiny_layout(tmp_path / "data", archive="tiny.zip")
    overrides = [f"dataset.root={archive}", f"dataset.cache_dir={tmp_path / 'cache'}", "dataset.download=false",
                 "seeds=[0]", "training.epochs=1"]
    plan = resolve(load_spec(path, overrides), get_registry())
    write_tiny_layout(tmp_path / "data", train_per_class=6, archive="tiny.zip")  # other images, same path
    with pytest.raises(DataError, match="loaded other data than the grid was planned with"):
        run_training(build_context(plan.runs[0].config, get_registry()))


def test_a_declared_slot_the_model_does_not_build_is_an_error(tiny_spec, monkeypatch):
    """small_cnn declares dropout slots; built without them, dropout would silently do nothing."""
    from torch import nn

    from regsuite.plugins.models.small_cnn import SmallCNN

    monkeypatch.setattr(SmallCNN, "build", lambda self, info: nn.Sequential(nn.Flatten(), nn.Linear(64, 10)))
    with pytest.raises(RegsuiteError, match="regularizer 'dropout' fills 'dropout' slots, but model 'small_cnn' built none"):
        plan = resolve(load_spec(tiny_spec, ["seeds=[0]", "training.epochs=1"]), get_registry())
        run_training(build_context(plan.runs[1].config, get_registry()))
