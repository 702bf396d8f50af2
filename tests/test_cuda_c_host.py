"""The CUDA C printed by neuro.kernels.cuda_c, compiled for the host (g++, a shared library loaded with ctypes),
gives the numba CPU kernels' spikes exactly and their states and gradients within 1e-6, forward and backward, for
the built-in models in every reset mode and for Equations models of every method. The same source (the CuPy
backend's translation unit) compiles with nvcc for sm_80 and sm_90 and assembles with no fp64 and no spills."""

import ctypes
import functools
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from neuro import kernels
from neuro.kernels import cuda_c, gpu_check

sys.path.insert(0, os.path.dirname(__file__))
from equation_models import CASES, model  # noqa: E402

CXX = shutil.which("g++") or shutil.which("c++")
T, N = 40, 24
SURROGATE = "atan"


@functools.cache
def _dyn(name):
    if name in CASES:
        return model(name).dynamics
    from neuro.models import ALL_DYNAMICS

    return ALL_DYNAMICS[name]


@functools.cache
def _lib(name, tmp: str):
    dyn = _dyn(name)
    src = cuda_c.kernel_source(dyn, SURROGATE if dyn.trainable else None)
    assert "double" not in src
    path = os.path.join(tmp, f"{name}.cpp")
    with open(path, "w") as f:
        f.write(src)
    so = path[:-4] + ".so"
    # no FMA contraction and no fast math: numba's CPU kernels round every operation
    subprocess.run([CXX, "-O2", "-ffp-contract=off", "-fno-fast-math", "-shared", "-fPIC", path, "-o", so],
                   check=True, capture_output=True, text=True)
    lib = ctypes.CDLL(so)
    f, i64, ptr = ctypes.c_float, ctypes.c_longlong, ctypes.c_void_p
    lib.host_forward.argtypes = [i64, i64, ptr, ptr, ptr, ptr, f, ptr, ptr, ctypes.c_int]
    if dyn.trainable:
        lib.host_backward.argtypes = [i64, i64, ptr, ptr, ptr, ptr, ptr, f, f, ptr, ptr, ptr, ptr, ptr, ctypes.c_int]
    return lib


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
    if CXX is None:
        pytest.skip("no host C++ compiler (g++) found")
    return str(tmp_path_factory.mktemp("cuda_c_host"))


def _p(a):
    return a.ctypes.data_as(ctypes.c_void_p)


def _case(name, rng, opts):
    """Inputs that make every model fire, sit refractory and reset (``opts``: the built-in models' options)."""
    dyn = _dyn(name)
    if name in CASES:
        m = model(name)
        dt = {"izhikevich_euler": 0.5, "adex_euler": 0.1, "expeuler": 0.05}.get(name, 0.5)
        params = kernels.pack_params(dyn, m.kernel_params(dt), N)
        state = kernels.pack_state(dyn, m.initial_state(N), N)
        scale = {"lif_exact": 3.0, "lif_subtract": 2.5, "alif_exact": 3.0, "adex_euler": 2.0, "izhikevich_euler": 15.0,
                 "rk4_jump": 0.6, "expeuler": 3.0}[name]
        if name == "izhikevich_euler":
            state[0], state[1] = -65.0, -13.0
        if name == "adex_euler":
            state[0] = rng.uniform(-70.0, -45.0, N)
        if name == "expeuler":
            state[0] = rng.uniform(-70.0, -50.0, N)
            state[1] = 0.05
        x = (rng.uniform(0.0, 2.0, (T, N)) * scale).astype(np.float32)
        return x, state, params, kernels.pack_options(dyn, {}), dt
    if name in ("izhikevich", "adex"):
        from neuro.models import AdEx, Izhikevich

        m, dt, scale = (Izhikevich(), 0.5, 20.0) if name == "izhikevich" else (AdEx(tau_refrac=0.2), 0.1, 6.0)
        params = kernels.pack_params(dyn, m.kernel_params(dt), N)
        state = kernels.pack_state(dyn, m.initial_state(N), N)
        if name == "adex":
            state[dyn.state.index("v")] = rng.uniform(-60.0, -45.0, N)
        return (rng.uniform(0, scale, (T, N))).astype(np.float32), state, params, kernels.pack_options(dyn, {}), dt
    p = {k: rng.uniform(0.3, 1.0, N) for k in dyn.params}
    p["t_ref"] = rng.integers(0, 3, N)
    p["v_reset"] = rng.uniform(-0.3, 0.2, N)
    state = kernels.pack_state(dyn, {}, N)
    x = rng.normal(0.5, 0.8, (T, N)).astype(np.float32)
    return x, state, kernels.pack_params(dyn, p, N), kernels.pack_options(dyn, opts), 1.0


BUILTIN_OPTS = [(name, {"reset_mode": m, "reset_delay": d}) for name in ("lif", "cuba_lif")
                for m in ("subtract", "to_value", "none") for d in (0, 1)]
BUILTIN_OPTS += [("alif", {"reset_mode": m}) for m in ("subtract", "to_value", "none")]
ALL = [(name, {}) for name in sorted(CASES)] + BUILTIN_OPTS + [("izhikevich", {}), ("adex", {})]


def _id(case):
    return case[0] + "".join(f"-{v}" for v in case[1].values())


@pytest.mark.parametrize("case", ALL, ids=_id)
def test_forward_matches_numba(case, build_dir):
    name, opts = case
    dyn = _dyn(name)
    rng = np.random.default_rng(7)
    x, state, params, o, dt = _case(name, rng, opts)
    st_ref = state.copy()
    spk_ref, rec_ref = kernels.forward_packed(dyn, x, st_ref, params, o, dt, record=True, device="cpu")
    st = state.copy()
    spk = np.empty_like(x)
    rec = np.empty((T, len(dyn.state), N), np.float32)
    _lib(name, build_dir).host_forward(T, N, _p(x), _p(st), _p(params), _p(o), dt, _p(spk), _p(rec), 1)
    assert spk_ref.sum() > 0, "the case must make neurons fire"
    np.testing.assert_array_equal(spk, spk_ref)
    np.testing.assert_allclose(rec, rec_ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(st, st_ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", ALL, ids=_id)
def test_backward_matches_numba(case, build_dir):
    name, opts = case
    dyn = _dyn(name)
    if not dyn.trainable:
        pytest.skip(f"{name} has no backward step")
    rng = np.random.default_rng(11)
    x, init, params, o, dt = _case(name, rng, opts)
    _, rec = kernels.forward_packed(dyn, x, init.copy(), params, o, dt, record=True, device="cpu")
    g_spk = rng.normal(size=(T, N)).astype(np.float32)
    g_rec = (rng.normal(size=rec.shape) * 0.1).astype(np.float32)
    ref = kernels.backward_packed(dyn, SURROGATE, x, init, rec, params, o, g_spk, g_rec, dt, device="cpu")
    g_x = np.empty_like(x)
    g_p = np.zeros((len(dyn.params), N), np.float32)
    g_s = np.zeros((len(dyn.state), N), np.float32)
    from neuro import surrogate

    slope = np.float32(surrogate.get(SURROGATE).slope)
    _lib(name, build_dir).host_backward(T, N, _p(x), _p(init), _p(rec), _p(params), _p(o), dt, slope, _p(g_spk),
                                        _p(g_rec), _p(g_x), _p(g_p), _p(g_s), 1)
    for got, want in zip((g_x, g_p, g_s), ref, strict=True):
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * scale)


SOURCES = ["lif", "cuba_lif", "alif", "izhikevich", "adex"] + sorted(CASES)


@functools.cache
def _nvcc_reports(name, arch):
    dyn = _dyn(name)
    return gpu_check.check_cuda_c(name, cuda_c.kernel_source(dyn, SURROGATE if dyn.trainable else None), arch)


@pytest.mark.skipif(gpu_check.toolkit() is None, reason="no CUDA toolkit (nvcc, ptxas)")
@pytest.mark.parametrize("arch", gpu_check.ARCHS)
@pytest.mark.parametrize("name", SOURCES)
def test_cuda_source_compiles_clean(name, arch):
    reports = _nvcc_reports(name, arch)
    kinds = {r.kernel.split(":")[-1].split("_")[0] for r in reports}
    assert kinds == ({"forward", "backward"} if _dyn(name).trainable else {"forward"})
    assert len(reports) == len(cuda_c.INPUT_TYPES) * len(kinds)  # float32, float16, bfloat16 inputs
    for r in reports:
        assert r.fp64_arith == 0 and r.fp64_cvt == 0, f"{r.kernel} {r.arch}: {r.fp64_ops}"
        assert r.spill_stores == 0 and r.spill_loads == 0, f"{r.kernel} {r.arch}: spills"


@pytest.mark.skipif(gpu_check.toolkit() is None or gpu_check.nvrtc_reason() is not None,
                    reason=gpu_check.nvrtc_reason() or "no CUDA toolkit (ptxas)")
@pytest.mark.parametrize("arch", gpu_check.ARCHS)
def test_nvrtc_compiles_what_cupy_compiles(arch):
    """NVRTC, the compiler CuPy's RawModule runs at first use, accepts the source (no toolkit headers needed)."""
    for name in ("lif", "adex_euler"):
        dyn = _dyn(name)
        src = cuda_c.kernel_source(dyn, SURROGATE if dyn.trainable else None)
        for r in gpu_check.report_ptx(name, gpu_check.nvrtc_ptx(src, arch), arch):
            assert r.fp64_arith == 0 and r.spill_stores == 0, r
