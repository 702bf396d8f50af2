"""CuPy backend: the generated CUDA C kernels (:func:`neuro.kernels.cuda_c.kernel_source`) compiled by NVRTC
through ``cupy.RawModule`` at first use, and launched on CuPy arrays or torch CUDA tensors without copies.

One thread per neuron runs the whole time loop (as the numba.cuda kernels do); the step is the model's own code
printed as C, so the dynamics are not written twice. Input ``x`` (and ``g_spikes``) may be float32, float16 or
bfloat16; state, parameters and recorded states are float32; spikes and ``g_x`` come back in the input's dtype
(what torch autocast expects of an op that takes a half-precision input). Kernels are compiled once per model and
surrogate per process (CuPy also keeps the binaries in its on-disk kernel cache).

Chosen by ``neuro.kernels.set_backend("cupy")`` or ``NEURO_KERNEL_BACKEND=cupy``; CuPy is imported only then
(the optional ``[gpu]`` extra). With that choice ``neuro.sim.Network(device="cuda")`` also runs its population
updates here (:func:`source_module`, :func:`launch_fragment`: CUDA C printed from the simulator's own update
fragment and the models' steps), the rest of its step on numba.cuda.

Example (needs a CUDA device and CuPy; skipped by the doctest run)::

    import cupy
    from neuro.kernels import cupy_backend, pack_options, pack_params, pack_state
    from neuro.models import lif
    p = {"decay": 0.9, "gain": 1.0, "v_leak": 0.0, "threshold": 1.0, "v_reset": 0.0, "t_ref": 0.0}
    x = cupy.full((5, 3), 0.6, cupy.float32)
    st = cupy.asarray(pack_state(lif.DYNAMICS, {}, 3))
    spikes, _ = cupy_backend.forward_packed(lif.DYNAMICS, x, st, cupy.asarray(pack_params(lif.DYNAMICS, p, 3)),
                                            cupy.asarray(pack_options(lif.DYNAMICS, {"reset_mode": 0})), 1.0)
    spikes[:, 0].get().tolist()   # [0.0, 1.0, 0.0, 1.0, 0.0]
"""

from __future__ import annotations

import hashlib
import threading

import numpy as np

from neuro.kernels import cuda_c
from neuro.models._base import Dynamics

THREADS = 128
_LOCK = threading.Lock()
_MODULES: dict[tuple, object] = {}


def _cupy():
    try:
        import cupy
    except ImportError as exc:  # the optional [gpu] extra
        raise ImportError("the CuPy kernel backend needs CuPy: pip install 'neuro-snn[gpu]' (cupy-cuda12x or "
                          "cupy-cuda13x matching your CUDA driver)") from exc
    return cupy


def module(dyn: Dynamics, surrogate=None):
    """The compiled ``cupy.RawModule`` of ``dyn`` (with its backward step for ``surrogate``), built at first use."""
    sg = cuda_c._surrogate_fn(surrogate)
    key = (id(dyn), id(sg))
    with _LOCK:
        entry = _MODULES.get(key)
        if entry is None:
            cupy = _cupy()
            # dyn and sg stay referenced by the entry: their ids are the key
            entry = (cupy.RawModule(code=cuda_c.kernel_source(dyn, sg), options=("-std=c++17",)), dyn, sg)
            _MODULES[key] = entry
        return entry[0]


def source_module(code: str, options: tuple[str, ...] = ()):
    """``cupy.RawModule`` of generated CUDA C ``code`` (such as the simulator's population updates,
    :func:`neuro.sim.cuda_engine.population_c_source`) with extra NVRTC ``options``, compiled at first use, once
    per source text and options."""
    key = ("source", hashlib.sha1(code.encode()).hexdigest(), tuple(options))
    with _LOCK:
        entry = _MODULES.get(key)
        if entry is None:
            entry = _MODULES[key] = _cupy().RawModule(code=code, options=("-std=c++17", *options))
        return entry


def launch_fragment(mod, fragment, values: dict, n: int) -> None:
    """Launch the kernel of a :class:`neuro.kernels.cuda_c.Fragment` from ``mod`` over ``n`` elements, one thread
    each, with its arguments taken by name from ``values`` (CUDA arrays of any framework: viewed without copies)."""
    args = [as_cupy(a) if hasattr(a, "shape") and not isinstance(a, np.generic) else a
            for a in fragment.arguments(values)]
    if n:
        mod.get_function(fragment.name)(((n + THREADS - 1) // THREADS,), (THREADS,), tuple(args))


_DTYPES = {"float32": "float32", "float16": "float16", "bfloat16": "bfloat16"}


def _dtype_name(a) -> str:
    name = str(getattr(a, "dtype", "")).removeprefix("torch.")
    if name not in _DTYPES:
        raise TypeError(f"x must be float32, float16 or bfloat16 for the CuPy backend, got {name or type(a).__name__}")
    return name


def as_cupy(a):
    """A CuPy view of a CUDA array (CuPy array, torch CUDA tensor, anything with ``__cuda_array_interface__`` or
    DLPack), without copying; a NumPy array is copied to the device. torch bfloat16 is viewed as int16 (CuPy has
    no bfloat16; the kernel reads the bits)."""
    cupy = _cupy()
    if isinstance(a, cupy.ndarray):
        return a
    if isinstance(a, np.ndarray):  # small host arrays (the int64 options neuro.nn passes): copied to the device
        return cupy.asarray(a)
    mod = type(a).__module__
    if mod.startswith("torch"):
        import torch

        if a.dtype == torch.bfloat16:
            a = a.view(torch.int16)
        return cupy.asarray(a)  # __cuda_array_interface__: same memory
    if hasattr(a, "__cuda_array_interface__"):
        return cupy.asarray(a)
    return cupy.from_dlpack(a)


def _empty_like_input(x, shape, dtype_name: str):
    """Output in the input's framework and dtype (torch in, torch out)."""
    if type(x).__module__.startswith("torch"):
        import torch

        return torch.empty(shape, dtype=getattr(torch, dtype_name), device=x.device)
    cupy = _cupy()
    return cupy.empty(shape, dtype=np.float32 if dtype_name == "float32" else np.float16)


def _empty_f32(x, shape):
    if type(x).__module__.startswith("torch"):
        import torch

        return torch.empty(shape, dtype=torch.float32, device=x.device)
    return _cupy().empty(shape, np.float32)


def _zeros_f32(x, shape):
    out = _empty_f32(x, shape)
    out[...] = 0
    return out


def _stream(x):
    """torch's current stream when given torch tensors (so the launch is ordered with torch's own work)."""
    cupy = _cupy()
    if type(x).__module__.startswith("torch"):
        import torch

        return cupy.cuda.ExternalStream(torch.cuda.current_stream(x.device).cuda_stream)
    return cupy.cuda.get_current_stream()


def forward_packed(dyn: Dynamics, x, state, params, opts, dt: float = 1.0, record: bool = False, spikes=None):
    """Run ``T = x.shape[0]`` steps on the GPU; same contract as :func:`neuro.kernels.forward_packed` (``state``
    updated in place), with ``x`` float32, float16 or bfloat16 and spikes in ``x``'s dtype."""
    dname = _dtype_name(x)
    T, n = (int(v) for v in x.shape)
    S = len(dyn.state)
    if spikes is None:
        spikes = _empty_like_input(x, (T, n), dname)
    rec = _empty_f32(x, (T, S, n) if record else (1, S, 1))
    if n and T:
        kern = module(dyn).get_function(f"forward_{dname}")
        args = (np.int64(T), np.int64(n), as_cupy(x), as_cupy(state), as_cupy(params), as_cupy(opts),
                np.float32(dt), as_cupy(spikes), as_cupy(rec), np.int32(bool(record)))
        with _stream(x):
            kern(((n + THREADS - 1) // THREADS,), (THREADS,), args)
    return spikes, (rec if record else None)


def backward_packed(dyn: Dynamics, surrogate, x, init, rec, params, opts, g_spikes, g_rec=None, dt: float = 1.0,
                    g_final=None):
    """Reverse-time BPTT on the GPU; same contract as :func:`neuro.kernels.backward_packed`, ``g_x`` in ``x``'s
    dtype (``g_spikes`` must have ``x``'s dtype)."""
    from neuro import surrogate as sg_mod

    sg = sg_mod.get(surrogate)
    dname = _dtype_name(x)
    if _dtype_name(g_spikes) != dname:
        raise TypeError(f"g_spikes must have x's dtype {dname}, got {_dtype_name(g_spikes)}")
    if not dyn.trainable:
        raise ValueError(f"{dyn.name} has no backward step (not trainable by BPTT)")
    T, n = (int(v) for v in x.shape)
    S, P = len(dyn.state), len(dyn.params)
    g_x = _empty_like_input(x, (T, n), dname)
    g_params = _zeros_f32(x, (P, n))
    g_state = _zeros_f32(x, (S, n))
    if g_final is not None:  # the reverse sweep starts from g_state's values
        g_state[...] = g_final
    has_grec = g_rec is not None
    if g_rec is None:
        g_rec = _empty_f32(x, (1, S, 1))
    if n and T:
        kern = module(dyn, sg.grad).get_function(f"backward_{dname}")
        args = (np.int64(T), np.int64(n), as_cupy(x), as_cupy(init), as_cupy(rec), as_cupy(params), as_cupy(opts),
                np.float32(dt), np.float32(sg.slope), as_cupy(g_spikes), as_cupy(g_rec), as_cupy(g_x),
                as_cupy(g_params), as_cupy(g_state), np.int32(has_grec))
        with _stream(x):
            kern(((n + THREADS - 1) // THREADS,), (THREADS,), args)
    return g_x, g_params, g_state
