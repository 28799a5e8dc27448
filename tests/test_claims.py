"""Claims: stated in the spec, validated at load time, judged from paired seeds, rendered."""
from __future__ import annotations

import csv
import io
import json

import pytest
from typer.testing import CliRunner

from regsuite import claims, stats
from regsuite.cli import app
from helpers.reports import make_handmade, markdown_rows

runner = CliRunner()

# Against the handmade numbers (tests/helpers/reports.py), paired by seed:
#   dropout − none, val loss: [-.2, -.21, -.19] → [-0.225, -0.175]: lower, held
#   l2 − none, val loss: [1, 2, 3] → [-0.484, +4.484]: inconclusive
#   dropout − 2.0, val loss: [-.2, -.21, -.19]: below 2, held
CLAIMS = """
[[claims]]
text = "dropout lowers val loss against none"
row = "dropout"
lower_than = "none"

[[claims]]
text = "every regularizer lowers val loss"
row = ["l2", "dropout"]
lower_than = "none"

[[claims]]
text = "dropout raises val loss"
row = "dropout"
higher_than = "none"

[[claims]]
text = "dropout is lowest of all"
row = "dropout"
lowest_of = "all"

[[claims]]
text = "dropout's val loss is below 2"
row = "dropout"
below = 2.0

[[claims]]
text = "dropout narrows the gap"
metric = "gap"
row = "dropout"
lower_than = "none"
"""


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def difference(low, high, n=3):
    mean = None if low is None else (low + high) / 2
    return stats.PairedDifference(mean, None, n, low, high)


@pytest.mark.parametrize("low, high, lower, verdict", [
    (-0.3, -0.1, True, "held"), (0.1, 0.3, True, "contradicted"), (-0.1, 0.1, True, "inconclusive"),
    (0.1, 0.3, False, "held"), (-0.3, -0.1, False, "contradicted"), (None, None, True, "n too small"),
])
def test_verdict_follows_the_interval(low, high, lower, verdict):
    assert claims.verdict_of(difference(low, high), lower) == verdict


@pytest.mark.parametrize("parts, verdict", [
    (["held", "held"], "held"), (["held", "inconclusive"], "inconclusive"),
    (["held", "contradicted", "n too small"], "contradicted"), (["held", "n too small"], "n too small"), ([], "n too small"),
])
def test_a_compound_claim_holds_only_when_every_comparison_holds(parts, verdict):
    assert claims.combine(parts) == verdict


def test_lowest_of_all_compares_with_every_other_row():
    claim = {"row": "a", "lowest_of": "all", "metric": "val_loss", "text": "t"}
    assert claims.expand(claim, ["a", "b", "c"]) == [("a", "b", True, None), ("a", "c", True, None)]


def judged(result):
    return {c["claim"]: c for c in json.loads(result.stdout)["claims"]}


def test_claims_are_judged_from_paired_seeds(tmp_path):
    results = make_handmade(tmp_path / "results", tmp_path, extra=CLAIMS)
    out = judged(invoke("leaderboard", "handmade", "--results", results, "--format", "json"))
    assert out["dropout lowers val loss against none"]["verdict"] == "held"
    part = out["dropout lowers val loss against none"]["comparisons"][0]
    assert part["delta"] == pytest.approx(-0.2) and part["n"] == 3
    assert (part["ci_low"], part["ci_high"]) == (pytest.approx(-0.22484, abs=1e-4), pytest.approx(-0.17516, abs=1e-4))
    assert out["every regularizer lowers val loss"]["verdict"] == "inconclusive"  # l2's interval straddles 0
    assert [p["verdict"] for p in out["every regularizer lowers val loss"]["comparisons"]] == ["inconclusive", "held"]
    assert out["dropout raises val loss"]["verdict"] == "contradicted"
    assert out["dropout is lowest of all"]["verdict"] == "inconclusive"
    assert len(out["dropout is lowest of all"]["comparisons"]) == 2
    assert out["dropout's val loss is below 2"]["verdict"] == "held"
    assert out["dropout narrows the gap"]["verdict"] == "held"


def test_too_few_paired_seeds_is_said_so(tmp_path):
    results = make_handmade(tmp_path / "results", tmp_path, extra=CLAIMS, unfinished={("dropout", 1), ("dropout", 2)})
    out = judged(invoke("leaderboard", "handmade", "--results", results, "--format", "json"))
    assert out["dropout lowers val loss against none"]["verdict"] == "n too small"
    assert out["dropout raises val loss"]["verdict"] == "n too small"


def test_claims_table_in_markdown_rich_and_csv(tmp_path):
    results = make_handmade(tmp_path / "results", tmp_path, extra=CLAIMS)
    markdown = invoke("leaderboard", "handmade", "--results", results, "--format", "markdown").stdout
    assert "#### Claims" in markdown and "3 held, 1 contradicted, 2 inconclusive." in markdown
    line = next(row for row in markdown.splitlines() if row.startswith("| dropout lowers val loss"))
    assert "**held**" in line and "-0.200" in line and "[-0.225, -0.175]" in line
    rich = invoke("leaderboard", "handmade", "--results", results).stdout
    assert "Claims" in rich and "contradicted" in rich
    text = invoke("leaderboard", "handmade", "--results", results, "--format", "csv").stdout
    rows_part, claims_part = text.split("\n\n")
    claim_rows = list(csv.DictReader(io.StringIO(claims_part)))
    assert len(claim_rows) == 8  # one line per comparison: 1 + 2 + 1 + 2 + 1 + 1
    assert {r["claim_verdict"] for r in claim_rows} == {"held", "contradicted", "inconclusive"}
    assert "dropout" in markdown_rows(markdown, "Final epoch")


@pytest.mark.parametrize("claim, message", [
    ('text = "t"\nrow = "droput"\nlower_than = "none"', "names rows that are not set labels: 'droput'"),
    ('text = "t"\nrow = "dropout"\nlowest_of = ["none", "l3"]', "'l3'"),
    ('text = "t"\nrow = "dropout"\nlower_than = "none"\nmetric = "val_los"', "unknown metric 'val_los'"),
    ('text = "t"\nrow = "dropout"', "give exactly one of"),
    ('text = "t"\nrow = "dropout"\nlower_than = "none"\nabove = 1', "give exactly one of"),
    ('text = "t"\nrow = "dropout"\nbelow = "low"', "below"),
])
def test_bad_claims_are_spec_errors(files, claim, message):
    from helpers.reports import HANDMADE_SPEC

    spec = files({"bad.toml": HANDMADE_SPEC + "\n[[claims]]\n" + claim + "\n"}) / "bad.toml"
    result = invoke("validate", spec)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
