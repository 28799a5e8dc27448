"""Workers start wherever the user stands (issue 12): a folder named ``regsuite`` in the
working directory does not shadow the installed package, and a worker that dies before it
trains says why, on the console and in the store."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers.execution import cli_env, runs_by_label, write_spec

from regsuite.execution import local
from regsuite.execution.grid import GridReporter
from regsuite.registry import get_registry
from regsuite.spec import ExecutionConfig, load_spec, resolve
from regsuite.store import Store

SCRIPT = Path(sys.executable).parent / "regsuite"


def shadowing_folder(root: Path) -> Path:
    (root / "regsuite").mkdir(parents=True)
    (root / "regsuite" / "__init__.py").write_text('raise ImportError("this is a clone, not the installed regsuite")\n')
    return root


@pytest.mark.skipif(not SCRIPT.exists(), reason="no regsuite console script beside this interpreter")
def test_a_run_works_from_a_folder_holding_a_regsuite_directory(tmp_path):
    cwd = shadowing_folder(tmp_path / "clone")
    spec = write_spec(cwd / "here.toml", {"none": "[]"}, epochs=1, execution="workers = 1\nthreads = 1")
    results = cwd / "results"
    ran = subprocess.run([str(SCRIPT), "run", "here.toml", "--results", "results", "--no-plots"],
                         env=cli_env(), cwd=cwd, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "trained 1" in ran.stdout
    assert runs_by_label(results)["none"]["status"] == "done"
    assert spec.exists()


def test_the_worker_command_leaves_the_working_directory_off_the_path(tmp_path):
    shadowing_folder(tmp_path)
    probe = "import regsuite, sys; print(regsuite.__file__)"
    command = local.worker_interpreter()
    if "-m" in command:
        command = command[: command.index("-m")]
    else:  # 3.10: the bootstrap pops the path's first entry itself
        pytest.skip("the bootstrap runs the worker module, not a probe")
    found = subprocess.run([*command, "-c", probe], cwd=tmp_path, capture_output=True, text=True, env=cli_env())
    assert found.returncode == 0, found.stderr
    assert not found.stdout.strip().startswith(str(tmp_path))


class Quiet(GridReporter):
    def __init__(self):
        self.finished = []

    def run_finished(self, run, status, detail="", lane=0):
        self.finished.append((status, detail))


def test_a_worker_that_dies_before_training_shows_why(tmp_path, monkeypatch):
    dies = ("import sys; sys.stderr.write('Traceback (most recent call last):\\n  File \"x.py\", line 1, in <module>\\n"
            "ImportError: cannot import name \\'hookspec\\' from \\'regsuite\\'\\n'); sys.exit(1)")
    monkeypatch.setattr(local, "worker_interpreter", lambda: [sys.executable, "-c", dies])
    plan = resolve(load_spec(write_spec(tmp_path / "dies.toml", {"none": "[]"}, epochs=1)), get_registry())
    reporter = Quiet()
    with Store(tmp_path / "results") as store:
        outcome = local.run_plan_local(plan, store, reporter, ExecutionConfig(workers=1, threads=1))
        error = store.get_run(plan.runs[0].run_id).error
    [(_, reason)] = outcome.failed
    first = reason.splitlines()[0]
    assert first.startswith("worker exited with code 1 without recording a result: ImportError: cannot import name 'hookspec'")
    assert reporter.finished == [("failed", first)]  # the console's line names the cause
    assert "--- last lines of the worker's output" in error and "Traceback" in error


def test_run_prints_the_last_lines_of_a_failed_worker(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from regsuite import cli

    dies = "import sys; sys.stderr.write('step one\\nImportError: no such thing\\n'); sys.exit(1)"
    monkeypatch.setattr(local, "worker_interpreter", lambda: [sys.executable, "-c", dies])
    spec = write_spec(tmp_path / "dies2.toml", {"none": "[]"}, epochs=1, execution="workers = 1\nthreads = 1")
    result = CliRunner().invoke(cli.app, ["run", str(spec), "--results", str(tmp_path / "r"), "--no-plots"])
    assert result.exit_code == 1
    assert "ImportError: no such thing" in result.output and "    step one" in result.output
