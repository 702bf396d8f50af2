"""QCFS: the quantisation clip-floor-shift activation (Bu et al. 2022), a drop-in ReLU replacement for
training ANNs that convert near-losslessly at few time steps::

    h(z) = (lambda / L) * clip(floor(z L / lambda + 1/2), 0, L)

with a trainable ``lambda`` per layer and ``L`` quantisation levels; the floor passes its gradient
straight through. On conversion ``lambda`` becomes the IF threshold and the membrane starts at
``lambda / 2`` (which is what the ``+1/2`` shift models).

Example:
    >>> import torch
    >>> from neuro.convert import QCFS
    >>> act = QCFS(levels=4, init_lambda=1.0)
    >>> act(torch.tensor([-1.0, 0.1, 0.2, 0.6, 2.0])).tolist()
    [0.0, 0.0, 0.25, 0.5, 1.0]
"""

from __future__ import annotations

import torch
from torch import nn

from neuro import _checks


class _FloorSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.floor(x)

    @staticmethod
    def backward(ctx, g):
        return g


class QCFS(nn.Module):
    """Quantisation clip-floor-shift activation with ``levels`` steps and trainable ``lambda``."""

    def __init__(self, levels: int = 8, init_lambda: float = 4.0):
        super().__init__()
        levels = _checks.check_int("levels", levels, minimum=1, maximum=1 << 24)
        init_lambda = _checks.check_float("init_lambda", init_lambda, positive=True)
        self.levels = levels
        self.lam = nn.Parameter(torch.tensor(float(init_lambda)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        L = self.levels
        q = _FloorSTE.apply(z * L / self.lam + 0.5).clamp(0, L)
        return q * self.lam / L

    def extra_repr(self) -> str:
        return f"levels={self.levels}, lambda={float(self.lam):.3f}"
