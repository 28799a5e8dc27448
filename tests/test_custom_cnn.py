"""The study's custom CNN: architecture as in docs/study.md and docs/image-benchmark.md, LRN conversion, slots, cost, training."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers.images import TinyImages, make_context, ref
from regsuite import layers
from regsuite.api import DataInfo, Slot
from regsuite.errors import RegsuiteError
from regsuite.plugins.models.custom_cnn import CustomCNN, CustomCNNParams, min_input_side
from regsuite.plugins.regularizers.maxdropout import MaxDropoutLayer
from regsuite.train import run_training

INFO = DataInfo(num_classes=25, input_shape=(3, 64, 64), mean=(0.48, 0.45, 0.4), std=(0.27, 0.26, 0.28))


def build(**params) -> nn.Sequential:
    torch.manual_seed(0)
    return CustomCNN(CustomCNNParams(**params)).build(INFO)


def macs_per_image(model: nn.Module, side: int = 64, channels: int = 3) -> int:
    """Multiply-accumulates of one forward pass through the conv and dense layers."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            total += output[0].numel() * module.in_channels * module.kernel_size[0] * module.kernel_size[1]
        else:
            total += module.in_features * module.out_features

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model.eval()(torch.zeros(1, channels, side, side, dtype=torch.uint8))
    for hook in hooks:
        hook.remove()
    return total


def test_architecture_is_the_studys() -> None:
    model = build()
    convs = [m for m in model if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 192, 384, 384, 256]
    assert [c.kernel_size for c in convs] == [(11, 11), (5, 5), (3, 3), (3, 3), (3, 3)]
    assert convs[0].stride == (4, 4) and all(c.stride == (1, 1) for c in convs[1:])
    pools = [m for m in model if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == 3 and all(p.kernel_size == 3 and p.stride == 2 for p in pools)
    dense = [m for m in model if isinstance(m, nn.Linear)]
    assert [(d.in_features, d.out_features) for d in dense] == [(256, 1024), (1024, 1024), (1024, 25)]
    kinds = [type(m).__name__ for m in model]
    # AlexNet order: conv → ReLU → LRN → pool for conv1 and conv2; dropout slots after both dense ReLUs
    assert kinds[:9] == ["Normalize", "Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d",
                         "Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d"]
    assert kinds[-7:] == ["Linear", "ReLU", "Slot", "Linear", "ReLU", "Slot", "Linear"]
    assert all(isinstance(m, layers.LocalResponseNorm) for m in model if "LocalResponseNorm" in type(m).__name__)


def test_lrn_is_the_study_tf_lrn_in_pytorch_terms() -> None:
    lrn = [m for m in build() if isinstance(m, layers.LocalResponseNorm)]
    assert len(lrn) == 2
    for layer in lrn:
        assert (layer.size, layer.alpha, layer.beta, layer.k) == (11, pytest.approx(1e-4 * 11), 0.75, 2.0)
    torch_lrn = [m for m in build(lrn="torch") if isinstance(m, nn.LocalResponseNorm)]
    assert [(m.size, m.alpha, m.beta, m.k) for m in torch_lrn] == [(11, pytest.approx(1.1e-3), 0.75, 2.0)] * 2


def test_fast_and_torch_lrn_models_compute_the_same() -> None:
    fast, reference = build(lrn="fast"), build(lrn="torch")
    reference.load_state_dict(fast.state_dict())
    images = torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8)
    out_fast, out_ref = fast(images), reference(images)
    assert out_fast.shape == (4, 25)
    torch.testing.assert_close(out_fast, out_ref, rtol=1e-5, atol=1e-5)
    out_fast.square().sum().backward()
    out_ref.square().sum().backward()
    for (name, a), b in zip(fast.named_parameters(), reference.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_cost_per_image_and_of_stride_one() -> None:
    stride4, stride1 = macs_per_image(build()), macs_per_image(build(conv1_stride=1))
    assert 0.09e9 < 2 * stride4 < 0.1e9          # ~0.095 GFLOP per 64×64 image (docs/image-benchmark.md)
    assert 15 < stride1 / stride4 < 20           # ~17× the FLOPs with conv1 stride 1


def test_keras_init_and_torch_init() -> None:
    keras = build()
    assert all(m.bias.abs().sum() == 0 for m in keras if isinstance(m, (nn.Conv2d, nn.Linear)))
    torch_init = build(init="torch")
    assert any(m.bias.abs().sum() > 0 for m in torch_init if isinstance(m, nn.Conv2d))


def test_small_images_are_a_clear_error_or_scaled_up() -> None:
    assert min_input_side(4) == 63 and min_input_side(1) == 21
    small = DataInfo(num_classes=10, input_shape=(1, 8, 8), mean=[0.5], std=[0.2])
    with pytest.raises(RegsuiteError, match="at least 63 pixels") as error:
        CustomCNN(CustomCNNParams()).build(small)
    assert "resize = 64" in str(error.value)
    model = CustomCNN(CustomCNNParams(resize=64)).build(small)
    assert model(torch.randint(0, 256, (2, 1, 8, 8), dtype=torch.uint8)).shape == (2, 10)
    assert macs_per_image(model, side=8, channels=1) == macs_per_image(CustomCNN(CustomCNNParams()).build(
        DataInfo(num_classes=10, input_shape=(1, 64, 64), mean=[0.5], std=[0.2])), channels=1)


def test_dropout_and_maxdropout_fill_both_dense_slots() -> None:
    context = make_context(ref("custom_cnn"), [ref("dropout", p=0.25)])
    model = context.regularizers[0].configure_model(build())
    dropouts = [m for m in model if isinstance(m, nn.Dropout)]
    assert [d.p for d in dropouts] == [0.25, 0.25] and not any(isinstance(m, Slot) for m in model)
    context = make_context(ref("custom_cnn"), [ref("maxdropout", rate=0.2)])
    model = context.regularizers[0].configure_model(build())
    assert sum(isinstance(m, MaxDropoutLayer) for m in model) == 2


def test_trains_through_regsuites_loop() -> None:
    context = make_context(ref("custom_cnn"), [ref("dropout", p=0.25)], dataset=TinyImages(train=48, val=12),
                           epochs=3, batch_size=16, lr=1e-3)
    summary = run_training(context)
    assert summary["epochs_run"] == 3
    assert summary["final"]["train_loss"] < 1.0  # below ln 3 ≈ 1.1: it learned the 3 classes
    assert summary["final"]["val_accuracy"] > 0.5
