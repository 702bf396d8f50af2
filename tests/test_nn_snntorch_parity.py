"""neuro.nn layers give snnTorch's spikes and gradients, with snnTorch run in the same test.

For random weights, betas (per layer and per neuron), thresholds, T, batch and layer sizes: spikes are
identical and the gradients w.r.t. the input, the Linear layer before the neurons and beta agree to a
relative error of 1e-5 of the largest gradient entry. A per-layer beta's gradient is a sum over neurons
that can cancel; it is checked against snnTorch run with the same beta given per neuron, relative to the
sum of the per-neuron magnitudes (both sides round in float32).
"""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neuro

snn = pytest.importorskip("snntorch")

SETTINGS = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _close(a, b, what, scale=None):
    a, b = a.detach().double(), b.detach().double()
    scale = max(float(b.abs().max()) if scale is None else scale, 1e-12)
    err = float((a - b).abs().max()) / scale
    assert err <= 1e-5, f"{what}: relative error {err:.2e}"


def _unroll(layer, cur):
    spk, mem = [], []
    m = layer.init_leaky() if hasattr(layer, "init_leaky") else None
    for t in range(cur.shape[0]):
        s, m = layer(cur[t], m)
        spk.append(s)
        mem.append(m)
    return torch.stack(spk), torch.stack(mem)


@SETTINGS
@given(T=st.sampled_from([1, 5, 25]), B=st.sampled_from([1, 3, 16]), n_in=st.sampled_from([4, 20]),
       n=st.sampled_from([1, 7, 64]), per_neuron=st.booleans(), reset=st.sampled_from(["subtract", "zero"]),
       seed=st.integers(0, 2**31))
def test_lif_matches_snntorch_leaky(T, B, n_in, n, per_neuron, reset, seed):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # the Linear layers' initial weights
    x = torch.rand(T, B, n_in, generator=g) * 2
    beta = torch.rand(n, generator=g) * 0.5 + 0.5 if per_neuron else torch.tensor(float(torch.rand(1, generator=g)))
    thr = float(torch.rand(1, generator=g)) + 0.5
    fc_a = torch.nn.Linear(n_in, n)
    fc_b = torch.nn.Linear(n_in, n)
    fc_b.load_state_dict(fc_a.state_dict())
    ours = neuro.nn.LIF(beta=beta, threshold=thr, reset=reset, learn_beta=True)
    theirs = snn.Leaky(beta=beta.expand(n).clone(), threshold=thr, reset_mechanism=reset, learn_beta=True)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()

    spk_a, v_a = ours(fc_a(xa), return_v=True)
    spk_b, v_b = _unroll(theirs, fc_b(xb))
    assert torch.equal(spk_a, spk_b)
    _close(v_a, v_b, "membrane")

    w = torch.randn(spk_a.shape, generator=g)
    wv = torch.randn(spk_a.shape, generator=g) * 0.1
    ((spk_a * w).sum() + (v_a * wv).sum()).backward()
    ((spk_b * w).sum() + (v_b * wv).sum()).backward()
    _close(xa.grad, xb.grad, "d/dx")
    _close(fc_a.weight.grad, fc_b.weight.grad, "d/dW")
    if per_neuron:
        _close(ours.beta.grad, theirs.beta.grad, "d/dbeta")
    else:
        _close(ours.beta.grad, theirs.beta.grad.sum(), "d/dbeta", scale=float(theirs.beta.grad.abs().sum()))


@SETTINGS
@given(T=st.sampled_from([1, 6, 20]), B=st.sampled_from([1, 4]), n=st.sampled_from([3, 32]), seed=st.integers(0, 2**31))
def test_cubalif_matches_snntorch_synaptic(T, B, n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(T, B, n, generator=g) * 1.5 - 0.2
    alpha = float(torch.rand(1, generator=g)) * 0.5 + 0.4
    beta = float(torch.rand(1, generator=g)) * 0.5 + 0.4
    ours = neuro.nn.CubaLIF(alpha=alpha, beta=beta, threshold=1.0, learn_beta=True, learn_alpha=True)
    theirs = snn.Synaptic(alpha=torch.full((n,), alpha), beta=torch.full((n,), beta), threshold=1.0, learn_beta=True,
                          learn_alpha=True)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    spk_a, v_a = ours(xa, return_v=True)
    syn, mem = theirs.init_synaptic()
    spk_b, v_b = [], []
    for t in range(T):
        s, syn, mem = theirs(xb[t], syn, mem)
        spk_b.append(s)
        v_b.append(mem)
    spk_b, v_b = torch.stack(spk_b), torch.stack(v_b)
    assert torch.equal(spk_a, spk_b)
    _close(v_a, v_b, "membrane")
    w = torch.randn(spk_a.shape, generator=g)
    ((spk_a * w).sum() + v_a.sum() * 0.1).backward()
    ((spk_b * w).sum() + v_b.sum() * 0.1).backward()
    _close(xa.grad, xb.grad, "d/dx")
    _close(ours.beta.grad, theirs.beta.grad.sum(), "d/dbeta", scale=float(theirs.beta.grad.abs().sum()))
    _close(ours.alpha.grad, theirs.alpha.grad.sum(), "d/dalpha", scale=float(theirs.alpha.grad.abs().sum()))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rlif_matches_snntorch_rleaky(seed):
    torch.manual_seed(seed)
    T, B, n = 12, 3, 10
    x = torch.rand(T, B, n) * 1.2
    ours = neuro.nn.RLIF(n, beta=0.8, threshold=1.0)
    theirs = snn.RLeaky(beta=0.8, threshold=1.0, linear_features=n, all_to_all=True)
    theirs.recurrent.load_state_dict(ours.recurrent.state_dict())
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    spk_a = ours(xa)
    spk, mem = theirs.init_rleaky()
    spk_b = []
    for t in range(T):
        spk, mem = theirs(xb[t], spk, mem)
        spk_b.append(spk)
    spk_b = torch.stack(spk_b)
    assert torch.equal(spk_a, spk_b)
    w = torch.randn(spk_a.shape)
    (spk_a * w).sum().backward()
    (spk_b * w).sum().backward()
    _close(xa.grad, xb.grad, "d/dx")
    _close(ours.recurrent.weight.grad, theirs.recurrent.weight.grad, "d/dW_rec")


@pytest.mark.parametrize("name,kwargs", [("fast_sigmoid", {"slope": 25}), ("sigmoid", {"slope": 25}),
                                         ("straight_through", {})])
def test_surrogates_match_snntorch(name, kwargs):
    torch.manual_seed(0)
    x = torch.rand(10, 4, 8) * 2
    theirs_sg = {"fast_sigmoid": snn.surrogate.fast_sigmoid, "sigmoid": snn.surrogate.sigmoid,
                 "straight_through": snn.surrogate.straight_through_estimator}[name](**kwargs)
    ours = neuro.nn.LIF(beta=0.9, surrogate=getattr(neuro.surrogate, name)(**kwargs))
    theirs = snn.Leaky(beta=0.9, spike_grad=theirs_sg)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours(xa).sum().backward()
    _unroll(theirs, xb)[0].sum().backward()
    _close(xa.grad, xb.grad, f"d/dx with {name}")


def test_learnable_threshold_gradient_matches_snntorch():
    torch.manual_seed(3)
    x = torch.rand(15, 2, 6) * 1.5
    ours = neuro.nn.LIF(beta=0.9, threshold=torch.full((6,), 0.8), learn_threshold=True)
    theirs = snn.Leaky(beta=0.9, threshold=torch.full((6,), 0.8), learn_threshold=True)
    w = torch.randn(15, 2, 6)
    (ours(x) * w).sum().backward()
    (_unroll(theirs, x)[0] * w).sum().backward()
    _close(ours.threshold.grad, theirs.threshold.grad, "d/dthreshold")
    assert np.isfinite(ours.threshold.grad.numpy()).all()
