"""The Brette et al. 2007 COBA network (Vogels and Abbott 2005): 4000 LIF neurons (3200 E, 800 I), 2%
connectivity, exponential conductance synapses (E: 6 nS, tau 5 ms, reversal 0 mV; I: 67 nS, tau 10 ms,
reversal -80 mV), C = 200 pF, g_L = 10 nS (tau_m 20 ms), E_L = -60 mV, threshold -50 mV, reset -60 mV,
refractory 5 ms, dt 0.1 ms, 1 s.

A 50 ms burst of external input (200 sources, 5 spikes each, onto 10% of the network) kicks it into its
self-sustained state; Brian2 gets the same network and kick (its own random numbers; conductances in
units of g_L, ``exponential_euler``). Side by side in one run, per thread count: our loop, setup,
fresh-process end to end and rate, and Brian2 cpp_standalone's (its own venv, the same OpenMP threads).

    python benchmarks/coba.py [--duration 1000] [--threads 1 2] [--brian2-python PY]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cuba import BRIAN2_HEAD, BRIAN2_TAIL, brian2_python, side_by_side  # noqa: E402

BRIAN2_SCRIPT = BRIAN2_HEAD + r"""
import numpy as np
taum, taue, taui, Vt, Vr, El, Ee, Ei = 20*ms, 5*ms, 10*ms, -50*mV, -60*mV, -60*mV, 0*mV, -80*mV
eqs = '''dv/dt = (ge*(Ee-v) + gi*(Ei-v) - (v-El))/taum : volt (unless refractory)
dge/dt = -ge/taue : 1
dgi/dt = -gi/taui : 1'''
t0 = time.perf_counter()
P = NeuronGroup(4000, eqs, threshold='v>Vt', reset='v = Vr', refractory=5*ms, method='exponential_euler')
P.v = 'Vr + rand() * (Vt - Vr)'
Ce = Synapses(P[:3200], P, on_pre='ge += 6/10.'); Ce.connect(p=0.02)
Ci = Synapses(P[3200:], P, on_pre='gi += 67/10.'); Ci.connect(p=0.02)
# the same kick as ours: 200 sources, 5 spikes each in the first 50 ms, 10% onto the network
rng = np.random.default_rng(0)
steps = [np.unique(np.round(rng.uniform(0, 50.0, 5) / 0.1).astype(int)) for _ in range(200)]
K = SpikeGeneratorGroup(200, np.concatenate([np.full(len(s), i) for i, s in enumerate(steps)]),
                        np.concatenate(steps) * 0.1 * ms)
Ck = Synapses(K, P, on_pre='ge += 6/10.'); Ck.connect(p=0.1)
""" + BRIAN2_TAIL


def build_coba(seed: int = 0):
    """The COBA network (not yet run) and a spike monitor on its 4000 neurons."""
    import neuro

    net = neuro.sim.Network(dt=0.1, seed=seed)
    rng = np.random.default_rng(seed)
    cell = neuro.models.LIF(tau_m=20.0, cm=0.2, v_rest=-60.0, v_thresh=-50.0, v_reset=-60.0, tau_refrac=5.0)
    pop = net.population(4000, cell, initial={"v": -60.0 + 10.0 * rng.random(4000)})
    net.connect(pop, pop, neuro.sim.FromSubset(neuro.sim.FixedProbability(0.02), 0, 3200), weight=0.006,
                tau_syn=5.0, e_rev=0.0)
    net.connect(pop, pop, neuro.sim.FromSubset(neuro.sim.FixedProbability(0.02), 3200, 800), weight=0.067,
                tau_syn=10.0, e_rev=-80.0)
    kick = net.spike_source([np.sort(rng.uniform(0, 50.0, 5)) for _ in range(200)])
    net.connect(kick, pop, neuro.sim.FixedProbability(0.1), weight=0.006, tau_syn=5.0, e_rev=0.0)
    return net, net.spike_monitor(pop)


def measure_coba(duration_ms: float) -> tuple[float, float, float]:
    t0 = time.perf_counter()
    net, spikes = build_coba()
    net.run(0.1)  # compile or load the loop
    setup_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    net.run(duration_ms)
    run_s = time.perf_counter() - t1
    return setup_s, run_s, spikes.count() / 4000 / ((duration_ms + 0.1) / 1000.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=1000.0)
    ap.add_argument("--brian2-python", default=None)
    ap.add_argument("--no-brian2", action="store_true")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        import numba

        numba.set_num_threads(min(args.threads[0], numba.config.NUMBA_NUM_THREADS))
        setup_s, run_s, rate = measure_coba(args.duration)
        print(json.dumps({"setup_s": setup_s, "run_s": run_s, "rate_hz": rate}))
        return
    py = None if args.no_brian2 else brian2_python(args.brian2_python)
    print(json.dumps(side_by_side("COBA", BRIAN2_SCRIPT, measure_coba, args.duration, args.threads, py, 4000)))


if __name__ == "__main__":
    main()
