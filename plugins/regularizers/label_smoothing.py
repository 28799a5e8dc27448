"""Label smoothing (Szegedy, Vanhoucke, Ioffe, Shlens & Wojna, "Rethinking the Inception
Architecture for Computer Vision", CVPR 2016, arXiv:1512.00567).

The one-hot target is replaced by (1 − ε)·onehot(y) + ε/C, so the loss is the cross-entropy
against that mixture: (1 − ε)·CE(y) + ε·mean_c(−log p_c). It is what PyTorch computes with
``F.cross_entropy(..., label_smoothing=ε)``; for sequence labelling (outputs N×T×C, targets
N×T) padding positions (``IGNORE_TARGET``) count in neither term, as in
``F.cross_entropy(outputs.flatten(0, 1), targets.flatten(), label_smoothing=ε,
ignore_index=IGNORE_TARGET)``.

**What train_loss means here.** Under this regularizer the smoothed cross-entropy *is* the
data loss: ``wrap_loss`` returns it, so ``train_loss`` is the smoothed cross-entropy (higher
than the plain one of the same outputs: it cannot reach 0), while ``val_loss`` is the task's
plain cross-entropy, as for every run. Compare its gap with other rows with that in mind.

The loss is built on the loss it wraps, as (1 − ε)·loss + ε·mean_c(−log p_c), rather than by
recomputing the cross-entropy: with the task's loss that is exactly the expression above, and
it composes with the other loss wrappers in either order (mixup or CutMix inside or outside
it give the same smoothed mixed loss). Class-probability targets (mixup's per-sample mode)
count every row.
"""
from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from regsuite import hookimpl
from regsuite.api import IGNORE_TARGET, Batch, LossFn, Params, Regularizer


class LabelSmoothingParams(Params):
    epsilon: float = Field(0.1, ge=0, lt=1, description="ε: the target is (1 − ε)·onehot(y) + ε/C")


class LabelSmoothing(Regularizer):
    """Label smoothing (Szegedy et al. 2016): cross-entropy against (1 − ε)·onehot(y) + ε/C."""

    name = "label_smoothing"
    tasks = frozenset({"image_classification", "sequence_labelling"})
    Params = LabelSmoothingParams

    def wrap_loss(self, loss: LossFn) -> LossFn:
        epsilon = self.params.epsilon

        def smoothed(outputs: Tensor, batch: Batch) -> Tensor:
            return (1 - epsilon) * loss(outputs, batch) + epsilon * uniform_cross_entropy(outputs, batch.targets)

        return smoothed


def uniform_cross_entropy(outputs: Tensor, targets: Tensor) -> Tensor:
    """Mean over the counted positions of mean_c(−log p_c): the cross-entropy against the
    uniform distribution. Index targets at ``IGNORE_TARGET`` are not counted; probability
    targets (one more dimension than index targets would have) count every row."""
    per_position = -torch.log_softmax(outputs, dim=-1).mean(dim=-1)
    if targets.is_floating_point():
        return per_position.mean()
    counted = targets != IGNORE_TARGET
    # A masked sum over the count, on the device (no row selection, no host sync).
    return torch.where(counted, per_position, torch.zeros_like(per_position)).sum() / counted.sum()


@hookimpl
def regsuite_register_regularizers():
    return [LabelSmoothing]
