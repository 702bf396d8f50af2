"""Linear and convolution layers over spike inputs, with the spikes kept packed for backward.

A synaptic layer after a spiking layer needs its input ``S`` (0/1 spikes) again in backward, for the weight
gradient. torch keeps ``S`` as the float tensor it is (``[T, B, N]`` float32: 4 bytes a spike); here it is kept
packed (1 bit a spike, or 1 byte with ``PACK = "uint8"``) and unpacked a chunk of rows at a time in backward,
so no full float copy of the spikes is alive after the forward call. Packing is exact: every value is 0 or 1.

With ``S [M, K]`` (``M = T B`` rows), ``W [out, K]``, ``dY = dL/dY [M, out]`` and rows split in chunks
``S_c``, ``dY_c`` of at most :data:`CHUNK_BYTES` bytes unpacked:

    Linear   forward:  Y = S W^T + b
             backward: dW = sum_c dY_c^T S_c,   db = sum_rows dY,   dS = dY W          (dS needs only W)
    Conv2d   forward:  Y = conv2d(S, W) + b
             backward: dW = sum_c conv2d_weight(S_c, dY_c),   db = sum_{n, h, w} dY,
                       dS = conv2d_input(W, dY) (the transposed convolution of dY; only W is needed)

computed with ``torch.ops.aten.convolution_backward`` (what ``torch.nn.grad.conv2d_weight`` / ``conv2d_input``
call) in the dtype the forward computed in: the input's, or the ``torch.autocast`` dtype, whose gradients
come back cast to the dtype of each input as autocast's own casts would return them. With one chunk the
arithmetic is torch's own backward (bit-equal gradients); with several, ``dW`` (and the conv's ``db``) is a
sum over chunks in float32 or wider, another summation order. A narrow Linear (at most
:data:`SPARSE_GRAD_OUT` outputs, ``K % 8 == 0``) sums ``dW`` from the bits without unpacking them
(:mod:`neuro.kernels.spike_grad`). With at most :data:`DENSE_GRAD_OUT` outputs and more than
:data:`DENSE_GRAD_FROM_RATE` ones among the spikes it sums over every bit in float32, as the GEMM sums; else, over
sparse spikes (at most :data:`SPARSE_GRAD_RATE` ones), over the set bits alone in float64, a sum more exact than
the float32 GEMM's. The conv's forward and ``dS`` also run in
pieces of images (one call over many images holds a second copy of its output for a moment). A chunked
:class:`~neuro.nn.TimeDistributed` over spikes builds its output with :func:`cat_as_made` instead of a list
and ``torch.cat``, so finished parts are not held twice.

Which tensors are spikes: the :mod:`neuro.nn` spiking layers mark the spike tensor they return
(:func:`mark_spikes`); :class:`neuro.nn.Flatten` passes the mark on to its view. A mark records the tensor's
version counter, so after any in-place change of the tensor (or of a view sharing its storage) it no longer
counts (edits that bypass the counter, through ``.data`` or a NumPy view, are not seen, as autograd does not
see them either); any other tensor (a copy, a slice, ``s * 1.0``, a concatenation) is unmarked. The mark is an attribute
of the tensor object, so it dies with it. :class:`neuro.nn.TimeDistributed` sends a marked input through
:func:`module_over_spikes`: ``nn.Linear``, ``nn.Conv2d`` (zero padding given as numbers), alone or first in an
``nn.Sequential``, on the CPU, without module hooks, while something needs a gradient; everything else runs
as before. While training on the CPU, a spiking layer's kernel also writes the spikes' bits as it writes the
spikes (when a time step holds a multiple of 8 spikes) and marks them with the spikes (:func:`spike_bits`):
the layer after it keeps those, with no packing pass of its own.

Example:
    >>> import torch, neuro
    >>> lif, fc = neuro.nn.LIF(beta=0.9), neuro.nn.TimeDistributed(torch.nn.Linear(20, 3))
    >>> s = lif(torch.rand(10, 4, 20) * 2)                  # [T, B, 20] spikes, marked
    >>> neuro.nn.spike_inputs.is_spikes(s), neuro.nn.spike_inputs.is_spikes(s.clone())
    (True, False)
    >>> fc(s).sum().backward()                               # S saved as bits, unpacked in chunks
    >>> w_grad = fc.layer.weight.grad.clone(); fc.layer.weight.grad = None
    >>> fc(s.clone()).sum().backward()                       # the plain path (unmarked input)
    >>> torch.allclose(w_grad, fc.layer.weight.grad)
    True
"""

from __future__ import annotations

import contextlib

import numba
import numpy as np
import torch
from torch import nn
from torch.nn.modules import module as _module

from neuro.kernels import bits as _bits
from neuro.kernels import spike_grad as _spike_grad

#: how the spikes are kept for backward: "bits" (1 bit a spike, numpy.packbits) or "uint8" (1 byte a spike)
PACK = "bits"
#: bytes of one chunk of unpacked spikes in backward and of one piece of a conv's output (rows per chunk: a
#: multiple of 8, at least 8). Each chunk is one more call, which costs time whatever its size on this 2-core
#: machine (one conv backward over 640 images 104 ms, in two calls 160 ms); 8 MiB keeps the CSNN's conv over
#: spikes in one backward call per TimeDistributed chunk (packed / plain step time 1.04 in a paired run; 4 MiB:
#: 1.33) for +2 MB of peak (RESULTS.md, "Training step")
CHUNK_BYTES = 8 << 20
#: False: every input takes the plain path, as before this module (benchmarks/train_step.py --plain-spikes)
ENABLED = True
#: a Linear's weight gradient is summed from the kept bits (neuro.kernels.spike_grad), never unpacked to floats,
#: when it has at most SPARSE_GRAD_OUT outputs: over the set bits alone (float64) while at most SPARSE_GRAD_RATE of
#: the spikes are ones (a sample of the bits), and, with at most DENSE_GRAD_OUT outputs (float32 dY), over every bit
#: once more than DENSE_GRAD_FROM_RATE are. [3200, 1000] spikes (RESULTS.md, "Training step"): on an AMD EPYC, 10
#: outputs, set bits 0.8 / 1.6 / 2.2 / 2.7 / 3.4 ms at 2 / 5.7 / 10 / 15 / 25% against 2.7-3.6 ms for unpack + GEMM,
#: 32 outputs 1.2-2.9 ms up to 15% against 3.8-4.0; on an Intel Xeon, 10 outputs, set bits 0.56 / 1.16 / 2.2 ms at
#: 2 / 5.7 / 21%, every bit 0.70-0.75 ms at any rate, unpack + GEMM 0.74-0.80 ms alone and about twice that inside
#: a training step (its floats go to cold memory)
SPARSE_GRAD_OUT = 32
SPARSE_GRAD_RATE = 0.15
DENSE_GRAD_OUT = 16
DENSE_GRAD_FROM_RATE = 0.03
#: numba threads for the bit kernels of :mod:`neuro.kernels.bits` (None: numba's own setting). 1, because a
#: parallel region waits for all its threads, and with another busy process on this 2-core machine one of them
#: is often descheduled for a scheduler slice (the torch regions :func:`_nonzero` avoids). Packing (3200, 1000)
#: float32 spikes, mean ms on 2 threads / 1 / NumPy (paired runs): quiet 0.18-0.23 / 0.29-0.34 / 0.42-0.46,
#: with one busy process beside 1.7-2.4 / 0.44-0.47 / 0.61-0.62
KERNEL_THREADS: int | None = 1

_MARK = "_neuro_spikes_version"
_BITS = "_neuro_spike_bits"


def mark_spikes(t: torch.Tensor, bits: torch.Tensor | None = None) -> torch.Tensor:
    """Mark ``t`` (0/1 values) as spikes at its current version; returns ``t``. Tensors made in inference mode
    (no version counter, no backward) and tensors under ``torch.compile`` tracing are left unmarked.

    ``bits``: ``np.packbits(t != 0)`` of the flattened ``t`` as uint8, when the spiking layer's kernel wrote it
    along with the spikes (:func:`neuro.kernels.forward_lean`, ``bits_out``); a layer over ``t`` then keeps
    these instead of packing ``t`` again (:func:`spike_bits`)."""
    if torch.compiler.is_compiling() or type(t) is not torch.Tensor or t.is_inference():
        return t
    setattr(t, _MARK, t._version)
    if bits is not None:
        setattr(t, _BITS, bits)
    return t


def is_spikes(t) -> bool:
    """True when ``t`` is a tensor marked by :func:`mark_spikes` and not modified in place since."""
    if torch.compiler.is_compiling() or type(t) is not torch.Tensor or t.is_inference():
        return False
    version = getattr(t, _MARK, None)
    return version is not None and t._version == version


def bits_wanted(neurons_per_step: int) -> bool:
    """Whether a spiking layer should have its kernel write the spikes' bits for :func:`mark_spikes`: while
    training, with bit packing on, and when each time step's spikes fill whole bytes."""
    return (ENABLED and PACK == "bits" and _bits.AVAILABLE and torch.is_grad_enabled()
            and neurons_per_step % 8 == 0)


def spike_bits(t) -> torch.Tensor | None:
    """The packed bits given with marked spikes ``t`` (:func:`mark_spikes`), when they still hold ``t``'s values
    in ``t``'s element order (``t`` unchanged and C-contiguous) and :data:`PACK` is ``"bits"``; else None."""
    bits = getattr(t, _BITS, None) if PACK == "bits" and is_spikes(t) else None
    if bits is None or not t.is_contiguous() or bits.numel() * 8 != t.numel():
        return None
    return bits


def pass_mark(src: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Mark ``out`` (a view or exact copy of ``src``'s values) when ``src`` is marked spikes; returns ``out``.
    ``src``'s bits go with the mark when ``out`` holds the same elements in the same order (a contiguous view
    of contiguous ``src``, e.g. a reshape)."""
    if not is_spikes(src):
        return out
    bits = spike_bits(src)
    same = (bits is not None and out.is_contiguous() and out.data_ptr() == src.data_ptr()
            and out.numel() == src.numel())
    return mark_spikes(out, bits if same else None)


# -- packing -------------------------------------------------------------------------------------------------
def _rows_per_chunk(s_shape: torch.Size, dtype: torch.dtype) -> int:
    row = max(1, int(np.prod(s_shape[1:], dtype=np.int64))) * torch.empty((), dtype=dtype).element_size()
    return max(8, (CHUNK_BYTES // row) // 8 * 8)  # a multiple of 8 rows starts every chunk on a whole byte


def _spans(n: int, step: int):
    """``(start, stop)`` of the fewest pieces of ``range(n)`` at most ``step`` long (``step`` a multiple of 8),
    of equal lengths rounded up to a multiple of 8 (no short last piece: a call costs time whatever its size)."""
    if n <= step:
        return [(0, n)]
    pieces = -(-n // step)
    size = -(-n // pieces)
    size = -(-size // 8) * 8  # <= step, a multiple of 8
    return [(start, min(n, start + size)) for start in range(0, n, size)]


def _nonzero(t: torch.Tensor) -> np.ndarray:
    """``t != 0`` as a NumPy bool array (NumPy: no torch parallel region per chunk, each of which can wait a
    whole scheduler slice for a descheduled thread on a loaded machine)."""
    t = t.detach()
    if t.dtype == torch.bfloat16:  # NumPy has no bfloat16: its bits, sign masked (-0.0 is zero too)
        return (t.view(torch.int16).numpy() & 0x7FFF) != 0
    return t.numpy() != 0


#: dtypes the bit kernels (:mod:`neuro.kernels.bits`) take, with the bit pattern of 1.0 for the 16-bit ones
_KERNEL_ONES = {torch.float32: None, torch.float64: None, torch.float16: None, torch.bfloat16: 0x3F80}


def _kernel_array(t: torch.Tensor) -> np.ndarray | None:
    """``t``'s elements as the flat NumPy array the bit kernels take (bfloat16 as its uint16 bits; a view, no
    copy), or None when they do not apply: not a C-contiguous CPU tensor of a dtype they take."""
    if t.dtype not in _KERNEL_ONES or t.device.type != "cpu" or not t.is_contiguous() or not _bits.AVAILABLE:
        return None
    t = t.detach()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(np.uint16).reshape(-1)
    return t.numpy().reshape(-1)


@contextlib.contextmanager
def _kernel_threads():
    """numba's thread count set to :data:`KERNEL_THREADS` inside (numba's setting is per calling thread)."""
    if KERNEL_THREADS is None:
        yield
        return
    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(KERNEL_THREADS, numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _pack(s: torch.Tensor) -> torch.Tensor:
    """``s`` (0/1 in any float dtype, any strides) as uint8 of ``s``'s shape, or its flat bits (``PACK``),
    converted a chunk of rows at a time (no full-size temporary). Bits of a C-contiguous CPU chunk in a dtype
    of :data:`_KERNEL_ONES` come from :func:`neuro.kernels.bits.pack_nonzero` (the same bytes as the NumPy
    path, written straight into the result: no bool temporary), any other chunk's from NumPy."""
    m, row = s.shape[0], int(np.prod(s.shape[1:], dtype=np.int64))
    step = _rows_per_chunk(s.shape, torch.float32)  # bool temporaries of a quarter chunk (forward's peak)
    if PACK == "uint8":
        out = np.empty(tuple(s.shape), dtype=np.uint8)
        for start, stop in _spans(m, step):
            out[start:stop] = _nonzero(s[start:stop])
        return torch.from_numpy(out)
    out = np.empty(-(-m * row // 8), dtype=np.uint8)
    with _kernel_threads():
        for start, stop in _spans(m, step):  # a multiple of 8 rows a chunk: each starts on a whole byte
            dst = out[start * row // 8:-(-stop * row // 8)]
            chunk = s[start:stop]
            flat = _kernel_array(chunk)
            if flat is not None:
                _bits.pack_nonzero(flat, out=dst)
            else:
                dst[:] = np.packbits(_nonzero(chunk).reshape(-1))
    return torch.from_numpy(out)


def _unpack(packed: torch.Tensor, shape: torch.Size, start: int, stop: int, dtype: torch.dtype) -> torch.Tensor:
    """Rows ``start:stop`` of the packed spikes of ``shape`` as ``dtype`` (``start`` a multiple of 8). Bits
    unpack straight into the result with :func:`neuro.kernels.bits.unpack_bits` for the dtypes of
    :data:`_KERNEL_ONES` (the same values as the NumPy path, without its uint8 temporary)."""
    rows_shape = (stop - start, *shape[1:])
    if packed.shape == shape:  # uint8
        rows = packed.numpy()[start:stop]
    else:
        row = int(np.prod(shape[1:], dtype=np.int64))
        if dtype in _KERNEL_ONES and _bits.AVAILABLE:
            out = torch.empty(rows_shape, dtype=dtype)
            with _kernel_threads():
                _bits.unpack_bits(packed.numpy(), start * row, (stop - start) * row, _kernel_array(out),
                                  one=_KERNEL_ONES[dtype])
            return out
        rows = np.unpackbits(packed.numpy()[start * row // 8:-(-stop * row // 8)], count=(stop - start) * row)
    if dtype in (torch.float32, torch.float64, torch.float16):
        return torch.from_numpy(rows.astype(torch.empty((), dtype=dtype).numpy().dtype)).reshape(rows_shape)
    return torch.from_numpy(rows).reshape(rows_shape).to(dtype)


def _accumulate(acc: torch.Tensor | None, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``acc + a @ b`` (``a @ b`` alone first): sums of chunks in at least float32 (a 16-bit running sum
    would lose the small chunks' bits), one call per chunk when the product is float32 already."""
    if acc is None:
        part = a.mm(b)
        return part.to(torch.promote_types(part.dtype, torch.float32))
    if acc.dtype == a.dtype:
        return acc.addmm_(a, b)
    return acc.add_(a.mm(b))


def _add(acc: torch.Tensor | None, part: torch.Tensor) -> torch.Tensor:
    if acc is None:
        return part.to(torch.promote_types(part.dtype, torch.float32))
    return acc.add_(part)


# -- the autograd functions -----------------------------------------------------------------------------------
def _packed(s: torch.Tensor, bits: torch.Tensor | None) -> torch.Tensor:
    """``_pack(s)``, or ``bits`` when given (:func:`spike_bits` of the spikes ``s`` is a view of)."""
    return bits if bits is not None and PACK == "bits" and bits.numel() * 8 == s.numel() else _pack(s)


def _bit_grad_kernel(packed: torch.Tensor, s_shape: torch.Size, dy: torch.Tensor):
    """The :mod:`neuro.kernels.spike_grad` function that sums the Linear's weight gradient from the kept bits, or
    None for unpack + GEMM: a narrow output, rows starting on a byte, and no graph of the backward wanted
    (``create_graph``: the GEMM path keeps ``dW`` differentiable in ``dY``); then by the spike rate and the width
    (see :data:`SPARSE_GRAD_OUT`)."""
    if (torch.is_grad_enabled() or packed.dim() != 1 or s_shape[1] % 8
            or dy.dtype not in (torch.float32, torch.float64) or dy.shape[1] > SPARSE_GRAD_OUT):
        return None
    rate = _spike_grad.spike_rate(packed.numpy())
    if dy.shape[1] <= DENSE_GRAD_OUT and dy.dtype == torch.float32 and rate > DENSE_GRAD_FROM_RATE:
        return _spike_grad.weight_grad_dense
    return _spike_grad.weight_grad if rate <= SPARSE_GRAD_RATE else None


class _SpikeLinear(torch.autograd.Function):
    """``Y = S W^T + b`` with ``S [M, K]`` saved packed (see the module docstring)."""

    @staticmethod
    def forward(ctx, s, weight, bias, bits):
        y = nn.functional.linear(s, weight, bias)  # under the ambient autocast, as nn.Linear would run
        ctx.s_shape, ctx.s_dtype = s.shape, s.dtype
        ctx.bias_dtype = None if bias is None else bias.dtype
        packed = _packed(s, bits) if ctx.needs_input_grad[1] else None  # only the weight gradient reads S
        ctx.save_for_backward(packed, weight)
        return y

    @staticmethod
    def backward(ctx, dy):
        packed, weight = ctx.saved_tensors
        cdt = dy.dtype  # the dtype the forward computed in (autocast's, or the inputs')
        g_s = g_w = g_b = None
        from_bits = _bit_grad_kernel(packed, ctx.s_shape, dy) if ctx.needs_input_grad[1] else None
        if from_bits is not None:
            g_w = torch.from_numpy(from_bits(packed.numpy(), ctx.s_shape[1], dy.contiguous().numpy()))
            g_w = g_w.to(weight.dtype)
        elif ctx.needs_input_grad[1]:  # first: the chunks' temporaries come and go before dS [M, K] exists
            for start, stop in _spans(ctx.s_shape[0], _rows_per_chunk(ctx.s_shape, cdt)):
                s_c = _unpack(packed, ctx.s_shape, start, stop, cdt)
                g_w = _accumulate(g_w, dy[start:stop].t(), s_c)
                del s_c
            g_w = g_w.to(weight.dtype)
        if ctx.needs_input_grad[2]:
            g_b = dy.sum(0).to(ctx.bias_dtype)
        if ctx.needs_input_grad[0]:
            g_s = dy.mm(weight.to(cdt)).to(ctx.s_dtype)
        return g_s, g_w, g_b, None


class _SpikeConv2d(torch.autograd.Function):
    """``Y = conv2d(S, W) + b`` with ``S [N, C, H, W]`` saved packed (see the module docstring)."""

    @staticmethod
    def forward(ctx, s, weight, bias, stride, padding, dilation, groups, bits):
        # in pieces of images written into the output: one conv2d call over many images holds a second copy of
        # its output for a moment (the backend's reorder), which sets the network's peak (RESULTS.md, "Training
        # step"); each image's result does not depend on the others in the call
        y = None
        n = s.shape[0]
        for start, stop in _spans(n, _rows_per_chunk(s.shape, s.dtype)):
            y_c = nn.functional.conv2d(s[start:stop], weight, bias, stride, padding, dilation, groups)
            if y is None:
                if stop == n:
                    y = y_c
                    break
                y = y_c.new_empty((n, *y_c.shape[1:]))
            y[start:stop] = y_c
            del y_c
        if y is None:  # no images
            y = nn.functional.conv2d(s, weight, bias, stride, padding, dilation, groups)
        ctx.s_shape, ctx.s_dtype = s.shape, s.dtype
        ctx.bias_dtype = None if bias is None else bias.dtype
        ctx.conv = (stride, padding, dilation, groups)
        packed = _packed(s, bits) if ctx.needs_input_grad[1] else None
        ctx.save_for_backward(packed, weight)
        return y

    @staticmethod
    def backward(ctx, dy):
        packed, weight = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.conv
        cdt = dy.dtype
        w = weight.to(cdt)
        need_s, need_w, need_b = ctx.needs_input_grad[:3]
        bias_sizes = [weight.shape[0]] if need_b else None
        g_s = g_w = g_b = None

        def conv_backward(d, s, mask):
            return torch.ops.aten.convolution_backward(d, s, w, bias_sizes, stride, padding, dilation, False,
                                                       [0, 0], groups, mask)

        spans = _spans(ctx.s_shape[0], _rows_per_chunk(ctx.s_shape, cdt))
        if need_s and len(spans) > 1:  # with one chunk its result is dS as it is (no copy)
            g_s = dy.new_empty(ctx.s_shape, dtype=ctx.s_dtype)
        # one call per chunk for every gradient needed (as torch's own backward, which is one chunk): the input
        # gradient needs only the chunk's shape, the weight's the unpacked chunk
        for start, stop in spans:
            shape = (stop - start, *ctx.s_shape[1:])
            s_c = _unpack(packed, ctx.s_shape, start, stop, cdt) if need_w else dy.new_empty(1).expand(shape)
            gs, gw, gb = conv_backward(dy[start:stop], s_c, [need_s, need_w, need_b])
            del s_c
            if need_s and len(spans) == 1:
                g_s = gs.to(ctx.s_dtype)
            elif need_s:
                g_s[start:stop] = gs
            if need_w:
                g_w = _add(g_w, gw)
            if need_b:
                g_b = _add(g_b, gb)
            del gs, gw, gb
        if need_w:
            g_w = g_w.to(weight.dtype)
        if need_b:
            g_b = g_b.to(ctx.bias_dtype)
        return g_s, g_w, g_b, None, None, None, None, None


class _Place(torch.autograd.Function):
    """``out[start:start + len(y)] = y`` in place, ``out``'s history rebased: a concatenation built as the parts
    come, so a finished part is freed at once instead of waiting in a list for ``torch.cat``. Backward: the
    gradient passes on whole to the previous placement (which reads only its own rows) and ``dy`` is the
    rows of ``y``, the views ``torch.cat``'s backward gives too."""

    @staticmethod
    def forward(ctx, out, y, start):
        ctx.span = (start, start + y.shape[0])
        out[start:start + y.shape[0]] = y
        ctx.mark_dirty(out)
        return out

    @staticmethod
    def backward(ctx, g):
        start, stop = ctx.span
        return g, g[start:stop], None


def cat_as_made(parts, rows: int) -> torch.Tensor:
    """``torch.cat(list(parts))`` for an iterator ``parts`` of tensors with ``rows`` rows in all (same dtype,
    device and trailing shape), each part placed into the result as soon as it is made (:class:`_Place`).
    Same values and gradients as ``torch.cat``; the parts are not kept alive until the last one exists."""
    out = None
    start = 0
    for y in parts:
        if out is None:
            out = y.new_empty((rows, *y.shape[1:]))
        out = _Place.apply(out, y, start)
        start += y.shape[0]
        del y  # the part is now referenced only by its graph (if at all)
    if out is None or start != rows:
        raise ValueError(f"cat_as_made: the parts have {start} rows in all, expected {rows}")
    return out


# -- dispatch ---------------------------------------------------------------------------------------------------
def has_hooks(m: nn.Module) -> bool:
    """Whether calling ``m`` would run any hook (the test ``nn.Module.__call__`` makes for its fast path)."""
    return bool(m._backward_hooks or m._backward_pre_hooks or m._forward_hooks or m._forward_pre_hooks
                or _module._global_backward_pre_hooks or _module._global_backward_hooks
                or _module._global_forward_hooks or _module._global_forward_pre_hooks)


def _linear(layer: nn.Linear, s: torch.Tensor, bits: torch.Tensor | None) -> torch.Tensor | None:
    if s.dim() < 1 or s.shape[-1] != layer.in_features:
        return None  # the plain call raises its own error
    y = _SpikeLinear.apply(s.reshape(-1, s.shape[-1]), layer.weight, layer.bias, bits)
    return y.reshape(*s.shape[:-1], y.shape[-1])


def _conv2d(layer: nn.Conv2d, s: torch.Tensor, bits: torch.Tensor | None) -> torch.Tensor | None:
    if (layer.padding_mode != "zeros" or isinstance(layer.padding, str) or s.dim() != 4
            or s.shape[1] != layer.in_channels):
        return None
    return _SpikeConv2d.apply(s, layer.weight, layer.bias, list(layer.stride), list(layer.padding),
                              list(layer.dilation), layer.groups, bits)


def module_over_spikes(m: nn.Module, s: torch.Tensor, bits: torch.Tensor | None = None) -> torch.Tensor | None:
    """``m(s)`` with ``s`` (spikes, time folded into the batch) saved packed for backward, or None when this
    path does not apply (the caller then runs ``m(s)`` itself): it applies to ``nn.Linear`` and ``nn.Conv2d``
    without hooks, their ``forward`` not overridden, on the CPU, with grad mode on and a gradient needed by
    ``s`` or the layer. ``bits``: ``s``'s packed bits when the spiking layer made them (:func:`spike_bits`),
    kept instead of packing ``s``. (:class:`neuro.nn.TimeDistributed` calls it for the first module of an
    ``nn.Sequential``.)"""
    if not ENABLED or s.device.type != "cpu" or not torch.is_grad_enabled():
        return None
    if type(m).forward is nn.Linear.forward:
        run = _linear
    elif type(m).forward is nn.Conv2d.forward and type(m)._conv_forward is nn.Conv2d._conv_forward:
        run = _conv2d
    else:
        return None
    if has_hooks(m) or not any(t is not None and t.requires_grad for t in (s, m.weight, m.bias)):
        return None  # hooks must see the call; without a gradient nothing is saved anyway
    return run(m, s, bits)
