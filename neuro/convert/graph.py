"""Trace a torch model with ``torch.fx`` and normalise it for conversion: check every operation is
convertible (listing all that are not, with a replacement), fold batch-norm into the preceding
conv/linear, drop dropout, and mark every rectifier (``nn.ReLU``, ``F.relu``, ``torch.relu``,
``x.relu()``, :class:`QCFS`) as a neuron site."""

from __future__ import annotations

import copy
import operator

import torch
import torch.nn.functional as F
from torch import fx, nn

from neuro.convert.qcfs import QCFS

WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Linear)
STATELESS_MODULES = (nn.Conv1d, nn.Conv2d, nn.Linear, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Flatten,
                     nn.Identity, nn.BatchNorm1d, nn.BatchNorm2d)
RECTIFIERS = (nn.ReLU, QCFS)
FUNCTIONS_OK = {F.relu, torch.relu, torch.flatten, operator.add, torch.add, torch.cat, F.avg_pool2d,
                F.adaptive_avg_pool2d, F.max_pool2d, F.dropout}
METHODS_OK = {"relu", "flatten"}

SUGGEST = {
    nn.Sigmoid: "ReLU (or QCFS)", nn.Tanh: "ReLU (or QCFS)", nn.GELU: "ReLU (or QCFS)", nn.SiLU: "ReLU (or QCFS)",
    nn.LeakyReLU: "ReLU", nn.ELU: "ReLU", nn.Softmax: "nothing (argmax of the output is unchanged)",
    nn.LayerNorm: "BatchNorm after a conv/linear (folded)", nn.LSTM: "a feed-forward block or neuro.nn.RLIF",
    nn.GRU: "a feed-forward block or neuro.nn.RLIF", nn.MultiheadAttention: "conv/linear blocks",
    nn.Upsample: "a strided ConvTranspose-free design", nn.MaxPool1d: "AvgPool1d",
}


class ConversionError(ValueError):
    """The model has operations that cannot become spiking layers; the message lists all of them."""


class _Tracer(fx.Tracer):
    """Keeps QCFS as one node (a neuron site) instead of tracing into its arithmetic."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, QCFS) or super().is_leaf_module(m, qualname)


def trace(model: nn.Module) -> fx.GraphModule:
    try:
        root = copy.deepcopy(model).eval()
        return fx.GraphModule(root, _Tracer().trace(root), class_name=type(model).__name__)
    except Exception as exc:  # fx raises many types for dynamic control flow
        raise ConversionError(f"torch.fx could not trace the model ({type(exc).__name__}: {exc}); "
                              "conversion needs a model without data-dependent control flow") from None


def check_convertible(gm: fx.GraphModule) -> None:
    problems = []
    modules = dict(gm.named_modules())
    for node in gm.graph.nodes:
        if node.op == "call_module":
            mod = modules[node.target]
            if isinstance(mod, (*STATELESS_MODULES, *RECTIFIERS, nn.Dropout, nn.MaxPool2d)):
                continue
            hint = SUGGEST.get(type(mod), "a supported layer (Conv, Linear, BatchNorm, ReLU, pooling, Flatten)")
            problems.append(f"  - {node.target} ({type(mod).__name__}): replace with {hint}")
        elif node.op == "call_function" and node.target not in FUNCTIONS_OK:
            name = getattr(node.target, "__name__", str(node.target))
            hint = "ReLU (or QCFS)" if name in ("sigmoid", "tanh", "gelu", "silu") else "a supported operation"
            problems.append(f"  - {node.name} (function {name}): replace with {hint}")
        elif node.op == "call_method" and node.target not in METHODS_OK:
            hint = "torch.flatten(x, 1) or nn.Flatten" if node.target in ("view", "reshape") else "a module"
            problems.append(f"  - {node.name} (method .{node.target}()): replace with {hint}")
    if problems:
        raise ConversionError("cannot convert these layers to spiking ones:\n" + "\n".join(problems))


def _fold_bn(conv: nn.Module, bn: nn.Module) -> nn.Module:
    """Return a copy of ``conv`` computing ``bn(conv(x))`` in eval mode (Rueckauer et al. 2017)."""
    fused = copy.deepcopy(conv)
    std = torch.sqrt(bn.running_var + bn.eps)
    gamma = bn.weight if bn.affine else torch.ones_like(std)
    beta = bn.bias if bn.affine else torch.zeros_like(std)
    scale = (gamma / std).detach()
    shape = (-1,) + (1,) * (fused.weight.dim() - 1)
    with torch.no_grad():
        fused.weight.mul_(scale.reshape(shape))
        bias = fused.bias if fused.bias is not None else torch.zeros_like(bn.running_mean)
        new_bias = (bias - bn.running_mean) * scale + beta.detach()
        fused.bias = nn.Parameter(new_bias)
    return fused


def fold_batchnorm(gm: fx.GraphModule) -> fx.GraphModule:
    """Fold every BatchNorm that directly follows a conv/linear (used nowhere else) into it."""
    modules = dict(gm.named_modules())
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(modules[node.target], nn.BatchNorm1d | nn.BatchNorm2d):
            continue
        prev = node.args[0]
        if not (isinstance(prev, fx.Node) and prev.op == "call_module" and len(prev.users) == 1
                and isinstance(modules[prev.target], WEIGHTED)):
            continue  # kept as a per-channel affine layer, applied over time
        fused = _fold_bn(modules[prev.target], modules[node.target])
        _set_module(gm, prev.target, fused)
        node.replace_all_uses_with(prev)
        gm.graph.erase_node(node)
    gm.graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()
    return gm


def drop_dropout(gm: fx.GraphModule) -> fx.GraphModule:
    modules = dict(gm.named_modules())
    for node in list(gm.graph.nodes):
        is_mod = node.op == "call_module" and isinstance(modules[node.target], nn.Dropout)
        is_fn = node.op == "call_function" and node.target is F.dropout
        if is_mod or is_fn:
            node.replace_all_uses_with(node.args[0])
            gm.graph.erase_node(node)
    gm.recompile()
    return gm


def is_rectifier(node: fx.Node, modules: dict) -> bool:
    if node.op == "call_module":
        return isinstance(modules[node.target], RECTIFIERS)
    if node.op == "call_function":
        return node.target in (F.relu, torch.relu)
    return node.op == "call_method" and node.target == "relu"


def _set_module(gm: nn.Module, target: str, module: nn.Module) -> None:
    parent_name, _, name = target.rpartition(".")
    parent = gm.get_submodule(parent_name) if parent_name else gm
    setattr(parent, name, module)


def prepare(model: nn.Module) -> fx.GraphModule:
    """Trace, check, fold batch-norm and drop dropout; the result computes the same function in eval mode."""
    gm = trace(model)
    check_convertible(gm)
    return drop_dropout(fold_batchnorm(gm))
