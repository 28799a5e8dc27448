"""What every executor shares: which runs are left, claims and heartbeats, how an attempt
ended (the outcome), and the messages about a stopped run.

An executor starts a grid (:func:`start_grid`), claims each run before it trains it
(:func:`claim_or_busy`), keeps its claims fresh (:class:`Heartbeat`, or :func:`heartbeats`
from a thread while this process trains), and files each attempt's end
(:func:`record_result`). What is said about a stopped run's checkpoint is said by
:func:`interrupted_reason` and :func:`timed_out_reason`, whichever executor stopped it.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator, Literal

from regsuite.store import Store
from regsuite.train import Reporter

if TYPE_CHECKING:
    from regsuite.spec import Plan, PlannedRun

HEARTBEAT_EVERY = 10.0  # seconds; a claim is stale after store.STALE_AFTER without one

#: How one attempt at a run ended, as an executor reports it: the status the store records
#: (``done``, ``failed``, ``interrupted``), ``busy`` (another process holds the run, so this one
#: did not start it) or ``lost`` (another process took the run over while it trained).
RunEnd = Literal["done", "failed", "interrupted", "busy", "lost"]

BUSY_REASON = "claimed by another regsuite process"


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
    """What the grid shows while it runs; the CLI implements it with rich. ``lane`` is the
    index of the place the run trains in (see :func:`start_grid`)."""

    def grid_started(self, total: int, done: int, lanes: list[str] | None = None, failed: int = 0) -> None: ...
    def run_started(self, run: PlannedRun, lane: int = 0) -> Reporter:
        return Reporter()
    def run_finished(self, run: PlannedRun, status: RunEnd, detail: str = "", lane: int = 0) -> None: ...


def pending_runs(plan: Plan, store: Store, retry_failed: bool = False) -> list[PlannedRun]:
    statuses = store.statuses([r.run_id for r in plan.runs])
    todo = {"pending", "interrupted", "running"} | ({"failed"} if retry_failed else set())
    return [r for r in plan.runs if statuses.get(r.run_id, "pending") in todo]


def start_grid(plan: Plan, store: Store, reporter: GridReporter, retry_failed: bool,
               lanes: list[str]) -> tuple[list[PlannedRun], Outcome]:
    """Register the plan; return the runs left to train and the outcome so far. ``lanes``
    names the places where runs train side by side (a worker pinned to a GPU, a Ray task)."""
    store.register_plan(plan.whole or plan)
    todo = pending_runs(plan, store, retry_failed)
    statuses = store.statuses([r.run_id for r in plan.runs])
    outcome = Outcome(skipped=[r for r in plan.runs if r not in todo and statuses.get(r.run_id) == "done"],
                      failed_before=[r for r in plan.runs if r not in todo and statuses.get(r.run_id) == "failed"])
    reporter.grid_started(len(plan.runs), len(outcome.skipped), lanes, len(outcome.failed_before))
    return todo, outcome


def record_result(outcome: Outcome, reporter: GridReporter, run: PlannedRun, status: RunEnd, error: str = "",
                  lane: int = 0) -> None:
    """File one run's end in the outcome and show it."""
    if status == "done":
        outcome.trained.append(run)
    elif status == "interrupted":
        outcome.interrupted.append(run)
    elif status in ("busy", "lost"):
        outcome.busy.append(run)
        error = error or BUSY_REASON
    else:
        outcome.failed.append((run, error))
    reporter.run_finished(run, status, error.splitlines()[0] if error else "", lane)


def claim_or_busy(store: Store, run: PlannedRun, owner: str, retry_failed: bool, outcome: Outcome,
                  reporter: GridReporter) -> bool:
    """Claim ``run`` for ``owner``; when another process holds it, file it as busy and say no."""
    if store.claim(run.run_id, retry_failed=retry_failed, owner=owner):
        return True
    record_result(outcome, reporter, run, "busy")
    return False


class Heartbeat:
    """Keeps the claims of a polling loop fresh: :meth:`beat` refreshes them at most every
    ``HEARTBEAT_EVERY`` seconds (the loop calls it on every turn)."""

    def __init__(self, store: Store, owner: str):
        self.store, self.owner = store, owner
        self.last = time.monotonic()

    def beat(self, run_ids: list[str]) -> None:
        if not run_ids or time.monotonic() - self.last < HEARTBEAT_EVERY:
            return
        self.last = time.monotonic()
        self.store.heartbeat(run_ids, self.owner)


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


# ---------------------------------------------------------------------------- messages
# What is said about a checkpoint must be true: a run writes one after each epoch it records,
# so an executor says "kept" only when it has seen one (or the epochs that wrote it).


def interrupted_reason(checkpoint_kept: bool) -> str:
    """Why a run stopped by Ctrl-C or SIGTERM is not done, and how to go on."""
    if checkpoint_kept:
        return "interrupted; rerun the same command to resume from the last checkpoint"
    return "interrupted before its first epoch finished; rerun the same command to start it again"


def timed_out_reason(timeout: float, checkpoint_kept: bool, how: str = "") -> str:
    """Why a run killed at ``execution.timeout`` failed, and what ``--retry-failed`` does with
    it; ``how`` says how it was stopped (", the Ray task cancelled")."""
    head = f"timed out after {timeout:g} s (execution.timeout){how}"
    if checkpoint_kept:
        return f"{head}; the last checkpoint is kept and --retry-failed resumes from it"
    return (f"{head}; no epoch finished, so there is no checkpoint and --retry-failed starts it over "
            "(a larger --timeout gives it longer)")
