"""Generate the compiled run loop of one network structure (one numba function per structure, cached on
disk through :mod:`neuro.kernels.codegen`). Each population calls its model's own scalar ``step``."""

from __future__ import annotations

from neuro.kernels.codegen import importable_name, load

POISSON_SEED_STRIDE = 1_000_003


def _p(lines, indent, text):
    lines.append(" " * indent + text)


def build(pops, poissons, timed, projections, parallel: bool):
    """Source and loaded module for this structure. ``pops`` etc. are lists of descriptor dicts."""
    head = ["import numba", "import numpy as np", "from neuro.sim.random import poisson as _poisson",
            "from neuro.sim.random import uniform as _uniform"]
    args = ["t0", "nsteps", "dt", "seed", "ev_t", "ev_m", "ev_i", "ev_n", "ev_cap"]
    body: list[str] = []
    for k, p in enumerate(pops):
        mod, attr = importable_name(p["dyn"].step)
        head.append(f"from {mod} import {attr} as _step{k}")
        args += [f"st{k}", f"par{k}", f"opt{k}", f"isyn{k}", f"sdec{k}", f"kco{k}", f"buf{k}", f"iext{k}",
                 f"fired{k}", f"smi{k}", f"smo{k}", f"smn{k}", f"drv{k}", f"iser{k}", f"isrm{k}", f"erev{k}", f"vix{k}"]
    args += [f"prob{q}" for q in range(len(poissons))] + [f"fq{q}" for q in range(len(poissons))]
    for u in range(len(timed)):
        args += [f"sptr{u}", f"sids{u}", f"fu{u}"]
    for j, pr in enumerate(projections):
        args += [f"ptr{j}", f"tgt{j}", f"w{j}", f"d{j}"]
        if pr["stdp"]:
            args += [f"xpre{j}", f"xpost{j}", f"bypost{j}", f"postptr{j}", f"preof{j}", f"sp{j}"]
    mon_total = " + ".join([f"fired{k}.shape[0]" for k, p in enumerate(pops) if p["mon"] >= 0]
                           + [f"fq{q}.shape[0]" for q, s in enumerate(poissons) if s["mon"] >= 0]
                           + [f"fu{u}.shape[0]" for u, s in enumerate(timed) if s["mon"] >= 0]) or "0"
    prange = "numba.prange" if parallel else "range"
    L = body
    _p(L, 4, "for s in range(nsteps):")
    _p(L, 8, "t = t0 + s")
    _p(L, 8, f"if ev_n[0] + {mon_total} > ev_cap:")
    _p(L, 12, "return s")
    for q in range(len(poissons)):  # counter-based draws: the same spikes on any thread count or device
        _p(L, 8, f"for i in range(fq{q}.shape[0]):")
        _p(L, 12, f"fq{q}[i] = 1 if _uniform(seed + {POISSON_SEED_STRIDE * (q + 1)}, t * fq{q}.shape[0] + i) "
                  f"< prob{q}[i] else 0")
    for u in range(len(timed)):
        _p(L, 8, f"fu{u}[:] = 0")
        _p(L, 8, f"for k in range(sptr{u}[t], sptr{u}[t + 1]):")
        _p(L, 12, f"fu{u}[sids{u}[k]] = 1")
    for k, p in enumerate(pops):
        S, P = len(p["dyn"].state), len(p["dyn"].params)
        st = [f"st{k}[{a}, i]" for a in range(S)]
        call = ", ".join(st + ["x"] + [f"par{k}[{a}, i]" for a in range(P)]
                         + [f"opt{k}[{a}]" for a in range(len(p["dyn"].options))] + ["np.float32(dt)"])
        _p(L, 8, f"slot{k} = t % buf{k}.shape[0]")
        _p(L, 8, f"for i in {prange}(fired{k}.shape[0]):")
        _p(L, 12, f"x = iext{k}[i]")
        _p(L, 12, f"if isrm{k}[1] > 0 and t >= isrm{k}[0] and t - isrm{k}[0] < isrm{k}[1]:")
        _p(L, 16, f"x += iser{k}[t - isrm{k}[0], i]")
        _p(L, 12, f"for r in range(isyn{k}.shape[0]):")
        _p(L, 16, f"cur = isyn{k}[r, i] + buf{k}[slot{k}, r, i]")
        _p(L, 16, f"if r == drv{k}[2]:")
        _p(L, 20, f"cur += np.float32(drv{k}[1] * _poisson(np.int64(drv{k}[3]), t * fired{k}.shape[0] + i, drv{k}[0]))")
        _p(L, 16, f"buf{k}[slot{k}, r, i] = 0.0")
        _p(L, 16, f"if erev{k}[r] == erev{k}[r]:  # conductance receptor (NaN marks current receptors)")
        _p(L, 20, f"x += kco{k}[r, i] * cur * (erev{k}[r] - st{k}[vix{k}[0], i])")
        _p(L, 16, "else:")
        _p(L, 20, f"x += kco{k}[r, i] * cur")
        _p(L, 16, f"isyn{k}[r, i] = cur * sdec{k}[r]")
        _p(L, 12, f"{', '.join(f'n{a}' for a in range(S))}, spk = _step{k}({call})")
        for a in range(S):
            _p(L, 12, f"st{k}[{a}, i] = n{a}")
        _p(L, 12, f"fired{k}[i] = 1 if spk > 0 else 0")
        _p(L, 8, f"if smi{k}.shape[0] > 0 and t % smn{k}[1] == 0:")
        _p(L, 12, f"for j in range(smi{k}.shape[0]):")
        _p(L, 16, f"smo{k}[smn{k}[0], j] = st{k}[smn{k}[2], smi{k}[j]]")
        _p(L, 12, f"smn{k}[0] += 1")
    emitters = ([(f"fired{k}", p["mon"]) for k, p in enumerate(pops)] + [(f"fq{q}", s["mon"]) for q, s in
                enumerate(poissons)] + [(f"fu{u}", s["mon"]) for u, s in enumerate(timed)])
    # one scan a step turns each spike vector into a list; monitors and propagation walk only the spikes
    for name, mon in emitters:
        _p(L, 8, f"c_{name} = 0")
        _p(L, 8, f"for i in range({name}.shape[0]):")
        _p(L, 12, f"if {name}[i]:")
        _p(L, 16, f"l_{name}[c_{name}] = i")
        _p(L, 16, f"c_{name} += 1")
        if mon >= 0:
            _p(L, 8, f"for m in range(c_{name}):")
            _p(L, 12, "ev_t[ev_n[0]] = t")
            _p(L, 12, f"ev_m[ev_n[0]] = {mon}")
            _p(L, 12, f"ev_i[ev_n[0]] = l_{name}[m]")
            _p(L, 12, "ev_n[0] += 1")
    for name, _ in emitters:
        body.insert(0, f"    l_{name} = np.empty({name}.shape[0], np.int32)")
    for j, pr in enumerate(projections):
        pre, post, r = pr["pre_fired"], pr["post"], pr["receptor"]
        if pr["stdp"]:
            # traces decay, then pre spikes depress (using the post trace) and post spikes potentiate
            _p(L, 8, f"for i in range({pre}.shape[0]):")
            _p(L, 12, f"xpre{j}[i] *= sp{j}[6]")
            _p(L, 8, f"for i in range(fired{post}.shape[0]):")
            _p(L, 12, f"xpost{j}[i] *= sp{j}[7]")
        _p(L, 8, f"for m in range(c_{pre}):")
        _p(L, 12, f"i = l_{pre}[m]")
        _p(L, 12, "if True:")
        if pr["stdp"]:
            _p(L, 16, f"xpre{j}[i] += 1.0")
        _p(L, 16, f"for k in range(ptr{j}[i], ptr{j}[i + 1]):")
        _p(L, 20, f"tg = tgt{j}[k]")
        if pr["stdp"]:
            _p(L, 20, f"dep = sp{j}[1] * xpost{j}[tg]")
            _p(L, 20, f"if sp{j}[5] > 0:")
            _p(L, 24, f"dep *= w{j}[k] - sp{j}[3]")
            _p(L, 20, f"w{j}[k] = max(sp{j}[3], w{j}[k] - dep)")
        wk = f"w{j}[0]" if pr.get("uniform_w") else f"w{j}[k]"
        dk = f"d{j}[0]" if pr.get("uniform_d") else f"d{j}[k]"
        _p(L, 20, f"buf{post}[(t + {dk}) % buf{post}.shape[0], {r}, tg] += {wk}")
        if pr["stdp"]:
            _p(L, 8, f"for i in range(fired{post}.shape[0]):")
            _p(L, 12, f"if fired{post}[i]:")
            _p(L, 16, f"xpost{j}[i] += 1.0")
            _p(L, 16, f"for m in range(postptr{j}[i], postptr{j}[i + 1]):")
            _p(L, 20, f"k = bypost{j}[m]")
            _p(L, 20, f"pot = sp{j}[0] * xpre{j}[preof{j}[k]]")
            _p(L, 20, f"if sp{j}[5] > 0:")
            _p(L, 24, f"pot *= sp{j}[4] - w{j}[k]")
            _p(L, 20, f"w{j}[k] = min(sp{j}[4], w{j}[k] + pot)")
    _p(L, 4, "return nsteps")
    jit = f"numba.njit(cache=True, parallel={parallel}, error_model='numpy')"
    src = "\n".join(head) + f"\n\n\n@{jit}\ndef run({', '.join(args)}):\n" + "\n".join(body) + "\n"
    return load("sim_network", src).run
