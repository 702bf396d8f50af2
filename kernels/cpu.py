"""CPU kernels: numba ``njit(parallel=True)`` over blocks of neurons, time as the inner loop.

Layout: input ``x[T, N]``, state ``state[S, N]`` (updated in place), parameters ``params[P, N]``,
options ``opts[O]`` (int64), spikes ``spikes[T, N]``, optional record ``rec[T, S, N]`` (state after each
step). Neurons are split in blocks over threads with ``prange``; each block runs all T steps in its own
njit function so the loop over the block's neurons vectorises and its state stays in L1.
Each neuron is independent, so any thread count gives the same spikes.
"""

from __future__ import annotations

from functools import lru_cache

from neuro.kernels.codegen import importable_name, load, names
from neuro.models._base import Dynamics

BLOCK = 512

_JIT = 'numba.njit(cache=True, nogil=True, error_model="numpy")'
_PJIT = 'numba.njit(cache=True, nogil=True, parallel=True, error_model="numpy")'


def _imports(dyn: Dynamics, surrogate=None) -> tuple[str, dict | None]:
    mod, attr = importable_name(dyn.step)
    lines = ["import numba", "import numpy as np", f"from {mod} import {attr} as _step"]
    inject = None
    if surrogate is not None:
        mk = importable_name(dyn.make_backward)
        sg = importable_name(surrogate)
        lines.append(f"from {mk[0]} import {mk[1]} as _make_backward")
        if sg is None:
            inject = {"_sg": surrogate}
        else:
            lines.append(f"from {sg[0]} import {sg[1]} as _sg")
        lines.append("_backward = _make_backward(_sg)")
    return "\n".join(lines) + "\n\n", inject


def _forward_source(dyn: Dynamics) -> str:
    S, P, O = len(dyn.state), len(dyn.params), len(dyn.options)
    s, p, o = names("s", S), names("p", P), names("o", O)
    load_o = "".join(f"    {v} = opts[{k}]\n" for k, v in enumerate(o))
    call = ", ".join([f"state[{k}, i]" for k in range(S)] + ["x[t, i]"] + [f"params[{k}, i]" for k in range(P)]
                     + o + ["dt"])
    store = "".join(f"            state[{k}, i] = {v}\n" for k, v in enumerate(s))
    rec = "".join(f"            rec[t, {k}, i] = {v}\n" for k, v in enumerate(s))
    out = []
    for suffix, extra in (("", ""), ("_rec", rec)):
        out.append(f"""
@{_JIT}
def _block{suffix}(x, state, params, opts, dt, spikes, rec, lo, hi):
{load_o}    for t in range(x.shape[0]):
        for i in range(lo, hi):
            {", ".join(s)}, spk = _step({call})
{store}            spikes[t, i] = spk
{extra}
""")
    out.append(f"""
@{_PJIT}
def forward(x, state, params, opts, dt, spikes, rec, block, record):
    n = x.shape[1]
    nblocks = (n + block - 1) // block
    for b in numba.prange(nblocks):
        lo = b * block
        hi = min(lo + block, n)
        if record:
            _block_rec(x, state, params, opts, dt, spikes, rec, lo, hi)
        else:
            _block(x, state, params, opts, dt, spikes, rec, lo, hi)
""")
    return "".join(out)


def _backward_source(dyn: Dynamics) -> str:
    S, P, O = len(dyn.state), len(dyn.params), len(dyn.options)
    o = names("o", O)
    gs, gp = names("gs", S), names("gp", P)
    load_o = "".join(f"    {v} = opts[{k}]\n" for k, v in enumerate(o))

    def body(prev: str, with_grec: bool) -> str:
        carried = [f"g_state[{k}, i]" + (f" + g_rec[t, {k}, i]" if with_grec else "") for k in range(S)]
        call = ", ".join([prev.format(k=k) for k in range(S)] + ["x[t, i]"]
                         + [f"params[{k}, i]" for k in range(P)] + o + ["dt", "slope", "g_spikes[t, i]"] + carried)
        lines = [f"            {', '.join(gs)}, gx, {', '.join(gp)} = _backward({call})"]
        lines += [f"            g_state[{k}, i] = {v}" for k, v in enumerate(gs)]
        lines += ["            g_x[t, i] = gx"]
        lines += [f"            g_params[{k}, i] += {v}" for k, v in enumerate(gp)]
        return "\n".join(lines) + "\n"

    out = []
    for suffix, with_grec in (("", False), ("_grec", True)):
        out.append(f"""
@{_JIT}
def _bblock{suffix}(x, init, rec, params, opts, dt, slope, g_spikes, g_rec, g_x, g_params, g_state, lo, hi):
{load_o}    for t in range(x.shape[0] - 1, 0, -1):
        for i in range(lo, hi):
{body("rec[t - 1, {k}, i]", with_grec)}    if x.shape[0] > 0:
        t = 0
        for i in range(lo, hi):
{body("init[{k}, i]", with_grec)}
""")
    out.append(f"""
@{_PJIT}
def backward(x, init, rec, params, opts, dt, slope, g_spikes, g_rec, g_x, g_params, g_state, block, has_grec):
    n = x.shape[1]
    nblocks = (n + block - 1) // block
    for b in numba.prange(nblocks):
        lo = b * block
        hi = min(lo + block, n)
        if has_grec:
            _bblock_grec(x, init, rec, params, opts, dt, slope, g_spikes, g_rec, g_x, g_params, g_state, lo, hi)
        else:
            _bblock(x, init, rec, params, opts, dt, slope, g_spikes, g_rec, g_x, g_params, g_state, lo, hi)
""")
    return "".join(out)


@lru_cache(maxsize=None)
def forward_kernel(dyn: Dynamics):
    """The jitted multi-step forward kernel of ``dyn`` (compiled on first call, cached on disk)."""
    head, _ = _imports(dyn)
    return load(f"{dyn.name}_cpu_fwd", head + _forward_source(dyn)).forward


@lru_cache(maxsize=None)
def backward_kernel(dyn: Dynamics, surrogate_grad):
    """The jitted reverse-time backward kernel of ``dyn`` with the given surrogate derivative."""
    if dyn.make_backward is None:
        raise ValueError(f"model {dyn.name!r} has no backward step (it is not trainable)")
    head, inject = _imports(dyn, surrogate_grad)
    if inject:
        inject = {**inject}
    return load(f"{dyn.name}_cpu_bwd", head + _backward_source(dyn), inject).backward
