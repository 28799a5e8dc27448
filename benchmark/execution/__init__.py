"""How a grid runs: :func:`execute_plan` carries out a spec's ``[execution]`` table
(:class:`regsuite.spec.ExecutionConfig`, with the flags of ``regsuite run`` on top).

Executors:
  * ``local`` (default, :mod:`~regsuite.execution.local`): one worker process per run
    (``python -m regsuite.execution.worker``). Lanes = visible GPUs × ``runs_per_gpu``, each
    worker pinned to its GPU with ``CUDA_VISIBLE_DEVICES``; on a CPU-only machine ``workers``
    runs share the cores, each with ``cores // workers`` torch threads.
  * ``workers = 0`` (:mod:`~regsuite.execution.inprocess`): every run in the ``regsuite``
    process itself, one after another: for debuggers and profilers, and for plugins that exist
    only in the current process (tests that register plugins in memory).
  * ``ray`` (:mod:`~regsuite.execution.ray_cluster`): every run is a Ray core task on a Ray cluster.

All of them train a run through :mod:`~regsuite.execution.run` and keep the grid's books with
:mod:`~regsuite.execution.grid`. This module imports none of them until a plan runs: the
executor chosen is imported then (the Ray one needs the optional ``ray`` extra).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from regsuite.execution.grid import GridReporter, Outcome
    from regsuite.registry import Registry
    from regsuite.spec import ExecutionConfig, Plan
    from regsuite.store import Store


def execute_plan(plan: Plan, store: Store, registry: Registry, reporter: GridReporter,
                 execution: ExecutionConfig, retry_failed: bool = False) -> Outcome:
    """Run every unfinished run of ``plan`` with the chosen executor; return the Outcome."""
    if execution.executor == "ray":
        from regsuite.execution.ray_cluster import run_plan_ray

        return run_plan_ray(plan, store, reporter, execution, retry_failed)
    if execution.workers == 0:
        from regsuite.execution.inprocess import run_in_process

        return run_in_process(plan, store, registry, reporter, execution, retry_failed)
    from regsuite.execution.local import run_plan_local

    return run_plan_local(plan, store, reporter, execution, retry_failed)
