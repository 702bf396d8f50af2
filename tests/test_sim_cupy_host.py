"""The CuPy backend's population update for neuro.sim (CUDA C printed by neuro.kernels.cuda_c from the simulator's
update fragment and the models' step functions), compiled for the host by g++ and loaded with ctypes, gives the CPU
engine's population update: spikes identical and states within 1e-6, step by step on the same inputs, for LIF
(current and delta receptors, heterogeneous parameters, Poisson drive, constant and time-varying current) and the
Equations models Izhikevich and AdEx (conductance and current receptors, Poisson drive). The generator's C form
gives the numba generator's numbers bit for bit."""

import ctypes
import os
import shutil
import subprocess

import numba
import numpy as np
import pytest

import neuro
from neuro.kernels import cuda_c
from neuro.kernels.codegen import load
from neuro.sim import engine, random
from neuro.sim.cuda_engine import population_c_source, population_fragments
from neuro.sim.runtime import Layout, Runtime

CXX = shutil.which("g++") or shutil.which("c++")
pytestmark = pytest.mark.skipif(CXX is None, reason="no host C++ compiler (g++) found")
STEPS = 40
_CTYPES = {"float": ctypes.c_float, "long long": ctypes.c_longlong}


def _compile(src: str, tmp: str, name: str) -> ctypes.CDLL:
    assert "double" not in src
    path = os.path.join(tmp, f"{name}.cpp")
    with open(path, "w") as f:
        f.write(src)
    so = path[:-4] + ".so"
    # no FMA contraction and no fast math: numba's CPU loop rounds every operation
    subprocess.run([CXX, "-O2", "-ffp-contract=off", "-fno-fast-math", "-shared", "-fPIC", path, "-o", so],
                   check=True, capture_output=True, text=True)
    return ctypes.CDLL(so)


def _call(lib, frag: cuda_c.Fragment, values: dict) -> None:
    """``host_<name>`` of ``frag`` on NumPy ``values`` (arrays by pointer, in place)."""
    fn = getattr(lib, f"host_{frag.name}")
    params = frag.c_params()
    fn.argtypes = [ctypes.c_void_p if t.endswith("*") else _CTYPES[t] for t, _ in params]
    args = []
    for (t, _), v in zip(params, frag.arguments(values), strict=True):
        args.append(v.ctypes.data_as(ctypes.c_void_p) if t.endswith("*") else v.item())
    fn(*args)


def _lif_net():
    net = neuro.sim.Network(dt=0.1, seed=2)
    n = 300
    rng = np.random.default_rng(0)
    lif = neuro.models.LIF(tau_m=rng.uniform(8.0, 30.0, n), cm=1.0, v_rest=-65.0, v_thresh=-55.0, v_reset=-70.0,
                           tau_refrac=0.5)
    pop = net.population(n, lif, initial={"v": rng.uniform(-70.0, -54.0, n)})
    pop.poisson_drive(rate_hz=3000.0, weight=0.35, tau_syn=2.0, seed=4)
    pop.inject(rng.uniform(0.0, 0.4, n))
    pop.inject_series(rng.uniform(-0.3, 0.6, (STEPS // 2, n)), start_ms=0.5)
    src = net.spike_source([[1.0]])
    net.connect(src, pop, neuro.sim.AllToAll(), weight=0.3, delay=0.3, tau_syn=2.0)
    net.connect(src, pop, neuro.sim.AllToAll(), weight=0.5, delay=0.2, tau_syn=0.0)  # delta receptor
    return net


def _equations_net():
    net = neuro.sim.Network(dt=0.1, seed=3)
    n = 200
    rng = np.random.default_rng(1)
    izh = net.population(n, neuro.models.Izhikevich(a=rng.uniform(0.02, 0.1, n)),
                         initial={"v": rng.uniform(-70.0, 20.0, n)})
    adex = net.population(n, neuro.models.AdEx(), initial={"v": rng.uniform(-70.0, -45.0, n)})
    izh.poisson_drive(rate_hz=4000.0, weight=1.5, tau_syn=3.0, seed=1)
    adex.poisson_drive(rate_hz=4000.0, weight=0.4, tau_syn=2.0, seed=2)
    src = net.spike_source([[0.5]])
    for pop, w_g, w_i in ((izh, 0.05, 2.0), (adex, 0.01, 0.3)):
        net.connect(src, pop, neuro.sim.AllToAll(), weight=w_g, delay=0.3, tau_syn=5.0, e_rev=0.0)
        net.connect(src, pop, neuro.sim.AllToAll(), weight=w_g, delay=0.2, tau_syn=8.0, e_rev=-80.0)
        net.connect(src, pop, neuro.sim.AllToAll(), weight=w_i, delay=0.1, tau_syn=2.0)
    return net


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("sim_c_host"))


@pytest.mark.parametrize("make", [_lif_net, _equations_net], ids=["lif", "izhikevich+adex"])
def test_population_update_matches_cpu_engine(make, build_dir):
    net = make()
    layout = Layout(net, Runtime(), STEPS, parallel=False)
    cpu = load("sim_network", engine.source(layout))
    lib = _compile(population_c_source(layout), build_dir, make.__name__)
    frags = {f.name: f for f in population_fragments(layout)}
    values = layout.values
    rng = np.random.default_rng(5)
    for p in layout.pops:  # synaptic currents and ring buffers already holding input
        for rc in p.receptors:
            values[rc["isyn"]][:] = rng.uniform(0.0, 1.0, p.n)
            values[rc["ring"]][:] = rng.uniform(0.0, 0.5, values[rc["ring"]].shape)
    fired = {p.prefix: 0 for p in layout.pops}
    for t in range(STEPS):
        for p in layout.pops:
            mine = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in values.items()}
            getattr(cpu, f"update_{p.prefix}")(t, 0, p.n, net.dt, *[values[k] for k in p.names])
            _call(lib, frags[f"update_{p.prefix}"], {**mine, "t": t, "dt": net.dt})
            np.testing.assert_array_equal(mine[p.fired], values[p.fired], err_msg=f"spikes of {p.prefix} at {t}")
            for k in p.names:
                if isinstance(values[k], np.ndarray) and values[k].dtype == np.float32:
                    np.testing.assert_allclose(mine[k], values[k], rtol=1e-6, atol=1e-6, err_msg=f"{k} at {t}")
            fired[p.prefix] += int(values[p.fired].sum())
            # the next step starts from the CPU engine's values on both sides (same inputs every step)
    assert all(c > 20 for c in fired.values()), f"every population must fire: {fired}"
    for p in layout.pops:
        assert np.any(values[f"{p.prefix}_drive"] != 0), "the Poisson drive must deliver input"


@numba.njit(cache=False)
def _numba_draws(seed, n, cdf):
    u = np.empty(n, np.float32)
    k = np.empty(n, np.int64)
    for c in range(n):
        u[c] = random.uniform(seed, c)
        k[c] = random.poisson_table(seed, c, cdf)
    return u, k


def _draw_fragment():
    args = {"n": 0, "seed": 0, "cdf": np.ones(1, np.float32), "u": np.zeros(1, np.float32),
            "k": np.zeros(1, np.int64)}
    env = {"_uniform": cuda_c.CFunction("neuro_uniform", random.C_SOURCE),
           "_poisson_table": cuda_c.CFunction("neuro_poisson_table", random.C_SOURCE)}
    return cuda_c.Fragment("draws", args, ["u[i] = _uniform(seed, i)", "k[i] = _poisson_table(seed, i, cdf)"],
                           env, "n")


def test_c_generator_is_the_numba_generator_bit_for_bit(build_dir):
    frag = _draw_fragment()
    lib = _compile(cuda_c.fragment_source([frag]), build_dir, "draws")
    n = 1 << 16
    for seed in (0, 7, (1 << 40) + 12345, (1 << 62) - 1):
        _draws_equal(lib, frag, seed, n)


def _draws_equal(lib, frag, seed, n):
    for lam in (0.01, 2.5):
        cdf = random.poisson_cdf(lam)
        u_ref, k_ref = _numba_draws(seed, n, cdf)
        u, k = np.empty(n, np.float32), np.empty(n, np.int64)
        _call(lib, frag, {"n": n, "seed": seed, "cdf": cdf, "u": u, "k": k})
        np.testing.assert_array_equal(u.view(np.uint32), u_ref.view(np.uint32))
        np.testing.assert_array_equal(k, k_ref)
        assert k.max() > 0
