"""L2: λ · Σ w² over the weights, added to the training objective."""
from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn

from regsuite import hookimpl
from regsuite.api import Params, Regularizer


class L2Params(Params):
    weight: float = Field(5e-4, gt=0, description="λ in λ·Σw² (Keras' l2(λ) convention: no ½)")
    include_biases: bool = Field(False, description="also penalize biases and normalization parameters")


class L2(Regularizer):
    """Squared-weight penalty λ·Σw² on conv/linear/embedding weights (biases and norm parameters excluded by default)."""

    name = "l2"
    Params = L2Params
    # No conflicts_with = {"weight_decay"} here: weight_decay declares the pair, and the spec
    # check sees the whole set (one side gives the error in either order, both would give it twice).

    def penalty(self, model: nn.Module) -> Tensor:
        weights = [p for p in model.parameters() if p.requires_grad and (self.params.include_biases or p.ndim > 1)]
        return self.params.weight * torch.stack([w.square().sum() for w in weights]).sum()


@hookimpl
def regsuite_register_regularizers():
    return [L2]
