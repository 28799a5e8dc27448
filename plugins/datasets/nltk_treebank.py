"""NLTK's sample of the Penn Treebank (3,914 WSJ sentences, 100,676 tokens), POS-tagged with
the 12 universal tags, for the ``sequence_labelling`` task.

Where the data comes from
    The NLTK packages ``treebank`` (``corpora/treebank.zip``) and ``universal_tagset``
    (``taggers/universal_tagset.zip``), read exactly as ``nltk.corpus.treebank.tagged_sents(
    tagset="universal")`` reads them (the same reader class and arguments, looked up afresh
    on every load because NLTK's lazy ``nltk.corpus.treebank`` binds to the first folder it
    finds). NLTK searches ``$NLTK_DATA`` (read when the data loads), then its usual folders
    (``~/nltk_data``, ``/usr/share/nltk_data``, …). About 6.6 % of the tokens are the
    treebank's empty elements (``*-1``, ``*T*-1``, ``0``), tagged ``X``; they are kept, as
    ``tagged_sents`` gives them.

    ``regsuite data download nltk_treebank`` calls ``nltk.download`` for both packages into
    ``--dir``, else the first folder of ``$NLTK_DATA``, else NLTK's default download folder
    (``~/nltk_data`` or a writable system folder). A run whose packages are missing does the
    same first (``download = false`` turns that off); offline, it fails with one message
    naming that command and ``NLTK_DATA``.

    ``corpus_root`` reads any corpus in NLTK's tagged format instead (``word/TAG`` tokens,
    one sentence per line, blank lines between paragraphs) with NLTK's
    ``TaggedCorpusReader``; tags are used as written.

Splits, vocabulary, tags
    Sentences are shuffled by ``split_seed`` (NumPy's PCG64, fixed across run seeds and
    stored with every result in the resolved config) and cut into train / val / test by
    ``val_fraction`` and ``test_fraction`` (default 80 / 10 / 10: 3,132 / 391 / 391). A split
    that would be empty is an error. The vocabulary comes from the training split only:
    index 0 is ``<pad>``, 1 is ``<unk>``, then words by descending count; words seen fewer
    than ``min_count`` times in training, and every word unseen there, map to ``<unk>``.
    The tag inventory is every tag of the corpus (all splits): tags are the annotation's
    label set, not a feature, and a tag that occurs only in val or test then stays a class
    the model can never learn, so its tokens count as errors instead of crashing the run
    (they are listed in ``DataInfo.extras["tags_unseen_in_train"]``). On the treebank NLTK's
    mapping turns a Penn tag it does not know into ``X``.

Less data
    ``train_fraction`` keeps that share of the training sentences (at least one), drawn by
    ``subset_seed`` (:func:`regsuite.api.random_subset`), never by the run seed, so every set
    and seed trains on the same sentences; they keep their order, and val and test stay whole.
    A sentence holds many tags, so there is no per-class balance here. The vocabulary (and
    ``tags_unseen_in_train``) come from the kept sentences, as they would for a user who had
    only that data; ``input_shape`` stays the longest sentence of the corpus.
"""
from __future__ import annotations

import contextlib
import inspect
import io
import os
import random
import socket
import zipfile
import zlib
from collections import Counter
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from pydantic import Field, model_validator

from regsuite import hookimpl
from regsuite.api import IGNORE_TARGET, KEYED_UNLESS_DEFAULT, Data, DataInfo, Dataset, Params, Split, random_subset
from regsuite.datacache import MAX_TEXT_BYTES, check_declared_sizes
from regsuite.errors import DataError

PAD, UNK = "<pad>", "<unk>"
PAD_INDEX, UNK_INDEX = 0, 1
DOWNLOAD_COMMAND = "regsuite data download nltk_treebank"
DOWNLOAD_TIMEOUT_S = 30.0  # per network operation, so that a blocked network fails fast
#: NLTK package → its file, and where its root lies (zip first, then an unpacked folder, as
#: NLTK's own corpus loader looks).
PACKAGES = {
    "treebank": ("corpora/treebank.zip", ("corpora/treebank.zip/treebank/combined/", "corpora/treebank/combined")),
    "universal_tagset": ("taggers/universal_tagset.zip",
                         ("taggers/universal_tagset.zip/universal_tagset/", "taggers/universal_tagset")),
}
OFFLINE_HINT = ("nltk.download fetches from raw.githubusercontent.com; without a network, copy corpora/treebank.zip "
                "and taggers/universal_tagset.zip from a machine that has them into a folder and set NLTK_DATA to it")
CORRUPT_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, UnicodeDecodeError)

Sentence = tuple[tuple[str, str], ...]
_SENTENCES: dict[tuple, list[Sentence]] = {}  # parsed corpora by source fingerprint (3 s each)


class NLTKTreebankParams(Params):
    lowercase: bool = Field(True, description="lower-case words before the vocabulary lookup")
    min_count: int = Field(1, ge=1, description="words seen fewer times in the training split map to <unk>")
    val_fraction: float = Field(0.1, gt=0, lt=1, description="share of sentences for validation")
    test_fraction: float = Field(0.1, ge=0, lt=1, description="share of sentences for the test split (0 = none)")
    split_seed: int = Field(0, description="seed of the sentence shuffle before splitting (fixed across run seeds)")
    download: bool = Field(True, description="fetch missing NLTK packages with nltk.download before giving up")
    corpus_root: str | None = Field(None, description="folder of a word/TAG corpus to read instead of the treebank")
    fileids: str = Field(r"(?!\.).*", description="regex of the files under corpus_root to read")
    train_fraction: float = Field(1.0, gt=0, le=1, json_schema_extra=KEYED_UNLESS_DEFAULT,
                                  description="keep this share of the training sentences (val and test untouched)")
    subset_seed: int = Field(0, ge=0, json_schema_extra=KEYED_UNLESS_DEFAULT,
                             description="seed of the subsample, apart from the run seed so every set sees the same subset")

    @model_validator(mode="after")
    def room_for_training(self) -> "NLTKTreebankParams":
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("val_fraction + test_fraction must leave sentences for training (sum < 1)")
        return self


class NLTKTreebank(Dataset):
    """NLTK's Penn Treebank sample, universal POS tags (3,914 sentences, 12 tags), or a word/TAG corpus."""

    name = "nltk_treebank"
    task = "sequence_labelling"
    Params = NLTKTreebankParams

    def load(self) -> Data:
        p = self.params
        sentences = read_corpus(p)
        train, val, test = split_sentences(sentences, p)
        if p.train_fraction != 1:
            train = [train[i] for i in random_subset(len(train), fraction=p.train_fraction, seed=p.subset_seed).tolist()]
        vocab = build_vocabulary(train, p.lowercase, p.min_count)
        tags = sorted({tag for sentence in sentences for _, tag in sentence})
        tag_index = {tag: i for i, tag in enumerate(tags)}
        encoded = {name: encode(part, vocab, tag_index, p.lowercase) for name, part in
                   (("train", train), ("val", val), ("test", test)) if part}
        seen = {tag for sentence in train for _, tag in sentence}
        info = DataInfo(
            num_classes=len(tags),
            input_shape=(max(len(s) for s in sentences),),
            class_names=tags,
            vocab_size=len(vocab),
            pad_index=PAD_INDEX,
            unk_index=UNK_INDEX,
            extras={
                "tags_unseen_in_train": [t for t in tags if t not in seen],
                "sentences": {name: len(part) for name, part in (("train", train), ("val", val), ("test", test))},
                "unknown_rate": {name: unknown_rate(split) for name, split in encoded.items()},
            },
        )
        return Data(train=encoded["train"], val=encoded["val"], test=encoded.get("test"), info=info)

    @classmethod
    def download(cls, directory: Path | None = None) -> list[str]:
        target = Path(directory) if directory is not None else default_download_dir()
        fetch(list(PACKAGES), target)
        lines = [f"downloaded NLTK packages {', '.join(PACKAGES)} into {target}"]
        if not on_nltk_path(target):
            lines.append(f"runs look in $NLTK_DATA and NLTK's usual folders: export NLTK_DATA={target}")
        return lines

    @classmethod
    def smoke_params(cls, workdir: Path) -> dict[str, Any]:
        return {"corpus_root": str(write_tiny_corpus(workdir / "tiny_tagged_corpus"))}


# ---------------------------------------------------------------------------- reading


def read_corpus(p: NLTKTreebankParams) -> list[Sentence]:
    if p.corpus_root is not None:
        reader = tagged_reader(Path(p.corpus_root), p.fileids)
        tagset = None
    else:
        reader = treebank_reader(p.download)
        tagset = "universal"
    key = (p.corpus_root, p.fileids if p.corpus_root else None, tagset, fingerprint(reader))
    if key not in _SENTENCES:
        _SENTENCES[key] = parse(reader, tagset, where=p.corpus_root or "the NLTK treebank")
    return _SENTENCES[key]


def treebank_reader(download: bool):
    from nltk.corpus.reader import BracketParseCorpusReader

    roots = find_packages(download)
    for root in roots.values():
        check_sizes(root)
    # nltk.corpus.treebank is this reader with these arguments (see nltk/corpus/__init__.py).
    return BracketParseCorpusReader(roots["treebank"], r"wsj_.*\.mrg", tagset="wsj", encoding="ascii")


def tagged_reader(root: Path, fileids: str):
    from nltk.corpus.reader import TaggedCorpusReader

    if not root.is_dir():
        raise DataError(f"nltk_treebank.corpus_root {root} is not a folder",
                        hint="point corpus_root at a folder of word/TAG files, or leave it out for the treebank")
    authorize(root.resolve())
    reader = TaggedCorpusReader(str(root.resolve()), fileids, encoding="utf-8")
    if not reader.fileids():
        raise DataError(f"no file under {root} matches nltk_treebank.fileids = {fileids!r}",
                        hint="fix the regex, or put word/TAG files in the folder")
    return reader


def parse(reader, tagset: str | None, where: str) -> list[Sentence]:
    try:
        sentences = [tuple(sentence) for sentence in reader.tagged_sents(tagset=tagset) if len(sentence) > 0]
    except CORRUPT_ERRORS as exc:
        raise corrupt_error(exc) from None
    except LookupError as exc:  # the tag mapping's package went missing after the check
        raise DataError(f"NLTK data for {where} is incomplete: {first_line(exc)}",
                        hint=f"run `{DOWNLOAD_COMMAND}`, or set NLTK_DATA to a complete folder") from None
    for sentence in sentences:
        for word, tag in sentence:
            if not tag:
                raise DataError(f"{where}: the token {word!r} has no tag (tokens must be written word/TAG)",
                                hint="fix the corpus file; see NLTK's TaggedCorpusReader format")
    if not sentences:
        raise DataError(f"{where} holds no tagged sentences", hint="check the corpus files")
    return sentences


#: NLTK reads its packages' zips itself, whole files at a time: their members' declared sizes
#: are checked first (the treebank's largest file is 132 KB, the whole package 6 MB).
MAX_MEMBER_BYTES = MAX_TEXT_BYTES
MAX_PACKAGE_BYTES = 1 << 30


def check_sizes(root) -> None:
    """Refuse a package zip whose members declare absurd sizes, before NLTK inflates them."""
    if not hasattr(root, "zipfile"):
        return  # an unpacked folder: its files are only as large as they are on disk
    try:
        check_declared_sizes(root.zipfile, root.zipfile.filename, MAX_MEMBER_BYTES, MAX_PACKAGE_BYTES,
                             prefix=root.entry.partition("/")[0] + "/")
    except DataError as exc:
        raise DataError(exc.message, hint=f"delete it and run `{DOWNLOAD_COMMAND}`, or set NLTK_DATA to a folder "
                                          "with a good copy") from None


def fingerprint(reader) -> tuple:
    """Size and modification time of every file behind ``reader``: a changed corpus is re-read."""
    root = reader.root
    if hasattr(root, "zipfile"):
        files = [root.zipfile.filename]
    else:
        files = [os.path.join(root.path, fileid) for fileid in reader.fileids()]
    return tuple((f, os.stat(f).st_size, os.stat(f).st_mtime_ns) for f in files)


# ---------------------------------------------------------------------------- finding and fetching


def nltk_path() -> list[str]:
    """NLTK's search path, with ``$NLTK_DATA`` as it is now in front (NLTK reads it once, on
    import). NLTK's data sandbox also trusts exactly these folders."""
    import nltk

    for folder in reversed([f for f in os.environ.get("NLTK_DATA", "").split(os.pathsep) if f]):
        if folder not in nltk.data.path:
            nltk.data.path.insert(0, folder)
    return list(nltk.data.path)


def on_nltk_path(folder: Path) -> bool:
    return any(Path(p).resolve() == folder.resolve() for p in nltk_path() if isinstance(p, str))


def authorize(folder: Path) -> None:
    """Let NLTK read ``folder``: its sandbox reads only from folders on ``nltk.data.path``."""
    import nltk

    if not on_nltk_path(folder):
        nltk.data.path.append(str(folder))


def find(package: str):
    """The root of an installed NLTK package, or None."""
    import nltk

    nltk_path()
    for resource in PACKAGES[package][1]:
        try:
            return nltk.data.find(resource)
        except LookupError:
            continue
        except CORRUPT_ERRORS as exc:
            raise corrupt_error(exc, package) from None
    return None


def find_packages(download: bool) -> dict[str, Any]:
    roots = {package: find(package) for package in PACKAGES}
    missing = [package for package, root in roots.items() if root is None]
    if not missing:
        return roots
    # The fix goes on the first line: a failed run in a grid shows only that line.
    fix = (f"run `{DOWNLOAD_COMMAND}` where the network is reachable, or set NLTK_DATA to a folder holding "
           "corpora/treebank.zip and taggers/universal_tagset.zip")
    searched = "NLTK searched: " + ", ".join(p for p in nltk_path() if isinstance(p, str))
    names = ", ".join(missing)
    if not download:
        raise DataError(f"NLTK package(s) {names} not found: {fix}", hint=searched)
    try:
        fetch(missing, default_download_dir())
    except DataError as exc:
        raise DataError(f"NLTK package(s) {names} not found, and downloading them failed: {fix}",
                        details=[exc.message], hint=searched) from None
    roots.update({package: find(package) for package in missing})
    if any(root is None for root in roots.values()):
        raise DataError(f"nltk.download reported success, but NLTK still cannot find {names}: {fix}", hint=searched)
    return roots


def default_download_dir() -> Path:
    """The first folder of ``$NLTK_DATA``, else NLTK's own default download folder."""
    import nltk

    folders = [f for f in os.environ.get("NLTK_DATA", "").split(os.pathsep) if f]
    if folders:
        return Path(folders[0])
    return Path(nltk.downloader.Downloader().default_download_dir())


def fetch(packages: Sequence[str], target: Path) -> None:
    """``nltk.download`` each package into ``target``; one DataError if any fails."""
    import nltk

    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the NLTK data folder {target}: {exc}") from None
    errors = io.StringIO()
    quiet = {"print_error_to": errors} if "print_error_to" in inspect.signature(nltk.download).parameters else {}
    for package in packages:
        try:
            with socket_timeout(DOWNLOAD_TIMEOUT_S), contextlib.redirect_stdout(errors):
                ok = nltk.download(package, download_dir=str(target), quiet=True, raise_on_error=True, **quiet)
        except Exception as exc:  # nltk raises ValueError, URLError, OSError … for a failed download
            raise DataError(f"nltk.download({package!r}) into {target} failed: {first_line(exc)}",
                            hint=OFFLINE_HINT) from None
        if not ok:
            raise DataError(f"nltk.download({package!r}) into {target} failed: {first_line(errors.getvalue())}",
                            hint=OFFLINE_HINT)
    authorize(target)


@contextlib.contextmanager
def socket_timeout(seconds: float) -> Iterator[None]:
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def corrupt_error(exc: BaseException, package: str | None = None) -> DataError:
    names = [package] if package else list(PACKAGES)
    folders = [folder for folder in nltk_path() if isinstance(folder, str)]
    files = [path for name in names for folder in folders
             if os.path.isfile(path := os.path.join(folder, PACKAGES[name][0]))]
    where = " or ".join(files[:1] if package else files) or "an NLTK package file"
    return DataError(f"{where} is corrupt ({type(exc).__name__}: {first_line(exc)}): delete it and run "
                     f"`{DOWNLOAD_COMMAND}`, or set NLTK_DATA to a folder with a good copy")


def first_line(value: object) -> str:
    lines = [line.strip(" *") for line in str(value).strip().splitlines() if line.strip(" *")]
    return lines[0] if lines else type(value).__name__


# ---------------------------------------------------------------------------- splits and tensors


def split_sentences(sentences: list[Sentence], p: NLTKTreebankParams) -> tuple[list[Sentence], ...]:
    n = len(sentences)
    n_val, n_test = round(n * p.val_fraction), round(n * p.test_fraction)
    n_train = n - n_val - n_test
    wanted = {"train": n_train, "val": n_val, "test": n_test if p.test_fraction > 0 else 1}
    empty = [name for name, size in wanted.items() if size < 1]
    if empty:
        raise DataError(
            f"the corpus has {n} sentences: a {1 - p.val_fraction - p.test_fraction:.0%} / {p.val_fraction:.0%} / "
            f"{p.test_fraction:.0%} split leaves the {' and '.join(empty)} split empty",
            hint="use a larger corpus, or raise val_fraction / test_fraction (test_fraction = 0 drops the test split)",
        )
    order = np.random.default_rng(p.split_seed).permutation(n)
    parts = np.split(order, [n_train, n_train + n_val])
    return tuple([sentences[i] for i in part] for part in parts)


def normalize(word: str, lowercase: bool) -> str:
    return word.lower() if lowercase else word


def build_vocabulary(train: list[Sentence], lowercase: bool, min_count: int) -> dict[str, int]:
    counts = Counter(normalize(word, lowercase) for sentence in train for word, _ in sentence)
    kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return {PAD: PAD_INDEX, UNK: UNK_INDEX, **{w: i for i, w in enumerate(kept, start=2)}}


def encode(sentences: list[Sentence], vocab: dict[str, int], tag_index: dict[str, int], lowercase: bool) -> Split:
    longest = max(len(s) for s in sentences)
    inputs = np.full((len(sentences), longest), PAD_INDEX, dtype=np.int64)
    targets = np.full((len(sentences), longest), IGNORE_TARGET, dtype=np.int64)
    for row, sentence in enumerate(sentences):
        inputs[row, : len(sentence)] = [vocab.get(normalize(w, lowercase), UNK_INDEX) for w, _ in sentence]
        targets[row, : len(sentence)] = [tag_index[t] for _, t in sentence]
    return Split(torch.from_numpy(inputs), torch.from_numpy(targets))


def unknown_rate(split: Split) -> float:
    real = split.inputs != PAD_INDEX
    return float((split.inputs == UNK_INDEX).sum()) / max(int(real.sum()), 1)


# ---------------------------------------------------------------------------- tiny corpora for tests


TINY_GRAMMAR = {
    "DET": ["the", "a", "every", "this"],
    "ADJ": ["small", "red", "quick", "old", "happy"],
    "NOUN": ["dog", "cat", "bird", "child", "farmer", "tree", "house"],
    "VERB": ["sees", "likes", "finds", "chases", "paints"],
    "ADV": ["quickly", "often", "quietly"],
}


def write_tiny_corpus(directory: Path, sentences: int = 60, seed: int = 0, files: int = 2) -> Path:
    """Write a small learnable corpus in NLTK's word/TAG format (DET ADJ? NOUN VERB DET NOUN
    ADV? .) into ``directory``; return it. Tests and smoke runs read it with ``corpus_root``."""
    rng = random.Random(seed)
    pick = lambda tag: (rng.choice(TINY_GRAMMAR[tag]), tag)  # noqa: E731
    lines = []
    for _ in range(sentences):
        tokens = [pick("DET")] + ([pick("ADJ")] if rng.random() < 0.5 else []) + [pick("NOUN"), pick("VERB"),
                  pick("DET"), pick("NOUN")] + ([pick("ADV")] if rng.random() < 0.3 else []) + [(".", ".")]
        lines.append(" ".join(f"{w}/{t}" for w, t in tokens))
    directory.mkdir(parents=True, exist_ok=True)
    for k in range(files):
        (directory / f"part{k}.pos").write_text("\n".join(lines[k::files]) + "\n", encoding="utf-8")
    return directory


@hookimpl
def regsuite_register_datasets():
    return [NLTKTreebank]
