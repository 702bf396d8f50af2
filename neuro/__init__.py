"""neuro-snn: spiking neural networks with a compiled core.

Simulate (:mod:`neuro.sim`), train (:mod:`neuro.nn`), convert (:mod:`neuro.convert`), deploy and price
(:mod:`neuro.hardware_targets`, :mod:`neuro.energy`); NIR is the common graph.
"""

__version__ = "0.1.0"

from neuro import models, surrogate  # noqa: E402

__all__ = ["models", "surrogate", "__version__"]
