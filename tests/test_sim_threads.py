"""The same seed gives the same spikes on 1 and 2 threads, and the parallel loop (population blocks over
threads, each thread a fixed range of postsynaptic neurons) gives the serial loop's spikes, exactly.
Each thread count runs in its own process (``NUMBA_NUM_THREADS`` is read once, at numba's start)."""

import hashlib
import json
import os
import subprocess
import sys

import numba
import numpy as np
import pytest

import neuro

SCRIPT = r"""
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[2])
from test_sim_threads import build
net, mon = build(parallel={"1": True, "0": False}[sys.argv[1]])
net.run(20.0)
net.run(10.0)
print(json.dumps({"threads": __import__("numba").get_num_threads(), "t": mon.times.tolist(), "i": mon.ids.tolist(),
                  "v": np.asarray(net.populations[0].state["v"], float).tolist()}))
"""


def build(parallel: bool):
    """Three blocks of neurons (above the 8192-neuron block), Poisson drive, current, delta and
    conductance receptors, two delays, a Poisson source; weights not on any exact grid."""
    net = neuro.sim.Network(dt=0.1, seed=5, parallel=parallel)
    n = 17_000
    cell = neuro.models.LIF(tau_m=20.0, cm=1.0, v_rest=0.0, v_thresh=20.0, v_reset=10.0, tau_refrac=2.0)
    pop = net.population(n, cell, initial={"v": np.random.default_rng(0).uniform(0, 20, n)})
    pop.poisson_drive(rate_hz=20_000.0, weight=0.11, tau_syn=0.0, seed=3)
    src = net.poisson(300, rate_hz=30.0)
    net.connect(pop, pop, neuro.sim.FromSubset(neuro.sim.FixedInDegree(40, seed=1), 0, 13_600), weight=0.1037,
                delay=1.5, tau_syn=0.0)
    net.connect(pop, pop, neuro.sim.FromSubset(neuro.sim.FixedInDegree(10, seed=2), 13_600, 3400),
                weight=-0.5113, delay=0.7, tau_syn=0.0)
    net.connect(pop, pop, neuro.sim.FixedInDegree(5, seed=4), weight=0.0137, delay=0.3, tau_syn=3.0)
    net.connect(src, pop, neuro.sim.FixedProbability(0.01, seed=6), weight=0.0021, delay=0.2, tau_syn=5.0,
                e_rev=60.0)
    return net, net.spike_monitor(pop)


def _run(threads: int, parallel: bool) -> dict:
    env = {**os.environ, "NUMBA_NUM_THREADS": str(threads)}
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run([sys.executable, "-c", SCRIPT, "1" if parallel else "0", here], env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
def test_same_spikes_on_one_and_two_threads_and_serial():
    one, two, serial = _run(1, True), _run(2, True), _run(2, False)
    assert (one["threads"], two["threads"]) == (1, 2)
    assert len(one["t"]) > 1000  # the network is active: the sums in the buffers matter
    for other in (two, serial):
        assert other["t"] == one["t"] and other["i"] == one["i"]
        digest = [hashlib.sha1(np.asarray(r["v"]).tobytes()).hexdigest() for r in (one, other)]
        assert digest[0] == digest[1]  # membranes bit for bit, not just the spikes
