"""One run, start to finish: the code path every executor shares.

:func:`execute_run` trains a run its caller has claimed, resuming from the run's checkpoint
if there is one, and writes every epoch, the summary or the failure through a *sink*. The
in-process executor (``workers = 0``) calls it directly; the local executor starts
``python -m regsuite.worker`` once per run (this module's :func:`main`), which reads the
run's resolved config from the store by run id; Ray tasks call it on cluster nodes with a
sink that forwards writes to the driver's node.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from regsuite.errors import RegsuiteError

ERROR_TAIL_LINES = 20
EXIT_CODES = {"done": 0, "failed": 1, "lost": 75, "interrupted": 130}
THREADS_ENV = "REGSUITE_THREADS"


@dataclass
class RunResult:
    status: str  # done | failed | interrupted | lost (another process took the claim over)
    error: str = ""


class LostClaim(Exception):
    """Another process took this run over (our claim went stale): stop without writing."""


class Sink(Protocol):
    """Where one run's results go. Every write is refused (False) once the caller no longer
    holds the run's claim, so a process that lost its claim can never overwrite results."""

    def truncate_epochs(self, after_epoch: int) -> bool: ...
    def record_epoch(self, epoch: int, metrics: dict[str, float]) -> bool: ...
    def finish(self, summary: dict[str, Any], device: str, wall_time: float) -> bool: ...
    def fail(self, reason: str, status: str = "failed") -> bool: ...


class StoreSink:
    """Writes straight into the SQLite results store (same host as the store)."""

    def __init__(self, store: Any, run_id: str, owner: str):
        self.store, self.run_id, self.owner = store, run_id, owner

    def truncate_epochs(self, after_epoch: int) -> bool:
        return self.store.truncate_epochs(self.run_id, after_epoch, owner=self.owner)

    def record_epoch(self, epoch: int, metrics: dict[str, float]) -> bool:
        return self.store.record_epoch(self.run_id, epoch, metrics, owner=self.owner)

    def finish(self, summary: dict[str, Any], device: str, wall_time: float) -> bool:
        return self.store.finish(self.run_id, summary, device, wall_time, owner=self.owner)

    def fail(self, reason: str, status: str = "failed") -> bool:
        return self.store.fail(self.run_id, reason, status=status, owner=self.owner)


def execute_run(run_id: str, config: dict[str, Any], sink: Sink, checkpoints: Any, reporter: Any = None,
                keep_checkpoints: bool = False, registry: Any = None) -> RunResult:
    """Train a claimed run; record its epochs and its end (done / failed / interrupted).

    Never raises for a failure of the run itself: one broken run must not take the grid
    down. A KeyboardInterrupt (Ctrl-C, or SIGTERM in a worker process) stops it: the run is
    recorded as interrupted and its last checkpoint is kept.
    """
    from regsuite.registry import get_registry
    from regsuite.train import Reporter, build_context, run_training

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
        return RunResult("lost", "another regsuite process took this run over")
    except KeyboardInterrupt:
        reason = ("interrupted; rerun the same command to resume from the last checkpoint" if checkpoints.exists(run_id)
                  else "interrupted before its first epoch finished; rerun the same command to start it again")
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
    import torch

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


# ---------------------------------------------------------------------------- progress


class PipeReporter:
    """Progress as JSON lines on a pipe to the parent (one line < PIPE_BUF: written whole).
    Batch updates are sent at most every ``every`` seconds, or when a live loss is there."""

    def __init__(self, fd: int, every: float = 0.5):
        self.fd, self.every, self.last = fd, every, 0.0

    def send(self, **event: Any) -> None:
        if self.fd < 0:
            return
        try:
            os.write(self.fd, (json.dumps(event) + "\n").encode())
        except OSError:  # the parent is gone: it no longer needs progress
            self.fd = -1

    def run_started(self, epochs: int, batches_per_epoch: int) -> None:
        self.send(event="started", epochs=epochs, batches=batches_per_epoch)

    def run_resumed(self, epoch: int) -> None:
        self.send(event="resumed", epoch=epoch)

    def batch_done(self, batch: int, running_loss: float | None) -> None:
        now = time.monotonic()
        if running_loss is not None or now - self.last >= self.every:
            self.last = now
            self.send(event="batch", batch=batch, loss=running_loss)

    def epoch_done(self, epoch: int, metrics: dict[str, float]) -> None:
        self.send(event="epoch", epoch=epoch, metrics=metrics)


def replay(event: dict[str, Any], reporter: Any) -> None:
    """Call on ``reporter`` what a :class:`PipeReporter` event says happened in the child."""
    kind = event.get("event")
    if kind == "started":
        reporter.run_started(event["epochs"], event["batches"])
    elif kind == "resumed":
        reporter.run_resumed(event["epoch"])
    elif kind == "batch":
        reporter.batch_done(event["batch"], event["loss"])
    elif kind == "epoch":
        reporter.epoch_done(event["epoch"], event["metrics"])


# ---------------------------------------------------------------------------- worker process


def die_with_parent(parent_pid: int) -> None:
    """A worker must not outlive the ``regsuite run`` that started it (kill -9 included).
    Linux: the kernel sends SIGKILL when the parent dies. Elsewhere: poll the parent."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    else:
        def watch() -> None:
            while os.getppid() == parent_pid:
                time.sleep(1.0)
            os._exit(EXIT_CODES["interrupted"])

        threading.Thread(target=watch, daemon=True, name="parent-watch").start()
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(EXIT_CODES["interrupted"])


def use_threads_from_env() -> None:
    """Torch threads per worker, chosen by the parent so that workers do not oversubscribe."""
    threads = os.environ.get(THREADS_ENV)
    if threads:
        import torch

        torch.set_num_threads(int(threads))


def interrupt_on_sigterm() -> None:
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m regsuite.worker", description="Train one claimed run of a results store.")
    parser.add_argument("--results", type=Path, required=True, help="folder of the results store")
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--owner", required=True, help="the claim this run is trained under (the parent's store.worker_id(): host:pid:pid-namespace:token)")
    parser.add_argument("--parent-pid", type=int, default=None, help="exit when this process dies")
    parser.add_argument("--events-fd", type=int, default=-1, help="write progress as JSON lines to this fd")
    parser.add_argument("--keep-checkpoints", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.parent_pid is not None:
        die_with_parent(args.parent_pid)
    interrupt_on_sigterm()
    use_threads_from_env()
    from regsuite.checkpoint import Checkpoints
    from regsuite.store import Store
    from regsuite.train import Reporter

    with Store(args.results, create=False) as store:
        record = store.get_run(args.run_id)
        if record is None:
            print(f"regsuite worker: no run {args.run_id} in {store.path}", file=sys.stderr)
            return EXIT_CODES["failed"]
        reporter = PipeReporter(args.events_fd) if args.events_fd >= 0 else Reporter()
        result = execute_run(
            args.run_id, record.config, StoreSink(store, args.run_id, args.owner),
            Checkpoints(args.results / "checkpoints"), reporter, args.keep_checkpoints,
        )
    return EXIT_CODES[result.status]


if __name__ == "__main__":
    sys.exit(main())
