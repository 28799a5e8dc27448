"""CutMix (Yun, Han, Oh, Chun, Choe & Yoo, "CutMix: Regularization Strategy to Train Strong
Classifiers with Localizable Features", ICCV 2019, arXiv:1905.04899).

With probability ``p`` a training batch is mixed: λ ~ Beta(α, α); a box of side ratio
√(1 − λ) (so of area ratio 1 − λ) around a uniformly drawn centre, clipped to the image, is
pasted into every image from a random permutation of the batch; λ is then corrected to the
area actually kept, 1 − box area / image area; and the loss is λ·loss(y) + (1 − λ)·loss(y[perm]).
As in the authors' code there is one λ, one box and one permutation per batch, and the box
sides are ``int(W·√(1 − λ))`` and ``int(H·√(1 − λ))`` spanning centre ± side // 2.

Everything runs on the training device from the run's batch generator: the box is a mask of
device-side coordinates (no slicing, which would need them on the host), and a batch that is
not mixed gets an empty box and λ = 1, so nothing waits on the GPU. λ is drawn as mixup's is
(see :mod:`.mixing`). Images keep their dtype (a uint8 batch stays uint8).

``train_loss`` is the mixed loss (under CutMix it is the data loss); ``val_loss`` is the
task's plain loss. It cannot be combined with ``mixup`` (both mix the targets).
"""
from __future__ import annotations

import torch
from pydantic import Field

from regsuite import hookimpl
from regsuite.api import Batch, LossFn, Params, Regularizer
from regsuite.plugins.regularizers.mixing import mixed_loss, random_permutation, sample_beta, with_mix


class CutMixParams(Params):
    alpha: float = Field(1.0, gt=0, description="λ ~ Beta(alpha, alpha): 1 draws the kept area ratio uniformly")
    p: float = Field(1.0, ge=0, le=1, description="probability that a batch is mixed")


class CutMix(Regularizer):
    """CutMix (Yun et al. 2019): paste a random box from another image of the batch and mix the labels by area."""

    name = "cutmix"
    tasks = frozenset({"image_classification"})
    conflicts_with = frozenset({"mixup"})
    Params = CutMixParams

    def transform_batch(self, batch: Batch, generator: torch.Generator) -> Batch:
        x = batch.inputs
        n, height, width = x.shape[0], x.shape[-2], x.shape[-1]
        device = x.device
        lam = sample_beta(self.params.alpha, (), generator, device)
        mixed, centre_y, centre_x = torch.rand(3, generator=generator, device=device)
        perm = random_permutation(n, generator, device)
        side = torch.sqrt(1 - lam)
        half_h = torch.floor(height * side).long() // 2
        half_w = torch.floor(width * side).long() // 2
        cy = torch.floor(centre_y * height).long()  # uniform over the rows, as np.random.randint(H)
        cx = torch.floor(centre_x * width).long()
        rows = torch.arange(height, device=device).view(-1, 1)
        cols = torch.arange(width, device=device).view(1, -1)
        box = ((rows >= cy - half_h) & (rows < cy + half_h) & (cols >= cx - half_w) & (cols < cx + half_w)
               & (mixed < self.params.p))
        kept = 1 - box.sum() / (height * width)  # the corrected λ: clipping to the image is in the mask
        return with_mix(batch, torch.where(box, x[perm], x), batch.targets[perm], kept.float())

    def wrap_loss(self, loss: LossFn) -> LossFn:
        return mixed_loss(loss)


@hookimpl
def regsuite_register_regularizers():
    return [CutMix]
