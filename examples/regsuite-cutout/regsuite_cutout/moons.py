"""A dataset: two interleaving half circles with Gaussian noise, generated (no download)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from pydantic import Field

from regsuite.api import Data, DataInfo, Dataset, Params, Split


class MoonsParams(Params):
    n_samples: int = Field(1000, ge=20, le=1_000_000, description="points in all, half of each class")
    noise: float = Field(0.3, ge=0, le=2, description="standard deviation of the Gaussian noise added to each point")
    val_fraction: float = Field(0.3, gt=0, lt=1, description="share of the points held out for validation")
    seed: int = Field(0, ge=0, description="seed of the points and of the stratified train/val split (fixed across run seeds)")


class Moons(Dataset):
    """scikit-learn's two moons: 2 features, 2 balanced classes, a seeded train/val split."""

    name = "moons"
    task = "tabular_classification"
    Params = MoonsParams

    @classmethod
    def smoke_params(cls, workdir: Path) -> dict[str, Any]:
        return {"n_samples": 200}

    def load(self) -> Data:
        from sklearn.datasets import make_moons
        from sklearn.model_selection import train_test_split

        p = self.params
        features, labels = make_moons(n_samples=p.n_samples, noise=p.noise, random_state=p.seed)
        train_x, val_x, train_y, val_y = train_test_split(
            features.astype("float32"), labels.astype("int64"),
            test_size=p.val_fraction, random_state=p.seed, stratify=labels,
        )
        train = Split(torch.from_numpy(train_x), torch.from_numpy(train_y))
        val = Split(torch.from_numpy(val_x), torch.from_numpy(val_y))
        info = DataInfo(
            num_classes=2,
            input_shape=(train.inputs.shape[1],),  # one sample: F features
            class_names=["upper moon", "lower moon"],
            # per-feature statistics of the training split, for models that standardize
            mean=tuple(train.inputs.mean(dim=0).tolist()),
            std=tuple(train.inputs.std(dim=0).clamp_min(1e-6).tolist()),
        )
        return Data(train=train, val=val, info=info)
