"""Augmentation: per-image draws, the study's ranges, and the CPU (albumentations) and torch
paths drawing from the same distributions (both run here on the CPU; backend="torch" forces
the tensor path that a GPU uses)."""
from __future__ import annotations

import pytest
import torch
from scipy import stats

from regsuite.api import Batch, Split
from regsuite.plugins.regularizers.augmentation import Augmentation, AugmentationParams

DRAWS = 1000
SIDE = 32
SIGNIFICANCE = 1e-3  # fixed seeds: deterministic; a real mismatch gives p-values far below this
OFF = dict(hflip=False, vflip=False, brightness=0.0, contrast=None, saturation=None)
# the tensor path runs on the CPU here; where a GPU is present, on the GPU too
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def augment_both(image: torch.Tensor, device: str = "cpu", **params) -> dict[str, torch.Tensor]:
    """DRAWS augmentations of one uint8 C×H×W image by each path, as floats in [0, 1] on the CPU."""
    out = {}
    for backend, where in (("albumentations", "cpu"), ("torch", device)):
        batch = Batch(image.unsqueeze(0).repeat(DRAWS, 1, 1, 1).to(where), torch.zeros(DRAWS, dtype=torch.long, device=where))
        aug = Augmentation(AugmentationParams(**{**OFF, **params, "backend": backend}))
        result = aug.transform_batch(batch, torch.Generator(device=where).manual_seed(7)).inputs.cpu()
        out[backend] = result.float() / 255 if result.dtype == torch.uint8 else result
    return out


def gray_ramp(low: int, high: int) -> torch.Tensor:
    ramp = torch.linspace(low, high, SIDE * SIDE).round().to(torch.uint8).view(1, SIDE, SIDE)
    return ramp.repeat(3, 1, 1)


def assert_uniform(samples: torch.Tensor, low: float, high: float) -> None:
    assert stats.kstest(samples.numpy(), stats.uniform(loc=low, scale=high - low).cdf).pvalue > SIGNIFICANCE
    assert samples.min() < low + 0.01 * (high - low) and samples.max() > high - 0.01 * (high - low)


def assert_same_distribution(a: torch.Tensor, b: torch.Tensor) -> None:
    assert stats.ks_2samp(a.numpy(), b.numpy()).pvalue > SIGNIFICANCE


@pytest.mark.parametrize("device", DEVICES)
def test_flips_are_coin_flips_per_image_and_independent(device: str) -> None:
    image = torch.arange(3 * SIDE * SIDE).remainder(251).to(torch.uint8).view(3, SIDE, SIDE)
    for backend, out in augment_both(image, device, hflip=True, vflip=True).items():
        expected = image.float() / 255
        horizontal = [torch.equal(o, expected.flip(-1)) or torch.equal(o, expected.flip(-1, -2)) for o in out]
        vertical = [torch.equal(o, expected.flip(-2)) or torch.equal(o, expected.flip(-1, -2)) for o in out]
        h, v = torch.tensor(horizontal, dtype=torch.float), torch.tensor(vertical, dtype=torch.float)
        assert abs(h.mean() - 0.5) < 0.05 and abs(v.mean() - 0.5) < 0.05, backend
        assert abs((h * v).mean() - 0.25) < 0.04, backend  # independent: both in about a quarter


@pytest.mark.parametrize("device", DEVICES)
def test_brightness_adds_a_uniform_delta_up_to_max_delta(device: str) -> None:
    image = torch.full((3, SIDE, SIDE), 128, dtype=torch.uint8)
    deltas = {backend: (out - 128 / 255).mean(dim=(1, 2, 3)) for backend, out in augment_both(image, device, brightness=0.4).items()}
    for samples in deltas.values():
        assert_uniform(samples, -0.4, 0.4)
    assert_same_distribution(deltas["albumentations"], deltas["torch"])


@pytest.mark.parametrize("device", DEVICES)
def test_contrast_scales_around_the_mean_by_a_uniform_factor(device: str) -> None:
    image = gray_ramp(60, 190)
    spread = (image.float() / 255).std()
    outs = augment_both(image, device, contrast=(0.8, 1.2))
    factors = {backend: out.flatten(1).std(dim=1) / spread for backend, out in outs.items()}
    for backend, out in outs.items():
        torch.testing.assert_close(out.mean(dim=(1, 2, 3)), torch.full((DRAWS,), image.float().mean() / 255), atol=3e-3, rtol=0)
        assert_uniform(factors[backend], 0.8, 1.2)
    assert_same_distribution(factors["albumentations"], factors["torch"])


@pytest.mark.parametrize("device", DEVICES)
def test_saturation_scales_colour_differences_by_a_uniform_factor(device: str) -> None:
    red = torch.linspace(120, 180, SIDE * SIDE).view(SIDE, SIDE)
    image = torch.stack([red, torch.full_like(red, 100), red - 90]).round().to(torch.uint8)
    difference = ((image[0].float() - image[2].float()) / 255).mean()
    factors = {backend: (out[:, 0] - out[:, 2]).mean(dim=(1, 2)) / difference
               for backend, out in augment_both(image, device, saturation=(0.7, 1.3)).items()}
    for samples in factors.values():
        assert_uniform(samples, 0.7, 1.3)
    assert_same_distribution(factors["albumentations"], factors["torch"])


@pytest.mark.parametrize("device", DEVICES)
def test_all_five_together_give_the_same_image_statistics(device: str) -> None:
    texture = torch.randint(30, 220, (3, SIDE, SIDE), generator=torch.Generator().manual_seed(3), dtype=torch.uint8)
    outs = augment_both(texture, device, hflip=True, vflip=True, brightness=0.4, contrast=(0.8, 1.2), saturation=(0.7, 1.3))
    for statistic in (lambda x: x.mean(dim=(1, 2, 3)), lambda x: x.flatten(1).std(dim=1),
                      lambda x: (x[:, 0] - x[:, 2]).mean(dim=(1, 2)), lambda x: x[:, :, :, : SIDE // 2].mean(dim=(1, 2, 3))):
        assert_same_distribution(statistic(outs["albumentations"]), statistic(outs["torch"]))


def test_draws_differ_per_image_and_repeat_per_seed() -> None:
    images = torch.full((16, 3, 8, 8), 100, dtype=torch.uint8)
    for backend in ("albumentations", "torch"):
        aug = Augmentation(AugmentationParams(backend=backend))
        first = aug.transform_batch(Batch(images, torch.zeros(16)), torch.Generator().manual_seed(1)).inputs
        again = aug.transform_batch(Batch(images, torch.zeros(16)), torch.Generator().manual_seed(1)).inputs
        assert torch.equal(first, again)
        assert len({tuple(image.flatten()[:1].tolist()) for image in first.float()}) > 8, backend


def test_paths_and_dtypes() -> None:
    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    batch = Batch(images, torch.zeros(4))
    cpu = Augmentation(AugmentationParams()).transform_batch(batch, torch.Generator().manual_seed(0)).inputs
    assert cpu.dtype == torch.uint8 and cpu.shape == images.shape
    tensor = Augmentation(AugmentationParams(backend="torch")).transform_batch(batch, torch.Generator().manual_seed(0)).inputs
    assert tensor.dtype == torch.float32 and tensor.shape == images.shape and 0 <= tensor.min() and tensor.max() <= 1
    gray = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)
    for backend in ("albumentations", "torch"):
        out = Augmentation(AugmentationParams(backend=backend)).transform_batch(Batch(gray, torch.zeros(4)), torch.Generator()).inputs
        assert out.shape == gray.shape


def test_double_mode_appends_one_augmented_copy_and_online_mode_leaves_the_data() -> None:
    split = Split(torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8), torch.arange(6))
    doubled = Augmentation(AugmentationParams(mode="double")).transform_dataset(split, torch.Generator().manual_seed(0))
    assert len(doubled) == 12 and torch.equal(doubled.inputs[:6], split.inputs)
    assert torch.equal(doubled.targets, torch.cat([split.targets, split.targets]))
    assert not torch.equal(doubled.inputs[6:], split.inputs)
    batch = Batch(split.inputs, split.targets)
    assert Augmentation(AugmentationParams(mode="double")).transform_batch(batch, torch.Generator()) is batch
    online = Augmentation(AugmentationParams())
    assert online.transform_dataset(split, torch.Generator()) is split


@pytest.mark.parametrize("backend", ["albumentations", "torch"])
def test_double_online_keeps_the_originals_and_augments_the_copies_afresh(backend) -> None:
    split = Split(torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8), torch.arange(6))
    aug = Augmentation(AugmentationParams(mode="double_online", backend=backend))
    doubled = aug.transform_dataset(split, torch.Generator().manual_seed(0))
    assert len(doubled) == 12 and torch.equal(doubled.inputs[6:], split.inputs)  # the copy is drawn per batch
    index = torch.tensor([7, 0, 9, 3, 11, 6])  # copies of 1, 3, 5, 0; originals 0 and 3
    batch = Batch(doubled.inputs[index], doubled.targets[index], index=index)
    generator = torch.Generator().manual_seed(1)
    first = aug.transform_batch(batch, generator).inputs
    second = aug.transform_batch(batch, generator).inputs  # the next epoch's draw
    as_float = (lambda x: x.float() / 255) if first.dtype == torch.uint8 else (lambda x: x)
    originals = index < 6
    assert torch.allclose(as_float(first[originals]), doubled.inputs[index][originals].float() / 255)
    assert not torch.allclose(as_float(first[~originals]), doubled.inputs[index][~originals].float() / 255)
    assert not torch.equal(first[~originals], second[~originals])
    with pytest.raises(RuntimeError, match="Batch.index"):
        aug.transform_batch(Batch(split.inputs, split.targets), generator)


def test_params() -> None:
    assert AugmentationParams(hflip=True, vflip=False).model_dump()["hflip"] == 0.5
    assert AugmentationParams(vflip=False).vflip == 0.0
    assert AugmentationParams(hflip=0.3).hflip == 0.3
    defaults = AugmentationParams()  # the study's
    assert (defaults.brightness, defaults.contrast, defaults.saturation) == (0.4, (0.8, 1.2), (0.7, 1.3))
    with pytest.raises(ValueError, match="lower <= upper"):
        AugmentationParams(contrast=(1.2, 0.8))
    with pytest.raises(ValueError):
        AugmentationParams(hflip=1.5)
    with pytest.raises(ValueError):
        AugmentationParams(rotate=10)
