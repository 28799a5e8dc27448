"""Every reference in the project's documents resolves inside the project: each relative link
of a markdown file names a file of the checkout, and no file names a design document that is
not part of it."""
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


def test_no_file_refers_to_a_design_document_outside_the_project():
    names = [p for p in tracked("*") if p.suffix in {".md", ".py", ".toml", ".txt", ".cfg", ""} and p.is_file()]
    citing = [str(p.relative_to(ROOT)) for p in names
              if p != Path(__file__).resolve() and "DESIGN.md" in p.read_text(encoding="utf-8", errors="replace")]
    assert not citing, citing
