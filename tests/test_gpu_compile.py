"""Every numba.cuda kernel the project generates compiles for sm_80 and sm_90 (numba.cuda.compile_ptx with the
toolkit's libNVVM, no GPU needed), assembles with ``ptxas -v``, and has no fp64 arithmetic and no spills.

fp64 arithmetic is counted in the PTX (see :mod:`neuro.kernels.gpu_check`: add/sub/mul/fma/div/... and setp with
an ``.f64`` type; conversions are counted apart). Skips where no CUDA toolkit is found, and in the CUDA simulator.
"""

import functools
import os
import sys

import pytest

from neuro.kernels import gpu_check

REASON = gpu_check.missing_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")

sys.path.insert(0, os.path.dirname(__file__))
from equation_models import CASES, model  # noqa: E402

SURROGATES = ("atan", "fast_sigmoid", "sigmoid", "triangle", "straight_through")


@functools.cache
def _builtin():
    from neuro.models import ALL_DYNAMICS

    return {name: dyn for name, dyn in ALL_DYNAMICS.items()}


@functools.cache
def _equation_dyn(name):
    return model(name).dynamics


@functools.cache
def _kernels(kind: str, name: str, surrogates: tuple[str, ...] = ("atan",)):
    dyn = _builtin()[name] if kind == "builtin" else _equation_dyn(name)
    return tuple(gpu_check.training_kernels([dyn], surrogates))


@functools.cache
def _check(kind: str, name: str, arch: str, surrogates: tuple[str, ...] = ("atan",), ptx_arch: str | None = None):
    """Reports of the model's kernels on ``arch``, compiled by numba for ``ptx_arch`` (default: ``arch``)."""
    out = []
    for kname, kern, sig in _kernels(kind, name, surrogates):
        ptx = _ptx(kname, kern, sig, ptx_arch or arch)
        out += gpu_check.report_ptx(kname, ptx, arch)
    return out


@functools.cache
def _ptx(kname, kern, sig, arch):
    return gpu_check.numba_ptx(kern, sig, arch)


def _assert_clean(reports):
    assert reports
    for r in reports:
        assert r.fp64_arith == 0, f"{r.kernel} on {r.arch}: fp64 arithmetic {r.fp64_ops}"
        assert r.spill_stores == 0 and r.spill_loads == 0, f"{r.kernel} on {r.arch}: spills {r}"
        assert 0 < r.registers <= 255


@pytest.mark.parametrize("arch", gpu_check.ARCHS)
@pytest.mark.parametrize("name", ["lif", "cuba_lif", "alif", "izhikevich", "adex"])
def test_builtin_model_kernels(name, arch):
    reports = _check("builtin", name, arch)
    _assert_clean(reports)
    if _builtin()[name].trainable:  # forward and backward, one kernel each: reset modes are read at run time
        assert {r.kernel.split("[")[0].split(".")[1] for r in reports} == {"forward", "backward"}


def test_every_surrogate_backward():
    _assert_clean(_check("builtin", "lif", "sm_80", SURROGATES))


@pytest.mark.parametrize("name", sorted(CASES))
def test_equation_model_kernels(name):
    # numba compiles once, for sm_80 (the NVVM step is what is slow); the PTX is assembled for both targets, as the
    # driver does when it runs sm_80 PTX on an sm_90 card. The built-in models above are compiled per target.
    for arch in gpu_check.ARCHS:
        _assert_clean(_check("equations", name, arch, ptx_arch="sm_80"))


def _sim_net(device: str):
    """Two populations (LIF with a Poisson drive and current receptors; AdEx with a conductance receptor), a
    Poisson source and three projections."""
    import numpy as np

    import neuro

    net = neuro.sim.Network(dt=0.1, seed=0, device=device)
    lif = neuro.models.LIF(tau_m=20.0, v_rest=-49.0, v_thresh=-50.0, v_reset=-60.0, tau_refrac=5.0)
    pop = net.population(64, lif, initial={"v": np.linspace(-60.0, -50.0, 64)})
    adex = net.population(16, neuro.models.AdEx())
    pop.poisson_drive(800.0, 0.1, tau_syn=5.0)
    src = net.poisson(32, 20.0)
    net.connect(pop, pop, neuro.sim.FixedProbability(0.1), weight=0.08, tau_syn=5.0, delay=0.5)
    net.connect(pop, adex, neuro.sim.FixedProbability(0.1), weight=0.1, tau_syn=5.0, e_rev=0.0)
    net.connect(src, pop, neuro.sim.FixedProbability(0.2), weight=0.1, tau_syn=10.0)
    net.spike_monitor(pop)
    return net


@functools.cache
def _sim_reports(arch: str):
    out = {}
    for name, kern, sig in gpu_check.sim_kernels(_sim_net("cuda")):
        out[name] = gpu_check.check_numba(f"sim.{name}", kern, sig, arch)
    return out


DRIVEN = "update_p0"  # the population with the Poisson drive


@pytest.mark.parametrize("arch", gpu_check.ARCHS)
def test_simulator_kernels_compile_without_spills(arch):
    reports = _sim_reports(arch)
    assert {k.split("_")[0] for k in reports} == {"update", "draw", "prop"}
    for rs in reports.values():
        for r in rs:
            assert r.spill_stores == 0 and r.spill_loads == 0, f"{r.kernel} on {r.arch}: spills {r}"


@pytest.mark.parametrize("arch", gpu_check.ARCHS)
def test_simulator_kernels_have_no_fp64(arch):
    """Every simulator kernel, the random draws included (neuro.sim.random is float32 arithmetic on uint64
    hashes): no fp64 arithmetic; the Poisson-source draw has no fp64 conversion either."""
    reports = _sim_reports(arch)
    assert DRIVEN in reports and any(k.startswith("draw") for k in reports)
    _assert_clean([r for rs in reports.values() for r in rs])
    for k, rs in reports.items():
        if k.startswith("draw"):
            assert all(r.fp64_cvt == 0 for r in rs), f"{k}: {rs[0].fp64_ops}"


@functools.cache
def _sim_c_reports(arch: str):
    """The CuPy backend's population updates of the same network (CUDA C by nvcc, then ptxas)."""
    return gpu_check.check_cuda_c("sim_c", _sim_c_source(), arch, options=_sim_c_options())


def _sim_c_source() -> str:
    from neuro.sim.cuda_engine import population_c_source
    from neuro.sim.runtime import Layout, Runtime

    return population_c_source(Layout(_sim_net("cpu"), Runtime(), 1, None))


def _sim_c_options() -> tuple[str, ...]:
    from neuro.sim.cuda_engine import C_OPTIONS

    return C_OPTIONS


@pytest.mark.parametrize("arch", gpu_check.ARCHS)
def test_simulator_population_update_cuda_c(arch):
    """The CUDA C population updates (LIF with the Poisson drive, AdEx with a conductance receptor) compile and
    assemble with no fp64 arithmetic or conversion and no spills."""
    reports = _sim_c_reports(arch)
    assert sorted(r.kernel.split(":")[-1] for r in reports) == ["update_p0", "update_p1"]
    for r in reports:
        assert r.fp64_arith == 0 and r.fp64_cvt == 0, f"{r.kernel} {r.arch}: {r.fp64_ops}"
        assert r.spill_stores == 0 and r.spill_loads == 0, f"{r.kernel} {r.arch}: spills"
        assert 0 < r.registers <= 255


@pytest.mark.skipif(gpu_check.nvrtc_reason() is not None, reason=gpu_check.nvrtc_reason() or "")
@pytest.mark.parametrize("arch", gpu_check.ARCHS)
def test_simulator_population_update_nvrtc(arch):
    """NVRTC, what CuPy's RawModule runs, compiles the population updates with the options the engine passes."""
    ptx = gpu_check.nvrtc_ptx(_sim_c_source(), arch, ("-std=c++17", *_sim_c_options()))
    for r in gpu_check.report_ptx("sim_c", ptx, arch):
        assert r.fp64_arith == 0 and r.spill_stores == 0 and r.spill_loads == 0, r


def test_fp64_counter_reads_ptx():
    ptx = """
        add.f64 %fd1, %fd2, %fd3;
        @%p1 fma.rn.f64 %fd4, %fd1, %fd2, %fd3;
        cvt.rn.f32.f64 %f1, %fd4;
        add.f32 %f2, %f1, %f1;
        mov.f64 %fd5, 0d3FF0000000000000;
        setp.gt.f64 %p2, %fd5, %fd1;
        st.global.f64 [%rd1], %fd5;
    """
    arith, cvt, ops = gpu_check.fp64_counts(ptx)
    assert (arith, cvt) == (3, 1)
    assert ops == {"add.f64": 1, "fma.rn.f64": 1, "setp.gt.f64": 1, "cvt.rn.f32.f64": 1}


def test_fp64_literal_is_caught():
    """A Python float literal in a float32 kernel promotes to float64: the check must see it."""
    from numba import cuda, types

    def kern(a):
        i = cuda.grid(1)
        a[i] = a[i] * 0.1

    [r] = gpu_check.check_numba("literal", kern, (types.Array(types.float32, 1, "C"),), "sm_80")
    assert r.fp64_arith >= 1 and r.fp64_cvt >= 2
