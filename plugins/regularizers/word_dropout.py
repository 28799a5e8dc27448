"""Word dropout: during training, each real input token becomes ``<unk>`` with probability
``p`` (padding is never touched), drawn afresh for every batch on the training device.

The model then learns to tag from context when a word is unknown, which is what it faces
with words that never occurred in the training split. Targets are unchanged.
"""
from __future__ import annotations

import torch
from pydantic import Field

from regsuite import hookimpl
from regsuite.api import Batch, Data, Params, Regularizer
from regsuite.errors import DataError


class WordDropoutParams(Params):
    p: float = Field(0.1, gt=0, lt=1, description="probability of replacing a token with <unk>")


class WordDropout(Regularizer):
    """Replace each input token with <unk> with probability p while training (text tasks)."""

    name = "word_dropout"
    tasks = frozenset({"sequence_labelling"})
    Params = WordDropoutParams

    def __init__(self, params: WordDropoutParams | None = None):
        super().__init__(params)
        self.unk_index: int | None = None
        self.pad_index: int | None = None

    def setup(self, data: Data) -> None:
        if data.info.unk_index is None or data.info.pad_index is None:
            raise DataError("word_dropout needs a dataset with <unk> and <pad> tokens (DataInfo.unk_index, pad_index)")
        self.unk_index, self.pad_index = data.info.unk_index, data.info.pad_index

    def transform_batch(self, batch: Batch, generator: torch.Generator) -> Batch:
        tokens = batch.inputs
        draw = torch.rand(tokens.shape, generator=generator, device=tokens.device)
        drop = (draw < self.params.p) & (tokens != self.pad_index)
        return batch.replace(inputs=tokens.masked_fill(drop, self.unk_index))


@hookimpl
def regsuite_register_regularizers():
    return [WordDropout]
