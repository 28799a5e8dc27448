"""The local executor: one worker process per run, as many at once as there are lanes.

A *lane* is a place where one run trains at a time: a GPU (a ``CUDA_VISIBLE_DEVICES``
value; ``runs_per_gpu`` lanes share one) and a number of torch threads. Lanes = visible GPUs
× ``runs_per_gpu`` (``workers`` overrides the count), or ``workers`` CPU lanes that share the
cores. (A model's *slots* are something else: the places in a network where regularizers act.)

Each run trains in a ``python -m regsuite.execution.worker`` process (see
:mod:`regsuite.execution.worker`) of its lane, after this process has claimed the run. A
lane's worker trains its runs one after another (``reuse_workers``, the default), so that
short runs do not each pay for a new interpreter, torch and the plugins; a run that does not
finish ends its worker, and the lane's next run gets a fresh one. Results travel through the
results store (SQLite transactions), progress through a pipe (JSON lines), and the worker's
stdout/stderr go to ``<results>/logs/<run_id>.log``. A worker that dies (an exception, a NaN
loss, out of memory, a signal, the timeout) costs only its own run, which is recorded as
failed with the reason and the last lines of that log; the grid goes on.
Not ``concurrent.futures.ProcessPoolExecutor``: there one dying worker breaks every pending
future.

Ctrl-C (or SIGTERM, as Slurm sends before it preempts) stops launching and sends SIGTERM to
the workers, which record their run as interrupted (the last per-epoch checkpoint stays);
a second Ctrl-C, or ``GRACE`` seconds, and they are killed. If this process is killed
outright, the workers die with it (``PR_SET_PDEATHSIG``) and the next ``regsuite run``
takes their claims over and resumes from the checkpoints.
"""
from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import torch

from regsuite.checkpoint import Checkpoints
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
from regsuite.execution.run import ERROR_TAIL_LINES
from regsuite.execution.worker import THREADS_ENV, replay
from regsuite.store import Store, worker_id

if TYPE_CHECKING:
    from regsuite.spec import ExecutionConfig, Plan, PlannedRun

GRACE = 10.0  # seconds interrupted workers get to record themselves before they are killed
POLL = 0.2  # seconds between checks of the workers
WORKER_MODULE = "regsuite.execution.worker"


@dataclass(frozen=True)
class Lane:
    """One place a run can train: its GPU (a ``CUDA_VISIBLE_DEVICES`` value) and torch threads."""

    index: int
    gpu: str | None
    threads: int

    def describe(self) -> str:
        return f"lane {self.index}" + (f" · gpu {self.gpu}" if self.gpu is not None else "")


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as values for a child's ``CUDA_VISIBLE_DEVICES``."""
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


def plan_lanes(execution: ExecutionConfig, gpus: list[str], cores: int) -> list[Lane]:
    """GPUs × runs_per_gpu lanes (``workers`` overrides the count, GPUs taken in turn), or
    ``workers`` CPU lanes; the cores are divided among the lanes."""
    count = execution.workers if execution.workers else (len(gpus) * execution.runs_per_gpu if gpus else 1)
    threads = execution.threads or max(1, cores // count)
    return [Lane(i, gpus[i % len(gpus)] if gpus else None, threads) for i in range(count)]


def worker_interpreter() -> list[str]:
    """How a worker starts: this interpreter running :mod:`regsuite.execution.worker`, *without*
    the working directory at the front of ``sys.path`` (``python -m`` puts it there), so that a
    folder named ``regsuite`` where the user stands (a clone of the repository, say) cannot
    shadow the installed package. Everything else on the path stays as in this process:
    ``PYTHONPATH``, site-packages and the ``.pth`` files of editable installs, hence the same
    regsuite and the same third-party plugins. Python 3.11+: ``-P``; 3.10: a bootstrap that
    drops the entry itself."""
    if sys.version_info >= (3, 11):
        return [sys.executable, "-P", "-m", WORKER_MODULE]
    bootstrap = (f"import runpy, sys; sys.path.pop(0); sys.argv[0] = {WORKER_MODULE!r}; "
                 f"runpy.run_module({WORKER_MODULE!r}, run_name='__main__', alter_sys=True)")
    return [sys.executable, "-c", bootstrap]


@dataclass
class Worker:
    """A worker process serving one lane: the runs it is sent go in on its stdin, their
    progress comes back on its events pipe."""

    process: subprocess.Popen
    events: int  # read end of the progress pipe
    active: Active | None = None  # the run it trains now
    ended: bool = False  # that run sent "ended": it finished, and the worker waits for the next
    buffer: bytes = b""
    pipe_open: bool = True


@dataclass
class Active:
    run: PlannedRun
    lane: Lane
    worker: Worker | None
    reporter: Any
    started: float
    log_path: Path
    log_offset: int
    timed_out: bool = False

    @property
    def process(self) -> subprocess.Popen:
        return self.worker.process


def run_plan_local(plan: Plan, store: Store, reporter: GridReporter, execution: ExecutionConfig,
                   retry_failed: bool = False, lanes: list[Lane] | None = None) -> Outcome:
    """Train every unfinished run of ``plan`` in worker processes, one per lane at a time
    (default lanes: :func:`plan_lanes` for this machine's GPUs and cores)."""
    if lanes is None:
        lanes = plan_lanes(execution, visible_gpus(), available_cores())
    return LocalExecutor(plan, store, reporter, lanes, execution, retry_failed).run()


class LocalExecutor:
    def __init__(self, plan: Plan, store: Store, reporter: GridReporter, lanes: list[Lane],
                 execution: ExecutionConfig, retry_failed: bool):
        self.plan, self.store, self.reporter, self.lanes = plan, store, reporter, lanes
        self.execution, self.retry_failed = execution, retry_failed
        self.owner = worker_id()
        self.results = store.directory.resolve()
        self.selector = selectors.DefaultSelector()
        self.active: dict[int, Active] = {}  # by lane index
        self.workers: dict[int, Worker] = {}  # by lane index, busy or idle
        self.stop_requests = 0
        self.kill_deadline: float | None = None
        self.heartbeat = Heartbeat(store, self.owner)

    # ------------------------------------------------------------------ the loop

    def run(self) -> Outcome:
        todo, self.outcome = start_grid(self.plan, self.store, self.reporter, self.retry_failed,
                                        [lane.describe() for lane in self.lanes])
        queue = deque(todo)
        free = list(self.lanes)
        with self.stop_on_signals():
            while queue or self.active:
                if not self.stop_requests:
                    self.fill(queue, free)
                if not self.active:
                    break
                self.read_events(POLL)
                for lane in self.reap():
                    free.append(lane)
                free.sort(key=lambda lane: lane.index)
                self.enforce_timeouts()
                self.handle_stop()
                self.heartbeat.beat([a.run.run_id for a in self.active.values()])
        self.dismiss_workers()
        self.selector.close()
        self.outcome.stopped = self.stop_requests > 0
        return self.outcome

    def fill(self, queue: deque[PlannedRun], free: list[Lane]) -> None:
        while free and queue:
            run = queue.popleft()
            if claim_or_busy(self.store, run, self.owner, self.retry_failed, self.outcome, self.reporter):
                self.launch(run, free.pop(0))

    # ------------------------------------------------------------------ workers

    def command(self) -> list[str]:
        cmd = [*worker_interpreter(), "--results", str(self.results), "--owner", self.owner,
               "--parent-pid", str(os.getpid())]
        return cmd + (["--keep-checkpoints"] if self.execution.keep_checkpoints else [])

    def environment(self, lane: Lane) -> dict[str, str]:
        env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS=str(lane.threads),
                   MKL_NUM_THREADS=str(lane.threads), **{THREADS_ENV: str(lane.threads)})
        if lane.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = lane.gpu
        return env

    def launch(self, run: PlannedRun, lane: Lane) -> None:
        log_path = self.results / "logs" / f"{run.run_id}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            offset = log.tell()
            order = (json.dumps({"run_id": run.run_id, "log": str(log_path)}) + "\n").encode()
            try:
                worker = self.worker_for(lane, log)
                log.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} {run.describe()} on {lane.describe()}, "
                          f"worker pid {worker.process.pid}, claimed by {self.owner}\n".encode())
                log.flush()
                try:
                    send(worker, order)
                except OSError:  # it died while idle (the out-of-memory killer, say): a fresh one
                    self.retire(lane.index)
                    worker = self.worker_for(lane, log)
                    send(worker, order)
            except OSError as exc:
                self.retire(lane.index)
                reason = f"could not start a worker process: {exc}"
                self.store.fail(run.run_id, reason, owner=self.owner)
                record_result(self.outcome, self.reporter, run, "failed", reason, lane.index)
                return
        active = Active(run, lane, worker, self.reporter.run_started(run, lane.index), time.monotonic(), log_path, offset)
        worker.active, worker.ended = active, False
        self.active[lane.index] = active

    def worker_for(self, lane: Lane, log: Any) -> Worker:
        """The lane's worker: the one that trained its last run, if it is still there; else a new one
        (its start-up output goes to ``log``, the first run's log)."""
        worker = self.workers.get(lane.index)
        if worker is not None and worker.process.poll() is None:
            return worker
        self.retire(lane.index)
        read_fd, write_fd = os.pipe()
        try:
            process = subprocess.Popen(
                [*self.command(), "--events-fd", str(write_fd)], stdin=subprocess.PIPE, stdout=log,
                stderr=subprocess.STDOUT, pass_fds=(write_fd,), env=self.environment(lane),
                start_new_session=True,  # Ctrl-C reaches only us; we decide what the workers do
            )
        except OSError:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        os.set_blocking(read_fd, False)
        worker = Worker(process, read_fd)
        self.selector.register(read_fd, selectors.EVENT_READ, worker)
        self.workers[lane.index] = worker
        return worker

    def retire(self, index: int) -> None:
        """Forget the lane's worker (it has exited, or is told to by the end of its stdin)."""
        worker = self.workers.pop(index, None)
        if worker is None:
            return
        if worker.pipe_open:
            self.selector.unregister(worker.events)
            os.close(worker.events)
            worker.pipe_open = False
        try:
            worker.process.stdin.close()
        except OSError:
            pass

    def dismiss_workers(self) -> None:
        """The grid is done: idle workers see the end of their stdin and exit."""
        workers = list(self.workers.values())
        for index in list(self.workers):
            self.retire(index)
        for worker in workers:
            try:
                worker.process.wait(timeout=GRACE)
            except subprocess.TimeoutExpired:
                signal_group(worker.process, signal.SIGKILL)
                worker.process.wait()

    def read_events(self, timeout: float) -> None:
        if not self.selector.get_map():
            time.sleep(timeout)
            return
        for key, _ in self.selector.select(timeout):
            self.drain(key.data)

    def drain(self, worker: Worker) -> None:
        """Read what the worker sent; replay it on its run's progress reporter."""
        while worker.pipe_open:
            try:
                chunk = os.read(worker.events, 65536)
            except BlockingIOError:
                return
            if not chunk:
                self.selector.unregister(worker.events)
                os.close(worker.events)
                worker.pipe_open = False
                return
            *lines, worker.buffer = (worker.buffer + chunk).split(b"\n")
            for line in lines:
                try:
                    event = json.loads(line)
                    if event.get("event") == "ended":
                        worker.ended = True
                    elif worker.active is not None:
                        replay(event, worker.active.reporter)
                except (ValueError, KeyError, TypeError, AttributeError):
                    pass  # a damaged progress line costs only the display

    def reap(self) -> list[Lane]:
        freed = []
        for index, active in list(self.active.items()):
            worker = active.worker
            if not worker.ended:
                code = worker.process.poll()
                if code is None:
                    continue
                self.drain(worker)  # the worker is gone; what it sent last may say the run ended
            if worker.ended:
                code = 0
                worker.active, worker.ended = None, False
                if not self.execution.reuse_workers or self.stop_requests:
                    self.retire(index)
            else:
                self.retire(index)
            del self.active[index]
            status, error = self.settle(active, code)
            record_result(self.outcome, self.reporter, active.run, status, error, index)
            freed.append(active.lane)
        return freed

    def settle(self, active: Active, code: int) -> tuple[RunEnd, str]:
        """What became of the run whose worker ended with ``code``; record it if the worker could not."""
        record = self.store.get_run(active.run.run_id)
        if record.status == "running" and record.claimed_by == self.owner:
            status = "interrupted" if self.stop_requests and not active.timed_out else "failed"
            reason = self.exit_reason(active, code) + self.log_tail(active)
            self.store.fail(active.run.run_id, reason, status=status, owner=self.owner)
            return status, reason
        if record.status in ("done", "failed", "interrupted") and record.claimed_by is None:
            return record.status, record.error or ""
        return "lost", f"taken over by {record.claimed_by}"

    def exit_reason(self, active: Active, code: int) -> str:
        # A worker writes a checkpoint after each epoch: one there means an epoch finished.
        kept = Checkpoints(self.results / "checkpoints").exists(active.run.run_id)
        if active.timed_out:
            return timed_out_reason(self.execution.timeout, kept)
        if self.stop_requests:
            return interrupted_reason(kept)
        if code < 0:
            name = signal.Signals(-code).name
            hint = (" (the kernel's out-of-memory killer sends SIGKILL: see `dmesg`; fewer workers or a smaller "
                    "batch need less memory)") if name == "SIGKILL" else ""
            return f"worker killed by {name}{hint}"
        cause = self.log_cause(active)
        return f"worker exited with code {code} without recording a result" + (f": {cause}" if cause else "")

    def log_cause(self, active: Active) -> str:
        """The last line of the worker's output that says what went wrong (the exception line
        of a traceback), so that the one-line reason on the console names the cause."""
        lines = self.log_lines(active)
        for line in reversed(lines):
            text = line.strip()
            if text and not text.startswith(("File ", "^", "~", "During handling", "The above exception")):
                return text[:300]
        return ""

    def log_lines(self, active: Active) -> list[str]:
        try:
            with open(active.log_path, "rb") as log:
                log.seek(active.log_offset)
                return log.read().decode(errors="replace").splitlines()[1:]  # skip our header
        except OSError:
            return []

    def log_tail(self, active: Active) -> str:
        lines = self.log_lines(active)
        if not lines:
            return f"\n(the worker wrote nothing to its log, {active.log_path})"
        tail = "\n".join(lines[-ERROR_TAIL_LINES:])
        return f"\n--- last lines of the worker's output (full log: {active.log_path}) ---\n{tail}"

    # ------------------------------------------------------------------ time limits and stopping

    def enforce_timeouts(self) -> None:
        limit = self.execution.timeout
        if limit is None:
            return
        now = time.monotonic()
        for active in self.active.values():
            if not active.timed_out and now - active.started > limit:
                active.timed_out = True
                signal_group(active.process, signal.SIGKILL)

    def handle_stop(self) -> None:
        if not self.stop_requests:
            return
        if self.kill_deadline is None:
            self.kill_deadline = time.monotonic() + GRACE
            for worker in self.workers.values():  # idle ones too: they exit
                signal_group(worker.process, signal.SIGTERM)
        elif self.stop_requests > 1 or time.monotonic() > self.kill_deadline:
            for worker in self.workers.values():
                signal_group(worker.process, signal.SIGKILL)

    @contextmanager
    def stop_on_signals(self) -> Iterator[None]:
        """Ctrl-C and SIGTERM only raise a flag: the loop stops at a point of its choosing."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def request_stop(signum: int, frame: Any) -> None:
            self.stop_requests += 1

        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def send(worker: Worker, order: bytes) -> None:
    worker.process.stdin.write(order)
    worker.process.stdin.flush()


def signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)  # the worker leads its own session (start_new_session)
    except ProcessLookupError:
        pass
