"""The local executor: one worker process per run, as many at once as there are slots.

Each run trains in a fresh ``python -m regsuite.worker`` process (see
:mod:`regsuite.worker`) that this process has claimed the run for. Results travel through
the results store (SQLite transactions), progress through a pipe (JSON lines), and the
worker's stdout/stderr go to ``<results>/logs/<run_id>.log``. A worker that dies (an
exception, a NaN loss, out of memory, a signal, the timeout) costs only its own run, which
is recorded as failed with the reason and the last lines of that log; the grid goes on.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from regsuite.execution import ExecutionConfig, SlotPlan
from regsuite.runner import HEARTBEAT_EVERY, GridReporter, Outcome, record_result, start_grid
from regsuite.spec import Plan, PlannedRun
from regsuite.store import Store, worker_id
from regsuite.worker import ERROR_TAIL_LINES, THREADS_ENV, replay

GRACE = 10.0  # seconds interrupted workers get to record themselves before they are killed
POLL = 0.2  # seconds between checks of the workers


@dataclass
class Active:
    run: PlannedRun
    slot: SlotPlan
    process: subprocess.Popen
    events: int  # read end of the progress pipe
    reporter: Any
    started: float
    log_path: Path
    log_offset: int
    buffer: bytes = b""
    timed_out: bool = False
    pipe_open: bool = field(default=True)


def run_plan_local(plan: Plan, store: Store, reporter: GridReporter, slots: list[SlotPlan],
                   execution: ExecutionConfig, retry_failed: bool = False) -> Outcome:
    return LocalExecutor(plan, store, reporter, slots, execution, retry_failed).run()


class LocalExecutor:
    def __init__(self, plan: Plan, store: Store, reporter: GridReporter, slots: list[SlotPlan],
                 execution: ExecutionConfig, retry_failed: bool):
        self.plan, self.store, self.reporter, self.slots = plan, store, reporter, slots
        self.execution, self.retry_failed = execution, retry_failed
        self.owner = worker_id()
        self.results = store.directory.resolve()
        self.selector = selectors.DefaultSelector()
        self.active: dict[int, Active] = {}
        self.stop_requests = 0
        self.kill_deadline: float | None = None
        self.last_heartbeat = time.monotonic()

    # ------------------------------------------------------------------ the loop

    def run(self) -> Outcome:
        todo, self.outcome = start_grid(self.plan, self.store, self.reporter, self.retry_failed,
                                        [slot.describe() for slot in self.slots])
        queue = deque(todo)
        free = list(self.slots)
        with self.stop_on_signals():
            while queue or self.active:
                if not self.stop_requests:
                    self.fill(queue, free)
                if not self.active:
                    break
                self.read_events(POLL)
                for slot in self.reap():
                    free.append(slot)
                free.sort(key=lambda s: s.index)
                self.enforce_timeouts()
                self.handle_stop()
                self.keep_claims_fresh()
        self.selector.close()
        self.outcome.stopped = self.stop_requests > 0
        return self.outcome

    def fill(self, queue: deque[PlannedRun], free: list[SlotPlan]) -> None:
        while free and queue:
            run = queue.popleft()
            if not self.store.claim(run.run_id, retry_failed=self.retry_failed, owner=self.owner):
                record_result(self.outcome, self.reporter, run, "busy")
                continue
            self.launch(run, free.pop(0))

    # ------------------------------------------------------------------ workers

    def command(self, run: PlannedRun) -> list[str]:
        cmd = [sys.executable, "-m", "regsuite.worker", "--results", str(self.results), "--run-id", run.run_id,
               "--owner", self.owner, "--parent-pid", str(os.getpid())]
        return cmd + (["--keep-checkpoints"] if self.execution.keep_checkpoints else [])

    def environment(self, slot: SlotPlan) -> dict[str, str]:
        env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS=str(slot.threads),
                   MKL_NUM_THREADS=str(slot.threads), **{THREADS_ENV: str(slot.threads)})
        if slot.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = slot.gpu
        return env

    def launch(self, run: PlannedRun, slot: SlotPlan) -> None:
        log_path = self.results / "logs" / f"{run.run_id}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        read_fd, write_fd = os.pipe()
        with open(log_path, "ab") as log:
            offset = log.tell()
            log.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} {run.describe()} on {slot.describe()}, "
                      f"claimed by {self.owner}\n".encode())
            log.flush()
            try:
                process = subprocess.Popen(
                    self.command(run) + ["--events-fd", str(write_fd)], stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, pass_fds=(write_fd,), env=self.environment(slot),
                    start_new_session=True,  # Ctrl-C reaches only us; we decide what the workers do
                )
            except OSError as exc:
                os.close(read_fd)
                reason = f"could not start a worker process: {exc}"
                self.store.fail(run.run_id, reason, owner=self.owner)
                record_result(self.outcome, self.reporter, run, "failed", reason, slot.index)
                return
            finally:
                os.close(write_fd)
        os.set_blocking(read_fd, False)
        active = Active(run, slot, process, read_fd, self.reporter.run_started(run, slot.index),
                        time.monotonic(), log_path, offset)
        self.selector.register(read_fd, selectors.EVENT_READ, active)
        self.active[slot.index] = active

    def read_events(self, timeout: float) -> None:
        if not self.selector.get_map():
            time.sleep(timeout)
            return
        for key, _ in self.selector.select(timeout):
            self.drain(key.data)

    def drain(self, active: Active) -> None:
        """Read what the worker sent; replay it on its progress reporter."""
        while active.pipe_open:
            try:
                chunk = os.read(active.events, 65536)
            except BlockingIOError:
                return
            if not chunk:
                self.selector.unregister(active.events)
                os.close(active.events)
                active.pipe_open = False
                return
            *lines, active.buffer = (active.buffer + chunk).split(b"\n")
            for line in lines:
                try:
                    replay(json.loads(line), active.reporter)
                except (ValueError, KeyError, TypeError):
                    pass  # a damaged progress line costs only the display

    def reap(self) -> list[SlotPlan]:
        freed = []
        for index, active in list(self.active.items()):
            code = active.process.poll()
            if code is None:
                continue
            self.drain(active)
            if active.pipe_open:  # the worker is gone; nothing more can come
                self.selector.unregister(active.events)
                os.close(active.events)
            del self.active[index]
            status, error = self.settle(active, code)
            record_result(self.outcome, self.reporter, active.run, status, error, index)
            freed.append(active.slot)
        return freed

    def settle(self, active: Active, code: int) -> tuple[str, str]:
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
        from regsuite.checkpoint import Checkpoints  # imports torch: only when a worker failed

        # What is said about a checkpoint must be true: the worker writes one after each epoch.
        kept = Checkpoints(self.results / "checkpoints").exists(active.run.run_id)
        if active.timed_out:
            if kept:
                return (f"timed out after {self.execution.timeout:g} s (execution.timeout); the last checkpoint is kept "
                        "and --retry-failed resumes from it")
            return (f"timed out after {self.execution.timeout:g} s (execution.timeout); no epoch finished, so there "
                    "is no checkpoint and --retry-failed starts it over (a larger --timeout gives it longer)")
        if self.stop_requests:
            if kept:
                return "interrupted; rerun the same command to resume from the last checkpoint"
            return "interrupted before its first epoch finished; rerun the same command to start it again"
        if code < 0:
            name = signal.Signals(-code).name
            hint = (" (the kernel's out-of-memory killer sends SIGKILL: see `dmesg`; fewer workers or a smaller "
                    "batch need less memory)") if name == "SIGKILL" else ""
            return f"worker killed by {name}{hint}"
        return f"worker exited with code {code} without recording a result"

    def log_tail(self, active: Active) -> str:
        try:
            with open(active.log_path, "rb") as log:
                log.seek(active.log_offset)
                lines = log.read().decode(errors="replace").splitlines()[1:]  # skip our header
        except OSError:
            return ""
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
            for active in self.active.values():
                signal_group(active.process, signal.SIGTERM)
        elif self.stop_requests > 1 or time.monotonic() > self.kill_deadline:
            for active in self.active.values():
                signal_group(active.process, signal.SIGKILL)

    def keep_claims_fresh(self) -> None:
        if time.monotonic() - self.last_heartbeat < HEARTBEAT_EVERY or not self.active:
            return
        self.last_heartbeat = time.monotonic()
        self.store.heartbeat([a.run.run_id for a in self.active.values()], self.owner)

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


def signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)  # the worker leads its own session (start_new_session)
    except ProcessLookupError:
        pass
