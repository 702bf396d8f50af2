"""CUDA kernels agree with the CPU kernels (run in Numba's CUDA simulator).

Runs only with ``NUMBA_ENABLE_CUDASIM=1`` set before numba is imported (its own pytest process, see
``scripts/test.sh``) or on a machine with a GPU.
"""

import os

import numpy as np
import pytest

pytestmark = pytest.mark.cudasim

from numba import cuda  # noqa: E402

if not (os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" or cuda.is_available()):
    pytest.skip("needs NUMBA_ENABLE_CUDASIM=1 (own process) or a GPU", allow_module_level=True)

from neuro import kernels  # noqa: E402
from neuro.models import ALL_DYNAMICS, AdEx, Izhikevich  # noqa: E402

T, N = 6, 9


def _case(name, dyn, rng):
    if name == "izhikevich":
        p = Izhikevich().kernel_params(0.5)
        state = Izhikevich().initial_state(N)
        x = rng.uniform(0, 20, (T, N))
        return x, state, p, {}, 0.5
    if name == "adex":
        p = AdEx(tau_refrac=0.2).kernel_params(0.1)
        state = AdEx().initial_state(N)
        state["v"] = rng.uniform(-70, -42, N).astype(np.float32)
        return rng.uniform(0, 3, (T, N)), state, p, {}, 0.1
    p = {k: rng.uniform(0.3, 1.0, N) for k in dyn.params}
    p["t_ref"] = rng.integers(0, 3, N)
    p["v_reset"] = rng.uniform(-0.3, 0.2, N)
    state = {k: np.zeros(N, np.float32) for k in dyn.state}
    opts = {k: 0 for k in dyn.options}
    return rng.normal(0.5, 0.8, (T, N)), state, p, opts, 1.0


@pytest.mark.parametrize("name", sorted(ALL_DYNAMICS))
def test_forward_cuda_equals_cpu(name):
    dyn = ALL_DYNAMICS[name]
    rng = np.random.default_rng(3)
    x, state, p, opts, dt = _case(name, dyn, rng)
    x = np.ascontiguousarray(x, np.float32)
    params = kernels.pack_params(dyn, p, N)
    o = kernels.pack_options(dyn, opts)
    st_cpu = kernels.pack_state(dyn, state, N)
    st_gpu = cuda.to_device(st_cpu.copy())
    s_cpu, r_cpu = kernels.forward_packed(dyn, x, st_cpu, params, o, dt, record=True, device="cpu")
    s_gpu, r_gpu = kernels.forward_packed(dyn, cuda.to_device(x), st_gpu, cuda.to_device(params),
                                          cuda.to_device(o), dt, record=True)
    np.testing.assert_array_equal(s_cpu, s_gpu.copy_to_host())
    np.testing.assert_allclose(r_cpu, r_gpu.copy_to_host(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(st_cpu, st_gpu.copy_to_host(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", [n for n, d in sorted(ALL_DYNAMICS.items()) if d.trainable])
@pytest.mark.parametrize("delay", [0, 1])
def test_backward_cuda_equals_cpu(name, delay):
    dyn = ALL_DYNAMICS[name]
    rng = np.random.default_rng(5)
    x, state, p, opts, dt = _case(name, dyn, rng)
    if "reset_delay" in opts:
        opts["reset_delay"] = delay
    x = np.ascontiguousarray(x, np.float32)
    params = kernels.pack_params(dyn, p, N)
    o = kernels.pack_options(dyn, opts)
    init = kernels.pack_state(dyn, state, N)
    _, rec = kernels.forward_packed(dyn, x, init.copy(), params, o, dt, record=True, device="cpu")
    g_spk = rng.normal(size=(T, N)).astype(np.float32)
    g_rec = rng.normal(size=rec.shape).astype(np.float32)
    cpu_out = kernels.backward_packed(dyn, "fast_sigmoid", x, init, rec, params, o, g_spk, g_rec, dt, device="cpu")
    dev = [cuda.to_device(a) for a in (x, init, rec, params, o, g_spk, g_rec)]
    gpu_out = kernels.backward_packed(dyn, "fast_sigmoid", dev[0], dev[1], dev[2], dev[3], dev[4], dev[5], dev[6], dt)
    for a, b in zip(cpu_out, gpu_out, strict=True):
        np.testing.assert_allclose(a, b.copy_to_host(), rtol=1e-5, atol=1e-6)
