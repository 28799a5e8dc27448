"""A task: classify feature vectors (float32 N×F inputs, int64 N class targets)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from regsuite.api import Batch, Metric, Task


class TabularClassification(Task):
    """Classify feature vectors; cross-entropy loss, top-1 accuracy."""

    name = "tabular_classification"
    # The leaderboard shows each metric as "<split> <label>" (val acc); claims name it val_accuracy.
    metrics = (Metric("accuracy", "acc"),)

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        return F.cross_entropy(outputs, batch.targets)

    def measure(self, outputs: Tensor, batch: Batch) -> dict[str, tuple[Tensor, Tensor]]:
        # Sums and counts as tensors: evaluation never waits on the device per batch.
        count = torch.full((), len(batch.targets), device=outputs.device)
        loss_sum = F.cross_entropy(outputs, batch.targets, reduction="sum")
        correct = (outputs.argmax(dim=1) == batch.targets).sum()
        return {"loss": (loss_sum, count), "accuracy": (correct, count)}
