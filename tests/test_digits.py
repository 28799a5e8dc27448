"""The digits dataset: scikit-learn's split, kept in the data cache so that a grid's workers
do not each pay for importing scikit-learn."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from regsuite.api import data_fingerprint
from regsuite.registry import get_registry

LOAD = """
import sys
from regsuite.api import data_fingerprint
from regsuite.registry import get_registry
digits = get_registry().cls("dataset", "digits")
print(data_fingerprint(digits(digits.Params(train_limit=100, split_seed=4)).load()))
print("sklearn" in sys.modules)
"""


def load(**params):
    digits = get_registry().cls("dataset", "digits")
    return digits(digits.Params(**params)).load()


def test_a_cached_split_is_the_split_and_skips_scikit_learn(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    first = load(train_limit=100, split_seed=4)
    assert len(list((tmp_path / "xdg" / "regsuite" / "decoded" / "digits").iterdir())) == 1
    again = subprocess.run([sys.executable, "-c", LOAD], capture_output=True, text=True, check=True).stdout.split()
    assert again == [data_fingerprint(first), "False"]


def test_each_split_setting_has_its_own_entry_and_a_damaged_one_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    half, default = load(val_fraction=0.5), load()
    assert (len(half.train), len(default.train)) == (898, 1257)
    folder = tmp_path / "xdg" / "regsuite" / "decoded" / "digits"
    entries = sorted(folder.iterdir())
    assert len(entries) == 2
    for entry in entries:
        (entry / "train_x.npy").write_bytes(b"not an array")
    with pytest.warns(UserWarning, match="damaged cache entry"):
        rebuilt = load()
    assert np.array_equal(rebuilt.train.inputs.numpy(), default.train.inputs.numpy())
    assert data_fingerprint(rebuilt) == data_fingerprint(default)
