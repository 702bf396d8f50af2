"""The simulator's GPU backend: ``numba.cuda`` kernels generated from the same
:class:`~neuro.sim.runtime.Layout` as the CPU loop, one launch per population, source, projection, STDP
phase and state monitor each step (the time loop runs on the host). The neuron update is the CPU loop's
own fragment (:meth:`~neuro.sim.runtime.PopulationPart.neuron_lines`), Poisson spikes come from the same
counter-based generator and STDP runs in the CPU loop's order (traces decay; pre spikes depress, then
transmit; post spikes potentiate; every synapse written by one thread), so the two backends agree (up to
the order of float additions into one synaptic buffer cell, which atomics do not fix). Runs on device
arrays, and in Numba's CUDA simulator for tests (``NUMBA_ENABLE_CUDASIM=1``).

With ``neuro.kernels.set_backend("cupy")`` the population updates run instead as CUDA C printed from the same
fragment and the models' own step functions (:func:`population_c_source`, compiled by NVRTC through CuPy at first
use); sources, propagation, STDP and monitors stay on numba.cuda.

Example (the generated source, variables named as in the CPU loop):
    >>> import neuro
    >>> from neuro.sim.runtime import Layout, Runtime
    >>> from neuro.sim.cuda_engine import source
    >>> net = neuro.sim.Network(dt=0.1)
    >>> pop = net.population(4, neuro.models.LIF())
    >>> "def update_p0(t, dt, p0_n, p0_v" in source(Layout(net, Runtime(), 1, None))
    True
"""

from __future__ import annotations

import numpy as np

from neuro.kernels import get_backend
from neuro.kernels.codegen import load
from neuro.sim import random
from neuro.sim.runtime import Layout

THREADS = 128
C_OPTIONS = ("--fmad=false",)
"""Compiler options of the population updates' CUDA C: no contraction of ``a * b + c`` into one FMA, so the GPU
rounds every operation as the CPU loop does (the same spikes on both)."""


def _kernel(name: str, args: list[str], body: list[str]) -> str:
    return "\n\n@cuda.jit\ndef " + f"{name}({', '.join(dict.fromkeys(args))}):\n" + "\n".join(
        "    " + x for x in body) + "\n"


def _guard(n) -> list[str]:
    return ["i = cuda.grid(1)", f"if i >= {n}:", "    return"]


def source(layout: Layout) -> str:
    head = ["import numpy as np", "from numba import cuda",
            "from neuro.sim.random import poisson_table as _poisson_table",
            "from neuro.sim.random import uniform as _uniform"]
    out = []
    for p in layout.pops:
        mod, attr = p.step_import
        head.append(f"from {mod} import {attr} as {p.step_name}")
        body = _guard(p.n) + p.prologue_lines()
        if p.drive is not None:
            body.append(p.drive_line())
        out.append(_kernel(f"update_{p.prefix}", ["t", "dt", *p.names], body + p.neuron_lines()))
    for q in layout.poissons:
        out.append(_kernel(f"draw_{q.prefix}", ["t", "seed", *q.names], _guard(q.n) + [q.draw_line()]))
    for c in layout.projs:
        P, pre, post = c.prefix, c.pre, c.post
        add = (f"cuda.atomic.add({c.ring}, ((t + {c.delay}) % {c.ring}.shape[0], {P}_targets[k]), {c.weight})")
        args = ["t", pre.fired, *c.names, c.ring]
        if c.stdp is None:
            out.append(_kernel(f"prop_{P}", args, _guard(pre.n) + [
                f"if {pre.fired}[i]:", f"    for k in range({P}_indptr[i], {P}_indptr[i + 1]):", "        " + add]))
            continue
        n = max(pre.n, post.n)
        out.append(_kernel(f"decay_{P}", [*c.names], _guard(n) + [
            f"if i < {pre.n}:", f"    {P}_xpre[i] *= {P}_decay_plus",
            f"if i < {post.n}:", f"    {P}_xpost[i] *= {P}_decay_minus"]))
        out.append(_kernel(f"pre_{P}", args, _guard(pre.n) + [
            f"if {pre.fired}[i]:", f"    {P}_xpre[i] += 1.0", f"    for k in range({P}_indptr[i], {P}_indptr[i + 1]):",
            f"        tg = {P}_targets[k]", *["        " + x for x in c.depress_lines()], "        " + add]))
        out.append(_kernel(f"post_{P}", [post.fired, *c.names], _guard(post.n) + [
            f"if {post.fired}[i]:", f"    {P}_xpost[i] += 1.0",
            f"    for m in range({P}_post_ptr[i], {P}_post_ptr[i + 1]):", f"        k = {P}_by_post[m]",
            *["        " + x for x in c.potentiate_lines()]]))
    for sm in layout.state_mons:
        P = sm.prefix
        out.append(_kernel(f"sample_{P}", ["row", f"{P}_ids", sm.out, sm.var],
                           ["i = cuda.grid(1)", f"if i < {P}_ids.shape[0]:",
                            f"    {sm.out}[row, i] = {sm.var}[{P}_ids[i]]"]))
    return "\n".join(head) + "\n" + "".join(out)


def population_fragments(layout: Layout) -> list:
    """The population updates as :class:`neuro.kernels.cuda_c.Fragment` objects: the same lines as the numba
    kernels above (ring slot, Poisson drive, receptors, the model's step), for the CUDA C of the CuPy backend."""
    from neuro.kernels.cuda_c import CFunction, Fragment

    poisson = CFunction("neuro_poisson_table", random.C_SOURCE)
    out = []
    for p in layout.pops:
        lines = p.prologue_lines() + ([p.drive_line()] if p.drive is not None else []) + p.neuron_lines()
        env = {"np": np, "_poisson_table": poisson, p.step_name: p.dyn.step}
        args = {"t": np.int64(0), "dt": 0.0, **p.values}  # example values: they fix the C types
        out.append(Fragment(f"update_{p.prefix}", args, lines, env, count=f"{p.prefix}_n"))
    return out


def population_c_source(layout: Layout) -> str:
    """CUDA C of every population update of ``layout``: kernels ``update_<prefix>(t, dt, <the population's arrays
    and scalars>)`` (one thread per neuron) and, for a host compiler, ``host_update_<prefix>``; the model steps are
    printed from the models' own code (:func:`neuro.kernels.cuda_c.fragment_source`).

    Example:
        >>> import neuro
        >>> from neuro.sim.cuda_engine import population_c_source
        >>> from neuro.sim.runtime import Layout, Runtime
        >>> net = neuro.sim.Network(dt=0.1)
        >>> pop = net.population(4, neuro.models.LIF())
        >>> pop.poisson_drive(1000.0, 0.5)
        >>> src = population_c_source(Layout(net, Runtime(), 1, None))
        >>> 'extern "C" __global__ void update_p0(long long t, float dt' in src and "double" not in src
        True
    """
    from neuro.kernels.cuda_c import fragment_source

    return fragment_source(population_fragments(layout), [(p.dyn.step, p.dyn.options) for p in layout.pops])


def grid(n: int) -> tuple[int, int]:
    """(blocks, threads) for ``n`` items: blocks of :data:`THREADS`, or one block of ``n`` for small ``n``
    (the CUDA simulator runs every thread of a block, idle or not)."""
    threads = max(1, min(THREADS, n))
    return max(1, (n + threads - 1) // threads), threads


def _numba_update(mod, p, t: int, dt: float, args: list) -> None:
    getattr(mod, f"update_{p.prefix}")[grid(p.n)](t, dt, *args)


def _cupy_update(layout: Layout, dev: dict):
    """The population update of the CuPy backend: one RawModule for every population of ``layout`` (compiled at
    first use, once per source), launched on CuPy views of the numba device arrays (the same memory; both
    frameworks launch on the legacy default stream, so the launches stay in order)."""
    from neuro.kernels import cupy_backend

    cmod = cupy_backend.source_module(population_c_source(layout), C_OPTIONS)
    frags = {f.name: f for f in population_fragments(layout)}
    views = {k: cupy_backend.as_cupy(v) if hasattr(v, "__cuda_array_interface__") else v for k, v in dev.items()}

    def update(mod, p, t, dt, args):
        cupy_backend.launch_fragment(cmod, frags[f"update_{p.prefix}"], {**views, "t": t, "dt": dt}, p.n)

    return update


def run_cuda(net, layout: Layout, steps: int, progress: bool) -> None:
    """Run ``steps`` steps of ``net`` on the GPU; results land in the layout's host arrays and monitors."""
    from numba import cuda
    from tqdm.auto import tqdm

    from neuro.kernels.cuda import register_numpy_math

    register_numpy_math()  # np.exp (Poisson drive, model steps) and max/min need their CUDA lowerings
    mod = load("sim_cuda", source(layout))
    host = layout.values
    dev = {k: cuda.to_device(v) if isinstance(v, np.ndarray) else v for k, v in host.items()}
    update = _numba_update
    if get_backend() == "cupy":  # population updates from generated CUDA C (NVRTC), on the same device arrays
        update = _cupy_update(layout, dev)

    def args(names):
        return [dev[k] for k in names]

    monitored = [(e, layout.monitor_of(e)) for e in layout.emitters if layout.monitor_of(e) >= 0]
    events = {mon: ([], []) for _, mon in monitored}
    seed = np.int64(net._spike_seed)
    counts = {sm.prefix: 0 for sm in layout.state_mons}
    for s in tqdm(range(steps), desc="simulating (cuda)", disable=not progress, leave=False):
        t = net.t_steps + s
        for q in layout.poissons:
            getattr(mod, f"draw_{q.prefix}")[grid(q.n)](t, seed, *args(q.names))
        for u in layout.timed:
            fired = np.zeros_like(host[u.fired])
            ptr, ids = host[f"{u.prefix}_step_ptr"], host[f"{u.prefix}_ids"]
            fired[ids[ptr[t]:ptr[t + 1]]] = 1
            dev[u.fired].copy_to_device(fired)
        for p in layout.pops:
            update(mod, p, t, net.dt, args(p.names))
        for sm in layout.state_mons:
            if t % sm.mon.every == 0:
                getattr(mod, f"sample_{sm.prefix}")[grid(len(sm.mon.ids))](
                    counts[sm.prefix], dev[f"{sm.prefix}_ids"], dev[sm.out], dev[sm.var])
                counts[sm.prefix] += 1
        for e, mon in monitored:
            ids = np.nonzero(dev[e.fired].copy_to_host()[:e.n])[0]
            events[mon][0].append(np.full(len(ids), t, np.int64))
            events[mon][1].append(ids.astype(np.int32))
        for c in layout.projs:
            P = c.prefix
            pargs = args(["t", c.pre.fired, *c.names, c.ring][1:])
            if c.stdp is None:
                getattr(mod, f"prop_{P}")[grid(c.pre.n)](t, *pargs)
                continue
            getattr(mod, f"decay_{P}")[grid(max(c.pre.n, c.post.n))](*args(c.names))
            getattr(mod, f"pre_{P}")[grid(c.pre.n)](t, *pargs)
            getattr(mod, f"post_{P}")[grid(c.post.n)](*args(dict.fromkeys([c.post.fired, *c.names])))
    for k, v in host.items():  # everything the kernels may have written, back to the host arrays
        if isinstance(v, np.ndarray):
            v[...] = dev[k].copy_to_host()
    for sm in layout.state_mons:
        host[sm.count][0] = counts[sm.prefix]
    for m in net.monitors:
        if hasattr(m, "_i"):
            ts, ids = events[layout.spike_mons[id(m.target)]]
            m._t.append(np.concatenate(ts) * net.dt if ts else np.zeros(0))
            m._i.append(np.concatenate(ids) if ids else np.zeros(0, np.int32))
    net.t_steps += steps
