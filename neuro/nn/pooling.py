"""Max pooling that keeps only where each maximum was for backward, not its input.

torch's ``nn.MaxPool2d`` keeps its input ``X [N, C, H, W]`` and the argmax indices ``I`` for backward, but its
backward reads only ``I`` and the shape of ``X``:

    forward:   Y[n, c, i, j] = max of X[n, c] over window (i, j),   I[n, c, i, j] = h W + w of that maximum
    backward:  dX = 0,   dX[n, c].flat[I[n, c, i, j]] += dY[n, c, i, j]

After a convolution, ``X`` is the convolution's output: in snnTorch's CSNN (12C5-MP2-64C5-MP2-FC10) the two
pools' inputs are about half of what a training step keeps, held until backward for their shape alone. A
:class:`neuro.nn.TimeDistributed` runs a plain ``nn.MaxPool2d`` (its own, or one inside an ``nn.Sequential``)
through :func:`call`, which keeps ``I`` only: the same kernels as torch (``aten.max_pool2d_with_indices`` and
its backward), so the same outputs and gradients, bit for bit, and ``X`` is freed as soon as the pool has run.
(Less memory kept also means fewer fresh pages: on the CSNN, glibc handed the heap back and faulted 50-180 MB
of new pages into it every step; RESULTS.md, "Training step".)

Float32 and float64 pools without padding or dilation (``ceil_mode=False``, windows of at most 256 elements)
go further: :mod:`neuro.kernels.max_pool` keeps each maximum's position inside its window as one byte instead
of torch's int64 index (8x less), and computes forward and backward bit-equal to torch's kernels, 2.7x faster
in the forward (no branch per element; also under ``torch.no_grad``, where nothing is kept). A double backward
(``create_graph=True``) rebuilds the int64 indices and goes through torch's differentiable backward.

Example:
    >>> import torch
    >>> from neuro.nn import pooling
    >>> x = torch.randn(2, 3, 8, 8, requires_grad=True)
    >>> y = pooling.call(torch.nn.MaxPool2d(2), x)
    >>> torch.equal(y, torch.nn.functional.max_pool2d(x, 2))
    True
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.utils import _pair

from neuro.kernels import max_pool as _kernels
from neuro.nn.spike_inputs import has_hooks


def _backward_by_indices(dy: torch.Tensor, x_shape, pool: tuple, indices: torch.Tensor) -> torch.Tensor:
    """torch's max-pool backward (differentiable) for ``pool = (kernel_size, stride, padding, dilation,
    ceil_mode)``. It takes the input for its shape, dtype (dY's) and memory format only: a stride-0 stand-in of
    one element (contiguous format, as the input was)."""
    stand_in = dy.new_empty(1).expand(x_shape)
    return torch.ops.aten.max_pool2d_with_indices_backward(dy, stand_in, *pool, indices)


class _MaxPool2dIndices(torch.autograd.Function):
    """``max_pool2d`` of a contiguous ``[N, C, H, W]`` CPU tensor, saving the indices and not the input."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, dilation, ceil_mode):
        y, indices = torch.ops.aten.max_pool2d_with_indices(x, kernel_size, stride, padding, dilation, ceil_mode)
        ctx.pool = (kernel_size, stride, padding, dilation, ceil_mode)
        ctx.x_shape = x.shape
        ctx.save_for_backward(indices)
        return y

    @staticmethod
    def backward(ctx, dy):
        (indices,) = ctx.saved_tensors
        return _backward_by_indices(dy, ctx.x_shape, ctx.pool, indices), None, None, None, None, None


class _MaxPool2dOffsets(torch.autograd.Function):
    """``max_pool2d`` (no padding, no dilation, floor mode) of a contiguous float32/float64 ``[N, C, H, W]`` CPU
    tensor by :mod:`neuro.kernels.max_pool`, saving each maximum's offset in its window as uint8."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride):
        (kh, kw), (sh, sw) = kernel_size, stride
        n, c, h, w = x.shape
        oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
        y = x.new_empty((n, c, oh, ow))
        offsets = torch.empty((n, c, oh, ow), dtype=torch.uint8)
        _kernels.forward(x.detach().reshape(n * c, h, w).numpy(), kh, kw, sh, sw, y.reshape(n * c, oh, ow).numpy(),
                         offsets.reshape(n * c, oh, ow).numpy())
        ctx.pool = (kernel_size, stride)
        ctx.x_shape = x.shape
        ctx.save_for_backward(offsets)
        return y

    @staticmethod
    def backward(ctx, dy):
        (offsets,) = ctx.saved_tensors
        (kh, kw), (sh, sw) = ctx.pool
        n, c, h, w = ctx.x_shape
        if torch.is_grad_enabled():  # create_graph: torch's differentiable backward on the int64 indices
            oh, ow = offsets.shape[2:]
            corner = (torch.arange(oh).mul_(sh * w)[:, None] + torch.arange(ow).mul_(sw)[None, :])
            o = offsets.long()
            indices = corner + torch.div(o, kw, rounding_mode="floor") * w + o % kw
            pool = ([kh, kw], [sh, sw], [0, 0], [1, 1], False)
            return _backward_by_indices(dy, ctx.x_shape, pool, indices), None, None
        dx = dy.new_empty(ctx.x_shape)
        dy = dy.contiguous()
        _kernels.backward(dy.reshape(n * c, *dy.shape[2:]).numpy(), offsets.reshape(n * c, *offsets.shape[2:]).numpy(),
                          kw, sh, sw, dx.reshape(n * c, h, w).numpy())
        return dx, None, None


_KERNEL_DTYPES = (torch.float32, torch.float64)


def _by_kernel(x: torch.Tensor, kernel_size, stride, padding, dilation, ceil_mode: bool) -> bool:
    """Whether :class:`_MaxPool2dOffsets` takes this pool (else :class:`_MaxPool2dIndices`, which also raises
    torch's own errors for impossible ones)."""
    (kh, kw), (sh, sw) = kernel_size, stride
    return (x.dtype in _KERNEL_DTYPES and padding == [0, 0] and dilation == [1, 1] and not ceil_mode
            and kh * kw <= _kernels.MAX_WINDOW and min(kh, kw, sh, sw) > 0 and x.numel() > 0
            and x.shape[2] >= kh and x.shape[3] >= kw)


def _plain_pool(m: nn.Module, x: torch.Tensor) -> bool:
    return (type(m).forward is nn.MaxPool2d.forward and not m.return_indices and not has_hooks(m)
            and x.device.type == "cpu" and x.dim() == 4 and x.is_contiguous())


def call(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``m(x)``; when ``m`` is a plain ``nn.MaxPool2d`` (no hooks, ``forward`` not overridden, no
    ``return_indices``) over a contiguous ``[N, C, H, W]`` CPU tensor, by :mod:`neuro.kernels.max_pool` where
    it applies, else (when ``x`` needs a gradient) by torch's kernels keeping the indices alone: the same values
    and gradients either way."""
    if not _plain_pool(m, x):
        return m(x)
    kernel_size = list(_pair(m.kernel_size))
    stride = list(_pair(m.kernel_size if m.stride is None else m.stride))
    padding, dilation = list(_pair(m.padding)), list(_pair(m.dilation))
    if _by_kernel(x, kernel_size, stride, padding, dilation, m.ceil_mode):
        return _MaxPool2dOffsets.apply(x, kernel_size, stride)
    if torch.is_grad_enabled() and x.requires_grad:
        return _MaxPool2dIndices.apply(x, kernel_size, stride, padding, dilation, m.ceil_mode)
    return m(x)
