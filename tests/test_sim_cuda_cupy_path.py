"""The CUDA engine's CuPy path (``set_backend("cupy")``: population updates from generated CUDA C) wired end to end,
without a GPU: in Numba's CUDA simulator (own process, ``NUMBA_ENABLE_CUDASIM=1``) with CuPy's compile and launch
stood in for by the same CUDA C compiled for the host (g++) and run on the simulator's arrays in place. The run
gives the CPU loop's spikes, so the engine passes every argument by name, the step and dt, and keeps the
population update in order with the numba.cuda sources and propagation."""

import os
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.cudasim

if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
    pytest.skip("needs NUMBA_ENABLE_CUDASIM=1 (own process); on a GPU the gpu-marked CuPy tests run instead",
                allow_module_level=True)

import neuro  # noqa: E402
from neuro import kernels  # noqa: E402
from neuro.kernels import cupy_backend  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from test_sim_cupy_host import CXX, _call, _compile  # noqa: E402


def _net(device):
    """LIF with a Poisson drive and a Poisson source onto it; Izhikevich behind a conductance and a current
    receptor (weights on a 1/8 grid: atomic sums are exact in any order)."""
    net = neuro.sim.Network(dt=0.1, seed=8, device=device)
    src = net.poisson(20, rate_hz=200.0)
    lif = net.population(24, neuro.models.LIF(tau_m=10.0, cm=1.0, v_rest=-65.0, v_thresh=-60.0, v_reset=-65.0,
                                               tau_refrac=1.0))
    lif.poisson_drive(rate_hz=3000.0, weight=0.25, tau_syn=2.0, seed=1)
    izh = net.population(6, neuro.models.Izhikevich())
    net.connect(src, lif, neuro.sim.FixedProbability(0.3, seed=1), weight=0.375, delay=0.2, tau_syn=2.0)
    net.connect(lif, izh, neuro.sim.AllToAll(), weight=0.125, delay=0.5, tau_syn=5.0, e_rev=0.0)
    net.connect(lif, izh, neuro.sim.AllToAll(), weight=1.0, delay=0.3, tau_syn=3.0)
    return net, net.spike_monitor(lif), net.spike_monitor(izh)


@pytest.mark.skipif(CXX is None, reason="no host C++ compiler (g++) found")
def test_cupy_path_gives_cpu_spikes(tmp_path, monkeypatch):
    launched = []

    def host_module(code, options=()):
        return _compile(code, str(tmp_path), f"sim{len(launched)}")

    def host_launch(lib, frag, values, n):
        launched.append(frag.name)
        # the simulator's device arrays wrap NumPy arrays: np.asarray gives their memory, written in place
        _call(lib, frag, {k: v if np.isscalar(v) else np.asarray(v) for k, v in values.items()})

    monkeypatch.setattr(cupy_backend, "source_module", host_module)
    monkeypatch.setattr(cupy_backend, "launch_fragment", host_launch)
    cpu, gpu = _net("cpu"), _net("cuda")
    cpu[0].run(15.0)
    before = kernels.get_backend()
    try:
        kernels.set_backend("cupy")
        gpu[0].run(15.0)
    finally:
        kernels.set_backend(before)
    assert set(launched) == {"update_p0", "update_p1"} and len(launched) == 2 * 150
    assert cpu[1].count() > 20 and cpu[2].count() > 0
    for c, g in zip(cpu[1:], gpu[1:], strict=True):
        oc, og = np.lexsort((c.ids, c.times)), np.lexsort((g.ids, g.times))
        np.testing.assert_array_equal(g.ids[og], c.ids[oc])
        np.testing.assert_allclose(g.times[og], c.times[oc])
    for pc, pg in zip(cpu[0].populations, gpu[0].populations, strict=True):
        np.testing.assert_allclose(pg.state["v"], pc.state["v"], rtol=1e-6, atol=1e-6)
