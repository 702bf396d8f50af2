"""State monitors and STDP on the simulator's CUDA backend give the CPU backend's values (Numba's CUDA
simulator, own process: ``NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/test_sim_cuda_features.py``)."""

import os

import numpy as np
import pytest

pytestmark = pytest.mark.cudasim

from numba import cuda  # noqa: E402

if not (os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" or cuda.is_available()):
    pytest.skip("needs NUMBA_ENABLE_CUDASIM=1 (own process) or a GPU", allow_module_level=True)

import neuro  # noqa: E402


def _net(device):
    """Poisson inputs onto 6 LIF neurons through additive and multiplicative STDP, a recurrent delta
    projection, and state monitors on two populations (weights on a 1/8 grid: atomic sums are exact)."""
    net = neuro.sim.Network(dt=0.1, seed=4, device=device)
    src = net.poisson(16, rate_hz=300.0)
    pop = net.population(6, neuro.models.LIF(tau_m=10.0, cm=1.0, v_rest=-65.0, v_thresh=-60.0, v_reset=-65.0,
                                             tau_refrac=1.0))
    izh = net.population(3, neuro.models.Izhikevich())
    add = net.connect(src, pop, neuro.sim.FixedProbability(0.6, seed=1), weight=0.5, delay=0.2, tau_syn=2.0,
                      stdp=neuro.sim.STDP(0.125, 0.25, 10.0, 12.0, 0.0, 1.0))
    mult = net.connect(src, pop, neuro.sim.FixedProbability(0.3, seed=2), weight=0.25, delay=0.1, tau_syn=0.0,
                       stdp=neuro.sim.STDP(0.0625, 0.0625, 15.0, 15.0, 0.0, 2.0, multiplicative=True))
    net.connect(pop, izh, neuro.sim.AllToAll(), weight=4.0, delay=0.3, tau_syn=1.0)
    v = net.state_monitor(pop, "v", ids=[0, 2, 5], every=2)
    u = net.state_monitor(izh, "u")
    return net, (add, mult), (v, u), net.spike_monitor(pop)


def test_state_monitors_and_stdp_equal_cpu():
    cpu = _net("cpu")
    gpu = _net("cuda")
    for net, *_ in (cpu, gpu):
        net.run(6.0)
        net.run(4.0)  # continued runs carry traces and samples on
    assert cpu[3].count() > 3
    np.testing.assert_array_equal(gpu[3].ids, cpu[3].ids)
    np.testing.assert_allclose(gpu[3].times, cpu[3].times)
    for g, c in zip(gpu[1], cpu[1], strict=True):
        assert not np.array_equal(c.weights, np.full_like(c.weights, c.weights.flat[0]))  # learning happened
        np.testing.assert_allclose(g.weights, c.weights, rtol=1e-6)
    for g, c in zip(gpu[2], cpu[2], strict=True):
        assert c.values.shape[0] > 10
        np.testing.assert_array_equal(g.times, c.times)
        np.testing.assert_allclose(g.values, c.values, rtol=1e-6, atol=1e-6)
