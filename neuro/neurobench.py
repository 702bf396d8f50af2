"""Run neuro-snn models in NeuroBench's ``Benchmark`` (NeuroBench 2.3, ``pip install neurobench``).

:func:`to_neurobench` wraps a time-major spiking model (a :mod:`neuro.nn` network, a converted
:class:`neuro.convert.SpikingNetwork`, or a model read with :func:`neuro.from_nir`) as a NeuroBench model:

* batches come in NeuroBench's layout ``[B, T, ...]`` and are transposed to our time-major ``[T, B, ...]``;
  with ``timesteps=T`` a static batch ``[B, ...]`` is presented as a constant input for ``T`` steps (how a
  converted network sees an image);
* the output goes back as ``[B, T, ...]``, the layout NeuroBench's post-processors (``ChooseMaxCount``:
  sum over dim 1, argmax) expect;
* every :class:`neuro.nn.SpikingNeuron` layer is an activation layer for NeuroBench's hooks, and every
  ``Linear``/``Conv`` inside :class:`neuro.nn.TimeDistributed` is a connection layer, so
  ``SynapticOperations``, ``ActivationSparsity`` and the static metrics work unchanged;
* ``MembraneUpdates``: NeuroBench reads a neuron layer's ``mem`` before and after each single-step call
  (snnTorch's API). Our layers run all ``T`` steps in one kernel call, so the wrapper's hook records the
  membrane after every step (one extra run of the layer, without hooks) and hands NeuroBench the per-step
  lists it would have seen. The metric is then ``B N + #{(t >= 1, b, n): v[t] != v[t-1]}`` per batch,
  divided by the samples.

How the counts relate to :func:`neuro.energy.estimate` on the same model and input (per sample, over the
whole sequence; checked in ``tests/test_neurobench.py``):

* synaptic operations: both count ``sum over events (non-zero inputs) x non-zero fan-out`` (bias excluded).
  NeuroBench calls a layer's operations ACs (``Effective_ACs``) when all its inputs lie in {-1, 0, 1} and
  MACs (``Effective_MACs``) otherwise; we count ``input_macs`` only for the network's own analog input and
  ``synops`` for everything else. So a converted network's spikes, which carry the threshold (not 1), are
  MACs to NeuroBench and synops to us; and NeuroBench does not count pooling layers, which we count as
  sum-pooling synapses. ``Effective_ACs + Effective_MACs = synops + input_macs - synops(pooling)``.
* activation sparsity: ``1 - nonzero outputs / all outputs`` of the neuron layers, which is
  ``1 - spikes_out / neuron_updates`` in our counts for spiking layers. A non-spiking readout
  (:class:`neuro.nn.LI`) outputs its membrane: NeuroBench counts its non-zero values as activations, we
  count no spikes.
* membrane updates: we count every neuron at every step (``neuron_updates = T N``, the work of a
  clock-driven chip); NeuroBench counts only steps where the membrane value changed, plus all of step 0.

Example:
    >>> import torch
    >>> from torch import nn
    >>> import neuro
    >>> from neuro.neurobench import to_neurobench
    >>> from neurobench.benchmarks import Benchmark
    >>> from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
    >>> net = nn.Sequential(neuro.nn.TimeDistributed(nn.Linear(8, 4)), neuro.nn.LIF(beta=0.9))
    >>> model = to_neurobench(net)
    >>> model(torch.rand(2, 10, 8)).shape                   # [B, T, ...] in and out
    torch.Size([2, 10, 4])
    >>> data = torch.utils.data.TensorDataset(torch.rand(6, 10, 8), torch.zeros(6))
    >>> loader = torch.utils.data.DataLoader(data, batch_size=3)
    >>> bench = Benchmark(model, loader, [], [], [[], [SynapticOperations, ActivationSparsity]])
    >>> sorted(bench.run(quiet=True))
    ['ActivationSparsity', 'SynapticOperations']
"""

from __future__ import annotations

import torch
from torch import nn

from neuro.nn.base import SpikingNeuron

__all__ = ["to_neurobench", "NeuroBenchWrapper"]


try:
    from neurobench.hooks.layer import LayerHook
    from neurobench.hooks.neuron import NeuronHook
    from neurobench.models.neurobench_model import NeuroBenchModel
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(f"neuro.neurobench needs NeuroBench 2.3 (pip install 'neurobench==2.3.*'): {exc}") from exc


class _MembraneHook(NeuronHook):
    """NeuroBench's activation hook for a fused multi-step layer: outputs as they come, plus the membrane
    before and after every step (what snnTorch's per-step ``mem`` would show)."""

    def __init__(self, layer, name=None, record_membrane: bool = True):
        super().__init__(layer, name)
        self.record_membrane = record_membrane

    def hook_fn(self, layer, inputs, output):
        out = output[0] if isinstance(output, tuple) else output
        self.activation_outputs.append(out)
        if not self.record_membrane or not isinstance(layer, SpikingNeuron):
            return
        with torch.no_grad():
            # the class's forward, not layer(...): calling the module would fire these hooks again
            res = type(layer).forward(layer, inputs[0], return_v=True)
            v = res[1] if isinstance(res, tuple) else res  # LI returns its membrane
            v0 = torch.as_tensor(layer.initial_state().get(layer.dynamics.membrane, 0.0), dtype=v.dtype,
                                 device=v.device)
            v0 = v0.expand(v.shape[2:]).unsqueeze(0).expand(v.shape[1:])
            self.pre_fire_mem_potential.extend([v0, *v[:-1]])
            self.post_fire_mem_potential.extend(list(v))


class NeuroBenchWrapper(NeuroBenchModel):
    """A time-major spiking model as a NeuroBench model (see :mod:`neuro.neurobench`); made by
    :func:`to_neurobench`."""

    def __init__(self, net: nn.Module, timesteps: int | None = None, record_membrane: bool = True):
        super().__init__()
        self.net = net
        self.net.eval()
        self.timesteps = timesteps
        self.record_membrane = record_membrane
        self.add_activation_module(SpikingNeuron)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        if not isinstance(batch, torch.Tensor):
            raise TypeError(f"batch must be a torch.Tensor, got {type(batch).__name__}")
        if self.timesteps is None:
            if batch.dim() < 3:
                raise ValueError(f"batch must be [B, T, ...] (NeuroBench's layout), got shape {tuple(batch.shape)};"
                                 " for static inputs pass timesteps=T to to_neurobench")
            x = batch.transpose(0, 1)
        else:
            x = batch.unsqueeze(0).expand(self.timesteps, *batch.shape)
        if not x.is_floating_point():
            x = x.float()
        with torch.no_grad():
            out = self.net(x.contiguous())
        out = out[0] if isinstance(out, tuple) else out
        return out.transpose(0, 1)

    def __net__(self) -> nn.Module:
        return self.net

    def register_hooks(self):
        for layer in self.activation_layers():
            self.activation_hooks.append(_MembraneHook(layer["layer"], layer["layer_name"], self.record_membrane))
        for layer in self.connection_layers():
            self.connection_hooks.append(LayerHook(layer))


def to_neurobench(model: nn.Module, timesteps: int | None = None, record_membrane: bool = True):
    """Wrap a time-major spiking model for NeuroBench's ``Benchmark``.

    Args:
        model: a ``torch.nn.Module`` taking ``[T, B, ...]`` (``neuro.nn`` network, converted
            ``SpikingNetwork``, ``neuro.from_nir`` model). Put in eval mode, as NeuroBench's wrappers do.
        timesteps: None: batches are sequences ``[B, T, ...]``. An int T: batches are static ``[B, ...]``,
            presented as a constant input for T steps.
        record_membrane: record the per-step membrane of every neuron layer for NeuroBench's
            ``MembraneUpdates`` (runs each neuron layer a second time; turn off if that metric is not used).
    Returns:
        a :class:`NeuroBenchWrapper` (a ``neurobench.models.NeuroBenchModel``) whose call returns
        ``[B, T, ...]``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if timesteps is not None and (isinstance(timesteps, bool) or not isinstance(timesteps, int) or timesteps < 1):
        raise ValueError(f"timesteps must be a positive int or None, got {timesteps!r}")
    return NeuroBenchWrapper(model, timesteps, bool(record_membrane))
