"""Monitors: spikes, binned population rates and state variables, recorded inside the compiled loop.

Example:
    >>> import neuro
    >>> net = neuro.sim.Network(dt=0.1)
    >>> pop = net.population(2, neuro.models.LIF())
    >>> spikes = net.spike_monitor(pop)
    >>> spikes.rate_hz()          # nothing has run yet
    0.0
"""

from __future__ import annotations

import numpy as np

from neuro import _checks


class SpikeMonitor:
    """Spike times [ms] and neuron ids of a population or source, recorded inside the compiled loop."""

    def __init__(self, target):
        self.target = target
        self._t: list[np.ndarray] = []
        self._i: list[np.ndarray] = []
        self.target_net_time = 0.0  # the network's time [ms] after the last run (0 before the first)

    @property
    def times(self) -> np.ndarray:
        return np.concatenate(self._t) if self._t else np.zeros(0)

    @property
    def ids(self) -> np.ndarray:
        return np.concatenate(self._i) if self._i else np.zeros(0, np.int32)

    def count(self) -> int:
        return int(sum(len(a) for a in self._i))

    def rate_hz(self, duration_ms: float | None = None) -> float:
        """Mean firing rate per neuron [Hz] over ``duration_ms`` (default: the network's time, so 0.0 before
        the first run)."""
        dur = self.target_net_time if duration_ms is None else _checks.check_float("duration_ms", duration_ms,
                                                                                      positive=True)
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
        end = self.target_net_time
        edges = np.arange(0.0, end + self.bin_ms, self.bin_ms)
        counts, _ = np.histogram(self.times, bins=edges) if len(edges) > 1 else (np.zeros(0), None)
        return counts / len(self.target) / (self.bin_ms / 1000.0)

    @property
    def bin_times(self) -> np.ndarray:
        return np.arange(len(self.rate)) * self.bin_ms


class StateMonitor:
    """A state variable of chosen neurons every ``every`` steps: ``values`` [samples, len(ids)], ``times`` [ms]."""

    def __init__(self, pop, var: str, ids, every: int = 1):
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
