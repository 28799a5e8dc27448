from __future__ import annotations

import os
from pathlib import Path
from textwrap import dedent

import pytest
from helpers.specs import TINY_SPEC

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

# Real data beside the checkout, when there is some (CI and developers' machines).
if (SHARED / "nltk_data").is_dir():
    os.environ.setdefault("NLTK_DATA", str(SHARED / "nltk_data"))
os.environ.setdefault("COLUMNS", "200")


def pytest_collection_modifyitems(config, items):
    if SHARED.is_dir():
        return
    skip = pytest.mark.skip(reason="../shared (real data) is absent")
    for item in items:
        if "realdata" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared (real data) is absent")
    return SHARED


@pytest.fixture
def files(tmp_path: Path):
    """Write ``{relative path: text}`` under tmp_path and return tmp_path."""

    def write(mapping: dict[str, str]) -> Path:
        for name, text in mapping.items():
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(dedent(text).lstrip(), encoding="utf-8")
        return tmp_path

    return write


@pytest.fixture(autouse=True)
def isolated_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own default results folder and leaderboard folder."""
    monkeypatch.setenv("REGSUITE_RESULTS", str(tmp_path / "results"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "results"


@pytest.fixture(scope="session")
def example_site(tmp_path_factory) -> Path:
    """A folder with the example plugin package (examples/regsuite-cutout) pip-installed in it,
    for ``PYTHONPATH`` or ``sys.path``; this environment stays without it."""
    from helpers.example_package import install_example

    return install_example(tmp_path_factory.mktemp("example") / "site")


@pytest.fixture
def tiny_spec(files) -> Path:
    return files({"tiny.toml": TINY_SPEC}) / "tiny.toml"


@pytest.fixture
def isolated_nltk(monkeypatch, tmp_path):
    """NLTK without ../shared or a network (see helpers.treebank.isolate_nltk)."""
    from helpers.treebank import isolate_nltk  # imports NLTK: only for the tests that ask

    yield from isolate_nltk(monkeypatch, tmp_path)
