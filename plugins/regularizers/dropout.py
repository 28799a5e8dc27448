"""Dropout in the places the model declares (its "dropout" slots)."""
from __future__ import annotations

from pydantic import Field
from torch import nn

from regsuite import hookimpl
from regsuite.api import Params, Regularizer, fill_slots


class DropoutParams(Params):
    p: float = Field(0.25, ge=0, lt=1, description="probability of zeroing a unit")


class Dropout(Regularizer):
    """Standard dropout in every dropout slot of the model (e.g. before each dense layer)."""

    name = "dropout"
    claims_slots = frozenset({"dropout"})
    Params = DropoutParams

    def configure_model(self, model: nn.Module) -> nn.Module:
        fill_slots(model, "dropout", lambda: nn.Dropout(self.params.p))
        return model


@hookimpl
def regsuite_register_regularizers():
    return [Dropout]
