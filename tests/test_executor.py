"""The local executor: worker processes, failure isolation, timeouts, concurrent `regsuite run`s."""
from __future__ import annotations

import re

import pytest
from helpers.execution import (
    cli_env,
    install_fault_plugin,
    rows,
    run_cli,
    runs_by_label,
    start_cli,
    write_spec,
)

from regsuite.errors import RegsuiteError
from regsuite.execution.local import Lane as SlotPlan  # the assertions below predate the name
from regsuite.execution.local import plan_lanes as plan_slots
from regsuite.registry import get_registry
from regsuite.spec import ExecutionConfig, load_spec, resolve


@pytest.fixture
def site(tmp_path):
    return install_fault_plugin(tmp_path)


def attempts(results, run_id) -> int:
    """How many worker processes were started for a run (one header line each in its log)."""
    return (results / "logs" / f"{run_id}.log").read_text().count("=== ")


# ---------------------------------------------------------------------------- settings


def test_slots_pin_one_gpu_each_and_share_the_cores():
    four = plan_slots(ExecutionConfig(runs_per_gpu=2), gpus=["0", "3"], cores=16)
    assert four == [SlotPlan(0, "0", 4), SlotPlan(1, "3", 4), SlotPlan(2, "0", 4), SlotPlan(3, "3", 4)]
    assert plan_slots(ExecutionConfig(), gpus=["GPU-a", "GPU-b"], cores=2) == [SlotPlan(0, "GPU-a", 1), SlotPlan(1, "GPU-b", 1)]
    assert plan_slots(ExecutionConfig(workers=3), gpus=[], cores=8) == [SlotPlan(i, None, 2) for i in range(3)]
    assert plan_slots(ExecutionConfig(), gpus=[], cores=8) == [SlotPlan(0, None, 8)]


def test_execution_settings_do_not_change_run_ids(tmp_path):
    spec = write_spec(tmp_path / "ids.toml", {"none": "[]"}, seeds="[0, 1]", execution="")
    registry = get_registry()
    plain = resolve(load_spec(spec), registry)
    tuned = resolve(load_spec(spec, ["execution.workers=4", "execution.threads=3", "execution.timeout=60", "execution.keep_checkpoints=true"]), registry)
    assert [r.run_id for r in plain.runs] == [r.run_id for r in tuned.runs]
    assert all("execution" not in r.config for r in tuned.runs)


def test_bad_execution_settings_are_one_clear_error(tmp_path):
    spec = write_spec(tmp_path / "bad.toml", {"none": "[]"})
    result = run_cli("run", str(spec), "--results", str(tmp_path / "r"), "--address", "auto", env=cli_env(), cwd=tmp_path)
    assert result.returncode == 2
    assert "address" in result.stderr and "--executor ray" in result.stderr
    assert "Traceback" not in result.stderr
    with pytest.raises(RegsuiteError, match="timeout needs worker processes"):
        load_spec(spec, ["execution.workers=0", "execution.timeout=5"])


# ---------------------------------------------------------------------------- failures


def test_failures_are_isolated_recorded_and_retried_alone(tmp_path, site):
    spec = write_spec(tmp_path / "faults.toml", {
        "ok": '[{ name = "fault" }]',
        "raises": '[{ name = "fault", mode = "raise", at_epoch = 2 }]',
        "nan": '[{ name = "fault", mode = "nan" }]',
        "killed": '[{ name = "fault", mode = "kill", at_epoch = 2 }]',
    })
    results = tmp_path / "results"
    first = run_cli("run", str(spec), "--results", str(results), "--workers", "2", env=cli_env(site), cwd=tmp_path)
    assert first.returncode == 1, first.stderr
    assert "trained 1, already done 0, failed 3" in first.stdout
    runs = runs_by_label(results)
    assert runs["ok"]["status"] == "done" and len(runs["ok"]["epochs"]) == 3
    assert runs["raises"]["status"] == "failed"
    assert runs["raises"]["error"].startswith("RuntimeError: fault plugin: raising on purpose in epoch 2")
    assert "Traceback" in runs["raises"]["error"]  # the last lines of its error output
    assert [e["epoch"] for e in runs["raises"]["epochs"]] == [1]  # what it finished is kept
    assert runs["nan"]["status"] == "failed" and "the training loss became nan in epoch 1" in runs["nan"]["error"]
    assert runs["killed"]["status"] == "failed"
    assert runs["killed"]["error"].startswith("worker killed by SIGKILL")
    assert str(results / "logs") in runs["killed"]["error"]
    for label in ("raises", "nan", "killed"):
        assert f"failed: digits / small_cnn / {label} / seed 0" in first.stderr
    assert "--retry-failed" in first.stderr
    # A killed run keeps its last checkpoint (the retry resumes); finished and raising runs do not.
    assert [p.stem for p in (results / "checkpoints").glob("*.pt")] == [runs["killed"]["run_id"]]

    again = run_cli("run", str(spec), "--results", str(results), "--workers", "2", env=cli_env(site), cwd=tmp_path)
    assert again.returncode == 1  # the grid still holds failed runs; they wait for --retry-failed
    assert "trained 0, already done 1, failed 0, failed before 3 (not retried)" in again.stdout

    retry = run_cli("run", str(spec), "--results", str(results), "--workers", "2", "--retry-failed",
                    env=cli_env(site), cwd=tmp_path)
    assert retry.returncode == 1
    assert "trained 0, already done 1, failed 3" in retry.stdout, retry.stdout
    assert attempts(results, runs["ok"]["run_id"]) == 1
    assert all(attempts(results, runs[label]["run_id"]) == 2 for label in ("raises", "nan", "killed"))
    # The killed run resumed from its epoch-1 checkpoint, with the fault plugin's own epoch
    # counter restored from it (regularizer state), and so was killed in epoch 2 again.
    killed = runs_by_label(results)["killed"]
    assert killed["error"].startswith("worker killed by SIGKILL") and [e["epoch"] for e in killed["epochs"]] == [1]


def test_a_run_past_its_timeout_is_killed_and_recorded(tmp_path, site):
    spec = write_spec(tmp_path / "slow.toml", {"hangs": '[{ name = "fault", mode = "hang" }]'})
    results = tmp_path / "results"
    result = run_cli("run", str(spec), "--results", str(results), "--timeout", "3", env=cli_env(site), cwd=tmp_path)
    assert result.returncode == 1
    run = runs_by_label(results)["hangs"]
    assert run["status"] == "failed" and run["error"].startswith("timed out after 3 s")
    # it hung in epoch 1: there is no checkpoint, and the message does not claim one
    assert "no epoch finished, so there is no checkpoint" in run["error"] and "checkpoint is kept" not in run["error"]


# ---------------------------------------------------------------------------- worker reuse


def test_a_lane_reuses_its_worker_and_its_runs_compute_what_fresh_processes_do(tmp_path):
    spec = write_spec(tmp_path / "reuse.toml", {"dropout": '[{ name = "dropout", p = 0.25 }]'}, seeds="[0, 1]", epochs=1)
    found = {}
    for mode, extra in (("reused", ()), ("fresh", ("--set", "execution.reuse_workers=false"))):
        results = tmp_path / mode
        result = run_cli("run", str(spec), "--results", str(results), "--workers", "1", *extra, env=cli_env(), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        runs = runs_by_label(results)
        pids = {label: re.findall(r"worker pid (\d+)", (results / "logs" / f"{r['run_id']}.log").read_text())
                for label, r in runs.items()}
        found[mode] = runs, pids
    (reused, reused_pids), (fresh, fresh_pids) = found["reused"], found["fresh"]
    assert len({pid for pids in reused_pids.values() for pid in pids}) == 1  # one worker trained both
    assert len({pid for pids in fresh_pids.values() for pid in pids}) == 2
    timing = {"epoch_time", "train_samples_per_s"}
    for label, run in reused.items():
        assert [{k: v for k, v in e.items() if k not in timing} for e in run["epochs"]] == \
               [{k: v for k, v in e.items() if k not in timing} for e in fresh[label]["epochs"]], label


# ---------------------------------------------------------------------------- concurrency


def test_two_regsuite_runs_on_one_store_train_each_run_once(tmp_path):
    spec = write_spec(tmp_path / "shared.toml", {"none": "[]", "dropout": '[{ name = "dropout", p = 0.25 }]'},
                      seeds="[0, 1]")
    results = tmp_path / "results"
    args = ("run", str(spec), "--results", str(results), "--workers", "1")
    first, second = (start_cli(*args, env=cli_env(), cwd=tmp_path) for _ in range(2))
    outputs = [p.communicate(timeout=300) for p in (first, second)]
    assert (first.returncode, second.returncode) == (0, 0), outputs
    trained = [int(re.search(r"trained (\d+)", out).group(1)) for out, _ in outputs]
    assert sum(trained) == 4, outputs
    runs = runs_by_label(results)
    assert {r["status"] for r in runs.values()} == {"done"}
    assert all(attempts(results, r["run_id"]) == 1 for r in runs.values())
    assert all([e["epoch"] for e in r["epochs"]] == [1, 2, 3] for r in runs.values())
    assert rows(results, "SELECT COUNT(*) FROM runs WHERE claimed_by IS NOT NULL") == [(0,)]


# ---------------------------------------------------------------------------- in process, progress


def test_workers_0_trains_in_this_process(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from regsuite.cli import app

    spec = write_spec(tmp_path / "inproc.toml", {"none": "[]"}, epochs=2)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["run", str(spec), "--results", "results", "--workers", "0", "--keep-checkpoints"])
    assert result.exit_code == 0, result.output
    assert "trained 1, already done 0, failed 0" in result.output
    assert not (tmp_path / "results" / "logs").exists()  # no worker process was started
    run = runs_by_label(tmp_path / "results")["none"]
    assert run["status"] == "done"
    assert (tmp_path / "results" / "checkpoints" / f"{run['run_id']}.pt").is_file()  # kept, as asked


def test_progress_shows_the_grid_and_one_line_per_slot(tmp_path):
    from rich.console import Console

    from regsuite.progress import RichGridReporter
    from regsuite.execution.worker import replay

    plan = resolve(load_spec(write_spec(tmp_path / "p.toml", {"none": "[]", "l2": '[{ name = "l2" }]'},
                                        seeds="[0, 1]")), get_registry())
    console = Console(record=True, width=200, force_terminal=False)
    reporter = RichGridReporter(console)
    reporter.grid_started(4, 1, ["slot 0 · gpu 0", "slot 1 · gpu 1"])
    first = reporter.run_started(plan.runs[1], 0)
    second = reporter.run_started(plan.runs[2], 1)
    for event in ({"event": "started", "epochs": 3, "batches": 4},
                  {"event": "epoch", "epoch": 1, "metrics": {"train_loss": 2.25, "val_loss": 2.5}},
                  {"event": "batch", "batch": 2, "loss": 2.0}):
        replay(event, first)
    replay({"event": "started", "epochs": 3, "batches": 4}, second)
    replay({"event": "resumed", "epoch": 2}, second)
    lines = console.export_text() + "\n".join(
        f"{task.description} {task.fields['status']}" for task in reporter.progress.tasks)
    assert "slot 0 · gpu 0  none · seed 1 epoch 2/3 · train 2.000 · epoch 1: train 2.250 val 2.500" in lines
    assert "slot 1 · gpu 1  l2 · seed 0 epoch 3/3 · resumed after epoch 2" in lines
    assert "grid done 1 · running 2 · failed 0 · left 1 · ETA" in lines
    reporter.run_finished(plan.runs[1], "failed", "boom", 0)
    assert "failed: digits / small_cnn / none / seed 1 — boom" in console.export_text()
    grid = reporter.progress.tasks[0]
    assert grid.fields["status"].startswith("done 1 · running 1 · failed 1 · left 1")


def test_progress_of_a_run_whose_epochs_are_not_known_yet(tmp_path):
    """A Ray task's run given in steps learns its epochs only once its data loads: the line counts
    epochs without a total instead of showing epoch 3/0."""
    from rich.console import Console

    from regsuite.execution.ray_cluster import EpochFollower
    from regsuite.progress import RichGridReporter

    plan = resolve(load_spec(write_spec(tmp_path / "p.toml", {"none": "[]"}), ["training.steps=7"]), get_registry())
    assert plan.runs[0].config["training"]["epochs"] is None
    reporter = RichGridReporter(Console(record=True, width=200, force_terminal=False))
    reporter.grid_started(1, 0)
    line = reporter.run_started(plan.runs[0], 0)
    EpochFollower(plan.runs[0], line)
    line.epoch_done(2, {"train_loss": 2.25, "val_loss": 2.5})
    assert line.status() == "epoch 3 · epoch 2: train 2.250 val 2.500"
    assert line.fraction() == 0.0
