"""The data-regime axis: a deterministic, class-balanced subsample of the training split
(``train_fraction``, ``per_class``, ``subset_seed``) of digits, tiny_imagenet and
nltk_treebank, and ``regsuite.api.balanced_subset`` / ``random_subset`` behind it. Val and
test stay whole, the fingerprint follows the subsample, and runs at the defaults keep their
published ids."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import torch
from helpers.specs import TINY_SPEC
from helpers.treebank import dataset as treebank
from pydantic import ValidationError

from regsuite.api import (
    IGNORE_TARGET,
    balanced_subset,
    channel_stats,
    data_fingerprint,
    random_subset,
    run_key_params,
)
from regsuite.errors import DataError, SpecError
from regsuite.plugins.datasets import tiny_imagenet as ti
from regsuite.plugins.datasets.digits import Digits, DigitsParams
from regsuite.plugins.datasets.nltk_treebank import NLTKTreebankParams, write_tiny_corpus
from regsuite.plugins.datasets.tiny_imagenet import TinyImageNet, TinyImageNetParams, write_tiny_layout
from regsuite.registry import get_registry
from regsuite.spec import load_spec, resolve, run_id_of, run_key_view

REPO = Path(__file__).resolve().parents[1]
NEW_FIELDS = {"train_fraction": 1.0, "per_class": None, "subset_seed": 0}
WNIDS = ("n01443537", "n01629819", "n01641577")  # write_tiny_layout's classes, sorted


def class_counts(targets: torch.Tensor) -> dict[int, int]:
    return dict(sorted(Counter(targets.tolist()).items()))


def digits(**params) -> Digits:
    return Digits(DigitsParams(**params))


# ---------------------------------------------------------------------------- the helpers


def test_balanced_subset_takes_a_share_of_every_class_sorted():
    targets = torch.tensor([0] * 10 + [1] * 5 + [2] * 1 + [1] * 5)
    keep = balanced_subset(targets, fraction=0.3, seed=0)
    assert keep.dtype == torch.int64 and torch.equal(keep, keep.sort().values)
    assert class_counts(targets[keep]) == {0: 3, 1: 3, 2: 1}  # round(0.3 n_c), at least 1
    assert torch.equal(balanced_subset(targets, fraction=1.0, seed=3), torch.arange(len(targets)))
    per = balanced_subset(targets, per_class=1, seed=0)
    assert class_counts(targets[per]) == {0: 1, 1: 1, 2: 1}


def test_balanced_subset_is_seeded_nested_and_per_class_independent():
    targets = torch.arange(200) % 4
    a = balanced_subset(targets, fraction=0.25, seed=0)
    assert torch.equal(a, balanced_subset(targets, fraction=0.25, seed=0))
    assert not torch.equal(a, balanced_subset(targets, fraction=0.25, seed=1))
    assert set(a.tolist()) <= set(balanced_subset(targets, fraction=0.5, seed=0).tolist())  # nested
    # a class's pick depends on the seed and the class, not on the other classes
    fewer = targets.clone()
    fewer[fewer == 3] = 2
    b = balanced_subset(fewer, fraction=0.25, seed=0)
    assert [i for i in a.tolist() if targets[i] < 2] == [i for i in b.tolist() if fewer[i] < 2]


def test_balanced_subset_per_class_too_large_names_the_class():
    targets = torch.tensor([0] * 5 + [1] * 2 + [2] * 3)
    with pytest.raises(DataError) as caught:
        balanced_subset(targets, per_class=4, seed=0, class_names=["a", "b", "c"])
    assert caught.value.message == "per_class = 4, but class 1 ('b') has only 2 training samples; 2 classes have fewer than 4"
    assert "per_class <= 2" in caught.value.hint


def test_balanced_subset_refuses_bad_arguments():
    targets = torch.zeros(4, dtype=torch.int64)
    for kwargs in ({}, {"fraction": 0.5, "per_class": 1}, {"fraction": 0.0}, {"fraction": 1.5}, {"per_class": 0}):
        with pytest.raises(ValueError):
            balanced_subset(targets, seed=0, **kwargs)
    with pytest.raises(ValueError, match="one class index per sample"):
        balanced_subset(torch.zeros(4, 3, dtype=torch.int64), fraction=0.5, seed=0)


def test_random_subset():
    keep = random_subset(50, fraction=0.2, seed=0)
    assert len(keep) == 10 and keep.dtype == torch.int64 and torch.equal(keep, keep.sort().values)
    assert len(set(keep.tolist())) == 10 and 0 <= int(keep.min()) and int(keep.max()) < 50
    assert torch.equal(keep, random_subset(50, fraction=0.2, seed=0))
    assert not torch.equal(keep, random_subset(50, fraction=0.2, seed=1))
    assert len(random_subset(3, fraction=0.01, seed=0)) == 1
    assert torch.equal(random_subset(7, fraction=1.0, seed=5), torch.arange(7))


# ---------------------------------------------------------------------------- digits


def test_digits_train_fraction_is_balanced_and_leaves_val_alone():
    full = digits().load()
    half = digits(train_fraction=0.5).load()
    counts = class_counts(full.train.targets)
    assert class_counts(half.train.targets) == {c: max(1, round(0.5 * n)) for c, n in counts.items()}
    keep = balanced_subset(full.train.targets, fraction=0.5, seed=0)
    assert torch.equal(half.train.inputs, full.train.inputs[keep])  # a subset, in the split's order
    assert torch.equal(half.train.targets, full.train.targets[keep])
    assert torch.equal(half.val.inputs, full.val.inputs) and torch.equal(half.val.targets, full.val.targets)
    mean, std = channel_stats(half.train.inputs)  # the subsample's own statistics
    assert half.info.mean == pytest.approx(mean) and half.info.std == pytest.approx(std)
    assert half.info.mean != full.info.mean


def test_digits_per_class_and_train_limit():
    data = digits(per_class=7).load()
    assert class_counts(data.train.targets) == {c: 7 for c in range(10)}
    limited = digits(train_limit=100, train_fraction=0.5).load()  # the subsample of the limited split
    limit = digits(train_limit=100).load()
    assert class_counts(limited.train.targets) == {c: max(1, round(0.5 * n)) for c, n in
                                                   class_counts(limit.train.targets).items()}


def test_digits_subset_is_deterministic_and_independent_of_the_run_seed():
    torch.manual_seed(0)
    a = digits(train_fraction=0.2).load()
    torch.manual_seed(123)  # what a run seed does to the global generators
    b = digits(train_fraction=0.2).load()
    assert torch.equal(a.train.inputs, b.train.inputs) and torch.equal(a.train.targets, b.train.targets)
    other = digits(train_fraction=0.2, subset_seed=1).load()
    assert class_counts(other.train.targets) == class_counts(a.train.targets)
    assert not torch.equal(a.train.inputs, other.train.inputs)


def test_digits_fingerprint_follows_the_subsample():
    prints = {}
    for params in ({}, {"train_fraction": 0.5}, {"train_fraction": 0.25}, {"per_class": 5},
                   {"train_fraction": 0.5, "subset_seed": 1}):
        ds = digits(**params)
        prints[json.dumps(params)] = ds.fingerprint()
        assert prints[json.dumps(params)] == data_fingerprint(ds.load())
    assert len(set(prints.values())) == len(prints)
    assert digits(train_fraction=1.0, subset_seed=0).fingerprint() == prints["{}"]


def test_digits_per_class_larger_than_a_class_is_a_data_error():
    with pytest.raises(DataError) as caught:
        digits(train_limit=50, per_class=30).load()
    assert caught.value.message.startswith("digits.per_class = 30, but class ")
    assert "training samples" in caught.value.message and "per_class <=" in caught.value.hint


@pytest.mark.parametrize("params", [DigitsParams, TinyImageNetParams])
def test_train_fraction_and_per_class_together_are_refused(params):
    with pytest.raises(ValidationError, match="give train_fraction or per_class, not both"):
        params(train_fraction=0.5, per_class=3)
    assert params(train_fraction=1.0, per_class=3).per_class == 3  # train_fraction at its default
    for bad in ({"train_fraction": 0}, {"train_fraction": 1.5}, {"per_class": 0}, {"subset_seed": -1}):
        with pytest.raises(ValidationError):
            params(**bad)


def test_nltk_treebank_has_no_per_class():
    with pytest.raises(ValidationError):
        NLTKTreebankParams(per_class=3)
    with pytest.raises(ValidationError):
        NLTKTreebankParams(train_fraction=0)


def test_both_in_a_spec_name_the_field(files):
    path = files({"both.toml": TINY_SPEC.replace("train_limit = 60", "train_limit = 60\ntrain_fraction = 0.5\nper_class = 3")})
    with pytest.raises(SpecError) as caught:
        resolve(load_spec(path / "both.toml"), get_registry())
    assert any("give train_fraction or per_class, not both" in d for d in caught.value.details)


# ---------------------------------------------------------------------------- run ids


@pytest.mark.parametrize("params", [DigitsParams, TinyImageNetParams, NLTKTreebankParams])
def test_the_new_fields_at_their_defaults_are_not_keyed(params):
    resolved = params().model_dump(mode="json")
    assert set(NEW_FIELDS) & set(params.model_fields) <= set(resolved)
    keyed = run_key_params(params, resolved)
    assert not set(NEW_FIELDS) & set(keyed)
    assert keyed == run_key_params(params, {k: v for k, v in resolved.items() if k not in NEW_FIELDS})
    assert run_key_params(params, {**resolved, "train_fraction": 0.5})["train_fraction"] == 0.5
    assert run_key_params(params, {**resolved, "subset_seed": 2})["subset_seed"] == 2


def plan(path: Path, *overrides: str):
    return resolve(load_spec(path, list(overrides)), get_registry())


def without_new_fields(config: dict) -> dict:
    dataset = {**config["dataset"], "params": {k: v for k, v in config["dataset"]["params"].items()
                                               if k not in NEW_FIELDS}}
    return {**config, "dataset": dataset}


def test_a_spec_at_the_defaults_keeps_its_run_ids(tiny_spec):
    registry = get_registry()
    planned = plan(tiny_spec)
    for run in planned.runs:
        assert run.config["dataset"]["params"]["train_fraction"] == 1.0  # resolved, stored with the run
        assert run.run_id == run_id_of(run_key_view(registry, without_new_fields(run.config)))
    explicit = plan(tiny_spec, "dataset.train_fraction=1.0", "dataset.subset_seed=0")
    assert [r.run_id for r in explicit.runs] == [r.run_id for r in planned.runs]
    half = plan(tiny_spec, "dataset.train_fraction=0.5")
    assert half.runs[0].config["dataset"]["fingerprint"] != planned.runs[0].config["dataset"]["fingerprint"]
    assert not {r.run_id for r in half.runs} & {r.run_id for r in planned.runs}
    reseeded = plan(tiny_spec, "dataset.train_fraction=0.5", "dataset.subset_seed=1")
    assert not {r.run_id for r in reseeded.runs} & {r.run_id for r in half.runs}


def test_published_runs_keep_their_ids():
    """The runs of leaderboard/paper.runs.jsonl (tiny_imagenet, made before these parameters
    existed) hash to their ids with the parameters at their defaults filled in."""
    registry = get_registry()
    runs = [r for r in map(json.loads, (REPO / "leaderboard" / "paper.runs.jsonl").read_text().splitlines())
            if r.get("kind") == "run"]
    assert runs
    for run in runs:
        config = run["config"]
        assert config["dataset"]["name"] == "tiny_imagenet" and "train_fraction" not in config["dataset"]["params"]
        filled = {**config, "dataset": {**config["dataset"], "params": {**config["dataset"]["params"], **NEW_FIELDS}}}
        TinyImageNetParams.model_validate(filled["dataset"]["params"])
        assert run_id_of(run_key_view(registry, filled)) == run["run_id"]


# ---------------------------------------------------------------------------- tiny_imagenet


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A tiny archive (3 classes, 4 training and 2 validation images each) and its loader."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(ti.DATA_ENV, raising=False)
    archive = write_tiny_layout(tmp_path / "zipped", archive="tiny.zip")
    cache = tmp_path / "cache"

    def make(**params) -> TinyImageNet:
        return TinyImageNet(TinyImageNetParams(root=archive, cache_dir=cache, download=False,
                                               **{"classes": 3, **params}))

    make.cache = cache
    return make


def test_tiny_imagenet_subsample_is_balanced_from_one_cached_decode(tiny, monkeypatch):
    full = tiny().load()
    decodes = []
    monkeypatch.setattr(ti, "decode_plan", lambda *args: decodes.append(args))  # any decode would show
    half = tiny(train_fraction=0.5).load()
    three = tiny(per_class=3).load()
    assert not decodes and len(list(tiny.cache.iterdir())) == 1  # the cache holds the full split, once
    assert class_counts(half.train.targets) == {0: 2, 1: 2, 2: 2}
    assert class_counts(three.train.targets) == {0: 3, 1: 3, 2: 3}
    keep = balanced_subset(full.train.targets, fraction=0.5, seed=0)
    assert torch.equal(half.train.inputs, full.train.inputs[keep])
    for data in (half, three):
        assert torch.equal(data.val.inputs, full.val.inputs) and torch.equal(data.val.targets, full.val.targets)
        x = data.train.inputs.float().div(255).transpose(0, 1).reshape(3, -1)
        assert data.info.mean == pytest.approx(x.mean(1).tolist(), abs=1e-5)  # the subsample's statistics
        assert data.info.std == pytest.approx(x.std(1).tolist(), abs=1e-5)
        assert data.info.class_names == full.info.class_names and data.info.num_classes == 3


def test_tiny_imagenet_fingerprint_is_the_subsamples(tiny):
    full = tiny()
    cached = full.cached().meta["fingerprint"]
    assert full.fingerprint() == cached == data_fingerprint(full.load())
    prints = set()
    for params in ({"train_fraction": 0.5}, {"train_fraction": 0.25}, {"per_class": 3},
                   {"train_fraction": 0.5, "subset_seed": 4}):
        ds = tiny(**params)
        assert ds.fingerprint() == ds.fingerprint() == data_fingerprint(ds.load())
        prints.add(ds.fingerprint())
    assert cached not in prints and len(prints) == 4
    assert tiny(train_fraction=1.0, subset_seed=0).fingerprint() == cached


def test_tiny_imagenet_subset_is_seeded_and_independent_of_run_seed_and_classes(tiny):
    torch.manual_seed(0)
    a = tiny(train_fraction=0.5).load()
    torch.manual_seed(99)
    assert torch.equal(a.train.inputs, tiny(train_fraction=0.5).load().train.inputs)
    assert not torch.equal(a.train.inputs, tiny(train_fraction=0.5, subset_seed=4).load().train.inputs)
    two = tiny(classes=2, train_fraction=0.5).load()  # the first two classes keep their images
    assert torch.equal(two.train.inputs, a.train.inputs[a.train.targets < 2])


def test_tiny_imagenet_per_class_larger_than_a_class_names_its_wnid(tiny):
    with pytest.raises(DataError) as caught:
        tiny(per_class=5).load()
    assert caught.value.message == (f"tiny_imagenet.per_class = 5, but class 0 ('{WNIDS[0]}') has only 4 training "
                                    "samples; 3 classes have fewer than 5")
    with pytest.raises(DataError, match="per_class = 5"):
        tiny(per_class=5).fingerprint()


def test_tiny_imagenet_spec_at_the_defaults_keeps_its_run_ids(files, tmp_path):
    text = TINY_SPEC.replace('[dataset]\nname = "digits"\ntrain_limit = 60', '[dataset]\nname = "tiny_imagenet"\nclasses = 2')
    path = files({"tiny_in.toml": text}) / "tiny_in.toml"
    archive = write_tiny_layout(tmp_path / "a", archive="tiny.zip")
    where = (f"dataset.root={archive}", f"dataset.cache_dir={tmp_path / 'cache'}", "dataset.download=false")
    planned = plan(path, *where)
    registry = get_registry()
    for run in planned.runs:
        assert run.run_id == run_id_of(run_key_view(registry, without_new_fields(run.config)))
    half = plan(path, *where, "dataset.train_fraction=0.5")
    assert half.runs[0].config["dataset"]["fingerprint"] != planned.runs[0].config["dataset"]["fingerprint"]
    assert half.runs[0].config["dataset"]["fingerprint"] == TinyImageNet(
        TinyImageNetParams.model_validate(half.runs[0].config["dataset"]["params"])).fingerprint()


# ---------------------------------------------------------------------------- nltk_treebank


def test_nltk_treebank_keeps_a_share_of_training_sentences(tmp_path):
    root = str(write_tiny_corpus(tmp_path / "c", sentences=60))
    full = treebank(corpus_root=root).load()
    half = treebank(corpus_root=root, train_fraction=0.5).load()
    assert (len(full.train), len(half.train), len(half.val), len(half.test)) == (48, 24, 6, 6)
    assert half.info.extras["sentences"] == {"train": 24, "val": 6, "test": 6}
    keep = random_subset(48, fraction=0.5, seed=0)
    width = half.train.targets.shape[1]
    assert torch.equal(half.train.targets, full.train.targets[keep][:, :width])  # the same sentences, in order
    assert bool((full.train.targets[keep][:, width:] == IGNORE_TARGET).all())
    # val and test hold the same sentences and tags; the vocabulary is the kept sentences', so
    # word ids differ and more words are <unk>
    unk = full.info.unk_index
    for name in ("val", "test"):
        a, b = getattr(full, name), getattr(half, name)
        assert torch.equal(a.targets, b.targets)
        assert torch.equal(a.inputs == 0, b.inputs == 0)  # the same padding
        assert bool((b.inputs[a.inputs == unk] == unk).all())
        assert half.info.extras["unknown_rate"][name] >= full.info.extras["unknown_rate"][name]
    assert half.info.vocab_size <= full.info.vocab_size
    assert half.info.input_shape == full.info.input_shape


def test_nltk_treebank_subset_is_seeded_and_fingerprinted(tmp_path):
    root = str(write_tiny_corpus(tmp_path / "c", sentences=60))
    torch.manual_seed(0)
    a = treebank(corpus_root=root, train_fraction=0.25)
    torch.manual_seed(7)
    b = treebank(corpus_root=root, train_fraction=0.25)
    assert torch.equal(a.load().train.targets, b.load().train.targets)
    other = treebank(corpus_root=root, train_fraction=0.25, subset_seed=1)
    assert len(other.load().train) == 12 and not torch.equal(a.load().train.targets, other.load().train.targets)
    prints = {ds.fingerprint() for ds in (treebank(corpus_root=root), a, other,
                                          treebank(corpus_root=root, train_fraction=0.5))}
    assert len(prints) == 4
    assert a.fingerprint() == data_fingerprint(a.load())
    assert len(treebank(corpus_root=root, train_fraction=0.001).load().train) == 1
