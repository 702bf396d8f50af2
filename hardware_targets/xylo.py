"""SynSense Xylo (Rockpool): a dense recurrent-capable LIF core with few inputs and outputs.

Limits (Rockpool documentation, per ANCHORS.md): XyloAudio 2: 1000 hidden neurons, 8 outputs, fan-out 64;
XyloAudio 3: 992 / 32 / 1024; XyloIMU: 496 / 16 / 512; 16 inputs, 8-bit weights, bit-shift decays
(``dash = round(log2(tau / dt))``), reset by subtraction.

What ``emit`` writes: **NIR that Rockpool 3.1 imports** (``rockpool.nn.modules.torch.nir.from_nir``, through
nirtorch 1.0, which works with nir 1.0.4 but not 1.0.8: the file is written in nir 1.0.4's layout, CubaLIF
without ``v_reset``, which in nir 1.0.4 means reset by subtraction, as on Xylo), in the chip-ready form:
``Linear``/``Affine`` with 8-bit integer weights (per layer ``127 / max|w|``) and ``CubaLIF`` neurons
(Rockpool's ``LIFTorch``; Rockpool's NIR import maps ``LIF`` through a field ``LIF`` does not have, so only
``CubaLIF`` imports) with integer thresholds and the bit-shift time constants the chip has (``tau = -dt / ln(1 -
2^-dash)``). Rockpool's importer reads the time step from the node as ``dt = min(tau_mem / (1 + r))``, so the
file's ``r`` is ``tau_mem / dt - 1``: that ``r`` is Rockpool's convention, not NIR's resistance
(:func:`neuro.from_nir` would read it as a gain). Mapping from the graph's neurons, read with forward Euler at
``dt`` (neuro-snn's convention): CubaLIF ``i = a i + g x``, ``v = b v + h i`` becomes ``dash_syn = round(-log2(1
- a))``, ``dash_mem = round(-log2(1 - b))`` and weights ``w h g / a``; LIF and IF have no synaptic current on
the chip's neuron: they get ``dash_syn = 1`` (half the current carries to the next step, the charge is kept) and
IF ``dash_mem = 15``; the fit report says so.

Two models of the chip run on neuro-snn's side (:meth:`Xylo.simulate`):

- ``arithmetic="float"`` is Rockpool's ``LIFTorch`` on the file, per step ``t`` (``alpha = exp(-dt/tau_mem)``,
  ``beta = exp(-dt/tau_syn)``)::

      i = beta (i + x[t]);  v = alpha v + i + bias;  n = floor(v / thr) if v >= thr else 0;  v = v - n thr

  (spike counts up to 2^16 a step, layers in the same step);
- ``arithmetic="integer"`` is XyloSim (``xylosim.v2``, the C++ simulator of the Xylo core), read from its
  source: 16-bit saturating states, ``i += w`` per input spike (at most 15 a step), then
  ``i -= d(i, dash_syn)``, ``v += -d(v, dash_mem) + i``, and while ``v >= thr``: a spike and ``v -= thr``
  (hidden neurons at most 31 spikes a step, output neurons 1), where ``d(u, dash) = u >> dash``, or
  ``sign(u)`` when that is 0. Hidden spikes reach the output layer at the next step (one step of delay).
  Only one hidden layer and integer weights without bias map onto the core here.

Rockpool's own Xylo mapper and its ``XyloSim`` module cannot be imported here: ``rockpool.devices.xylo``'s
package ``__init__`` imports ``syns65302.afe_samna_pdm``, which imports ``samna`` (not installable: its package
on the registry redirects to another index). The tests drive ``xylosim.v2.XyloLayer`` directly, built as
Rockpool's ``XyloSim.from_config`` builds it.

Example:
    >>> import torch, neuro
    >>> from neuro.hardware_targets import get
    >>> net = torch.nn.Sequential(neuro.nn.TimeDistributed(torch.nn.Linear(12, 20)), neuro.nn.LIF(beta=0.9),
    ...                           neuro.nn.TimeDistributed(torch.nn.Linear(20, 4)), neuro.nn.LIF(beta=0.9))
    >>> get("xylo").fit(neuro.to_nir(net, (12,))).fits
    True
    >>> x = (torch.rand(30, 2, 12) < 0.3).float()
    >>> get("xylo").simulate(neuro.to_nir(net, (12,)), x).shape
    torch.Size([30, 2, 4])
"""

from __future__ import annotations

from pathlib import Path

import nir
import numpy as np

from neuro import _checks
from neuro.hardware_targets._layers import chain, fold_scales
from neuro.hardware_targets._target import FitReport, Target, Violation
from neuro.models import coefficients

VARIANTS = {"xylo-audio2": (1000, 8, 64), "xylo-audio3": (992, 32, 1024), "xylo-imu": (496, 16, 512)}
SPEC = {"inputs": 16, "variants": VARIANTS, "weight_bits": 8, "source": "Rockpool documentation (per ANCHORS.md)"}


DASH_MAX = 15  # bit-shift decays are 4-bit on Xylo (unverified: Rockpool's XyloSim takes uint8)
MAX_SPIKES_IN, MAX_SPIKES_HIDDEN, MAX_SPIKES_OUT = 15, 31, 1  # xylosim v2 XyloIAFNeuron.h
STATE_BITS = 16


class Xylo(Target):
    """``dt``: the time step of one chip step, to read the graph's time constants; default: the graph's
    ``neuro.dt`` metadata (neuro-snn's own graphs), else 1e-3 (Rockpool's default)."""

    name = "xylo"
    spec = SPEC

    def __init__(self, variant: str = "xylo-audio2", dt: float | None = None):
        if variant not in VARIANTS:
            raise ValueError(f"unknown Xylo variant {variant!r}; known: {', '.join(VARIANTS)}")
        dt = None if dt is None else _checks.check_dt(dt)
        self.variant, self.dt = variant, dt

    def _dt(self, graph: nir.NIRGraph) -> float:
        return self.dt if self.dt is not None else float((graph.metadata or {}).get("neuro.dt", 1e-3))
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
            if isinstance(ly.neuron, nir.LIF | nir.IF):
                rep.notes.append(f"{ly.neuron_name}: {type(ly.neuron).__name__} has no synaptic current; on Xylo it "
                                 "gets the shortest synaptic decay (dash_syn = 1), which spreads each input over "
                                 "the following steps" + (" and the longest membrane decay (dash_mem = 15)"
                                                          if isinstance(ly.neuron, nir.IF) else ""))
        if dense:
            rep.notes.append("on the chip: 8-bit integer weights and thresholds, decays rounded to bit shifts "
                             "(1 - 2^-dash), reset by subtraction, up to 31 spikes a step for hidden and 1 for output "
                             "neurons, and one step of delay from the hidden to the output layer (XyloSim)")
        rep.cores_used = 1
        return rep

    def chip_graph(self, graph: nir.NIRGraph) -> nir.NIRGraph:
        """The chip-ready graph :meth:`emit` writes (see the module notes). ``ValueError`` names a layer that
        has no Xylo form."""
        dt = self._dt(graph)
        layers, problems = chain(graph)
        if problems:
            raise ValueError("graph is not a chain of dense layers: " + "; ".join(problems))
        layers = [ly for ly in fold_scales(layers) if ly.kind != "flatten"]
        n_in = int(np.prod(layers[0].in_shape)) if layers else 0
        nodes: dict = {"input": nir.Input(input_type={"input": np.array([n_in])})}
        edges, prev = [], "input"
        for ly in layers:
            if ly.kind != "dense":
                raise ValueError(f"{ly.name}: {ly.kind} layer has no Xylo form (dense layers only)")
            neuron, n = ly.neuron, ly.weight.shape[0]
            full = lambda v, n=n: np.broadcast_to(np.asarray(v, np.float64).reshape(-1), (n,))  # noqa: E731
            if isinstance(neuron, nir.CubaLIF):
                tau_syn, tau = full(neuron.tau_syn), full(neuron.tau_mem)
                c = coefficients.cuba_lif(dt, "euler", tau_syn=tau_syn, tau_mem=tau, r=full(neuron.r),
                                          w_in=full(neuron.w_in))
                gain = c["i_new"] * c["syn_gain"] / c["syn_decay"]
                dash_syn = np.round(-np.log2(np.clip(coefficients.euler_rate(tau_syn, dt), 2.0 ** -DASH_MAX, 1)))
            elif isinstance(neuron, nir.LIF):
                tau = full(neuron.tau)
                gain = coefficients.input_gain(full(neuron.r), tau, dt, "euler")
                dash_syn = np.ones(n)
            elif isinstance(neuron, nir.IF):
                tau = np.full(n, np.inf)  # no leak: the slowest decay the chip has
                gain = coefficients.integrator_gain(full(neuron.r), dt)
                dash_syn = np.ones(n)
            else:
                raise ValueError(f"{ly.name}: needs a LIF/CubaLIF neuron on Xylo, got "
                                 f"{type(neuron).__name__ if neuron is not None else 'none'}")
            # the bit-shift decay v -= v >> dash removes 2**-dash of v a step: forward Euler's dt/tau
            dash_mem = np.clip(np.round(-np.log2(np.clip(coefficients.euler_rate(tau, dt), 2.0 ** -DASH_MAX, 1))), 1,
                               DASH_MAX)
            dash_syn = np.clip(dash_syn, 1, DASH_MAX)
            w = ly.weight.astype(np.float64).reshape(n, -1) * gain[:, None]
            bias = ly.bias.astype(np.float64) * gain
            scale = 127.0 / max(float(np.abs(w).max()), 1e-12)
            w_int, b_int = np.round(w * scale).astype(np.float32), np.round(bias * scale).astype(np.float32)
            thr = np.round(full(neuron.v_threshold) * scale).astype(np.float32)
            name = ly.name.replace(".", "_")
            nodes[name] = nir.Affine(weight=w_int, bias=b_int) if np.any(b_int) else nir.Linear(weight=w_int)
            edges.append((prev, name))
            tau_mem = coefficients.exact_tau_of_rate(2.0 ** -dash_mem, dt).astype(np.float32)
            tau_syn = coefficients.exact_tau_of_rate(2.0 ** -dash_syn, dt).astype(np.float32)
            nname = (ly.neuron_name or name + "_lif").replace(".", "_")
            nodes[nname] = nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=(tau_mem / np.float32(dt) - 1),
                                       v_leak=np.zeros(n, np.float32), v_threshold=thr,
                                       v_reset=np.zeros(n, np.float32), w_in=np.ones(n, np.float32))
            edges.append((name, nname))
            prev = nname
        nodes["output"] = nir.Output(output_type={"output": np.array([layers[-1].weight.shape[0] if layers else 0])})
        edges.append((prev, "output"))
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"xylo.dt": dt})

    def quantize(self, graph: nir.NIRGraph) -> nir.NIRGraph:
        """The chip-ready graph: :meth:`chip_graph`."""
        return self.chip_graph(graph)

    def simulate(self, graph, x, dt: float | None = None, convention: str = "neuro", arithmetic: str = "float"):
        """Output spikes ``[T, B, n_out]`` (counts) of the chip-ready graph, or of an emitted file, for
        time-major input ``x`` ``[T, B, n_in]``: ``arithmetic="float"`` as Rockpool's LIFTorch computes them,
        ``"integer"`` as XyloSim does (module notes)."""
        import torch

        if arithmetic not in ("float", "integer"):
            raise ValueError(f"arithmetic must be 'float' or 'integer', got {arithmetic!r}")
        g = self.chip_graph(graph) if isinstance(graph, nir.NIRGraph) else nir.read(str(graph))
        x = torch.as_tensor(np.asarray(x, np.float32) if not isinstance(x, torch.Tensor) else x, dtype=torch.float32)
        if x.ndim != 3:
            raise ValueError(f"x must be time-major [T, B, n_in], got shape {tuple(x.shape)}")
        order, cur = [], "input"
        succ = {a: b for a, b in g.edges}
        while succ.get(cur) and succ[cur] != "output":
            cur = succ[cur]
            order.append((cur, g.nodes[cur]))
        if arithmetic == "integer":
            return torch.as_tensor(_xylosim_reference(order, x.numpy()))
        with torch.no_grad():
            for _, node in order:
                if isinstance(node, nir.Linear | nir.Affine):
                    w = torch.as_tensor(np.asarray(node.weight, np.float32))
                    b = torch.as_tensor(np.asarray(node.bias, np.float32)) if isinstance(node, nir.Affine) else None
                    x = torch.nn.functional.linear(x, w, b)
                elif isinstance(node, nir.CubaLIF):
                    x = _rockpool_lif(node, x)
                else:
                    raise ValueError(f"{type(node).__name__} is not a Xylo chip-graph node")
        return x

    def _write(self, graph: nir.NIRGraph, path: Path, report: FitReport) -> None:
        from neuro.hardware_targets.speck import write_nir_104

        write_nir_104(self.chip_graph(graph), path)


def _rockpool_lif(node: nir.CubaLIF, x):
    """Rockpool 3.1 LIFTorch, as its NIR import builds it, over time-major ``x`` (see the module notes)."""
    import torch

    tau_mem = torch.from_numpy(np.asarray(node.tau_mem, np.float32).copy())
    tau_syn = torch.from_numpy(np.asarray(node.tau_syn, np.float32).copy())
    r = torch.from_numpy(np.asarray(node.r, np.float32).copy())
    dt = torch.min(torch.as_tensor(tau_mem / (1 + r))).item()
    # Rockpool's float32 torch decays (alpha the membrane's, beta the current's)
    alpha, beta = (torch.from_numpy(coefficients.exact_decay_float32(t, dt)) for t in (tau_mem, tau_syn))
    thr = torch.from_numpy(np.asarray(node.v_threshold, np.float32).copy())
    bias = torch.from_numpy(np.asarray(node.v_leak, np.float32).copy())
    v = torch.zeros_like(x[0])
    i = torch.zeros_like(x[0])
    out = torch.empty_like(x)
    for t in range(x.shape[0]):
        i = i + x[t]
        v = v * alpha
        i = i * beta
        v = v + i + bias
        n = (v >= thr) * torch.floor(v / thr)
        n = torch.clamp(n, max=2.0**16)
        v = v - n * thr
        out[t] = n
    return out


def _sat(v):
    lim = 2 ** (STATE_BITS - 1)
    return np.clip(v, -lim, lim - 1)


def _decay(u, dash):
    d = u >> dash
    return np.where(d == 0, np.sign(u), d)


def _xylosim_reference(order, x: np.ndarray) -> np.ndarray:
    """XyloSim v2's integer update (module notes) for input -> hidden -> output, batch by batch."""
    dense = [n for _, n in order if isinstance(n, nir.Linear | nir.Affine)]
    lifs = [n for _, n in order if isinstance(n, nir.CubaLIF)]
    if len(dense) != 2 or len(lifs) != 2:
        raise ValueError(f"integer (XyloSim) model maps one hidden and one output layer; the graph has {len(dense)}")
    if any(isinstance(n, nir.Affine) and np.any(np.asarray(n.bias)) for n in dense):
        raise ValueError("Xylo has no synaptic bias: the integer model needs bias-free layers")
    w_in, w_out = (np.asarray(n.weight).astype(np.int64) for n in dense)

    def params(node):
        dt = float(np.min(np.asarray(node.tau_mem, np.float64) / (1 + np.asarray(node.r, np.float64))))
        dash = lambda tau: np.round(-np.log2(1 - coefficients.decay(tau, dt))).astype(np.int64)  # noqa: E731
        return dash(node.tau_syn), dash(node.tau_mem), np.asarray(node.v_threshold).astype(np.int64)

    (ds_h, dm_h, th_h), (ds_o, dm_o, th_o) = params(lifs[0]), params(lifs[1])
    T, B = x.shape[:2]
    out = np.zeros((T, B, w_out.shape[0]), np.float32)
    for bb in range(B):
        i_h = np.zeros(w_in.shape[0], np.int64)
        v_h = np.zeros_like(i_h)
        i_o = np.zeros(w_out.shape[0], np.int64)
        v_o = np.zeros_like(i_o)
        s_h = np.zeros_like(i_h)
        for t in range(T):
            n_in = np.minimum(x[t, bb].astype(np.int64), MAX_SPIKES_IN)
            i_h = _sat(i_h + w_in @ n_in)
            i_o = _sat(i_o + w_out @ s_h)  # last step's hidden spikes
            s_h, i_h, v_h = _evolve(i_h, v_h, ds_h, dm_h, th_h, MAX_SPIKES_HIDDEN)
            s_o, i_o, v_o = _evolve(i_o, v_o, ds_o, dm_o, th_o, MAX_SPIKES_OUT)
            out[t, bb] = s_o
    return out


def _evolve(i, v, dash_syn, dash_mem, thr, max_spikes):
    i = i - _decay(i, dash_syn)
    v = _sat(v + _sat(-_decay(v, dash_mem) + i))
    n = np.where(v >= thr, np.minimum((v - thr) // np.maximum(thr, 1) + 1, max_spikes), 0)
    return n, i, v - n * thr
