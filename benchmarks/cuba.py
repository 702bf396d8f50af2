"""The Brette et al. 2007 CUBA benchmark (Brian2's example parameters): 4000 LIF neurons (3200 E, 800 I),
2% connectivity, exponential current synapses (5 ms E, 10 ms I), 1 s at dt 0.1 ms. Brian2 side by side
when it is importable (``--brian2-python`` may name another interpreter, e.g. a venv with numpy < 2.4).

NEST side by side when it is importable: the same network written by ``Network.to_nest`` and run with the
same thread count (``nest_run_s`` is NEST's ``Simulate`` time, ``nest_rate_hz`` its rate).

Last line: one JSON object with run_s, setup_s, rate_hz (and Brian2's and NEST's figures when measured).

    python benchmarks/cuba.py [--duration 1000] [--brian2-python /path/to/python]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

BRIAN2_SCRIPT = r"""
import time, json, sys
from brian2 import *
target = sys.argv[1]
if target == 'cpp_standalone':
    set_device('cpp_standalone', directory=sys.argv[2])
defaultclock.dt = 0.1*ms
taum, taue, taui, Vt, Vr, El = 20*ms, 5*ms, 10*ms, -50*mV, -60*mV, -49*mV
eqs = '''dv/dt = (ge+gi-(v-El))/taum : volt (unless refractory)
dge/dt = -ge/taue : volt
dgi/dt = -gi/taui : volt'''
t0 = time.perf_counter()
P = NeuronGroup(4000, eqs, threshold='v>Vt', reset='v = Vr', refractory=5*ms, method='exact')
P.v = 'Vr + rand() * (Vt - Vr)'
Ce = Synapses(P[:3200], P, on_pre='ge += 60*0.27/10*mV'); Ce.connect(p=0.02)
Ci = Synapses(P[3200:], P, on_pre='gi += -20*4.5/10*mV'); Ci.connect(p=0.02)
M = SpikeMonitor(P)
t1 = time.perf_counter()
run(float(sys.argv[3])*ms, profile=False)
t2 = time.perf_counter()
loop = getattr(device, '_last_run_time', None) if target == 'cpp_standalone' else None
print(json.dumps({'total_s': t2 - t0, 'run_s': t2 - t1, 'loop_s': loop, 'spikes': int(M.num_spikes)}))
"""


def build_cuba(seed: int = 0):
    """The CUBA network (not yet run) and a spike monitor on it."""
    import neuro

    net = neuro.sim.Network(dt=0.1, seed=seed)
    rng = np.random.default_rng(seed)
    cell = neuro.models.LIF(tau_m=20.0, cm=1.0, v_rest=-49.0, v_thresh=-50.0, v_reset=-60.0, tau_refrac=5.0)
    pop = net.population(4000, cell, initial={"v": -60.0 + rng.random(4000) * 10.0})
    exc, inh = neuro.sim.FromList, None
    del exc, inh
    # weights in nA: Brian2's ge is R*I with R = tau_m / cm = 20 MOhm
    e_pairs = neuro.sim.FixedProbability(0.02).connect(3200, 4000, net.rng)
    i_pairs = neuro.sim.FixedProbability(0.02).connect(800, 4000, net.rng)
    net.connect(pop, pop, neuro.sim.FromList(np.stack(e_pairs, 1)), weight=1.62 / 20.0, tau_syn=5.0)
    net.connect(pop, pop, neuro.sim.FromList(np.stack([i_pairs[0] + 3200, i_pairs[1]], 1)), weight=-9.0 / 20.0,
                tau_syn=10.0)
    mon = net.spike_monitor(pop)
    return net, mon


def neuro_cuba(duration_ms: float, seed: int = 0, progress: bool = False):
    t0 = time.perf_counter()
    net, mon = build_cuba(seed)
    net.run(0.1)  # compile (cached on disk after the first time)
    setup_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    net.run(duration_ms, progress=progress)
    run_s = time.perf_counter() - t1
    return net, mon, setup_s, run_s


def nest_column(build, duration_ms: float, threads: int) -> dict:
    """The same network on NEST (``Network.to_nest``: explicit connections, same initial values) with the same
    number of threads, in its own process: NEST's loop (``nest.Simulate``), its build time and the rate."""
    import tempfile
    import warnings
    from pathlib import Path

    from neuro.sim.nest_export import nest_available, read_results

    reason = nest_available()
    if reason:
        print(f"NEST not importable here ({reason}): pip install nest-simulator")
        return {}
    net, _ = build()
    n = sum(p.n for p in net.populations)
    with tempfile.TemporaryDirectory() as d, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a one-step delay onto exponential synapses lags one step on NEST
        t0 = time.perf_counter()
        path = net.to_nest(Path(d) / "net.py", duration_ms=duration_ms)
        export_s = time.perf_counter() - t0
        del net
        t0 = time.perf_counter()
        subprocess.run([sys.executable, str(path), "--threads", str(threads)], check=True, capture_output=True,
                       env={**os.environ, "OMP_WAIT_POLICY": "passive"})  # NEST's OpenMP threads otherwise spin
        wall = time.perf_counter() - t0
        res = read_results(path)
    t, _ = next(iter(res["spikes"].values()))
    rate = len(t) / n / (duration_ms / 1000)
    print(f"NEST 3 ({threads} thread(s)): build {res['build_s']:.2f} s, loop {res['simulate_s']:.3f} s, "
          f"{rate:.2f} Hz, whole process {wall:.1f} s (export {export_s:.1f} s)")
    return {"nest_run_s": res["simulate_s"], "nest_build_s": res["build_s"], "nest_rate_hz": rate,
            "nest_process_s": wall, "nest_export_s": export_s, "nest_threads": threads}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=1000.0)
    ap.add_argument("--brian2-python", default=None)
    ap.add_argument("--threads", type=int, default=1, help="numba threads for the loop (the target is 1)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    import numba

    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    if not args.child:  # a fresh process end to end (kernel cache warm), as a user would run it
        t0 = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--child", "--duration", str(args.duration)], check=True,
                       capture_output=True)
        fresh_s = time.perf_counter() - t0
    net, mon, setup_s, run_s = neuro_cuba(args.duration)
    rate = mon.count() / 4000 / ((args.duration + 0.1) / 1000)
    print(f"neuro-snn: setup+compile {setup_s:.2f} s, loop {run_s:.3f} s for {args.duration:.0f} ms, "
          f"{mon.count()} spikes, {rate:.2f} Hz")
    out = {"run_s": run_s, "setup_s": setup_s, "rate_hz": rate, "spikes": mon.count(), "threads": args.threads}
    if args.child:
        print(json.dumps(out))
        return
    out["fresh_process_s"] = fresh_s
    out.update(nest_column(build_cuba, args.duration, args.threads))
    py = args.brian2_python or sys.executable
    has_b2 = subprocess.run([py, "-c", "import brian2"], capture_output=True).returncode == 0
    if has_b2:
        import tempfile

        for target in ("cpp_standalone", "runtime"):
            d = tempfile.mkdtemp()
            t0 = time.perf_counter()
            r = subprocess.run([py, "-c", BRIAN2_SCRIPT, target, d, str(args.duration)], capture_output=True,
                               text=True)
            wall = time.perf_counter() - t0
            shutil.rmtree(d, ignore_errors=True)
            if r.returncode == 0:
                b = json.loads(r.stdout.strip().splitlines()[-1])
                loop = b["loop_s"] if b.get("loop_s") is not None else b["run_s"]
                out[f"brian2_{target}_run_s"] = loop
                out[f"brian2_{target}_total_s"] = wall
                print(f"brian2 {target}: loop {loop:.3f} s, whole process {wall:.1f} s")
        if "brian2_cpp_standalone_run_s" in out:
            out["brian2_standalone_run_s"] = out["brian2_cpp_standalone_run_s"]
            out["speedup_vs_brian2_standalone"] = out["brian2_cpp_standalone_run_s"] / run_s
            out["end_to_end_speedup_vs_brian2_standalone"] = out["brian2_cpp_standalone_total_s"] / fresh_s
    else:
        print("brian2 not importable here (it needs numpy < 2.4): pass --brian2-python of a venv that has it")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
