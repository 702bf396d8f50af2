"""Generate NIR fixture pairs with each library's OWN exporter and the library's OWN output spikes.

Each case writes ``tests/data/nir/<library>_<case>.nir`` (written by the library's exporter, serialised with
the ``nir`` of the library's venv) and ``<library>_<case>.npz`` with ``input`` ``[T, B, ...]``, ``output``
``[T, B, ...]`` (the library's spikes, run step by step by the library itself), ``dt`` (the time step the
exporter assumed) and the versions used. ``tests/test_nir_fixtures.py`` replays them with
``neuro.from_nir(path, convention=<library>)``.

Run it with the library importable (see README.md in this folder for the venvs):

    python scripts/nir_fixtures/generate.py --library snntorch [--out tests/data/nir]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys
from pathlib import Path

import nir
import numpy as np
import torch
from torch import nn

T, B = 30, 2


def _rand_input(seed: int, shape, scale: float, offset: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((T, B, *shape), generator=g) * scale + offset).float()


def _init(seed: int):
    torch.manual_seed(seed)


# --------------------------------------------------------------------------------------------------------
# snnTorch 1.0: export_to_nir; dt = 1e-4


def snntorch_cases():
    import snntorch as snn
    from snntorch import utils
    from snntorch.export_nir import export_to_nir

    def run(net, x):
        utils.reset(net)
        with torch.no_grad():
            return torch.stack([net(x[t]) for t in range(x.shape[0])])

    def vec(v, n):
        return torch.full((n,), float(v))

    cases = {}
    _init(0)
    cases["leaky_subtract"] = (nn.Sequential(nn.Linear(6, 10), snn.Leaky(beta=vec(0.9, 10), threshold=vec(1.0, 10),
                                                                         init_hidden=True)), _rand_input(1, (6,), 3.0))
    _init(0)
    cases["leaky_zero"] = (nn.Sequential(nn.Linear(6, 10), snn.Leaky(beta=vec(0.9, 10), threshold=vec(1.0, 10),
                                                                     init_hidden=True, reset_mechanism="zero")),
                           _rand_input(1, (6,), 3.0))
    _init(2)
    cases["synaptic"] = (nn.Sequential(nn.Linear(6, 10), snn.Synaptic(alpha=vec(0.7, 10), beta=vec(0.85, 10),
                                                                      threshold=vec(1.0, 10), init_hidden=True)),
                         _rand_input(3, (6,), 0.8))
    _init(4)
    rl = snn.RLeaky(beta=vec(0.85, 8), linear_features=8, threshold=vec(1.0, 8), init_hidden=True)
    with torch.no_grad():
        rl.recurrent.weight.mul_(1.5)
    cases["rleaky"] = (nn.Sequential(nn.Linear(6, 8), rl), _rand_input(5, (6,), 3.0))
    _init(6)
    cases["mlp"] = (nn.Sequential(nn.Linear(8, 16), snn.Leaky(beta=vec(0.9, 16), threshold=vec(1.0, 16),
                                                              init_hidden=True),
                                  nn.Linear(16, 5),
                                  snn.Leaky(beta=vec(0.8, 5), threshold=vec(0.5, 5), init_hidden=True)),
                    _rand_input(7, (8,), 4.0))
    _init(8)
    cases["conv"] = (nn.Sequential(nn.Conv2d(1, 4, 3, padding=1),
                                   snn.Leaky(beta=torch.full((4, 8, 8), 0.9), threshold=torch.ones(4, 8, 8),
                                             init_hidden=True),
                                   nn.AvgPool2d(2), nn.Conv2d(4, 3, 3),
                                   snn.Leaky(beta=torch.full((3, 2, 2), 0.8), threshold=torch.full((3, 2, 2), 0.5),
                                             init_hidden=True)),
                     _rand_input(9, (1, 8, 8), 3.0))
    out = {}
    for name, (net, x) in cases.items():
        y = run(net, x)
        utils.reset(net)
        # one sample, as snnTorch's exporter expects (with a batch dim, nir's type inference fails on
        # conv nodes, and without one nn.Flatten flattens the channels apart: the conv net has no Flatten)
        graph = export_to_nir(net, x[0, 0])
        out[name] = (graph, x, y)
    return out, 1e-4, {"snntorch": snn.__version__}


# --------------------------------------------------------------------------------------------------------
# Norse 1.1: norse.torch.to_nir; dt = 1e-3


def norse_cases():
    import norse
    import norse.torch as nt

    def run(net, x):
        state = None
        outs = []
        with torch.no_grad():
            for t in range(x.shape[0]):
                y, state = net(x[t], state)
                outs.append(y)
        return torch.stack(outs)

    def box(tau_inv, vth, n):
        return nt.LIFBoxCell(nt.LIFBoxParameters(tau_mem_inv=torch.full((n,), float(tau_inv)),
                                                 v_leak=torch.zeros(n), v_th=torch.full((n,), float(vth)),
                                                 v_reset=torch.zeros(n)))

    cases = {}
    _init(10)
    cases["lifbox"] = (nt.SequentialState(nn.Linear(6, 10), box(100.0, 0.3, 10)), _rand_input(11, (6,), 3.0))
    _init(12)
    cases["iaf"] = (nt.SequentialState(nn.Linear(6, 10), nt.IAFCell(nt.IAFParameters(v_th=torch.full((10,), 1.0),
                                                                                     v_reset=torch.zeros(10)))),
                    _rand_input(13, (6,), 1.0))
    _init(14)
    lif = nt.LIFCell(nt.LIFParameters(tau_syn_inv=torch.full((10,), 200.0), tau_mem_inv=torch.full((10,), 100.0),
                                      v_leak=torch.zeros(10), v_th=torch.full((10,), 0.3), v_reset=torch.zeros(10)))
    cases["cubalif"] = (nt.SequentialState(nn.Linear(6, 10), lif), _rand_input(15, (6,), 1.0))
    _init(16)
    cases["mlp"] = (nt.SequentialState(nn.Linear(8, 16), box(100.0, 0.3, 16), nn.Linear(16, 5), box(100.0, 0.05, 5)),
                    _rand_input(17, (8,), 4.0))
    _init(18)
    # Norse's exporter has no Flatten (it returns None for it): conv -> LIF -> conv -> LIF
    cases["conv"] = (nt.SequentialState(nn.Conv2d(1, 4, 3, padding=1), box(100.0, 0.3, 1).__class__(
        nt.LIFBoxParameters(tau_mem_inv=torch.full((4, 8, 8), 100.0), v_leak=torch.zeros(4, 8, 8),
                            v_th=torch.full((4, 8, 8), 0.3), v_reset=torch.zeros(4, 8, 8))),
        nn.Conv2d(4, 3, 3, stride=2), nt.LIFBoxCell(nt.LIFBoxParameters(
            tau_mem_inv=torch.full((3, 3, 3), 50.0), v_leak=torch.zeros(3, 3, 3), v_th=torch.full((3, 3, 3), 0.02),
            v_reset=torch.zeros(3, 3, 3)))), _rand_input(19, (1, 8, 8), 4.0))
    out = {}
    for name, (net, x) in cases.items():
        y = run(net, x)
        graph = nt.to_nir(net, x[0, 0])  # one sample: the Input node declares no batch dim
        if any(isinstance(n, nir.Conv2d) and n.input_shape is None for n in graph.nodes.values()):
            # Norse leaves Conv2d.input_shape None, which nir.write cannot store: nir's own type inference
            # fills it in (nothing else in the graph changes)
            graph.infer_types()
        out[name] = (graph, x, y)
    return out, 1e-3, {"norse": norse.__version__ if hasattr(norse, "__version__") else "1.1.0"}


# --------------------------------------------------------------------------------------------------------
# SpikingJelly 2.0: nir_exchange.export_to_nir; dt = 1e-4


def spikingjelly_cases():
    import spikingjelly
    from spikingjelly.activation_based import functional, neuron
    from spikingjelly.activation_based.nir_exchange import export_to_nir

    def run(net, x):
        functional.reset_net(net)
        with torch.no_grad():
            y = torch.stack([net(x[t]) for t in range(x.shape[0])])
        functional.reset_net(net)
        return y

    cases = {}
    _init(20)
    cases["if"] = (nn.Sequential(nn.Linear(6, 10), neuron.IFNode(v_threshold=1.0, v_reset=0.0)),
                   _rand_input(21, (6,), 1.5))
    _init(22)
    cases["lif"] = (nn.Sequential(nn.Linear(6, 10), neuron.LIFNode(tau=2.0, v_threshold=0.5, v_reset=0.0)),
                    _rand_input(23, (6,), 3.0))
    _init(24)
    cases["lif_no_decay_input"] = (nn.Sequential(nn.Linear(6, 10), neuron.LIFNode(tau=4.0, decay_input=False,
                                                                                  v_threshold=1.0, v_reset=0.0)),
                                   _rand_input(25, (6,), 2.0))
    if hasattr(neuron, "CUBALIFNode"):
        _init(26)
        cases["cubalif"] = (nn.Sequential(nn.Linear(6, 10), neuron.CUBALIFNode(c_decay=0.5, v_decay=0.75,
                                                                               v_threshold=0.5, v_reset=0.0)),
                            _rand_input(27, (6,), 1.0))
    _init(28)
    cases["mlp"] = (nn.Sequential(nn.Linear(8, 16), neuron.LIFNode(tau=2.0, v_threshold=0.5, v_reset=0.0),
                                  nn.Linear(16, 5), neuron.IFNode(v_threshold=0.3, v_reset=0.0)),
                    _rand_input(29, (8,), 4.0))
    _init(30)
    cases["conv"] = (nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), neuron.IFNode(v_threshold=1.0, v_reset=0.0),
                                   nn.AvgPool2d(2), nn.Flatten(), nn.Linear(64, 5),
                                   neuron.LIFNode(tau=2.0, v_threshold=0.1, v_reset=0.0)),
                     _rand_input(31, (1, 8, 8), 4.0))
    out = {}
    for name, (net, x) in cases.items():
        y = run(net, x)
        graph = export_to_nir(net, x[0])
        out[name] = (graph, x, y)
    return out, 1e-4, {"spikingjelly": getattr(spikingjelly, "__version__", "2.0.0")}


# --------------------------------------------------------------------------------------------------------
# Sinabs 3.1: sinabs.to_nir (nir 1.0.4); one step per unit time; Sinabs layers are batch-major [B, T, ...]


def sinabs_cases():
    import sinabs
    import sinabs.layers as sl

    def run(net, x):  # x time-major [T, B, ...] -> Sinabs' [B, T, ...] and back
        for m in net.modules():
            if isinstance(m, sl.StatefulLayer):
                m.reset_states()
        with torch.no_grad():
            y = net(x.transpose(0, 1).contiguous()).transpose(0, 1).contiguous()
        for m in net.modules():
            if isinstance(m, sl.StatefulLayer):
                m.reset_states()
        return y

    def run_squeezed(net, x):  # conv nets: Sinabs' [B*T, C, H, W] with *Squeeze layers
        for m in net.modules():
            if isinstance(m, sl.StatefulLayer):
                m.reset_states()
        with torch.no_grad():
            xb = x.transpose(0, 1).reshape(B * T, *x.shape[2:])
            y = net(xb)
        y = y.reshape(B, T, *y.shape[1:]).transpose(0, 1).contiguous()
        for m in net.modules():
            if isinstance(m, sl.StatefulLayer):
                m.reset_states()
        return y

    # the *Squeeze layers (batch and time folded into one dim, as Sinabs' Speck models are built) let the
    # exporter see one sample without a time dim, so the Input node declares the sample shape
    cases = {}
    _init(40)
    cases["iaf"] = (nn.Sequential(nn.Linear(6, 10), sl.IAFSqueeze(batch_size=B, spike_threshold=torch.tensor(1.0))),
                    _rand_input(41, (6,), 4.0))
    _init(42)
    cases["lif"] = (nn.Sequential(nn.Linear(6, 10), sl.LIFSqueeze(batch_size=B, tau_mem=torch.tensor(5.0),
                                                                  spike_threshold=torch.tensor(0.5))),
                    _rand_input(43, (6,), 8.0))
    _init(44)
    cases["mlp"] = (nn.Sequential(nn.Linear(8, 16), sl.IAFSqueeze(batch_size=B, spike_threshold=torch.tensor(1.0)),
                                  nn.Linear(16, 5), sl.LIFSqueeze(batch_size=B, tau_mem=torch.tensor(4.0),
                                                                  spike_threshold=torch.tensor(0.3))),
                    _rand_input(45, (8,), 4.0))
    _init(46)
    cases["conv_pool"] = (nn.Sequential(nn.Conv2d(1, 4, 3, padding=1),
                                        sl.IAFSqueeze(batch_size=B, spike_threshold=torch.tensor(1.0)),
                                        sl.SumPool2d(2), nn.Conv2d(4, 4, 3),
                                        sl.IAFSqueeze(batch_size=B, spike_threshold=torch.tensor(1.0)),
                                        nn.Flatten(), nn.Linear(16, 5),
                                        sl.IAFSqueeze(batch_size=B, spike_threshold=torch.tensor(1.0))),
                          _rand_input(47, (1, 8, 8), 4.0))
    out = {}
    for name, (net, x) in cases.items():
        y = run_squeezed(net, x)
        graph = sinabs.to_nir(net, x[0])  # one step of the batch: [B, ...]; the exporter drops dim 0
        if any(getattr(n, "input_shape", 1) is None or (isinstance(n, nir.Flatten) and n.input_type is None)
               for n in graph.nodes.values()):
            # Sinabs leaves Conv2d.input_shape / Flatten.input_type None, which nir.write cannot store: nir's
            # own type inference fills them in (nothing else changes)
            graph.infer_types()
        out[name] = (graph, x, y)
    return out, 1.0, {"sinabs": sinabs.__version__}


LIBRARIES = {"snntorch": snntorch_cases, "norse": norse_cases, "spikingjelly": spikingjelly_cases,
             "sinabs": sinabs_cases}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--library", required=True, choices=sorted(LIBRARIES))
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[2] / "tests" / "data" / "nir"))
    args = ap.parse_args(argv)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    cases, dt, versions = LIBRARIES[args.library]()
    versions.update({"nir": importlib.metadata.version("nir"), "torch": torch.__version__,
                     "python": sys.version.split()[0]})
    for name, (graph, x, y) in cases.items():
        stem = out_dir / f"{args.library}_{name}"
        tmp = stem.with_suffix(".nir.tmp")
        nir.write(str(tmp), graph)
        os.replace(tmp, stem.with_suffix(".nir"))
        y = y.detach().numpy().astype(np.float32)
        with open(stem.with_suffix(".npz.tmp"), "wb") as f:
            np.savez_compressed(f, input=x.numpy().astype(np.float32), output=y, dt=np.float64(dt),
                                versions=json.dumps(versions))
        os.replace(stem.with_suffix(".npz.tmp"), stem.with_suffix(".npz"))
        rate = float((y > 0).mean())
        print(f"{args.library}_{name}: output {list(y.shape)}, fraction of (step, neuron) with spikes {rate:.3f}, "
              f"max count {y.max():g}, total spikes {y.sum():g}")
    print(json.dumps(versions))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
