"""Generate the compiled CPU loop of one network from its :class:`~neuro.sim.runtime.Layout` (one numba
module per structure, cached on disk through :mod:`neuro.kernels.codegen`).

Each step, in this order: sources fire; each population runs its update (a pass that draws the Poisson
drive, then the neuron loop: synaptic input receptor by receptor, then the model's scalar ``step``);
state monitors sample; each spike vector becomes a list (scanned eight neurons at a time); spike
monitors record; projections propagate the spikes (STDP: traces decay, pre spikes depress and
transmit, post spikes potentiate).

The neuron loop vectorises: parameters every neuron shares are scalars, options are constants, each
receptor has its own arrays (current and conductance receptors are different code, not a run-time test),
and the drive is drawn in its own vectorised pass. Parallel networks without STDP run one parallel region a
step: each thread owns a fixed share of every population, propagates the previous step's spikes onto its own
targets (rows are ordered by target, so a thread binary-searches its part of each row), then updates its own
neurons. With STDP, large populations run in fixed blocks of :data:`~neuro.sim.runtime.BLOCK` neurons over
threads and large projections give each thread a fixed range of postsynaptic neurons after the update.
Every buffer cell then receives its additions in the same order on any thread count: the same seed gives
the same spikes on 1 or N threads.

Example (the generated source of a small network, variables named after the model):
    >>> import neuro
    >>> from neuro.sim.runtime import Layout, Runtime
    >>> from neuro.sim.engine import source
    >>> net = neuro.sim.Network(dt=0.1)
    >>> pop = net.population(10, neuro.models.LIF())
    >>> _ = net.connect(pop, pop, neuro.sim.AllToAll(), weight=0.1, tau_syn=5.0)
    >>> src = source(Layout(net, Runtime(), 10, None))
    >>> "p0_v[i] = new_v" in src and "p0_syn0_ring" in src
    True
"""

from __future__ import annotations

from neuro.kernels.codegen import load
from neuro.sim.runtime import BLOCK, Layout, PopulationPart, ProjectionPart

_JIT = "numba.njit(cache=True, nogil=True, error_model='numpy')"
DRIVE_BLOCK = 2048  # neurons per pass of the Poisson drive (uniforms and counts stay in the L1 cache)


def _indent(lines: list[str], n: int) -> list[str]:
    return [" " * n + x for x in lines]


def _update_source(p: PopulationPart) -> tuple[str, list[str]]:
    """The njit update of neurons ``lo:hi`` of one population; returns (source, argument names).

    ``lo`` and ``hi`` are unsigned (the caller passes ``np.uint64``): numba then knows ``i >= 0`` and drops
    the negative-index wrap-around it otherwise adds to every ``a[i]``; with it the neuron loop does not
    vectorise (10x slower whenever ``lo`` is not a compile-time 0, as in the parallel blocks)."""
    args = ["t", "lo", "hi", "dt", *p.names]
    body = _indent(p.prologue_lines(), 4)
    if p.drive is not None:
        body += _drive_lines(p)
    body += ["    for i in range(lo, hi):", *_indent(p.neuron_lines(), 8)]
    src = f"\n\n@{_JIT}\ndef update_{p.prefix}({', '.join(args)}):\n" + "\n".join(body) + "\n"
    return src, args


def _drive_lines(p: PopulationPart) -> list[str]:
    """This step's Poisson input of neurons ``lo:hi``, in its own pass, vectorised: the counts of
    :func:`neuro.sim.random.poisson_table` (``k = min{k : u <= F(k)}``) found as ``k = #{j : u > F(j)}``
    (the same number: ``F`` is non-decreasing), one vector pass over a sub-block per table entry, up to the
    first entry no uniform of the sub-block exceeds; a scalar walk per neuron costs a mispredicted branch per
    step of the walk (about 16 ns a neuron, most of a Brunel step)."""
    P = p.prefix
    return [
        f"    ubuf = np.empty({DRIVE_BLOCK}, np.float32)",
        f"    ubase = np.uint64(t) * np.uint64({P}_n)",
        f"    for ub0 in range(lo, hi, np.uint64({DRIVE_BLOCK})):",
        f"        ub1 = min(ub0 + np.uint64({DRIVE_BLOCK}), hi)",
        "        umax = np.uint64(0)",
        "        for i in range(ub0, ub1):",
        f"            bits = _hash64({P}_drive_seed, ubase + i) >> np.uint64(40)",
        "            umax = max(umax, bits)",
        "            ubuf[i - ub0] = np.float32(bits) * _SCALE24",
        f"            {P}_drive[i] = np.float32(0.0)",
        "        utop = np.float32(umax) * _SCALE24",
        f"        for j in range({P}_drive_cdf.shape[0]):",
        f"            c = {P}_drive_cdf[j]",
        "            if c >= utop:",
        "                break",
        "            for i in range(ub0, ub1):",
        f"                {P}_drive[i] += np.float32(1.0) if ubuf[i - ub0] > c else np.float32(0.0)",
        "        for i in range(ub0, ub1):",
        f"            {P}_drive[i] *= {P}_drive_weight",
    ]


def _propagate_source(c: ProjectionPart, pre_list: str, split: bool) -> tuple[str, list[str]]:
    """The njit propagation of one step's spikes onto targets ``lo:hi`` (``split``: a thread's share of the
    targets; else the whole row)."""
    P = c.prefix
    args = ["t", "lo", "hi", pre_list, "n_spikes", *c.names, c.ring]
    lines = []
    if c.uniform_delay:  # the row this step's spikes land in, once (not a modulo per synapse)
        lines.append(f"    row = {c.ring}[(t + {c.delay}) % {c.ring}.shape[0]]")
    lines += ["    for m in range(n_spikes):", f"        i = {pre_list}[m]",
              f"        a, b = {P}_indptr[i], {P}_indptr[i + 1]"]
    if split:  # this thread's part of the row (rows are ordered by target), found by two binary searches
        lines += ["        if lo > 0:", f"            a += np.searchsorted({P}_targets[a:b], lo)",
                  f"        if hi < {c.post.n}:", f"            b = a + np.searchsorted({P}_targets[a:b], hi)"]
    lines.append("        for k in range(a, b):")
    if c.uniform_delay:
        lines.append(f"            row[{P}_targets[k]] += {c.weight}")
    else:
        lines.append("            " + c.add_line())
    src = f"\n\n@{_JIT}\ndef propagate_{P}({', '.join(dict.fromkeys(args))}):\n" + "\n".join(lines) + "\n"
    return src, list(dict.fromkeys(args))


def _share(n: int, th: str = "th") -> tuple[str, str]:
    """Bounds of thread ``th``'s share of ``n`` neurons (multiples of 64, so threads never write one cache line)."""
    return f"share({n}, {th}, nthreads)", f"share({n}, {th} + 1, nthreads)"


def _fused(layout: Layout) -> bool:
    """One parallel region a step (see :func:`source`): when anything runs in parallel and no projection is
    plastic (STDP updates weights in the serial order of the spikes)."""
    return layout.parallel and all(c.stdp is None for c in layout.projs)


def source(layout: Layout) -> str:
    """The Python source of the whole loop (readable: every variable is named after what it holds).

    Parallel networks without STDP run one parallel region a step: each thread owns a fixed share of every
    population (:func:`~neuro.sim.engine_util.share`) and first propagates the previous step's spikes onto
    its own targets, then updates its own neurons. The update of neuron ``i`` only reads cells that the
    owner of ``i`` wrote, each cell receives its additions in the serial order (projections in order, spikes
    in order), so the spikes are the serial loop's on any thread count. The last step's spikes are propagated
    before ``run`` returns, so a run always ends in the serial loop's state."""
    head = ["import numba", "import numpy as np",
            "from neuro.sim.random import poisson_table as _poisson_table",
            "from neuro.sim.random import uniform as _uniform", "from neuro.sim.random import hash64 as _hash64",
            "from neuro.sim.random import _SCALE24", "from neuro.sim.engine_util import share, spike_list"]
    fused = _fused(layout)
    helpers: list[str] = []
    values = layout.values
    args = ["t0", "nsteps", "dt", "seed", "nthreads", "ev_t", "ev_m", "ev_i", "ev_n", "ev_cap", *values]
    L: list[str] = []
    for e in layout.emitters:
        L.append(f"l_{e.prefix} = np.empty({e.fired}.shape[0], np.int32)")
        if fused:
            L.append(f"n_{e.prefix} = 0")
    for p in layout.pops:
        mod, attr = p.step_import
        head.append(f"from {mod} import {attr} as {p.step_name}")
    updates, propagations = [], []  # calls, formatted with the bounds of neurons / targets
    for p in layout.pops:
        src, uargs = _update_source(p)
        helpers.append(src)
        updates.append((p, f"update_{p.prefix}(t, np.uint64({{lo}}), np.uint64({{hi}}), dt, {', '.join(uargs[4:])})"))
    for c in layout.projs:
        if c.stdp is None:
            src, pargs = _propagate_source(c, f"l_{c.pre.prefix}", fused or c.parallel)
            helpers.append(src)
            propagations.append((c, f"propagate_{c.prefix}({{t}}, {{lo}}, {{hi}}, l_{c.pre.prefix}, "
                                    f"n_{c.pre.prefix}, {', '.join(pargs[5:])})"))

    def region(t: str, with_update: bool) -> list[str]:  # the fused step's parallel region
        body = [call.format(t=t, lo=_share(c.post.n)[0], hi=_share(c.post.n)[1]) for c, call in propagations]
        if with_update:
            body += [call.format(lo=_share(p.n)[0], hi=_share(p.n)[1]) for p, call in updates]
        return ["for th in numba.prange(nthreads):", *_indent(body, 4)] if body else []

    mon_total = " + ".join(f"{e.n}" for e in layout.emitters if layout.monitor_of(e) >= 0) or "0"
    L += ["for s in range(nsteps):", "    t = t0 + s", f"    if ev_n[0] + {mon_total} > ev_cap:"]
    L += _indent(region("t - 1", False), 8) if fused else []  # the previous step's spikes, before returning
    L.append("        return s")
    S = []  # the step body
    for q in layout.poissons:  # counter-based draws: the same spikes on any thread count or device
        S += [f"for i in range({q.n}):", "    " + q.draw_line()]
    for u in layout.timed:
        S += [f"{u.fired}[:] = 0", f"for k in range({u.prefix}_step_ptr[t], {u.prefix}_step_ptr[t + 1]):",
              f"    {u.fired}[{u.prefix}_ids[k]] = 1"]
    if fused:
        S += region("t - 1", True)
    else:
        for p, call in updates:
            if p.parallel:
                S += [f"for b in numba.prange({(p.n + BLOCK - 1) // BLOCK}):",
                      "    " + call.format(lo=f"b * {BLOCK}", hi=f"min(b * {BLOCK} + {BLOCK}, {p.n})")]
            else:
                S.append(call.format(lo="0", hi=str(p.n)))
    for sm in layout.state_mons:
        P = sm.prefix
        S += [f"if t % {P}_every == 0:", f"    for j in range({P}_ids.shape[0]):",
              f"        {sm.out}[{sm.count}[0], j] = {sm.var}[{P}_ids[j]]", f"    {sm.count}[0] += 1"]
    # one scan a step turns each spike vector into a list; monitors and propagation walk only the spikes
    for e in layout.emitters:
        S.append(f"n_{e.prefix} = spike_list({e.fired}, l_{e.prefix})")
        mon = layout.monitor_of(e)
        if mon >= 0:
            S += [f"for m in range(n_{e.prefix}):", "    ev_t[ev_n[0]] = t", f"    ev_m[ev_n[0]] = {mon}",
                  f"    ev_i[ev_n[0]] = l_{e.prefix}[m]", "    ev_n[0] += 1"]
    if not fused:
        S += _serial_propagation(layout, {c.prefix: call for c, call in propagations})
    L += _indent(S, 4)
    if fused:
        L += region("t0 + nsteps - 1", False)
    L.append("return nsteps")
    jit = f"numba.njit(cache=True, parallel={layout.parallel}, error_model='numpy')"
    return ("\n".join(head) + "\n" + "".join(helpers) + f"\n\n@{jit}\ndef run({', '.join(args)}):\n"
            + "\n".join(_indent(L, 4)) + "\n")


def _serial_propagation(layout: Layout, calls: dict) -> list[str]:
    """Propagation at the end of the step (networks with STDP or nothing parallel): projections in order,
    consecutive parallel ones in one parallel region, each thread a fixed range of targets."""
    S: list[str] = []
    group: list[str] = []

    def flush():
        if group:  # each thread a fixed range of targets: the same sums in the same order on any count
            S.extend(["for th in numba.prange(nthreads):", *_indent(group, 4)])
            group.clear()

    for c in layout.projs:
        P, pre, post = c.prefix, c.pre.prefix, c.post.prefix
        if c.stdp is not None:  # traces decay, then pre spikes depress (post trace) and post spikes potentiate
            flush()
            S += [f"for i in range({c.pre.n}):", f"    {P}_xpre[i] *= {P}_decay_plus",
                  f"for i in range({c.post.n}):", f"    {P}_xpost[i] *= {P}_decay_minus",
                  f"for m in range(n_{pre}):", f"    i = l_{pre}[m]", f"    {P}_xpre[i] += 1.0",
                  f"    for k in range({P}_indptr[i], {P}_indptr[i + 1]):", f"        tg = {P}_targets[k]",
                  *_indent(c.depress_lines(), 8), "        " + c.add_line(),
                  f"for m in range(n_{post}):", f"    i = l_{post}[m]", f"    {P}_xpost[i] += 1.0",
                  f"    for m2 in range({P}_post_ptr[i], {P}_post_ptr[i + 1]):", f"        k = {P}_by_post[m2]",
                  *_indent(c.potentiate_lines(), 8)]
        elif c.parallel:
            lo, hi = f"{c.post.n} * th // nthreads", f"{c.post.n} * (th + 1) // nthreads"
            group.append(calls[P].format(t="t", lo=lo, hi=hi))
        else:
            flush()
            S.append(calls[P].format(t="t", lo="0", hi=str(c.post.n)))
    flush()
    return S


def build(layout: Layout):
    """The loaded ``run`` function of this layout (compiled on first call; cached on disk by source)."""
    return load("sim_network", source(layout)).run
