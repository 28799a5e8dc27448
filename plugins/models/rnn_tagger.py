"""A recurrent tagger: embedding → RNN → linear over the tags, one prediction per token.

``cell = "rnn"`` is the vanilla (Elman, tanh) RNN the study used; ``"gru"`` and ``"lstm"``
are there for comparison. Sentences are packed by length (``pack_padded_sequence``), so
padding never enters the recurrent state, in either direction; the outputs at padding
positions are zeros whose logits the task's loss and metrics ignore.

Dropout slots: on the embedding output and on the RNN output before the classifier.

Embeddings start uniform in ±0.05, as Keras' ``Embedding`` (the study's stack) starts them,
not with PyTorch's N(0, 1): with N(0, 1) a word seen a handful of times keeps a loud random
vector, because Adam moves it by about ``lr`` per update, and the tagger stalls near 93 %
test token accuracy on the treebank; small vectors start rare words close to "no
information" (measured: 92.7–93.1 % vs 95.5 %, see specs/pos.toml). ``embedding_init = none``
restores PyTorch's default.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from regsuite import hookimpl
from regsuite.api import DataInfo, Model, Params, Slot
from regsuite.errors import DataError

CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


class RNNTaggerParams(Params):
    cell: Literal["rnn", "gru", "lstm"] = Field("rnn", description="rnn = vanilla tanh RNN (the study's); gru; lstm")
    embedding_dim: int = Field(100, ge=1, description="size of the word embeddings")
    hidden_size: int = Field(128, ge=1, description="units of the recurrent layer (per direction)")
    num_layers: int = Field(1, ge=1, le=8, description="stacked recurrent layers")
    bidirectional: bool = Field(True, description="read each sentence in both directions")
    embedding_init: float | None = Field(
        0.05, gt=0, description="embeddings start U(-a, a), Keras' default a = 0.05; none = PyTorch's N(0, 1)"
    )


class Tagger(nn.Module):
    def __init__(self, info: DataInfo, p: RNNTaggerParams):
        super().__init__()
        self.pad_index = info.pad_index
        self.embedding = nn.Embedding(info.vocab_size, p.embedding_dim, padding_idx=info.pad_index)
        if p.embedding_init is not None:
            nn.init.uniform_(self.embedding.weight, -p.embedding_init, p.embedding_init)
            self.embedding.weight.data[info.pad_index] = 0
        self.embedding_dropout = Slot("dropout")
        extra = {"nonlinearity": "tanh"} if p.cell == "rnn" else {}
        self.rnn = CELLS[p.cell](p.embedding_dim, p.hidden_size, num_layers=p.num_layers,
                                 bidirectional=p.bidirectional, batch_first=True, **extra)
        self.output_dropout = Slot("dropout")
        self.classifier = nn.Linear(p.hidden_size * (2 if p.bidirectional else 1), info.num_classes)

    def forward(self, tokens: Tensor) -> Tensor:
        lengths = (tokens != self.pad_index).sum(dim=1)
        embedded = self.embedding_dropout(self.embedding(tokens))
        # Packing takes the lengths on the host; a sentence of length 0 would be an error.
        packed = pack_padded_sequence(embedded, lengths.cpu().clamp_min(1), batch_first=True, enforce_sorted=False)
        hidden, _ = self.rnn(packed)
        hidden, _ = pad_packed_sequence(hidden, batch_first=True, total_length=tokens.shape[1])
        return self.classifier(self.output_dropout(hidden))


class RNNTagger(Model):
    """Embedding → vanilla RNN / GRU / LSTM (packed, optionally bidirectional) → linear over tags."""

    name = "rnn_tagger"
    tasks = frozenset({"sequence_labelling"})
    slots = frozenset({"dropout"})
    Params = RNNTaggerParams

    def build(self, info: DataInfo) -> nn.Module:
        if info.vocab_size is None or info.pad_index is None:
            raise DataError("rnn_tagger needs token data: the dataset gives no vocab_size / pad_index")
        return Tagger(info, self.params)

    @classmethod
    def smoke_params(cls, workdir):
        return {"embedding_dim": 16, "hidden_size": 16}


@hookimpl
def regsuite_register_models():
    return [RNNTagger]
