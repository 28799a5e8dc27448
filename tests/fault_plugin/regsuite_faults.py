"""Test-only regsuite plugin: a regularizer that fails on purpose.

The tests install it as a real distribution (a ``*.dist-info`` folder with an
``entry_points.txt``, on a PYTHONPATH folder they create), so worker processes and Ray
workers discover it through the ``regsuite`` entry-point group like any third-party plugin.

``mode``: ``none`` (does nothing), ``raise`` (an exception), ``nan`` (a NaN loss),
``kill`` (the worker SIGKILLs itself, as the out-of-memory killer would), ``hang`` (sleeps
for ever, for timeouts), each from batch 2 of epoch ``at_epoch``.
``REGSUITE_TEST_HANG=<epoch>:<folder>`` makes any run hang at batch 2 of that epoch after
writing its pid to ``<folder>/<pid>``: the tests kill workers there, mid-epoch.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Literal

from pydantic import Field

from regsuite import hookimpl
from regsuite.api import Params, Regularizer


class FaultParams(Params):
    mode: Literal["none", "raise", "nan", "kill", "hang"] = "none"
    at_epoch: int = Field(1, ge=1)


class Fault(Regularizer):
    """Test only: raises, returns a NaN loss, kills its worker or hangs, on purpose."""

    name = "fault"
    Params = FaultParams

    def __init__(self, params: FaultParams | None = None):
        super().__init__(params)
        self.epoch, self.batch = 1, 0

    # Its epoch counter survives a resume through the checkpoint (regularizer state).
    def state_dict(self) -> dict:
        return {"epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.epoch = state["epoch"]

    def after_epoch(self, epoch: int, metrics: dict) -> bool:
        self.epoch, self.batch = epoch + 1, 0
        return False

    def wrap_loss(self, loss):
        def faulty(outputs, batch):
            value = loss(outputs, batch)
            self.batch += 1
            if self.batch != 2:
                return value
            hang_at = os.environ.get("REGSUITE_TEST_HANG", "")
            if hang_at and int(hang_at.split(":", 1)[0]) == self.epoch:
                hang(Path(hang_at.split(":", 1)[1]))
            if self.epoch != self.params.at_epoch or self.params.mode == "none":
                return value
            if self.params.mode == "raise":
                raise RuntimeError(f"fault plugin: raising on purpose in epoch {self.epoch}")
            if self.params.mode == "nan":
                return value * float("nan")
            if self.params.mode == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            hang(None)
            return value

        return faulty


def hang(folder: Path | None) -> None:
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / str(os.getpid())).write_text(str(os.getpid()))
    while True:
        time.sleep(1)


@hookimpl
def regsuite_register_regularizers():
    return [Fault]
