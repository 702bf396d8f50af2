"""Stateless layers over time-major tensors."""

from __future__ import annotations

import torch
from torch import nn

from neuro import _checks
from neuro.nn import spike_inputs


class TimeDistributed(nn.Module):
    """Apply a stateless torch layer (conv, linear, pooling, batch-norm in eval, flatten) to ``[T, B, ...]``
    by folding time into the batch, in chunks of ``chunk`` time steps (None: all at once).

    Chunking matters for convolutions: one call over all T*B images can be slower than several over
    cache-sized chunks.

    When ``x`` is the spike output of a :mod:`neuro.nn` spiking layer and ``layer`` is ``nn.Linear``,
    ``nn.Conv2d`` or an ``nn.Sequential`` starting with one, the spikes are kept packed (1 bit each) for the
    weight gradient instead of as float tensors (:mod:`neuro.nn.spike_inputs`); results are the same.

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
        # spikes from a neuro.nn spiking layer: Linear / Conv2d keep them packed for backward (spike_inputs)
        spikes = spike_inputs.ENABLED and spike_inputs.is_spikes(x)
        call = self._over_spikes if spikes else self.layer
        if self.chunk is None or self.chunk >= T:
            y = call(x.reshape(T * B, *x.shape[2:]))
            return y.reshape(T, B, *y.shape[1:])
        # torch.split, not x[start:stop]: the gradient of a slice is a zero-filled tensor of x's full size per
        # chunk, summed into x's gradient (T/chunk full-size fills and adds); split's backward is one cat
        parts = (self._part(call, part) for part in torch.split(x, self.chunk))
        if spikes:  # each part placed as made (no list of parts beside the result)
            return spike_inputs.cat_as_made(parts, T)
        return torch.cat(list(parts))

    def _part(self, call, part: torch.Tensor) -> torch.Tensor:
        y = call(part.reshape(part.shape[0] * part.shape[1], *part.shape[2:]))
        return y.reshape(part.shape[0], part.shape[1], *y.shape[1:])

    def _over_spikes(self, s: torch.Tensor) -> torch.Tensor:
        y = spike_inputs.layer_over_spikes(self.layer, s)
        return self.layer(s) if y is None else y


class Flatten(nn.Module):
    """Flatten each sample of ``[T, B, ...]`` to ``[T, B, features]`` (spikes stay marked as spikes:
    :mod:`neuro.nn.spike_inputs`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() < 3:
            raise ValueError(f"Flatten expects time-major input [T, B, ...], got {getattr(x, 'shape', type(x))}")
        return spike_inputs.pass_mark(x, x.flatten(2))
