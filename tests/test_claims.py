"""Claims in the results store: who may train a run, and who may write its results."""
from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from execution_support import write_spec

from regsuite.registry import get_registry
from regsuite.spec import load_spec, resolve
from regsuite.store import Store, worker_id


@pytest.fixture
def store_and_run(tmp_path):
    plan = resolve(load_spec(write_spec(tmp_path / "claims.toml", {"none": "[]"})), get_registry())
    with Store(tmp_path / "results") as store:
        store.register_plan(plan)
        yield store, plan.runs[0].run_id


def dead_process_owner() -> str:
    pid = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                             text=True, check=True).stdout)
    return f"{socket.gethostname()}:{pid}"


def test_a_claim_of_a_dead_process_of_this_host_is_taken_over_at_once(store_and_run):
    store, run_id = store_and_run
    assert store.claim(run_id, owner=dead_process_owner())
    assert store.claim(run_id, owner=worker_id())
    assert store.get_run(run_id).claimed_by == worker_id()


def test_a_live_claim_holds_until_its_heartbeat_is_stale(store_and_run):
    store, run_id = store_and_run
    assert store.claim(run_id, owner="other-host:17")
    assert not store.claim(run_id, owner=worker_id())  # another host: only its heartbeat tells
    assert store.claim(run_id, owner=worker_id(), stale_after=0.0)


def test_only_the_claim_holder_writes_results(store_and_run):
    store, run_id = store_and_run
    assert store.claim(run_id, owner="holder:1")
    assert not store.record_epoch(run_id, 1, {"train_loss": 1.0}, owner="intruder:2")
    assert not store.finish(run_id, {}, "cpu", 1.0, owner="intruder:2")
    assert not store.fail(run_id, "no", owner="intruder:2")
    assert store.epochs(run_id) == [] and store.get_run(run_id).status == "running"
    assert store.record_epoch(run_id, 1, {"train_loss": 1.0}, owner="holder:1")
    assert store.fail(run_id, "stopped", status="interrupted", owner="holder:1")
    assert store.get_run(run_id).status == "interrupted" and store.get_run(run_id).claimed_by is None
