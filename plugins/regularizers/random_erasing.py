"""Random erasing (Zhong, Zheng, Kang, Li & Yang, "Random Erasing Data Augmentation", AAAI 2020,
arXiv:1708.04896).

In training, each image is erased with probability ``p``: one rectangle whose area is a
fraction s ~ U(``scale``) of the image and whose aspect ratio (height / width) r is
log-uniform in ``ratio`` — h = round(√(s·H·W·r)), w = round(√(s·H·W / r)), as
``torchvision.transforms.RandomErasing`` — at a uniformly drawn position, is filled with random
values (``value = "random"``: uniform over the pixel range, per pixel and channel, as in the
paper) or with zeros (``"zero"``: black on the [0, 1] scale the model normalizes from, not the
dataset mean that torchvision's 0 on normalized tensors is). Targets are unchanged.

**Vectorized, so one difference from torchvision.** The whole batch is erased at once on the
training device (masks from one draw per image, no per-image loop and no host sync).
torchvision redraws a box that does not fit in the image up to 10 times and then leaves the
image unerased; here the drawn sides are clipped to the image instead (1 ≤ h ≤ H, 1 ≤ w ≤ W),
so a clipped box is smaller than drawn and every image drawn for erasing is erased. With the
default ranges that only affects the most elongated boxes.

Images keep their dtype: uint8 images get random whole levels 0–255, float images random
values in [0, 1).
"""
from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field, model_validator

from regsuite import hookimpl
from regsuite.api import Batch, Params, Regularizer


class RandomErasingParams(Params):
    p: float = Field(0.5, ge=0, le=1, description="probability that an image is erased")
    scale: tuple[float, float] = Field((0.02, 0.33), description="(lower, upper) area of the rectangle, as a fraction of the image, 0 < lower <= upper <= 1")
    ratio: tuple[float, float] = Field((0.3, 3.3), description="(lower, upper) aspect ratio h/w of the rectangle, drawn log-uniformly, 0 < lower <= upper")
    value: Literal["random", "zero"] = Field("random", description="fill: random values per pixel (the paper) or zeros")

    @model_validator(mode="after")
    def ranges_ordered(self) -> "RandomErasingParams":
        low, high = self.scale
        if not (0 < low <= high <= 1):
            raise ValueError(f"scale must be (lower, upper) with 0 < lower <= upper <= 1, got {self.scale}")
        low, high = self.ratio
        if not (0 < low <= high):
            raise ValueError(f"ratio must be (lower, upper) with 0 < lower <= upper, got {self.ratio}")
        return self


class RandomErasing(Regularizer):
    """Random erasing (Zhong et al. 2020): fill one random rectangle per image with noise, with probability p."""

    name = "random_erasing"
    tasks = frozenset({"image_classification"})
    Params = RandomErasingParams

    def transform_batch(self, batch: Batch, generator: torch.Generator) -> Batch:
        x = batch.inputs
        n, height, width = x.shape[0], x.shape[-2], x.shape[-1]
        device = x.device
        p = self.params
        erase, area, log_ratio, top, left = torch.rand(5, n, generator=generator, device=device)
        area = (area * (p.scale[1] - p.scale[0]) + p.scale[0]) * (height * width)
        log_low, log_high = math.log(p.ratio[0]), math.log(p.ratio[1])
        ratio = torch.exp(log_ratio * (log_high - log_low) + log_low)
        h = torch.round(torch.sqrt(area * ratio)).clamp(1, height)
        w = torch.round(torch.sqrt(area / ratio)).clamp(1, width)
        top = torch.floor(top * (height - h + 1)).view(n, 1, 1)  # uniform over the fitting positions
        left = torch.floor(left * (width - w + 1)).view(n, 1, 1)
        h, w = h.view(n, 1, 1), w.view(n, 1, 1)
        rows = torch.arange(height, device=device).view(1, -1, 1)
        cols = torch.arange(width, device=device).view(1, 1, -1)
        box = (rows >= top) & (rows < top + h) & (cols >= left) & (cols < left + w) & (erase < p.p).view(n, 1, 1)
        box = box.unsqueeze(1)  # N×1×H×W: every channel
        if p.value == "zero":
            fill = torch.zeros((), dtype=x.dtype, device=device)
        elif x.dtype == torch.uint8:
            fill = torch.randint(0, 256, x.shape, generator=generator, device=device, dtype=torch.uint8)
        else:
            fill = torch.rand(x.shape, generator=generator, device=device, dtype=x.dtype)
        return batch.replace(inputs=torch.where(box, fill, x))


@hookimpl
def regsuite_register_regularizers():
    return [RandomErasing]
