"""neuro.nn.spike_inputs: a Linear / Conv2d after a spiking layer keeps its spike input packed for backward.

Reference: the same network and weights with the plain path, forced by feeding the synaptic layer an unmarked
clone of the spikes (``s.clone()``: same values, not marked, so ``TimeDistributed`` calls the torch layer itself
and autograd saves the float spikes). Where both paths run the same arithmetic the gradients are compared
bit for bit: with one backward chunk (``CHUNK_BYTES`` large) the packed path makes the same calls as torch's
own backward. With several chunks the weight (and conv bias) gradient is a sum over chunks, a different
summation order than one matrix product: compared to float32 rounding (rtol 1e-5 of the largest entry).
"""

import math

import numpy as np
import pytest
import torch
from torch import nn

import neuro
from neuro.nn import spike_inputs
from neuro.nn.layers import TimeDistributed

ONE_CHUNK = 1 << 40  # bytes: every backward sum and every forward piece in one call


@pytest.fixture
def chunk_bytes(monkeypatch):
    def set_(n):
        monkeypatch.setattr(spike_inputs, "CHUNK_BYTES", n)
    return set_


def _is_packed(t: torch.Tensor, s: torch.Tensor) -> bool:
    """Whether saved tensor ``t`` is spikes ``s [T, B, ...]`` packed: flat bits, or uint8 with the spikes'
    sample shape (not a max pool's uint8 window offsets, neuro.nn.pooling)."""
    return t.dtype == torch.uint8 and (t.dim() == 1 or tuple(t.shape[1:]) == tuple(s.shape[2:]))


def _run(layer: nn.Module, chunk, x, lif, weights, plain: bool, sample_out=None):
    """Loss on ``TimeDistributed(layer, chunk)`` over ``lif(x)``; returns every gradient that exists."""
    for p in [*layer.parameters(), *lif.parameters()]:
        p.grad = None
    x = x.detach().requires_grad_()
    s = lif(x)
    if s.dim() == 3:
        s = neuro.nn.Flatten()(s)  # a view of the same shape: the mark must pass through
    assert spike_inputs.is_spikes(s)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = TimeDistributed(layer, chunk)(s.clone() if plain else s)
    assert any(_is_packed(t, s) for t in saved) != plain  # the path under test was taken
    (y * weights(y.shape)).sum().backward()
    grads = {name: p.grad.clone() for name, p in layer.named_parameters() if p.grad is not None}
    grads |= {f"lif.{name}": p.grad.clone() for name, p in lif.named_parameters()}
    grads["x"] = x.grad.clone()
    return y.detach(), grads


def _weights(seed):
    def make(shape):
        g = torch.Generator().manual_seed(seed)
        return torch.randn(shape, generator=g)
    return make


def _compare(layer, x, chunk=None, exact=True, lif=None):
    lif = lif or neuro.nn.LIF(beta=0.8, learn_beta=True, learn_threshold=True)
    w = _weights(1)
    y_p, g_p = _run(layer, chunk, x, lif, w, plain=False)
    y_r, g_r = _run(layer, chunk, x, lif, w, plain=True)
    assert torch.equal(y_p, y_r), "forward differs"
    assert g_p.keys() == g_r.keys()
    for name in g_r:
        if exact:
            assert torch.equal(g_p[name], g_r[name]), name
        else:
            scale = g_r[name].abs().max().item()
            torch.testing.assert_close(g_p[name], g_r[name], rtol=0, atol=1e-5 * scale + 1e-30, msg=name)
    return g_p


def _current(*shape, seed=0):
    return 2.0 * torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


# -- marking -------------------------------------------------------------------------------------------------------
def test_neuron_outputs_are_marked_and_only_them():
    x = _current(6, 3, 10)
    s = neuro.nn.LIF(beta=0.9)(x)
    assert spike_inputs.is_spikes(s)
    assert set(s.unique().tolist()) <= {0.0, 1.0}  # packing is exact only for these
    assert not spike_inputs.is_spikes(neuro.nn.Flatten()(s.reshape(6, 3, 2, 5)))  # the reshape is unmarked
    assert spike_inputs.is_spikes(neuro.nn.Flatten()(neuro.nn.LIF(beta=0.9)(x.reshape(6, 3, 2, 5))))
    for other in (s.clone(), s * 1.0, s.detach(), s[1:], torch.cat([s, s]), x):
        assert not spike_inputs.is_spikes(other)
    s2, v = neuro.nn.LIF(beta=0.9)(x, return_v=True)
    assert spike_inputs.is_spikes(s2) and not spike_inputs.is_spikes(v)
    with torch.inference_mode():  # no version counter there, and no backward: never marked
        assert not spike_inputs.is_spikes(neuro.nn.LIF(beta=0.9)(x))


@pytest.mark.parametrize("edit", ["mul_", "setitem", "view_edit", "flatten_view_edit"])
def test_in_place_edit_unmarks(edit):
    s = neuro.nn.LIF(beta=0.9)(_current(6, 3, 10))
    f = neuro.nn.Flatten()(s)
    assert spike_inputs.is_spikes(f)
    if edit == "mul_":
        s.mul_(2.0)
    elif edit == "setitem":
        s[0, 0, 0] = 0.5
    elif edit == "view_edit":
        s.view(-1)[3] = 0.5  # a view shares the version counter
    else:
        f[0, 0, 0] = 0.5
    assert not spike_inputs.is_spikes(s) and not spike_inputs.is_spikes(f)
    # and TimeDistributed runs the plain layer on it: the float input is what autograd saves
    fc = nn.Linear(10, 4)
    saved = _saved_during(lambda: TimeDistributed(fc)(s))
    assert any(t.is_floating_point() and t.numel() == s.numel() for t in saved)


# -- what is saved -------------------------------------------------------------------------------------------------
def _saved_during(fn):
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return saved


@pytest.mark.parametrize("pack", ["bits", "uint8"])
@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_saved_input_is_packed(kind, pack, monkeypatch, chunk_bytes):
    monkeypatch.setattr(spike_inputs, "PACK", pack)
    chunk_bytes(1 << 10)  # several pack chunks too
    if kind == "linear":
        s = neuro.nn.LIF(beta=0.9)(_current(7, 5, 33).requires_grad_())
        td = TimeDistributed(nn.Linear(33, 4))
    else:
        s = neuro.nn.LIF(beta=0.9)(_current(7, 5, 3, 9, 9).requires_grad_())
        td = TimeDistributed(nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2)), chunk=3)
    saved = _saved_during(lambda: td(s))
    steps = (7,) if kind == "linear" else (3, 3, 1)  # TimeDistributed's time chunks: one packed tensor each
    per_part = [s[0].numel() * n for n in steps]
    assert not any(t.is_floating_point() and t.numel() in (*per_part, s.numel()) for t in saved)
    packed = [t for t in saved if _is_packed(t, s)]
    assert [t.numel() for t in packed] == [math.ceil(n / 8) if pack == "bits" else n for n in per_part]
    start = 0
    for t, n in zip(packed, steps, strict=True):  # the spikes come back exactly
        part = s[start:start + n].detach().reshape(n * s.shape[1], *s.shape[2:])
        assert torch.equal(spike_inputs._unpack(t, part.shape, 0, part.shape[0], torch.float32), part)
        start += n


@pytest.mark.parametrize("pack", ["bits", "uint8"])
@pytest.mark.parametrize("rows,row", [(1, 1), (13, 7), (64, 3), (9, 1000)])
def test_pack_round_trip(pack, rows, row, monkeypatch, chunk_bytes):
    monkeypatch.setattr(spike_inputs, "PACK", pack)
    chunk_bytes(64)  # pieces of 8 or more rows: chunk boundaries inside the tensor
    s = (torch.rand(rows, row, generator=torch.Generator().manual_seed(rows)) < 0.4).float()
    s_t = s.t().contiguous().t()  # non-contiguous input as well
    for src in (s, s_t, s.to(torch.bfloat16), s.half()):
        p = spike_inputs._pack(src)
        step = spike_inputs._rows_per_chunk(s.shape, torch.float32)
        parts = [spike_inputs._unpack(p, s.shape, a, min(rows, a + step), torch.float32)
                 for a in range(0, rows, step)]
        assert torch.equal(torch.cat(parts), s)


# -- bits written by the spiking layer's kernel -------------------------------------------------------------------
@pytest.mark.parametrize("kind, chunk", [("linear", None), ("linear", 3), ("conv", 2), ("conv", None)])
def test_kernel_bits_kept_instead_of_packing(kind, chunk, monkeypatch):
    """With N % 8 == 0 per step the spiking layer's kernel writes the spikes' bits with the spikes; they are the
    bytes ``np.packbits`` gives, the layer after it keeps them (no pack pass of its own; per time chunk their
    bytes of the chunk's steps) and every gradient equals the plain path's."""
    packs = []
    real = spike_inputs._pack
    monkeypatch.setattr(spike_inputs, "_pack", lambda t: packs.append(tuple(t.shape)) or real(t))
    # the unpacking path, whose gradients are torch's bit for bit (the narrow Linear's weight gradient summed over
    # every bit instead is another float32 summation order: test_narrowest_linear_weight_grad_over_every_bit)
    monkeypatch.setattr(spike_inputs, "DENSE_GRAD_OUT", 0)
    if kind == "linear":
        x, layer = _current(7, 4, 16), nn.Linear(16, 5)  # 64 neurons a step
    else:
        x, layer = _current(5, 4, 2, 6, 6), nn.Sequential(nn.Conv2d(2, 3, 3), nn.MaxPool2d(2))  # 288
    s = neuro.nn.LIF(beta=0.8)(x)
    bits = spike_inputs.spike_bits(s)
    assert bits is not None and torch.equal(bits, torch.from_numpy(np.packbits(s.numpy().reshape(-1) != 0)))
    _compare(layer, x, chunk)
    assert packs == []
    s.mul_(1.0)  # an in-place edit: no longer the spikes the bits were made from
    assert spike_inputs.spike_bits(s) is None


def test_kernel_bits_only_whole_bytes_per_step(monkeypatch):
    """With N % 8 != 0 per step no bits come with the spikes; the layer after packs them itself, same gradients."""
    packs = []
    real = spike_inputs._pack
    monkeypatch.setattr(spike_inputs, "_pack", lambda t: packs.append(tuple(t.shape)) or real(t))
    x = _current(6, 3, 10)
    assert spike_inputs.spike_bits(neuro.nn.LIF(beta=0.8)(x)) is None
    _compare(nn.Linear(10, 4), x)
    assert packs == [(18, 10)]


def test_kernel_bits_follow_views_in_order_only():
    s = neuro.nn.LIF(beta=0.8)(_current(4, 2, 2, 4))
    assert spike_inputs.spike_bits(s) is not None
    assert spike_inputs.spike_bits(neuro.nn.Flatten()(s)) is not None  # a contiguous view: same order
    t = spike_inputs.pass_mark(s, s.transpose(2, 3))  # same values, another order: marked, without the bits
    assert spike_inputs.is_spikes(t) and spike_inputs.spike_bits(t) is None
    with torch.no_grad():  # nothing to train: no bits are written
        assert spike_inputs.spike_bits(neuro.nn.LIF(beta=0.8)(_current(4, 2, 2, 4))) is None


# -- gradients against the plain path -----------------------------------------------------------------------------
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("chunk", [None, 3])
def test_linear_bit_equal_in_one_chunk(bias, chunk, chunk_bytes):
    chunk_bytes(ONE_CHUNK)
    torch.manual_seed(0)
    g = _compare(nn.Linear(20, 6, bias=bias), _current(8, 5, 20), chunk=chunk)
    assert g["lif.beta"].abs() > 0 and g["weight"].abs().sum() > 0


def test_linear_several_chunks(chunk_bytes):
    chunk_bytes(8 * 20 * 4)  # 8 rows of 20 float32 a chunk: 40 rows -> 5 chunks
    torch.manual_seed(0)
    _compare(nn.Linear(20, 6), _current(8, 5, 20), exact=False)


def test_sequential_linear_head(chunk_bytes):
    chunk_bytes(ONE_CHUNK)
    torch.manual_seed(0)
    _compare(nn.Sequential(nn.Linear(20, 6), nn.Tanh(), nn.Linear(6, 3)), _current(8, 5, 20))


CONVS = [dict(kernel_size=3), dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=(3, 2), padding=(2, 1),
         dilation=2), dict(kernel_size=3, groups=2, padding=1, bias=False), dict(kernel_size=1, stride=(1, 2))]


@pytest.mark.parametrize("conv", CONVS)
@pytest.mark.parametrize("chunk", [None, 2])
def test_conv_bit_equal_in_one_chunk(conv, chunk, chunk_bytes):
    chunk_bytes(ONE_CHUNK)
    torch.manual_seed(0)
    _compare(nn.Conv2d(4, 6, **conv), _current(5, 3, 4, 9, 8), chunk=chunk)


@pytest.mark.parametrize("conv", CONVS)
def test_conv_several_chunks(conv, chunk_bytes):
    # 8 images a chunk: the forward in pieces (each image's output computed alone: compared to rounding too,
    # as the backend may pick another algorithm for another batch size), weight and bias gradients summed over
    # chunks (another summation order)
    chunk_bytes(8 * 4 * 9 * 8 * 4)
    torch.manual_seed(0)
    lif = neuro.nn.LIF(beta=0.8, learn_beta=True)
    w = _weights(2)
    layer = nn.Conv2d(4, 6, **conv)
    y_p, g_p = _run(layer, None, _current(5, 7, 4, 9, 8), lif, w, plain=False)
    y_r, g_r = _run(layer, None, _current(5, 7, 4, 9, 8), lif, w, plain=True)
    torch.testing.assert_close(y_p, y_r, rtol=1e-5, atol=1e-6)
    for name in g_r:
        scale = g_r[name].abs().max().item()
        torch.testing.assert_close(g_p[name], g_r[name], rtol=0, atol=1e-5 * scale + 1e-30, msg=name)


@pytest.mark.parametrize("chunk", [None, 2])
def test_conv_maxpool_sequential(chunk, chunk_bytes):
    chunk_bytes(ONE_CHUNK)
    torch.manual_seed(0)
    _compare(nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.MaxPool2d(2)), _current(5, 4, 3, 8, 8), chunk=chunk)


def test_csnn_shape_two_spiking_stages(chunk_bytes):
    """The benchmark's CSNN in small: conv over spikes, Flatten, Linear over spikes, all upstream parameters."""
    chunk_bytes(ONE_CHUNK)
    torch.manual_seed(0)
    c1, c2, fc = nn.Conv2d(1, 4, 3), nn.Conv2d(4, 6, 3), nn.Linear(6 * 2 * 2, 3)
    l1, l2 = neuro.nn.LIF(beta=0.5, learn_beta=True), neuro.nn.LIF(beta=0.6, learn_threshold=True)
    x = _current(6, 3, 1, 14, 14)

    def run(plain):
        for m in (c1, c2, fc, l1, l2):
            for p in m.parameters():
                p.grad = None
        cut = (lambda t: t.clone()) if plain else (lambda t: t)
        h = l1(TimeDistributed(nn.Sequential(c1, nn.MaxPool2d(2)), chunk=4)(x))
        h = l2(TimeDistributed(nn.Sequential(c2, nn.MaxPool2d(2)), chunk=4)(cut(h)))
        out = TimeDistributed(fc)(cut(neuro.nn.Flatten()(h)))
        (out * _weights(3)(out.shape)).sum().backward()
        return {f"{i}.{n}": p.grad.clone() for i, m in enumerate((c1, c2, fc, l1, l2)) for n, p in m.named_parameters()}

    g_p, g_r = run(False), run(True)
    for name in g_r:
        assert torch.equal(g_p[name], g_r[name]), name


def _small_layer_and_current(kind: str) -> tuple[nn.Module, torch.Tensor]:
    """A float32 Linear(20, 6) or Conv2d(3, 4, 3) and an input current for the neurons before it."""
    if kind == "linear":
        return nn.Linear(20, 6), _current(8, 5, 20)
    return nn.Conv2d(3, 4, 3, padding=1), _current(4, 3, 3, 6, 6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_16_bit_layers(dtype, kind, chunk_bytes):
    """Spikes of a 16-bit input (16-bit spikes) into a 16-bit layer: gradients come back in 16 bits, bit-equal."""
    chunk_bytes(ONE_CHUNK)
    torch.manual_seed(0)
    layer, x = _small_layer_and_current(kind)
    layer, x = layer.to(dtype), x.to(dtype)
    g = _compare(layer, x, chunk=3)
    assert g["weight"].dtype == dtype and g["x"].dtype == dtype


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_autocast(dtype, kind, chunk_bytes):
    """float32 layer and spikes under torch.autocast: the product runs in 16 bits, gradients come back float32."""
    chunk_bytes(ONE_CHUNK)
    torch.manual_seed(0)
    layer, x = _small_layer_and_current(kind)
    lif = neuro.nn.LIF(beta=0.8, learn_beta=True)
    w = _weights(4)
    with torch.autocast("cpu", dtype=dtype):
        y_p, g_p = _run(layer, None, x, lif, w, plain=False)
        y_r, g_r = _run(layer, None, x, lif, w, plain=True)
    assert y_p.dtype == dtype and torch.equal(y_p, y_r)
    for name in g_r:
        assert g_p[name].dtype == g_r[name].dtype == torch.float32, name
        assert torch.equal(g_p[name], g_r[name]), name


def test_autocast_several_chunks(chunk_bytes):
    # chunk sums kept in float32 where the plain path has one bfloat16 product: compared to bfloat16 rounding
    chunk_bytes(8 * 20 * 2)
    torch.manual_seed(0)
    layer, x, lif, w = nn.Linear(20, 6), _current(8, 5, 20), neuro.nn.LIF(beta=0.8), _weights(5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, g_p = _run(layer, None, x, lif, w, plain=False)
        _, g_r = _run(layer, None, x, lif, w, plain=True)
    for name in g_r:
        scale = g_r[name].abs().max().item()
        torch.testing.assert_close(g_p[name], g_r[name], rtol=0, atol=2 ** -7 * scale, msg=name)


# -- what takes the plain path ------------------------------------------------------------------------------------
def _float_saved(td, s):
    return any(t.is_floating_point() and t.numel() == s.numel() for t in _saved_during(lambda: td(s)))


def test_non_spike_input_plain():
    x = _current(6, 4, 10).requires_grad_()  # floats in [0, 2): packing would be wrong, so it must not happen
    fc = nn.Linear(10, 3)
    assert _float_saved(TimeDistributed(fc), x)
    y = TimeDistributed(fc)(x)
    torch.testing.assert_close(y, x @ fc.weight.detach().T + fc.bias.detach(), rtol=0, atol=0)


def test_hooks_and_other_layers_plain():
    s = neuro.nn.LIF(beta=0.9)(_current(6, 4, 10).requires_grad_())
    assert not _float_saved(TimeDistributed(nn.Linear(10, 3)), s)
    fc = nn.Linear(10, 3)
    calls = []
    fc.register_forward_hook(lambda m, i, o: calls.append(1))
    assert _float_saved(TimeDistributed(fc), s) and calls == [1]  # the hook ran: the torch layer was called

    class Scaled(nn.Linear):
        def forward(self, x):
            return 2 * super().forward(x)

    assert _float_saved(TimeDistributed(Scaled(10, 3)), s)
    assert _float_saved(TimeDistributed(nn.Sequential(nn.Identity(), nn.Linear(10, 3))), s)
    assert _float_saved(TimeDistributed(nn.LayerNorm(10)), s)


def test_no_grad_and_frozen():
    s = neuro.nn.LIF(beta=0.9)(_current(6, 4, 10))
    fc = nn.Linear(10, 3)
    with torch.no_grad():
        torch.testing.assert_close(TimeDistributed(fc)(s), TimeDistributed(fc)(s.clone()), rtol=0, atol=0)
    fc.requires_grad_(False)
    x = _current(6, 4, 10).requires_grad_()
    s = neuro.nn.LIF(beta=0.9)(x)
    saved = _saved_during(lambda: TimeDistributed(fc)(s))
    assert not any(t.dtype == torch.uint8 for t in saved)  # frozen weight: nothing needs the spikes
    TimeDistributed(fc)(s).sum().backward()
    g = x.grad.clone()
    x.grad = None
    TimeDistributed(fc)(neuro.nn.LIF(beta=0.9)(x).clone()).sum().backward()
    assert torch.equal(g, x.grad)


def test_low_memory_layer_output_marked():
    layer = neuro.nn.SpikingLinear(10, 8, neuro.nn.LIF(beta=0.9))
    s = layer(_current(6, 4, 10))
    assert spike_inputs.is_spikes(s) and set(s.unique().tolist()) <= {0.0, 1.0}


def test_bad_parts_for_cat_as_made():
    with pytest.raises(ValueError, match="rows"):
        spike_inputs.cat_as_made(iter([torch.zeros(2, 3)]), 3)


# -- narrow Linear: weight gradient summed from the bits (neuro.kernels.spike_grad) ------------------------------
def _narrow_linear_grads(x, out_features, spy, plain=False):
    """Weight, bias and input-current gradients of ``TimeDistributed(Linear)`` over ``LIF(x)`` with loss
    ``sum(y * w)`` (so dL/dY = w), the spikes, ``w``, and how often the bit kernel ran."""
    torch.manual_seed(5)
    fc = nn.Linear(x.shape[-1], out_features)
    x = x.detach().requires_grad_()
    s = neuro.nn.LIF(beta=0.7)(x)
    y = TimeDistributed(fc)(s.clone() if plain else s)
    w = torch.randn(y.shape, generator=torch.Generator().manual_seed(6))
    spy.clear()
    (y * w).sum().backward()
    return fc.weight.grad, fc.bias.grad, x.grad, s.detach(), w, len(spy)


@pytest.fixture
def grad_spy(monkeypatch):
    """Which spike_grad kernel summed each weight gradient from the bits: "sparse" or "dense"."""
    from neuro.kernels import spike_grad

    calls = []
    for name, label in (("weight_grad", "sparse"), ("weight_grad_dense", "dense")):
        real = getattr(spike_grad, name)
        monkeypatch.setattr(spike_grad, name, lambda *a, real=real, label=label: calls.append(label) or real(*a))
    return calls


@pytest.mark.parametrize("threads", [1, 2])
def test_narrow_linear_weight_grad_from_the_set_bits(threads, grad_spy):
    """Sparse spikes into Linear(64, 20) (wider than DENSE_GRAD_OUT): dW from the set bits equals dY^T S summed in
    float64 and rounded once (the float32 GEMM of the plain path agrees to its own rounding); dB and dS are the
    plain path's bit for bit."""
    import numba

    x = 0.3 * _current(9, 7, 64)  # about 10% spikes
    assert spike_inputs.DENSE_GRAD_OUT < 20 <= spike_inputs.SPARSE_GRAD_OUT
    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        g_w, g_b, g_x, s, w, calls = _narrow_linear_grads(x, 20, grad_spy)
    finally:
        numba.set_num_threads(before)
    assert grad_spy == ["sparse"] and 0.02 < s.mean().item() < spike_inputs.SPARSE_GRAD_RATE
    ref = w.reshape(-1, 20).double().t() @ s.reshape(-1, 64).double()
    assert torch.equal(g_w, ref.float())
    p_w, p_b, p_x, _, _, plain_calls = _narrow_linear_grads(x, 20, grad_spy, plain=True)
    assert plain_calls == 0
    assert torch.equal(g_b, p_b) and torch.equal(g_x, p_x)
    torch.testing.assert_close(g_w, p_w, rtol=1e-6, atol=1e-6)


def test_narrowest_linear_weight_grad_over_every_bit(grad_spy):
    """Spikes above DENSE_GRAD_FROM_RATE into Linear(64, 5): dW summed over every bit in float32 equals dY^T S
    (float64 reference) to float32 rounding, the same bits on 1 and 2 threads; dB and dS are the plain path's."""
    import numba

    x = 0.3 * _current(9, 7, 64)
    results = []
    before = numba.get_num_threads()
    try:
        for threads in (1, 2):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            results.append(_narrow_linear_grads(x, 5, grad_spy))
            assert grad_spy == ["dense"]
    finally:
        numba.set_num_threads(before)
    (g_w, g_b, g_x, s, w, _), (g_w2, *_rest) = results
    assert spike_inputs.DENSE_GRAD_FROM_RATE < s.mean().item() and torch.equal(g_w, g_w2)
    ref = w.reshape(-1, 5).double().t() @ s.reshape(-1, 64).double()
    torch.testing.assert_close(g_w.double(), ref, rtol=1e-6, atol=1e-6)
    p_w, p_b, p_x, _, _, plain_calls = _narrow_linear_grads(x, 5, grad_spy, plain=True)
    assert plain_calls == 0
    assert torch.equal(g_b, p_b) and torch.equal(g_x, p_x)
    torch.testing.assert_close(g_w, p_w, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", ["dense spikes, 17 outputs", "K not a multiple of 8", "wide output"])
def test_weight_grad_from_bits_only_where_it_pays(case, grad_spy):
    x = {"dense spikes, 17 outputs": 3.0 * _current(6, 5, 64), "K not a multiple of 8": 0.3 * _current(6, 5, 60),
         "wide output": 0.3 * _current(6, 5, 64)}[case]
    out = {"dense spikes, 17 outputs": spike_inputs.DENSE_GRAD_OUT + 1,
           "wide output": spike_inputs.SPARSE_GRAD_OUT + 1}.get(case, 4)
    g_w, g_b, g_x, s, w, calls = _narrow_linear_grads(x, out, grad_spy)
    assert calls == 0
    if case.startswith("dense"):
        assert s.mean().item() > spike_inputs.SPARSE_GRAD_RATE
    p_w, p_b, p_x, _, _, _ = _narrow_linear_grads(x, out, grad_spy, plain=True)
    assert torch.equal(g_w, p_w) and torch.equal(g_b, p_b) and torch.equal(g_x, p_x)


def test_spike_grad_kernels_against_numpy():
    from neuro.kernels import spike_grad

    rng = np.random.default_rng(7)
    for m, k, out in ((1, 8, 1), (37, 24, 3), (300, 1000, 10), (0, 16, 2), (61, 136, 16)):
        s = rng.random((m, k)) < 0.1
        bits = np.packbits(s.reshape(-1))
        dy = rng.standard_normal((m, out)).astype(np.float32)
        ref = dy.T.astype(np.float64) @ s.astype(np.float64)
        got = spike_grad.weight_grad(bits, k, dy)
        assert got.dtype == np.float32 and got.shape == (out, k)
        assert np.array_equal(got, ref.astype(np.float32))
        dense = spike_grad.weight_grad_dense(bits, k, dy)
        assert dense.dtype == np.float32 and dense.shape == (out, k)
        np.testing.assert_allclose(dense, ref, rtol=1e-5, atol=1e-5)
        # small integers: every float32 partial sum is exact, so the dense kernel must be exact too
        dy_int = rng.integers(-40, 40, (m, out)).astype(np.float32)
        exact = (dy_int.T.astype(np.float64) @ s.astype(np.float64)).astype(np.float32)
        assert np.array_equal(spike_grad.weight_grad_dense(bits, k, dy_int), exact)
    assert abs(spike_grad.spike_rate(np.packbits(rng.random(80_000) < 0.1)) - 0.1) < 0.02
    for kernel in (spike_grad.weight_grad, spike_grad.weight_grad_dense):
        with pytest.raises(ValueError, match="K % 8 == 0"):
            kernel(np.zeros(3, np.uint8), 12, np.zeros((2, 1), np.float32))
    with pytest.raises(ValueError, match="float32"):
        spike_grad.weight_grad_dense(np.zeros(2, np.uint8), 8, np.zeros((2, 1), np.float64))


def test_weight_grad_from_bits_not_under_create_graph(grad_spy):
    """A double backward needs dW as a function of dY: the GEMM path runs then, and its dW equals the bits'."""
    x = (0.3 * _current(6, 5, 64)).requires_grad_()
    fc = nn.Linear(64, 3)
    y = TimeDistributed(fc)(neuro.nn.LIF(beta=0.7)(x))
    g = torch.randn(y.shape, requires_grad=True)
    (g_w,) = torch.autograd.grad(y, fc.weight, g, create_graph=True, retain_graph=True)
    assert grad_spy == [] and g_w.requires_grad
    (g_w_bits,) = torch.autograd.grad(y, fc.weight, g.detach())
    assert grad_spy == ["dense"]
    torch.testing.assert_close(g_w.detach(), g_w_bits, rtol=1e-6, atol=1e-6)
