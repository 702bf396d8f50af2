"""Clock-driven network simulator: populations, projections, delays, plasticity, monitors, all stepped
inside one compiled loop. Units as PyNN: ms, mV, nA, nF, uS.

Example:
    >>> import neuro
    >>> net = neuro.sim.Network(dt=0.1)
    >>> pop = net.population(5, neuro.models.LIF(tau_m=20.0, cm=1.0))
    >>> pop.inject(1.0)                              # 1 nA into every neuron
    >>> mon = net.spike_monitor(pop)
    >>> net.run(100.0)
    >>> mon.count()                                  # 3 spikes each in 100 ms (see neuro.models.LIF)
    15
"""

from neuro.sim.connectors import (
    AllToAll,
    Connector,
    Convolution,
    FixedInDegree,
    FixedProbability,
    FromList,
    FromSubset,
    OneToOne,
)
from neuro.sim.network import (
    STDP,
    Network,
    PoissonSource,
    Population,
    Projection,
    RateMonitor,
    SpikeMonitor,
    SpikeTimeSource,
    StateMonitor,
)

__all__ = ["Network", "Population", "Projection", "PoissonSource", "SpikeTimeSource", "STDP", "SpikeMonitor",
           "RateMonitor",
           "StateMonitor", "AllToAll", "OneToOne", "FixedProbability", "FixedInDegree", "FromList", "FromSubset",
           "Connector", "Convolution"]
