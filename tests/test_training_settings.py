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


# ---------------------------------------------------------------------------- layout, compile, determinism


def plan_first(path, *overrides):
    return resolve(load_spec(path, ["seeds=[0]", "training.epochs=1", *overrides]), get_registry()).runs[0]


def test_channels_last_computes_the_same_losses_and_is_part_of_the_run_key(tiny_spec):
    plain, explicit, layout = (plan_first(tiny_spec, *o) for o in
                               ([], ["training.channels_last=false"], ["training.channels_last=true"]))
    assert plain.run_id == explicit.run_id != layout.run_id  # the default keeps the ids runs had before
    contiguous = run_training(build_context(plain.config, get_registry()))["final"]
    last = run_training(build_context(layout.config, get_registry()))["final"]
    for key in ("train_loss", "val_loss"):
        assert last[key] == pytest.approx(contiguous[key], rel=1e-5)


def test_channels_last_refuses_inputs_that_are_not_images():
    import torch

    from regsuite.train import in_layout

    with pytest.raises(RegsuiteError, match="channels_last applies to image models .4-D inputs.; this model gets 2-D"):
        in_layout(torch.zeros(4, 7, dtype=torch.long), True)
    tokens = torch.zeros(4, 7, dtype=torch.long)
    assert in_layout(tokens, False) is tokens


@pytest.mark.parametrize("setting, mode", [("true", None), ('"reduce-overhead"', "reduce-overhead")])
def test_compile_sends_every_batch_through_the_compiled_model(tiny_spec, tmp_path, monkeypatch, setting, mode):
    """torch.compile's graph capture, with the eager backend (inductor's code generation costs a
    minute of CPU here; speed/train_speed.py measures it): the same losses, and checkpoints hold
    the model's own state."""
    import torch

    from regsuite.checkpoint import Checkpoints

    real, calls = torch.compile, []

    def capture(model, mode=None):
        calls.append(mode)
        wrapper = real(model, backend="eager")
        counted = wrapper.forward
        wrapper.forward = lambda *a, **k: (calls.append("train" if wrapper.training else "eval"), counted(*a, **k))[1]
        return wrapper

    monkeypatch.setattr(torch, "compile", capture)
    eager = run_training(build_context(plan_first(tiny_spec).config, get_registry()))["final"]
    run = plan_first(tiny_spec, f"training.compile={setting}")
    states = []
    summary = run_training(build_context(run.config, get_registry()), on_epoch=lambda state, _: states.append(state))
    assert calls[0] == mode and calls.count("train") == math.ceil(summary["train_size"] / 32) and "eval" in calls
    assert summary["final"]["train_loss"] == pytest.approx(eager["train_loss"], rel=1e-6)
    saved = Checkpoints(tmp_path).save(run.run_id, build_context(run.config, get_registry()), states[-1], 1.0)
    assert not any(key.startswith("_orig_mod") for key in torch.load(saved, weights_only=False)["model"])


def test_determinism_is_set_both_ways_for_every_run(tiny_spec):
    import torch

    run_training(build_context(plan_first(tiny_spec, "training.deterministic=false").config, get_registry()))
    assert not torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.benchmark
    run_training(build_context(plan_first(tiny_spec).config, get_registry()))
    assert torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.benchmark
