"""regsuite's loop gives the same numbers as a plain loop written by hand.

The plain loop below owes nothing to regsuite: it loads scikit-learn's digits itself, builds
the small CNN layer by layer, shuffles with its own generator and steps Adam. It does what
``regsuite.train`` documents: ``torch.manual_seed(seed)`` right before the model is built, one
``torch.randperm(n, generator=torch.Generator().manual_seed(seed))`` per epoch for the data
order, the mean cross-entropy as the data loss, an L2 penalty λ·Σw² over weights with more
than one dimension added to the objective only, the train loss as the mean of the batch data
losses, the val loss as the mean cross-entropy over the validation split in eval mode.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from regsuite.registry import get_registry
from regsuite.spec import load_spec, resolve
from regsuite.train import build_context, run_training

SEED = 3
EPOCHS = 4
BATCH = 32          # 100 training images: three full batches and one of 4
TRAIN_LIMIT = 100
WIDTH, HIDDEN = 4, 16
LR = 1e-2            # losses fall from 2.3 to ~1.5 in 4 epochs: the loops are compared while learning
L2_WEIGHT = 1e-2    # large enough that the penalty visibly changes the weights in 4 epochs
DROPOUT = 0.3
TOLERANCE = 1e-6    # absolute, on every epoch's train and val loss

SPEC = """
name = "equivalence"
task = "image_classification"
seeds = [{seed}]

[dataset]
name = "digits"
train_limit = {train_limit}

[model]
name = "small_cnn"
width = {width}
hidden = {hidden}

[training]
epochs = {epochs}
batch_size = {batch}
optimizer = "adam"
lr = {lr}
device = "cpu"
{precision}

[[sets]]
label = "case"
regularizers = [{regularizers}]
"""


@pytest.fixture(autouse=True)
def one_thread():
    """One thread: cheap on a shared machine, and the same kernels for both loops."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---------------------------------------------------------------------------- regsuite


def regsuite_history(tmp_path: Path, regularizers: str, precision: str | None, seed: int = SEED) -> list[dict]:
    text = SPEC.format(seed=seed, train_limit=TRAIN_LIMIT, width=WIDTH, hidden=HIDDEN, epochs=EPOCHS, batch=BATCH,
                       lr=LR, regularizers=regularizers,
                       precision="" if precision is None else f'precision = "{precision}"')
    path = tmp_path / "equivalence.toml"
    path.write_text(text, encoding="utf-8")
    registry = get_registry()
    plan = resolve(load_spec(path), registry)
    assert len(plan.runs) == 1
    assert plan.runs[0].config["training"]["precision"] == "fp32"  # explicit or by default
    history: list[dict] = []
    run_training(build_context(plan.runs[0].config, registry), on_epoch=lambda state, metrics: history.append(dict(metrics)))
    return history


# ---------------------------------------------------------------------------- the plain loop


def digits_splits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """scikit-learn's digits as uint8 N×1×8×8, the stratified 70/30 split of random_state 0,
    the first TRAIN_LIMIT training images."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = np.clip(bunch.images * 16, 0, 255).astype(np.uint8)[:, None]
    labels = bunch.target.astype(np.int64)
    train_x, val_x, train_y, val_y = train_test_split(images, labels, test_size=0.3, random_state=0, stratify=labels)
    return (torch.from_numpy(train_x[:TRAIN_LIMIT]), torch.from_numpy(train_y[:TRAIN_LIMIT]),
            torch.from_numpy(val_x), torch.from_numpy(val_y))


class Standardize(nn.Module):
    def __init__(self, images: torch.Tensor):
        super().__init__()
        x = images.float().div(255.0).transpose(0, 1).reshape(images.shape[1], -1)
        self.register_buffer("mean", x.mean(dim=1).view(1, -1, 1, 1))
        self.register_buffer("std", x.std(dim=1).clamp_min(1e-3).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() / 255.0 - self.mean) / self.std


def small_cnn(train_images: torch.Tensor, dropout: float) -> nn.Sequential:
    def drop() -> nn.Module:
        return nn.Dropout(dropout) if dropout else nn.Identity()

    return nn.Sequential(
        Standardize(train_images),
        nn.Conv2d(1, WIDTH, 3, padding=1), nn.ReLU(),
        nn.Conv2d(WIDTH, 2 * WIDTH, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        drop(),
        nn.Linear(2 * WIDTH * 4 * 4, HIDDEN), nn.ReLU(),
        drop(),
        nn.Linear(HIDDEN, 10),
    )


def plain_history(seed: int = SEED, l2: float = 0.0, dropout: float = 0.0) -> list[dict]:
    train_x, train_y, val_x, val_y = digits_splits()
    torch.manual_seed(seed)
    model = small_cnn(train_x, dropout)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    order_generator = torch.Generator().manual_seed(seed)
    history = []
    for _ in range(EPOCHS):
        model.train()
        order = torch.randperm(len(train_x), generator=order_generator)
        losses = []
        for start in range(0, len(train_x), BATCH):
            index = order[start : start + BATCH]
            loss = F.cross_entropy(model(train_x[index]), train_y[index])
            objective = loss
            if l2:
                objective = loss + l2 * sum(p.square().sum() for p in model.parameters() if p.ndim > 1)
            optimizer.zero_grad()
            objective.backward()
            optimizer.step()
            losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            val_loss = F.cross_entropy(model(val_x), val_y).item()
        history.append({"train_loss": sum(losses) / len(losses), "val_loss": val_loss})
    return history


# ---------------------------------------------------------------------------- the comparisons


def losses(history: list[dict]) -> list[tuple[float, float]]:
    return [(epoch["train_loss"], epoch["val_loss"]) for epoch in history]


def assert_same(measured: list[dict], expected: list[dict]) -> None:
    assert len(measured) == len(expected) == EPOCHS
    for epoch, (got, want) in enumerate(zip(losses(measured), losses(expected)), start=1):
        assert got == pytest.approx(want, abs=TOLERANCE, rel=0), f"epoch {epoch}: regsuite {got}, plain loop {want}"


def assert_differ(a: list[dict], b: list[dict]) -> None:
    gaps = [abs(x - y) for pa, pb in zip(losses(a), losses(b)) for x, y in zip(pa, pb)]
    assert max(gaps) > 1000 * TOLERANCE, gaps


CASES = {
    # id: (regularizers in the spec, training.precision in the spec, plain loop's arguments)
    "none-fp32": ("", "fp32", {}),
    "none-default-precision": ("", None, {}),
    "l2-fp32": (f'{{ name = "l2", weight = {L2_WEIGHT} }}', "fp32", {"l2": L2_WEIGHT}),
    "l2-default-precision": (f'{{ name = "l2", weight = {L2_WEIGHT} }}', None, {"l2": L2_WEIGHT}),
    "dropout-default-precision": (f'{{ name = "dropout", p = {DROPOUT} }}', None, {"dropout": DROPOUT}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_regsuite_loop_matches_a_plain_loop(tmp_path, case):
    regularizers, precision, plain_args = CASES[case]
    measured = regsuite_history(tmp_path, regularizers, precision)
    assert_same(measured, plain_history(**plain_args))
    if "l2" in plain_args:
        # the penalty is in the objective (other weights, other losses) but not in train_loss
        assert measured[-1]["train_penalty"] > 0
        assert_differ(measured, plain_history())
    else:
        assert measured[-1]["train_penalty"] == 0


def test_the_comparison_can_fail(tmp_path):
    """Another seed (other initial weights, other data order) gives other losses, in both loops."""
    measured = regsuite_history(tmp_path, "", None)
    assert_differ(measured, plain_history(seed=SEED + 1))
    assert_differ(regsuite_history(tmp_path, "", None, seed=SEED + 1), plain_history())
