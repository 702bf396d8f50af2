"""Adaptive exponential integrate-and-fire (Brette and Gerstner 2005; PyNN ``EIF_cond_exp_isfa_ista``
without its synapses; NEST ``aeif_curr_exp``).

The model is these equations (ms, mV, nA, nF, uS); the kernels are generated from them by
:class:`~neuro.models.Equations`::

    dv/dt = (-g_l*(v - e_l) + g_l*delta_t*exp(clip((v - v_t)/delta_t, -inf, 20)) - w + I)/C
                                                                       (unless refractory)
    dw/dt = (a*(v - e_l) - w)/tau_w
    threshold: v > v_peak       reset: v = v_reset; w += b       refractory: tau_refrac (NEST timing)

with ``C = cm`` (``cm`` is a unit name in equations, as in Brian2) and ``g_l = cm / tau_m``. Nonlinear, so
integrated with forward Euler at the given ``dt``; the exponential's argument is capped at 20 so a diverging
upstroke cannot overflow before it crosses ``v_peak``. While refractory, ``v`` stays at ``v_reset`` for
round(tau_refrac / dt) steps and ``w`` still relaxes. Defaults are PyNN's. Its backward step is generated from
the equations like any :class:`~neuro.models.Equations` model's. No NIR node exists.

Example:
    >>> import numpy as np
    >>> from neuro.models import AdEx
    >>> res = AdEx().simulate(np.full((5000, 1), 1.0, np.float32), dt=0.1)   # 500 ms at 1 nA
    >>> bool(res.spikes.sum() > 3)
    True
"""

from __future__ import annotations

from neuro.models._neuron import as_param
from neuro.models.equations import Equations
from neuro.models.izhikevich import _pynn_repr

EQUATIONS = """
dv/dt = (-g_l*(v - e_l) + g_l*delta_t*exp(clip((v - v_t)/delta_t, -inf, 20)) - w + I)/C : volt (unless refractory)
dw/dt = (a*(v - e_l) - w)/tau_w : amp
"""
THRESHOLD = "v > v_peak"
RESET = "v = v_reset; w += b"

_PYNN = ("cm", "tau_m", "v_rest", "v_thresh", "delta_t", "tau_w", "a", "b", "v_reset", "v_spike", "tau_refrac")


class AdEx(Equations):
    """AdEx neuron (see module docstring). PyNN names and defaults: ``cm`` 0.281 nF, ``tau_m`` 9.3667 ms
    (g_l = cm / tau_m), ``v_rest`` -70.6 mV, ``v_thresh`` (V_T) -50.4 mV, ``delta_t`` 2 mV, ``tau_w`` 144 ms,
    ``a`` 0.004 uS, ``b`` 0.0805 nA, ``v_reset`` -70.6 mV, ``v_spike`` (peak) -40 mV, ``tau_refrac`` 0.1 ms."""

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
        super().__init__(EQUATIONS, threshold=THRESHOLD, reset=RESET, refractory="tau_refrac", method="euler",
                         refractory_timing="nest", initial={"v": self.v_rest}, C=self.cm, g_l=self.cm / self.tau_m,
                         e_l=self.v_rest, delta_t=self.delta_t, v_t=self.v_thresh, tau_w=self.tau_w, a=self.a,
                         b=self.b, v_reset=self.v_reset, v_peak=self.v_spike, tau_refrac=self.tau_refrac)

    def __repr__(self) -> str:
        return _pynn_repr(self, _PYNN)


def __getattr__(name: str):
    if name == "DYNAMICS":  # the kernels' description, the same for every parameter set
        return AdEx().dynamics
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
