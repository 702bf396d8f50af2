"""Generate the compiled CPU loop of one network from its :class:`~neuro.sim.runtime.Layout` (one numba
module per structure, cached on disk through :mod:`neuro.kernels.codegen`).

Each step, in this order: sources fire; each population runs its update (a pass that draws the Poisson
drive, then the neuron loop: synaptic input receptor by receptor, then the model's scalar ``step``);
state monitors sample; each spike vector becomes a list (scanned eight neurons at a time); spike
monitors record; projections propagate the spikes (STDP: traces decay, pre spikes depress and
transmit, post spikes potentiate).

The neuron loop vectorises: parameters every neuron shares are scalars, options are constants, each
receptor has its own arrays (current and conductance receptors are different code, not a run-time test),
and the drive is drawn in its own loop. Large populations run in fixed blocks of
:data:`~neuro.sim.runtime.BLOCK` neurons over threads; large projections give each thread a fixed range
of postsynaptic neurons (rows are ordered by target, so a thread binary-searches its part of each row).
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


def _indent(lines: list[str], n: int) -> list[str]:
    return [" " * n + x for x in lines]


def _update_source(p: PopulationPart) -> tuple[str, list[str]]:
    """The njit update of neurons ``lo:hi`` of one population; returns (source, argument names)."""
    args = ["t", "lo", "hi", "dt", *p.names]
    body = _indent(p.prologue_lines(), 4)
    if p.drive is not None:  # its own pass: the draw loop does not vectorise, the neuron loop then does
        body += ["    for i in range(lo, hi):", "        " + p.drive_line()]
    body += ["    for i in range(lo, hi):", *_indent(p.neuron_lines(), 8)]
    src = f"\n\n@{_JIT}\ndef update_{p.prefix}({', '.join(args)}):\n" + "\n".join(body) + "\n"
    return src, args


def _propagate_source(c: ProjectionPart, pre_list: str) -> tuple[str, list[str]]:
    """The njit propagation of this step's spikes onto targets ``lo:hi`` (a whole row when not parallel)."""
    P = c.prefix
    args = ["t", "lo", "hi", pre_list, "n_spikes", *c.names, c.ring]
    lines = []
    if c.uniform_delay:  # the row this step's spikes land in, once (not a modulo per synapse)
        lines.append(f"    row = {c.ring}[(t + {c.delay}) % {c.ring}.shape[0]]")
    lines += ["    for m in range(n_spikes):", f"        i = {pre_list}[m]",
              f"        a, b = {P}_indptr[i], {P}_indptr[i + 1]"]
    if c.parallel:  # this thread's part of the row: rows are ordered by target
        lines += ["        if lo > 0:", f"            a += np.searchsorted({P}_targets[a:b], lo)"]
    lines.append("        for k in range(a, b):")
    if c.parallel:
        lines += [f"            if {P}_targets[k] >= hi:", "                break"]
    if c.uniform_delay:
        lines.append(f"            row[{P}_targets[k]] += {c.weight}")
    else:
        lines.append("            " + c.add_line())
    src = f"\n\n@{_JIT}\ndef propagate_{P}({', '.join(dict.fromkeys(args))}):\n" + "\n".join(lines) + "\n"
    return src, list(dict.fromkeys(args))


def source(layout: Layout) -> str:
    """The Python source of the whole loop (readable: every variable is named after what it holds)."""
    head = ["import numba", "import numpy as np",
            "from neuro.sim.random import poisson_table as _poisson_table",
            "from neuro.sim.random import uniform as _uniform", "from neuro.sim.engine_util import spike_list"]
    helpers: list[str] = []
    values = layout.values
    args = ["t0", "nsteps", "dt", "seed", "nthreads", "ev_t", "ev_m", "ev_i", "ev_n", "ev_cap", *values]
    L: list[str] = []
    for e in layout.emitters:
        L.append(f"l_{e.prefix} = np.empty({e.fired}.shape[0], np.int32)")
    for p in layout.pops:
        mod, attr = p.step_import
        head.append(f"from {mod} import {attr} as {p.step_name}")
    mon_total = " + ".join(f"{e.n}" for e in layout.emitters if layout.monitor_of(e) >= 0) or "0"
    L += ["for s in range(nsteps):", "    t = t0 + s", f"    if ev_n[0] + {mon_total} > ev_cap:", "        return s"]
    S = []  # the step body
    for q in layout.poissons:  # counter-based draws: the same spikes on any thread count or device
        S += [f"for i in range({q.n}):", "    " + q.draw_line()]
    for u in layout.timed:
        S += [f"{u.fired}[:] = 0", f"for k in range({u.prefix}_step_ptr[t], {u.prefix}_step_ptr[t + 1]):",
              f"    {u.fired}[{u.prefix}_ids[k]] = 1"]
    for p in layout.pops:
        src, uargs = _update_source(p)
        helpers.append(src)
        call = f"update_{p.prefix}(t, {{lo}}, {{hi}}, dt, {', '.join(uargs[4:])})"
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
    group: list[str] = []  # consecutive parallel projections share one parallel region

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
            continue
        src, pargs = _propagate_source(c, f"l_{pre}")
        helpers.append(src)
        rest = ", ".join(pargs[5:])
        if c.parallel:
            lo, hi = f"{c.post.n} * th // nthreads", f"{c.post.n} * (th + 1) // nthreads"
            group.append(f"propagate_{P}(t, {lo}, {hi}, l_{pre}, n_{pre}, {rest})")
        else:
            flush()
            S.append(f"propagate_{P}(t, 0, {c.post.n}, l_{pre}, n_{pre}, {rest})")
    flush()
    L += _indent(S, 4) + ["return nsteps"]
    jit = f"numba.njit(cache=True, parallel={layout.parallel}, error_model='numpy')"
    return ("\n".join(head) + "\n" + "".join(helpers) + f"\n\n@{jit}\ndef run({', '.join(args)}):\n"
            + "\n".join(_indent(L, 4)) + "\n")


def build(layout: Layout):
    """The loaded ``run`` function of this layout (compiled on first call; cached on disk by source)."""
    return load("sim_network", source(layout)).run
