"""Live progress with rich: the grid as a whole, and one line per lane that trains a run.

::

    ⠋ grid            ━━━━━━━━━━━━╸━━━━━━━━  58%  0:01:12  done 5 · running 2 · failed 1 · left 4 · ETA 0:00:51
    ⠋   lane 0 · gpu 0  dropout · seed 1   ━━━━━━━━━━━━━━━━━━━━  70%  0:00:21  epoch 22/30 · train 0.412 · val 0.530
    ⠋   lane 1 · gpu 1  l2 · seed 0        ━━━━━━━━━━━━━━━━━━━━  12%  0:00:04  epoch 4/30 · train 1.210

The same reporters serve every executor: in-process runs call them directly, worker
processes through their progress pipe (:func:`regsuite.execution.worker.replay`), Ray tasks through
the epochs the driver reads back from the store.

Labels and failure reasons are user text: they are shown literally, never read as rich markup.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from regsuite.execution.grid import GridReporter, RunEnd
from regsuite.train import Reporter

if TYPE_CHECKING:
    from regsuite.spec import PlannedRun


class RichGridReporter(GridReporter):
    def __init__(self, console: Console):
        self.console = console
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[status]}", markup=False),
            console=console,
        )
        self.grid: TaskID | None = None
        self.lane_names: list[str] = []
        self.running: dict[int, RichRunReporter] = {}
        self.counts = {"done": 0, "failed": 0, "other": 0}
        self.total = 0
        self.todo = 0  # runs this invocation set out to train
        self.started = time.monotonic()

    def __enter__(self) -> "RichGridReporter":
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def grid_started(self, total: int, done: int, lanes: list[str] | None = None, failed: int = 0) -> None:
        self.total, self.todo = total, total - done - failed
        self.counts["done"], self.counts["failed"] = done, failed
        self.lane_names = lanes or []
        self.started = time.monotonic()
        self.grid = self.progress.add_task("grid", total=max(total, 1), completed=done, status="")
        self.refresh()
        if self.todo and len(self.lane_names) > 1:
            self.console.print(f"{self.todo} of {total} runs to train on {len(self.lane_names)} lanes: "
                               + ", ".join(self.lane_names), highlight=False, markup=False)

    def run_started(self, run: PlannedRun, lane: int = 0) -> Reporter:
        where = self.lane_names[lane] if lane < len(self.lane_names) and len(self.lane_names) > 1 else ""
        description = f"  {where + '  ' if where else ''}{run.label} · seed {run.seed}"
        self.running[lane] = RichRunReporter(self, self.progress.add_task(description, total=None, status="starting"))
        self.refresh()
        return self.running[lane]

    def run_finished(self, run: PlannedRun, status: RunEnd, detail: str = "", lane: int = 0) -> None:
        reporter = self.running.pop(lane, None)
        if reporter is not None:
            self.progress.remove_task(reporter.task)
        self.counts[status if status in ("done", "failed") else "other"] += 1
        if status != "done":
            self.console.print(Text.assemble((status, "yellow"), f": {run.describe()} — {detail}"), highlight=False)
        self.refresh()

    def refresh(self) -> None:
        """Grid line: counts, and the time left estimated from the work done so far."""
        if self.grid is None:
            return
        finished = self.counts["done"] + self.counts["failed"] + self.counts["other"]
        partial = sum(r.fraction() for r in self.running.values())
        worked = finished - (self.total - self.todo) + partial  # in runs, this invocation
        left = self.total - finished - len(self.running)
        elapsed = time.monotonic() - self.started
        eta = format_seconds(elapsed * (self.todo - worked) / worked) if worked > 0.02 else "…"
        status = (f"done {self.counts['done']} · running {len(self.running)} · failed {self.counts['failed']} · "
                  f"left {left}" + (f" · ETA {eta}" if self.todo and finished < self.total else ""))
        self.progress.update(self.grid, completed=finished + partial, status=status)


class RichRunReporter(Reporter):
    """One lane's line: the run's epochs and batches, its live and last losses."""

    def __init__(self, grid: RichGridReporter, task: TaskID):
        self.grid, self.progress, self.task = grid, grid.progress, task
        self.epochs = 0
        self.batches = 1
        self.epoch = 1
        self.completed = 0
        self.live = ""
        self.last = ""

    def fraction(self) -> float:
        total = self.epochs * self.batches
        return min(self.completed / total, 1.0) if total else 0.0

    def show(self, completed: int) -> None:
        self.completed = completed
        self.progress.update(self.task, completed=completed, status=self.status())
        self.grid.refresh()

    def run_started(self, epochs: int, batches_per_epoch: int) -> None:
        self.epochs, self.batches = epochs, max(batches_per_epoch, 1)
        self.progress.update(self.task, total=epochs * self.batches)
        self.show(0)

    def run_resumed(self, epoch: int) -> None:
        self.epoch = self.next_epoch(epoch)
        self.last = f"resumed after epoch {epoch}"
        self.show(epoch * self.batches)

    def batch_done(self, batch: int, running_loss: float | None) -> None:
        if running_loss is not None:
            self.live = f"train {running_loss:.3f}"
        self.show((self.epoch - 1) * self.batches + batch)

    def epoch_done(self, epoch: int, metrics: dict[str, float]) -> None:
        self.epoch = self.next_epoch(epoch)
        self.live = ""
        self.last = f"epoch {epoch}: train {metrics['train_loss']:.3f} val {metrics['val_loss']:.3f}"
        self.show(epoch * self.batches)

    def next_epoch(self, done: int) -> int:
        return min(done + 1, self.epochs) if self.epochs else done + 1

    def status(self) -> str:
        epoch = f"epoch {self.epoch}/{self.epochs}" if self.epochs else f"epoch {self.epoch}"  # 0: not known yet
        return " · ".join(part for part in (epoch, self.live, self.last) if part)


def format_seconds(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
