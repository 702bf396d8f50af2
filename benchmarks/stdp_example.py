"""Pair-based STDP shaping weights (Song, Miller and Abbott 2000): 1000 Poisson inputs at 10 Hz drive one LIF
neuron through plastic excitatory synapses; inputs 0-199 fire in synchrony bursts, so their synapses win.
Prints the mean weight of the correlated and the uncorrelated group before and after, and saves a histogram.

    python benchmarks/stdp_example.py [--duration 20000] [--out stdp.png]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

import neuro


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=20000.0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    net = neuro.sim.Network(dt=0.1, seed=0)
    # correlated group: shared burst times plus independent spikes; others independent Poisson at 10 Hz
    bursts = np.sort(rng.uniform(0, args.duration, int(args.duration / 1000 * 5)))
    times = []
    for i in range(1000):
        own = np.sort(rng.uniform(0, args.duration, rng.poisson(10 * args.duration / 1000)))
        times.append(np.sort(np.concatenate([own, bursts + rng.normal(0, 1.0, len(bursts))]).clip(0)) if i < 200
                     else own)
    src = net.spike_source(times)
    post = net.population(1, neuro.models.LIF(tau_m=20.0, cm=1.0, v_rest=-70.0, v_thresh=-54.0, v_reset=-60.0))
    stdp = neuro.sim.STDP(a_plus=0.005 * 0.05, a_minus=0.00525 * 0.05, tau_plus=20.0, tau_minus=20.0, w_min=0.0,
                          w_max=0.05)
    proj = net.connect(src, post, neuro.sim.AllToAll(), weight=0.025, delay=0.1, tau_syn=5.0, stdp=stdp)
    before = proj.weights.copy()
    mon = net.spike_monitor(post)
    net.run(args.duration, progress=False)
    groups = proj.targets * 0 + np.repeat(np.arange(1000), np.diff(proj.indptr))
    corr, unc = proj.weights[groups < 200].mean(), proj.weights[groups >= 200].mean()
    print(f"post rate {mon.count() / (args.duration / 1000):.1f} Hz; mean weight correlated {before.mean():.4f} -> "
          f"{corr:.4f}, uncorrelated {before.mean():.4f} -> {unc:.4f} nA")
    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3))
        ax.hist([proj.weights[groups < 200], proj.weights[groups >= 200]], bins=30, label=["correlated", "independent"])
        ax.set_xlabel("weight [nA]")
        ax.legend()
        fig.savefig(args.out, dpi=110)
    print(json.dumps({"correlated_mean_weight": float(corr), "uncorrelated_mean_weight": float(unc)}))


if __name__ == "__main__":
    main()
