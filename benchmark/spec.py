"""Spec files: TOML in, a validated grid of fully resolved runs out.

The spec's tables are the models below: ``[training]`` (:class:`TrainingConfig`, part of every
run's key), ``[execution]`` (:class:`ExecutionConfig`, how the grid runs, never part of a run),
``[[sets]]`` and ``[[claims]]``. :func:`resolve` expands a spec into its runs with the plugins of
a registry.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import platform
import stat
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_serializer, model_validator

from regsuite import __version__, selection, sweeps
from regsuite.api import KEYED_UNLESS_DEFAULT, NoBooleanNumbers, run_key_params
from regsuite.errors import RegsuiteError, SpecError, at_most
from regsuite.selection import SelectionConfig
from regsuite.vocabulary import FORMS, RUN_METRICS, SPEC_NAME_MAX_LENGTH, SPEC_NAME_PATTERN, referenced_labels

if TYPE_CHECKING:
    from regsuite.registry import Registry

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class Strict(NoBooleanNumbers):
    model_config = ConfigDict(extra="forbid")


def drop_when_unused(*fields: str):
    """A serializer leaving out ``fields`` while they hold nothing (None, [] or {}): fields
    added with sweeps, so that a spec without sweeps is stored exactly as before them."""

    @model_serializer(mode="wrap")
    def serialize(self, handler):
        data = handler(self)
        for name in fields:
            if name in data and data[name] in (None, [], {}):
                del data[name]
        return data

    return serialize


class PluginRef(BaseModel):
    """``{ name = "dropout", p = 0.25 }``: a plugin name plus its parameters."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1)

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class TrainingConfig(Strict):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # lr = inf is no learning rate
    epochs: int | None = Field(10, ge=1, description="epochs per run (not with steps)")
    steps: int | None = Field(
        None, ge=1, json_schema_extra=KEYED_UNLESS_DEFAULT,
        description="train this many optimizer steps instead of a number of epochs, rounded up to whole epochs "
                    "(not with epochs): every training-set size then gets the same steps",
    )
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
    channels_last: bool = Field(
        False, json_schema_extra=KEYED_UNLESS_DEFAULT,
        description="channels_last memory format for the model and its 4-D inputs (convolutional models)",
    )
    compile: bool | Literal["default", "reduce-overhead", "max-autotune"] = Field(
        False, json_schema_extra=KEYED_UNLESS_DEFAULT,
        description='torch.compile the model with inductor: true (= "default") or a mode ("reduce-overhead": '
                    'CUDA graphs, for small models on a GPU); the first epoch pays the compile',
    )

    _serialize = drop_when_unused("steps")  # a spec that does not use steps is stored as before them

    @model_validator(mode="before")
    @classmethod
    def steps_replace_epochs(cls, data: Any) -> Any:
        """``steps`` alone: the run's length is steps, so the default epochs do not apply."""
        if isinstance(data, dict) and data.get("steps") is not None and "epochs" not in data:
            return {**data, "epochs": None}
        return data

    @model_validator(mode="after")
    def one_length(self) -> "TrainingConfig":
        if self.epochs is not None and self.steps is not None:
            raise ValueError("give epochs or steps, not both: steps trains that many optimizer steps, in whole epochs; "
                             "remove the other from [training]")
        if self.epochs is None and self.steps is None:
            raise ValueError("give epochs (passes over the training set) or steps (optimizer steps)")
        return self


RAY_ONLY = ("address", "num_gpus", "num_cpus")


class ExecutionConfig(Strict):
    """The ``[execution]`` table (and the flags of ``regsuite run``): where and how many runs
    train at once, never what a run computes, so it is not part of the resolved run config and
    does not change run ids. :mod:`regsuite.execution` carries it out."""

    executor: Literal["local", "ray"] = Field("local", description="local worker processes, or tasks on a Ray cluster")
    workers: int | None = Field(
        None, ge=0,
        description="runs at once (local default: visible GPUs × runs_per_gpu, or 1 without a GPU; "
                    "0 = train in this process); ray: most runs in flight (default: what the cluster holds)",
    )
    runs_per_gpu: int = Field(1, ge=1, description="local: runs sharing each GPU (small models leave a GPU idle alone)")
    threads: int | None = Field(None, ge=1, description="local: torch threads per run (default: cores // runs at once)")
    timeout: float | None = Field(None, gt=0, description="seconds one run attempt may take before it is killed and recorded as failed")
    keep_checkpoints: bool = Field(False, description="keep the per-epoch checkpoint of finished runs")
    reuse_workers: bool = Field(True, description="local: a worker process trains its lane's runs one after another "
                                "(false: a fresh process per run); a run that fails always ends its worker")
    address: str | None = Field(None, description='ray: cluster address ("auto", "host:6379"); default: start a local Ray instance')
    num_gpus: float | None = Field(None, ge=0, description="ray: GPUs per run, fractional allowed (default: 1 if the cluster has GPUs, else 0)")
    num_cpus: float | None = Field(None, gt=0, description="ray: CPUs per run (default 1)")

    @model_validator(mode="after")
    def ray_keys_need_ray(self) -> "ExecutionConfig":
        given = [key for key in RAY_ONLY if getattr(self, key) is not None]
        if self.executor == "local" and given:
            raise ValueError(f"{', '.join(given)} only apply to executor = \"ray\" (add --executor ray)")
        if self.executor == "ray" and self.threads is not None:
            raise ValueError("threads applies to the local executor; on Ray a run gets num_cpus threads")
        if self.executor == "local" and self.workers == 0 and self.timeout is not None:
            raise ValueError("timeout needs worker processes (workers >= 1): a run in this process cannot be killed")
        return self

    def with_overrides(self, **flags: Any) -> "ExecutionConfig":
        """These settings with the command line's flags (None = not given) on top, validated:
        a SpecError lists what is wrong, as for the spec's own table."""
        merged = self.model_dump(exclude_unset=True)
        merged.update({key: value for key, value in flags.items() if value is not None})
        try:
            return ExecutionConfig.model_validate(merged)
        except ValidationError as exc:
            raise SpecError("invalid execution settings", details=format_validation_errors(exc, prefix="execution.")) from None


#: Seeds go to torch's generators (which take 0 … 2**64 - 1, and map a negative seed onto one of
#: those, so -1 and 2**64 - 2 would be the same run) and to the results store's SQLite INTEGER
#: (-2**63 … 2**63 - 1); the run's data and batch generators take ``seed + 1`` and ``seed + 2``.
SEED_LIMIT = 2**63


def check_seed(value: Any) -> int:
    if type(value) is not int or not 0 <= value < SEED_LIMIT:  # not bool, float or str: TOML has integers
        raise ValueError("a seed must be an integer from 0 to 2**63 - 1 (what torch's generators "
                         "and the results store's SQLite INTEGER both hold)")
    return value


Seed = Annotated[int, BeforeValidator(check_seed)]


class RegularizerSet(Strict):
    label: str = Field(min_length=1, max_length=120)
    regularizers: list[PluginRef] = Field(default_factory=list)
    reference: dict[str, float] = Field(
        default_factory=dict, description="published values shown beside measured ones"
    )
    #: Written by sweep expansion: the swept values this set stands for, by spec path.
    swept: dict[str, Any] = Field(default_factory=dict)
    #: Written by [selection] expansion: the label of the set this one is a candidate of.
    tuned_from: str | None = None

    _serialize = drop_when_unused("swept", "tuned_from")


class SweepAxis(Strict):
    """One swept value of the spec (written by :mod:`regsuite.sweeps`)."""

    path: str
    values: list[Any]


class Claim(Strict):
    """A claim about the rows, judged from paired seeds (see :mod:`regsuite.claims`)."""

    text: str = Field(min_length=1, max_length=300, description="the claim in words")
    metric: str = Field("val_loss", min_length=1, description="val_loss, train_loss, gap, val_accuracy, val_rise, …")
    row: str | list[str] = Field(description='a set label, a list of them, or "all"')
    lower_than: str | None = Field(None, description="the row's metric is lower than this row's")
    higher_than: str | None = None
    lowest_of: str | list[str] | None = Field(None, description='lowest of these rows, or of "all"')
    highest_of: str | list[str] | None = None
    below: float | None = Field(None, allow_inf_nan=False, description="the row's metric is below this number")
    above: float | None = Field(None, allow_inf_nan=False)

    @model_validator(mode="after")
    def one_form(self) -> "Claim":
        given = [key for key in FORMS if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(FORMS)} (got {', '.join(given) or 'none'})")
        if isinstance(self.row, list) and not self.row:
            raise ValueError("row is an empty list")
        return self


class Spec(Strict):
    name: str = Field(pattern=SPEC_NAME_PATTERN, max_length=SPEC_NAME_MAX_LENGTH)
    description: str = ""
    task: PluginRef
    dataset: PluginRef | None = None
    datasets: list[PluginRef] | None = None
    model: PluginRef | None = None
    models: list[PluginRef] | None = None
    seeds: list[Seed] = Field(default_factory=lambda: [0], min_length=1)
    baseline: str | None = Field(None, description='label of the baseline set (default: "none" if present)')
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    trainings: list[TrainingConfig] | None = Field(None, description="several training settings, each a grid dimension")
    sets: list[RegularizerSet] = Field(min_length=1)
    # Where each entry of an expanded sweep came from (sweeps.Origins), for error messages.
    _origins: dict[str, Any] = PrivateAttr(default_factory=dict)
    claims: list[Claim] = Field(default_factory=list, description="claims about the rows, judged in the leaderboard")
    # How the grid runs (workers, GPUs, Ray): never part of a run's config or id.
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    #: The axes of the spec's sweeps (written by :mod:`regsuite.sweeps`; empty without sweeps).
    sweeps: list[SweepAxis] = Field(default_factory=list)
    #: A tuned comparison (:mod:`regsuite.selection`): each set chooses among its candidates.
    selection: SelectionConfig | None = None

    _serialize = drop_when_unused("trainings", "sweeps", "selection")

    @field_validator("task", mode="before")
    @classmethod
    def task_from_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("seeds")
    @classmethod
    def unique_seeds(cls, seeds: list[int]) -> list[int]:
        repeated = sorted(seed for seed, n in Counter(seeds).items() if n > 1)
        if repeated:
            raise ValueError(f"seeds must be unique; repeated: {', '.join(map(str, repeated))}")
        return seeds

    @model_validator(mode="after")
    def one_form_each(self) -> "Spec":
        if self.trainings is not None:
            if not self.trainings:
                raise ValueError("'trainings' is empty: the grid would have no runs")
            if "training" in self.model_fields_set:
                raise ValueError("give exactly one of 'training' (a table) or 'trainings' (a list of tables)")
        for single, many in (("dataset", "datasets"), ("model", "models")):
            if getattr(self, many) == []:
                raise ValueError(f"'{many}' is empty: the grid would have no runs")
            if (getattr(self, single) is None) == (getattr(self, many) is None):
                raise ValueError(f"give exactly one of '{single}' (a table) or '{many}' (a list of tables)")
        # Linear in the number of sets: a spec may generate thousands of them.
        labels = [s.label for s in self.sets]
        duplicates = sorted(label for label, n in Counter(labels).items() if n > 1)
        if duplicates:
            raise ValueError(f"set labels must be unique; repeated: {', '.join(duplicates)}")
        known = set(labels)
        if self.selection is not None:  # a tuned set's label names its chosen candidate
            known |= {s.tuned_from for s in self.sets if s.tuned_from is not None}
        elif any(s.tuned_from is not None for s in self.sets):
            raise ValueError("sets[].tuned_from is written by [selection] expansion")
        if self.baseline is not None and self.baseline not in known:
            raise ValueError(f"baseline {self.baseline!r} is not a set label ({', '.join(labels)})")
        for i, claim in enumerate(self.claims):
            unknown = [name for name in referenced_labels(claim.model_dump()) if name not in known]
            if unknown:
                raise ValueError(f"claims[{i}] ({claim.text!r}) names rows that are not set labels: "
                                 f"{', '.join(map(repr, unknown))} (the labels are {', '.join(map(repr, labels))})")
        return self

    def refs(self, kind: Literal["dataset", "model"]) -> list[tuple[PluginRef, str]]:
        """The grid's datasets (or models), each with where the spec gives it: ``dataset``
        for the single table, ``datasets[i]`` for an entry of the list."""
        single, many = getattr(self, kind), getattr(self, f"{kind}s")
        if many is None:
            return [(single, kind)]
        return [(ref, f"{kind}s[{i}]") for i, ref in enumerate(many)]

    def training_settings(self) -> list[tuple[TrainingConfig, str]]:
        """The grid's training settings, each with where the spec gives it."""
        if self.trainings is None:
            return [(self.training, "training")]
        return [(t, f"trainings[{i}]") for i, t in enumerate(self.trainings)]

    @property
    def baseline_label(self) -> str | None:
        if self.baseline is not None:
            return self.baseline
        return "none" if any(s.label == "none" or s.tuned_from == "none" for s in self.sets) else None


# ---------------------------------------------------------------------------- loading


MAX_SPEC_BYTES = 64 << 20  # a spec is a few kilobytes; 20,000 generated sets are 1 MB


def read_toml(path: Path) -> dict[str, Any]:
    """The table of a spec file: UTF-8 TOML (a leading byte-order mark is allowed, as editors on
    Windows write one). Anything else is one SpecError naming the cause."""
    where = str(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise SpecError(f"spec file not found: {path}", hint="check the path; specs live in specs/") from None
    except OSError as exc:
        raise SpecError(f"cannot read the spec file {path}: {exc.strerror or exc}", hint="check the path and its permissions") from None
    if stat.S_ISDIR(st.st_mode):
        raise SpecError(f"{path} is a folder, not a spec file", hint="give the path of a .toml file; the specs that ship are in specs/")
    if not stat.S_ISREG(st.st_mode):
        raise SpecError(f"{path} is not a regular file (a device, a pipe or a socket), not a spec file",
                        hint="give the path of a .toml file")
    if st.st_size > MAX_SPEC_BYTES:
        raise SpecError(f"{path} is {st.st_size:,} bytes, more than the {MAX_SPEC_BYTES:,} a spec may have",
                        hint="a spec is a short TOML text; check that the path names the spec, not a data file")
    try:
        with open(path, "rb") as file:
            raw = file.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise SpecError(f"cannot read the spec file {path}: {exc.strerror or exc}", hint="check the path and its permissions") from None
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError(f"{path} is more than the {MAX_SPEC_BYTES:,} bytes a spec may have",
                        hint="a spec is a short TOML text; check that the path names the spec, not a data file")
    return parse_toml(raw, where)


def parse_toml(raw: bytes, where: str) -> dict[str, Any]:
    if b"\0" in raw:
        raise SpecError(f"{where} is a binary file, not a TOML spec (a NUL byte at byte {raw.index(0):,}; TOML is text)",
                        hint="give the path of the spec's .toml file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError(f"{where} is not UTF-8 text: byte 0x{raw[exc.start]:02x} at line {line}, column {column} "
                        "is not UTF-8 (TOML files are UTF-8)",
                        hint="save the file as UTF-8; one saved as Latin-1 or Windows-1252 converts with "
                             "iconv -f cp1252 -t utf-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{where} is not valid TOML: {exc}") from None
    except RecursionError:
        raise SpecError(f"{where} nests arrays or tables too deeply for the TOML parser",
                        hint="a spec needs a few levels of nesting; look for runaway brackets") from None


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
    except RecursionError:
        raise SpecError(f"--set {key}=…: the value nests arrays or tables too deeply for the TOML parser",
                        hint="a spec value needs a few levels of nesting; look for runaway brackets") from None
    return override_path(key), value


def override_path(key: str) -> list[str]:
    """``sets.1.regularizers.0.beta`` or, as error messages print it, ``sets[1].regularizers[0].beta``."""
    parts = key.replace("[", ".").replace("]", "").split(".")
    if any(not part.strip() for part in parts):
        raise SpecError(f"--set {key}=…: the key has an empty part",
                        hint="write keys as training.epochs or sets[1].regularizers[0].p")
    return [part.strip() for part in parts]


#: A run's length is given one way or the other; setting one from the command line drops the other.
RUN_LENGTHS = {"epochs": "steps", "steps": "epochs"}


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
        if path[:-1] == ["training"] and last in RUN_LENGTHS:
            node.pop(RUN_LENGTHS[last], None)  # --set training.steps=400 trains in steps instead of epochs



def list_index(node: list, part: str, where: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise SpecError(f"--set {where}: index {part!r} is not in a list of {len(node)} items")
    return int(part)


def load_spec(path: Path | str, overrides: list[str] = ()) -> Spec:
    path = Path(path)
    data = read_toml(path)
    for text in overrides:
        apply_override(data, *parse_override(text))
    if "sweeps" in data or any(isinstance(s, dict) and "swept" in s for s in data.get("sets") or []):
        raise SpecError(f"{path}: 'sweeps' and a set's 'swept' are written by regsuite",
                        hint="write { sweep = [a, b, c] } at the value to sweep, e.g. weight = { sweep = [1e-4, 1e-3] }")
    if any(isinstance(s, dict) and "tuned_from" in s for s in data.get("sets") or []):
        raise SpecError(f"{path}: a set's 'tuned_from' is written by regsuite ([selection] expansion)",
                        hint="write { range = [lo, hi] } at the value to tune, with a [selection] table")
    tuned_axes: list[dict[str, Any]] = []
    selection.check_ranges_placed(data, "selection" in data)
    if "selection" in data:
        try:
            config = SelectionConfig.model_validate(data["selection"])
        except ValidationError as exc:
            raise SpecError(f"{path}: invalid [selection]", details=format_validation_errors(exc, prefix="selection.")) from None
        data, tuned_axes = selection.expand(data, config)
    origins: sweeps.Origins = {}
    data = sweeps.expand(data, origins)
    if tuned_axes:
        data = {**data, "sweeps": [*data.get("sweeps", []), *tuned_axes]}
    try:
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        details = [sweeps.relocate(line, origins) for line in format_validation_errors(exc)]
        raise SpecError(f"{path}: invalid spec", details=details) from None
    spec._origins = origins
    return spec


def format_validation_errors(exc: ValidationError, prefix: str = "", known: list[str] | None = None) -> list[str]:
    """One line per error: ``where: what`` (``prefix`` + the error's location; an error of the
    whole model is at ``prefix`` itself), ``unknown key`` for extra keys (with a did-you-mean
    among ``known`` names), the value given."""
    lines = []
    for err in exc.errors():
        loc = prefix + format_loc(err["loc"]) if err["loc"] else prefix.removesuffix(".")
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key" + did_you_mean(str(err["loc"][-1]) if err["loc"] else "", known or [])
        elif "input" in err and err["type"] not in ("missing",) and not isinstance(err["input"], (dict, list)):
            message = f"{message} (got {err['input']!r})"
        lines.append(f"{loc}: {message}" if loc else message)
    return lines


def did_you_mean(name: str, known: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f" (known: {', '.join(known)})" if known else ""


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
    #: The spec file's whole grid when ``--set`` picked a part of it (a seed, one fraction): the
    #: store records the whole as the spec, so its leaderboard gathers the parts (see whole_plan).
    whole: "Plan | None" = None


def whole_plan(path: Path | str, overrides: list[str], part: Plan, registry: Registry) -> Plan | None:
    """The plan of the spec file at ``path`` as written, when ``overrides`` only pick part of
    its grid (they set ``seeds`` or axes the file sweeps) and ``part``, their plan, trains only
    some of its runs. None otherwise: an override of anything else may change what runs compute
    or where their data is (the file alone might then start a download), and the file alone
    may not resolve at all."""
    try:
        spec = load_spec(path)
        axes = [override_path(axis.path) for axis in spec.sweeps] + [["seeds"]]
        if any(parse_override(text)[0] not in axes for text in overrides):
            return None
        whole = resolve(spec, registry)
    except RegsuiteError:
        return None
    part_ids = {run.run_id for run in part.runs}
    return whole if part_ids < {run.run_id for run in whole.runs} else None


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
    datasets = [resolve_ref(registry, "dataset", ref, where, errors) for ref, where in spec.refs("dataset")]
    models = [resolve_ref(registry, "model", ref, where, errors) for ref, where in spec.refs("model")]
    sets = [
        [resolve_ref(registry, "regularizer", ref, f"sets[{i}].regularizers[{j}]", errors) for j, ref in enumerate(s.regularizers)]
        for i, s in enumerate(spec.sets)
    ]
    if not errors:
        check_compatibility(registry, spec, task, datasets, models, sets, errors)
        check_claim_metrics(registry, spec, errors)
    if errors:
        raise SpecError(f"spec {spec.name!r} is invalid", details=[sweeps.relocate(line, spec._origins) for line in errors])

    versions = library_versions()
    held_out = spec.selection.run_config() if spec.selection is not None else None
    trainings = [training.model_dump() for training, _ in spec.training_settings()]
    runs = []
    first_entries: dict[str, tuple[int, int, int, int]] = {}  # run id → (dataset, model, training, set) that planned it first
    clashes: dict[frozenset, PlannedRun] = {}
    memo: dict = {}
    for d, dataset in enumerate(datasets):
        dataset["fingerprint"] = fingerprint_of(registry, dataset)
        for (m, model), (t, training) in itertools.product(enumerate(models), enumerate(trainings)):
            for s, (regset, regs) in enumerate(zip(spec.sets, sets)):
                for seed in spec.seeds:
                    used = {f"{kind}:{ref['name']}": registry.get(kind, ref["name"])
                            for kind, ref in [("task", task), ("dataset", dataset), ("model", model)]
                            + [("regularizer", r) for r in regs]}
                    plugins = {key: entry.provider for key, entry in used.items()}
                    # A third-party plugin's code is part of the key; regsuite's version stands
                    # for the built-ins' (so a built-in-only run's config has no plugin_code).
                    code = {key: entry.code for key, entry in used.items() if entry.code is not None}
                    config = {
                        "task": task, "dataset": dataset, "model": model, "regularizers": regs,
                        "training": training, "seed": seed,
                        "versions": {**versions, "plugins": plugins, **({"plugin_code": code} if code else {})},
                    }
                    if held_out is not None:  # trained on train minus the selection split: another run
                        config["selection"] = held_out
                    planned = PlannedRun(run_id_of(run_key_view(registry, config, memo)), regset.label, config,
                                         dict(regset.reference))
                    first = first_entries.setdefault(planned.run_id, (d, m, t, s))
                    if first != (d, m, t, s):
                        clash = frozenset((dim, i, j) for dim, i, j in zip("dmts", (d, m, t, s), first) if i != j)
                        clashes.setdefault(clash, planned)
                    runs.append(planned)
    if clashes:
        raise SpecError(f"spec {spec.name!r} is invalid", details=describe_clashes(spec, clashes))
    return Plan(spec, runs)


MAX_CLASHES_SHOWN = 10


def describe_clashes(spec: Spec, clashes: dict[frozenset, PlannedRun]) -> list[str]:
    """One line per pair of grid entries that plan the same runs (the store keys runs by id:
    two rows of the leaderboard cannot share one). A clash of two dimensions at once that
    follows from clashes of each alone (datasets [a, a] × models [b, b]) is not repeated."""
    names = {"d": [(where, ref.name) for ref, where in spec.refs("dataset")],
             "m": [(where, ref.name) for ref, where in spec.refs("model")],
             "t": [(where, "training") for _, where in spec.training_settings()],
             "s": [(f"sets[{i}]", s.label) for i, s in enumerate(spec.sets)]}
    singles = {next(iter(clash)) for clash in clashes if len(clash) == 1}
    lines = []
    for clash, planned in sorted(clashes.items(), key=lambda item: sorted(("dmts".index(d), i, j) for d, i, j in item[0])):
        if len(clash) > 1 and clash <= singles:
            continue
        parts = sorted(clash, key=lambda part: "dmts".index(part[0]))
        later = " × ".join(f"{names[dim][i][0]} ({names[dim][i][1]!r})" for dim, i, _ in parts)
        earlier = " × ".join(f"{names[dim][j][0]} ({names[dim][j][1]!r})" for dim, _, j in parts)
        lines.append(f"{later} and {earlier} resolve to the same runs, once every default is filled in "
                     f"(e.g. run {planned.run_id[:12]}: {planned.describe()}); remove one")
    return at_most(lines, MAX_CLASHES_SHOWN, "more such pairs")


def fingerprint_of(registry: Registry, dataset: dict[str, Any]) -> str:
    """The dataset plugin's fingerprint of the data these parameters load (see
    ``api.Dataset.fingerprint``); computed once per dataset of a grid."""
    cls = registry.cls("dataset", dataset["name"])
    return cls(cls.Params.model_validate(dataset["params"])).fingerprint()


def run_key_view(registry: Registry, config: dict[str, Any], memo: dict | None = None) -> dict[str, Any]:
    """What a run's hash covers: the config without the parameters that only say where things
    are (api.NOT_IN_RUN_KEY), or that hold the default of a later addition
    (api.KEYED_UNLESS_DEFAULT); the dataset's fingerprint stands for its data. ``memo`` keeps
    the keyed form of each part a grid shares between its runs (the same objects), so that
    a grid of 100,000 runs computes each once."""
    memo = {} if memo is None else memo

    def keyed(kind: str, ref: dict[str, Any]) -> dict[str, Any]:
        key = (kind, id(ref))
        if key not in memo:
            params = run_key_params(registry.cls(kind, ref["name"]).Params, ref["params"])
            view = {"name": ref["name"], "params": params}
            if kind == "dataset" and "fingerprint" in ref:
                view["fingerprint"] = ref["fingerprint"]
            memo[key] = (ref, view)  # the ref is kept so that its id is not reused
        return memo[key][1]

    view = dict(config)
    for kind in ("task", "dataset", "model"):
        view[kind] = keyed(kind, config[kind])
    view["regularizers"] = [keyed("regularizer", r) for r in config["regularizers"]]
    training_key = ("training", id(config["training"]))
    if training_key not in memo:
        memo[training_key] = (config["training"], run_key_params(TrainingConfig, config["training"]))
    view["training"] = memo[training_key][1]
    return view


def run_id_without_plugin_code(registry: Registry, config: dict[str, Any]) -> str:
    """The run id ``config`` would have if third-party plugins' code were not part of the key:
    two runs with the same such id differ at most in plugin code (``regsuite validate`` shows
    planned runs as "code changed" when the store holds one like them but for the code)."""
    view = run_key_view(registry, config)
    view["versions"] = {k: v for k, v in view["versions"].items() if k != "plugin_code"}
    return run_id_of(view)


def resolve_ref(registry: Registry, kind: str, ref: PluginRef, where: str, errors: list[str]) -> dict[str, Any]:
    try:
        cls = registry.cls(kind, ref.name)
    except RegsuiteError as exc:
        errors.append(f"{where}.name: {exc.message}")
        return {"name": ref.name, "params": ref.params}
    try:
        params = cls.Params.model_validate(ref.params)
    except ValidationError as exc:
        errors.extend(format_validation_errors(exc, prefix=f"{where}.", known=list(cls.Params.model_fields)))
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
    for dataset, (_, where) in zip(datasets, spec.refs("dataset")):
        serves = registry.cls("dataset", dataset["name"]).task
        if serves != task_name:
            errors.append(f"{where}: dataset {dataset['name']!r} is for task {serves!r}, but the spec's task is {task_name!r}")
    for model, (_, where) in zip(models, spec.refs("model")):
        cls = registry.cls("model", model["name"])
        if task_name not in cls.tasks:
            errors.append(f"{where}: model {model['name']!r} does not support task {task_name!r} (it supports {', '.join(sorted(cls.tasks))})")
    for i, regs in enumerate(sets):
        check_set(registry, spec, task_name, models, i, regs, errors)


def check_set(registry, spec, task_name, models, i, regs, errors) -> None:
    where = f"sets[{i}] ({spec.sets[i].label!r})"
    names = [r["name"] for r in regs]
    counts, present = Counter(names), set(names)
    claimed: dict[str, str] = {}
    reported: set[str] = set()
    for name in names:
        cls = registry.cls("regularizer", name)
        if counts[name] > 1 and name not in reported:
            reported.add(name)
            errors.append(f"{where}: regularizer {name!r} appears more than once")
        if cls.tasks is not None and task_name not in cls.tasks:
            errors.append(f"{where}: regularizer {name!r} does not support task {task_name!r} (it supports {', '.join(sorted(cls.tasks))})")
        for other in cls.conflicts_with & present:
            errors.append(f"{where}: regularizers {name!r} and {other!r} cannot be combined")
        for slot in cls.claims_slots:
            if slot in claimed and claimed[slot] != name:
                errors.append(f"{where}: regularizers {claimed[slot]!r} and {name!r} both fill the model's {slot!r} slots; use one of them")
            claimed.setdefault(slot, name)
            for model in models:
                offered = registry.cls("model", model["name"]).slots
                if slot not in offered:
                    errors.append(f"{where}: regularizer {name!r} needs {slot!r} slots, which model {model['name']!r} does not have")
