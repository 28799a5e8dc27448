"""MaxDropout (Santos, Colombo, Roder & Papa, ICPR 2020, arXiv:2007.13723).

Instead of dropping random units, drop the most active ones. In training, the activations
are min-max normalized to [0, 1] and every unit whose normalized value is above
``1 - rate`` is set to zero; the others pass unchanged (no rescaling, unlike dropout). At
evaluation it is the identity.

This follows the authors' PyTorch code (cfsantos/MaxDropout-torch): the minimum and maximum
are taken over the whole tensor, i.e. the whole batch (``scope = "batch"``).
``scope = "sample"`` normalizes each sample by its own minimum and maximum instead, so that
what is dropped from one image does not depend on the other images of its batch.
"""
from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from regsuite import hookimpl
from regsuite.api import Params, Regularizer, fill_slots


class MaxDropoutParams(Params):
    rate: float = Field(0.3, gt=0, le=1, description="drop units whose min-max normalized activation is above 1 - rate")
    scope: Literal["batch", "sample"] = Field("batch", description="normalize over the whole batch tensor (the authors' code) or per sample")


class MaxDropoutLayer(nn.Module):
    def __init__(self, rate: float, scope: str = "batch"):
        super().__init__()
        self.rate, self.scope = rate, scope

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return x
        with torch.no_grad():
            if self.scope == "sample":
                flat = x.flatten(1)
                low = flat.amin(dim=1).view(-1, *[1] * (x.dim() - 1))
                high = flat.amax(dim=1).view(-1, *[1] * (x.dim() - 1))
            else:
                low, high = x.min(), x.max()
            # x > low + (1 - rate)(high - low)  ⇔  (x - low)/(high - low) > 1 - rate, without
            # dividing (a constant tensor, high = low, then drops nothing instead of NaN).
            drop = x > low + (1 - self.rate) * (high - low)
        return x.masked_fill(drop, 0)

    def extra_repr(self) -> str:
        return f"rate={self.rate}, scope={self.scope!r}"


class MaxDropout(Regularizer):
    """MaxDropout (Santos et al. 2020): in training, zero the units whose min-max normalized activation is above 1 − rate."""

    name = "maxdropout"
    claims_slots = frozenset({"dropout"})
    Params = MaxDropoutParams

    def configure_model(self, model: nn.Module) -> nn.Module:
        fill_slots(model, "dropout", lambda: MaxDropoutLayer(self.params.rate, self.params.scope))
        return model


@hookimpl
def regsuite_register_regularizers():
    return [MaxDropout]
