"""Adaptive exponential integrate-and-fire (Brette and Gerstner 2005; PyNN ``EIF_cond_exp_isfa_ista``
without its synapses; NEST ``aeif_curr_exp``).

Equations (ms, mV, nA, nF, uS)::

    cm dv/dt    = -g_l (v - e_l) + g_l delta_t exp((v - v_t) / delta_t) - w + I
    tau_w dw/dt = a (v - e_l) - w
    spike when v > v_peak: v = v_reset, w += b, then v clamped at v_reset for tau_refrac

Nonlinear, so integrated with forward Euler at the given ``dt``; the exponential's argument is capped
so a diverging upstroke cannot overflow before it crosses ``v_peak``. Defaults are PyNN's. Not trainable
by BPTT here. No NIR node exists.

Example:
    >>> import numpy as np
    >>> from neuro.models import AdEx
    >>> res = AdEx().simulate(np.full((5000, 1), 1.0, np.float32), dt=0.1)   # 500 ms at 1 nA
    >>> bool(res.spikes.sum() > 3)
    True
"""

from __future__ import annotations

import numba
import numpy as np

from neuro.models._base import Dynamics
from neuro.models._neuron import NeuronModel, as_param

_ONE = np.float32(1.0)
_ZERO = np.float32(0.0)
_EXP_CAP = np.float32(20.0)


@numba.njit(inline="always")
def step(v, w, ref, x, cm, g_l, e_l, delta_t, v_t, tau_w, a, b, v_reset, v_peak, t_ref, dt):
    w_new = w + dt * ((a * (v - e_l) - w) / tau_w)
    if ref > _ZERO:  # clamped at v_reset; adaptation still relaxes
        return v_reset, w_new, ref - _ONE, _ZERO
    arg = min((v - v_t) / delta_t, _EXP_CAP)
    v_new = v + dt * ((-g_l * (v - e_l) + g_l * delta_t * np.exp(arg) - w + x) / cm)
    if v_new > v_peak:
        return v_reset, w_new + b, t_ref, _ONE
    return v_new, w_new, ref, _ZERO


DYNAMICS = Dynamics(
    name="adex",
    state=("v", "w", "ref"),
    params=("cm", "g_l", "e_l", "delta_t", "v_t", "tau_w", "a", "b", "v_reset", "v_peak", "t_ref"),
    options=(),
    step=step,
)


class AdEx(NeuronModel):
    """AdEx neuron (see module docstring). PyNN names and defaults: ``cm`` 0.281 nF, ``tau_m`` 9.3667 ms
    (g_l = cm / tau_m), ``v_rest`` -70.6 mV, ``v_thresh`` (V_T) -50.4 mV, ``delta_t`` 2 mV, ``tau_w`` 144 ms,
    ``a`` 0.004 uS, ``b`` 0.0805 nA, ``v_reset`` -70.6 mV, ``v_spike`` (peak) -40 mV, ``tau_refrac`` 0.1 ms."""

    dynamics = DYNAMICS

    def __init__(self, cm=0.281, tau_m=9.3667, v_rest=-70.6, v_thresh=-50.4, delta_t=2.0, tau_w=144.0, a=0.004,
                 b=0.0805, v_reset=-70.6, v_spike=-40.0, tau_refrac=0.1):
        self.cm = as_param("cm", cm, positive=True)
        self.tau_m = as_param("tau_m", tau_m, positive=True)
        self.v_rest = as_param("v_rest", v_rest)
        self.v_thresh = as_param("v_thresh", v_thresh)
        self.delta_t = as_param("delta_t", delta_t, positive=True)
        self.tau_w = as_param("tau_w", tau_w, positive=True)
        self.a = as_param("a", a)
        self.b = as_param("b", b)
        self.v_reset = as_param("v_reset", v_reset)
        self.v_spike = as_param("v_spike", v_spike)
        self.tau_refrac = as_param("tau_refrac", tau_refrac, nonnegative=True)

    def kernel_params(self, dt: float) -> dict[str, np.ndarray]:
        dt = self._dt(dt)
        return self._pack(cm=self.cm, g_l=self.cm / self.tau_m, e_l=self.v_rest, delta_t=self.delta_t,
                          v_t=self.v_thresh, tau_w=self.tau_w, a=self.a, b=self.b, v_reset=self.v_reset,
                          v_peak=self.v_spike, t_ref=np.round(self.tau_refrac / dt))

    def initial_state(self, n: int) -> dict[str, np.ndarray]:
        return self._state(n, v=self.v_rest, w=0.0, ref=0.0)
