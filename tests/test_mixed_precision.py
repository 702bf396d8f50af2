"""Mixed precision in the ``neuro.nn`` neuron layers: bfloat16 and float16 input (and ``torch.autocast``).

Checked against float32 runs of the same layers on the exactly upcast input: the state is float32 (final
state bitwise equal), the spikes come back in the input dtype and equal the float32 spikes, the input
gradient comes back in the input dtype and equals the float32 gradient rounded by torch's own ``.to``;
the kernel reads the input's bits directly (no float32 copy of x is made or saved). The bit decoding is
checked on every finite float16 and bfloat16 value against torch's conversion.
"""

import numpy as np
import pytest
import torch

import neuro
from neuro import kernels
from neuro.nn.functional import neuron_layer

T, B, M = 19, 4, 6
LOW = [torch.bfloat16, torch.float16]


def _layers():
    return {
        "LIF": lambda: neuro.nn.LIF(beta=torch.linspace(0.7, 0.95, M), threshold=0.8, learn_beta=True),
        "CubaLIF": lambda: neuro.nn.CubaLIF(alpha=0.6, beta=0.9, threshold=0.7, learn_threshold=True),
        "ALIF": lambda: neuro.nn.ALIF(beta=0.9, threshold=0.8, adapt_gain=0.3, learn_adaptation=True),
    }


def _inputs(dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(T, B, M, generator=g) * 1.4 - 0.2).to(dtype)
    w = torch.randn(T, B, M, generator=g).to(dtype)
    wv = torch.randn(T, B, M, generator=g).to(dtype)
    return x, w, wv


def _grads(layer, x, w, wv):
    x = x.clone().requires_grad_(True)
    spk, v, st = layer(x, return_v=True, return_state=True)
    ((spk * w).sum() + (v * wv).sum() + st["v"].sum()).backward()
    params = {k: p.grad.clone() for k, p in layer.named_parameters()}
    layer.zero_grad()
    return spk, v, st, x.grad, params


@pytest.mark.parametrize("dtype", LOW, ids=str)
@pytest.mark.parametrize("name", list(_layers()))
def test_low_precision_equals_float32_on_the_upcast_input(name, dtype):
    layer = _layers()[name]()
    x, w, wv = _inputs(dtype)
    spk, v, st, gx, gp = _grads(layer, x, w, wv)
    spk32, v32, st32, gx32, gp32 = _grads(layer, x.float(), w.float(), wv.float())
    assert spk.dtype == dtype and v.dtype == dtype and gx.dtype == dtype
    assert torch.equal(spk.float(), spk32) and spk32.sum() > 0
    assert torch.equal(v, v32.to(dtype))
    for k in st32:
        assert st[k].dtype == torch.float32 and torch.equal(st[k], st32[k]), k
    # the kernel computes the float32 gradient and rounds it to the input dtype as torch does
    assert torch.equal(gx, gx32.to(dtype))
    for k in gp32:
        torch.testing.assert_close(gp[k], gp32[k], rtol=1e-6, atol=1e-6, msg=k)


@pytest.mark.parametrize("dtype", LOW, ids=str)
def test_kernel_reads_the_input_bits_without_a_float32_copy(dtype, monkeypatch):
    seen = {}
    real = kernels.forward_lean

    def spy(dyn, x, *args, **kw):
        seen["x"] = x
        return real(dyn, x, *args, **kw)

    monkeypatch.setattr(kernels, "forward_lean", spy)
    x = _inputs(dtype)[0].requires_grad_(True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        neuro.nn.LIF(beta=0.9)(x)
    assert seen["x"].dtype == np.uint16
    assert np.shares_memory(seen["x"], x.detach().view(torch.uint16).numpy())
    # what backward keeps of the input is the input itself
    big = [t for t in saved if t.numel() == x.numel()]
    assert len(big) == 1 and big[0].dtype == dtype and big[0].data_ptr() == x.data_ptr()


@pytest.mark.parametrize("dtype", LOW, ids=str)
def test_every_finite_value_decodes_exactly(dtype):
    """LI with decay 0 and gain 1 returns v = x: the kernel's decoding of every finite bit pattern."""
    bits = torch.arange(0, 1 << 16, dtype=torch.int32).to(torch.uint16)
    x = bits.view(dtype)
    x = x[torch.isfinite(x)].reshape(1, -1)
    p = torch.tensor([[0.0], [1.0], [0.0], [float("inf")], [0.0], [0.0]])
    _, v, _ = neuron_layer(neuro.models.lif.DYNAMICS, x, p, torch.zeros(2, x.shape[1]), [2, 0], None, 1.0,
                           want_v=True)
    assert torch.equal(v, x.float())


@pytest.mark.parametrize("gain", [1e-6, 0.37, 3e4])
def test_float16_gradient_rounding_subnormal_normal_and_overflow(gain):
    """g_x = gain * (gradient reaching v): tiny gains give float16 subnormals, large ones overflow to inf;
    both as torch rounds the float32 gradient."""
    li = neuro.nn.LI(beta=0.8, gain=gain)
    g = torch.Generator().manual_seed(3)
    x = torch.rand(T, B, M, generator=g).half().requires_grad_(True)
    w = (torch.randn(T, B, M, generator=g) * 3).half()
    (li(x) * w).sum().backward()
    x32 = x.detach().float().requires_grad_(True)
    (li(x32) * w.float()).sum().backward()
    assert x.grad.dtype == torch.float16
    assert torch.equal(x.grad, x32.grad.half())


def test_autocast_bfloat16_network_trains():
    torch.manual_seed(0)
    fc1, lif, fc2 = torch.nn.Linear(12, M), neuro.nn.LIF(beta=0.9, threshold=0.3), torch.nn.Linear(M, 3)
    x = torch.rand(T, B, 12)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cur = neuro.nn.TimeDistributed(fc1)(x)
        spk = lif(cur)
        out = neuro.nn.TimeDistributed(fc2)(spk)
    assert cur.dtype == spk.dtype == out.dtype == torch.bfloat16
    assert torch.equal(spk.float(), lif(cur.detach().float())) and spk.sum() > 0
    out.float().sum().backward()
    assert fc1.weight.grad is not None and fc1.weight.grad.dtype == torch.float32
    assert torch.isfinite(fc1.weight.grad).all() and fc1.weight.grad.abs().sum() > 0
