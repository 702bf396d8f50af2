"""Spiking replacements used by the converter.

* :class:`IFSpikes`: integrate-and-fire with threshold ``lambda`` (the layer's activation scale), reset by
  subtraction in the same step; each spike carries ``lambda`` so the next layer sees ANN units and
  residual sums and concatenations need no rescaling. Its firing rate times ``lambda`` approximates
  ``clip(relu(z), 0, lambda)`` (Rueckauer et al. 2017).
* :class:`SpikingMaxPool2d`: max pooling in the spike domain whose output count equals the largest input
  count in each window at every step, so the pooled rate is the max of the rates and does not decay
  with T (the failure of max pooling in other converters).
* :class:`TimeFoldedFn`: a stateless function (flatten, functional pooling) applied over time.
"""

from __future__ import annotations

import torch
from torch import nn

import neuro.nn as snn


class IFSpikes(nn.Module):
    """IF neurons (:class:`neuro.nn.IF`, subtractive same-step reset) whose spikes carry the threshold."""

    def __init__(self, threshold: torch.Tensor, v_init_fraction: float = 0.0):
        super().__init__()
        threshold = torch.as_tensor(threshold, dtype=torch.float32)
        self.register_buffer("scale", threshold.clone())
        self.neuron = snn.IF(threshold=threshold, reset="subtract", reset_delay=False,
                             v_init=threshold * float(v_init_fraction))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.neuron(x) * self.scale


class SpikingMaxPool2d(nn.Module):
    """Spike-domain max pooling over ``[T, B, C, H, W]`` that tracks the max of the accumulated inputs.

    The output at step t is ``max_window(c_t) - max_window(c_{t-1})`` with ``c_t`` the running sum of the
    inputs, so the pooled count up to any T equals the largest count in the window exactly. Inputs are
    spikes of one amplitude per channel, each count grows by at most one spike per step, so the output is
    itself a spike train (0 or one amplitude) and its rate never decays with T.
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride or kernel_size, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[:2]
        running = x.cumsum(0).reshape(T * B, *x.shape[2:])
        pooled = nn.functional.max_pool2d(running, self.kernel_size, self.stride, self.padding)
        pooled = pooled.reshape(T, B, *pooled.shape[1:])
        return torch.diff(pooled, dim=0, prepend=torch.zeros_like(pooled[:1]))


class TimeFoldedFn(nn.Module):
    """Apply ``fn(x, *args, **kwargs)`` to each step of ``[T, B, ...]`` by folding time into the batch."""

    def __init__(self, fn, args=(), kwargs=None, name: str = ""):
        super().__init__()
        self.fn, self.args, self.kwargs, self.name = fn, tuple(args), dict(kwargs or {}), name or fn.__name__

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[:2]
        y = self.fn(x.reshape(T * B, *x.shape[2:]), *self.args, **self.kwargs)
        return y.reshape(T, B, *y.shape[1:])

    def extra_repr(self) -> str:
        return self.name
