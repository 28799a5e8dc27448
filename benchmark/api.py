"""Base classes and data types that plugins build on.

Every plugin class has a ``name``, a one-line docstring that ``regsuite plugins`` shows, and
a pydantic ``Params`` model (``extra="forbid"``) holding its parameters with defaults.
An instance is created per run as ``cls(params)``.

Training (see :mod:`regsuite.train`) calls the hooks in this order::

    data = dataset.load()                          # uint8 images / token ids, in memory
    task.setup(data)
    reg.setup(data)                                # each regularizer: read what it needs (unk index)
    data.train = reg.transform_dataset(data.train, generator)   # each regularizer, in set order
    module = model.build(data.info)
    module = reg.configure_model(module)           # e.g. fill the model's dropout slots
    groups = reg.param_groups(module, groups)      # optimizer parameter groups
    loss_fn = reg.wrap_loss(task.loss)             # e.g. label smoothing, mixup targets
    each epoch, each batch:
        batch = task.prepare_batch(raw_batch)      # on the training device
        batch = reg.transform_batch(batch, generator)  # online augmentation, word dropout
        outputs = module(batch.inputs)
        data_loss = loss_fn(outputs, batch)        # reported as train_loss
        penalty = sum(reg.penalty(module))         # e.g. L2 (parameters only)
        penalty += sum(reg.output_penalty(outputs, batch))  # e.g. confidence penalty
        (data_loss + penalty).backward()           # penalties reported apart, as train_penalty
        optimizer.step()
        reg.after_step(module)                     # e.g. max-norm, under torch.no_grad()
    stop = any(reg.after_epoch(epoch, metrics))    # e.g. early stopping

``train_loss`` is always the data loss alone (what ``loss_fn`` returns), so that runs with and
without a penalty compare on the same quantity: a term that is not the data loss belongs in
``penalty`` or ``output_penalty``, never in ``wrap_loss``.
"""
from __future__ import annotations

import functools
import types
import typing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from torch import Tensor, nn

from regsuite.errors import DataError


class NoBooleanNumbers(BaseModel):
    """A number field refuses ``true`` and ``false``: pydantic would take them as 1 and 0, so a
    slip such as ``weight = true`` would silently train with an L2 weight of 1."""

    @field_validator("*", mode="before")
    @classmethod
    def numbers_are_not_booleans(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name in number_fields(cls):
            raise ValueError("a number is expected here, not a boolean")
        return value


@functools.cache
def number_fields(model: type[BaseModel]) -> frozenset[str]:
    """The fields of ``model`` that hold an int or a float and cannot hold a bool, less those
    that read their raw input with a validator of their own (augmentation's ``hflip = true``
    means a flip half the time: that validator says what a boolean means)."""
    own_readers = {name for decorator in model.__pydantic_decorators__.field_validators.values()
                   if decorator.info.mode in ("before", "plain", "wrap") and "*" not in decorator.info.fields
                   for name in decorator.info.fields}
    return frozenset(name for name, f in model.model_fields.items()
                     if takes_numbers_not_booleans(f.annotation) and name not in own_readers)


def takes_numbers_not_booleans(annotation: Any) -> bool:
    leaves = set(type_leaves(annotation))
    return bool(leaves & {int, float}) and not leaves & {bool, Any, object}


def type_leaves(annotation: Any) -> list[Any]:
    """The types a value of ``annotation`` may have at its top level (``int | None`` → int,
    NoneType; ``Literal[1, "a"]`` → int, str; ``list[int]`` → list)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return [type(arg) for arg in args]
    if origin in (typing.Union, types.UnionType):
        return [leaf for arg in args for leaf in type_leaves(arg)]
    if origin is typing.Annotated:
        return type_leaves(args[0])
    return [origin or annotation]


class Params(NoBooleanNumbers):
    """Base for plugin parameters: unknown keys are errors, values are validated, a float
    must be finite (TOML's ``inf`` and ``nan`` are no weight, rate or probability), and a
    number is no ``true`` or ``false``."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


#: Mark a parameter that says *where* something is, not *what* is computed (a data folder,
#: a download URL, a cache folder): ``Field(None, json_schema_extra=NOT_IN_RUN_KEY)``.
#: It is stored with the run but left out of the run's hash, so the same run made on
#: another machine, with its data elsewhere, is recognised as the same run.
NOT_IN_RUN_KEY = {"run_key": False}


#: Mark a parameter added after runs were published: while it holds its default it is left
#: out of the run's hash, so runs made before it existed keep their ids; any other value is
#: part of the hash. ``Field(1.0, json_schema_extra=KEYED_UNLESS_DEFAULT)``.
KEYED_UNLESS_DEFAULT = {"run_key": "unless-default"}


def run_key_fields(params: type[BaseModel]) -> set[str]:
    """The parameters of ``params`` that may identify a run (all but the NOT_IN_RUN_KEY ones)."""
    return {name for name, f in params.model_fields.items() if key_rule(f) is not False}


def key_rule(field_info: Any) -> Any:
    extra = field_info.json_schema_extra
    return extra.get("run_key", True) if isinstance(extra, dict) else True


def run_key_params(params: type[BaseModel], values: dict[str, Any]) -> dict[str, Any]:
    """The part of resolved ``values`` that goes into the run's hash (see the two markers)."""
    rules = key_rules(params)
    keyed = {}
    for name, value in values.items():
        rule, default = rules.get(name, (True, None))
        if rule is False:
            continue
        if rule == "unless-default" and value == default:
            continue
        keyed[name] = value
    return keyed


_KEY_RULES: dict[type, dict[str, tuple[Any, Any]]] = {}


def key_rules(params: type[BaseModel]) -> dict[str, tuple[Any, Any]]:
    """Each field's run-key rule and (for KEYED_UNLESS_DEFAULT) its default as JSON, once per
    class: a grid of 100,000 runs asks for them per run."""
    if params not in _KEY_RULES:
        rules = {}
        for name, f in params.model_fields.items():
            rule = key_rule(f)
            rules[name] = (rule, jsonable_default(f) if rule == "unless-default" else None)
        _KEY_RULES[params] = rules
    return _KEY_RULES[params]


def jsonable_default(field_info: Any) -> Any:
    import json

    from pydantic_core import to_jsonable_python

    return json.loads(json.dumps(to_jsonable_python(field_info.get_default(call_default_factory=True))))


class NoParams(Params):
    pass


class ClassSubsetParams(Params):
    """The data-regime parameters of a classification dataset: a class-balanced share of its
    training split (see :func:`balanced_subset`). Datasets subclass their Params from it."""

    train_fraction: float = Field(1.0, gt=0, le=1, json_schema_extra=KEYED_UNLESS_DEFAULT,
                                  description="keep this share of every class's training images (class-balanced; val untouched)")
    per_class: int | None = Field(None, ge=1, json_schema_extra=KEYED_UNLESS_DEFAULT,
                                  description="keep this many training images of every class instead (not with train_fraction)")
    subset_seed: int = Field(0, ge=0, json_schema_extra=KEYED_UNLESS_DEFAULT,
                             description="seed of the subsample, apart from the run seed so every set sees the same subset")

    @model_validator(mode="after")
    def one_subsample(self) -> "ClassSubsetParams":
        if self.per_class is not None and self.train_fraction != 1:
            raise ValueError("give train_fraction or per_class, not both")
        return self

    @property
    def subsampled(self) -> bool:
        return self.train_fraction != 1 or self.per_class is not None


class Plugin:
    name: ClassVar[str]
    Params: ClassVar[type[Params]] = NoParams

    def __init__(self, params: Params | None = None):
        self.params = params if params is not None else self.Params()

    @classmethod
    def smoke_params(cls, workdir: Path) -> dict[str, Any]:
        """Parameters for a seconds-long smoke test on tiny data (the test suite runs every
        registered plugin with them). A dataset may write tiny files under ``workdir``."""
        return {}

    @classmethod
    def describe(cls) -> str:
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


# ---------------------------------------------------------------------------- data


#: Target of a padding position in token-level data (N×T targets): losses and metrics skip
#: it. PyTorch's ``cross_entropy`` ignores this value by default.
IGNORE_TARGET = -100


@dataclass
class Split:
    """One split held in memory, ``len(inputs) == len(targets)`` samples.

    What ``inputs`` holds is the dataset's and its task's business; the built-in tasks expect:

    - images: uint8 N×C×H×W (0–255), targets int64 N class indices; models normalize them with
      :class:`Normalize` and ``DataInfo.mean``/``std``;
    - features: float32 N×F (already scaled), targets int64 N;
    - token ids: int64 N×T, right-padded with ``DataInfo.pad_index``, targets int64 N×T with
      ``IGNORE_TARGET`` at padding.

    Keep splits compact (uint8 rather than float images): they are held in memory, on the GPU
    when training there. ``transform_dataset`` returns a new Split of the same kind.
    """

    inputs: Tensor
    targets: Tensor

    def __len__(self) -> int:
        return len(self.inputs)

    def to(self, device: torch.device | str) -> "Split":
        return Split(self.inputs.to(device), self.targets.to(device))


@dataclass
class DataInfo:
    """What models and tasks need to know about a dataset.

    ``input_shape`` is one sample's shape (C×H×W for images, F for features, the padded length T
    for tokens). ``mean``/``std`` are per-channel (images) or per-feature statistics of the
    training split on the scale models see (images: [0, 1]); datasets of images set them, so
    that models can normalize. ``vocab_size``, ``pad_index`` and ``unk_index`` are for token
    data. ``extras`` carries anything else a dataset wants its own models to know; nothing in
    regsuite reads it.
    """

    num_classes: int
    input_shape: tuple[int, ...]
    class_names: list[str] = field(default_factory=list)
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    vocab_size: int | None = None
    pad_index: int | None = None
    unk_index: int | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def normalization(self) -> tuple[list[float], list[float]]:
        """``(mean, std)`` for :class:`Normalize`; a clear error for data that has none."""
        if self.mean is None or self.std is None:
            raise DataError("this model normalizes its inputs, but the dataset gave no DataInfo.mean/std",
                            hint="set mean and std (per channel, on the [0, 1] scale) in the dataset's DataInfo")
        return list(self.mean), list(self.std)


@dataclass
class Data:
    train: Split
    val: Split
    info: DataInfo
    test: Split | None = None


def data_fingerprint(data: Data) -> str:
    """A content hash of loaded data: every split's tensors (dtype, shape, bytes) and the
    number of classes. Paths play no part: the same data anywhere has the same fingerprint."""
    import hashlib

    digest = hashlib.sha256(f"regsuite-data-v1\0{data.info.num_classes}\0".encode())
    for name in ("train", "val", "test"):
        split = getattr(data, name)
        if split is None:
            continue
        for tensor in (split.inputs, split.targets):
            flat = tensor.detach().cpu().contiguous()
            digest.update(f"{name}\0{flat.dtype}\0{tuple(flat.shape)}\0".encode())
            digest.update(flat.reshape(-1).view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    return digest.hexdigest()[:32]


@dataclass
class Batch:
    """A training or evaluation batch on the training device.

    ``inputs`` is what the model receives: images as stored (uint8) or as float in [0, 1]
    (models normalize either, see :class:`Normalize`); token ids for text. ``extras`` carries anything a regularizer's loss needs (mixup's
    second targets and weight, say).
    """

    inputs: Tensor
    targets: Tensor
    extras: dict[str, Any] = field(default_factory=dict)
    #: In training, each sample's position in the training split (after every
    #: ``transform_dataset``), on the device; ``None`` in evaluation.
    index: Tensor | None = None

    def replace(self, **changes: Any) -> "Batch":
        return replace(self, **changes)


LossFn = Callable[[Tensor, Batch], Tensor]


@dataclass(frozen=True)
class Metric:
    """A metric a task reports per split; the leaderboard shows it as ``<split> <label>``."""

    key: str
    label: str
    higher_is_better: bool = True


def balanced_subset(targets: Tensor, *, fraction: float | None = None, per_class: int | None = None, seed: int,
                    class_names: list[str] | None = None) -> Tensor:
    """Sorted int64 indices of a class-balanced subsample of a split with class-index
    ``targets`` (N): the data-regime axis ("does a regularizer help more with less data?").

    Give exactly one of ``fraction`` (0 < f <= 1: ``round(f * n_c)``, at least 1, of each
    class's ``n_c`` samples) or ``per_class`` (that many of every class; a class with fewer is a
    :class:`regsuite.errors.DataError`, named with ``class_names`` when given). Each class's
    samples are taken in the order of a random permutation seeded by ``seed`` and the class
    index alone, not by the run seed: every regularizer set and run seed sees the same subset,
    a class's pick does not depend on which other classes are loaded, and a smaller subset is
    part of a larger one of the same seed. The indices are sorted, so the subset keeps the
    split's own order. Datasets apply it to the training split only (val and test stay whole).
    """
    if (fraction is None) == (per_class is None):
        raise ValueError("balanced_subset: give exactly one of fraction or per_class")
    if fraction is not None and not 0 < fraction <= 1:
        raise ValueError(f"balanced_subset: fraction must be in (0, 1], got {fraction}")
    if per_class is not None and per_class < 1:
        raise ValueError(f"balanced_subset: per_class must be at least 1, got {per_class}")
    if targets.dim() != 1:
        raise ValueError(f"balanced_subset: targets must be one class index per sample (N), got shape {tuple(targets.shape)}")
    targets = targets.detach().cpu()
    labels, counts = torch.unique(targets, return_counts=True)
    if per_class is not None:
        short = [(int(c), int(n)) for c, n in zip(labels, counts) if n < per_class]
        if short:
            label, n = min(short, key=lambda item: (item[1], item[0]))
            name = f" ({class_names[label]!r})" if class_names is not None and 0 <= label < len(class_names) else ""
            others = f"; {len(short)} classes have fewer than {per_class}" if len(short) > 1 else ""
            raise DataError(f"per_class = {per_class}, but class {label}{name} has only {n} training samples{others}",
                            hint=f"use per_class <= {int(counts.min())}, or train_fraction for a share of every class")
    chosen = []
    for label, n in zip(labels.tolist(), counts.tolist()):
        members = torch.nonzero(targets == label, as_tuple=True)[0]
        take = per_class if per_class is not None else max(1, round(fraction * n))
        chosen.append(members[torch.randperm(n, generator=_subset_generator(seed, label))[:take]])
    return torch.sort(torch.cat(chosen)).values.to(torch.int64) if chosen else torch.empty(0, dtype=torch.int64)


def random_subset(n: int, *, fraction: float, seed: int) -> Tensor:
    """Sorted int64 indices of ``round(fraction * n)`` (at least 1) of ``n`` samples, drawn by
    a permutation seeded by ``seed`` alone (not the run seed): :func:`balanced_subset` for data
    without one class per sample, such as sentences of token-level tags."""
    if not 0 < fraction <= 1:
        raise ValueError(f"random_subset: fraction must be in (0, 1], got {fraction}")
    if n < 1:
        return torch.empty(0, dtype=torch.int64)
    take = max(1, round(fraction * n))
    return torch.sort(torch.randperm(n, generator=_subset_generator(seed, None))[:take]).values.to(torch.int64)


def _subset_generator(seed: int, label: int | None) -> torch.Generator:
    """A CPU generator for the subsample of one class (``label``) or of a whole split (None)."""
    import hashlib

    salt = hashlib.sha256(f"regsuite-subset\0{seed}\0{label}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(salt[:8], "little") >> 1)


# ---------------------------------------------------------------------------- plugin kinds


class Task(Plugin):
    """How a batch looks, the data loss, and the metrics of one kind of problem."""

    metrics: ClassVar[tuple[Metric, ...]] = ()

    def setup(self, data: Data) -> None:
        """Called once per run with the loaded data (before regularizers transform it)."""

    def prepare_batch(self, inputs: Tensor, targets: Tensor) -> Batch:
        """Turn raw split tensors (already on the device) into a :class:`Batch`."""
        return Batch(inputs, targets)

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        """Mean data loss of the batch."""
        raise NotImplementedError

    def measure(self, outputs: Tensor, batch: Batch) -> dict[str, tuple[Tensor, Tensor]]:
        """Per-batch sums for evaluation: ``{"loss": (sum, count), key: (sum, count)}``.

        Values are tensors so that evaluation never waits on the device per batch.
        """
        raise NotImplementedError


class Dataset(Plugin):
    """Loads the splits of one dataset into memory."""

    task: ClassVar[str]

    def load(self) -> Data:
        raise NotImplementedError

    def fingerprint(self) -> str:
        """``data_fingerprint(self.load())``: the identity of the data, part of every run's
        key, so that other data under the same parameters (another archive at ``root``) is
        another run. Called once per dataset before a grid trains; every run checks it against
        the data it loads. Override it only with a cheaper way to the same value (a hash
        stored in a decode cache, say)."""
        return data_fingerprint(self.load())

    @classmethod
    def download(cls, directory: Path | None = None) -> list[str]:
        """Fetch the files ``load()`` needs into ``directory`` (``None``: the dataset's
        documented default place), so that later runs work offline; ``regsuite data download
        NAME`` calls it. Return lines saying what is where; ``[]`` means there is nothing to
        download (the default). Raise :class:`regsuite.errors.DataError` when it fails."""
        return []


class Model(Plugin):
    """Builds an ``nn.Module`` and declares where regularizers may act on it."""

    tasks: ClassVar[frozenset[str]]
    #: Slot kinds this model offers, e.g. ``{"dropout"}``. The built module marks each slot
    #: with :class:`Slot` modules of that kind; regularizers fill them.
    slots: ClassVar[frozenset[str]] = frozenset()

    def build(self, info: DataInfo) -> nn.Module:
        raise NotImplementedError


class Regularizer(Plugin):
    """Acts on training at defined points; every method defaults to doing nothing."""

    #: Tasks it can serve; ``None`` means every task.
    tasks: ClassVar[frozenset[str] | None] = None
    #: Model slot kinds it fills. The model must offer them, and two regularizers of one set
    #: may not claim the same slot kind (two dropouts, dropout + MaxDropout).
    claims_slots: ClassVar[frozenset[str]] = frozenset()
    #: Names of regularizers it cannot be combined with in one set.
    conflicts_with: ClassVar[frozenset[str]] = frozenset()

    def setup(self, data: Data) -> None:
        """Called once per run with the loaded data, after ``Task.setup``: read what the
        other hooks need (word dropout takes ``data.info.unk_index`` here)."""

    def transform_dataset(self, split: Split, generator: torch.Generator) -> Split:
        """Offline transform of the training split, once per run (e.g. doubled dataset)."""
        return split

    def configure_model(self, model: nn.Module) -> nn.Module:
        """Change the built model, e.g. fill its slots (see :func:`fill_slots`)."""
        return model

    def param_groups(self, model: nn.Module, groups: list[dict]) -> list[dict]:
        """Shape the optimizer's parameter groups (e.g. decoupled weight decay)."""
        return groups

    def wrap_loss(self, loss: LossFn) -> LossFn:
        """Return a loss function built on ``loss`` (e.g. label smoothing)."""
        return loss

    def transform_batch(self, batch: Batch, generator: torch.Generator) -> Batch:
        """Online transform of each training batch, on the training device."""
        return batch

    def penalty(self, model: nn.Module) -> Tensor | None:
        """A term of the parameters added to the training objective (e.g. L2), reported apart
        from the data loss, as ``train_penalty``."""
        return None

    def output_penalty(self, outputs: Tensor, batch: Batch) -> Tensor | None:
        """A term of this batch's model outputs (fp32) or of the batch itself, added to the
        objective and reported with ``penalty`` as ``train_penalty``: a confidence penalty,
        activation regularization. Return a scalar (the batch mean), or ``None``."""
        return None

    def after_step(self, model: nn.Module) -> None:
        """Called after every optimizer step, under ``torch.no_grad()``: constrain the weights
        in place (max-norm, weight clipping)."""

    def after_epoch(self, epoch: int, metrics: dict[str, float]) -> bool:
        """Called after each epoch's evaluation; return True to stop training."""
        return False


# ---------------------------------------------------------------------------- slots


class Slot(nn.Identity):
    """A place in a model where a regularizer of ``kind`` may put a module.

    Models put ``Slot("dropout")`` where dropout belongs; an unfilled slot is the identity,
    so a model without regularizers is unchanged.
    """

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"


def fill_slots(model: nn.Module, kind: str, make: Callable[[], nn.Module]) -> int:
    """Replace every ``Slot(kind)`` in ``model`` with ``make()``; return how many."""
    filled = 0
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, Slot) and child.kind == kind:
                setattr(parent, child_name, make())
                filled += 1
    return filled


class Normalize(nn.Module):
    """First layer of an image model: uint8 → [0, 1] if needed, then per-channel
    normalization. Batches reach models as stored (uint8) unless a regularizer already
    turned them into float in [0, 1] (augmenting on a GPU, say)."""

    def __init__(self, mean: list[float], std: list[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0)
        return (x - self.mean) / self.std


def channel_stats(images: Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 N×C×H×W images, on the [0, 1] scale."""
    x = images.float().div(255.0).transpose(0, 1).reshape(images.shape[1], -1)
    return x.mean(dim=1).tolist(), x.std(dim=1).clamp_min(1e-3).tolist()
