"""Helpers for the executor tests: real `regsuite run` processes on tiny digits grids, and
the test-only fault plugin installed as a real distribution (entry-point discovery works in
worker processes too, where a monkeypatch would not reach)."""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

FAULT_PLUGIN = Path(__file__).resolve().parents[1] / "fault_plugin" / "regsuite_faults.py"


def install_fault_plugin(root: Path) -> Path:
    """A site folder holding ``regsuite_faults`` and its dist-info (entry point group ``regsuite``)."""
    site = root / "site"
    info = site / "regsuite_faults-0.1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    shutil.copy(FAULT_PLUGIN, site / "regsuite_faults.py")
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: regsuite-faults\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[regsuite]\nfaults = regsuite_faults\n")
    return site


def write_spec(path: Path, sets: dict[str, str], seeds: str = "[0]", epochs: int = 3, extra: str = "",
               execution: str = "threads = 1") -> Path:
    """A tiny digits grid: ``sets`` maps labels to TOML lists of regularizers. One torch
    thread per run: tiny models gain nothing from more, and OpenMP threads crawl on a
    machine whose cores are busy with other work (as a CI runner's may be)."""
    body = "\n".join(f'[[sets]]\nlabel = "{label}"\nregularizers = {regs}\n' for label, regs in sets.items())
    path.write_text(f"""name = "{path.stem}"
task = "image_classification"
seeds = {seeds}
{extra}
[dataset]
name = "digits"
train_limit = 100

[model]
name = "small_cnn"
width = 4
hidden = 16

[training]
epochs = {epochs}
batch_size = 32
device = "cpu"

{body}
[execution]
{execution}
""")
    return path


def cli_env(site: Path | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REGSUITE_DISABLE_EXTERNAL_PLUGINS", "REGSUITE_TEST_HANG")}
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(site), *filter(None, [env.get("PYTHONPATH")])])
    env.update(COLUMNS="200", **extra)
    return env


def regsuite_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "regsuite.cli", *args]


def run_cli(*args: str, env: dict[str, str], cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(regsuite_command(*args), env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def start_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(regsuite_command(*args), env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_files(folder: Path, count: int, process: subprocess.Popen, timeout: float = 120) -> list[Path]:
    """Wait until ``folder`` holds ``count`` files (hang markers written by workers)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(folder.glob("*")) if folder.is_dir() else []
        if len(found) >= count:
            return found
        if process.poll() is not None:
            raise AssertionError(f"regsuite ended early ({process.returncode}): {process.communicate()}")
        time.sleep(0.1)
    raise AssertionError(f"no {count} files in {folder} after {timeout} s")


def alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_gone(pids: list[int], timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(alive(pid) for pid in pids):
            return True
        time.sleep(0.1)
    return False


def rows(results: Path, query: str, *params) -> list[tuple]:
    with sqlite3.connect(results / "regsuite.db") as conn:
        return conn.execute(query, params).fetchall()


def runs_by_label(results: Path) -> dict[str, dict]:
    """label → {status, error, summary, epochs: {epoch: {metric: value}}} from the store."""
    from regsuite.store import Store

    with Store(results, create=False) as store:
        out = {}
        for name in store.spec_names():
            for label, _, record in store.spec_rows(name):
                key = label if record.seed == 0 else f"{label}/{record.seed}"
                out[key] = {"status": record.status, "error": record.error, "summary": record.summary,
                            "run_id": record.run_id, "epochs": store.epochs(record.run_id)}
        return out
