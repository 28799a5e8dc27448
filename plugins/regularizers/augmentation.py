"""Data augmentation: the study's five transforms, drawn per image.

The study used TensorFlow's ops on images in [0, 1]; each maps to the closest albumentations
transform (the CPU path, on uint8 images):

=========================  ==========================================  ===========================================
study (TensorFlow)         albumentations (CPU path)                   difference from TensorFlow
=========================  ==========================================  ===========================================
random_flip_left_right     HorizontalFlip(p=0.5)                       none
random_flip_up_down        VerticalFlip(p=0.5)                         none
random_brightness(0.4):    RandomBrightnessContrast(brightness_limit=  clipped to [0, 1]
x + δ, δ ~ U[-0.4, 0.4)    0.4, contrast_limit=0,
                           brightness_by_max=True)
random_contrast(0.8, 1.2): ColorJitter(contrast=(0.8, 1.2))            centred on the mean of the image's grayscale
(x - mean_c)·f + mean_c,                                               (one mean for all channels), not each
f ~ U[0.8, 1.2)                                                        channel's own mean; clipped
random_saturation(0.7,     ColorJitter(saturation=(0.7, 1.3))          blends with the grayscale image,
1.3): HSV S · f                                                        x·f + gray·(1 − f), instead of scaling the
                                                                       HSV saturation (hue and value move a little);
                                                                       clipped
=========================  ==========================================  ===========================================

They run in this order, each with its own random stream. The uint8 path also rounds to
whole levels after every step. TensorFlow does not clip; here every step clips to [0, 1],
as any uint8 pipeline must (the torch path clips too, so that both draw from the same
distribution).

On a GPU (``backend = "auto"`` with data on the GPU, or ``backend = "torch"`` anywhere) the
same formulas run on the whole batch as tensor ops with one random draw per image (masks
and broadcast factors): training never waits for the CPU. torchvision's v2 batch transforms
are not used, because they draw one parameter per batch. On one-channel images saturation
does nothing.

Three readings of "augmentation", as the ``mode`` parameter:

- ``online``: every image is augmented afresh in every batch of every epoch (no originals).
- ``double``: one augmented copy of every training image is made once, before training
  (from the run's seed), and appended; each epoch sees the originals plus that fixed copy.
- ``double_online``: the originals plus a copy of each that is augmented afresh every
  epoch, as ``dataset.concatenate(dataset.map(augment))`` in a ``tf.data`` pipeline: each
  epoch sees every original once and a new augmented version of it once. This is the
  reading of the study's "effectively doubled" dataset that ``specs/paper.toml`` uses.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from pydantic import Field, field_validator, model_validator
from torch import Tensor

from regsuite import hookimpl
from regsuite.api import Batch, Params, Regularizer, Split

if TYPE_CHECKING:
    import albumentations as A

GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601-2, as OpenCV's (and so albumentations') grayscale
SEED_LIMIT = 2**31 - 1


class AugmentationParams(Params):
    mode: Literal["online", "double", "double_online"] = Field(
        "online", description="online: fresh draws each batch; double: one fixed augmented copy appended; "
                              "double_online: originals plus a copy augmented afresh each epoch")
    hflip: float = Field(0.5, ge=0, le=1, description="probability of a left-right flip (true = 0.5, false = off)")
    vflip: float = Field(0.5, ge=0, le=1, description="probability of an up-down flip (true = 0.5, false = off)")
    brightness: float = Field(0.4, ge=0, le=1, description="max_delta: add δ ~ U[-max_delta, max_delta] (0 = off)")
    contrast: tuple[float, float] | None = Field((0.8, 1.2), description="contrast factor range (lower, upper); none = off")
    saturation: tuple[float, float] | None = Field((0.7, 1.3), description="saturation factor range (lower, upper); none = off")
    backend: Literal["auto", "albumentations", "torch"] = Field(
        "auto", description="auto: albumentations on CPU data, per-image torch ops on GPU data"
    )

    @field_validator("hflip", "vflip", mode="before")
    @classmethod
    def flip_switch(cls, value: Any) -> Any:
        if isinstance(value, bool):  # true means the study's coin flip, not "always"
            return 0.5 if value else 0.0
        return value

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
        self.transforms = albumentations_transforms(self.params)
        self.originals: int | None = None  # double_online: samples at or past this index are copies

    # ------------------------------------------------------------------ hooks

    def transform_dataset(self, split: Split, generator: torch.Generator) -> Split:
        if self.params.mode == "online":
            return split
        self.originals = len(split)
        copy = self.augment_uint8(split.inputs, generator) if self.params.mode == "double" else split.inputs
        return Split(torch.cat([split.inputs, copy]), torch.cat([split.targets, split.targets]))

    def transform_batch(self, batch: Batch, generator: torch.Generator) -> Batch:
        if self.params.mode == "online":
            return batch.replace(inputs=self.augment(batch.inputs, generator))
        if self.params.mode == "double_online":
            return batch.replace(inputs=self.augment_copies(batch, generator))
        return batch

    # ------------------------------------------------------------------ the two paths

    def augment(self, inputs: Tensor, generator: torch.Generator) -> Tensor:
        if self.use_torch(inputs):
            return augment_tensor(inputs, self.params, generator)
        return self.augment_uint8(inputs, generator)

    def augment_copies(self, batch: Batch, generator: torch.Generator) -> Tensor:
        """double_online: augment the batch's copies, leave its originals as they are."""
        if batch.index is None or self.originals is None:
            raise RuntimeError('mode "double_online" needs the training split doubled first and Batch.index set')
        is_copy = batch.index >= self.originals
        if self.use_torch(batch.inputs):  # no row selection: it would wait on the GPU
            originals = batch.inputs.float().div(255.0) if batch.inputs.dtype == torch.uint8 else batch.inputs.float()
            return torch.where(is_copy.view(-1, 1, 1, 1), augment_tensor(batch.inputs, self.params, generator), originals)
        out = batch.inputs.clone()
        if bool(is_copy.any()):
            out[is_copy] = self.augment_uint8(batch.inputs[is_copy], generator)
        return out

    def use_torch(self, inputs: Tensor) -> bool:
        backend = self.params.backend
        return backend == "torch" or (backend == "auto" and inputs.device.type != "cpu")

    def augment_uint8(self, images: Tensor, generator: torch.Generator) -> Tensor:
        """albumentations, one image at a time, on uint8 N×C×H×W (CPU)."""
        # One seed per transform: seeded alike, two transforms would draw the same numbers
        # (every left-right flip would come with an up-down flip).
        seeds = torch.randint(0, SEED_LIMIT, (len(self.transforms),), generator=generator, device=generator.device)
        for transform, seed in zip(self.transforms, seeds.tolist()):
            transform.set_random_seed(seed)
        source = images.cpu().permute(0, 2, 3, 1).numpy()
        out = np.empty_like(source)
        for i, image in enumerate(source):
            for transform in self.transforms:
                image = transform(image=image)["image"]
            out[i] = image.reshape(out[i].shape)  # grayscale comes back H×W
        return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous().to(images.device)


def albumentations_transforms(p: AugmentationParams) -> list[A.BasicTransform]:
    import albumentations as A  # heavy (scipy and more, ~1 s): only runs that augment pay for it

    transforms: list[A.BasicTransform] = []
    if p.hflip > 0:
        transforms.append(A.HorizontalFlip(p=p.hflip))
    if p.vflip > 0:
        transforms.append(A.VerticalFlip(p=p.vflip))
    if p.brightness > 0:
        transforms.append(A.RandomBrightnessContrast(brightness_limit=p.brightness, contrast_limit=0, brightness_by_max=True, p=1))
    # One ColorJitter per factor: a single one would apply them in a random order.
    if p.contrast is not None:
        transforms.append(A.ColorJitter(brightness=0, contrast=p.contrast, saturation=0, hue=0, p=1))
    if p.saturation is not None:
        transforms.append(A.ColorJitter(brightness=0, contrast=0, saturation=p.saturation, hue=0, p=1))
    return transforms


def augment_tensor(images: Tensor, p: AugmentationParams, generator: torch.Generator) -> Tensor:
    """The albumentations path's transforms as batched tensor ops: one draw per image.

    Returns float images in [0, 1] (models normalize uint8 or float alike). The photometric
    steps work in place (on a CPU, fresh buffers cost more than the arithmetic).
    """
    x = images.float().div_(255.0) if images.dtype == torch.uint8 else images.float().clone()
    n = x.shape[0]

    def uniform(low: float, high: float) -> Tensor:
        u = torch.rand(n, generator=generator, device=x.device)
        return u.mul_(high - low).add_(low).view(n, 1, 1, 1)

    if p.hflip > 0:  # torch.where, not indexing: choosing rows by a mask would sync with the GPU
        x = torch.where(uniform(0, 1) < p.hflip, x.flip(-1), x)
    if p.vflip > 0:
        x = torch.where(uniform(0, 1) < p.vflip, x.flip(-2), x)
    if p.brightness > 0:
        x.add_(uniform(-p.brightness, p.brightness)).clamp_(0, 1)
    if p.contrast is not None:
        mean = grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
        x.sub_(mean).mul_(uniform(*p.contrast)).add_(mean).clamp_(0, 1)
    if p.saturation is not None and x.shape[1] == 3:
        factor = uniform(*p.saturation)
        gray = grayscale(x).mul_(1 - factor)
        x.mul_(factor).add_(gray).clamp_(0, 1)
    return x


def grayscale(x: Tensor) -> Tensor:
    if x.shape[1] == 1:
        return x.clone()
    # Python-number weights: a weight tensor made on the host would be copied to the GPU and
    # wait for it, every batch.
    red, green, blue = GRAY_WEIGHTS
    return (x[:, 0:1] * red).add_(x[:, 1:2], alpha=green).add_(x[:, 2:3], alpha=blue)


@hookimpl
def regsuite_register_regularizers():
    return [Augmentation]
