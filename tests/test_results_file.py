"""Results that travel: `regsuite results export` and `regsuite results import`."""
from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regsuite.cli import app
from regsuite.registry import get_registry
from regsuite.spec import PlannedRun, Plan, Spec, run_id_of, run_key_view
from regsuite.store import Store

from helpers.specs import TINY_SPEC

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """The tiny spec trained once for this module (4 runs, in-process); tests copy the store."""
    root = tmp_path_factory.mktemp("trained")
    spec = root / "tiny.toml"
    spec.write_text(TINY_SPEC, encoding="utf-8")
    result = invoke("run", spec, "--results", root / "results", "--no-plots")
    assert result.exit_code == 0, result.output
    return root / "results"


@pytest.fixture
def origin(trained, tmp_path) -> Path:
    target = tmp_path / "origin"
    shutil.copytree(trained, target, ignore=shutil.ignore_patterns("plots", "logs", "checkpoints"))
    return target


def leaderboard_json(results: Path) -> str:
    result = invoke("leaderboard", "tiny", "--format", "json", "--results", results)
    assert result.exit_code == 0, result.output
    return result.stdout


def dump(results: Path) -> list[str]:
    """Everything in a store, for "nothing changed" checks (updated_at included)."""
    conn = sqlite3.connect(results / "regsuite.db")
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def export(origin: Path, out: Path | None = None, spec: str | None = "tiny") -> Path:
    args = ["results", "export", *([spec] if spec else []), "--results", origin, *(["--out", out] if out else [])]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return out or Path("leaderboard/tiny.runs.jsonl")


def records(path: Path) -> list[dict]:
    def reject(name):
        raise ValueError(name)

    return [json.loads(line, parse_constant=reject) for line in path.read_text(encoding="utf-8").splitlines()]


def write_records(path: Path, recs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in recs), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- round trip


def test_round_trip_is_idempotent_and_byte_identical_and_run_trains_nothing(origin, tmp_path, tiny_spec):
    path = export(origin)
    assert path == Path("leaderboard/tiny.runs.jsonl") and path.is_file()
    recs = records(path)
    assert recs[0] == {"format": "regsuite-results", "version": 1, "regsuite": "0.1.0"}
    assert [r.get("kind") for r in recs[1:]] == ["spec", "run", "run", "run", "run", "end"]
    run = recs[2]
    assert run["status"] == "done" and len(run["run_id"]) == 16 and len(run["epochs"]) == 2
    assert run["rows"] == [{"spec": "tiny", "position": 0, "label": "none", "reference": {}}]
    assert [r["rows"][0]["position"] for r in recs[2:6]] == [0, 1, 2, 3]

    fresh = tmp_path / "fresh"
    first = invoke("results", "import", path, "--results", fresh)
    assert first.exit_code == 0, first.output
    assert "imported 4, already there 0, skipped 0" in first.stdout
    assert leaderboard_json(fresh) == leaderboard_json(origin)
    with Store(origin, create=False) as a, Store(fresh, create=False) as b:
        assert json.dumps(a.spec_info("tiny")["spec"]) == json.dumps(b.spec_info("tiny")["spec"])  # key order too
        for (label_a, ref_a, run_a), (label_b, ref_b, run_b) in zip(a.spec_rows("tiny"), b.spec_rows("tiny"), strict=True):
            assert (label_a, ref_a, run_a.run_id, run_a.config, run_a.summary) == (label_b, ref_b, run_b.run_id, run_b.config, run_b.summary)
            assert a.epochs(run_a.run_id) == b.epochs(run_b.run_id)

    before = dump(fresh)
    second = invoke("results", "import", path, "--results", fresh)
    assert second.exit_code == 0, second.output
    assert "imported 0, already there 4, skipped 0" in second.stdout
    assert dump(fresh) == before

    again = export(fresh, tmp_path / "again.jsonl")
    assert again.read_bytes() == path.read_bytes()
    assert export(origin, tmp_path / "twice.jsonl").read_bytes() == path.read_bytes()

    rerun = invoke("run", tiny_spec, "--results", fresh, "--no-plots")
    assert rerun.exit_code == 0, rerun.output
    assert "trained 0, already done 4, failed 0" in rerun.stdout


def test_export_by_spec_file_and_all_specs_need_out(origin, tmp_path, tiny_spec):
    everything = invoke("results", "export", "--results", origin)
    assert everything.exit_code == 2 and "--out" in everything.stderr
    all_path = export(origin, tmp_path / "all.jsonl", spec=None)
    by_file = invoke("results", "export", tiny_spec, "--results", origin)
    assert by_file.exit_code == 0, by_file.output
    assert Path("leaderboard/tiny.runs.jsonl").read_bytes() == all_path.read_bytes()
    unknown = invoke("results", "export", "nope", "--results", origin)
    assert unknown.exit_code == 2 and "nope" in unknown.stderr


def test_pieces_run_apart_merge_into_the_whole_grid(origin, tmp_path, tiny_spec):
    """Seed 0 on one machine, seed 1 on another: two files, merged; `run` of the whole spec trains nothing."""
    from regsuite.spec import load_spec, resolve

    pieces = []
    for seed in (0, 1):
        piece = tmp_path / f"piece{seed}"
        shutil.copytree(origin, piece)
        with Store(piece) as store:  # as if this machine had run only `--set seeds=[<seed>]`
            store.register_plan(resolve(load_spec(tiny_spec, [f"seeds=[{seed}]"]), get_registry()))
        pieces.append(export(piece, tmp_path / f"piece{seed}.jsonl"))
        assert len(records(pieces[-1])) == 1 + 1 + 2 + 1
    merged = tmp_path / "merged"
    first = invoke("results", "import", pieces[0], "--results", merged)
    assert "imported 2, already there 0, skipped 0" in first.stdout and "spec tiny: added" in first.stdout
    second = invoke("results", "import", pieces[1], "--results", merged)
    assert second.exit_code == 0, second.output
    assert "imported 2, already there 0, skipped 0" in second.stdout and "store's own record" in second.stdout
    rerun = invoke("run", tiny_spec, "--results", merged, "--no-plots")
    assert "trained 0, already done 4, failed 0" in rerun.stdout, rerun.output
    assert leaderboard_json(merged) == leaderboard_json(origin)


def test_unfinished_runs_here_get_the_files_results_running_ones_are_skipped(origin, tmp_path):
    path = export(origin)
    with Store(origin, create=False) as store:
        ids = [run.run_id for _, _, run in store.spec_rows("tiny")]
    conn = sqlite3.connect(origin / "regsuite.db")
    with conn:
        conn.execute("UPDATE runs SET status='interrupted', summary=NULL WHERE run_id=?", (ids[0],))
        conn.execute("DELETE FROM epochs WHERE run_id=? AND epoch=2", (ids[0],))
        conn.execute("UPDATE runs SET status='running', claimed_by='elsewhere:1', heartbeat=1e12 WHERE run_id=?", (ids[1],))
    conn.close()
    (origin / "checkpoints").mkdir()
    (origin / "checkpoints" / f"{ids[0]}.pt").write_bytes(b"stale")
    result = invoke("results", "import", path, "--results", origin)
    assert result.exit_code == 0, result.output
    assert "imported 1, already there 2, skipped 1" in result.stdout
    assert ids[1] in result.stdout
    with Store(origin, create=False) as store:
        assert store.get_run(ids[0]).status == "done" and len(store.epochs(ids[0])) == 2
        assert store.get_run(ids[1]).status == "running"
    assert not (origin / "checkpoints" / f"{ids[0]}.pt").exists()


def test_a_conflicting_run_is_an_error_naming_it_and_nothing_is_written(origin, tmp_path):
    path = export(origin)
    recs = records(path)
    target = tmp_path / "target"
    shutil.copytree(origin, target)
    victim = recs[3]["run_id"]
    conn = sqlite3.connect(target / "regsuite.db")
    with conn:  # same id, another learning rate: not the same run
        config = json.loads(conn.execute("SELECT config FROM runs WHERE run_id=?", (victim,)).fetchone()[0])
        config["training"]["lr"] = 0.5
        conn.execute("UPDATE runs SET config=?, status='pending' WHERE run_id=?", (json.dumps(config), victim))
    conn.close()
    before = dump(target)
    result = invoke("results", "import", path, "--results", target)
    assert result.exit_code == 2, result.output
    assert victim in result.stderr and "line 4" in result.stderr and "training.lr" in result.stderr
    assert dump(target) == before


# ---------------------------------------------------------------------------- bad files


def truncated(recs):
    """Cut in the middle of the last run (line 6), as a copy that stopped half-way would be."""
    lines = [json.dumps(r) for r in recs[:-1]]
    return "".join(line + "\n" for line in lines[:-1]) + lines[-1][: len(lines[-1]) // 2]


def edit(recs, line, change):
    recs = json.loads(json.dumps(recs))
    change(recs[line - 1])
    return "".join(json.dumps(r) + "\n" for r in recs)


def set_spec_name(rec):
    rec["name"] = "../../x"
    rec["spec"]["name"] = "../../x"


BAD_FILES = {
    "truncated": (truncated, 6, "truncated"),
    "cut at a line end": (lambda recs: "".join(json.dumps(r) + "\n" for r in recs[:-2]), 5, "truncated"),
    "non-JSON line": (lambda recs: "\n".join([json.dumps(recs[0]), json.dumps(recs[1]), "oops {", *map(json.dumps, recs[2:])]) + "\n",
                      3, "is not JSON"),
    "NaN literal": (lambda recs: edit(recs, 3, lambda r: r.update(wall_time=float("nan"))), 3, "is not JSON"),
    "other tool": (lambda recs: '{"name": "x", "rows": []}\n', 1, "not a regsuite results file"),
    "csv": (lambda recs: "spec,task,label\ntiny,x,none\n", 1, "not a regsuite results file"),
    "newer version": (lambda recs: edit(recs, 1, lambda r: r.update(version=2)), 1, "newer regsuite"),
    "unknown kind": (lambda recs: edit(recs, 3, lambda r: r.update(kind="checkpoint")), 3, "unknown record kind 'checkpoint'"),
    "bad spec name": (lambda recs: edit(recs, 2, set_spec_name), 2, "name"),
    "bad label": (lambda recs: edit(recs, 4, lambda r: r["rows"][0].update(label="")), 4, "rows[0].label"),
    "long label": (lambda recs: edit(recs, 4, lambda r: r["rows"][0].update(label="x" * 121)), 4, "rows[0].label"),
    "bad run id": (lambda recs: edit(recs, 5, lambda r: r.update(run_id="../../../etc/pass")), 5, "run_id"),
    "tampered config": (lambda recs: edit(recs, 5, lambda r: r["config"]["training"].update(lr=0.5)), 5, "hashes to"),
    "extra key": (lambda recs: edit(recs, 3, lambda r: r.update(extra=1)), 3, "unknown key"),
    "row of a missing spec": (lambda recs: edit(recs, 3, lambda r: r["rows"][0].update(spec="other")), 3, "no spec record"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_file_is_one_error_with_its_line_and_nothing_is_written(case, origin, tmp_path):
    make, line, expected = BAD_FILES[case]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(make(records(export(origin))), encoding="utf-8")
    fresh = tmp_path / "fresh"
    result = invoke("results", "import", bad, "--results", fresh)
    assert result.exit_code == 2, result.output
    assert f"bad.jsonl, line {line}:" in result.stderr and expected in result.stderr, result.stderr
    assert "Traceback" not in result.output and result.stdout == ""
    assert not fresh.exists()
    before = dump(origin)
    assert invoke("results", "import", bad, "--results", origin).exit_code == 2
    assert dump(origin) == before


# ---------------------------------------------------------------------------- values and paths


def test_non_finite_values_are_written_as_null(origin, tmp_path):
    with Store(origin, create=False) as store:
        run_id = store.spec_rows("tiny")[0][2].run_id
    conn = sqlite3.connect(origin / "regsuite.db")
    with conn:
        conn.execute("UPDATE epochs SET value=? WHERE run_id=? AND epoch=1 AND metric='val_loss'", (float("nan"), run_id))
        conn.execute("UPDATE runs SET wall_time=?, summary=? WHERE run_id=?",
                     (float("inf"), json.dumps({"final": {"val_loss": float("nan")}, "metrics": []}), run_id))
    conn.close()
    path = export(origin)
    assert "NaN" not in path.read_text() and "Infinity" not in path.read_text()
    run = next(r for r in records(path) if r.get("run_id") == run_id)  # parses as strict JSON
    assert run["wall_time"] is None and run["summary"]["final"]["val_loss"] is None
    assert run["epochs"][0]["val_loss"] is None
    fresh = tmp_path / "fresh"
    assert invoke("results", "import", path, "--results", fresh).exit_code == 0
    assert export(fresh, tmp_path / "again.jsonl").read_bytes() == path.read_bytes()


def test_no_absolute_path_of_this_machine_goes_into_the_export(tmp_path, tmp_path_factory, monkeypatch):
    """A tiny_imagenet run whose where-parameters (NOT_IN_RUN_KEY) hold absolute paths."""
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    monkeypatch.setenv("REGSUITE_DATA", str(elsewhere / "data"))
    (elsewhere / "data").mkdir()
    registry = get_registry()
    params = registry.cls("dataset", "tiny_imagenet").Params(classes=2).model_dump(mode="json")
    plans = {
        "under the working directory": (str(tmp_path / "data" / "tiny"), "data/tiny"),
        "$REGSUITE_DATA": (str(elsewhere / "data"), "$REGSUITE_DATA"),
        "anywhere else": ("/opt/private/alice/tiny-imagenet", None),
        "relative": ("data/rel", "data/rel"),
    }
    runs = []
    for seed, (root, _) in enumerate(plans.values()):
        config = {
            "task": {"name": "image_classification", "params": {}},
            "dataset": {"name": "tiny_imagenet", "params": {**params, "root": root, "cache_dir": str(elsewhere / "cache")},
                        "fingerprint": "0123456789abcdef"},
            "model": {"name": "small_cnn", "params": {"width": 4}},
            "regularizers": [], "training": {"epochs": 1}, "seed": seed,
            "versions": {"regsuite": "0.1.0", "plugins": {}},
        }
        runs.append(PlannedRun(run_id_of(run_key_view(registry, config)), "none", config))
    spec = Spec.model_validate({
        "name": "paths", "task": "image_classification", "seeds": list(range(len(plans))),
        "dataset": {"name": "tiny_imagenet", "root": "/opt/private/alice/tiny-imagenet", "cache_dir": str(tmp_path / "c")},
        "model": {"name": "small_cnn"}, "sets": [{"label": "none"}],
    })
    with Store(tmp_path / "results") as store:
        store.register_plan(Plan(spec, runs))
        for run in runs:
            assert store.claim(run.run_id)
            store.record_epoch(run.run_id, 1, {"train_loss": 1.0, "val_loss": 2.0})
            store.finish(run.run_id, {"final": {"train_loss": 1.0, "val_loss": 2.0}}, "cpu", 1.0)

    result = invoke("results", "export", "paths", "--results", tmp_path / "results")
    assert result.exit_code == 0, result.output
    path = Path("leaderboard/paths.runs.jsonl")
    text = path.read_text()
    assert str(tmp_path) not in text and str(elsewhere) not in text and "/opt/private" not in text
    recs = records(path)
    assert recs[1]["spec"]["dataset"]["root"] is None and recs[1]["spec"]["dataset"]["cache_dir"] == "c"
    roots = [r["config"]["dataset"]["params"]["root"] for r in recs[2:-1]]
    assert roots == [expected for _, expected in plans.values()]
    assert {r["config"]["dataset"]["params"]["cache_dir"] for r in recs[2:-1]} == {None}
    # the where-parameters are not in the run key: the ids still match their configs
    imported = invoke("results", "import", path, "--results", tmp_path / "fresh")
    assert imported.exit_code == 0, imported.output
    assert "imported 4, already there 0, skipped 0" in imported.stdout
