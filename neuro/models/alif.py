"""Adaptive LIF: a LIF whose threshold rises with each spike and relaxes back (Bellec et al. 2018, LSNN).

Equations (discrete, one step)::

    theta[t] = threshold + adapt_gain a[t-1]
    v[t]     = v_rest + decay (v[t-1] - v_rest) + gain x[t]         then spike if v[t] > theta[t]
    a[t]     = adapt_decay a[t-1] + S[t]
    reset in the same step: v -= theta[t] (``"subtract"``) or v = v_reset

Continuous form: ``tau_m dv/dt = (v_rest - v) + R I``, ``tau_adapt da/dt = -a + sum_k delta(t - t_k)``,
``decay = exp(-dt/tau_m)``, ``adapt_decay = exp(-dt/tau_adapt)``. The spike's contribution to ``a``
carries the surrogate gradient (as in LSNN). No NIR node exists for ALIF.

Example:
    >>> import numpy as np
    >>> from neuro.models import ALIF
    >>> cell = ALIF.discrete(beta=1.0, threshold=1.0, adapt_decay=0.9, adapt_gain=0.5)
    >>> res = cell.simulate(np.full((10, 1), 0.6, np.float32), dt=1.0)
    >>> res.spikes[:, 0].tolist()
    [0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0]
"""

from __future__ import annotations

import numba
import numpy as np

from neuro.models import coefficients
from neuro.models._base import Dynamics
from neuro.models._neuron import NeuronModel, as_param
from neuro.models._spiking import ONE, ZERO, fire, fire_vjp


@numba.njit(inline="always")
def step(v, a, ref, x, decay, gain, v_leak, threshold, v_reset, t_ref, adapt_decay, adapt_gain, reset_mode, dt):
    theta = threshold + adapt_gain * a
    v_int = v_leak + decay * (v - v_leak) + gain * x
    v_new, ref, spike = fire(v_int, ref, theta, v_reset, t_ref, reset_mode, 0)
    return v_new, adapt_decay * a + spike, ref, spike


def make_backward(surrogate):
    @numba.njit(inline="always")
    def backward(v, a, ref, x, decay, gain, v_leak, threshold, v_reset, t_ref, adapt_decay, adapt_gain,
                 reset_mode, dt, slope, g_spike, g_v_new, g_a_new, g_ref_new):
        g_a = g_a_new * adapt_decay
        g_rho = g_a_new * a
        if ref > ZERO:  # clamped, no spike
            return ZERO, g_a, ZERO, ZERO, ZERO, ZERO, ZERO, ZERO, g_v_new, ZERO, g_rho, ZERO
        theta = threshold + adapt_gain * a
        v_int = v_leak + decay * (v - v_leak) + gain * x
        sgv = surrogate(v_int - theta, slope)
        g_int, g_theta, g_vr = fire_vjp(sgv, v_int, theta, v_reset, reset_mode, 0, g_spike + g_a_new, g_v_new)
        g_a += g_theta * adapt_gain
        return (g_int * decay, g_a, ZERO, g_int * gain, g_int * (v - v_leak), g_int * x, g_int * (ONE - decay),
                g_theta, g_vr, ZERO, g_rho, g_theta * a)

    return backward


DYNAMICS = Dynamics(
    name="alif",
    state=("v", "a", "ref"),
    params=("decay", "gain", "v_leak", "threshold", "v_reset", "t_ref", "adapt_decay", "adapt_gain"),
    options=("reset_mode",),
    step=step,
    make_backward=make_backward,
)


class ALIF(NeuronModel):
    """Adaptive LIF (see module docstring). ``tau_adapt`` [ms] and ``adapt_gain`` [mV per unit of a]
    add to :class:`~neuro.models.LIF`'s parameters. Reset is always in the same step."""

    dynamics = DYNAMICS

    def __init__(self, tau_m=20.0, cm=1.0, v_rest=-65.0, v_thresh=-50.0, v_reset=-65.0, tau_refrac=0.0,
                 tau_adapt=200.0, adapt_gain=1.0, reset: str = "to_value"):
        self.tau_m = as_param("tau_m", tau_m, positive=True)
        self.cm = as_param("cm", cm, positive=True)
        self.v_rest = as_param("v_rest", v_rest)
        self.v_thresh = as_param("v_thresh", v_thresh)
        self.v_reset = as_param("v_reset", v_reset)
        self.tau_refrac = as_param("tau_refrac", tau_refrac, nonnegative=True)
        self.tau_adapt = as_param("tau_adapt", tau_adapt, positive=True)
        self.adapt_gain = as_param("adapt_gain", adapt_gain)
        self._set_reset(reset, False)
        self._discrete = None

    @classmethod
    def discrete(cls, beta=0.9, threshold=1.0, adapt_decay=0.95, adapt_gain=0.1, reset: str = "subtract") -> ALIF:
        """Time-step form: ``v = beta v + x``, ``a = adapt_decay a + S``, threshold ``thr + adapt_gain a``."""
        cell = cls(v_rest=0.0, v_thresh=threshold, v_reset=0.0, adapt_gain=adapt_gain, reset=reset)
        cell._discrete = (as_param("beta", beta, unit_interval=True),
                          as_param("adapt_decay", adapt_decay, unit_interval=True))
        return cell

    def kernel_params(self, dt: float) -> dict[str, np.ndarray]:
        dt = self._dt(dt)
        if self._discrete is not None:
            decay, adapt_decay = self._discrete
            gain = 1.0
        else:
            decay, adapt_decay = coefficients.decay(self.tau_m, dt), coefficients.decay(self.tau_adapt, dt)
            gain = (self.tau_m / self.cm) * (1.0 - decay)
        return self._pack(decay=decay, gain=gain, v_leak=self.v_rest, threshold=self.v_thresh,
                          v_reset=self.v_reset, t_ref=np.round(self.tau_refrac / dt), adapt_decay=adapt_decay,
                          adapt_gain=self.adapt_gain)

    def initial_state(self, n: int) -> dict[str, np.ndarray]:
        return self._state(n, v=0.0 if self._discrete is not None else self.v_rest, a=0.0, ref=0.0)
