"""mixup (Zhang, Cisse, Dauphin & Lopez-Paz, "mixup: Beyond Empirical Risk Minimization",
ICLR 2018, arXiv:1710.09412).

Each training batch is replaced by a convex combination of itself and a random permutation
of itself, x̃ = λ·x + (1 − λ)·x[perm], and the loss is λ·loss(y) + (1 − λ)·loss(y[perm]), with
λ ~ Beta(α, α). As in the authors' code, one λ is drawn per batch; ``per_sample = true`` draws
one per image instead. Images become float in [0, 1] (models normalize float and uint8 alike).

λ is drawn on the training device from the run's batch generator (no host round trip, and
reproducible from the seed and from a checkpoint): see :mod:`.mixing` for how. With one λ per
image the wrapped loss is called once with class-probability targets
λ_i·onehot(y_i) + (1 − λ_i)·onehot(y_perm(i)) — exact for cross-entropy losses that take
probability targets (the task's loss, ``label_smoothing``), which is why mixup serves
image classification only.

``train_loss`` is the mixed loss (under mixup it is the data loss); ``val_loss`` is the task's
plain loss on unmixed images. Training accuracy is measured against the first targets.
"""
from __future__ import annotations

import torch
from pydantic import Field

from regsuite import hookimpl
from regsuite.api import Batch, LossFn, Params, Regularizer
from regsuite.plugins.regularizers.mixing import as_float_images, mixed_loss, random_permutation, sample_beta, with_mix


class MixupParams(Params):
    alpha: float = Field(0.2, gt=0, description="λ ~ Beta(alpha, alpha); small alpha keeps λ near 0 or 1")
    per_sample: bool = Field(False, description="one λ per image instead of one per batch (the authors' code)")


class Mixup(Regularizer):
    """mixup (Zhang et al. 2018): train on convex combinations of image pairs and of their labels."""

    name = "mixup"
    tasks = frozenset({"image_classification"})
    Params = MixupParams

    def transform_batch(self, batch: Batch, generator: torch.Generator) -> Batch:
        x = as_float_images(batch.inputs)
        n, device = x.shape[0], x.device
        lam = sample_beta(self.params.alpha, (n,) if self.params.per_sample else (), generator, device)
        perm = random_permutation(n, generator, device)
        weight = lam.view(-1, *[1] * (x.dim() - 1)) if self.params.per_sample else lam
        mixed = x * weight + x[perm] * (1 - weight)
        return with_mix(batch, mixed, batch.targets[perm], lam)

    def wrap_loss(self, loss: LossFn) -> LossFn:
        return mixed_loss(loss)


@hookimpl
def regsuite_register_regularizers():
    return [Mixup]
