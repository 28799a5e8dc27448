"""Data augmentation: the study's five transforms, drawn per image.

The study used TensorFlow's ops on images in [0, 1]; each maps to albumentations:

========================  ==========================================  =====================================
study (TensorFlow)        albumentations (CPU path)                   difference
========================  ==========================================  =====================================
random_flip_left_right    HorizontalFlip(p=0.5)                       none
random_flip_up_down       VerticalFlip(p=0.5)                         none
random_brightness(0.4)    RandomBrightnessContrast(brightness_limit=  result clipped to [0, 1] (TF does
                          0.4, contrast_limit=0, brightness_by_max)   not clip)
random_contrast(.8, 1.2)  ColorJitter(contrast=(0.8, 1.2))            centred on the grayscale mean of the
                                                                      image, not each channel's mean; clipped
random_saturation(.7,1.3) ColorJitter(saturation=(0.7, 1.3))          blends with the grayscale image
                                                                      instead of scaling HSV saturation; clipped
========================  ==========================================  =====================================

On a GPU the same formulas run on the whole batch with one random draw per image (masks
and broadcast factors), in the same order; torchvision's v2 batch transforms are not used
because they draw one parameter per batch. On one-channel images saturation does nothing.

``mode = "online"`` draws fresh augmentations for every batch of every epoch.
``mode = "double"`` is the study's "effectively doubled" dataset: before training, one
augmented copy of every training image is made (once, from the run's seed) and appended,
so each epoch sees the originals plus that copy.
"""
from __future__ import annotations

from typing import Literal

import albumentations as A
import numpy as np
import torch
from pydantic import Field, model_validator
from torch import Tensor

from regsuite import hookimpl
from regsuite.api import Batch, Params, Regularizer, Split

GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601-2, as albumentations' and PIL's grayscale


class AugmentationParams(Params):
    mode: Literal["online", "double"] = Field("online", description="fresh draws each batch, or one augmented copy appended")
    hflip: bool = Field(True, description="left-right flip with probability 0.5")
    vflip: bool = Field(True, description="up-down flip with probability 0.5")
    brightness: float = Field(0.4, ge=0, le=1, description="max_delta: add δ ~ U[-max_delta, max_delta] (0 = off)")
    contrast: tuple[float, float] | None = Field((0.8, 1.2), description="contrast factor range (lower, upper); none = off")
    saturation: tuple[float, float] | None = Field((0.7, 1.3), description="saturation factor range (lower, upper); none = off")
    backend: Literal["auto", "albumentations", "torch"] = Field(
        "auto", description="auto: albumentations on CPU, per-image torch ops on a GPU"
    )

    @model_validator(mode="after")
    def ranges_ordered(self) -> "AugmentationParams":
        for key in ("contrast", "saturation"):
            bounds = getattr(self, key)
            if bounds is not None and not (0 <= bounds[0] <= bounds[1]):
                raise ValueError(f"{key} must be (lower, upper) with 0 <= lower <= upper, got {bounds}")
        return self


class Augmentation(Regularizer):
    """The study's augmentation: flips, brightness, contrast, saturation, drawn per image."""

    name = "augmentation"
    tasks = frozenset({"image_classification"})
    Params = AugmentationParams

    def __init__(self, params: AugmentationParams | None = None):
        super().__init__(params)
        self.pipeline = A.Compose(self.albumentations_transforms())

    def albumentations_transforms(self) -> list[A.BasicTransform]:
        p = self.params
        transforms: list[A.BasicTransform] = []
        if p.hflip:
            transforms.append(A.HorizontalFlip(p=0.5))
        if p.vflip:
            transforms.append(A.VerticalFlip(p=0.5))
        if p.brightness > 0:
            transforms.append(A.RandomBrightnessContrast(brightness_limit=p.brightness, contrast_limit=0, brightness_by_max=True, p=1))
        # Separate ColorJitters keep the order fixed (one ColorJitter shuffles its operations).
        if p.contrast is not None:
            transforms.append(A.ColorJitter(brightness=0, contrast=p.contrast, saturation=0, hue=0, p=1))
        if p.saturation is not None:
            transforms.append(A.ColorJitter(brightness=0, contrast=0, saturation=p.saturation, hue=0, p=1))
        return transforms

    # ------------------------------------------------------------------ hooks

    def transform_dataset(self, split: Split, generator: torch.Generator) -> Split:
        if self.params.mode != "double":
            return split
        copy = self.augment_uint8(split.inputs, generator)
        return Split(torch.cat([split.inputs, copy]), torch.cat([split.targets, split.targets]))

    def transform_batch(self, batch: Batch, generator: torch.Generator) -> Batch:
        if self.params.mode != "online":
            return batch
        if self.use_torch(batch.inputs):
            return batch.replace(inputs=augment_tensor(batch.inputs, self.params, generator))
        return batch.replace(inputs=self.augment_uint8(batch.inputs, generator))

    # ------------------------------------------------------------------ the two paths

    def use_torch(self, inputs: Tensor) -> bool:
        backend = self.params.backend
        return backend == "torch" or (backend == "auto" and inputs.device.type != "cpu")

    def augment_uint8(self, images: Tensor, generator: torch.Generator) -> Tensor:
        """albumentations, one image at a time, on uint8 N×C×H×W (CPU)."""
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator, device=generator.device))
        self.pipeline.set_random_seed(seed)
        source = images.cpu().permute(0, 2, 3, 1).numpy()
        out = np.empty_like(source)
        for i in range(len(source)):
            out[i] = self.pipeline(image=source[i])["image"].reshape(source[i].shape)
        return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous().to(images.device)


def augment_tensor(images: Tensor, p: AugmentationParams, generator: torch.Generator) -> Tensor:
    """The same transforms as the albumentations path, batched: one draw per image."""
    x = images.float().div(255.0) if images.dtype == torch.uint8 else images.float()
    n = x.shape[0]

    def uniform(low: float, high: float) -> Tensor:
        u = torch.rand(n, generator=generator, device=x.device)
        return (low + (high - low) * u).view(n, 1, 1, 1)

    if p.hflip:
        x = torch.where(uniform(0, 1) < 0.5, x.flip(-1), x)
    if p.vflip:
        x = torch.where(uniform(0, 1) < 0.5, x.flip(-2), x)
    if p.brightness > 0:
        x = (x + uniform(-p.brightness, p.brightness)).clamp_(0, 1)
    if p.contrast is not None:
        mean = grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * uniform(*p.contrast) + mean).clamp_(0, 1)
    if p.saturation is not None and x.shape[1] == 3:
        gray = grayscale(x)
        factor = uniform(*p.saturation)
        x = (x * factor + gray * (1 - factor)).clamp_(0, 1)
    return x


def grayscale(x: Tensor) -> Tensor:
    if x.shape[1] == 1:
        return x
    weights = torch.tensor(GRAY_WEIGHTS, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True)


@hookimpl
def regsuite_register_regularizers():
    return [Augmentation]
