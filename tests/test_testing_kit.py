"""The author's kit catches what it promises to catch, each with a message that names it."""
from __future__ import annotations

import pytest
import torch
from pydantic import Field
from torch import nn

from regsuite import api
from regsuite.plugins.datasets.digits import Digits
from regsuite.plugins.models.small_cnn import SmallCNN
from regsuite.testing import check_dataset, check_model, check_params, check_plugin, check_regularizer, registry_with


class NoOp(api.Regularizer):
    """Claims to regularize, does nothing."""

    name = "noop_under_test"

    def transform_batch(self, batch, generator):
        return batch


class NoDefault(api.Regularizer):
    """A parameter without default."""

    name = "nodefault_under_test"

    class Params(api.Params):
        strength: float = Field(gt=0)


class Scale(api.Regularizer):
    """Scales the inputs: changes training."""

    name = "scale_under_test"
    tasks = frozenset({"image_classification"})

    def transform_batch(self, batch, generator):
        return batch.replace(inputs=batch.inputs.float() * 0.5 / 255.0)


class SlotlessModel(SmallCNN):
    """Declares a dropout slot, places none."""

    name = "slotless_under_test"
    slots = frozenset({"dropout"})

    def build(self, info):
        return nn.Sequential(api.Normalize(*info.normalization()), nn.Flatten(),
                             nn.Linear(int(torch.tensor(info.input_shape).prod()), info.num_classes))


class WrongShape(Digits):
    """Says its images are bigger than they are."""

    name = "wrongshape_under_test"

    def load(self):
        data = super().load()
        data.info.input_shape = (1, 9, 9)
        return data


def test_a_regularizer_that_changes_nothing_fails(tmp_path):
    with pytest.raises(AssertionError, match="noop_under_test: two epochs .* it changes nothing"):
        check_regularizer(NoOp, tmp_path)


def test_a_regularizer_that_changes_training_passes(tmp_path):
    check_plugin(Scale, tmp_path)


def test_params_without_defaults_fail(tmp_path):
    with pytest.raises(AssertionError, match="nodefault_under_test: Params\\(\\) does not validate"):
        check_params(NoDefault, tmp_path)


def test_a_class_without_a_name_fails(tmp_path):
    class Nameless(api.Regularizer):
        """No name."""

    with pytest.raises(AssertionError, match="has no name"):
        check_params(Nameless, tmp_path)


def test_a_model_that_places_no_declared_slot_fails(tmp_path):
    with pytest.raises(AssertionError, match="slotless_under_test: declares slots \\['dropout'\\] .* no Slot of \\['dropout'\\]"):
        check_model(SlotlessModel, tmp_path)


def test_a_dataset_whose_info_lies_about_its_shape_fails(tmp_path):
    with pytest.raises(AssertionError, match="wrongshape_under_test: DataInfo.input_shape \\(1, 9, 9\\)"):
        check_dataset(WrongShape, tmp_path)


def test_the_class_under_test_replaces_an_installed_one_of_its_name(tmp_path):
    class OtherDigits(Digits):
        """Same name as the built-in."""

    registry = registry_with(OtherDigits)
    assert registry.cls("dataset", "digits") is OtherDigits
    assert registry.cls("dataset", "tiny_imagenet") is not None
