"""The simulator's CUDA backend gives the CPU backend's spikes (Numba's CUDA simulator, own process)."""

import os

import numpy as np
import pytest

pytestmark = pytest.mark.cudasim

from numba import cuda  # noqa: E402

if not (os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" or cuda.is_available()):
    pytest.skip("needs NUMBA_ENABLE_CUDASIM=1 (own process) or a GPU", allow_module_level=True)

import neuro  # noqa: E402


def _net(device):
    net = neuro.sim.Network(dt=0.1, seed=3, device=device)
    src = net.poisson(20, rate_hz=200.0)
    times = net.spike_source([[1.0, 2.5], [4.0]])
    pop = net.population(12, neuro.models.LIF(tau_m=10.0, cm=1.0, v_rest=-65.0, v_thresh=-60.0, v_reset=-65.0,
                                              tau_refrac=1.0))
    # weights on a 1/8 grid so sums into one buffer cell are exact in any order
    rng = np.random.default_rng(0)
    net.connect(src, pop, neuro.sim.FixedProbability(0.5, seed=1), weight=0.375, delay=0.2, tau_syn=2.0)
    net.connect(times, pop, neuro.sim.AllToAll(), weight=2.0, delay=0.1, tau_syn=0.0)
    pairs = np.stack(np.nonzero(rng.random((12, 12)) < 0.3), 1)
    net.connect(pop, pop, neuro.sim.FromList(pairs), weight=-0.25, delay=0.5, tau_syn=5.0, e_rev=None)
    pop.inject(0.125)
    return net, net.spike_monitor(pop), net.spike_monitor(src)


def test_cuda_backend_equals_cpu():
    cpu_net, cpu_pop, cpu_src = _net("cpu")
    gpu_net, gpu_pop, gpu_src = _net("cuda")
    cpu_net.run(20.0)
    gpu_net.run(20.0)
    assert cpu_pop.count() > 5
    np.testing.assert_array_equal(np.round(gpu_src.times, 6), np.round(cpu_src.times, 6))
    np.testing.assert_array_equal(gpu_src.ids, cpu_src.ids)
    order_c = np.lexsort((cpu_pop.ids, cpu_pop.times))
    order_g = np.lexsort((gpu_pop.ids, gpu_pop.times))
    np.testing.assert_array_equal(gpu_pop.ids[order_g], cpu_pop.ids[order_c])
    np.testing.assert_allclose(gpu_pop.times[order_g], cpu_pop.times[order_c])
    np.testing.assert_allclose(gpu_net.populations[0].state["v"], cpu_net.populations[0].state["v"], rtol=1e-6)
