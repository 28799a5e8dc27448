"""Label smoothing, mixup, CutMix and random erasing: their losses against hand-written
formulas, what their batch transforms change (and only that), reproducibility from the
generator, and their parameter validation. Tiny tensors on the CPU; the kit's two-epoch
check of every plugin is in test_plugins_smoke.py."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from scipy import special, stats

from regsuite.api import IGNORE_TARGET, Batch
from regsuite.errors import RegsuiteError
from regsuite.plugins.regularizers.cutmix import CutMix, CutMixParams
from regsuite.plugins.regularizers.label_smoothing import LabelSmoothing, LabelSmoothingParams
from regsuite.plugins.regularizers.mixing import (MIX_LAMBDA, MIX_TARGETS, log_standard_gamma, random_permutation,
                                                  sample_beta)
from regsuite.plugins.regularizers.mixup import Mixup, MixupParams
from regsuite.plugins.regularizers.random_erasing import RandomErasing, RandomErasingParams
from regsuite.plugins.tasks.image_classification import ImageClassification
from regsuite.plugins.tasks.sequence_labelling import SequenceLabelling
from regsuite.registry import get_registry
from regsuite.spec import PluginRef, Spec, resolve

CPU = torch.device("cpu")


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(n: int = 8, channels: int = 3, size: int = 8, seed: int = 0, low: int = 0) -> torch.Tensor:
    return torch.randint(low, 256, (n, channels, size, size), generator=gen(seed), dtype=torch.uint8)


def image_batch(n: int = 8, size: int = 8, seed: int = 0) -> Batch:
    """Targets 0..n-1: the second targets of a mixed batch then name the permutation itself."""
    return Batch(images(n, size=size, seed=seed), torch.arange(n))


def smoothed_ce(logits: torch.Tensor, targets: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Cross-entropy against (1 − ε)·onehot + ε/C, written out (rows of logits N×C)."""
    classes = logits.shape[-1]
    target = (1 - epsilon) * F.one_hot(targets, classes).double() + epsilon / classes
    return -(target * torch.log_softmax(logits.double(), dim=-1)).sum(dim=-1).mean()


# ---------------------------------------------------------------------------- label smoothing


def test_label_smoothing_is_the_smoothed_cross_entropy_for_images():
    logits, targets = torch.randn(6, 5, generator=gen()), torch.tensor([0, 4, 2, 2, 1, 3])
    loss = LabelSmoothing(LabelSmoothingParams(epsilon=0.2)).wrap_loss(ImageClassification().loss)
    value = loss(logits, Batch(torch.zeros(6), targets))
    assert value.shape == ()
    assert value.item() == pytest.approx(smoothed_ce(logits, targets, 0.2).item(), rel=1e-5)
    assert value.item() == pytest.approx(F.cross_entropy(logits, targets, label_smoothing=0.2).item(), rel=1e-5)
    plain = LabelSmoothing(LabelSmoothingParams(epsilon=0)).wrap_loss(ImageClassification().loss)
    assert plain(logits, Batch(torch.zeros(6), targets)).item() == pytest.approx(F.cross_entropy(logits, targets).item(), rel=1e-6)


def test_label_smoothing_on_sequences_matches_pytorch_and_ignores_padding():
    task = SequenceLabelling()
    logits = torch.randn(3, 4, 6, generator=gen(), requires_grad=True)
    targets = torch.tensor([[1, 2, 3, 0], [5, 4, IGNORE_TARGET, IGNORE_TARGET], [2, IGNORE_TARGET, IGNORE_TARGET, IGNORE_TARGET]])
    batch = Batch(torch.zeros(3, 4, dtype=torch.long), targets)
    loss = LabelSmoothing(LabelSmoothingParams(epsilon=0.1)).wrap_loss(task.loss)
    value = loss(logits, batch)
    expected = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), label_smoothing=0.1, ignore_index=IGNORE_TARGET)
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    real = targets != IGNORE_TARGET
    assert value.item() == pytest.approx(smoothed_ce(logits[real], targets[real], 0.1).item(), rel=1e-5)
    # Padding positions play no part: other logits there give the same loss and no gradient.
    changed = logits.detach().clone()
    changed[~real] = 100 * torch.randn(int((~real).sum()), 6, generator=gen(1))
    assert loss(changed, batch).item() == pytest.approx(value.item(), rel=1e-6)
    value.backward()
    assert torch.all(logits.grad[~real] == 0) and torch.any(logits.grad[real] != 0)


def test_label_smoothing_composes_with_mixup_in_either_order():
    task, smoothing, mixup = ImageClassification(), LabelSmoothing(LabelSmoothingParams(epsilon=0.3)), Mixup()
    logits = torch.randn(4, 3, generator=gen())
    targets, second, lam = torch.tensor([0, 1, 2, 0]), torch.tensor([2, 0, 1, 1]), torch.tensor(0.7)
    batch = Batch(torch.zeros(4), targets, extras={MIX_TARGETS: second, MIX_LAMBDA: lam})
    expected = 0.7 * smoothed_ce(logits, targets, 0.3) + 0.3 * smoothed_ce(logits, second, 0.3)
    inside = mixup.wrap_loss(smoothing.wrap_loss(task.loss))
    outside = smoothing.wrap_loss(mixup.wrap_loss(task.loss))
    assert inside(logits, batch).item() == pytest.approx(expected.item(), rel=1e-5)
    assert outside(logits, batch).item() == pytest.approx(expected.item(), rel=1e-5)
    # per-sample λ: probability targets, which label smoothing counts row by row
    lams = torch.tensor([0.1, 0.5, 0.9, 1.0])
    per_sample = batch.replace(extras={MIX_TARGETS: second, MIX_LAMBDA: lams})
    rows = [lams[i] * smoothed_ce(logits[i:i + 1], targets[i:i + 1], 0.3)
            + (1 - lams[i]) * smoothed_ce(logits[i:i + 1], second[i:i + 1], 0.3) for i in range(4)]
    expected = torch.stack(rows).mean()
    assert inside(logits, per_sample).item() == pytest.approx(expected.item(), rel=1e-5)
    assert outside(logits, per_sample).item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("epsilon", [-0.1, 1.0, 1.5, math.nan])
def test_label_smoothing_rejects_epsilon_out_of_range(epsilon):
    with pytest.raises(ValidationError):
        LabelSmoothingParams(epsilon=epsilon)


# ---------------------------------------------------------------------------- Beta draws


@pytest.mark.parametrize("alpha", [0.2, 1.0, 4.0])
def test_beta_draws_follow_beta_alpha_alpha(alpha):
    lam = sample_beta(alpha, (20000,), gen(3), CPU)
    assert lam.dtype == torch.float32 and lam.shape == (20000,)
    assert torch.all((lam >= 0) & (lam <= 1))
    assert lam.double().var().item() == pytest.approx(1 / (4 * (2 * alpha + 1)), rel=0.05)
    # Compare in log-odds: near 0 and 1 a float32 λ cannot resolve what small alpha puts there.
    log_x = log_standard_gamma(alpha, (2, 20000), gen(4), CPU).double().numpy()
    log_odds = log_x[0] - log_x[1]
    cdf = lambda t: np.where(t < 0, stats.beta(alpha, alpha).cdf(special.expit(t)),  # noqa: E731
                             stats.beta(alpha, alpha).sf(special.expit(-t)))
    assert stats.kstest(log_odds, cdf).pvalue > 1e-3


@pytest.mark.parametrize("shape", [0.05, 0.5, 1.0, 3.0])
def test_gamma_draws_follow_gamma(shape):
    log_g = log_standard_gamma(shape, (20000,), gen(5), CPU).double().numpy()
    assert np.all(np.isfinite(log_g))
    assert stats.kstest(log_g, lambda t: stats.gamma(shape).cdf(np.exp(t))).pvalue > 1e-3


def test_beta_draws_are_reproducible_and_never_nan_for_tiny_alpha():
    first, second = sample_beta(0.01, (5000,), gen(7), CPU), sample_beta(0.01, (5000,), gen(7), CPU)
    assert torch.equal(first, second) and not torch.isnan(first).any()
    assert not torch.equal(first, sample_beta(0.01, (5000,), gen(8), CPU))
    assert sample_beta(0.2, (), gen(), CPU).shape == ()


def test_random_permutation_is_a_permutation_and_reproducible():
    perm = random_permutation(50, gen(1), CPU)
    assert sorted(perm.tolist()) == list(range(50))
    assert torch.equal(perm, random_permutation(50, gen(1), CPU))
    assert not torch.equal(perm, random_permutation(50, gen(2), CPU))


# ---------------------------------------------------------------------------- mixup


@pytest.mark.parametrize("per_sample", [False, True])
def test_mixup_mixes_each_image_with_one_other_image_of_the_batch(per_sample):
    batch = image_batch()
    out = Mixup(MixupParams(alpha=1.0, per_sample=per_sample)).transform_batch(batch, gen())
    lam, perm = out.extras[MIX_LAMBDA], out.extras[MIX_TARGETS]
    assert lam.shape == ((8,) if per_sample else ())
    assert torch.all((lam >= 0) & (lam <= 1))
    assert sorted(perm.tolist()) == list(range(8))  # targets 0..7: the second targets are the permutation
    assert out.inputs.dtype == torch.float32 and torch.all((out.inputs >= 0) & (out.inputs <= 1))
    x = batch.inputs.float() / 255
    weight = lam.view(-1, 1, 1, 1) if per_sample else lam
    torch.testing.assert_close(out.inputs, weight * x + (1 - weight) * x[perm])
    assert torch.equal(out.targets, batch.targets)  # the first targets stay
    assert batch.extras == {}  # the input batch is left as it was


def test_mixup_is_reproducible_from_the_generator():
    mixup = Mixup(MixupParams(per_sample=True))
    first, second = mixup.transform_batch(image_batch(), gen(5)), mixup.transform_batch(image_batch(), gen(5))
    assert torch.equal(first.inputs, second.inputs)
    assert torch.equal(first.extras[MIX_LAMBDA], second.extras[MIX_LAMBDA])
    assert torch.equal(first.extras[MIX_TARGETS], second.extras[MIX_TARGETS])
    other = mixup.transform_batch(image_batch(), gen(6))
    assert not torch.equal(first.inputs, other.inputs)


def test_mixup_accepts_float_images_as_they_are():
    batch = image_batch()
    floats = batch.replace(inputs=batch.inputs.float() / 255)
    mixup = Mixup()
    torch.testing.assert_close(mixup.transform_batch(floats, gen()).inputs, mixup.transform_batch(batch, gen()).inputs)


def test_mixup_loss_is_the_lambda_weighted_loss_of_both_targets():
    task, mixup = ImageClassification(), Mixup()
    out = mixup.transform_batch(image_batch(), gen(2))
    logits = torch.randn(8, 8, generator=gen(3))
    lam, second = out.extras[MIX_LAMBDA], out.extras[MIX_TARGETS]
    expected = lam * F.cross_entropy(logits, out.targets) + (1 - lam) * F.cross_entropy(logits, second)
    value = mixup.wrap_loss(task.loss)(logits, out)
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    # The inner loss is called with each set of targets, and without the mixing extras.
    seen = []

    def inner(outputs, batch):
        seen.append((batch.targets, dict(batch.extras)))
        return F.cross_entropy(outputs, batch.targets)

    mixup.wrap_loss(inner)(logits, out)
    assert [torch.equal(t, want) for (t, _), want in zip(seen, (out.targets, second))] == [True, True]
    assert all(extras == {} for _, extras in seen)
    # A batch that was not mixed gets the plain loss.
    plain = Batch(out.inputs, out.targets)
    assert mixup.wrap_loss(task.loss)(logits, plain).item() == pytest.approx(F.cross_entropy(logits, out.targets).item())


def test_mixup_per_sample_loss_weights_each_sample_by_its_own_lambda():
    task, mixup = ImageClassification(), Mixup(MixupParams(alpha=1.0, per_sample=True))
    out = mixup.transform_batch(image_batch(), gen(2))
    logits = torch.randn(8, 8, generator=gen(3), requires_grad=True)
    lam, second = out.extras[MIX_LAMBDA], out.extras[MIX_TARGETS]
    assert len(set(lam.tolist())) == 8
    expected = (lam * F.cross_entropy(logits, out.targets, reduction="none")
                + (1 - lam) * F.cross_entropy(logits, second, reduction="none")).mean()
    value = mixup.wrap_loss(task.loss)(logits, out)
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    (grad,) = torch.autograd.grad(value, logits)
    (want,) = torch.autograd.grad(expected, logits)
    torch.testing.assert_close(grad, want)


@pytest.mark.parametrize("params", [{"alpha": 0}, {"alpha": -1}, {"alpha": math.inf}, {"beta": 1.0}])
def test_mixup_rejects_bad_parameters(params):
    with pytest.raises(ValidationError):
        MixupParams(**params)


# ---------------------------------------------------------------------------- CutMix


def box_of(changed: torch.Tensor) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of the True cells of a 2-D mask, asserting they form exactly
    that rectangle; None for an empty mask."""
    if not changed.any():
        return None
    rows, cols = changed.any(dim=1).nonzero().flatten(), changed.any(dim=0).nonzero().flatten()
    top, bottom, left, right = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
    rectangle = torch.zeros_like(changed)
    rectangle[top:bottom, left:right] = True
    assert torch.equal(changed, rectangle), "the changed pixels are not one rectangle"
    return top, bottom, left, right


@pytest.mark.parametrize("seed", range(12))
def test_cutmix_pastes_one_box_from_the_permuted_batch_and_lambda_is_its_kept_area(seed):
    size = 16
    batch = image_batch(n=6, size=size, seed=seed)
    out = CutMix().transform_batch(batch, gen(seed))
    lam, perm = out.extras[MIX_LAMBDA], out.extras[MIX_TARGETS]
    assert out.inputs.dtype == torch.uint8  # pasting needs no float
    box = torch.zeros(size, size, dtype=torch.bool)
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    found = box_of((out.inputs != batch.inputs).any(dim=(0, 1)))
    if found is not None:
        top, bottom, left, right = found
        box = (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)
    # Inside the box every image is its partner's, outside it is its own: exactly one box for the batch.
    expected = torch.where(box, batch.inputs[perm], batch.inputs)
    assert torch.equal(out.inputs, expected)
    assert not torch.equal(perm, torch.arange(6))  # else nothing would show where the box is
    assert lam.item() == pytest.approx(1 - box.sum().item() / size**2, abs=1e-6)
    assert 0 <= lam.item() <= 1


def test_cutmix_boxes_are_clipped_at_the_border_and_lambda_follows():
    """Over many batches some boxes touch the border (clipped), and λ is still the kept area."""
    size, clipped = 8, 0
    batch = image_batch(n=4, size=size, seed=1)
    for seed in range(60):
        out = CutMix(CutMixParams(alpha=0.5)).transform_batch(batch, gen(seed))
        changed = (out.inputs != batch.inputs).any(dim=(0, 1))
        found = box_of(changed)
        if found is not None and (found[0] == 0 or found[1] == size or found[2] == 0 or found[3] == size):
            clipped += 1
        assert out.extras[MIX_LAMBDA].item() <= 1 - changed.sum().item() / size**2 + 1e-6
    assert clipped > 0


def test_cutmix_with_p_zero_changes_nothing_and_its_loss_is_the_plain_loss():
    batch = image_batch()
    cutmix = CutMix(CutMixParams(p=0))
    out = cutmix.transform_batch(batch, gen())
    assert torch.equal(out.inputs, batch.inputs) and out.extras[MIX_LAMBDA].item() == 1.0
    logits = torch.randn(8, 8, generator=gen(1))
    assert cutmix.wrap_loss(ImageClassification().loss)(logits, out).item() == pytest.approx(
        F.cross_entropy(logits, batch.targets).item(), rel=1e-6)


def test_cutmix_loss_is_the_area_weighted_loss_and_runs_are_reproducible():
    cutmix = CutMix()
    first, second = cutmix.transform_batch(image_batch(), gen(4)), cutmix.transform_batch(image_batch(), gen(4))
    assert torch.equal(first.inputs, second.inputs) and torch.equal(first.extras[MIX_LAMBDA], second.extras[MIX_LAMBDA])
    logits = torch.randn(8, 8, generator=gen(1))
    lam = first.extras[MIX_LAMBDA]
    expected = lam * F.cross_entropy(logits, first.targets) + (1 - lam) * F.cross_entropy(logits, first.extras[MIX_TARGETS])
    assert cutmix.wrap_loss(ImageClassification().loss)(logits, first).item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("params", [{"alpha": 0}, {"p": -0.1}, {"p": 1.1}])
def test_cutmix_rejects_bad_parameters(params):
    with pytest.raises(ValidationError):
        CutMixParams(**params)


def test_mixup_and_cutmix_cannot_share_a_set():
    spec = Spec(name="mix", task=PluginRef(name="image_classification"),
                dataset=PluginRef(name="digits", train_limit=40), model=PluginRef(name="small_cnn"),
                sets=[{"label": "both", "regularizers": [PluginRef(name="mixup"), PluginRef(name="cutmix")]}])
    with pytest.raises(RegsuiteError, match="'cutmix' and 'mixup' cannot be combined"):
        resolve(spec, get_registry())


# ---------------------------------------------------------------------------- random erasing


def erased_boxes(before: torch.Tensor, after: torch.Tensor) -> list[tuple[int, int, int, int] | None]:
    """Each image's erased rectangle, asserting that every channel changed in the same one."""
    boxes = []
    for old, new in zip(before, after):
        changed = new != old
        assert torch.equal(changed, changed[:1].expand_as(changed)), "the channels differ in what changed"
        boxes.append(box_of(changed[0]))
    return boxes


def test_random_erasing_zeroes_one_rectangle_per_image_and_nothing_else():
    batch = Batch(images(64, low=1), torch.zeros(64, dtype=torch.long))  # no zeros before: zeros mark the erased
    out = RandomErasing(RandomErasingParams(p=1.0, value="zero")).transform_batch(batch, gen())
    assert out.inputs.dtype == torch.uint8 and torch.equal(out.targets, batch.targets)
    boxes = erased_boxes(batch.inputs, out.inputs)
    assert all(box is not None for box in boxes)  # p = 1: every image (boxes are clipped, never skipped)
    assert torch.all((out.inputs == 0) == (out.inputs != batch.inputs))
    for top, bottom, left, right in boxes:
        assert 1 <= (bottom - top) * (right - left) <= 64


def test_random_erasing_box_sides_follow_scale_and_ratio_and_are_clipped_to_the_image():
    batch = Batch(images(40, size=16, low=1), torch.zeros(40, dtype=torch.long))
    square = RandomErasing(RandomErasingParams(p=1, scale=(0.25, 0.25), ratio=(1, 1), value="zero"))
    tall = RandomErasing(RandomErasingParams(p=1, scale=(0.25, 0.25), ratio=(4, 4), value="zero"))
    too_tall = RandomErasing(RandomErasingParams(p=1, scale=(0.25, 0.25), ratio=(16, 16), value="zero"))
    for reg, (h, w) in ((square, (8, 8)), (tall, (16, 4)), (too_tall, (16, 2))):  # round(√(64·r)), round(√(64/r))
        for top, bottom, left, right in erased_boxes(batch.inputs, reg.transform_batch(batch, gen()).inputs):
            assert (bottom - top, right - left) == (h, w)


def test_random_erasing_positions_cover_every_place_the_box_fits():
    batch = Batch(images(300, size=8, low=1), torch.zeros(300, dtype=torch.long))
    reg = RandomErasing(RandomErasingParams(p=1, scale=(0.25, 0.25), ratio=(1, 1), value="zero"))
    boxes = erased_boxes(batch.inputs, reg.transform_batch(batch, gen()).inputs)
    assert {box[0] for box in boxes} == set(range(5)) and {box[2] for box in boxes} == set(range(5))


def test_random_erasing_erases_about_p_of_the_images_with_random_values():
    batch = Batch(images(200, size=8).float() / 255, torch.zeros(200, dtype=torch.long))
    out = RandomErasing(RandomErasingParams(p=0.5)).transform_batch(batch, gen())
    boxes = erased_boxes(batch.inputs, out.inputs)
    erased = sum(box is not None for box in boxes)
    assert 70 < erased < 130
    assert out.inputs.dtype == torch.float32 and torch.all((out.inputs >= 0) & (out.inputs <= 1))
    i = next(i for i, box in enumerate(boxes) if box is not None and (box[1] - box[0]) * (box[3] - box[2]) >= 4)
    top, bottom, left, right = boxes[i]
    noise = out.inputs[i, :, top:bottom, left:right]
    assert noise.unique().numel() > 1 and torch.all(noise < 1)  # uniform noise in [0, 1), not one colour


def test_random_erasing_with_p_zero_changes_nothing():
    batch = image_batch()
    out = RandomErasing(RandomErasingParams(p=0)).transform_batch(batch, gen())
    assert torch.equal(out.inputs, batch.inputs) and out.inputs.dtype == torch.uint8


def test_random_erasing_is_reproducible_from_the_generator():
    reg = RandomErasing()
    first, second = reg.transform_batch(image_batch(32), gen(9)), reg.transform_batch(image_batch(32), gen(9))
    assert torch.equal(first.inputs, second.inputs)
    assert not torch.equal(first.inputs, reg.transform_batch(image_batch(32), gen(10)).inputs)


@pytest.mark.parametrize("params", [
    {"scale": (0.3, 0.1)}, {"scale": (0.0, 0.3)}, {"scale": (0.1, 1.5)}, {"scale": (0.1,)},
    {"ratio": (3.3, 0.3)}, {"ratio": (0.0, 1.0)}, {"ratio": (-1.0, 1.0)},
    {"p": 1.5}, {"p": -0.5}, {"value": "mean"}, {"fill": 0},
])
def test_random_erasing_rejects_bad_parameters(params):
    with pytest.raises(ValidationError):
        RandomErasingParams(**params)


def test_random_erasing_accepts_lists_as_toml_gives_them():
    params = RandomErasingParams.model_validate({"scale": [0.1, 0.2], "ratio": [1, 2]})
    assert params.scale == (0.1, 0.2) and params.ratio == (1.0, 2.0)


# ---------------------------------------------------------------------------- on a GPU


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_batch_hooks_and_losses_never_wait_for_the_gpu():
    device = torch.device("cuda")
    generator = torch.Generator(device=device).manual_seed(0)
    batch = Batch(images(16).to(device), torch.arange(16, device=device))
    logits = torch.randn(16, 16, device=device)
    task = ImageClassification()
    regs = [Mixup(), Mixup(MixupParams(per_sample=True)), CutMix(), RandomErasing(),
            RandomErasing(RandomErasingParams(value="zero")), LabelSmoothing()]
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for reg in regs:
            out = reg.transform_batch(batch, generator)
            reg.wrap_loss(task.loss)(logits, out)
    finally:
        torch.cuda.set_sync_debug_mode("default")
