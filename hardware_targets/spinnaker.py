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

from neuro import _checks
from neuro.hardware_targets._layers import chain, fold_scales
from neuro.hardware_targets._target import FitReport, Target, TargetError, Violation
from neuro.models import coefficients
from neuro.sim.connectors import conv_pairs as _conv_pairs

SPEC = {"neurons_per_core": 255, "cores_per_chip": 16,
        "sources": {"neurons_per_core": "sPyNNaker default (per ANCHORS.md)", "cores_per_chip": "unverified"}}


_CHANGES = ["PyNN's neurons reset to v_reset in the step they fire (a subtractive or delayed reset is not "
            "kept: spikes after the first can differ)",
            "each layer adds one step (PyNN's minimum delay dt); the input of step s is given at (s + 1) dt "
            "(pyNN.nest: one step more, through its parrot neurons)",
            "forward-Euler decays 1 - dt/tau become exact decays with tau' = -dt / ln(1 - dt/tau)"]


class SpiNNaker(Target):
    name = "spinnaker"
    spec = SPEC
    backend = "spiNNaker"

    def __init__(self, dt: float = 1e-4):
        self.dt = _checks.check_dt(dt)

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
        rep.notes += _CHANGES
        return rep

    def script(self, graph: nir.NIRGraph, backend: str | None = None, duration_ms: float = 100.0) -> str:
        """The PyNN script (text) for ``graph``; ``backend`` e.g. ``"spiNNaker"``, ``"nest"``, ``"mock"``.

        The script takes ``--input FILE.npy`` (input spikes per step, ``[T, n_in]`` as given to
        :func:`neuro.from_nir` without the batch axis; input step ``s`` becomes spike time ``(s + 1) dt``),
        ``--duration MS`` and ``--out FILE.npz`` (output spike ``times`` in ms as the backend stamps them and
        neuron ``ids``, written by rank 0). PyNN delivers every projection after at least one step (``dt``),
        so on the backend a spike of the network's step ``s`` at layer ``k`` (1-based) carries the time
        ``(s + k + 1) dt``; on ``pyNN.nest`` ``(s + k + 2) dt`` (its spike sources relay through a parrot
        neuron, so the script gives them ``(s + 1.5) dt``: a time inside its step however floats round).
        """
        layers = fold_scales(chain(graph)[0])
        for layer in layers:  # what fit() reports, refused here too: `emit(force=True)` reaches this point
            if layer.weight is not None and layer.neuron is not None and \
                    not isinstance(layer.neuron, nir.LIF | nir.IF | nir.CubaLIF):
                raise TargetError(f"layer {layer.name!r}: its {type(layer.neuron).__name__} neuron has no form in the "
                                  "PyNN script (it writes IF_curr_delta / IF_curr_exp cells and records their "
                                  "spikes); use LIF, IF or CubaLIF")
        dt_ms = self.dt * 1000.0
        n_in = int(np.prod(layers[0].in_shape))
        lines = [f'"""PyNN script emitted by neuro-snn for {self.name}: run with a PyNN backend.',
                 "", "Usage: python <script> [--input spikes.npy] [--duration MS] [--out spikes.npz]",
                 "Input step s -> spike time (s + 1) dt; each layer adds one step (PyNN's minimum delay).", '"""',
                 "import argparse", "import numpy as np", f"import pyNN.{backend or self.backend} as sim",
                 "from pyNN.parameters import Sequence", "",
                 "ap = argparse.ArgumentParser()", "ap.add_argument('--input', default=None)",
                 f"ap.add_argument('--duration', type=float, default={float(duration_ms)!r})",
                 "ap.add_argument('--out', default=None)", "args = ap.parse_args()",
                 f"dt = {dt_ms!r}",
                 "# pyNN.nest defaults to NEST's precise-time (off-grid) models; the network is on the grid",
                 "extra = {'spike_precision': 'on_grid'} if sim.__name__ == 'pyNN.nest' else {}",
                 "sim.setup(timestep=dt, min_delay=dt, **extra)",
                 "if sim.__name__ == 'pyNN.nest' and getattr(sim.IF_curr_delta, 'variable_map', None) is None:",
                 "    # pyNN 0.13's NEST IF_curr_delta has no variable map: initialize(v=...) would be ignored",
                 "    sim.IF_curr_delta.variable_map, sim.IF_curr_delta.scale_factors = {'v': 'V_m'}, {'v': 1}",
                 f"trains = [[] for _ in range({n_in})]",
                 "if args.input:",
                 "    steps, ids = np.nonzero(np.load(args.input).reshape(-1, len(trains)))",
                 "    for s, i in zip(steps, ids):",
                 "        trains[i].append((s + 1) * dt)",
                 "if sim.__name__ == 'pyNN.nest':  # its sources pass a parrot neuron, min_delay earlier: times",
                 "    trains = [[t + 0.5 * dt for t in tr] for tr in trains]  # mid-step, and one step later",
                 f"source = sim.Population({n_in}, sim.SpikeSourceArray(spike_times=[Sequence(t) for t in trains]),"
                 " label='input')", "pre = source"]
        for k, layer in enumerate(layers):
            if layer.weight is None:
                continue  # flatten: indices are already flat
            n = int(np.prod(layer.out_shape))
            neuron = layer.neuron
            if isinstance(neuron, nir.CubaLIF):
                # forward Euler decays (what from_nir runs) as exact decays: tau' = -dt / ln(1 - dt / tau)
                tau_m = _euler_tau(float(np.median(neuron.tau_mem)), self.dt) * 1000.0
                r = float(np.median(neuron.r))
                tau_s = _euler_tau(float(np.median(neuron.tau_syn)), self.dt) * 1000.0
                v_rest = float(np.median(neuron.v_leak))
                cell = (f"sim.IF_curr_exp(tau_m={tau_m!r}, cm={tau_m / r!r}, tau_syn_E={tau_s!r}, tau_syn_I={tau_s!r}, "
                        f"v_rest={v_rest!r}, v_reset={float(np.median(neuron.v_reset))!r}, "
                        f"v_thresh={float(np.median(neuron.v_threshold))!r}, tau_refrac=0.0)")
                scale = 1.0
            else:
                tau = float(np.median(getattr(neuron, "tau", np.inf))) if neuron is not None else np.inf
                # the discrete model decays by 1 - dt/tau a step (forward Euler); iaf_psc_delta by exp(-dt/tau_m):
                # tau_m = -dt / ln(1 - dt/tau) makes them equal (beta 0.9 stays 0.9, not exp(-0.1) = 0.905)
                tau_ms = _euler_tau(tau, self.dt) * 1000.0 if math.isfinite(tau) else 1e9
                r = float(np.median(neuron.r)) if neuron is not None else 1.0
                thr = float(np.median(neuron.v_threshold)) if neuron is not None and hasattr(neuron, "v_threshold") \
                    else 1e9
                v_reset = float(np.median(neuron.v_reset)) if neuron is not None and neuron.v_reset is not None \
                    else 0.0
                v_rest = float(np.median(neuron.v_leak)) if neuron is not None and hasattr(neuron, "v_leak") else 0.0
                cell = (f"sim.IF_curr_delta(tau_m={tau_ms!r}, cm=1.0, v_rest={v_rest!r}, v_reset={v_reset!r}, "
                        f"v_thresh={thr!r}, tau_refrac=0.0)")
                # mV per unit input: the Euler input gain (IF: r dt)
                scale = float(coefficients.input_gain(r, tau, self.dt, "euler") if math.isfinite(tau)
                              else coefficients.integrator_gain(r, self.dt))
            if layer.kind == "dense":
                post, pre = np.nonzero(layer.weight)
                w = layer.weight[post, pre] * scale
            else:
                pre, post, w = _conv_pairs(layer.weight, layer.in_shape, layer.out_shape, layer.node.stride,
                                           layer.node.padding if not isinstance(layer.node.padding, str) else 0)
                w = np.asarray(w) * scale
            conns = [(int(a), int(b), float(c), dt_ms) for a, b, c in zip(pre, post, w, strict=True)]
            lines += [f"pop{k} = sim.Population({n}, {cell}, label={layer.name!r})",
                      # PyNN starts the membrane at -65 mV unless told: the network starts at rest
                      f"pop{k}.initialize(v={v_rest!r})",
                      f"conn{k} = {conns!r}",
                      f"exc{k} = [c for c in conn{k} if c[2] >= 0]",
                      f"inh{k} = [c for c in conn{k} if c[2] < 0]",
                      f"if exc{k}: sim.Projection(pre, pop{k}, sim.FromListConnector(exc{k}, "
                      "column_names=['weight', 'delay']), sim.StaticSynapse(), receptor_type='excitatory')",
                      # PyNN current synapses: inhibitory weights stay negative
                      f"if inh{k}: sim.Projection(pre, pop{k}, sim.FromListConnector(inh{k}, "
                      "column_names=['weight', 'delay']), sim.StaticSynapse(), receptor_type='inhibitory')",
                      f"pre = pop{k}"]
        lines += ["pre.record('spikes')", "sim.run(args.duration)",
                  "spikes = pre.get_data().segments[0].spiketrains",
                  "if args.out and sim.rank() == 0:",
                  "    times = [np.asarray(st.magnitude, float) for st in spikes]",
                  "    ids = [np.full(len(t), i) for i, t in enumerate(times)]",
                  "    cat = lambda a: np.concatenate(a) if a else np.zeros(0)  # noqa: E731",
                  "    np.savez(args.out, times=cat(times), ids=cat(ids))",
                  "sim.end()"]
        return "\n".join(lines) + "\n"

    def _write(self, graph: nir.NIRGraph, path: Path, report: FitReport) -> None:
        path.write_text(self.script(graph))


def _euler_tau(tau: float, dt: float) -> float:
    """The exact time constant whose decay per step equals forward Euler's ``1 - dt/tau``."""
    decay = float(coefficients.decay(tau, dt, "euler"))
    if not 0.0 < decay < 1.0:
        raise ValueError(f"tau = {tau} s gives a forward-Euler decay of {decay} at dt = {dt} s; PyNN needs "
                         "0 < decay < 1")
    return float(coefficients.exact_tau_of_euler(tau, dt))


class NEST(SpiNNaker):
    """The same PyNN script for NEST (``import pyNN.nest``); no core limits."""

    name = "nest"
    backend = "nest"

    def fit(self, graph: nir.NIRGraph) -> FitReport:
        rep = super().fit(graph)
        rep.target, rep.cores_used = self.name, 0
        rep.notes = ["NEST runs on the host: no per-core limits"] + _CHANGES
        return rep
