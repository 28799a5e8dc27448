"""Forward + backward time of regsuite's LocalResponseNorm against nn.LocalResponseNorm, on
custom_cnn's two LRN inputs at batch 128 (the study's parameters).

    python speed/lrn_speed.py [--device cuda] [--threads 1]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from regsuite.layers import LocalResponseNorm

SHAPES = {"after conv1": (128, 64, 15, 15), "after conv2": (128, 192, 7, 7)}


def time_fwd_bwd(layer: nn.Module, x: torch.Tensor, grad: torch.Tensor, repeats: int) -> float:
    times = []
    for _ in range(repeats + 3):
        leaf = x.detach().requires_grad_(True)
        if x.is_cuda:
            torch.cuda.synchronize()
        started = time.perf_counter()
        layer(leaf).backward(grad)
        if x.is_cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return statistics.median(times[3:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    fast = LocalResponseNorm.from_tf(depth_radius=5, bias=2.0, alpha=1e-4, beta=0.75)
    reference = nn.LocalResponseNorm(fast.size, fast.alpha, fast.beta, fast.k)
    print(f"LRN forward + backward, device {args.device}, {torch.get_num_threads()} threads, median of {args.repeats}")
    for where, shape in SHAPES.items():
        generator = torch.Generator().manual_seed(0)
        x = (torch.relu(torch.randn(shape, generator=generator)) * 20).to(args.device)
        grad = torch.randn(shape, generator=generator).to(args.device)
        t_ref, t_fast = (time_fwd_bwd(layer, x, grad, args.repeats) for layer in (reference, fast))
        print(f"  {where:12s} {str(shape):20s} nn.LocalResponseNorm {t_ref * 1e3:8.2f} ms   "
              f"regsuite {t_fast * 1e3:8.2f} ms   speed-up {t_ref / t_fast:5.2f}×")


if __name__ == "__main__":
    main()
