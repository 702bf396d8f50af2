"""A clock-driven network simulator whose whole loop runs in compiled code.

Units as PyNN: ms, mV, nA, nF, uS. Synapses are current-based exponential (each receptor a current that
jumps by the weight, in nA, when a spike arrives and decays with its ``tau_syn``), with integer-step
delays through a ring buffer; propagation is event-driven (work grows with spikes x fan-out). Neurons use
their model's own scalar ``step`` (:mod:`neuro.models`); for LIF populations the synaptic currents enter
through the exact propagator (the same as Brian2/NEST for this linear system)::

    v[t+1] = v_rest + e^{-dt/tau_m} (v[t] - v_rest)
             + sum_r R tau_r/(tau_r - tau_m) (e^{-dt/tau_r} - e^{-dt/tau_m}) I_r[t]

Example:
    >>> import neuro
    >>> net = neuro.sim.Network(dt=0.1, seed=1)
    >>> src = net.poisson(100, rate_hz=50.0)
    >>> pop = net.population(10, neuro.models.LIF(tau_m=20.0, cm=1.0, v_thresh=-50.0, v_reset=-65.0))
    >>> proj = net.connect(src, pop, neuro.sim.AllToAll(), weight=0.3, delay=1.0, tau_syn=5.0)
    >>> spikes = net.spike_monitor(pop)
    >>> net.run(200.0)
    >>> bool(spikes.count() > 0)
    True
"""

from __future__ import annotations

import numba
import numpy as np

from neuro import _checks
from neuro.models import NeuronModel
from neuro.sim.connectors import Connector
from neuro.sim.engine import build
from neuro.sim.monitors import RateMonitor, SpikeMonitor, StateMonitor
from neuro.sim.populations import _MAX_N, PoissonSource, Population, SpikeTimeSource
from neuro.sim.projections import STDP, Projection
from neuro.sim.runtime import Layout, Runtime

__all__ = ["Network", "Population", "PoissonSource", "SpikeTimeSource", "Projection", "STDP", "SpikeMonitor",
           "RateMonitor", "StateMonitor"]

_MAX_DELAY_STEPS = 1 << 20  # delay ring buffers hold max_delay + 1 slots per receptor and neuron
_MAX_STEPS = 1 << 62
_MAX_BYTES = 1 << 34  # 16 GiB: larger run-time buffers are refused before allocation


class Network:
    """Populations, sources, projections and monitors, run by one compiled loop.

    Args:
        dt: time step [ms], > 0.
        seed: seed of the network's ``numpy.random.Generator`` (connectivity and Poisson spikes).
        parallel: update neurons and propagate spikes on all numba threads (spikes are the same on any
            thread count); ``None`` (default) decides by size (populations of 20k neurons, projections of 1 M
            synapses): the per-step cost of a parallel region only pays off for large ones.
        device: ``"cpu"`` (one compiled loop) or ``"cuda"`` (numba.cuda kernels per step, generated from the
            same parts as the CPU loop).
    """

    def __init__(self, dt: float = 0.1, seed: int = 0, parallel: bool | None = None, device: str = "cpu"):
        dt = _checks.check_dt(dt)
        seed = _checks.check_seed("seed", seed, allow_none=False)
        if parallel is not None:
            parallel = _checks.check_bool("parallel", parallel)
        _checks.check_choice("device", device, ("cpu", "cuda"))
        self.dt, self.seed, self.parallel, self.device = float(dt), seed, parallel, device
        self.rng = np.random.default_rng(seed)
        self._spike_seed = int(np.random.default_rng([seed, 1]).integers(1 << 40))
        self.populations: list[Population] = []
        self.sources: list = []
        self.projections: list[Projection] = []
        self.monitors: list = []
        self.t_steps = 0
        self._runtime = Runtime()  # run-time buffers (synaptic currents, ring buffers, traces), by name

    # -- building -----------------------------------------------------------------------------------
    def population(self, n: int, model: NeuronModel, initial: dict | None = None, name: str | None = None
                   ) -> Population:
        _checks.check_int("n", n, minimum=1, maximum=_MAX_N)
        pop = Population(self, n, model, name or f"pop{len(self.populations)}", initial)
        self.populations.append(pop)
        return pop

    def poisson(self, n: int, rate_hz, name: str | None = None) -> PoissonSource:
        src = PoissonSource(n, rate_hz, name or f"poisson{len(self.sources)}")
        self.sources.append(src)
        return src

    def spike_source(self, times_ms, name: str | None = None) -> SpikeTimeSource:
        src = SpikeTimeSource(times_ms, name or f"times{len(self.sources)}")
        self.sources.append(src)
        return src

    def connect(self, pre, post: Population, connector: Connector, weight=0.1, delay: float | None = None,
                tau_syn: float = 5.0, stdp: STDP | None = None, name: str | None = None,
                e_rev: float | None = None) -> Projection:
        """Connect ``pre`` (population or source) to ``post`` with current synapses of ``weight`` nA (negative:
        inhibitory), ``delay`` ms (a multiple of dt, default one step) and time constant ``tau_syn`` ms."""
        self._own("pre", pre, (Population, PoissonSource, SpikeTimeSource))
        self._own("post", post, (Population,))
        if not isinstance(connector, Connector):
            raise TypeError(f"connector must be a neuro.sim connector, got {connector!r}")
        scalar = np.size(weight) == 1 and (delay is None or np.size(delay) == 1) and stdp is None
        csr = connector.csr(len(pre), len(post), self.rng) if scalar and hasattr(connector, "csr") else None
        pairs = None if csr is not None else connector.connect(len(pre), len(post), self.rng)
        n_syn = len(csr[1]) if csr is not None else len(pairs[0])
        if weight is None:  # the connector carries per-synapse weights (Convolution)
            if not hasattr(connector, "weights"):
                raise ValueError(f"weight is required for {type(connector).__name__}")
            weight = connector.weights
        w = np.asarray(weight)
        if w.dtype.kind == "f" and np.isnan(w).any():
            raise ValueError("weight contains NaN values")
        w = _checks.check_float_array("weight", w)
        if w.size not in (1, n_syn):
            raise ValueError(f"weight has {w.size} values for {n_syn} synapses (give 1 or {n_syn})")
        d = _checks.check_float_array("delay", self.dt if delay is None else delay)
        if d.size not in (1, n_syn):
            raise ValueError(f"delay has {d.size} values for {n_syn} synapses")
        if d.size and np.any(d < self.dt - 1e-9):
            raise ValueError(f"delays must be >= dt = {self.dt} ms, got min {float(np.min(d))}")
        steps = np.round(d / self.dt)
        if steps.size and steps.max() > _MAX_DELAY_STEPS:
            raise ValueError(f"delay of {float(np.max(d)):g} ms is {steps.max():.0f} steps of dt = {self.dt} ms; "
                             f"at most {_MAX_DELAY_STEPS} steps are supported")
        if np.any(np.abs(steps * self.dt - d) > 1e-6 * max(1.0, float(np.max(d)))):
            raise ValueError(f"delays must be multiples of dt = {self.dt} ms")
        if stdp is not None and not isinstance(stdp, STDP):
            raise TypeError(f"stdp must be a neuro.sim.STDP rule or None, got {stdp!r}")
        if e_rev is not None and np.any(w < 0):
            raise ValueError("conductance weights must be >= 0 uS (inhibition comes from a low e_rev)")
        receptor = post.receptor(tau_syn, e_rev)
        proj = Projection(pre, post, pairs, w.astype(np.float32), steps.astype(np.int32), receptor, stdp,
                          name or f"proj{len(self.projections)}", csr=csr)
        self.projections.append(proj)
        return proj

    def _own(self, name: str, obj, types) -> None:
        """Refuse objects of the wrong kind (strings, ids) and objects of another network, by name."""
        kinds = " or ".join(t.__name__ for t in types)
        if not isinstance(obj, types):
            raise TypeError(f"{name} must be a {kinds} of this network, got {obj!r}")
        mine = self.populations if isinstance(obj, Population) else self.sources
        if not any(o is obj for o in mine):
            raise ValueError(f"{name} {getattr(obj, 'name', obj)!r} belongs to another network; build it with this "
                             f"network's population()/poisson()/spike_source()")

    def spike_monitor(self, target) -> SpikeMonitor:
        self._own("target", target, (Population, PoissonSource, SpikeTimeSource))
        mon = SpikeMonitor(target)
        self.monitors.append(mon)
        return mon

    def rate_monitor(self, target, bin_ms: float = 1.0) -> RateMonitor:
        self._own("target", target, (Population, PoissonSource, SpikeTimeSource))
        mon = RateMonitor(target, bin_ms)
        self.monitors.append(mon)
        return mon

    def state_monitor(self, pop: Population, var: str = "v", ids=None, every: int = 1) -> StateMonitor:
        self._own("pop", pop, (Population,))
        mon = StateMonitor(pop, var, np.arange(pop.n) if ids is None else ids, every)
        if any(isinstance(m, StateMonitor) and m.pop is pop for m in self.monitors):
            raise ValueError(f"{pop.name} already has a state monitor (one per population)")
        self.monitors.append(mon)
        return mon

    # -- running --------------------------------------------------------------------------------------
    def _coupling(self, pop: Population, params: dict) -> np.ndarray:
        """Factor from each receptor current [nA] to the model's input ``x`` for one step."""
        k = np.ones((max(1, len(pop.receptors)), pop.n), np.float32)
        coupling = getattr(pop.model, "synaptic_coupling", None)  # None: the current is the model's input as is
        if coupling is None:
            return k
        for j, (tau, e_rev) in enumerate(pop.receptor_keys):
            if e_rev is not None:  # conductance: g (E - v) [nA] held over the step, like an injected current
                continue
            factor = coupling(tau, self.dt, params, pop.n)
            if factor is not None:
                k[j] = factor
        return k

    def _layout(self, steps: int) -> Layout:
        """Every object's part for a run of ``steps`` (buffers carried over from the previous run)."""
        return Layout(self, self._runtime, steps, self.parallel)

    def run(self, duration_ms: float, progress: bool = False) -> None:
        """Advance the network by ``duration_ms``; runs can be continued. All in compiled code, in chunks
        between which the spike buffer grows if needed (a progress bar per chunk when ``progress``)."""
        from tqdm.auto import tqdm

        duration_ms = _checks.check_float("duration_ms", duration_ms, nonnegative=True)
        progress = _checks.check_bool("progress", progress)
        if duration_ms == 0:
            return
        if duration_ms < self.dt * (1 - 1e-9):
            raise ValueError(f"duration_ms = {duration_ms:g} is shorter than one step (dt = {self.dt:g} ms): "
                             "nothing would run")
        steps = int(round(duration_ms / self.dt))
        if self.t_steps + steps > _MAX_STEPS:
            raise ValueError(f"duration_ms = {duration_ms:g} is {steps} steps of dt = {self.dt:g} ms; a network "
                             f"runs at most {_MAX_STEPS} steps in all")
        self._check_memory(steps)
        layout = self._layout(steps)
        if self.device == "cuda":
            from neuro.sim.cuda_engine import run_cuda

            run_cuda(self, layout, steps, progress)
            self._collect_state(layout)
            return
        runner = build(layout)
        values = layout.values
        n_mon = sum(e.n for e in layout.emitters if layout.monitor_of(e) >= 0)
        cap = max(1 << 16, min(n_mon * steps, 20_000_000)) + n_mon
        done = 0
        bar = tqdm(total=steps, desc="simulating", unit="step", disable=not progress, leave=False)
        seed = np.int64(self._spike_seed)  # counter-based: run(a); run(b) == run(a + b)
        try:
            while done < steps:
                ev_t = np.empty(cap, np.int64)
                ev_m = np.empty(cap, np.int32)
                ev_i = np.empty(cap, np.int32)
                ev_n = np.zeros(1, np.int64)
                ran = runner(self.t_steps, steps - done, self.dt, seed, numba.get_num_threads(), ev_t, ev_m, ev_i, ev_n,
                             cap, *values.values())
                if ran == 0 and done < steps:
                    cap *= 2
                    continue
                n = int(ev_n[0])
                for mon in self.monitors:
                    if isinstance(mon, SpikeMonitor):
                        sel = ev_m[:n] == layout.spike_mons[id(mon.target)]
                        mon._t.append(ev_t[:n][sel] * self.dt)
                        mon._i.append(ev_i[:n][sel].copy())
                self.t_steps += ran
                done += ran
                bar.update(ran)
        finally:
            bar.close()
            self._collect_state(layout)

    def _collect_state(self, layout: Layout) -> None:
        """After a run: state-monitor samples to their monitors, the network's time to the spike monitors."""
        for sm in layout.state_mons:
            mon, cnt = sm.mon, int(sm.values[sm.count][0])
            mon._v.append(sm.values[sm.out][:cnt].copy())
            first = mon._t[-1][-1] / self.dt + mon.every if mon._t and len(mon._t[-1]) else 0
            mon._t.append((np.arange(cnt) * mon.every + first) * self.dt)
        for m in self.monitors:
            if isinstance(m, SpikeMonitor):
                m.target_net_time = self.t_steps * self.dt

    def _check_memory(self, steps: int) -> None:
        """Refuse runs whose buffers (state-monitor samples, spike-time schedule) could not be allocated."""
        for m in self.monitors:
            if isinstance(m, StateMonitor):
                size = (steps // m.every + 2) * len(m.ids) * 4
                if size > _MAX_BYTES:
                    raise ValueError(f"the state monitor of {m.pop.name} would record {size / 2**30:.1f} GiB over "
                                     f"duration_ms = {steps * self.dt:g}; record fewer ids or a larger every")
        if any(isinstance(s, SpikeTimeSource) for s in self.sources) and (self.t_steps + steps) * 8 > _MAX_BYTES:
            raise ValueError(f"duration_ms = {steps * self.dt:g} is too long for a spike-time source schedule "
                             f"({steps} steps); run in shorter pieces")

    @property
    def t(self) -> float:
        """Current time [ms]."""
        return self.t_steps * self.dt

    def reset(self) -> None:
        """Back to t = 0: neuron states to their initial values, synaptic currents and traces cleared,
        monitors emptied; structure and weights kept."""
        self.t_steps = 0
        for pop in self.populations:
            pop.reset_state()
        self._runtime.clear()
        for m in self.monitors:
            m._t.clear()
            (m._i if isinstance(m, SpikeMonitor) else m._v).clear()

    def to_nest(self, path, overwrite: bool = False, duration_ms: float = 1000.0):
        """Write this network as a native NEST (PyNEST 3.x) script, runnable with ``mpirun -n K``; mapping and
        time semantics in :mod:`neuro.sim.nest_export`. Returns the script's path."""
        from neuro.sim.nest_export import to_nest

        return to_nest(self, path, overwrite=overwrite, duration_ms=duration_ms)

    def to_pynn(self, path, overwrite: bool = False, duration_ms: float = 1000.0, backend: str = "nest"):
        """Write this network as a PyNN script for ``backend`` (see :mod:`neuro.sim.nest_export`)."""
        from neuro.sim.nest_export import to_pynn

        return to_pynn(self, path, overwrite=overwrite, duration_ms=duration_ms, backend=backend)

