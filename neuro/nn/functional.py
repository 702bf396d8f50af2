"""The autograd bridge between torch and the fused kernels: one ``torch.autograd.Function`` for every
neuron model, driven by the model's :class:`~neuro.models._base.Dynamics`.

Forward runs the whole time loop in one kernel call (:func:`neuro.kernels.forward_packed`); backward runs
the reverse-time BPTT kernel (:func:`neuro.kernels.backward_packed`). CPU tensors reach the kernels
zero-copy through ``.numpy()``; CUDA tensors through ``__cuda_array_interface__``.

Tensors are in the kernels' packed layout: ``x [T, N]``, ``params [P, N]``, ``init [S, N]``, with
``N`` the flattened batch x neurons. Gradients to the parameters come back per neuron and torch's
autograd reduces them through whatever broadcast built ``params`` (a per-layer ``beta`` expanded to
``[P, N]`` gets the sum).

Example:
    >>> import torch
    >>> from neuro.models import lif
    >>> from neuro.nn.functional import neuron_scan
    >>> x = torch.full((4, 2), 0.6, requires_grad=True)
    >>> p = torch.tensor([0.9, 1.0, 0.0, 1.0, 0.0, 0.0]).repeat(2, 1).T.contiguous()   # [P=6, N=2]
    >>> opts = torch.tensor([0, 1])   # subtract, next-step reset (snnTorch)
    >>> spikes, states = neuron_scan(lif.DYNAMICS, x, p, torch.zeros(2, 2), opts, "atan")
    >>> spikes[:, 0].tolist()
    [0.0, 1.0, 0.0, 1.0]
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from neuro import _checks, kernels
from neuro import surrogate as surrogate_mod
from neuro.models._base import Dynamics, option_code
from neuro.nn import spike_inputs
from neuro.nn.spike_inputs import mark_spikes


def _as_array(t: torch.Tensor):
    """Zero-copy view for the kernels: NumPy for CPU tensors, the tensor itself on CUDA."""
    t = t.detach()
    if t.is_cuda:
        return t
    return t.numpy()


def _from_array(a, like: torch.Tensor) -> torch.Tensor:
    if isinstance(a, np.ndarray):
        return torch.from_numpy(a)
    return torch.as_tensor(a, device=like.device)


def option_codes(dyn: Dynamics, options) -> np.ndarray:
    """The int64 option codes the kernels read, in ``dyn.options`` order (``[0]`` for a model without options);
    each value an int code or its name (checked by :func:`neuro.models._base.option_code`)."""
    return np.array([option_code(k, v) for k, v in zip(dyn.options, options, strict=True)] or [0], dtype=np.int64)


class _NeuronScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, params, init, dyn, opts_np, sg, dt, record):
        x = x.contiguous()
        params = params.contiguous()
        state = init.detach().clone().contiguous()
        # the per-step states are what backward needs; skip writing them in pure inference
        need_rec = record or any(ctx.needs_input_grad[:3])
        spikes, rec = kernels.forward_packed(dyn, _as_array(x), _as_array(state), _as_array(params), opts_np, dt,
                                             record=need_rec)
        spikes_t = _from_array(spikes, x)
        rec_t = _from_array(rec, x) if need_rec else x.new_zeros((0,))
        ctx.dyn, ctx.opts, ctx.sg, ctx.dt = dyn, opts_np, sg, dt
        ctx.save_for_backward(x, params, init, rec_t)
        ctx.set_materialize_grads(False)
        # the kernel left the final state in `state`: an output, so a caller can carry it to the next chunk
        return spikes_t, rec_t, state

    @staticmethod
    def backward(ctx, g_spikes, g_rec, g_final):
        x, params, init, rec = ctx.saved_tensors
        if g_spikes is None:
            g_spikes = torch.zeros_like(x)
        g_x, g_p, g_init = kernels.backward_packed(
            ctx.dyn, ctx.sg, _as_array(x), _as_array(init.contiguous()), _as_array(rec), _as_array(params), ctx.opts,
            _as_array(g_spikes.contiguous()), None if g_rec is None else _as_array(g_rec.contiguous()), ctx.dt,
            g_final=None if g_final is None else _as_array(g_final.contiguous()))
        return (_from_array(g_x, x), _from_array(g_p, x), _from_array(g_init, x), None, None, None, None, None)


# torch.compile: one clean graph break here instead of dynamo tracing into numba (tests/test_torch_compile.py)
@torch.compiler.disable
def neuron_scan(dyn: Dynamics, x: torch.Tensor, params: torch.Tensor, init: torch.Tensor, options,
                surrogate=None, dt: float = 1.0, record: bool = True, return_state: bool = False
                ) -> tuple[torch.Tensor, ...]:
    """Run ``dyn`` over ``T`` steps in one fused kernel call; differentiable w.r.t. ``x``, ``params``, ``init``.

    Args:
        dyn: the model's dynamics (``neuro.models.lif.DYNAMICS`` ...).
        x: input ``[T, N]`` float32.
        params: per-neuron parameters ``[P, N]`` float32, in ``dyn.params`` order.
        init: initial state ``[S, N]`` float32, in ``dyn.state`` order.
        options: one value per ``dyn.options`` entry, in order (sequence or tensor): an int code or its name
            (``"subtract"``, ``"zero"``, ``"none"`` for ``reset_mode``; a bool for ``reset_delay``).
        surrogate: name or :class:`neuro.surrogate.Surrogate` for dS/dU (default atan(2)).
        return_state: also return the final state ``[S, N]``, differentiable (a loss on it reaches ``x``,
            ``params`` and ``init``), to carry into the next call.

    Every shape is checked against every other (``params`` must be ``[P, N]`` and ``init`` ``[S, N]`` for
    the ``N`` of ``x``), dtypes must be float, ``x`` and ``init`` finite in float32, ``params`` free of NaN
    (a threshold may be ``inf``), ``options`` known codes. ``T = 0`` or ``N = 0`` give empty outputs.
    Returns:
        ``(spikes [T, N], states [T, S, N])``, the states after each step (empty unless ``record``), and
        with ``return_state=True`` the final state ``[S, N]`` as a third element.
    """
    if not isinstance(dyn, Dynamics):
        raise TypeError(f"dyn must be a neuron model's Dynamics (e.g. neuro.models.lif.DYNAMICS), got {dyn!r}")
    sg = surrogate_mod.get(surrogate)
    dt = _checks.check_dt(dt)
    record = _checks.check_bool("record", record)
    return_state = _checks.check_bool("return_state", return_state)
    S, P = len(dyn.state), len(dyn.params)
    for name, t in (("x", x), ("params", params), ("init", init)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(f"{name} must be a float tensor, got dtype {t.dtype}")
        if t.device != x.device:
            raise ValueError(f"{name} is on {t.device} but x is on {x.device}")
    if x.dim() != 2:
        raise ValueError(f"x must have shape [T, N] (time-major, batch x neurons flattened), got {tuple(x.shape)}")
    n = x.shape[1]
    for name, t, rows, what in (("params", params, P, f"parameters {list(dyn.params)}"),
                                ("init", init, S, f"state variables {list(dyn.state)}")):
        if tuple(t.shape) != (rows, n):
            raise ValueError(f"{name} must have shape ({rows}, {n}) ({rows} {what} for the N = {n} neurons of x), "
                             f"got {tuple(t.shape)}")
    x, params, init = (t if t.dtype == torch.float32 else t.float() for t in (x, params, init))
    _checks.check_finite_tensor("x", x)
    _checks.check_finite_tensor("init", init)
    if params.numel() and torch.isnan(params).any():
        raise ValueError("params contains NaN values")
    if isinstance(options, torch.Tensor):
        options = options.detach().cpu().reshape(-1).tolist()
    if isinstance(options, str | bytes) or not hasattr(options, "__len__"):
        raise TypeError(f"options must be a sequence of {len(dyn.options)} values {list(dyn.options)}, got "
                        f"{options!r}")
    if len(options) != len(dyn.options):
        raise ValueError(f"options must have {len(dyn.options)} values {list(dyn.options)}, got {list(options)}")
    opts = option_codes(dyn, options)
    spikes, states, final = _NeuronScan.apply(x, params, init, dyn, opts, sg, dt, record)
    return (spikes, states, final) if return_state else (spikes, states)


_FORMATS = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}


def _kernel_view(t: torch.Tensor) -> np.ndarray:
    """The NumPy array a lean kernel reads: float32 as is, bfloat16 / float16 as their raw uint16 bits
    (a view, no copy)."""
    t = t.detach()
    return t.numpy() if t.dtype == torch.float32 else t.view(torch.uint16).numpy()


def _as_dtype(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    t = torch.from_numpy(a)
    return t if dtype == torch.float32 else t.view(dtype)


class _Probe(torch.autograd.Function):
    """Measures, once, the references an incoming gradient that nothing else holds has inside a backward."""

    @staticmethod
    def forward(ctx, x):
        ctx.set_materialize_grads(False)
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        _sole_reference(g, probe=True)  # through the same calls as _NeuronLayer.backward: same reference count
        return g


_PROBED: dict = {}


def _references(t: torch.Tensor) -> tuple:
    """Python references, C++ references to the tensor and to its storage of ``t``, and when ``t`` is a view,
    the Python and C++ references of its base (a reshape in the graph hands the gradient on as a view)."""
    base = t._base
    held = None if base is None else (sys.getrefcount(base), base._use_count())
    return sys.getrefcount(t), t._use_count(), torch._C._storage_Use_Count(t.untyped_storage()._cdata), held


def _sole_reference(g: torch.Tensor, probe: bool = False) -> bool:
    """True when nothing but the autograd engine's call can see the incoming gradient ``g``: its buffer may then
    be reused for the input gradient. The rule is the one torch's engine applies before it accumulates into a
    gradient buffer in place (the last reference to the tensor and to its storage), with the Python references
    added: the counts must equal those of a gradient known to be unshared, measured once through the same
    engine and the same call (so they follow the Python and torch versions). Anything else holding ``g`` or
    its storage -- the caller's ``grad_outputs``, a hook that kept it, another output or branch given the same
    tensor, a view of a larger buffer -- adds a reference, and the buffer is left alone; so is every gradient
    of a ``create_graph`` backward. Call it first thing in ``backward``, on the argument as received."""
    if (type(g) is not torch.Tensor or g.requires_grad or torch.is_grad_enabled() or g.device.type != "cpu"
            or not g.is_contiguous() or g.storage_offset() != 0
            or g.untyped_storage().nbytes() != g.numel() * g.element_size()):
        return False
    if probe:
        refs = _references(g)
        _PROBED[refs[-1] is not None] = refs
        return False
    if not _PROBED:
        with torch.enable_grad():
            x = torch.zeros(2, 2, requires_grad=True)
            (_Probe.apply(x) * 2.0).sum().backward()
            (_Probe.apply(x).reshape(4) * 2.0).sum().backward()
    refs = _references(g)
    return refs == _PROBED.get(refs[-1] is not None)


class _NeuronLayer(torch.autograd.Function):
    """The lean training path (CPU): saves the input in its own dtype and the state every K steps; backward
    recomputes the states between checkpoints in the kernel (:func:`neuro.kernels.backward_lean`)."""

    @staticmethod
    def forward(ctx, x, params, init, dyn, opts_np, sg, dt, want_v, every, check_finite, want_bits):
        x = x.contiguous()
        params = params.contiguous()
        fmt = _FORMATS[x.dtype]
        state = init.detach().clone().contiguous()
        need_grad = any(ctx.needs_input_grad[:3])
        bits = np.empty(x.numel() // 8 if want_bits else 0, np.uint8)
        spikes, ckpt, v = kernels.forward_lean(dyn, _kernel_view(x), state.numpy(), params.detach().numpy(),
                                               opts_np, dt, fmt, checkpoint=need_grad, record_v=want_v, every=every,
                                               check_finite=check_finite, bits_out=bits if want_bits else None)
        ctx.dyn, ctx.opts, ctx.sg, ctx.dt, ctx.fmt, ctx.every = dyn, opts_np, sg, dt, fmt, every
        if need_grad:
            ctx.save_for_backward(x, params, torch.from_numpy(ckpt))
        ctx.set_materialize_grads(False)
        v_t = torch.from_numpy(v) if want_v else x.new_zeros((0,), dtype=torch.float32)
        bits_t = torch.from_numpy(bits)
        ctx.mark_non_differentiable(bits_t)
        return _as_dtype(spikes, x.dtype), v_t, state, bits_t

    @staticmethod
    def backward(ctx, g_spikes, g_v, g_final, g_bits):
        # the input gradient goes into the incoming spike gradient's buffer when that buffer is dead after this
        # call (the layer's third T x N tensor at the backward peak otherwise: RESULTS.md, "Training step")
        reuse = g_spikes is not None and g_spikes is not g_v and _sole_reference(g_spikes)
        x, params, ckpt = ctx.saved_tensors
        if g_spikes is None:
            g_spikes, reuse = torch.zeros_like(x), True
        elif g_spikes.dtype != x.dtype or not g_spikes.is_contiguous():
            g_spikes, reuse = g_spikes.to(x.dtype).contiguous(), True  # a new tensor, ours
        gs = _kernel_view(g_spikes)
        g_x, g_p, g_init = kernels.backward_lean(
            ctx.dyn, ctx.sg, _kernel_view(x), ckpt.numpy(), params.detach().numpy(), ctx.opts,
            gs, None if g_v is None else g_v.float().contiguous().numpy(),
            None if g_final is None else g_final.float().contiguous().numpy(), ctx.dt, ctx.fmt, ctx.every,
            out=gs if reuse else None, grad_params=ctx.needs_input_grad[1])
        g_x = g_spikes if reuse else _as_dtype(g_x, x.dtype)
        if ctx.needs_input_grad[1]:  # per neuron -> per column of the [P, M] rows
            g_p = torch.from_numpy(g_p)
            g_p = g_p.reshape(g_p.shape[0], -1, params.shape[1]).sum(1)
        return (g_x, g_p, torch.from_numpy(g_init), None, None, None, None, None, None, None, None)


@torch.compiler.disable
def neuron_layer(dyn: Dynamics, x: torch.Tensor, params: torch.Tensor, init: torch.Tensor, options, sg, dt: float,
                 want_v: bool, every: int | None = None, check_finite: bool = False
                 ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """What the :mod:`neuro.nn` layers call (arguments checked by them): ``x [T, N]`` (float32, bfloat16 or
    float16), ``params [P, M]`` per-sample rows (``N = B M``), ``init [S, N]`` float32.

    Returns ``(spikes [T, N] in x's dtype, membrane [T, N] float32 or None, final state [S, N] float32)``,
    all differentiable; the spikes are marked (:func:`neuro.nn.spike_inputs.mark_spikes`). On the CPU only
    the input and the state every ``every`` steps (:data:`neuro.kernels.CHECKPOINT_EVERY`) are kept for
    backward; elsewhere the full-record kernels run on a float32 copy. ``check_finite``: refuse NaN or
    infinite values in ``x`` (ValueError; on the CPU the forward kernel checks them as it reads ``x``).
    """
    opts = option_codes(dyn, options)
    every = kernels.CHECKPOINT_EVERY if every is None else every
    if x.device.type == "cpu" and x.dtype in _FORMATS:
        # the kernel also writes the spikes' bits, for a synaptic layer after this one to keep for its weight
        # gradient (spike_inputs) without a pass of its own over the spikes; 1/32 of the spikes' float32 bytes
        want_bits = spike_inputs.bits_wanted(x.shape[1])
        spikes, v, final, bits = _NeuronLayer.apply(x, params, init, dyn, opts, sg, dt, want_v, every, check_finite,
                                                    want_bits)
        return mark_spikes(spikes, bits if want_bits else None), (v if want_v else None), final
    if check_finite:
        _checks.check_finite_tensor("x", x)
    n = x.shape[1]
    rows = params.repeat(1, n // params.shape[1]) if params.shape[1] else params.expand(-1, n)
    spikes, states, final = _NeuronScan.apply(x.float(), rows, init, dyn, opts, sg, dt, want_v)
    v = states[:, dyn.state.index(dyn.membrane)] if want_v else None
    return mark_spikes(spikes.to(x.dtype)), v, final
