"""Every leaderboard published in leaderboard/ renders again from the raw runs published beside
it: import the runs file into an empty store, render, and every table matches the published one
(a leaderboard that the code no longer produces, or whose runs file is missing runs, fails)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regsuite.cli import app

LEADERBOARDS = Path(__file__).resolve().parents[1] / "leaderboard"
PUBLISHED = sorted(LEADERBOARDS.glob("*.runs.jsonl"))
N_OF_PLANNED = re.compile(r"^(\d+)/\d+$")


def tables(markdown: str) -> list[tuple[str, list[list[str]]]]:
    """(heading, rows of cells) of every markdown table, in order. A partial export's ``2/3``
    seeds read as ``2``, and its rows with no finished run (a tuned set whose candidates have not
    started: n = 0) are left out: an imported store holds only the finished runs, not the planned
    ones."""
    found: list[tuple[str, list[list[str]]]] = []
    heading = ""
    for line in markdown.splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif line.startswith("|") and not set(line) <= set("|:- "):
            cells = [N_OF_PLANNED.sub(r"\1", cell.strip()) for cell in line.strip().strip("|").split("|")]
            if not found or found[-1][0] != heading:
                found.append((heading, []))
            header = found[-1][1][0] if found[-1][1] else []
            if "n" in header and cells[header.index("n")] == "0":
                continue
            found[-1][1].append(cells)
    return found


def test_every_published_leaderboard_has_its_runs_file():
    boards = {p.stem for p in LEADERBOARDS.glob("*.md")}
    assert boards and boards == {p.name.removesuffix(".runs.jsonl") for p in PUBLISHED}


@pytest.mark.parametrize("runs_file", PUBLISHED, ids=lambda p: p.name.removesuffix(".runs.jsonl"))
def test_a_published_leaderboard_renders_again_from_its_raw_runs(runs_file: Path, tmp_path: Path):
    name = runs_file.name.removesuffix(".runs.jsonl")
    store = tmp_path / "store"
    runner = CliRunner()
    imported = runner.invoke(app, ["results", "import", str(runs_file), "--results", str(store)])
    assert imported.exit_code == 0, imported.output
    rendered = runner.invoke(app, ["leaderboard", name, "--results", str(store), "--format", "markdown"])
    assert rendered.exit_code == 0, rendered.output
    published = tables((LEADERBOARDS / f"{name}.md").read_text(encoding="utf-8"))
    again = tables(rendered.output)
    assert again, rendered.output
    published_by_heading = dict(published)
    for heading, rows in again:
        assert heading in published_by_heading, f"{name}.md has no table {heading!r}: export it again"
        assert rows == published_by_heading[heading], f"{name}.md: table {heading!r} differs: export it again"
