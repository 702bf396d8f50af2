"""The Brette et al. 2007 CUBA benchmark (Brian2's example parameters): 4000 LIF neurons (3200 E, 800 I),
2% connectivity, exponential current synapses (5 ms E, 10 ms I), 1 s at dt 0.1 ms.

Side by side in one run, for each thread count in ``--threads`` (default 1 and 2): our loop, setup and
rate, and Brian2 cpp_standalone's loop (``device._last_run_time``), its whole process (code generation,
C++ build, run) and rate with the same number of OpenMP threads. Brian2 runs in its own interpreter:
``--brian2-python`` (default: the cached venv of ``scripts/toolchain_venv.py brian2`` when it exists).
``fresh_process_s`` is our end to end in a new process, kernel cache warm (a first child warms it).
NEST side by side with ``--nest`` (the network written by ``Network.to_nest``, its ``Simulate`` time).

Last line: one JSON object with one entry per thread count.

    python benchmarks/cuba.py [--duration 1000] [--threads 1 2] [--brian2-python PY] [--nest]
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

BRIAN2_HEAD = r"""
import time, json, sys
from brian2 import *
target = sys.argv[1]
if target == 'cpp_standalone':
    set_device('cpp_standalone', directory=sys.argv[2])
    prefs.devices.cpp_standalone.openmp_threads = int(sys.argv[4])
defaultclock.dt = 0.1*ms
"""
BRIAN2_TAIL = r"""
M = SpikeMonitor(P)
t1 = time.perf_counter()
run(float(sys.argv[3])*ms, profile=False)
t2 = time.perf_counter()
loop = getattr(device, '_last_run_time', None) if target == 'cpp_standalone' else None
print(json.dumps({'total_s': t2 - t0, 'run_s': t2 - t1, 'loop_s': loop, 'spikes': int(M.num_spikes)}))
"""
BRIAN2_SCRIPT = BRIAN2_HEAD + r"""
taum, taue, taui, Vt, Vr, El = 20*ms, 5*ms, 10*ms, -50*mV, -60*mV, -49*mV
eqs = '''dv/dt = (ge+gi-(v-El))/taum : volt (unless refractory)
dge/dt = -ge/taue : volt
dgi/dt = -gi/taui : volt'''
t0 = time.perf_counter()
P = NeuronGroup(4000, eqs, threshold='v>Vt', reset='v = Vr', refractory=5*ms, method='exact')
P.v = 'Vr + rand() * (Vt - Vr)'
Ce = Synapses(P[:3200], P, on_pre='ge += 60*0.27/10*mV'); Ce.connect(p=0.02)
Ci = Synapses(P[3200:], P, on_pre='gi += -20*4.5/10*mV'); Ci.connect(p=0.02)
""" + BRIAN2_TAIL


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


def brian2_python(given: str | None) -> str | None:
    """The interpreter to run Brian2 with: ``given``, else the cached toolchain venv, else this one."""
    import importlib.util
    from pathlib import Path

    if given:
        return given
    spec = importlib.util.spec_from_file_location("tv", Path(__file__).resolve().parents[1] / "scripts" /
                                                  "toolchain_venv.py")
    tv = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tv)
    try:
        return str(tv.ensure("brian2"))
    except Exception as exc:  # noqa: BLE001  (no venv and no network: Brian2's column is left out)
        print(f"Brian2 venv not available ({exc}); trying this interpreter")
        return sys.executable


def brian2_column(script: str, duration_ms: float, threads: int, py: str, n: int) -> dict:
    """Brian2 cpp_standalone with ``threads`` OpenMP threads in its own process: loop, whole process, rate."""
    import tempfile

    if subprocess.run([py, "-c", "import brian2"], capture_output=True).returncode != 0:
        print(f"brian2 not importable with {py}")
        return {}
    d = tempfile.mkdtemp()
    t0 = time.perf_counter()
    # OpenMP waits passive, as in our process (neuro.sim sets it) and NEST's column: spinning workers
    # stall a loaded machine
    r = subprocess.run([py, "-c", script, "cpp_standalone", d, str(duration_ms), str(threads)],
                       capture_output=True, text=True, env={**os.environ, "OMP_WAIT_POLICY": "passive"})
    wall = time.perf_counter() - t0
    shutil.rmtree(d, ignore_errors=True)
    if r.returncode != 0:
        print(f"brian2 failed: {r.stderr[-2000:]}")
        return {}
    b = json.loads(r.stdout.strip().splitlines()[-1])
    rate = b["spikes"] / n / (duration_ms / 1000.0)
    print(f"  Brian2 cpp_standalone ({threads} thread(s)): loop {b['loop_s']:.3f} s, whole process {wall:.1f} s, "
          f"{rate:.2f} Hz")
    return {"brian2_loop_s": b["loop_s"], "brian2_process_s": wall, "brian2_rate_hz": rate}


def side_by_side(name: str, script: str, measure, duration_ms: float, threads_list, py, n: int,
                 nest_build=None) -> dict:
    """Ours (``measure(duration) -> (setup_s, run_s, rate_hz)``, in this process and in a fresh one) and
    Brian2 cpp_standalone, per thread count, in one run; returns the JSON-able table."""
    import numba

    out = {}
    for threads in threads_list:
        threads = min(threads, numba.config.NUMBA_NUM_THREADS)
        numba.set_num_threads(threads)
        child = [sys.executable, sys.argv[0], "--child", "--duration", str(duration_ms), "--threads", str(threads)]
        subprocess.run(child, check=True, capture_output=True)  # warms the kernel cache (models may have changed)
        t0 = time.perf_counter()
        r = subprocess.run(child, check=True, capture_output=True, text=True)
        fresh_s = time.perf_counter() - t0
        setup_s, run_s, rate = measure(duration_ms)
        row = {"run_s": run_s, "setup_s": setup_s, "rate_hz": rate, "fresh_process_s": fresh_s,
               "child": json.loads(r.stdout.strip().splitlines()[-1])}
        print(f"{name}, {threads} thread(s): neuro-snn loop {run_s:.3f} s, setup {setup_s:.2f} s, "
              f"fresh process {fresh_s:.2f} s, {rate:.2f} Hz")
        if py:
            row.update(brian2_column(script, duration_ms, threads, py, n))
            if "brian2_loop_s" in row:
                row["loop_speedup_vs_brian2"] = row["brian2_loop_s"] / run_s
                row["end_to_end_speedup_vs_brian2"] = row["brian2_process_s"] / fresh_s
                print(f"  loop {row['loop_speedup_vs_brian2']:.2f}x Brian2's, end to end "
                      f"{row['end_to_end_speedup_vs_brian2']:.1f}x")
        if nest_build is not None:
            row.update(nest_column(nest_build, duration_ms, threads))
        out[f"threads_{threads}"] = row
    out["load_average"] = os.getloadavg()
    return out


def measure_cuba(duration_ms: float) -> tuple[float, float, float]:
    net, mon, setup_s, run_s = neuro_cuba(duration_ms)
    return setup_s, run_s, mon.count() / 4000 / ((duration_ms + 0.1) / 1000)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=1000.0)
    ap.add_argument("--brian2-python", default=None)
    ap.add_argument("--no-brian2", action="store_true")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--nest", action="store_true", help="NEST side by side too (when importable)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:  # a fresh process end to end, as a user would run it
        import numba

        numba.set_num_threads(min(args.threads[0], numba.config.NUMBA_NUM_THREADS))
        setup_s, run_s, rate = measure_cuba(args.duration)
        print(json.dumps({"setup_s": setup_s, "run_s": run_s, "rate_hz": rate}))
        return
    py = None if args.no_brian2 else brian2_python(args.brian2_python)
    out = side_by_side("CUBA", BRIAN2_SCRIPT, measure_cuba, args.duration, args.threads, py, 4000,
                       build_cuba if args.nest else None)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
