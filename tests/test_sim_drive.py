"""The simulator's vectorised Poisson drive (neuro.sim.engine: counts found as #{j : u > F(j)} in passes over a
block) gives, neuron by neuron, the count of the scalar table walk neuro.sim.random.poisson_table."""

import numpy as np
import pytest

import neuro
from neuro.sim.random import poisson_cdf, poisson_table


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("lam", [0.05, 2.0, 9.0])
def test_drive_counts_equal_the_table_walk(parallel, lam):
    n, dt, seed, w = 5003, 0.1, 17, 0.25  # several drive blocks and a ragged end
    net = neuro.sim.Network(dt=dt, seed=1, parallel=parallel)
    # no leak over one step from v = 0 and no threshold in reach: v after one step is proportional to the count
    cell = neuro.models.LIF(tau_m=20.0, cm=1.0, v_rest=0.0, v_thresh=1e6, v_reset=0.0, tau_refrac=0.0)
    pop = net.population(n, cell, initial={"v": np.zeros(n)})
    rate_hz = lam / dt * 1000.0
    pop.poisson_drive(rate_hz=rate_hz, weight=w, tau_syn=0.0, seed=seed)
    net.run(dt)
    v = np.asarray(pop.state["v"], np.float64)
    cdf = poisson_cdf(rate_hz * dt / 1000.0)
    k = np.array([poisson_table(seed, i, cdf) for i in range(n)])  # step 0: counter t * n + i = i
    assert k.max() >= 2 or lam < 1
    assert ((v == 0) == (k == 0)).all()
    unit = v[k == 1][0]
    np.testing.assert_allclose(v, k * unit, rtol=1e-6, atol=0)
