"""Read a NIR graph as the chain of layers chip toolchains think in: a synaptic node (Affine, Linear,
Conv2d, pooling, flatten) and the neuron node it feeds, with shapes, synapse counts and weights."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import nir
import numpy as np

NEURONS = (nir.LIF, nir.IF, nir.CubaLIF, nir.LI)
SYNAPTIC = (nir.Affine, nir.Linear, nir.Conv2d)


@dataclass
class Layer:
    """One step of the chain: ``kind`` is dense, conv, flatten, avgpool, sumpool or scale."""

    name: str
    kind: str
    node: nir.NIRNode
    in_shape: tuple
    out_shape: tuple
    neuron_name: str | None = None
    neuron: nir.NIRNode | None = None
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    fan_in_nodes: int = 1
    notes: list = field(default_factory=list)

    @property
    def neurons(self) -> int:
        return int(np.prod(self.out_shape)) if self.neuron is not None else 0

    @property
    def synapses(self) -> int:
        """Non-zero synapses: dense = non-zero weights; conv = per output position, its kernel's non-zero taps
        (border positions included as the chip stores them: one kernel shared, so this is the synaptic-op count
        for one presynaptic spike pattern of all ones)."""
        if self.weight is None:
            return 0
        if self.kind == "dense":
            return int(np.count_nonzero(self.weight))
        out_positions = int(np.prod(self.out_shape[1:]))
        return int(np.count_nonzero(self.weight)) * out_positions


def _shape_after(node, shape):
    if isinstance(node, nir.Affine | nir.Linear):
        return (node.weight.shape[0],)
    if isinstance(node, nir.Conv2d):
        c, h, w = shape
        k = node.weight.shape[2:]
        s = np.broadcast_to(np.atleast_1d(node.stride), 2)
        d = np.broadcast_to(np.atleast_1d(node.dilation), 2)
        if isinstance(node.padding, str):
            p = (np.array(k) - 1) // 2 if node.padding == "same" else np.zeros(2, int)
        else:
            p = np.broadcast_to(np.atleast_1d(node.padding), 2)
        ho = (h + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
        wo = (w + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
        return (node.weight.shape[0], int(ho), int(wo))
    if isinstance(node, nir.AvgPool2d | nir.SumPool2d):
        c, h, w = shape
        k = np.broadcast_to(np.atleast_1d(node.kernel_size), 2)
        s = np.broadcast_to(np.atleast_1d(node.stride), 2)
        p = np.broadcast_to(np.atleast_1d(node.padding), 2)
        return (c, int((h + 2 * p[0] - k[0]) // s[0] + 1), int((w + 2 * p[1] - k[1]) // s[1] + 1))
    if isinstance(node, nir.Flatten):
        return (int(np.prod(shape)),)
    return tuple(shape)


def chain(graph: nir.NIRGraph) -> tuple[list[Layer], list[str]]:
    """Layers in order from the input, and the structural problems (branches, recurrence) found.

    The graph is first checked in full (:func:`neuro.io.check_graph`: NaN or infinite parameters, unknown
    nodes, shape mismatches ...), so no target fits or writes a graph neuro-snn itself would refuse to run."""
    from neuro.io import check_graph

    check_graph(graph)
    preds, succ = defaultdict(list), defaultdict(list)
    for a, b in graph.edges:
        preds[b].append(a)
        succ[a].append(b)
    inputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
    problems = []
    if len(inputs) != 1:
        problems.append(f"graph has {len(inputs)} input nodes; chips take one")
        return [], problems
    shape = tuple(int(v) for v in np.asarray(next(iter(graph.nodes[inputs[0]].input_type.values()))).reshape(-1))
    layers, cur, seen = [], inputs[0], set()
    while True:
        nxt = succ[cur]
        if not nxt:
            break
        if len(nxt) > 1:
            problems.append(f"{cur} feeds {len(nxt)} nodes ({', '.join(nxt)}): branching graphs are not a chain")
            break
        cur = nxt[0]
        if cur in seen:
            problems.append(f"{cur}: recurrent edge")
            break
        seen.add(cur)
        node = graph.nodes[cur]
        if isinstance(node, nir.Output):
            break
        if len(preds[cur]) > 1:
            problems.append(f"{cur} sums {len(preds[cur])} inputs (a residual addition)")
        if isinstance(node, NEURONS):
            if layers and layers[-1].neuron is None and layers[-1].kind in ("dense", "conv", "avgpool", "sumpool"):
                layers[-1].neuron_name, layers[-1].neuron = cur, node
            else:
                problems.append(f"{cur}: neuron layer without a synaptic layer before it")
            continue
        kind = {nir.Affine: "dense", nir.Linear: "dense", nir.Conv2d: "conv", nir.Flatten: "flatten",
                nir.AvgPool2d: "avgpool", nir.SumPool2d: "sumpool", nir.Scale: "scale"}.get(type(node))
        if kind is None:
            problems.append(f"{cur}: {type(node).__name__} has no chip equivalent")
            break
        out_shape = _shape_after(node, shape)
        layer = Layer(cur, kind, node, shape, out_shape, fan_in_nodes=len(preds[cur]))
        if kind in ("dense", "conv"):
            layer.weight = np.asarray(node.weight, np.float32)
            layer.bias = np.asarray(getattr(node, "bias", np.zeros(out_shape[0])), np.float32)
        layers.append(layer)
        shape = out_shape
    return layers, problems


def fold_scales(layers: list[Layer]) -> list[Layer]:
    """Fold each Scale (spikes that carry a threshold, from conversion) into the next weights."""
    out: list[Layer] = []
    pending = None
    for layer in layers:
        if layer.kind == "scale":
            pending = np.asarray(layer.node.scale, np.float32)
            continue
        if pending is not None and layer.weight is not None:
            w = layer.weight.copy()
            scale = pending
            if layer.kind == "dense":
                w = w * np.broadcast_to(scale.reshape(-1) if scale.size > 1 else scale, (w.shape[1],))[None, :]
            else:
                per_c = scale.reshape(scale.shape[0], -1)[:, 0] if scale.ndim >= 1 and scale.size > 1 else \
                    np.broadcast_to(scale, (w.shape[1],))
                w = w * per_c[None, :, None, None]
            layer.weight = w
            layer.notes.append("input spike amplitude folded into the weights")
            pending = None
        elif pending is not None and layer.kind in ("flatten", "avgpool", "sumpool"):
            if pending.ndim > 1:  # conversion scales are one value a channel: keep that through pooling
                per_c = pending.reshape(pending.shape[0], -1)
                if not np.allclose(per_c, per_c[:, :1]):
                    layer.notes.append("spike amplitudes vary within a channel: folded per channel (approximate)")
                pending = per_c[:, :1].reshape(-1, *([1] * (len(layer.out_shape) - 1))) if layer.kind != "flatten" \
                    else np.broadcast_to(per_c[:, :1].reshape(-1, 1, 1), layer.in_shape).reshape(-1)
        out.append(layer)
    return out
