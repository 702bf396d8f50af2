"""Lean records: the training path keeps for backward only the input and the state every K steps, and the
backward kernel recomputes the states in between.

Checked: the gradients (input, parameters, initial state; losses on spikes, membrane and final state)
equal those of the full-record kernels (``neuron_scan``, which keeps every step's state) for any K,
checkpoints falling inside, on and past the end of the sequence; what autograd saves is exactly the input,
the per-sample parameter rows and ``ceil(T / K)`` states, with no ``[T, S, N]`` record and no ``[P, B*M]``
parameter copy.
"""

import math

import numpy as np
import pytest
import torch

import neuro
from neuro import kernels
from neuro.models import alif, cuba_lif, lif
from neuro.nn.functional import neuron_layer, neuron_scan

T, B, M = 21, 3, 5
N = B * M

# dynamics, parameter rows [P, M] builder, options
CASES = {
    "lif-subtract-next-step": (lif.DYNAMICS, {"decay": 0.9, "threshold": 0.8}, [0, 1]),
    "lif-zero-same-step-refractory": (lif.DYNAMICS, {"decay": 0.85, "threshold": 0.7, "t_ref": 2.0}, [1, 0]),
    "cuba_lif": (cuba_lif.DYNAMICS, {"syn_decay": 0.7, "mem_decay": 0.9, "threshold": 0.8}, [0, 1]),
    "alif": (alif.DYNAMICS, {"decay": 0.9, "threshold": 0.8, "adapt_decay": 0.9, "adapt_gain": 0.3}, [0]),
}
DEFAULTS = {"gain": 1.0, "syn_gain": 1.0, "i_old": 0.0, "i_new": 1.0, "v_leak": 0.0, "v_reset": 0.0, "t_ref": 0.0}


def _rows(dyn, values, g):
    """[P, M] rows: each parameter jittered per neuron of a sample so a wrong column shows."""
    rows = []
    for k in dyn.params:
        base = torch.full((M,), float(values[k] if k in values else DEFAULTS[k]))
        if k not in ("t_ref", "i_old", "i_new", "v_reset", "v_leak"):
            base = base * (1 + 0.05 * torch.rand(M, generator=g))
        rows.append(base)
    return torch.stack(rows)


def _grads(fn, dyn, x, rows, init, opts, wv, wf):
    x = x.clone().requires_grad_(True)
    rows = rows.clone().requires_grad_(True)
    init = init.clone().requires_grad_(True)
    spk, v, final = fn(x, rows, init)
    mem = dyn.state.index(dyn.membrane)
    loss = (spk * torch.linspace(-1, 1, N)).sum() + (v * wv).sum() + (final[mem] * wf).sum()
    loss.backward()
    return spk, v, final, x.grad, rows.grad, init.grad


@pytest.mark.parametrize("every", [1, 4, 7, T, T + 5])
@pytest.mark.parametrize("case", list(CASES))
def test_gradients_equal_the_full_record_kernels(case, every):
    dyn, values, opts = CASES[case]
    g = torch.Generator().manual_seed(every)
    rows = _rows(dyn, values, g)
    x = torch.rand(T, N, generator=g) * 1.3 - 0.1
    init = torch.rand(len(dyn.state), N, generator=g) * 0.5
    init[dyn.state.index("ref")] = 0
    wv, wf = torch.randn(T, N, generator=g), torch.randn(N, generator=g)
    sg = neuro.surrogate.get("fast_sigmoid")

    def lean(x, rows, init):
        return neuron_layer(dyn, x, rows, init, opts, sg, 1.0, want_v=True, every=every)

    def full(x, rows, init):
        spk, states, final = neuron_scan(dyn, x, rows.repeat(1, B), init, opts, sg, record=True, return_state=True)
        return spk, states[:, dyn.state.index(dyn.membrane)], final

    a = _grads(lean, dyn, x, rows, init, opts, wv, wf)
    b = _grads(full, dyn, x, rows, init, opts, wv, wf)
    for name, u, w in zip(("spikes", "v", "final"), a[:3], b[:3], strict=True):
        assert torch.equal(u, w), name
    assert a[0].sum() > 0
    # the recomputed states are the forward's bitwise, so the reverse sweep is the same arithmetic
    assert torch.equal(a[3], b[3])
    assert torch.equal(a[5], b[5])
    torch.testing.assert_close(a[4], b[4], rtol=1e-6, atol=1e-6)  # sums over the batch in another order


@pytest.mark.parametrize("per_neuron", [False, True])
def test_only_the_input_parameter_rows_and_checkpoints_are_saved(per_neuron):
    """The input, one parameter row per neuron of a sample (one column when every parameter is a scalar) and the
    checkpoints; no per-step record, no rows over the batch."""
    beta = torch.linspace(0.8, 0.9, M) if per_neuron else 0.9
    layer = neuro.nn.CubaLIF(alpha=0.7, beta=beta, learn_beta=True)
    x = torch.rand(T, B, M, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        spk = layer(x)
    S, P = len(layer.dynamics.state), len(layer.dynamics.params)
    K = kernels.CHECKPOINT_EVERY
    cols = M if per_neuron else 1
    kernel_saved = [t for t in saved if t.numel() in (T * N, P * cols, math.ceil(T / K) * S * N)]
    shapes = sorted(tuple(t.shape) for t in kernel_saved)
    assert shapes == sorted([(T, N), (P, cols), (math.ceil(T / K), S, N)])
    assert not any(t.numel() >= T * S * N for t in saved)
    spk.sum().backward()
    assert x.grad is not None and layer.beta.grad is not None


@pytest.mark.parametrize("steps", [8, 25, 64])  # not 1: the one checkpoint would look like a record
def test_float32_sequences_of_any_length_take_the_lean_path(steps):
    layer = neuro.nn.LIF(beta=0.9)
    x = torch.rand(steps, 2, 3, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        layer(x).sum().backward()
    per_step_record = any(t.dim() == 3 and t.shape[0] == steps and t.shape[1] == len(layer.dynamics.state)
                          for t in saved)
    assert not per_step_record


def test_many_blocks_any_thread_count_and_concurrent_callers():
    """Three kernel blocks (the backward's segment buffers belong to the numba thread and are reused from block
    to block): the lean gradients equal the full-record ones bit for bit on 1 and 2 numba threads, and when two
    Python threads train at once (each has its own buffers)."""
    import threading

    import numba

    from neuro.kernels import cpu

    dyn, values, opts = CASES["lif-zero-same-step-refractory"]
    n = 2 * cpu.BLOCK + 37
    sg = neuro.surrogate.get("atan")

    def case(seed):
        g = torch.Generator().manual_seed(seed)
        rows = torch.stack([torch.full((n,), float(values.get(k, DEFAULTS.get(k, 0.0)))) for k in dyn.params])
        rows[dyn.params.index("decay")] *= 1 + 0.05 * torch.rand(n, generator=g)
        x = torch.rand(T, n, generator=g) * 1.3 - 0.1
        return x, rows, torch.zeros(len(dyn.state), n)

    def grads(seed, fn):
        x, rows, init = case(seed)
        x = x.requires_grad_(True)
        spk, _, final = fn(x, rows, init)
        ((spk * torch.linspace(-1, 1, n)).sum() + final[0].sum()).backward()
        return spk, x.grad

    def lean(x, rows, init):
        return neuron_layer(dyn, x, rows, init, opts, sg, 1.0, want_v=False, every=4)

    def full(x, rows, init):
        return neuron_scan(dyn, x, rows, init, opts, sg, record=False, return_state=True)

    ref = {seed: grads(seed, full) for seed in (1, 2)}
    before = numba.get_num_threads()
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            for seed in (1, 2):
                spk, gx = grads(seed, lean)
                assert torch.equal(spk, ref[seed][0]) and torch.equal(gx, ref[seed][1]), (threads, seed)
    finally:
        numba.set_num_threads(before)
    out = {}
    workers = [threading.Thread(target=lambda s=s: out.__setitem__(s, [grads(s, lean) for _ in range(3)]))
               for s in (1, 2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for seed in (1, 2):
        assert len(out[seed]) == 3
        for spk, gx in out[seed]:
            assert torch.equal(spk, ref[seed][0]) and torch.equal(gx, ref[seed][1]), seed
    assert ref[1][0].sum() > 0 and not torch.equal(ref[1][1], ref[2][1])


@pytest.mark.parametrize("case, grad_params, with_gv, uniform, refractory_start, inert", [
    ("lif-subtract-next-step", False, False, True, False, (1,)),
    ("lif-subtract-next-step", True, False, True, True, ()),
    ("lif-zero-same-step-refractory", True, True, True, False, ()),
    ("cuba_lif", False, False, False, False, (2,)),
])
def test_specialised_kernels_equal_the_generic_ones(case, grad_params, with_gv, uniform, refractory_start, inert,
                                                    monkeypatch):
    """Large calls run kernels compiled for their option values, for parameters shared by every neuron (one
    scalar each), without a refractory counter that cannot leave 0 (no refractory period, started at 0: not
    when some neuron starts refractory) and, in backward, without the parameter-gradient arithmetic when it
    is not wanted; they give the bits of the kernels that read all of it at run time, gradients reaching
    the final state included."""
    dyn, values, opts = CASES[case]
    opts = np.array(opts, np.int64)
    g = np.random.default_rng(3)
    n = 700
    rows = np.stack([np.full(n, values[k] if k in values else DEFAULTS[k], np.float32) for k in dyn.params])
    if not uniform:
        rows[0] *= 1 + 0.05 * g.random(n, dtype=np.float32)
    start = np.zeros((len(dyn.state), n), np.float32)
    if refractory_start:
        start[dyn.state.index("ref"), ::3] = 2.0
    x = (g.random((T, n), dtype=np.float32) * 1.3 - 0.1).astype(np.float32)
    g_spikes = g.standard_normal((T, n)).astype(np.float32)
    g_v = g.standard_normal((T, n)).astype(np.float32) if with_gv else None
    g_final = g.standard_normal((len(dyn.state), n)).astype(np.float32)
    sg = neuro.surrogate.get("atan")
    from neuro.kernels import cpu

    built = {"fwd": [], "bwd": []}
    real_f, real_b = cpu.lean_forward_kernel, cpu.lean_backward_kernel
    monkeypatch.setattr(cpu, "lean_forward_kernel", lambda *a: built["fwd"].append(a[2:]) or real_f(*a))
    monkeypatch.setattr(cpu, "lean_backward_kernel", lambda *a: built["bwd"].append(a[3:]) or real_b(*a))
    results = []
    for threshold in (0, 1 << 62):  # specialised, then generic
        monkeypatch.setattr(kernels, "SPECIALISE_FROM", threshold)
        state = start.copy()
        spikes, ckpt, v = kernels.forward_lean(dyn, x, state, rows, opts, every=4, record_v=True)
        back = kernels.backward_lean(dyn, sg, x, ckpt, rows, opts, g_spikes.copy(), g_v, g_final, every=4,
                                     grad_params=grad_params)
        results.append(((spikes, ckpt, v, state), back))
    options = tuple(int(o) for o in opts)
    assert built["fwd"] == [(True, options, uniform, inert), (True, None, False, ())]
    assert built["bwd"] == [(options, grad_params, with_gv, uniform, inert), (None, True, with_gv, False, ())]
    (fwd_s, (gx_s, gp_s, gi_s)), (fwd_g, (gx_g, gp_g, gi_g)) = results
    live = [k for k in range(len(dyn.state)) if k not in inert]  # the dropped states' checkpoints are not kept
    assert np.array_equal(fwd_s[1], fwd_g[1][:, live]) and not fwd_g[1][:, list(inert)].any()
    assert all(np.array_equal(a, b) for k, (a, b) in enumerate(zip(fwd_s, fwd_g, strict=True)) if k != 1)
    assert np.array_equal(gx_s, gx_g) and np.array_equal(gi_s, gi_g)
    assert (gp_s is None and gp_g is None) if not grad_params else np.array_equal(gp_s, gp_g)
    assert fwd_s[0].sum() > 0 and np.abs(gx_s).sum() > 0
    if not inert:  # the refractory counter ran
        assert fwd_s[1][:, dyn.state.index("ref")].max() > 0
        return
    # the shared kernel takes the specialised forward's checkpoints too (the dropped states' rows are 0)
    back = kernels.backward_lean(dyn, sg, x, fwd_s[1], rows, opts, g_spikes.copy(), g_v, g_final, every=4,
                                 grad_params=grad_params)
    assert np.array_equal(back[0], gx_g) and np.array_equal(back[2], gi_g)
    with pytest.raises(ValueError, match="ckpt must be"):  # checkpoints missing another state are refused
        kernels.backward_lean(dyn, sg, x, fwd_s[1][:, :0], rows, opts, g_spikes.copy(), every=4)


def test_workspace_made_per_call_when_too_large_to_keep(monkeypatch):
    """A segment workspace above WORKSPACE_KEEP_BYTES is made for its call and not kept: same gradients."""
    monkeypatch.setattr(kernels, "WORKSPACE_KEEP_BYTES", 0)
    monkeypatch.setattr(kernels._WORKSPACE, "array", None, raising=False)
    test_gradients_equal_the_full_record_kernels("lif-subtract-next-step", 7)
    assert kernels._WORKSPACE.array is None


@pytest.mark.parametrize("fmt", ["float32", "bfloat16", "float16"])
@pytest.mark.parametrize("n, specialise", [(8, False), (3 * 4096 + 72, True), (4096 + 8, False)])
def test_forward_writes_the_spikes_bits(fmt, n, specialise, monkeypatch):
    """``bits_out`` receives ``np.packbits(spikes != 0)`` of the flattened spikes, whatever the block boundaries
    (rows not a multiple of 64 spikes), the thread count and the kernel variant; spikes and state unchanged."""
    import numba

    monkeypatch.setattr(kernels, "SPECIALISE_FROM", 0 if specialise else 1 << 62)
    dyn = lif.DYNAMICS
    g = np.random.default_rng(n)
    T_ = 5
    x32 = (g.random((T_, n), dtype=np.float32) * 1.6).astype(np.float32)
    x = x32 if fmt == "float32" else torch.from_numpy(x32).to(getattr(torch, fmt)).view(torch.int16).numpy().view(
        np.uint16)
    rows = np.stack([np.full(1, {"decay": 0.9, "threshold": 1.0}.get(k, DEFAULTS.get(k, 0.0)), np.float32)
                     for k in dyn.params])
    before = numba.get_num_threads()
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            bits = np.full(T_ * n // 8, 0x5A, np.uint8)
            state = np.zeros((2, n), np.float32)
            spikes, _, _ = kernels.forward_lean(dyn, x, state, rows, np.array([0, 1]), fmt=fmt, bits_out=bits)
            ref_state = np.zeros((2, n), np.float32)
            ref, _, _ = kernels.forward_lean(dyn, x, ref_state, rows, np.array([0, 1]), fmt=fmt)
            assert np.array_equal(spikes, ref) and np.array_equal(state, ref_state)
            assert np.array_equal(bits, np.packbits(spikes.reshape(-1) != 0)), threads
            assert 0 < np.unpackbits(bits).mean() < 1
    finally:
        numba.set_num_threads(before)


def test_forward_bits_refused_when_rows_do_not_start_on_a_byte():
    dyn, x = lif.DYNAMICS, np.zeros((3, 12), np.float32)
    args = (dyn, x, np.zeros((2, 12), np.float32), np.zeros((6, 12), np.float32), np.array([0, 1]))
    with pytest.raises(ValueError, match="divisible by 8"):
        kernels.forward_lean(*args, bits_out=np.zeros(4, np.uint8))
    x = np.zeros((3, 16), np.float32)
    args = (dyn, x, np.zeros((2, 16), np.float32), np.zeros((6, 16), np.float32), np.array([0, 1]))
    for bad in (np.zeros(5, np.uint8), np.zeros(6, np.int8), np.zeros((2, 3), np.uint8), [0] * 6):
        with pytest.raises(ValueError, match="bits_out must be"):
            kernels.forward_lean(*args, bits_out=bad)


def test_small_layers_trained_for_many_steps_switch_to_the_specialised_kernels(monkeypatch):
    """A call below SPECIALISE_FROM but of at least SPECIALISE_FROM / 128 neuron-steps runs the shared kernels for
    the first SPECIALISE_AFTER_CALLS - 1 training steps and the specialised ones after; spikes and gradients are
    bitwise those of the shared kernels all the way."""
    from collections import Counter

    from neuro.kernels import cpu

    real_f, real_b = cpu.lean_forward_kernel, cpu.lean_backward_kernel
    built = []
    monkeypatch.setattr(cpu, "lean_forward_kernel", lambda *a: built.append(("fwd", a[3])) or real_f(*a))
    monkeypatch.setattr(cpu, "lean_backward_kernel", lambda *a: built.append(("bwd", a[3])) or real_b(*a))
    g = torch.Generator().manual_seed(3)
    xs = [torch.rand(5, 4, 20, generator=g) * 1.5 for _ in range(10)]  # 400 neuron-steps a call
    runs = []
    for threshold in (1 << 14, 1 << 62):  # 400 is between 2**14 / 128 and 2**14; then never specialised
        monkeypatch.setattr(kernels, "SPECIALISE_FROM", threshold)
        monkeypatch.setattr(kernels, "_SMALL_CALLS", Counter())
        lif_layer = neuro.nn.LIF(beta=0.8)
        built.clear()
        out = []
        for x in xs:
            x = x.clone().requires_grad_()
            s, v = lif_layer(x, return_v=True)
            (s * torch.arange(20.0)).sum().add(v.square().sum()).backward()
            out.append((s.detach(), v.detach(), x.grad))
        runs.append(out)
        options = [o for _, o in built]
        if threshold == 1 << 14:
            after = kernels.SPECIALISE_AFTER_CALLS
            assert options[:2 * after - 2] == [None] * (2 * after - 2)
            assert options[2 * after - 2:] == [(0, 1)] * (2 * (10 - after + 1))
        else:
            assert options == [None] * 20
    for (s1, v1, g1), (s2, v2, g2) in zip(*runs, strict=True):
        assert torch.equal(s1, s2) and torch.equal(v1, v2) and torch.equal(g1, g2)
    assert sum(float(s.sum()) for s, _, _ in runs[0]) > 0
