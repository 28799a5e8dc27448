"""The nltk_treebank dataset: splits, vocabulary, tags, finding / downloading NLTK's packages,
bad input, and `regsuite data download`. No test reaches the internet: every download goes
through a fake ``nltk.download``."""
from __future__ import annotations

from pathlib import Path

import nltk
import pytest
import torch
from helpers.treebank import dataset, write_corpus, write_fake_nltk_data
from typer.testing import CliRunner

from regsuite.api import IGNORE_TARGET
from regsuite.cli import app
from regsuite.errors import DataError
from regsuite.plugins.datasets.nltk_treebank import NLTKTreebank, write_tiny_corpus

SHARED_NLTK = Path(__file__).resolve().parents[1].parent / "shared" / "nltk_data"


# ---------------------------------------------------------------------------- splits, vocabulary, tags


def test_tiny_corpus_splits_80_10_10_deterministically(tmp_path):
    root = write_tiny_corpus(tmp_path / "c", sentences=60)
    data = dataset(corpus_root=str(root)).load()
    assert (len(data.train), len(data.val), len(data.test)) == (48, 6, 6)
    again = dataset(corpus_root=str(root)).load()
    assert torch.equal(data.train.inputs, again.train.inputs) and torch.equal(data.test.targets, again.test.targets)
    other = dataset(corpus_root=str(root), split_seed=1).load()
    assert not torch.equal(data.val.targets[:, :5], other.val.targets[:, :5])
    info = data.info
    assert (info.pad_index, info.unk_index) == (0, 1)
    assert info.class_names == [".", "ADJ", "ADV", "DET", "NOUN", "VERB"] and info.num_classes == 6
    assert info.extras["sentences"] == {"train": 48, "val": 6, "test": 6}


def test_padding_has_pad_inputs_and_ignored_targets(tmp_path):
    root = write_corpus(tmp_path / "c", ["a/DET b/NOUN ./."] * 8 + ["a/DET b/NOUN c/VERB d/ADV e/ADJ ./."] * 2)
    data = dataset(corpus_root=str(root), val_fraction=0.1, test_fraction=0.1).load()
    for split in (data.train, data.val, data.test):
        pad = split.inputs == 0
        assert split.inputs.dtype == split.targets.dtype == torch.int64
        assert torch.equal(pad, split.targets == IGNORE_TARGET)
        lengths = (~pad).sum(dim=1)
        for row, length in enumerate(lengths.tolist()):  # right-padded: real tokens first
            assert not pad[row, :length].any() and pad[row, length:].all()


def test_vocabulary_comes_from_the_training_split_only(tmp_path):
    # Every sentence has its own word: only the 16 training sentences' words enter the vocabulary.
    lines = [f"word{i}/NOUN ./." for i in range(20)]
    data = dataset(corpus_root=str(write_corpus(tmp_path / "c", lines))).load()
    assert data.info.vocab_size == 2 + 1 + 16  # <pad>, <unk>, ".", the training words
    assert (data.train.inputs == 1).sum() == 0  # min_count = 1: no <unk> in training
    for held_out in (data.val, data.test):
        assert bool((held_out.inputs[:, 0] == 1).all())  # each held-out word is <unk>
        assert data.info.extras["unknown_rate"] == {"train": 0.0, "val": 0.5, "test": 0.5}


def test_lowercase_and_min_count(tmp_path):
    lines = ["The/DET dog/NOUN ./.", "the/DET Dog/NOUN ./.", "the/DET cat/NOUN ./."] * 4
    root = str(write_corpus(tmp_path / "c", lines))
    cased = dataset(corpus_root=root, lowercase=False).load()
    lower = dataset(corpus_root=root, lowercase=True).load()
    assert lower.info.vocab_size < cased.info.vocab_size
    rare = dataset(corpus_root=root, min_count=100).load()
    assert rare.info.vocab_size == 2 and bool((rare.train.inputs[rare.train.inputs != 0] == 1).all())


def test_tag_seen_only_outside_training_is_a_class_the_model_gets_wrong(tmp_path):
    lines = ["a/DET b/NOUN ./."] * 9 + ["oh/INTJ ./."]
    root = str(write_corpus(tmp_path / "c", lines))
    for seed in range(20):  # find a split that puts the INTJ sentence in val or test
        data = dataset(corpus_root=root, split_seed=seed).load()
        if data.info.extras["tags_unseen_in_train"]:
            break
    assert data.info.extras["tags_unseen_in_train"] == ["INTJ"]
    assert "INTJ" in data.info.class_names
    intj = data.info.class_names.index("INTJ")
    assert any(bool((s.targets == intj).any()) for s in (data.val, data.test))


def test_changed_corpus_is_read_again(tmp_path):
    root = write_corpus(tmp_path / "c", ["a/DET b/NOUN ./."] * 10)
    first = dataset(corpus_root=str(root)).load()
    write_corpus(root, ["a/DET b/NOUN c/VERB ./."] * 10)
    second = dataset(corpus_root=str(root)).load()
    assert first.info.num_classes == 3 and second.info.num_classes == 4


# ---------------------------------------------------------------------------- bad input


def test_empty_split_is_a_clear_error(tmp_path):
    root = write_tiny_corpus(tmp_path / "c", sentences=4)
    with pytest.raises(DataError, match=r"4 sentences: a 80% / 10% / 10% split leaves the val and test split empty"):
        dataset(corpus_root=str(root)).load()


def test_no_test_split_when_test_fraction_is_zero(tmp_path):
    data = dataset(corpus_root=str(write_tiny_corpus(tmp_path / "c", sentences=20)), test_fraction=0).load()
    assert data.test is None and len(data.train) + len(data.val) == 20


def test_fractions_must_leave_training_sentences():
    with pytest.raises(ValueError, match="sum < 1"):
        NLTKTreebank.Params(val_fraction=0.5, test_fraction=0.5)


def test_missing_corpus_root_and_unmatched_files(tmp_path):
    with pytest.raises(DataError, match="is not a folder"):
        dataset(corpus_root=str(tmp_path / "nowhere")).load()
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no file under .* matches"):
        dataset(corpus_root=str(tmp_path / "empty")).load()


def test_token_without_tag_is_a_clear_error(tmp_path):
    root = write_corpus(tmp_path / "c", ["a/DET b/NOUN ./."] * 9 + ["a/DET untagged ./."])
    with pytest.raises(DataError, match="'untagged' has no tag"):
        dataset(corpus_root=str(root)).load()


def test_offline_and_missing_names_the_command_and_nltk_data(isolated_nltk):
    with pytest.raises(DataError) as caught:
        dataset().load()
    message = str(caught.value)
    assert "treebank, universal_tagset not found, and downloading them failed: run `regsuite data download" in message
    assert "downloading them failed" in message and "name resolution" in message
    assert "regsuite data download nltk_treebank" in message and "NLTK_DATA" in message
    assert [package for package, _ in isolated_nltk["calls"]] == ["treebank"]  # stops at the first failure
    assert isolated_nltk["calls"][0][1] == str(isolated_nltk["dir"])


def test_download_false_does_not_try_the_network(isolated_nltk):
    with pytest.raises(DataError, match="not found") as caught:
        dataset(download=False).load()
    assert isolated_nltk["calls"] == [] and "regsuite data download nltk_treebank" in str(caught.value)


def test_run_downloads_missing_packages_then_loads(isolated_nltk, monkeypatch, tmp_path):
    source = write_fake_nltk_data(tmp_path / "mirror")

    def fake_download(package, download_dir=None, **kwargs):
        target = Path(download_dir) / ("corpora/treebank.zip" if package == "treebank" else "taggers/universal_tagset.zip")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((source / target.relative_to(download_dir)).read_bytes())
        return True

    monkeypatch.setattr(nltk, "download", fake_download)
    data = dataset().load()
    assert (isolated_nltk["dir"] / "corpora" / "treebank.zip").is_file()
    assert data.info.class_names == [".", "ADJ", "ADV", "DET", "NOUN", "VERB"]  # mapped through en-ptb.map
    assert len(data.train) + len(data.val) + len(data.test) == 40


def test_treebank_from_nltk_data_needs_no_download(isolated_nltk, monkeypatch):
    write_fake_nltk_data(isolated_nltk["dir"])
    data = dataset().load()
    assert isolated_nltk["calls"] == [] and data.info.num_classes == 6


def test_corrupted_corpus_zip_is_a_clear_error(isolated_nltk):
    write_fake_nltk_data(isolated_nltk["dir"])
    broken = isolated_nltk["dir"] / "corpora" / "treebank.zip"
    broken.write_bytes(broken.read_bytes()[:40])
    with pytest.raises(DataError) as caught:
        dataset().load()
    message = str(caught.value)
    assert f"{broken} is corrupt (BadZipFile" in message
    assert "delete it and run `regsuite data download nltk_treebank`, or set NLTK_DATA" in message


# ---------------------------------------------------------------------------- regsuite data download


def cli(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def test_cli_data_download_fetches_both_packages(isolated_nltk, monkeypatch, tmp_path):
    fetched = []
    monkeypatch.setattr(nltk, "download", lambda package, download_dir=None, **kw: fetched.append((package, download_dir)) or True)
    result = cli("data", "download", "nltk_treebank", "--dir", str(tmp_path / "here"))
    assert result.exit_code == 0, result.output
    assert fetched == [("treebank", str(tmp_path / "here")), ("universal_tagset", str(tmp_path / "here"))]
    assert "downloaded NLTK packages treebank, universal_tagset into" in result.output


def test_cli_data_download_defaults_to_nltk_data(isolated_nltk, monkeypatch):
    fetched = []
    monkeypatch.setattr(nltk, "download", lambda package, download_dir=None, **kw: fetched.append(download_dir) or True)
    result = cli("data", "download", "nltk_treebank")
    assert result.exit_code == 0, result.output
    assert fetched == [str(isolated_nltk["dir"])] * 2 and "export NLTK_DATA" not in result.output


def test_cli_data_download_offline_is_one_message_exit_2(isolated_nltk, tmp_path):
    result = cli("data", "download", "nltk_treebank", "--dir", str(tmp_path / "here"))
    assert result.exit_code == 2
    assert "nltk.download('treebank')" in result.output and "failed" in result.output
    assert "Traceback" not in result.output


def test_cli_data_download_of_a_dataset_without_files_and_an_unknown_one():
    result = cli("data", "download", "digits")
    assert result.exit_code == 0 and "nothing to download" in result.output
    result = cli("data", "download", "nltk_treebnk")
    assert result.exit_code == 2 and "did you mean 'nltk_treebank'" in result.output


# ---------------------------------------------------------------------------- the real treebank


@pytest.mark.realdata
@pytest.mark.skipif(not SHARED_NLTK.is_dir(), reason="../shared/nltk_data is absent")
def test_real_treebank_universal_tags(monkeypatch):
    monkeypatch.setenv("NLTK_DATA", str(SHARED_NLTK))
    data = dataset(download=False).load()
    sizes = data.info.extras["sentences"]
    assert sizes == {"train": 3132, "val": 391, "test": 391}
    tokens = sum(int((s.targets != IGNORE_TARGET).sum()) for s in (data.train, data.val, data.test))
    assert tokens == 100_676
    assert data.info.class_names == [".", "ADJ", "ADP", "ADV", "CONJ", "DET", "NOUN", "NUM", "PRON", "PRT", "VERB", "X"]
    assert data.info.extras["tags_unseen_in_train"] == []
    assert 0.02 < data.info.extras["unknown_rate"]["test"] < 0.1  # words unseen in training
