"""neuro.nn.pooling: a max pool run by TimeDistributed keeps its argmax indices for backward, not its input.

Reference: torch's own nn.MaxPool2d on the same input (outputs and gradients bit-equal), and torch's
saved-tensor hooks for what each keeps.
"""

import contextlib

import numba
import pytest
import torch
from torch import nn

import neuro
from neuro.nn import TimeDistributed, pooling

# the first five go through neuro.kernels.max_pool for float32/float64 (overlapping windows among them: the
# gradient accumulates), the rest (padding, dilation, ceil mode) through torch's kernels with the indices kept
KERNEL_POOLS = [dict(kernel_size=2), dict(kernel_size=3, stride=2), dict(kernel_size=(2, 3), stride=(1, 2)),
                dict(kernel_size=3, stride=1), dict(kernel_size=4, stride=3)]
POOLS = KERNEL_POOLS + [dict(kernel_size=3, stride=1, padding=1), dict(kernel_size=2, dilation=2),
                        dict(kernel_size=3, stride=2, ceil_mode=True), dict(kernel_size=(2, 3), stride=(1, 2),
                                                                             padding=(1, 0))]


def _pair_run(pool_kwargs, x, g, lean: bool):
    x = x.clone().requires_grad_(True)
    m = nn.MaxPool2d(**pool_kwargs)
    y = pooling.call(m, x) if lean else m(x)
    y.backward(g)
    return y.detach(), x.grad


@pytest.mark.parametrize("kw", POOLS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_same_values_and_gradients_as_torch(kw, dtype):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 9, 10, generator=gen).to(dtype)
    x[0, 0, :2, :2] = 1.5  # ties: the first maximum wins
    x[1, 2, 3, 4] = float("nan")  # NaN propagates
    x[1, 3, 0, 0] = x[1, 3, 1, 1] = float("nan")  # two in a window: torch's index is the later one
    x[2, 1] = float("-inf")
    y_ref = nn.MaxPool2d(**kw)(x)
    g = torch.randn(y_ref.shape, generator=gen).to(dtype)
    y, gx = _pair_run(kw, x, g, lean=True)
    y_t, gx_t = _pair_run(kw, x, g, lean=False)
    assert torch.equal(y.isnan(), y_t.isnan()) and torch.equal(y.nan_to_num(), y_t.nan_to_num())
    assert torch.equal(gx, gx_t)


@pytest.mark.parametrize("kw", KERNEL_POOLS)
def test_kernel_path_keeps_one_byte_per_output(kw, monkeypatch):
    """float32 pools without padding or dilation: neuro.kernels.max_pool, uint8 window offsets saved, the same
    bits on one thread and two, a gradient arriving as a stride-0 tensor handled."""
    calls = []
    real = pooling._kernels.forward
    monkeypatch.setattr(pooling._kernels, "forward", lambda *a: calls.append(1) or real(*a))
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(4, 3, 11, 10, generator=gen, requires_grad=True)
    m = nn.MaxPool2d(**kw)
    results = []
    for threads in (1, 2):
        with numba_threads(threads):
            y, saved = _saved_tensors(pooling.call, m, x)
            gx = torch.autograd.grad(y.sum(), x)[0]  # dL/dY: ones, expanded
            results.append((y, gx))
        assert [t.dtype for t in saved] == [torch.uint8] and saved[0].shape == y.shape
    assert calls == [1, 1]
    y_ref = m(x)
    gx_ref = torch.autograd.grad(y_ref.sum(), x)[0]
    for y, gx in results:
        assert torch.equal(y, y_ref) and torch.equal(gx, gx_ref)


@contextlib.contextmanager
def numba_threads(n):
    before = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _saved_tensors(fn, *args):
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        out = fn(*args)
    return out, saved


def _saved_shapes(fn, *args):
    """``fn(*args)`` and the shapes of the tensors autograd saved for backward while it ran."""
    shapes = []

    def pack(t):
        shapes.append(tuple(t.shape))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(*args)
    return out, shapes


@pytest.mark.parametrize("spikes", [False, True])
def test_time_distributed_conv_pool_keeps_no_conv_output(spikes):
    torch.manual_seed(0)
    T, B = 4, 3
    conv, pool = nn.Conv2d(2, 5, 3), nn.MaxPool2d(2)
    conv_out = (T * B, 5, 8, 8)  # the conv output of a one-chunk run
    x = torch.rand(T, B, 2, 10, 10)
    if spikes:  # marked spikes: the conv keeps them packed (spike_inputs), the pool its indices
        x = neuro.nn.LIF(beta=0.5, threshold=0.5)(x * 2)
        assert neuro.nn.spike_inputs.is_spikes(x)
    td = TimeDistributed(nn.Sequential(conv, pool), chunk=3)
    y, saved = _saved_shapes(td, x)
    assert conv_out not in saved and (3 * B, 5, 8, 8) not in saved and (1 * B, 5, 8, 8) not in saved
    # torch's own Sequential over the same chunks keeps each chunk's conv output for the pool
    seq = nn.Sequential(conv, pool)
    y_ref, saved_ref = _saved_shapes(lambda: torch.cat([seq(p.reshape(-1, 2, 10, 10)).reshape(len(p), B, 5, 4, 4)
                                                        for p in torch.split(x, 3)]))
    assert (3 * B, 5, 8, 8) in saved_ref and (1 * B, 5, 8, 8) in saved_ref
    g = torch.randn(y.shape)
    grads = torch.autograd.grad(y, [conv.weight, conv.bias], g)
    grads_ref = torch.autograd.grad(y_ref, [conv.weight, conv.bias], g)
    assert torch.equal(y, y_ref)
    for a, b in zip(grads, grads_ref, strict=True):
        assert torch.equal(a, b)


def test_nested_sequential_and_pool_alone():
    torch.manual_seed(1)
    x = torch.randn(3, 2, 4, 6, 6, requires_grad=True)
    pool_alone = nn.MaxPool2d(2)
    nested = nn.Sequential(nn.Sequential(nn.Conv2d(4, 5, 3, padding=1), nn.MaxPool2d(2)))
    for layer, pool_input in ((pool_alone, (6, 4, 6, 6)), (nested, (6, 5, 6, 6))):
        y, saved = _saved_shapes(TimeDistributed(layer), x)
        assert pool_input not in saved
        gx = torch.autograd.grad(y.sum(), x)[0]
        y_ref = layer(x.reshape(6, 4, 6, 6))
        gx_ref = torch.autograd.grad(y_ref.sum(), x)[0]
        assert torch.equal(y, y_ref.reshape(y.shape)) and torch.equal(gx, gx_ref)


def test_plain_call_where_it_does_not_apply():
    """Hooks see the call; return_indices, channels-last input, no gradient: torch's own module runs."""
    x = torch.randn(2, 3, 6, 6, requires_grad=True)
    seen = []
    hooked = nn.MaxPool2d(2)
    hooked.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    _, saved = _saved_shapes(pooling.call, hooked, x)
    assert seen == [torch.Size([2, 3, 3, 3])] and (2, 3, 6, 6) in saved
    y, idx = pooling.call(nn.MaxPool2d(2, return_indices=True), x)
    assert idx.dtype == torch.int64
    _, saved = _saved_shapes(pooling.call, nn.MaxPool2d(2), x.to(memory_format=torch.channels_last))
    assert (2, 3, 6, 6) in saved
    with torch.no_grad():
        assert torch.equal(pooling.call(nn.MaxPool2d(2), x), nn.functional.max_pool2d(x, 2))


def test_bad_pool_raises_torchs_error():
    x = torch.randn(2, 3, 6, 6, requires_grad=True)
    with pytest.raises(RuntimeError, match="pad should be at most half"):
        nn.MaxPool2d(2, padding=2)(x)
    with pytest.raises(RuntimeError, match="pad should be at most half"):
        pooling.call(nn.MaxPool2d(2, padding=2), x)


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=(2, 3), stride=1),
                                dict(kernel_size=2, padding=1)])
def test_double_backward(kw):
    """Through the kernel path (offsets turned back into torch's indices) and the indices path."""
    torch.manual_seed(2)
    x = torch.randn(2, 2, 6, 6, dtype=torch.float64, requires_grad=True)
    m = nn.MaxPool2d(**kw)
    torch.autograd.gradgradcheck(lambda t: pooling.call(m, t), (x,))
    g = torch.randn(m(x).shape, dtype=torch.float64, requires_grad=True)
    gx = torch.autograd.grad(pooling.call(m, x), x, g, create_graph=True)[0]
    gx_ref = torch.autograd.grad(m(x), x, g, create_graph=True)[0]
    assert torch.equal(gx, gx_ref)
    w = torch.randn(x.shape, dtype=torch.float64)
    assert torch.equal(torch.autograd.grad((gx * w).sum(), g)[0], torch.autograd.grad((gx_ref * w).sum(), g)[0])


def test_kernel_path_without_gradients(monkeypatch):
    """Under no_grad (and for an input that needs none) the kernel computes the pool too, bit-equal."""
    calls = []
    real = pooling._kernels.forward
    monkeypatch.setattr(pooling._kernels, "forward", lambda *a: calls.append(1) or real(*a))
    x = torch.randn(3, 4, 9, 9, generator=torch.Generator().manual_seed(4))
    x[0, 0, 0, 0] = float("nan")
    with torch.no_grad():
        y = pooling.call(nn.MaxPool2d(3, stride=2), x)
    y2 = pooling.call(nn.MaxPool2d(3, stride=2), x)
    y_ref = nn.functional.max_pool2d(x, 3, stride=2)
    assert calls == [1, 1] and not y2.requires_grad
    for got in (y, y2):
        assert torch.equal(got.isnan(), y_ref.isnan()) and torch.equal(got.nan_to_num(), y_ref.nan_to_num())
