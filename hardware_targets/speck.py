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

Example:
    >>> from neuro.hardware_targets.speck import kernel_memory, neuron_memory
    >>> kernel_memory(c=2, kx=3, ky=3, f=8), neuron_memory(f=8, fy=32, fx=32)
    (256, 8192)
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import nir
import numpy as np

from neuro.hardware_targets._layers import chain, fold_scales
from neuro.hardware_targets._target import FitReport, Target, Violation

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
    name = "speck"
    spec = SPEC

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
        return rep

    def quantize(self, graph: nir.NIRGraph) -> nir.NIRGraph:
        import copy

        g = copy.deepcopy(graph)
        for node in g.nodes.values():
            if isinstance(node, nir.Affine | nir.Linear | nir.Conv2d):
                w = np.asarray(node.weight)
                scale = 127 / max(float(np.abs(w).max()), 1e-12)
                node.weight = (np.round(w * scale) / scale).astype(np.float32)
        return g

    def _write(self, graph: nir.NIRGraph, path: Path, report: FitReport) -> None:
        cores, _ = self._cores(graph)
        config = {"chip": "speck", "format": "neuro-snn DynapCNN layer configuration v1", "layers": []}
        for core, row in zip(cores, report.layers, strict=True):
            layer = core["layer"]
            w = layer.weight
            scale = 127 / max(float(np.abs(w).max()), 1e-12)
            thr = np.asarray(layer.neuron.v_threshold if layer.neuron is not None else [1.0], np.float64)
            config["layers"].append({
                "name": layer.name, "core": row.get("core"), "kind": layer.kind,
                "kernel_shape": list(w.shape), "weights_int8": np.round(w * scale).astype(int).tolist(),
                "weight_scale": scale, "threshold_high": int(np.round(np.median(thr) * scale)),
                "bias_int": np.round(layer.bias * scale).astype(int).tolist(), "pooling": core["pool"],
                "destinations": [row.get("core", 0) + 1] if layer is not cores[-1]["layer"] else []})
        path.write_text(json.dumps(config))
