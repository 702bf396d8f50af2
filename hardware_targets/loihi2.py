"""Intel Loihi 2 through lava-dl's netx HDF5 format, checked with a bit-accurate model of netx and Lava's
fixed-point processes (:mod:`neuro.hardware_targets.loihi2_reference`).

**What is written.** ``layer/0..n-1``: ``input`` (the input shape only, no neuron group: the network's input
port feeds the first synapse), then ``dense`` / ``conv`` layers with a CUBA ``neuron`` group and ``flatten``
markers, nothing else (netx builds only input, dense, dense_rec, dense_comp, conv and flatten). Shapes are
(x, y, z) = (W, H, C); conv weights are stored (C_out, C_in/groups, H, W) with stride, padding and dilation
as (H, W), which netx reverses and flips into Lava's (C_out, W, H, C_in) convolution (so the stored kernel
acts as PyTorch's cross-correlation); dense weights are (out, in) with inputs in (C, H, W) flatten order,
which is what netx's flatten (transpose (x, y, z) -> (z, y, x), flatten) presents.

**One integer scale per layer** (as lava-dl slayer exports: weights ``w * w_scale``, ``vThMant = threshold *
w_scale``; Lava adds inputs as ``a_in << 6`` and compares ``v > vThMant << 6``). For each layer the per-step
voltage increment of one input spike, ``gain * w`` with the NIR node's input gain (LIF: ``dt r / tau`` under
forward Euler, IF: ``dt r``, CubaLIF: ``(dt w_in / tau_syn)(dt r / tau_mem)``; neuro-snn's own exports have
gain 1), is multiplied by ``2**k`` and rounded to even integers in [-256, 254] (8-bit mixed-sign weights,
which netx's ``optimize_weight_bits`` and Lava's truncation keep exactly); ``vThMant = floor(threshold 2**k)``
(exact for the strict test ``v > threshold`` on integer sums); ``bias = round((gain b + dt/tau v_leak)
2**k)``. ``k`` is the largest power of two that keeps the weights in 8 bits, ``vThMant`` in 17 bits and
``bias`` in 13 bits; when ``vThMant`` or the bias force ``k`` down the weights keep fewer bits (a note),
and when no weight survives it is a Violation. Per-neuron thresholds and gains are folded into the weight
rows feeding each neuron (exact: the dynamics are linear and the reset goes to 0), per output channel for
conv; what cannot be folded (per-neuron decays, per-position conv thresholds) collapses to the layer
median, with a note.

**Average and sum pooling** (linear) are folded into the next synaptic layer: pooling k (stride k, no
padding) before a conv with kernel K, stride s, padding p, dilation d gives a conv with kernel
``k d (K - 1) + k``, stride ``k s``, padding ``k p`` and taps ``W / k**2`` (sum pooling: ``W``); before
flatten -> dense, ``W'[o, c, h, w] = W[o, c, h // k, w // k] / k**2``. Anything else is a Violation.

**Input.** Binary spikes go to the first synapse as they are (netx ``input_message_bits = 0``). Analog input
(the converted networks' first layer) is sent as graded spikes, ``q = round(x 2**k_in)`` with
``|q| < 2**input_bits`` (load the file with ``netx.hdf5.Network(path, input_message_bits=input_bits)``);
``k_in`` is folded into the first layer's scale and stored in the file's root attribute
``neuro.input_scale``. (The other real deployment, a rate-coding input layer driven by bias as in lava-dl's
PilotNet tutorial, would quantise every pixel to a rate 1/n under the hard reset.)

**What changes on the chip** (the fit report says it per layer): the reset is to 0 (subtractive resets are
lost), each synaptic layer adds one step of delay (Lava buffers every Dense/Conv output), so a layer k
synapses deep integrates k steps of its bias before the input reaches it unless it is cleared then (netx's
``Network(path, reset_interval=T + L, reset_offset=1)``, which :meth:`Loihi2.simulate` models), initial
membranes (``v_init``) are not in the format (the chip starts at 0), thresholds and decays are one value
per layer. For converted networks, ``neuro.convert.ann_to_snn(..., reset="zero", v_init=0.0,
bias_shift_timesteps=T // 2)`` targets this neuron. A non-spiking readout (a final synaptic layer without
neurons, or LI) is emitted as CUBA neurons that integrate without firing (``vThMant = 2**17 - 1``); its
voltage is the output.

Chip limits: 128 neuro-cores, up to 1 M neurons and 120 M synapses per chip (Intel's Loihi 2 brief, a
secondary source); 8192 neurons per core follows from those two numbers and is marked unverified.

Example:
    >>> import torch, neuro
    >>> from neuro.hardware_targets import get
    >>> net = torch.nn.Sequential(neuro.nn.TimeDistributed(torch.nn.Linear(4, 3)), neuro.nn.LIF(beta=0.75))
    >>> graph = neuro.to_nir(net, (4,))
    >>> get("loihi2").fit(graph).fits
    True
    >>> get("loihi2").simulate(graph, torch.ones(6, 2, 4)).shape   # bit-accurate run of the netx file
    torch.Size([6, 2, 3])
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nir
import numpy as np

from neuro import _checks
from neuro.hardware_targets._layers import Layer, chain
from neuro.hardware_targets._target import FitReport, Target, TargetError, Violation
from neuro.models import coefficients

SPEC = {
    "cores": 128,
    "neurons_per_chip": 1_000_000,
    "synapses_per_chip": 120_000_000,
    "neurons_per_core": 8192,  # unverified: 1 M neurons / 128 cores
    "weight_bits": 8,
    "decay_bits": 12,
    "state_bits": 24,
    "vth_bits": 17,
    "bias_bits": 13,
    "sources": {"cores, neurons, synapses": "Intel Loihi 2 brief (secondary source, per ANCHORS.md)",
                "fixed point": "lava-dl netx hdf5.py/utils.py and Lava lif/dense/conv models (public source)",
                "neurons_per_core": "unverified (derived)"},
}
VTH_MAX = (1 << 17) - 1  # PyLifModelBitAcc: vth unsigned 17 bit
BIAS_MAX = (1 << 12) - 1  # bias_mant signed 13 bit
W_POS, W_NEG = 254, 256  # mixed-sign 8-bit weights, even integers
STATE_MAX = (1 << 23) - 1


@dataclass
class _Fixed:
    """One netx layer as written: float effective weights and their integer form on one scale."""

    name: str
    kind: str  # dense or conv
    in_shape: tuple
    out_shape: tuple
    w: np.ndarray  # per-step voltage increment per unit input (graph units)
    b: np.ndarray  # per-step bias increment, one per output neuron (dense) or channel (conv)
    thr: float | None  # None: readout that never fires
    i_decay: int
    v_decay: int
    readout: str | None = None  # None, "integrator" (no neuron) or "li"
    conv: dict = field(default_factory=dict)
    flatten_before: bool = False
    k: int = 0
    in_scale: float = 1.0  # graph input units per integer message (first layer with graded input)
    W: np.ndarray | None = None
    B: np.ndarray | None = None
    vth: int = VTH_MAX


@dataclass
class _Plan:
    layers: list
    in_shape: tuple
    out_scale: np.ndarray | None  # a trailing Scale node (spikes that carry an amplitude)
    input_bits: int | None
    input_scale: float


def _decay12(rate) -> int:
    """The 12-bit decay ``round(4096 dt / tau)`` (Lava loses ``decay/4096`` of the state per step)."""
    return int(np.clip(np.round(4096 * float(rate)), 0, 4096))


def _pair(v) -> tuple[int, int]:
    a = np.broadcast_to(np.atleast_1d(np.asarray(v)).reshape(-1), 2)
    return int(a[0]), int(a[1])


def _meta(graph, node_name, key, default=None):
    return (graph.metadata or {}).get(f"neuro.{node_name}.{key}", default)


class Loihi2(Target):
    """Loihi 2 (lava-dl netx). ``dt`` is the step the NIR graph is discretised at (forward Euler);
    ``input_bits`` (None: the input is binary spikes) sets graded input messages of that many bits, and
    ``input_max`` the largest input magnitude they must carry (``simulate`` takes it from the data when
    not given)."""

    name = "loihi2"
    spec = SPEC

    def __init__(self, dt: float = 1e-4, input_bits: int | None = None, input_max: float | None = None):
        dt = _checks.check_dt(dt)
        if input_bits is not None and (not isinstance(input_bits, int) or not 1 <= input_bits <= 24):
            raise ValueError(f"input_bits must be an int in 1..24 or None, got {input_bits!r}")
        if input_max is not None and not (isinstance(input_max, int | float) and math.isfinite(input_max)
                                          and input_max > 0):
            raise ValueError(f"input_max must be a finite number > 0, got {input_max!r}")
        self.dt, self.input_bits, self.input_max = float(dt), input_bits, input_max

    # ------------------------------------------------------------------ planning
    def _neuron_terms(self, graph, layer: Layer, rep: FitReport, last: bool):
        """(gain, threshold, bias_from_leak, i_decay, v_decay, readout) arrays/values for ``layer``."""
        n, shape, dt = layer.neuron, layer.out_shape, self.dt

        def full(v):
            return np.broadcast_to(np.asarray(v, np.float64), shape).astype(np.float64)

        if n is None or isinstance(n, nir.LI):
            if not last:
                rep.violations.append(Violation(layer.name, "neuron after synaptic layer", "none", "CUBA neuron"))
            if n is None:
                rep.notes.append(f"{layer.name}: readout without neurons emitted as CUBA integrators that never fire "
                                 "(iDecay 4096, vDecay 0, vThMant 2**17-1); the output is their voltage")
                return full(1.0), None, full(0.0), 4096, 0, "integrator"
            tau = full(n.tau)
            rep.notes.append(f"{layer.neuron_name}: LI readout emitted as CUBA neurons that never fire")
            rate = coefficients.euler_rate(tau, dt)
            gain = coefficients.input_gain(full(n.r), tau, dt, "euler")
            return gain, None, full(rate * np.asarray(n.v_leak)), 4096, \
                self._collapse(layer, "vDecay", rate, rep), "li"
        if isinstance(n, nir.CubaLIF):
            ts, tm = full(n.tau_syn), full(n.tau_mem)
            c = coefficients.cuba_lif(dt, "euler", tau_syn=ts, tau_mem=tm, r=full(n.r), w_in=full(n.w_in))
            gain = c["syn_gain"] * c["i_new"]
            i_rate, v_rate = coefficients.euler_rate(ts, dt), coefficients.euler_rate(tm, dt)
            i_d, v_d = self._collapse(layer, "iDecay", i_rate, rep), self._collapse(layer, "vDecay", v_rate, rep)
            leak = v_rate * full(n.v_leak)
        elif isinstance(n, nir.LIF):
            tau = full(n.tau)
            rate = coefficients.euler_rate(tau, dt)
            gain, i_d, v_d = coefficients.input_gain(full(n.r), tau, dt, "euler"), 4096, \
                self._collapse(layer, "vDecay", rate, rep)
            leak = rate * full(n.v_leak)
        else:  # IF
            gain, i_d, v_d, leak = coefficients.integrator_gain(full(n.r), dt), 4096, 0, full(0.0)
        v_reset = full(n.v_reset)
        if np.any(v_reset != 0):
            rep.violations.append(Violation(layer.neuron_name, "reset value", float(np.max(np.abs(v_reset))),
                                            "0 (Loihi's CUBA neuron resets v to 0)"))
        reset = _meta(graph, layer.neuron_name, "reset", "zero")
        if reset != "zero":
            rep.notes.append(f"{layer.neuron_name}: the graph's {reset!r} reset becomes Loihi's hard reset to 0 in "
                             "the same step (what exceeds the threshold is lost)")
        v_init = np.asarray(_meta(graph, layer.neuron_name, "v_init", 0.0), np.float64)
        if np.any(v_init != 0):
            top = float(np.max(np.abs(v_init)))
            rep.notes.append(f"{layer.neuron_name}: initial membrane v_init (up to {top:.3g}) is not in the netx "
                             "format; the chip starts at v = 0")
        return gain, full(n.v_threshold), leak, i_d, v_d, None

    def _collapse(self, layer: Layer, what: str, rate, rep: FitReport) -> int:
        r = np.asarray(rate, np.float64).reshape(-1)
        d = np.array([_decay12(x) for x in np.unique(r)])
        if d.size > 1 and not np.all(d == d[0]):
            rep.notes.append(f"{layer.neuron_name}: per-neuron {what} ({d.min()}..{d.max()}) collapsed to the layer "
                             "median (netx stores one value a layer)")
        return _decay12(np.median(r))

    @staticmethod
    def _per_row(layer: Layer, values: np.ndarray, what: str, rep: FitReport):
        """Per-output values as one per weight row (dense: neuron, conv: channel); median within channels."""
        if layer.kind == "dense":
            return values.reshape(-1)
        per_c = values.reshape(values.shape[0], -1)
        if not np.allclose(per_c, per_c[:, :1]):
            rep.notes.append(f"{layer.neuron_name}: per-position {what} within a conv channel collapsed to the channel "
                             "median (a conv shares one kernel per channel)")
        return np.median(per_c, axis=1)

    def _fold_pools(self, layers: list[Layer], rep: FitReport) -> list:
        """Synaptic layers with average/sum pooling folded in, and flatten markers."""
        out, pend, flat = [], None, False  # pend: (kh, kw, divisor, shape before pooling)
        for layer in layers:
            if layer.kind in ("avgpool", "sumpool"):
                node = layer.node
                kh, kw = _pair(node.kernel_size)
                sh, sw = _pair(node.stride if node.stride is not None else node.kernel_size)
                ph, pw = _pair(node.padding)
                if layer.neuron is not None or (sh, sw) != (kh, kw) or (ph, pw) != (0, 0) or flat:
                    rep.violations.append(Violation(layer.name, "pooling folded into the next layer",
                                                    f"kernel {(kh, kw)} stride {(sh, sw)} padding {(ph, pw)}"
                                                    + (" with neurons" if layer.neuron is not None else ""),
                                                    "stride = kernel, no padding, followed by conv or flatten+dense"))
                    return []
                div = kh * kw if layer.kind == "avgpool" else 1
                if pend is None:
                    pend = (kh, kw, div, layer.in_shape)
                else:
                    pend = (pend[0] * kh, pend[1] * kw, pend[2] * div, pend[3])
                continue
            if layer.kind == "flatten":
                flat = True
                continue
            if layer.kind not in ("dense", "conv"):
                rep.violations.append(Violation(layer.name, "layer type", layer.kind, "dense, conv, flatten"))
                return []
            w = np.asarray(layer.weight, np.float64)
            in_shape = layer.in_shape
            conv = {}
            if layer.kind == "conv":
                node = layer.node
                k = w.shape[2:]
                if isinstance(node.padding, str):
                    pad = tuple((np.array(k) - 1) // 2) if node.padding == "same" else (0, 0)
                else:
                    pad = _pair(node.padding)
                conv = {"stride": _pair(node.stride), "padding": pad, "dilation": _pair(node.dilation),
                        "groups": int(node.groups)}
            if pend is not None:
                kh, kw, div, shape0 = pend
                if layer.kind == "conv":
                    c, h, wd = shape0
                    if h % kh or wd % kw:
                        rep.violations.append(Violation(layer.name, "pooling folded into conv", f"map {h}x{wd}",
                                                        f"a multiple of the pooling {kh}x{kw}"))
                        return []
                    dh, dw = conv["dilation"]
                    K = w.shape[2:]
                    nw = np.zeros((*w.shape[:2], kh * dh * (K[0] - 1) + kh, kw * dw * (K[1] - 1) + kw))
                    for a in range(K[0]):
                        for b in range(K[1]):
                            nw[:, :, kh * dh * a:kh * dh * a + kh, kw * dw * b:kw * dw * b + kw] = \
                                w[:, :, a:a + 1, b:b + 1] / div
                    w = nw
                    conv = {"stride": (conv["stride"][0] * kh, conv["stride"][1] * kw),
                            "padding": (conv["padding"][0] * kh, conv["padding"][1] * kw), "dilation": (1, 1),
                            "groups": conv["groups"]}
                else:
                    c, h, wd = shape0
                    hp, wp = h // kh, wd // kw
                    wr = w.reshape(w.shape[0], c, hp, wp) / div
                    nw = np.zeros((w.shape[0], c, h, wd))
                    nw[:, :, :hp * kh, :wp * kw] = np.repeat(np.repeat(wr, kh, axis=2), kw, axis=3)
                    w = nw.reshape(w.shape[0], -1)  # rows/columns dropped by floor pooling stay 0
                in_shape = shape0 if layer.kind == "conv" else (int(np.prod(shape0)),)
                rep.notes.append(f"{layer.name}: {'average' if div > 1 else 'sum'} pooling {kh}x{kw} folded into its "
                                 f"weights (netx cannot build pooling)")
                pend = None
            out.append((layer, w, in_shape, conv, flat))
            flat = False
        if pend is not None:
            rep.violations.append(Violation(layers[-1].name, "pooling folded into the next layer", "no layer after it",
                                            "a conv or flatten+dense after the pooling"))
            return []
        return out

    def _plan(self, graph: nir.NIRGraph, rep: FitReport, input_bits=None, input_max=None) -> _Plan | None:
        raw, _ = chain(graph)
        layers = self._layers(graph, rep, "a chain of layers (netx is sequential)")
        if not layers or rep.violations:
            return None
        out_scale = None
        if raw and raw[-1].kind == "scale":
            out_scale = np.asarray(raw[-1].node.scale, np.float64)
        folded = self._fold_pools(layers, rep)
        if not folded:
            return None
        planned = []
        for idx, (layer, w, in_shape, conv, flat) in enumerate(folded):
            last = idx == len(folded) - 1
            gain, thr, leak, i_d, v_d, readout = self._neuron_terms(graph, layer, rep, last)
            b = np.broadcast_to(np.asarray(layer.bias, np.float64).reshape(-1, *([1] * (len(layer.out_shape) - 1))),
                                layer.out_shape)
            bias_full = gain * b + leak
            row_gain = self._per_row(layer, gain, "gain", rep)
            row_bias = self._per_row(layer, bias_full, "bias", rep)
            if thr is not None:
                row_thr = self._per_row(layer, thr, "threshold", rep)
                if np.any(row_thr <= 0):
                    rep.violations.append(Violation(layer.neuron_name, "threshold", float(row_thr.min()), "> 0"))
                    return None
                ref = float(np.median(row_thr))
                fold = ref / row_thr
                if not np.allclose(fold, 1.0):
                    rep.notes.append(f"{layer.neuron_name}: per-{'neuron' if layer.kind == 'dense' else 'channel'} "
                                     f"thresholds folded into the weight rows (exact); vThMant encodes {ref:.4g}")
            else:
                ref, fold = None, np.ones_like(row_gain)
            scale = (row_gain * fold).reshape(-1, *([1] * (w.ndim - 1)))
            planned.append(_Fixed(layer.name, layer.kind, in_shape, layer.out_shape, w * scale, row_bias * fold, ref,
                                  i_d, v_d, readout, conv, flat))
        plan = _Plan(planned, tuple(folded[0][2]), out_scale, input_bits, 1.0)
        self._scales(plan, rep, input_max)
        return plan

    def _scales(self, plan: _Plan, rep: FitReport, input_max) -> None:
        for i, ly in enumerate(plan.layers):
            wmax = float(np.max(ly.w)) if ly.w.size else 0.0
            wmin = float(np.min(ly.w)) if ly.w.size else 0.0
            lim = min(W_POS / wmax if wmax > 0 else np.inf, W_NEG / -wmin if wmin < 0 else np.inf)
            k_w = math.floor(math.log2(lim)) if math.isfinite(lim) else 0
            bmax = float(np.max(np.abs(ly.b))) if ly.b.size else 0.0
            k_b = math.floor(math.log2(BIAS_MAX / bmax)) if bmax > 0 else 10**6
            if ly.thr is not None:
                k_t = math.floor(math.log2(VTH_MAX / ly.thr))
            else:  # a readout: keep 8-bit weights, head room for 2**5 steps of the largest input
                k_t = k_w
            k_in = 0
            if i == 0 and plan.input_bits is not None:
                xmax = float(input_max if input_max is not None else 1.0)
                k_in_max = math.floor(math.log2((2 ** plan.input_bits - 1) / xmax))
                # weights per message are w 2**-k_in: k counts the product of both scales
                deficit = max(0, k_w + k_in_max - min(k_t, k_b))
                k_in = k_in_max - deficit // 2
                k = min(k_w + k_in, k_t, k_b)
                plan.input_scale = 2.0 ** k_in
                ly.in_scale = 2.0 ** -k_in
                k_w_eff = k - k_in
            else:
                k = min(k_w, k_t, k_b)
                k_w_eff = k
            ly.k = k
            W = 2 * np.round(ly.w * 2.0 ** k_w_eff / 2)
            ly.W = np.clip(W, -W_NEG, W_POS).astype(np.int64)
            ly.B = np.round(ly.b * 2.0 ** k).astype(np.int64)
            ly.vth = int(math.floor(ly.thr * 2.0 ** k)) if ly.thr is not None else VTH_MAX
            if ly.vth > VTH_MAX or ly.vth < 0:
                rep.violations.append(Violation(ly.name, "vThMant (17 bit)", ly.vth, VTH_MAX))
            if k_w_eff < k_w:
                bits = max(0, int(np.ceil(np.log2(max(1, int(np.max(np.abs(ly.W))) + 1)))))
                why = "vThMant (17 bits)" if k == k_t else "the 13-bit bias"
                rep.notes.append(f"{ly.name}: weights keep {bits} of 8 bits because {why} bounds the layer scale")
            if wmax > 0 or wmin < 0:
                if not np.any(ly.W):
                    rep.violations.append(Violation(ly.name, f"weights on the layer scale 2**{k}", "all round to 0",
                                                    "at least one non-zero 8-bit weight (threshold or bias too large"
                                                    " relative to the weights)"))
            pos = np.maximum(ly.W, 0).reshape(ly.W.shape[0], -1)
            worst = float(pos.sum(axis=1).max()) if ly.W.size else 0.0
            if i == 0 and plan.input_bits is not None:
                worst *= 2 ** plan.input_bits - 1
            if worst >= 1 << 17:
                rep.notes.append(f"{ly.name}: worst-case input in one step ({int(worst)} weight units) would wrap the "
                                 "24-bit current u; simulate reports whether it happens")

    # ------------------------------------------------------------------ Target interface
    def quantize(self, graph: nir.NIRGraph) -> nir.NIRGraph:
        """Not offered: a float graph with rounded weights is not what the chip computes (hard reset, one step
        of delay a layer, truncating 24-bit arithmetic). Use :meth:`simulate` (the bit-accurate model)."""
        raise NotImplementedError("Loihi2.quantize: use simulate(graph, x), the bit-accurate netx/Lava model")

    def fit(self, graph: nir.NIRGraph) -> FitReport:
        rep = FitReport(self.name)
        plan = self._plan(graph, rep, self.input_bits, self.input_max)
        if plan is None:
            return rep
        total_n = total_s = 0
        for ly in plan.layers:
            neurons = int(np.prod(ly.out_shape))
            if ly.kind == "dense":
                synapses = int(np.count_nonzero(ly.W))
            else:
                synapses = int(np.count_nonzero(ly.W)) * int(np.prod(ly.out_shape[1:]))
            cores = max(1, math.ceil(neurons / SPEC["neurons_per_core"]))
            rep.cores_used += cores
            total_n += neurons
            total_s += synapses
            rep.layers.append({"name": ly.name, "kind": ly.kind, "neurons": neurons, "synapses": synapses,
                               "cores": cores, "scale": f"2**{ly.k}", "vThMant": ly.vth, "iDecay": ly.i_decay,
                               "vDecay": ly.v_decay})
        for key, used, allowed in (("neurons per chip", total_n, SPEC["neurons_per_chip"]),
                                   ("synapses per chip", total_s, SPEC["synapses_per_chip"]),
                                   ("cores", rep.cores_used, SPEC["cores"])):
            if used > allowed:
                rep.violations.append(Violation("network", key, used, allowed))
        L = len(plan.layers)
        rep.notes.append(f"each synaptic layer adds one step of delay (Lava buffers Dense/Conv outputs): the output "
                         f"at step t answers the input at step t - {L}; run one sample per T + {L} steps with "
                         f"netx Network(path, reset_interval=T + {L}, reset_offset=1) so each layer starts from 0 "
                         "when the sample reaches it (else layer k integrates k steps of bias first)")
        rep.notes.append("thresholds and decays are one value per layer (vThMant, iDecay, vDecay); weights, threshold "
                         "and bias of a layer share one integer scale")
        if plan.input_bits is None:
            rep.notes.append("input: binary spikes into the first synapse (netx input_message_bits = 0); analog input "
                             "needs input_bits (graded spikes)")
        else:
            rep.notes.append(f"input: graded spikes q = round(x * {plan.input_scale:g}), {plan.input_bits} bits "
                             f"(netx Network(..., input_message_bits={plan.input_bits}))")
        return rep

    def _write(self, graph: nir.NIRGraph, path: Path, report: FitReport, plan: _Plan | None = None) -> None:
        import h5py

        if plan is None:
            plan = self._plan(graph, FitReport(self.name), self.input_bits, self.input_max)
        if plan is None:
            raise TargetError(f"the network cannot be written for {self.name}:\n" +
                              "\n".join(f"  {v}" for v in report.violations))

        def xyz(shape):
            s = tuple(int(a) for a in shape)
            return np.array((1, 1, s[0]) if len(s) == 1 else (s[2], s[1], s[0]), np.int64)

        with h5py.File(path, "w") as f:
            f.attrs["neuro.format"] = "lava-dl netx (written by neuro-snn)"
            f.attrs["neuro.input_message_bits"] = int(plan.input_bits or 0)
            f.attrs["neuro.input_scale"] = float(plan.input_scale)
            f.attrs["neuro.delay_steps"] = len(plan.layers)
            f.attrs["neuro.readout_voltage_to_graph_units"] = float(2.0 ** -plan.layers[-1].k / 64)
            root = f.create_group("layer")
            groups = []

            def group(kind, shape):
                g = root.create_group(str(len(groups)))
                groups.append(g)
                g["type"] = np.bytes_(kind)
                g["shape"] = xyz(shape)
                return g

            group("input", plan.in_shape)
            for i, ly in enumerate(plan.layers):
                if ly.flatten_before and i > 0:  # netx flattens the previous layer's output; none before the first
                    group("flatten", (int(np.prod(ly.in_shape)),))
                g = group(ly.kind, ly.out_shape)
                if ly.kind == "dense":
                    g["inFeatures"] = np.int64(ly.W.shape[1])
                    g["outFeatures"] = np.int64(ly.W.shape[0])
                else:
                    c = ly.conv
                    g["inChannels"] = np.int64(ly.W.shape[1] * c["groups"])
                    g["outChannels"] = np.int64(ly.W.shape[0])
                    g["kernelSize"] = np.array(ly.W.shape[2:], np.int64)
                    for key in ("stride", "padding", "dilation"):
                        g[key] = np.array(c[key], np.int64)  # (H, W): netx reverses them to Lava's (x, y)
                    g["groups"] = np.int64(c["groups"])
                g["weight"] = ly.W.astype(np.int64)
                if np.any(ly.B):
                    g["bias"] = ly.B.astype(np.int64)
                nrn = g.create_group("neuron")
                nrn["type"] = np.bytes_("CUBA")
                for key, val in (("iDecay", ly.i_decay), ("vDecay", ly.v_decay), ("vThMant", ly.vth),
                                 ("refDelay", 1), ("gradedSpike", 0)):
                    nrn[key] = np.int64(val)

    def emit(self, graph: nir.NIRGraph, path, force: bool = False, overwrite: bool = False) -> FitReport:
        """Write the netx HDF5 file (see the module docstring); refuses a graph that does not fit unless
        ``force``, and never writes a layer type netx cannot build (a graph whose pooling cannot be folded
        raises :class:`TargetError` even with ``force``)."""
        return super().emit(graph, path, force=force, overwrite=overwrite)

    def simulate(self, graph: nir.NIRGraph, x, dt: float | None = None, convention: str = "neuro",
                 align: bool = True, batch_size: int = 256, return_info: bool = False):
        """Emit ``graph`` to a temporary netx file and run it through the bit-accurate reference model.

        Args:
            graph: the NIR graph.
            x: input ``[T, B, *input_shape]`` (torch tensor or array). Binary 0/1 input is sent as spikes;
                anything else as graded spikes ``q = round(x 2**k_in)`` of ``input_bits`` bits (8 when the
                target has none), ``k_in`` chosen from ``input_max`` (default: the largest ``|x|``).
            dt, convention: accepted for the interface of :meth:`Target.simulate`; the chip's step is
                the target's ``dt``.
            align: run ``T + L`` steps (``L`` synaptic layers, one step of delay each; no input after step
                T) with netx's staggered reset (``Network(path, reset_interval=T + L, reset_offset=1)``: layer
                i clears u and v at step i + 1, when the input first reaches it, so the bias it integrated
                while the pipeline filled is dropped), and return chip steps ``L .. T + L - 1``, so that
                ``out[t]`` answers ``x[t]`` as in the float network. With ``align=False`` the raw first ``T``
                chip steps of a plain ``Network(path)`` are returned.
            return_info: also return a dict (input scale, delay, whether any readout fired or a state
                wrapped).
        Returns:
            ``[T, B, *output_shape]`` float32 torch tensor: the output layer's spikes (times a trailing spike
            amplitude), or for a non-firing readout its voltage in graph units (LI) or the per-step
            increase of its voltage (a readout without neurons, whose float output is the per-step current),
            so ``out.sum(0)`` is the voltage a deployment reads at the end.
        """
        import torch

        from neuro.hardware_targets.loihi2_reference import load

        xt = torch.as_tensor(x).detach().cpu()
        if xt.ndim < 3:
            raise ValueError(f"x must be time-major [T, B, ...], got shape {tuple(xt.shape)}")
        xn = xt.numpy().astype(np.float64)
        if not np.all(np.isfinite(xn)):
            raise ValueError("x contains NaN or infinite values")
        binary = bool(np.all((xn == 0) | (xn == 1)))
        target = self
        if not binary and self.input_bits is None:
            target = Loihi2(self.dt, 8, self.input_max)
        input_max = target.input_max if target.input_max is not None else max(float(np.max(np.abs(xn))), 1e-12)
        rep = FitReport(self.name)
        plan = target._plan(graph, rep, target.input_bits if not binary else None, input_max)
        if plan is None:
            raise TargetError(f"the network cannot be written for {self.name}:\n" +
                              "\n".join(f"  {v}" for v in rep.violations))
        if len(plan.in_shape) == 1 and int(np.prod(xn.shape[2:])) == plan.in_shape[0]:
            xn = xn.reshape(*xn.shape[:2], -1)  # a flatten before the first dense: the chip takes flat input
        if tuple(xn.shape[2:]) != tuple(plan.in_shape):
            raise ValueError(f"x must be [T, B, {', '.join(map(str, plan.in_shape))}], got {tuple(xn.shape)}")
        if plan.input_bits is None:
            q = xn.astype(np.int64)
        else:
            q = np.round(xn * plan.input_scale)
            lim = 2 ** plan.input_bits - 1
            q = np.clip(q, -lim, lim).astype(np.int64)
        L = len(plan.layers)
        T, B = xn.shape[:2]
        steps = T + L if align else T
        if steps > T:
            q = np.concatenate([q, np.zeros((steps - T, *q.shape[1:]), np.int64)])
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "net.h5"
            target._write(graph, path, rep, plan)
            net = load(path, graded_input=plan.input_bits is not None)
        last = plan.layers[-1]
        outs, fired, wrapped = [], False, False
        for s in range(0, B, batch_size):
            res = net.run(q[:, s:s + batch_size], record_v=[len(net) - 1], reset_interval=steps if align else None,
                          reset_offset=1)
            spk = res["spikes"][-1]
            first = L if align else 0  # with align, the output layer was cleared at step L
            if last.readout is None:
                o = spk[first:].astype(np.float64)
                if plan.out_scale is not None:
                    o = o * np.broadcast_to(plan.out_scale, spk.shape[2:])
            else:
                fired |= bool(spk.any())
                v = res["v"][-1][first:].astype(np.float64) / 64.0 / 2.0 ** last.k
                o = np.diff(v, axis=0, prepend=np.zeros_like(v[:1])) if last.readout == "integrator" else v
            wrapped |= bool(np.any(np.abs(res["u"][-1]) >= 1 << 23))
            outs.append(o)
        out = torch.from_numpy(np.concatenate(outs, axis=1).astype(np.float32))
        if return_info:
            return out, {"input_scale": plan.input_scale, "input_bits": plan.input_bits, "delay_steps": L,
                         "readout_fired": fired, "output_state_wrapped": wrapped, "notes": rep.notes}
        return out

    def accuracy(self, graph: nir.NIRGraph, x, y, timesteps: int, batch_size: int = 256) -> float:
        """Bit-accurate Loihi 2 accuracy: each sample of ``x`` (``[N, *input_shape]``, static) presented for
        ``timesteps`` steps (pipeline flushed, see :meth:`simulate`), classified by the argmax of the output
        summed over time; the fraction of ``y`` matched."""
        import torch

        x = torch.as_tensor(x)
        y = torch.as_tensor(y)
        if not isinstance(timesteps, int) or timesteps < 1:
            raise ValueError(f"timesteps must be an int >= 1, got {timesteps!r}")
        if len(x) != len(y):
            raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
        target = self if self.input_max is not None else Loihi2(self.dt, self.input_bits,
                                                                  max(float(x.abs().max()), 1e-12))
        out = target.simulate(graph, x.unsqueeze(0).expand(timesteps, *x.shape), batch_size=batch_size)
        return float((out.sum(0).reshape(len(x), -1).argmax(-1) == y).float().mean())


def accuracy(graph: nir.NIRGraph, x, y, timesteps: int, dt: float = 1e-4) -> float:
    """:meth:`Loihi2.accuracy` with the default target: the bit-accurate Loihi 2 accuracy of ``graph``.

    Example:
        >>> import torch, neuro
        >>> from neuro.hardware_targets.loihi2 import accuracy
        >>> net = torch.nn.Sequential(neuro.nn.TimeDistributed(torch.nn.Linear(2, 2, bias=False)), neuro.nn.IF())
        >>> with torch.no_grad():
        ...     _ = net[0].layer.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        >>> accuracy(neuro.to_nir(net, (2,)), torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1]), 4)
        1.0
    """
    return Loihi2(dt).accuracy(graph, x, y, timesteps)
