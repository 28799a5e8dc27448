"""Spec files: TOML in, a validated grid of fully resolved runs out."""
from __future__ import annotations

import hashlib
import json
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from regsuite import __version__
from regsuite.api import KEYED_UNLESS_DEFAULT, run_key_params
from regsuite.claims import FORMS, RUN_METRICS, referenced_labels
from regsuite.errors import SpecError
from regsuite.execution import ExecutionConfig
from regsuite.registry import Registry

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PluginRef(BaseModel):
    """``{ name = "dropout", p = 0.25 }``: a plugin name plus its parameters."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1)

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class TrainingConfig(Strict):
    epochs: int = Field(10, ge=1, description="epochs per run")
    batch_size: int = Field(128, ge=1)
    eval_batch_size: int | None = Field(None, ge=1, description="default: 4 × batch_size")
    optimizer: Literal["sgd", "adam", "adamw"] = "adam"
    lr: float = Field(1e-3, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1, description="sgd only")
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?|mps)$")
    deterministic: bool = Field(True, description="deterministic kernels where torch has them")
    precision: Literal["fp32", "bf16", "tf32"] = Field(
        "fp32", json_schema_extra=KEYED_UNLESS_DEFAULT,
        description="fp32; bf16 autocast (CPU or GPU); tf32 matmuls and convolutions (GPUs). Losses stay fp32",
    )


class RegularizerSet(Strict):
    label: str = Field(min_length=1, max_length=60)
    regularizers: list[PluginRef] = Field(default_factory=list)
    reference: dict[str, float] = Field(
        default_factory=dict, description="published values shown beside measured ones"
    )


class Claim(Strict):
    """A claim about the rows, judged from paired seeds (see :mod:`regsuite.claims`)."""

    text: str = Field(min_length=1, max_length=300, description="the claim in words")
    metric: str = Field("val_loss", min_length=1, description="val_loss, train_loss, gap, val_accuracy, val_rise, …")
    row: str | list[str] = Field(description='a set label, a list of them, or "all"')
    lower_than: str | None = Field(None, description="the row's metric is lower than this row's")
    higher_than: str | None = None
    lowest_of: str | list[str] | None = Field(None, description='lowest of these rows, or of "all"')
    highest_of: str | list[str] | None = None
    below: float | None = Field(None, description="the row's metric is below this number")
    above: float | None = None

    @model_validator(mode="after")
    def one_form(self) -> "Claim":
        given = [key for key in FORMS if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(FORMS)} (got {', '.join(given) or 'none'})")
        if isinstance(self.row, list) and not self.row:
            raise ValueError("row is an empty list")
        return self


class Spec(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=80)
    description: str = ""
    task: PluginRef
    dataset: PluginRef | None = None
    datasets: list[PluginRef] | None = None
    model: PluginRef | None = None
    models: list[PluginRef] | None = None
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    baseline: str | None = Field(None, description='label of the baseline set (default: "none" if present)')
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    sets: list[RegularizerSet] = Field(min_length=1)
    claims: list[Claim] = Field(default_factory=list, description="claims about the rows, judged in the leaderboard")
    # How the grid runs (workers, GPUs, Ray): never part of a run's config or id.
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)

    @field_validator("task", mode="before")
    @classmethod
    def task_from_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("seeds")
    @classmethod
    def unique_seeds(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError("seeds must be unique")
        return seeds

    @model_validator(mode="after")
    def one_form_each(self) -> "Spec":
        for single, many in (("dataset", "datasets"), ("model", "models")):
            if getattr(self, many) == []:
                raise ValueError(f"'{many}' is empty: the grid would have no runs")
            if (getattr(self, single) is None) == (getattr(self, many) is None):
                raise ValueError(f"give exactly one of '{single}' (a table) or '{many}' (a list of tables)")
        labels = [s.label for s in self.sets]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise ValueError(f"set labels must be unique; repeated: {', '.join(duplicates)}")
        if self.baseline is not None and self.baseline not in labels:
            raise ValueError(f"baseline {self.baseline!r} is not a set label ({', '.join(labels)})")
        for i, claim in enumerate(self.claims):
            unknown = [name for name in referenced_labels(claim.model_dump()) if name not in labels]
            if unknown:
                raise ValueError(f"claims[{i}] ({claim.text!r}) names rows that are not set labels: "
                                 f"{', '.join(map(repr, unknown))} (the labels are {', '.join(map(repr, labels))})")
        return self

    @property
    def dataset_refs(self) -> list[PluginRef]:
        return self.datasets if self.datasets is not None else [self.dataset]

    @property
    def model_refs(self) -> list[PluginRef]:
        return self.models if self.models is not None else [self.model]

    @property
    def baseline_label(self) -> str | None:
        if self.baseline is not None:
            return self.baseline
        return "none" if any(s.label == "none" for s in self.sets) else None


# ---------------------------------------------------------------------------- loading


def read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SpecError(f"spec file not found: {path}", hint="check the path; specs live in specs/")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path} is not valid TOML: {exc}") from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """``training.epochs=1`` → (["training", "epochs"], 1). Values are TOML; bare words are strings."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SpecError(f"--set {text!r} is not of the form key.path=value", hint="e.g. --set training.epochs=1")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key.split("."), value


def apply_override(data: dict[str, Any], path: list[str], value: Any) -> None:
    node: Any = data
    for depth, part in enumerate(path[:-1]):
        where = ".".join(path[: depth + 1])
        if isinstance(node, list):
            node = node[list_index(node, part, where)]
        else:
            node = node.setdefault(part, {})
        if not isinstance(node, (dict, list)):
            raise SpecError(f"--set {'.'.join(path)}: {where} is a value, not a table")
    last = path[-1]
    if isinstance(node, list):
        node[list_index(node, last, ".".join(path))] = value
    else:
        node[last] = value


def list_index(node: list, part: str, where: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise SpecError(f"--set {where}: index {part!r} is not in a list of {len(node)} items")
    return int(part)


def load_spec(path: Path | str, overrides: list[str] = ()) -> Spec:
    path = Path(path)
    data = read_toml(path)
    for text in overrides:
        apply_override(data, *parse_override(text))
    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(f"{path}: invalid spec", details=format_validation_errors(exc)) from None


def format_validation_errors(exc: ValidationError, prefix: str = "") -> list[str]:
    lines = []
    for err in exc.errors():
        loc = prefix + format_loc(err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        elif "input" in err and err["type"] not in ("missing",) and not isinstance(err["input"], (dict, list)):
            message = f"{message} (got {err['input']!r})"
        lines.append(f"{loc}: {message}" if loc else message)
    return lines


def format_loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# ---------------------------------------------------------------------------- resolving


@dataclass
class PlannedRun:
    run_id: str
    label: str
    config: dict[str, Any]
    reference: dict[str, float] = field(default_factory=dict)

    @property
    def seed(self) -> int:
        return self.config["seed"]

    def describe(self) -> str:
        c = self.config
        return f"{c['dataset']['name']} / {c['model']['name']} / {self.label} / seed {c['seed']}"


@dataclass
class Plan:
    spec: Spec
    runs: list[PlannedRun]


def library_versions() -> dict[str, str]:
    import numpy
    import torch

    return {"regsuite": __version__, "python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__}


def run_id_of(config: dict[str, Any]) -> str:
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def resolve(spec: Spec, registry: Registry) -> Plan:
    """Validate every plugin reference against the registry and expand the grid."""
    errors: list[str] = []
    task = resolve_ref(registry, "task", spec.task, "task", errors)
    datasets = [resolve_ref(registry, "dataset", ref, where, errors) for ref, where in refs(spec, "dataset")]
    models = [resolve_ref(registry, "model", ref, where, errors) for ref, where in refs(spec, "model")]
    sets = [
        [resolve_ref(registry, "regularizer", ref, f"sets[{i}].regularizers[{j}]", errors) for j, ref in enumerate(s.regularizers)]
        for i, s in enumerate(spec.sets)
    ]
    if not errors:
        check_compatibility(registry, spec, task, datasets, models, sets, errors)
        check_claim_metrics(registry, spec, errors)
    if errors:
        raise SpecError(f"spec {spec.name!r} is invalid", details=errors)

    versions = library_versions()
    training = spec.training.model_dump()
    runs = []
    for dataset in datasets:
        dataset["fingerprint"] = fingerprint_of(registry, dataset)
        for model in models:
            for regset, regs in zip(spec.sets, sets):
                for seed in spec.seeds:
                    plugins = {f"{kind}:{ref['name']}": registry.get(kind, ref["name"]).provider
                               for kind, ref in [("task", task), ("dataset", dataset), ("model", model)]
                               + [("regularizer", r) for r in regs]}
                    config = {
                        "task": task, "dataset": dataset, "model": model, "regularizers": regs,
                        "training": training, "seed": seed,
                        "versions": {**versions, "plugins": plugins},
                    }
                    runs.append(PlannedRun(run_id_of(run_key_view(registry, config)), regset.label, config,
                                           dict(regset.reference)))
    return Plan(spec, runs)


def fingerprint_of(registry: Registry, dataset: dict[str, Any]) -> str:
    """The dataset plugin's fingerprint of the data these parameters load (see
    ``api.Dataset.fingerprint``); remembered per parameters for the life of the process."""
    key = json.dumps(dataset, sort_keys=True)
    if key not in FINGERPRINTS:
        cls = registry.cls("dataset", dataset["name"])
        FINGERPRINTS[key] = cls(cls.Params.model_validate(dataset["params"])).fingerprint()
    return FINGERPRINTS[key]


FINGERPRINTS: dict[str, str] = {}


def run_key_view(registry: Registry, config: dict[str, Any]) -> dict[str, Any]:
    """What a run's hash covers: the config without the parameters that only say where things
    are (api.NOT_IN_RUN_KEY), or that hold the default of a later addition
    (api.KEYED_UNLESS_DEFAULT); the dataset's fingerprint stands for its data."""

    def keyed(kind: str, ref: dict[str, Any]) -> dict[str, Any]:
        params = run_key_params(registry.cls(kind, ref["name"]).Params, ref["params"])
        return {"name": ref["name"], "params": params}

    view = dict(config)
    for kind in ("task", "dataset", "model"):
        view[kind] = keyed(kind, config[kind])
    if "fingerprint" in config["dataset"]:
        view["dataset"]["fingerprint"] = config["dataset"]["fingerprint"]
    view["regularizers"] = [keyed("regularizer", r) for r in config["regularizers"]]
    view["training"] = run_key_params(TrainingConfig, config["training"])
    return view


def refs(spec: Spec, kind: str) -> list[tuple[PluginRef, str]]:
    single, many = getattr(spec, kind), getattr(spec, f"{kind}s")
    if many is None:
        return [(single, kind)]
    return [(ref, f"{kind}s[{i}]") for i, ref in enumerate(many)]


def resolve_ref(registry: Registry, kind: str, ref: PluginRef, where: str, errors: list[str]) -> dict[str, Any]:
    from regsuite.errors import RegsuiteError

    try:
        cls = registry.cls(kind, ref.name)
    except RegsuiteError as exc:
        errors.append(f"{where}.name: {exc.message}")
        return {"name": ref.name, "params": ref.params}
    try:
        params = cls.Params.model_validate(ref.params)
    except ValidationError as exc:
        errors.extend(format_validation_errors(exc, prefix=f"{where}."))
        return {"name": ref.name, "params": ref.params}
    return {"name": ref.name, "params": params.model_dump(mode="json")}


def check_claim_metrics(registry: Registry, spec: Spec, errors: list[str]) -> None:
    task_metrics = [metric.key for metric in registry.cls("task", spec.task.name).metrics]
    known = [*RUN_METRICS, *(f"{split}_{key}" for key in task_metrics for split in ("train", "val", "test"))]
    for i, claim in enumerate(spec.claims):
        if claim.metric not in known:
            errors.append(f"claims[{i}].metric: unknown metric {claim.metric!r} for task {spec.task.name!r}; "
                          f"known: {', '.join(known)}")


def check_compatibility(registry, spec, task, datasets, models, sets, errors) -> None:
    task_name = task["name"]
    for dataset, (_, where) in zip(datasets, refs(spec, "dataset")):
        serves = registry.cls("dataset", dataset["name"]).task
        if serves != task_name:
            errors.append(f"{where}: dataset {dataset['name']!r} is for task {serves!r}, but the spec's task is {task_name!r}")
    for model, (_, where) in zip(models, refs(spec, "model")):
        cls = registry.cls("model", model["name"])
        if task_name not in cls.tasks:
            errors.append(f"{where}: model {model['name']!r} does not support task {task_name!r} (it supports {', '.join(sorted(cls.tasks))})")
    for i, regs in enumerate(sets):
        check_set(registry, spec, task_name, models, i, regs, errors)


def check_set(registry, spec, task_name, models, i, regs, errors) -> None:
    where = f"sets[{i}] ({spec.sets[i].label!r})"
    names = [r["name"] for r in regs]
    claimed: dict[str, str] = {}
    for j, name in enumerate(names):
        cls = registry.cls("regularizer", name)
        if names.count(name) > 1 and names.index(name) == j:
            errors.append(f"{where}: regularizer {name!r} appears more than once")
        if cls.tasks is not None and task_name not in cls.tasks:
            errors.append(f"{where}: regularizer {name!r} does not support task {task_name!r} (it supports {', '.join(sorted(cls.tasks))})")
        for other in cls.conflicts_with & set(names):
            errors.append(f"{where}: regularizers {name!r} and {other!r} cannot be combined")
        for slot in cls.claims_slots:
            if slot in claimed and claimed[slot] != name:
                errors.append(f"{where}: regularizers {claimed[slot]!r} and {name!r} both fill the model's {slot!r} slots; use one of them")
            claimed.setdefault(slot, name)
            for model in models:
                offered = registry.cls("model", model["name"]).slots
                if slot not in offered:
                    errors.append(f"{where}: regularizer {name!r} needs {slot!r} slots, which model {model['name']!r} does not have")
