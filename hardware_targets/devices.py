"""Energy and time per operation of the devices :mod:`neuro.energy` prices activity on.

Every number carries its published source. Units: joules per operation, seconds per time step.
``synop`` is one synaptic operation (a spike delivered through one synapse: an accumulate),
``neuron_update`` one neuron state update in one time step, ``spike`` the cost of emitting/routing one
spike where the source separates it, ``mac`` one multiply-accumulate (analog input or an ANN).

Example:
    >>> from neuro.hardware_targets import devices
    >>> devices.get("loihi").synop
    2.36e-11
    >>> sorted(devices.names())[:3]
    ['45nm', 'arm', 'cpu']
    >>> my_chip = devices.DeviceSpec("my-chip", synop=1e-12, neuron_update=5e-12, mac=4e-12, source="datasheet")
    >>> devices.register(my_chip).name
    'my-chip'
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceSpec:
    """Energy per operation [J] (and optionally time per step [s]) of one device.

    Attributes:
        name: registry key.
        synop: energy of one synaptic operation (accumulate).
        neuron_update: energy of one neuron update in one time step.
        mac: energy of one multiply-accumulate (analog first-layer input, or the ANN baseline); None where
            the device does no MACs (a purely spiking chip).
        spike: energy per emitted spike, where the source gives it separately (else 0).
        step_time: wall time of one network time step [s], where the source gives one (for latency).
        kind: "neuromorphic" or "conventional" (conventional devices also price the ANN).
        source: the publication every number comes from; ``unverified`` marks numbers without one.
    """

    name: str
    synop: float
    neuron_update: float
    mac: float | None = None
    spike: float = 0.0
    step_time: float | None = None
    kind: str = "neuromorphic"
    source: str = ""
    unverified: bool = False

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"DeviceSpec name must be a non-empty string, got {self.name!r}")
        if self.kind not in ("neuromorphic", "conventional"):
            raise ValueError(f"DeviceSpec {self.name!r}: kind must be 'neuromorphic' or 'conventional', got "
                             f"{self.kind!r}")
        for field_name in ("synop", "neuron_update", "spike"):
            value = getattr(self, field_name)
            if not (_real(value) and math.isfinite(value) and value >= 0):
                raise ValueError(f"DeviceSpec {self.name!r}: {field_name} must be a finite number >= 0 (J), "
                                 f"got {value!r}")
        for field_name in ("mac", "step_time"):
            value = getattr(self, field_name)
            if value is not None and not (_real(value) and math.isfinite(value) and value > 0):
                raise ValueError(f"DeviceSpec {self.name!r}: {field_name} must be > 0 or None, got {value!r}")


def _real(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_pJ, _nJ = 1e-12, 1e-9

_REGISTRY: dict[str, DeviceSpec] = {}


def register(spec: DeviceSpec, *, replace: bool = False) -> DeviceSpec:
    """Add a user's device; refuses to overwrite a known name unless ``replace=True``."""
    if not isinstance(spec, DeviceSpec):
        raise TypeError(f"register takes a DeviceSpec, got {type(spec).__name__}")
    if not isinstance(replace, bool):
        raise TypeError(f"replace must be True or False, got {replace!r}")
    if spec.name in _REGISTRY and not replace:
        raise ValueError(f"device {spec.name!r} is already registered (pass replace=True to overwrite)")
    _REGISTRY[spec.name] = spec
    return spec


def names() -> list[str]:
    return sorted(_REGISTRY)


def get(name: str | DeviceSpec) -> DeviceSpec:
    """The spec called ``name`` (or ``name`` itself if it is a spec); unknown names list the known ones."""
    if isinstance(name, DeviceSpec):
        return name
    if not isinstance(name, str):
        raise TypeError(f"a device must be a name ({', '.join(names())}) or a DeviceSpec, got {name!r}")
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown device {name!r}; known devices: {', '.join(names())}") from None


# Horowitz, "Computing's energy problem", ISSCC 2014, 45 nm CMOS: fp32 add 0.9 pJ, fp32 mult 3.7 pJ,
# MAC = mult + add = 4.6 pJ. The usual SNN paper estimate prices a synaptic op as one fp32 add (AC).
register(DeviceSpec("45nm", synop=0.9 * _pJ, neuron_update=0.9 * _pJ, mac=4.6 * _pJ, kind="conventional",
                    source="Horowitz, ISSCC 2014 (45 nm: fp32 add 0.9 pJ, MAC 4.6 pJ); a neuron update as one add"))
# Degnan, Marr, Hasler, "Assessing trends in performance per watt for signal processing applications",
# IEEE TVLSI 2015, as used by KerasSpiking: energy per op, the same for synaptic op and neuron update.
register(DeviceSpec("cpu", synop=8.6 * _nJ, neuron_update=8.6 * _nJ, mac=8.6 * _nJ, kind="conventional",
                    source="Degnan et al. 2015 (as used by KerasSpiking): 8.6 nJ/op"))
register(DeviceSpec("gpu", synop=0.3 * _nJ, neuron_update=0.3 * _nJ, mac=0.3 * _nJ, kind="conventional",
                    source="Degnan et al. 2015 (as used by KerasSpiking): 0.3 nJ/op"))
register(DeviceSpec("arm", synop=0.9 * _nJ, neuron_update=0.9 * _nJ, mac=0.9 * _nJ, kind="conventional",
                    source="Degnan et al. 2015 (as used by KerasSpiking): 0.9 nJ/op"))
# Davies et al., "Loihi: a neuromorphic manycore processor with on-chip learning", IEEE Micro 2018:
# 23.6 pJ per synaptic op, 81 pJ per neuron update (active), 3.5 pJ per synaptic spike op routing
# (we charge it per spike delivered within a core: the synop figure plus 3.5 pJ is the upper figure).
register(DeviceSpec("loihi", synop=23.6 * _pJ, neuron_update=81 * _pJ, spike=3.5 * _pJ,
                    source="Davies et al. 2018, IEEE Micro: 23.6 pJ/synop, 81 pJ/neuron update, +3.5 pJ/spike"))
# Hoppner et al. 2019 (SpiNNaker 2 prototype, arXiv:1911.02385), figures as compiled by KerasSpiking.
register(DeviceSpec("spinnaker", synop=13.3 * _nJ, neuron_update=26 * _nJ,
                    source="Hoppner et al. 2019 (as used by KerasSpiking): 13.3 nJ/synop, 26 nJ/neuron update"))
register(DeviceSpec("spinnaker2", synop=450 * _pJ, neuron_update=2.19 * _nJ,
                    source="Hoppner et al. 2019 (as used by KerasSpiking): 450 pJ/synop, 2.19 nJ/neuron update"))
# TrueNorth: about 26 pJ per synaptic event (Merolla et al. 2014 report 26 pJ per synaptic event at
# 0.775 V); neuron update cost not separated in the source, so it is priced at 0 (unverified).
register(DeviceSpec("truenorth", synop=26 * _pJ, neuron_update=0.0, unverified=True,
                    source="Merolla et al. 2014, Science: about 26 pJ per synaptic event (unverified here)"))
