"""The CuPy backend: backend choice (runs here), and on a CUDA device (marked ``gpu``, skipped without one) the
generated CUDA C kernels launched through CuPy against the numba CPU kernels, on CuPy arrays and zero-copy torch
CUDA tensors, with float32, float16 and bfloat16 inputs, and against numba.cuda."""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from neuro import kernels


def test_set_backend_and_environment():
    before = kernels.get_backend()
    try:
        kernels.set_backend("cupy")
        assert kernels.get_backend() == "cupy"
        kernels.set_backend("numba")
        assert kernels.get_backend() == "numba"
        with pytest.raises(ValueError, match="backend must be one of"):
            kernels.set_backend("opencl")
        with pytest.raises(TypeError, match="backend must be one of"):
            kernels.set_backend(1)
    finally:
        kernels.set_backend(before)
    code = "from neuro import kernels; print(kernels.get_backend())"
    env = {**os.environ, "NEURO_KERNEL_BACKEND": "cupy"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "cupy"


def test_cpu_arrays_ignore_the_gpu_backend():
    """NumPy input runs the CPU kernels whatever the GPU backend (CuPy is never imported for it)."""
    from neuro.models import lif

    x = np.full((5, 3), 0.6, np.float32)
    p = {"decay": 0.9, "gain": 1.0, "v_leak": 0.0, "threshold": 1.0, "v_reset": 0.0, "t_ref": 0.0}
    before = kernels.get_backend()
    try:
        kernels.set_backend("cupy")
        spikes, _ = kernels.forward(lif.DYNAMICS, x, {}, p, {"reset_mode": 0, "reset_delay": 1})
    finally:
        kernels.set_backend(before)
    assert spikes[:, 0].tolist() == [0.0, 1.0, 0.0, 1.0, 0.0]  # v = 0.6, 1.2 (spike), 1.2 - 1 + 0.6 ...


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed")
def test_missing_cupy_is_a_clear_error():
    from neuro.kernels import cupy_backend

    with pytest.raises(ImportError, match=r"neuro-snn\[gpu\]"):
        cupy_backend.as_cupy(np.zeros(3, np.float32))


# ---------------------------------------------------------------------------------------------------------------
# on a CUDA device


def _device_reason():
    if importlib.util.find_spec("cupy") is None:
        return "CuPy is not installed (pip install 'neuro-snn[gpu]')"
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "no CUDA device"
    except Exception as exc:  # noqa: BLE001 - any driver error means no usable device
        return f"no usable CUDA device ({type(exc).__name__}: {exc})"
    return None


_REASON = _device_reason()
needs_device = pytest.mark.skipif(_REASON is not None, reason=_REASON or "")

T, N = 30, 300
CASES = [("lif", {"reset_mode": m, "reset_delay": d}) for m in ("subtract", "to_value", "none") for d in (0, 1)]
CASES += [("cuba_lif", {"reset_mode": "subtract", "reset_delay": 1}), ("alif", {"reset_mode": "to_value"})]


def _case(name, opts, rng):
    from neuro.models import ALL_DYNAMICS

    dyn = ALL_DYNAMICS[name]
    p = {k: rng.uniform(0.3, 1.0, N) for k in dyn.params}
    p["t_ref"] = rng.integers(0, 3, N)
    x = rng.normal(0.5, 0.8, (T, N)).astype(np.float32)
    return dyn, x, kernels.pack_state(dyn, {}, N), kernels.pack_params(dyn, p, N), kernels.pack_options(dyn, opts)


@pytest.mark.gpu
@needs_device
@pytest.mark.parametrize("name,opts", CASES)
@pytest.mark.parametrize("frame", ["cupy", "torch"])
def test_forward_backward_match_cpu(name, opts, frame):
    import cupy

    from neuro.kernels import cupy_backend

    rng = np.random.default_rng(1)
    dyn, x, st, params, o = _case(name, opts, rng)
    st_cpu = st.copy()
    s_cpu, r_cpu = kernels.forward_packed(dyn, x, st_cpu, params, o, 1.0, record=True, device="cpu")
    g_spk = rng.normal(size=(T, N)).astype(np.float32)
    g_rec = rng.normal(size=r_cpu.shape).astype(np.float32)
    ref = kernels.backward_packed(dyn, "atan", x, st, r_cpu, params, o, g_spk, g_rec, 1.0, device="cpu")
    if frame == "cupy":
        dev = [cupy.asarray(a) for a in (x, st, params, o, g_spk, g_rec)]
        host = cupy.asnumpy
    else:
        import torch

        dev = [torch.as_tensor(a, device="cuda") for a in (x, st, params, o, g_spk, g_rec)]
        host = lambda a: a.cpu().numpy()  # noqa: E731
    xd, std, pd, od, gsd, grd = dev
    init = std.copy() if frame == "cupy" else std.clone()
    s_gpu, r_gpu = cupy_backend.forward_packed(dyn, xd, std, pd, od, 1.0, record=True)
    np.testing.assert_array_equal(host(s_gpu), s_cpu)
    np.testing.assert_allclose(host(r_gpu), r_cpu, rtol=1e-5, atol=1e-5)  # GPU contracts a*b+c into FMA
    np.testing.assert_allclose(host(std), st_cpu, rtol=1e-5, atol=1e-5)
    got = cupy_backend.backward_packed(dyn, "atan", xd, init, r_gpu, pd, od, gsd, grd, 1.0)
    for g, w in zip(got, ref, strict=True):
        np.testing.assert_allclose(host(g), w, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(w).max())))


@pytest.mark.gpu
@needs_device
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_inputs_zero_copy_torch(dtype):
    """Half-precision torch input: read in place (the kernel sees the tensor's memory), spikes in the input dtype,
    float32 state; equal to the float32 run on the same (rounded) input."""
    import torch

    from neuro.kernels import cupy_backend

    rng = np.random.default_rng(2)
    dyn, x, st, params, o = _case("lif", {"reset_mode": "subtract", "reset_delay": 1}, rng)
    xh = torch.as_tensor(x, device="cuda").to(getattr(torch, dtype))
    assert cupy_backend.as_cupy(xh).data.ptr == xh.data_ptr()  # zero copy
    st_h = torch.as_tensor(st, device="cuda")
    st_f = st_h.clone()
    s_h, _ = cupy_backend.forward_packed(dyn, xh, st_h, torch.as_tensor(params, device="cuda"),
                                         torch.as_tensor(o, device="cuda"), 1.0)
    s_f, _ = cupy_backend.forward_packed(dyn, xh.float(), st_f, torch.as_tensor(params, device="cuda"),
                                         torch.as_tensor(o, device="cuda"), 1.0)
    assert s_h.dtype == xh.dtype and st_h.dtype == torch.float32
    assert torch.equal(s_h.float(), s_f)
    assert torch.allclose(st_h, st_f)


@pytest.mark.gpu
@needs_device
def test_backend_switch_routes_cuda_arrays():
    """With set_backend('cupy'), kernels.forward_packed on CUDA arrays runs the CuPy kernels and agrees with
    numba.cuda."""
    import cupy

    rng = np.random.default_rng(3)
    dyn, x, st, params, o = _case("lif", {"reset_mode": "to_value", "reset_delay": 0}, rng)
    before = kernels.get_backend()
    out = {}
    try:
        for backend in ("numba", "cupy"):
            kernels.set_backend(backend)
            sd = cupy.asarray(st)
            spk, _ = kernels.forward_packed(dyn, cupy.asarray(x), sd, cupy.asarray(params), cupy.asarray(o), 1.0)
            out[backend] = (cupy.asnumpy(spk), cupy.asnumpy(sd))
    finally:
        kernels.set_backend(before)
    np.testing.assert_array_equal(out["numba"][0], out["cupy"][0])
    np.testing.assert_allclose(out["numba"][1], out["cupy"][1], rtol=1e-5, atol=1e-5)


def _sim_net(device):
    """LIF with a Poisson drive and a Poisson source, Izhikevich behind a conductance and a current receptor
    (weights on a 1/8 grid: the GPU's atomic sums are exact in any order)."""
    import neuro

    net = neuro.sim.Network(dt=0.1, seed=6, device=device)
    src = net.poisson(40, rate_hz=100.0)
    lif = net.population(500, neuro.models.LIF(tau_m=10.0, cm=1.0, v_rest=-65.0, v_thresh=-60.0, v_reset=-65.0,
                                                tau_refrac=1.0))
    lif.poisson_drive(rate_hz=2000.0, weight=0.25, tau_syn=2.0, seed=1)
    izh = net.population(50, neuro.models.Izhikevich())
    net.connect(src, lif, neuro.sim.FixedProbability(0.2, seed=1), weight=0.375, delay=0.2, tau_syn=2.0)
    net.connect(lif, izh, neuro.sim.FixedProbability(0.1, seed=2), weight=0.125, delay=0.5, tau_syn=5.0, e_rev=0.0)
    net.connect(lif, izh, neuro.sim.FixedProbability(0.1, seed=3), weight=0.5, delay=0.3, tau_syn=3.0)
    return net, net.spike_monitor(lif), net.spike_monitor(izh)


@pytest.mark.gpu
@needs_device
def test_simulator_population_update_on_cupy_equals_cpu():
    """``Network(device="cuda")`` with the CuPy backend (population updates from generated CUDA C, compiled without
    FMA contraction) gives the CPU loop's spikes."""
    before = kernels.get_backend()
    cpu = _sim_net("cpu")
    gpu = _sim_net("cuda")
    cpu[0].run(30.0)
    try:
        kernels.set_backend("cupy")
        gpu[0].run(30.0)
    finally:
        kernels.set_backend(before)
    assert cpu[1].count() > 50 and cpu[2].count() > 0
    for c, g in zip(cpu[1:], gpu[1:], strict=True):
        oc, og = np.lexsort((c.ids, c.times)), np.lexsort((g.ids, g.times))
        np.testing.assert_array_equal(g.ids[og], c.ids[oc])
        np.testing.assert_allclose(g.times[og], c.times[oc])
    for pc, pg in zip(cpu[0].populations, gpu[0].populations, strict=True):
        np.testing.assert_allclose(pg.state["v"], pc.state["v"], rtol=1e-6, atol=1e-6)
