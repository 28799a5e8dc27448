"""The fast path, measured: every speed figure regsuite reports about a device, in one call.

    python speed/fast_path.py --device cpu                          # a few minutes on 2 cores
    python speed/fast_path.py --device cuda --archive tiny-imagenet-200-paper25.zip --paper --agreement
    python speed/fast_path.py --device cpu --archive A.zip --paper --paper-epochs 1 --paper-seeds 0

Sections (``--only loop,fixed`` runs some of them):

  loop       images/s of regsuite's training loop and of a plain hand-written loop on the same
             model, data, device and precision (speed/train_speed.py): regsuite / plain (target
             ≥ 0.95), online augmentation / none (≥ 0.9; per-image torch ops on a GPU), and, for
             information, channels_last, tf32 and bf16 against fp32 on a GPU.
  fixed      the fixed cost of one run: ``regsuite run`` of three 1-epoch runs on a small slice
             of the training data with a fresh worker process per run, with one worker reused
             for all three (the default), and inside the regsuite process (``--workers 0``): the
             command's time beyond the epochs per run, and the start of a process (interpreter,
             torch, regsuite).
  runs       throughput of 1, 2, 4, 8 runs sharing one GPU (speed/gpu_runs_per_gpu.py; GPU only).
  paper      the wall time of the whole ``specs/paper.toml`` (6 rows × 3 seeds × 25 epochs) on the
             archive, after its data cache exists, against the plain loop's pure training time
             for the same images (target on one H100/H200: ≤ 90 s and ≤ 2×). Opt-in (--paper).
  agreement  GPU against CPU loss curves of one short run: the CPU's seed-0 val loss per epoch
             against the GPU's, beside the spread of the GPU's own seeds. Opt-in (--agreement,
             a GPU and an archive).

The fixed cost uses the archive when one is given (custom_cnn on a 4% slice: the full cache is
still read), else scikit-learn's digits. Everything is written to --json as well.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from parallel_speed import STARTUPS, timed  # beside this script, whose folder python puts on sys.path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SECTIONS = ("loop", "fixed", "runs", "paper", "agreement")


def regsuite(*args: str, env: dict | None = None, check: bool = True) -> tuple[float, str]:
    """Run the regsuite CLI; its wall time and output."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "regsuite.cli", *args], cwd=ROOT, env=env or os.environ.copy(),
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if check and proc.returncode != 0:
        raise SystemExit(f"regsuite {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return elapsed, proc.stdout + proc.stderr


def stored_runs(results: Path) -> list[dict]:
    from regsuite.store import Store

    with Store(results, create=False) as store:
        runs = []
        for run in store.runs_with_status("done"):
            epochs = store.epochs(run.run_id)
            runs.append({"run_id": run.run_id, "wall_time": run.wall_time, "device": run.device,
                         "epochs": epochs, "summary": run.summary, "config": run.config,
                         "epoch_seconds": sum(e["epoch_time"] for e in epochs)})
        return runs


def small_spec(path: Path, args: argparse.Namespace, *, epochs: int, seeds: list[int], fraction: float | None) -> Path:
    """A one-row spec on the archive (custom_cnn) or on digits (small_cnn)."""
    if args.archive:
        subset = f"train_fraction = {fraction}\n" if fraction else ""
        data = (f'[dataset]\nname = "tiny_imagenet"\nroot = {json.dumps(str(args.archive))}\nclasses = {args.classes}\n'
                f'{subset}\n[model]\nname = "custom_cnn"\n')
    else:
        data = '[dataset]\nname = "digits"\n\n[model]\nname = "small_cnn"\n'
    path.write_text(
        f'name = "fastpath"\ntask = "image_classification"\nseeds = {json.dumps(seeds)}\n\n{data}\n'
        f'[training]\nepochs = {epochs}\nbatch_size = 128\nlr = 1e-4\ndevice = "{args.device}"\n\n'
        '[[sets]]\nlabel = "none"\nregularizers = []\n', encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- sections


def loop(args: argparse.Namespace, work: Path) -> dict:
    configs = ["plain-nnlrn", "plain-fast", "regsuite-nnlrn", "regsuite", "regsuite-aug", "regsuite-cl"]
    if args.device.startswith("cuda"):
        configs += ["regsuite-tf32", "regsuite-bf16"]
    out = work / "loop.json"
    command = [sys.executable, str(HERE / "train_speed.py"), "--device", args.device, "--images", str(args.images),
               "--repeats", str(args.repeats), "--configs", ",".join(configs), "--json", str(out)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    tail = proc.stdout.splitlines()
    start = next((i for i, line in enumerate(tail) if line.startswith("custom_cnn,")), 0)
    print("\n".join(tail[start:]))
    if proc.returncode != 0:
        print(proc.stderr[-2000:])
        return {"failed": proc.returncode}
    return json.loads(out.read_text())


FIXED_MODES = {  # how the fixed section runs its three runs
    "fresh process per run": ["--workers", "1", "--set", "execution.reuse_workers=false"],
    "one reused worker": ["--workers", "1"],
    "in the regsuite process": ["--workers", "0"],
}


def fixed(args: argparse.Namespace, work: Path) -> dict:
    spec = small_spec(work / "fixed.toml", args, epochs=1, seeds=[0, 1, 2], fraction=0.04)
    regsuite("validate", str(spec), "--results", str(work / "warm"))  # the data cache, outside the timing
    found = {}
    print(f"three 1-epoch runs ({'custom_cnn on 4% of the archive' if args.archive else 'small_cnn on digits'}); "
          "fixed = a run's wall time less its epochs (building it: data from the cache, model, optimizer; "
          "its test pass; the store)")
    for index, (mode, flags) in enumerate(FIXED_MODES.items()):
        results = work / f"fixed-{index}"
        wall, _ = regsuite("run", str(spec), "--results", str(results), "--no-plots", *flags)
        runs = stored_runs(results)
        epochs = sum(r["epoch_seconds"] for r in runs)
        found[mode] = {"command_s": wall, "runs": len(runs), "run_wall_s": [r["wall_time"] for r in runs],
                       "fixed_per_run_s": [r["wall_time"] - r["epoch_seconds"] for r in runs], "epochs_s": epochs,
                       "overhead_per_run_s": (wall - epochs) / max(len(runs), 1)}
        print(f"  {mode:24s} whole command {wall:6.1f} s, epochs {epochs:5.1f} s: {found[mode]['overhead_per_run_s']:5.2f} s "
              f"per run beyond its epochs (fixed inside the run: median "
              f"{statistics.median(found[mode]['fixed_per_run_s']):.2f} s)")
    # The start-up of a fresh process, as speed/parallel_speed.py times it (each figure includes the one before).
    found["start"] = {label: statistics.median(timed([sys.executable, "-c", code]) for _ in range(3))
                      for label, code in STARTUPS.items()}
    print("  a fresh process: " + ", ".join(f"{label} {seconds:.2f} s" for label, seconds in found["start"].items()))
    return found


def runs(args: argparse.Namespace, work: Path) -> dict:
    if not args.device.startswith("cuda"):
        print("needs a GPU (several CPU runs at once: speed/parallel_speed.py)")
        return {"skipped": "needs a GPU"}
    proc = subprocess.run([sys.executable, str(HERE / "gpu_runs_per_gpu.py"), "--models", "study", "--seconds",
                           str(args.window), "--runs", *map(str, args.runs)], cwd=ROOT, capture_output=True, text=True)
    print(proc.stdout.strip() or proc.stderr[-2000:])
    return {"output": proc.stdout, "returncode": proc.returncode}


def paper(args: argparse.Namespace, work: Path, plain_img_s: float | None) -> dict:
    if not args.archive:
        print("needs --archive (the 25-class Tiny ImageNet archive)")
        return {"skipped": "needs --archive"}
    results = args.paper_results or work / "paper"
    sets = ["--set", f"dataset.root={args.archive}", "--set", f"dataset.classes={args.classes}", "--set", f"seeds=[{args.paper_seeds}]",
            "--set", f"training.epochs={args.paper_epochs}", "--set", f"training.device={args.device}"]
    regsuite("validate", "specs/paper.toml", *sets, "--results", str(results))  # builds the data cache
    execution = ["--runs-per-gpu", str(args.runs_per_gpu)] if args.device.startswith("cuda") else []
    wall, output = regsuite("run", "specs/paper.toml", *sets, "--results", str(results), "--no-plots", *execution)
    done = stored_runs(results)
    images = sum(r["summary"]["train_images_per_epoch"] * r["summary"]["epochs_run"] for r in done)
    found = {"wall_s": wall, "runs": len(done), "epochs": args.paper_epochs, "seeds": args.paper_seeds,
             "images_trained": images, "epoch_seconds": sum(r["epoch_seconds"] for r in done)}
    line = (f"specs/paper.toml, {len(done)} runs × {args.paper_epochs} epochs (seeds {args.paper_seeds}): "
            f"{wall:.1f} s wall, {images:,} training images")
    if plain_img_s:
        found["plain_training_s"] = images / plain_img_s
        found["ratio_to_plain"] = wall / found["plain_training_s"]
        line += (f"; the plain loop trains them in {found['plain_training_s']:.1f} s at {plain_img_s:,.0f} img/s: "
                 f"{found['ratio_to_plain']:.2f}× (target ≤ 2×)")
    print(line)
    print("\n".join(output.strip().splitlines()[-3:]))
    return found


def agreement(args: argparse.Namespace, work: Path) -> dict:
    if not (args.device.startswith("cuda") and args.archive):
        print("needs a GPU and --archive")
        return {"skipped": "needs a GPU and --archive"}
    curves = {}
    for device, seeds in ((args.device, [0, 1, 2]), ("cpu", [0])):
        spec = small_spec(work / f"agree-{device}.toml", argparse.Namespace(**{**vars(args), "device": device}),
                          epochs=args.agreement_epochs, seeds=seeds, fraction=None)
        results = work / f"agree-{device}"
        regsuite("run", str(spec), "--results", str(results), "--no-plots", "--workers", "0")
        for run in stored_runs(results):
            curves[(device, run["config"]["seed"])] = [e["val_loss"] for e in run["epochs"]]
    gpu = [curves[(args.device, s)] for s in (0, 1, 2)]
    spread = max(max(values) - min(values) for values in zip(*gpu))
    difference = max(abs(a - b) for a, b in zip(curves[("cpu", 0)], gpu[0]))
    verdict = "agree" if difference <= spread else "DIFFER"
    print(f"val loss per epoch, seed 0: CPU {fmt(curves[('cpu', 0)])}, GPU {fmt(gpu[0])}; largest CPU−GPU "
          f"difference {difference:.4f}, the GPU's own spread over 3 seeds {spread:.4f}: {verdict}")
    return {"cpu_seed0": curves[("cpu", 0)], "gpu": gpu, "difference": difference, "gpu_spread": spread, "verdict": verdict}


def fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.3f}" for v in values) + "]"


# ---------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="cpu or cuda[:n] (default: cuda when there is one)")
    parser.add_argument("--archive", type=Path, help="a Tiny ImageNet archive (the study's 25 classes)")
    parser.add_argument("--classes", type=int, default=25, help="classes of the archive to train on (the study: 25)")
    parser.add_argument("--only", help=f"comma-separated sections of {', '.join(SECTIONS)} (default: loop, fixed, "
                        "runs, and paper / agreement when asked for)")
    parser.add_argument("--images", type=int, default=None, help="images per timed epoch in the loop section "
                        "(default 384 on a CPU, 25600 on a GPU)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads in the loop section")
    parser.add_argument("--runs", type=int, nargs="+", default=[1, 2, 4, 8], help="runs per GPU to try")
    parser.add_argument("--window", type=float, default=5.0, help="seconds measured per runs-per-GPU setting")
    parser.add_argument("--paper", action="store_true", help="run the paper section (the whole specs/paper.toml)")
    parser.add_argument("--paper-epochs", type=int, default=25)
    parser.add_argument("--paper-seeds", default="0,1,2")
    parser.add_argument("--paper-results", type=Path, help="results folder of the paper section (default: a "
                        "temporary one); export it with regsuite results export paper --results DIR")
    parser.add_argument("--runs-per-gpu", type=int, default=4, help="runs sharing the GPU in the paper section")
    parser.add_argument("--agreement", action="store_true", help="run the agreement section (GPU against CPU)")
    parser.add_argument("--agreement-epochs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    args = parser.parse_args(argv)
    if args.device is None:
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    args.images = args.images or (25600 if args.device.startswith("cuda") else 384)
    if args.archive:
        args.archive = args.archive.resolve()
    if args.only:
        args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    else:
        args.sections = ["loop", "fixed", "runs"] + ["paper"] * args.paper + ["agreement"] * args.agreement
    unknown = sorted(set(args.sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; the sections are {', '.join(SECTIONS)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    found: dict = {"device": args.device, "argv": sys.argv[1:]}
    with tempfile.TemporaryDirectory(prefix="fast_path_") as tmp:
        work = Path(tmp)
        for section in args.sections:
            print(f"\n=== {section} ({time.strftime('%H:%M:%S')})", flush=True)
            if section == "paper":
                plain = found.get("loop", {}).get("median", {}).get("plain-fast")
                found[section] = paper(args, work, plain)
            else:
                found[section] = globals()[section](args, work)
    if args.json:
        args.json.write_text(json.dumps(found, indent=1, default=str) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
