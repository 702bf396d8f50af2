"""Stateless layers over time-major tensors."""

from __future__ import annotations

import math

import torch
from torch import nn

from neuro import _checks
from neuro.nn import pooling, spike_inputs


class TimeDistributed(nn.Module):
    """Apply a stateless torch layer (conv, linear, pooling, batch-norm in eval, flatten) to ``[T, B, ...]``
    by folding time into the batch, in chunks of ``chunk`` time steps (None: all at once).

    Chunking matters for convolutions: one call over all T*B images can be slower than several over
    cache-sized chunks.

    When ``x`` is the spike output of a :mod:`neuro.nn` spiking layer and ``layer`` is ``nn.Linear``,
    ``nn.Conv2d`` or an ``nn.Sequential`` starting with one, the spikes are kept packed (1 bit each) for the
    weight gradient instead of as float tensors (:mod:`neuro.nn.spike_inputs`); an ``nn.MaxPool2d`` (the
    layer, or in an ``nn.Sequential``) keeps only where each maximum was for backward, not its input (one
    byte an output for float32/float64 pools without padding or dilation, computed by a faster kernel;
    :mod:`neuro.nn.pooling`). Results and gradients are the same as the layer's own.

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
        T = x.shape[0]
        # spikes from a neuro.nn spiking layer: Linear / Conv2d keep them packed for backward (spike_inputs)
        spikes = spike_inputs.ENABLED and spike_inputs.is_spikes(x)
        # the spikes' bits when the spiking layer wrote them with the spikes: bits of step t are bytes
        # t * step ... (t + 1) * step of them
        step, whole = divmod(math.prod(x.shape[1:]), 8)
        bits = spike_inputs.spike_bits(x) if spikes and not whole else None
        if self.chunk is None or self.chunk >= T:
            return self._part(spikes, x, bits)
        # torch.split, not x[start:stop]: the gradient of a slice is a zero-filled tensor of x's full size per
        # chunk, summed into x's gradient (T/chunk full-size fills and adds); split's backward is one cat
        parts = (self._part(spikes, part, None if bits is None else bits[k * self.chunk * step:][:len(part) * step])
                 for k, part in enumerate(torch.split(x, self.chunk)))
        if spikes:  # each part placed as made (no list of parts beside the result)
            return spike_inputs.cat_as_made(parts, T)
        return torch.cat(list(parts))

    def _part(self, spikes: bool, part: torch.Tensor, bits: torch.Tensor | None) -> torch.Tensor:
        y = part.reshape(part.shape[0] * part.shape[1], *part.shape[2:])
        for k, m in enumerate(_modules_run_by(self.layer)):
            out = spike_inputs.module_over_spikes(m, y, bits) if spikes and k == 0 else None
            y = pooling.call(m, y) if out is None else out  # a max pool keeps where its maxima were, not y
        return y.reshape(part.shape[0], part.shape[1], *y.shape[1:])


def _modules_run_by(layer: nn.Module):
    """The modules ``layer`` runs, in order: those of a plain ``nn.Sequential`` (no hooks, ``forward`` not
    overridden: calling them one by one is what its ``forward`` does), nested ones opened too; else ``layer``."""
    if type(layer).forward is nn.Sequential.forward and not spike_inputs.has_hooks(layer):
        for m in layer:
            yield from _modules_run_by(m)
    else:
        yield layer


class Flatten(nn.Module):
    """Flatten each sample of ``[T, B, ...]`` to ``[T, B, features]`` (spikes stay marked as spikes:
    :mod:`neuro.nn.spike_inputs`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() < 3:
            raise ValueError(f"Flatten expects time-major input [T, B, ...], got {getattr(x, 'shape', type(x))}")
        return spike_inputs.pass_mark(x, x.flatten(2))
