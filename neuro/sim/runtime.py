"""The run-time side of a network: every simulation object becomes a *part* that owns its named arrays and
contributes its code fragments to the generated loop (as Brian2's code objects do).

- :class:`PopulationPart` -- the neuron state (one array per state variable, named after the model's
  state: ``p0_v``), the parameters (named after the model's parameters: ``p0_decay``; a scalar when
  every neuron shares the value), and one set of arrays per receptor (``p0_syn1_isyn``, ``p0_syn1_ring``,
  ``p0_syn1_coupling``, ...); current and conductance receptors are told apart at generation time;
- :class:`PoissonPart`, :class:`SpikeTimePart` -- sources;
- :class:`ProjectionPart` -- CSR synapses (``c0_indptr``, ``c0_targets``, ...) and STDP traces;
- :class:`StateMonitorPart` -- sampled state.

Buffers that persist between runs (synaptic currents, ring buffers, STDP traces) live in one
:class:`Runtime` object owned by the network, keyed by the part's names, never on user objects.
The CPU loop (:mod:`neuro.sim.engine`) and the CUDA kernels (:mod:`neuro.sim.cuda_engine`) are generated
from the same parts; the per-neuron update is written once (:meth:`PopulationPart.neuron_lines`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neuro.kernels.codegen import importable_name
from neuro.models import coefficients
from neuro.sim.monitors import SpikeMonitor, StateMonitor
from neuro.sim.populations import PoissonSource, Population, SpikeTimeSource
from neuro.sim.random import poisson_cdf

POISSON_SEED_STRIDE = 1_000_003
BLOCK = 8192  # neurons per parallel block of a population update (fixed, so blocks never depend on threads)


def _pad8(n: int) -> int:
    return (n + 7) // 8 * 8  # spike vectors are scanned eight bytes at a time


def _uniform(a) -> bool:
    a = np.asarray(a).reshape(-1)
    return a.size == 1 or bool(np.all(a == a[0]))


class Runtime:
    """Buffers that survive between runs, by name (``p0_syn0_isyn``, ``c2_xpre``, ...)."""

    def __init__(self):
        self.buffers: dict[str, np.ndarray] = {}

    def buffer(self, name: str, shape: tuple, dtype) -> np.ndarray:
        """The persistent zero-initialised buffer ``name`` (re-made when its shape or dtype changed)."""
        buf = self.buffers.get(name)
        if buf is None or buf.shape != tuple(shape) or buf.dtype != np.dtype(dtype):
            buf = self.buffers[name] = np.zeros(shape, dtype)
        return buf

    def clear(self) -> None:
        for buf in self.buffers.values():
            buf[...] = 0


@dataclass
class Part:
    """One simulation object's share of the generated code: its named arrays and scalars."""

    prefix: str
    values: dict = field(default_factory=dict)  # name -> array or scalar, passed to the loop by name

    @property
    def names(self) -> list[str]:
        return list(self.values)

    def add(self, suffix: str, value) -> str:
        name = f"{self.prefix}_{suffix}"
        self.values[name] = value
        return name


class PopulationPart(Part):
    def __init__(self, k: int, pop: Population, net, rt: Runtime, depth: int, parallel: bool):
        super().__init__(f"p{k}")
        self.pop, self.n, self.parallel = pop, pop.n, parallel
        dyn = self.dyn = pop.model.dynamics
        self.step_import = importable_name(dyn.step)
        if self.step_import is None:
            raise TypeError(f"{type(pop.model).__name__}'s step function cannot be imported by name")
        self.add("n", np.int64(pop.n))
        for s in dyn.state:  # the population's own state arrays, updated in place
            arr = pop.state[s]
            if not (isinstance(arr, np.ndarray) and arr.dtype == np.float32 and arr.flags.c_contiguous
                    and arr.flags.writeable and arr.shape == (pop.n,)):
                arr = pop.state[s] = np.ascontiguousarray(np.broadcast_to(np.asarray(arr, np.float32), (pop.n,)))
            self.add(s, arr)
        params = pop.model.kernel_params(net.dt)
        self.param_expr = {}
        for p in dyn.params:
            v = np.asarray(params[p], np.float32).reshape(-1)
            if _uniform(v):
                self.param_expr[p] = self.add(p, np.float32(v[0]))
            else:
                self.param_expr[p] = self.add(p, np.ascontiguousarray(np.broadcast_to(v, (pop.n,)))) + "[i]"
        self.options = {k: int(v) for k, v in zip(dyn.options, _option_codes(pop), strict=True)}
        # receptors, in the population's order (the order the input is summed in)
        coupling = net._coupling(pop, params)
        self.receptors = []
        for r, (tau, e_rev) in enumerate(pop.receptor_keys):
            isyn = self.add(f"syn{r}_isyn", rt.buffer(f"{self.prefix}_syn{r}_isyn", (pop.n,), np.float32))
            ring = self.add(f"syn{r}_ring", rt.buffer(f"{self.prefix}_syn{r}_ring", (depth, pop.n), np.float32))
            decay = self.add(f"syn{r}_decay", np.float32(coefficients.decay(tau, net.dt) if tau > 0 else 0.0))
            k = coupling[r]
            kexpr = self.add(f"syn{r}_coupling", np.float32(k[0])) if _uniform(k) else (
                self.add(f"syn{r}_coupling", np.ascontiguousarray(k, np.float32)) + "[i]")
            erev = None if e_rev is None else self.add(f"syn{r}_erev", np.float32(e_rev))
            self.receptors.append({"isyn": isyn, "ring": ring, "decay": decay, "coupling": kexpr, "erev": erev})
        self.iext = None if not pop.i_ext.any() else self.add("iext", pop.i_ext)
        self.series = bool(pop.i_series.any())
        if self.series:
            self.add("series", pop.i_series)
            self.add("series_start", np.int64(pop.i_series_start))
        self.drive = pop.drive
        if self.drive is not None:
            self.add("drive", np.zeros(pop.n, np.float32))  # this step's Poisson input, drawn in its own pass
            # float32 inversion table of the per-step count (made once per run; the kernels only read it)
            self.add("drive_cdf", poisson_cdf(self.drive.rate_hz * net.dt / 1000.0))
            self.add("drive_weight", np.float32(self.drive.weight))
            self.add("drive_seed", np.int64(self.drive.seed))
        self.fired = self.add("fired", np.zeros(_pad8(pop.n), np.uint8))

    # -- code fragments -----------------------------------------------------------------------------
    @property
    def step_name(self) -> str:
        return f"_step_{self.prefix}"

    def prologue_lines(self) -> list[str]:
        """Per-step values every neuron shares (``t`` and ``dt`` known): ring slot and current series row."""
        P = self.prefix
        lines = []
        if self.receptors:
            lines.append(f"slot = t % {P}_syn0_ring.shape[0]")
        if self.series:
            lines.append(f"srow = t - {P}_series_start")
            lines.append(f"son = srow >= 0 and srow < {P}_series.shape[0]")
        return lines

    def drive_line(self) -> str:
        """This step's Poisson input of neuron ``i`` (counter-based, float32: the same on any thread count or
        device; the loop imports :func:`neuro.sim.random.poisson_table` as ``_poisson_table``)."""
        P = self.prefix
        return (f"{P}_drive[i] = {P}_drive_weight * np.float32(_poisson_table({P}_drive_seed, t * {P}_n + i, "
                f"{P}_drive_cdf))")

    def neuron_lines(self) -> list[str]:
        """The update of neuron ``i`` (shared by the CPU loop and the CUDA kernel): synaptic input in the
        population's receptor order, then the model's own scalar step."""
        P = self.prefix
        lines = [f"x = {self.iext}[i]" if self.iext else "x = np.float32(0.0)"]
        if self.series:
            lines += ["if son:", f"    x += {P}_series[srow, i]"]
        v = f"{P}_v[i]" if "v" in self.dyn.state else None
        for r, rc in enumerate(self.receptors):
            drive = f" + {P}_drive[i]" if self.drive is not None and self.drive.receptor == r else ""
            lines.append(f"c{r} = {rc['isyn']}[i] + {rc['ring']}[slot, i]{drive}")
            lines.append(f"{rc['ring']}[slot, i] = 0.0")
            if rc["erev"] is None:  # current receptor
                lines.append(f"x += {rc['coupling']} * c{r}")
            else:  # conductance receptor: g (E - v), held over the step
                lines.append(f"x += {rc['coupling']} * c{r} * ({rc['erev']} - {v})")
            lines.append(f"{rc['isyn']}[i] = c{r} * {rc['decay']}")
        state = [f"{P}_{s}[i]" for s in self.dyn.state]
        args = state + ["x"] + [self.param_expr[p] for p in self.dyn.params] + [
            str(self.options[o]) for o in self.dyn.options] + ["np.float32(dt)"]
        new = [f"new_{s}" for s in self.dyn.state]
        lines.append(f"{', '.join(new)}, spk = {self.step_name}({', '.join(args)})")
        lines += [f"{a} = {b}" for a, b in zip(state, new, strict=True)]
        lines.append(f"{self.fired}[i] = 1 if spk > 0 else 0")
        return lines



def _option_codes(pop: Population) -> list[int]:
    from neuro.kernels import pack_options

    dyn = pop.model.dynamics
    codes = pack_options(dyn, pop.model.kernel_options())
    return [int(c) for c in codes[:len(dyn.options)]]


class PoissonPart(Part):
    def __init__(self, q: int, src: PoissonSource, dt: float):
        super().__init__(f"q{q}")
        self.src, self.n, self.index = src, src.n, q
        self.add("prob", (1.0 - np.exp(-src.rate_hz * dt / 1000.0)).astype(np.float32))  # against a float32 uniform
        self.fired = self.add("fired", np.zeros(_pad8(src.n), np.uint8))

    def draw_line(self) -> str:
        """Source ``i`` fires at step ``t`` (counter-based uniform; ``seed`` is the network's spike seed)."""
        return (f"{self.fired}[i] = 1 if _uniform(seed + {POISSON_SEED_STRIDE * (self.index + 1)}, "
                f"t * {self.n} + i) < {self.prefix}_prob[i] else 0")


class SpikeTimePart(Part):
    def __init__(self, u: int, src: SpikeTimeSource, dt: float, horizon: int):
        super().__init__(f"u{u}")
        self.src, self.n = src, src.n
        steps = [np.round(t / dt).astype(np.int64) for t in src.times]
        ids = np.concatenate([np.full(len(s), i, np.int32) for i, s in enumerate(steps)] or [np.zeros(0, np.int32)])
        allsteps = np.concatenate(steps) if steps else np.zeros(0, np.int64)
        order = np.argsort(allsteps, kind="stable")
        counts = np.bincount(allsteps[allsteps < horizon], minlength=horizon)
        ptr = np.zeros(horizon + 1, np.int64)
        np.cumsum(counts, out=ptr[1:])
        keep = allsteps[order] < horizon
        self.add("step_ptr", ptr)  # spikes of step t: ids[step_ptr[t]:step_ptr[t + 1]]
        self.add("ids", ids[order][keep].astype(np.int32))
        self.fired = self.add("fired", np.zeros(_pad8(src.n), np.uint8))


class ProjectionPart(Part):
    def __init__(self, j: int, proj, pre_part: Part, post_part: PopulationPart, rt: Runtime, dt: float,
                 parallel: bool):
        super().__init__(f"c{j}")
        self.proj, self.pre, self.post = proj, pre_part, post_part
        self.stdp = proj.stdp
        self.ring = post_part.receptors[proj.receptor]["ring"]
        self.add("indptr", proj.indptr)
        self.add("targets", proj.targets)
        uniform_w = proj.weights.size == 1 and self.stdp is None
        self.weight = self.add("weight", np.float32(proj.weights[0])) if uniform_w else \
            self.add("weights", proj.weights) + "[k]"
        self.delay = self.add("delay", np.int64(proj.delays[0])) if proj.delays.size == 1 else \
            self.add("delays", proj.delays) + "[k]"
        self.uniform_delay = proj.delays.size == 1
        # one thread per fixed range of targets; rows are ordered by target (neuro.sim.projections)
        self.parallel = parallel and self.stdp is None
        if self.stdp is not None:
            s = self.stdp
            self.add("xpre", rt.buffer(f"{self.prefix}_xpre", (pre_part.n,), np.float64))
            self.add("xpost", rt.buffer(f"{self.prefix}_xpost", (post_part.n,), np.float64))
            self.add("by_post", proj.by_post)
            self.add("post_ptr", proj.post_ptr)
            self.add("pre_of", proj.pre_of)
            for name in ("a_plus", "a_minus", "w_min", "w_max"):
                self.add(name, np.float64(getattr(s, name)))
            self.add("decay_plus", np.float64(coefficients.decay(s.tau_plus, dt)))
            self.add("decay_minus", np.float64(coefficients.decay(s.tau_minus, dt)))
        self.multiplicative = self.stdp is not None and self.stdp.multiplicative

    def depress_lines(self) -> list[str]:
        """A pre spike on synapse ``k`` (target ``tg``) depresses by the post trace (before it transmits)."""
        P = self.prefix
        lines = [f"dep = {P}_a_minus * {P}_xpost[tg]"]
        if self.multiplicative:
            lines.append(f"dep *= {P}_weights[k] - {P}_w_min")
        return lines + [f"{P}_weights[k] = max({P}_w_min, {P}_weights[k] - dep)"]

    def potentiate_lines(self) -> list[str]:
        """A post spike potentiates synapse ``k`` by the pre trace."""
        P = self.prefix
        lines = [f"pot = {P}_a_plus * {P}_xpre[{P}_pre_of[k]]"]
        if self.multiplicative:
            lines.append(f"pot *= {P}_w_max - {P}_weights[k]")
        return lines + [f"{P}_weights[k] = min({P}_w_max, {P}_weights[k] + pot)"]

    def add_line(self) -> str:
        """Synapse ``k`` delivers its weight into the target's ring buffer ``delay`` steps ahead."""
        return f"{self.ring}[(t + {self.delay}) % {self.ring}.shape[0], {self.prefix}_targets[k]] += {self.weight}"


class StateMonitorPart(Part):
    def __init__(self, m: int, mon: StateMonitor, pop_part: PopulationPart, steps: int):
        super().__init__(f"s{m}")
        self.mon, self.pop = mon, pop_part
        self.add("ids", mon.ids.astype(np.int64))
        self.add("every", np.int64(mon.every))
        self.out = self.add("samples", np.zeros((steps // mon.every + 2, len(mon.ids)), np.float32))
        self.count = self.add("count", np.zeros(1, np.int64))
        self.var = f"{pop_part.prefix}_{mon.var}"


class Layout:
    """Every part of a network for one run, and the arguments of the generated loop by name."""

    def __init__(self, net, rt: Runtime, steps: int, parallel: bool | None):
        self.dt = net.dt
        self.spike_mons: dict[int, int] = {}  # id(target) -> recording index, shared by its monitors
        for i, m in enumerate(net.monitors):
            if isinstance(m, SpikeMonitor):
                self.spike_mons.setdefault(id(m.target), i)
        auto = parallel is None
        self.pops = []
        for k, pop in enumerate(net.populations):
            depth = 1 + max([int(p.delays.max()) for p in net.projections if p.post is pop and p.delays.size] or [1])
            big = pop.n >= 20_000 if auto else parallel
            self.pops.append(PopulationPart(k, pop, net, rt, depth, bool(big)))
        self.poissons = [PoissonPart(q, s, net.dt) for q, s in
                         enumerate(s for s in net.sources if isinstance(s, PoissonSource))]
        horizon = net.t_steps + steps + 1
        self.timed = [SpikeTimePart(u, s, net.dt, horizon) for u, s in
                      enumerate(s for s in net.sources if isinstance(s, SpikeTimeSource))]
        by_obj = {id(p.pop): p for p in self.pops}
        by_obj.update({id(p.src): p for p in self.poissons + self.timed})
        self.projs = []
        for j, proj in enumerate(net.projections):
            big = proj.n_synapses >= 1_000_000 if auto else parallel
            self.projs.append(ProjectionPart(j, proj, by_obj[id(proj.pre)], by_obj[id(proj.post)], rt, net.dt,
                                             bool(big)))
        self.state_mons = [StateMonitorPart(m, mon, by_obj[id(mon.pop)], steps)
                           for m, mon in enumerate(x for x in net.monitors if isinstance(x, StateMonitor))]
        self.emitters = self.pops + self.poissons + self.timed  # everything with a spike vector

    def monitor_of(self, part) -> int:
        obj = part.pop if isinstance(part, PopulationPart) else part.src
        return self.spike_mons.get(id(obj), -1)

    @property
    def parts(self) -> list[Part]:
        return [*self.pops, *self.poissons, *self.timed, *self.projs, *self.state_mons]

    @property
    def values(self) -> dict:
        out = {}
        for p in self.parts:
            out.update(p.values)
        return out

    @property
    def parallel(self) -> bool:
        return any(p.parallel for p in self.pops + self.projs)
