"""The in-process executor (``workers = 0``): every run in this process, one after another.

Runs train through the same :func:`regsuite.execution.run.execute_run` as worker processes.
It exists for debuggers and profilers, and for plugins registered only in this process
(tests that register plugins in memory). A run here cannot be killed, so it has no timeout.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from regsuite.checkpoint import Checkpoints
from regsuite.execution.grid import GridReporter, Outcome, claim_or_busy, heartbeats, record_result, start_grid
from regsuite.execution.run import StoreSink, execute_run
from regsuite.store import Store, worker_id

if TYPE_CHECKING:
    from regsuite.registry import Registry
    from regsuite.spec import ExecutionConfig, Plan


def run_in_process(plan: Plan, store: Store, registry: Registry, reporter: GridReporter,
                   execution: ExecutionConfig, retry_failed: bool = False) -> Outcome:
    """:func:`run_plan` with the ``[execution]`` settings that apply here (threads, checkpoints)."""
    if execution.threads:
        torch.set_num_threads(execution.threads)
    return run_plan(plan, store, registry, reporter, retry_failed, execution.keep_checkpoints)


def run_plan(plan: Plan, store: Store, registry: Registry, reporter: GridReporter | None = None,
             retry_failed: bool = False, keep_checkpoints: bool = False) -> Outcome:
    """Train every unfinished run of ``plan`` in this process, one after another."""
    reporter = reporter or GridReporter()
    todo, outcome = start_grid(plan, store, reporter, retry_failed, ["in this process"])
    owner = worker_id()
    checkpoints = Checkpoints(store.directory / "checkpoints")
    for run in todo:
        if not claim_or_busy(store, run, owner, retry_failed, outcome, reporter):
            continue
        with heartbeats(store, run.run_id, owner):
            result = execute_run(run.run_id, run.config, StoreSink(store, run.run_id, owner), checkpoints,
                                 reporter.run_started(run, 0), keep_checkpoints, registry)
        record_result(outcome, reporter, run, result.status, result.error)
        if result.status == "interrupted":
            outcome.stopped = True
            break
    return outcome
