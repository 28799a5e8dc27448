"""The results store: one SQLite file (WAL mode), every write in a transaction.

Tables:
  runs          one row per run, keyed by the hash of its resolved config
  epochs        per-epoch metrics of each run (long format: run, epoch, metric, value)
  spec_rows     which runs make up each spec's table, with the row label and reference values
  specs         the last resolved form of each spec that was run

A store is marked as regsuite's (``PRAGMA application_id`` = :data:`APPLICATION_ID`,
``PRAGMA user_version`` = :data:`SCHEMA_VERSION`); a store made before the mark existed is
recognised by its tables. A file that is neither is refused, untouched: regsuite never adds
its tables to another program's database. Commands that only read (``validate``,
``leaderboard``, ``plot``, ``results export``) open the store read-only (``mode=ro``): they
create no folder and change neither the schema nor the journal mode. A new store is made
under a temporary name and linked into place whole, so a ``regsuite.db`` is never half made.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import socket
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Literal, get_args

from regsuite import atomic
from regsuite.errors import RegsuiteError

if TYPE_CHECKING:
    from regsuite.spec import Plan

#: What the store says of a run: ``pending`` (planned, not started), ``running`` (claimed by a
#: process, see :meth:`Store.claim`), or how its last attempt ended: ``done``, ``failed``,
#: ``interrupted`` (stopped by a signal; its checkpoint, if any, resumes it).
RunStatus = Literal["pending", "running", "done", "failed", "interrupted"]
RUN_STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)

DB_NAME = "regsuite.db"
#: ``PRAGMA application_id`` of a regsuite store: "RGST".
APPLICATION_ID = 0x52475354
#: ``PRAGMA user_version`` of a store of this schema; a store of a later version is refused.
SCHEMA_VERSION = 1
# Seconds without a heartbeat after which a claim counts as abandoned (see Store.claim).
STALE_AFTER = 120.0
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ({', '.join(f"'{status}'" for status in RUN_STATUSES)})),
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
#: The tables (and their columns) by which a store made before the mark is recognised.
TABLES = {
    "runs": {"run_id", "config", "status", "seed", "device", "wall_time", "started_at", "finished_at",
             "claimed_by", "heartbeat", "error", "summary"},
    "epochs": {"run_id", "epoch", "metric", "value"},
    "specs": {"name", "spec", "baseline", "updated_at"},
    "spec_rows": {"spec_name", "run_id", "position", "label", "reference"},
}
SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass
class RunRecord:
    run_id: str
    config: dict[str, Any]
    status: RunStatus
    seed: int
    device: str | None
    wall_time: float | None
    error: str | None
    summary: dict[str, Any]
    claimed_by: str | None = None
    heartbeat: float | None = None


def default_results_dir() -> Path:
    return Path(os.environ.get("REGSUITE_RESULTS", "results"))


_TOKENS: dict[int, str] = {}


def worker_id() -> str:
    """This process as the owner of claims: ``host:pid:pid-namespace:token``. The random
    token makes the owner unique to this process: another process with the same host and
    pid (in another container, or later) is another owner."""
    pid = os.getpid()
    token = _TOKENS.get(pid) or _TOKENS.setdefault(pid, secrets.token_hex(8))
    return f"{socket.gethostname()}:{pid}:{pid_namespace()}:{token}"


def pid_namespace() -> str:
    """The PID namespace this process sees pids in (on Linux the inode of /proc/self/ns/pid,
    which differs between containers on one host); "-" where there is none to read."""
    try:
        link = os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]"
    except OSError:
        return "-"
    number = link.rpartition("[")[2].rstrip("]")
    return number if number.isdigit() else "-"


OWNER = re.compile(r"^(?P<host>.*):(?P<pid>\d+):(?P<ns>\d+|-):(?P<token>[0-9a-f]+)$")


def owner_is_dead(claimed_by: str | None) -> bool:
    """True when ``claimed_by`` names a process that this process can see is gone: one of
    this host and of this PID namespace whose pid no longer exists (or is ours, under another
    token: a dead predecessor). A pid of another namespace (another container on this host)
    or of an owner written without one (by an older regsuite: "host:pid") says
    nothing here, since the same number may be a live process there: only the heartbeat can
    tell those."""
    match = OWNER.match(claimed_by or "")
    if match is None or match["host"] != socket.gethostname() or match["ns"] != pid_namespace():
        return False
    pid = int(match["pid"])
    if pid == os.getpid():
        return claimed_by != worker_id()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return process_state(pid) == "Z"


def process_state(pid: int) -> str:
    """The state letter of /proc/<pid>/stat ("Z" = zombie: dead, not yet reaped); "" elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rpartition(")")[2].split()[0]


class Store:
    """A results store. ``create``: make it when it does not exist (else: it must).
    ``readonly``: open it for reading only; it must exist, and nothing is written."""

    def __init__(self, directory: Path | str, create: bool = True, readonly: bool = False):
        self.directory = Path(directory)
        self.path = self.directory / DB_NAME
        self.readonly = readonly
        check_folder(self.directory)
        if (readonly or not create) and not os.path.lexists(self.path):
            raise RegsuiteError(
                f"no results store at {self.path}",
                hint="run a spec first (regsuite run SPEC), or point --results at the folder that holds regsuite.db",
            )
        try:
            self.conn = open_readonly(self.path) if readonly else open_writable(self.path)
        except (sqlite3.Error, OSError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            if readonly:
                raise RegsuiteError(f"cannot read the results store {self.path}: {reason}",
                                    hint="is it damaged? point --results at another folder") from None
            raise RegsuiteError(f"cannot write the results store {self.path}: {reason}",
                                hint="the folder must be writable (not read-only media); point --results "
                                     "(or $REGSUITE_RESULTS) at a writable folder") from None

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

    def register_plan(self, plan: Plan) -> None:
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

    def statuses(self, run_ids: list[str]) -> dict[str, RunStatus]:
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
        owner is a process of this host and PID namespace that no longer exists (see
        :func:`owner_is_dead`)."""
        owner = owner or worker_id()
        now = time.time()
        allowed = ("pending", "interrupted", "failed") if retry_failed else ("pending", "interrupted")
        with self.transaction() as tx:
            row = tx.execute("SELECT status, heartbeat, claimed_by FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                return False
            stale = row["status"] == "running" and (
                (row["heartbeat"] or 0) < now - stale_after
                or row["claimed_by"] == owner  # the owner claims again
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

    def fail(self, run_id: str, error: str, status: RunStatus = "failed", owner: str | None = None) -> bool:
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

    def runs_with_status(self, status: RunStatus) -> list[RunRecord]:
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


# ---------------------------------------------------------------------------- opening


def check_folder(directory: Path) -> None:
    """A results folder that is a file, or lies under one, is one message, not a traceback."""
    try:
        for folder in (directory, *directory.parents):
            if os.path.lexists(folder):
                if not folder.is_dir():
                    where = "is a file" if folder == directory else f"lies under {folder}, which is a file"
                    raise RegsuiteError(f"the results folder {directory} {where}, not a folder",
                                        hint="point --results (or $REGSUITE_RESULTS) at a folder")
                return
    except OSError as exc:
        raise RegsuiteError(f"cannot reach the results folder {directory}: {exc.strerror or exc}") from None


def store_exists(directory: Path | str) -> bool:
    """Is there something at ``directory/regsuite.db`` (that Store can open, or refuse)?"""
    directory = Path(directory)
    check_folder(directory)
    return os.path.lexists(directory / DB_NAME)


def not_a_store(path: Path, why: str) -> RegsuiteError:
    return RegsuiteError(
        f"{path} is not a regsuite results store: {why}; it was left untouched",
        hint=f"move it away, or point --results (or $REGSUITE_RESULTS) at another folder: regsuite keeps its "
             f"results in a {DB_NAME} of its own",
    )


def file_uri(path: Path, **query: str) -> str:
    uri = Path(os.path.abspath(path)).as_uri()
    return uri + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def examine(path: Path) -> bool:
    """Refuse ``path`` (one RegsuiteError naming it) unless it is a regsuite store, reading it
    without writing anything, beside it either. True: it carries regsuite's mark."""
    if not path.is_file():
        raise not_a_store(path, "it is not a regular file")
    with open(path, "rb") as handle:
        head = handle.read(100)
        size = os.fstat(handle.fileno()).st_size
    if not head:
        raise not_a_store(path, "it is empty")
    if not head.startswith(SQLITE_MAGIC):
        raise not_a_store(path, "it is not an SQLite database")
    if len(head) < 100:
        raise not_a_store(path, f"it is truncated ({size} bytes)")
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big")
    if head[24:28] == head[92:96] and size < pages * page_size:  # the header's page count is valid
        raise not_a_store(path, f"it is truncated ({size} of {pages * page_size} bytes)")
    application_id = int.from_bytes(head[68:72], "big")
    version = int.from_bytes(head[60:64], "big")
    if application_id == APPLICATION_ID:
        if version > SCHEMA_VERSION:
            raise RegsuiteError(f"the results store {path} was made by a newer regsuite (schema version {version}; "
                                f"this one knows up to {SCHEMA_VERSION})", hint="upgrade regsuite to use it")
        return True
    if application_id != 0:
        raise not_a_store(path, f"it is another program's SQLite database (application id {application_id:#010x})")
    # Unmarked: a store of a regsuite before the mark, or another program's database. Its
    # tables tell; read them immutably (no -wal or -shm made beside it) unless a -wal is
    # there already, whose pages may hold the newest schema.
    wal = path.with_name(path.name + "-wal")
    query = {"mode": "ro"} if wal.exists() else {"mode": "ro", "immutable": "1"}
    try:
        conn = sqlite3.connect(file_uri(path, **query), uri=True, timeout=60)
        try:
            problem = missing_tables(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise not_a_store(path, f"SQLite cannot read it ({exc})") from None
    if problem:
        raise not_a_store(path, problem)
    return False


def missing_tables(conn: sqlite3.Connection) -> str | None:
    """What regsuite's schema lacks in ``conn``'s database (None: nothing)."""
    found = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    absent = sorted(set(TABLES) - found)
    if absent == sorted(TABLES):
        return "it has none of regsuite's tables" + (f" (it holds {', '.join(sorted(found))})" if found else "")
    if absent:
        return f"it lacks regsuite's table(s) {', '.join(absent)}"
    for table, columns in TABLES.items():
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if columns - have:
            return f"its table {table} lacks regsuite's column(s) {', '.join(sorted(columns - have))}"
    return None


def open_readonly(path: Path) -> sqlite3.Connection:
    examine(path)
    try:
        conn = connect_readonly(path, immutable=False)
    except sqlite3.OperationalError:
        if os.access(path.parent, os.W_OK):
            raise
        # Read-only media: SQLite cannot make the -shm a WAL database is read with; and
        # nothing can write the store there either, so it may be read as immutable.
        conn = connect_readonly(path, immutable=True)
    try:
        problem = missing_tables(conn)
    except BaseException:
        conn.close()
        raise
    if problem:
        conn.close()
        raise not_a_store(path, problem)
    return conn


def connect_readonly(path: Path, immutable: bool) -> sqlite3.Connection:
    query = {"mode": "ro", "immutable": "1"} if immutable else {"mode": "ro"}
    conn = sqlite3.connect(file_uri(path, **query), uri=True, timeout=60, isolation_level=None)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens the file (and its WAL) now
    except BaseException:
        conn.close()
        raise
    return conn


def open_writable(path: Path) -> sqlite3.Connection:
    if not os.path.lexists(path):
        make_store(path)
    examine(path)
    conn = sqlite3.connect(path, timeout=60, isolation_level=None)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")
        initialise(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def initialise(conn: sqlite3.Connection) -> None:
    """regsuite's tables and mark (a store made before the mark gets it), in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in SCHEMA.strip().split(";\n"):
            if statement.strip():
                conn.execute(statement)
        if conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def make_store(path: Path) -> None:
    """Make a new, empty store at ``path`` whole: under a temporary name, then linked into
    place; when another process made one first, theirs is kept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = atomic.temporary_name(path)
    try:
        conn = sqlite3.connect(temporary, timeout=60, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            initialise(conn)
        finally:
            conn.close()  # the last connection: its WAL is checkpointed into the file and removed
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another regsuite made it meanwhile
        except OSError:  # a file system without hard links
            if not os.path.lexists(path):
                os.replace(temporary, path)
    finally:
        for leftover in (temporary, temporary.with_name(temporary.name + "-wal"),
                         temporary.with_name(temporary.name + "-shm")):
            leftover.unlink(missing_ok=True)
