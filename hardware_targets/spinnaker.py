"""SpiNNaker and NEST through PyNN: emit a runnable PyNN script for a chain of dense/conv + IF/LIF/CubaLIF
layers.

Mapping (the network's discrete dynamics at ``dt``): LIF and IF become ``IF_curr_delta`` (a spike makes the
membrane jump by ``r dt / tau * w`` mV, what the exported network does in one step), CubaLIF becomes
``IF_curr_exp`` with ``tau_syn_E = tau_syn_I = tau_syn`` (weights in nA, ``cm`` chosen so that
``tau_m / cm = r``). Units as PyNN: ms, mV, nA, nF. Convolutions are written as explicit connection lists.
SpiNNaker runs about 255 neurons per core by default (sPyNNaker's default, per ANCHORS.md); 16 application
cores per chip (SpiNNaker 1; unverified here).

Example:
    >>> import torch, neuro
    >>> from neuro.hardware_targets import get
    >>> net = torch.nn.Sequential(neuro.nn.TimeDistributed(torch.nn.Linear(4, 3)), neuro.nn.LIF(beta=0.9))
    >>> report = get("spinnaker").fit(neuro.to_nir(net, (4,)))
    >>> report.fits, report.cores_used
    (True, 1)
"""

from __future__ import annotations

import math
from pathlib import Path

import nir
import numpy as np

from neuro.hardware_targets._layers import chain, fold_scales
from neuro.hardware_targets._target import FitReport, Target, Violation
from neuro.sim.connectors import conv_pairs as _conv_pairs

SPEC = {"neurons_per_core": 255, "cores_per_chip": 16,
        "sources": {"neurons_per_core": "sPyNNaker default (per ANCHORS.md)", "cores_per_chip": "unverified"}}


class SpiNNaker(Target):
    name = "spinnaker"
    spec = SPEC
    backend = "spiNNaker"

    def __init__(self, dt: float = 1e-4):
        self.dt = dt

    def fit(self, graph: nir.NIRGraph) -> FitReport:
        rep = FitReport(self.name)
        for layer in self._layers(graph, rep):
            if layer.weight is None:
                if layer.kind in ("avgpool", "sumpool"):
                    rep.violations.append(Violation(layer.name, "pooling", layer.kind, "dense or conv layers"))
                continue
            if layer.neuron is not None and not isinstance(layer.neuron, nir.LIF | nir.IF | nir.CubaLIF):
                rep.violations.append(Violation(layer.name, "neuron type", type(layer.neuron).__name__,
                                                "LIF, IF or CubaLIF"))
            n = int(np.prod(layer.out_shape))
            cores = math.ceil(n / SPEC["neurons_per_core"])
            rep.cores_used += cores
            rep.layers.append({"name": layer.name, "neurons": n, "synapses": layer.synapses, "cores": cores})
        rep.notes.append(f"{math.ceil(rep.cores_used / SPEC['cores_per_chip'])} chip(s) at "
                         f"{SPEC['cores_per_chip']} application cores a chip")
        return rep

    def script(self, graph: nir.NIRGraph, backend: str | None = None, duration_ms: float = 100.0) -> str:
        """The PyNN script (text) for ``graph``; ``backend`` e.g. ``"spiNNaker"``, ``"nest"``, ``"mock"``."""
        layers = fold_scales(chain(graph)[0])
        dt_ms = self.dt * 1000.0
        lines = [f'"""PyNN script emitted by neuro-snn for {self.name}: run with a PyNN backend."""',
                 "import numpy as np", f"import pyNN.{backend or self.backend} as sim", "",
                 f"sim.setup(timestep={dt_ms!r})",
                 f"source = sim.Population({int(np.prod(layers[0].in_shape))}, sim.SpikeSourceArray(spike_times=[]),"
                 " label='input')", "pre = source"]
        for k, layer in enumerate(layers):
            if layer.weight is None:
                continue  # flatten: indices are already flat
            n = int(np.prod(layer.out_shape))
            neuron = layer.neuron
            if isinstance(neuron, nir.CubaLIF):
                tau_m = float(np.median(neuron.tau_mem)) * 1000.0
                r = float(np.median(neuron.r))
                tau_s = float(np.median(neuron.tau_syn)) * 1000.0
                cell = (f"sim.IF_curr_exp(tau_m={tau_m!r}, cm={tau_m / r!r}, tau_syn_E={tau_s!r}, tau_syn_I={tau_s!r}, "
                        f"v_rest={float(np.median(neuron.v_leak))!r}, v_reset={float(np.median(neuron.v_reset))!r}, "
                        f"v_thresh={float(np.median(neuron.v_threshold))!r}, tau_refrac={dt_ms!r})")
                scale = 1.0
            else:
                tau = float(np.median(getattr(neuron, "tau", np.inf))) if neuron is not None else np.inf
                tau_ms = tau * 1000.0 if math.isfinite(tau) else 1e9
                r = float(np.median(neuron.r)) if neuron is not None else 1.0
                thr = float(np.median(neuron.v_threshold)) if neuron is not None and hasattr(neuron, "v_threshold") \
                    else 1e9
                v_reset = float(np.median(neuron.v_reset)) if neuron is not None and neuron.v_reset is not None \
                    else 0.0
                cell = (f"sim.IF_curr_delta(tau_m={tau_ms!r}, cm=1.0, v_rest=0.0, v_reset={v_reset!r}, "
                        f"v_thresh={thr!r}, tau_refrac={dt_ms!r})")
                scale = r * self.dt / tau if math.isfinite(tau) else r * self.dt  # mV per unit input
            if layer.kind == "dense":
                post, pre = np.nonzero(layer.weight)
                w = layer.weight[post, pre] * scale
            else:
                pre, post, w = _conv_pairs(layer.weight, layer.in_shape, layer.out_shape, layer.node.stride,
                                           layer.node.padding if not isinstance(layer.node.padding, str) else 0)
                w = np.asarray(w) * scale
            conns = [(int(a), int(b), float(c), dt_ms) for a, b, c in zip(pre, post, w, strict=True)]
            lines += [f"pop{k} = sim.Population({n}, {cell}, label={layer.name!r})",
                      f"conn{k} = {conns!r}",
                      f"exc{k} = [c for c in conn{k} if c[2] >= 0]",
                      f"inh{k} = [c for c in conn{k} if c[2] < 0]",
                      f"if exc{k}: sim.Projection(pre, pop{k}, sim.FromListConnector(exc{k}, "
                      "column_names=['weight', 'delay']), sim.StaticSynapse(), receptor_type='excitatory')",
                      # PyNN current synapses: inhibitory weights stay negative
                      f"if inh{k}: sim.Projection(pre, pop{k}, sim.FromListConnector(inh{k}, "
                      "column_names=['weight', 'delay']), sim.StaticSynapse(), receptor_type='inhibitory')",
                      f"pre = pop{k}"]
        lines += ["pre.record('spikes')", f"sim.run({duration_ms!r})",
                  "spikes = pre.get_data().segments[0].spiketrains", "sim.end()"]
        return "\n".join(lines) + "\n"

    def _write(self, graph: nir.NIRGraph, path: Path, report: FitReport) -> None:
        path.write_text(self.script(graph))


class NEST(SpiNNaker):
    """The same PyNN script for NEST (``import pyNN.nest``); no core limits."""

    name = "nest"
    backend = "nest"

    def fit(self, graph: nir.NIRGraph) -> FitReport:
        rep = super().fit(graph)
        rep.target, rep.cores_used, rep.notes = self.name, 0, ["NEST runs on the host: no per-core limits"]
        return rep
