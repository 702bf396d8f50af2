"""``from_nir``: any NIR graph (or ``.nir`` file, read with ``nir.read``: HDF5, no pickle) as a runnable,
time-major ``torch.nn.Module`` built from :mod:`neuro.nn` layers.

NIR is continuous-time; the time step is an argument. By default each neuron ODE is discretised with
forward Euler at ``dt``, the convention the other frameworks' exporters assume, so their files reproduce
their outputs (``decay = 1 - dt/tau``, ``gain = r dt/tau``); ``integration="exact"`` uses
``decay = exp(-dt/tau)``. Reset, its timing and the threshold test come from the named ``convention``
(:mod:`neuro.io.conventions`).
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict, deque
from pathlib import Path

import nir
import numpy as np
import torch
from torch import nn

import neuro.nn as snn
from neuro.io.conventions import Convention
from neuro.io.conventions import get as get_convention


class NIRImportError(ValueError):
    """The graph has nodes neuro-snn cannot run; the message lists them."""


class _SumPool2d(nn.Module):
    def __init__(self, kernel_size, stride, padding):
        super().__init__()
        self.pool = nn.AvgPool2d(kernel_size, stride, padding)
        self.k = float(np.prod(kernel_size))

    def forward(self, x):
        return self.pool(x) * self.k


class _Scale(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.register_buffer("scale", torch.as_tensor(np.asarray(scale, np.float32)))

    def forward(self, x):
        return x * self.scale


class _Flatten(nn.Module):
    def __init__(self, start_dim: int, end_dim: int):
        super().__init__()
        self.start = start_dim + 2 if start_dim >= 0 else start_dim
        self.end = end_dim + 2 if end_dim >= 0 else end_dim

    def forward(self, x):
        return torch.flatten(x, self.start, self.end)


class _Threshold(nn.Module):
    def __init__(self, threshold):
        super().__init__()
        self.register_buffer("threshold", torch.as_tensor(np.asarray(threshold, np.float32)))

    def forward(self, x):
        return (x > self.threshold).float()


class NIRNetwork(nn.Module):
    """A NIR graph run on neuro-snn: nodes in topological order, each node's input the sum of the outputs
    on its incoming edges (NIR's semantics). Input and output are time-major ``[T, B, ...]``."""

    def __init__(self, modules: dict[str, nn.Module], order: list[str], preds: dict[str, list[str]],
                 inputs: list[str], outputs: list[str], convention: Convention, dt: float):
        super().__init__()
        self.layers = nn.ModuleDict({k.replace(".", "__"): m for k, m in modules.items()})
        self.order, self.preds, self.inputs, self.outputs = order, preds, inputs, outputs
        self.convention, self.dt = convention, dt

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {name: x for name in self.inputs}
        for name in self.order:
            incoming = [values[p] for p in self.preds[name]]
            if not incoming:
                raise NIRImportError(f"node {name!r} has no input")
            total = incoming[0] if len(incoming) == 1 else torch.stack(incoming).sum(0)
            values[name] = self.layers[name.replace(".", "__")](total)
        outs = [values[o] for o in self.outputs]
        return outs[0] if len(outs) == 1 else tuple(outs)


def _read(graph_or_path) -> tuple[nir.NIRGraph, set[str]]:
    """The graph, and the names of neuron nodes a nir 1.0.4-era file wrote without ``v_reset``."""
    if isinstance(graph_or_path, nir.NIRGraph):
        return graph_or_path, set()
    path = Path(graph_or_path)
    if not path.exists():
        raise FileNotFoundError(f"no NIR file at {path}")
    import h5py

    no_reset = set()
    with h5py.File(path, "r") as f:
        version = f.attrs.get("version", f["version"][()] if "version" in f else b"")
        version = version.decode() if isinstance(version, bytes) else str(version)
        nodes = f["node"]["nodes"] if "node" in f and "nodes" in f["node"] else {}
        for name in nodes:
            grp = nodes[name]
            kind = grp["type"][()].decode() if "type" in grp else ""
            if kind in ("IF", "LIF", "CubaLIF") and "v_reset" not in grp:
                no_reset.add(name)
    graph = nir.read(str(path))
    if no_reset:
        warnings.warn(f"{path.name} (nir {version or 'unknown version'}) has IF/LIF nodes without v_reset "
                      f"({', '.join(sorted(no_reset))}): read as reset by subtraction, their nir 1.0.4 meaning",
                      stacklevel=3)
    return graph, no_reset


def _decay(tau, dt, integration):
    tau = np.asarray(tau, np.float64)
    if np.any(tau <= 0):
        raise NIRImportError(f"tau must be > 0, got {tau.min()}")
    decay = np.exp(-dt / tau) if integration == "exact" else 1.0 - dt / tau
    if np.any(decay < 0):
        raise NIRImportError(f"dt = {dt} exceeds tau = {tau.min():.3g}: forward Euler is unstable there; "
                             "use a smaller dt or integration='exact'")
    return decay


def _thr(v, conv: Convention):
    v = np.asarray(v, np.float32)
    # v >= thr is v > nextafter(thr, -inf) exactly in float32
    return np.nextafter(v, np.float32(-np.inf)) if conv.inclusive_threshold else v


def _reset(name, meta, conv: Convention, no_reset: set) -> tuple[str, bool]:
    if name in no_reset:
        return "subtract", False
    key = f"neuro.{name}.reset"
    if conv.reset == "file":
        reset = meta.get(key, "zero")
        delay = bool(meta.get(f"neuro.{name}.reset_delay", 0))
        return (reset.decode() if isinstance(reset, bytes) else str(reset)), delay
    return conv.reset, conv.reset_delay


def _module(name, node, conv, dt, integration, meta, no_reset) -> nn.Module:
    T = torch.as_tensor
    if isinstance(node, nir.Affine):
        lin = nn.Linear(node.weight.shape[1], node.weight.shape[0])
        lin.weight.data, lin.bias.data = T(node.weight, dtype=torch.float32), T(node.bias, dtype=torch.float32)
        return snn.TimeDistributed(lin)
    if isinstance(node, nir.Linear):
        lin = nn.Linear(node.weight.shape[1], node.weight.shape[0], bias=False)
        lin.weight.data = T(node.weight, dtype=torch.float32)
        return snn.TimeDistributed(lin)
    if isinstance(node, nir.Conv2d | nir.Conv1d):
        cls = nn.Conv2d if isinstance(node, nir.Conv2d) else nn.Conv1d
        w = T(node.weight, dtype=torch.float32)
        pad = node.padding if isinstance(node.padding, str) else tuple(np.atleast_1d(node.padding).tolist())
        conv = cls(w.shape[1] * node.groups, w.shape[0], tuple(w.shape[2:]), stride=tuple(np.atleast_1d(node.stride)),
                   padding=pad, dilation=tuple(np.atleast_1d(node.dilation)), groups=int(node.groups))
        conv.weight.data = w
        conv.bias.data = T(np.broadcast_to(node.bias, (w.shape[0],)).copy(), dtype=torch.float32)
        return snn.TimeDistributed(conv)
    if isinstance(node, nir.AvgPool2d):
        return snn.TimeDistributed(nn.AvgPool2d(tuple(np.atleast_1d(node.kernel_size)),
                                                tuple(np.atleast_1d(node.stride)), tuple(np.atleast_1d(node.padding))))
    if isinstance(node, nir.SumPool2d):
        return snn.TimeDistributed(_SumPool2d(tuple(np.atleast_1d(node.kernel_size)), tuple(np.atleast_1d(node.stride)),
                                              tuple(np.atleast_1d(node.padding))))
    if isinstance(node, nir.Flatten):
        return _Flatten(int(node.start_dim), int(node.end_dim))
    if isinstance(node, nir.Scale):
        return _Scale(node.scale)
    if isinstance(node, nir.Threshold):
        return _Threshold(node.threshold)
    tau_fix = (lambda tau: np.asarray(tau, np.float64) / dt) if conv.tau_scaled_by_dt else (lambda tau: tau)
    if isinstance(node, nir.LIF):
        reset, delay = _reset(name, meta, conv, no_reset)
        tau = tau_fix(node.tau)
        decay = _decay(tau, dt, integration)
        gain = np.asarray(node.r) * (dt / np.asarray(tau) if integration == "euler" else (1 - decay))
        return snn.LIF(beta=T(decay, dtype=torch.float32), threshold=T(_thr(node.v_threshold, conv)), reset=reset,
                       reset_delay=delay, gain=T(gain, dtype=torch.float32), v_leak=T(node.v_leak, dtype=torch.float32),
                       v_reset=T(np.asarray(node.v_reset if node.v_reset is not None else 0.0), dtype=torch.float32))
    if isinstance(node, nir.IF):
        reset, delay = _reset(name, meta, conv, no_reset)
        v_init = meta.get(f"neuro.{name}.v_init", 0.0)
        return snn.IF(threshold=T(_thr(node.v_threshold, conv)), reset=reset, reset_delay=delay,
                      v_init=T(np.asarray(v_init, np.float32)), gain=T(np.asarray(node.r) * dt, dtype=torch.float32),
                      v_reset=T(np.asarray(node.v_reset if node.v_reset is not None else 0.0), dtype=torch.float32))
    if isinstance(node, nir.LI):
        tau = tau_fix(node.tau)
        decay = _decay(tau, dt, integration)
        gain = np.asarray(node.r) * (dt / np.asarray(tau) if integration == "euler" else (1 - decay))
        return snn.LI(beta=T(decay, dtype=torch.float32), gain=T(gain, dtype=torch.float32),
                      v_leak=T(node.v_leak, dtype=torch.float32))
    if isinstance(node, nir.CubaLIF):
        reset, delay = _reset(name, meta, conv, no_reset)
        tau_syn, tau_mem = tau_fix(node.tau_syn), tau_fix(node.tau_mem)
        alpha, beta = _decay(tau_syn, dt, integration), _decay(tau_mem, dt, integration)
        w_in = np.asarray(node.w_in, np.float64)
        r = np.asarray(node.r, np.float64)
        if integration == "euler":
            syn_gain, i_new = w_in * dt / tau_syn, r * dt / tau_mem
        else:
            same = np.isclose(tau_syn, tau_mem)
            p21 = np.where(same, dt / tau_mem * beta, tau_syn / np.where(same, 1, tau_syn - tau_mem) * (alpha - beta))
            syn_gain, i_new = alpha * w_in, r / tau_mem * p21 / alpha * tau_mem
        f = lambda a: T(np.asarray(a), dtype=torch.float32)  # noqa: E731
        return snn.CubaLIF(alpha=f(alpha), beta=f(beta), threshold=f(_thr(node.v_threshold, conv)), reset=reset,
                           reset_delay=delay, syn_gain=f(syn_gain), i_new=f(i_new), v_leak=f(node.v_leak),
                           v_reset=f(node.v_reset if node.v_reset is not None else 0.0))
    raise NIRImportError(f"{type(node).__name__}")


def from_nir(graph_or_path, dt: float | None = None, convention: str | Convention = "neuro",
             integration: str = "euler") -> NIRNetwork:
    """A runnable time-major module from a NIR graph or file.

    Args:
        graph_or_path: ``nir.NIRGraph`` or path of a ``.nir`` (HDF5) file.
        dt: the time step; default: the convention's (snnTorch and neuro-snn 1e-4, Norse 1e-3, Sinabs 1).
        convention: how to read what the file leaves unsaid: ``"neuro"``, ``"snntorch"``, ``"norse"``,
            ``"sinabs"``, ``"spikingjelly"`` (see :mod:`neuro.io.conventions`).
        integration: ``"euler"`` (the exporters' reading) or ``"exact"`` exponential integration.

    Example:
        >>> import torch, neuro
        >>> net = torch.nn.Sequential(neuro.nn.TimeDistributed(torch.nn.Linear(3, 2)), neuro.nn.LIF(beta=0.9))
        >>> back = neuro.io.from_nir(neuro.io.to_nir(net, (3,)))
        >>> x = torch.rand(10, 4, 3)
        >>> torch.equal(back(x), net(x))
        True
    """
    conv = get_convention(convention)
    if integration not in ("euler", "exact"):
        raise ValueError(f"integration must be 'euler' or 'exact', got {integration!r}")
    graph, no_reset = _read(graph_or_path)
    meta = dict(graph.metadata or {})
    if dt is None:
        dt = float(meta.get("neuro.dt", conv.dt)) if conv.name == "neuro" else conv.dt
    if not (isinstance(dt, int | float) and math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a finite number > 0, got {dt!r}")
    inputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
    outputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Output)]
    modules, problems = {}, []
    for name, node in graph.nodes.items():
        if isinstance(node, nir.Input | nir.Output):
            continue
        try:
            modules[name] = _module(name, node, conv, float(dt), integration, meta, no_reset)
        except NIRImportError as exc:
            problems.append(f"  - {name}: {exc}")
    if problems:
        raise NIRImportError("cannot run these NIR nodes:\n" + "\n".join(problems))
    preds: dict[str, list[str]] = defaultdict(list)
    succ: dict[str, list[str]] = defaultdict(list)
    for a, b in graph.edges:
        preds[b].append(a)
        succ[a].append(b)
    # Kahn's algorithm from the inputs; anything left is on a cycle
    indeg = {k: len(preds[k]) for k in graph.nodes}
    queue = deque(inputs)
    order = []
    while queue:
        k = queue.popleft()
        for s in succ[k]:
            indeg[s] -= 1
            if indeg[s] == 0:
                queue.append(s)
                order.append(s)
    left = [k for k in graph.nodes if k not in order and k not in inputs]
    if left:
        raise NIRImportError(f"the graph has cycles or unreachable nodes ({', '.join(left)}); recurrent NIR "
                             "graphs are not supported by from_nir yet")
    run = [k for k in order if k not in outputs]
    out_preds = {o: preds[o] for o in outputs}
    net = NIRNetwork(modules, run, {**{k: preds[k] for k in run}, **out_preds}, inputs,
                     [p[0] if len(p) == 1 else p[0] for p in out_preds.values()], conv, float(dt))
    return net
