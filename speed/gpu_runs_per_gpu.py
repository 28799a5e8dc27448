"""GPU throughput of concurrent training processes: how many runs per GPU pay off?

Standalone: needs only python3 and torch (no regsuite, pydantic or albumentations), so it runs
on a bare GPU machine. It mirrors what regsuite's local executor does with ``runs_per_gpu``:
K separate processes, each pinned to one GPU with ``CUDA_VISIBLE_DEVICES``, each training its
own model on its own data held on the GPU as uint8 (regsuite's loop: no DataLoader, no
per-batch host sync). All K train in the same measured window, after a warm-up.

Two networks, the two ends of regsuite's built-ins:
  * ``small``: small_cnn on 8×8×1 digits-sized images (batch 64): launch-bound, a GPU idles.
  * ``study``: the study's AlexNet-style CNN on 64×64×3 (conv1 11×11 stride 4, LRN, 1024-unit
    dense layers; batch 128).

For each network and K in --runs (default 1 2 4) it prints images/s per process and summed,
and the start-up of one worker (python + import torch + CUDA context + first step), the
per-run overhead of a fresh process. With several GPUs visible, ``--per-gpu-scaling`` also
runs one process per GPU on 1, 2, … GPUs.

    python3 speed/gpu_runs_per_gpu.py                      # ~3 minutes on one GPU (6 windows of ~30 s)
    python3 speed/gpu_runs_per_gpu.py --seconds 5 --runs 1 2 4 8
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

T0 = time.time()  # process start, for the start-up figure


def build(name: str):
    from torch import nn

    if name == "small":
        w, hidden, classes = 32, 128, 10
        net = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.25),
            nn.Linear(2 * w * 16, hidden), nn.ReLU(inplace=True), nn.Dropout(0.25), nn.Linear(hidden, classes),
        )
        return net, (1, 8, 8), 64, classes, 1200
    classes = 25
    net = nn.Sequential(
        nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(inplace=True),
        nn.LocalResponseNorm(11, alpha=1e-4 * 11, beta=0.75, k=2.0), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True),
        nn.LocalResponseNorm(11, alpha=1e-4 * 11, beta=0.75, k=2.0), nn.MaxPool2d(3, 2, ceil_mode=True),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
        nn.Flatten(), nn.LazyLinear(1024), nn.ReLU(inplace=True), nn.Linear(1024, 1024), nn.ReLU(inplace=True),
        nn.Linear(1024, classes),
    )
    return net, (3, 64, 64), 128, classes, 12500


def child(args: argparse.Namespace) -> None:
    import torch
    import torch.nn.functional as F

    device = torch.device("cuda")
    torch.manual_seed(0)
    net, shape, batch, classes, n = build(args.model)
    images = torch.randint(0, 256, (n, *shape), dtype=torch.uint8, device=device)
    labels = torch.randint(0, classes, (n,), device=device)
    net = net.to(device)
    net(images[:2].float())  # materialize lazy layers
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    losses = torch.zeros((), device=device)

    def step(index):
        x = images[index].float().div_(255.0)
        loss = F.cross_entropy(net(x), labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    order = torch.randperm(n, device=device)
    losses += step(order[:batch])
    torch.cuda.synchronize()
    startup = time.time() - T0
    for i in range(20):  # warm-up
        losses += step(order[(i * batch) % (n - batch):][:batch])
    torch.cuda.synchronize()
    late = time.time() > args.start_at  # then its window misses part of the others'
    while time.time() < args.start_at:
        time.sleep(0.01)
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < args.seconds:
        for _ in range(10):
            start = (steps * batch) % (n - batch)
            losses += step(order[start:start + batch])
            steps += 1
        torch.cuda.synchronize()  # once per 10 steps, as regsuite reads losses rarely
    elapsed = time.perf_counter() - started
    print(json.dumps({"images_per_s": steps * batch / elapsed, "startup_s": startup, "late": late,
                      "loss": float(losses)}))


def measure(model: str, gpus: list[str], per_gpu: int, seconds: float) -> list[dict]:
    """K = len(gpus) × per_gpu processes, all training in one window."""
    start_at = time.time() + 20  # after every child has imported torch and warmed up
    procs = []
    for gpu in gpus:
        for _ in range(per_gpu):
            env = dict(os.environ, CUDA_VISIBLE_DEVICES=gpu, OMP_NUM_THREADS="1")
            procs.append(subprocess.Popen(
                [sys.executable, __file__, "--child", "--model", model, "--seconds", str(seconds),
                 "--start-at", str(start_at)], env=env, stdout=subprocess.PIPE, text=True))
    out = []
    for proc in procs:
        stdout, _ = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"child failed ({proc.returncode})")
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    if any(r["late"] for r in out):
        print("  (warning: a process started its window late; the windows overlap only in part)")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=("small", "study"), default="small", help=argparse.SUPPRESS)
    parser.add_argument("--models", nargs="+", default=["small", "study"])
    parser.add_argument("--runs", type=int, nargs="+", default=[1, 2, 4], help="processes per GPU to try")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured window per configuration")
    parser.add_argument("--per-gpu-scaling", action="store_true", help="also 1 process per GPU on 1..N GPUs")
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    import torch

    count = torch.cuda.device_count()
    if not count:
        raise SystemExit("no GPU visible")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    gpus = [g.strip() for g in visible.split(",")][:count] if visible else [str(i) for i in range(count)]
    print(f"torch {torch.__version__}, {count} × {torch.cuda.get_device_name(0)}")
    for model in args.models:
        base = None
        for k in args.runs:
            rows = measure(model, gpus[:1], k, args.seconds)
            total = sum(r["images_per_s"] for r in rows)
            base = base or total
            print(f"{model:5}  runs per GPU {k}: {total:10.0f} images/s summed ({total / base:4.2f}× of 1), "
                  f"{total / k:9.0f} per run; worker start-up {max(r['startup_s'] for r in rows):.1f} s")
        if args.per_gpu_scaling and count > 1:
            one = None
            for n in range(1, count + 1):
                total = sum(r["images_per_s"] for r in measure(model, gpus[:n], 1, args.seconds))
                one = one or total
                print(f"{model:5}  {n} GPU(s), 1 run each: {total:10.0f} images/s ({total / one:4.2f}× of 1 GPU)")


if __name__ == "__main__":
    main()
