"""One run, start to finish: the code path every executor shares.

:func:`execute_run` trains a run its caller has claimed, resuming from the run's checkpoint
if there is one, and writes every epoch, the summary or the failure through a *sink*. The
in-process executor (``workers = 0``) calls it directly; the local executor starts
``python -m regsuite.execution.worker`` once per run, which reads the run's resolved config
from the store by run id and calls it; Ray tasks call it on cluster nodes with a sink that
forwards writes to the driver's node.
"""
from __future__ import annotations

import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import torch

from regsuite.checkpoint import Checkpoints
from regsuite.errors import RegsuiteError
from regsuite.execution.grid import interrupted_reason
from regsuite.registry import Registry, get_registry
from regsuite.store import RunStatus, Store
from regsuite.train import Reporter, build_context, run_training

ERROR_TAIL_LINES = 20
LOST_REASON = "another regsuite process took this run over"


@dataclass
class RunResult:
    status: Literal["done", "failed", "interrupted", "lost"]  # lost: another process took the claim over
    error: str = ""


class LostClaim(Exception):
    """Another process took this run over (our claim went stale): stop without writing."""


class Sink(Protocol):
    """Where one run's results go. Every write is refused (False) once the caller no longer
    holds the run's claim, so a process that lost its claim can never overwrite results."""

    def truncate_epochs(self, after_epoch: int) -> bool: ...
    def record_epoch(self, epoch: int, metrics: dict[str, float]) -> bool: ...
    def finish(self, summary: dict[str, Any], device: str, wall_time: float) -> bool: ...
    def fail(self, reason: str, status: RunStatus = "failed") -> bool: ...


class StoreSink:
    """Writes straight into the SQLite results store (same host as the store)."""

    def __init__(self, store: Store, run_id: str, owner: str):
        self.store, self.run_id, self.owner = store, run_id, owner

    def truncate_epochs(self, after_epoch: int) -> bool:
        return self.store.truncate_epochs(self.run_id, after_epoch, owner=self.owner)

    def record_epoch(self, epoch: int, metrics: dict[str, float]) -> bool:
        return self.store.record_epoch(self.run_id, epoch, metrics, owner=self.owner)

    def finish(self, summary: dict[str, Any], device: str, wall_time: float) -> bool:
        return self.store.finish(self.run_id, summary, device, wall_time, owner=self.owner)

    def fail(self, reason: str, status: RunStatus = "failed") -> bool:
        return self.store.fail(self.run_id, reason, status=status, owner=self.owner)


def execute_run(run_id: str, config: dict[str, Any], sink: Sink, checkpoints: Checkpoints,
                reporter: Reporter | None = None, keep_checkpoints: bool = False,
                registry: Registry | None = None) -> RunResult:
    """Train a claimed run; record its epochs and its end (done / failed / interrupted).

    Never raises for a failure of the run itself: one broken run must not take the grid
    down. A KeyboardInterrupt (Ctrl-C, or SIGTERM in a worker process) stops it: the run is
    recorded as interrupted and its last checkpoint is kept. ``wall_time`` is the whole
    attempt (building the run, every epoch, the test split), summed over resumed attempts.
    """
    reporter = reporter or Reporter()
    started = time.perf_counter()
    try:
        ctx = build_context(config, registry or get_registry())
        saved = checkpoints.load(run_id)
        if not sink.truncate_epochs(saved.epoch if saved else 0):
            raise LostClaim
        earlier = saved.wall_seconds if saved else 0.0

        def on_epoch(state, metrics):
            if not sink.record_epoch(state.epoch, metrics):
                raise LostClaim
            checkpoints.save(run_id, ctx, state, earlier + time.perf_counter() - started)

        resume = (lambda state: saved.restore(ctx, state)) if saved else None
        summary = run_training(ctx, reporter, on_epoch=on_epoch, resume=resume)
        if saved:
            summary["resumed_from_epoch"] = saved.epoch
        if not sink.finish(summary, str(ctx.device), earlier + time.perf_counter() - started):
            raise LostClaim
    except LostClaim:
        return RunResult("lost", LOST_REASON)
    except KeyboardInterrupt:
        reason = interrupted_reason(checkpoints.exists(run_id))
        sink.fail(reason, status="interrupted")
        return RunResult("interrupted", reason)
    except Exception as exc:  # noqa: BLE001 - recorded with its reason, the grid goes on
        reason = failure_reason(exc)
        print(reason, file=sys.stderr, flush=True)
        sink.fail(reason)
        # The rerun (--retry-failed) starts over: the cause may be fixed in code that the
        # epochs before the failure already ran with.
        checkpoints.delete(run_id)
        return RunResult("failed", reason)
    if not keep_checkpoints:
        checkpoints.delete(run_id)
    return RunResult("done")


def failure_reason(exc: BaseException) -> str:
    """The cause on the first line, then what the user needs to act on it."""
    if isinstance(exc, RegsuiteError):
        return str(exc)
    tail = "".join(traceback.format_exception(exc)[-ERROR_TAIL_LINES:]).rstrip()
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        head = ("out of GPU memory (torch.cuda.OutOfMemoryError); lower training.batch_size or "
                "execution.runs_per_gpu")
    elif isinstance(exc, MemoryError):
        head = "out of host memory (MemoryError); run fewer workers at once"
    else:
        head = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return f"{head}\n{tail}"
