"""Executing a plan: skip what is done, claim the rest, record every outcome.

This module holds what every executor shares (the outcome, the progress interface, which
runs are left) and the in-process executor (``workers = 0``): runs train one after another
in this process, through the same :func:`regsuite.worker.execute_run` as worker processes.
It exists for debuggers and profilers, and for plugins registered only in this process.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

from regsuite.registry import Registry
from regsuite.spec import Plan, PlannedRun
from regsuite.store import Store, worker_id
from regsuite.train import Reporter

HEARTBEAT_EVERY = 10.0  # seconds; a claim is stale after store.STALE_AFTER without one


@dataclass
class Outcome:
    trained: list[PlannedRun] = field(default_factory=list)
    skipped: list[PlannedRun] = field(default_factory=list)  # done before
    failed_before: list[PlannedRun] = field(default_factory=list)  # failed before, not retried
    busy: list[PlannedRun] = field(default_factory=list)
    failed: list[tuple[PlannedRun, str]] = field(default_factory=list)
    interrupted: list[PlannedRun] = field(default_factory=list)
    stopped: bool = False  # Ctrl-C / SIGTERM: runs were left unstarted or interrupted


class GridReporter:
    """What the grid shows while it runs; the CLI implements it with rich."""

    def grid_started(self, total: int, done: int, slots: list[str] | None = None, failed: int = 0) -> None: ...
    def run_started(self, run: PlannedRun, slot: int = 0) -> Reporter:
        return Reporter()
    def run_finished(self, run: PlannedRun, status: str, detail: str = "", slot: int = 0) -> None: ...


def pending_runs(plan: Plan, store: Store, retry_failed: bool = False) -> list[PlannedRun]:
    statuses = store.statuses([r.run_id for r in plan.runs])
    todo = {"pending", "interrupted", "running"} | ({"failed"} if retry_failed else set())
    return [r for r in plan.runs if statuses.get(r.run_id, "pending") in todo]


def start_grid(plan: Plan, store: Store, reporter: GridReporter, retry_failed: bool,
               slots: list[str]) -> tuple[list[PlannedRun], Outcome]:
    store.register_plan(plan)
    todo = pending_runs(plan, store, retry_failed)
    statuses = store.statuses([r.run_id for r in plan.runs])
    outcome = Outcome(skipped=[r for r in plan.runs if r not in todo and statuses.get(r.run_id) == "done"],
                      failed_before=[r for r in plan.runs if r not in todo and statuses.get(r.run_id) == "failed"])
    reporter.grid_started(len(plan.runs), len(outcome.skipped), slots, len(outcome.failed_before))
    return todo, outcome


def record_result(outcome: Outcome, reporter: GridReporter, run: PlannedRun, status: str, error: str = "",
                  slot: int = 0) -> None:
    """File one run's end in the outcome and show it."""
    if status == "done":
        outcome.trained.append(run)
    elif status == "interrupted":
        outcome.interrupted.append(run)
    elif status in ("busy", "lost"):
        outcome.busy.append(run)
        error = error or "claimed by another regsuite process"
    else:
        outcome.failed.append((run, error))
    reporter.run_finished(run, status, error.splitlines()[0] if error else "", slot)


def run_plan(plan: Plan, store: Store, registry: Registry, reporter: GridReporter | None = None,
             retry_failed: bool = False, keep_checkpoints: bool = False) -> Outcome:
    """The in-process executor: every run in this process, one after another."""
    from regsuite.checkpoint import Checkpoints
    from regsuite.worker import StoreSink, execute_run

    reporter = reporter or GridReporter()
    todo, outcome = start_grid(plan, store, reporter, retry_failed, ["in this process"])
    owner = worker_id()
    checkpoints = Checkpoints(store.directory / "checkpoints")
    for run in todo:
        if not store.claim(run.run_id, retry_failed=retry_failed, owner=owner):
            record_result(outcome, reporter, run, "busy")
            continue
        with heartbeats(store, run.run_id, owner):
            result = execute_run(run.run_id, run.config, StoreSink(store, run.run_id, owner), checkpoints,
                                 reporter.run_started(run, 0), keep_checkpoints, registry)
        record_result(outcome, reporter, run, result.status, result.error)
        if result.status == "interrupted":
            outcome.stopped = True
            break
    return outcome


@contextmanager
def heartbeats(store: Store, run_id: str, owner: str) -> Iterator[None]:
    """Keep the claim fresh from a thread (with its own connection) while this process trains."""
    stop = threading.Event()

    def beat() -> None:
        with Store(store.directory) as own:
            while not stop.wait(HEARTBEAT_EVERY):
                own.heartbeat(run_id, owner)

    thread = threading.Thread(target=beat, daemon=True, name="regsuite-heartbeat")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
