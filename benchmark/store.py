"""The results store: one SQLite file (WAL mode), every write in a transaction.

Tables:
  runs          one row per run, keyed by the hash of its resolved config
  epochs        per-epoch metrics of each run (long format: run, epoch, metric, value)
  spec_rows     which runs make up each spec's table, with the row label and reference values
  specs         the last resolved form of each spec that was run
"""
from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from regsuite.errors import RegsuiteError

DB_NAME = "regsuite.db"
# Seconds without a heartbeat after which a claim from another host counts as abandoned.
STALE_AFTER = 120.0
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed', 'interrupted')),
    seed INTEGER NOT NULL,
    device TEXT,
    wall_time REAL,
    started_at REAL,
    finished_at REAL,
    claimed_by TEXT,
    heartbeat REAL,
    error TEXT,
    summary TEXT
);
CREATE TABLE IF NOT EXISTS epochs (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    metric TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (run_id, epoch, metric)
);
CREATE TABLE IF NOT EXISTS specs (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    baseline TEXT,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS spec_rows (
    spec_name TEXT NOT NULL REFERENCES specs(name) ON DELETE CASCADE,
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    position INTEGER NOT NULL,
    label TEXT NOT NULL,
    reference TEXT NOT NULL,
    PRIMARY KEY (spec_name, run_id)
);
"""


@dataclass
class RunRecord:
    run_id: str
    config: dict[str, Any]
    status: str
    seed: int
    device: str | None
    wall_time: float | None
    error: str | None
    summary: dict[str, Any]
    claimed_by: str | None = None
    heartbeat: float | None = None


def default_results_dir() -> Path:
    return Path(os.environ.get("REGSUITE_RESULTS", "results"))


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_is_dead(claimed_by: str | None) -> bool:
    """True when ``claimed_by`` ("host:pid") names a process of this host that is gone."""
    host, _, pid = (claimed_by or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another host's process: only its heartbeat can tell
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return process_state(int(pid)) == "Z"


def process_state(pid: int) -> str:
    """The state letter of /proc/<pid>/stat ("Z" = zombie: dead, not yet reaped); "" elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rpartition(")")[2].split()[0]


class Store:
    def __init__(self, directory: Path | str, create: bool = True):
        self.directory = Path(directory)
        self.path = self.directory / DB_NAME
        if not create and not self.path.is_file():
            raise RegsuiteError(
                f"no results store at {self.path}",
                hint="run a spec first (regsuite run SPEC), or point --results at the folder that holds regsuite.db",
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        with self.transaction():
            for statement in SCHEMA.strip().split(";\n"):
                if statement.strip():
                    self.conn.execute(statement)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT: writers queue up, readers never see half a change."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # ------------------------------------------------------------------ planning

    def register_plan(self, plan: Any) -> None:
        """Record the spec, its rows, and a pending row for every run not yet in the store."""
        spec = plan.spec
        with self.transaction() as tx:
            tx.execute(
                "INSERT INTO specs(name, spec, baseline, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET spec=excluded.spec, baseline=excluded.baseline, updated_at=excluded.updated_at",
                (spec.name, spec.model_dump_json(), spec.baseline_label, time.time()),
            )
            tx.execute("DELETE FROM spec_rows WHERE spec_name = ?", (spec.name,))
            for position, run in enumerate(plan.runs):
                tx.execute(
                    "INSERT OR IGNORE INTO runs(run_id, config, status, seed) VALUES (?, ?, 'pending', ?)",
                    (run.run_id, json.dumps(run.config, sort_keys=True), run.seed),
                )
                tx.execute(
                    "INSERT INTO spec_rows(spec_name, run_id, position, label, reference) VALUES (?, ?, ?, ?, ?)",
                    (spec.name, run.run_id, position, run.label, json.dumps(run.reference)),
                )

    def statuses(self, run_ids: list[str]) -> dict[str, str]:
        found = {}
        for chunk in chunks(run_ids, 500):
            marks = ",".join("?" * len(chunk))
            for row in self.conn.execute(f"SELECT run_id, status FROM runs WHERE run_id IN ({marks})", chunk):
                found[row["run_id"]] = row["status"]
        return found

    # ------------------------------------------------------------------ running

    def claim(self, run_id: str, stale_after: float = STALE_AFTER, retry_failed: bool = False,
              owner: str | None = None) -> bool:
        """Mark a run as ``owner``'s (default: this process), atomically. A claim is taken
        over when its heartbeat is older than ``stale_after`` seconds, or at once when its
        owner is a process of this host that no longer exists."""
        owner = owner or worker_id()
        now = time.time()
        allowed = ("pending", "interrupted", "failed") if retry_failed else ("pending", "interrupted")
        with self.transaction() as tx:
            row = tx.execute("SELECT status, heartbeat, claimed_by FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                return False
            stale = row["status"] == "running" and (
                (row["heartbeat"] or 0) < now - stale_after
                or row["claimed_by"] == owner  # our id, but not our claim: a dead predecessor with our pid
                or owner_is_dead(row["claimed_by"])
            )
            if row["status"] not in allowed and not stale:
                return False
            tx.execute(
                "UPDATE runs SET status='running', claimed_by=?, heartbeat=?, started_at=?, error=NULL WHERE run_id=?",
                (owner, now, now, run_id),
            )
            return True

    def heartbeat(self, run_ids: str | list[str], owner: str | None = None) -> None:
        """Refresh the claims of ``run_ids`` (only those ``owner`` still holds, when given)."""
        ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
        with self.transaction() as tx:
            for run_id in ids:
                tx.execute(
                    "UPDATE runs SET heartbeat=? WHERE run_id=?" + (" AND claimed_by=?" if owner else ""),
                    (time.time(), run_id, *([owner] if owner else [])),
                )

    def holds(self, tx: sqlite3.Connection, run_id: str, owner: str | None) -> bool:
        """Inside a transaction: may ``owner`` write results of ``run_id``? (None: anyone.)"""
        if owner is None:
            return True
        row = tx.execute("SELECT status, claimed_by FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return row is not None and row["status"] == "running" and row["claimed_by"] == owner

    def record_epoch(self, run_id: str, epoch: int, metrics: dict[str, float], owner: str | None = None) -> bool:
        with self.transaction() as tx:
            if not self.holds(tx, run_id, owner):
                return False
            tx.executemany(
                "INSERT OR REPLACE INTO epochs(run_id, epoch, metric, value) VALUES (?, ?, ?, ?)",
                [(run_id, epoch, name, value) for name, value in metrics.items()],
            )
            tx.execute("UPDATE runs SET heartbeat=? WHERE run_id=?", (time.time(), run_id))
            return True

    def truncate_epochs(self, run_id: str, after_epoch: int, owner: str | None = None) -> bool:
        """Drop epochs past ``after_epoch`` (a resumed run redoes them)."""
        with self.transaction() as tx:
            if not self.holds(tx, run_id, owner):
                return False
            tx.execute("DELETE FROM epochs WHERE run_id=? AND epoch>?", (run_id, after_epoch))
            return True

    def finish(self, run_id: str, summary: dict[str, Any], device: str, wall_time: float,
               owner: str | None = None) -> bool:
        with self.transaction() as tx:
            if not self.holds(tx, run_id, owner):
                return False
            tx.execute(
                "UPDATE runs SET status='done', summary=?, device=?, wall_time=?, finished_at=?, error=NULL, claimed_by=NULL WHERE run_id=?",
                (json.dumps(summary), device, wall_time, time.time(), run_id),
            )
            return True

    def fail(self, run_id: str, error: str, status: str = "failed", owner: str | None = None) -> bool:
        with self.transaction() as tx:
            if not self.holds(tx, run_id, owner):
                return False
            tx.execute(
                "UPDATE runs SET status=?, error=?, finished_at=?, claimed_by=NULL WHERE run_id=?",
                (status, error, time.time(), run_id),
            )
            return True

    # ------------------------------------------------------------------ importing
    # Called inside ``with store.transaction() as tx`` (see regsuite.results_file), so that a
    # whole results file goes in as one transaction.

    def put_done_run(self, tx: sqlite3.Connection, run_id: str, config: dict[str, Any], seed: int,
                     device: str | None, wall_time: float | None, summary: dict[str, Any],
                     epochs: list[dict[str, Any]]) -> None:
        """Write a finished run with its per-epoch metrics. A run already in the store keeps
        its stored config (the caller has checked that it has the same run key) and gets the
        status, results and epochs given here; its claim and error are cleared."""
        tx.execute(
            "INSERT INTO runs(run_id, config, status, seed, device, wall_time, finished_at, summary) "
            "VALUES (?, ?, 'done', ?, ?, ?, ?, ?) "
            "ON CONFLICT(run_id) DO UPDATE SET status='done', device=excluded.device, wall_time=excluded.wall_time, "
            "finished_at=excluded.finished_at, summary=excluded.summary, error=NULL, claimed_by=NULL, heartbeat=NULL",
            (run_id, json.dumps(config, sort_keys=True), seed, device, wall_time, time.time(), json.dumps(summary)),
        )
        tx.execute("DELETE FROM epochs WHERE run_id=?", (run_id,))
        tx.executemany(
            "INSERT INTO epochs(run_id, epoch, metric, value) VALUES (?, ?, ?, ?)",
            [(run_id, row["epoch"], name, value) for row in epochs for name, value in row.items() if name != "epoch"],
        )

    def put_spec(self, tx: sqlite3.Connection, name: str, spec: dict[str, Any], baseline: str | None,
                 rows: list[tuple[int, str, str, dict[str, float]]]) -> None:
        """Insert a spec that the store does not hold yet, with its rows
        ``(position, run_id, label, reference)``; every run must be in the store already."""
        tx.execute("INSERT INTO specs(name, spec, baseline, updated_at) VALUES (?, ?, ?, ?)",
                   (name, json.dumps(spec), baseline, time.time()))
        tx.executemany(
            "INSERT INTO spec_rows(spec_name, run_id, position, label, reference) VALUES (?, ?, ?, ?, ?)",
            [(name, run_id, position, label, json.dumps(reference)) for position, run_id, label, reference in rows],
        )

    # ------------------------------------------------------------------ reading

    def spec_names(self) -> list[str]:
        return [r["name"] for r in self.conn.execute("SELECT name FROM specs ORDER BY updated_at")]

    def spec_info(self, name: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT spec, baseline, updated_at FROM specs WHERE name=?", (name,)).fetchone()
        if row is None:
            return None
        return {"spec": json.loads(row["spec"]), "baseline": row["baseline"], "updated_at": row["updated_at"]}

    def spec_rows(self, name: str) -> list[tuple[str, dict[str, float], RunRecord]]:
        rows = self.conn.execute(
            "SELECT s.label, s.reference, r.* FROM spec_rows s JOIN runs r USING (run_id) WHERE s.spec_name=? ORDER BY s.position",
            (name,),
        ).fetchall()
        return [(row["label"], json.loads(row["reference"]), record_of(row)) for row in rows]

    def get_run(self, run_id: str) -> RunRecord | None:
        row = self.conn.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return record_of(row) if row else None

    def spec_row_entries(self, name: str) -> list[dict[str, Any]]:
        """The rows of spec ``name`` as stored: position, run_id, label, reference; by position."""
        rows = self.conn.execute(
            "SELECT position, run_id, label, reference FROM spec_rows WHERE spec_name=? ORDER BY position, run_id", (name,),
        ).fetchall()
        return [{"position": r["position"], "run_id": r["run_id"], "label": r["label"],
                 "reference": json.loads(r["reference"])} for r in rows]

    def runs_with_status(self, status: str) -> list[RunRecord]:
        """Every run with ``status``, by run id."""
        rows = self.conn.execute("SELECT * FROM runs WHERE status=? ORDER BY run_id", (status,)).fetchall()
        return [record_of(row) for row in rows]

    def epochs(self, run_id: str) -> list[dict[str, float]]:
        """Per-epoch metrics, ordered by epoch: ``[{"epoch": 1, "train_loss": …}, …]``."""
        by_epoch: dict[int, dict[str, float]] = {}
        for row in self.conn.execute("SELECT epoch, metric, value FROM epochs WHERE run_id=? ORDER BY epoch", (run_id,)):
            by_epoch.setdefault(row["epoch"], {"epoch": row["epoch"]})[row["metric"]] = row["value"]
        return [by_epoch[e] for e in sorted(by_epoch)]


def record_of(row: sqlite3.Row) -> RunRecord:
    return RunRecord(
        run_id=row["run_id"], config=json.loads(row["config"]), status=row["status"], seed=row["seed"],
        device=row["device"], wall_time=row["wall_time"], error=row["error"],
        summary=json.loads(row["summary"]) if row["summary"] else {},
        claimed_by=row["claimed_by"], heartbeat=row["heartbeat"],
    )


def chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
