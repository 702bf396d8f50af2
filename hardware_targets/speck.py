"""SynSense Speck (DynapCNN cores, as Sinabs targets them).

Nine cores, each: convolution -> integrate-and-fire (reset to zero or by subtraction) -> sum pooling, with
at most two destination cores. Limits (Sinabs documentation, per ANCHORS.md): input <= 128x128, output
feature map <= 64x64, channels <= 1024, kernel <= 16x16, stride in {1, 2, 4, 8}, padding 0..7, pooling
in {1, 2, 4}; weights 8 bit, neuron state 16 bit. Per-core memory in Ki entries: kernel
[16, 16, 16, 32, 32, 64, 64, 16, 16], neurons [64, 64, 64, 32, 32, 16, 16, 16, 16], and a layer needs::

    kernel memory = c * 2^(ceil(log2(kx * ky)) + ceil(log2 f))
    neuron memory = f * 2^(ceil(log2 fy) + ceil(log2 fx))

with ``c`` input and ``f`` output channels and ``fy x fx`` the output feature map. Linear layers map to
convolutions whose kernel covers the whole input; max pooling does not exist on chip.

What ``emit`` writes: the **NIR file that** ``sinabs.from_nir`` **imports** (Sinabs 3.1 reads nir 1.0.4), in the
chip-ready form of the graph:

- spike amplitudes of converted networks (``Scale`` nodes) are folded into the next weights, and each
  neuron's threshold into its own weights and bias (``w / thr``), so that a layer has one threshold;
- average pooling ``k x k`` becomes ``SumPool2d`` (the pooling DynapCNN cores do) with the next layer's
  weights divided by ``k^2``;
- weights, biases and the threshold are scaled per layer by ``127 / max|w|`` and rounded: 8-bit integer
  weights, the chip's precision;
- neurons are NIR ``IF`` with ``r = 1`` and **no** ``v_reset``: in nir 1.0.4 that is an integrate-and-fire
  neuron with reset by subtraction. Dense layers are ``Affine`` (Sinabs imports no ``Linear``).

The file is written with h5py in nir 1.0.4's layout (nir 1.0.8 writes ``v_reset``, which nir 1.0.4 rejects);
nir 1.0.8 and :func:`neuro.from_nir` read it too. Sinabs' semantics of the imported ``IAFSqueeze`` layer, per
step ``t`` (time step 1)::

    v = v + I[t];  s = trunc(v / thr) if v > 0 else 0     (MultiSpike; SingleSpike: s = [v >= thr])
    v = v - s thr;  v = max(v, -thr)                       (min_v_mem = -thr, set by sinabs.from_nir)

:meth:`Speck.simulate` runs exactly that on neuro-snn's side (both spike functions);
``neuro.from_nir(path, convention="sinabs")`` gives the single-spike form without the lower clamp.
Sinabs' ``DynapcnnNetwork`` (the chip configuration) cannot be built or checked here:
``sinabs.backend.dynapcnn`` imports ``samna``, whose package on the registry only redirects to another index.
:meth:`Speck.inspect` returns a JSON-able summary of the chip layers for inspection only: no SynSense tool
reads it.

Example:
    >>> from neuro.hardware_targets.speck import kernel_memory, neuron_memory
    >>> kernel_memory(c=2, kx=3, ky=3, f=8), neuron_memory(f=8, fy=32, fx=32)
    (256, 8192)
    >>> import tempfile, pathlib, torch, neuro
    >>> from neuro.hardware_targets import get
    >>> net = torch.nn.Sequential(neuro.nn.TimeDistributed(torch.nn.Linear(4, 3)), neuro.nn.IF())
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "net.nir"
    >>> get("speck").emit(neuro.to_nir(net, (4,)), path).fits
    True
    >>> x = (torch.rand(8, 1, 4) < 0.5).float()
    >>> get("speck").simulate(path, x).shape
    torch.Size([8, 1, 3])
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import nir
import numpy as np

from neuro import _checks
from neuro.hardware_targets._layers import chain, fold_scales
from neuro.hardware_targets._target import FitReport, Target, Violation
from neuro.models import coefficients

KERNEL_MEM_KI = [16, 16, 16, 32, 32, 64, 64, 16, 16]
NEURON_MEM_KI = [64, 64, 64, 32, 32, 16, 16, 16, 16]
SPEC = {"cores": 9, "kernel_memory_ki": KERNEL_MEM_KI, "neuron_memory_ki": NEURON_MEM_KI, "max_input": 128,
        "max_output_map": 64, "max_channels": 1024, "max_kernel": 16, "strides": (1, 2, 4, 8), "max_padding": 7,
        "pooling": (1, 2, 4), "weight_bits": 8, "state_bits": 16, "destinations_per_core": 2,
        "source": "Sinabs DynapCNN documentation (per ANCHORS.md)"}


def _clog2(v: int) -> int:
    return math.ceil(math.log2(v)) if v > 1 else 0


def kernel_memory(c: int, kx: int, ky: int, f: int) -> int:
    return c * 2 ** (_clog2(kx * ky) + _clog2(f))


def neuron_memory(f: int, fy: int, fx: int) -> int:
    return f * 2 ** (_clog2(fy) + _clog2(fx))


def assign_cores(needs: list[tuple[int, int]]) -> list[int] | None:
    """Give each layer a distinct core with enough kernel and neuron memory (bipartite matching)."""
    n_cores = len(KERNEL_MEM_KI)
    owner = [-1] * n_cores

    def ok(layer, core):
        k, n = needs[layer]
        return k <= KERNEL_MEM_KI[core] * 1024 and n <= NEURON_MEM_KI[core] * 1024

    def augment(layer, seen):
        for core in range(n_cores):
            if ok(layer, core) and core not in seen:
                seen.add(core)
                if owner[core] < 0 or augment(owner[core], seen):
                    owner[core] = layer
                    return True
        return False

    for layer in range(len(needs)):
        if not augment(layer, set()):
            return None
    result = [0] * len(needs)
    for core, layer in enumerate(owner):
        if layer >= 0:
            result[layer] = core
    return result


class Speck(Target):
    """``dt``: the time step one chip step stands for, to read the graph's ``IF`` ``r`` (the per-step gain is
    ``r dt``); default: the graph's ``neuro.dt`` metadata (neuro-snn's own graphs), else 1 (Sinabs')."""

    name = "speck"
    spec = SPEC

    def __init__(self, dt: float | None = None):
        dt = None if dt is None else _checks.check_dt(dt)
        self.dt = dt

    def _cores(self, graph):
        layers, problems = chain(graph)
        layers = fold_scales(layers)
        cores, pending_pool = [], None
        for layer in layers:
            if layer.kind in ("dense", "conv"):
                cores.append({"layer": layer, "pool": 1})
            elif layer.kind in ("avgpool", "sumpool") and cores:
                k = int(np.atleast_1d(layer.node.kernel_size)[0])
                cores[-1]["pool"] *= k
            elif layer.kind == "flatten":
                continue
            else:
                pending_pool = layer
        del pending_pool
        return cores, problems

    def fit(self, graph: nir.NIRGraph) -> FitReport:
        rep = FitReport(self.name)
        cores, problems = self._cores(graph)
        for p in problems:
            rep.violations.append(Violation(p.split(":")[0], "layer chain", p, "a chain of conv/pool layers"))
        needs = []
        for core in cores:
            layer, pool = core["layer"], core["pool"]
            if layer.kind == "dense":
                c_in = layer.in_shape[0] if len(layer.in_shape) == 1 else int(np.prod(layer.in_shape))
                kx = ky = 1
                f, fy, fx = layer.out_shape[0], 1, 1
                if len(layer.in_shape) == 1:
                    c = c_in
                else:  # flattened feature map: a conv whose kernel covers the whole map
                    c, ky, kx = layer.in_shape
                stride, pad = 1, 0
            else:
                c, kx, ky = layer.weight.shape[1], layer.weight.shape[3], layer.weight.shape[2]
                f, fy, fx = layer.out_shape
                stride = int(np.atleast_1d(layer.node.stride)[0])
                pad = layer.node.padding if not isinstance(layer.node.padding, str) else 0
                pad = int(np.max(np.atleast_1d(pad)))
            kmem, nmem = kernel_memory(c, kx, ky, f), neuron_memory(f, fy, fx)
            needs.append((kmem, nmem))
            row = {"name": layer.name, "kernel_memory": kmem, "neuron_memory": nmem, "pool": pool}
            rep.layers.append(row)
            checks = [("kernel size", max(kx, ky), SPEC["max_kernel"], max(kx, ky) <= SPEC["max_kernel"]),
                      ("stride", stride, SPEC["strides"], stride in SPEC["strides"]),
                      ("padding", pad, f"0..{SPEC['max_padding']}", 0 <= pad <= SPEC["max_padding"]),
                      ("output channels", f, SPEC["max_channels"], f <= SPEC["max_channels"]),
                      ("input channels", c, SPEC["max_channels"], c <= SPEC["max_channels"]),
                      ("output feature map", max(fy, fx), SPEC["max_output_map"],
                       max(fy, fx) <= SPEC["max_output_map"]),
                      ("pooling", pool, SPEC["pooling"], pool in SPEC["pooling"]),
                      ("kernel memory (entries)", kmem, max(KERNEL_MEM_KI) * 1024, kmem <= max(KERNEL_MEM_KI) * 1024),
                      ("neuron memory (entries)", nmem, max(NEURON_MEM_KI) * 1024, nmem <= max(NEURON_MEM_KI) * 1024)]
            for what, need, allowed, good in checks:
                if not good:
                    rep.violations.append(Violation(layer.name, what, need, allowed))
            if layer.neuron is None:
                rep.violations.append(Violation(layer.name, "IF neuron after the convolution", "none", "IF"))
            elif not isinstance(layer.neuron, nir.IF | nir.LIF):
                rep.violations.append(Violation(layer.name, "neuron type", type(layer.neuron).__name__, "IF"))
            elif isinstance(layer.neuron, nir.LIF):
                rep.notes.append(f"{layer.neuron_name}: LIF leak is dropped on Speck (IF cores)")
        if cores and cores[0]["layer"].in_shape and len(cores[0]["layer"].in_shape) == 3:
            h, w = cores[0]["layer"].in_shape[1:]
            if max(h, w) > SPEC["max_input"]:
                rep.violations.append(Violation("input", "input size", max(h, w), SPEC["max_input"]))
        if len(cores) > SPEC["cores"]:
            rep.violations.append(Violation("network", "cores", len(cores), SPEC["cores"]))
        elif not rep.violations:
            assignment = assign_cores(needs)
            if assignment is None:
                rep.violations.append(Violation("network", "layer-to-core assignment (memory per core)",
                                                str(needs), "kernel/neuron Ki per core as in SPEC"))
            else:
                for row, core in zip(rep.layers, assignment, strict=True):
                    row["core"] = core
        rep.cores_used = len(cores)
        meta = graph.metadata or {}
        started = [k.split(".")[1] for k, v in meta.items() if k.endswith(".v_init") and np.any(np.asarray(v) != 0)]
        if started:
            rep.notes.append(f"{', '.join(started)}: initial membrane (v_init) is dropped: IF layers start at 0 in "
                             "Sinabs and on the chip")
        if cores:
            rep.notes.append("in the emitted file: per-channel thresholds folded into the weights, "
                             "8-bit integer weights and one integer threshold a layer, average pooling as sum "
                             "pooling with the next weights divided by k^2; Sinabs then clips the membrane at "
                             "-threshold and, by default, emits floor(v / thr) spikes a step (MultiSpike)")
        return rep

    def chip_graph(self, graph: nir.NIRGraph) -> nir.NIRGraph:
        """The chip-ready form of ``graph`` (see the module notes): what :meth:`emit` writes, as a NIR graph.

        Raises ``ValueError`` naming the layer when a layer has no chip form (a neuron other than IF/LIF,
        thresholds that differ within a channel, pooling with padding, a structure that is not a chain).
        """
        layers, problems = chain(graph)
        if problems:
            raise ValueError("graph is not a chain of conv/dense/pool layers: " + "; ".join(problems))
        layers = fold_scales(layers)
        dt = self.dt if self.dt is not None else float((graph.metadata or {}).get("neuro.dt", 1.0))
        nodes: dict = {"input": nir.Input(input_type={"input": np.asarray(layers[0].in_shape if layers else (),
                                                                          dtype=np.int64)})}
        edges, prev, pool_div = [], "input", None
        for layer in layers:
            name = layer.name.replace(".", "_")
            if layer.kind in ("avgpool", "sumpool"):
                k = tuple(int(v) for v in np.broadcast_to(np.atleast_1d(layer.node.kernel_size), 2))
                st = tuple(int(v) for v in np.broadcast_to(np.atleast_1d(layer.node.stride), 2))
                pad = np.broadcast_to(np.atleast_1d(layer.node.padding), 2)
                if np.any(pad != 0):
                    raise ValueError(f"{layer.name}: pooling padding {pad.tolist()} has no DynapCNN form (needs 0)")
                if layer.kind == "avgpool":  # avg = sum / k^2: the 1/k^2 goes into the next weights
                    pool_div = (pool_div or 1.0) * float(k[0] * k[1])
                nodes[name] = nir.SumPool2d(kernel_size=np.array(k), stride=np.array(st), padding=np.zeros(2, int))
            elif layer.kind == "flatten":
                nodes[name] = nir.Flatten(input_type={"input": np.asarray(layer.in_shape, np.int64)}, start_dim=0,
                                          end_dim=-1)
            elif layer.kind in ("dense", "conv"):
                w, b = layer.weight.astype(np.float64), layer.bias.astype(np.float64)
                if pool_div is not None:
                    w, pool_div = w / pool_div, None
                if not isinstance(layer.neuron, nir.IF | nir.LIF):
                    raise ValueError(f"{layer.name}: needs an IF neuron after it on Speck, got "
                                     f"{type(layer.neuron).__name__ if layer.neuron is not None else 'none'}")
                thr = np.broadcast_to(np.asarray(layer.neuron.v_threshold, np.float64), layer.out_shape)
                r = np.broadcast_to(np.asarray(layer.neuron.r, np.float64), layer.out_shape)
                per_c = thr.reshape(thr.shape[0], -1)
                gain = coefficients.integrator_gain(r.reshape(r.shape[0], -1), dt)
                if not (np.allclose(per_c, per_c[:, :1], rtol=1e-6) and np.allclose(gain, gain[:, :1], rtol=1e-6)):
                    raise ValueError(f"{layer.name}: thresholds or r differ within a channel; DynapCNN has one "
                                     "threshold a layer and only per-channel values fold into the weights")
                # u = v/thr_c is an IF with threshold 1 (reset by subtraction) and input r dt I / thr_c
                fold = gain[:, 0] / per_c[:, 0]
                w = w * fold.reshape(-1, *([1] * (w.ndim - 1)))
                b = b * fold
                scale = 127.0 / max(float(np.abs(w).max()), 1e-12)
                w_int = np.round(w * scale).astype(np.float32)
                b_int = np.round(b * scale).astype(np.float32)
                thr_int = np.float32(round(scale))
                if layer.kind == "dense":
                    nodes[name] = nir.Affine(weight=w_int, bias=b_int)
                else:
                    node = layer.node
                    two = lambda v: tuple(int(x) for x in np.broadcast_to(np.atleast_1d(v), 2))  # noqa: E731
                    pad = node.padding if isinstance(node.padding, str) else two(node.padding)
                    if isinstance(pad, str):
                        pad = tuple(int(v) for v in (np.array(w.shape[2:]) - 1) // 2) if pad == "same" else (0, 0)
                    nodes[name] = nir.Conv2d(input_shape=tuple(int(v) for v in layer.in_shape[1:]), weight=w_int,
                                             stride=two(node.stride), padding=pad, dilation=two(node.dilation),
                                             groups=int(node.groups), bias=b_int)
                edges.append((prev, name))
                prev = name
                name = (layer.neuron_name or name + "_if").replace(".", "_")
                shape = tuple(int(v) for v in layer.out_shape)
                nodes[name] = nir.IF(r=np.ones(shape, np.float32), v_threshold=np.full(shape, thr_int, np.float32),
                                     v_reset=np.zeros(shape, np.float32))
            else:
                raise ValueError(f"{layer.name}: {layer.kind} has no DynapCNN form")
            edges.append((prev, name))
            prev = name
        nodes["output"] = nir.Output(output_type={"output": np.asarray(layers[-1].out_shape if layers else (),
                                                                       dtype=np.int64)})
        edges.append((prev, "output"))
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata={})

    def quantize(self, graph: nir.NIRGraph) -> nir.NIRGraph:
        """The chip-ready graph (integer weights and thresholds): :meth:`chip_graph`."""
        return self.chip_graph(graph)

    def simulate(self, graph, x, dt: float | None = None, convention: str = "sinabs", multi_spike: bool = True):
        """Spikes of the chip-ready graph (or an emitted file) as Sinabs' ``IAFSqueeze`` computes them.

        ``x``: time-major input ``[T, B, ...]``. Synaptic layers run on :func:`neuro.from_nir`; each IF layer
        runs the update in the module notes (multi-spike by default, single spike with ``multi_spike=False``;
        membrane clipped at ``-thr``). Returns the last layer's spikes (spike counts when multi-spike).
        """
        from neuro.io import from_nir

        torch = _torch()
        if not isinstance(x, torch.Tensor | np.ndarray) or np.ndim(x) < 3:
            raise ValueError(f"x must be a time-major tensor [T, B, ...], got {getattr(x, 'shape', type(x).__name__)}")
        if isinstance(graph, nir.NIRGraph):
            graph = self.chip_graph(graph)
        with warnings.catch_warnings():  # an emitted file's IF nodes have no v_reset: subtract, as meant
            warnings.simplefilter("ignore", UserWarning)
            net = from_nir(graph, dt=1.0, convention="sinabs")
        g = graph if isinstance(graph, nir.NIRGraph) else nir.read(str(graph))
        for name, node in g.nodes.items():
            if isinstance(node, nir.IF):
                key = name.replace(".", "_")
                net.layers[key] = _SpeckIAF(np.asarray(node.v_threshold, np.float32), multi_spike)
        with torch_no_grad():
            return net(torch.as_tensor(np.asarray(x, np.float32)) if isinstance(x, np.ndarray) else x.float())

    def inspect(self, graph: nir.NIRGraph) -> dict:
        """For inspection only (no SynSense tool reads it): each chip layer's kind, shapes, core, pooling,
        integer weight range and threshold, as a JSON-able dict."""
        report = self.fit(graph)
        chip = self.chip_graph(graph)
        out = {"purpose": "for inspection only; the chip file is the NIR that emit() writes", "layers": []}
        for name, node in chip.nodes.items():
            row = {"name": name, "type": type(node).__name__}
            if hasattr(node, "weight"):
                row.update(shape=list(node.weight.shape), weight_min=int(node.weight.min()),
                           weight_max=int(node.weight.max()))
            if isinstance(node, nir.IF):
                row["threshold"] = float(np.asarray(node.v_threshold).reshape(-1)[0])
            out["layers"].append(row)
        out["fit"] = report.to_dict()
        return out

    def _write(self, graph: nir.NIRGraph, path: Path, report: FitReport) -> None:
        write_nir_104(self.chip_graph(graph), path)


def torch_no_grad():
    return _torch().no_grad()


def _torch():
    import torch

    return torch


def _SpeckIAF(threshold: np.ndarray, multi_spike: bool):
    """Sinabs' IAFSqueeze update over time-major ``[T, B, ...]`` (see the module notes)."""
    torch = _torch()

    class SpeckIAF(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("thr", torch.as_tensor(threshold))

        def forward(self, x):
            v = torch.zeros_like(x[0])
            out = torch.empty_like(x)
            thr, vmin = self.thr, -self.thr
            for t in range(x.shape[0]):
                v = v + x[t]
                if multi_spike:
                    s = (v > 0) * torch.div(v, thr, rounding_mode="trunc")
                else:
                    s = (v - thr >= 0).to(x.dtype)
                v = v - s * thr
                v = torch.relu(v - vmin) + vmin
                out[t] = s
            return out

    return SpeckIAF()


def write_nir_104(graph: nir.NIRGraph, path) -> None:
    """Write ``graph`` as nir 1.0.4 writes it (h5py): ``version`` = "1.0.4", a ``node`` group with one group a
    node, IF/LIF/CubaLIF **without** ``v_reset`` (in nir 1.0.4 they reset by subtraction)."""
    import h5py

    def put(group, d: dict):
        for k, v in d.items():
            if k == "metadata":
                if v:
                    put(group.create_group(k), v)
            elif k == "v_reset" and d.get("type") in ("IF", "LIF", "CubaLIF"):
                continue
            elif isinstance(v, str):
                group.create_dataset(k, data=v, dtype=h5py.string_dtype())
            elif isinstance(v, dict):
                put(group.create_group(str(k)), v)
            elif k == "edges":
                group.create_dataset(k, data=np.array(v, dtype=object), dtype=h5py.string_dtype())
            else:
                group.create_dataset(k, data=np.asarray(v))

    with h5py.File(path, "w") as f:
        f.create_dataset("version", data="1.0.4", dtype=h5py.string_dtype())
        put(f.create_group("node"), graph.to_dict())
