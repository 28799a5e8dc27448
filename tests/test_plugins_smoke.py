"""Every registered plugin, trained for one epoch on tiny data: a new plugin is tested
without a new test (it only needs good ``smoke_params``)."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from regsuite.registry import get_registry
from regsuite.spec import PluginRef, Spec, resolve
from regsuite.train import build_context, run_training

REGISTRY = get_registry()


def ref(kind: str, name: str, workdir: Path) -> dict:
    return {"name": name, **REGISTRY.cls(kind, name).smoke_params(workdir)}


def pick(kind: str, task: str, accepts=lambda cls: True) -> str:
    for name in REGISTRY.names(kind):
        cls = REGISTRY.cls(kind, name)
        serves = {cls.task} if kind == "dataset" else cls.tasks
        if task in serves and accepts(cls):
            return name
    pytest.skip(f"no {kind} for task {task}")


def train_once(workdir: Path, task: str, dataset: str, model: str, regularizers: list[str] = ()) -> dict:
    spec = Spec(
        name="smoke",
        task=PluginRef(name=task),
        dataset=PluginRef(**ref("dataset", dataset, workdir)),
        model=PluginRef(**ref("model", model, workdir)),
        training={"epochs": 1, "batch_size": 16, "device": "cpu"},
        sets=[{"label": "x", "regularizers": [ref("regularizer", r, workdir) for r in regularizers]}],
    )
    run = resolve(spec, REGISTRY).runs[0]
    summary = run_training(build_context(run.config, REGISTRY))
    assert math.isfinite(summary["final"]["train_loss"]) and math.isfinite(summary["final"]["val_loss"])
    return summary


@pytest.mark.parametrize("name", REGISTRY.names("task"))
def test_task(name, tmp_path):
    train_once(tmp_path, name, pick("dataset", name), pick("model", name))


@pytest.mark.parametrize("name", REGISTRY.names("dataset"))
def test_dataset(name, tmp_path):
    cls = REGISTRY.cls("dataset", name)
    data = cls(cls.Params.model_validate(cls.smoke_params(tmp_path))).load()
    assert len(data.train) > 0 and len(data.val) > 0
    assert len(data.train.inputs) == len(data.train.targets)
    assert data.info.num_classes >= 2
    train_once(tmp_path, cls.task, name, pick("model", cls.task))


@pytest.mark.parametrize("name", REGISTRY.names("model"))
def test_model(name, tmp_path):
    task = sorted(REGISTRY.cls("model", name).tasks)[0]
    train_once(tmp_path, task, pick("dataset", task), name)


@pytest.mark.parametrize("name", REGISTRY.names("regularizer"))
def test_regularizer(name, tmp_path):
    cls = REGISTRY.cls("regularizer", name)
    tasks = sorted(cls.tasks) if cls.tasks is not None else REGISTRY.names("task")
    for task in tasks:
        model = pick("model", task, accepts=lambda m: cls.claims_slots <= m.slots)
        train_once(tmp_path, task, pick("dataset", task), model, [name])
