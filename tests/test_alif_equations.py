"""ALIF written as equations (neuro.models.alif) and ``old(x)``, the start-of-step read it needs, against plain
float32 NumPy references written here (operations in the written order, so the comparison is bit for bit), torch
autograd for the backward step through ``old()``, and errors that name where ``old()`` may not go. (The ALIF
kernels against torch autograd: tests/test_kernels_backward.py; the hand-written step they replaced:
benchmarks/equation_models.py.)"""

import math

import numpy as np
import pytest
import torch
from torch_references import AtanSpike

from neuro import kernels
from neuro.models import ALIF, EquationError, Equations, alif

f32 = np.float32


def _numpy_alif(x, p, v, a, ref, mode):
    """ALIF in float32 NumPy: theta from the adaptation the step starts with, the membrane update, NEST-timed
    refractory clamp at v_reset, same-step reset, a decays and jumps by 1 at a spike."""
    T, n = x.shape
    spikes, rec = np.zeros((T, n), f32), np.zeros((T, 3, n), f32)
    for t in range(T):
        theta = p["threshold"] + p["adapt_gain"] * a
        v_int = p["v_leak"] + p["decay"] * (v - p["v_leak"]) + p["gain"] * x[t]
        frozen = ref > 0
        ref = np.where(frozen, ref - f32(1), ref)
        v_int = np.where(frozen, p["v_reset"], v_int)
        s = ~frozen & (v_int > theta)
        if mode == "subtract":
            v_int = np.where(s, v_int - theta, v_int)
        elif mode == "to_value":
            v_int = np.where(s, p["v_reset"], v_int)
        a_dec = p["adapt_decay"] * a
        a = np.where(s, a_dec + f32(1), a_dec)
        ref = np.where(s, p["t_ref"], ref)
        v = v_int
        spikes[t], rec[t] = s, (v, a, ref)
    return spikes, rec


@pytest.mark.parametrize("mode", ["subtract", "to_value", "none"])
def test_alif_kernels_equal_numpy_bit_for_bit(mode):
    rng = np.random.default_rng(7)
    T, n = 80, 40
    p = {"decay": rng.uniform(0.5, 1, n), "gain": rng.uniform(0.5, 1.5, n), "v_leak": rng.uniform(-0.2, 0.2, n),
         "threshold": rng.uniform(0.6, 1.2, n), "v_reset": rng.uniform(-0.3, 0.2, n),
         "adapt_decay": rng.uniform(0.3, 1, n), "adapt_gain": rng.uniform(0, 0.6, n),
         "t_ref": rng.integers(0, 4, n)}
    p = {k: v.astype(f32) for k, v in p.items()}
    x = rng.normal(0.5, 0.7, (T, n)).astype(f32)
    v0, a0 = rng.normal(0, 0.3, n).astype(f32), rng.uniform(0, 1, n).astype(f32)
    ref0 = rng.integers(0, 2, n).astype(f32)
    state = {"v": v0.copy(), "a": a0.copy(), "ref": ref0.copy()}
    spikes, rec = kernels.forward(alif.DYNAMICS, x, state, p, {"reset_mode": mode}, record=True)
    s_ref, rec_ref = _numpy_alif(x, p, v0, a0, ref0, mode)
    assert s_ref.sum() > 200 and (rec_ref[:, 2] > 0).sum() > 100  # spikes and refractory steps happen
    np.testing.assert_array_equal(spikes, s_ref)
    np.testing.assert_array_equal(rec, rec_ref)  # v, a and the counter, bit for bit


def test_alif_model_and_its_discrete_form():
    x = np.random.default_rng(2).uniform(1.0, 4.0, (400, 5)).astype(f32)
    cell = ALIF(tau_refrac=2.0, tau_adapt=50.0, adapt_gain=2.0)
    p = cell.kernel_params(0.1)
    np.testing.assert_allclose(p["adapt_decay"], math.exp(-0.1 / 50.0), rtol=1e-7)
    assert p["t_ref"].item() == 20.0
    res = cell.simulate(x, dt=0.1)
    n = x.shape[1]
    full = {k: np.broadcast_to(v, (n,)).astype(f32) for k, v in p.items()}
    s_ref, rec_ref = _numpy_alif(x, full, np.full(n, f32(-65.0)), np.zeros(n, f32), np.zeros(n, f32), "to_value")
    assert s_ref.sum() > 10
    np.testing.assert_array_equal(res.spikes, s_ref)
    np.testing.assert_array_equal(res.states["a"], rec_ref[:, 1])
    # the time-step form: per-step parameters given directly, dt plays no part
    d = ALIF.discrete(beta=0.8, threshold=0.9, adapt_decay=0.7, adapt_gain=0.3)
    assert type(d) is ALIF and d.integration == "discrete" and d.reset == "subtract"
    assert d.kernel_params(1.0)["decay"].item() == f32(0.8) and d.kernel_params(0.1)["gain"].item() == 1.0
    xd = np.random.default_rng(3).normal(0.4, 0.5, (100, 6)).astype(f32)
    pd = {k: np.broadcast_to(v, (6,)).astype(f32) for k, v in d.kernel_params(0.1).items()}
    s_ref, rec_ref = _numpy_alif(xd, pd, np.zeros(6, f32), np.zeros(6, f32), np.zeros(6, f32), "subtract")
    got = d.simulate(xd, dt=0.5)
    assert s_ref.sum() > 10
    np.testing.assert_array_equal(got.spikes, s_ref)
    np.testing.assert_array_equal(got.v, rec_ref[:, 0])
    with pytest.raises(ValueError, match=r"beta must lie in \[0, 1\]"):
        ALIF.discrete(beta=1.5)
    with pytest.raises(ValueError, match=r"adapt_decay must lie in \[0, 1\]"):
        ALIF.discrete(adapt_decay=-0.1)
    with pytest.raises(ValueError, match="integration='discrete' takes adapt_decay"):
        ALIF(integration="discrete", beta=0.9)
    with pytest.raises(ValueError, match="adapt_decay is the per-step factor of integration='discrete'"):
        ALIF(adapt_decay=0.9)


def test_alif_euler_form():
    """integration="euler": forward-Euler decays ``1 - dt/tau`` for the membrane and the adaptation, input gain
    ``R dt/tau_m``; the run equals the NumPy step with those numbers."""
    dt, tau_m, cm, tau_adapt = 0.5, 10.0, 2.0, 40.0
    cell = ALIF(tau_m=tau_m, cm=cm, tau_adapt=tau_adapt, adapt_gain=2.0, tau_refrac=1.0, integration="euler")
    p = cell.kernel_params(dt)
    np.testing.assert_allclose(p["decay"], 1 - dt / tau_m, rtol=1e-7)
    np.testing.assert_allclose(p["gain"], (tau_m / cm) * dt / tau_m, rtol=1e-7)
    np.testing.assert_allclose(p["adapt_decay"], 1 - dt / tau_adapt, rtol=1e-7)
    assert p["t_ref"].item() == 2.0
    x = np.random.default_rng(4).uniform(2.0, 8.0, (300, 4)).astype(f32)
    res = cell.simulate(x, dt=dt)
    full = {k: np.broadcast_to(v, (4,)).astype(f32) for k, v in p.items()}
    s_ref, rec_ref = _numpy_alif(x, full, np.full(4, f32(-65.0)), np.zeros(4, f32), np.zeros(4, f32), "to_value")
    assert s_ref.sum() > 10
    np.testing.assert_array_equal(res.spikes, s_ref)
    np.testing.assert_array_equal(res.v, rec_ref[:, 0])
    np.testing.assert_array_equal(res.states["a"], rec_ref[:, 1])
    with pytest.raises(ValueError, match="integration must be"):
        ALIF(integration="rk4")


def _user_model():
    """A continuous-time model reading old() in the threshold and in a reset value (forward Euler)."""
    return Equations("""dv/dt = (-v + I) / tau : volt
                        dw/dt = -w / tau_w : volt""",
                     threshold="v > v_th + old(w)", reset="v = k*old(w); w += b", method="euler",
                     tau=5.0, tau_w=20.0, v_th=1.0, k=0.5, b=0.4)


def test_old_in_threshold_and_reset_of_a_user_model_equals_numpy():
    rng = np.random.default_rng(5)
    x = rng.uniform(0.0, 3.0, (300, 7)).astype(f32)
    dt = f32(0.5)
    v, w = np.zeros(7, f32), np.zeros(7, f32)
    s_ref, v_ref, w_ref = (np.zeros((300, 7), f32) for _ in range(3))
    for t in range(300):
        v_new = v + dt * ((-v + x[t]) / f32(5.0))
        w_new = w + dt * (-w / f32(20.0))
        s = v_new > f32(1.0) + w  # the threshold the step started with
        v_new = np.where(s, f32(0.5) * w, v_new)
        w_new = np.where(s, w_new + f32(0.4), w_new)
        v, w = v_new, w_new
        s_ref[t], v_ref[t], w_ref[t] = s, v, w
    res = _user_model().simulate(x, dt=0.5)
    assert s_ref.sum() > 30
    np.testing.assert_array_equal(res.spikes, s_ref)
    np.testing.assert_allclose(res.v, v_ref, rtol=1e-6, atol=1e-6)  # Euler's sum printed from sympy's order
    np.testing.assert_allclose(res.states["w"], w_ref, rtol=1e-6, atol=1e-6)


def test_gradients_through_old_equal_torch_autograd():
    import neuro
    from neuro.nn.functional import neuron_scan

    model = _user_model()
    slope = 2.0

    torch.manual_seed(3)
    T, n, dt = 60, 5, 0.5
    x = (torch.rand(T, n) * 4.0).requires_grad_()
    names = model.dynamics.params
    values = {"tau": 5.0, "tau_w": 20.0, "v_th": 1.0, "k": 0.5, "b": 0.4}
    assert set(names) == set(values)
    p = torch.tensor([[values[k]] * n for k in names], requires_grad=True)
    w_s, w_v, w_w = torch.randn(T, n), torch.randn(T, n), torch.randn(T, n)
    spikes, states = neuron_scan(model.dynamics, x, p, torch.zeros(2, n), [], neuro.surrogate.atan(slope), dt=dt)
    ((spikes * w_s).sum() + (states[:, 0] * w_v).sum() + (states[:, 1] * w_w).sum()).backward()
    ps = {k: torch.tensor(v, requires_grad=True) for k, v in values.items()}
    x2 = x.detach().clone().requires_grad_()
    v, w = torch.zeros(n), torch.zeros(n)
    out, vs, ws = [], [], []
    for t in range(T):
        v_new = v + dt * ((-v + x2[t]) / ps["tau"])
        w_new = w + dt * (-w / ps["tau_w"])
        s = AtanSpike.apply(v_new - (ps["v_th"] + w), slope)
        v_new = v_new + s * (ps["k"] * w - v_new)
        w_new = w_new + s * ps["b"]
        v, w = v_new, w_new
        out.append(s), vs.append(v), ws.append(w)
    s_ref, v_ref, w_ref = torch.stack(out), torch.stack(vs), torch.stack(ws)
    ((s_ref * w_s).sum() + (v_ref * w_v).sum() + (w_ref * w_w).sum()).backward()
    assert torch.equal(spikes, s_ref) and spikes.sum() > 10
    assert (x.grad - x2.grad).abs().max() <= 1e-4 * x2.grad.abs().max()
    for k, ref in ps.items():
        g, g_ref = float(p.grad[names.index(k)].sum()), float(ref.grad)
        assert abs(g - g_ref) <= 1e-4 * max(1.0, abs(g_ref)), (k, g, g_ref)


@pytest.mark.parametrize("kwargs, match", [
    (dict(equations="v <- beta*v + I : volt\na <- 0.5*old(a) : 1"), r"old\(a\) may only be read in the threshold"),
    (dict(equations="v <- beta*v + I : volt\na <- 0.5*a : 1", refractory=2.0, refractory_clamp="v = old(a)"),
     r"old\(a\) may only be read in the threshold"),
    (dict(equations="dv/dt = -old(v) + I : volt", threshold="v > 1", reset="v = 0"), r"old\(v\) may only be read"),
    (dict(equations="v <- beta*v + I : volt", threshold="v > old(beta)", reset="v = 0"), r"'beta' is not one"),
    (dict(equations="v <- beta*v + I : volt", threshold="v > old(v, v)", reset="v = 0"),
     r"old\(\) takes one state variable"),
    (dict(equations="v <- beta*v + I : volt\na <- 0.5*a : 1", reset_delay=True),
     r"old\(\) in the threshold or reset needs the reset in the same step"),
    (dict(equations="v <- beta*v + I : volt\na <- 0.5*a : 1", options=("reset_mode", "reset_delay"),
          reset={"subtract": "v -= 1", "none": ""}), r"needs the reset in the same step"),
    (dict(equations="v <- beta*v + I : volt\nold <- 0.5*v : 1"), r"'old' is a reserved name"),
])
def test_old_where_it_cannot_be_read_is_named(kwargs, match):
    kw = dict(threshold="v > 1 + old(a)", reset="v = 0; a += 1", beta=0.9)
    kw.update(kwargs)
    eq = kw.pop("equations")
    with pytest.raises(EquationError, match=match):
        Equations(eq, **kw)
