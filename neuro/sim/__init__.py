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

import os

# The loop opens a short parallel region each step on large networks. GNU OpenMP's default (threads spin
# for ~300k iterations before sleeping) made a step 30x slower on a loaded 2-core machine: spinning workers
# take the core the other thread needs. Passive waiting costs a futex wake per region instead. Read when
# the OpenMP runtime loads (the first parallel numba call); a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

from neuro.sim.connectors import (  # noqa: E402
    AllToAll,
    Connector,
    Convolution,
    FixedInDegree,
    FixedProbability,
    FromList,
    FromSubset,
    OneToOne,
)
from neuro.sim.network import (  # noqa: E402
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
