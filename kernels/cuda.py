"""CUDA kernels: ``numba.cuda.jit``, one thread per neuron, the whole time loop inside the thread.

The same scalar step and backward functions as the CPU kernels are called from the device code
(numba compiles ``@njit`` functions for the CUDA target), so no dynamics are written twice.
Arrays are CuPy arrays, torch CUDA tensors or anything with ``__cuda_array_interface__``; without a
GPU these kernels run in Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``), which the tests use.
"""

from __future__ import annotations

import threading
from functools import cache

from neuro.kernels.codegen import load, names
from neuro.kernels.cpu import _imports
from neuro.models._base import Dynamics

THREADS = 128

# Scalar math with no working lowering on numba's CUDA target (numba 0.68 types np.exp(float32) only on the CPU,
# and its builtin max/min of floats fails as a device function): model, equation and surrogate code call these,
# so each gets a CUDA overload (NumPy's onto libdevice's float32 / float64 function). Found by gpu_check.
_MATH_LOCK = threading.Lock()
_math_done = False


def register_numpy_math() -> None:
    """Give NumPy's scalar ``exp expm1 log1p sqrt floor ceil trunc sign`` and two-float ``max``/``min`` a numba CUDA
    lowering (float32 stays float32: ``np.exp(float32)`` becomes libdevice's ``expf``). Idempotent; called before
    CUDA kernels compile."""
    global _math_done
    with _MATH_LOCK:
        if _math_done:
            return
        _math_done = True
        from numba.core import config

        if config.ENABLE_CUDASIM:  # the simulator runs Python: NumPy itself
            return
        import numpy as np
        from numba import types
        from numba.core.extending import overload
        from numba.cuda import libdevice

        def make(np_fn, f32, f64):
            @overload(np_fn, target="cuda")
            def _impl(x):
                if x == types.float32:
                    return f32
                return f64 if isinstance(x, types.Float) else None

        def call(fn):
            return lambda x: fn(x)

        for name in ("exp", "expm1", "log1p", "sqrt", "floor", "ceil", "trunc"):
            make(getattr(np, name), call(getattr(libdevice, name + "f")), call(getattr(libdevice, name)))

        def sign(one, copysign):
            def impl(x):
                return copysign(one, x) if (x > 0 or x < 0) else x  # 0 and NaN are returned as they are
            return impl

        make(np.sign, sign(np.float32(1.0), libdevice.copysignf), sign(1.0, libdevice.copysign))

        # builtin max/min of two floats: numba's own (``impl(*x)``) fails as a CUDA device function
        # ("Signature mismatch: 2 argument types given, but function takes 1"); Python's semantics kept
        @overload(max, target="cuda")
        def _max(a, b):
            if isinstance(a, types.Float) and isinstance(b, types.Float):
                return lambda a, b: b if b > a else a
            return None

        @overload(min, target="cuda")
        def _min(a, b):
            if isinstance(a, types.Float) and isinstance(b, types.Float):
                return lambda a, b: b if b < a else a
            return None


def _forward_source(dyn: Dynamics) -> str:
    S, P, n_opt = len(dyn.state), len(dyn.params), len(dyn.options)
    s, p, o = names("s", S), names("p", P), names("o", n_opt)
    lines = ["from numba import cuda", "", "", "@cuda.jit",
             "def forward(x, state, params, opts, dt, spikes, rec, record):",
             "    i = cuda.grid(1)", "    if i >= x.shape[1]:", "        return"]
    lines += [f"    {v} = state[{k}, i]" for k, v in enumerate(s)]
    lines += [f"    {v} = params[{k}, i]" for k, v in enumerate(p)]
    lines += [f"    {v} = opts[{k}]" for k, v in enumerate(o)]
    lines += ["    for t in range(x.shape[0]):",
              f"        {', '.join(s)}, spk = _step({', '.join(s + ['x[t, i]'] + p + o + ['dt'])})",
              # keep float32 between steps (the CUDA simulator would otherwise carry Python floats)
              *[f"        {v} = np.float32({v})" for v in s],
              "        spikes[t, i] = spk", "        if record:"]
    lines += [f"            rec[t, {k}, i] = {v}" for k, v in enumerate(s)]
    lines += [f"    state[{k}, i] = {v}" for k, v in enumerate(s)]
    return "\n".join(lines) + "\n"


def _backward_source(dyn: Dynamics) -> str:
    S, P, n_opt = len(dyn.state), len(dyn.params), len(dyn.options)
    p, o = names("p", P), names("o", n_opt)
    gs, gp, prev = names("gs", S), names("gp", P), names("prev", S)
    lines = ["from numba import cuda", "", "", "@cuda.jit",
             "def backward(x, init, rec, params, opts, dt, slope, g_spikes, g_rec, g_x, g_params, g_state,"
             " has_grec):",
             "    i = cuda.grid(1)", "    if i >= x.shape[1]:", "        return"]
    lines += [f"    {v} = params[{k}, i]" for k, v in enumerate(p)]
    lines += [f"    {v} = opts[{k}]" for k, v in enumerate(o)]
    lines += [f"    {v} = g_state[{k}, i]" for k, v in enumerate(gs)]
    lines += [f"    acc{k} = g_params[{k}, i]" for k in range(P)]
    lines += ["    for tt in range(x.shape[0]):", "        t = x.shape[0] - 1 - tt", "        if t > 0:"]
    lines += [f"            {v} = rec[t - 1, {k}, i]" for k, v in enumerate(prev)]
    lines += ["        else:"]
    lines += [f"            {v} = init[{k}, i]" for k, v in enumerate(prev)]
    lines += ["        if has_grec:"]
    lines += [f"            {v} += g_rec[t, {k}, i]" for k, v in enumerate(gs)]
    call = ", ".join(prev + ["x[t, i]"] + p + o + ["dt", "slope", "g_spikes[t, i]"] + gs)
    lines += [f"        {', '.join(gs)}, gx, {', '.join(gp)} = _backward({call})", "        g_x[t, i] = gx"]
    lines += [f"        {v} = np.float32({v})" for v in gs]
    lines += [f"        acc{k} += {v}" for k, v in enumerate(gp)]
    lines += [f"    g_state[{k}, i] = {v}" for k, v in enumerate(gs)]
    lines += [f"    g_params[{k}, i] = acc{k}" for k in range(P)]
    return "\n".join(lines) + "\n"


@cache
def forward_kernel(dyn: Dynamics):
    register_numpy_math()
    head, _ = _imports(dyn)
    return load(f"{dyn.name}_cuda_fwd", head + _forward_source(dyn)).forward


@cache
def backward_kernel(dyn: Dynamics, surrogate_grad):
    if dyn.make_backward is None:
        raise ValueError(f"model {dyn.name!r} has no backward step (it is not trainable)")
    register_numpy_math()
    head, inject = _imports(dyn, surrogate_grad)
    return load(f"{dyn.name}_cuda_bwd", head + _backward_source(dyn), inject).backward


def launch_config(n: int) -> tuple[int, int]:
    return (n + THREADS - 1) // THREADS, THREADS
