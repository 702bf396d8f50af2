"""SynSense Xylo (Rockpool): a dense recurrent-capable LIF core with few inputs and outputs.

Limits (Rockpool documentation, per ANCHORS.md): XyloAudio 2: 1000 hidden neurons, 8 outputs, fan-out 64;
XyloAudio 3: 992 / 32 / 1024; XyloIMU: 496 / 16 / 512; 16 inputs, 8-bit weights, bit-shift decays
(``dash = round(log2(tau / dt))``), reset by subtraction.

Example:
    >>> import torch, neuro
    >>> from neuro.hardware_targets import get
    >>> net = torch.nn.Sequential(neuro.nn.TimeDistributed(torch.nn.Linear(12, 20)), neuro.nn.LIF(beta=0.9),
    ...                           neuro.nn.TimeDistributed(torch.nn.Linear(20, 4)), neuro.nn.LIF(beta=0.9))
    >>> get("xylo").fit(neuro.to_nir(net, (12,))).fits
    True
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import nir
import numpy as np

from neuro.hardware_targets._layers import chain, fold_scales
from neuro.hardware_targets._target import FitReport, Target, Violation

VARIANTS = {"xylo-audio2": (1000, 8, 64), "xylo-audio3": (992, 32, 1024), "xylo-imu": (496, 16, 512)}
SPEC = {"inputs": 16, "variants": VARIANTS, "weight_bits": 8, "source": "Rockpool documentation (per ANCHORS.md)"}


class Xylo(Target):
    name = "xylo"
    spec = SPEC

    def __init__(self, variant: str = "xylo-audio2", dt: float = 1e-4):
        if variant not in VARIANTS:
            raise ValueError(f"unknown Xylo variant {variant!r}; known: {', '.join(VARIANTS)}")
        self.variant, self.dt = variant, dt

    def fit(self, graph: nir.NIRGraph) -> FitReport:
        hidden_max, out_max, fanout_max = VARIANTS[self.variant]
        rep = FitReport(f"{self.name} ({self.variant})")
        layers = self._layers(graph, rep, "dense layers")
        dense = [ly for ly in layers if ly.weight is not None]
        for ly in layers:
            if ly.kind not in ("dense", "flatten"):
                rep.violations.append(Violation(ly.name, "layer type", ly.kind, "dense"))
        if not dense:
            return rep
        n_in = dense[0].weight.shape[1]
        if n_in > SPEC["inputs"]:
            rep.violations.append(Violation(dense[0].name, "input channels", n_in, SPEC["inputs"]))
        hidden = sum(ly.weight.shape[0] for ly in dense[:-1])
        if hidden > hidden_max:
            rep.violations.append(Violation("hidden layers", "hidden neurons", hidden, hidden_max))
        if dense[-1].weight.shape[0] > out_max:
            rep.violations.append(Violation(dense[-1].name, "output neurons", dense[-1].weight.shape[0], out_max))
        for ly in dense:
            fan = int(np.max(np.count_nonzero(ly.weight, axis=0)))
            if fan > fanout_max:
                rep.violations.append(Violation(ly.name, "fan-out per neuron", fan, fanout_max))
            if ly.neuron is not None and not isinstance(ly.neuron, nir.LIF | nir.CubaLIF | nir.IF):
                rep.violations.append(Violation(ly.name, "neuron type", type(ly.neuron).__name__, "LIF"))
            rep.layers.append({"name": ly.name, "neurons": ly.weight.shape[0], "max_fanout": fan})
        rep.cores_used = 1
        return rep

    def _write(self, graph: nir.NIRGraph, path: Path, report: FitReport) -> None:
        layers = [ly for ly in fold_scales(chain(graph)[0]) if ly.weight is not None]
        cfg = {"chip": self.variant, "layers": []}
        for ly in layers:
            scale = 127 / max(float(np.abs(ly.weight).max()), 1e-12)
            tau = float(np.median(getattr(ly.neuron, "tau", getattr(ly.neuron, "tau_mem", np.inf))))
            dash = int(round(math.log2(tau / self.dt))) if math.isfinite(tau) and tau > self.dt else 0
            thr = float(np.median(getattr(ly.neuron, "v_threshold", 1.0)))
            cfg["layers"].append({"name": ly.name, "weights_int8": np.round(ly.weight * scale).astype(int).tolist(),
                                  "dash_mem": dash, "threshold": int(round(thr * scale))})
        path.write_text(json.dumps(cfg))
