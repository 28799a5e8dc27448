"""Live progress with rich: the grid as a whole, and the current run's epochs and losses."""
from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from regsuite.runner import GridReporter
from regsuite.spec import PlannedRun
from regsuite.train import Reporter


class RichGridReporter(GridReporter):
    def __init__(self, console: Console):
        self.console = console
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"),
            console=console,
        )
        self.grid: TaskID | None = None
        self.current: RichRunReporter | None = None

    def __enter__(self) -> "RichGridReporter":
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def grid_started(self, total: int, done: int) -> None:
        self.grid = self.progress.add_task("grid", total=total, completed=done, status=f"{done} already done")

    def run_reporter(self, run: PlannedRun) -> Reporter:
        self.current = RichRunReporter(self.progress, f"  {run.label} · seed {run.seed}")
        return self.current

    def run_finished(self, run: PlannedRun, status: str, detail: str = "") -> None:
        self.progress.advance(self.grid)
        if self.current is not None:
            self.progress.remove_task(self.current.task)
            self.current = None
        if status != "done":
            self.console.print(f"[yellow]{status}[/]: {run.describe()} — {detail}")


class RichRunReporter(Reporter):
    def __init__(self, progress: Progress, description: str):
        self.progress = progress
        self.task = progress.add_task(description, total=None, status="loading data")
        self.epochs = 0
        self.epoch = 1
        self.last = ""

    def run_started(self, epochs: int, batches_per_epoch: int) -> None:
        self.epochs = epochs
        self.progress.update(self.task, total=epochs * batches_per_epoch, status=self.status())

    def batch_done(self, batch: int, running_loss: float | None) -> None:
        self.progress.advance(self.task)
        if running_loss is not None:
            self.progress.update(self.task, status=self.status(f"train {running_loss:.3f}"))

    def epoch_done(self, epoch: int, metrics: dict[str, float]) -> None:
        self.epoch = min(epoch + 1, self.epochs)
        self.last = f"epoch {epoch}: train {metrics['train_loss']:.3f} val {metrics['val_loss']:.3f}"
        self.progress.update(self.task, status=self.status())

    def status(self, live: str = "") -> str:
        return " · ".join(part for part in (f"epoch {self.epoch}/{self.epochs}", live, self.last) if part)
