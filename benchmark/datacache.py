"""Getting dataset files onto disk and decoded arrays into memory, safely and once.

Generic pieces that dataset plugins share:

- :func:`user_cache_dir` — regsuite's per-user cache (``$XDG_CACHE_HOME/regsuite``).
- :func:`download` — a streamed download with a rich progress bar and an MD5 check, written
  to a temporary file that is renamed into place only when complete and verified.
  (torchvision's ``download_url`` writes straight to the final name, so an interrupted
  download leaves a partial file behind that a later run may take for the archive, and it
  shows a tqdm bar.)
- :class:`FolderTree` / :class:`ZipTree` — read a dataset's files from an extracted folder or
  straight from its zip archive, with one interface. A zip is never extracted: every member
  name is checked before anything is read, and an archive with absolute or ``..`` entries is
  refused (``zipfile.extractall`` would silently rewrite such names, torchvision's
  ``extract_archive`` passes them on). Every file has a size limit, checked against its
  declared size before it is read (a 1 MB zip can declare a 1 GB member) and enforced while
  reading (a header can lie): ``max_member_bytes`` for data files such as images,
  ``max_text_bytes`` for text files such as annotations.
- :func:`decode_images` — PIL decoding of many small images into one uint8 N×3×H×W array,
  on a thread pool (PIL releases the GIL while decoding).
- :class:`ArrayCache` — decoded arrays on disk, one directory per key, written under a
  temporary name and renamed into place: an entry is complete or absent. Entries load as
  copy-on-write memory maps, so a cached load costs page-table work, not a copy.
"""
from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from regsuite import atomic
from regsuite.errors import DataError

DOWNLOAD_TIMEOUT_S = 60
CHUNK_BYTES = 1 << 20
DECODE_CHUNK = 256  # images per thread-pool task

#: Default size limits of one file of a dataset. An image of Tiny ImageNet is ~2 KB (a 64×64
#: JPEG); Tiny ImageNet's words.txt, the largest annotation file, is 2.6 MB.
MAX_MEMBER_BYTES = 16 << 20
MAX_TEXT_BYTES = 64 << 20
#: Default limit of the bytes :func:`decode_images` holds at once (Tiny ImageNet's 110,000
#: JPEGs are ~250 MB): many members, each under its limit, are no way round the limits either.
MAX_TOTAL_BYTES = 8 << 30


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/regsuite``, else ``~/.cache/regsuite``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "regsuite"


# ---------------------------------------------------------------------------- download


def md5_of(path: Path) -> str:
    """What torchvision's ``calculate_md5`` computes, without importing torchvision (seconds)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, dest: Path, md5: str | None, *, quiet: bool = False) -> Path:
    """Download ``url`` to ``dest``; check its MD5 (when given) before it gets that name.

    Raises :class:`DataError` when the server cannot be reached (saying where to put the file
    by hand) or the file fails its checksum; nothing is left behind in either case.
    """
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    except OSError as exc:
        raise DataError(
            f"cannot write the download to {dest.parent}: {exc}",
            hint=f"choose a writable data folder, or fetch {url} yourself and put it at {dest}",
        ) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            stream_to(url, out, dest, quiet)
        if md5:
            actual = md5_of(tmp)
            if actual != md5:
                raise DataError(
                    f"the download from {url} fails its checksum: MD5 {actual}, expected {md5}",
                    hint=f"nothing was kept; try again, or fetch the file yourself and put it at {dest}",
                )
        os.chmod(tmp, 0o644)  # mkstemp made it private; the archive is ordinary data
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def stream_to(url: str, out: io.BufferedIOBase, dest: Path, quiet: bool) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    request = urllib.request.Request(url, headers={"User-Agent": "regsuite"})
    try:
        with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response:
            total = response.length
            columns = (TextColumn("{task.description}", markup=False), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
            with Progress(*columns, console=Console(stderr=True), disable=quiet) as progress:
                task = progress.add_task(f"downloading {dest.name}", total=total)
                received = 0
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    received += len(chunk)
                    progress.advance(task, len(chunk))
            if total is not None and received != total:
                raise OSError(f"connection closed after {received:,} of {total:,} bytes")
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:  # refused, 404, timeout, cut
        reason = getattr(exc, "reason", None) or exc
        raise DataError(
            f"could not download {url}: {reason}",
            hint=f"without network access, fetch {url} elsewhere and put it at {dest}",
        ) from None


# ---------------------------------------------------------------------------- file trees


class FileTree:
    """Read-only access to a dataset's files by POSIX path relative to its top folder.

    Reads are bounded: ``read_bytes`` refuses a file larger than ``max_member_bytes``,
    ``read_text`` one larger than ``max_text_bytes`` (or the ``limit`` a call gives), with a
    DataError naming the file, before it is read into memory.
    """

    max_member_bytes: int = MAX_MEMBER_BYTES
    max_text_bytes: int = MAX_TEXT_BYTES

    def set_limits(self, max_member_bytes: int | None, max_text_bytes: int | None) -> None:
        if max_member_bytes is not None:
            self.max_member_bytes = max_member_bytes
        if max_text_bytes is not None:
            self.max_text_bytes = max_text_bytes

    def where(self, rel: str) -> str:
        """The file as a user would find it, for messages."""
        raise NotImplementedError

    def read_bytes(self, rel: str, limit: int | None = None) -> bytes:
        """The file's bytes; DataError if it is missing, unreadable or over ``limit``
        (default ``max_member_bytes``)."""
        return self.read_limited(rel, self.max_member_bytes if limit is None else limit,
                                 "max_member_bytes" if limit is None else "limit")

    def read_text(self, rel: str, limit: int | None = None) -> str:
        data = self.read_limited(rel, self.max_text_bytes if limit is None else limit,
                                 "max_text_bytes" if limit is None else "limit")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{self.where(rel)} is not UTF-8 text: {exc}") from None

    def read_limited(self, rel: str, limit: int, setting: str) -> bytes:
        raise NotImplementedError

    def too_large(self, rel: str, size: int, limit: int, setting: str, declared: bool = False) -> DataError:
        verb = "declares" if declared else "is"
        return DataError(
            f"{self.where(rel)} {verb} {size:,} bytes{' uncompressed' if declared else ''}, more than the "
            f"{limit:,} bytes a file of this dataset may have ({type(self).__name__}'s {setting}): refusing to read it",
            hint="a file that large is not the dataset's (a zip bomb, or another archive or folder): "
                 "delete it and get the official data; a plugin that needs larger files sets a higher limit",
        )

    def list_files(self, rel_dir: str) -> list[str]:
        """Names of the files directly inside ``rel_dir``; DataError if it does not exist."""
        raise NotImplementedError

    def fingerprint(self, rels: list[str]) -> str:
        """A hash that changes when any of the files ``rels`` changes."""
        raise NotImplementedError

    def close(self) -> None: ...

    def __enter__(self) -> "FileTree":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FolderTree(FileTree):
    def __init__(self, top: Path, *, max_member_bytes: int | None = None, max_text_bytes: int | None = None):
        self.top = top
        self.entries: dict[str, os.DirEntry] = {}  # listed files, for a cheap stat() later
        self.set_limits(max_member_bytes, max_text_bytes)

    def where(self, rel: str) -> str:
        return str(self.top / rel)

    def read_limited(self, rel: str, limit: int, setting: str) -> bytes:
        try:
            with open(self.top / rel, "rb") as file:
                size = os.fstat(file.fileno()).st_size
                if size > limit:
                    raise self.too_large(rel, size, limit, setting)
                data = file.read(size + 1)  # the size it has now: no buffer of `limit` bytes per file
                if len(data) > size:  # it grew since
                    data += file.read(limit + 1 - len(data))
        except FileNotFoundError:
            raise DataError(f"missing file: {self.where(rel)}", hint=REPAIR_HINT) from None
        except OSError as exc:
            raise DataError(f"cannot read {self.where(rel)}: {exc}") from None
        if len(data) > limit:
            raise self.too_large(rel, len(data), limit, setting)
        return data

    def list_files(self, rel_dir: str) -> list[str]:
        try:
            with os.scandir(self.top / rel_dir) as listing:
                files = [entry for entry in listing if entry.is_file()]
        except (FileNotFoundError, NotADirectoryError):
            raise DataError(f"missing folder: {self.where(rel_dir)}", hint=REPAIR_HINT) from None
        self.entries.update((f"{rel_dir}/{entry.name}", entry) for entry in files)
        return [entry.name for entry in files]

    def fingerprint(self, rels: list[str]) -> str:
        """Names, sizes and mtimes of the files ``rels``."""
        digest = hashlib.sha256(b"folder\0")
        for rel in rels:
            try:
                entry = self.entries.get(rel)
                st = entry.stat() if entry is not None else os.stat(self.top / rel)
            except FileNotFoundError:
                raise DataError(f"missing file: {self.where(rel)}", hint=REPAIR_HINT) from None
            digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return digest.hexdigest()


class ZipTree(FileTree):
    """The files under the folder of a zip archive that holds ``marker`` (e.g. ``wnids.txt``).

    Opening checks every member name first: absolute paths, drive letters and ``..`` parts
    are refused, so a crafted archive is rejected before any member is read. A member is
    read only if its declared uncompressed size is within the limit, and never past it.
    """

    def __init__(self, archive: Path, marker: str, *, max_member_bytes: int | None = None,
                 max_text_bytes: int | None = None):
        self.archive = archive
        self.set_limits(max_member_bytes, max_text_bytes)
        try:
            self.zip = zipfile.ZipFile(archive)
        except (zipfile.BadZipFile, OSError) as exc:
            raise DataError(f"{archive} is not a readable zip archive: {exc}", hint=REPAIR_HINT) from None
        try:
            check_member_names(self.zip, archive)
            self.prefix = find_prefix(self.zip, archive, marker)
            self.folders = index_folders(self.zip)
        except BaseException:
            self.zip.close()
            raise

    def where(self, rel: str) -> str:
        return f"{self.archive}:{self.prefix}{rel}"

    def read_limited(self, rel: str, limit: int, setting: str) -> bytes:
        name = self.prefix + rel
        folder, _, file = name.rpartition("/")
        if file not in self.folders.get(folder, ()):
            raise DataError(f"missing file: {self.where(rel)}", hint=REPAIR_HINT)
        info = self.zip.getinfo(name)
        if info.file_size > limit:
            raise self.too_large(rel, info.file_size, limit, setting, declared=True)
        try:
            with self.zip.open(info) as member:
                # Never past the declared size (zipfile stops there, and inflates no more than
                # asked for), nor past the limit: a lying header costs no memory.
                data = member.read(min(info.file_size, limit) + 1)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as exc:  # CRC mismatch, cut archive
            raise DataError(f"cannot read {self.where(rel)}: {exc}", hint=REPAIR_HINT) from None
        if len(data) > limit:
            raise self.too_large(rel, len(data), limit, setting)
        return data

    def list_files(self, rel_dir: str) -> list[str]:
        files = self.folders.get(f"{self.prefix}{rel_dir}".rstrip("/"))
        if files is None:
            raise DataError(f"missing folder: {self.where(rel_dir)}", hint=REPAIR_HINT)
        return list(files)

    def fingerprint(self, rels: list[str]) -> str:
        return archive_fingerprint(self.archive)

    def close(self) -> None:
        self.zip.close()


REPAIR_HINT = "the data is incomplete or damaged: restore the file (extract or download the archive again)"


def archive_fingerprint(archive: Path) -> str:
    """Cheap identity of an archive file (no need to open it): name, size and mtime."""
    st = archive.stat()
    return hashlib.sha256(f"zip\0{archive.name}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()


def index_folders(zf: zipfile.ZipFile) -> dict[str, set[str]]:
    """Folder path → names of the files directly in it; every ancestor folder is listed."""
    folders: dict[str, set[str]] = {}
    for name in zf.namelist():
        path = name.rstrip("/")
        parent, _, base = path.rpartition("/")
        ancestor = path if name.endswith("/") else parent
        while ancestor not in folders:
            folders[ancestor] = set()
            ancestor = ancestor.rpartition("/")[0]
        if not name.endswith("/"):
            folders[parent].add(base)
    return folders


def check_declared_sizes(zf: zipfile.ZipFile, where: str, max_member_bytes: int, max_total_bytes: int,
                         prefix: str = "") -> None:
    """Refuse an archive that a reader outside regsuite (NLTK, say) is about to read, if a
    member under ``prefix`` declares more than ``max_member_bytes`` uncompressed, or all of
    them together more than ``max_total_bytes``."""
    total = 0
    for info in zf.infolist():
        if not info.filename.startswith(prefix):
            continue
        total += info.file_size
        if info.file_size > max_member_bytes or total > max_total_bytes:
            what = (f"{where}:{info.filename} declares {info.file_size:,} bytes uncompressed, more than the "
                    f"{max_member_bytes:,} bytes one file may have" if info.file_size > max_member_bytes else
                    f"the files of {where}{':' + prefix if prefix else ''} declare more than {max_total_bytes:,} "
                    "bytes uncompressed in all")
            raise DataError(f"{what}: refusing to read the archive",
                            hint="a file that large is not the dataset's (a zip bomb, or another archive): "
                                 "delete it and get the official one")


def check_member_names(zf: zipfile.ZipFile, archive: Path) -> None:
    for name in zf.namelist():
        parts = name.replace("\\", "/").split("/")
        if parts[0] == "" or ":" in parts[0] or ".." in parts:
            raise DataError(
                f"{archive} holds an unsafe entry {name!r} (absolute path or '..'): refusing the archive",
                hint="the archive is not what it claims to be; delete it and get the official one",
            )


def find_prefix(zf: zipfile.ZipFile, archive: Path, marker: str) -> str:
    """The folder inside the archive that holds ``marker`` (the shallowest one)."""
    found = [n for n in zf.namelist() if n == marker or n.endswith("/" + marker)]
    if not found:
        raise DataError(f"{archive} holds no {marker}: it is not a dataset archive of the expected layout")
    return min(found, key=lambda n: n.count("/"))[: -len(marker)]


# ---------------------------------------------------------------------------- decoding


def decode_images(tree: FileTree, rels: list[str], size: tuple[int, int], workers: int | None = None,
                  max_total_bytes: int = MAX_TOTAL_BYTES) -> np.ndarray:
    """Decode the images ``rels`` of ``tree`` into uint8 N×3×H×W (grayscale becomes RGB).

    The files are read first (zip reads hold the GIL), then a thread pool decodes them.
    Any unreadable, truncated, too large or wrongly sized image raises a DataError naming it,
    as do files that together hold more than ``max_total_bytes``.
    """
    blobs, total = [], 0
    for rel in rels:
        blobs.append(tree.read_bytes(rel))
        total += len(blobs[-1])
        if total > max_total_bytes:
            raise DataError(f"the {len(rels):,} images of {tree.where('')} hold more than {max_total_bytes:,} bytes "
                            f"(reached at {tree.where(rel)}): refusing to hold them all in memory (max_total_bytes)",
                            hint="that is not the dataset's data (a zip bomb, or another archive or folder): "
                                 "delete it and get the official data")
    out = np.empty((len(rels), 3, *size), dtype=np.uint8)
    starts = range(0, len(rels), DECODE_CHUNK)
    # Twice the cores: part of each decode (parsing, the numpy copy) holds the GIL, and the
    # extra threads fill those gaps (on 2 shared cores 4 threads were up to ~1.2× faster than 2).
    with ThreadPoolExecutor(workers or min(8, 2 * (os.cpu_count() or 1))) as pool:
        futures = [pool.submit(decode_chunk, out, start, blobs, rels, tree, size) for start in starts]
        try:
            for future in futures:
                future.result()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return out


def decode_chunk(out: np.ndarray, start: int, blobs: list[bytes], rels: list[str], tree: FileTree, size: tuple[int, int]) -> None:
    from PIL import Image

    for index in range(start, min(start + DECODE_CHUNK, len(rels))):
        rel = rels[index]
        try:
            with Image.open(io.BytesIO(blobs[index])) as image:
                if image.size != (size[1], size[0]):
                    raise DataError(f"{tree.where(rel)} is {image.size[0]}×{image.size[1]}, expected {size[1]}×{size[0]}")
                pixels = np.asarray(image.convert("RGB"))
        except DataError:
            raise
        except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError… for damaged files
            raise DataError(f"cannot decode {tree.where(rel)}: {exc}", hint=REPAIR_HINT) from None
        out[index] = pixels.transpose(2, 0, 1)


def channel_stats_uint8(images: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 N×C×H×W images on the [0, 1] scale.

    The same numbers as :func:`regsuite.api.channel_stats` (unbiased std, floored at 1e-3),
    computed exactly from per-channel histograms: no float copy of the whole array.
    """
    values = np.arange(256, dtype=np.float64) / 255.0
    means, stds = [], []
    for channel in range(images.shape[1]):
        counts = np.bincount(images[:, channel].ravel(), minlength=256).astype(np.float64)
        n = counts.sum()
        mean = float(counts @ values / n)
        var = float(counts @ (values - mean) ** 2 / max(n - 1, 1))
        means.append(mean)
        stds.append(max(var**0.5, 1e-3))
    return means, stds


# ---------------------------------------------------------------------------- cache


def cache_key(**parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


@dataclass
class CacheEntry:
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]


class ArrayCache:
    """Named numpy arrays + JSON metadata per key, under ``directory/<key>/``.

    Loaded arrays map the entry's files. Never edit or truncate them in place (a process
    using the data would die of SIGBUS); deleting an entry, or the whole folder, is safe.
    """

    META = "meta.json"

    def __init__(self, directory: Path):
        self.directory = directory

    def path(self, key: str) -> Path:
        return self.directory / key

    def load(self, key: str) -> CacheEntry | None:
        """The entry, its arrays memory-mapped copy-on-write; None if absent or unreadable."""
        entry = self.path(key)
        if not entry.is_dir():
            return None
        try:
            meta = json.loads((entry / self.META).read_text(encoding="utf-8"))
            arrays = {name: np.load(entry / f"{name}.npy", mmap_mode="c", allow_pickle=False) for name in meta["arrays"]}
            for name, shape in meta["arrays"].items():
                if list(arrays[name].shape) != shape:
                    raise ValueError(f"{name} has shape {arrays[name].shape}, meta says {shape}")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            warnings.warn(f"ignoring a damaged cache entry {entry} ({exc}); it will be rebuilt", stacklevel=2)
            shutil.rmtree(entry, ignore_errors=True)
            return None
        return CacheEntry(arrays, meta["meta"])

    def store(self, key: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Write the entry under a temporary name, then rename it into place.

        If another process stored the same key meanwhile, its entry is kept. A failure to
        write (disk full, read-only cache) is a warning: the data is in memory already.
        """
        final = self.path(key)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = atomic.temporary_name(final)
            tmp.mkdir()
        except OSError as exc:
            warnings.warn(f"cannot write the data cache in {self.directory} ({exc}); the next load decodes again", stacklevel=2)
            return
        try:
            for name, array in arrays.items():
                np.save(tmp / f"{name}.npy", array, allow_pickle=False)
            record = {"arrays": {name: list(a.shape) for name, a in arrays.items()}, "meta": meta}
            (tmp / self.META).write_text(json.dumps(record), encoding="utf-8")
            os.rename(tmp, final)
        except OSError as exc:
            if not final.is_dir():
                warnings.warn(f"cannot write the data cache entry {final} ({exc}); the next load decodes again", stacklevel=2)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
