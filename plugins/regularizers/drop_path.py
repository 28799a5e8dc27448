"""Drop path (stochastic depth) in the residual blocks the model declares (its "drop_path" slots).

Gao Huang, Yu Sun, Zhuang Liu, Daniel Sedra and Kilian Q. Weinberger, "Deep Networks with
Stochastic Depth", ECCV 2016, arXiv:1603.09382. During training each sample skips a residual
block's branch with the block's probability p_l (only the identity path remains), and the
branch is scaled by 1 / (1 − p_l) when kept (torchvision's ``StochasticDepth`` in mode "row",
so evaluation needs no rescaling). The paper's linear decay rule gives block l of L the
probability ``p_l = l / L · p_L``: none at the input, ``p_L`` at the last block.

- ``schedule = "linear"``: block l drops with ``rate · depth``, where depth is the slot's depth
  fraction l / L, so the last block drops with exactly ``rate`` (the paper's p_L);
- ``schedule = "uniform"``: every block drops with ``rate``.

Each slot is a model's own residual branch point; it carries its depth (``slot.depth``, in
(0, 1]): EfficientNet-B0 offers 16 (one per MBConv block; torchvision applies it only in the
blocks with a residual connection). The regularizer *replaces* what an unfilled slot does: on
EfficientNet-B0 that is torchvision's built-in stochastic depth (``model.stochastic_depth``,
whose rule ``p · (l − 1) / L`` is the paper's shifted by one block, so torchvision's last block
drops with 15/16 of it).
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field
from torch import nn

from regsuite import hookimpl
from regsuite.api import Params, Regularizer, Slot
from regsuite.errors import RegsuiteError

KIND = "drop_path"


class DropPathParams(Params):
    rate: float = Field(0.2, gt=0, lt=1, description="drop probability of the last block (linear), of every block (uniform)")
    schedule: Literal["linear", "uniform"] = Field(
        "linear", description="linear: rate × the block's depth l/L (the paper's rule); uniform: rate in every block")


class DropPath(Regularizer):
    """Stochastic depth (Huang et al. 2016): drop each residual branch per sample, probability rising linearly to rate at the last block."""

    name = "drop_path"
    tasks = frozenset({"image_classification"})
    claims_slots = frozenset({KIND})
    Params = DropPathParams

    @classmethod
    def smoke_params(cls, workdir) -> dict:
        return {"rate": 0.5}  # EfficientNet-B0 already drops with up to 0.1875 unfilled: a clearly other rate

    def probability(self, slot: nn.Module) -> float:
        if self.params.schedule == "uniform":
            return self.params.rate
        depth = getattr(slot, "depth", None)
        if not isinstance(depth, (int, float)) or not 0 < depth <= 1:
            raise RegsuiteError(
                f"drop_path's linear schedule needs each drop_path slot's depth fraction, but a slot has depth {depth!r}",
                hint="the model's drop_path slots must set depth (block l of L: l / L); or use schedule = \"uniform\"",
            )
        return self.params.rate * depth

    def configure_model(self, model: nn.Module) -> nn.Module:
        # api.fill_slots, with each slot's own probability (make() cannot see the slot).
        from torchvision.ops import StochasticDepth

        for parent in list(model.modules()):
            for child_name, child in list(parent.named_children()):
                if isinstance(child, Slot) and child.kind == KIND:
                    setattr(parent, child_name, StochasticDepth(self.probability(child), "row"))
        return model


@hookimpl
def regsuite_register_regularizers():
    return [DropPath]
