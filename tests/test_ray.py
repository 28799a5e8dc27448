"""The Ray executor on a local Ray instance (``ray.init(num_cpus=2)``); skipped without Ray."""
from __future__ import annotations

import os
import sys

import pytest
from helpers.execution import install_fault_plugin, runs_by_label, write_spec

from regsuite import registry as registry_module
from regsuite.errors import RegsuiteError
from regsuite.execution import execute_plan
from regsuite.execution.grid import GridReporter
from regsuite.spec import ExecutionConfig, load_spec, resolve
from regsuite.store import Store
from regsuite.train import Reporter


def test_without_ray_the_message_says_how_to_install_it(monkeypatch):
    from regsuite.execution.ray_cluster import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(RegsuiteError, match=r'pip install -e "\.\[ray\]"'):
        import_ray()


class Recorder(GridReporter):
    def __init__(self):
        self.epochs: dict[str, list[int]] = {}
        self.finished: dict[str, str] = {}

    def run_started(self, run, slot=0):
        seen = self.epochs.setdefault(run.label, [])

        class Epochs(Reporter):
            def epoch_done(self, epoch, metrics):
                seen.append(epoch)

        return Epochs()

    def run_finished(self, run, status, detail="", slot=0):
        self.finished[run.label] = status


@pytest.fixture(scope="module")
def ray_with_fault_plugin(tmp_path_factory):
    ray = pytest.importorskip("ray")
    site = install_fault_plugin(tmp_path_factory.mktemp("ray"))
    saved_path, saved_env = list(sys.path), os.environ.get("PYTHONPATH")
    sys.path.insert(0, str(site))  # the driver resolves the spec with the plugin too
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), saved_env]))  # Ray's workers inherit it
    registry_module.reset()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
    sys.path[:] = saved_path
    if saved_env is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = saved_env
    registry_module.reset()


def test_ray_tasks_train_the_grid_into_the_store_and_fail_alone(tmp_path, ray_with_fault_plugin):
    spec = write_spec(tmp_path / "onray.toml", {
        "ok": '[{ name = "fault" }]',
        "raises": '[{ name = "fault", mode = "raise", at_epoch = 2 }]',
        "killed": '[{ name = "fault", mode = "kill", at_epoch = 2 }]',
    }, execution="")
    registry = registry_module.get_registry()
    plan = resolve(load_spec(spec), registry)
    results = tmp_path / "results"
    reporter = Recorder()
    with Store(results) as store:
        outcome = execute_plan(plan, store, registry, reporter, ExecutionConfig(executor="ray", num_cpus=1))
    assert [r.label for r in outcome.trained] == ["ok"]
    assert sorted(r.label for r, _ in outcome.failed) == ["killed", "raises"]
    assert reporter.epochs["ok"] == [1, 2, 3]  # progress followed through the store

    runs = runs_by_label(results)
    assert runs["ok"]["status"] == "done" and [e["epoch"] for e in runs["ok"]["epochs"]] == [1, 2, 3]
    assert runs["raises"]["error"].startswith("RuntimeError: fault plugin: raising on purpose in epoch 2")
    assert runs["killed"]["status"] == "failed" and runs["killed"]["error"].startswith("Ray task failed: WorkerCrashedError")
    assert not list((results / "checkpoints").glob(f"{runs['ok']['run_id']}*"))

    with Store(results) as store:  # a rerun skips what is done and leaves failed runs alone
        again = execute_plan(plan, store, registry, Recorder(), ExecutionConfig(executor="ray"))
    assert (len(again.trained), len(again.skipped), len(again.failed_before)) == (0, 1, 2)

    # The same run trained here, in-process with one thread as on Ray: the same result.
    alone = resolve(load_spec(write_spec(tmp_path / "alone.toml", {"ok": '[{ name = "fault" }]'})), registry)
    assert alone.runs[0].run_id == runs["ok"]["run_id"]
    with Store(tmp_path / "local") as store:
        execute_plan(alone, store, registry, Recorder(), ExecutionConfig(workers=0, threads=1))
    local = runs_by_label(tmp_path / "local")["ok"]["summary"]["final"]
    timing = ("epoch_time", "train_samples_per_s")
    assert {k: v for k, v in local.items() if k not in timing} == \
        {k: v for k, v in runs["ok"]["summary"]["final"].items() if k not in timing}
