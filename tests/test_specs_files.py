"""The shipped spec files parse, and every plugin reference in them validates (typos caught
here, not after hours of training)."""
from __future__ import annotations

from pathlib import Path

import pytest

from regsuite.errors import RegsuiteError
from regsuite.registry import get_registry
from regsuite.spec import PluginRef, check_claim_metrics, load_spec

SPECS = Path(__file__).resolve().parents[1] / "specs"
TABLE_1 = {  # the study's Table 1 (docs/study.md), loss at the 25th epoch
    "none": (1.556, 2.347),
    "l2": (1.654, 2.1456),
    "augmentation": (1.4923, 1.9847),
    "dropout": (2.033, 2.229),
    "ensemble": (1.72, 2.295),
}


def check_ref(kind: str, ref: PluginRef) -> None:
    registry = get_registry()
    try:
        cls = registry.cls(kind, ref.name)
    except RegsuiteError:
        if kind == "dataset":  # a dataset plugin may come from another branch or package
            return
        raise
    cls.Params.model_validate(ref.params)


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.toml")), ids=lambda p: p.name)
def test_spec_file_and_its_plugin_parameters_validate(path: Path) -> None:
    spec = load_spec(path)
    assert spec.name == path.stem
    get_registry().cls("task", spec.task.name)
    for ref, _ in spec.refs("dataset"):
        check_ref("dataset", ref)
    for ref, _ in spec.refs("model"):
        check_ref("model", ref)
    for regularizer_set in spec.sets:
        for ref in regularizer_set.regularizers:
            check_ref("regularizer", ref)
    errors: list[str] = []
    check_claim_metrics(get_registry(), spec, errors)  # claims' rows are checked by load_spec
    assert errors == []


def test_paper_spec_states_the_studys_claims() -> None:
    spec = load_spec(SPECS / "paper.toml")
    assert len(spec.claims) >= 8
    assert {c.metric for c in spec.claims} >= {"val_loss", "gap", "train_loss", "val_rise"}


def test_paper_spec_is_the_studys_table() -> None:
    spec = load_spec(SPECS / "paper.toml")
    assert (spec.task.name, spec.dataset.name, spec.dataset.params["classes"]) == ("image_classification", "tiny_imagenet", 25)
    assert spec.model.name == "custom_cnn" and spec.training.epochs == 25 and spec.baseline_label == "none"
    sets = {s.label: s for s in spec.sets}
    assert list(sets) == [*TABLE_1, "l2 + maxdropout"]
    for label, (train_loss, val_loss) in TABLE_1.items():
        assert sets[label].reference == {"train_loss": train_loss, "val_loss": val_loss}
    ensemble = {r.name: r.params for r in sets["ensemble"].regularizers}
    assert ensemble == {"l2": {"weight": 1.5e-4}, "dropout": {"p": 0.2}}
    assert {r.name: r.params for r in sets["dropout"].regularizers} == {"dropout": {"p": 0.25}}
    assert [r.name for r in sets["l2 + maxdropout"].regularizers] == ["l2", "maxdropout"]


def test_efficientnet_spec() -> None:
    spec = load_spec(SPECS / "efficientnet.toml")
    assert spec.model.name == "efficientnet_b0" and spec.model.params["resize"] == 224
    assert [s.label for s in spec.sets] == ["none", "l2", "dropout", "augmentation", "drop path 0.4"]
    assert spec.sets[-1].regularizers[0].name == "drop_path"  # fills the model's drop_path slots


def test_beyond_spec_shares_the_paper_specs_rows() -> None:
    """The study's five rows of beyond.toml are the paper spec's runs (same configuration)."""
    paper = {s.label: s.regularizers for s in load_spec(SPECS / "paper.toml").sets}
    beyond = load_spec(SPECS / "beyond.toml")
    assert beyond.training == load_spec(SPECS / "paper.toml").training
    for label in ("none", "l2", "augmentation", "dropout", "ensemble"):
        assert {s.label: s.regularizers for s in beyond.sets}[label] == paper[label]
