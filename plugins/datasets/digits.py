"""scikit-learn's 8×8 handwritten digits: real data that needs no download.

**Less data.** ``train_fraction`` (a share of every class) or ``per_class`` (so many images
of every class) keep a class-balanced subsample of the training split, drawn by
``subset_seed`` (:func:`regsuite.api.balanced_subset`), never by the run seed: every set and
seed trains on the same images. It is taken after ``train_limit``; the validation split stays
whole. ``DataInfo.mean``/``std`` are the subsample's own statistics, as a user who had only
that data would compute them.

**Loaded once.** Importing scikit-learn costs a process a second or more, every worker of a
grid included; the split it makes is kept in regsuite's data cache (``$XDG_CACHE_HOME/regsuite``,
a few hundred KB per ``val_fraction``/``split_seed``), keyed by scikit-learn's version, so later
loads read the same arrays without it.
"""
from __future__ import annotations

from importlib.metadata import version

import numpy as np
import torch
from pydantic import Field

from regsuite import hookimpl
from regsuite.api import ClassSubsetParams, Data, DataInfo, Dataset, Split, balanced_subset, channel_stats
from regsuite.datacache import ArrayCache, cache_key, user_cache_dir
from regsuite.errors import DataError

CACHE_FORMAT = 1


class DigitsParams(ClassSubsetParams):
    val_fraction: float = Field(0.3, gt=0, lt=1, description="share of images held out for validation")
    train_limit: int | None = Field(None, ge=10, description="keep only this many training images (scarce data overfits)")
    split_seed: int = Field(0, description="seed of the stratified train/val split (fixed across run seeds)")


class Digits(Dataset):
    """scikit-learn's handwritten digits: 1,797 grayscale 8×8 images, 10 classes."""

    name = "digits"
    task = "image_classification"
    Params = DigitsParams

    @classmethod
    def smoke_params(cls, workdir) -> dict:
        # smoke tests pair datasets with any model, 64×64 ones too: keep them to seconds
        return {"train_limit": 40, "val_fraction": 0.05}

    def load(self) -> Data:
        p = self.params
        train_x, train_y, val_x, val_y = split_arrays(p.val_fraction, p.split_seed)
        if p.train_limit is not None:
            if p.train_limit > len(train_x):
                raise DataError(f"digits.train_limit = {p.train_limit} but the split has only {len(train_x)} training images")
            train_x, train_y = train_x[: p.train_limit], train_y[: p.train_limit]
        train = Split(torch.from_numpy(train_x), torch.from_numpy(train_y))
        if p.train_fraction != 1 or p.per_class is not None:
            try:
                keep = balanced_subset(train.targets, fraction=p.train_fraction if p.per_class is None else None,
                                       per_class=p.per_class, seed=p.subset_seed)
            except DataError as exc:
                raise DataError(f"digits.{exc.message}", hint=exc.hint) from None
            train = Split(train.inputs[keep], train.targets[keep])
        mean, std = channel_stats(train.inputs)
        info = DataInfo(
            num_classes=10,
            input_shape=(1, 8, 8),
            class_names=[str(d) for d in range(10)],
            mean=tuple(mean),
            std=tuple(std),
        )
        return Data(train=train, val=Split(torch.from_numpy(val_x), torch.from_numpy(val_y)), info=info)


def split_arrays(val_fraction: float, split_seed: int) -> tuple[np.ndarray, ...]:
    """scikit-learn's stratified train/val split of the digits: train images, train labels,
    val images, val labels; from the data cache when an earlier load made it."""
    cache = ArrayCache(user_cache_dir() / "decoded" / "digits")
    key = cache_key(format=CACHE_FORMAT, sklearn=version("scikit-learn"), val_fraction=val_fraction, split_seed=split_seed)
    names = ("train_x", "train_y", "val_x", "val_y")
    entry = cache.load(key)
    if entry is not None:
        return tuple(entry.arrays[name] for name in names)
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = np.clip(bunch.images * 16, 0, 255).astype(np.uint8)[:, None]  # 0..16 → 0..255
    labels = bunch.target.astype(np.int64)
    train_x, val_x, train_y, val_y = train_test_split(
        images, labels, test_size=val_fraction, random_state=split_seed, stratify=labels
    )
    arrays = (train_x, train_y, val_x, val_y)
    cache.store(key, dict(zip(names, arrays)), {"source": "sklearn.datasets.load_digits"})
    return arrays


@hookimpl
def regsuite_register_datasets():
    return [Digits]
