from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_commands_are_near_the_top_and_ci_runs_the_test_one():
    head = ROOT.joinpath("README.md").read_text().splitlines()[:25]
    setup = head[next(i for i, line in enumerate(head) if line.startswith("# set up and run the quickstart")) + 1]
    assert "pip install -e ." in setup and "regsuite run specs/quickstart.toml" in setup
    assert any(line.startswith("# set up and run the tests") for line in head)
    ci = ROOT.joinpath(".ci", "run").read_text()
    assert "'^# set up and run the tests' README.md" in ci
