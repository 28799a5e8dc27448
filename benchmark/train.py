"""One run: build the plugins of a resolved config, train, evaluate every epoch.

The loop is a plain PyTorch loop over tensors held in memory (on the training device), so
that it runs as fast as a hand-written one: no DataLoader workers, no per-batch host sync
(losses accumulate on the device and are read once per epoch, or every few batches for the
progress display).
"""
from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

from regsuite import api, selection
from regsuite.errors import DataError, RegsuiteError
from regsuite.registry import Registry

PROGRESS_EVERY = 20  # batches between live-loss updates (each costs one device sync)


class NonFiniteLoss(RegsuiteError):
    """The training loss or the regularizers' penalty became NaN or infinite: the run fails."""


class Reporter:
    """Progress callbacks; the CLI shows them with rich, tests ignore them."""

    def run_started(self, epochs: int, batches_per_epoch: int) -> None: ...
    def run_resumed(self, epoch: int) -> None: ...  # continues after ``epoch`` (a checkpoint)
    def batch_done(self, batch: int, running_loss: float | None) -> None: ...
    def epoch_done(self, epoch: int, metrics: dict[str, float]) -> None: ...


@dataclass
class RunContext:
    config: dict[str, Any]
    task: api.Task
    dataset: api.Dataset
    model_plugin: api.Model
    regularizers: list[api.Regularizer]
    device: torch.device
    #: Training samples the dataset loaded (before any regularizer's transform_dataset; without
    #: the selection split of a spec with [selection]).
    train_size: int | None = None
    #: The selection split carved out of the training data (a spec with [selection]), on the device.
    selection: api.Split | None = None


@dataclass
class TrainState:
    """Everything needed to continue a run after an epoch (see checkpoints)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    order_generator: torch.Generator
    batch_generator: torch.Generator
    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    stopped: bool = False  # a regularizer ended training early (early stopping)
    # What the batches go through: the model, or its torch.compile wrapper (training.compile),
    # which shares its parameters. Not checkpointed: the model's state is all there is.
    forward: nn.Module | None = None

    @property
    def net(self) -> nn.Module:
        return self.forward if self.forward is not None else self.model


def instantiate(registry: Registry, kind: str, ref: dict[str, Any]) -> Any:
    cls = registry.cls(kind, ref["name"])
    return cls(cls.Params.model_validate(ref["params"]))


def resolve_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RegsuiteError("training.device asks for CUDA, but torch sees no GPU", hint='use device = "auto" or "cpu"')
    return device


def build_context(config: dict[str, Any], registry: Registry) -> RunContext:
    return RunContext(
        config=config,
        task=instantiate(registry, "task", config["task"]),
        dataset=instantiate(registry, "dataset", config["dataset"]),
        model_plugin=instantiate(registry, "model", config["model"]),
        regularizers=[instantiate(registry, "regularizer", r) for r in config["regularizers"]],
        device=resolve_device(config["training"]["device"]),
    )


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    # Set both ways: runs trained one after another in one process must not inherit a setting.
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    # Deterministic mode also fills every new tensor with NaN, a debugging aid that costs one
    # memory pass (a kernel, on a GPU) per allocation; nothing here reads memory it did not write.
    torch.utils.deterministic.fill_uninitialized_memory = False
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic  # autotuned convolutions: fastest, not reproducible


def set_precision(precision: str, device: torch.device) -> None:
    """fp32 means fp32 on GPUs too: cuDNN would otherwise use TF32 for convolutions."""
    if precision == "tf32" and device.type != "cuda":
        raise RegsuiteError(f'training.precision = "tf32" needs a CUDA GPU; this run is on {device}',
                            hint='use "fp32", or "bf16" (autocast on CPU or GPU)')
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        torch.backends.cudnn.allow_tf32 = precision == "tf32"


def compiled(model: nn.Module, setting: bool | str) -> nn.Module | None:
    """The model's torch.compile wrapper (training.compile), or None to call the model itself."""
    if setting is False:
        return None
    return torch.compile(model, mode=None if setting in (True, "default") else setting)


def in_layout(inputs: Tensor, channels_last: bool) -> Tensor:
    if not channels_last:
        return inputs
    if inputs.dim() != 4:
        raise RegsuiteError(f"training.channels_last applies to image models (4-D inputs); this model gets "
                            f"{inputs.dim()}-D inputs", hint="remove training.channels_last for this model")
    return inputs.contiguous(memory_format=torch.channels_last)


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def check_fingerprint(ctx: RunContext, data: api.Data) -> None:
    """The data loaded here must be the data the grid was planned with (same run key)."""
    expected = ctx.config["dataset"].get("fingerprint")
    if expected is None:
        return
    actual = api.data_fingerprint(data)
    if actual != expected:
        raise DataError(
            f"dataset {ctx.config['dataset']['name']!r} loaded other data than the grid was planned with "
            f"(fingerprint {actual[:12]}, planned {expected[:12]})",
            hint="the data changed under the run, or this machine holds another copy; "
                 "run the spec again to plan it with the data that is here",
        )


def check_slots(ctx: RunContext, model: nn.Module) -> None:
    """A regularizer that claims slots must find some in the built model: a model that declares
    a slot kind but places no ``Slot`` of it would otherwise train as if unregularized."""
    built = {m.kind for m in model.modules() if isinstance(m, api.Slot)}
    for reg in ctx.regularizers:
        for kind in sorted(reg.claims_slots - built):
            model_name = ctx.config["model"]["name"]
            raise RegsuiteError(
                f"regularizer {reg.name!r} fills {kind!r} slots, but model {model_name!r} built none "
                f"(it declares {', '.join(sorted(type(ctx.model_plugin).slots)) or 'no slots'})",
                hint=f"model {model_name!r} must place Slot({kind!r}) modules where {kind} belongs",
            )


def make_optimizer(training: dict[str, Any], groups: list[dict]) -> torch.optim.Optimizer:
    """The optimizer over the regularizers' parameter groups. A group may ask for
    ``decoupled_weight_decay`` (p ← p − lr·λ·p apart from the gradient, as AdamW does): Adam
    and AdamW apply it per group; SGD without momentum is the same thing with its own
    ``weight_decay``; SGD with momentum has no decoupled form in PyTorch and is refused."""
    name, lr = training["optimizer"], training["lr"]
    decoupled = any(group.get("decoupled_weight_decay") for group in groups)
    if name == "sgd":
        if decoupled and training["momentum"]:
            raise RegsuiteError("decoupled weight decay is not defined for SGD with momentum in PyTorch",
                                hint='use optimizer = "adam" or "adamw", momentum = 0, or the l2 regularizer')
        groups = [{k: v for k, v in group.items() if k != "decoupled_weight_decay"} for group in groups]
        return torch.optim.SGD(groups, lr=lr, momentum=training["momentum"])
    if decoupled and "decoupled_weight_decay" not in (torch.optim.Adam.__init__.__kwdefaults__ or {}):
        raise RegsuiteError(f"this torch {torch.__version__} has no per-group decoupled weight decay in Adam",
                            hint="upgrade torch (2.7 or later)")
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    return torch.optim.Adam(groups, lr=lr)


def prepare(ctx: RunContext) -> tuple[api.Data, TrainState, api.LossFn]:
    """Load data, build model and optimizer, and let every regularizer act once."""
    training, seed = ctx.config["training"], ctx.config["seed"]
    seed_everything(seed, training["deterministic"])
    set_precision(training.get("precision", "fp32"), ctx.device)
    data = ctx.dataset.load()
    check_fingerprint(ctx, data)
    held_out = ctx.config.get("selection")
    if held_out is not None:  # before anything sees the training data: the choice's own split
        data.train, ctx.selection = selection.carve(data.train, held_out["fraction"], held_out["seed"])
        ctx.selection = ctx.selection.to(ctx.device)
    ctx.task.setup(data)
    for reg in ctx.regularizers:
        reg.setup(data)
    ctx.train_size = len(data.train)
    data_generator = torch.Generator().manual_seed(seed + 1)
    for reg in ctx.regularizers:
        data.train = reg.transform_dataset(data.train, data_generator)
    data.train, data.val = data.train.to(ctx.device), data.val.to(ctx.device)
    if data.test is not None:
        data.test = data.test.to(ctx.device)

    torch.manual_seed(seed)  # model init does not depend on what the data load consumed
    model = ctx.model_plugin.build(data.info)
    check_slots(ctx, model)
    for reg in ctx.regularizers:
        model = reg.configure_model(model)
    model = model.to(ctx.device)
    if training.get("channels_last"):
        model = model.to(memory_format=torch.channels_last)
    groups: list[dict] = [{"params": [p for p in model.parameters() if p.requires_grad]}]
    for reg in ctx.regularizers:
        groups = reg.param_groups(model, groups)
    loss_fn: api.LossFn = ctx.task.loss
    for reg in ctx.regularizers:
        loss_fn = reg.wrap_loss(loss_fn)
    state = TrainState(
        model=model,
        optimizer=make_optimizer(training, groups),
        order_generator=torch.Generator().manual_seed(seed),
        batch_generator=torch.Generator(device=ctx.device).manual_seed(seed + 2),
        forward=compiled(model, training.get("compile", False)),
    )
    return data, state, loss_fn


def train_epoch(ctx: RunContext, data: api.Data, state: TrainState, loss_fn: api.LossFn,
                reporter: Reporter) -> dict[str, float]:
    model, optimizer, task = state.model, state.optimizer, ctx.task
    batch_size = ctx.config["training"]["batch_size"]
    precision = ctx.config["training"].get("precision", "fp32")
    channels_last = ctx.config["training"].get("channels_last", False)
    train = data.train
    order = torch.randperm(len(train), generator=state.order_generator).to(ctx.device)
    model.train()
    hooks = Hooks.of(ctx.regularizers)
    loss_sum = torch.zeros((), device=ctx.device)
    penalty_sum = torch.zeros((), device=ctx.device)
    sums: dict[str, list[Tensor]] = {}
    batches = 0
    for start in range(0, len(train), batch_size):
        index = order[start : start + batch_size]
        batch = task.prepare_batch(train.inputs[index], train.targets[index]).replace(index=index)
        for reg in ctx.regularizers:
            batch = reg.transform_batch(batch, state.batch_generator)
        with autocast(precision, ctx.device):
            outputs = state.net(in_layout(batch.inputs, channels_last))
        outputs = outputs.float()  # losses and metrics in fp32 whatever the precision
        data_loss = loss_fn(outputs, batch)
        objective = data_loss
        for penalty in penalties(hooks, model, outputs, batch):
            objective = objective + penalty
            penalty_sum += penalty.detach()
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        optimizer.step()
        if hooks.after_step:
            with torch.no_grad():
                for reg in hooks.after_step:
                    reg.after_step(model)
        loss_sum += data_loss.detach()
        accumulate(sums, task.measure(outputs.detach(), batch), skip="loss")
        batches += 1
        if batches % PROGRESS_EVERY == 0:
            reporter.batch_done(batches, float(loss_sum) / batches)
        else:
            reporter.batch_done(batches, None)
    metrics = {"train_loss": float(loss_sum) / batches, "train_penalty": float(penalty_sum) / batches}
    metrics.update({f"train_{key}": value for key, value in averages(sums).items()})
    return metrics


@dataclass
class Hooks:
    """The regularizers that implement each per-batch hook (the loop skips the others)."""

    penalty: list[api.Regularizer]
    output_penalty: list[api.Regularizer]
    after_step: list[api.Regularizer]

    @classmethod
    def of(cls, regularizers: list[api.Regularizer]) -> "Hooks":
        return cls(*([reg for reg in regularizers if overrides(reg, hook)]
                     for hook in ("penalty", "output_penalty", "after_step")))


def overrides(reg: api.Regularizer, hook: str) -> bool:
    return getattr(type(reg), hook) is not getattr(api.Regularizer, hook)


def penalties(hooks: Hooks, model: nn.Module, outputs: Tensor, batch: api.Batch) -> list[Tensor]:
    """This batch's penalty terms: parameter penalties, then output penalties, in set order."""
    terms = [reg.penalty(model) for reg in hooks.penalty]
    terms += [reg.output_penalty(outputs, batch) for reg in hooks.output_penalty]
    return [term for term in terms if term is not None]


@torch.no_grad()
def evaluate(ctx: RunContext, split: api.Split, model: nn.Module, prefix: str) -> dict[str, float]:
    model.eval()
    size = ctx.config["training"]["eval_batch_size"] or 4 * ctx.config["training"]["batch_size"]
    precision = ctx.config["training"].get("precision", "fp32")
    channels_last = ctx.config["training"].get("channels_last", False)
    sums: dict[str, list[Tensor]] = {}
    for start in range(0, len(split), size):
        batch = ctx.task.prepare_batch(split.inputs[start : start + size], split.targets[start : start + size])
        with autocast(precision, ctx.device):
            outputs = model(in_layout(batch.inputs, channels_last))
        accumulate(sums, ctx.task.measure(outputs.float(), batch))
    return {f"{prefix}_{key}": value for key, value in averages(sums).items()}


def accumulate(sums: dict[str, list[Tensor]], measured: dict[str, tuple[Tensor, Tensor]], skip: str = "") -> None:
    for key, (total, count) in measured.items():
        if key == skip:
            continue
        if key in sums:
            sums[key][0] += total
            sums[key][1] += count
        else:
            sums[key] = [total.detach().clone().double(), torch.as_tensor(count).double().clone()]


def averages(sums: dict[str, list[Tensor]]) -> dict[str, float]:
    return {key: float(total) / max(float(count), 1.0) for key, (total, count) in sums.items()}


def run_training(
    ctx: RunContext,
    reporter: Reporter | None = None,
    on_epoch: Callable[[TrainState, dict[str, float]], None] | None = None,
    resume: Callable[[TrainState], None] | None = None,
) -> dict[str, Any]:
    """Train one run to the end; return its summary. ``on_epoch`` sees each finished epoch
    (the store and checkpoints hook in there); ``resume`` may restore a saved state."""
    reporter = reporter or Reporter()
    data, state, loss_fn = prepare(ctx)
    if resume is not None:
        resume(state)
    batches_per_epoch = math.ceil(len(data.train) / ctx.config["training"]["batch_size"])
    epochs = planned_epochs(ctx.config["training"], batches_per_epoch)
    reporter.run_started(epochs, batches_per_epoch)
    if state.epoch:
        reporter.run_resumed(state.epoch)
    started = time.perf_counter()
    fitting_seconds = 0.0  # in train_epoch only (the batches), for the throughput
    epochs_here = 0  # a resumed run starts at state.epoch > 0
    while state.epoch < epochs and not state.stopped:
        epoch_start = time.perf_counter()
        metrics = train_epoch(ctx, data, state, loss_fn, reporter)
        fitting_seconds += time.perf_counter() - epoch_start
        state.epoch += 1
        epochs_here += 1
        if not all(math.isfinite(metrics[k]) for k in ("train_loss", "train_penalty")):
            raise NonFiniteLoss(non_finite_message(metrics, state.epoch, penalizing(ctx.regularizers)),
                                hint="lower the learning rate or the regularizer's strength")
        metrics.update(evaluate(ctx, data.val, state.net, "val"))
        if ctx.selection is not None:
            metrics.update(evaluate(ctx, ctx.selection, state.net, "sel"))
        metrics["epoch_time"] = time.perf_counter() - epoch_start
        metrics["train_samples_per_s"] = len(data.train) / max(fitting_seconds / epochs_here, 1e-9)
        state.history.append({"epoch": state.epoch, **metrics})
        reporter.epoch_done(state.epoch, metrics)
        # Every regularizer sees every epoch, before on_epoch checkpoints their state.
        state.stopped = any([reg.after_epoch(state.epoch, metrics) for reg in ctx.regularizers])
        if on_epoch is not None:
            on_epoch(state, metrics)
    test = evaluate(ctx, data.test, state.net, "test") if data.test is not None else {}
    summary = summarize(state.history, test, data.info, time.perf_counter() - started)
    summary["metrics"] = [asdict(metric) for metric in ctx.task.metrics]
    summary["train_size"] = ctx.train_size
    summary["train_images_per_epoch"] = len(data.train)  # after the regularizers' dataset transforms
    if ctx.selection is not None:
        summary["selection_size"] = len(ctx.selection)
    return summary


def planned_epochs(training: dict[str, Any], batches_per_epoch: int) -> int:
    """The epochs a run trains: ``epochs``, or the fewest whole epochs that hold ``steps``
    optimizer steps at ``batches_per_epoch`` (the training set after the regularizers' dataset
    transforms, so each set's steps are counted as its optimizer takes them)."""
    steps = training.get("steps")
    if steps is None:
        return training["epochs"]
    return math.ceil(steps / batches_per_epoch)


def penalizing(regularizers: list[api.Regularizer]) -> list[str]:
    """Names of the regularizers that add a penalty to the objective."""
    return [reg.name for reg in regularizers if overrides(reg, "penalty") or overrides(reg, "output_penalty")]


def non_finite_message(metrics: dict[str, float], epoch: int, penalized: list[str]) -> str:
    """Which term of the objective became NaN or infinite: the data loss (``train_loss``), the
    regularizers' penalty (``train_penalty``), or both (each epoch's sums are all there is to
    go by: once one term has made the weights non-finite, the other follows)."""
    loss, penalty = metrics["train_loss"], metrics["train_penalty"]
    names = " and ".join(penalized) or "the regularizers"
    term = f"the penalt{'ies' if len(penalized) > 1 else 'y'} of {names} (train_penalty)"
    if math.isfinite(penalty):
        extra = f" (the data loss; {term} was {penalty:.4g})" if penalized else ""
        return f"the training loss became {loss} in epoch {epoch}{extra}"
    if math.isfinite(loss):
        return f"{term} became {penalty} in epoch {epoch}; the data loss was {loss:.4g}"
    return (f"the training loss (the data loss) became {loss} and {term} became {penalty} in epoch {epoch}; "
            "once either makes the weights non-finite the other follows, so either may have been first")


def summarize(history: list[dict[str, float]], test: dict[str, float], info: api.DataInfo,
              seconds: float) -> dict[str, Any]:
    """A run's summary. ``train_seconds`` = ``seconds``: :func:`run_training` from its first
    epoch to the end of the test split (every epoch's batches and evaluation, this attempt only);
    the store's ``wall_time`` is the whole run (building it too, summed over resumed attempts)."""
    final = history[-1]
    best = min(history, key=lambda m: m["val_loss"])
    return {
        "final": {k: v for k, v in final.items() if k != "epoch"},
        "test": test,
        "epochs_run": final["epoch"],
        "best_epoch": best["epoch"],
        "best_val_loss": best["val_loss"],
        "gap": final["val_loss"] - final["train_loss"],
        "gap_at_best": best["val_loss"] - best["train_loss"],
        "train_seconds": seconds,
        "class_names": info.class_names,
    }
