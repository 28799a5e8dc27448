"""Training speed of regsuite's loop against a plain hand-written PyTorch loop.

One run times, on the same synthetic uint8 data (N×3×64×64, 25 classes), model
(``custom_cnn``, conv1 stride 4), batch size and optimizer (Adam):

  plain-nnlrn     a hand-written loop, custom CNN with ``nn.LocalResponseNorm``
  regsuite        regsuite's own loop (``regsuite.train.prepare`` + ``train_epoch``, the code
                  ``regsuite run`` uses), custom CNN with regsuite's fast LRN
  regsuite-nnlrn  regsuite's loop, custom CNN with ``nn.LocalResponseNorm`` (same model as plain)
  regsuite-aug    regsuite's loop, fast LRN, online augmentation (the study's five transforms;
                  albumentations on a CPU, per-image torch ops on a GPU)
  plain-fast      (optional) the hand-written loop with the fast LRN
  plain-fast-cl   (optional) … and channels_last memory format
  plain-fast-bf16 (optional) … and bfloat16 autocast (does mixed precision pay on this device?)
  regsuite-stride1 (optional) regsuite's loop, custom CNN with conv1 stride 1 (the cost of stride 1)

and prints images/s (median and best of the repeats) and the ratios the issue asks for:

  regsuite-nnlrn / plain-nnlrn   ≥ 0.95   the harness costs no more than a few percent
  regsuite / plain-nnlrn         ≥ 1.30   regsuite's custom_cnn reaches Keras' speed
  regsuite-aug / regsuite        ≥ 0.90   online augmentation barely slows training

Each repeat is one epoch over N images; configurations take turns, in a shuffled order each
round (so a busy machine slows all of them alike), after warm-up epochs that are not
counted. Torch threads are left at their default unless --threads is given.

    python bench/train_speed.py                                  # CPU, ~3 minutes on 2 cores
    python bench/train_speed.py --device cuda --images 25600 --repeats 7
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from regsuite import api
from regsuite.registry import get_registry
from regsuite.spec import TrainingConfig
from regsuite.train import PROGRESS_EVERY, Reporter, RunContext, instantiate, prepare, train_epoch

CLASSES = 25
CONFIGS = ("plain-nnlrn", "regsuite", "regsuite-nnlrn", "regsuite-aug")
OPTIONAL = ("plain-fast", "plain-fast-cl", "plain-fast-bf16", "regsuite-stride1")
RATIOS = (
    ("regsuite-nnlrn", "plain-nnlrn", 0.95, "regsuite loop / plain loop, same model (nn.LocalResponseNorm)"),
    ("regsuite", "plain-nnlrn", 1.30, "regsuite custom_cnn (fast LRN) / plain loop with nn.LocalResponseNorm"),
    ("regsuite-aug", "regsuite", 0.90, "online augmentation / none"),
    ("regsuite-stride1", "regsuite", 0.0, "conv1 stride 1 / stride 4 (for information)"),
)


class SyntheticImages(api.Dataset):
    """Random uint8 images in memory, Tiny ImageNet's shape; speed does not depend on content."""

    name = "synthetic_images"
    task = "image_classification"

    def __init__(self, images: int, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.inputs = torch.randint(0, 256, (images, 3, 64, 64), dtype=torch.uint8, generator=generator)
        self.targets = torch.randint(0, CLASSES, (images,), generator=generator)

    def load(self) -> api.Data:
        mean, std = api.channel_stats(self.inputs[:1024])
        info = api.DataInfo(num_classes=CLASSES, input_shape=(3, 64, 64), class_names=[f"c{i}" for i in range(CLASSES)],
                            extras={"mean": mean, "std": std})
        return api.Data(train=api.Split(self.inputs, self.targets), val=api.Split(self.inputs[:256], self.targets[:256]), info=info)


def training_config(args: argparse.Namespace) -> dict:
    return TrainingConfig(epochs=1, batch_size=args.batch_size, optimizer="adam", lr=args.lr, device=args.device,
                          deterministic=args.deterministic).model_dump()


def set_global_flags(deterministic: bool) -> None:
    """Each loop runs under its own global flags: regsuite's (from its config), or torch's defaults."""
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = deterministic


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------------------- the plain loop


class PlainLoop:
    """What one writes by hand: tensors on the device, shuffle, slice, step. No bookkeeping."""

    deterministic = False

    def __init__(self, dataset: SyntheticImages, lrn: str, args: argparse.Namespace, device: torch.device,
                 channels_last: bool = False, bf16: bool = False):
        registry = get_registry()
        data = dataset.load()
        model_cls = registry.cls("model", "custom_cnn")
        torch.manual_seed(0)
        self.model = model_cls(model_cls.Params(lrn=lrn)).build(data.info).to(device)  # Normalize is its first layer
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = self.model.to(memory_format=memory_format)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=args.lr)
        self.inputs = data.train.inputs.to(device).contiguous(memory_format=memory_format)
        self.targets = data.train.targets.to(device)
        self.batch_size, self.device, self.bf16 = args.batch_size, device, bf16
        self.generator = torch.Generator().manual_seed(0)

    def epoch(self) -> None:
        self.model.train()
        order = torch.randperm(len(self.inputs), generator=self.generator).to(self.device)
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                loss = F.cross_entropy(self.model(self.inputs[index]), self.targets[index])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        sync(self.device)


# ---------------------------------------------------------------------------- regsuite's loop


class RegsuiteLoop:
    """regsuite's training path: the registered plugins in a RunContext, prepare(), train_epoch()."""

    def __init__(self, dataset: SyntheticImages, lrn: str, regularizers: list[dict], args: argparse.Namespace,
                 device: torch.device, conv1_stride: int = 4):
        registry = get_registry()
        config = {
            "task": {"name": "image_classification", "params": {}},
            "dataset": {"name": SyntheticImages.name, "params": {}},
            "model": {"name": "custom_cnn", "params": {"lrn": lrn, "conv1_stride": conv1_stride}},
            "regularizers": regularizers,
            "training": training_config(args),
            "seed": 0,
        }
        self.ctx = RunContext(
            config=config,
            task=instantiate(registry, "task", config["task"]),
            dataset=dataset,
            model_plugin=instantiate(registry, "model", config["model"]),
            regularizers=[instantiate(registry, "regularizer", r) for r in regularizers],
            device=device,
        )
        self.deterministic = args.deterministic
        self.data, self.state, self.loss_fn = prepare(self.ctx)
        self.reporter = Reporter()

    def epoch(self) -> None:
        train_epoch(self.ctx, self.data, self.state, self.loss_fn, self.reporter)  # reads its losses: syncs
        sync(self.ctx.device)


AUGMENTATION = [{"name": "augmentation", "params": {}}]


def build(name: str, dataset: SyntheticImages, args: argparse.Namespace, device: torch.device):
    if name == "plain-nnlrn":
        return PlainLoop(dataset, "torch", args, device)
    if name == "plain-fast":
        return PlainLoop(dataset, "fast", args, device)
    if name == "plain-fast-cl":
        return PlainLoop(dataset, "fast", args, device, channels_last=True)
    if name == "plain-fast-bf16":
        return PlainLoop(dataset, "fast", args, device, bf16=True)
    if name == "regsuite":
        return RegsuiteLoop(dataset, "fast", [], args, device)
    if name == "regsuite-nnlrn":
        return RegsuiteLoop(dataset, "torch", [], args, device)
    if name == "regsuite-aug":
        return RegsuiteLoop(dataset, "fast", AUGMENTATION, args, device)
    if name == "regsuite-stride1":
        return RegsuiteLoop(dataset, "fast", [], args, device, conv1_stride=1)
    raise ValueError(name)


def measure(args: argparse.Namespace) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Images/s per configuration: by the wall clock, and per CPU-second of this process (the
    latter is less disturbed by other processes on a shared machine)."""
    device = torch.device(args.device)
    dataset = SyntheticImages(args.images)
    loops = {name: build(name, dataset, args, device) for name in args.configs}
    wall: dict[str, list[float]] = {name: [] for name in loops}
    cpu: dict[str, list[float]] = {name: [] for name in loops}
    shuffle = random.Random(0).shuffle
    for round_ in range(args.warmup + args.repeats):
        order = list(loops)
        shuffle(order)  # no configuration always runs right after the same other one
        for name in order:
            loop = loops[name]
            set_global_flags(loop.deterministic)
            sync(device)
            started, started_cpu = time.perf_counter(), time.process_time()
            loop.epoch()
            elapsed, elapsed_cpu = time.perf_counter() - started, time.process_time() - started_cpu
            if round_ >= args.warmup:
                wall[name].append(args.images / elapsed)
                cpu[name].append(args.images / elapsed_cpu)
            print(f"  round {round_ + 1}{' (warm-up)' if round_ < args.warmup else ''} {name:15s} "
                  f"{args.images / elapsed:8.1f} img/s", file=sys.stderr, flush=True)
    if device.type == "cuda":
        for name in ("regsuite", "regsuite-aug"):
            if name in loops:
                count_host_syncs(name, loops[name])
    return wall, cpu


def count_host_syncs(name: str, loop: "RegsuiteLoop") -> None:
    """How often regsuite's epoch waits for the GPU (CUDA's sync debug mode warns each time)."""
    import warnings

    set_global_flags(loop.deterministic)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            loop.epoch()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [str(w.message) for w in caught if "synchroniz" in str(w.message)]
    batches = -(-len(loop.data.train) // loop.ctx.config["training"]["batch_size"])
    print(f"  {name} epoch: {len(syncs)} host syncs in {batches} batches "
          f"(expected: one per {PROGRESS_EVERY} batches for the live loss, and a few per epoch)")
    for message in sorted({m.splitlines()[0] for m in syncs})[:5]:
        print(f"    {message}")


def report(wall: dict[str, list[float]], cpu: dict[str, list[float]], args: argparse.Namespace) -> dict:
    """Medians, and the best repeat: on a shared machine the best is the undisturbed one (as
    timeit takes the minimum time). The ratio that counts is the median of the per-round
    ratios (both configurations timed in the same round, so under the same load); the ratios
    of medians, of bests and of CPU time are printed beside it."""
    medians = {name: statistics.median(values) for name, values in wall.items()}
    best = {name: max(values) for name, values in wall.items()}
    cpu_medians = {name: statistics.median(values) for name, values in cpu.items()}
    print(f"\ncustom_cnn, {args.images} synthetic 3×64×64 uint8 images per repeat, batch {args.batch_size}, Adam, "
          f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.repeats} repeats after {args.warmup} warm-up")
    print(f"  {'images/s':15s} {'median':>8s} {'best':>8s} {'worst':>8s}  {'per CPU-s (median)':>18s}")
    for name, values in wall.items():
        print(f"  {name:15s} {medians[name]:8.1f} {best[name]:8.1f} {min(values):8.1f}  {cpu_medians[name]:18.1f}")
    ratios = {}
    print()
    for top, bottom, target, what in RATIOS:
        if top in medians and bottom in medians:
            found = {"median": medians[top] / medians[bottom], "best": best[top] / best[bottom],
                     "paired": statistics.median(a / b for a, b in zip(wall[top], wall[bottom])),
                     "cpu": cpu_medians[top] / cpu_medians[bottom]}
            ratios[f"{top}/{bottom}"] = found
            verdict = ""
            if target:
                verdict = f"target ≥ {target:.2f}: " + ("ok" if found["paired"] >= target else "BELOW")
            print(f"  {top} / {bottom}: {found['paired']:.3f}  (of medians {found['median']:.3f}, of bests "
                  f"{found['best']:.3f}, per CPU-s {found['cpu']:.3f})   {verdict}   {what}")
    return {"images_per_s": wall, "images_per_cpu_s": cpu, "median": medians, "best": best, "cpu_median": cpu_medians,
            "ratios": ratios, "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "torch": torch.__version__}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:n]")
    parser.add_argument("--images", type=int, default=1280, help="images per epoch (one repeat)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1, help="uncounted epochs per configuration first")
    parser.add_argument("--configs", default=",".join(CONFIGS),
                        help=f"comma-separated subset of {', '.join(CONFIGS + OPTIONAL)}")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's). On a shared machine, 1 avoids OpenMP "
                        "threads waiting for each other while another process holds a core")
    parser.add_argument("--deterministic", type=lambda s: s.lower() in ("1", "true", "yes"), default=True,
                        help="regsuite's training.deterministic (its default: true)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    args.configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = sorted(set(args.configs) - set(CONFIGS + OPTIONAL))
    if unknown:
        parser.error(f"unknown configs: {', '.join(unknown)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    result = report(*measure(args), args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
