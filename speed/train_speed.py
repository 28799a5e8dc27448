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
  plain-fast-compile (optional) the hand-written fast-LRN loop with ``torch.compile(model)`` (inductor);
                  its first (warm-up) epoch holds the compile, reported apart from the steady img/s
  regsuite-bf16   (optional) regsuite's loop with ``training.precision = "bf16"`` (autocast)
  regsuite-stride1 (optional) regsuite's loop, custom CNN with conv1 stride 1 (the cost of stride 1)
  regsuite-cl / regsuite-compile / regsuite-tf32 (optional) regsuite's loop with
                  ``training.channels_last``, ``training.compile`` or ``training.precision = "tf32"``
                  (tf32: GPUs only)

and prints images/s (median and best of the repeats) and the ratios the issue asks for:

  regsuite-nnlrn / plain-nnlrn   ≥ 0.95   the harness costs no more than a few percent
  regsuite / plain-nnlrn         ≥ 1.30   regsuite's custom_cnn reaches Keras' speed
  regsuite-aug / regsuite        ≥ 0.90   online augmentation barely slows training

(and, for information, bf16 / fp32, channels_last / contiguous, compiled / eager).

Each repeat is one epoch over N images; configurations take turns, in a shuffled order each
round (so a busy machine slows all of them alike), after warm-up epochs that are not
counted. Torch threads are left at their default unless --threads is given. Images/s per
CPU-second of this process are printed beside the wall-clock figures.

Slow configurations (the bf16 ones: on a CPU without AVX-512/AMX their convolutions fall to
torch's slow reference kernel, ~20× slower) get their own, smaller epoch (--slow-images) and
take part only in the first --slow-repeats counted rounds, without a warm-up epoch, so that
they do not eat the time budget; their per-round ratios pair them with those same rounds.

``plain-fast-compile`` compiles in its first (warm-up) epoch: the compile time is that epoch
less a steady one (less the same excess of eager ``plain-fast``'s first epoch), printed with
the run length, in epochs of 12,500 images, after which the steady gain pays it back. The
compile is cold: inductor's cache goes to a fresh temporary folder (set
TORCHINDUCTOR_CACHE_DIR to keep one). Keep --images a multiple of --batch-size, or the last,
smaller batch compiles again.

--thread-rounds R adds a thread check after the rounds: in each of R rounds (the two layouts
in shuffled order) one child process runs the ``regsuite`` configuration with 2 torch
threads, and two child processes run it at once with 1 thread each (started together behind
a barrier, after their imports and set-up); each child times --thread-repeats epochs of
--thread-images after one warm-up, the two 1-thread medians are summed (images/s of the
pair) and compared with the 2-thread one, per round.

    python speed/train_speed.py                                  # CPU, ~3 minutes on 2 cores
    # what makes custom_cnn train faster on a CPU (docs/image-benchmark.md, "Speed");
    # ~9 min wall, ~6.5 CPU-min on the 2-core CPU while another training job ran:
    python speed/train_speed.py --threads 2 --images 384 --repeats 5 \
        --configs regsuite,regsuite-bf16,plain-fast,plain-fast-cl,plain-fast-compile \
        --slow-images 128 --slow-repeats 3 --thread-rounds 3 --thread-images 384 --json speed.json
    # the same fp32 comparison with 1 thread (~3 min):
    python speed/train_speed.py --threads 1 --images 384 --repeats 5 \
        --configs regsuite,plain-fast,plain-fast-cl,plain-fast-compile
    python speed/train_speed.py --device cuda --images 25600 --repeats 7
"""
from __future__ import annotations

import argparse
import atexit
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
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
OPTIONAL = ("plain-fast", "plain-fast-cl", "plain-fast-bf16", "plain-fast-compile", "regsuite-bf16", "regsuite-stride1",
            "regsuite-cl", "regsuite-compile", "regsuite-tf32")
SLOW = ("plain-fast-bf16", "regsuite-bf16")  # bf16 convolutions on a CPU without AVX-512/AMX: ~20× slower
EPOCH_IMAGES = 12_500  # one epoch of the paper grid: 25 Tiny ImageNet classes × 500 training images
RATIOS = (
    ("regsuite-nnlrn", "plain-nnlrn", 0.95, "regsuite loop / plain loop, same model (nn.LocalResponseNorm)"),
    ("regsuite", "plain-fast", 0.95, "regsuite loop / plain loop, same model (regsuite's fast LRN)"),
    ("regsuite", "plain-nnlrn", 1.30, "regsuite custom_cnn (fast LRN) / plain loop with nn.LocalResponseNorm"),
    ("regsuite-aug", "regsuite", 0.90, "online augmentation / none"),
    ("regsuite-stride1", "regsuite", 0.0, "conv1 stride 1 / stride 4 (for information)"),
    ("regsuite-bf16", "regsuite", 0.0, "bf16 autocast / fp32, regsuite loop"),
    ("regsuite-tf32", "regsuite", 0.0, "training.precision tf32 / fp32, regsuite loop (GPUs)"),
    ("regsuite-cl", "regsuite", 0.0, "training.channels_last / contiguous, regsuite loop"),
    ("regsuite-compile", "regsuite", 0.0, "training.compile / eager, regsuite loop (steady epochs)"),
    ("plain-fast-bf16", "plain-fast", 0.0, "bf16 autocast / fp32, plain loop"),
    ("plain-fast-cl", "plain-fast", 0.0, "channels_last / contiguous, plain loop"),
    ("plain-fast-compile", "plain-fast", 0.0, "torch.compile / eager, plain loop, steady state (after the compile)"),
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
                            mean=mean, std=std)
        return api.Data(train=api.Split(self.inputs, self.targets), val=api.Split(self.inputs[:256], self.targets[:256]), info=info)


def training_config(args: argparse.Namespace, precision: str = "fp32") -> dict:
    return TrainingConfig(epochs=1, batch_size=args.batch_size, optimizer="adam", lr=args.lr, device=args.device,
                          deterministic=args.deterministic, precision=precision).model_dump()


def set_global_flags(deterministic: bool) -> None:
    """Each loop runs under its own global flags: regsuite's (from its config), or torch's defaults."""
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.benchmark = not deterministic  # as regsuite's runs: autotuned when not deterministic
    torch.backends.cudnn.deterministic = deterministic


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------------------- the plain loop


class PlainLoop:
    """What one writes by hand: tensors on the device, shuffle, slice, step. No bookkeeping."""

    deterministic = False

    def __init__(self, dataset: SyntheticImages, lrn: str, args: argparse.Namespace, device: torch.device,
                 channels_last: bool = False, bf16: bool = False, compile: bool = False):
        registry = get_registry()
        data = dataset.load()
        model_cls = registry.cls("model", "custom_cnn")
        torch.manual_seed(0)
        self.model = model_cls(model_cls.Params(lrn=lrn)).build(data.info).to(device)  # Normalize is its first layer
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = self.model.to(memory_format=memory_format)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=args.lr)
        if compile:  # lazy: the first batch compiles (forward and backward); same parameters, so same optimizer
            self.model = torch.compile(self.model)
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
                 device: torch.device, conv1_stride: int = 4, precision: str = "fp32", **settings):
        registry = get_registry()
        config = {
            "task": {"name": "image_classification", "params": {}},
            "dataset": {"name": SyntheticImages.name, "params": {}},
            "model": {"name": "custom_cnn", "params": {"lrn": lrn, "conv1_stride": conv1_stride}},
            "regularizers": regularizers,
            "training": {**training_config(args, precision), **settings},
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
    if name == "plain-fast-compile":
        return PlainLoop(dataset, "fast", args, device, compile=True)
    if name == "regsuite-bf16":
        return RegsuiteLoop(dataset, "fast", [], args, device, precision="bf16")
    if name == "regsuite":
        return RegsuiteLoop(dataset, "fast", [], args, device)
    if name == "regsuite-nnlrn":
        return RegsuiteLoop(dataset, "torch", [], args, device)
    if name == "regsuite-aug":
        return RegsuiteLoop(dataset, "fast", AUGMENTATION, args, device)
    if name == "regsuite-tf32":
        return RegsuiteLoop(dataset, "fast", [], args, device, precision="tf32")
    if name == "regsuite-cl":
        return RegsuiteLoop(dataset, "fast", [], args, device, channels_last=True)
    if name == "regsuite-compile":
        return RegsuiteLoop(dataset, "fast", [], args, device, compile=True)
    if name == "regsuite-stride1":
        return RegsuiteLoop(dataset, "fast", [], args, device, conv1_stride=1)
    raise ValueError(name)


def images_of(name: str, args: argparse.Namespace) -> int:
    return args.slow_images if name in SLOW else args.images


def takes_part(name: str, round_: int, args: argparse.Namespace) -> bool:
    """Slow configurations skip the warm-up and run only in the first --slow-repeats counted rounds."""
    if name not in SLOW:
        return True
    return args.warmup <= round_ < args.warmup + args.slow_repeats


def measure(args: argparse.Namespace) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, list[float]]]:
    """Images/s per configuration: by the wall clock, and per CPU-second of this process (the
    latter is less disturbed by other processes on a shared machine); and the seconds of each
    configuration's warm-up epochs (a compiled model compiles in its first)."""
    device = torch.device(args.device)
    datasets = {size: SyntheticImages(size) for size in {images_of(name, args) for name in args.configs}}
    loops = {name: build(name, datasets[images_of(name, args)], args, device) for name in args.configs}
    wall: dict[str, list[float]] = {name: [] for name in loops}
    cpu: dict[str, list[float]] = {name: [] for name in loops}
    warmup_s: dict[str, list[float]] = {name: [] for name in loops}
    if args.child_ready is not None:  # the thread check: imports and set-up done; wait for the others
        Path(args.child_ready).touch()
        while not Path(args.child_start).exists():
            time.sleep(0.01)
    shuffle = random.Random(0).shuffle
    for round_ in range(args.warmup + args.repeats):
        order = list(loops)
        shuffle(order)  # no configuration always runs right after the same other one
        for name in order:
            if not takes_part(name, round_, args):
                continue
            loop, images = loops[name], images_of(name, args)
            set_global_flags(loop.deterministic)
            sync(device)
            started, started_cpu = time.perf_counter(), time.process_time()
            loop.epoch()
            elapsed, elapsed_cpu = time.perf_counter() - started, time.process_time() - started_cpu
            if round_ >= args.warmup:
                wall[name].append(images / elapsed)
                cpu[name].append(images / elapsed_cpu)
            else:
                warmup_s[name].append(elapsed)
            print(f"  round {round_ + 1}{' (warm-up)' if round_ < args.warmup else ''} {name:18s} "
                  f"{images / elapsed:8.1f} img/s  ({elapsed:.2f} s)", file=sys.stderr, flush=True)
    if device.type == "cuda":
        for name in ("regsuite", "regsuite-aug"):
            if name in loops:
                count_host_syncs(name, loops[name])
    return wall, cpu, warmup_s


def thread_check(args: argparse.Namespace) -> dict:
    """One process with 2 torch threads against two processes at once with 1 thread each, the
    ``regsuite`` configuration in each; rounds in shuffled order. Each child times its own
    epochs (after its imports and one warm-up epoch), started together behind a barrier."""
    layouts = {"1x2": [2], "2x1": [1, 1]}
    found: dict[str, list[float]] = {name: [] for name in layouts}
    shuffle = random.Random(1).shuffle
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.thread_rounds):
            order = list(layouts)
            shuffle(order)
            for name in order:
                folder = Path(tmp) / f"{round_}-{name}"
                folder.mkdir()
                start = folder / "start"
                children = []
                for i, threads in enumerate(layouts[name]):
                    command = [sys.executable, __file__, "--configs", "regsuite", "--threads", str(threads),
                               "--images", str(args.thread_images), "--repeats", str(args.thread_repeats),
                               "--warmup", "1", "--batch-size", str(args.batch_size), "--lr", str(args.lr),
                               "--device", args.device, "--deterministic", str(args.deterministic),
                               "--json", str(folder / f"{i}.json"),
                               "--child-ready", str(folder / f"{i}.ready"), "--child-start", str(start)]
                    children.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                                     text=True))
                while not all((folder / f"{i}.ready").exists() for i in range(len(children))):
                    if any(child.poll() not in (None, 0) for child in children):
                        break
                    time.sleep(0.01)
                start.touch()
                for child in children:
                    _, err = child.communicate()
                    if child.returncode:
                        raise RuntimeError(f"thread check child failed:\n{err}")
                each = [json.loads((folder / f"{i}.json").read_text())["median"]["regsuite"]
                        for i in range(len(children))]
                found[name].append(sum(each))
                print(f"  thread check round {round_ + 1} {name}: "
                      f"{' + '.join(f'{x:.1f}' for x in each)} = {sum(each):.1f} img/s", file=sys.stderr, flush=True)
    return found


COMPILED = {"plain-fast-compile": "plain-fast", "regsuite-compile": "regsuite"}  # compiled → eager


def report_compile(wall: dict[str, list[float]], warmup_s: dict[str, list[float]], args: argparse.Namespace) -> dict:
    return {name: found for name, base in COMPILED.items()
            if (found := report_one_compile(name, base, wall, warmup_s, args))}


def report_one_compile(name: str, base: str, wall: dict[str, list[float]], warmup_s: dict[str, list[float]],
                       args: argparse.Namespace) -> dict:
    """The compile's cost (its first epoch less a steady epoch, less the same difference for
    eager) and the run length at which the faster steady state pays it back: by the per-round
    ratio (the one that counts, as in report()) and by the ratio of medians."""
    if name not in wall or base not in wall or not warmup_s[name]:
        return {}
    steady, eager = statistics.median(wall[name]), statistics.median(wall[base])
    paired = statistics.median(a / b for a, b in zip(wall[name], wall[base]))
    compile_s = warmup_s[name][0] - args.images / steady
    if warmup_s[base]:
        compile_s -= max(0.0, warmup_s[base][0] - args.images / eager)
    eager_epoch = EPOCH_IMAGES / eager  # seconds per epoch of 12,500 images

    def payback(speedup: float) -> float | None:
        saved = eager_epoch * (1 - 1 / speedup)
        return compile_s / saved if saved > 0 else None

    def said(epochs: float | None) -> str:
        return f"after {epochs:.1f} epochs" if epochs is not None else "never (not faster)"

    by_paired, by_medians = payback(paired), payback(steady / eager)
    print(f"\n  {name}: first epoch {warmup_s[name][0]:.1f} s, of which compile ≈ {compile_s:.1f} s "
          f"(inductor cache dir {os.environ.get('TORCHINDUCTOR_CACHE_DIR', 'default')}); steady {steady:.1f} vs "
          f"eager {eager:.1f} img/s (per-round ratio {paired:.3f}); an eager epoch of {EPOCH_IMAGES:,} images "
          f"takes {eager_epoch:.0f} s; the compile pays back {said(by_paired)} by the per-round ratio, "
          f"{said(by_medians)} by the ratio of medians")
    return {"first_epoch_s": warmup_s[name][0], "compile_s": compile_s, "steady_img_s": steady, "eager_img_s": eager,
            "paired_ratio": paired, "payback_epochs_paired": by_paired, "payback_epochs_medians": by_medians}


def report_threads(found: dict[str, list[float]], args: argparse.Namespace) -> dict:
    if not found or not found["1x2"]:
        return {}
    one, two = statistics.median(found["1x2"]), statistics.median(found["2x1"])
    paired = statistics.median(b / a for a, b in zip(found["1x2"], found["2x1"]))
    print(f"\n  threads ({args.thread_images} images × {args.thread_repeats} repeats per child, "
          f"{args.thread_rounds} rounds): 1 process × 2 threads {one:.1f} img/s (best {max(found['1x2']):.1f}); "
          f"2 processes × 1 thread {two:.1f} img/s together (best {max(found['2x1']):.1f}); "
          f"2×1 / 1×2 = {paired:.3f} (paired; of medians {two / one:.3f})")
    return {"1x2": found["1x2"], "2x1": found["2x1"], "median_1x2": one, "median_2x1": two, "ratio_paired": paired}


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


def report(wall: dict[str, list[float]], cpu: dict[str, list[float]], warmup_s: dict[str, list[float]],
           args: argparse.Namespace) -> dict:
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
    if any(name in SLOW for name in wall):
        print(f"  ({', '.join(n for n in wall if n in SLOW)}: {args.slow_images} images per repeat, "
              f"{args.slow_repeats} repeats, no warm-up)")
    print(f"  {'images/s':18s} {'median':>8s} {'best':>8s} {'worst':>8s}  {'per CPU-s (median)':>18s}")
    for name, values in wall.items():
        print(f"  {name:18s} {medians[name]:8.1f} {best[name]:8.1f} {min(values):8.1f}  {cpu_medians[name]:18.1f}")
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
            "ratios": ratios, "warmup_s": warmup_s, "compile": report_compile(wall, warmup_s, args),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(), "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
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
    parser.add_argument("--slow-images", type=int, default=128, help=f"images per repeat of {', '.join(SLOW)}")
    parser.add_argument("--slow-repeats", type=int, default=2, help=f"counted repeats of {', '.join(SLOW)} (no warm-up)")
    parser.add_argument("--thread-rounds", type=int, default=0,
                        help="rounds of the thread check (1 process × 2 threads vs 2 processes × 1 thread); 0 = off")
    parser.add_argument("--thread-images", type=int, default=384, help="images per repeat in the thread check")
    parser.add_argument("--thread-repeats", type=int, default=3, help="counted repeats per child in the thread check")
    parser.add_argument("--child-ready", help=argparse.SUPPRESS)  # the thread check's barrier
    parser.add_argument("--child-start", help=argparse.SUPPRESS)
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
    if set(COMPILED) & set(args.configs) and "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
        # a cold compile, as the first run on a machine sees it (later runs reuse the cache on disk)
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="train_speed_inductor_")
        atexit.register(shutil.rmtree, os.environ["TORCHINDUCTOR_CACHE_DIR"], ignore_errors=True)
    result = report(*measure(args), args)
    if args.thread_rounds:
        result["thread_check"] = report_threads(thread_check(args), args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
