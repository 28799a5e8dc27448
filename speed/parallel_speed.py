"""How much faster does a grid of small CPU runs finish with 2 workers than with 1, and what
does starting a worker process cost per run?

Runs the same grid (4 runs: digits + small_cnn, 2 regularizer sets × 2 seeds) with the real
CLI, each time into a fresh results folder:

  * ``--workers 1``                : one worker process at a time, 2 torch threads (the default: cores // workers)
  * ``--workers 2``                : two worker processes at once, 1 torch thread each (the default)
  * ``--workers 1 --threads 1``    : one at a time, 1 thread: 2 vs 1 workers with the work per run held equal
  * ``--workers 0 --threads 1``    : every run inside the regsuite process: no worker process at all

Per-run worker overhead = (wall[workers 1, threads 1] − wall[workers 0, threads 1]) / runs;
it is also measured directly as the start-up of a bare interpreter, ``import torch``, and
what the worker imports before it trains (regsuite, the registry, the plugins).

    .venv/bin/python speed/parallel_speed.py
    .venv/bin/python speed/parallel_speed.py --epochs 20 --repeat 3

Timings depend on what else runs on the machine: the load average is printed with them.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPEC = """name = "parallel-speed"
task = "image_classification"
seeds = [0, 1]

[dataset]
name = "digits"

[model]
name = "small_cnn"

[training]
epochs = {epochs}
batch_size = 64
device = "cpu"

[[sets]]
label = "none"

[[sets]]
label = "dropout"
regularizers = [{{ name = "dropout", p = 0.25 }}]
"""

STARTUPS = {
    "python (bare interpreter)": "pass",
    "python + import torch": "import torch",
    "worker imports (torch, regsuite, plugins)": (
        "import regsuite.execution.worker, regsuite.checkpoint, regsuite.train; "
        "from regsuite.registry import get_registry; get_registry()"
    ),
}


def timed(command: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - started


def grid_wall(spec: Path, flags: list[str], root: Path) -> tuple[float, list[float]]:
    results = root / f"results-{len(list(root.iterdir()))}"
    wall = timed([sys.executable, "-m", "regsuite.cli", "run", str(spec), "--results", str(results), *flags],
                 env=dict(os.environ, COLUMNS="160"))
    from regsuite.store import Store

    with Store(results, create=False) as store:
        per_run = [record.wall_time for _, _, record in store.spec_rows("parallel-speed")]
    return wall, per_run


CONFIGS = {
    "w1": ["--workers", "1"],
    "w2": ["--workers", "2"],
    "w1t1": ["--workers", "1", "--threads", "1"],
    "w0t1": ["--workers", "0", "--threads", "1"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10, help="epochs per run (default 10)")
    parser.add_argument("--repeat", type=int, default=1, help="repetitions of each measurement (median shown)")
    args = parser.parse_args()

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load average before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    startup = {label: statistics.median(timed([sys.executable, "-c", code]) for _ in range(max(3, args.repeat)))
               for label, code in STARTUPS.items()}
    for label, seconds in startup.items():
        print(f"  start-up  {label:<45} {seconds:6.2f} s")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        spec = root / "parallel-speed.toml"
        spec.write_text(SPEC.format(epochs=args.epochs))
        measured: dict[str, list[tuple[float, list[float]]]] = {name: [] for name in CONFIGS}
        for _ in range(args.repeat):  # interleaved, so that a change of load hits every configuration
            for name, flags in CONFIGS.items():
                measured[name].append(grid_wall(spec, flags, root))
                wall, per_run = measured[name][-1]
                print(f"  grid of 4 runs × {args.epochs} epochs, {' '.join(flags):<24} {wall:7.1f} s wall "
                      f"(runs {', '.join(f'{t:.1f}' for t in per_run)} s inside their process)", flush=True)
    wall = {name: statistics.median(w for w, _ in rows) for name, rows in measured.items()}

    runs = 4
    print()
    print(f"speed-up, 2 workers vs 1 (defaults: 1 vs 2 threads per run): {wall['w1'] / wall['w2']:.2f}×")
    print(f"speed-up, 2 workers vs 1 (1 thread per run in both):         {wall['w1t1'] / wall['w2']:.2f}×")
    print(f"worker overhead per run (grid walls):   {(wall['w1t1'] - wall['w0t1']) / runs:.2f} s "
          f"= (wall[workers 1] − wall[workers 0]) / {runs}, 1 thread each")
    print(f"worker overhead per run (imports only): {startup['worker imports (torch, regsuite, plugins)']:.2f} s")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
