"""Layers that plugins share.

:class:`Resize` scales images inside a model (to the size the architecture was built for).

:class:`LocalResponseNorm` computes exactly the function of ``torch.nn.LocalResponseNorm``::

    b_c = a_c · (k + alpha/size · Σ_{c' = c - size//2}^{c + (size-1)//2} a_{c'}²)^(-beta)

(channels outside 0..C-1 count as zero, the sum is always divided by ``size``), but sums the
channel window with one cumulative sum along the channel axis instead of ``avg_pool3d``, and
has a hand-written backward. On a 2-core CPU the fused forward + backward is several times
faster than PyTorch's module, which otherwise takes close to half of an AlexNet-style
training step (see docs/image-benchmark.md); on CUDA it is also deterministic (avg_pool3d's
backward is not).

TensorFlow's ``local_response_normalization(depth_radius=r, bias=k, alpha=a, beta=b)`` sums
2r + 1 channels and does not divide by the window, so it equals
``LocalResponseNorm(size=2r + 1, alpha=a · (2r + 1), beta=b, k=k)``; see :meth:`from_tf`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable


def window_sum(x: Tensor, before: int, after: int) -> Tensor:
    """Σ x[:, c - before : c + after + 1] for every channel c of N×C×L ``x`` (zero padded).

    A cumulative sum over the zero-padded channels (one extra zero in front) turns every
    window sum into one difference of two prefix sums.
    """
    size = before + after + 1
    prefix = F.pad(x, (0, 0, before + 1, after)).cumsum_(1)
    return prefix[:, size:] - prefix[:, :-size]


def inverse_power(base: Tensor, beta: float) -> Tensor:
    """base^(-beta); rsqrt products for the common betas (cheaper than pow)."""
    if beta == 0.75:
        root = base.rsqrt()
        return root.mul_(root.sqrt())
    if beta == 0.5:
        return base.rsqrt()
    if beta == 1.0:
        return base.reciprocal()
    return base.pow(-beta)


class _LocalResponseNorm(torch.autograd.Function):
    # Half-precision inputs (autocast) are computed in float32: prefix sums in bfloat16 would
    # cancel away the window sums.

    @staticmethod
    def forward(ctx, x: Tensor, size: int, alpha: float, beta: float, k: float) -> Tensor:
        compute = torch.promote_types(x.dtype, torch.float32)
        flat = x.reshape(x.shape[0], x.shape[1], -1).to(compute)
        denominator = window_sum(flat * flat, size // 2, (size - 1) // 2).mul_(alpha / size).add_(k)
        scale = inverse_power(denominator, beta)
        ctx.save_for_backward(flat, scale, denominator)
        ctx.constants = (size, alpha, beta, x.shape, x.dtype)
        return (flat * scale).view(x.shape).to(x.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        # y_c = x_c · d_c^-β with d_c = k + α/n · Σ_{j ∈ W(c)} x_j², so
        # ∂L/∂x_j = g_j d_j^-β − 2βα/n · x_j · Σ_{c : j ∈ W(c)} g_c x_c d_c^(-β-1).
        # {c : j ∈ W(c)} is the window mirrored: size//2 and (size-1)//2 swap sides.
        flat, scale, denominator = ctx.saved_tensors
        size, alpha, beta, shape, dtype = ctx.constants
        grad_scaled = grad_out.reshape(flat.shape).to(flat.dtype) * scale
        through_sum = window_sum(grad_scaled * flat / denominator, (size - 1) // 2, size // 2)
        grad_in = grad_scaled.sub_(through_sum.mul_(flat).mul_(2 * beta * alpha / size))
        return grad_in.view(shape).to(dtype), None, None, None, None


def local_response_norm(x: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> Tensor:
    """Same values and gradients as ``torch.nn.functional.local_response_norm``."""
    if x.dim() < 3:
        raise ValueError(f"local_response_norm expects N×C×… input with 3 or more dimensions, got {x.dim()}")
    if x.numel() == 0:
        return x
    return _LocalResponseNorm.apply(x, size, alpha, beta, k)


class LocalResponseNorm(nn.Module):
    """Drop-in for ``torch.nn.LocalResponseNorm`` (same arguments, same function), faster."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        if size < 1:
            raise ValueError(f"size must be at least 1, got {size}")
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    @classmethod
    def from_tf(cls, depth_radius: int = 5, bias: float = 1.0, alpha: float = 1.0, beta: float = 0.5) -> "LocalResponseNorm":
        """TensorFlow's ``tf.nn.local_response_normalization`` arguments (and defaults)."""
        size = 2 * depth_radius + 1
        return cls(size=size, alpha=alpha * size, beta=beta, k=bias)

    def forward(self, x: Tensor) -> Tensor:
        return local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class Resize(nn.Module):
    """Scale N×C×H×W images to size×size (bilinear); images of that size pass unchanged."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-2:] == (self.size, self.size):
            return x
        return F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)

    def extra_repr(self) -> str:
        return f"size={self.size}"
