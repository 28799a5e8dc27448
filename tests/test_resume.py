"""Checkpoints and resume: a killed worker, a killed parent, Ctrl-C — the rerun continues
from the last epoch and ends with exactly the result of an uninterrupted run."""
from __future__ import annotations

import os
import signal
import sys

import torch
from helpers.execution import (
    alive,
    cli_env,
    install_fault_plugin,
    run_cli,
    runs_by_label,
    start_cli,
    wait_for_files,
    wait_gone,
    write_spec,
)

from regsuite import registry
from regsuite.checkpoint import Checkpoints
from regsuite.execution.run import StoreSink, execute_run
from regsuite.registry import get_registry
from regsuite.spec import load_spec, resolve
from regsuite.store import Store, worker_id
from regsuite.train import Reporter

TIMING = ("epoch_time", "train_samples_per_s")
# Every RNG a run draws from: dropout (torch's global generator), online augmentation (the
# run's batch generator), the shuffling (its order generator).
REGULARIZED = '[{ name = "dropout", p = 0.3 }, { name = "augmentation", hflip = false, vflip = false, brightness = 0.2 }]'


def results_only(epochs: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIMING} for row in epochs]


def same_result(run: dict, reference: dict) -> None:
    for key in ("final", "best_epoch", "best_val_loss", "gap", "epochs_run"):
        value, expected = run["summary"][key], reference["summary"][key]
        if key == "final":
            value, expected = results_only([value])[0], results_only([expected])[0]
        assert value == expected, key
    assert results_only(run["epochs"]) == results_only(reference["epochs"])


class StopAfter(Reporter):
    """Ctrl-C, as it were, right after epoch ``epoch`` was checkpointed."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def epoch_done(self, epoch: int, metrics: dict) -> None:
        if epoch == self.epoch + 1:
            raise KeyboardInterrupt


def train_in_process(results, plan, run, reporter=None):
    with Store(results) as store:
        store.register_plan(plan)
        assert store.claim(run.run_id, owner=worker_id())
        return execute_run(run.run_id, run.config, StoreSink(store, run.run_id, worker_id()),
                           Checkpoints(results / "checkpoints"), reporter)


def test_checkpoint_resume_in_process_gives_the_uninterrupted_result(tmp_path):
    spec = write_spec(tmp_path / "resume.toml", {"regularized": REGULARIZED})
    plan = resolve(load_spec(spec), get_registry())
    run = plan.runs[0]
    assert train_in_process(tmp_path / "reference", plan, run).status == "done"

    stopped = train_in_process(tmp_path / "resumed", plan, run, StopAfter(1))
    assert stopped.status == "interrupted"
    checkpoint = tmp_path / "resumed" / "checkpoints" / f"{run.run_id}.pt"
    saved = torch.load(checkpoint, weights_only=True)  # tensors and plain values only
    assert saved["epoch"] == 1 and len(saved["history"]) == 1
    assert runs_by_label(tmp_path / "resumed")["regularized"]["status"] == "interrupted"

    assert train_in_process(tmp_path / "resumed", plan, run).status == "done"
    resumed = runs_by_label(tmp_path / "resumed")["regularized"]
    assert resumed["summary"]["resumed_from_epoch"] == 1
    same_result(resumed, runs_by_label(tmp_path / "reference")["regularized"])
    assert not checkpoint.exists()  # finished runs delete their checkpoint


def test_a_worker_killed_mid_epoch_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    site = install_fault_plugin(tmp_path)
    spec = write_spec(tmp_path / "kill.toml", {"regularized": REGULARIZED[:-1] + ', { name = "fault" }]'}, epochs=4)
    markers = tmp_path / "hanging"
    victim_results = tmp_path / "victim"
    victim = start_cli("run", str(spec), "--results", str(victim_results),
                       env=cli_env(site, REGSUITE_TEST_HANG=f"3:{markers}"), cwd=tmp_path)
    worker = int(wait_for_files(markers, 1, victim)[0].name)  # in epoch 3, after its 2nd batch
    assert [e["epoch"] for e in runs_by_label(victim_results)["regularized"]["epochs"]] == [1, 2]
    os.kill(worker, signal.SIGKILL)
    victim.communicate(timeout=60)
    assert victim.returncode == 1
    killed = runs_by_label(victim_results)["regularized"]
    assert killed["status"] == "failed" and killed["error"].startswith("worker killed by SIGKILL")
    assert (victim_results / "checkpoints" / f"{killed['run_id']}.pt").is_file()

    retry = run_cli("run", str(spec), "--results", str(victim_results), "--retry-failed", env=cli_env(site), cwd=tmp_path)
    assert retry.returncode == 0, retry.stderr
    resumed = runs_by_label(victim_results)["regularized"]
    assert resumed["status"] == "done" and resumed["summary"]["resumed_from_epoch"] == 2
    # The uninterrupted run, trained in this process (one process start fewer than a CLI's).
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("REGSUITE_DISABLE_EXTERNAL_PLUGINS", raising=False)
    registry.reset()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the spec's workers: a sum over other threads rounds otherwise
    try:
        plan = resolve(load_spec(spec), get_registry())
        assert plan.runs[0].run_id == resumed["run_id"]
        assert train_in_process(tmp_path / "reference", plan, plan.runs[0]).status == "done"
    finally:
        torch.set_num_threads(threads)
        registry.reset()
        sys.modules.pop("regsuite_faults", None)
    same_result(resumed, runs_by_label(tmp_path / "reference")["regularized"])
    assert not list((victim_results / "checkpoints").glob("*"))


def test_killing_the_parent_kills_its_workers_and_the_rerun_takes_over(tmp_path):
    site = install_fault_plugin(tmp_path)
    spec = write_spec(tmp_path / "parent.toml", {"plain": '[{ name = "fault" }]'}, seeds="[0, 1]")
    results, markers = tmp_path / "results", tmp_path / "hanging"
    parent = start_cli("run", str(spec), "--results", str(results), "--workers", "2",
                       env=cli_env(site, REGSUITE_TEST_HANG=f"2:{markers}"), cwd=tmp_path)
    workers = [int(marker.name) for marker in wait_for_files(markers, 2, parent)]
    parent.kill()  # SIGKILL: no chance to clean up
    parent.communicate(timeout=30)
    assert wait_gone(workers), "workers outlived their parent"
    runs = runs_by_label(results)
    assert {r["status"] for r in runs.values()} == {"running"}  # claims of a dead process

    rerun = run_cli("run", str(spec), "--results", str(results), "--workers", "2", env=cli_env(site), cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert "trained 2, already done 0" in rerun.stdout
    for run in runs_by_label(results).values():
        assert run["status"] == "done" and run["summary"]["resumed_from_epoch"] == 1
        assert [e["epoch"] for e in run["epochs"]] == [1, 2, 3]


def test_ctrl_c_records_interrupted_runs_and_says_how_to_resume(tmp_path):
    site = install_fault_plugin(tmp_path)
    spec = write_spec(tmp_path / "ctrlc.toml", {"plain": '[{ name = "fault" }]'})
    results, markers = tmp_path / "results", tmp_path / "hanging"
    parent = start_cli("run", str(spec), "--results", str(results),
                       env=cli_env(site, REGSUITE_TEST_HANG=f"2:{markers}"), cwd=tmp_path)
    worker = int(wait_for_files(markers, 1, parent)[0].name)
    parent.send_signal(signal.SIGINT)
    _, stderr = parent.communicate(timeout=60)
    assert parent.returncode == 130
    assert "1 run(s) interrupted" in stderr and "Resume with: regsuite run" in stderr
    assert not alive(worker)
    run = runs_by_label(results)["plain"]
    assert run["status"] == "interrupted"  # recorded by the worker itself, on SIGTERM
    assert (results / "checkpoints" / f"{run['run_id']}.pt").is_file()

    rerun = run_cli("run", str(spec), "--results", str(results), env=cli_env(site), cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    run = runs_by_label(results)["plain"]
    assert run["status"] == "done" and run["summary"]["resumed_from_epoch"] == 1
