"""A model: a multilayer perceptron with a dropout slot after each hidden activation."""
from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from regsuite.api import DataInfo, Model, Params, Slot

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}


class MLPParams(Params):
    hidden: tuple[Annotated[int, Field(ge=1)], ...] = Field(
        (64, 64), min_length=1, max_length=8, description="units of each hidden layer, input side first")
    activation: Literal["relu", "tanh", "gelu"] = Field("relu", description="nonlinearity after each hidden layer")


class Standardize(nn.Module):
    """(x − mean) / std per feature, with the training split's statistics."""

    def __init__(self, mean: list[float], std: list[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1))
        self.register_buffer("std", torch.tensor(std).view(1, -1))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class MLP(Model):
    """Dense layers on standardized features; a dropout slot after each hidden activation."""

    name = "mlp"
    tasks = frozenset({"tabular_classification"})
    slots = frozenset({"dropout"})  # the built module places Slot("dropout"): the dropout regularizer fills it
    Params = MLPParams

    def build(self, info: DataInfo) -> nn.Module:
        (features,) = info.input_shape
        layers: list[nn.Module] = [Standardize(*info.normalization())]
        width = features
        for units in self.params.hidden:
            layers += [nn.Linear(width, units), ACTIVATIONS[self.params.activation](), Slot("dropout")]
            width = units
        layers.append(nn.Linear(width, info.num_classes))
        return nn.Sequential(*layers)
