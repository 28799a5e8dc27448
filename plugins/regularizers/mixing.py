"""What mixup and CutMix share: λ ~ Beta(α, α) and a permutation of the batch, drawn on the
training device from the run's batch generator, and the mixed loss
λ·loss(y_a) + (1 − λ)·loss(y_b).

No plugin lives here (it registers nothing). A mixing regularizer's ``transform_batch`` puts
the permuted batch's targets and λ into ``Batch.extras`` (:func:`with_mix`), and its
``wrap_loss`` returns :func:`mixed_loss` of the loss it wraps.

**Beta draws.** ``torch.distributions.Beta`` and ``torch._standard_gamma`` take no generator,
and drawing λ on the host (NumPy) would either wait for the GPU every batch (to seed NumPy
from the torch generator) or keep a random state that checkpoints do not save. So λ is drawn
with torch ops from the generator the hook is given: Beta(α, α) = X / (X + Y) with X, Y ~
Gamma(α) by Marsaglia & Tsang's method (ACM TOMS 26(3), 2000), vectorized with a fixed
number of candidates per draw (the first accepted one is kept; for shape ≥ 1 each is accepted
with probability > 0.95, so all :data:`CANDIDATES` fail with probability < 1e-20, and then
the mode-like value d is used). For α < 1 the draw is Gamma(α + 1)·U^(1/α). Everything runs
in log space, λ = sigmoid(log X − log Y), so that small α (where X and Y underflow) still
gives λ in [0, 1] and never NaN. Every call consumes the same number of generator values,
so a run resumed from a checkpoint draws what the uninterrupted run drew.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from regsuite.api import Batch, LossFn

#: ``Batch.extras`` keys: the second targets (those of the permuted batch) and λ.
MIX_TARGETS = "mix_targets"
MIX_LAMBDA = "mix_lambda"
#: Candidates per Gamma draw in the vectorized Marsaglia–Tsang rejection step.
CANDIDATES = 16


def log_standard_gamma(shape: float, size: tuple[int, ...], generator: torch.Generator,
                       device: torch.device) -> Tensor:
    """log of Gamma(``shape``, 1) draws of ``size`` (float32), from ``generator`` on ``device``."""
    boost = shape < 1
    d = (shape + 1 if boost else shape) - 1 / 3
    c = 1 / math.sqrt(9 * d)
    z = torch.randn((CANDIDATES, *size), generator=generator, device=device)
    u = 1 - torch.rand((CANDIDATES, *size), generator=generator, device=device)  # (0, 1]: finite log
    v = (1 + c * z) ** 3
    positive = v > 0
    log_v = torch.log(torch.where(positive, v, torch.ones_like(v)))
    accepted = positive & (torch.log(u) < 0.5 * z * z + d - d * v + d * log_v)
    first = accepted.int().argmax(dim=0, keepdim=True)  # the first accepted candidate (0 if none)
    log_v = torch.where(accepted.any(dim=0, keepdim=True), log_v.gather(0, first), torch.zeros_like(first, dtype=v.dtype))
    log_gamma = math.log(d) + log_v.squeeze(0)
    if boost:  # Gamma(a) = Gamma(a + 1) · U^(1/a)
        w = 1 - torch.rand(size, generator=generator, device=device)
        log_gamma = log_gamma + torch.log(w) / shape
    return log_gamma


def sample_beta(alpha: float, size: tuple[int, ...], generator: torch.Generator, device: torch.device) -> Tensor:
    """λ ~ Beta(``alpha``, ``alpha``) of ``size`` (``()`` for one λ), float32 in [0, 1]."""
    log_xy = log_standard_gamma(alpha, (2, *size), generator, device)
    return torch.sigmoid(log_xy[0] - log_xy[1])


def random_permutation(n: int, generator: torch.Generator, device: torch.device) -> Tensor:
    """A uniform random permutation of ``range(n)`` on ``device``: the order of n float64
    uniforms (sorting stays on the device; ties have probability ~n²·2⁻⁵⁴)."""
    return torch.argsort(torch.rand(n, generator=generator, device=device, dtype=torch.float64))


def as_float_images(images: Tensor) -> Tensor:
    """uint8 images → float in [0, 1]; float images as they are (models accept both)."""
    return images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()


def with_mix(batch: Batch, inputs: Tensor, second_targets: Tensor, lam: Tensor) -> Batch:
    """``batch`` with mixed ``inputs`` and what :func:`mixed_loss` needs in its extras."""
    return batch.replace(inputs=inputs, extras={**batch.extras, MIX_TARGETS: second_targets, MIX_LAMBDA: lam})


def mixed_loss(loss: LossFn) -> LossFn:
    """``loss`` of a mixed batch: λ·loss(y_a) + (1 − λ)·loss(y_b).

    One λ for the batch (a 0-d tensor): ``loss`` is called with the batch's targets and with
    the second targets. One λ per sample (N): ``loss`` is called once, with class-probability
    targets λ_i·onehot(y_a_i) + (1 − λ_i)·onehot(y_b_i); for a cross-entropy (``F.cross_entropy``
    takes probability targets; so does ``label_smoothing``) that is exactly the mean over the
    batch of λ_i·CE(y_a_i) + (1 − λ_i)·CE(y_b_i). A batch without the extras (not mixed) gets
    ``loss`` itself.
    """

    def mixed(outputs: Tensor, batch: Batch) -> Tensor:
        if MIX_LAMBDA not in batch.extras:
            return loss(outputs, batch)
        extras = {k: v for k, v in batch.extras.items() if k not in (MIX_TARGETS, MIX_LAMBDA)}
        lam, second = batch.extras[MIX_LAMBDA], batch.extras[MIX_TARGETS]
        plain = batch.replace(extras=extras)
        if lam.dim() == 0:
            return lam * loss(outputs, plain) + (1 - lam) * loss(outputs, plain.replace(targets=second))
        classes = torch.arange(outputs.shape[-1], device=outputs.device)
        # Comparisons, not F.one_hot: no check of the targets' range on the host.
        first_hot = (batch.targets.unsqueeze(-1) == classes).float()
        second_hot = (second.unsqueeze(-1) == classes).float()
        weight = lam.view(-1, 1)
        return loss(outputs, plain.replace(targets=weight * first_hot + (1 - weight) * second_hot))

    return mixed
