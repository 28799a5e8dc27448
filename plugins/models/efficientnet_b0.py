"""torchvision's EfficientNet-B0, the study's first model (docs/study.md).

Inputs are normalized (uint8 accepted; grayscale becomes three equal channels) and, with
``resize = 224``, scaled up bilinearly inside the model from 64×64 to the 224×224
EfficientNet was built for, as the study did; ``resize`` unset keeps the input size (about
12× cheaper at 64×64). ``pretrained = true``
starts from torchvision's ImageNet weights (downloaded once into torch's hub cache; the
inputs are then normalized with ImageNet's mean and std) and replaces the classifier's
linear layer with a fresh one sized to the dataset's classes.

The study dropped EfficientNet because, "pre-tuned with built-in regularization", it
changed little when regularizers were added. That built-in regularization is kept by
default, so ``none`` means "nothing added to what the architecture ships with":

- ``builtin_dropout`` (torchvision's 0.2) is the dropout before the classifier. That place
  is the model's dropout slot: the ``dropout`` regularizer *replaces* it with its own p
  (0.25 gives p = 0.25 there, not 0.2 followed by 0.25), and ``maxdropout`` replaces it
  with MaxDropout. With no regularizer in the slot, dropout ``builtin_dropout`` stays.
- ``stochastic_depth`` (torchvision's 0.2) drops residual branches during training, with
  torchvision's linearly increasing probability ``stochastic_depth · i / 16`` in block i
  (0 to 15). Each of the 16 MBConv blocks' ``stochastic_depth`` module is the model's
  ``drop_path`` slot (:class:`DropPathSlot`, which records the block's index and depth):
  unfilled, it is exactly torchvision's ``StochasticDepth`` (same p, mode "row", same random
  draws), so a run without a drop-path regularizer computes what torchvision's model does;
  the ``drop_path`` regularizer *replaces* it with its own schedule.
- batch normalization stays in any case.

Set ``builtin_dropout = 0`` and ``stochastic_depth = 0`` for a baseline without built-in
regularization (for example ``--set model.builtin_dropout=0 --set model.stochastic_depth=0``).
"""
from __future__ import annotations

import pickle
from pathlib import Path

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from regsuite import hookimpl
from regsuite.api import DataInfo, Model, Normalize, Params, Slot
from regsuite.errors import RegsuiteError
from regsuite.layers import Resize

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


class EfficientNetB0Params(Params):
    pretrained: bool = Field(False, description="start from torchvision's ImageNet weights (downloaded once)")
    resize: int | None = Field(224, ge=32, le=1024, description="scale inputs up to resize×resize inside the model; unset = keep their size")
    builtin_dropout: float = Field(0.2, ge=0, lt=1, description="dropout before the classifier when no dropout regularizer fills that slot")
    stochastic_depth: float = Field(
        0.2, ge=0, lt=1, description="torchvision's stochastic depth (block i of 0–15: p·i/16) while no drop_path regularizer fills the slots")


class BuiltinDropoutSlot(Slot):
    """The model's dropout slot; unfilled, it is the architecture's own dropout."""

    def __init__(self, p: float):
        super().__init__("dropout")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training) if self.p > 0 else x

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, builtin p={self.p}"


class DropPathSlot(Slot):
    """The model's drop-path slot in one MBConv block; unfilled, it is torchvision's own
    stochastic depth there (the ``StochasticDepth`` module it replaced, called as is).

    ``index`` is the block's position (0 to ``blocks`` − 1, input to output) and ``depth`` =
    (index + 1) / blocks its depth fraction, the paper's l / L: what a drop-path regularizer
    scales its rate by (the last block has depth 1).
    """

    def __init__(self, builtin: nn.Module, index: int, blocks: int):
        super().__init__("drop_path")
        self.builtin = builtin
        self.index = index
        self.blocks = blocks

    @property
    def depth(self) -> float:
        return (self.index + 1) / self.blocks

    def forward(self, x: Tensor) -> Tensor:
        return self.builtin(x)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, block {self.index + 1} of {self.blocks}"


def place_drop_path_slots(net: nn.Module) -> None:
    """Replace each MBConv block's ``stochastic_depth`` module with a :class:`DropPathSlot`."""
    from torchvision.ops import StochasticDepth

    blocks = [m for m in net.features.modules() if isinstance(getattr(m, "stochastic_depth", None), StochasticDepth)]
    for index, block in enumerate(blocks):
        block.stochastic_depth = DropPathSlot(block.stochastic_depth, index, len(blocks))


class GrayToRGB(nn.Module):
    """One-channel images as three equal channels (what the RGB stem expects)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.expand(-1, 3, -1, -1)


class EfficientNetB0(Model):
    """torchvision's EfficientNet-B0, from scratch or ImageNet weights; inputs scaled up to 224; dropout and drop-path slots."""

    name = "efficientnet_b0"
    tasks = frozenset({"image_classification"})
    slots = frozenset({"dropout", "drop_path"})
    Params = EfficientNetB0Params

    @classmethod
    def smoke_params(cls, workdir: Path) -> dict:
        return {"resize": None}

    def build(self, info: DataInfo) -> nn.Module:
        from torchvision.models import efficientnet_b0

        p = self.params
        channels = info.input_shape[0]
        if channels not in (1, 3):
            raise RegsuiteError(
                f"efficientnet_b0 takes RGB or grayscale images, but the dataset has {channels} channels",
                hint="use an RGB dataset such as tiny_imagenet, or a model for other inputs (small_cnn)",
            )
        net = efficientnet_b0(weights=None, num_classes=1000 if p.pretrained else info.num_classes,
                              stochastic_depth_prob=p.stochastic_depth)
        if p.pretrained:
            net.load_state_dict(pretrained_state_dict())
            net.classifier[1] = nn.Linear(net.classifier[1].in_features, info.num_classes)
        net.classifier[0] = BuiltinDropoutSlot(p.builtin_dropout)
        place_drop_path_slots(net)
        layers: list[nn.Module] = []
        if p.pretrained:
            if channels == 1:
                layers.append(GrayToRGB())
            layers.append(Normalize(IMAGENET_MEAN, IMAGENET_STD))
        else:
            layers.append(Normalize(*info.normalization()))
            if channels == 1:
                layers.append(GrayToRGB())
        if p.resize is not None:
            layers.append(Resize(p.resize))
        return nn.Sequential(*layers, net)


def pretrained_state_dict() -> dict[str, Tensor]:
    """torchvision's ImageNet weights, from torch's hub cache or downloaded (hash checked)."""
    from torchvision.models import EfficientNet_B0_Weights

    weights = EfficientNet_B0_Weights.IMAGENET1K_V1
    cached = Path(torch.hub.get_dir()) / "checkpoints" / weights.url.rsplit("/", 1)[-1]
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        cause = getattr(exc, "reason", None) or exc
        raise RegsuiteError(
            f"could not load the pretrained EfficientNet-B0 weights ({type(exc).__name__}: {cause})",
            hint=f"they are downloaded once from {weights.url} to {cached}: connect to the internet, "
            f"or copy that file there by hand (TORCH_HOME moves the folder); delete a damaged copy; "
            "or set pretrained = false",
        ) from exc


@hookimpl
def regsuite_register_models():
    return [EfficientNetB0]
