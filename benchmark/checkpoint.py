"""Per-epoch checkpoints: a run that is interrupted continues where it stopped.

One file per run, ``<results>/checkpoints/<run_id>.pt``, rewritten after every epoch:
written to a temporary file, flushed to disk, then renamed over the old one (``os.replace``
is atomic), so a kill at any moment leaves either the previous or the new checkpoint.

A checkpoint holds everything the rest of the run depends on: model and optimizer state,
every random number generator (the run's order and batch generators, torch's global CPU and
CUDA generators that dropout draws from, NumPy's and Python's), the epoch, the history of
per-epoch metrics and, for regularizers that keep state across epochs (early stopping's
best loss, say), their ``state_dict()``. Only tensors and plain Python values are stored, so it
loads with ``torch.load(weights_only=True)``: opening a checkpoint never runs code. With
deterministic CPU kernels a resumed run ends with exactly the result of an uninterrupted one.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from regsuite import atomic
from regsuite.train import RunContext, TrainState

FORMAT = 1


@dataclass
class Saved:
    """A loaded checkpoint; ``restore`` puts it into a freshly prepared run."""

    epoch: int
    wall_seconds: float
    payload: dict[str, Any]

    def restore(self, ctx: RunContext, state: TrainState) -> None:
        p = self.payload
        state.model.load_state_dict(p["model"])
        state.optimizer.load_state_dict(p["optimizer"])
        state.order_generator.set_state(p["rng"]["order"])
        state.batch_generator.set_state(p["rng"]["batch"])
        state.epoch = p["epoch"]
        state.stopped = p["stopped"]
        state.history = [dict(row) for row in p["history"]]
        restore_global_rng(p["rng"])
        for reg, reg_state in zip(ctx.regularizers, p["regularizers"]):
            if reg_state is not None:
                reg.load_state_dict(reg_state)


class Checkpoints:
    """The checkpoint files of one results folder."""

    def __init__(self, directory: Path | str):
        self.directory = Path(directory)

    def path(self, run_id: str) -> Path:
        return self.directory / f"{run_id}.pt"

    def save(self, run_id: str, ctx: RunContext, state: TrainState, wall_seconds: float) -> Path:
        payload = {
            "format": FORMAT,
            "run_id": run_id,
            "epoch": state.epoch,
            "stopped": state.stopped,
            "wall_seconds": wall_seconds,
            "history": [dict(row) for row in state.history],
            "model": state.model.state_dict(),
            "optimizer": state.optimizer.state_dict(),
            "rng": {"order": state.order_generator.get_state(), "batch": state.batch_generator.get_state(),
                    **global_rng_state()},
            "regularizers": [regularizer_state(reg) for reg in ctx.regularizers],
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.path(run_id)
        with atomic.replacing(target, durable=True) as temporary:
            torch.save(payload, temporary)
        return target

    def load(self, run_id: str) -> Saved | None:
        """The run's checkpoint, or None. A damaged file is reported, removed and ignored
        (the run then starts over): it can only come from a disk or filesystem fault."""
        path = self.path(run_id)
        if not path.is_file():
            return None
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            if payload.get("format") != FORMAT or payload.get("run_id") != run_id:
                raise ValueError(f"format {payload.get('format')!r} for run {payload.get('run_id')!r}")
        except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint means: start over
            print(f"regsuite: ignoring unreadable checkpoint {path}: {exc}", flush=True)
            path.unlink(missing_ok=True)
            return None
        return Saved(epoch=payload["epoch"], wall_seconds=payload["wall_seconds"], payload=payload)

    def exists(self, run_id: str) -> bool:
        return self.path(run_id).is_file()

    def delete(self, run_id: str) -> None:
        self.path(run_id).unlink(missing_ok=True)


def regularizer_state(reg: Any) -> dict[str, Any] | None:
    """Regularizers that keep state across epochs expose ``state_dict``/``load_state_dict``."""
    if callable(getattr(reg, "state_dict", None)) and callable(getattr(reg, "load_state_dict", None)):
        return reg.state_dict()
    return None


def global_rng_state() -> dict[str, Any]:
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state(legacy=True)
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "numpy": {"kind": np_kind, "keys": torch.from_numpy(np_keys.astype(np.int64)), "pos": int(np_pos),
                  "has_gauss": int(np_has_gauss), "gauss": float(np_gauss)},
        "python": {"version": py_version, "state": torch.tensor(py_state, dtype=torch.int64), "gauss": py_gauss},
    }


def restore_global_rng(rng: dict[str, Any]) -> None:
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    n = rng["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = rng["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss"]))
