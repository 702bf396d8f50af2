"""Activation statistics of the calibration data at every neuron site: the thresholds of the IF layers."""

from __future__ import annotations

import torch
from torch import fx

from neuro.convert.graph import is_rectifier
from neuro.convert.qcfs import QCFS

MAX_VALUES = 4_000_000  # per layer: a seeded subsample keeps percentiles cheap on big calibration sets


class _Recorder(fx.Interpreter):
    def __init__(self, gm, sites):
        super().__init__(gm)
        self.sites = sites
        self.values: dict[str, list[torch.Tensor]] = {n: [] for n in sites}

    def run_node(self, n):
        out = super().run_node(n)
        if n.name in self.sites:
            self.values[n.name].append(out.detach())
        return out


def neuron_sites(gm: fx.GraphModule) -> list[str]:
    modules = dict(gm.named_modules())
    return [n.name for n in gm.graph.nodes if is_rectifier(n, modules)]


def thresholds(gm: fx.GraphModule, data: torch.Tensor, method: str = "percentile", percentile: float = 99.9,
               channel_wise: bool = False, batch_size: int = 256, progress: bool = True, seed: int = 0,
               extra_sites: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """Threshold (activation scale) per neuron site: ``max`` or the ``percentile`` of the positive
    activations (Rueckauer et al. 2017), per layer or per channel; QCFS sites use their trained lambda."""
    from tqdm.auto import tqdm

    if method not in ("max", "percentile"):
        raise ValueError(f"threshold method must be 'max' or 'percentile', got {method!r}")
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile}")
    modules = dict(gm.named_modules())
    sites = neuron_sites(gm) + list(extra_sites)
    rec = _Recorder(gm, set(sites))
    with torch.no_grad():
        for start in tqdm(range(0, len(data), batch_size), desc="calibrating thresholds", disable=not progress,
                          leave=False):
            rec.run(data[start:start + batch_size])
    g = torch.Generator().manual_seed(seed)
    out = {}
    for node in gm.graph.nodes:
        if node.name not in sites:
            continue
        if node.op == "call_module" and isinstance(modules[node.target], QCFS):
            out[node.name] = modules[node.target].lam.detach().clone().reshape(())
            continue
        acts = torch.cat(rec.values[node.name])  # [N, C, ...] or [N, F]
        if channel_wise and acts.dim() >= 3:
            per_channel = acts.transpose(0, 1).reshape(acts.shape[1], -1)
            vals = torch.stack([_scale(row, method, percentile, g) for row in per_channel])
            out[node.name] = vals.reshape(-1, *([1] * (acts.dim() - 2)))
        else:
            out[node.name] = _scale(acts.reshape(-1), method, percentile, g).reshape(())
    return out


def _scale(values: torch.Tensor, method: str, percentile: float, g: torch.Generator) -> torch.Tensor:
    pos = values[values > 0]
    if pos.numel() == 0:
        return torch.tensor(1.0)  # a layer that never activates: any threshold keeps it silent
    if method == "max":
        return pos.max().float()
    if pos.numel() > MAX_VALUES:
        pos = pos[torch.randint(0, pos.numel(), (MAX_VALUES,), generator=g)]
    return torch.quantile(pos.float(), percentile / 100.0)
