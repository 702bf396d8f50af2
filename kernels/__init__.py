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

from collections.abc import Mapping

import numpy as np

from neuro.models._base import Dynamics

__all__ = ["forward", "backward", "forward_packed", "backward_packed", "pack_params", "pack_state"]


def _is_cuda(a) -> bool:
    """True for device arrays: CuPy, torch CUDA tensors, numba device arrays (also the simulator's)."""
    if isinstance(a, np.ndarray):
        return False
    if hasattr(a, "__cuda_array_interface__"):
        return True
    # numba's device arrays, including the CUDA simulator's FakeCUDAArray (no array interface there)
    return type(a).__module__.startswith("numba.cuda") and hasattr(a, "copy_to_host")


def pack_params(dyn: Dynamics, params: Mapping[str, object], n: int) -> np.ndarray:
    """Stack per-neuron parameters into a C-contiguous float32 ``[P, N]`` array (scalars broadcast)."""
    missing = [k for k in dyn.params if k not in params]
    if missing:
        raise ValueError(f"{dyn.name}: missing parameters {missing}; expected {list(dyn.params)}")
    out = np.empty((len(dyn.params), n), np.float32)
    for k, name in enumerate(dyn.params):
        val = np.asarray(params[name], dtype=np.float32).reshape(-1)
        if val.size not in (1, n):
            raise ValueError(f"{dyn.name}: parameter {name} has {val.size} values, expected 1 or {n}")
        out[k] = val
    return out


def pack_state(dyn: Dynamics, state: Mapping[str, object], n: int) -> np.ndarray:
    out = np.empty((len(dyn.state), n), np.float32)
    for k, name in enumerate(dyn.state):
        val = np.asarray(state.get(name, 0.0), dtype=np.float32).reshape(-1)
        if val.size not in (1, n):
            raise ValueError(f"{dyn.name}: state {name} has {val.size} values, expected 1 or {n}")
        out[k] = val
    return out


def pack_options(dyn: Dynamics, options: Mapping[str, int] | None) -> np.ndarray:
    options = {**dyn.default_options, **(options or {})}
    missing = [k for k in dyn.options if k not in options]
    if missing:
        raise ValueError(f"{dyn.name}: missing options {missing}; expected {list(dyn.options)}")
    return np.array([int(options[k]) for k in dyn.options] or [0], dtype=np.int64)


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

    Trusts its caller: arrays must be float32, C-contiguous, with matching N (see :func:`forward`).
    """
    T, n = x.shape
    device = device or ("cuda" if _is_cuda(x) else "cpu")
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
                    dt: float = 1.0, device: str | None = None):
    """Reverse-time BPTT through ``T`` steps.

    Returns ``(g_x[T, N], g_params[P, N], g_init[S, N])``; ``g_rec[T, S, N]`` is the gradient reaching the
    recorded states (e.g. a loss on the membrane), or None.
    """
    from neuro import surrogate as sg_mod

    sg = sg_mod.get(surrogate)
    T, n = x.shape
    device = device or ("cuda" if _is_cuda(x) else "cpu")
    g_x = _empty(x, (T, n))
    g_params = _zeros(x, (len(dyn.params), n))
    g_state = _zeros(x, (len(dyn.state), n))
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


def _check_x(x) -> np.ndarray:
    if _is_cuda(x):
        return x
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"x must have shape [T, N] (time-major), got shape {x.shape}")
    if x.dtype != np.float32:
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(f"x must be a float array, got dtype {x.dtype}")
        x = x.astype(np.float32)
    return np.ascontiguousarray(x)


def forward(dyn: Dynamics, x, state: dict, params: Mapping, options: Mapping | None = None, dt: float = 1.0,
            record: bool = False):
    """Run the model for ``T = x.shape[0]`` steps over ``N = x.shape[1]`` neurons.

    ``state`` maps each state name to a float32 ``[N]`` array and is updated in place with the final state.
    Returns ``(spikes[T, N], rec[T, S, N] or None)``.
    """
    x = _check_x(x)
    n = x.shape[1]
    st = pack_state(dyn, state, n)
    spikes, rec = forward_packed(dyn, x, st, pack_params(dyn, params, n), pack_options(dyn, options), dt, record)
    for k, name in enumerate(dyn.state):
        arr = state.get(name)
        if isinstance(arr, np.ndarray) and arr.shape == (n,) and arr.dtype == np.float32:
            arr[:] = st[k]
        else:
            state[name] = st[k].copy()
    return spikes, rec


def backward(dyn: Dynamics, surrogate, x, init_state: Mapping, rec, params: Mapping,
             options: Mapping | None, g_spikes, g_rec=None, dt: float = 1.0):
    """Gradients of a loss through :func:`forward` (called with ``record=True``).

    Returns ``(g_x[T, N], g_params: name -> [N], g_init: name -> [N])``.
    """
    x = _check_x(x)
    n = x.shape[1]
    g_x, g_p, g_s = backward_packed(
        dyn, surrogate, x, pack_state(dyn, init_state, n), rec, pack_params(dyn, params, n),
        pack_options(dyn, options), np.ascontiguousarray(g_spikes, np.float32),
        None if g_rec is None else np.ascontiguousarray(g_rec, np.float32), dt)
    return (g_x, {k: g_p[i] for i, k in enumerate(dyn.params)}, {k: g_s[i] for i, k in enumerate(dyn.state)})
