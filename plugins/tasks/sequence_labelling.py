"""Sequence labelling: token ids in (N×T), one class per token out (N×T×C), cross-entropy
over the real tokens only.

Splits hold sentences right-padded with ``DataInfo.pad_index`` to the split's longest
sentence, with targets :data:`~regsuite.api.IGNORE_TARGET` at padding. Each batch is trimmed
to its own longest sentence before the model sees it (batches of short sentences then cost
what short sentences cost); padding never counts in the loss or the token accuracy.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from regsuite import hookimpl
from regsuite.api import IGNORE_TARGET, Batch, Data, Metric, Task
from regsuite.errors import DataError


class SequenceLabelling(Task):
    """Label every token (e.g. POS tagging); token-level cross-entropy and accuracy, padding ignored."""

    name = "sequence_labelling"
    metrics = (Metric("accuracy", "token acc"),)

    def __init__(self, params=None):
        super().__init__(params)
        self.pad_index: int | None = None

    def setup(self, data: Data) -> None:
        if data.info.pad_index is None:
            raise DataError(f"task {self.name!r} needs token data with a padding index (DataInfo.pad_index), "
                            "but the dataset gives none")
        self.pad_index = data.info.pad_index

    def prepare_batch(self, inputs: Tensor, targets: Tensor) -> Batch:
        # Reading the longest length waits for the device once per batch; packing the RNN's
        # input needs the lengths on the host anyway.
        longest = int((inputs != self.pad_index).sum(dim=1).max())
        return Batch(inputs[:, :longest], targets[:, :longest])

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        return F.cross_entropy(outputs.flatten(0, 1), batch.targets.flatten(), ignore_index=IGNORE_TARGET)

    def measure(self, outputs: Tensor, batch: Batch) -> dict[str, tuple[Tensor, Tensor]]:
        targets = batch.targets.flatten()
        real = targets != IGNORE_TARGET
        count = real.sum()
        loss_sum = F.cross_entropy(outputs.flatten(0, 1), targets, ignore_index=IGNORE_TARGET, reduction="sum")
        correct = ((outputs.argmax(dim=-1).flatten() == targets) & real).sum()
        return {"loss": (loss_sum, count), "accuracy": (correct, count)}


@hookimpl
def regsuite_register_tasks():
    return [SequenceLabelling]
