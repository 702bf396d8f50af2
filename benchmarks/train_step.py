"""One training step (forward, backward, Adam) of snnTorch's tutorial networks: neuro-snn against snnTorch,
and against the "floor" (the same matrix products / convolutions with the neurons removed), in one run.

* MLP 784-1000-10, beta 0.95, T = 25, batch 128 (snnTorch tutorial 5), loss: cross-entropy on the output
  membrane at every step. Floor: the two Linear layers as single batched GEMMs over all T*B rows.
* CSNN 12C5-MP2-64C5-MP2-FC10 on 28x28, T = 25, batch 128 (snnTorch tutorial 7). Floor: the same network
  without neurons, run the fastest way here: all T at once or stepping over T, with torch's max pools or with
  ``neuro.nn.pooling``'s (what ``TimeDistributed`` runs), whichever wins.
* Long: Linear(512, 4096) + LIF, T = 500, batch 16 (the Open Neuromorphic benchmark shape at 4k neurons),
  loss: mean spike count. Floor: the Linear layer with identity in place of the neurons. neuro-snn twice: the
  default layers (``neuro_long``) and the low-memory fused layer ``neuro.nn.SpikingLinear`` (``neuro_long_low``).

Memory, counted strictly: each tool runs in its own process with glibc's mmap threshold fixed
(``MALLOC_MMAP_THRESHOLD_=131072``, so freed tensors go back to the OS); after warm-up steps the peak-RSS
counter is reset (``/proc/self/clear_refs``) and the figure is the peak resident memory of one step above
the resident memory just before it. Time: median ms per step over ``--rounds`` steps after warm-up, in
another process without the mmap threshold (with it, every large tensor is a fresh mmap and its page
faults dominate: snnTorch's MLP step measured 47x slower).

CPU, 2 threads. ``--every K`` sets neuro-snn's checkpoint interval (``neuro.kernels.CHECKPOINT_EVERY``),
``--chunk C`` the time steps per chunk of ``SpikingLinear`` (default: its own). ``--plain-spikes`` turns off
the packed spike inputs of the layers after the neurons (``neuro.nn.spike_inputs.ENABLED = False``: their
input saved as the float tensor it is, as before issue 15's packing), ``--pack uint8`` keeps one byte per
spike instead of one bit (``neuro.nn.spike_inputs.PACK``). Last line: one JSON object.

``--paired R``: the time against the floor measured the way the issue-15 figures are, robust to a machine
whose load changes from minute to minute: neuro-snn's step and every floor's step built in one process, run
in turn for R rounds, the order rotated each round (a step run right after the CSNN's all-at-once floor,
which hands hundreds of MB back to the OS, measured 3-5% slower), the figure the median over rounds of ours
divided by the round's fastest floor.

    python benchmarks/train_step.py [--rounds 5] [--only mlp,csnn,long] [--every K] [--chunk C] [--plain-spikes]
    python benchmarks/train_step.py --paired 30 --only mlp,csnn
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
from torch import nn

T, B = 25, 128


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> None:
    """Set the peak-RSS counter (VmHWM) to the current RSS (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


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
    if mode == "step_neuro_pool":  # the pools through neuro.nn.pooling, as TimeDistributed runs them
        from neuro.nn import pooling

        def run(t):
            for m in body:
                t = pooling.call(m, t)
            return t
    else:
        run = body

    def step(x, y):
        if mode == "all":
            out = body(x.reshape(-1, *x.shape[2:])).reshape(x.shape[0], x.shape[1], 10)
        else:
            out = torch.stack([run(x[t]) for t in range(x.shape[0])])
        return _membrane_ce(out)(y)

    return body, step


T_LONG, B_LONG, IN_LONG, N_LONG = 500, 16, 512, 4096


def neuro_long():
    import neuro
    from neuro.nn import TimeDistributed as TD

    net = nn.Sequential(TD(nn.Linear(IN_LONG, N_LONG)), neuro.nn.LIF(beta=0.95))
    return net, lambda x, y: net(x).mean()


def neuro_long_low(chunk=None):
    import neuro

    kw = {} if chunk is None else {"chunk": chunk}
    net = neuro.nn.SpikingLinear(IN_LONG, N_LONG, neuro.nn.LIF(beta=0.95), **kw)
    return net, lambda x, y: net(x).mean()


def snntorch_long():
    import snntorch as snn

    fc, lif = nn.Linear(IN_LONG, N_LONG), snn.Leaky(beta=0.95)

    def step(x, y):
        mem = lif.init_leaky()
        spikes = []
        for t in range(x.shape[0]):
            spk, mem = lif(fc(x[t]), mem)
            spikes.append(spk)
        return torch.stack(spikes).mean()

    return nn.ModuleList([fc, lif]), step


def floor_long():
    fc = nn.Linear(IN_LONG, N_LONG)
    return fc, lambda x, y: fc(x.reshape(-1, IN_LONG)).mean()


MODELS = {"neuro_mlp": neuro_mlp, "snntorch_mlp": snntorch_mlp, "floor_mlp": floor_mlp,
          "neuro_csnn": neuro_csnn, "snntorch_csnn": snntorch_csnn,
          "floor_csnn_step": lambda: floor_csnn("step"), "floor_csnn_all": lambda: floor_csnn("all"),
          "floor_csnn_step_neuro_pool": lambda: floor_csnn("step_neuro_pool"),
          "neuro_long": neuro_long, "neuro_long_low": neuro_long_low, "snntorch_long": snntorch_long,
          "floor_long": floor_long}
WORKLOADS = {"mlp": ["neuro_mlp", "snntorch_mlp", "floor_mlp"],
             "csnn": ["neuro_csnn", "snntorch_csnn", "floor_csnn_step", "floor_csnn_all", "floor_csnn_step_neuro_pool"],
             "long": ["neuro_long", "neuro_long_low", "snntorch_long", "floor_long"]}


def _data(name: str):
    if "_long" in name:
        return (torch.rand(T_LONG, B_LONG, IN_LONG) < 0.1).float(), None
    shape = (T, B, 784) if name.endswith("mlp") else (T, B, 1, 28, 28)
    x = (torch.rand(shape) < 0.3).float() if name.endswith("mlp") else torch.rand(shape)
    return x, torch.randint(0, 10, (B,))


def run_one(name: str, rounds: int, every: int | None = None, chunk: int | None = None, plain_spikes: bool = False,
            pack: str | None = None) -> dict:
    """One model's training step in this process: ms per step, and the peak RSS of one step after warm-up
    above the RSS before it (meaningful only with MALLOC_MMAP_THRESHOLD_ set; the timing only without)."""
    if every is not None:
        import neuro.kernels

        neuro.kernels.CHECKPOINT_EVERY = every
    if name.startswith("neuro") and (plain_spikes or pack):
        import neuro.nn.spike_inputs as spike_inputs

        spike_inputs.ENABLED = not plain_spikes
        spike_inputs.PACK = pack or spike_inputs.PACK
    torch.manual_seed(0)
    torch.set_num_threads(2)
    params, step = MODELS[name](chunk) if name == "neuro_long_low" else MODELS[name]()
    opt = torch.optim.Adam(params.parameters(), lr=1e-3)
    x, y = _data(name)

    def train_step():
        loss = step(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        del loss

    for _ in range(2):  # compile kernels, warm caches, let Adam allocate its moments
        train_step()
    _reset_peak()
    base = _status_mb("VmRSS")
    train_step()
    mem = _status_mb("VmHWM") - base
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        train_step()
        times.append(time.perf_counter() - t0)
    return {"ms": 1e3 * statistics.median(times), "mem_mb": mem}


def paired_ratio(workload: str, rounds: int) -> dict:
    """Ours / fastest floor, one process, rotated order, median of per-round ratios (see ``--paired``)."""
    torch.set_num_threads(2)
    steps = {}
    for name in [n for n in WORKLOADS[workload] if not n.startswith("snntorch")]:
        torch.manual_seed(0)
        params, step = MODELS[name]()
        opt = torch.optim.Adam(params.parameters(), lr=1e-3)
        x, y = _data(name)

        def train_step(step=step, opt=opt, x=x, y=y):
            loss = step(x, y)
            opt.zero_grad()
            loss.backward()
            opt.step()

        for _ in range(3):
            train_step()
        steps[name] = train_step
    names = list(steps)
    times = {k: [] for k in names}
    ratios = []
    for r in range(rounds):
        row = {}
        for name in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.perf_counter()
            steps[name]()
            row[name] = time.perf_counter() - t0
            times[name].append(row[name])
        ratios.append(row[f"neuro_{workload}"] / min(v for k, v in row.items() if k.startswith("floor")))
    out = {f"{k}_ms": round(1e3 * statistics.median(v), 1) for k, v in times.items()}
    return out | {f"{workload}_paired_ratio_to_floor": round(statistics.median(ratios), 3),
                  "rounds": rounds, "load_average": round(os.getloadavg()[0], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", default="mlp,csnn,long", help="comma-separated workloads: mlp, csnn, long")
    ap.add_argument("--every", type=int, default=None, help="neuro-snn checkpoint interval K")
    ap.add_argument("--chunk", type=int, default=None, help="time steps per chunk of SpikingLinear (neuro_long_low)")
    ap.add_argument("--plain-spikes", action="store_true",
                    help="neuro-snn's layers after the neurons save their spike input as float (the old path)")
    ap.add_argument("--pack", choices=["bits", "uint8"], default=None, help="packing of saved spike inputs")
    ap.add_argument("--paired", type=int, default=None, metavar="R",
                    help="time against the floor only, paired in one process over R rounds (mlp, csnn)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--paired-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child, args.rounds, args.every, args.chunk, args.plain_spikes, args.pack)))
        return
    if args.paired_child:
        print(json.dumps(paired_ratio(args.paired_child, args.paired)))
        return
    workloads = [w for w in args.only.split(",") if w]
    env_time = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"} | {"NUMBA_NUM_THREADS": "2"}
    if args.paired is not None:
        for w in workloads:
            if w == "long":
                continue  # no time target against the floor there
            cmd = [sys.executable, __file__, "--paired-child", w, "--paired", str(args.paired)]
            print(subprocess.run(cmd, capture_output=True, text=True, check=True, env=env_time).stdout.strip()
                  .splitlines()[-1], flush=True)
        return
    env_mem = env_time | {"MALLOC_MMAP_THRESHOLD_": "131072"}
    res = {}
    for w in workloads:
        for name in WORKLOADS[w]:
            cmd = [sys.executable, __file__, "--child", name, "--rounds", str(args.rounds)]
            if args.every is not None:
                cmd += ["--every", str(args.every)]
            if args.chunk is not None:
                cmd += ["--chunk", str(args.chunk)]
            if args.plain_spikes:
                cmd += ["--plain-spikes"]
            if args.pack is not None:
                cmd += ["--pack", args.pack]
            run = [json.loads(subprocess.run(c, capture_output=True, text=True, check=True, env=e).stdout
                              .strip().splitlines()[-1])
                   for c, e in ((cmd, env_mem), (cmd, env_time))]
            res[name] = {"mem_mb": run[0]["mem_mb"], "ms": run[1]["ms"]}
            print(f"{name:18s} {res[name]['ms']:9.1f} ms/step   one step's peak RSS +{res[name]['mem_mb']:.0f} MB",
                  flush=True)
    summary = {"every": args.every, "chunk": args.chunk, "plain_spikes": args.plain_spikes, "pack": args.pack,
               "load_average": os.getloadavg()[0]}
    summary |= {f"{k}_ms": round(v["ms"], 2) for k, v in res.items()}
    summary |= {f"{k}_mem_mb": round(v["mem_mb"], 1) for k, v in res.items()}
    for w in workloads:
        floor = min(res[n]["ms"] for n in WORKLOADS[w] if n.startswith("floor"))
        summary[f"{w}_time_ratio_to_floor"] = round(res[f"neuro_{w}"]["ms"] / floor, 3)
        summary[f"{w}_speedup_vs_snntorch"] = round(res[f"snntorch_{w}"]["ms"] / res[f"neuro_{w}"]["ms"], 3)
        summary[f"{w}_mem_ratio_vs_snntorch"] = round(
            res[f"neuro_{w}"]["mem_mb"] / max(res[f"snntorch_{w}"]["mem_mb"], 1e-9), 3)
        if f"neuro_{w}_low" in res:  # the low-memory fused layer beside the default one
            low = res[f"neuro_{w}_low"]
            summary[f"{w}_low_time_ratio_to_floor"] = round(low["ms"] / floor, 3)
            summary[f"{w}_low_speedup_vs_snntorch"] = round(res[f"snntorch_{w}"]["ms"] / low["ms"], 3)
            summary[f"{w}_low_mem_ratio_vs_snntorch"] = round(
                low["mem_mb"] / max(res[f"snntorch_{w}"]["mem_mb"], 1e-9), 3)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
