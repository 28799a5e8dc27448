"""The worker process of the local executor: ``python -m regsuite.execution.worker``.

The local executor (:mod:`regsuite.execution.local`) claims a run, then gives it to a worker
process. The worker ties its life to its parent's, reads the run's resolved config from the
store by run id, and trains it with :func:`regsuite.execution.run.execute_run` (results go
into the store under the parent's claim). Progress goes back to the parent as JSON lines on a
pipe (:class:`PipeReporter`, replayed there by :func:`replay`).

The worker trains the runs the parent sends, one JSON line ``{"run_id": ..., "log": ...}``
each on stdin, with its output going to that run's log: a run that finishes sends ``ended``
on the pipe and the worker waits for the next one, so that a grid of short runs pays for
starting Python, importing torch and the plugins once per lane rather than once per run. A run
that ends any other way (failed, interrupted, lost) ends the worker, its exit code saying how
(:data:`EXIT_CODES`): the parent then starts a fresh one, so that nothing of a failed run can
reach the next. The end of stdin ends the worker.
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
from pathlib import Path
from typing import Any

EXIT_CODES = {"done": 0, "failed": 1, "lost": 75, "interrupted": 130}
THREADS_ENV = "REGSUITE_THREADS"


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
        import torch  # heavy: imported once the worker is tied to its parent (see main)

        torch.set_num_threads(int(threads))


def interrupt_on_sigterm() -> None:
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m regsuite.execution.worker",
                                     description="Train the claimed runs of a results store given on stdin.")
    parser.add_argument("--results", type=Path, required=True, help="folder of the results store")
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
    # Heavy (torch, the plugins): imported only now, when the worker dies with its parent and a
    # signal interrupts the run, so that a parent killed during these seconds leaves no orphan.
    from regsuite.store import Store

    with Store(args.results, create=False) as store:
        try:
            for line in sys.stdin:
                order = json.loads(line)
                redirect_output(order["log"])
                status = train(store, order["run_id"], args)
                if status != EXIT_CODES["done"]:
                    return status
                PipeReporter(args.events_fd).send(event="ended", run_id=order["run_id"])
        except KeyboardInterrupt:  # stopped while waiting for a run: nothing to record
            return EXIT_CODES["interrupted"]
    return EXIT_CODES["done"]


def train(store: Any, run_id: str, args: argparse.Namespace) -> int:
    from regsuite.checkpoint import Checkpoints
    from regsuite.execution.run import StoreSink, execute_run
    from regsuite.train import Reporter

    record = store.get_run(run_id)
    if record is None:
        print(f"regsuite worker: no run {run_id} in {store.path}", file=sys.stderr)
        return EXIT_CODES["failed"]
    reporter = PipeReporter(args.events_fd) if args.events_fd >= 0 else Reporter()
    result = execute_run(run_id, record.config, StoreSink(store, run_id, args.owner),
                         Checkpoints(args.results / "checkpoints"), reporter, args.keep_checkpoints)
    release_device_memory()
    return EXIT_CODES[result.status]


def redirect_output(log: str) -> None:
    """This process's stdout and stderr (file descriptors 1 and 2, so the output of native code
    too) appended to ``log`` from now on."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def release_device_memory() -> None:
    """The finished run's cached GPU blocks go back, so that the next run of this worker (or
    another process on the GPU) finds the memory free."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()


if __name__ == "__main__":
    sys.exit(main())
