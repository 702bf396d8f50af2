"""Intel Loihi 2 through lava-dl's netx HDF5 format.

Fixed point (lava-dl netx / Loihi CUBA neuron): weights are an 8-bit mantissa in steps of 2 within
[-256, 254] times a per-layer power of two; current and voltage decays are 12-bit (``decay = value/4096``
of the state lost per step); the threshold is stored as a mantissa ``vThMant`` with
``threshold = vThMant * 64`` in weight units. Chip limits: 128 neuro-cores, up to 1 M neurons and 120 M
synapses per chip (Intel's Loihi 2 brief, a secondary source); 8192 neurons per core follows from those
two numbers and is marked unverified.

netx layout: ``layer/0..n-1`` in order; each has ``type`` (input, dense, conv, flatten, average) and
``shape`` as (x, y, z); dense: ``inFeatures``, ``outFeatures``, ``weight``, ``bias``, ``neuron``; conv:
``inChannels``, ``outChannels``, ``kernelSize``, ``stride``, ``padding``, ``dilation``, ``groups``,
``weight``, ``neuron``; ``neuron``: ``type`` = CUBA, ``iDecay``, ``vDecay``, ``vThMant``, ``refDelay``,
``gradedSpike``.

Example:
    >>> import torch, neuro
    >>> from neuro.hardware_targets import get
    >>> net = torch.nn.Sequential(neuro.nn.TimeDistributed(torch.nn.Linear(4, 3)), neuro.nn.LIF(beta=0.9))
    >>> get("loihi2").fit(neuro.to_nir(net, (4,))).fits
    True
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import nir
import numpy as np

from neuro.hardware_targets._layers import chain, fold_scales
from neuro.hardware_targets._target import FitReport, Target, Violation

SPEC = {
    "cores": 128,
    "neurons_per_chip": 1_000_000,
    "synapses_per_chip": 120_000_000,
    "neurons_per_core": 8192,  # unverified: 1 M neurons / 128 cores
    "weight_bits": 8,
    "decay_bits": 12,
    "sources": {"cores, neurons, synapses": "Intel Loihi 2 brief (secondary source, per ANCHORS.md)",
                "fixed point": "lava-dl netx format (per ANCHORS.md)",
                "neurons_per_core": "unverified (derived)"},
}


def quantize_weights(w: np.ndarray) -> tuple[np.ndarray, int]:
    """Mantissa (even integers in [-256, 254]) and exponent with ``w ~ mantissa * 2**exp / 64``."""
    wmax = float(np.max(np.abs(w))) if w.size else 0.0
    if wmax == 0:
        return np.zeros_like(w, dtype=np.int16), 0
    exp = math.ceil(math.log2(wmax / (254 / 64)))
    mant = 2 * np.round(w * 64 / 2**exp / 2)
    return np.clip(mant, -256, 254).astype(np.int16), exp


def _decay12(decay) -> np.ndarray:
    return np.clip(np.round(4096 * (1 - np.asarray(decay, np.float64))), 0, 4096).astype(np.int32)


def _neuron_fixed(neuron, exp: int, dt: float) -> dict:
    """CUBA neuron fields; the current decays fully each step (iDecay 4096) except for CubaLIF."""
    if isinstance(neuron, nir.CubaLIF):
        i_decay = _decay12(1 - dt / np.asarray(neuron.tau_syn, np.float64))
        v_decay = _decay12(1 - dt / np.asarray(neuron.tau_mem, np.float64))
    elif isinstance(neuron, nir.LIF):
        i_decay, v_decay = np.full(1, 4096), _decay12(1 - dt / np.asarray(neuron.tau, np.float64))
    else:  # IF: no leak
        i_decay, v_decay = np.full(1, 4096), np.zeros(1, np.int32)
    thr = np.asarray(neuron.v_threshold, np.float64) * 64 / 2**exp
    return {"type": "CUBA", "iDecay": int(np.median(i_decay)), "vDecay": int(np.median(v_decay)),
            "vThMant": int(np.round(np.median(thr) / 64)), "refDelay": 1, "gradedSpike": 0}


class Loihi2(Target):
    name = "loihi2"
    spec = SPEC

    def __init__(self, dt: float = 1e-4):
        self.dt = dt

    def fit(self, graph: nir.NIRGraph) -> FitReport:
        rep = FitReport(self.name)
        layers = self._layers(graph, rep, "a chain of layers (netx is sequential)")
        total_n = total_s = 0
        for layer in layers:
            if layer.weight is None:
                continue
            cores = max(1, math.ceil(layer.neurons / SPEC["neurons_per_core"]))
            rep.cores_used += cores
            total_n += layer.neurons
            total_s += layer.synapses
            row = {"name": layer.name, "kind": layer.kind, "neurons": layer.neurons, "synapses": layer.synapses,
                   "cores": cores}
            if layer.neuron is None and layer is layers[-1]:
                rep.notes.append(f"{layer.name}: output layer without neurons emitted as non-firing CUBA integrators "
                                 "(read their voltage)")
            elif layer.neuron is None:
                rep.violations.append(Violation(layer.name, "neuron after synaptic layer", "none", "CUBA neuron"))
            elif isinstance(layer.neuron, nir.LI):
                rep.notes.append(f"{layer.neuron_name}: LI readout emitted as a CUBA neuron that never fires")
            for nparam in ("v_threshold",):
                v = np.asarray(getattr(layer.neuron, nparam, [1.0]))
                if v.size > 1 and not np.allclose(v, v.reshape(-1)[0]):
                    rep.notes.append(f"{layer.neuron_name}: per-neuron {nparam} quantised to the layer median")
            rep.layers.append(row)
        for key, used, allowed in (("neurons per chip", total_n, SPEC["neurons_per_chip"]),
                                   ("synapses per chip", total_s, SPEC["synapses_per_chip"]),
                                   ("cores", rep.cores_used, SPEC["cores"])):
            if used > allowed:
                rep.violations.append(Violation("network", key, used, allowed))
        return rep

    def quantize(self, graph: nir.NIRGraph) -> nir.NIRGraph:
        """Weights to 8-bit mantissa and exponent, thresholds to vThMant, decays to 12 bit."""
        g = copy.deepcopy(graph)
        for node in g.nodes.values():
            if isinstance(node, nir.Affine | nir.Linear | nir.Conv2d):
                mant, exp = quantize_weights(np.asarray(node.weight))
                node.weight = (mant.astype(np.float32) * 2.0**exp / 64).astype(np.float32)
                if getattr(node, "bias", None) is not None:
                    node.bias = (np.round(np.asarray(node.bias) * 64 / 2**exp) * 2.0**exp / 64).astype(np.float32)
            if isinstance(node, nir.LIF | nir.CubaLIF):
                taus = ("tau",) if isinstance(node, nir.LIF) else ("tau_syn", "tau_mem")
                for t in taus:
                    decay = 1 - self.dt / np.asarray(getattr(node, t), np.float64)
                    q = 1 - _decay12(decay) / 4096
                    setattr(node, t, np.where(q < 1, self.dt / np.maximum(1 - q, 1e-12), np.inf).astype(np.float32))
        return g

    def _write(self, graph: nir.NIRGraph, path: Path, report: FitReport) -> None:
        import h5py

        layers, _ = chain(graph)
        layers = fold_scales(layers)
        with h5py.File(path, "w") as f:
            root = f.create_group("layer")
            idx = 0

            def group(kind, shape):
                nonlocal idx
                grp = root.create_group(str(idx))
                idx += 1
                grp["type"] = np.bytes_(kind)
                s = tuple(shape)
                xyz = (1, 1, s[0]) if len(s) == 1 else (s[2], s[1], s[0])  # netx: (x, y, z) = (W, H, C)
                grp["shape"] = np.array(xyz, dtype=np.int64)
                return grp

            group("input", layers[0].in_shape if layers else (1,))
            for layer in layers:
                if layer.kind == "flatten":
                    group("flatten", layer.out_shape)
                    continue
                if layer.kind in ("avgpool", "sumpool"):
                    grp = group("average", layer.out_shape)
                    grp["kernelSize"] = np.atleast_1d(layer.node.kernel_size).astype(np.int64)
                    continue
                mant, exp = quantize_weights(layer.weight)
                grp = group("dense" if layer.kind == "dense" else "conv", layer.out_shape)
                if layer.kind == "dense":
                    grp["inFeatures"] = np.int64(layer.weight.shape[1])
                    grp["outFeatures"] = np.int64(layer.weight.shape[0])
                else:
                    node = layer.node
                    grp["inChannels"] = np.int64(layer.weight.shape[1] * node.groups)
                    grp["outChannels"] = np.int64(layer.weight.shape[0])
                    grp["kernelSize"] = np.array(layer.weight.shape[2:], np.int64)
                    grp["stride"] = np.broadcast_to(np.atleast_1d(node.stride), 2).astype(np.int64)
                    pad = node.padding if not isinstance(node.padding, str) else 0
                    grp["padding"] = np.broadcast_to(np.atleast_1d(pad), 2).astype(np.int64)
                    grp["dilation"] = np.broadcast_to(np.atleast_1d(node.dilation), 2).astype(np.int64)
                    grp["groups"] = np.int64(node.groups)
                grp["weight"] = mant
                grp["weightExponent"] = np.int64(exp)
                grp["bias"] = np.round(layer.bias * 64 / 2**exp).astype(np.int32)
                neuron = grp.create_group("neuron")
                fields = _neuron_fixed(layer.neuron, exp, self.dt) if layer.neuron is not None and not isinstance(
                    layer.neuron, nir.LI) else {"type": "CUBA", "iDecay": 4096, "vDecay": 0,
                                                "vThMant": (1 << 17) - 1, "refDelay": 1, "gradedSpike": 0}
                for k, v in fields.items():
                    neuron[k] = np.bytes_(v) if isinstance(v, str) else np.int64(v)
