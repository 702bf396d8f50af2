"""``to_nir``: a neuro-snn model (``neuro.nn`` layers in an ``nn.Sequential``, or a converted
:class:`~neuro.convert.SpikingNetwork`) as a ``nir.NIRGraph``.

Per-step parameters become NIR's continuous-time ones with the forward-Euler reading every NIR
exporter assumes, at the time step ``dt`` (default 1e-4, snnTorch's)::

    LIF:     tau = dt / (1 - beta),  r = gain tau / dt          (so 1 - dt/tau = beta, r dt/tau = gain)
    IF:      r = gain / dt
    CubaLIF: tau_syn = dt / (1 - alpha), tau_mem = dt / (1 - beta), w_in = syn_gain tau_syn / dt,
             r = i_new tau_mem / dt

What NIR cannot say (subtractive reset, reset timing, spikes that carry the threshold) goes into the
graph's metadata under ``neuro.*`` and :func:`neuro.io.from_nir` reads it back. The inverses are
:func:`neuro.models.coefficients.euler_tau`, :func:`~neuro.models.coefficients.euler_resistance` and
:func:`~neuro.models.coefficients.integrator_resistance`.
"""

from __future__ import annotations

import math
import operator

import nir
import numpy as np
import torch
from torch import fx, nn

import neuro.nn as snn
from neuro.convert.layers import IFSpikes, SpikingMaxPool2d, TimeFoldedFn
from neuro.models import coefficients

LEAVES = (snn.TimeDistributed, snn.SpikingNeuron, snn.Flatten, IFSpikes, SpikingMaxPool2d, TimeFoldedFn)


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, LEAVES) or super().is_leaf_module(m, qualname)


def _np(t) -> np.ndarray:
    return np.asarray(torch.as_tensor(t).detach().cpu().numpy(), dtype=np.float32)


def _full(value, shape) -> np.ndarray:
    return np.broadcast_to(_np(value), shape).astype(np.float32).copy()


def _tau(decay: np.ndarray, dt: float) -> np.ndarray:
    return coefficients.euler_tau(decay, dt).astype(np.float32)


class NIRExportError(ValueError):
    """The model has parts NIR cannot express; the message lists them."""


def _stateless(layer: nn.Module, in_shape: tuple) -> nir.NIRNode:
    if isinstance(layer, nn.Linear):
        if layer.bias is None:
            return nir.Linear(weight=_np(layer.weight))
        return nir.Affine(weight=_np(layer.weight), bias=_np(layer.bias))
    if isinstance(layer, nn.Conv2d):
        bias = _np(layer.bias) if layer.bias is not None else np.zeros(layer.out_channels, np.float32)
        return nir.Conv2d(input_shape=tuple(in_shape[1:]), weight=_np(layer.weight), stride=layer.stride,
                          padding=layer.padding, dilation=layer.dilation, groups=layer.groups, bias=bias)
    if isinstance(layer, nn.AvgPool2d):
        k = layer.kernel_size if isinstance(layer.kernel_size, tuple) else (layer.kernel_size,) * 2
        s = layer.stride if isinstance(layer.stride, tuple) else (layer.stride,) * 2
        p = layer.padding if isinstance(layer.padding, tuple) else (layer.padding,) * 2
        return nir.AvgPool2d(kernel_size=np.array(k), stride=np.array(s), padding=np.array(p))
    if isinstance(layer, nn.Flatten):
        return nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=layer.start_dim - 1,
                           end_dim=layer.end_dim)
    raise NIRExportError(f"{type(layer).__name__} has no NIR node")


def _cubalif_node(module, p, dt):
    tau_syn, tau_mem = _tau(p["syn_decay"], dt), _tau(p["mem_decay"], dt)
    if np.any(p["i_old"] != 0):
        raise NIRExportError("CubaLIF with i_old != 0 (exact propagators) has no forward-Euler NIR form")
    return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=coefficients.euler_resistance(p["i_new"], tau_mem, dt),
                       v_leak=p["v_leak"], v_threshold=p["threshold"], v_reset=p["v_reset"],
                       w_in=coefficients.euler_resistance(p["syn_gain"], tau_syn, dt))


def _li_node(module, p, dt):
    tau = _tau(p["decay"], dt)
    return nir.LI(tau=tau, r=coefficients.euler_resistance(p["gain"], tau, dt), v_leak=p["v_leak"])


def _if_node(module, p, dt):
    return nir.IF(r=coefficients.integrator_resistance(p["gain"], dt), v_threshold=p["threshold"],
                  v_reset=p["v_reset"])


def _lif_node(module, p, dt):
    tau = _tau(p["decay"], dt)
    return nir.LIF(tau=tau, r=coefficients.euler_resistance(p["gain"], tau, dt), v_leak=p["v_leak"],
                   v_threshold=p["threshold"], v_reset=p["v_reset"])


def _equation_node(module, p, dt):
    """A layer of a model written as equations: the NIR node its equations are (physical units, ms, scaled to
    the graph's time unit: one step of ``module.dt`` ms is ``dt``)."""
    from neuro.models.equations import EquationError

    try:
        return module.model.nir_node(p, time_scale=dt / module.dt, shape=p["_shape"])
    except EquationError as exc:
        raise NIRExportError(str(exc)) from None


#: neuro.nn neuron class -> its NIR node, keyed by exact class: a subclass (RLIF is a LIF with recurrence)
#: changes the dynamics, so it has no NIR node unless registered itself.
NEURONS = {snn.CubaLIF: _cubalif_node, snn.LI: _li_node, snn.IF: _if_node, snn.LIF: _lif_node,
           snn.Neuron: _equation_node}


def _neuron(module: nn.Module, shape: tuple, dt: float, make=None) -> tuple[nir.NIRNode, dict]:
    make = make or NEURONS.get(type(module))
    if make is None:
        raise NIRExportError(f"{type(module).__name__} has no NIR node (ALIF and RLIF are not in NIR)")
    meta = {"reset": module.reset, "reset_delay": bool(module.reset_delay)}
    if make is _equation_node:  # the model's physical parameters (learned values included), per neuron
        p = {k: _full(getattr(module, k), shape) for k in module.model.parameters}
        p["_shape"] = shape
    else:
        p = {k: _full(v, shape) for k, v in module.kernel_params().items()}
    node = make(module, p, dt)
    if type(module) is snn.IF:
        meta["v_init"] = _full(module.v_init, shape).tolist()
    return node, meta


def _check_input_shape(input_shape) -> tuple[int, ...]:
    from neuro.io.load import MAX_ELEMENTS

    if isinstance(input_shape, int | np.integer) and not isinstance(input_shape, bool):
        input_shape = (input_shape,)
    if isinstance(input_shape, str | bytes) or not hasattr(input_shape, "__iter__"):
        raise TypeError(f"input_shape must be a tuple of positive ints (one sample, no time or batch), got "
                        f"{input_shape!r}")
    shape = tuple(input_shape)
    if not shape or not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in shape):
        raise TypeError(f"input_shape must be a non-empty tuple of ints, got {input_shape!r}")
    if any(v < 1 for v in shape) or math.prod(int(v) for v in shape) > MAX_ELEMENTS:
        raise ValueError(f"input_shape must be positive ints with at most {MAX_ELEMENTS} elements, got "
                         f"{list(shape)}")
    return tuple(int(v) for v in shape)


def _check_finite(body: nn.Module) -> None:
    """Refuse NaN or (in float32) infinite parameters and buffers, naming them."""
    bad = []
    for kind, items in (("parameter", body.named_parameters()), ("buffer", body.named_buffers())):
        for name, t in items:
            if t is None or not t.is_floating_point():
                continue
            a = t.detach().cpu().double()
            if not bool(torch.isfinite(a).all()) or bool((a.abs() > float(np.finfo(np.float32).max)).any()):
                bad.append(f"{kind} {name!r}")
    if bad:
        raise ValueError(f"model has NaN or infinite values in {', '.join(bad)}; NIR would carry them to every "
                         "tool that reads the file")


def to_nir(model: nn.Module, input_shape, dt: float = 1e-4) -> nir.NIRGraph:
    """Export ``model`` for one sample of shape ``input_shape`` (no time or batch dimension).

    Example:
        >>> import torch, neuro
        >>> net = torch.nn.Sequential(neuro.nn.TimeDistributed(torch.nn.Linear(3, 2)), neuro.nn.LIF(beta=0.9))
        >>> g = neuro.io.to_nir(net, (3,))
        >>> sorted(type(n).__name__ for n in g.nodes.values())
        ['Affine', 'Input', 'LIF', 'Output']
    """
    from neuro.convert.network import SpikingNetwork

    if isinstance(dt, bool) or not (isinstance(dt, int | float) and math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a finite number > 0, got {dt!r}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module (neuro.nn layers or a converted SpikingNetwork), got "
                        f"{type(model).__name__}")
    input_shape = _check_input_shape(input_shape)
    body = model.body if isinstance(model, SpikingNetwork) else model
    _check_finite(body)
    try:
        gm = fx.GraphModule(body, _Tracer().trace(body))
    except Exception as exc:  # torch.fx raises TraceError, TypeError, NotImplementedError... for untraceable code
        raise NIRExportError(f"cannot trace the model with torch.fx ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    modules = dict(gm.named_modules())
    # run one sample through to learn every node's shape
    shapes: dict[str, tuple] = {}
    example = torch.zeros((1, 1, *input_shape))

    class _Shapes(fx.Interpreter):
        def run_node(self, n):
            out = super().run_node(n)
            if isinstance(out, torch.Tensor):
                shapes[n.name] = tuple(out.shape[2:])
            return out

    with torch.no_grad():
        try:
            _Shapes(gm).run(example)
        except (RuntimeError, ValueError, TypeError, IndexError) as exc:
            raise ValueError(f"the model does not run on one sample of input_shape {list(input_shape)}: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    nodes: dict[str, nir.NIRNode] = {}
    edges: list[tuple[str, str]] = []
    meta: dict = {"neuro.dt": dt, "neuro.nodes": {}}
    sources: dict[fx.Node, list[str]] = {}  # fx node -> NIR node names whose outputs it stands for
    problems = []

    def inputs_of(n: fx.Node) -> list[str]:
        out = []
        for a in n.all_input_nodes:
            out += sources[a]
        return out

    for n in gm.graph.nodes:
        if n.op == "placeholder":
            nodes["input"] = nir.Input(input_type={"input": np.array(input_shape)})
            sources[n] = ["input"]
        elif n.op == "output":
            out_shape = shapes[n.all_input_nodes[0].name]
            nodes["output"] = nir.Output(output_type={"output": np.array(out_shape)})
            edges += [(s, "output") for s in inputs_of(n)]
        elif n.op == "call_function" and n.target in (operator.add, torch.add):
            sources[n] = inputs_of(n)  # NIR sums every edge that enters a node
        elif n.op == "call_module":
            mod = modules[n.target]
            name = n.target.replace(".", "_")
            in_shape = shapes[n.all_input_nodes[0].name]
            try:
                if isinstance(mod, snn.TimeDistributed):
                    nodes[name] = _stateless(mod.layer, in_shape)
                elif isinstance(mod, snn.Flatten):
                    nodes[name] = nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=0, end_dim=-1)
                elif isinstance(mod, TimeFoldedFn) and mod.fn is torch.flatten:
                    start = (mod.args[0] if mod.args else mod.kwargs.get("start_dim", 1)) - 1
                    nodes[name] = nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=start, end_dim=-1)
                elif isinstance(mod, IFSpikes):
                    node, m = _neuron(mod.neuron, in_shape, dt)
                    nodes[name] = node
                    meta["neuro.nodes"][name] = m
                    nodes[name + "_scale"] = nir.Scale(scale=_full(mod.scale, in_shape))
                    edges += [(s, name) for s in inputs_of(n)]
                    sources[n] = [name + "_scale"]
                    edges.append((name, name + "_scale"))
                    continue
                elif type(mod) is snn.RLIF:
                    # a LIF node plus its recurrent Affine, with the cycle lif -> rec -> lif (snnTorch RLeaky's
                    # form); from_nir runs it step by step, the edge lif -> rec delivering the previous step
                    nodes[name], meta["neuro.nodes"][name] = _neuron(mod, in_shape, dt, make=_lif_node)
                    nodes[name + "_rec"] = nir.Affine(weight=_np(mod.recurrent.weight), bias=_np(mod.recurrent.bias))
                    edges += [(s, name) for s in inputs_of(n)] + [(name, name + "_rec"), (name + "_rec", name)]
                    sources[n] = [name]
                    continue
                elif isinstance(mod, snn.SpikingNeuron):
                    nodes[name], meta["neuro.nodes"][name] = _neuron(mod, in_shape, dt)
                else:
                    raise NIRExportError(f"{type(mod).__name__} has no NIR node")
            except NIRExportError as exc:
                problems.append(f"  - {n.target}: {exc}")
                sources[n] = []
                continue
            edges += [(s, name) for s in inputs_of(n)]
            sources[n] = [name]
        else:
            problems.append(f"  - {n.name}: operation {n.target} has no NIR node")
            sources[n] = []
    if problems:
        raise NIRExportError("cannot express in NIR:\n" + "\n".join(problems))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=_flatten_meta(meta))


def _flatten_meta(meta: dict) -> dict:
    """NIR's HDF5 writer stores flat metadata: encode per-node entries as ``neuro.<node>.<key>``."""
    flat = {"neuro.dt": meta["neuro.dt"], "neuro.format": "neuro-snn 0.1"}
    for node, entries in meta["neuro.nodes"].items():
        for k, v in entries.items():
            flat[f"neuro.{node}.{k}"] = v if not isinstance(v, bool) else int(v)
    return flat
