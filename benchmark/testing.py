"""The plugin author's kit: checks that a plugin class works with regsuite, for your tests.

Each check trains or builds on tiny data in seconds (through the plugins' ``smoke_params``)
and raises ``AssertionError`` with a plain message when the plugin is wrong, so it reads well
under pytest::

    from regsuite.testing import check_plugin

    def test_cutout(tmp_path):
        check_plugin(Cutout, tmp_path)      # every check that applies to a regularizer

The class under test need not be installed: the checks use this environment's registry with
the class added (replacing an installed plugin of the same kind and name). What each check
asserts:

- :func:`check_params`: ``Params()`` validates (every parameter has a default) and so does
  ``smoke_params``.
- :func:`check_task`, :func:`check_dataset`, :func:`check_model`: the plugin trains one epoch
  with registered plugins of its task(s), to finite losses; a dataset loads non-empty splits
  whose inputs and targets match and whose fingerprint is stable; a model builds for every
  task it declares and places a ``Slot`` of every kind it declares.
- :func:`check_regularizer`, on every task it declares (all registered tasks if it declares
  none): it trains on a model that offers its slots, and it changes training: two epochs with
  it differ from two epochs of the same seed without it (a silent no-op fails).

regsuite's own tests run these checks over every registered plugin.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable

from regsuite import api
from regsuite.errors import RegsuiteError
from regsuite.registry import KINDS, Entry, Registry, get_registry
from regsuite.spec import PluginRef, Spec, resolve
from regsuite.train import build_context, run_training

__all__ = [
    "check_plugin", "check_params", "check_task", "check_dataset", "check_model", "check_regularizer",
    "smoke_train", "registry_with", "kind_of", "plugin_classes",
]

SMOKE_TRAINING = {"epochs": 1, "batch_size": 16, "device": "cpu"}


def kind_of(cls: type) -> str:
    """``"task"``, ``"dataset"``, ``"model"`` or ``"regularizer"``."""
    for kind, (_, base) in KINDS.items():
        if isinstance(cls, type) and issubclass(cls, base):
            return kind
    raise AssertionError(f"{cls!r} is no regsuite plugin class (subclass Task, Dataset, Model or Regularizer)")


def registry_with(*classes: type, base: Registry | None = None) -> Registry:
    """``base`` (this environment's registry) with ``classes`` added; each replaces a plugin of
    its kind and name."""
    base = base or get_registry()
    replaced = {(kind_of(cls), cls.name) for cls in classes}
    entries = [entry for kind in KINDS for entry in base.entries[kind].values() if (kind, entry.name) not in replaced]
    entries += [Entry(kind_of(cls), cls.name, cls, "under test", f"test:{cls.__module__}", builtin=False)
                for cls in classes]
    return Registry(entries)


def plugin_classes(kind: str, registry: Registry | None = None) -> list[type]:
    """Every registered class of ``kind``, for ``pytest.mark.parametrize``."""
    registry = registry or get_registry()
    return [registry.cls(kind, name) for name in registry.names(kind)]


# ---------------------------------------------------------------------------- the checks


def check_plugin(cls: type, workdir: Path, registry: Registry | None = None) -> None:
    """Every check that applies to ``cls``'s kind."""
    check_params(cls, workdir)
    {"task": check_task, "dataset": check_dataset, "model": check_model,
     "regularizer": check_regularizer}[kind_of(cls)](cls, workdir, registry)


def check_params(cls: type, workdir: Path) -> None:
    name = getattr(cls, "name", None)
    assert isinstance(name, str) and name, f"{cls.__qualname__} has no name (set the class attribute name = '...')"
    assert issubclass(cls.Params, api.Params), f"{name}: Params must subclass regsuite.api.Params"
    try:
        cls.Params()
    except Exception as exc:  # noqa: BLE001 - the message is the finding
        raise AssertionError(f"{name}: Params() does not validate; give every parameter a default ({exc})") from None
    smoke = cls.smoke_params(Path(workdir))
    try:
        cls.Params.model_validate(smoke)
    except Exception as exc:  # noqa: BLE001
        raise AssertionError(f"{name}: smoke_params() {smoke!r} do not validate ({exc})") from None
    assert cls.describe(), f"{name}: give the class a docstring (its first line is what `regsuite plugins` shows)"


def check_task(cls: type, workdir: Path, registry: Registry | None = None) -> None:
    registry = registry_with(cls, base=registry)
    smoke_train(workdir, cls.name, registry=registry)


def check_dataset(cls: type, workdir: Path, registry: Registry | None = None) -> None:
    registry = registry_with(cls, base=registry)
    dataset = cls(cls.Params.model_validate(cls.smoke_params(Path(workdir))))
    data = dataset.load()
    assert isinstance(data, api.Data), f"{cls.name}: load() must return regsuite.api.Data, got {type(data).__name__}"
    for split_name in ("train", "val", "test"):
        split = getattr(data, split_name)
        if split is None and split_name == "test":
            continue
        assert len(split) > 0, f"{cls.name}: the {split_name} split is empty"
        assert len(split.inputs) == len(split.targets), (
            f"{cls.name}: the {split_name} split has {len(split.inputs)} inputs but {len(split.targets)} targets")
    assert data.info.num_classes >= 2, f"{cls.name}: DataInfo.num_classes is {data.info.num_classes}"
    assert tuple(data.train.inputs.shape[1:]) == tuple(data.info.input_shape), (
        f"{cls.name}: DataInfo.input_shape {tuple(data.info.input_shape)} is not the shape of one training "
        f"sample {tuple(data.train.inputs.shape[1:])}")
    first, second = dataset.fingerprint(), dataset.fingerprint()
    assert first == second, f"{cls.name}: fingerprint() differs between two calls ({first} vs {second})"
    assert first == api.data_fingerprint(dataset.load()), (
        f"{cls.name}: fingerprint() is not the fingerprint of the data load() returns")
    smoke_train(workdir, cls.task, dataset=cls.name, registry=registry)


def check_model(cls: type, workdir: Path, registry: Registry | None = None) -> None:
    registry = registry_with(cls, base=registry)
    assert cls.tasks, f"{cls.name}: declares no tasks (set tasks = frozenset({{...}}))"
    for task in sorted(cls.tasks):
        summary, context = smoke_train(workdir, task, model=cls.name, registry=registry, with_context=True)
        built = {m.kind for m in context.built_model.modules() if isinstance(m, api.Slot)}
        missing = sorted(set(cls.slots) - built)
        assert not missing, (f"{cls.name}: declares slots {sorted(cls.slots)} but the module it builds for "
                             f"{task} places no Slot of {missing}")


def check_regularizer(cls: type, workdir: Path, registry: Registry | None = None) -> None:
    registry = registry_with(cls, base=registry)
    tasks = sorted(cls.tasks) if cls.tasks is not None else registry.names("task")
    assert tasks, f"{cls.name}: no task it serves is registered"
    for task in tasks:
        model = smallest_model(registry, task, Path(workdir), frozenset(cls.claims_slots), cls.name)
        ref = {"name": cls.name, **cls.smoke_params(Path(workdir))}
        training = {**SMOKE_TRAINING, "epochs": 2}
        with_it = smoke_train(workdir, task, model=model, regularizers=[ref], registry=registry, training=training)
        without = smoke_train(workdir, task, model=model, regularizers=[], registry=registry, training=training)
        assert curves(with_it) != curves(without), (
            f"{cls.name}: two epochs on {task} ({model}) with it give exactly the losses of the same seed "
            "without it: it changes nothing (a hook that is never called, a slot that is never filled, "
            "or smoke_params too weak to matter)")


def curves(summary: dict[str, Any]) -> list[tuple[float, float]]:
    return [(epoch["train_loss"], epoch["val_loss"]) for epoch in summary["history"]]


# ---------------------------------------------------------------------------- training


def pick(registry: Registry, kind: str, task: str, accepts=lambda cls: True, wanted_by: str = "") -> str:
    """The first registered plugin of ``kind`` that serves ``task`` (and that ``accepts``)."""
    for name in registry.names(kind):
        cls = registry.cls(kind, name)
        serves = {cls.task} if kind == "dataset" else cls.tasks
        if serves is None or task in serves:
            if accepts(cls):
                return name
    who = f" for {wanted_by}" if wanted_by else ""
    raise AssertionError(f"no registered {kind} serves task {task!r}{who}; install or pass one that does")


def smallest_model(registry: Registry, task: str, workdir: Path, slots: frozenset[str] = frozenset(),
                   wanted_by: str = "") -> str:
    """The registered model of ``task`` offering ``slots`` with the fewest parameters when built
    for the task's first smoke dataset: checks stay seconds long whatever models are installed."""
    dataset_cls = registry.cls("dataset", pick(registry, "dataset", task))
    key = (task, slots, dataset_cls, tuple(entry.cls for entry in registry.entries["model"].values()))
    if key not in _SMALLEST:
        info = dataset_cls(dataset_cls.Params.model_validate(dataset_cls.smoke_params(workdir))).load().info
        sizes = {}
        for name in registry.names("model"):
            cls = registry.cls("model", name)
            if task in cls.tasks and slots <= set(cls.slots):
                module = cls(cls.Params.model_validate(cls.smoke_params(workdir))).build(info)
                sizes[name] = sum(p.numel() for p in module.parameters())
        if not sizes:
            who = f" for {wanted_by}" if wanted_by else ""
            raise AssertionError(f"no registered model serves task {task!r} with slots {sorted(slots)}{who}; "
                                 "install or pass one that does")
        _SMALLEST[key] = min(sizes, key=lambda name: (sizes[name], name))
    return _SMALLEST[key]


_SMALLEST: dict[tuple, str] = {}


def smoke_train(workdir: Path, task: str, *, dataset: str | None = None, model: str | None = None,
                regularizers: Iterable[dict[str, Any]] = (), registry: Registry | None = None,
                training: dict[str, Any] | None = None, seed: int = 0, with_context: bool = False):
    """Train one run of ``task`` on plugins' ``smoke_params`` (first registered dataset and
    model of the task unless named) and return its summary, with ``history`` (every epoch's
    metrics) added. Fails on a non-finite loss."""
    registry = registry or get_registry()
    workdir = Path(workdir)
    dataset = dataset or pick(registry, "dataset", task)
    model = model or smallest_model(registry, task, workdir)

    def ref(kind: str, name: str) -> PluginRef:
        return PluginRef(name=name, **registry.cls(kind, name).smoke_params(workdir))

    try:
        spec = Spec(name="smoke", task=PluginRef(name=task), dataset=ref("dataset", dataset), model=ref("model", model),
                    training=training or SMOKE_TRAINING, seeds=[seed],
                    sets=[{"label": "smoke", "regularizers": [PluginRef(**r) for r in regularizers]}])
        run = resolve(spec, registry).runs[0]
        context = build_context(run.config, registry)
        history: list[dict[str, float]] = []
        context.built_model = None
        summary = run_training(context, on_epoch=lambda state, metrics: (
            history.append(dict(metrics)), setattr(context, "built_model", state.model)))
    except RegsuiteError as exc:
        raise AssertionError(f"{task} / {dataset} / {model} / {[r['name'] for r in regularizers]}: {exc}") from exc
    summary["history"] = history
    for key in ("train_loss", "val_loss"):
        value = summary["final"][key]
        assert math.isfinite(value), f"{task} / {dataset} / {model}: the final {key} is {value}"
    return (summary, context) if with_context else summary
