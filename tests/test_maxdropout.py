"""MaxDropout (Santos et al. 2020): drops the most active units in training, identity at eval."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from regsuite.errors import SpecError
from regsuite.plugins.regularizers.maxdropout import MaxDropout, MaxDropoutLayer, MaxDropoutParams
from regsuite.registry import get_registry
from regsuite.spec import Spec, resolve


def authors_maxdropout(x: torch.Tensor, rate: float) -> torch.Tensor:
    """cfsantos/MaxDropout-torch's forward in training: min-max over the tensor, no rescaling."""
    normalized = (x - x.min()) / (x.max() - x.min())
    return x.masked_fill(normalized > 1 - rate, 0)


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5, 0.9])
def test_training_matches_the_authors_code(rate: float) -> None:
    x = torch.randn(16, 50, generator=torch.Generator().manual_seed(int(rate * 10)))
    layer = MaxDropoutLayer(rate).train()
    out = layer(x)
    assert torch.equal(out, authors_maxdropout(x, rate))
    kept = out != 0
    assert torch.equal(out[kept], x[kept])  # survivors are not rescaled
    assert 0 < (~kept).sum() < x.numel()


def test_drops_exactly_the_most_active_units() -> None:
    x = torch.tensor([[0.0, 1.0, 5.0, 9.0, 10.0]])
    out = MaxDropoutLayer(0.2).train()(x)  # normalized: 0, .1, .5, .9, 1 → drop those above 0.8
    assert out.tolist() == [[0.0, 1.0, 5.0, 0.0, 0.0]]


def test_identity_at_eval_and_on_constant_input() -> None:
    x = torch.randn(4, 8)
    assert torch.equal(MaxDropoutLayer(0.5).eval()(x), x)
    constant = torch.full((4, 8), 3.0)
    assert torch.equal(MaxDropoutLayer(0.5).train()(constant), constant)


def test_sample_scope_normalizes_each_sample_alone() -> None:
    x = torch.tensor([[0.0, 1.0, 2.0], [0.0, 10.0, 20.0]])
    per_sample = MaxDropoutLayer(0.4, scope="sample").train()(x)
    assert per_sample.tolist() == [[0.0, 1.0, 0.0], [0.0, 10.0, 0.0]]
    whole_batch = MaxDropoutLayer(0.4, scope="batch").train()(x)
    assert whole_batch.tolist() == [[0.0, 1.0, 2.0], [0.0, 10.0, 0.0]]


def test_gradient_flows_only_through_kept_units() -> None:
    x = torch.tensor([[0.0, 1.0, 5.0, 9.0, 10.0]], requires_grad=True)
    MaxDropoutLayer(0.2).train()(x).sum().backward()
    assert x.grad.tolist() == [[1.0, 1.0, 1.0, 0.0, 0.0]]


def test_fills_the_dropout_slots() -> None:
    from regsuite.api import Slot

    model = nn.Sequential(nn.Linear(4, 4), Slot("dropout"), nn.Linear(4, 2), Slot("dropout"))
    model = MaxDropout(MaxDropoutParams(rate=0.25)).configure_model(model)
    layers = [m for m in model if isinstance(m, MaxDropoutLayer)]
    assert len(layers) == 2 and all(m.rate == 0.25 for m in layers)


def test_params_are_validated() -> None:
    with pytest.raises(ValueError):
        MaxDropoutParams(rate=0)
    with pytest.raises(ValueError):
        MaxDropoutParams(rate=1.5)
    with pytest.raises(ValueError):
        MaxDropoutParams(scope="channel")


def spec_with(regularizers: list[dict]) -> Spec:
    return Spec.model_validate({
        "name": "t", "task": "image_classification", "dataset": {"name": "digits"}, "model": {"name": "small_cnn"},
        "sets": [{"label": "both", "regularizers": regularizers}],
    })


def test_dropout_and_maxdropout_in_one_set_is_a_validation_error() -> None:
    with pytest.raises(SpecError) as error:
        resolve(spec_with([{"name": "dropout", "p": 0.2}, {"name": "maxdropout", "rate": 0.2}]), get_registry())
    assert "both fill the model's 'dropout' slots" in str(error.value)
    plan = resolve(spec_with([{"name": "l2", "weight": 1e-4}, {"name": "maxdropout", "rate": 0.2}]), get_registry())
    assert [r["name"] for r in plan.runs[0].config["regularizers"]] == ["l2", "maxdropout"]
