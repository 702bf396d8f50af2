"""Izhikevich (2003) neuron: a quadratic 2-D model reproducing many firing patterns.

Equations (v in mV, t in ms, I in the model's dimensionless current units)::

    dv/dt = 0.04 v^2 + 5 v + 140 - u + I
    du/dt = a (b v - u)
    spike when v >= v_peak (30 mV): v = c, u += d

Nonlinear, so integrated with forward Euler at the given ``dt`` (both equations from the values at the
start of the step). Defaults are the regular-spiking cell (a=0.02, b=0.2, c=-65, d=8). Not trainable by
BPTT here (no backward step). No NIR node exists.

Example:
    >>> import numpy as np
    >>> from neuro.models import Izhikevich
    >>> res = Izhikevich().simulate(np.full((2000, 1), 10.0, np.float32), dt=0.5)   # 1 s at I = 10
    >>> bool(5 < res.spikes.sum() < 40)
    True
"""

from __future__ import annotations

import numba
import numpy as np

from neuro.models._base import Dynamics
from neuro.models._neuron import NeuronModel, as_param

_C04 = np.float32(0.04)
_C5 = np.float32(5.0)
_C140 = np.float32(140.0)
_ONE = np.float32(1.0)
_ZERO = np.float32(0.0)


@numba.njit(inline="always")
def step(v, u, x, a, b, c, d, v_peak, dt):
    v_new = v + dt * (_C04 * v * v + _C5 * v + _C140 - u + x)
    u_new = u + dt * (a * (b * v - u))
    if v_new >= v_peak:
        return c, u_new + d, _ONE
    return v_new, u_new, _ZERO


DYNAMICS = Dynamics(
    name="izhikevich",
    state=("v", "u"),
    params=("a", "b", "c", "d", "v_peak"),
    options=(),
    step=step,
)


class Izhikevich(NeuronModel):
    """Izhikevich neuron (see module docstring); each parameter scalar or per neuron."""

    dynamics = DYNAMICS

    def __init__(self, a=0.02, b=0.2, c=-65.0, d=8.0, v_peak=30.0, v_init=-65.0):
        self.a = as_param("a", a)
        self.b = as_param("b", b)
        self.c = as_param("c", c)
        self.d = as_param("d", d)
        self.v_peak = as_param("v_peak", v_peak)
        self.v_init = as_param("v_init", v_init)

    def kernel_params(self, dt: float) -> dict[str, np.ndarray]:
        self._dt(dt)
        return self._pack(a=self.a, b=self.b, c=self.c, d=self.d, v_peak=self.v_peak)

    def initial_state(self, n: int) -> dict[str, np.ndarray]:
        v0 = np.broadcast_to(self.v_init, (n,))
        return self._state(n, v=v0, u=np.broadcast_to(self.b, (n,)) * v0)
