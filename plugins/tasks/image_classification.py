"""Image classification: uint8 images in, class logits out, cross-entropy."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from regsuite import hookimpl
from regsuite.api import Batch, Metric, Task


class ImageClassification(Task):
    """Classify images; cross-entropy loss, top-1 accuracy."""

    name = "image_classification"
    metrics = (Metric("accuracy", "acc"),)

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        return F.cross_entropy(outputs, batch.targets)

    def measure(self, outputs: Tensor, batch: Batch) -> dict[str, tuple[Tensor, Tensor]]:
        # torch.full, not torch.tensor: copying a host value to a GPU would wait for the GPU
        count = torch.full((), len(batch.targets), device=outputs.device)
        loss_sum = F.cross_entropy(outputs, batch.targets, reduction="sum")
        correct = (outputs.argmax(dim=1) == batch.targets).sum()
        return {"loss": (loss_sum, count), "accuracy": (correct, count)}


@hookimpl
def regsuite_register_tasks():
    return [ImageClassification]
