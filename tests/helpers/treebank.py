"""The nltk_treebank dataset without ../shared: a dataset from parameters, tiny corpora,
NLTK's package layout faked, and an NLTK that sees nothing and cannot download."""
from __future__ import annotations

import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Iterator

import nltk
import nltk.tag.mapping
import pytest

from regsuite.plugins.datasets.nltk_treebank import NLTKTreebank, write_tiny_corpus

# The tiny grammar's words in Penn Treebank tags, and their universal tags (en-ptb.map lines).
PTB = {"DET": "DT", "ADJ": "JJ", "NOUN": "NN", "VERB": "VBZ", "ADV": "RB", ".": "."}


def dataset(**params) -> NLTKTreebank:
    return NLTKTreebank(NLTKTreebank.Params(**params))


def write_corpus(folder: Path, lines: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "corpus.pos").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def write_fake_nltk_data(folder: Path, sentences: int = 40) -> Path:
    """NLTK's package layout (corpora/treebank.zip, taggers/universal_tagset.zip) holding
    bracketed parses of the tiny grammar, so the treebank path runs without ../shared."""
    corpus = write_tiny_corpus(folder / "plain", sentences=sentences, files=1)
    trees = []
    for line in (corpus / "part0.pos").read_text().split("\n"):
        if line:
            leaves = " ".join(f"({PTB[tag]} {word})" for word, tag in (t.rsplit("/", 1) for t in line.split()))
            trees.append(f"( (S {leaves} ))")
    (folder / "corpora").mkdir(parents=True)
    (folder / "taggers").mkdir()
    with zipfile.ZipFile(folder / "corpora" / "treebank.zip", "w") as z:
        z.writestr("treebank/combined/wsj_0001.mrg", "\n".join(trees) + "\n")
    with zipfile.ZipFile(folder / "taggers" / "universal_tagset.zip", "w") as z:
        z.writestr("universal_tagset/en-ptb.map", "".join(f"{ptb}\t{u}\n" for u, ptb in PTB.items()))
    return folder


def isolate_nltk(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict]:
    """The body of the ``isolated_nltk`` fixture (conftest.py): NLTK sees only $NLTK_DATA (an
    empty folder), downloads fail fast, and the fake tag mapping loaded here does not leak into
    other tests (NLTK caches mappings per process)."""
    empty = tmp_path / "nltk_data"
    empty.mkdir()
    monkeypatch.setenv("NLTK_DATA", str(empty))
    monkeypatch.setattr(nltk.data, "path", [])
    monkeypatch.setattr(nltk.tag.mapping, "_MAPPINGS", defaultdict(nltk.tag.mapping._MAPPINGS.default_factory))
    nltk.data.clear_cache()  # nltk.data.load caches each file it read (the mapping, too)
    calls: list[tuple[str, str]] = []

    def offline(package, download_dir=None, **kwargs):
        calls.append((package, download_dir))
        raise ValueError("Error loading treebank: <urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(nltk, "download", offline)
    yield {"dir": empty, "calls": calls}
    nltk.data.clear_cache()
