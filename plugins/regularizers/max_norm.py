"""Max-norm constraint on each unit's incoming weights.

Nitish Srivastava, Geoffrey Hinton, Alex Krizhevsky, Ilya Sutskever and Ruslan Salakhutdinov,
"Dropout: A Simple Way to Prevent Neural Networks from Overfitting", JMLR 15 (2014), section
5.1: after every update, the vector of weights into each hidden unit is projected onto the
ball of radius ``max_norm`` (c = 3 to 4 in the paper), ‖w‖₂ ≤ c. A weight vector already inside
the ball is left exactly as it is.

Here that applies to every ``nn.Linear`` and ``nn.Conv1d/2d/3d`` weight: the norm is taken over
all dims but the output dim (a linear layer's row, a convolution's whole in-channels × kernel
filter), as Keras' ``MaxNorm`` on a kernel and ``torch.renorm(w, 2, 0, c)``. Biases,
embeddings, normalization and recurrent weights are not constrained, nor are transposed
convolutions (whose output dim is not the first).
"""
from __future__ import annotations

from pydantic import Field
from torch import nn

from regsuite import hookimpl
from regsuite.api import Params, Regularizer

CONSTRAINED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


class MaxNormParams(Params):
    max_norm: float = Field(3.0, gt=0, description="largest L2 norm of each unit's incoming weight vector (the paper's c)")


class MaxNorm(Regularizer):
    """Max-norm (Srivastava et al. 2014): after every step, rescale each unit's incoming weights (linear, conv) to norm ≤ max_norm."""

    name = "max_norm"
    Params = MaxNormParams

    @classmethod
    def smoke_params(cls, workdir) -> dict:
        return {"max_norm": 0.25}  # freshly initialized units have norms near 0.58: 3.0 would never bind

    def after_step(self, model: nn.Module) -> None:
        # The loop calls this under torch.no_grad(); renorm_ scales only the slices above the
        # bound (by max_norm / (norm + 1e-7)) and leaves the others bit for bit.
        for module in model.modules():
            if isinstance(module, CONSTRAINED):
                module.weight.renorm_(2, 0, self.params.max_norm)


@hookimpl
def regsuite_register_regularizers():
    return [MaxNorm]
