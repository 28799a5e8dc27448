"""Confidence penalty: reward the entropy of the predicted distribution.

Gabriel Pereyra, George Tucker, Jan Chorowski, Łukasz Kaiser and Geoffrey Hinton,
"Regularizing Neural Networks by Penalizing Confident Output Distributions", ICLR 2017
workshop, arXiv:1701.06548. The objective becomes::

    L = data loss − β · H(p(y|x))                          (threshold unset)
    L = data loss + β · max(0, Γ − H(p(y|x)))              (threshold Γ: the paper's hinge variant)

with ``H(p) = −Σ p log p`` of ``softmax(outputs)``, averaged over the batch's samples; for
token-level outputs (N×T×C, sequence labelling) over the real positions only (targets other
than ``IGNORE_TARGET``). The hinge variant penalizes only distributions whose entropy is below
Γ (in nats; the largest possible entropy is ln C for C classes). The term is reported apart
from the data loss, as ``train_penalty`` (negative without a threshold).
"""
from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from regsuite import hookimpl
from regsuite.api import IGNORE_TARGET, Batch, Params, Regularizer


class ConfidencePenaltyParams(Params):
    beta: float = Field(0.1, gt=0, le=100, description="β, the weight of the entropy term")
    threshold: float | None = Field(None, ge=0, description="Γ in nats: the hinge β·max(0, Γ − H); unset = −β·H")


class ConfidencePenalty(Regularizer):
    """Confidence penalty (Pereyra et al. 2017): −β·H(softmax(outputs)) added to the loss, or a hinge below an entropy threshold."""

    name = "confidence_penalty"
    Params = ConfidencePenaltyParams

    def output_penalty(self, outputs: Tensor, batch: Batch) -> Tensor:
        log_p = torch.log_softmax(outputs, dim=-1)
        entropy = -(log_p.exp() * log_p).sum(dim=-1)  # one value per sample (per position for N×T×C)
        if self.params.threshold is None:
            term = -self.params.beta * entropy
        else:
            term = self.params.beta * (self.params.threshold - entropy).clamp_min(0)
        targets = batch.targets
        if targets.shape == entropy.shape and not targets.is_floating_point():
            real = targets != IGNORE_TARGET  # padding positions of token-level data
            return term.masked_fill(~real, 0.0).sum() / real.sum().clamp_min(1)
        return term.mean()


@hookimpl
def regsuite_register_regularizers():
    return [ConfidencePenalty]
