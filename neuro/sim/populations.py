"""What a network is made of on the neuron side: populations of a neuron model and spike sources.

These are user objects: they hold the configuration (model, initial state, injected currents, drive) and
the neuron state between runs. The run-time buffers (synaptic currents, ring buffers, spike vectors) live
in the network's :class:`neuro.sim.runtime.Runtime`, never on these objects.

Example:
    >>> import neuro
    >>> net = neuro.sim.Network(dt=0.1)
    >>> pop = net.population(3, neuro.models.LIF())
    >>> pop.inject(2.0)
    >>> sorted(pop.state)
    ['ref', 'v']
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from neuro import _checks
from neuro.models import NeuronModel

_MAX_N = (1 << 31) - 1  # neurons of one population or source: int32 indices in the compiled loop
_MAX_TIME_MS = 1e15


class Drive(NamedTuple):
    """Independent Poisson input to every neuron of a population (see :meth:`Population.poisson_drive`)."""

    rate_hz: float
    weight: float
    receptor: int
    seed: int


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
        self.drive: Drive | None = None
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
        self.drive = Drive(float(rate_hz), float(weight), self.receptor(tau_syn), int(seed))

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
