"""``from_nir``: any NIR graph (or ``.nir`` file, read with ``nir.read``: HDF5, no pickle) as a runnable,
time-major ``torch.nn.Module`` built from :mod:`neuro.nn` layers.

NIR is continuous-time; the time step is an argument. By default each neuron ODE is discretised with
forward Euler at ``dt``, the convention the other frameworks' exporters assume, so their files reproduce
their outputs (``decay = 1 - dt/tau``, ``gain = r dt/tau``); ``integration="exact"`` uses
``decay = exp(-dt/tau)`` (every coefficient from :mod:`neuro.models.coefficients`; LIF's exact one in the float32
order Sinabs computes it in, :func:`~neuro.models.coefficients.exact_lif_float32`). Reset, its timing and the
threshold test come from the named ``convention`` (:mod:`neuro.io.conventions`).

Files and graphs from elsewhere are data, checked in full before anything is built (:func:`check_graph`):
a missing path, a folder, a truncated or non-HDF5 file, HDF5 that is not NIR, unknown node types, edges to or
from unknown nodes, cycles without a neuron on them, shapes that do not agree between connected nodes,
declared shapes that are not positive integers or exceed :data:`MAX_ELEMENTS`, and parameters that are
NaN, infinite in float32 or out of range (``tau <= 0``) are refused with one :class:`NIRImportError` (a
``ValueError``) that names the node and the file. Nothing is found only at run time.

Each NIR node type maps to its neuro-snn module through one registry (:data:`_KINDS`, keyed by the NIR
class, as NIR's own ``str2NIRNode`` is keyed by type name): a builder, a shape rule and the fields that must
be finite.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import warnings
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nir
import numpy as np
import torch
from torch import nn

import neuro.nn as snn
from neuro import _checks
from neuro.io.conventions import Convention, MultiSpike
from neuro.io.conventions import get as get_convention
from neuro.models import coefficients

#: Largest number of elements a declared shape (one sample of one node) or a stored array may have: 2**28
#: (1 GiB in float32). Larger declarations are refused at load rather than failing to allocate at run time.
MAX_ELEMENTS = 2**28

_F32_MAX = float(np.finfo(np.float32).max)


class NIRImportError(ValueError):
    """The graph or file cannot be run by neuro-snn; the message names the file and every bad node."""


class NIRFileNotFoundError(NIRImportError, FileNotFoundError):
    """No file at the path given (both a ``ValueError`` and a ``FileNotFoundError``)."""


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
    on its incoming edges (NIR's semantics). Input and output are time-major ``[T, B, ...]``; the input's
    sample shape must be the graph's declared input shape (``input_shape``)."""

    def __init__(self, modules: dict[str, nn.Module], order: list[str], preds: dict[str, list[str]],
                 inputs: list[str], outputs: list[str], convention: Convention, dt: float,
                 input_shape: tuple | None = None, delayed: dict[str, list[str]] | None = None,
                 shapes: dict[str, tuple] | None = None):
        super().__init__()
        self.layers = nn.ModuleDict({k.replace(".", "__"): m for k, m in modules.items()})
        self.order, self.preds, self.inputs, self.outputs = order, preds, inputs, outputs
        self.convention, self.dt, self.input_shape = convention, dt, input_shape
        self.delayed = dict(delayed or {})  # node -> sources of its recurrent edges
        self.shapes = dict(shapes or {})  # node -> its output's sample shape (zeros before the first step)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor [T, B, ...], got {type(x).__name__}")
        if self.input_shape is not None and tuple(x.shape[2:]) != tuple(self.input_shape):
            raise ValueError(f"x must have shape [T, B, {', '.join(map(str, self.input_shape))}] (the graph's "
                             f"input shape), got {list(x.shape)}")
        if self.delayed:
            return self._stepwise(x)
        values = {name: x for name in self.inputs}
        for name in self.order:
            incoming = [values[p] for p in self.preds[name]]
            total = incoming[0] if len(incoming) == 1 else torch.stack(incoming).sum(0)
            key = name.replace(".", "__")
            values[name] = self.layers[key](total) if key in self.layers else total
        outs = [values[o] for o in self.outputs]
        return outs[0] if len(outs) == 1 else tuple(outs)

    def _stepwise(self, x: torch.Tensor):
        """A graph with cycles, one step at a time: each recurrent edge delivers its source's output of the
        previous step (zeros at the first step); neurons carry their state from step to step."""
        states: dict[str, object] = {}
        prev = {p: x.new_zeros((1, x.shape[1], *self.shapes[p])) for ps in self.delayed.values() for p in ps}
        steps = []
        for t in range(x.shape[0]):
            values = {name: x[t:t + 1] for name in self.inputs}
            for name in self.order:
                incoming = [values[p] for p in self.preds[name]]
                incoming += [prev[p] for p in self.delayed.get(name, [])]
                total = incoming[0] if len(incoming) == 1 else torch.stack(incoming).sum(0)
                key = name.replace(".", "__")
                if key in self.layers:
                    values[name], states[name] = _step(self.layers[key], total, states.get(name))
                else:
                    values[name] = total
            prev = {p: values[p] for ps in self.delayed.values() for p in ps}
            steps.append([values[o] for o in self.outputs])
        outs = [torch.cat([s[i] for s in steps]) for i in range(len(self.outputs))]
        return outs[0] if len(outs) == 1 else tuple(outs)


def _step(module: nn.Module, x: torch.Tensor, state):
    """One step ``x`` ``[1, B, ...]`` of ``module`` from ``state`` (``None`` at the first step)."""
    if isinstance(module, snn.SpikingNeuron):
        from neuro.nn.functional import neuron_scan

        dyn, sample, batch = module.dynamics, tuple(x.shape[2:]), x.shape[1]
        if state is None:
            state = (module._rows(module.kernel_params(), dyn.params, sample, batch, x.device),
                     module._rows(module.initial_state(), dyn.state, sample, batch, x.device))
        params, st = state
        spikes, states = neuron_scan(dyn, x.reshape(1, -1), params, st, module.options(), module.surrogate,
                                     module.dt, record=True)
        st = states[0]
        out = spikes if module.emits_spikes else st[dyn.state.index(dyn.membrane)]
        return out.reshape(x.shape), (params, st)
    if isinstance(module, MultiSpike):
        return module.step(x, state)
    return module(x), None


# --------------------------------------------------------------------------------------------------------
# reading a file


def _where(path) -> str:
    return f"{path}: " if path is not None else ""


def _scan_file(f, path: Path) -> set[str]:
    """Check the HDF5 layout before ``nir.read`` touches it; returns IF/LIF/CubaLIF nodes without v_reset."""
    import h5py

    known = {"Input", "Output", "NIRGraph", "Affine", "Linear", "Scale", "Conv1d", "Conv2d", "SumPool2d",
              "AvgPool2d", "Flatten", "Delay", "Threshold", "I", "IF", "LI", "LIF", "CubaLI", "CubaLIF"}
    if "node" not in f or not isinstance(f["node"], h5py.Group):
        raise NIRImportError(f"{path} is an HDF5 file but not a NIR file (it has no 'node' group)")
    problems, no_reset = [], set()

    def walk(grp, prefix):
        kind = grp["type"][()] if "type" in grp and isinstance(grp["type"], h5py.Dataset) else None
        kind = kind.decode("utf8", "replace") if isinstance(kind, bytes) else kind
        where = f"node {prefix!r}" if prefix else "the graph"
        if not isinstance(kind, str):
            problems.append(f"  - {where}: no 'type' entry")
            return
        if kind not in known:
            problems.append(f"  - {where}: unknown NIR node type {kind!r}")
            return
        for key, item in grp.items():
            if isinstance(item, h5py.Dataset) and item.size > MAX_ELEMENTS:
                problems.append(f"  - {where}: {key} declares {item.size:.3g} elements (more than "
                                f"MAX_ELEMENTS = {MAX_ELEMENTS})")
        if kind in ("IF", "LIF", "CubaLIF") and "v_reset" not in grp:
            no_reset.add(prefix)
        if kind == "NIRGraph":
            if "nodes" not in grp or not isinstance(grp["nodes"], h5py.Group):
                problems.append(f"  - {where}: a NIRGraph without 'nodes'")
                return
            if "edges" not in grp:
                problems.append(f"  - {where}: a NIRGraph without 'edges'")
            for name, sub in grp["nodes"].items():
                if not isinstance(sub, h5py.Group):
                    problems.append(f"  - node {name!r}: not an HDF5 group")
                    continue
                walk(sub, f"{prefix}.{name}" if prefix else name)

    walk(f["node"], "")
    if problems:
        raise NIRImportError(f"{path}: not a NIR file neuro-snn can read:\n" + "\n".join(problems))
    return no_reset


def _read_file(path) -> tuple[nir.NIRGraph, set[str], str]:
    """``nir.read`` after checking the path and the file's layout; errors name the file."""
    import h5py

    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"graph_or_path must be a nir.NIRGraph or the path of a .nir file, got "
                        f"{type(path).__name__}")
    if str(path) == "":
        raise ValueError("graph_or_path is an empty path")
    p = Path(path)
    if not p.exists():
        raise NIRFileNotFoundError(f"no NIR file at {p}")
    if p.is_dir():
        raise NIRImportError(f"{p} is a folder, not a NIR file")
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        raise NIRImportError(f"{p} is not a readable NIR file: not HDF5, or truncated "
                             f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    version = ""
    try:
        with f:
            version = f.attrs.get("version", f["version"][()] if "version" in f else b"")
            version = version.decode() if isinstance(version, bytes) else str(version)
            no_reset = _scan_file(f, p)
        graph = nir.read(str(p), type_check=False)
    except NIRImportError:
        raise
    except Exception as exc:  # a damaged file: h5py and nir raise many kinds (OSError, KeyError, TypeError...)
        raise NIRImportError(f"{p} is not a readable NIR file ({type(exc).__name__}: {exc})") from None
    if not isinstance(graph, nir.NIRGraph):
        raise NIRImportError(f"{p} holds a single {type(graph).__name__} node, not a NIR graph")
    if no_reset:
        warnings.warn(f"{p.name} (nir {version or 'unknown version'}) has IF/LIF nodes without v_reset "
                      f"({', '.join(sorted(no_reset))}): read as reset by subtraction, their nir 1.0.4 meaning",
                      stacklevel=4)
    return graph, no_reset, str(p)


def read(path) -> nir.NIRGraph:
    """Read a ``.nir`` file and check it (:func:`check_graph`): the graph, or one :class:`NIRImportError`.

    Example:
        >>> import tempfile, pathlib, torch, neuro
        >>> net = torch.nn.Sequential(neuro.nn.TimeDistributed(torch.nn.Linear(3, 2)), neuro.nn.LIF(beta=0.9))
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "net.nir"
        >>> _ = neuro.io.write(path, net, (3,))
        >>> sorted(neuro.io.read(path).nodes)
        ['0', '1', 'input', 'output']
    """
    graph, _, source = _read_file(path)
    check_graph(graph, source=source)
    return graph


# --------------------------------------------------------------------------------------------------------
# checking a graph


def _arr(node, field: str, problems: list, name: str, optional: bool = False):
    """``node.field`` as a float64 array after checking it is numeric and finite in float32."""
    v = getattr(node, field, None)
    if v is None:
        if not optional:
            problems.append(f"  - {name}: {field} is missing")
        return None
    try:
        a = np.asarray(v)
    except Exception:
        problems.append(f"  - {name}: {field} is not an array ({type(v).__name__})")
        return None
    if a.dtype.kind not in "biuf":
        problems.append(f"  - {name}: {field} must be numeric, got dtype {a.dtype}")
        return None
    a = a.astype(np.float64)
    bad = ~np.isfinite(a) | (np.abs(np.where(np.isfinite(a), a, 0)) > _F32_MAX)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0]) if a.ndim else ()
        problems.append(f"  - {name}: {field} has {int(bad.sum())} value(s) that are NaN or not finite in "
                        f"float32 (first {float(a[idx] if idx else a[()])} at index {idx})")
        return None
    return a


def _ints(value, field: str, n: int | None = None, minimum: int = 1) -> tuple[int, ...]:
    """``value`` (int or sequence) as a tuple of ints >= ``minimum``; ValueError naming ``field``."""
    a = np.atleast_1d(np.asarray(value))
    if a.dtype.kind not in "biuf" or a.ndim != 1 or a.size == 0:
        raise ValueError(f"{field} must be integers, got {value!r}")
    f = a.astype(np.float64)
    if not np.all(np.isfinite(f)) or np.any(f != np.round(f)):
        raise ValueError(f"{field} must be whole numbers, got {a.tolist()}")
    if np.any(f < minimum) or np.any(f > MAX_ELEMENTS):
        raise ValueError(f"{field} must be in [{minimum}, {MAX_ELEMENTS}], got {a.tolist()}")
    out = tuple(int(v) for v in f)
    if n is not None:
        if len(out) == 1:
            out = out * n
        if len(out) != n:
            raise ValueError(f"{field} must have {n} entries, got {list(out)}")
    return out


def declared_shape(value, field: str) -> tuple[int, ...]:
    """A declared shape (Input/Output/Flatten/Conv) as positive ints with at most MAX_ELEMENTS elements."""
    shape = _ints(value, field, minimum=1)
    if math.prod(shape) > MAX_ELEMENTS:
        raise ValueError(f"{field} {list(shape)} has {math.prod(shape):.3g} elements, more than "
                         f"MAX_ELEMENTS = {MAX_ELEMENTS}")
    return shape


def _same_shape(node, fields, in_shape) -> tuple:
    """Parameters of elementwise nodes must broadcast to the input shape without changing it."""
    for f in fields:
        v = getattr(node, f, None)
        if v is None:
            continue
        s = np.shape(v)
        try:
            ok = np.broadcast_shapes(s, in_shape) == tuple(in_shape)
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"{f} has shape {list(s)}, which does not fit the input shape {list(in_shape)}")
    return tuple(in_shape)


def _dense_shape(node, in_shape):
    w = np.shape(node.weight)
    if len(w) != 2:
        raise ValueError(f"weight must be 2-D [out, in], got shape {list(w)}")
    if not in_shape or in_shape[-1] != w[1]:
        raise ValueError(f"weight {list(w)} takes {w[1]} inputs but the incoming shape is {list(in_shape)}")
    bias = getattr(node, "bias", None)
    if bias is not None and np.broadcast_shapes(np.shape(bias), (w[0],)) != (w[0],):
        raise ValueError(f"bias has shape {list(np.shape(bias))}, expected [{w[0]}]")
    return (*in_shape[:-1], w[0])


def _conv_geometry(node, in_shape, dims: int):
    w = np.shape(node.weight)
    if len(w) != dims + 2:
        raise ValueError(f"weight must be {dims + 2}-D [out, in/groups, kernel...], got shape {list(w)}")
    if len(in_shape) != dims + 1:
        raise ValueError(f"expects a [{'C, H, W' if dims == 2 else 'C, L'}] input, got shape {list(in_shape)}")
    groups = _ints(node.groups, "groups", 1)[0]
    if in_shape[0] != w[1] * groups or w[0] % groups:
        raise ValueError(f"weight {list(w)} with groups={groups} takes {w[1] * groups} channels but the incoming "
                         f"shape is {list(in_shape)}")
    stride = _ints(node.stride, "stride", dims)
    dilation = _ints(node.dilation, "dilation", dims)
    if isinstance(node.padding, str | bytes):
        pad = node.padding.decode() if isinstance(node.padding, bytes) else node.padding
        if pad not in ("same", "valid"):
            raise ValueError(f"padding must be 'same', 'valid' or integers, got {pad!r}")
        if pad == "same" and any(s != 1 for s in stride):
            raise ValueError(f"padding='same' needs stride 1, got stride {list(stride)}")
        padding = pad if pad == "same" else (0,) * dims
    else:
        padding = _ints(node.padding, "padding", dims, minimum=0)
    if getattr(node, "input_shape", None) is not None:
        declared = _ints(node.input_shape, "input_shape", dims)
        if tuple(declared) != tuple(in_shape[1:]):
            raise ValueError(f"input_shape {list(declared)} does not match the incoming shape {list(in_shape)}")
    bias = getattr(node, "bias", None)
    if bias is not None and np.broadcast_shapes(np.shape(bias), (w[0],)) != (w[0],):
        raise ValueError(f"bias has shape {list(np.shape(bias))}, expected [{w[0]}]")
    out = []
    for k in range(dims):
        if padding == "same":
            out.append(in_shape[1 + k])
            continue
        size = (in_shape[1 + k] + 2 * padding[k] - dilation[k] * (w[2 + k] - 1) - 1) // stride[k] + 1
        if size < 1:
            raise ValueError(f"kernel {list(w[2:])} does not fit the input {list(in_shape)} (output size {size})")
        out.append(size)
    return (w[0], *out), stride, padding, dilation, groups


def _pool_geometry(node, in_shape):
    if len(in_shape) != 3:
        raise ValueError(f"expects a [C, H, W] input, got shape {list(in_shape)}")
    k = _ints(node.kernel_size, "kernel_size", 2)
    s = _ints(node.stride, "stride", 2)
    p = _ints(node.padding, "padding", 2, minimum=0)
    if any(pi > ki // 2 for pi, ki in zip(p, k, strict=True)):
        raise ValueError(f"padding {list(p)} must be at most half the kernel_size {list(k)}")
    out = [(in_shape[1 + d] + 2 * p[d] - k[d]) // s[d] + 1 for d in range(2)]
    if min(out) < 1:
        raise ValueError(f"kernel_size {list(k)} does not fit the input {list(in_shape)}")
    return (in_shape[0], *out), k, s, p


def _flatten_dims(node, in_shape):
    nd = len(in_shape)
    try:
        start, end = int(node.start_dim), int(node.end_dim)
    except (TypeError, ValueError):
        raise ValueError(f"start_dim/end_dim must be integers, got {node.start_dim!r}, {node.end_dim!r}") from None
    s = start + nd if start < 0 else start
    e = end + nd if end < 0 else end
    if not (0 <= s <= e < nd):
        raise ValueError(f"start_dim={start}, end_dim={end} do not fit the incoming shape {list(in_shape)}")
    declared = (getattr(node, "input_type", None) or {}).get("input")
    if declared is not None and np.size(declared) and tuple(_ints(declared, "input_type")) != tuple(in_shape):
        raise ValueError(f"input_type {np.asarray(declared).tolist()} does not match the incoming shape "
                         f"{list(in_shape)}")
    return (*in_shape[:s], math.prod(in_shape[s:e + 1]), *in_shape[e + 1:]), start, end


# --------------------------------------------------------------------------------------------------------
# the registry: NIR node class -> how to check it, what shape it gives, how to build it


@dataclass(frozen=True)
class _Ctx:
    conv: Convention
    dt: float
    integration: str
    meta: dict
    no_reset: set


@dataclass(frozen=True)
class _Kind:
    build: Callable[[str, nir.NIRNode, _Ctx], nn.Module]
    shape: Callable[[nir.NIRNode, tuple], tuple]
    finite: tuple[str, ...]
    positive: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()


_KINDS: dict[type, _Kind] = {}


def _register(node_type, shape, finite=(), positive=(), optional=()):
    def deco(build):
        _KINDS[node_type] = _Kind(build, shape, tuple(finite), tuple(positive), tuple(optional))
        return build
    return deco


def _t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=torch.float32)


@_register(nir.Affine, _dense_shape, ("weight", "bias"))
def _affine(name, node, ctx):
    w = np.asarray(node.weight)
    lin = nn.Linear(w.shape[1], w.shape[0])
    lin.weight.data = _t(w)
    lin.bias.data = _t(np.broadcast_to(node.bias, (w.shape[0],)).copy())
    return snn.TimeDistributed(lin)


@_register(nir.Linear, _dense_shape, ("weight",))
def _linear(name, node, ctx):
    w = np.asarray(node.weight)
    lin = nn.Linear(w.shape[1], w.shape[0], bias=False)
    lin.weight.data = _t(w)
    return snn.TimeDistributed(lin)


def _conv(name, node, ctx, dims, in_shape):
    _, stride, padding, dilation, groups = _conv_geometry(node, in_shape, dims)
    w = _t(node.weight)
    cls = nn.Conv2d if dims == 2 else nn.Conv1d
    conv = cls(w.shape[1] * groups, w.shape[0], tuple(w.shape[2:]), stride=stride, padding=padding,
               dilation=dilation, groups=groups)
    conv.weight.data = w
    conv.bias.data = _t(np.broadcast_to(node.bias, (w.shape[0],)).copy())
    return snn.TimeDistributed(conv)


@_register(nir.Conv2d, lambda node, s: _conv_geometry(node, s, 2)[0], ("weight", "bias"))
def _conv2d(name, node, ctx):
    return _conv(name, node, ctx, 2, ctx.meta["__in_shape__"][name])


@_register(nir.Conv1d, lambda node, s: _conv_geometry(node, s, 1)[0], ("weight", "bias"))
def _conv1d(name, node, ctx):
    return _conv(name, node, ctx, 1, ctx.meta["__in_shape__"][name])


@_register(nir.AvgPool2d, lambda node, s: _pool_geometry(node, s)[0])
def _avgpool(name, node, ctx):
    _, k, s, p = _pool_geometry(node, ctx.meta["__in_shape__"][name])
    return snn.TimeDistributed(nn.AvgPool2d(k, s, p))


@_register(nir.SumPool2d, lambda node, s: _pool_geometry(node, s)[0])
def _sumpool(name, node, ctx):
    _, k, s, p = _pool_geometry(node, ctx.meta["__in_shape__"][name])
    return snn.TimeDistributed(_SumPool2d(k, s, p))


@_register(nir.Flatten, lambda node, s: _flatten_dims(node, s)[0])
def _flatten(name, node, ctx):
    _, start, end = _flatten_dims(node, ctx.meta["__in_shape__"][name])
    return _Flatten(start, end)


@_register(nir.Scale, lambda node, s: _same_shape(node, ("scale",), s), ("scale",))
def _scale(name, node, ctx):
    return _Scale(node.scale)


@_register(nir.Threshold, lambda node, s: _same_shape(node, ("threshold",), s), ("threshold",))
def _threshold(name, node, ctx):
    return _Threshold(node.threshold)


def _decay(tau, dt, integration):
    tau = np.asarray(tau, np.float64)
    decay = coefficients.decay(tau, dt, integration)
    if np.any(decay < 0):
        raise NIRImportError(f"dt = {dt} exceeds tau = {tau.min():.3g}: forward Euler is unstable there; "
                             "use a smaller dt or integration='exact'")
    return decay


def _thr(v, conv: Convention):
    v = np.asarray(v, np.float32)
    # v >= thr is v > nextafter(thr, -inf) exactly in float32
    return np.nextafter(v, np.float32(-np.inf)) if conv.inclusive_threshold else v


_RESETS = ("subtract", "zero")


def _reset(name, ctx: _Ctx) -> tuple[str, bool]:
    reset, delay = _reset_read(name, ctx)
    # what the caller passed explicitly (from_nir(reset=..., reset_delay=...)) wins over file and convention
    if "reset" in ctx.conv.overridden:
        reset = ctx.conv.reset
    if "reset_delay" in ctx.conv.overridden:
        delay = ctx.conv.reset_delay
    return reset, delay


def _reset_read(name, ctx: _Ctx) -> tuple[str, bool]:
    if name in ctx.no_reset:
        return "subtract", False
    if ctx.conv.reset == "file":
        reset = ctx.meta.get(f"neuro.{name}.reset", "zero")
        reset = reset.decode() if isinstance(reset, bytes) else str(reset)
        if reset not in _RESETS:
            raise NIRImportError(f"metadata neuro.{name}.reset = {reset!r}; expected one of {_RESETS}")
        delay = ctx.meta.get(f"neuro.{name}.reset_delay", 0)
        if not isinstance(delay, numbers.Integral | np.integer | np.bool_ | bool) or int(delay) not in (0, 1):
            raise NIRImportError(f"metadata neuro.{name}.reset_delay = {delay!r}; expected 0 or 1")
        return reset, bool(delay)
    return ctx.conv.reset, ctx.conv.reset_delay


def _tau(tau, ctx: _Ctx):
    return np.asarray(tau, np.float64) / ctx.dt if ctx.conv.tau_scaled_by_dt else np.asarray(tau, np.float64)


def _v_reset(node):
    return _t(node.v_reset if node.v_reset is not None else 0.0)


_NEURON_SHAPE = ("tau", "tau_mem", "tau_syn", "r", "v_leak", "v_threshold", "v_reset", "w_in")


def _neuron_shape(node, s):
    return _same_shape(node, _NEURON_SHAPE, s)


@_register(nir.LIF, _neuron_shape, ("tau", "r", "v_leak", "v_threshold", "v_reset"), ("tau",), ("v_reset",))
def _lif(name, node, ctx):
    reset, delay = _reset(name, ctx)
    tau = _tau(node.tau, ctx)
    if ctx.integration == "exact":  # float32 as Sinabs computes it: a = exp(-dt/tau), gain = r (1 - a)
        decay, gain = coefficients.exact_lif_float32(tau, node.r, ctx.dt)
    else:
        decay, gain = _decay(tau, ctx.dt, ctx.integration), coefficients.input_gain(node.r, tau, ctx.dt, "euler")
    if ctx.conv.multi_spike:
        return _multi_spike(name, node, ctx, decay, gain, node.v_leak, reset, delay)
    return snn.LIF(beta=_t(decay), threshold=torch.as_tensor(_thr(node.v_threshold, ctx.conv)), reset=reset,
                   reset_delay=delay, gain=_t(gain), v_leak=_t(node.v_leak), v_reset=_v_reset(node))


@_register(nir.IF, _neuron_shape, ("r", "v_threshold", "v_reset"), (), ("v_reset",))
def _if(name, node, ctx):
    reset, delay = _reset(name, ctx)
    v_init = np.asarray(ctx.meta.get(f"neuro.{name}.v_init", 0.0))
    if v_init.dtype.kind not in "biuf" or not np.all(np.isfinite(v_init.astype(np.float64))):
        raise NIRImportError(f"metadata neuro.{name}.v_init must be finite numbers, got {v_init.tolist()!r}")
    # NIR's IF is r dv/dt = I (v += r dt x); Norse adds the input without dt (v += r x)
    r = np.asarray(node.r)
    gain = coefficients.integrator_gain(r, ctx.dt) if ctx.conv.if_input_dt else r * 1.0
    if ctx.conv.multi_spike:
        if np.any(v_init != 0):
            raise NIRImportError("multi_spike neurons start at v = 0; the file's v_init is not supported with them")
        return _multi_spike(name, node, ctx, 1.0, gain, 0.0, reset, delay)
    return snn.IF(threshold=torch.as_tensor(_thr(node.v_threshold, ctx.conv)), reset=reset, reset_delay=delay,
                  v_init=_t(v_init), gain=_t(gain), v_reset=_v_reset(node))


def _multi_spike(name, node, ctx, decay, gain, v_leak, reset, delay):
    """Sinabs' MultiSpike output (spike counts floor(v/thr) when v >= thr), reset in the same step."""
    if delay:
        raise NIRImportError("multi_spike resets in the same step; it cannot be combined with reset_delay=True")
    return MultiSpike(decay=decay, gain=gain, v_leak=v_leak, threshold=node.v_threshold, v_reset=_v_reset(node),
                      reset=reset)


@_register(nir.LI, _neuron_shape, ("tau", "r", "v_leak"), ("tau",))
def _li(name, node, ctx):
    tau = _tau(node.tau, ctx)
    decay = _decay(tau, ctx.dt, ctx.integration)
    gain = coefficients.input_gain(node.r, tau, ctx.dt, ctx.integration)
    return snn.LI(beta=_t(decay), gain=_t(gain), v_leak=_t(node.v_leak))


@_register(nir.CubaLIF, _neuron_shape, ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"),
           ("tau_syn", "tau_mem"), ("v_reset",))
def _cubalif(name, node, ctx):
    reset, delay = _reset(name, ctx)
    dt = ctx.dt
    tau_syn, tau_mem = _tau(node.tau_syn, ctx), _tau(node.tau_mem, ctx)
    for tau in (tau_syn, tau_mem):
        _decay(tau, dt, ctx.integration)  # refuses an unstable Euler step
    if ctx.conv.multi_spike:
        raise NIRImportError("multi_spike is supported for IF and LIF nodes (Sinabs' exports), not CubaLIF; "
                             "pass multi_spike=False")
    c = coefficients.cuba_lif(dt, ctx.integration, tau_syn=tau_syn, tau_mem=tau_mem, r=node.r, w_in=node.w_in)
    alpha, beta, syn_gain, i_new = c["syn_decay"], c["mem_decay"], c["syn_gain"], c["i_new"]
    if ctx.integration == "euler" and ctx.conv.cuba_input_unscaled:
        syn_gain = np.asarray(node.w_in, np.float64)  # Norse's current jumps by the input unscaled: I += w_in x
    return snn.CubaLIF(alpha=_t(alpha), beta=_t(beta), threshold=_t(_thr(node.v_threshold, ctx.conv)), reset=reset,
                       reset_delay=delay, syn_gain=_t(syn_gain), i_new=_t(i_new), v_leak=_t(node.v_leak),
                       v_reset=_t(node.v_reset if node.v_reset is not None else 0.0))


@dataclass
class _Checked:
    """What :func:`check_graph` learnt: input/output node names, run order, predecessors, shapes."""

    inputs: list[str]
    outputs: list[str]
    order: list[str]
    preds: dict[str, list[str]]
    in_shapes: dict[str, tuple]
    out_shapes: dict[str, tuple]
    input_shape: tuple
    #: node -> sources of its recurrent edges (delivering the previous step's output); ``preds`` excludes them
    delayed: dict[str, list[str]] = dataclasses.field(default_factory=dict)


#: nodes with state: a cycle through one of them carries a one-step delay
_STATEFUL = (nir.IF, nir.LIF, nir.CubaLIF, nir.LI, nir.I)


def _cut_cycles(nodes, succ, inputs) -> tuple[set, set, list[str]]:
    """Depth-first from the inputs: the back edges (``back``, which make the graph acyclic for shape
    inference) and, on each cycle they close, the edge leaving the cycle's last neuron (``delayed``: it
    delivers the previous step's output). A cycle without a neuron is an algebraic loop: a problem."""
    state: dict[str, int] = {}
    back, delayed, problems = set(), set(), []
    for root in inputs:
        if root in state:
            continue
        path, iters = [root], [iter(succ[root])]
        state[root] = 1
        while iters:
            nxt = next(iters[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                iters.pop()
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                iters.append(iter(succ[nxt]))
            elif state[nxt] == 1:
                cycle = path[path.index(nxt):]
                back.add((path[-1], nxt))
                neurons = [i for i, k in enumerate(cycle) if isinstance(nodes[k], _STATEFUL)]
                if not neurons:
                    problems.append(f"  - cycle {' -> '.join([*cycle, nxt])}: no neuron on the cycle to carry a "
                                    "step of delay (an algebraic loop)")
                else:
                    i = neurons[-1]
                    delayed.add((cycle[i], cycle[i + 1] if i + 1 < len(cycle) else nxt))
    return back, delayed, problems


def _kahn(nodes, preds, succ, inputs, skip, from_all: bool) -> list[str]:
    """Topological order without the edges in ``skip``, from the inputs (and, ``from_all``, from every node
    whose only inputs are skipped edges); the inputs themselves are not listed."""
    indeg = {k: sum((p, k) not in skip for p in preds[k]) for k in nodes}
    queue = deque(inputs)
    order: list[str] = []
    if from_all:
        extra = [k for k in nodes if indeg[k] == 0 and k not in inputs]
        queue.extend(extra)
        order.extend(extra)
    while queue:
        k = queue.popleft()
        for s in succ[k]:
            if (k, s) in skip:
                continue
            indeg[s] -= 1
            if indeg[s] == 0:
                queue.append(s)
                order.append(s)
    return order


def check_graph(graph, source: str | None = None) -> _Checked:
    """Check a NIR graph completely before anything is built or run.

    Refused, all together in one :class:`NIRImportError` naming each bad node (and ``source``, the file):
    nodes that are not NIR nodes or have no neuro-snn equivalent (the registry :data:`_KINDS`), edges to or
    from unknown nodes and duplicate edges, a graph without Input or Output nodes, edges into an Input or out
    of an Output, nodes unreachable from the inputs, cycles without a neuron on them (a cycle through a
    neuron is a recurrent graph: it runs step by step, see :func:`from_nir`), parameters that are not numeric, NaN, or
    infinite in float32 (``|x| > 3.4e38``), time constants ``<= 0``, declared shapes that are not positive
    integers or exceed :data:`MAX_ELEMENTS`, and shapes that disagree along an edge (each node's output shape
    is inferred from its input: ``Affine``/``Linear`` ``[..., in] -> [..., out]``; ``Conv`` and pooling by
    ``floor((n + 2p - d(k - 1) - 1) / s) + 1``; ``Flatten`` by the product of the flattened dims; neurons,
    ``Scale`` and ``Threshold`` keep the shape and their parameters must broadcast to it). Nodes with several
    incoming edges sum them, so the incoming shapes must be equal.

    Example:
        >>> import nir, numpy as np
        >>> from neuro.io import check_graph
        >>> g = nir.NIRGraph(nodes={"input": nir.Input({"input": np.array([3])}),
        ...                         "fc": nir.Linear(weight=np.ones((2, 4), np.float32)),
        ...                         "output": nir.Output({"output": np.array([2])})},
        ...                  edges=[("input", "fc"), ("fc", "output")], type_check=False)
        >>> check_graph(g)
        Traceback (most recent call last):
        ...
        neuro.io.load.NIRImportError: the NIR graph cannot be run:
          - fc: weight [2, 4] takes 4 inputs but the incoming shape is [3]
    """
    where = _where(source)
    if not isinstance(graph, nir.NIRGraph):
        raise TypeError(f"graph must be a nir.NIRGraph, got {type(graph).__name__}")
    nodes, edges = graph.nodes, graph.edges
    if not isinstance(nodes, dict) or not nodes:
        raise NIRImportError(f"{where}the NIR graph has no nodes")
    problems: list[str] = []
    for name, node in nodes.items():
        if not isinstance(name, str) or not name:
            problems.append(f"  - {name!r}: node names must be non-empty strings")
        elif not isinstance(node, nir.NIRNode):
            problems.append(f"  - {name}: {type(node).__name__} is not a NIR node")
        elif isinstance(node, nir.NIRGraph):
            problems.append(f"  - {name}: nested NIRGraph (subgraph) nodes are not supported by from_nir")
        elif not isinstance(node, nir.Input | nir.Output) and type(node) not in _KINDS:
            problems.append(f"  - {name}: {type(node).__name__} (no neuro-snn equivalent)")
    if problems:
        raise NIRImportError(f"{where}cannot run these NIR nodes:\n" + "\n".join(problems))
    preds: dict[str, list[str]] = defaultdict(list)
    succ: dict[str, list[str]] = defaultdict(list)
    seen = set()
    try:
        edge_list = list(edges)
    except TypeError:
        raise NIRImportError(f"{where}the graph's edges must be a list of (source, target) pairs") from None
    for e in edge_list:
        if not (isinstance(e, tuple | list) and len(e) == 2 and all(isinstance(v, str) for v in e)):
            problems.append(f"  - edge {e!r}: not a (source, target) pair of node names")
            continue
        a, b = e
        bad = [v for v in (a, b) if v not in nodes]
        if bad:
            problems.append(f"  - edge ({a!r}, {b!r}): {', '.join(repr(v) for v in bad)} is not a node of the graph")
            continue
        if (a, b) in seen:
            problems.append(f"  - edge ({a!r}, {b!r}): duplicate edge")
            continue
        seen.add((a, b))
        if isinstance(nodes[b], nir.Input):
            problems.append(f"  - edge ({a!r}, {b!r}): leads into the Input node {b!r}")
        if isinstance(nodes[a], nir.Output):
            problems.append(f"  - edge ({a!r}, {b!r}): leaves the Output node {a!r}")
        preds[b].append(a)
        succ[a].append(b)
    inputs = [k for k, n in nodes.items() if isinstance(n, nir.Input)]
    outputs = [k for k, n in nodes.items() if isinstance(n, nir.Output)]
    if not inputs:
        problems.append("  - the graph has no Input node")
    if not outputs:
        problems.append("  - the graph has no Output node")
    if problems:
        raise NIRImportError(f"{where}the NIR graph's edges are broken:\n" + "\n".join(problems))
    # parameters: numeric, finite in float32, time constants > 0
    for name, node in nodes.items():
        kind = _KINDS.get(type(node))
        if kind is None:
            continue
        for f in kind.finite:
            a = _arr(node, f, problems, name, optional=f in kind.optional)
            if a is not None and f in kind.positive and np.any(a <= 0):
                problems.append(f"  - {name}: {f} must be > 0, got {a.min():.6g}")
    # declared input shapes
    in_decl = {}
    for k in inputs:
        try:
            in_decl[k] = declared_shape((nodes[k].input_type or {}).get("input"), "input shape")
        except ValueError as exc:
            problems.append(f"  - {k}: {exc}")
    if problems:
        raise NIRImportError(f"{where}the NIR graph cannot be run:\n" + "\n".join(problems))
    # cycles: cut at the back edges for shapes, at the edge leaving each cycle's last neuron to run
    back, delayed, cyc = _cut_cycles(nodes, succ, inputs)
    if cyc:
        raise NIRImportError(f"{where}the graph has cycles from_nir cannot run:\n" + "\n".join(cyc))
    # order (Kahn's algorithm from the inputs; anything left is unreachable from the inputs)
    order = _kahn(nodes, preds, succ, inputs, back, from_all=False)
    left = [k for k in nodes if k not in order and k not in inputs]
    if left:
        raise NIRImportError(f"{where}the graph has nodes unreachable from its inputs ({', '.join(left)})")
    # shapes along the edges
    out_shapes: dict[str, tuple] = dict(in_decl)
    in_shapes: dict[str, tuple] = {}
    broken = set()
    for name in order:
        if any(p in broken for p in preds[name]):
            broken.add(name)
            continue
        incoming = {p: out_shapes[p] for p in preds[name] if (p, name) not in back}
        shapes = set(incoming.values())
        if len(shapes) > 1:
            problems.append(f"  - {name}: sums inputs of different shapes "
                            + ", ".join(f"{p} {list(s)}" for p, s in incoming.items()))
            broken.add(name)
            continue
        in_shape = shapes.pop()
        in_shapes[name] = in_shape
        node = nodes[name]
        try:
            if isinstance(node, nir.Output):
                declared = (node.output_type or {}).get("output")
                if declared is not None and np.size(declared):
                    declared = declared_shape(declared, "output shape")
                    if tuple(declared) != tuple(in_shape):
                        raise ValueError(f"declares output shape {list(declared)} but receives {list(in_shape)}")
                out_shapes[name] = in_shape
            else:
                out = tuple(int(v) for v in _KINDS[type(node)].shape(node, in_shape))
                if math.prod(out) > MAX_ELEMENTS:
                    raise ValueError(f"output shape {list(out)} exceeds MAX_ELEMENTS = {MAX_ELEMENTS}")
                out_shapes[name] = out
        except ValueError as exc:
            problems.append(f"  - {name}: {exc}")
            broken.add(name)
    for a, b in sorted(back):
        if a not in broken and b not in broken and out_shapes[a] != in_shapes[b]:
            problems.append(f"  - the edge {a} -> {b} closes one of the graph's cycles but carries shape "
                            f"{list(out_shapes[a])}, while {b} takes {list(in_shapes[b])}")
    if problems:
        raise NIRImportError(f"{where}the NIR graph cannot be run:\n" + "\n".join(problems))
    if delayed:  # run order: without the recurrent edges
        order = _kahn(nodes, preds, succ, inputs, delayed, from_all=True)
        if len(order) + len(inputs) != len(nodes):
            raise NIRImportError(f"{where}the graph's cycles overlap so that no one-step delay per cycle breaks "
                                 f"them all (recurrent edges {sorted(delayed)}); from_nir cannot order it")
    first = in_decl[inputs[0]]
    if any(in_decl[k] != first for k in inputs):
        raise NIRImportError(f"{where}the graph's Input nodes declare different shapes "
                             + ", ".join(f"{k} {list(in_decl[k])}" for k in inputs) + "; from_nir feeds them one x")
    fwd = {k: [p for p in v if (p, k) not in delayed] for k, v in preds.items()}
    rec: dict[str, list[str]] = defaultdict(list)
    for a, b in sorted(delayed):
        rec[b].append(a)
    return _Checked(inputs, outputs, order, fwd, in_shapes, out_shapes, first, dict(rec))


def _check_dt(dt, what="dt") -> float:
    """NIR's time step [s]: a number (a TypeError otherwise, as for from_nir's other arguments), checked by
    :func:`neuro._checks.check_dt`."""
    if not _checks.is_number(dt):
        raise TypeError(f"{what} must be a number, got {type(dt).__name__}")
    return _checks.check_dt(dt, what)


def from_nir(graph_or_path, dt: float | None = None, convention: str | Convention = "neuro",
             integration: str | None = None, *, reset: str | None = None, reset_delay: bool | None = None,
             inclusive_threshold: bool | None = None, multi_spike: bool | None = None) -> NIRNetwork:
    """A runnable time-major module from a NIR graph or file.

    The graph is checked in full first (:func:`check_graph`); a file is read with h5py and ``nir.read``
    after its layout is checked. Every problem is one :class:`NIRImportError` (a ``ValueError``) naming
    the file and the node.

    Args:
        graph_or_path: ``nir.NIRGraph`` or path of a ``.nir`` (HDF5) file.
        dt: the time step; default: the convention's (snnTorch and neuro-snn 1e-4, Norse 1e-3, Sinabs 1).
        convention: how to read what the file leaves unsaid: ``"neuro"``, ``"snntorch"``, ``"norse"``,
            ``"sinabs"``, ``"spikingjelly"`` (see :mod:`neuro.io.conventions`).
        integration: ``"euler"`` (``decay = 1 - dt/tau``, ``gain = r dt/tau``) or ``"exact"``
            (``decay = exp(-dt/tau)``, ``gain = r (1 - decay)``); default: the convention's (Sinabs exact,
            the others Euler).
        reset, reset_delay, inclusive_threshold, multi_spike: overrides on top of the convention for what
            no file says: ``"subtract"``/``"zero"``, next-step reset, ``v >= thr``, spike counts
            ``floor(v/thr)`` (Sinabs' MultiSpike, on by default in the Sinabs convention). An explicit
            ``reset`` also wins over what the file's nir version implies. E.g. snnTorch's
            ``reset_mechanism="zero"`` writes the same file as ``"subtract"``:
            ``from_nir(path, convention="snntorch", reset="zero")``.

    Graphs with cycles (snnTorch's ``RLeaky``: ``lif -> w_rec -> lif``) run step by step over time: the
    edge that leaves the last neuron on each cycle delivers that neuron's output of the previous step
    (zero at the first step); every other edge delivers the same step's output.

    Example:
        >>> import torch, neuro
        >>> net = torch.nn.Sequential(neuro.nn.TimeDistributed(torch.nn.Linear(3, 2)), neuro.nn.LIF(beta=0.9))
        >>> back = neuro.io.from_nir(neuro.io.to_nir(net, (3,)))
        >>> x = torch.rand(10, 4, 3)
        >>> torch.equal(back(x), net(x))
        True
        >>> neuro.io.from_nir(neuro.io.to_nir(net, (3,)), convention="snntorch", reset="zero").convention.reset
        'zero'
    """
    conv = get_convention(convention).override(integration=integration, reset=reset, reset_delay=reset_delay,
                                               inclusive_threshold=inclusive_threshold, multi_spike=multi_spike)
    integration = conv.integration
    if dt is not None:
        dt = _check_dt(dt)
    if isinstance(graph_or_path, nir.NIRGraph):
        graph, no_reset, source = graph_or_path, set(), None
    else:
        graph, no_reset, source = _read_file(graph_or_path)
    where = _where(source)
    checked = check_graph(graph, source=source)
    meta = dict(graph.metadata or {}) if isinstance(graph.metadata, dict) else {}
    if dt is None:
        if conv.name == "neuro" and "neuro.dt" in meta:
            file_dt = meta["neuro.dt"]
            try:
                dt = _check_dt(file_dt.item() if isinstance(file_dt, np.generic | np.ndarray) else file_dt,
                               "the graph's metadata neuro.dt")
            except (TypeError, ValueError) as exc:
                raise NIRImportError(f"{where}{exc}; pass dt= explicitly") from None
        else:
            dt = conv.dt
    ctx = _Ctx(conv, float(dt), integration, {**meta, "__in_shape__": checked.in_shapes}, no_reset)
    modules, problems = {}, []
    for name in checked.order:
        node = graph.nodes[name]
        if isinstance(node, nir.Output):
            continue
        try:
            modules[name] = _KINDS[type(node)].build(name, node, ctx)
        except (NIRImportError, ValueError, TypeError) as exc:
            problems.append(f"  - {name}: {exc}")
    if problems:
        raise NIRImportError(f"{where}cannot run these NIR nodes:\n" + "\n".join(problems))
    return NIRNetwork(modules, checked.order, {k: checked.preds.get(k, []) for k in checked.order},
                      checked.inputs, checked.outputs, conv, float(dt), input_shape=checked.input_shape,
                      delayed=checked.delayed, shapes=checked.out_shapes)
