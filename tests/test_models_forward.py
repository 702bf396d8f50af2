"""Forward kernels of every model equal a plain NumPy reference (tests/reference_models.py).

Spikes must be identical and states equal to float32 rounding, over random parameters (one value per
neuron), shapes (N = 1, odd, across block boundaries), T = 1, and inputs that make every neuron spike
or none.
"""

import numpy as np
import pytest
import reference_models as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuro import kernels
from neuro.kernels import cpu
from neuro.models import adex, alif, cuba_lif, izhikevich, lif

SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
shapes = st.tuples(st.sampled_from([1, 2, 7, 40]), st.sampled_from([1, 3, 17, cpu.BLOCK + 5]))
regimes = st.sampled_from(["random", "all", "none"])


def _inputs(rng, T, n, regime, scale=1.0):
    if regime == "all":
        return np.full((T, n), 50.0 * scale, np.float32)
    if regime == "none":
        return np.full((T, n), -0.5 * scale, np.float32)
    return (rng.normal(0.3, 0.8, (T, n)) * scale).astype(np.float32)


def lif_params(rng, n):
    return {
        "decay": rng.uniform(0, 1, n).astype(np.float32),
        "gain": rng.uniform(0.5, 2, n).astype(np.float32),
        "v_leak": rng.uniform(-0.5, 0.5, n).astype(np.float32),
        "threshold": rng.uniform(0.5, 1.5, n).astype(np.float32),
        "v_reset": rng.uniform(-0.5, 0.3, n).astype(np.float32),
        "t_ref": rng.integers(0, 4, n).astype(np.float32),
    }


def _run(dyn, x, params, options, dt=1.0):
    n = x.shape[1]
    state = {k: np.zeros(n, np.float32) for k in dyn.state}
    spikes, rec = kernels.forward(dyn, x, state, params, options, dt=dt, record=True)
    return spikes, rec, state


@pytest.mark.parametrize("reset_mode", [0, 1, 2])
@pytest.mark.parametrize("reset_delay", [0, 1])
@SETTINGS
@given(shape=shapes, regime=regimes, seed=st.integers(0, 2**31))
def test_lif_matches_reference(shape, regime, reset_mode, reset_delay, seed):
    rng = np.random.default_rng(seed)
    T, n = shape
    p = lif_params(rng, n)
    x = _inputs(rng, T, n, regime)
    spikes, rec, final = _run(lif.DYNAMICS, x, p, {"reset_mode": reset_mode, "reset_delay": reset_delay})
    s_ref, v_ref = ref.lif(x, p, reset_mode, reset_delay)
    np.testing.assert_array_equal(spikes, s_ref)
    np.testing.assert_allclose(rec[:, 0], v_ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(final["v"], rec[-1, 0])
    if regime == "none":
        assert spikes.sum() == 0


@pytest.mark.parametrize("reset_mode", [0, 1, 2])
@pytest.mark.parametrize("reset_delay", [0, 1])
@SETTINGS
@given(shape=shapes, regime=regimes, seed=st.integers(0, 2**31))
def test_cuba_lif_matches_reference(shape, regime, reset_mode, reset_delay, seed):
    rng = np.random.default_rng(seed)
    T, n = shape
    p = lif_params(rng, n)
    p = {"syn_decay": rng.uniform(0, 1, n).astype(np.float32), "mem_decay": p.pop("decay"),
         "syn_gain": p.pop("gain"), "i_old": rng.uniform(0, 0.5, n).astype(np.float32),
         "i_new": rng.uniform(0.5, 1.5, n).astype(np.float32), **p}
    x = _inputs(rng, T, n, regime)
    spikes, rec, _ = _run(cuba_lif.DYNAMICS, x, p, {"reset_mode": reset_mode, "reset_delay": reset_delay})
    s_ref, v_ref, i_ref = ref.cuba_lif(x, p, reset_mode, reset_delay)
    np.testing.assert_array_equal(spikes, s_ref)
    np.testing.assert_allclose(rec[:, 1], v_ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(rec[:, 0], i_ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("reset_mode", [0, 1, 2])
@SETTINGS
@given(shape=shapes, regime=regimes, seed=st.integers(0, 2**31))
def test_alif_matches_reference(shape, regime, reset_mode, seed):
    rng = np.random.default_rng(seed)
    T, n = shape
    p = lif_params(rng, n)
    p["adapt_decay"] = rng.uniform(0, 1, n).astype(np.float32)
    p["adapt_gain"] = rng.uniform(0, 1, n).astype(np.float32)
    x = _inputs(rng, T, n, regime)
    spikes, rec, _ = _run(alif.DYNAMICS, x, p, {"reset_mode": reset_mode})
    s_ref, v_ref, a_ref = ref.alif(x, p, reset_mode)
    np.testing.assert_array_equal(spikes, s_ref)
    np.testing.assert_allclose(rec[:, 0], v_ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(rec[:, 1], a_ref, rtol=1e-6, atol=1e-6)


@SETTINGS
@given(shape=shapes, regime=regimes, seed=st.integers(0, 2**31), dt=st.sampled_from([0.1, 0.5, 1.0]))
def test_izhikevich_matches_reference(shape, regime, seed, dt):
    rng = np.random.default_rng(seed)
    T, n = shape
    p = {"a": rng.uniform(0.01, 0.1, n), "b": rng.uniform(0.2, 0.26, n), "c": rng.uniform(-65, -50, n),
         "d": rng.uniform(0.05, 8, n), "v_peak": np.full(n, 30.0)}
    p = {k: v.astype(np.float32) for k, v in p.items()}
    x = _inputs(rng, T, n, regime, scale=10.0)
    v0 = np.full(n, -65.0, np.float32)
    u0 = (p["b"] * v0).astype(np.float32)
    state = {"v": v0.copy(), "u": u0.copy()}
    spikes, rec = kernels.forward(izhikevich.DYNAMICS, x, state, p, {}, dt=dt, record=True)
    s_ref, v_ref = ref.izhikevich(x, p, dt, v0, u0)
    np.testing.assert_array_equal(spikes, s_ref)
    np.testing.assert_allclose(rec[:, 0], v_ref, rtol=1e-6, atol=1e-6)


@SETTINGS
@given(shape=shapes, regime=regimes, seed=st.integers(0, 2**31))
def test_adex_matches_reference(shape, regime, seed):
    rng = np.random.default_rng(seed)
    T, n = shape
    base = adex.AdEx(tau_refrac=0.3).kernel_params(dt=0.1)
    p = {k: np.repeat(v, n).astype(np.float32) for k, v in base.items()}
    p["b"] = rng.uniform(0.0, 0.2, n).astype(np.float32)
    x = _inputs(rng, T, n, regime, scale=3.0)
    v0 = rng.uniform(-72, -45, n).astype(np.float32)
    state = adex.AdEx().initial_state(n)  # v, w and the refractory counter
    state["v"] = v0.copy()
    spikes, rec = kernels.forward(adex.DYNAMICS, x, state, p, {}, dt=0.1, record=True)
    s_ref, v_ref = ref.adex(x, p, 0.1, v0)
    np.testing.assert_array_equal(spikes, s_ref)
    np.testing.assert_allclose(rec[:, 0], v_ref, rtol=1e-5, atol=1e-3)


def test_same_results_on_one_and_two_threads():
    import numba

    rng = np.random.default_rng(7)
    n = 4 * cpu.BLOCK + 3
    p = lif_params(rng, n)
    x = _inputs(rng, 30, n, "random")
    results = []
    before = numba.get_num_threads()
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            results.append(_run(lif.DYNAMICS, x, p, {"reset_mode": 0, "reset_delay": 1}))
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


@pytest.mark.parametrize("T", [0, 1])
def test_degenerate_lengths(T):
    x = np.ones((T, 4), np.float32)
    spikes, rec, _ = _run(lif.DYNAMICS, x, lif_params(np.random.default_rng(0), 4), {"reset_mode": 0, "reset_delay": 0})
    assert spikes.shape == (T, 4) and rec.shape == (T, 2, 4)
