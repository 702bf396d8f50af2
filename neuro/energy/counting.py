"""Count what a spiking network actually does on real inputs, layer by layer.

Forward hooks on the leaf modules record, per time step:

* synaptic layers (``Linear``, ``Conv1d/2d``, ``AvgPool``, sum pooling): the events that arrive (non-zero
  inputs) and the synaptic operations they cause, ``sum_i events_i x fanout_i``, where ``fanout_i`` is the
  number of non-zero weights input ``i`` really reaches (so convolution borders, strides, groups and
  pruned weights are exact). Inputs that are the network's own analog input are counted as MACs
  (``input_macs``) instead: a chip must multiply them.
* neuron layers (modules of :mod:`neuro.nn` holding neuron state): neuron updates (``T`` x neurons) and
  spikes out (non-zero outputs).
* the equivalent ANN's MACs for each synaptic layer (one pass, analytic).

Time-major tensors ``[T, B, ...]`` are read as such; layers applied time-distributed (time folded into
the batch) are unfolded with the ``T`` and ``B`` of the network's input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

SYNAPTIC = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.AvgPool1d, nn.AvgPool2d)
PASS_THROUGH = (nn.Flatten, nn.Dropout, nn.Identity, nn.BatchNorm1d, nn.BatchNorm2d, nn.MaxPool1d, nn.MaxPool2d,
                nn.Unflatten, nn.ReLU)


@dataclass
class LayerCounts:
    """Counts for one layer, summed over the batch, per time step (arrays of length T)."""

    name: str
    kind: str  # "synaptic" or "neuron"
    layer_type: str
    spikes_in: np.ndarray | None = None
    synops: np.ndarray | None = None
    input_macs: np.ndarray | None = None
    neuron_updates: np.ndarray | None = None
    spikes_out: np.ndarray | None = None
    neurons: int = 0
    ann_macs: int = 0
    fanout_mean: float = 0.0
    extra: dict = field(default_factory=dict)


def is_neuron_layer(module: nn.Module) -> bool:
    """A spiking neuron layer: a :class:`neuro.nn.SpikingNeuron`, or any module that declares itself one with a
    class attribute ``counts_as_neuron = True`` (a custom layer). Wrappers and reshapes (``Flatten``) are not."""
    from neuro.nn.base import SpikingNeuron

    return isinstance(module, SpikingNeuron) or getattr(type(module), "counts_as_neuron", False) is True


def fanout_map(layer: nn.Module, sample_shape: tuple[int, ...]) -> torch.Tensor:
    """Number of (non-zero) synapses each input element of one sample drives, shape ``sample_shape``."""
    x = torch.ones((1, *sample_shape), requires_grad=True)
    with torch.enable_grad():
        if isinstance(layer, nn.Linear):
            return (layer.weight != 0).sum(0).to(torch.float64).reshape(sample_shape)
        if isinstance(layer, nn.Conv1d | nn.Conv2d):
            conv = nn.functional.conv2d if isinstance(layer, nn.Conv2d) else nn.functional.conv1d
            mask = (layer.weight != 0).to(torch.float32)
            y = conv(x, mask, None, layer.stride, layer.padding, layer.dilation, layer.groups)
        elif isinstance(layer, nn.AvgPool2d | nn.AvgPool1d):
            dims = 2 if isinstance(layer, nn.AvgPool2d) else 1
            k = layer.kernel_size if isinstance(layer.kernel_size, tuple) else (layer.kernel_size,) * dims
            pool = nn.functional.avg_pool2d if dims == 2 else nn.functional.avg_pool1d
            # functional call (not layer(x)) so the counting hooks do not see this probe;
            # scaled to a sum pool: each window is prod(k) synapses of weight 1
            y = pool(x, layer.kernel_size, layer.stride, layer.padding, layer.ceil_mode,
                     layer.count_include_pad) * math.prod(k)
        else:
            raise TypeError(f"no fan-out rule for {type(layer).__name__}")
        (grad,) = torch.autograd.grad(y.sum(), x)
    return grad[0].to(torch.float64).round()


def ann_macs(layer: nn.Module, sample_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> int:
    """MACs of one ANN pass through ``layer`` for one sample (pooling counts none)."""
    if isinstance(layer, nn.Linear):
        return layer.in_features * layer.out_features
    if isinstance(layer, nn.Conv1d | nn.Conv2d):
        per_output = (layer.in_channels // layer.groups) * math.prod(layer.kernel_size)
        return int(math.prod(out_shape)) * per_output
    return 0


class ActivityCounter:
    """Context manager that hooks a model and accumulates :class:`LayerCounts` while it runs."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.layers: dict[str, LayerCounts] = {}
        self._handles = []
        self._fanouts: dict[tuple[str, tuple], torch.Tensor] = {}
        self.T = self.B = 0
        self._input_ptr = None
        self._input_binary = True

    # -- public -------------------------------------------------------------------------------------
    def set_input(self, x: torch.Tensor) -> None:
        self.T, self.B = int(x.shape[0]), int(x.shape[1])
        self._input_ptr = x.data_ptr()
        self._input_binary = bool(((x == 0) | (x == 1)).all())

    def __enter__(self) -> ActivityCounter:
        for name, module in self.model.named_modules():
            if isinstance(module, SYNAPTIC):
                self._handles.append(module.register_forward_hook(self._synaptic_hook(name or "input")))
            elif is_neuron_layer(module):
                self._handles.append(module.register_forward_hook(self._neuron_hook(name)))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    # -- hooks --------------------------------------------------------------------------------------
    def _time_major(self, t: torch.Tensor) -> torch.Tensor:
        """View a recorded tensor as ``[T, B, ...]`` whether it came time-major or time-folded."""
        if t.dim() >= 2 and t.shape[0] == self.T and t.shape[1] == self.B:
            return t
        if t.shape[0] == self.T * self.B:
            return t.reshape(self.T, self.B, *t.shape[1:])
        raise ValueError(f"cannot read activity of shape {tuple(t.shape)} as [T={self.T}, B={self.B}, ...]")

    def _row(self, name: str, kind: str, module: nn.Module) -> LayerCounts:
        row = self.layers.get(name)
        if row is None:
            row = LayerCounts(name=name, kind=kind, layer_type=type(module).__name__)
            self.layers[name] = row
        return row

    def _synaptic_hook(self, name: str):
        def hook(module, inputs, output):
            x = inputs[0].detach()
            analog = (x.data_ptr() == self._input_ptr) and not self._input_binary
            xt = self._time_major(x)
            yt = self._time_major(output.detach())
            sample_shape = tuple(xt.shape[2:])
            key = (name, sample_shape)
            if key not in self._fanouts:
                self._fanouts[key] = fanout_map(module, sample_shape)
            fan = self._fanouts[key]
            events = (xt != 0).to(torch.float64)
            per_step_events = events.sum(dim=tuple(range(1, events.dim()))).cpu().numpy()
            ops = (events.sum(1) * fan).sum(dim=tuple(range(1, fan.dim() + 1))).cpu().numpy()
            row = self._row(name, "synaptic", module)
            zero = np.zeros(self.T)
            row.spikes_in = zero if analog else per_step_events
            row.synops = zero if analog else ops
            row.input_macs = ops if analog else zero
            row.ann_macs = ann_macs(module, sample_shape, tuple(yt.shape[2:]))
            row.fanout_mean = float(fan.mean())
            return None

        return hook

    def _neuron_hook(self, name: str):
        def hook(module, inputs, output):
            out = output[0] if isinstance(output, tuple) else output
            yt = self._time_major(out.detach())
            neurons = int(math.prod(yt.shape[2:]))
            row = self._row(name, "neuron", module)
            row.neurons = neurons
            row.neuron_updates = np.full(self.T, float(neurons * self.B))
            spiking = bool(((yt == 0) | (yt == 1)).all()) or getattr(module, "emits_spikes", False)
            row.spikes_out = (yt != 0).sum(dim=tuple(range(1, yt.dim()))).to(torch.float64).cpu().numpy() \
                if spiking else np.zeros(self.T)
            row.extra["spiking"] = spiking
            return None

        return hook
