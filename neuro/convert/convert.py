"""``ann_to_snn``: a trained torch model in, a spiking network out."""

from __future__ import annotations

import numbers
import operator

import torch
import torch.nn.functional as F
from torch import fx, nn

from neuro import _checks
from neuro.convert import calibration, graph
from neuro.convert.layers import IFSpikes, SpikingMaxPool2d, TimeFoldedFn
from neuro.convert.network import SpikingNetwork
from neuro.nn import TimeDistributed


def ann_to_snn(model: nn.Module, calibration_data: torch.Tensor, *, threshold: str = "percentile",
               percentile: float = 99.9, channel_wise: bool = False, v_init: float = 0.5,
               bias_shift_timesteps: int | None = None, output: str = "integrator", batch_size: int = 256,
               progress: bool = True, reset: str = "subtract") -> SpikingNetwork:
    """Convert a trained ANN into a spiking network of IF neurons.

    Steps: trace with ``torch.fx`` (modules and functional calls), fold batch-norm into the preceding
    conv/linear, drop dropout, measure each rectifier's activation scale on ``calibration_data``
    (``threshold="percentile"`` at ``percentile``, or ``"max"``; per channel with ``channel_wise``), and
    replace it by IF neurons with that threshold and reset by subtraction (Rueckauer et al. 2017); spikes
    carry the threshold so the network stays in ANN units (equivalent to rescaling the weights, and exact
    for residual additions and concatenation). Max pooling becomes rate-gated spike max pooling.

    Args:
        model: the trained torch model (left unchanged).
        calibration_data: inputs ``[N, ...]`` as the ANN takes them.
        v_init: initial membrane as a fraction of the threshold. The default 0.5 is the half-threshold
            initialisation of Bu et al. 2022: it centres the rounding error of the spike count (floor becomes
            round), which costs nothing and is the best setting without tuning on every network we measured
            (digits avg-pool CNN at T=8: 0.0 -> 6 points lost, 0.5 -> under 0.5; benchmarks/RESULTS.md).
        bias_shift_timesteps: if set to T, add ``threshold / (2T)`` to the bias feeding each neuron
            layer (Deng and Gu 2021).
        output: ``"integrator"`` (the last layer's current, summed over time, decides) or ``"spiking"``
            (IF neurons on the output too, thresholds from the calibration data; for chips such as Speck
            that read out spike counts).
        reset: ``"subtract"`` (Rueckauer et al.) or ``"zero"``: v <- 0 after a spike, Loihi 2's hard reset, so
            the float network is the one the chip runs. Loihi's netx files also hold no initial membrane:
            for the chip use ``reset="zero", v_init=0.0, bias_shift_timesteps=T // 2`` (a shift of
            threshold / T a step; digits CNN, bit-accurate Loihi 2 at T=8/16/32: 98.5/99.1/99.1% against
            76.7/94.8/96.7% with the defaults, float SNN 99.3/99.6/99.4%).
    Returns:
        :class:`SpikingNetwork`.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> import neuro
        >>> ann = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
        >>> snn = neuro.convert.ann_to_snn(ann, torch.rand(64, 4), progress=False)
        >>> snn(torch.rand(16, 2, 4)).shape
        torch.Size([16, 2, 3])
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(calibration_data, torch.Tensor) or not calibration_data.is_floating_point():
        raise TypeError("calibration_data must be a float tensor [N, ...] of ANN inputs")
    if len(calibration_data) == 0:
        raise ValueError("calibration_data is empty")
    _checks.check_finite_tensor("calibration_data", calibration_data.float())  # float32: 1e39 is inf there
    if isinstance(v_init, bool) or not isinstance(v_init, numbers.Real) or not 0.0 <= float(v_init) <= 1.0:
        raise ValueError(f"v_init must be a fraction of the threshold in [0, 1], got {v_init!r}")
    if output not in ("integrator", "spiking"):
        raise ValueError(f"output must be 'integrator' or 'spiking', got {output!r}")
    if reset not in ("subtract", "zero"):
        raise ValueError(f"reset must be 'subtract' or 'zero', got {reset!r}")
    if not isinstance(threshold, str) or threshold not in ("max", "percentile"):
        raise (ValueError if isinstance(threshold, str) else TypeError)(
            f"threshold method must be 'max' or 'percentile', got {threshold!r}")
    percentile = _checks.check_float("percentile", percentile, positive=True)
    channel_wise = _checks.check_bool("channel_wise", channel_wise)
    if bias_shift_timesteps is not None:
        bias_shift_timesteps = _checks.check_int("bias_shift_timesteps", bias_shift_timesteps, minimum=1)
    batch_size = _checks.check_int("batch_size", batch_size, minimum=1)
    progress = _checks.check_bool("progress", progress)
    gm = graph.prepare(model)
    out_node = next(n for n in gm.graph.nodes if n.op == "output").args[0]
    extra = (out_node.name,) if output == "spiking" and isinstance(out_node, fx.Node) else ()
    thr = calibration.thresholds(gm, calibration_data, threshold, percentile, channel_wise, batch_size, progress,
                                 extra_sites=extra)
    frac = float(v_init)
    if bias_shift_timesteps:
        _shift_biases(gm, thr, int(bias_shift_timesteps))
    body = _build(gm, thr, frac, extra[0] if extra else None)
    for mod in body.modules():
        if isinstance(mod, IFSpikes):
            mod.neuron.reset = reset
    options = {"threshold": threshold, "percentile": percentile, "channel_wise": channel_wise, "v_init": frac,
               "bias_shift_timesteps": bias_shift_timesteps, "output": output, "reset": reset}
    return SpikingNetwork(body, thr, options)


def _shift_biases(gm: fx.GraphModule, thr: dict, T: int) -> None:
    modules = dict(gm.named_modules())
    for node in gm.graph.nodes:
        if node.name in thr:
            prev = node.args[0]
            if isinstance(prev, fx.Node) and prev.op == "call_module":
                layer = modules[prev.target]
                if isinstance(layer, graph.WEIGHTED) and layer.bias is not None:
                    with torch.no_grad():
                        layer.bias.add_((thr[node.name] / (2 * T)).reshape(-1).expand_as(layer.bias))


def _build(gm: fx.GraphModule, thr: dict, v_init_fraction: float, spiking_output: str | None = None
           ) -> fx.GraphModule:
    modules = dict(gm.named_modules())
    new_graph = fx.Graph()
    root = nn.Module()
    env: dict[fx.Node, fx.Node] = {}
    counter = {"n": 0}

    def add(module: nn.Module, base: str, arg: fx.Node) -> fx.Node:
        counter["n"] += 1
        name = f"{base.replace('.', '_')}_{counter['n']}"
        root.add_module(name, module)
        return new_graph.call_module(name, (arg,))

    def m(a):
        return fx.map_arg(a, lambda n: env[n])

    for node in gm.graph.nodes:
        if node.op == "placeholder":
            env[node] = new_graph.placeholder(node.name)
        elif node.op == "output":
            result = m(node.args[0])
            if spiking_output is not None:
                result = add(IFSpikes(thr[spiking_output], v_init_fraction), "if_output", result)
            new_graph.output(result)
        elif graph.is_rectifier(node, modules):
            env[node] = add(IFSpikes(thr[node.name], v_init_fraction), f"if_{node.name}", env[node.args[0]])
        elif node.op == "call_module":
            mod = modules[node.target]
            if isinstance(mod, nn.MaxPool2d):
                env[node] = add(SpikingMaxPool2d(mod.kernel_size, mod.stride, mod.padding), node.target,
                                env[node.args[0]])
            else:
                env[node] = add(TimeDistributed(mod), node.target, env[node.args[0]])
        elif node.op == "call_function" and node.target is F.max_pool2d:
            k = node.args[1] if len(node.args) > 1 else node.kwargs["kernel_size"]
            s = node.args[2] if len(node.args) > 2 else node.kwargs.get("stride")
            env[node] = add(SpikingMaxPool2d(k, s), node.name, env[node.args[0]])
        elif (node.op == "call_function" and node.target in (torch.flatten, F.avg_pool2d, F.adaptive_avg_pool2d)) \
                or (node.op == "call_method" and node.target == "flatten"):
            fn = torch.flatten if node.op == "call_method" else node.target
            if fn is torch.flatten:
                start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
                if start == 0:
                    raise graph.ConversionError(f"{node.name}: torch.flatten(x) with start_dim=0 mixes samples; "
                                                "use torch.flatten(x, 1)")
            env[node] = add(TimeFoldedFn(fn, node.args[1:], node.kwargs), node.name, env[node.args[0]])
        elif node.op == "call_function" and node.target is torch.cat:
            tensors = m(node.args[0])
            dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
            if dim == 0:
                raise graph.ConversionError(f"{node.name}: torch.cat along the batch dimension cannot be converted")
            env[node] = new_graph.call_function(torch.cat, (tensors, dim + 1 if dim > 0 else dim))
        elif node.op == "call_function" and node.target in (operator.add, torch.add):
            env[node] = new_graph.call_function(node.target, m(node.args), m(node.kwargs))
        else:  # check_convertible already refused everything else
            raise graph.ConversionError(f"{node.name}: unsupported operation {node.op} {node.target}")
    return fx.GraphModule(root, new_graph, class_name="SpikingGraph")
