"""Executing a plan: skip what is done, claim the rest, record every outcome."""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field

from regsuite.errors import RegsuiteError
from regsuite.registry import Registry
from regsuite.spec import Plan, PlannedRun
from regsuite.store import Store
from regsuite.train import Reporter, build_context, run_training

ERROR_TAIL_LINES = 20


@dataclass
class Outcome:
    trained: list[PlannedRun] = field(default_factory=list)
    skipped: list[PlannedRun] = field(default_factory=list)
    busy: list[PlannedRun] = field(default_factory=list)
    failed: list[tuple[PlannedRun, str]] = field(default_factory=list)


class GridReporter:
    """What the grid shows while it runs; the CLI implements it with rich."""

    def grid_started(self, total: int, done: int) -> None: ...
    def run_reporter(self, run: PlannedRun) -> Reporter:
        return Reporter()
    def run_finished(self, run: PlannedRun, status: str, detail: str = "") -> None: ...


def pending_runs(plan: Plan, store: Store, retry_failed: bool = False) -> list[PlannedRun]:
    statuses = store.statuses([r.run_id for r in plan.runs])
    todo = {"pending", "interrupted", "running"} | ({"failed"} if retry_failed else set())
    return [r for r in plan.runs if statuses.get(r.run_id, "pending") in todo]


def run_plan(plan: Plan, store: Store, registry: Registry, reporter: GridReporter | None = None,
             retry_failed: bool = False) -> Outcome:
    reporter = reporter or GridReporter()
    store.register_plan(plan)
    todo = pending_runs(plan, store, retry_failed)
    outcome = Outcome(skipped=[r for r in plan.runs if r not in todo])
    reporter.grid_started(len(plan.runs), len(outcome.skipped))
    for run in todo:
        if not store.claim(run.run_id, retry_failed=retry_failed):
            outcome.busy.append(run)
            reporter.run_finished(run, "busy", "claimed by another regsuite process")
            continue
        error = execute_claimed(run, store, registry, reporter.run_reporter(run))
        if error is None:
            outcome.trained.append(run)
            reporter.run_finished(run, "done")
        else:
            outcome.failed.append((run, error))
            reporter.run_finished(run, "failed", error.splitlines()[0])
    return outcome


def execute_claimed(run: PlannedRun, store: Store, registry: Registry, reporter: Reporter) -> str | None:
    """Train a run this process has claimed. Returns None, or the failure's reason."""
    started = time.perf_counter()
    try:
        ctx = build_context(run.config, registry)
        store.truncate_epochs(run.run_id, 0)
        summary = run_training(ctx, reporter, on_epoch=lambda state, m: store.record_epoch(run.run_id, state.epoch, m))
    except KeyboardInterrupt:
        store.fail(run.run_id, "interrupted by the user", status="interrupted")
        raise
    except RegsuiteError as exc:
        store.fail(run.run_id, str(exc))
        return str(exc)
    except Exception as exc:  # one broken run must not take the grid down
        reason = f"{type(exc).__name__}: {exc}\n" + "".join(traceback.format_exc().splitlines(True)[-ERROR_TAIL_LINES:])
        store.fail(run.run_id, reason)
        return reason
    store.finish(run.run_id, summary, str(ctx.device), time.perf_counter() - started)
    return None
