"""Decoupled weight decay, as AdamW applies it.

Ilya Loshchilov and Frank Hutter, "Decoupled Weight Decay Regularization", ICLR 2019,
arXiv:1711.05101. With adaptive optimizers an L2 term in the loss (the ``l2`` regularizer) is
scaled by Adam's per-parameter step size, so weights with large gradients are decayed less;
decoupling shrinks every weight by the same factor apart from the gradient step::

    p ← p − lr·rate·p        (then Adam's usual step on the gradient of the data loss alone)

The regularizer only shapes the optimizer's parameter groups, AdamW-style: weights (``ndim > 1``:
conv, linear, embedding and recurrent matrices) get ``weight_decay = rate`` and
``decoupled_weight_decay = True``; biases and normalization parameters get ``weight_decay = 0``
(unless ``include_biases``). The loop's ``make_optimizer`` turns that into Adam's or AdamW's
per-group decoupled decay; for plain SGD (momentum 0) the two forms are the same thing, and SGD
with momentum has no decoupled form in PyTorch and is refused with a clear error.

**The rate is scaled by the learning rate.** PyTorch (like this regularizer) multiplies the
decay by ``lr``: each step shrinks a weight by ``lr·rate`` (1e-5 with the defaults 0.01 and
lr = 1e-3), where the paper's Algorithm 2 multiplies its λ by the schedule multiplier η only.
So the paper's λ is ``lr·rate`` here, and changing ``training.lr`` changes the decay too: keep
``lr·rate`` fixed to compare learning rates at the same decay. The default, 0.01, is PyTorch
AdamW's.

It cannot be combined with ``l2`` in one set (both are weight decay; decoupled weight decay
exists to replace the L2 term). With ``optimizer = "adamw"`` this regularizer's groups set
their own ``weight_decay``, so AdamW's built-in default (0.01 on every parameter) no longer
applies: biases and normalization parameters are then not decayed.
"""
from __future__ import annotations

from pydantic import Field
from torch import nn

from regsuite import hookimpl
from regsuite.api import Params, Regularizer


class WeightDecayParams(Params):
    rate: float = Field(0.01, gt=0, description="λ in p ← p − lr·λ·p per step (PyTorch AdamW's convention and default)")
    include_biases: bool = Field(False, description="also decay biases and normalization parameters (ndim ≤ 1)")


class WeightDecay(Regularizer):
    """Decoupled weight decay (Loshchilov & Hutter 2019): p ← p − lr·λ·p on weights apart from the gradient, as AdamW."""

    name = "weight_decay"
    Params = WeightDecayParams
    # Declared on this side only: the spec check looks at the whole set, so one side gives the
    # error whichever comes first, and both sides would give it twice.
    conflicts_with = frozenset({"l2"})

    def param_groups(self, model: nn.Module, groups: list[dict]) -> list[dict]:
        shaped = []
        for group in groups:
            rest = {key: value for key, value in group.items() if key != "params"}
            params = list(group["params"])
            decayed = [p for p in params if self.params.include_biases or p.ndim > 1]
            kept = [p for p in params if not (self.params.include_biases or p.ndim > 1)]
            if decayed:
                shaped.append({**rest, "params": decayed, "weight_decay": self.params.rate,
                               "decoupled_weight_decay": True})
            if kept:
                shaped.append({**rest, "params": kept, "weight_decay": 0.0})
        return shaped


@hookimpl
def regsuite_register_regularizers():
    return [WeightDecay]
