"""Sequence labelling end to end: the task's loss and metrics, the RNN tagger's packing, word
dropout, the shared regularizers on text, spec validation across tasks, and full runs on a
tiny word/TAG corpus (the real treebank where ../shared has it)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from typer.testing import CliRunner

from regsuite.api import IGNORE_TARGET, Batch, Data, DataInfo, Slot, Split
from regsuite.cli import app
from regsuite.execution.inprocess import run_plan
from regsuite.errors import DataError, SpecError
from regsuite.leaderboard import build
from regsuite.plugins.datasets.nltk_treebank import write_tiny_corpus
from regsuite.plugins.models.rnn_tagger import RNNTagger
from regsuite.plugins.regularizers.dropout import Dropout
from regsuite.plugins.regularizers.word_dropout import WordDropout
from regsuite.plugins.tasks.sequence_labelling import SequenceLabelling
from regsuite.registry import get_registry
from regsuite.spec import Spec, resolve
from regsuite.store import Store

SHARED_NLTK = Path(__file__).resolve().parents[1].parent / "shared" / "nltk_data"
PAD = 0


def token_info(vocab_size: int = 20, classes: int = 5) -> DataInfo:
    return DataInfo(num_classes=classes, input_shape=(8,), vocab_size=vocab_size, pad_index=PAD, unk_index=1)


def padded(rows: list[list[int]], width: int, fill: int) -> torch.Tensor:
    return torch.tensor([row + [fill] * (width - len(row)) for row in rows])


def tagger(**params) -> nn.Module:
    torch.manual_seed(0)
    return RNNTagger(RNNTagger.Params(**params)).build(token_info())


def task_for(info: DataInfo) -> SequenceLabelling:
    task = SequenceLabelling()
    split = Split(torch.zeros(1, 1, dtype=torch.long), torch.zeros(1, 1, dtype=torch.long))
    task.setup(Data(split, split, info))
    return task


# ---------------------------------------------------------------------------- task


def test_loss_and_metrics_count_real_tokens_only():
    task = task_for(token_info())
    targets = padded([[1, 2, 3], [4]], 3, IGNORE_TARGET)
    outputs = torch.randn(2, 3, 5)
    outputs[1, 1:] = 1e3  # garbage at padding must not matter
    batch = Batch(padded([[5, 6, 7], [8]], 3, PAD), targets)
    real_outputs = torch.stack([outputs[0, 0], outputs[0, 1], outputs[0, 2], outputs[1, 0]])
    real_targets = torch.tensor([1, 2, 3, 4])
    expected = F.cross_entropy(real_outputs, real_targets)
    assert torch.allclose(task.loss(outputs, batch), expected)
    measured = task.measure(outputs, batch)
    loss_sum, count = measured["loss"]
    assert int(count) == 4 and torch.allclose(loss_sum, expected * 4)
    correct, count = measured["accuracy"]
    assert int(correct) == int((real_outputs.argmax(1) == real_targets).sum()) and int(count) == 4


def test_prepare_batch_trims_to_the_longest_sentence_of_the_batch():
    task = task_for(token_info())
    inputs = padded([[5, 6], [7, 8, 9]], 10, PAD)
    batch = task.prepare_batch(inputs, padded([[1, 1], [2, 2, 2]], 10, IGNORE_TARGET))
    assert batch.inputs.shape == batch.targets.shape == (2, 3)
    assert batch.inputs.tolist() == [[5, 6, PAD], [7, 8, 9]]


def test_task_needs_a_padding_index():
    split = Split(torch.zeros(1, 1, dtype=torch.long), torch.zeros(1, 1, dtype=torch.long))
    with pytest.raises(DataError, match="padding index"):
        SequenceLabelling().setup(Data(split, split, DataInfo(num_classes=2, input_shape=(1,))))


# ---------------------------------------------------------------------------- model


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_padding_never_reaches_the_recurrent_state(cell):
    model = tagger(cell=cell, bidirectional=True, num_layers=2, embedding_dim=8, hidden_size=8).eval()
    sentence = [3, 4, 5]
    alone = model(torch.tensor([sentence]))
    with_padding = model(padded([sentence, [6, 7, 8, 9, 10, 11]], 6, PAD))
    assert alone.shape == (1, 3, 5) and with_padding.shape == (2, 6, 5)
    assert torch.allclose(alone[0], with_padding[0, :3], atol=1e-6)  # backward direction unaffected too


def test_vanilla_rnn_is_tanh_elman_and_slots_take_dropout():
    model = tagger()
    assert isinstance(model.rnn, nn.RNN) and model.rnn.nonlinearity == "tanh" and model.rnn.bidirectional
    assert sum(isinstance(m, Slot) and m.kind == "dropout" for m in model.modules()) == 2
    Dropout(Dropout.Params(p=0.5)).configure_model(model)
    assert [type(m) for m in (model.embedding_dropout, model.output_dropout)] == [nn.Dropout, nn.Dropout]


def test_embeddings_start_small_like_keras_and_padding_stays_zero():
    small, default = tagger().embedding.weight.detach(), tagger(embedding_init=None).embedding.weight.detach()
    assert float(small.abs().max()) <= 0.05 and float(default.std()) > 0.5
    assert float(small[PAD].abs().sum()) == 0


def test_model_needs_token_data():
    with pytest.raises(DataError, match="vocab_size"):
        RNNTagger().build(DataInfo(num_classes=3, input_shape=(1, 8, 8)))


# ---------------------------------------------------------------------------- word dropout


def word_dropout(p: float) -> WordDropout:
    reg = WordDropout(WordDropout.Params(p=p))
    split = Split(torch.zeros(1, 1, dtype=torch.long), torch.zeros(1, 1, dtype=torch.long))
    reg.setup(Data(split, split, token_info()))
    return reg


def test_word_dropout_replaces_real_tokens_with_unk_never_padding():
    inputs = padded([[5] * 300, [6] * 100], 300, PAD)
    targets = padded([[2] * 300, [3] * 100], 300, IGNORE_TARGET)
    out = word_dropout(0.3).transform_batch(Batch(inputs, targets), torch.Generator().manual_seed(0))
    assert torch.equal(out.targets, targets)
    assert bool((out.inputs[inputs == PAD] == PAD).all())
    changed = out.inputs != inputs
    assert bool((out.inputs[changed] == 1).all())
    assert 0.25 < changed.sum().item() / 400 < 0.35


def test_word_dropout_draws_fresh_masks_from_the_generator():
    reg, inputs = word_dropout(0.5), torch.full((4, 50), 7)
    generator = torch.Generator().manual_seed(0)
    first = reg.transform_batch(Batch(inputs, inputs), generator).inputs
    second = reg.transform_batch(Batch(inputs, inputs), generator).inputs
    assert not torch.equal(first, second)
    again = reg.transform_batch(Batch(inputs, inputs), torch.Generator().manual_seed(0)).inputs
    assert torch.equal(first, again)


def test_word_dropout_needs_an_unk_token():
    split = Split(torch.zeros(1, 1, dtype=torch.long), torch.zeros(1, 1, dtype=torch.long))
    info = DataInfo(num_classes=2, input_shape=(1,), vocab_size=5, pad_index=0)
    with pytest.raises(DataError, match="<unk>"):
        WordDropout().setup(Data(split, split, info))


# ---------------------------------------------------------------------------- specs across tasks


def pos_spec(corpus: Path, sets: list[dict], **extra) -> dict:
    return {
        "name": "pos-tiny", "task": "sequence_labelling", "seeds": [0],
        "dataset": {"name": "nltk_treebank", "corpus_root": str(corpus)},
        "model": {"name": "rnn_tagger", "embedding_dim": 16, "hidden_size": 16},
        "training": {"epochs": 2, "batch_size": 8, "lr": 0.01},
        "sets": sets, **extra,
    }


def test_image_augmentation_on_text_names_both(tmp_path):
    spec = Spec.model_validate(pos_spec(tmp_path, [{"label": "aug", "regularizers": [{"name": "augmentation"}]}]))
    with pytest.raises(SpecError) as caught:
        resolve(spec, get_registry())
    assert "regularizer 'augmentation' does not support task 'sequence_labelling' (it supports image_classification)" in str(caught.value)


def test_word_dropout_on_images_and_mixed_datasets_are_errors(tmp_path):
    spec = Spec.model_validate({
        "name": "mixed", "task": "image_classification",
        "datasets": [{"name": "digits"}, {"name": "nltk_treebank"}],
        "model": {"name": "small_cnn"},
        "sets": [{"label": "wd", "regularizers": [{"name": "word_dropout"}]}],
    })
    with pytest.raises(SpecError) as caught:
        resolve(spec, get_registry())
    message = str(caught.value)
    assert "dataset 'nltk_treebank' is for task 'sequence_labelling', but the spec's task is 'image_classification'" in message
    assert "regularizer 'word_dropout' does not support task 'image_classification'" in message


def test_image_model_on_text_is_an_error(tmp_path):
    data = pos_spec(tmp_path, [{"label": "none"}])
    data["model"] = {"name": "small_cnn"}
    with pytest.raises(SpecError, match="model 'small_cnn' does not support task 'sequence_labelling'"):
        resolve(Spec.model_validate(data), get_registry())


# ---------------------------------------------------------------------------- whole runs


SETS = [
    {"label": "none"},
    {"label": "l2", "regularizers": [{"name": "l2", "weight": 1e-4}]},
    {"label": "dropout", "regularizers": [{"name": "dropout", "p": 0.2}]},
    {"label": "l2 + dropout", "regularizers": [{"name": "l2", "weight": 1e-4}, {"name": "dropout", "p": 0.2}]},
    {"label": "word dropout", "regularizers": [{"name": "word_dropout", "p": 0.1}]},
]


def test_every_shared_regularizer_trains_the_tagger_and_the_board_shows_token_accuracy(tmp_path):
    corpus = write_tiny_corpus(tmp_path / "corpus", sentences=60)
    plan = resolve(Spec.model_validate(pos_spec(corpus, SETS)), get_registry())
    assert plan.runs[0].config["dataset"]["params"]["split_seed"] == 0  # stored with the results
    with Store(tmp_path / "results") as store:
        outcome = run_plan(plan, store, get_registry())
        assert not outcome.failed, outcome.failed
        board = build(store, "pos-tiny")
        record = store.get_run(plan.runs[0].run_id)
    keys = [c.key for c in board.columns]
    assert keys[:5] == ["train_loss", "val_loss", "gap", "val_accuracy", "test_accuracy"]
    assert {c.header for c in board.columns} >= {"val token acc", "test token acc"}
    assert {row.label for row in board.rows} == {s["label"] for s in SETS}
    assert record.summary["test"]["test_accuracy"] > 0.5  # the tiny grammar is easy to tag
    assert record.summary["class_names"] == [".", "ADJ", "ADV", "DET", "NOUN", "VERB"]


def test_cli_run_prints_the_pos_leaderboard(tmp_path):
    corpus = write_tiny_corpus(tmp_path / "corpus", sentences=40)
    spec = tmp_path / "pos.toml"
    spec.write_text(f"""
name = "pos-cli"
task = "sequence_labelling"
seeds = [0]
[dataset]
name = "nltk_treebank"
corpus_root = "{corpus}"
[model]
name = "rnn_tagger"
embedding_dim = 8
hidden_size = 8
[training]
epochs = 1
batch_size = 8
[execution]
workers = 0
[[sets]]
label = "none"
[[sets]]
label = "word dropout"
regularizers = [{{ name = "word_dropout", p = 0.2 }}]
""")
    result = CliRunner().invoke(app, ["run", str(spec), "--results", str(tmp_path / "r")], env={"COLUMNS": "220"})
    assert result.exit_code == 0, result.output
    assert "trained 2" in result.output and "test token acc" in result.output and "word dropout" in result.output


@pytest.mark.realdata
@pytest.mark.skipif(not SHARED_NLTK.is_dir(), reason="../shared/nltk_data is absent")
def test_one_epoch_on_the_real_treebank(tmp_path, monkeypatch):
    monkeypatch.setenv("NLTK_DATA", str(SHARED_NLTK))
    spec = Spec.model_validate({
        "name": "pos-real", "task": "sequence_labelling", "seeds": [0],
        "dataset": {"name": "nltk_treebank", "download": False},
        "model": {"name": "rnn_tagger", "embedding_dim": 32, "hidden_size": 32},
        "training": {"epochs": 1, "batch_size": 64, "lr": 0.005},
        "sets": [{"label": "word dropout", "regularizers": [{"name": "word_dropout", "p": 0.1}]}],
    })
    plan = resolve(spec, get_registry())
    with Store(tmp_path / "results") as store:
        outcome = run_plan(plan, store, get_registry())
        assert not outcome.failed, outcome.failed
        summary = store.get_run(plan.runs[0].run_id).summary
    assert summary["test"]["test_accuracy"] > 0.6
    assert len(summary["class_names"]) == 12
