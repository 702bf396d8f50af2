"""Chip targets: one module per chip family, each with a device spec, a fit report and an emitter.

``get(name)`` returns a :class:`~neuro.hardware_targets._target.Target` with ``.spec``,
``.fit(graph) -> FitReport`` (every violated constraint by layer, with the required and allowed
numbers), ``.emit(graph, path, force=False, overwrite=False)`` and ``.simulate(graph, x)``: what the chip's
toolchain computes, from a model of it checked against that toolchain (Loihi 2: a bit-accurate model of
lava-dl netx and Lava's fixed-point processes run on the emitted file; Speck: Sinabs' IAF on the emitted 8-bit
file; Xylo: Rockpool's LIF, or XyloSim's integer arithmetic), never a float model. Energy per operation of
each device lives in :mod:`neuro.hardware_targets.devices`.

Example:
    >>> from neuro import hardware_targets
    >>> sorted(hardware_targets.names())
    ['loihi2', 'nest', 'speck', 'spinnaker', 'xylo']
"""

from __future__ import annotations

from neuro.hardware_targets._target import FitReport, Target, TargetError, Violation


def _registry():
    from neuro.hardware_targets.loihi2 import Loihi2
    from neuro.hardware_targets.speck import Speck
    from neuro.hardware_targets.spinnaker import NEST, SpiNNaker
    from neuro.hardware_targets.xylo import Xylo

    return {"loihi2": Loihi2, "speck": Speck, "spinnaker": SpiNNaker, "nest": NEST, "xylo": Xylo}


def names() -> list[str]:
    return list(_registry())


def get(name: str, **kwargs) -> Target:
    """The target called ``name``; unknown names list the known ones."""
    reg = _registry()
    if name not in reg:
        raise ValueError(f"unknown target {name!r}; known targets: {', '.join(sorted(reg))}")
    return reg[name](**kwargs)


__all__ = ["get", "names", "Target", "FitReport", "Violation", "TargetError"]
