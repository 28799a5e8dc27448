"""Tiny ImageNet (Stanford CS231n): 64×64 colour images of 200 ImageNet classes.

**Which classes.** ``classes = N`` takes the first N wnids of ``wnids.txt`` in sorted order
(the study used 25). ``wnids = [...]`` names them instead, and their order gives the labels
0..N-1; with ``wnids`` set, ``classes`` may be left out or must equal their number. Train =
the chosen classes' ``train/<wnid>/images/*.JPEG`` (500 each), val = their images in the
official ``val/`` split (50 each, from ``val/val_annotations.txt``). The test split has no
labels and is not used. Class names are the ``words.txt`` entries (e.g. "goldfish,
Carassius auratus").

**Where the data is.** The *data folder* is ``root``, else ``$REGSUITE_DATA``, else
``~/.cache/regsuite/data`` (``$XDG_CACHE_HOME`` honoured). ``root`` may also name a zip
archive directly (any name, e.g. a subset like ``tiny-imagenet-200-mini.zip``). In a data
folder, the first of these is used:

1. the folder itself, if it holds ``wnids.txt`` (``root`` points into the extracted set);
2. ``tiny-imagenet-200/`` (the extracted archive);
3. ``tiny-imagenet-200.zip`` (the archive, read in place: it is never extracted);
4. nothing: with ``download = true`` the archive is fetched from ``url`` into the data
   folder (rich progress bar, MD5 check, temporary file renamed when complete).

``regsuite data download tiny_imagenet [--dir FOLDER]`` does step 4 ahead of time (into
``FOLDER``, else the data folder), for runs without a network; it downloads nothing when the
data is already there, and checks the MD5 of an official archive it finds.

``md5`` guards the official archive: it is checked after a download and, before its first
decode, for any archive named like the file at ``url``; ``md5 = ""`` skips the check.
Archives of other names are read as they are. An archive with absolute or ``..`` entries is
refused before anything is read.

**Decoded once.** The chosen images are decoded (PIL; grayscale JPEGs become RGB) into uint8
N×3×64×64 arrays and cached under ``cache_dir`` (default
``~/.cache/regsuite/decoded/tiny_imagenet``), keyed by the source files (an archive's name,
size and mtime; an extracted folder's names, sizes and mtimes of every file used) and the
class selection. Later loads memory-map the cache (so parallel runs share its pages); delete
an entry or the folder to reclaim the space, but never edit its files in place.

**Less data.** ``train_fraction`` (a share of every class) or ``per_class`` (so many images
of every class) keep a class-balanced subsample of the training split, drawn by
``subset_seed`` (:func:`regsuite.api.balanced_subset`), never by the run seed: every set and
seed trains on the same images, and a class keeps the same images whichever other classes
are chosen. The official val split stays whole. The cache always holds the full decoded
split, so every subsample reuses one decode; the subsample is taken from it on each load,
and its fingerprint is computed from the subsampled data (the cached fingerprint is the full
split's). ``DataInfo.mean``/``std`` are the subsample's own statistics, as a user who had
only that data would compute them.
"""
from __future__ import annotations

import difflib
import io
import os
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

import numpy as np
import torch
from pydantic import Field, field_validator, model_validator

from regsuite import hookimpl
from regsuite.api import (
    NOT_IN_RUN_KEY,
    ClassSubsetParams,
    Data,
    DataInfo,
    Dataset,
    Split,
    balanced_subset,
    data_fingerprint,
)
from regsuite.datacache import (
    ArrayCache,
    CacheEntry,
    FileTree,
    FolderTree,
    ZipTree,
    archive_fingerprint,
    cache_key,
    channel_stats_uint8,
    decode_images,
    download,
    md5_of,
    user_cache_dir,
)
from regsuite.errors import DataError

OFFICIAL_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
OFFICIAL_MD5 = "90528d7ca1a48142e341f4ef8d21d0de"
FOLDER_NAME = "tiny-imagenet-200"
MARKER = "wnids.txt"
IMAGE_SIZE = (64, 64)
DATA_ENV = "REGSUITE_DATA"
CACHE_FORMAT = 2  # bump when the cached arrays change meaning (2: the data fingerprint in meta)
IMAGE_SUFFIXES = (".jpeg", ".jpg")


class TinyImageNetParams(ClassSubsetParams):
    root: Path | None = Field(None, json_schema_extra=NOT_IN_RUN_KEY, description=f"data folder or zip archive, relative to the working directory (default: ${DATA_ENV}, else the user cache)")
    classes: int = Field(25, ge=1, description="use the first N wnids in sorted order")
    wnids: list[str] | None = Field(None, min_length=1, description="use these wnids, in this order (labels follow it)")
    url: str = Field(OFFICIAL_URL, json_schema_extra=NOT_IN_RUN_KEY, description="where to download the archive from")
    md5: str = Field(OFFICIAL_MD5, pattern=r"^([0-9a-fA-F]{32})?$", description='MD5 of the archive at url ("" skips the check)')
    download: bool = Field(True, json_schema_extra=NOT_IN_RUN_KEY, description="download the archive when the data folder has no data")
    cache_dir: Path | None = Field(None, json_schema_extra=NOT_IN_RUN_KEY, description="where decoded arrays are cached (default: the user cache)")

    @model_validator(mode="before")
    @classmethod
    def classes_follow_wnids(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("wnids"), list) and "classes" not in data:
            data = {**data, "classes": len(data["wnids"])}
        return data

    @field_validator("md5")
    @classmethod
    def lower_case(cls, md5: str) -> str:
        return md5.lower()

    @field_validator("wnids")
    @classmethod
    def wnids_match_classes(cls, wnids: list[str] | None, info) -> list[str] | None:
        if wnids is None:
            return None
        wnids = [w.strip() for w in wnids]
        if any(not w for w in wnids):
            raise ValueError("a wnid is empty")
        repeated = sorted({w for w in wnids if wnids.count(w) > 1})
        if repeated:
            raise ValueError(f"wnids repeat {', '.join(repeated)}")
        classes = info.data.get("classes")
        if classes is not None and classes != len(wnids):
            raise ValueError(f"{len(wnids)} wnids given but classes = {classes}: set one of them, or make them agree")
        return wnids

    @property
    def archive_name(self) -> str:
        return PurePosixPath(urlparse(self.url).path).name or f"{FOLDER_NAME}.zip"

    @property
    def selection(self) -> dict[str, Any]:
        return {"wnids": self.wnids} if self.wnids is not None else {"classes": self.classes}


@dataclass
class Source:
    """Where the files are, before anything is read from them."""

    path: Path
    is_archive: bool
    verify_md5: str | None = None  # checked before the first decode from this archive

    def open(self) -> FileTree:
        return ZipTree(self.path, MARKER) if self.is_archive else FolderTree(self.path)


@dataclass
class Plan:
    """The chosen classes and the files of each split (relative to the dataset folder)."""

    wnids: list[str]
    train: list[tuple[str, int]]
    val: list[tuple[str, int]]
    text_files: tuple[str, ...] = ("wnids.txt", "words.txt", "val/val_annotations.txt")

    @property
    def files(self) -> list[str]:
        return [*self.text_files, *(rel for rel, _ in self.train), *(rel for rel, _ in self.val)]


class TinyImageNet(Dataset):
    """Tiny ImageNet 64×64, the first N classes (or named wnids); official train / val splits."""

    name = "tiny_imagenet"
    task = "image_classification"
    Params = TinyImageNetParams

    @classmethod
    def smoke_params(cls, workdir: Path) -> dict[str, Any]:
        archive = write_tiny_layout(workdir / "tiny_imagenet", archive="tiny-smoke.zip")
        return {"root": str(archive), "classes": 2, "download": False, "cache_dir": str(workdir / "tiny_imagenet_cache")}

    def prepare(self) -> Path:
        """Make sure the data is on disk (downloading it if allowed); return where it is."""
        return locate(self.params).path

    @classmethod
    def download(cls, directory: Path | None = None) -> list[str]:
        """Fetch the official archive (``OFFICIAL_URL``, checked against ``OFFICIAL_MD5``) into
        ``directory``, else the data folder (``$REGSUITE_DATA``, else the user cache), unless
        Tiny ImageNet is there already (extracted, or an archive: its MD5 is checked)."""
        params = TinyImageNetParams(root=directory, url=OFFICIAL_URL, md5=OFFICIAL_MD5)
        found = find(params)
        if found is not None:
            check_md5(found)
            lines = [f"Tiny ImageNet is already there, nothing downloaded: {found.path}"]
        else:
            lines = [f"downloaded the Tiny ImageNet archive ({params.url}): {cls(params).prepare()}"]
        default = data_folder(TinyImageNetParams())
        if directory is not None and Path(directory).expanduser().resolve() != default.resolve():
            lines.append(f"runs look in {default} unless told: export {DATA_ENV}={directory}, "
                         f'or set the dataset\'s root = "{directory}"')
        return lines

    def load(self) -> Data:
        return self.subsample(to_data(self.cached()))

    def fingerprint(self) -> str:
        """Kept in the decode cache for the full split: a cached load is not hashed again. A
        subsample (``train_fraction``, ``per_class``) is hashed as loaded."""
        entry = self.cached()
        if not self.params.subsampled:
            return entry.meta["fingerprint"]
        return data_fingerprint(self.subsample(to_data(entry)))

    def subsample(self, data: Data) -> Data:
        """``data`` with the training split cut to the class-balanced subsample the parameters
        ask for, and the subsample's own mean/std (``data`` itself when they ask for none)."""
        p = self.params
        if not p.subsampled:
            return data
        try:
            keep = balanced_subset(data.train.targets, fraction=p.train_fraction if p.per_class is None else None,
                                   per_class=p.per_class, seed=p.subset_seed, class_names=data.info.extras["wnids"])
        except DataError as exc:
            raise DataError(f"{self.name}.{exc.message}", hint=exc.hint) from None
        train = Split(data.train.inputs[keep], data.train.targets[keep])
        mean, std = channel_stats_uint8(train.inputs.numpy())
        info = replace(data.info, mean=tuple(mean), std=tuple(std))
        return Data(train=train, val=data.val, info=info, test=data.test)

    def cached(self) -> CacheEntry:
        """The decoded arrays, from the cache (decoding them first if they are not there)."""
        p = self.params
        source = locate(p)
        cache = ArrayCache(p.cache_dir or user_cache_dir() / "decoded" / self.name)
        if source.is_archive:  # the archive's identity is cheap; no need to open it on a hit
            key = cache_key(format=CACHE_FORMAT, source=archive_fingerprint(source.path), **p.selection)
            entry = cache.load(key)
            if entry is None:
                entry = decode_and_store(source, p, cache, key)
        else:
            with source.open() as tree:
                plan = make_plan(tree, p)
                key = cache_key(format=CACHE_FORMAT, source=tree.fingerprint(plan.files), wnids=plan.wnids)
                entry = cache.load(key) or decode_plan(tree, plan, cache, key)
        return entry


# ---------------------------------------------------------------------------- locating


def locate(p: TinyImageNetParams) -> Source:
    """Find the data (see the module docs for the order), downloading it if allowed."""
    found = find(p)
    if found is not None:
        return found
    base = data_folder(p)
    archive = base / p.archive_name
    if not p.download:
        raise DataError(
            f"no Tiny ImageNet data in {base}",
            hint=f"put {p.archive_name} (from {p.url}) or the extracted {FOLDER_NAME}/ folder there, or set download = true",
        )
    download(p.url, archive, p.md5 or None)
    return Source(archive, is_archive=True)


def find(p: TinyImageNetParams) -> Source | None:
    """The data on disk (steps 1-3 of the module docs), or None: it would be downloaded."""
    base = data_folder(p)
    if base.suffix.lower() == ".zip" or base.is_file():
        if not base.is_file():
            raise DataError(f"tiny_imagenet.root names an archive that does not exist: {base}")
        return Source(base, is_archive=True, verify_md5=md5_to_check(p, base))
    if (base / MARKER).is_file():
        return Source(base, is_archive=False)
    if (base / FOLDER_NAME).is_dir():
        return Source(base / FOLDER_NAME, is_archive=False)
    archive = base / p.archive_name
    if archive.is_file():
        return Source(archive, is_archive=True, verify_md5=md5_to_check(p, archive))
    return None


def data_folder(p: TinyImageNetParams) -> Path:
    if p.root is not None:
        return p.root.expanduser()
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    return user_cache_dir() / "data"


def md5_to_check(p: TinyImageNetParams, archive: Path) -> str | None:
    """The official archive's MD5 applies to archives under its name, not to subsets."""
    if archive.name != p.archive_name:
        return None
    return p.md5 or None


# ---------------------------------------------------------------------------- planning


def make_plan(tree: FileTree, p: TinyImageNetParams) -> Plan:
    wnids = choose_wnids(tree, p)
    labels = {wnid: label for label, wnid in enumerate(wnids)}
    train = []
    for wnid in wnids:
        folder = f"train/{wnid}/images"
        images = sorted(name for name in tree.list_files(folder) if name.lower().endswith(IMAGE_SUFFIXES))
        if not images:
            raise DataError(f"no training images in {tree.where(folder)}")
        train += [(f"{folder}/{name}", labels[wnid]) for name in images]
    return Plan(wnids, train, read_val(tree, labels))


def choose_wnids(tree: FileTree, p: TinyImageNetParams) -> list[str]:
    known = sorted({line.strip() for line in tree.read_text("wnids.txt").splitlines() if line.strip()})
    if not known:
        raise DataError(f"{tree.where('wnids.txt')} lists no wnids")
    if p.wnids is None:
        if p.classes > len(known):
            raise DataError(
                f"tiny_imagenet.classes = {p.classes}, but {tree.where('wnids.txt')} lists only {len(known)} classes",
                hint=f"use classes <= {len(known)}",
            )
        return known[: p.classes]
    for wnid in p.wnids:
        if wnid not in known:
            close = difflib.get_close_matches(wnid, known, n=1, cutoff=0.6)
            suggestion = f"did you mean {close[0]!r}? " if close else ""
            raise DataError(f"tiny_imagenet.wnids: {wnid!r} is not in {tree.where('wnids.txt')}: {suggestion}"
                            f"it lists {len(known)} wnids, e.g. {', '.join(known[:5])}")
    return list(p.wnids)


def class_names(tree: FileTree, wnids: list[str]) -> list[str]:
    """The words.txt entry of each wnid (the wnid itself if it has none).

    words.txt covers all 82,115 ImageNet synsets: each chosen wnid is looked up, not every
    line parsed.
    """
    text = "\n" + tree.read_text("words.txt").replace("\r\n", "\n") + "\n"
    names = []
    for wnid in wnids:
        start = text.find(f"\n{wnid}\t")
        line = text[start + 1: text.find("\n", start + 1)] if start >= 0 else ""
        names.append(line.partition("\t")[2].strip() or wnid)
    return names


def read_val(tree: FileTree, labels: dict[str, int]) -> list[tuple[str, int]]:
    where = tree.where("val/val_annotations.txt")
    available = set(tree.list_files("val/images"))
    val = []
    for number, line in enumerate(tree.read_text("val/val_annotations.txt").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2 or not fields[0] or not fields[1]:
            raise DataError(f"{where}, line {number}: expected '<file>\\t<wnid>\\t…', got {line!r}")
        name, wnid = fields[0].strip(), fields[1].strip()
        if wnid not in labels:
            continue
        if name not in available:
            raise DataError(f"missing file: {tree.where('val/images/' + name)} (listed in {where}, line {number})")
        val.append((f"val/images/{name}", labels[wnid]))
    found = {label for _, label in val}
    missing = [wnid for wnid, label in labels.items() if label not in found]
    if missing:
        raise DataError(f"{where} lists no validation images for {', '.join(missing)}")
    return val


# ---------------------------------------------------------------------------- decoding


def check_md5(source: Source) -> None:
    """Refuse an archive named like the official one whose MD5 is not the official one's."""
    if source.verify_md5:
        actual = md5_of(source.path)
        if actual != source.verify_md5:
            raise DataError(
                f"{source.path} fails its checksum: MD5 {actual}, expected {source.verify_md5}",
                hint="it is incomplete or not the official archive: delete it to download it again "
                     '(or set md5 = "" if it is a deliberate variant)',
            )


def decode_and_store(source: Source, p: TinyImageNetParams, cache: ArrayCache, key: str) -> CacheEntry:
    check_md5(source)
    with source.open() as tree:
        return decode_plan(tree, make_plan(tree, p), cache, key)


def decode_plan(tree: FileTree, plan: Plan, cache: ArrayCache, key: str) -> CacheEntry:
    train_x = decode_images(tree, [rel for rel, _ in plan.train], IMAGE_SIZE)
    val_x = decode_images(tree, [rel for rel, _ in plan.val], IMAGE_SIZE)
    mean, std = channel_stats_uint8(train_x)
    arrays = {
        "train_images": train_x,
        "train_labels": np.array([label for _, label in plan.train], dtype=np.int64),
        "val_images": val_x,
        "val_labels": np.array([label for _, label in plan.val], dtype=np.int64),
    }
    meta = {"wnids": plan.wnids, "class_names": class_names(tree, plan.wnids), "mean": mean, "std": std}
    meta["fingerprint"] = data_fingerprint(to_data(CacheEntry(arrays, meta)))
    cache.store(key, arrays, meta)
    return cache.load(key) or CacheEntry(arrays, meta)  # the latter if the cache is not writable


def to_data(entry: CacheEntry) -> Data:
    a, meta = entry.arrays, entry.meta
    info = DataInfo(
        num_classes=len(meta["wnids"]),
        input_shape=(3, *IMAGE_SIZE),
        class_names=list(meta["class_names"]),
        mean=tuple(meta["mean"]),
        std=tuple(meta["std"]),
        extras={"wnids": list(meta["wnids"])},
    )
    return Data(
        train=Split(torch.from_numpy(a["train_images"]), torch.from_numpy(a["train_labels"])),
        val=Split(torch.from_numpy(a["val_images"]), torch.from_numpy(a["val_labels"])),
        info=info,
    )


# ---------------------------------------------------------------------------- tiny data


def write_tiny_layout(
    dest: Path,
    wnids: tuple[str, ...] = ("n01443537", "n01629819", "n01641577"),
    train_per_class: int = 4,
    val_per_class: int = 2,
    archive: str | None = None,
) -> Path:
    """Write a tiny Tiny ImageNet in the official layout under ``dest``; return its path.

    Each class gets its own colour (plus noise), so a model can learn it. The first training
    image of the first class is a grayscale JPEG, as a few real ones are. There are also the
    real layout's extras that a loader must skip: ``*_boxes.txt``, a ``test/`` split, and
    ``words.txt`` lines for classes not in ``wnids.txt``. ``wnids.txt`` is not sorted.
    With ``archive`` set, the layout is written into ``dest/<archive>`` (a zip with a
    ``tiny-imagenet-200/`` top folder and folder entries, like the official one) instead.
    """
    files = tiny_layout_files(wnids, train_per_class, val_per_class)
    dest.mkdir(parents=True, exist_ok=True)
    if archive is not None:
        path = dest / archive
        with zipfile.ZipFile(path, "w") as zf:
            folders = sorted({str(PurePosixPath(FOLDER_NAME, rel).parent) for rel in files})
            for folder in folders:
                zf.writestr(folder + "/", b"")
            for rel, data in files.items():
                zf.writestr(f"{FOLDER_NAME}/{rel}", data)
        return path
    top = dest / FOLDER_NAME
    for rel, data in files.items():
        (top / rel).parent.mkdir(parents=True, exist_ok=True)
        (top / rel).write_bytes(data)
    return top


def tiny_layout_files(wnids: tuple[str, ...], train_per_class: int, val_per_class: int) -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    files: dict[str, bytes] = {
        "wnids.txt": "".join(f"{w}\n" for w in reversed(wnids)).encode(),
        "words.txt": "".join(f"{w}\tclass {i}, tiny class {i}\n" for i, w in enumerate(("n00000001", *wnids))).encode(),
    }
    annotations = []
    for index, wnid in enumerate(wnids):
        colour = rng.integers(0, 256, size=3)
        files[f"train/{wnid}/{wnid}_boxes.txt"] = b""
        for i in range(train_per_class):
            gray = index == 0 and i == 0
            files[f"train/{wnid}/images/{wnid}_{i}.JPEG"] = tiny_jpeg(rng, colour, gray)
        for i in range(val_per_class):
            name = f"val_{index * val_per_class + i}.JPEG"
            files[f"val/images/{name}"] = tiny_jpeg(rng, colour, gray=False)
            annotations.append(f"{name}\t{wnid}\t0\t0\t63\t63\n")
    files["val/val_annotations.txt"] = "".join(annotations).encode()
    files["test/images/test_0.JPEG"] = tiny_jpeg(rng, np.array([128, 128, 128]), gray=False)
    return files


def tiny_jpeg(rng: np.random.Generator, colour: np.ndarray, gray: bool) -> bytes:
    from PIL import Image

    pixels = np.clip(colour + rng.normal(0, 25, size=(*IMAGE_SIZE, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    if gray:
        image = image.convert("L")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


@hookimpl
def regsuite_register_datasets():
    return [TinyImageNet]
