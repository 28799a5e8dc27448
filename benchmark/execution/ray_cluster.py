"""The Ray executor: every run is a Ray core task (``ray``, not ``ray[tune]``).

``regsuite run SPEC --executor ray [--address ADDRESS]``. Each run becomes a task with
``num_gpus`` (fractional allowed: 0.5 puts two runs on a GPU) and ``num_cpus``; Ray pins
its GPUs with ``CUDA_VISIBLE_DEVICES``, starts GPU tasks in fresh processes, and reports a
crashed worker (``WorkerCrashedError``, out-of-memory kills) for that task alone.

Where results go. Tasks run :func:`regsuite.execution.run.execute_run`, the code path of the
local executor, with a sink that sends every write to one ``StoreWriter`` actor placed on the
driver's node, which owns the SQLite connection. SQLite's WAL mode needs all its writers on
one host (it does not work over NFS), so the store never leaves the driver's machine, and
worker nodes need no access to it. Checkpoints are files under
``<results>/checkpoints`` *on the node that trains the run*: put the results folder on a
filesystem every node mounts at the same path, or a resumed run starts over on another node.

The driver claims runs in the store (the same claims as the local executor: two drivers
never train one run), keeps the claims of its tasks fresh, follows their epochs in the
store for the progress display, kills tasks past ``timeout``, and on Ctrl-C cancels its
tasks and records them as interrupted.
"""
from __future__ import annotations

import math
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from regsuite.checkpoint import Checkpoints
from regsuite.errors import RegsuiteError
from regsuite.execution.grid import (
    GridReporter,
    Heartbeat,
    Outcome,
    RunEnd,
    claim_or_busy,
    interrupted_reason,
    record_result,
    start_grid,
    timed_out_reason,
)
from regsuite.execution.run import ERROR_TAIL_LINES, execute_run
from regsuite.store import RunStatus, Store, worker_id

if TYPE_CHECKING:
    from regsuite.spec import ExecutionConfig, Plan, PlannedRun

POLL = 0.5  # seconds between looks at the tasks and the store


def import_ray() -> Any:
    try:
        import ray  # optional: the "ray" extra
    except ImportError:
        raise RegsuiteError(
            "the Ray executor needs Ray, which is not installed",
            hint='pip install -e ".[ray]"   (or: pip install "ray>=2.9")',
        ) from None
    return ray


class StoreWriter:
    """Ray actor on the driver's node: the one writer of the store for all Ray tasks."""

    def __init__(self, directory: str):
        self.store = Store(directory)

    def truncate_epochs(self, run_id: str, after_epoch: int, owner: str) -> bool:
        return self.store.truncate_epochs(run_id, after_epoch, owner=owner)

    def record_epoch(self, run_id: str, epoch: int, metrics: dict[str, float], owner: str) -> bool:
        return self.store.record_epoch(run_id, epoch, metrics, owner=owner)

    def finish(self, run_id: str, summary: dict[str, Any], device: str, wall_time: float, owner: str) -> bool:
        return self.store.finish(run_id, summary, device, wall_time, owner=owner)

    def fail(self, run_id: str, reason: str, status: RunStatus, owner: str) -> bool:
        return self.store.fail(run_id, reason, status=status, owner=owner)


class ActorSink:
    """A :class:`regsuite.execution.run.Sink` that writes through the StoreWriter actor."""

    def __init__(self, writer: Any, run_id: str, owner: str):
        self.writer, self.run_id, self.owner = writer, run_id, owner

    def call(self, method: str, *args: Any) -> Any:
        ray = import_ray()

        return ray.get(getattr(self.writer, method).remote(self.run_id, *args))

    def truncate_epochs(self, after_epoch: int) -> bool:
        return self.call("truncate_epochs", after_epoch, self.owner)

    def record_epoch(self, epoch: int, metrics: dict[str, float]) -> bool:
        return self.call("record_epoch", epoch, metrics, self.owner)

    def finish(self, summary: dict[str, Any], device: str, wall_time: float) -> bool:
        return self.call("finish", summary, device, wall_time, self.owner)

    def fail(self, reason: str, status: RunStatus = "failed") -> bool:
        return self.call("fail", reason, status, self.owner)


def train_task(run_id: str, config: dict[str, Any], writer: Any, owner: str, checkpoint_dir: str,
               keep_checkpoints: bool, threads: int) -> tuple[RunEnd, str]:
    """Body of the Ray task: the worker code path with an actor sink."""
    torch.set_num_threads(threads)
    result = execute_run(run_id, config, ActorSink(writer, run_id, owner), Checkpoints(checkpoint_dir),
                         None, keep_checkpoints)
    return result.status, result.error


class EpochFollower:
    """Progress for Ray tasks: new epochs of the run, read back from the store."""

    def __init__(self, run: PlannedRun, reporter: Any):
        self.run, self.reporter, self.seen = run, reporter, 0
        # A run given in steps knows its epochs only once its data is loaded, in the task.
        reporter.run_started(run.config["training"]["epochs"] or 0, 1)

    def poll(self, store: Store) -> None:
        for row in store.epochs(self.run.run_id):
            if row["epoch"] > self.seen:
                self.seen = row["epoch"]
                self.reporter.epoch_done(row["epoch"], row)


def run_plan_ray(plan: Plan, store: Store, reporter: GridReporter, execution: ExecutionConfig,
                 retry_failed: bool = False) -> Outcome:
    ray = import_ray()
    if execution.address and execution.address.startswith("ray://"):
        raise RegsuiteError(
            "regsuite does not run as a Ray Client (ray://): its results store lives on the driver's machine",
            hint="run regsuite on a node of the cluster with --address auto (or the head's host:port)",
        )
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=execution.address, include_dashboard=False, log_to_driver=False)
    try:
        return drive(ray, plan, store, reporter, execution, retry_failed)
    finally:
        if started_here:
            ray.shutdown()


def drive(ray: Any, plan: Plan, store: Store, reporter: GridReporter, execution: ExecutionConfig,
          retry_failed: bool) -> Outcome:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy  # optional: the "ray" extra

    here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
    directory = store.directory.resolve()
    writer = ray.remote(StoreWriter).options(num_cpus=0, scheduling_strategy=here).remote(str(directory))
    resources = ray.cluster_resources()
    num_gpus = execution.num_gpus if execution.num_gpus is not None else (1.0 if resources.get("GPU", 0) else 0.0)
    num_cpus = execution.num_cpus or 1.0
    capacity = execution.workers or max_in_flight(resources, num_gpus, num_cpus)
    task = ray.remote(train_task).options(num_gpus=num_gpus, num_cpus=num_cpus, max_retries=0)
    lanes = [f"ray task {i}" for i in range(capacity)]
    todo, outcome = start_grid(plan, store, reporter, retry_failed, lanes)

    owner = worker_id()
    heartbeat = Heartbeat(store, owner)
    queue, free = deque(todo), list(range(capacity))
    in_flight: dict[Any, tuple[PlannedRun, int, float, EpochFollower]] = {}
    try:
        while queue or in_flight:
            while free and queue:
                run = queue.popleft()
                if not claim_or_busy(store, run, owner, retry_failed, outcome, reporter):
                    continue
                lane = free.pop(0)
                ref = task.remote(run.run_id, run.config, writer, owner, str(directory / "checkpoints"),
                                  execution.keep_checkpoints, max(1, math.floor(num_cpus)))
                in_flight[ref] = (run, lane, time.monotonic(), EpochFollower(run, reporter.run_started(run, lane)))
            if not in_flight:
                break
            ready, _ = ray.wait(list(in_flight), num_returns=len(in_flight), timeout=POLL)
            for ref in ready:
                run, lane, _, follower = in_flight.pop(ref)
                follower.poll(store)
                status, error = task_result(ray, ref, store, run, owner)
                record_result(outcome, reporter, run, status, error, lane)
                free.append(lane)
            for ref, (run, lane, started, follower) in list(in_flight.items()):
                follower.poll(store)
                if execution.timeout and time.monotonic() - started > execution.timeout:
                    ray.cancel(ref, force=True)
                    del in_flight[ref]
                    reason = timed_out_reason(execution.timeout, checkpoint_kept(store, directory, run.run_id),
                                              ", the Ray task cancelled")
                    store.fail(run.run_id, reason, owner=owner)
                    record_result(outcome, reporter, run, "failed", reason, lane)
                    free.append(lane)
            heartbeat.beat([run.run_id for run, *_ in in_flight.values()])
    except KeyboardInterrupt:
        outcome.stopped = True
        for ref, (run, lane, _, _) in in_flight.items():
            ray.cancel(ref, force=True)
            store.fail(run.run_id, interrupted_reason(checkpoint_kept(store, directory, run.run_id)),
                       status="interrupted", owner=owner)
            record_result(outcome, reporter, run, "interrupted", "cancelled by Ctrl-C", lane)
    return outcome


def checkpoint_kept(store: Store, directory: Path, run_id: str) -> bool:
    """Whether the run has a checkpoint: a worker writes one after each epoch it records (on
    the node that trained it, which may not be this one: the store's epochs tell)."""
    return Checkpoints(directory / "checkpoints").exists(run_id) or bool(store.epochs(run_id))


def max_in_flight(resources: dict[str, float], num_gpus: float, num_cpus: float) -> int:
    """How many tasks the cluster can run at once: claim no more (claims of queued tasks
    would only keep other regsuite processes from runs nobody trains yet)."""
    by_cpu = int(resources.get("CPU", 1) // num_cpus)
    by_gpu = int(resources.get("GPU", 0) // num_gpus) if num_gpus else by_cpu
    return max(1, min(by_cpu, by_gpu))


def task_result(ray: Any, ref: Any, store: Store, run: PlannedRun, owner: str) -> tuple[RunEnd, str]:
    """The task's own account, or, when its worker died, the failure recorded here."""
    try:
        return ray.get(ref)
    except Exception as exc:  # noqa: BLE001 - RayTaskError, WorkerCrashedError, OutOfMemoryError, …
        reason = (f"Ray task failed: {type(exc).__name__}: " + "\n".join(str(exc).splitlines()[-ERROR_TAIL_LINES:])
                  + "\n(the worker's output is in the Ray logs of its node: /tmp/ray/session_latest/logs)")
        store.fail(run.run_id, reason, owner=owner)
        return "failed", reason
