"""The simulator's GPU backend: ``numba.cuda`` kernels generated per network structure, one launch per
population, source and projection each step (the time loop runs on the host). Each neuron kernel calls the
model's own scalar ``step`` like the CPU loop; Poisson spikes come from the same counter-based generator, so
the two backends give the same spikes (up to the order of float additions into one synaptic buffer cell,
which atomics do not fix). Runs on CuPy/numba device arrays, and in Numba's CUDA simulator for tests.
"""

from __future__ import annotations

from neuro.kernels.codegen import importable_name, load
from neuro.sim.engine import POISSON_SEED_STRIDE

THREADS = 128


def build(pops, poissons, projections):
    head = ["import numpy as np", "from numba import cuda", "from neuro.sim.random import poisson as _poisson",
            "from neuro.sim.random import uniform as _uniform"]
    body: list[str] = []
    for k, p in enumerate(pops):
        dyn = p["dyn"]
        mod, attr = importable_name(dyn.step)
        head.append(f"from {mod} import {attr} as _step{k}")
        S, P, n_opt = len(dyn.state), len(dyn.params), len(dyn.options)
        call = ", ".join([f"st[{a}, i]" for a in range(S)] + ["x"] + [f"par[{a}, i]" for a in range(P)]
                         + [f"opt[{a}]" for a in range(n_opt)] + ["np.float32(dt)"])
        body += [
            "", "", "@cuda.jit",
            f"def update{k}(t, dt, st, par, opt, isyn, sdec, kco, buf, iext, fired, drv, iser, isrm, erev, vix):",
            "    i = cuda.grid(1)",
            "    if i >= fired.shape[0]:",
            "        return",
            "    slot = t % buf.shape[0]",
            "    x = iext[i]",
            "    if isrm[1] > 0 and t >= isrm[0] and t - isrm[0] < isrm[1]:",
            "        x += iser[t - isrm[0], i]",
            "    for r in range(isyn.shape[0]):",
            "        cur = isyn[r, i] + buf[slot, r, i]",
            "        if r == drv[2]:",
            "            cur += np.float32(drv[1] * _poisson(np.int64(drv[3]), t * fired.shape[0] + i, drv[0]))",
            "        buf[slot, r, i] = 0.0",
            "        if erev[r] == erev[r]:",
            "            x += kco[r, i] * cur * (erev[r] - st[vix[0], i])",
            "        else:",
            "            x += kco[r, i] * cur",
            "        isyn[r, i] = cur * sdec[r]",
            f"    {', '.join(f'n{a}' for a in range(S))}, spk = _step{k}({call})",
            *[f"    st[{a}, i] = n{a}" for a in range(S)],
            "    fired[i] = 1 if spk > 0 else 0",
        ]
    for q in range(len(poissons)):
        body += ["", "", "@cuda.jit", f"def draw{q}(t, seed, prob, fired):", "    i = cuda.grid(1)",
                 "    if i < fired.shape[0]:",
                 f"        fired[i] = 1 if _uniform(seed + {POISSON_SEED_STRIDE * (q + 1)}, t * fired.shape[0] + i) "
                 "< prob[i] else 0"]
    for j, pr in enumerate(projections):
        wk = "w[0]" if pr["uniform_w"] else "w[k]"
        dk = "d[0]" if pr["uniform_d"] else "d[k]"
        body += ["", "", "@cuda.jit", f"def prop{j}(t, fired, ptr, tgt, w, d, buf):", "    i = cuda.grid(1)",
                 "    if i < fired.shape[0] and fired[i]:", "        for k in range(ptr[i], ptr[i + 1]):",
                 f"            cuda.atomic.add(buf, ((t + {dk}) % buf.shape[0], {pr['receptor']}, tgt[k]), {wk})"]
    return load("sim_cuda", "\n".join(head) + "\n" + "\n".join(body) + "\n")


def grid(n: int) -> tuple[int, int]:
    return max(1, (n + THREADS - 1) // THREADS), THREADS
