"""Stateless layers over time-major tensors."""

from __future__ import annotations

import torch
from torch import nn

from neuro import _checks


class TimeDistributed(nn.Module):
    """Apply a stateless torch layer (conv, linear, pooling, batch-norm in eval, flatten) to ``[T, B, ...]``
    by folding time into the batch, in chunks of ``chunk`` time steps (None: all at once).

    Chunking matters for convolutions: one call over all T*B images can be slower than several over
    cache-sized chunks.

    Example:
        >>> import torch
        >>> from neuro.nn import TimeDistributed
        >>> conv = TimeDistributed(torch.nn.Conv2d(1, 4, 3, padding=1))
        >>> conv(torch.zeros(10, 2, 1, 8, 8)).shape
        torch.Size([10, 2, 4, 8, 8])
    """

    def __init__(self, layer: nn.Module, chunk: int | None = None):
        super().__init__()
        if not isinstance(layer, nn.Module):
            raise TypeError(f"layer must be a torch.nn.Module, got {layer!r}")
        if chunk is not None:
            chunk = _checks.check_int("chunk", chunk, minimum=1)
        self.layer = layer
        self.chunk = chunk

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor [T, B, ...], got {type(x).__name__}")
        if x.dim() < 3:
            raise ValueError(f"TimeDistributed expects time-major input [T, B, ...], got shape {tuple(x.shape)}")
        T, B = x.shape[0], x.shape[1]
        if self.chunk is None or self.chunk >= T:
            y = self.layer(x.reshape(T * B, *x.shape[2:]))
            return y.reshape(T, B, *y.shape[1:])
        outs = []
        for start in range(0, T, self.chunk):
            part = x[start:start + self.chunk]
            y = self.layer(part.reshape(part.shape[0] * B, *x.shape[2:]))
            outs.append(y.reshape(part.shape[0], B, *y.shape[1:]))
        return torch.cat(outs)


class Flatten(nn.Module):
    """Flatten each sample of ``[T, B, ...]`` to ``[T, B, features]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() < 3:
            raise ValueError(f"Flatten expects time-major input [T, B, ...], got {getattr(x, 'shape', type(x))}")
        return x.flatten(2)
