"""Early stopping (Prechelt 1998): end training when a validation metric has stopped improving.

Lutz Prechelt, "Early Stopping — But When?", in Neural Networks: Tricks of the Trade
(Springer LNCS 1524), 1998: stop once the validation error has not improved for a number of
epochs (his "patience" criteria). The parameters are those of Keras' ``EarlyStopping``:

- ``monitor``: the epoch metric watched (``val_loss`` by default; any key of the epoch's
  metrics, e.g. ``val_accuracy``); ``mode``: ``min`` (lower is better), ``max``, or ``auto``
  (``max`` for names with ``acc``, ``f1`` or ``auc`` in them, else ``min``);
- an epoch *improves* when it beats the best value so far by more than ``min_delta``;
  ``baseline``, when set, is the value to beat from the start (the first epochs must beat it
  to count as improving, as in Keras);
- after ``patience`` epochs in a row without improvement, training stops (the last epoch run
  is the run's final epoch; the leaderboard then shows an "epochs run" column).

The best value, its epoch and the count of epochs without improvement are the regularizer's
state: checkpoints keep them (``state_dict``/``load_state_dict``), so a resumed run continues
the count where the interrupted one left it. It changes nothing else in training: the
model's weights at the end are the last epoch's, not the best epoch's.
"""
from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field

from regsuite import hookimpl
from regsuite.api import Params, Regularizer
from regsuite.errors import RegsuiteError

HIGHER_IS_BETTER = ("acc", "f1", "auc")  # mode = "auto": these names are scores, the rest losses


class EarlyStoppingParams(Params):
    monitor: str = Field("val_loss", min_length=1, max_length=100, description="the epoch metric watched (val_accuracy, …)")
    mode: Literal["auto", "min", "max"] = Field(
        "auto", description="min: lower is better; max: higher is; auto: max for names with acc, f1 or auc, else min")
    patience: int = Field(5, ge=1, le=100_000, description="epochs in a row without improvement before training stops")
    min_delta: float = Field(0.0, ge=0, description="smallest change of the metric that counts as an improvement")
    baseline: float | None = Field(None, description="a value the metric must beat from the start (Keras' baseline)")


class EarlyStopping(Regularizer):
    """Early stopping (Prechelt 1998): end training after `patience` epochs without improvement of a validation metric."""

    name = "early_stopping"
    Params = EarlyStoppingParams

    def __init__(self, params: EarlyStoppingParams | None = None):
        super().__init__(params)
        self.best: float | None = None  # the best value so far (None before the first improvement)
        self.best_epoch: int | None = None
        self.wait = 0  # epochs since the last improvement

    @classmethod
    def smoke_params(cls, workdir) -> dict:
        return {"patience": 1, "baseline": 0.0}  # no val loss beats 0: a 2-epoch run stops after epoch 1

    @property
    def higher_is_better(self) -> bool:
        if self.params.mode != "auto":
            return self.params.mode == "max"
        return any(word in self.params.monitor.lower() for word in HIGHER_IS_BETTER)

    def improves(self, value: float) -> bool:
        reference = self.best if self.best is not None else self.params.baseline
        if not math.isfinite(value):
            return False
        if reference is None:
            return True
        if self.higher_is_better:
            return value - self.params.min_delta > reference
        return value + self.params.min_delta < reference

    def after_epoch(self, epoch: int, metrics: dict[str, float]) -> bool:
        monitor = self.params.monitor
        if monitor not in metrics:
            raise RegsuiteError(
                f"early_stopping monitors {monitor!r}, but the epoch's metrics have no such key "
                f"(they are: {', '.join(sorted(metrics))})",
                hint="set the early_stopping regularizer's monitor to one of them, e.g. monitor = \"val_loss\"",
            )
        value = float(metrics[monitor])
        if self.improves(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
        else:
            self.wait += 1
        return self.wait >= self.params.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = None if state["best"] is None else float(state["best"])
        self.best_epoch = None if state["best_epoch"] is None else int(state["best_epoch"])
        self.wait = int(state["wait"])


@hookimpl
def regsuite_register_regularizers():
    return [EarlyStopping]
