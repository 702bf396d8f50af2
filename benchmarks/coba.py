"""The Brette et al. 2007 COBA network (Vogels and Abbott 2005): 4000 LIF neurons (3200 E, 800 I), 2%
connectivity, exponential conductance synapses (E: 6 nS, tau 5 ms, reversal 0 mV; I: 67 nS, tau 10 ms,
reversal -80 mV), C = 200 pF, g_L = 10 nS (tau_m 20 ms), E_L = -60 mV, threshold -50 mV, reset -60 mV,
refractory 5 ms, dt 0.1 ms. Brian2's example starts from random conductances; here a 50 ms burst of external
input (200 sources at 100 Hz) kicks the network into its self-sustained state instead. An example of
neuro.sim's conductance synapses; prints the rate and the loop time.

    python benchmarks/coba.py [--duration 1000]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import neuro


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=1000.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    net = neuro.sim.Network(dt=0.1, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    cell = neuro.models.LIF(tau_m=20.0, cm=0.2, v_rest=-60.0, v_thresh=-50.0, v_reset=-60.0, tau_refrac=5.0)
    pop = net.population(4000, cell, initial={"v": -60.0 + 10.0 * rng.random(4000)})
    net.connect(pop, pop, neuro.sim.FromSubset(neuro.sim.FixedProbability(0.02), 0, 3200), weight=0.006,
                tau_syn=5.0, e_rev=0.0)
    net.connect(pop, pop, neuro.sim.FromSubset(neuro.sim.FixedProbability(0.02), 3200, 800), weight=0.067,
                tau_syn=10.0, e_rev=-80.0)
    kick = net.spike_source([np.sort(rng.uniform(0, 50.0, 5)) for _ in range(200)])
    net.connect(kick, pop, neuro.sim.FixedProbability(0.1), weight=0.006, tau_syn=5.0, e_rev=0.0)
    spikes = net.spike_monitor(pop)
    net.run(0.1)
    setup_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    net.run(args.duration)
    run_s = time.perf_counter() - t1
    rate = spikes.count() / 4000 / ((args.duration + 0.1) / 1000.0)
    print(f"COBA: {spikes.count()} spikes, {rate:.2f} Hz, setup {setup_s:.2f} s, loop {run_s:.3f} s")
    print(json.dumps({"rate_hz": rate, "run_s": run_s, "setup_s": setup_s}))


if __name__ == "__main__":
    main()
