"""First decode vs cached load of tiny_imagenet, on the real archive layout.

    .venv/bin/python speed/tiny_imagenet_cache.py                      # the 10-class mini zip
    .venv/bin/python speed/tiny_imagenet_cache.py --root PATH --classes 25

Each measurement is a whole ``TinyImageNet.load()`` into a fresh, temporary cache folder:
the first one decodes (open the archive, list, decode every JPEG, channel statistics, write
the cache); the later ones hit the cache. A cached load memory-maps the arrays, so it is also
timed with every image byte copied into private memory afterwards (``+ read``), the most a
caller could pay for the pages. With ``--folder`` the archive is also extracted to a
temporary folder and the extracted layout (whose cache key stats every file) is timed too.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from regsuite.datacache import check_member_names
from regsuite.plugins.datasets.tiny_imagenet import TinyImageNet, TinyImageNetParams

MINI = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tiny-imagenet-200-mini.zip"


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def load_and_read(dataset: TinyImageNet):
    data = dataset.load()
    np.array(data.train.inputs.numpy()), np.array(data.val.inputs.numpy())
    return data


def measure(root: Path, classes: int, repeats: int, label: str) -> None:
    with tempfile.TemporaryDirectory() as cache:
        dataset = TinyImageNet(TinyImageNetParams(root=root, classes=classes, cache_dir=Path(cache), download=False, md5=""))
        first, data = timed(dataset.load)
        images = len(data.train) + len(data.val)
        cached = [timed(dataset.load)[0] for _ in range(repeats)]
        with_read = [timed(lambda: load_and_read(dataset))[0] for _ in range(repeats)]
    hit, hit_read = statistics.median(cached), statistics.median(with_read)
    load_1min = os.getloadavg()[0]
    print(f"{label}: {classes} classes, {len(data.train):,} train + {len(data.val):,} val = {images:,} images"
          f"  (load average {load_1min:.1f} on {os.cpu_count()} cores)")
    print(f"  first load (decode):  {first:8.3f} s  {images / first:>12,.0f} images/s")
    print(f"  cached load:          {hit:8.4f} s  {images / hit:>12,.0f} images/s  {first / hit:7.0f}× faster  (median of {repeats})")
    print(f"  cached load + read:   {hit_read:8.4f} s  {images / hit_read:>12,.0f} images/s  {first / hit_read:7.0f}× faster")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=MINI, help="data folder or archive (default: the mini zip)")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--folder", action="store_true", help="also time the extracted layout")
    args = parser.parse_args()
    import PIL.JpegImagePlugin  # noqa: F401  (imports are not part of the decode time)

    measure(args.root, args.classes, args.repeats, f"archive {args.root}")
    if args.folder and args.root.is_file():
        with tempfile.TemporaryDirectory() as folder, zipfile.ZipFile(args.root) as zf:
            check_member_names(zf, args.root)
            zf.extractall(folder)
            measure(Path(folder), args.classes, args.repeats, "extracted folder")


if __name__ == "__main__":
    main()
