"""neuro.nn.TimeDistributed in chunks gives the outputs and gradients of one call over all time steps.

The reference is the wrapped torch layer applied to the whole ``[T * B, ...]`` input in one call (torch's own
forward and backward); chunking changes only how many images each call sees.
"""

import pytest
import torch
from torch import nn

from neuro.nn import TimeDistributed


def _grads(layer, x, chunk, weight):
    x = x.detach().clone().requires_grad_()
    layer.zero_grad()
    y = TimeDistributed(layer, chunk)(x)
    # x is used twice: the chunked path's input gradient must add to the other use's, not replace it
    ((y * weight).sum() + (x * 0.5).sum()).backward()
    return y.detach(), x.grad, [p.grad.clone() for p in layer.parameters()]


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 8])
@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_chunks_equal_one_call(kind, chunk):
    torch.manual_seed(0)
    T, B = 7, 3
    if kind == "linear":
        layer, x = nn.Linear(12, 5), torch.randn(T, B, 12)
    else:
        layer, x = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.MaxPool2d(2)), torch.randn(T, B, 2, 6, 6)
    with torch.no_grad():
        out_shape = layer(x.reshape(T * B, *x.shape[2:])).shape
    weight = torch.randn(T, B, *out_shape[1:])
    y_ref, gx_ref, gw_ref = _grads(layer, x, None, weight)
    y, gx, gw = _grads(layer, x, chunk, weight)
    torch.testing.assert_close(y, y_ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(gx, gx_ref, rtol=1e-6, atol=1e-6)
    for g, r in zip(gw, gw_ref, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-5)
    assert not torch.equal(gx, torch.full_like(gx, 0.5))  # the layer's own gradient reached x


def test_unused_chunk_gets_zero_gradient():
    """A time step whose output is not used contributes a zero input gradient (split's backward fills it)."""
    torch.manual_seed(0)
    layer, x = nn.Linear(4, 3), torch.randn(5, 2, 4, requires_grad=True)
    y = TimeDistributed(layer, 2)(x)
    y[:2].sum().backward()
    assert torch.equal(x.grad[2:], torch.zeros_like(x.grad[2:]))
    torch.testing.assert_close(x.grad[:2], layer.weight.sum(0).expand(2, 2, 4))


@pytest.mark.parametrize("chunk", [None, 2])
def test_no_time_steps(chunk):
    """An empty time axis gives an empty output of the layer's shape, over spikes (kernel bits path) too."""
    import neuro

    layer = nn.Linear(8, 3)
    x = torch.rand(0, 4, 8, requires_grad=True)
    for inp in (x, neuro.nn.LIF(beta=0.9)(x)):
        y = TimeDistributed(layer, chunk)(inp)
        assert y.shape == (0, 4, 3)
        y.sum().backward()
        assert x.grad.shape == x.shape and not x.grad.any()
