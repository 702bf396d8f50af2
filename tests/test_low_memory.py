"""Low-memory fused layers (neuro.nn.SpikingLinear / SpikingConv2d) against the default path: the same
torch layer under TimeDistributed followed by the same neuron module, with the same weights.

Inputs are multiples of 1/4 and weights multiples of 1/64 with few inputs per neuron, so every
pre-activation is exact in float32 whatever order a GEMM sums in: chunked and whole-sequence products agree
bitwise, and the spikes and states must be exactly equal. Gradients agree to float32 rounding (the chunked
layer sums dW over chunks)."""

import pytest
import torch
from torch import nn

import neuro
from neuro.nn import TimeDistributed as TD

T, B, IN, OUT = 30, 3, 12, 10

NEURONS = {
    "lif": lambda: neuro.nn.LIF(beta=0.9, threshold=0.8, learn_beta=True, learn_threshold=True),
    "cubalif": lambda: neuro.nn.CubaLIF(alpha=0.7, beta=0.85, threshold=0.9, learn_alpha=True, learn_beta=True,
                                        learn_threshold=True),
    "alif": lambda: neuro.nn.ALIF(beta=0.9, threshold=0.7, adapt_gain=0.3, learn_beta=True,
                                  learn_adaptation=True),
}


def _exact(t: torch.Tensor, step: float) -> torch.Tensor:
    return (t / step).round() * step


def _pair(make, chunk, **kw):
    """A SpikingLinear and the default-path Sequential with identical weights and neuron parameters."""
    torch.manual_seed(1)
    layer = neuro.nn.SpikingLinear(IN, OUT, make(), chunk=chunk, **kw)
    with torch.no_grad():
        layer.weight.copy_(_exact(layer.weight, 1 / 64))
        if layer.bias is not None:
            layer.bias.copy_(_exact(layer.bias + 0.2, 1 / 64))
    lin = nn.Linear(IN, OUT, bias=layer.bias is not None)
    lin.load_state_dict(layer.synapse.state_dict())
    return layer, lin, make()


def _x(t=T, seed=2):
    g = torch.Generator().manual_seed(seed)
    return _exact(torch.rand(t, B, IN, generator=g) * 0.75, 0.25)


def _grads(module_params, x):
    return [x.grad] + [p.grad for p in module_params]


@pytest.mark.parametrize("chunk", [1, 7, T, 64])
@pytest.mark.parametrize("kind", sorted(NEURONS))
def test_spikes_state_and_gradients_equal_default_path(kind, chunk):
    layer, lin, ref_neuron = _pair(NEURONS[kind], chunk)
    g = torch.Generator().manual_seed(3)
    w_out, w_state = torch.randn(T, B, OUT, generator=g), torch.randn(B, OUT, generator=g)
    xa, xb = _x().requires_grad_(), _x().requires_grad_()

    sa, st_a = layer(xa, return_state=True)
    sb, st_b = ref_neuron(TD(lin)(xb), return_state=True)
    assert 0.05 < sb.mean().item() < 0.6  # the case exercises both spiking and silent steps
    assert torch.equal(sa, sb)
    assert st_a.keys() == st_b.keys()
    for k in st_a:
        assert torch.equal(st_a[k], st_b[k]), k

    # a loss on the spikes and on the final state (its gradient enters the last chunk's backward)
    ((sa * w_out).sum() + (st_a["v"] * w_state).sum()).backward()
    ((sb * w_out).sum() + (st_b["v"] * w_state).sum()).backward()
    ga = _grads([layer.weight, layer.bias, *layer.neuron.parameters()], xa)
    gb = _grads([lin.weight, lin.bias, *ref_neuron.parameters()], xb)
    assert len(ga) == len(gb) > 3
    for a, b in zip(ga, gb, strict=True):
        assert a is not None and b is not None
        scale = b.abs().max().item() + 1.0
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5 * scale)


def test_chunked_calls_with_state_equal_one_call():
    layer, _, _ = _pair(NEURONS["cubalif"], 4)
    x = _x(T)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    whole, st_whole = layer(xa, return_state=True)
    parts, st = [], None
    for s, e in ((0, 5), (5, 6), (6, 19), (19, T)):  # uneven pieces, one of a single step
        out, st = layer(xb[s:e], state=st, return_state=True)
        parts.append(out)
    assert torch.equal(torch.cat(parts), whole)
    for k in st_whole:
        assert torch.equal(st[k], st_whole[k]), k
    # the state carried without detaching backpropagates through the pieces like one call
    w = torch.randn(T, B, OUT, generator=torch.Generator().manual_seed(5))
    (whole * w).sum().backward()
    grads_whole = [xa.grad.clone(), layer.weight.grad.clone(), layer.neuron.alpha.grad.clone()]
    layer.zero_grad()
    (torch.cat(parts) * w).sum().backward()
    for a, b in zip([xb.grad, layer.weight.grad, layer.neuron.alpha.grad], grads_whole, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5 * (b.abs().max().item() + 1.0))
    # inference without autograd: the same spikes
    with torch.no_grad():
        assert torch.equal(layer(x), whole.detach())


def test_conv2d_equals_default_path():
    torch.manual_seed(4)
    make = lambda: neuro.nn.LIF(beta=torch.full((4, 1, 1), 0.9), threshold=0.6, learn_beta=True)  # noqa: E731
    layer = neuro.nn.SpikingConv2d(2, 4, 3, make(), padding=1, stride=2, chunk=3)
    with torch.no_grad():
        layer.weight.copy_(_exact(layer.weight, 1 / 64))
        layer.bias.copy_(_exact(layer.bias + 0.1, 1 / 64))
    conv = nn.Conv2d(2, 4, 3, padding=1, stride=2)
    conv.load_state_dict(layer.synapse.state_dict())
    ref_neuron = make()
    x = _exact(torch.rand(10, 2, 2, 7, 7, generator=torch.Generator().manual_seed(6)), 0.25)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    sa, sb = layer(xa), ref_neuron(TD(conv)(xb))
    assert sa.shape == (10, 2, 4, 4, 4) and 0.05 < sb.mean().item() < 0.6
    assert torch.equal(sa, sb)
    w = torch.randn(sa.shape, generator=torch.Generator().manual_seed(7))
    (sa * w).sum().backward()
    (sb * w).sum().backward()
    for a, b in ((xa.grad, xb.grad), (layer.weight.grad, conv.weight.grad), (layer.bias.grad, conv.bias.grad),
                 (layer.neuron.beta.grad, ref_neuron.beta.grad)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5 * (b.abs().max().item() + 1.0))


def test_no_bias_frozen_weight_and_unfused_fallback():
    layer, lin, ref_neuron = _pair(NEURONS["lif"], 8, bias=False)
    layer.weight.requires_grad_(False)
    x = _x()
    out = layer(x)
    assert torch.equal(out, ref_neuron(TD(lin)(x)))
    out.sum().backward()  # only the neuron's parameters need gradients
    assert layer.weight.grad is None and layer.neuron.beta.grad is not None
    # the composition other devices run gives the same spikes and state
    fused, st = layer(x, return_state=True)
    plain, st2 = layer._unfused(x, None, True)
    assert torch.equal(fused, plain) and all(torch.equal(st[k], st2[k]) for k in st)


def test_bfloat16_input_gives_float32_spikes_on_the_upcast_input():
    layer, _, _ = _pair(NEURONS["lif"], 8)
    x = _x().to(torch.bfloat16).requires_grad_()
    out = layer(x)
    assert out.dtype == torch.bfloat16
    assert torch.equal(out.float(), layer(x.detach().float()))
    out.float().sum().backward()
    assert x.grad.dtype == torch.bfloat16 and x.grad.shape == x.shape


def test_bad_input_errors():
    layer = neuro.nn.SpikingLinear(IN, OUT, neuro.nn.LIF(beta=0.9), chunk=4)
    with pytest.raises(ValueError, match=r"time-major \[T, B, \.\.\.\]"):
        layer(torch.rand(B, IN))
    with pytest.raises(ValueError, match=rf"expects input \[T, B, {IN}\]"):
        layer(torch.rand(T, B, IN + 1))
    with pytest.raises(TypeError, match="float tensor"):
        layer(torch.ones(T, B, IN, dtype=torch.int64))
    bad = torch.rand(T, B, IN)
    bad[3, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        layer(bad)
    with pytest.raises(ValueError, match=r"does not broadcast to \[B, \.\.\.\]"):
        layer(torch.rand(T, B, IN), state={"v": torch.zeros(B + 1, OUT)})
    with pytest.raises(ValueError, match="unknown state variables"):
        layer(torch.rand(T, B, IN), state={"u": torch.zeros(B, OUT)})
    with pytest.raises(TypeError, match="neuron module instance"):
        neuro.nn.SpikingLinear(IN, OUT, neuro.nn.LIF)
    with pytest.raises(ValueError, match="own forward"):
        neuro.nn.SpikingLinear(IN, OUT, neuro.nn.LI(0.9))
    with pytest.raises(ValueError, match="chunk"):
        neuro.nn.SpikingLinear(IN, OUT, neuro.nn.LIF(beta=0.9), chunk=0)
    with pytest.raises(ValueError, match=r"beta -> decay of shape \(3,\) does not broadcast"):
        neuro.nn.SpikingLinear(IN, OUT, neuro.nn.LIF(beta=torch.full((3,), 0.9)))(torch.rand(T, B, IN))
    with pytest.raises(TypeError, match="float32"):
        neuro.nn.SpikingLinear(IN, OUT, neuro.nn.LIF(beta=0.9)).double()(torch.rand(T, B, IN))
    conv = neuro.nn.SpikingConv2d(2, 4, 5, neuro.nn.LIF(beta=0.9))
    with pytest.raises(ValueError, match=r"expects input \[T, B, 2, H, W\]"):
        conv(torch.rand(T, B, 3, 8, 8))
    with pytest.raises(ValueError, match="do not fit the layer"):
        conv(torch.rand(T, B, 2, 3, 3))
    x = torch.rand(T, B, IN)
    before = x.clone()
    layer(x, return_state=True)
    assert torch.equal(x, before)  # nothing the user passed is modified
