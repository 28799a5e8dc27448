"""regsuite's LocalResponseNorm computes nn.LocalResponseNorm's function: values and gradients."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from regsuite.layers import LocalResponseNorm, local_response_norm

TOLERANCE = 1e-7  # relative, in float64


def values_and_grads(module: nn.Module, x: torch.Tensor, grad_out: torch.Tensor):
    x = x.detach().clone().requires_grad_(True)
    y = module(x)
    (grad,) = torch.autograd.grad(y, x, grad_out)
    return y.detach(), grad


def assert_close(actual: torch.Tensor, expected: torch.Tensor, rtol: float = TOLERANCE) -> None:
    scale = expected.abs().max().clamp_min(1e-30)
    error = ((actual - expected).abs() / (expected.abs() + 1e-3 * scale)).max().item()
    assert error < rtol, f"relative error {error:.3g}"


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 6, 10, 11, 12, 25])
@pytest.mark.parametrize("channels", [1, 2, 5, 11, 16])
def test_same_values_and_gradients_as_torch(size: int, channels: int) -> None:
    # channels < size puts every channel at an edge of the window; even sizes are lopsided
    generator = torch.Generator().manual_seed(size * 100 + channels)
    x = torch.randn(3, channels, 4, 5, generator=generator, dtype=torch.float64) * 4
    grad_out = torch.randn(x.shape, generator=generator, dtype=torch.float64)
    args = dict(size=size, alpha=0.05, beta=0.75, k=2.0)  # alpha large enough for the window to matter
    expected = values_and_grads(nn.LocalResponseNorm(**args), x, grad_out)
    actual = values_and_grads(LocalResponseNorm(**args), x, grad_out)
    assert_close(actual[0], expected[0])
    assert_close(actual[1], expected[1])


@pytest.mark.parametrize("beta", [0.75, 0.5, 1.0, 0.3, 2.0])
@pytest.mark.parametrize("shape", [(2, 7, 9), (2, 7, 3, 4), (2, 7, 2, 3, 2)])
def test_every_beta_and_input_rank(beta: float, shape: tuple) -> None:
    generator = torch.Generator().manual_seed(len(shape))
    x = torch.randn(shape, generator=generator, dtype=torch.float64) * 3
    grad_out = torch.randn(shape, generator=generator, dtype=torch.float64)
    args = dict(size=5, alpha=0.2, beta=beta, k=1.5)
    expected = values_and_grads(nn.LocalResponseNorm(**args), x, grad_out)
    actual = values_and_grads(LocalResponseNorm(**args), x, grad_out)
    assert_close(actual[0], expected[0])
    assert_close(actual[1], expected[1])


def test_study_parameters_in_float32_on_network_shapes() -> None:
    # conv1 and conv2 outputs of custom_cnn at batch 4; ReLU'd activations of realistic size
    for shape in [(4, 64, 15, 15), (4, 192, 7, 7)]:
        generator = torch.Generator().manual_seed(shape[1])
        x = torch.relu(torch.randn(shape, generator=generator)) * 30
        grad_out = torch.randn(shape, generator=generator)
        expected = values_and_grads(nn.LocalResponseNorm(11, alpha=1.1e-3, beta=0.75, k=2.0), x, grad_out)
        actual = values_and_grads(LocalResponseNorm.from_tf(depth_radius=5, bias=2.0, alpha=1e-4, beta=0.75), x, grad_out)
        assert_close(actual[0], expected[0], rtol=2e-5)
        assert_close(actual[1], expected[1], rtol=2e-5)


def test_gradcheck_and_channels_last() -> None:
    x = torch.randn(2, 8, 3, 3, dtype=torch.float64).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: local_response_norm(t, 5, alpha=0.5, beta=0.75, k=2.0), (x,))
    expected = nn.functional.local_response_norm(x, 5, alpha=0.5, beta=0.75, k=2.0)
    assert_close(local_response_norm(x, 5, alpha=0.5, beta=0.75, k=2.0), expected)


def test_from_tf_matches_tensorflows_formula() -> None:
    # tf.nn.local_response_normalization: sqr_sum[c] = Σ_{c-r}^{c+r} x², out = x / (bias + alpha·sqr_sum)^beta
    radius, bias, alpha, beta = 5, 2.0, 1e-4, 0.75
    x = torch.randn(2, 20, 3, 3, dtype=torch.float64) * 40
    squares = torch.nn.functional.pad(x.square(), (0, 0, 0, 0, radius, radius))
    sqr_sum = torch.stack([squares[:, c : c + 2 * radius + 1].sum(dim=1) for c in range(x.shape[1])], dim=1)
    tensorflow = x / (bias + alpha * sqr_sum) ** beta
    layer = LocalResponseNorm.from_tf(depth_radius=radius, bias=bias, alpha=alpha, beta=beta)
    assert (layer.size, layer.alpha, layer.k, layer.beta) == (11, pytest.approx(1.1e-3), 2.0, 0.75)
    assert_close(layer(x), tensorflow)


def test_half_precision_is_computed_in_float32() -> None:
    x = (torch.relu(torch.randn(2, 192, 3, 3, generator=torch.Generator().manual_seed(0))) * 300).requires_grad_(True)
    reference = nn.LocalResponseNorm(11, alpha=1.1e-3, beta=0.75, k=2.0)(x)
    half = LocalResponseNorm(11, alpha=1.1e-3, beta=0.75, k=2.0)(x.bfloat16())
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), reference, rtol=1e-2, atol=1e-2)
    half.float().sum().backward()
    assert x.grad.dtype == torch.float32 and torch.isfinite(x.grad).all()


def test_empty_and_low_rank_inputs() -> None:
    empty = torch.empty(0, 4, 2, 2)
    assert LocalResponseNorm(3)(empty).shape == empty.shape
    with pytest.raises(ValueError, match="3 or more dimensions"):
        LocalResponseNorm(3)(torch.ones(2, 4))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_same_values_and_gradients_on_cuda() -> None:
    generator = torch.Generator().manual_seed(0)
    x = (torch.randn(4, 19, 5, 5, generator=generator, dtype=torch.float64) * 4).cuda()
    grad_out = torch.randn(x.shape, generator=generator, dtype=torch.float64).cuda()
    for size in (4, 11):
        args = dict(size=size, alpha=0.05, beta=0.75, k=2.0)
        expected = values_and_grads(nn.LocalResponseNorm(**args), x, grad_out)
        actual = values_and_grads(LocalResponseNorm(**args), x, grad_out)
        assert_close(actual[0], expected[0])
        assert_close(actual[1], expected[1])
