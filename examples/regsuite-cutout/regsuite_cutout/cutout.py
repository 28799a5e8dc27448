"""Cutout: zero one random square per training image (DeVries & Taylor, 2017).

A regularizer needs a Params model and the hook methods it uses; this one uses one,
``transform_batch``, which runs on every training batch on the training device.
"""
from __future__ import annotations

import torch
from pydantic import Field

from regsuite.api import Batch, Params, Regularizer


class CutoutParams(Params):
    size: float = Field(0.5, gt=0, le=1, description="side of the square, as a fraction of the image side")
    p: float = Field(1.0, ge=0, le=1, description="probability that an image gets a square")


class Cutout(Regularizer):
    """Zero one random square per image (DeVries & Taylor, 2017)."""

    name = "cutout"
    tasks = frozenset({"image_classification"})  # N×C×H×W images; None would mean every task
    Params = CutoutParams

    def transform_batch(self, batch: Batch, generator: torch.Generator) -> Batch:
        x = batch.inputs
        n, _, height, width = x.shape
        side = max(1, round(self.params.size * min(height, width)))
        device = x.device
        # Centres may lie anywhere, so squares are clipped at the border, as in the paper.
        cy = torch.randint(0, height, (n, 1, 1), generator=generator, device=device)
        cx = torch.randint(0, width, (n, 1, 1), generator=generator, device=device)
        rows = torch.arange(height, device=device).view(1, height, 1)
        cols = torch.arange(width, device=device).view(1, 1, width)
        inside = ((rows - cy).abs() <= side // 2) & ((cols - cx).abs() <= side // 2)
        chosen = torch.rand(n, 1, 1, generator=generator, device=device) < self.params.p
        keep = ~(inside & chosen)
        return batch.replace(inputs=x * keep.unsqueeze(1).to(x.dtype))
