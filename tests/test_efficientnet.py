"""EfficientNet-B0: classifier sized to the data, resize in the model, the dropout slot, and
pretrained weights (downloaded, or a clear error offline) without touching the network."""
from __future__ import annotations

from urllib.error import URLError

import pytest
import torch
from torch import nn

from helpers.images import make_context, ref
from regsuite.api import DataInfo, Normalize
from regsuite.errors import RegsuiteError
from regsuite.plugins.models.efficientnet_b0 import (
    IMAGENET_MEAN, BuiltinDropoutSlot, EfficientNetB0, EfficientNetB0Params, Resize,
)

INFO = DataInfo(num_classes=7, input_shape=(3, 64, 64), mean=(0.5, 0.4, 0.3), std=(0.2, 0.2, 0.2))


def build(**params) -> nn.Sequential:
    torch.manual_seed(0)
    return EfficientNetB0(EfficientNetB0Params(**params)).build(INFO)


def classifier(model: nn.Sequential) -> nn.Sequential:
    return model[-1].classifier


def test_from_scratch_sized_to_the_classes_and_resized_in_the_model() -> None:
    model = build(resize=96)
    assert isinstance(model[0], Normalize) and isinstance(model[1], Resize) and model[1].size == 96
    assert classifier(model)[1].out_features == 7
    seen = {}
    model[2].features.register_forward_pre_hook(lambda module, args: seen.update(input=args[0].shape))
    out = model.eval()(torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8))
    assert out.shape == (2, 7) and seen["input"][-2:] == (96, 96)
    assert EfficientNetB0Params().resize == 224  # the study's default
    assert not any(isinstance(m, Resize) for m in build(resize=None))


def test_builtin_dropout_fills_the_slot_until_a_regularizer_replaces_it() -> None:
    slot = classifier(build(resize=None))[0]
    assert isinstance(slot, BuiltinDropoutSlot) and slot.kind == "dropout" and slot.p == 0.2
    x = torch.ones(1000, 8)
    assert torch.equal(slot.eval()(x), x)
    assert 0.15 < (slot.train()(x) == 0).float().mean() < 0.25

    for name, params, expected in [("dropout", {"p": 0.25}, nn.Dropout), ("maxdropout", {"rate": 0.2}, nn.Module)]:
        context = make_context(ref("efficientnet_b0", resize=None), [ref(name, **params)])
        model = context.regularizers[0].configure_model(build(resize=None))
        replaced = classifier(model)[0]
        assert not isinstance(replaced, BuiltinDropoutSlot) and isinstance(replaced, expected)
        assert sum(isinstance(m, (nn.Dropout, BuiltinDropoutSlot)) for m in classifier(model)) == (name == "dropout")
    assert classifier(build(resize=None, builtin_dropout=0.0))[0].eval()(x) is x


def test_stochastic_depth_is_a_parameter() -> None:
    from torchvision.ops import StochasticDepth

    probabilities = [m.p for m in build(resize=None, stochastic_depth=0.0).modules() if isinstance(m, StochasticDepth)]
    assert probabilities and all(p == 0 for p in probabilities)
    assert max(m.p for m in build(resize=None).modules() if isinstance(m, StochasticDepth)) > 0


def test_grayscale_becomes_rgb_and_other_channel_counts_are_an_error() -> None:
    gray = DataInfo(num_classes=3, input_shape=(1, 16, 16), mean=[0.5], std=[0.2])
    model = EfficientNetB0(EfficientNetB0Params(resize=None)).build(gray)
    assert model.eval()(torch.randint(0, 256, (2, 1, 16, 16), dtype=torch.uint8)).shape == (2, 3)
    two = DataInfo(num_classes=3, input_shape=(2, 16, 16), mean=[0.5] * 2, std=[0.2] * 2)
    with pytest.raises(RegsuiteError, match="RGB or grayscale"):
        EfficientNetB0(EfficientNetB0Params()).build(two)


def test_pretrained_offline_is_a_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_network(url, dst, *args, **kwargs):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(RegsuiteError) as error:
        build(pretrained=True)
    text = str(error.value)
    assert "Temporary failure in name resolution" in text
    assert "download.pytorch.org/models/efficientnet_b0" in text and str(tmp_path / "hub" / "checkpoints") in text
    assert "pretrained = false" in text
    assert not any((tmp_path / "hub" / "checkpoints").glob("*.pth"))


def test_pretrained_weights_are_loaded_and_the_classifier_replaced(tmp_path, monkeypatch) -> None:
    from torchvision.models import efficientnet_b0

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(1)
    imagenet = efficientnet_b0(weights=None).state_dict()  # stands in for the real file
    downloads = []

    def fake_download(url, dst, *args, **kwargs):
        downloads.append(url)
        torch.save(imagenet, dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    model = build(pretrained=True, resize=None)
    build(pretrained=True, resize=None)
    assert len(downloads) == 1  # the second build reads the hub cache
    net = model[-1]
    torch.testing.assert_close(net.features[0][0].weight, imagenet["features.0.0.weight"])
    assert net.classifier[1].out_features == 7
    assert model[0].mean.flatten().tolist() == pytest.approx(IMAGENET_MEAN)


def test_unfilled_drop_path_slots_compute_exactly_torchvisions_model() -> None:
    from torchvision.models import efficientnet_b0

    from regsuite.plugins.models.efficientnet_b0 import DropPathSlot

    ours = build(resize=None, builtin_dropout=0.0, stochastic_depth=0.2)[-1]
    slots = [m for m in ours.modules() if isinstance(m, DropPathSlot)]
    assert len(slots) == 16 and {s.kind for s in slots} == {"drop_path"} and [s.index for s in slots] == list(range(16))
    assert [s.depth for s in slots] == [(i + 1) / 16 for i in range(16)]
    assert "drop_path" in EfficientNetB0.slots
    torchvision = efficientnet_b0(weights=None, num_classes=7, dropout=0.0, stochastic_depth_prob=0.2)
    torchvision.load_state_dict(ours.state_dict())  # the slots hold no state: the same keys
    assert [s.builtin.p for s in slots] == [m.stochastic_depth.p for m in torchvision.features.modules()
                                            if hasattr(m, "stochastic_depth")]
    x = torch.randn(8, 3, 32, 32)
    outputs = {}
    for name, net in (("ours", ours), ("torchvision", torchvision)):
        net.train()
        for seed in (5, 6):
            torch.manual_seed(seed)
            outputs[name, seed] = net(x)
    assert torch.equal(outputs["ours", 5], outputs["torchvision", 5])
    assert torch.equal(outputs["ours", 6], outputs["torchvision", 6])
    assert not torch.equal(outputs["ours", 5], outputs["ours", 6])  # the random draws matter (and match)
