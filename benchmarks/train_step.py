"""One training step (forward, backward, Adam) of snnTorch's tutorial networks: neuro-snn against snnTorch,
and against the "floor" (the same matrix products / convolutions with the neurons removed), in one run.

* MLP 784-1000-10, beta 0.95, T = 25, batch 128 (snnTorch tutorial 5), loss: cross-entropy on the output
  membrane at every step. Floor: the two Linear layers as single batched GEMMs over all T*B rows.
* CSNN 12C5-MP2-64C5-MP2-FC10 on 28x28, T = 25, batch 128 (snnTorch tutorial 7). Floor: the same network
  without neurons, run the fastest way torch allows here (all T at once or stepping over T, whichever wins).
* Peak resident memory increase of each (VmHWM, each in its own subprocess).

CPU, 2 threads, medians over rounds. Last line: one JSON object.

    python benchmarks/train_step.py [--rounds 5] [--skip-csnn]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch
from torch import nn

T, B = 25, 128


def _vmhwm_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _membrane_ce(mem):
    return lambda targets: nn.functional.cross_entropy(mem.flatten(0, 1), targets.repeat(mem.shape[0]))


# -- models ------------------------------------------------------------------------------------------
def neuro_mlp():
    import neuro
    from neuro.nn import TimeDistributed as TD

    net = nn.Sequential(TD(nn.Linear(784, 1000)), neuro.nn.LIF(beta=0.95), TD(nn.Linear(1000, 10)))
    out_lif = neuro.nn.LIF(beta=0.95)

    def step(x, y):
        _, mem = out_lif(net(x), return_v=True)
        return _membrane_ce(mem)(y)

    return nn.ModuleList([net, out_lif]), step


def snntorch_mlp():
    import snntorch as snn

    fc1, lif1, fc2, lif2 = nn.Linear(784, 1000), snn.Leaky(beta=0.95), nn.Linear(1000, 10), snn.Leaky(beta=0.95)

    def step(x, y):
        mem1, mem2 = lif1.init_leaky(), lif2.init_leaky()
        mems = []
        for t in range(x.shape[0]):
            spk1, mem1 = lif1(fc1(x[t]), mem1)
            _, mem2 = lif2(fc2(spk1), mem2)
            mems.append(mem2)
        return _membrane_ce(torch.stack(mems))(y)

    return nn.ModuleList([fc1, lif1, fc2, lif2]), step


def floor_mlp():
    fc1, fc2 = nn.Linear(784, 1000), nn.Linear(1000, 10)

    def step(x, y):
        h = fc1(x.reshape(-1, 784))
        return _membrane_ce(fc2(h).reshape(x.shape[0], x.shape[1], 10))(y)

    return nn.ModuleList([fc1, fc2]), step


def _csnn_layers():
    return (nn.Conv2d(1, 12, 5), nn.MaxPool2d(2), nn.Conv2d(12, 64, 5), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(64 * 4 * 4, 10))


def neuro_csnn(chunk=5):
    import neuro
    from neuro.nn import TimeDistributed as TD

    c1, p1, c2, p2, fl, fc = _csnn_layers()
    net = nn.Sequential(TD(nn.Sequential(c1, p1), chunk), neuro.nn.LIF(beta=0.5), TD(nn.Sequential(c2, p2), chunk),
                        neuro.nn.LIF(beta=0.5), neuro.nn.Flatten(), TD(fc))
    out_lif = neuro.nn.LIF(beta=0.5)

    def step(x, y):
        _, mem = out_lif(net(x), return_v=True)
        return _membrane_ce(mem)(y)

    return nn.ModuleList([net, out_lif]), step


def snntorch_csnn():
    import snntorch as snn

    c1, p1, c2, p2, fl, fc = _csnn_layers()
    l1, l2, l3 = snn.Leaky(beta=0.5), snn.Leaky(beta=0.5), snn.Leaky(beta=0.5)

    def step(x, y):
        m1, m2, m3 = l1.init_leaky(), l2.init_leaky(), l3.init_leaky()
        mems = []
        for t in range(x.shape[0]):
            s1, m1 = l1(p1(c1(x[t])), m1)
            s2, m2 = l2(p2(c2(s1)), m2)
            _, m3 = l3(fc(fl(s2)), m3)
            mems.append(m3)
        return _membrane_ce(torch.stack(mems))(y)

    return nn.ModuleList([c1, c2, fc, l1, l2, l3]), step


def floor_csnn(mode="step"):
    c1, p1, c2, p2, fl, fc = _csnn_layers()
    body = nn.Sequential(c1, p1, c2, p2, fl, fc)

    def step(x, y):
        if mode == "all":
            out = body(x.reshape(-1, *x.shape[2:])).reshape(x.shape[0], x.shape[1], 10)
        else:
            out = torch.stack([body(x[t]) for t in range(x.shape[0])])
        return _membrane_ce(out)(y)

    return body, step


MODELS = {"neuro_mlp": neuro_mlp, "snntorch_mlp": snntorch_mlp, "floor_mlp": floor_mlp,
          "neuro_csnn": neuro_csnn, "snntorch_csnn": snntorch_csnn,
          "floor_csnn_step": lambda: floor_csnn("step"), "floor_csnn_all": lambda: floor_csnn("all")}


def run_one(name: str, rounds: int) -> dict:
    """Time one model's training step in this process; returns ms per step and memory increase."""
    torch.manual_seed(0)
    torch.set_num_threads(2)
    params, step = MODELS[name]()
    opt = torch.optim.Adam(params.parameters(), lr=1e-3)
    shape = (T, B, 784) if name.endswith("mlp") else (T, B, 1, 28, 28)
    x = (torch.rand(shape) < 0.3).float() if name.endswith("mlp") else torch.rand(shape)
    y = torch.randint(0, 10, (B,))
    base = _vmhwm_mb()
    times = []
    for r in range(rounds + 2):
        t0 = time.perf_counter()
        loss = step(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if r >= 2:  # the first rounds compile kernels and warm caches
            times.append(time.perf_counter() - t0)
    return {"ms": 1e3 * statistics.median(times), "mem_mb": _vmhwm_mb() - base}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--skip-csnn", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child, args.rounds)))
        return
    names = [n for n in MODELS if not (args.skip_csnn and "csnn" in n)]
    res = {}
    for name in names:
        out = subprocess.run([sys.executable, __file__, "--child", name, "--rounds", str(args.rounds)],
                             capture_output=True, text=True, check=True, env={"NUMBA_NUM_THREADS": "2",
                                                                             **__import__("os").environ})
        res[name] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{name:18s} {res[name]['ms']:9.1f} ms/step   peak RSS +{res[name]['mem_mb']:.0f} MB")
    summary = {f"{k}_ms": round(v["ms"], 2) for k, v in res.items()}
    summary |= {f"{k}_mem_mb": round(v["mem_mb"], 1) for k, v in res.items()}
    summary["mlp_ratio_to_floor"] = res["neuro_mlp"]["ms"] / res["floor_mlp"]["ms"]
    summary["mlp_speedup_vs_snntorch"] = res["snntorch_mlp"]["ms"] / res["neuro_mlp"]["ms"]
    summary["mem_ratio_vs_snntorch"] = res["neuro_mlp"]["mem_mb"] / max(res["snntorch_mlp"]["mem_mb"], 1e-9)
    if not args.skip_csnn:
        floor = min(res["floor_csnn_step"]["ms"], res["floor_csnn_all"]["ms"])
        summary["csnn_ratio_to_floor"] = res["neuro_csnn"]["ms"] / floor
        summary["csnn_speedup_vs_snntorch"] = res["snntorch_csnn"]["ms"] / res["neuro_csnn"]["ms"]
        summary["csnn_mem_ratio_vs_snntorch"] = res["neuro_csnn"]["mem_mb"] / max(res["snntorch_csnn"]["mem_mb"], 1e-9)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
