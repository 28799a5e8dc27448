"""User text reaches the terminal, the markdown and the JSON as it was written.

- rich never reads a label, a claim text, a path or an error message as markup;
- markdown escapes them, so that a ``|`` or a newline cannot break a table or add a heading;
- JSON output is strict JSON: NaN and ±infinity are null.
"""
from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path

import pytest
from helpers import reports as handmade
from helpers.reports import make_handmade
from rich.console import Console
from typer.testing import CliRunner

from regsuite import cli
from regsuite import leaderboard as lb
from regsuite.cli import app
from regsuite.progress import RichGridReporter
from regsuite.spec import PlannedRun
from regsuite.store import Store

runner = CliRunner()

MARKUP_LABELS = ("[/]", "dropout [p=0.5]", "[bold]x[/bold]")


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(autouse=True)
def console_width(monkeypatch):
    monkeypatch.setattr(cli.console, "_width", 160)


def toml_string(text: str) -> str:
    return json.dumps(text)  # a JSON string of ASCII text is a TOML basic string


def relabelled(tmp_path: Path, monkeypatch, labels: dict[str, str], *, final: dict | None = None,
               head: str = "", extra: str = "", reference: str | None = None) -> Path:
    """The handmade store (helpers.reports) with its sets relabelled (old label → new label);
    ``head`` goes before the first table, ``extra`` after the last, ``reference`` replaces
    the dropout set's reference table."""
    text = handmade.HANDMADE_SPEC
    for old, new in labels.items():
        text = text.replace(f'label = "{old}"', f"label = {toml_string(new)}")
    text = text.replace("seeds = [0, 1, 2]\n", "seeds = [0, 1, 2]\n" + head)
    if reference is not None:
        text = text.replace("reference = { train_loss = 1.0, val_loss = 2.5 }", reference)
    numbers = {labels.get(k, k): v for k, v in (final or handmade.FINAL).items()}
    monkeypatch.setattr(handmade, "HANDMADE_SPEC", text)
    monkeypatch.setattr(handmade, "FINAL", numbers)
    return make_handmade(tmp_path / "results", tmp_path, extra=extra)


# ---------------------------------------------------------------------------- rich: never markup

MARKUP_SPEC = """
name = "markup"
task = "image_classification"
seeds = [0]

[dataset]
name = "digits"
train_limit = 40

[model]
name = "small_cnn"
width = 4
hidden = 16

[training]
epochs = 1
batch_size = 32

[execution]
workers = 0

[[sets]]
label = "none"

[[sets]]
label = "[/]"
regularizers = [{ name = "l2", weight = 1e-3 }]

[[sets]]
label = "dropout [p=0.5]"
regularizers = [{ name = "dropout", p = 0.5 }]

[[sets]]
label = "[bold]x[/bold]"
regularizers = [{ name = "l2", weight = 1e-2 }]
"""


def test_run_trains_and_shows_markup_like_labels_literally(files, tmp_path):
    spec = files({"markup.toml": MARKUP_SPEC}) / "markup.toml"
    results = tmp_path / "results"
    result = invoke("run", spec, "--results", results, "--no-plots")
    assert result.exit_code == 0, result.output
    assert "trained 4, already done 0, failed 0" in result.stdout
    for label in MARKUP_LABELS:
        assert label in result.stdout, label
    with Store(results, create=False) as store:
        assert [record.status for _, _, record in store.spec_rows("markup")] == ["done"] * 4


def planned(label: str) -> PlannedRun:
    config = {"dataset": {"name": "digits"}, "model": {"name": "small_cnn"}, "seed": 0}
    return PlannedRun("0" * 64, label, config)


def test_progress_lines_show_labels_and_failure_reasons_literally():
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    reporter = RichGridReporter(console)
    reporter.grid_started(3, 0, ["slot 0 · cpu", "slot 1 · cpu"])
    for slot, label in enumerate(MARKUP_LABELS[:2]):
        reporter.run_started(planned(label), slot).run_started(2, 3)
    console.print(reporter.progress.get_renderable())
    reporter.run_finished(planned(MARKUP_LABELS[2]), "failed", "ValueError: bad value [red]p[/red] in [/]", 0)
    text = out.getvalue()
    for label in MARKUP_LABELS[:2]:
        assert f"{label} · seed 0" in text, label
    assert "failed: digits / small_cnn / [bold]x[/bold] / seed 0 — ValueError: bad value [red]p[/red] in [/]" in text


def test_validate_shows_markup_like_labels_literally(files):
    spec = files({"markup.toml": MARKUP_SPEC}) / "markup.toml"
    result = invoke("validate", spec)
    assert result.exit_code == 0, result.output
    for label in MARKUP_LABELS:
        assert label in result.stdout, label


def test_error_about_a_path_with_markup_is_printed_literally(tmp_path):
    path = tmp_path / "no[/]where" / "[bold]spec[/bold].toml"
    result = invoke("validate", path)
    assert result.exit_code == 2, result.output
    assert f"spec file not found: {path}" in result.stderr
    assert "Traceback" not in result.output


def test_error_naming_a_label_with_markup_is_printed_literally(files):
    spec = files({"bad.toml": 'baseline = "[red]b[/red]"\n' + MARKUP_SPEC}) / "bad.toml"
    result = invoke("validate", spec)
    assert result.exit_code == 2, result.output
    assert "baseline '[red]b[/red]' is not a set label" in result.stderr
    assert "(none, [/], dropout [p=0.5], [bold]x[/bold])" in result.stderr


def test_paths_with_markup_in_messages_are_printed_literally(tmp_path, monkeypatch):
    results = relabelled(tmp_path, monkeypatch, {})
    out = tmp_path / "[bold]out[/bold]" / "[/]board.md"
    result = invoke("leaderboard", "handmade", "--results", results, "--format", "csv", "--out", out)
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.stdout.replace("\n", "")
    assert out.read_text(encoding="utf-8").startswith("spec,task,label")


MARKUP_CLAIM = """
[[claims]]
text = "[red]dropout[/red] [/] lowers val loss"
row = "dropout [p=0.5]"
lower_than = "none"
"""
FOURTH_SET = """
[[sets]]
label = "[bold]x[/bold]"
regularizers = [{ name = "l2", weight = 1e-2 }]
"""


def test_rich_leaderboard_shows_labels_and_claims_literally(tmp_path, monkeypatch):
    final = {**handmade.FINAL, "[bold]x[/bold]": handmade.FINAL["l2"]}
    results = relabelled(tmp_path, monkeypatch, {"l2": "[/]", "dropout": "dropout [p=0.5]"}, final=final,
                         extra=FOURTH_SET + MARKUP_CLAIM)
    result = invoke("leaderboard", "handmade", "--results", results)
    assert result.exit_code == 0, result.output
    for label in MARKUP_LABELS:
        assert label in result.stdout, label
    assert "[red]dropout[/red] [/] lowers val loss" in result.stdout
    assert "val_loss: dropout [p=0.5] < none" in result.stdout


def test_rich_leaderboard_baseline_label_with_markup(tmp_path, monkeypatch):
    results = relabelled(tmp_path, monkeypatch, {"none": "[/]"}, head='baseline = "[/]"\n')
    with Store(results) as store:
        board = lb.build(store, "handmade")
    recorder = Console(record=True, width=200, file=io.StringIO())
    recorder.print(lb.to_rich(board))
    text = recorder.export_text()
    assert "[/] (baseline)" in text and "baseline '[/]'" in text


# ---------------------------------------------------------------------------- markdown: escaped

PIPE_CLAIM = """
[[claims]]
text = "a | b is lower | than none"
row = "a | b"
lower_than = "none"
"""


def cells(line: str) -> list[str]:
    """A markdown table line's cells, split on unescaped pipes (as GitHub does)."""
    return re.split(r"(?<!\\)\|", re.sub(r"\\\\", "", line.strip()).strip("|"))


def assert_tables_intact(markdown: str) -> None:
    """Every table line has as many cells as its header, and no user text starts a line."""
    lines = markdown.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|") and (i == 0 or not lines[i - 1].startswith("|")):
            width = len(cells(line))
            for row in lines[i: next((j for j in range(i, len(lines)) if not lines[j].startswith("|")), len(lines))]:
                assert len(cells(row)) == width, row
        assert not re.match(r"\s*#+ injected", line), line


@pytest.fixture
def piped(tmp_path, monkeypatch) -> Path:
    return relabelled(tmp_path, monkeypatch, {"l2": "a | b", "dropout": "x\n# injected"}, extra=PIPE_CLAIM,
                      head='description = "a description\\n# injected too | <details>"\n')


def test_markdown_escapes_pipes_and_newlines_in_labels_and_claims(piped):
    result = invoke("leaderboard", "handmade", "--results", piped, "--format", "markdown")
    assert result.exit_code == 0, result.output
    markdown = result.stdout
    assert_tables_intact(markdown)
    assert r"| a \| b " in markdown and r"| x \# injected " in markdown
    assert r"a \| b is lower \| than none" in markdown
    table = markdown[markdown.index("Final epoch"):].splitlines()[2:]
    labels = [cells(line)[0].strip() for line in table[2:] if line.startswith("|")][:3]
    assert sorted(labels) == sorted(["none (baseline)", r"a \| b", r"x \# injected"])


def test_export_escapes_user_text_in_the_header_and_figures(piped, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    result = invoke("leaderboard", "handmade", "--results", piped, "--export")
    assert result.exit_code == 0, result.output
    markdown = (tmp_path / "leaderboard" / "handmade.md").read_text(encoding="utf-8")
    assert_tables_intact(markdown)
    assert r"> a description \# injected too \| \<details>" in markdown
    assert r"### x \# injected" in markdown and r"### a \| b" in markdown


def test_markdown_text_escapes():
    assert lb.md_text("a | b") == r"a \| b"
    assert lb.md_text("x\n# injected\r\nz") == r"x \# injected z"
    assert lb.md_text("# top") == r"\# top"
    assert lb.md_text(r"a \| b") == r"a \\\| b"
    assert lb.md_text("<script>x</script> & &amp; a < b") == r"\<script>x\</script> & \&amp; a < b"
    assert lb.md_text("[link](http://x) **b** `c` small_cnn _e_") == (
        r"\[link\](http://x) \*\*b\*\* \`c\` small_cnn \_e\_")
    assert lb.md_text("l2 + dropout") == "l2 + dropout"
    assert lb.md_text("- item") == "- item" and lb.md_text("- item", block_start=True) == r"\- item"
    assert lb.md_text("1. one", block_start=True) == r"1\. one"
    assert lb.md_code("run `x`\n# y") == "``run `x` # y``" and lb.md_code("`a`") == "`` `a` ``"


# ---------------------------------------------------------------------------- JSON: strict


def strict_json(text: str):
    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_json_output_turns_infinite_references_into_null(tmp_path, monkeypatch):
    results = relabelled(tmp_path, monkeypatch, {},
                         reference="reference = { train_loss = inf, val_loss = 2.5, val_f1 = nan }")
    result = invoke("leaderboard", "handmade", "--results", results, "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {row["label"]: row for row in strict_json(result.stdout)["rows"]}
    assert rows["dropout"]["ref_train_loss"] is None and rows["dropout"]["ref_gap"] is None  # 2.5 − inf
    assert rows["dropout"]["ref_val_f1"] is None and rows["dropout"]["ref_val_loss"] == 2.5


def test_a_diverged_metric_is_null_in_json_and_nan_in_tables(tmp_path, monkeypatch):
    final = dict(handmade.FINAL)
    final["l2"] = [(math.nan, 3.0, 0.50), (1.0, 4.0, 0.50), (1.0, 5.0, 0.50)]  # seed 0 diverged
    results = relabelled(tmp_path, monkeypatch, {}, final=final)
    result = invoke("leaderboard", "handmade", "--results", results, "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {row["label"]: row for row in strict_json(result.stdout)["rows"]}
    assert rows["l2"]["train_loss"] is None and rows["l2"]["train_loss_std"] is None and rows["l2"]["gap"] is None
    assert rows["l2"]["delta_gap"] is None and rows["l2"]["delta_gap_ci_low"] is None
    assert rows["l2"]["val_loss"] == pytest.approx(4.0) and rows["l2"]["delta_val_loss"] == pytest.approx(2.0)
    markdown = invoke("leaderboard", "handmade", "--results", results, "--format", "markdown")
    assert markdown.exit_code == 0, markdown.output
    assert "nan ± nan" in markdown.stdout
    ranked = invoke("leaderboard", "handmade", "--results", results, "--format", "json", "--sort", "gap")
    assert [row["label"] for row in strict_json(ranked.stdout)["rows"]][-1] == "l2"  # NaN ranks last


def test_strict_json_refuses_what_it_cannot_represent():
    assert lb.strict_dumps({"a": [math.nan, math.inf, -math.inf, 1.5], "b": (math.nan,)}) == (
        '{"a": [null, null, null, 1.5], "b": [null]}')
    with pytest.raises(ValueError):
        json.dumps({"a": math.nan}, allow_nan=False)  # what strict_dumps relies on


def test_plots_show_dollar_signs_literally(tmp_path):
    """matplotlib reads $…$ as math: a label "$\\frac$" failed to save its figure."""
    from regsuite.plots import write_plots
    from regsuite.store import Store
    from helpers.reports import make_handmade

    results = make_handmade(tmp_path / "results", tmp_path)
    with Store(results) as store:
        store.conn.execute("UPDATE spec_rows SET label = '$\\frac$ cost $5' WHERE label = 'l2'")
        files = write_plots(store, "handmade", tmp_path / "plots")
    assert any(f.row == "$\\frac$ cost $5" for f in files)
