"""Backward kernels equal torch autograd of the same recurrence written in torch in this file.

The torch reference uses a Heaviside spike whose backward is the surrogate derivative, detaches the
previous-step reset (snnTorch semantics) and lets the gradient flow through a same-step reset.
Checked: gradients w.r.t. the input, every per-neuron parameter and the initial state, for a loss on
spikes and on the recorded states.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuro import kernels, surrogate
from neuro.models import alif, cuba_lif, lif

SURROGATES = {
    "atan": lambda u, a: (a / 2) / (1 + (math.pi / 2 * a * u) ** 2),
    "fast_sigmoid": lambda u, k: 1 / (1 + k * u.abs()) ** 2,
    "sigmoid": lambda u, k: k * torch.sigmoid(k * u) * (1 - torch.sigmoid(k * u)),
    "triangle": lambda u, a: a * torch.clamp(1 - u.abs(), min=0),
    "straight_through": lambda u, a: torch.ones_like(u),
}


class Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, name, slope):
        ctx.save_for_backward(u)
        ctx.name, ctx.slope = name, slope
        return (u > 0).to(u.dtype)

    @staticmethod
    def backward(ctx, g):
        (u,) = ctx.saved_tensors
        return g * SURROGATES[ctx.name](u, ctx.slope), None, None


def _fire(v_int, ref, thr, vr, tref, mode, delay, sg):
    clamped = ref > 0
    s = Spike.apply(v_int - thr, *sg) * (~clamped).float()
    v_new = v_int
    if not delay:
        if mode == 0:
            v_new = v_int - s * thr
        elif mode == 1:
            v_new = (1 - s) * v_int + s * vr
        ref = torch.where((s.detach() > 0) & (tref > 0), tref, ref)
    v_new = torch.where(clamped, vr, v_new)
    ref = torch.where(clamped, ref - 1, ref)
    return v_new, ref, s


def _delayed(v, ref, thr, vr, tref, mode, delay):
    if not delay:
        return v, 0.0, ref
    fired = (v > thr).detach()
    sub = fired.float() * thr if mode == 0 else 0.0
    v_base = torch.where(fired & (mode == 1), vr, v)
    ref = torch.where(fired & (tref > 0), tref, ref)
    return v_base, sub, ref


def lif_torch(x, p, state0, mode, delay, sg):
    v, ref = state0["v"], state0["ref"]
    spikes, states = [], []
    for t in range(x.shape[0]):
        v_base, sub, ref = _delayed(v, ref, p["threshold"], p["v_reset"], p["t_ref"], mode, delay)
        v_int = p["v_leak"] + p["decay"] * (v_base - p["v_leak"]) + p["gain"] * x[t] - sub
        v, ref, s = _fire(v_int, ref, p["threshold"], p["v_reset"], p["t_ref"], mode, delay, sg)
        spikes.append(s)
        states.append(torch.stack([v, ref]))
    return torch.stack(spikes), torch.stack(states)


def cuba_torch(x, p, state0, mode, delay, sg):
    i, v, ref = state0["i"], state0["v"], state0["ref"]
    spikes, states = [], []
    for t in range(x.shape[0]):
        v_base, sub, ref = _delayed(v, ref, p["threshold"], p["v_reset"], p["t_ref"], mode, delay)
        i_n = p["syn_decay"] * i + p["syn_gain"] * x[t]
        v_int = p["v_leak"] + p["mem_decay"] * (v_base - p["v_leak"]) + p["i_old"] * i + p["i_new"] * i_n - sub
        i = i_n
        v, ref, s = _fire(v_int, ref, p["threshold"], p["v_reset"], p["t_ref"], mode, delay, sg)
        spikes.append(s)
        states.append(torch.stack([i, v, ref]))
    return torch.stack(spikes), torch.stack(states)


def alif_torch(x, p, state0, mode, delay, sg):
    v, a, ref = state0["v"], state0["a"], state0["ref"]
    spikes, states = [], []
    for t in range(x.shape[0]):
        theta = p["threshold"] + p["adapt_gain"] * a
        v_int = p["v_leak"] + p["decay"] * (v - p["v_leak"]) + p["gain"] * x[t]
        v, ref, s = _fire(v_int, ref, theta, p["v_reset"], p["t_ref"], mode, 0, sg)
        a = p["adapt_decay"] * a + s
        spikes.append(s)
        states.append(torch.stack([v, a, ref]))
    return torch.stack(spikes), torch.stack(states)


def _params(dyn, rng, n):
    ranges = {"decay": (0.5, 1), "mem_decay": (0.5, 1), "syn_decay": (0.3, 0.95), "gain": (0.5, 1.5),
              "syn_gain": (0.5, 1.5), "i_old": (0, 0.3), "i_new": (0.5, 1.2), "v_leak": (-0.2, 0.2),
              "threshold": (0.6, 1.2), "v_reset": (-0.3, 0.2), "adapt_decay": (0.5, 0.95), "adapt_gain": (0, 0.5)}
    p = {k: rng.uniform(*ranges[k], n).astype(np.float32) for k in dyn.params if k != "t_ref"}
    p["t_ref"] = rng.integers(0, 3, n).astype(np.float32)
    return p


CASES = [(lif.DYNAMICS, lif_torch), (cuba_lif.DYNAMICS, cuba_torch), (alif.DYNAMICS, alif_torch)]


STRUCTURES = [(case, mode, delay) for case in range(3) for mode in (0, 1, 2) for delay in (0, 1)
              if not (case == 2 and delay == 1)]  # ALIF resets in the same step only


@pytest.mark.parametrize("case,mode,delay", STRUCTURES)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sg_name=st.sampled_from(sorted(SURROGATES)), T=st.sampled_from([1, 5, 20]), n=st.sampled_from([1, 6, 33]),
       with_grec=st.booleans(), seed=st.integers(0, 2**31))
def test_backward_matches_torch_autograd(case, mode, delay, sg_name, T, n, with_grec, seed):
    dyn, torch_fn = CASES[case]
    rng = np.random.default_rng(seed)
    p = _params(dyn, rng, n)
    x = rng.normal(0.4, 0.7, (T, n)).astype(np.float32)
    init = {k: (rng.uniform(-0.5, 0.9, n) if k != "ref" else np.zeros(n)).astype(np.float32) for k in dyn.state}
    opts = {"reset_mode": mode, "reset_delay": delay}
    sg = surrogate.get(sg_name)
    sg_slope = sg.slope if sg_name != "atan" else 2.0

    state = {k: v.copy() for k, v in init.items()}
    spikes, rec = kernels.forward(dyn, x, state, p, opts, record=True)
    g_spk = rng.normal(size=(T, n)).astype(np.float32)
    g_rec = rng.normal(size=rec.shape).astype(np.float32) if with_grec else None
    if g_rec is not None:
        g_rec[:, dyn.state.index("ref")] = 0  # the refractory counter is not differentiable
    g_x, g_p, g_init = kernels.backward(dyn, sg, x, init, rec, p, opts, g_spk, g_rec)

    xt = torch.tensor(x, requires_grad=True)
    pt = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
    st0 = {k: torch.tensor(v, requires_grad=(k != "ref")) for k, v in init.items()}
    s_t, states_t = torch_fn(xt, pt, st0, mode, delay, (sg_name, sg_slope))
    np.testing.assert_array_equal(spikes, s_t.detach().numpy())
    np.testing.assert_allclose(rec, states_t.detach().numpy(), rtol=1e-5, atol=1e-5)
    loss = (s_t * torch.tensor(g_spk)).sum()
    if g_rec is not None:
        loss = loss + (states_t * torch.tensor(g_rec)).sum()
    loss.backward()
    tol = dict(rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(g_x, xt.grad.numpy(), **tol)
    for k in dyn.params:
        if k == "t_ref":
            continue
        ref_grad = pt[k].grad
        np.testing.assert_allclose(g_p[k], 0 if ref_grad is None else ref_grad.numpy(), **tol, err_msg=k)
    for k in dyn.state:
        if k != "ref":
            ref_grad = st0[k].grad
            np.testing.assert_allclose(g_init[k], 0 if ref_grad is None else ref_grad.numpy(), **tol, err_msg=k)


def test_custom_surrogate_defined_in_test_module_is_used():
    """A surrogate that cannot be imported by name (defined here) still compiles (uncached)."""
    import numba

    @numba.njit
    def box(u, width):
        return np.float32(1.0) if abs(u) < width else np.float32(0.0)

    sg = surrogate.custom(box, slope=0.5)
    x = np.array([[0.7], [0.7]], np.float32)
    p = {"decay": 1.0, "gain": 1.0, "v_leak": 0.0, "threshold": 1.0, "v_reset": 0.0, "t_ref": 0.0}
    opts = {"reset_mode": 2, "reset_delay": 0}
    init = {"v": np.zeros(1, np.float32), "ref": np.zeros(1, np.float32)}
    _, rec = kernels.forward(lif.DYNAMICS, x, {k: v.copy() for k, v in init.items()}, p, opts, record=True)
    g_spk = np.array([[1.0], [1.0]], np.float32)
    g_x, _, _ = kernels.backward(lif.DYNAMICS, sg, x, init, rec, p, opts, g_spk)
    # v = 0.7 then 1.4: |U| = 0.3 < 0.5 counts at t=0, |U| = 0.4 at t=1; no reset so dv1/dx0 = 1
    np.testing.assert_allclose(g_x[:, 0], [2.0, 1.0])


def test_untrainable_model_has_no_backward():
    import dataclasses

    from neuro.models import izhikevich

    # every model has a backward now (Izhikevich's is generated from its equations): a Dynamics without one
    untrainable = dataclasses.replace(izhikevich.DYNAMICS, name="izhikevich_no_backward", make_backward=None)
    with pytest.raises(ValueError, match="not trainable"):
        kernels.backward(untrainable, "atan", np.zeros((2, 1), np.float32), {"v": 0, "u": 0},
                         np.zeros((2, 2, 1), np.float32), {k: 0.1 for k in untrainable.params}, {},
                         np.zeros((2, 1), np.float32))
