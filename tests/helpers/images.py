"""Tiny in-memory image data and a RunContext around registered plugins, for image tests
(Tiny ImageNet's shape, 3×64×64 uint8, without needing its archive)."""
from __future__ import annotations

from typing import Any

import torch

from regsuite import api
from regsuite.registry import get_registry
from regsuite.spec import TrainingConfig
from regsuite.train import RunContext, instantiate


class TinyImages(api.Dataset):
    """Random images whose mean brightness encodes the class, so that a model can learn."""

    name = "tiny_images"
    task = "image_classification"

    def __init__(self, train: int = 24, val: int = 8, classes: int = 3, side: int = 64, channels: int = 3, seed: int = 0):
        super().__init__()
        self.shape = (channels, side, side)
        generator = torch.Generator().manual_seed(seed)
        self.splits = [self.make(n, classes, generator) for n in (train, val)]
        self.classes = classes

    def make(self, n: int, classes: int, generator: torch.Generator) -> api.Split:
        targets = torch.arange(n) % classes
        noise = torch.randint(0, 60, (n, *self.shape), generator=generator)
        level = (40 + 80 * targets).view(n, 1, 1, 1)
        return api.Split((noise + level).clamp(0, 255).to(torch.uint8), targets)

    def load(self) -> api.Data:
        train, val = self.splits
        mean, std = api.channel_stats(train.inputs)
        info = api.DataInfo(num_classes=self.classes, input_shape=self.shape,
                            class_names=[f"class{i}" for i in range(self.classes)], mean=mean, std=std)
        return api.Data(train=api.Split(train.inputs.clone(), train.targets.clone()), val=val, info=info)


def ref(name: str, **params: Any) -> dict[str, Any]:
    return {"name": name, "params": params}


def make_context(model: dict, regularizers: list[dict] = (), dataset: api.Dataset | None = None,
                 **training: Any) -> RunContext:
    """A RunContext as regsuite.train.build_context makes it, with an in-memory dataset."""
    registry = get_registry()
    settings = {"epochs": 1, "batch_size": 8, "lr": 1e-3, "device": "cpu", **training}
    config = {
        "task": ref("image_classification"),
        "dataset": ref(TinyImages.name),
        "model": model,
        "regularizers": list(regularizers),
        "training": TrainingConfig(**settings).model_dump(),
        "seed": 0,
    }
    return RunContext(
        config=config,
        task=instantiate(registry, "task", config["task"]),
        dataset=dataset or TinyImages(),
        model_plugin=instantiate(registry, "model", model),
        regularizers=[instantiate(registry, "regularizer", r) for r in regularizers],
        device=torch.device("cpu"),
    )
