"""A small CNN for small images (the quickstart's model)."""
from __future__ import annotations

from pydantic import Field
from torch import nn

from regsuite import hookimpl
from regsuite.api import DataInfo, Model, Normalize, Params, Slot


class SmallCNNParams(Params):
    width: int = Field(32, ge=1, description="filters of the first convolution (the second has twice as many)")
    hidden: int = Field(128, ge=1, description="units of the dense layer")


class SmallCNN(Model):
    """Two 3×3 convolutions, 2×2 max pooling, one dense layer; a dropout slot before each dense layer."""

    name = "small_cnn"
    tasks = frozenset({"image_classification"})
    slots = frozenset({"dropout"})
    Params = SmallCNNParams

    def build(self, info: DataInfo) -> nn.Module:
        channels, height, width = info.input_shape
        w, hidden = self.params.width, self.params.hidden
        return nn.Sequential(
            Normalize(*info.normalization()),
            nn.Conv2d(channels, w, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Flatten(),
            Slot("dropout"),
            nn.Linear(2 * w * (height // 2) * (width // 2), hidden), nn.ReLU(inplace=True),
            Slot("dropout"),
            nn.Linear(hidden, info.num_classes),
        )


@hookimpl
def regsuite_register_models():
    return [SmallCNN]
