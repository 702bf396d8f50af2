"""Izhikevich (2003) neuron: a quadratic 2-D model reproducing many firing patterns.

The model is these equations (v in mV, t in ms, I in the model's dimensionless current units); the
kernels are generated from them by :class:`~neuro.models.Equations`::

    dv/dt = 0.04*v*v + 5*v + 140 - u + I
    du/dt = a*(b*v - u)
    threshold: v >= v_peak          reset: v = c; u += d

Nonlinear, so integrated with forward Euler at the given ``dt`` (both equations from the values at the
start of the step), as Izhikevich's paper and NEST's ``izhikevich`` do. Defaults are the regular-spiking
cell (a=0.02, b=0.2, c=-65, d=8); the state starts at ``v = v_init``, ``u = b v_init``. Its backward step is
generated from the equations like any :class:`~neuro.models.Equations` model's. No NIR node exists.

Example:
    >>> import numpy as np
    >>> from neuro.models import Izhikevich
    >>> res = Izhikevich().simulate(np.full((2000, 1), 10.0, np.float32), dt=0.5)   # 1 s at I = 10
    >>> bool(5 < res.spikes.sum() < 40)
    True
"""

from __future__ import annotations

from neuro.models._neuron import as_param
from neuro.models.equations import Equations

EQUATIONS = """
dv/dt = 0.04*v*v + 5*v + 140 - u + I : 1
du/dt = a*(b*v - u) : 1
"""
THRESHOLD = "v >= v_peak"
RESET = "v = c; u += d"


class Izhikevich(Equations):
    """Izhikevich neuron (see module docstring); each parameter scalar or per neuron."""

    def __init__(self, a=0.02, b=0.2, c=-65.0, d=8.0, v_peak=30.0, v_init=-65.0):
        self.a, self.b, self.c, self.d = (as_param(k, v) for k, v in (("a", a), ("b", b), ("c", c), ("d", d)))
        self.v_peak = as_param("v_peak", v_peak)
        self.v_init = as_param("v_init", v_init)
        if self.b.size != self.v_init.size and 1 not in (self.b.size, self.v_init.size):
            raise ValueError(f"b has {self.b.size} values and v_init {self.v_init.size}: give one value or one per "
                             "neuron for each")
        super().__init__(EQUATIONS, threshold=THRESHOLD, reset=RESET, method="euler",
                         initial={"v": self.v_init, "u": self.b * self.v_init}, a=self.a, b=self.b, c=self.c, d=self.d,
                         v_peak=self.v_peak)

    def __repr__(self) -> str:
        return _pynn_repr(self, ("a", "b", "c", "d", "v_peak", "v_init"))


def _pynn_repr(model, names) -> str:
    body = ", ".join(f"{k}={v.tolist() if v.size > 1 else float(v[0])}" for k in names for v in [getattr(model, k)])
    return f"{type(model).__name__}({body})"


def __getattr__(name: str):
    if name == "DYNAMICS":  # the kernels' description, the same for every parameter set
        return Izhikevich().dynamics
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
