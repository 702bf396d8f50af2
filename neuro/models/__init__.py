"""Neuron models, every one written as equations (:class:`Equations`), from which their CPU, numba.cuda and
CUDA C kernels and their backward steps are generated: IF, LIF, CubaLIF and ALIF as update equations in the
order snnTorch and NEST compute them (``x <- expr``), Izhikevich and AdEx as differential equations.

========== ============================================== ========== ==========
class      dynamics                                       trainable  NIR node
========== ============================================== ========== ==========
IF         integrate-and-fire (LIF dynamics, decay 1)     yes        IF
LIF        leaky integrate-and-fire (exact integration)   yes        LIF
CubaLIF    LIF with exponential synaptic current          yes        CubaLIF
ALIF       LIF with adaptive threshold                    yes        (none)
Izhikevich quadratic 2-D model (forward Euler)            yes        (none)
AdEx       adaptive exponential IF (forward Euler)        yes        (none)
========== ============================================== ========== ==========

Each module (``neuro.models.lif`` ...) holds its equations, its generated ``DYNAMICS`` description for
:mod:`neuro.kernels`, and the public class with physical parameters.
"""

from neuro.models._base import Dynamics
from neuro.models._neuron import NeuronModel, SimulationResult
from neuro.models.alif import ALIF
from neuro.models.cuba_lif import CubaLIF
from neuro.models.if_ import IF
from neuro.models.lif import LIF

__all__ = ["IF", "LIF", "CubaLIF", "ALIF", "Izhikevich", "AdEx", "Dynamics", "NeuronModel", "SimulationResult",
           "ALL_DYNAMICS", "Equations", "EquationError"]


def __getattr__(name: str):
    # Equations (and the models written as equations) need sympy, which takes a second to import: load them
    # on first use, not with neuro
    if name in ("Equations", "EquationError"):
        from neuro.models import equations

        return getattr(equations, name)
    if name == "Izhikevich":
        from neuro.models.izhikevich import Izhikevich

        return Izhikevich
    if name == "AdEx":
        from neuro.models.adex import AdEx

        return AdEx
    if name == "ALL_DYNAMICS":  # model name -> the kernels' description
        from neuro.models.adex import AdEx
        from neuro.models.izhikevich import Izhikevich

        return {"lif": LIF.dynamics, "cuba_lif": CubaLIF.dynamics, "alif": ALIF.dynamics,
                "izhikevich": Izhikevich().dynamics, "adex": AdEx().dynamics}
    raise AttributeError(f"module 'neuro.models' has no attribute {name!r}")
