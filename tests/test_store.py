from __future__ import annotations

import os
import socket
import sqlite3

from regsuite.registry import get_registry
from regsuite.spec import load_spec, resolve
from regsuite.store import Store


def test_plan_claim_finish(tiny_spec, tmp_path):
    plan = resolve(load_spec(tiny_spec), get_registry())
    with Store(tmp_path) as store:
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        store.register_plan(plan)
        store.register_plan(plan)  # idempotent
        ids = [r.run_id for r in plan.runs]
        assert set(store.statuses(ids).values()) == {"pending"}
        alive_elsewhere = f"{socket.gethostname()}:{os.getppid()}"
        assert store.claim(ids[0], owner=alive_elsewhere)
        assert not store.claim(ids[0])  # a live process's claim is not taken over
        assert store.claim(ids[0], owner=alive_elsewhere)  # the owner itself may claim again
        store.record_epoch(ids[0], 1, {"train_loss": 1.0, "val_loss": 2.0})
        store.finish(ids[0], {"final": {"train_loss": 1.0}}, "cpu", 1.5)
        assert store.get_run(ids[0]).status == "done"
        assert store.epochs(ids[0]) == [{"epoch": 1, "train_loss": 1.0, "val_loss": 2.0}]
        assert [label for label, _, _ in store.spec_rows("tiny")] == ["none", "none", "l2 + dropout", "l2 + dropout"]


def test_stale_claim_is_taken_over(tiny_spec, tmp_path):
    plan = resolve(load_spec(tiny_spec), get_registry())
    run_id = plan.runs[0].run_id
    with Store(tmp_path) as store:
        store.register_plan(plan)
        assert store.claim(run_id)
        store.conn.execute("UPDATE runs SET heartbeat = heartbeat - 1000 WHERE run_id = ?", (run_id,))
        assert store.claim(run_id, stale_after=120)


def test_failed_transaction_leaves_nothing(tiny_spec, tmp_path):
    plan = resolve(load_spec(tiny_spec), get_registry())
    with Store(tmp_path) as store:
        store.register_plan(plan)
        try:
            with store.transaction() as tx:
                tx.execute("DELETE FROM spec_rows")
                raise sqlite3.OperationalError("boom")
        except sqlite3.OperationalError:
            pass
        assert len(store.spec_rows("tiny")) == 4
