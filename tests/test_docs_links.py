"""Every reference in the project resolves inside it: each relative link of a markdown file
names a file of the checkout, and every markdown document a file names (outside the tests,
which name the files they generate) is one of the project's."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def tracked(pattern: str) -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", pattern], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: the files beside, but
        return sorted(p for p in ROOT.rglob(pattern)  # no environment, cache or results folder
                      if not any(part.startswith(".") or part == "results" for part in p.relative_to(ROOT).parts))
    return [ROOT / line for line in out.splitlines()]


MARKDOWN = tracked("*.md")


@pytest.mark.parametrize("document", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_names_a_file_of_the_project(document: Path):
    broken = []
    for target in LINK.findall(document.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        path = (document.parent / target.split("#", 1)[0]).resolve()
        if not path.exists() or ROOT not in path.parents:
            broken.append(target)
    assert not broken, f"{document.relative_to(ROOT)}: links that do not resolve inside the project: {broken}"


MARKDOWN_NAME = re.compile(r"[\w./-]*\w\.md\b")


def test_every_markdown_document_a_file_names_is_part_of_the_project():
    names = {p.name for p in MARKDOWN}
    texts = [p for p in tracked("*") if p.suffix in {".md", ".py", ".toml", ".txt", ".cfg", ""}
             and p.is_file() and "tests" not in p.relative_to(ROOT).parts]
    outside = sorted({f"{p.relative_to(ROOT)}: {name}" for p in texts
                      for name in MARKDOWN_NAME.findall(p.read_text(encoding="utf-8", errors="replace"))
                      if Path(name).name not in names})
    assert not outside, outside
