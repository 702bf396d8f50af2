"""The compiled core: multi-step forward and reverse-time backward kernels for every neuron model.

Kernels are built from a model's :class:`~neuro.models._base.Dynamics` (its scalar step and backward
functions) by :mod:`neuro.kernels.cpu` and :mod:`neuro.kernels.cuda`; adding a model needs no edit here.
Nothing compiles at import: the first call compiles and caches on disk.

Packed layout (what the kernels take): ``x[T, N]``, ``state[S, N]``, ``params[P, N]``, ``opts[O]``
(int64), all float32 but ``opts``. ``N`` is the flattened batch x neurons.

Example:
    >>> import numpy as np
    >>> from neuro import kernels
    >>> from neuro.models import lif
    >>> x = np.full((5, 3), 0.6, np.float32)
    >>> state = {"v": np.zeros(3, np.float32), "ref": np.zeros(3, np.float32)}
    >>> params = {"decay": 0.9, "gain": 1.0, "v_leak": 0.0, "threshold": 1.0, "v_reset": 0.0, "t_ref": 0.0}
    >>> spikes, _ = kernels.forward(lif.DYNAMICS, x, state, params, {"reset_mode": 0, "reset_delay": 1})
    >>> spikes[:, 0].tolist()
    [0.0, 1.0, 0.0, 1.0, 0.0]
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping

import numpy as np

from neuro import _checks
from neuro.models._base import Dynamics, option_code

__all__ = ["forward", "backward", "forward_packed", "backward_packed", "forward_lean", "backward_lean", "pack_params",
           "pack_state", "CHECKPOINT_EVERY", "set_backend", "get_backend"]

_BACKENDS = ("numba", "cupy")
_backend: str | None = None


def set_backend(name: str) -> None:
    """Kernel backend for CUDA arrays: ``"numba"`` (numba.cuda, the default) or ``"cupy"`` (generated CUDA C,
    NVRTC through CuPy: :mod:`neuro.kernels.cupy_backend`). Overrides ``$NEURO_KERNEL_BACKEND``; CPU arrays always
    run the numba CPU kernels."""
    global _backend
    _backend = _checks.check_choice("backend", name, _BACKENDS)


def get_backend() -> str:
    """The backend set by :func:`set_backend`, else ``$NEURO_KERNEL_BACKEND``, else ``"numba"``."""
    if _backend is not None:
        return _backend
    import os

    return _checks.check_choice("NEURO_KERNEL_BACKEND", os.environ.get("NEURO_KERNEL_BACKEND", "numba"), _BACKENDS)


#: Steps between the state checkpoints the lean kernels keep for backward (chosen by measurement:
#: benchmarks/RESULTS.md, "Training step").
CHECKPOINT_EVERY = 16

#: Neuron-steps (T x N) from which the lean kernels are compiled for the call's option values, for parameters
#: shared by every neuron, for inert states left out and (backward) for whether parameter gradients are wanted
#: (1.4-2.6x faster; each combination is one more compile of 3-8 s). Smaller calls share one kernel per model
#: that reads all of it at run time (:func:`_specialisation`).
SPECIALISE_FROM = 1 << 20

#: A smaller call, of at least ``SPECIALISE_FROM / 128`` neuron-steps, is specialised too from the
#: ``SPECIALISE_AFTER_CALLS``-th training step (a forward and a backward call) of the same model with the same
#: option values in this process. A small layer run every step (snnTorch's MLP's 10-neuron output layer, 32,000
#: neuron-steps a call: backward kernel 0.25 ms shared, 0.06 ms specialised) pays its compiles once, and a
#: script or a test that calls it a few times compiles nothing of its own. Results are bit-identical either way.
SPECIALISE_AFTER_CALLS = 8
_SMALL_CALLS: Counter = Counter()



def _is_cuda(a) -> bool:
    """True for device arrays: CuPy, torch CUDA tensors, numba device arrays (also the simulator's)."""
    if isinstance(a, np.ndarray):
        return False
    if hasattr(a, "__cuda_array_interface__"):
        return True
    # numba's device arrays, including the CUDA simulator's FakeCUDAArray (no array interface there)
    return type(a).__module__.startswith("numba.cuda") and hasattr(a, "copy_to_host")


def _check_dyn(dyn) -> Dynamics:
    if not isinstance(dyn, Dynamics):
        raise TypeError(f"dyn must be a neuron model's Dynamics (e.g. neuro.models.lif.DYNAMICS), got {dyn!r}")
    return dyn


def _check_names(dyn: Dynamics, what: str, given: Mapping, known) -> None:
    if not isinstance(given, Mapping):
        raise TypeError(f"{dyn.name}: {what} must be a dict of name -> values, got {type(given).__name__}")
    unknown = [k for k in given if k not in known]
    if unknown:
        raise ValueError(f"{dyn.name}: unknown {what} {unknown}; expected {list(known)}")


def _values(dyn: Dynamics, what: str, name: str, value, n: int, allow_inf: bool = False) -> np.ndarray:
    label = f"{dyn.name}: {what} {name}"
    arr = _checks.check_float_array(label, value, allow_inf=allow_inf).reshape(-1)
    if arr.size not in (1, n):
        raise ValueError(f"{label} has {arr.size} values, expected 1 or {n}")
    return arr.astype(np.float32)


def pack_params(dyn: Dynamics, params: Mapping[str, object], n: int) -> np.ndarray:
    """Stack per-neuron parameters into a C-contiguous float32 ``[P, N]`` array (scalars broadcast).

    Every value must be real and finite in float32 (a ``threshold`` may be ``inf``: never fires); unknown
    names are refused (a misspelt parameter would otherwise be ignored)."""
    _check_dyn(dyn)
    n = _checks.check_int("n", n, minimum=0)
    _check_names(dyn, "parameters", params, dyn.params)
    missing = [k for k in dyn.params if k not in params]
    if missing:
        raise ValueError(f"{dyn.name}: missing parameters {missing}; expected {list(dyn.params)}")
    out = np.empty((len(dyn.params), n), np.float32)
    for k, name in enumerate(dyn.params):
        out[k] = _values(dyn, "parameter", name, params[name], n, allow_inf=name == "threshold")
    return out


def pack_state(dyn: Dynamics, state: Mapping[str, object], n: int) -> np.ndarray:
    """Stack the state into a C-contiguous float32 ``[S, N]`` array; missing variables start at 0."""
    _check_dyn(dyn)
    n = _checks.check_int("n", n, minimum=0)
    _check_names(dyn, "state variables", state, dyn.state)
    out = np.empty((len(dyn.state), n), np.float32)
    for k, name in enumerate(dyn.state):
        out[k] = _values(dyn, "state", name, state.get(name, 0.0), n)
    return out


def pack_options(dyn: Dynamics, options: Mapping[str, int] | None) -> np.ndarray:
    """The int64 option codes in ``dyn.options`` order; each given as its name (``"subtract"``), a bool
    (``reset_delay``) or a known int code."""
    _check_dyn(dyn)
    options = {} if options is None else options
    _check_names(dyn, "options", options, (*dyn.options, "reset_delay"))
    if "reset_delay" not in dyn.options and option_code("reset_delay", options.get("reset_delay", 0)) != 0:
        raise ValueError(f"{dyn.name} resets in the same step only: option reset_delay must be 0, got "
                         f"{options['reset_delay']!r}")
    missing = [k for k in dyn.options if k not in options]
    if missing:
        raise ValueError(f"{dyn.name}: missing options {missing}; expected {list(dyn.options)}")
    return np.array([option_code(k, options[k]) for k in dyn.options] or [0], dtype=np.int64)


def _shape(a) -> tuple:
    shape = getattr(a, "shape", None)
    if shape is None:
        raise TypeError(f"expected an array, got {type(a).__name__}")
    return tuple(int(v) for v in shape)


def _check_packed(dyn: Dynamics, T: int, n: int, **arrays) -> None:
    """Structural checks of packed arrays (O(1), no pass over the data): exact shapes, and for NumPy arrays
    float32 (int64 for ``opts``), C-contiguous and writeable where the kernel writes. Nothing the kernels
    index can be out of bounds after this."""
    S, P = len(dyn.state), len(dyn.params)
    want = {"x": (T, n), "state": (S, n), "init": (S, n), "params": (P, n), "spikes": (T, n),
            "rec": (T, S, n), "g_spikes": (T, n), "g_rec": (T, S, n),
            "g_final": (S, n)}
    writes = {"state", "spikes"}
    for name, a in arrays.items():
        if a is None:
            continue
        shape = _shape(a)
        if name == "opts":
            if len(shape) != 1 or shape[0] < max(1, len(dyn.options)):
                raise ValueError(f"{dyn.name}: opts must have shape ({max(1, len(dyn.options))},) "
                                 f"({list(dyn.options)}), got {shape}")
            if isinstance(a, np.ndarray) and a.dtype != np.int64:
                raise TypeError(f"{dyn.name}: opts must be int64, got {a.dtype}")
            continue
        if shape != want[name]:
            raise ValueError(f"{dyn.name}: {name} must have shape {want[name]} for x of shape {(T, n)} "
                             f"(S={S} state variables {list(dyn.state)}, P={P} parameters {list(dyn.params)}), "
                             f"got {shape}")
        if isinstance(a, np.ndarray):
            if a.dtype != np.float32:
                raise TypeError(f"{dyn.name}: {name} must be float32, got {a.dtype}")
            if not a.flags.c_contiguous:
                raise ValueError(f"{dyn.name}: {name} must be C-contiguous")
            if name in writes and not a.flags.writeable:
                raise ValueError(f"{dyn.name}: {name} must be writeable (the kernel writes to it)")
        elif _is_cuda(arrays["x"]) != _is_cuda(a):
            raise ValueError(f"{dyn.name}: {name} is on a different device from x")


def _empty(like, shape, dtype=np.float32):
    if isinstance(like, np.ndarray):
        return np.empty(shape, dtype)
    mod = type(like).__module__
    if mod.startswith("torch"):
        import torch

        return torch.empty(shape, dtype=torch.float32, device=like.device)
    if mod.startswith("cupy"):
        import cupy

        return cupy.empty(shape, dtype)
    from numba import cuda

    return cuda.device_array(shape, dtype)


def _zeros(like, shape):
    out = _empty(like, shape)
    out[...] = 0
    return out


def forward_packed(dyn: Dynamics, x, state, params, opts, dt: float = 1.0, record: bool = False,
                   spikes=None, device: str | None = None):
    """Run T steps. Updates ``state[S, N]`` in place; returns ``(spikes[T, N], rec[T, S, N] or None)``.

    Arrays must be float32 (``opts`` int64), C-contiguous, with matching shapes: checked here in O(1), the
    values are not (see :func:`forward` for the full checks).
    """
    _check_dyn(dyn)
    xs = _shape(x)
    if len(xs) != 2:
        raise ValueError(f"x must have shape [T, N], got shape {xs}")
    T, n = xs
    _check_packed(dyn, T, n, x=x, state=state, params=params, opts=opts, spikes=spikes)
    dt = _checks.check_dt(dt)
    record = _checks.check_bool("record", record)
    device = device or ("cuda" if _is_cuda(x) else "cpu")
    if device != "cpu" and get_backend() == "cupy":  # float16/bfloat16 x allowed there; spikes in x's dtype
        from neuro.kernels import cupy_backend

        return cupy_backend.forward_packed(dyn, x, state, params, opts, dt, record, spikes)
    if spikes is None:
        spikes = _empty(x, (T, n))
    rec = _empty(x, (T, len(dyn.state), n)) if record else _empty(x, (1, len(dyn.state), 1))
    if device == "cpu":
        from neuro.kernels import cpu

        kern = cpu.forward_kernel(dyn)  # options read at run time: constants measured no faster, 6x more compiles
        kern(x, state, params, opts, np.float32(dt), spikes, rec, cpu.BLOCK, record)
    else:
        from neuro.kernels import cuda as cuda_k

        if n:
            grid, threads = cuda_k.launch_config(n)
            cuda_k.forward_kernel(dyn)[grid, threads](x, state, params, opts, np.float32(dt), spikes, rec, record)
    return spikes, (rec if record else None)


def backward_packed(dyn: Dynamics, surrogate, x, init, rec, params, opts, g_spikes, g_rec=None,
                    dt: float = 1.0, device: str | None = None, g_final=None):
    """Reverse-time BPTT through ``T`` steps.

    Returns ``(g_x[T, N], g_params[P, N], g_init[S, N])``; ``g_rec[T, S, N]`` is the gradient reaching the
    recorded states (e.g. a loss on the membrane), or None; ``g_final[S, N]`` the gradient reaching the final
    state (carried into a next chunk), or None.
    """
    from neuro import surrogate as sg_mod

    _check_dyn(dyn)
    sg = sg_mod.get(surrogate)
    xs = _shape(x)
    if len(xs) != 2:
        raise ValueError(f"x must have shape [T, N], got shape {xs}")
    T, n = xs
    _check_packed(dyn, T, n, x=x, init=init, rec=rec, params=params, opts=opts, g_spikes=g_spikes, g_rec=g_rec,
                  g_final=g_final)
    dt = _checks.check_dt(dt)
    if not dyn.trainable:
        raise ValueError(f"{dyn.name} has no backward step (not trainable by BPTT)")
    device = device or ("cuda" if _is_cuda(x) else "cpu")
    if device != "cpu" and get_backend() == "cupy":
        from neuro.kernels import cupy_backend

        return cupy_backend.backward_packed(dyn, sg, x, init, rec, params, opts, g_spikes, g_rec, dt, g_final)
    g_x = _empty(x, (T, n))
    g_params = _zeros(x, (len(dyn.params), n))
    g_state = _zeros(x, (len(dyn.state), n))
    if g_final is not None:  # the kernels start the reverse sweep from g_state's values
        g_state[...] = g_final
    has_grec = g_rec is not None
    if g_rec is None:
        g_rec = _empty(x, (1, len(dyn.state), 1))
    if device == "cpu":
        from neuro.kernels import cpu

        kern = cpu.backward_kernel(dyn, sg.grad)
        kern(x, init, rec, params, opts, np.float32(dt), np.float32(sg.slope), g_spikes, g_rec, g_x, g_params,
             g_state, cpu.BLOCK, has_grec)
    else:
        from neuro.kernels import cuda as cuda_k

        if n:
            grid, threads = cuda_k.launch_config(n)
            cuda_k.backward_kernel(dyn, sg.grad)[grid, threads](
                x, init, rec, params, opts, np.float32(dt), np.float32(sg.slope), g_spikes, g_rec, g_x, g_params,
                g_state, has_grec)
    return g_x, g_params, g_state


def _check_lean(dyn: Dynamics, x, state, params, opts, fmt: str, every: int) -> tuple[int, int]:
    """Structural O(1) checks of the lean kernels' NumPy arrays (shapes, dtypes, contiguity)."""
    from neuro.kernels.cpu import FORMATS

    _check_dyn(dyn)
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    every = _checks.check_int("every", every, minimum=1)
    xs = _shape(x)
    if len(xs) != 2:
        raise ValueError(f"x must have shape [T, N], got shape {xs}")
    T, n = xs
    want = np.float32 if fmt == "float32" else np.uint16
    for name, a, dtype in (("x", x, want), ("params", params, np.float32), ("state", state, np.float32)):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{dyn.name}: {name} must be a NumPy array (the lean kernels run on the CPU), got "
                            f"{type(a).__name__}")
        if a.dtype != dtype:
            raise TypeError(f"{dyn.name}: {name} must be {np.dtype(dtype)} for fmt={fmt!r}, got {a.dtype}")
        if not a.flags.c_contiguous:
            raise ValueError(f"{dyn.name}: {name} must be C-contiguous")
    ps = _shape(params)
    if len(ps) != 2 or ps[0] != len(dyn.params) or (n and (ps[1] == 0 or n % ps[1])):
        raise ValueError(f"{dyn.name}: params must have shape ({len(dyn.params)}, M) with M dividing N = {n} "
                         f"(one row per parameter {list(dyn.params)}, one column per neuron of a sample), got {ps}")
    _check_packed(dyn, T, n, state=state, opts=opts)
    return T, n


def _specialisation(dyn: Dynamics, T: int, n: int, params: np.ndarray, opts
                    ) -> tuple[tuple[int, ...] | None, bool, np.ndarray]:
    """How a lean kernel call is compiled: ``(option values or None, uniform, params to pass)``.

    Calls of at least :data:`SPECIALISE_FROM` neuron-steps, and repeated smaller ones
    (:data:`SPECIALISE_AFTER_CALLS`), get kernels with the option values as constants (one reset mode's
    arithmetic, which vectorises) and, when every neuron has the same parameters, one scalar per parameter
    instead of a row per neuron (``params[:, :1]``); they may also drop inert states (:func:`_inert_states`).
    Other calls share one kernel per model that reads everything at run time, so they cost no compile of their
    own. Results are bit-identical either way.
    """
    options = tuple(int(v) for v in opts)
    if T * n < SPECIALISE_FROM:
        if T * n < SPECIALISE_FROM / 128:
            return None, False, params
        # forward and backward both count: training step k makes calls 2k - 1 and 2k
        _SMALL_CALLS[dyn, options] += 1
        if _SMALL_CALLS[dyn, options] < 2 * SPECIALISE_AFTER_CALLS - 1:
            return None, False, params
    uniform = params.shape[1] == 1 or bool((params == params[:, :1]).all())
    return options, uniform, (np.ascontiguousarray(params[:, :1]) if uniform else params)


def _inert_states(dyn: Dynamics, params: np.ndarray) -> tuple[int, ...]:
    """The :attr:`Dynamics.inert` states whose parameter is 0 for every neuron: from a start at 0 they stay 0
    (a refractory counter with no refractory period), so a specialised call that starts them at 0 leaves them
    out of its loops and its checkpoints (``ckpt[C, S', N]`` holds the other states, in order)."""
    return tuple(s for s, p in dyn.inert if not params[p].any())


def forward_lean(dyn: Dynamics, x, state, params, opts, dt: float = 1.0, fmt: str = "float32", *,
                 checkpoint: bool = True, record_v: bool = False, every: int | None = None,
                 check_finite: bool = False, bits_out: np.ndarray | None = None):
    """Run T steps keeping, for :func:`backward_lean`, only the state every ``every`` steps.

    ``x[T, N]`` is float32, or the raw uint16 bits of bfloat16 / float16 input (``fmt``), read directly.
    ``params`` is ``[P, M]`` for one sample's ``M`` neurons (neuron ``j`` of ``N = B M`` uses column
    ``j % M``), or ``[P, N]``. ``state[S, N]`` float32 is updated in place to the final state.

    Returns ``(spikes[T, N] in x's format, ckpt[C, S', N] or None, v[T, N] float32 or None)``: ``ckpt[c]``
    is the state before step ``c * every`` (``S' = S``, or, in a specialised call that dropped inert states
    because they stayed 0, the other states in order), ``v`` the membrane after each step (``record_v``). With
    ``check_finite``, a NaN or infinity in ``x`` raises ValueError (``state`` is then the final state of a run
    over it: pass a copy to keep yours); the check rides on the kernel's one pass over ``x``. ``bits_out``: a
    C-contiguous uint8 array of ``T N / 8`` bytes (``N % 8 == 0``) that receives ``np.packbits(spikes != 0)``
    of the flattened spikes, written as each block's spikes are (no second pass over them).

    Example:
        >>> import numpy as np
        >>> from neuro import kernels
        >>> from neuro.models import lif
        >>> x = np.full((5, 3), 0.6, np.float32)
        >>> p = np.array([[0.9], [1.0], [0.0], [1.0], [0.0], [0.0]], np.float32)   # one column for all neurons
        >>> spikes, ckpt, _ = kernels.forward_lean(lif.DYNAMICS, x, np.zeros((2, 3), np.float32), p,
        ...                                        np.array([0, 1]), every=2)
        >>> spikes[:, 0].tolist(), ckpt.shape
        ([0.0, 1.0, 0.0, 1.0, 0.0], (3, 2, 3))
    """
    from neuro.kernels import cpu

    every = CHECKPOINT_EVERY if every is None else every
    T, n = _check_lean(dyn, x, state, params, opts, fmt, every)
    dt = _checks.check_dt(dt)
    checkpoint = _checks.check_bool("checkpoint", checkpoint)
    check_finite = _checks.check_bool("check_finite", check_finite)
    record_v = _checks.check_bool("record_v", record_v)
    S = len(dyn.state)
    options, uniform, kparams = _specialisation(dyn, T, n, params, opts)
    inert = () if options is None else tuple(k for k in _inert_states(dyn, params) if not state[k].any())
    spikes = np.empty((T, n), x.dtype)
    ckpt = np.empty(((T + every - 1) // every if checkpoint else 0, S - len(inert), n), np.float32)
    vrec = np.empty((T, n) if record_v else (1, 1), np.float32)
    nan_x = np.zeros((n + cpu.BLOCK - 1) // cpu.BLOCK, np.float32)
    if bits_out is None:
        bits_out = np.empty(0, np.uint8)
    elif n % 8:
        raise ValueError(f"bits_out needs N divisible by 8 (each block's row of spikes starts on a byte), got N = {n}")
    elif (not isinstance(bits_out, np.ndarray) or bits_out.dtype != np.uint8 or bits_out.shape != (T * n // 8,)
          or not bits_out.flags.c_contiguous or not bits_out.flags.writeable):
        raise ValueError(f"bits_out must be a writeable C-contiguous uint8 array of shape {(T * n // 8,)}, got "
                         f"{getattr(bits_out, 'dtype', type(bits_out).__name__)} {getattr(bits_out, 'shape', '')}")
    kern = cpu.lean_forward_kernel(dyn, fmt, record_v, options, uniform, inert)
    kern(x, state, kparams, opts, np.float32(dt), spikes, ckpt, vrec, every, nan_x, bits_out, cpu.BLOCK)
    if check_finite and not np.isfinite(nan_x).all():
        raise ValueError("x contains NaN or infinite values (in float32)")
    return spikes, (ckpt if checkpoint else None), (vrec if record_v else None)


_WORKSPACE = threading.local()


#: Largest segment workspace (bytes) kept between calls; a larger one (a long checkpoint interval) is made for
#: its call only, so memory is not held for it.
WORKSPACE_KEEP_BYTES = 16 << 20


def _segment_workspace(threads: int, S: int, every: int, block: int) -> np.ndarray:
    """The lean backward kernel's per-thread segment buffers ``[threads, S, every, block]`` float32, kept by the
    calling Python thread between calls (a kernel call per layer per step; fresh, they page-fault each time).
    One per Python thread: two threads running kernels at once never share one."""
    shape = (threads, S, every, block)
    size = int(np.prod(shape))
    if 4 * size > WORKSPACE_KEEP_BYTES:
        return np.empty(shape, np.float32)
    work = getattr(_WORKSPACE, "array", None)
    if work is None or work.size < size:
        work = _WORKSPACE.array = np.empty(size, np.float32)
    return work[:size].reshape(shape)


def backward_lean(dyn: Dynamics, surrogate, x, ckpt, params, opts, g_spikes, g_v=None, g_final=None,
                  dt: float = 1.0, fmt: str = "float32", every: int | None = None, *, out=None,
                  grad_params: bool = True):
    """Reverse-time BPTT from the checkpoints of :func:`forward_lean` (same ``x``, ``params``, ``every``),
    recomputing each segment's states in the kernel.

    ``g_spikes[T, N]`` is in x's format, ``g_v[T, N]`` (gradient reaching the recorded membrane) and
    ``g_final[S, N]`` (reaching the final state) float32 or None. Returns ``(g_x[T, N] in x's format,
    g_params[P, N] per neuron, g_init[S, N])``. ``g_x`` is written into ``out`` when given (a C-contiguous array
    like ``g_spikes``; it may be ``g_spikes`` itself: the kernel reads each row of ``g_spikes`` before it writes
    that row of ``g_x``, and no other), else into a new array. With ``grad_params=False`` the parameter
    gradients are not computed and ``g_params`` is None.
    """
    from neuro import surrogate as sg_mod
    from neuro.kernels import cpu

    sg = sg_mod.get(surrogate)
    every = CHECKPOINT_EVERY if every is None else every
    S, P = len(dyn.state), len(dyn.params)
    g_state = np.zeros((S, _shape(x)[1] if len(_shape(x)) == 2 else 0), np.float32)
    T, n = _check_lean(dyn, x, g_state, params, opts, fmt, every)
    if not dyn.trainable:
        raise ValueError(f"{dyn.name} has no backward step (not trainable by BPTT)")
    C = (T + every - 1) // every
    # checkpoints of every state, or of the states other than the inert ones a specialised forward dropped
    dropped = _inert_states(dyn, params)
    S_ck = S - len(dropped) if isinstance(ckpt, np.ndarray) and ckpt.ndim == 3 and ckpt.shape[1] < S else S
    for name, a, shape, dtype in (("ckpt", ckpt, (C, S_ck, n), np.float32), ("g_spikes", g_spikes, (T, n), x.dtype),
                                  ("g_v", g_v, (T, n), np.float32), ("g_final", g_final, (S, n), np.float32)):
        if a is None and name in ("ckpt", "g_spikes"):
            raise ValueError(f"{name} is required")
        if a is not None and (not isinstance(a, np.ndarray) or a.shape != shape or a.dtype != dtype
                              or not a.flags.c_contiguous):
            raise ValueError(f"{dyn.name}: {name} must be a C-contiguous {np.dtype(dtype)} array of shape {shape}, "
                             f"got {getattr(a, 'dtype', type(a).__name__)} {getattr(a, 'shape', '')}")
    if g_final is not None:
        g_state[...] = g_final
    dt = _checks.check_dt(dt)
    if out is None:
        g_x = np.empty((T, n), x.dtype)
    elif (not isinstance(out, np.ndarray) or out.shape != (T, n) or out.dtype != x.dtype or not out.flags.c_contiguous
          or not out.flags.writeable):
        raise ValueError(f"{dyn.name}: out must be a writeable C-contiguous {x.dtype} array of shape {(T, n)}, got "
                         f"{getattr(out, 'dtype', type(out).__name__)} {getattr(out, 'shape', '')}")
    else:
        g_x = out
    grad_params = _checks.check_bool("grad_params", grad_params)
    # specialised on the option values, the reverse sweep holds one reset mode's arithmetic and vectorises
    # (1.4-1.8x faster than reading them at run time, RESULTS.md "Training step"); without parameter gradients
    # their arithmetic is not compiled (the shared kernel of small calls always computes them).
    options, uniform, params = _specialisation(dyn, T, n, params, opts)
    inert = dropped if S_ck < S else ()
    if inert and options is None:  # the shared kernel reads every state's checkpoint: the dropped ones are 0
        full = np.zeros((C, S, n), np.float32)
        full[:, [k for k in range(S) if k not in inert]] = ckpt
        ckpt, inert = full, ()
    computed = grad_params or options is None
    g_params = np.zeros((P, n) if computed else (0, 0), np.float32)
    kern = cpu.lean_backward_kernel(dyn, sg.grad, fmt, options, computed, g_v is not None, uniform, inert)
    kern(x, ckpt, params, opts, np.float32(dt), np.float32(sg.slope), g_spikes,
         np.empty((1, 1), np.float32) if g_v is None else g_v, g_x, g_params, g_state, every, cpu.BLOCK,
         _segment_workspace(cpu.numba.get_num_threads(), S, every, cpu.BLOCK))
    return g_x, (g_params if grad_params else None), g_state


def _check_x(x, name: str = "x") -> np.ndarray:
    if _is_cuda(x):
        return x
    try:
        x = np.asarray(x)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a float array [T, N], got {type(x).__name__}") from None
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape [T, N] (time-major), got shape {x.shape}")
    if x.dtype != np.float32:
        if x.dtype == bool or x.dtype.kind not in "fiu":
            raise TypeError(f"{name} must be a float array, got dtype {x.dtype}")
        with np.errstate(over="ignore"):
            x = x.astype(np.float32)
    if x.size and not np.isfinite(x.sum(dtype=np.float64)) and not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values (in float32, |x| <= 3.4e38)")
    return np.ascontiguousarray(x)


def _check_float(a, name: str) -> np.ndarray:
    """Any-shape float array, cast to C-contiguous float32 and checked finite there (shapes: _check_packed)."""
    a = np.asarray(a)
    if a.dtype == bool or a.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a float array, got dtype {a.dtype}")
    with np.errstate(over="ignore"):
        a = np.ascontiguousarray(a, np.float32)
    if a.size and not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values (in float32)")
    return a


def forward(dyn: Dynamics, x, state: dict, params: Mapping, options: Mapping | None = None, dt: float = 1.0,
            record: bool = False):
    """Run the model for ``T = x.shape[0]`` steps over ``N = x.shape[1]`` neurons.

    ``state`` maps each state name to a float32 ``[N]`` array and is updated in place with the final state.
    Returns ``(spikes[T, N], rec[T, S, N] or None)``. Every argument is checked first: shapes against each
    other, dtypes, finiteness in float32, option values (``reset_mode`` may be given by name).
    """
    _check_dyn(dyn)
    x = _check_x(x)
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict of state name -> [N] array (updated in place), got "
                        f"{type(state).__name__}")
    n = x.shape[1]
    st = pack_state(dyn, state, n)
    spikes, rec = forward_packed(dyn, x, st, pack_params(dyn, params, n), pack_options(dyn, options), dt, record)
    for k, name in enumerate(dyn.state):
        arr = state.get(name)
        if isinstance(arr, np.ndarray) and arr.shape == (n,) and arr.dtype == np.float32 and arr.flags.writeable:
            arr[:] = st[k]
        else:
            state[name] = st[k].copy()
    return spikes, rec


def backward(dyn: Dynamics, surrogate, x, init_state: Mapping, rec, params: Mapping,
             options: Mapping | None, g_spikes, g_rec=None, dt: float = 1.0):
    """Gradients of a loss through :func:`forward` (called with ``record=True``).

    ``rec`` must be ``[T, S, N]``, ``g_spikes`` ``[T, N]`` and ``g_rec`` ``[T, S, N]`` or None, all finite.
    Returns ``(g_x[T, N], g_params: name -> [N], g_init: name -> [N])``.
    """
    _check_dyn(dyn)
    x = _check_x(x)
    n = x.shape[1]
    if rec is None:
        raise ValueError("rec must be the [T, S, N] states recorded by forward(..., record=True), got None")
    rec = _check_float(rec, "rec")
    g_spikes = _check_x(g_spikes, "g_spikes")
    g_rec = None if g_rec is None else _check_float(g_rec, "g_rec")
    g_x, g_p, g_s = backward_packed(
        dyn, surrogate, x, pack_state(dyn, init_state, n), rec, pack_params(dyn, params, n),
        pack_options(dyn, options), g_spikes, g_rec, dt)
    return (g_x, {k: g_p[i] for i, k in enumerate(dyn.params)}, {k: g_s[i] for i, k in enumerate(dyn.state)})
