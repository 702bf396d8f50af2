"""State in and out of the ``neuro.nn`` neuron layers (``forward(x, state=..., return_state=True)``).

Checked: a sequence run in chunks, each chunk started from the state the previous one returned, gives
bitwise the spikes, membrane and final state of one call; gradients reaching a passed-in state and the
input equal torch autograd of the plain-torch recurrences of ``tests/test_kernels_backward.py``; detaching
the carried state (truncated BPTT) cuts exactly the gradient that crosses the chunk boundary.
"""

import pytest
import torch
from test_kernels_backward import alif_torch, cuba_torch, lif_torch

import neuro
from neuro.models import Equations

T, B, M = 23, 3, 7
CUTS = (0, 1, 9, 10, 23)  # chunks of 1, 8, 1 and 13 steps


def _layers():
    eq = Equations("dv/dt = (-v + I) / tau_m : volt", threshold="v > v_th", reset="v = 0", tau_m=5.0, v_th=0.5)
    return {
        "LIF": neuro.nn.LIF(beta=torch.linspace(0.6, 0.95, M), threshold=0.8),
        "LIF-zero-same-step": neuro.nn.LIF(beta=0.9, reset="zero", reset_delay=False),
        "CubaLIF": neuro.nn.CubaLIF(alpha=0.7, beta=0.85, threshold=0.9),
        "ALIF": neuro.nn.ALIF(beta=0.9, threshold=0.8, adapt_decay=0.9, adapt_gain=0.3),
        "IF": neuro.nn.IF(threshold=1.0, v_init=0.25),
        "LI": neuro.nn.LI(beta=0.8),
        "RLIF": neuro.nn.RLIF(M, beta=0.9),
        "Neuron(Equations)": neuro.nn.Neuron(eq, dt=1.0),
    }


def _x(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(T, B, M, generator=g) * 1.2 - 0.1


def _run(layer, x, state=None):
    """(output, membrane, final state) whatever the layer returns."""
    if isinstance(layer, neuro.nn.LI):
        v, st = layer(x, state=state, return_state=True)
        return v, v, st
    return layer(x, state=state, return_v=True, return_state=True)


@pytest.mark.parametrize("name", list(_layers()))
def test_chunks_with_state_carried_equal_one_call(name):
    torch.manual_seed(0)
    layer = _layers()[name]
    x = _x()
    out, v, final = _run(layer, x)
    outs, vs, state = [], [], None
    for a, b in zip(CUTS[:-1], CUTS[1:], strict=True):
        o, vv, state = _run(layer, x[a:b], state)
        outs.append(o)
        vs.append(vv)
    assert torch.equal(torch.cat(outs), out)
    assert torch.equal(torch.cat(vs), v)
    assert set(state) == set(final)
    for k in final:
        assert torch.equal(state[k], final[k]), k
    # the old call forms are unchanged
    if not isinstance(layer, neuro.nn.LI):
        assert torch.equal(layer(x), out)
        assert all(torch.equal(a, b) for a, b in zip(layer(x, return_v=True), (out, v), strict=True))


def test_state_names_and_shapes():
    lif = neuro.nn.LIF(beta=0.9)
    _, st = lif(torch.rand(4, 2, 3, 5), return_state=True)
    assert sorted(st) == sorted(lif.dynamics.state)
    assert all(t.shape == (2, 3, 5) and t.dtype == torch.float32 for t in st.values())


def test_bad_state_is_refused_by_name():
    lif = neuro.nn.LIF(beta=0.9)
    x = torch.rand(4, 2, 5)
    with pytest.raises(ValueError, match="unknown state"):
        lif(x, state={"w": torch.zeros(2, 5)})
    with pytest.raises(ValueError, match=r"state\['v'\].*broadcast"):
        lif(x, state={"v": torch.zeros(3, 5)})
    with pytest.raises(TypeError, match="state must be a dict"):
        lif(x, state=torch.zeros(2, 5))
    with pytest.raises(ValueError, match="NaN"):
        lif(x, state={"v": torch.full((2, 5), float("nan"))})


# layer, torch reference, reference parameters, reset mode, reset delay
def _reference_cases():
    return {
        "LIF": (neuro.nn.LIF(beta=torch.linspace(0.6, 0.95, M), threshold=0.8), lif_torch, 0, 1),
        "LIF-zero-same-step": (neuro.nn.LIF(beta=0.9, reset="zero", reset_delay=False), lif_torch, 1, 0),
        "IF": (neuro.nn.IF(threshold=1.0), lif_torch, 0, 0),
        "CubaLIF": (neuro.nn.CubaLIF(alpha=0.7, beta=0.85, threshold=0.9), cuba_torch, 0, 1),
        "ALIF": (neuro.nn.ALIF(beta=0.9, threshold=0.8, adapt_decay=0.9, adapt_gain=0.3), alif_torch, 0, 0),
    }


def _ref_params(layer):
    """The layer's kernel parameters, per neuron of the flattened [B * M] batch, as float32 tensors."""
    out = {}
    for k, v in layer.kernel_params().items():
        out[k] = torch.as_tensor(v, dtype=torch.float32).detach().expand(M).repeat(B).clone()
    return out


@pytest.mark.parametrize("name", list(_reference_cases()))
def test_gradient_into_a_passed_in_state_equals_torch_autograd(name):
    layer, ref_fn, mode, delay = _reference_cases()[name]
    names = layer.dynamics.state
    g = torch.Generator().manual_seed(1)
    x = _x(1)
    st0 = {k: (torch.rand(B, M, generator=g) * 0.9 if k != "ref" else torch.zeros(B, M)) for k in names}
    w_spk = torch.randn(T, B, M, generator=g)
    w_fin = {k: torch.randn(B, M, generator=g) for k in names if k != "ref"}

    xa = x.clone().requires_grad_(True)
    sa = {k: v.clone().requires_grad_(k != "ref") for k, v in st0.items()}
    spk, fin = layer(xa, state=sa, return_state=True)
    loss = (spk * w_spk).sum() + sum((fin[k] * w) .sum() for k, w in w_fin.items())
    loss.backward()

    xb = x.reshape(T, B * M).clone().requires_grad_(True)
    sb = {k: v.reshape(-1).clone().requires_grad_(k != "ref") for k, v in st0.items()}
    sg = (layer.surrogate.name.split("(")[0], layer.surrogate.slope)
    spk_b, states_b = ref_fn(xb, _ref_params(layer), sb, mode, delay, sg)
    final_b = states_b[-1]
    loss_b = (spk_b * w_spk.reshape(T, -1)).sum() + sum(
        (final_b[names.index(k)] * w.reshape(-1)).sum() for k, w in w_fin.items())
    loss_b.backward()

    assert torch.equal(spk.reshape(T, -1), spk_b.detach())
    tol = dict(rtol=2e-4, atol=2e-5)
    torch.testing.assert_close(xa.grad.reshape(T, -1), xb.grad, **tol)
    for k in names:
        if k != "ref":
            torch.testing.assert_close(sa[k].grad.reshape(-1), sb[k].grad, **tol, msg=k)


def test_carried_state_backpropagates_across_chunks_and_detach_truncates():
    """Without detach, chunked gradients equal the one-call gradients; with ``detach`` (truncated BPTT) the
    first chunk's input gets only the gradient of its own spikes, as if the second chunk did not exist."""
    lif = neuro.nn.LIF(beta=0.95, threshold=0.7)
    x = _x(2)
    w = torch.randn(T, B, M, generator=torch.Generator().manual_seed(2))
    xa = x.clone().requires_grad_(True)
    (lif(xa) * w).sum().backward()

    xb = x.clone().requires_grad_(True)
    s1, st = lif(xb[:10], return_state=True)
    s2 = lif(xb[10:], state=st)
    ((torch.cat([s1, s2]) * w).sum()).backward()
    torch.testing.assert_close(xb.grad, xa.grad, rtol=1e-6, atol=1e-7)

    xc = x.clone().requires_grad_(True)
    s1, st = lif(xc[:10], return_state=True)
    s2 = lif(xc[10:], state={k: v.detach() for k, v in st.items()})
    ((torch.cat([s1, s2]) * w).sum()).backward()
    xd = x[:10].clone().requires_grad_(True)
    (lif(xd) * w[:10]).sum().backward()
    torch.testing.assert_close(xc.grad[:10], xd.grad, rtol=0, atol=0)
    torch.testing.assert_close(xc.grad[10:], xa.grad[10:], rtol=1e-6, atol=1e-7)
