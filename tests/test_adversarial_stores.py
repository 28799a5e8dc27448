"""Stores and files are untrusted input, and nothing is written where it should not be.

- names read back from a store become paths only after the spec-name rule checked them, and
  every written path stays inside its output folder; a plot folder's files that regsuite did
  not write (per its manifest) are never removed;
- a ``regsuite.db`` that regsuite did not make (text, empty, truncated, another program's
  SQLite) is refused with one message and left as it was; read-only commands open stores
  read-only;
- a grid whose workers were interrupted does not exit 0;
- a live claim is taken over at once only when its owner is a dead process of this host *and*
  PID namespace;
- a published leaderboard holds no paths of the machine it was made on.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regsuite import cli
from regsuite.cli import app
from regsuite.errors import RegsuiteError
from regsuite.registry import get_registry
from regsuite.safety import inside
from regsuite.spec import load_spec, resolve
from regsuite.store import APPLICATION_ID, DB_NAME, SCHEMA, Store, owner_is_dead, pid_namespace, worker_id

from helpers.execution import cli_env, install_fault_plugin, runs_by_label, start_cli, wait_for_files, write_spec
from helpers.reports import make_handmade

runner = CliRunner()
SIDE_FILES = ("-wal", "-shm", "-journal")


def invoke(*args, env: dict | None = None):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200", **(env or {})})


@pytest.fixture(autouse=True)
def console_width(monkeypatch):
    monkeypatch.setattr(cli.console, "_width", 120)


def snapshot(root: Path, ignore_side_files_of: Path | None = None) -> dict[Path, tuple[bytes, int]]:
    """Every file under ``root`` with its bytes and mtime. SQLite's own -wal/-shm beside a
    regsuite store (``ignore_side_files_of``), which reading a WAL database makes, are left out."""
    skip = {ignore_side_files_of.with_name(ignore_side_files_of.name + s) for s in SIDE_FILES} if ignore_side_files_of else set()
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.rglob("*")) if p.is_file() and p not in skip}


def one_clear_error(result, *expected: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    text = " ".join(result.stderr.split())  # rich may wrap long lines
    for part in expected:
        assert part in text, (part, result.stderr)


@pytest.fixture
def handmade(tmp_path) -> Path:
    return make_handmade(tmp_path / "results", tmp_path)


def rename_spec(results: Path, new: str, old: str = "handmade") -> None:
    """Give a stored spec another name, as a store that regsuite did not write may."""
    with sqlite3.connect(results / DB_NAME) as conn:
        conn.execute("UPDATE specs SET name=? WHERE name=?", (new, old))
        conn.execute("UPDATE spec_rows SET spec_name=? WHERE spec_name=?", (new, old))
    conn.close()


# ============================================================================ 1. names read back


def bad_names(victim: Path) -> dict[str, str]:
    return {"parent": "../../x", "absolute": str(victim), "absolute png folder": str(victim / "sub"),
            "slash": "a/b", "dot dot": ".."}


@pytest.mark.parametrize("command", ["plot", "leaderboard --export", "results export"])
@pytest.mark.parametrize("case", ["parent", "absolute", "absolute png folder", "slash", "dot dot"])
def test_a_bad_spec_name_in_the_store_is_refused_and_nothing_is_written(command, case, handmade, tmp_path,
                                                                         tmp_path_factory):
    victim = tmp_path_factory.mktemp("victim")  # outside tmp_path: a user's folder of figures
    (victim / "sub").mkdir()
    for folder in (victim, victim / "sub"):
        (folder / "mine.png").write_bytes(b"the user's own figure")
    name = bad_names(victim)[case]
    rename_spec(handmade, name)
    before, outside_before = snapshot(tmp_path, handmade / DB_NAME), snapshot(victim)
    args = {"plot": ["plot"], "leaderboard --export": ["leaderboard", "--export"],
            "results export": ["results", "export", "--out", tmp_path / "all.jsonl"]}[command]
    result = invoke(*args, "--results", handmade)
    one_clear_error(result, repr(name), "not a valid spec name", "nothing was written", str(handmade / DB_NAME))
    assert snapshot(tmp_path, handmade / DB_NAME) == before  # no plot folder, no leaderboard/, no file
    assert snapshot(victim) == outside_before  # nothing written outside, the user's PNGs kept
    assert not (tmp_path.parent / "x").exists() and not (tmp_path.parent / "x.md").exists()


def test_every_bad_name_is_named_in_one_message_before_any_spec_is_written(handmade, tmp_path):
    other = make_handmade(tmp_path / "other", tmp_path)  # a second, valid spec in the same store
    with sqlite3.connect(handmade / DB_NAME) as conn:
        conn.execute("ATTACH DATABASE ? AS other", (str(other / DB_NAME),))
        conn.execute("INSERT INTO specs SELECT 'zz/../../up', spec, baseline, updated_at FROM other.specs")
        conn.execute("INSERT INTO spec_rows SELECT 'zz/../../up', run_id, position, label, reference FROM other.spec_rows")
    conn.close()
    result = invoke("plot", "--results", handmade)
    one_clear_error(result, "'zz/../../up'", "is not a valid spec name")
    assert not (handmade / "plots").exists()  # not even the valid spec's plots


@pytest.mark.parametrize("command", [["plot"], ["leaderboard", "--export"], ["results", "export"]])
def test_a_bad_spec_name_on_the_command_line_is_refused(command, handmade, tmp_path):
    rename_spec(handmade, "../escape")
    before = snapshot(tmp_path, handmade / DB_NAME)
    result = invoke(*command, "../escape", "--results", handmade)
    one_clear_error(result, "'../escape' is not a valid spec name")
    assert snapshot(tmp_path, handmade / DB_NAME) == before


def test_written_paths_stay_inside_their_folder(tmp_path):
    base = tmp_path / "out"
    assert inside(base, "tiny.md") == base / "tiny.md"
    (tmp_path / "elsewhere").mkdir()
    base.mkdir()
    (base / "link").symlink_to(tmp_path / "elsewhere")
    for parts in (["../x.md"], [str(tmp_path / "x")], ["."], ["link", "a.png"], ["a", "..", "..", "b"]):
        with pytest.raises(RegsuiteError, match="lies outside"):
            inside(base, *parts)


def test_plot_keeps_the_users_own_files_and_removes_only_its_own_stale_ones(handmade, tmp_path):
    folder = handmade / "plots" / "handmade"
    assert invoke("plot", "--results", handmade).exit_code == 0
    assert sorted(p.name for p in folder.glob("*.png")) == ["dropout.png", "l2.png", "none.png", "overview.png"]
    (folder / "mine.png").write_bytes(b"the user's own figure")
    (folder / "notes.txt").write_text("mine too")
    with sqlite3.connect(handmade / DB_NAME) as conn:  # the row "l2" is now called "weight decay"
        conn.execute("UPDATE spec_rows SET label='weight decay' WHERE label='l2'")
    conn.close()
    result = invoke("plot", "--results", handmade)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in folder.glob("*.png"))
    assert names == ["dropout.png", "mine.png", "none.png", "overview.png", "weight-decay.png"]  # l2.png: stale, gone
    assert (folder / "mine.png").read_bytes() == b"the user's own figure" and (folder / "notes.txt").exists()
    manifest = json.loads((folder / ".regsuite-plots.json").read_text())
    assert manifest["files"] == ["dropout.png", "none.png", "overview.png", "weight-decay.png"]


def test_a_plot_folder_without_a_manifest_keeps_every_png(handmade):
    folder = handmade / "plots" / "handmade"
    folder.mkdir(parents=True)
    (folder / "mine.png").write_bytes(b"old")
    assert invoke("plot", "--results", handmade).exit_code == 0
    assert (folder / "mine.png").read_bytes() == b"old"


def test_a_manifest_cannot_make_plot_delete_anything_outside_its_folder(handmade, tmp_path):
    folder = handmade / "plots" / "handmade"
    folder.mkdir(parents=True)
    precious = [tmp_path / "precious.png", handmade / "plots" / "precious.png", folder / ".hidden.png"]
    for path in precious:
        path.write_bytes(b"keep")
    (folder / "sub").mkdir()
    (folder / "sub" / "deep.png").write_bytes(b"keep")
    listed = ["../../../precious.png", "../precious.png", str(tmp_path / "precious.png"), ".hidden.png",
              "sub/deep.png", "sub", 7, None]
    (folder / ".regsuite-plots.json").write_text(json.dumps({"format": "regsuite-plots", "files": listed}))
    assert invoke("plot", "--results", handmade).exit_code == 0
    assert all(path.read_bytes() == b"keep" for path in [*precious, folder / "sub" / "deep.png"])


# ============================================================================ 2. stores regsuite did not make


def text_file(path: Path) -> None:
    path.write_text("not a database, just some notes\n")


def empty_file(path: Path) -> None:
    path.write_bytes(b"")


def another_programs_sqlite(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO runs(name) VALUES ('a run of another tool')")
    conn.close()


def another_programs_wal_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE experiments (id INTEGER PRIMARY KEY)")
    conn.close()


def marked_by_another_program(path: Path) -> None:
    """regsuite's very tables, but another program's application id."""
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in SCHEMA.strip().split(";\n"):
        conn.execute(statement)
    conn.execute("PRAGMA application_id = 1234")
    conn.close()


def truncated_store(path: Path) -> None:
    make_handmade(path.parent / "whole", path.parent.parent)
    data = (path.parent / "whole" / DB_NAME).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    import shutil

    shutil.rmtree(path.parent / "whole")


FOREIGN = {
    "text file": (text_file, "not an SQLite database"),
    "empty file": (empty_file, "it is empty"),
    "truncated store": (truncated_store, "truncated"),
    "another program's SQLite": (another_programs_sqlite, "lacks regsuite's table"),
    "another program's WAL SQLite": (another_programs_wal_sqlite, "none of regsuite's tables"),
    "another program's application id": (marked_by_another_program, "another program's SQLite database"),
}
COMMANDS = {
    "validate": lambda spec, out: ["validate", spec],
    "leaderboard": lambda spec, out: ["leaderboard"],
    "leaderboard --export": lambda spec, out: ["leaderboard", "--export"],
    "plot": lambda spec, out: ["plot"],
    "results export": lambda spec, out: ["results", "export", "--out", out],
    "run": lambda spec, out: ["run", spec],
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("kind", list(FOREIGN))
def test_a_file_that_is_not_a_regsuite_store_is_refused_untouched(kind, command, tiny_spec, tmp_path):
    folder = tmp_path / "foreign"
    folder.mkdir()
    make, why = FOREIGN[kind]
    make(folder / DB_NAME)
    before = snapshot(folder)
    result = invoke(*COMMANDS[command](tiny_spec, tmp_path / "out.jsonl"), "--results", folder)
    one_clear_error(result, f"{folder / DB_NAME} is not a regsuite results store", why)
    assert snapshot(folder) == before  # the same bytes, the same mtime, no -wal, -shm or journal
    assert sorted(p.name for p in folder.iterdir()) == [DB_NAME]
    assert not (tmp_path / "out.jsonl").exists() and not (tmp_path / "leaderboard").exists()


@pytest.mark.parametrize("kind", ["text file", "another program's SQLite", "another program's WAL SQLite"])
def test_results_import_refuses_a_store_that_is_not_regsuites(kind, handmade, tmp_path):
    exported = tmp_path / "handmade.runs.jsonl"
    assert invoke("results", "export", "handmade", "--results", handmade, "--out", exported).exit_code == 0
    folder = tmp_path / "foreign"
    folder.mkdir()
    FOREIGN[kind][0](folder / DB_NAME)
    before = snapshot(folder)
    result = invoke("results", "import", exported, "--results", folder)
    one_clear_error(result, f"{folder / DB_NAME} is not a regsuite results store")
    assert snapshot(folder) == before and sorted(p.name for p in folder.iterdir()) == [DB_NAME]


@pytest.mark.parametrize("command", list(COMMANDS) + ["results import"])
@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_results_pointing_at_a_file_is_a_message(command, where, tiny_spec, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    target = blocker if where == "a file" else blocker / "results"
    if command == "results import":
        exported = tmp_path / "in.jsonl"
        handmade = make_handmade(tmp_path / "handmade", tmp_path)
        assert invoke("results", "export", "handmade", "--results", handmade, "--out", exported).exit_code == 0
        args = ["results", "import", exported]
    else:
        args = COMMANDS[command](tiny_spec, tmp_path / "out.jsonl")
    result = invoke(*args, "--results", target)
    one_clear_error(result, f"the results folder {target}", "not a folder")
    assert blocker.read_text() == "a file, not a folder"


def test_read_only_commands_change_nothing_in_a_regsuite_store(handmade, tmp_path, files):
    spec = files({"specs/handmade.toml": (tmp_path / "handmade.toml").read_text()}) / "specs" / "handmade.toml"
    db = handmade / DB_NAME
    before = snapshot(handmade)
    for args in (["validate", spec], ["leaderboard"], ["leaderboard", "handmade", "-f", "json"],
                 ["results", "export", "--out", tmp_path / "x.jsonl"]):
        result = invoke(*args, "--results", handmade)
        assert result.exit_code == 0, result.output
    assert snapshot(handmade, db) == before  # the database file itself: not a byte, not its mtime


def unmark(db: Path) -> None:
    """As a store made before regsuite marked its stores: no application id, no version."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA application_id = 0")
    conn.execute("PRAGMA user_version = 0")
    conn.close()


def header_marks(db: Path) -> tuple[int, int]:
    head = db.read_bytes()[:100]
    return int.from_bytes(head[68:72], "big"), int.from_bytes(head[60:64], "big")


def test_a_store_made_before_the_mark_still_opens_and_is_marked_by_a_write(handmade, tmp_path):
    db = handmade / DB_NAME
    assert header_marks(db) == (APPLICATION_ID, 1)
    unmark(db)
    assert header_marks(db) == (0, 0)
    for args in (["leaderboard", "handmade"], ["plot", "handmade"]):
        result = invoke(*args, "--results", handmade)
        assert result.exit_code == 0, result.output
    assert header_marks(db) == (0, 0)  # read-only: not even the mark is written
    Store(handmade).close()  # a writing open (run, results import) marks it
    assert header_marks(db) == (APPLICATION_ID, 1)


def test_a_store_of_a_newer_schema_is_refused(handmade):
    conn = sqlite3.connect(handmade / DB_NAME, isolation_level=None)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    before = snapshot(handmade)
    one_clear_error(invoke("leaderboard", "--results", handmade), "made by a newer regsuite (schema version 99")
    with pytest.raises(RegsuiteError, match="newer regsuite"):
        Store(handmade)  # nor written
    assert snapshot(handmade) == before


def test_a_new_store_appears_whole_and_concurrent_creators_share_it(tmp_path):
    folder = tmp_path / "new"
    code = "import sys; from regsuite.store import Store; Store(sys.argv[1]).close()"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(folder)], stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    assert all(p.wait(timeout=120) == 0 for p in procs), [p.stderr.read() for p in procs]
    assert sorted(p.name for p in folder.iterdir()) == [DB_NAME]  # no temporary file left
    assert header_marks(folder / DB_NAME) == (APPLICATION_ID, 1)
    with Store(folder, readonly=True) as store:
        assert store.spec_names() == []


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes through read-only modes")
def test_a_store_on_read_only_media_is_read_and_run_says_why_it_cannot_write(handmade, tiny_spec):
    db = handmade / DB_NAME
    for path in [*handmade.rglob("*"), handmade]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        assert invoke("leaderboard", "handmade", "--results", handmade).exit_code == 0
        one_clear_error(invoke("run", tiny_spec, "--results", handmade), "cannot write the results store", str(db))
    finally:
        for path in [handmade, *handmade.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)


def test_read_only_media_falls_back_to_an_immutable_read(handmade, monkeypatch):
    """As root, a folder cannot be made read-only: the media is simulated."""
    from regsuite import store as store_module

    real = store_module.connect_readonly
    opened = []

    def connect(path, immutable):
        opened.append(immutable)
        if not immutable:
            raise sqlite3.OperationalError("unable to open database file")
        return real(path, immutable)

    monkeypatch.setattr(store_module, "connect_readonly", connect)
    monkeypatch.setattr(store_module.os, "access", lambda path, mode: False)
    with Store(handmade, readonly=True) as store:
        assert store.spec_names() == ["handmade"]
    assert opened == [False, True]


# ============================================================================ 3. exit codes


def test_a_grid_whose_worker_was_interrupted_does_not_exit_0(tmp_path):
    """SIGTERM to a worker (an OOM guard, an admin), not to regsuite: the grid is not complete."""
    site = install_fault_plugin(tmp_path)
    spec = write_spec(tmp_path / "term.toml", {"plain": '[{ name = "fault" }]'})
    results, markers = tmp_path / "results", tmp_path / "hanging"
    parent = start_cli("run", str(spec), "--results", str(results), "--no-plots",
                       env=cli_env(site, REGSUITE_TEST_HANG=f"2:{markers}"), cwd=tmp_path)
    worker = int(wait_for_files(markers, 1, parent)[0].name)
    os.kill(worker, signal.SIGTERM)
    stdout, stderr = parent.communicate(timeout=120)
    assert "trained 0, already done 0, failed 0, interrupted 1" in stdout
    assert parent.returncode == 1, (stdout, stderr)
    assert "1 run(s) interrupted" in stderr and "Resume with: regsuite run" in stderr
    assert runs_by_label(results)["plain"]["status"] == "interrupted"


# ============================================================================ 4. live claims


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture
def claimed(tiny_spec, tmp_path):
    plan = resolve(load_spec(tiny_spec), get_registry())
    store = Store(tmp_path / "claims")
    store.register_plan(plan)
    yield store, plan.runs[0].run_id
    store.close()


def other_namespace() -> str:
    ours = pid_namespace()
    return str(int(ours) + 1) if ours.isdigit() else "4026531836"


def test_a_live_claim_from_another_pid_namespace_is_not_taken_over(claimed):
    store, run_id = claimed
    owner = f"{socket.gethostname()}:{dead_pid()}:{other_namespace()}:0123456789abcdef"
    assert store.claim(run_id, owner=owner)
    assert not owner_is_dead(owner)  # that pid is dead here; there, in its container, it may be training
    assert not store.claim(run_id)  # its heartbeat is fresh: it stays the owner's
    assert store.get_run(run_id).claimed_by == owner
    store.conn.execute("UPDATE runs SET heartbeat = heartbeat - 1000 WHERE run_id = ?", (run_id,))
    assert store.claim(run_id)  # once stale, it is taken over like any abandoned claim


CLAIM_IN_A_CONTAINER = """
import sys
from regsuite import store
store.pid_namespace = lambda: sys.argv[3]  # as a `regsuite run` in another container sees it
with store.Store(sys.argv[1]) as s:
    assert s.claim(sys.argv[2])
"""


def test_a_regsuite_run_in_another_container_keeps_its_live_claim(claimed):
    """Two containers on one host (same host name, own PID namespaces): the other one's pid
    does not exist here, yet its run is training there."""
    store, run_id = claimed
    subprocess.run([sys.executable, "-c", CLAIM_IN_A_CONTAINER, str(store.directory), run_id, other_namespace()],
                   check=True, timeout=120)
    assert not store.claim(run_id)  # fresh heartbeat: not ours to train a second time
    assert store.get_run(run_id).status == "running" and store.get_run(run_id).claimed_by != worker_id()


def test_a_claim_of_a_dead_process_of_our_namespace_is_taken_over_at_once(claimed):
    store, run_id = claimed
    owner = f"{socket.gethostname()}:{dead_pid()}:{pid_namespace()}:0123456789abcdef"
    assert store.claim(run_id, owner=owner)
    assert owner_is_dead(owner)
    assert store.claim(run_id)
    assert store.get_run(run_id).claimed_by == worker_id()


def test_a_claim_with_our_pid_but_another_token_is_a_dead_predecessor(claimed):
    store, run_id = claimed
    host, pid, ns, token = worker_id().rsplit(":", 3)
    predecessor = f"{host}:{pid}:{ns}:{'0' * len(token)}"
    assert store.claim(run_id, owner=predecessor)
    assert store.claim(run_id)


def test_an_owner_without_a_namespace_is_judged_by_its_heartbeat_only(claimed):
    store, run_id = claimed
    legacy = f"{socket.gethostname()}:{dead_pid()}"  # as regsuite wrote owners before namespaces
    assert store.claim(run_id, owner=legacy)
    assert not owner_is_dead(legacy) and not store.claim(run_id)


def test_owners_are_unique_to_their_process():
    code = "from regsuite.store import worker_id; print(worker_id())"
    others = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
              for _ in range(2)}
    ours = worker_id()
    assert ours == worker_id() and len(others | {ours}) == 3
    host, pid, ns, token = ours.rsplit(":", 3)
    assert (host, pid, ns) == (socket.gethostname(), str(os.getpid()), pid_namespace()) and len(token) == 16


# ============================================================================ 5. portable exports


def test_a_published_leaderboard_holds_no_paths_of_this_machine(handmade, tmp_path, tmp_path_factory, monkeypatch):
    elsewhere = tmp_path_factory.mktemp("elsewhere")  # not under the working directory (tmp_path)
    monkeypatch.setenv("REGSUITE_DATA", str(elsewhere / "data"))
    (elsewhere / "data").mkdir()
    with sqlite3.connect(handmade / DB_NAME) as conn:  # the stored spec names where its data lives
        spec = json.loads(conn.execute("SELECT spec FROM specs").fetchone()[0])
        spec["datasets"] = [{"name": "tiny_imagenet", "root": str(elsewhere / "data"), "cache_dir": str(tmp_path / "cache")},
                            {"name": "tiny_imagenet", "root": "/opt/private/alice/tiny", "cache_dir": "rel/cache"}]
        conn.execute("UPDATE specs SET spec=?", (json.dumps(spec),))
    conn.close()
    outside_results = elsewhere / "results"
    import shutil

    shutil.copytree(handmade, outside_results)
    for results, shown in ((handmade, "regsuite leaderboard handmade --results results --export"),
                           (outside_results, "regsuite leaderboard handmade --results <results> --export")):
        args = ["leaderboard", "handmade", "--results", str(results), "--export"]
        monkeypatch.setattr("sys.argv", ["regsuite", *args])  # what the shell would have passed
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        md = (tmp_path / "leaderboard" / "handmade.md").read_text(encoding="utf-8")
        assert str(tmp_path) not in md and str(elsewhere) not in md and "/opt/private" not in md
        assert shown in md
        stored = json.loads(md.split("```json\n", 1)[1].split("```", 1)[0])
        assert stored["datasets"][0] == {"name": "tiny_imagenet", "root": "$REGSUITE_DATA", "cache_dir": "cache"}
        assert stored["datasets"][1] == {"name": "tiny_imagenet", "root": None, "cache_dir": "rel/cache"}


def test_portable_command_lines():
    from regsuite.export import portable_command

    cwd = Path.cwd()
    data = os.environ.get("REGSUITE_DATA")
    assert portable_command(f"regsuite run {cwd / 'specs' / 'a.toml'} --results={cwd / 'r'}") == \
        "regsuite run specs/a.toml --results=r"
    assert portable_command("regsuite plot --results /srv/alice/results -o /tmp/x/plots") == \
        "regsuite plot --results <results> -o <plots>"
    assert portable_command("regsuite run s.toml --set dataset.root=/home/alice/tiny") == \
        "regsuite run s.toml --set 'dataset.root=<tiny>'"
    if data:
        assert portable_command(f"regsuite data download tiny_imagenet --dir {data}") == \
            'regsuite data download tiny_imagenet --dir "$REGSUITE_DATA"'
