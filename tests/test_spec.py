from __future__ import annotations

import re

import pytest

from regsuite.errors import SpecError
from regsuite.registry import get_registry
from regsuite.spec import load_spec, parse_override

from helpers.specs import TINY_SPEC, plan_of


def test_grid_expands_sets_times_seeds(tiny_spec):
    plan = plan_of(tiny_spec)
    assert [(r.label, r.seed) for r in plan.runs] == [("none", 0), ("none", 1), ("l2 + dropout", 0), ("l2 + dropout", 1)]
    assert len({r.run_id for r in plan.runs}) == 4
    assert plan.runs[2].reference == {"train_loss": 1.5, "val_loss": 2.0}


def test_resolved_config_has_defaults_and_versions(tiny_spec):
    config = plan_of(tiny_spec).runs[2].config
    assert config["regularizers"][0] == {"name": "l2", "params": {"weight": 1e-3, "include_biases": False}}
    assert config["dataset"]["params"]["val_fraction"] == 0.3
    assert {"regsuite", "torch", "python", "numpy", "plugins"} <= set(config["versions"])
    assert config["versions"]["plugins"]["regularizer:dropout"].startswith("regsuite ")


def test_run_id_is_stable_and_sensitive(tiny_spec):
    first, again = plan_of(tiny_spec), plan_of(tiny_spec)
    assert [r.run_id for r in first.runs] == [r.run_id for r in again.runs]
    changed = plan_of(tiny_spec, "training.lr=0.01")
    assert not {r.run_id for r in first.runs} & {r.run_id for r in changed.runs}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("training.epochs=1", (["training", "epochs"], 1)),
        ("seeds=[0,1]", (["seeds"], [0, 1])),
        ("dataset.name=digits", (["dataset", "name"], "digits")),
        ("training.lr=1e-4", (["training", "lr"], 1e-4)),
        ("sets.0.label=base", (["sets", "0", "label"], "base")),
    ],
)
def test_parse_override(text, expected):
    assert parse_override(text) == expected


def test_overrides_apply_with_the_same_validation(tiny_spec):
    plan = plan_of(tiny_spec, "training.epochs=1", "seeds=[3]", "sets.1.regularizers.1.p=0.5")
    assert {r.seed for r in plan.runs} == {3}
    assert plan.runs[0].config["training"]["epochs"] == 1
    assert plan.runs[1].config["regularizers"][1]["params"]["p"] == 0.5
    with pytest.raises(SpecError, match=r"training\.epochs"):
        plan_of(tiny_spec, "training.epochs=0")


def spec_error(files, text: str, *overrides: str) -> str:
    path = files({"bad.toml": text}) / "bad.toml"
    with pytest.raises(SpecError) as info:
        plan_of(path, *overrides)
    return str(info.value)


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ('p = 0.25', 'p = 1.5', r"sets\[1\]\.regularizers\[1\]\.p: Input should be less than 1"),
        ('batch_size = 32', 'batch_size = 32\nlr = -0.1', r"training\.lr: Input should be greater than 0"),
        ('epochs = 2', 'epochs = 0', r"training\.epochs: Input should be greater than or equal to 1"),
        ('epochs = 2', 'epochs = "two"', r"training\.epochs: Input should be a valid integer"),
        ('epochs = 2', 'epochs = 2\nepoch = 3', r"training\.epoch: unknown key"),
        ('name = "small_cnn"', 'name = "small_cnn"\ndepth = 3', r"model\.depth: unknown key"),
        ('name = "l2"', 'name = "l3"', r"sets\[1\]\.regularizers\[0\]\.name: unknown regularizer 'l3': did you mean 'l2'\?"),
        ('name = "digits"', 'name = "digitz"', r"dataset\.name: unknown dataset 'digitz': did you mean 'digits'\?"),
        ('seeds = [0, 1]', 'seeds = []', r"seeds: List should have at least 1 item"),
        ('seeds = [0, 1]', 'seeds = [0, 0]', r"seeds must be unique"),
        ('{ name = "dropout", p = 0.25 }', '{ name = "dropout", p = 0.25 }, { name = "dropout", p = 0.5 }',
         r"regularizer 'dropout' appears more than once"),
        ('task = "image_classification"', 'task = "image_clasification"', r"did you mean 'image_classification'"),
    ],
)
def test_bad_values_name_the_field(files, old, new, expected):
    assert old in TINY_SPEC
    message = spec_error(files, TINY_SPEC.replace(old, new, 1))
    assert re.search(expected, message), message


def test_a_grid_with_no_runs_is_an_error(files):
    text = TINY_SPEC.split("[[sets]]")[0]
    assert "sets: Field required" in spec_error(files, text)
    text = "models = []\n" + TINY_SPEC.replace('[model]\nname = "small_cnn"\nwidth = 4\nhidden = 16\n', "")
    assert "'models' is empty" in spec_error(files, text)


def test_toml_syntax_error_gives_line_and_column(files):
    message = spec_error(files, 'name = "x"\ntask = \n')
    assert "not valid TOML" in message and "line 2" in message and "column" in message


def test_missing_file(tmp_path):
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec(tmp_path / "nope.toml")


def test_dropout_fills_the_models_declared_slots(files):
    text = TINY_SPEC.replace('label = "none"\nregularizers = []', 'label = "none"\nregularizers = [{ name = "dropout" }]')
    plan = plan_of(files({"ok.toml": text}) / "ok.toml")  # small_cnn has dropout slots: fine
    assert plan.runs[0].config["regularizers"][0]["name"] == "dropout"


def test_baseline_must_be_a_label(files):
    assert "baseline 'nope' is not a set label" in spec_error(files, 'baseline = "nope"\n' + TINY_SPEC)


def test_run_id_follows_the_data_not_its_path(files, tmp_path):
    from regsuite.plugins.datasets.tiny_imagenet import write_tiny_layout

    text = TINY_SPEC.replace('[dataset]\nname = "digits"\ntrain_limit = 60', '[dataset]\nname = "tiny_imagenet"\nclasses = 2')
    path = files({"where.toml": text}) / "where.toml"
    a = write_tiny_layout(tmp_path / "a", archive="tiny.zip")
    copy = write_tiny_layout(tmp_path / "elsewhere", archive="copy.zip")  # the same images
    other = write_tiny_layout(tmp_path / "other", train_per_class=5, archive="tiny.zip")  # other images
    cache = f"dataset.cache_dir={tmp_path / 'cache'}"
    here = plan_of(path, f"dataset.root={a}", cache, "dataset.download=false")
    there = plan_of(path, f"dataset.root={copy}", f"dataset.cache_dir={tmp_path / 'cache2'}")
    assert [r.run_id for r in here.runs] == [r.run_id for r in there.runs]
    assert here.runs[0].config["dataset"]["params"]["root"] == str(a)  # still stored with the run
    assert here.runs[0].config["dataset"]["fingerprint"] == there.runs[0].config["dataset"]["fingerprint"]
    changed = plan_of(path, f"dataset.root={other}", cache)
    assert not {r.run_id for r in here.runs} & {r.run_id for r in changed.runs}
    assert plan_of(path, f"dataset.root={a}", cache, "dataset.classes=3").runs[0].run_id != here.runs[0].run_id


def test_a_later_parameter_at_its_default_leaves_run_ids_alone(tiny_spec):
    from regsuite.api import KEYED_UNLESS_DEFAULT
    from regsuite.spec import TrainingConfig, run_key_view

    assert TrainingConfig.model_fields["precision"].json_schema_extra == KEYED_UNLESS_DEFAULT
    plan = plan_of(tiny_spec)
    view = run_key_view(get_registry(), plan.runs[0].config)
    assert "precision" not in view["training"] and plan.runs[0].config["training"]["precision"] == "fp32"
    bf16 = plan_of(tiny_spec, "training.precision=bf16")
    assert not {r.run_id for r in plan.runs} & {r.run_id for r in bf16.runs}
    assert plan_of(tiny_spec, "training.precision=fp32").runs[0].run_id == plan.runs[0].run_id


def test_set_accepts_the_paths_error_messages_print(tiny_spec):
    dotted = load_spec(tiny_spec, ["sets.1.regularizers.1.p=0.5"])
    bracketed = load_spec(tiny_spec, ["sets[1].regularizers[1].p=0.5"])
    assert dotted.sets[1].regularizers[1].params["p"] == bracketed.sets[1].regularizers[1].params["p"] == 0.5
    with pytest.raises(SpecError, match="empty part"):
        load_spec(tiny_spec, ["sets..p=1"])


def test_unknown_parameter_names_get_a_did_you_mean(tiny_spec):
    with pytest.raises(SpecError) as info:
        plan_of(tiny_spec, "sets[1].regularizers[0].wieght=0.1")
    assert "sets[1].regularizers[0].wieght: unknown key; did you mean 'weight'?" in str(info.value)
    with pytest.raises(SpecError) as info:
        plan_of(tiny_spec, "sets[1].regularizers[1].zzz=1")
    assert "unknown key (known: p)" in str(info.value)


def test_the_whole_plan_is_found_only_for_overrides_that_pick_part_of_the_grid(files, monkeypatch):
    import regsuite.spec as spec_module

    text = TINY_SPEC.replace("train_limit = 60", "train_limit = 60\ntrain_fraction = { sweep = [0.5, 1.0] }")
    path = files({"swept.toml": text}) / "swept.toml"
    registry = get_registry()

    def whole(*overrides: str):
        return spec_module.whole_plan(path, list(overrides), plan_of(path, *overrides), registry)

    assert len(whole("seeds=[0]").runs) == 8
    assert len(whole("dataset.train_fraction=0.5").runs) == 8
    assert len(whole("seeds=[1]", "dataset.train_fraction=1.0").runs) == 8
    assert whole("seeds=[0, 1]") is None  # the whole grid itself: nothing to gather
    assert whole("seeds=[7]") is None  # runs the file does not plan
    # Any other override may change what runs compute or where their data is: the file's own
    # grid is not even resolved (resolving it could start a download the override avoided).
    part = plan_of(path, "seeds=[0]", "training.lr=0.01")
    monkeypatch.setattr(spec_module, "resolve", lambda *a: pytest.fail("resolved the file's grid"))
    assert spec_module.whole_plan(path, ["seeds=[0]", "training.lr=0.01"], part, registry) is None
