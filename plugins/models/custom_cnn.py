"""The study's AlexNet-style network (docs/study.md, docs/image-benchmark.md).

The study gives filter sizes and counts, the LRN arguments, the pooling and the dense
layers, but not strides, padding or where LRN and pooling sit; those follow AlexNet
(Krizhevsky et al. 2012, and torchvision's single-tower ``alexnet`` for the padding)::

    conv 11×11, 64, stride 4, pad 2 → ReLU → LRN → max pool 3×3/2
    conv  5×5, 192,          pad 2 → ReLU → LRN → max pool 3×3/2
    conv  3×3, 384,          pad 1 → ReLU
    conv  3×3, 384,          pad 1 → ReLU
    conv  3×3, 256,          pad 1 → ReLU → max pool 3×3/2
    flatten → dense 1024 → ReLU → [dropout slot] → dense 1024 → ReLU → [dropout slot] → logits

On 64×64 inputs the feature maps are 15 → 7 → 7 → 3 → 3 → 1 pixels wide, the flattened
vector has 256 values, and one forward pass costs about 0.095 GFLOP. ``conv1_stride = 1``
keeps 58×58 maps after conv1 and costs about 1.6 GFLOP per image, ~17× more (and ~30×
slower to train on a CPU; see docs/image-benchmark.md).

LRN uses the study's TensorFlow arguments (depth radius 5, bias 2, alpha 1e-4, beta 0.75),
which in PyTorch's convention are size 11, alpha 1.1e-3 (PyTorch divides alpha by size),
beta 0.75, k 2. ``lrn = "fast"`` computes that same function with
:class:`regsuite.layers.LocalResponseNorm`; ``lrn = "torch"`` uses ``nn.LocalResponseNorm``.

``resize`` scales smaller images up inside the model (the feature maps above assume 64×64).

Weights start as Keras would start them (``init = "keras"``: Glorot-uniform kernels, zero
biases), since the study trained with Keras; ``init = "torch"`` keeps PyTorch's defaults.
The output is logits; the task's cross-entropy applies the softmax.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field
from torch import nn

from regsuite import hookimpl
from regsuite.api import DataInfo, Model, Normalize, Params, Slot
from regsuite.errors import RegsuiteError
from regsuite.layers import LocalResponseNorm, Resize

# TensorFlow local_response_normalization(depth_radius=5, bias=2.0, alpha=1e-4, beta=0.75)
TF_LRN = {"depth_radius": 5, "bias": 2.0, "alpha": 1e-4, "beta": 0.75}
# (filters, kernel, padding) of conv1..conv5; conv1's stride is a parameter, the rest are 1
CONVS = ((64, 11, 2), (192, 5, 2), (384, 3, 1), (384, 3, 1), (256, 3, 1))
LRN_AFTER = {0, 1}   # AlexNet normalizes after conv1 and conv2 ...
POOL_AFTER = {0, 1, 4}  # ... and pools after conv1, conv2 and conv5
POOL_KERNEL, POOL_STRIDE = 3, 2
DENSE = 1024


class CustomCNNParams(Params):
    conv1_stride: int = Field(4, ge=1, le=11, description="stride of the 11×11 conv1 (1 costs ~17× the FLOPs)")
    lrn: Literal["fast", "torch"] = Field("fast", description="LRN implementation: regsuite's (same function, faster) or nn.LocalResponseNorm")
    init: Literal["keras", "torch"] = Field("keras", description="weight init: Glorot-uniform + zero bias (as the study's Keras), or PyTorch's default")
    resize: int | None = Field(None, ge=8, le=1024, description="scale inputs to resize×resize inside the model (for images smaller than it needs); unset = keep")


class CustomCNN(Model):
    """The study's AlexNet-style CNN: 5 convolutions (11×11/5×5/3×3), LRN, 3×3/2 max pooling, 2 dense 1024 with dropout slots."""

    name = "custom_cnn"
    tasks = frozenset({"image_classification"})
    slots = frozenset({"dropout"})
    Params = CustomCNNParams

    @classmethod
    def smoke_params(cls, workdir) -> dict:
        return {"resize": 64}  # smoke tests may use small images; 64×64 is Tiny ImageNet's size

    def build(self, info: DataInfo) -> nn.Module:
        channels, height, width = info.input_shape
        if self.params.resize is not None:
            height = width = self.params.resize
        conv1_stride = self.params.conv1_stride
        if feature_side(min(height, width), conv1_stride) < 1:
            smallest = min_input_side(conv1_stride)
            raise RegsuiteError(
                f"custom_cnn needs larger images than {height}×{width}: its feature maps shrink to nothing",
                hint=f"use images of at least {smallest} pixels a side (Tiny ImageNet's 64×64 works), "
                f"or set resize = {max(smallest, 64)} to scale them up inside the model",
            )
        layers: list[nn.Module] = [Normalize(*info.normalization())]
        if self.params.resize is not None:
            layers.append(Resize(self.params.resize))
        in_channels = channels
        for index, (filters, kernel, padding) in enumerate(CONVS):
            stride = conv1_stride if index == 0 else 1
            layers += [nn.Conv2d(in_channels, filters, kernel, stride=stride, padding=padding), nn.ReLU(inplace=True)]
            if index in LRN_AFTER:
                layers.append(self.make_lrn())
            if index in POOL_AFTER:
                layers.append(nn.MaxPool2d(POOL_KERNEL, POOL_STRIDE))
            in_channels = filters
        flat = in_channels * feature_side(height, conv1_stride) * feature_side(width, conv1_stride)
        layers += [
            nn.Flatten(),
            nn.Linear(flat, DENSE), nn.ReLU(inplace=True), Slot("dropout"),
            nn.Linear(DENSE, DENSE), nn.ReLU(inplace=True), Slot("dropout"),
            nn.Linear(DENSE, info.num_classes),
        ]
        model = nn.Sequential(*layers)
        if self.params.init == "keras":
            keras_init(model)
        return model

    def make_lrn(self) -> nn.Module:
        fast = LocalResponseNorm.from_tf(**TF_LRN)
        if self.params.lrn == "fast":
            return fast
        return nn.LocalResponseNorm(fast.size, alpha=fast.alpha, beta=fast.beta, k=fast.k)


def feature_side(side: int, conv1_stride: int) -> int:
    """Side of the last feature map for an input side (< 1 when the input is too small)."""
    for index, (_, kernel, padding) in enumerate(CONVS):
        stride = conv1_stride if index == 0 else 1
        side = (side + 2 * padding - kernel) // stride + 1
        if index in POOL_AFTER:
            if side < POOL_KERNEL:
                return 0
            side = (side - POOL_KERNEL) // POOL_STRIDE + 1
    return side


def min_input_side(conv1_stride: int) -> int:
    return next(side for side in range(1, 1024) if feature_side(side, conv1_stride) >= 1)


def keras_init(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)


@hookimpl
def regsuite_register_models():
    return [CustomCNN]
