"""How a grid runs: the ``[execution]`` table of a spec (and the flags of ``regsuite run``).

Execution settings decide where and how many runs train at once, never what a run computes,
so they are not part of the resolved run config and do not change run ids.

Executors:
  * ``local`` (default): one worker process per run (``python -m regsuite.worker``).
    Slots = visible GPUs × ``runs_per_gpu``, each worker pinned to its GPU with
    ``CUDA_VISIBLE_DEVICES``; on a CPU-only machine ``workers`` runs share the cores, each
    with ``cores // workers`` torch threads. ``workers = 0`` trains in the ``regsuite``
    process itself, one run after another: for debuggers and profilers, and for plugins that
    exist only in the current process (tests that register plugins in memory).
  * ``ray``: every run is a Ray core task on a Ray cluster (see :mod:`regsuite.ray_executor`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

RAY_ONLY = ("address", "num_gpus", "num_cpus")


class ExecutionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    executor: Literal["local", "ray"] = Field("local", description="local worker processes, or tasks on a Ray cluster")
    workers: int | None = Field(
        None, ge=0,
        description="runs at once (local default: visible GPUs × runs_per_gpu, or 1 without a GPU; "
                    "0 = train in this process); ray: most runs in flight (default: what the cluster holds)",
    )
    runs_per_gpu: int = Field(1, ge=1, description="local: runs sharing each GPU (small models leave a GPU idle alone)")
    threads: int | None = Field(None, ge=1, description="local: torch threads per run (default: cores // runs at once)")
    timeout: float | None = Field(None, gt=0, description="seconds one run attempt may take before it is killed and recorded as failed")
    keep_checkpoints: bool = Field(False, description="keep the per-epoch checkpoint of finished runs")
    address: str | None = Field(None, description='ray: cluster address ("auto", "host:6379"); default: start a local Ray instance')
    num_gpus: float | None = Field(None, ge=0, description="ray: GPUs per run, fractional allowed (default: 1 if the cluster has GPUs, else 0)")
    num_cpus: float | None = Field(None, gt=0, description="ray: CPUs per run (default 1)")

    @model_validator(mode="after")
    def ray_keys_need_ray(self) -> "ExecutionConfig":
        given = [key for key in RAY_ONLY if getattr(self, key) is not None]
        if self.executor == "local" and given:
            raise ValueError(f"{', '.join(given)} only apply to executor = \"ray\" (add --executor ray)")
        if self.executor == "ray" and self.threads is not None:
            raise ValueError("threads applies to the local executor; on Ray a run gets num_cpus threads")
        if self.executor == "local" and self.workers == 0 and self.timeout is not None:
            raise ValueError("timeout needs worker processes (workers >= 1): a run in this process cannot be killed")
        return self

    def with_overrides(self, **flags: Any) -> "ExecutionConfig":
        """These settings with the command line's flags (None = not given) on top."""
        merged = self.model_dump(exclude_unset=True)
        merged.update({key: value for key, value in flags.items() if value is not None})
        return ExecutionConfig.model_validate(merged)


@dataclass(frozen=True)
class SlotPlan:
    """One place a run can train: its GPU (a ``CUDA_VISIBLE_DEVICES`` value) and torch threads."""

    index: int
    gpu: str | None
    threads: int

    def describe(self) -> str:
        return f"slot {self.index}" + (f" · gpu {self.gpu}" if self.gpu is not None else "")


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as values for a child's ``CUDA_VISIBLE_DEVICES``."""
    import torch

    count = torch.cuda.device_count()
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is None:
        return [str(i) for i in range(count)]
    return [item.strip() for item in listed.split(",") if item.strip()][:count]


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def plan_slots(execution: ExecutionConfig, gpus: list[str], cores: int) -> list[SlotPlan]:
    """GPUs × runs_per_gpu slots (``workers`` overrides the count, GPUs taken in turn), or
    ``workers`` CPU slots; the cores are divided among the slots."""
    count = execution.workers if execution.workers else (len(gpus) * execution.runs_per_gpu if gpus else 1)
    threads = execution.threads or max(1, cores // count)
    return [SlotPlan(i, gpus[i % len(gpus)] if gpus else None, threads) for i in range(count)]


def execute_plan(plan: Any, store: Any, registry: Any, reporter: Any, execution: ExecutionConfig,
                 retry_failed: bool = False) -> Any:
    """Run every unfinished run of ``plan`` with the chosen executor; return the Outcome."""
    if execution.executor == "ray":
        from regsuite.ray_executor import run_plan_ray

        return run_plan_ray(plan, store, reporter, execution, retry_failed)
    if execution.workers == 0:
        from regsuite.runner import run_plan

        if execution.threads:
            import torch

            torch.set_num_threads(execution.threads)
        return run_plan(plan, store, registry, reporter, retry_failed, execution.keep_checkpoints)
    from regsuite.local_executor import run_plan_local

    slots = plan_slots(execution, visible_gpus(), available_cores())
    return run_plan_local(plan, store, reporter, slots, execution, retry_failed)
