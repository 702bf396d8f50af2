"""CPU kernels: numba ``njit(parallel=True)`` over blocks of neurons, time as the inner loop.

Layout: input ``x[T, N]``, state ``state[S, N]`` (updated in place), parameters ``params[P, N]``,
options ``opts[O]`` (int64), spikes ``spikes[T, N]``, optional record ``rec[T, S, N]`` (state after each
step). Neurons are split in blocks over threads with ``prange``; each block runs all T steps in its own
njit function, on local copies of its state and parameter rows (fresh arrays, so LLVM can prove they
do not alias the input and output), which lets the loop over the block's neurons vectorise; measured
on this machine, the same loop written over the shared arrays ran about 6x slower, unvectorised.
Each neuron is independent, so any thread count gives the same spikes.
"""

from __future__ import annotations

from functools import cache

import numba
import numpy as np

from neuro.kernels.codegen import importable_name, load, names
from neuro.models._base import Dynamics

BLOCK = 4096

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


def _locals(prefix: str, array: str, rows, indent: str = "    ") -> str:
    """Copy rows of ``array`` (``rows``: a count or the row indices) for this block into fresh local arrays
    (lets LLVM prove no aliasing)."""
    rows = range(rows) if isinstance(rows, int) else rows
    return "".join(f"{indent}{prefix}{k} = {array}[{k}, lo:hi].copy()\n" for k in rows)


def _load_options(o: list[str], values: tuple[int, ...] | None) -> str:
    """Options become compile-time constants when known, so LLVM drops the reset modes not in use."""
    if values is None:
        return "".join(f"    {v} = opts[{k}]\n" for k, v in enumerate(o))
    return "".join(f"    {v} = {int(values[k])}\n" for k, v in enumerate(o))


def _forward_source(dyn: Dynamics, options: tuple[int, ...] | None = None) -> str:
    S, P, n_opt = len(dyn.state), len(dyn.params), len(dyn.options)
    s, p, o = names("s", S), names("p", P), names("o", n_opt)
    load_o = _load_options(o, options)
    call = ", ".join([f"{v}[i]" for v in s] + ["xt[i]"] + [f"{v}[i]" for v in p] + o + ["dt"])
    new = names("n", S)
    store = "".join(f"            {v}[i] = {w}\n" for v, w in zip(s, new, strict=True))
    rec_rows = "".join(f"        r{k} = rec[t, {k}, lo:hi]\n" for k in range(S))
    rec = "".join(f"            r{k}[i] = {w}\n" for k, w in enumerate(new))
    write_back = "".join(f"    state[{k}, lo:hi] = {v}\n" for k, v in enumerate(s))
    out = []
    for suffix, rows, extra in (("", "", ""), ("_rec", rec_rows, rec)):
        out.append(f"""
@{_JIT}
def _block{suffix}(x, state, params, opts, dt, spikes, rec, lo, hi):
{load_o}{_locals("s", "state", S)}{_locals("p", "params", P)}    m = hi - lo
    for t in range(x.shape[0]):
        xt = x[t, lo:hi]
        st = spikes[t, lo:hi]
{rows}        for i in range(m):
            {", ".join(new)}, spk = _step({call})
{store}            st[i] = spk
{extra}{write_back}
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


def _backward_source(dyn: Dynamics, options: tuple[int, ...] | None = None) -> str:
    S, P, n_opt = len(dyn.state), len(dyn.params), len(dyn.options)
    o = names("o", n_opt)
    gs, gp, p = names("gs", S), names("gp", P), names("p", P)
    load_o = _load_options(o, options)

    def step_body(with_grec: bool) -> str:
        carried = [f"c{k}[i]" + (f" + gr{k}[i]" if with_grec else "") for k in range(S)]
        call = ", ".join([f"prev{k}[i]" for k in range(S)] + ["xt[i]"] + [f"{v}[i]" for v in p] + o
                         + ["dt", "slope", "gst[i]"] + carried)
        lines = [f"            {', '.join(gs)}, gx, {', '.join(gp)} = _backward({call})"]
        lines += [f"            c{k}[i] = {v}" for k, v in enumerate(gs)]
        lines += ["            gxt[i] = gx"]
        lines += [f"            a{k}[i] += {v}" for k, v in enumerate(gp)]
        return "\n".join(lines) + "\n"

    out = []
    for suffix, with_grec in (("", False), ("_grec", True)):
        grec_rows = "".join(f"        gr{k} = g_rec[t, {k}, lo:hi]\n" for k in range(S)) if with_grec else ""
        prev_rows = "".join(f"            prev{k} = rec[t - 1, {k}, lo:hi]\n" for k in range(S))
        init_rows = "".join(f"            prev{k} = init[{k}, lo:hi]\n" for k in range(S))
        write_back = "".join(f"    g_state[{k}, lo:hi] = c{k}\n" for k in range(S)) + "".join(
            f"    g_params[{k}, lo:hi] = a{k}\n" for k in range(P))
        out.append(f"""
@{_JIT}
def _bblock{suffix}(x, init, rec, params, opts, dt, slope, g_spikes, g_rec, g_x, g_params, g_state, lo, hi):
{load_o}{_locals("p", "params", P)}{_locals("c", "g_state", S)}{_locals("a", "g_params", P)}    m = hi - lo
    for t in range(x.shape[0] - 1, -1, -1):
        if t > 0:
{prev_rows}        else:
{init_rows}        xt = x[t, lo:hi]
        gst = g_spikes[t, lo:hi]
        gxt = g_x[t, lo:hi]
{grec_rows}        for i in range(m):
{step_body(with_grec)}{write_back}
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


@cache
def forward_kernel(dyn: Dynamics, options: tuple[int, ...] | None = None):
    """The jitted multi-step forward kernel of ``dyn`` (compiled on first call, cached on disk),
    specialised for the given option values (or reading them from ``opts`` at run time if None)."""
    head, _ = _imports(dyn)
    return load(f"{dyn.name}_cpu_fwd", head + _forward_source(dyn, options)).forward


@cache
def backward_kernel(dyn: Dynamics, surrogate_grad, options: tuple[int, ...] | None = None):
    """The jitted reverse-time backward kernel of ``dyn`` with the given surrogate derivative."""
    if dyn.make_backward is None:
        raise ValueError(f"model {dyn.name!r} has no backward step (it is not trainable)")
    head, inject = _imports(dyn, surrogate_grad)
    if inject:
        inject = {**inject}
    return load(f"{dyn.name}_cpu_bwd", head + _backward_source(dyn, options), inject).backward


# -- lean kernels: checkpointed state, low-precision input, per-sample parameter rows ------------------------
#
# What a training layer keeps for backward is its input (in the input's own dtype) and the state every K
# steps (``ckpt[C, S, N]``, C = ceil(T / K)); the backward kernel recomputes the K states of one segment
# into its thread's segment buffer and runs the reverse sweep over them. The recomputation calls the same step
# function on the same float32 values, so it reproduces the forward states bitwise.
#
# Input formats: "float32", or "bfloat16" / "float16" passed as their raw uint16 bits (numba has no CPU
# float16 or bfloat16 type): a row of one block is decoded into a block-local float32 buffer, exactly
# (every bfloat16 and float16 value is a float32), so there is never an upcast copy of the whole input.
# Spikes and the input gradient are written back in the input's format (gradients rounded to nearest even,
# as torch's ``.to(dtype)`` rounds). Parameters come as ``[P, M]`` rows for one sample's M neurons (N = B M)
# and are gathered per block, instead of B copies.

FORMATS = ("float32", "bfloat16", "float16")
_ONE_BITS = {"bfloat16": 0x3F80, "float16": 0x3C00}

# 2 ** (max(e, 1) - 25) for a float16 exponent field e: value = (mantissa | implicit bit) * _F16_SCALE[e]
_F16_SCALE = np.array([2.0 ** (max(e, 1) - 25) for e in range(32)], np.float32)


@numba.njit(inline="always", cache=True)
def f16_value(h):
    """The float32 value of float16 bits ``h`` (exact; finite values, inf for the all-ones exponent)."""
    b = np.int32(h)
    e = (b >> 10) & 0x1F
    m = b & 0x3FF
    if e == 31:
        mag = np.float32(np.inf) if m == 0 else np.float32(np.nan)
    else:
        mag = np.float32(m | (0x400 if e > 0 else 0)) * _F16_SCALE[e]
    return -mag if b & 0x8000 else mag


@numba.njit(inline="always", cache=True)
def f16_bits(f):
    """float16 bits of the float32 with bits ``f`` (uint32), rounded to nearest even (numpy's algorithm)."""
    f = np.uint32(f)
    h_sgn = np.uint32((f & np.uint32(0x80000000)) >> np.uint32(16))
    f_exp = f & np.uint32(0x7F800000)
    if f_exp >= np.uint32(0x47800000):  # overflow to inf, or inf / nan
        if f_exp == np.uint32(0x7F800000) and (f & np.uint32(0x007FFFFF)) != 0:
            return np.uint16(h_sgn | np.uint32(0x7E00))
        return np.uint16(h_sgn | np.uint32(0x7C00))
    if f_exp <= np.uint32(0x38000000):  # subnormal half or signed zero
        if f_exp < np.uint32(0x33000000):
            return np.uint16(h_sgn)
        e = f_exp >> np.uint32(23)
        f_sig = np.uint32(0x00800000) + (f & np.uint32(0x007FFFFF))
        f_sig = f_sig >> (np.uint32(113) - e)
        if (f_sig & np.uint32(0x3FFF)) != np.uint32(0x1000) or (f & np.uint32(0x7FF)) != 0:
            f_sig += np.uint32(0x1000)
        return np.uint16(h_sgn + (f_sig >> np.uint32(13)))
    h_exp = (f_exp - np.uint32(0x38000000)) >> np.uint32(13)
    f_sig = f & np.uint32(0x007FFFFF)
    if (f_sig & np.uint32(0x3FFF)) != np.uint32(0x1000):
        f_sig += np.uint32(0x1000)
    return np.uint16(h_sgn + ((f_sig >> np.uint32(13)) + h_exp))


@numba.njit(inline="always", cache=True)
def bf16_bits(f):
    """bfloat16 bits of the float32 with bits ``f`` (uint32), rounded to nearest even (as torch does)."""
    f = np.uint32(f)
    if (f & np.uint32(0x7F800000)) == np.uint32(0x7F800000) and (f & np.uint32(0x007FFFFF)) != 0:
        return np.uint16((f >> np.uint32(16)) | np.uint32(0x0040))  # quiet nan
    f = f + np.uint32(0x7FFF) + ((f >> np.uint32(16)) & np.uint32(1))
    return np.uint16(f >> np.uint32(16))


def _decode(fmt: str, row: str, buf: str, indent: str) -> str:
    """Fill the block-local float32 ``buf`` (with uint32 view ``buf_u``) from the uint16 ``row``."""
    if fmt == "float32":
        return ""
    body = (f"{buf}_u[i] = np.uint32({row}[i]) << np.uint32(16)" if fmt == "bfloat16"
            else f"{buf}[i] = f16_value({row}[i])")
    return f"{indent}for i in range(m):\n{indent}    {body}\n"


def _buffers(fmt: str, names_: list[str]) -> str:
    if fmt == "float32":
        return ""
    return "".join(f"    {b}_u = np.empty(m, np.uint32)\n    {b} = {b}_u.view(np.float32)\n" for b in names_)


def _gather(prefix: str, n: int, uniform: bool = False) -> str:
    """Block-local parameter rows gathered from per-sample rows ``params[P, M]`` (neuron j uses column j % M),
    or, ``uniform``, one scalar per parameter from ``params[P, 1]``: the loop then loads only the state and
    the input per neuron and step (1.2x faster forward and backward on a [25, 128000] LIF layer, measured)."""
    if uniform:
        return "".join(f"    {prefix}{k} = params[{k}, 0]\n" for k in range(n))
    lines = "".join(f"    {prefix}{k} = np.empty(m, np.float32)\n" for k in range(n))
    body = "".join(f"        {prefix}{k}[i] = params[{k}, j]\n" for k in range(n))
    return lines + f"    for i in range(m):\n        j = (lo + i) % params.shape[1]\n{body}"


def _param_args(n: int, uniform: bool) -> list[str]:
    return [f"p{k}" if uniform else f"p{k}[i]" for k in range(n)]


def _state_args(prefix: str, n: int, inert: tuple[int, ...]) -> list[str]:
    return ["_Z" if k in inert else f"{prefix}{k}[i]" for k in range(n)]


# The spikes' bits (``np.packbits(spikes != 0)`` of the flattened [T, N] spikes, for the synaptic layer after a
# spiking layer: neuro.nn.spike_inputs), written from each block's row of spikes just after the step wrote it
# (still in cache) when ``bits`` is not empty; a separate pass over the spikes costs 0.4-0.6 ms on the MLP's
# [25, 128000] (RESULTS.md, "Training step"). Needs N % 8 == 0, so that every block's row starts on a byte.
_PACK_ROW = """\
        if bits.shape[0] > 0:
            pack_span(sflat, t * x.shape[1] + lo, m, smask, bits)
"""


def _lean_forward_source(dyn: Dynamics, fmt: str, record_v: bool = False,
                         options: tuple[int, ...] | None = None, uniform: bool = False,
                         inert: tuple[int, ...] = ()) -> str:
    S, P, n_opt = len(dyn.state), len(dyn.params), len(dyn.options)
    o, new = names("o", n_opt), names("n", S)
    live = [k for k in range(S) if k not in inert]  # inert states (Dynamics.inert) are the constant _Z
    mem = dyn.state.index(dyn.membrane)
    xv = "xt[i]" if fmt == "float32" else "xb[i]"
    call = ", ".join(_state_args("s", S, inert) + [xv] + _param_args(P, uniform) + o + ["dt"])
    store = "".join(f"            s{k}[i] = n{k}\n" for k in live)
    spk = "spk" if fmt == "float32" else f"np.uint16({_ONE_BITS[fmt]}) if spk > 0 else np.uint16(0)"
    # with inert states the checkpoints hold the live states only (row r: state live[r])
    ckpt = "".join(f"            ckpt[c, {r}, lo:hi] = s{k}\n" for r, k in enumerate(live))
    write_back = "".join(f"    state[{k}, lo:hi] = s{k}\n" for k in live)
    # nan_x[b]: NaN when block b's input holds a NaN or an infinity (x * 0 is NaN exactly then), so the input
    # is checked in the pass that reads it anyway, not by a separate reduction over the whole tensor
    return f"""
@{_JIT}
def _lblock(x, state, params, opts, dt, spikes, ckpt, vrec, every, nan_x, bits, b, lo, hi):
{_load_options(o, options)}{_locals("s", "state", live)}    _Z = np.float32(0.0)
    m = hi - lo
{_spike_words(fmt)}
{_gather("p", P, uniform)}{_buffers(fmt, ["xb"])}    zx = np.zeros(m, np.float32)
    for t in range(x.shape[0]):
        if ckpt.shape[0] > 0 and t % every == 0:
            c = t // every
{ckpt}        xt = x[t, lo:hi]
{_decode(fmt, "xt", "xb", "        ")}        st = spikes[t, lo:hi]
{"        vr = vrec[t, lo:hi]" + chr(10) if record_v else ""}        for i in range(m):
            {", ".join(new)}, spk = _step({call})
{store}            st[i] = {spk}
            zx[i] += {xv} * np.float32(0.0)
{f"            vr[i] = n{mem}" + chr(10) if record_v else ""}{_PACK_ROW}{write_back}    nan_x[b] = zx.sum()


@{_PJIT}
def forward(x, state, params, opts, dt, spikes, ckpt, vrec, every, nan_x, bits, block):
    n = x.shape[1]
    nblocks = (n + block - 1) // block
    for b in numba.prange(nblocks):
        lo = b * block
        hi = min(lo + block, n)
        _lblock(x, state, params, opts, dt, spikes, ckpt, vrec, every, nan_x, bits, b, lo, hi)
"""


def _lean_backward_source(dyn: Dynamics, fmt: str, options: tuple[int, ...] | None = None,
                          grad_params: bool = True, with_gv: bool = False, uniform: bool = False,
                          inert: tuple[int, ...] = ()) -> str:
    S, P, n_opt = len(dyn.state), len(dyn.params), len(dyn.options)
    live = [k for k in range(S) if k not in inert]  # inert states (Dynamics.inert) are the constant _Z
    o, new = names("o", n_opt), names("n", S)
    gs, gp = names("gs", S), names("gp", P)
    mem = dyn.state.index(dyn.membrane)
    low = fmt != "float32"
    xv = "xb[i]" if low else "xt[i]"
    p_args = _param_args(P, uniform)
    # ``work[S, every, block]`` is the calling numba thread's segment buffer, kept by the caller between calls:
    # allocated per block (512 KB), it came fresh from the OS and page-faulted in every block of a training step
    # (both backward kernels of an MLP step: 7.4 ms per step so, 6.6 ms kept; RESULTS.md "Training step").
    # The recomputation writes each segment's states straight into its rows ``seg[k][j]`` (the
    # state before step t0 + j); the reverse sweep copies row j into the fresh rows ``q`` in the loop that
    # reads the incoming gradient. Read as ``seg[k][j, i]`` in the sweep itself, the sweep did not vectorise
    # (LLVM cannot prove the rows do not alias g_x): 2x slower; copied in separate passes, the copies cost
    # as much as the arithmetic (RESULTS.md, "Training step").
    step_call = ", ".join(_state_args("s", S, inert) + [xv] + p_args + o + ["dt"])
    advance = "".join(f"                s{k}[i] = n{k}\n                seg{k}[j + 1, i] = n{k}\n" for k in live)
    restore = ("".join(f"        ck{k} = ckpt[c, {r}, lo:hi]\n" for r, k in enumerate(live))
               + "        for i in range(m):\n"
               + "".join(f"            s{k}[i] = ck{k}[i]\n            seg{k}[0, i] = ck{k}[i]\n" for k in live))
    # g_spikes' row is copied (or decoded) into a fresh buffer before g_x's row is written: g_x may be
    # g_spikes itself (neuro.nn.functional reuses a dead incoming-gradient buffer)
    copy_row = "".join(f"                q{k}[i] = seg{k}[j, i]\n" for k in live)
    read_row = (_decode(fmt, "gst", "gsb", "            ") + "            for i in range(m):\n" + copy_row if low
                else "            for i in range(m):\n                gsb[i] = gst[i]\n" + copy_row)
    encode = "" if not low else (
        "            gxo = g_x[t, lo:hi]\n            for i in range(m):\n"
        f"                gxo[i] = {'bf16_bits' if fmt == 'bfloat16' else 'f16_bits'}(gxb_u[i])\n")
    carried = ["_Z" if k in inert else f"c{k}[i]" + (" + gv[i]" if with_gv and k == mem else "") for k in range(S)]
    call = ", ".join(_state_args("q", S, inert) + [xv] + p_args + o + ["dt", "slope", "gsb[i]"] + carried)
    body = [f"                {', '.join(gs)}, gx, {', '.join(gp)} = _backward({call})"]
    body += [f"                c{k}[i] = gs{k}" for k in live]
    body += [f"                {'gxb' if low else 'gxt'}[i] = gx"]
    if grad_params:  # else the parameter gradients are dead code, and LLVM drops their arithmetic
        body += [f"                a{k}[i] += {v}" for k, v in enumerate(gp)]
    bufs = _buffers(fmt, ["xb", "gsb", "gxb"]) if low else "    gsb = np.empty(m, np.float32)\n"
    accumulators = "".join(f"    a{k} = np.zeros(m, np.float32)\n" for k in range(P)) if grad_params else ""
    state_bufs = "".join(f"    s{k} = np.empty(m, np.float32)\n    q{k} = np.empty(m, np.float32)\n"
                         f"    seg{k} = work[{k}]\n" for k in live)
    # an inert state's gradient is 0 after the first step back (its backward returns 0), whatever g_final was
    write_back = "".join(f"    g_state[{k}, lo:hi] = {'_Z' if k in inert else f'c{k}'}\n" for k in range(S))
    if grad_params:
        write_back += "".join(f"    g_params[{k}, lo:hi] = a{k}\n" for k in range(P))
    return f"""
@{_JIT}
def _lbblock(x, ckpt, params, opts, dt, slope, g_spikes, g_v, g_x, g_params, g_state, every, lo, hi, work):
{_load_options(o, options)}    _Z = np.float32(0.0)
    m = hi - lo
{_gather("p", P, uniform)}{_locals("c", "g_state", live)}{accumulators}{state_bufs}{bufs}\
    T = x.shape[0]
    for c in range((T + every - 1) // every - 1, -1, -1):
        t0 = c * every
        t1 = min(T, t0 + every)
{restore}        for t in range(t0, t1 - 1):
            j = t - t0
            xt = x[t, lo:hi]
{_decode(fmt, "xt", "xb", "            ")}            for i in range(m):
                {", ".join(new)}, spk = _step({step_call})
{advance}        for t in range(t1 - 1, t0 - 1, -1):
            j = t - t0
            xt = x[t, lo:hi]
            gst = g_spikes[t, lo:hi]
            gxt = g_x[t, lo:hi]
{_decode(fmt, "xt", "xb", "            ")}{read_row}\
{"            gv = g_v[t, lo:hi]" + chr(10) if with_gv else ""}            for i in range(m):
{chr(10).join(body)}
{encode}{write_back}

@{_PJIT}
def backward(x, ckpt, params, opts, dt, slope, g_spikes, g_v, g_x, g_params, g_state, every, block, work):
    n = x.shape[1]
    nblocks = (n + block - 1) // block
    for b in numba.prange(nblocks):
        lo = b * block
        hi = min(lo + block, n)
        _lbblock(x, ckpt, params, opts, dt, slope, g_spikes, g_v, g_x, g_params, g_state, every, lo, hi,
                 work[numba.get_thread_id()])
"""


def _spike_words(fmt: str) -> str:
    """The spikes as unsigned words with the mask of all bits but the sign (for :data:`_PACK_ROW`)."""
    if fmt == "float32":
        return "    sflat = spikes.reshape(-1).view(np.uint32)\n    smask = np.uint32(0x7FFFFFFF)\n"
    return "    sflat = spikes.reshape(-1)\n    smask = np.uint16(0x7FFF)\n"


def _lean_imports(dyn: Dynamics, fmt: str, surrogate=None) -> tuple[str, dict | None]:
    head, inject = _imports(dyn, surrogate)
    if fmt != "float32":
        head = head.rstrip("\n") + "\nfrom neuro.kernels.cpu import bf16_bits, f16_bits, f16_value  # noqa: F401\n\n"
    return head, inject


@cache
def lean_forward_kernel(dyn: Dynamics, fmt: str = "float32", record_v: bool = False,
                        options: tuple[int, ...] | None = None, uniform: bool = False, inert: tuple[int, ...] = ()):
    """The forward kernel that writes state checkpoints (see the section comment) for input format ``fmt``,
    recording the membrane after each step when ``record_v``; specialised for the option values ``options``,
    ``uniform`` parameters (``params[P, 1]``) and ``inert`` states as :func:`lean_backward_kernel` is."""
    head, _ = _lean_imports(dyn, fmt)
    head = head.rstrip("\n") + "\nfrom neuro.kernels.bits import pack_span\n\n"
    source = _lean_forward_source(dyn, fmt, record_v, options, uniform, inert)
    return load(f"{dyn.name}_cpu_lfwd_{fmt}", head + source).forward


@cache
def lean_backward_kernel(dyn: Dynamics, surrogate_grad, fmt: str = "float32", options: tuple[int, ...] | None = None,
                         grad_params: bool = True, with_gv: bool = False, uniform: bool = False,
                         inert: tuple[int, ...] = ()):
    """The backward kernel that recomputes each segment's states from its checkpoint.

    Specialised (one compile each, cached on disk) for the option values ``options`` (or reading them from
    ``opts`` at run time if None: 1.4-1.8x slower, measured), for ``grad_params`` (False: ``g_params`` is left
    untouched and its arithmetic is not compiled), for ``with_gv`` (a gradient reaching the membrane record) and
    for ``uniform`` parameters (``params[P, 1]``: one scalar each, not a row per neuron) and for ``inert``
    states (indices of :attr:`Dynamics.inert` states known to stay 0 in this call: not loaded, stored or
    carried).
    """
    if dyn.make_backward is None:
        raise ValueError(f"model {dyn.name!r} has no backward step (it is not trainable)")
    head, inject = _lean_imports(dyn, fmt, surrogate_grad)
    source = _lean_backward_source(dyn, fmt, options, grad_params, with_gv, uniform, inert)
    return load(f"{dyn.name}_cpu_lbwd_{fmt}", head + source, inject).backward
