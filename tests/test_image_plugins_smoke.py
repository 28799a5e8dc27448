"""Every image plugin of this module set trains end to end with its smoke_params, through
regsuite's own loop, on tiny 3×64×64 data."""
from __future__ import annotations

import math

import pytest

from helpers.images import TinyImages, make_context, ref
from regsuite.registry import get_registry
from regsuite.train import run_training


def smoke(kind: str, name: str, tmp_path) -> dict:
    return ref(name, **get_registry().cls(kind, name).smoke_params(tmp_path))


@pytest.mark.parametrize("model, regularizer", [
    ("custom_cnn", "maxdropout"), ("custom_cnn", "augmentation"), ("efficientnet_b0", "dropout"),
])
def test_model_with_regularizer_trains(model: str, regularizer: str, tmp_path) -> None:
    context = make_context(smoke("model", model, tmp_path), [smoke("regularizer", regularizer, tmp_path)],
                           dataset=TinyImages(train=16, val=8), epochs=1, batch_size=8)
    summary = run_training(context)
    assert math.isfinite(summary["final"]["train_loss"]) and math.isfinite(summary["final"]["val_loss"])


def test_doubled_augmentation_trains_on_twice_the_images(tmp_path) -> None:
    context = make_context(ref("custom_cnn"), [ref("augmentation", mode="double")],
                           dataset=TinyImages(train=8, val=4), epochs=1, batch_size=8)
    batches = []

    class Count:
        def run_started(self, epochs, batches_per_epoch):
            batches.append(batches_per_epoch)

        def batch_done(self, batch, running_loss): ...
        def epoch_done(self, epoch, metrics): ...

    run_training(context, Count())
    assert batches == [2]
