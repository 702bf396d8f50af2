"""neuro-snn: spiking neural networks with a compiled core.

Simulate (:mod:`neuro.sim`), train (:mod:`neuro.nn`), convert (:mod:`neuro.convert`), deploy and price
(:mod:`neuro.hardware_targets`, :mod:`neuro.energy`); NIR is the common graph. Subpackages load on first
use, so ``import neuro`` stays light (torch is imported only by the parts that need it).

Example:
    >>> import neuro
    >>> neuro.models.LIF.discrete(beta=0.9).kernel_params(dt=1.0)["threshold"].tolist()
    [1.0]
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = {"models", "surrogate", "kernels", "nn", "encoding", "sim", "convert", "io", "energy", "plot", "digits",
               "hardware_targets", "demo", "cli"}

__all__ = sorted(_SUBMODULES | {"__version__", "to_nir", "from_nir"})


_FUNCTIONS = {"to_nir": "neuro.io", "from_nir": "neuro.io"}


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"neuro.{name}")
    if name in _FUNCTIONS:
        return getattr(importlib.import_module(_FUNCTIONS[name]), name)
    raise AttributeError(f"module 'neuro' has no attribute {name!r}")
