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

import math

import numpy as np

from neuro import _checks
from neuro.kernels import pack_options, pack_params, pack_state
from neuro.models import LIF, NeuronModel
from neuro.sim.connectors import Connector

_MAX_N = (1 << 31) - 1  # neurons of one population or source: int32 indices in the compiled loop
_MAX_DELAY_STEPS = 1 << 20  # delay ring buffers hold max_delay + 1 slots per receptor and neuron
_MAX_STEPS = 1 << 62
_MAX_TIME_MS = 1e15
_MAX_BYTES = 1 << 34  # 16 GiB: larger run-time buffers are refused before allocation


class Population:
    """``n`` neurons of one model; ``state`` maps state names to float32 arrays (editable before a run)."""

    def __init__(self, net, n: int, model: NeuronModel, name: str, initial: dict | None):
        if not isinstance(model, NeuronModel):
            raise TypeError(f"model must be a neuro.models neuron (LIF, CubaLIF, Izhikevich, ...), got {model!r}")
        self.net, self.n, self.model, self.name = net, _checks.check_int("n", n, minimum=1, maximum=_MAX_N), model, name
        self.receptors: list[float] = []  # tau_syn of each receptor current
        self.receptor_keys: list[tuple] = []  # (tau_syn, e_rev or None)
        self.i_ext = np.zeros(self.n, np.float32)
        self.i_series, self.i_series_start = np.zeros((1, self.n), np.float32), 0
        self.drive = None
        if initial is not None and not isinstance(initial, dict):
            raise TypeError(f"initial must be a dict of state name -> values, got {initial!r}")
        self._initial = dict(initial or {})
        self.reset_state()

    def reset_state(self):
        st = self.model.initial_state(self.n)
        for k, v in self._initial.items():
            if k not in st:
                raise ValueError(f"unknown state {k!r} for {type(self.model).__name__}; has {list(st)}")
            arr = _checks.check_float_array(f"initial {k}", v).reshape(-1)
            if arr.size not in (1, self.n):
                raise ValueError(f"initial {k} has {arr.size} values for {self.n} neurons")
            st[k] = np.broadcast_to(arr.astype(np.float32), (self.n,)).copy()
        self.state = st

    def receptor(self, tau_syn: float, e_rev: float | None = None) -> int:
        """Index of the receptor with this time constant (``0``: delta synapse, a jump of ``weight`` mV) and,
        for conductance synapses, reversal potential ``e_rev`` [mV] (weights then in uS)."""
        tau_syn = _checks.check_float("tau_syn", tau_syn, nonnegative=True)
        if e_rev is not None:
            e_rev = _checks.check_float("e_rev", e_rev)
        if e_rev is not None and tau_syn == 0:
            raise ValueError(f"conductance synapses need a finite e_rev and tau_syn > 0, got {e_rev}, {tau_syn}")
        if e_rev is not None and "v" not in self.model.dynamics.state:
            raise ValueError(f"{type(self.model).__name__} has no membrane 'v' for conductance synapses")
        key = (float(tau_syn), None if e_rev is None else float(e_rev))
        for k, t in enumerate(self.receptor_keys):
            if t == key:
                return k
        self.receptor_keys.append(key)
        self.receptors.append(float(tau_syn))
        return len(self.receptors) - 1

    def poisson_drive(self, rate_hz: float, weight: float, tau_syn: float = 0.0, seed: int = 0) -> None:
        """Independent Poisson input to every neuron (``rate_hz`` events of ``weight`` each; ``tau_syn=0``:
        voltage jumps in mV), drawn inside the compiled loop with a counter-based generator so the spikes are
        the same on any thread count (NEST's ``poisson_generator``, without a source population)."""
        rate_hz = _checks.check_float("rate_hz", rate_hz, nonnegative=True)
        weight = _checks.check_float("weight", weight)
        seed = _checks.check_seed("seed", seed, allow_none=False)
        self.drive = (float(rate_hz), float(weight), self.receptor(tau_syn), int(seed))

    def inject_series(self, current_nA, start_ms: float | None = None) -> None:
        """A time-varying current [nA]: ``current_nA[k]`` (one value, or one per neuron) during the k-th step
        from ``start_ms`` (default: the network's current time); added to the constant injection."""
        arr = _checks.check_float_array("current_nA", current_nA).astype(np.float32)
        if arr.ndim == 1:
            arr = np.repeat(arr[:, None], self.n, axis=1)
        if arr.ndim != 2 or arr.shape[1] != self.n:
            raise ValueError(f"current series must have shape [steps] or [steps, {self.n}], got {np.shape(current_nA)}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("current series contains NaN or infinite values")
        if start_ms is not None:
            start_ms = _checks.check_float("start_ms", start_ms, nonnegative=True)
        start = self.net.t_steps if start_ms is None else int(round(start_ms / self.net.dt))
        self.i_series, self.i_series_start = np.ascontiguousarray(arr), start

    def inject(self, current_nA) -> None:
        """A constant current injection [nA], one value or one per neuron (replaces the previous one)."""
        arr = _checks.check_float_array("current_nA", current_nA).astype(np.float32)
        if arr.size not in (1, self.n):
            raise ValueError(f"current must be finite, 1 or {self.n} values, got shape {arr.shape}")
        self.i_ext = np.broadcast_to(arr.reshape(-1), (self.n,)).astype(np.float32).copy()

    def __len__(self):
        return self.n

    def __repr__(self):
        return f"Population({self.name!r}, n={self.n}, model={type(self.model).__name__})"


class PoissonSource:
    """``n`` independent Poisson spike trains at ``rate_hz`` (one value or one per source)."""

    def __init__(self, n: int, rate_hz, name: str):
        n = _checks.check_int("n", n, minimum=1, maximum=_MAX_N)
        rate = _checks.check_float_array("rate_hz", rate_hz, nonnegative=True).reshape(-1)
        if rate.size not in (1, n):
            raise ValueError(f"rate_hz has {rate.size} values for {n} sources (give 1 or {n})")
        rate = np.broadcast_to(rate, (n,)).copy()
        self.n, self.rate_hz, self.name = n, rate, name

    def __len__(self):
        return self.n


class SpikeTimeSource:
    """Neurons that fire at given times: ``times_ms[i]`` is the list of spike times of source ``i``."""

    def __init__(self, times_ms, name: str):
        if isinstance(times_ms, str | bytes) or not hasattr(times_ms, "__iter__"):
            raise TypeError(f"times_ms must be a list with one list of spike times per source, got {times_ms!r}")
        self.times = []
        for i, t in enumerate(times_ms):
            arr = _checks.check_float_array(f"times_ms[{i}]", t if np.size(t) else np.zeros(0), nonnegative=True)
            if arr.size and arr.max() > _MAX_TIME_MS:
                raise ValueError(f"times_ms[{i}] has a spike at {arr.max()} ms, beyond {_MAX_TIME_MS:g} ms")
            self.times.append(np.sort(arr.reshape(-1)))
        self.n, self.name = len(self.times), name

    def __len__(self):
        return self.n


class STDP:
    """Pair-based STDP with all-to-all traces (Song et al. 2000)::

        pre before post by dt > 0:  dw = +a_plus  * exp(-dt / tau_plus)   (x (w_max - w) if multiplicative)
        post before pre by dt > 0:  dw = -a_minus * exp(-dt / tau_minus)  (x (w - w_min) if multiplicative)

    weights clipped to [w_min, w_max] (nA)."""

    def __init__(self, a_plus=0.01, a_minus=0.012, tau_plus=20.0, tau_minus=20.0, w_min=0.0, w_max=1.0,
                 multiplicative: bool = False):
        a_plus, a_minus = _checks.check_float("a_plus", a_plus), _checks.check_float("a_minus", a_minus)
        tau_plus = _checks.check_float("tau_plus", tau_plus, positive=True)
        tau_minus = _checks.check_float("tau_minus", tau_minus, positive=True)
        w_min, w_max = _checks.check_float("w_min", w_min), _checks.check_float("w_max", w_max)
        multiplicative = _checks.check_bool("multiplicative", multiplicative)
        if w_max < w_min:
            raise ValueError(f"STDP needs w_max >= w_min, got w_min={w_min}, w_max={w_max}")
        self.a_plus, self.a_minus, self.tau_plus, self.tau_minus = a_plus, a_minus, tau_plus, tau_minus
        self.w_min, self.w_max, self.multiplicative = w_min, w_max, multiplicative


class Projection:
    """Synapses from ``pre`` to ``post`` in CSR by source: ``indptr``, ``targets`` (int32), ``weights`` (float32,
    nA; negative for inhibition) and ``delays`` (int32, steps)."""

    def __init__(self, pre, post, pairs, weight, delay_steps, receptor: int, stdp: STDP | None, name: str,
                 csr=None):
        self.pre, self.post, self.receptor, self.stdp, self.name = pre, post, receptor, stdp, name
        if csr is not None:
            self.indptr, self.targets = csr
            order = None
            pre_idx = np.zeros(len(self.targets), np.int64)[:0]
        else:
            pre_idx, post_idx = pairs
            order = np.argsort(pre_idx, kind="stable")
            self.targets = post_idx[order].astype(np.int32)
            self.indptr = np.zeros(len(pre) + 1, np.int64)
            np.cumsum(np.bincount(pre_idx, minlength=len(pre)), out=self.indptr[1:])
        n_syn = len(self.targets)
        w = np.asarray(weight, np.float32).reshape(-1)
        d = np.asarray(delay_steps, np.int32).reshape(-1)
        # one shared weight / delay is stored once (4 bytes a synapse for the targets alone); plastic
        # synapses always get their own weights
        if w.size == 1 and stdp is not None:
            w = np.repeat(w, n_syn)
        self.weights = (w[order] if w.size > 1 and order is not None else w).astype(np.float32).copy()
        self.delays = (d[order] if d.size > 1 and order is not None else d).astype(np.int32).copy()
        del pre_idx
        if stdp is not None:  # synapses by target, for updates on post spikes
            self.by_post = np.argsort(self.targets, kind="stable").astype(np.int64)
            self.post_ptr = np.zeros(len(post) + 1, np.int64)
            np.cumsum(np.bincount(self.targets, minlength=len(post)), out=self.post_ptr[1:])
            self.pre_of = np.repeat(np.arange(len(pre), dtype=np.int32), np.diff(self.indptr))

    @property
    def n_synapses(self) -> int:
        return len(self.targets)

    @property
    def nbytes(self) -> int:
        arrays = [self.targets, self.indptr, self.weights, self.delays]
        return int(sum(a.nbytes for a in arrays))


class SpikeMonitor:
    """Spike times [ms] and neuron ids of a population or source, recorded inside the compiled loop."""

    def __init__(self, target):
        self.target = target
        self._t: list[np.ndarray] = []
        self._i: list[np.ndarray] = []

    @property
    def times(self) -> np.ndarray:
        return np.concatenate(self._t) if self._t else np.zeros(0)

    @property
    def ids(self) -> np.ndarray:
        return np.concatenate(self._i) if self._i else np.zeros(0, np.int32)

    def count(self) -> int:
        return int(sum(len(a) for a in self._i))

    def rate_hz(self, duration_ms: float | None = None) -> float:
        """Mean firing rate per neuron over the recorded time."""
        dur = duration_ms if duration_ms is not None else self.target_net_time
        return self.count() / len(self.target) / (dur / 1000.0) if dur else 0.0

    def clear(self):
        self._t.clear()
        self._i.clear()


class RateMonitor(SpikeMonitor):
    """Population firing rate [Hz] in bins of ``bin_ms``, from the spikes recorded inside the compiled loop."""

    def __init__(self, target, bin_ms: float = 1.0):
        super().__init__(target)
        self.bin_ms = _checks.check_float("bin_ms", bin_ms, positive=True)

    @property
    def rate(self) -> np.ndarray:
        """Rate per bin [Hz], from t = 0 to the network's current time."""
        end = getattr(self, "target_net_time", 0.0)
        edges = np.arange(0.0, end + self.bin_ms, self.bin_ms)
        counts, _ = np.histogram(self.times, bins=edges) if len(edges) > 1 else (np.zeros(0), None)
        return counts / len(self.target) / (self.bin_ms / 1000.0)

    @property
    def bin_times(self) -> np.ndarray:
        return np.arange(len(self.rate)) * self.bin_ms


class StateMonitor:
    """A state variable of chosen neurons every ``every`` steps: ``values`` [samples, len(ids)], ``times`` [ms]."""

    def __init__(self, pop: Population, var: str, ids, every: int = 1):
        if not isinstance(var, str):
            raise TypeError(f"var must be the name of a state variable (a string), got {var!r}")
        if var not in pop.model.dynamics.state:
            raise ValueError(f"{type(pop.model).__name__} has no state {var!r}; it has {pop.model.dynamics.state}")
        self.pop, self.var, self.every = pop, var, _checks.check_int("every", every, minimum=1)
        self.ids = _checks.check_index_array("ids", ids, size=pop.n, what=f"neurons of {pop.name}").reshape(-1)
        self._v: list[np.ndarray] = []
        self._t: list[np.ndarray] = []

    @property
    def values(self) -> np.ndarray:
        return np.concatenate(self._v) if self._v else np.zeros((0, len(self.ids)), np.float32)

    @property
    def times(self) -> np.ndarray:
        return np.concatenate(self._t) if self._t else np.zeros(0)


class Network:
    """Populations, sources, projections and monitors, run by one compiled loop.

    Args:
        dt: time step [ms], > 0.
        seed: seed of the network's ``numpy.random.Generator`` (connectivity and Poisson spikes).
        parallel: update neurons on all numba threads (spikes are the same on any thread count); ``None``
            (default) decides by size: the per-step cost of a parallel region only pays off for large
            populations.
        device: ``"cpu"`` (one compiled loop) or ``"cuda"`` (numba.cuda kernels per step; spike and rate
            monitors, no state monitors or STDP yet).
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
        self._runner = None

    # -- building -----------------------------------------------------------------------------------
    def population(self, n: int, model: NeuronModel, initial: dict | None = None, name: str | None = None
                   ) -> Population:
        _checks.check_int("n", n, minimum=1, maximum=_MAX_N)
        pop = Population(self, n, model, name or f"pop{len(self.populations)}", initial)
        self.populations.append(pop)
        self._runner = None
        return pop

    def poisson(self, n: int, rate_hz, name: str | None = None) -> PoissonSource:
        src = PoissonSource(n, rate_hz, name or f"poisson{len(self.sources)}")
        self.sources.append(src)
        self._runner = None
        return src

    def spike_source(self, times_ms, name: str | None = None) -> SpikeTimeSource:
        src = SpikeTimeSource(times_ms, name or f"times{len(self.sources)}")
        self.sources.append(src)
        self._runner = None
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
        self._runner = None
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
        self._runner = None
        return mon

    def rate_monitor(self, target, bin_ms: float = 1.0) -> RateMonitor:
        self._own("target", target, (Population, PoissonSource, SpikeTimeSource))
        mon = RateMonitor(target, bin_ms)
        self.monitors.append(mon)
        self._runner = None
        return mon

    def state_monitor(self, pop: Population, var: str = "v", ids=None, every: int = 1) -> StateMonitor:
        self._own("pop", pop, (Population,))
        mon = StateMonitor(pop, var, np.arange(pop.n) if ids is None else ids, every)
        if any(isinstance(m, StateMonitor) and m.pop is pop for m in self.monitors):
            raise ValueError(f"{pop.name} already has a state monitor (one per population)")
        self.monitors.append(mon)
        self._runner = None
        return mon

    # -- running --------------------------------------------------------------------------------------
    def _coupling(self, pop: Population, params: dict) -> np.ndarray:
        """Factor from each receptor current [nA] to the model's input ``x`` for one step."""
        k = np.ones((max(1, len(pop.receptors)), pop.n), np.float32)
        if isinstance(pop.model, LIF) and pop.model._decay_override is None:
            tau_m = np.broadcast_to(pop.model.tau_m, (pop.n,))
            r = np.broadcast_to(pop.model.tau_m / pop.model.cm, (pop.n,))
            gain = np.broadcast_to(params["gain"], (pop.n,)).astype(np.float64)
            em = np.exp(-self.dt / tau_m)
            for j, (tau, e_rev) in enumerate(pop.receptor_keys):
                if e_rev is not None:  # conductance: g (E - v) [nA] held over the step, like an injected current
                    continue
                if tau == 0:  # delta synapse: the weight [mV] lands on the membrane in this step
                    k[j] = (1.0 / gain).astype(np.float32)
                    continue
                es = math.exp(-self.dt / tau)
                same = np.isclose(tau, tau_m)
                p21 = np.where(same, self.dt / tau_m * em, tau / np.where(same, 1.0, tau - tau_m) * (es - em))
                k[j] = (r * p21 / gain).astype(np.float32)
        return k

    def _prepare(self, steps_total: int):
        pops, pois, timed, projs = [], [], [], []
        # one recording per target, shared by every spike/rate monitor of that target
        mon_index: dict[int, int] = {}
        for i, m in enumerate(self.monitors):
            if isinstance(m, SpikeMonitor):
                mon_index.setdefault(id(m.target), i)
        self._mon_index = mon_index
        smon = {id(m.pop): m for m in self.monitors if isinstance(m, StateMonitor)}
        emit_name = {}
        arrays = []
        for k, pop in enumerate(self.populations):
            dyn = pop.model.dynamics
            params = pop.model.kernel_params(self.dt)
            n, R = pop.n, max(1, len(pop.receptors))
            max_d = max([int(p.delays.max()) for p in self.projections if p.post is pop and p.delays.size] or [1])
            if not hasattr(pop, "_isyn") or pop._isyn.shape != (R, n):
                pop._isyn = np.zeros((R, n), np.float32)
            if not hasattr(pop, "_buf") or pop._buf.shape != (max_d + 1, R, n):
                pop._buf = np.zeros((max_d + 1, R, n), np.float32)
            sdec = np.array([math.exp(-self.dt / t) if t > 0 else 0.0 for t in pop.receptors] or [0.0], np.float32)
            erev = np.array([np.nan if e is None else e for _, e in pop.receptor_keys] or [np.nan], np.float32)
            vidx = np.array([pop.model.dynamics.state.index("v") if "v" in pop.model.dynamics.state else 0], np.int64)
            pop._st = pack_state(dyn, pop.state, n)
            sm = smon.get(id(pop))
            smi = sm.ids if sm is not None else np.zeros(0, np.int64)
            smo = np.zeros((steps_total // (sm.every if sm else 1) + 2, len(smi)), np.float32)
            smn = np.array([0, sm.every if sm else 1, dyn.state.index(sm.var) if sm else 0], np.int64)
            fired = np.zeros(n, np.uint8)
            drv = np.array([pop.drive[0] * self.dt / 1000.0, pop.drive[1], pop.drive[2], pop.drive[3]]
                           if pop.drive else [0.0, 0.0, -1.0, 0.0], np.float64)
            arrays += [pop._st, pack_params(dyn, params, n), pack_options(dyn, pop.model.kernel_options()),
                       pop._isyn, sdec, self._coupling(pop, params), pop._buf, pop.i_ext, fired, smi, smo, smn, drv,
                       pop.i_series, np.array([pop.i_series_start, len(pop.i_series) if pop.i_series.any() else 0],
                                              np.int64), erev, vidx]
            pops.append({"dyn": dyn, "mon": mon_index.get(id(pop), -1), "smo": smo, "smn": smn, "sm": sm})
            emit_name[id(pop)] = f"fired{k}"
            pop._fired = fired
        p_arrays, f_arrays = [], []
        for src in self.sources:
            if isinstance(src, PoissonSource):
                q = len(pois)
                p_arrays.append((1.0 - np.exp(-src.rate_hz * self.dt / 1000.0)).astype(np.float64))
                f = np.zeros(src.n, np.uint8)
                f_arrays.append(f)
                pois.append({"mon": mon_index.get(id(src), -1)})
                emit_name[id(src)] = f"fq{q}"
        arrays += p_arrays + f_arrays
        for src in self.sources:
            if isinstance(src, SpikeTimeSource):
                u = len(timed)
                steps = [np.round(t / self.dt).astype(np.int64) for t in src.times]
                ids = np.concatenate([np.full(len(s), i, np.int32) for i, s in enumerate(steps)]
                                     or [np.zeros(0, np.int32)])
                allsteps = np.concatenate(steps) if steps else np.zeros(0, np.int64)
                order = np.argsort(allsteps, kind="stable")
                horizon = self.t_steps + steps_total + 1
                counts = np.bincount(allsteps[allsteps < horizon], minlength=horizon)
                sptr = np.zeros(horizon + 1, np.int64)
                np.cumsum(counts, out=sptr[1:])
                keep = allsteps[order] < horizon
                arrays += [sptr, ids[order][keep].astype(np.int32), np.zeros(src.n, np.uint8)]
                timed.append({"mon": mon_index.get(id(src), -1)})
                emit_name[id(src)] = f"fu{u}"
        for proj in self.projections:
            d = {"pre_fired": emit_name[id(proj.pre)], "post": self.populations.index(proj.post),
                 "receptor": proj.receptor, "stdp": proj.stdp is not None,
                 "uniform_w": proj.weights.size == 1, "uniform_d": proj.delays.size == 1}
            arrays += [proj.indptr, proj.targets, proj.weights, proj.delays]
            if proj.stdp is not None:
                s = proj.stdp
                if not hasattr(proj, "_xpre"):
                    proj._xpre = np.zeros(len(proj.pre), np.float64)
                    proj._xpost = np.zeros(len(proj.post), np.float64)
                sp = np.array([s.a_plus, s.a_minus, 0.0, s.w_min, s.w_max, float(s.multiplicative),
                               math.exp(-self.dt / s.tau_plus), math.exp(-self.dt / s.tau_minus)])
                arrays += [proj._xpre, proj._xpost, proj.by_post, proj.post_ptr, proj.pre_of, sp]
            projs.append(d)
        self._layout = (pops, pois, timed, projs)
        if self.device == "cuda":
            return pops, arrays
        if self._runner is None:
            parallel = self.parallel
            if parallel is None:
                parallel = max((p.n for p in self.populations), default=0) >= 20_000
            self._runner = build(pops, pois, timed, projs, parallel)
        return pops, arrays

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
        pops, arrays = self._prepare(steps)
        if self.device == "cuda":
            self._run_cuda(steps, arrays, progress)
            return
        n_mon = sum(len(m.target) for m in self.monitors if isinstance(m, SpikeMonitor))
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
                ran = self._runner(self.t_steps, steps - done, self.dt, seed, ev_t, ev_m, ev_i, ev_n, cap, *arrays)
                if ran == 0 and done < steps:
                    cap *= 2
                    continue
                n = int(ev_n[0])
                mons = [m for m in self.monitors if isinstance(m, SpikeMonitor)]
                for idx, mon in enumerate(mons):
                    sel = ev_m[:n] == self._mon_index[id(mon.target)]
                    mon._t.append(ev_t[:n][sel] * self.dt)
                    mon._i.append(ev_i[:n][sel].copy())
                    del idx
                self.t_steps += ran
                done += ran
                bar.update(ran)
        finally:
            bar.close()
            for k, (pop, d) in enumerate(zip(self.populations, pops, strict=True)):
                for a, name in enumerate(pop.model.dynamics.state):
                    pop.state[name] = pop._st[a].copy()
                sm = d["sm"]
                if sm is not None:
                    cnt = int(d["smn"][0])
                    sm._v.append(d["smo"][:cnt].copy())
                    first = sm._t[-1][-1] / self.dt + sm.every if sm._t and len(sm._t[-1]) else 0
                    sm._t.append((np.arange(cnt) * sm.every + first) * self.dt)
                del k
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

    def _run_cuda(self, steps: int, arrays: list, progress: bool) -> None:
        from numba import cuda
        from tqdm.auto import tqdm

        from neuro.sim import cuda_engine

        pops, pois, timed, projs = self._layout
        if any(isinstance(m, StateMonitor) for m in self.monitors) or any(p["stdp"] for p in projs):
            raise ValueError("device='cuda' does not support state monitors or STDP yet; use device='cpu'")
        kern = cuda_engine.build(pops, pois, projs)
        dev = [cuda.to_device(a) for a in arrays]
        per_pop, at = 17, 0
        pop_args, fired_dev = [], {}
        for k in range(len(pops)):
            a = dev[at:at + per_pop]
            pop_args.append(a[:9] + a[12:])  # without the state-monitor arrays
            fired_dev[f"fired{k}"] = a[8]
            at += per_pop
        nq = len(pois)
        probs, fq = dev[at:at + nq], dev[at + nq:at + 2 * nq]
        for q in range(nq):
            fired_dev[f"fq{q}"] = fq[q]
        at += 2 * nq
        timed_host = []
        for u in range(len(timed)):
            sptr, sids, f = arrays[at], arrays[at + 1], dev[at + 2]
            timed_host.append((sptr, sids, f))
            fired_dev[f"fu{u}"] = f
            at += 3
        proj_args = []
        for _ in projs:
            proj_args.append(dev[at:at + 4])
            at += 4
        monitored = [(name, mon) for name, mon in ([(f"fired{k}", p["mon"]) for k, p in enumerate(pops)]
                                                 + [(f"fq{q}", s["mon"]) for q, s in enumerate(pois)]
                                                 + [(f"fu{u}", s["mon"]) for u, s in enumerate(timed)]) if mon >= 0]
        events = {mon: ([], []) for _, mon in monitored}
        seed = np.int64(self._spike_seed)
        for s in tqdm(range(steps), desc="simulating (cuda)", disable=not progress, leave=False):
            t = self.t_steps + s
            for q in range(nq):
                kern.__dict__[f"draw{q}"][cuda_engine.grid(fq[q].shape[0])](t, seed, probs[q], fq[q])
            for sptr, sids, f in timed_host:
                host = np.zeros(f.shape[0], np.uint8)
                host[sids[sptr[t]:sptr[t + 1]]] = 1
                f.copy_to_device(host)
            for k, a in enumerate(pop_args):
                kern.__dict__[f"update{k}"][cuda_engine.grid(a[8].shape[0])](t, self.dt, *a)
            for name, mon in monitored:
                ids = np.nonzero(fired_dev[name].copy_to_host())[0]
                events[mon][0].append(np.full(len(ids), t, np.int64))
                events[mon][1].append(ids.astype(np.int32))
            for j, (pr, a) in enumerate(zip(projs, proj_args, strict=True)):
                pre = fired_dev[pr["pre_fired"]]
                post_buf = pop_args[pr["post"]][6]
                kern.__dict__[f"prop{j}"][cuda_engine.grid(pre.shape[0])](t, pre, *a, post_buf)
        for k, pop in enumerate(self.populations):
            pop._st[...] = pop_args[k][0].copy_to_host()
            pop._isyn[...] = pop_args[k][3].copy_to_host()
            pop._buf[...] = pop_args[k][6].copy_to_host()
            for a, name in enumerate(pop.model.dynamics.state):
                pop.state[name] = pop._st[a].copy()
        for m in self.monitors:
            if isinstance(m, SpikeMonitor):
                ts, ids = events[self._mon_index[id(m.target)]]
                m._t.append(np.concatenate(ts) * self.dt if ts else np.zeros(0))
                m._i.append(np.concatenate(ids) if ids else np.zeros(0, np.int32))
        self.t_steps += steps
        for m in self.monitors:
            if isinstance(m, SpikeMonitor):
                m.target_net_time = self.t_steps * self.dt

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
            for attr in ("_isyn", "_buf"):
                if hasattr(pop, attr):
                    getattr(pop, attr)[...] = 0
        for proj in self.projections:
            for attr in ("_xpre", "_xpost"):
                if hasattr(proj, attr):
                    getattr(proj, attr)[...] = 0
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


from neuro.sim.engine import build  # noqa: E402  (the engine imports nothing from here)

