"""GPU benchmarks, side by side in one run: neuro-snn's numba.cuda and CuPy kernel backends, snnTorch, and
SpikingJelly's CuPy backend when it is installed.

Workloads (each timed after warm-up rounds, CUDA-synchronised, median over ``--rounds``):

* ``train_mlp`` / ``train_csnn``: one training step (forward, backward, Adam) of snnTorch's tutorial MLP
  (784-1000-10, T = 25, batch 128) and CSNN (12C5-MP2-64C5-MP2-FC10, T = 25, batch 128), the networks of
  ``benchmarks/train_step.py``;
* ``linear_lif``: the Open Neuromorphic configuration: Linear + LIF, 16384 neurons, batch 16, T = 500, forward and
  backward (SpikingJelly's CuPy backend is reported at about 0.12 s there, snnTorch at 3.1 s);
* ``sim_cuba`` / ``sim_brunel``: the simulator's CUBA network (``benchmarks/cuba.py``, 1 s) and Brunel's network
  (``benchmarks/brunel.py``, ``--brunel-scale`` of 100k neurons, 1 s) with ``Network(device="cuda")`` (numba.cuda
  only: the simulator has no CuPy kernels).

Output: one JSON object (seconds per workload and column; a column that fails gives its error). Without a CUDA
device it prints ``{"gpu": false, "reason": ...}`` and exits 0.

    python benchmarks/gpu.py [--rounds 5] [--brunel-scale 0.1] [--only linear_lif,train_mlp]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _no_gpu_reason() -> str | None:
    import torch

    if not torch.cuda.is_available():
        return "torch sees no CUDA device (torch.cuda.is_available() is False)"
    return None


def _timed(fn, rounds: int, warmup: int = 2) -> float:
    import torch

    times = []
    for r in range(rounds + warmup):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        if r >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _backend(name: str):
    from neuro import kernels

    kernels.set_backend(name)


# -- training steps ------------------------------------------------------------------------------------------
def train_step(kind: str, column: str, rounds: int) -> float:
    import torch

    sys.path.insert(0, HERE)
    import train_step as ts

    if column in ("numba", "cupy"):
        _backend(column)
        params, step = (ts.neuro_mlp if kind == "mlp" else ts.neuro_csnn)()
    elif column == "snntorch":
        params, step = (ts.snntorch_mlp if kind == "mlp" else ts.snntorch_csnn)()
    else:
        raise ValueError(f"no {column} column for train_{kind}")
    params = params.cuda()
    opt = torch.optim.Adam(params.parameters(), lr=1e-3)
    shape = (ts.T, ts.B, 784) if kind == "mlp" else (ts.T, ts.B, 1, 28, 28)
    x = ((torch.rand(shape) < 0.3).float() if kind == "mlp" else torch.rand(shape)).cuda()
    y = torch.randint(0, 10, (ts.B,)).cuda()

    def once():
        loss = step(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return _timed(once, rounds)


# -- Open Neuromorphic: Linear + LIF -------------------------------------------------------------------------
def linear_lif(column: str, rounds: int, n: int = 16384, batch: int = 16, steps: int = 500) -> float:
    import torch
    from torch import nn

    torch.manual_seed(0)
    fc = nn.Linear(n, n).cuda()
    x = torch.rand(steps, batch, n, device="cuda")
    if column in ("numba", "cupy"):
        import neuro

        _backend(column)
        lif = neuro.nn.LIF(beta=0.9).cuda()

        def run():
            h = fc(x.reshape(steps * batch, n)).reshape(steps, batch, n)
            return lif(h)
    elif column == "snntorch":
        import snntorch as snn

        lif = snn.Leaky(beta=0.9).cuda()

        def run():
            mem = lif.init_leaky()
            out = []
            for t in range(steps):
                spk, mem = lif(fc(x[t]), mem)
                out.append(spk)
            return torch.stack(out)
    elif column == "spikingjelly_cupy":
        from spikingjelly.activation_based import neuron

        lif = neuron.LIFNode(tau=10.0, step_mode="m", backend="cupy").cuda()

        def run():
            lif.reset()
            h = fc(x.reshape(steps * batch, n)).reshape(steps, batch, n)
            return lif(h)
    else:
        raise ValueError(column)

    def once():
        fc.zero_grad()
        run().sum().backward()

    return _timed(once, rounds)


# -- simulator -------------------------------------------------------------------------------------------------
def simulate(which: str, rounds: int, brunel_scale: float) -> float:
    sys.path.insert(0, HERE)
    if which == "cuba":
        import cuba

        net, _ = cuba.build_cuba(0)
    else:
        import brunel

        net = brunel.build_brunel(brunel_scale)[0]
    net.device = "cuda"
    net.run(0.1)  # compile
    t0 = time.perf_counter()
    net.run(1000.0)
    return time.perf_counter() - t0


def _columns() -> list[str]:
    cols = ["numba", "cupy", "snntorch"]
    if importlib.util.find_spec("spikingjelly") is not None and importlib.util.find_spec("cupy") is not None:
        cols.append("spikingjelly_cupy")
    return cols


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--brunel-scale", type=float, default=0.1)
    ap.add_argument("--only", default="", help="comma-separated workloads")
    args = ap.parse_args()
    reason = _no_gpu_reason()
    if reason is not None:
        print(json.dumps({"gpu": False, "reason": reason}))
        return
    import torch

    work = {
        "train_mlp": lambda c: train_step("mlp", c, args.rounds),
        "train_csnn": lambda c: train_step("csnn", c, args.rounds),
        "linear_lif": lambda c: linear_lif(c, args.rounds),
        "sim_cuba": lambda c: simulate("cuba", args.rounds, args.brunel_scale),
        "sim_brunel": lambda c: simulate("brunel", args.rounds, args.brunel_scale),
    }
    only = [w for w in args.only.split(",") if w] or list(work)
    out: dict = {"gpu": True, "device": torch.cuda.get_device_name(), "unit": "s"}
    for name in only:
        cols = ["numba"] if name.startswith("sim_") else [c for c in _columns()
                                                          if not (c == "spikingjelly_cupy" and name != "linear_lif")]
        out[name] = {}
        for col in cols:
            try:
                out[name][col] = round(work[name](col), 5)
            except Exception as exc:  # noqa: BLE001 - a failing column is reported, the others still run
                out[name][col] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
