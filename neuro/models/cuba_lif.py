"""Current-based LIF: an exponential synaptic current feeding a leaky membrane (NIR ``CubaLIF``;
snnTorch ``Synaptic``; PyNN ``IF_curr_exp``).

Equations (ms, mV, nA, nF)::

    tau_syn dI/dt = -I + w_in S(t)                  (input S arrives as jumps of I)
    tau_m   dv/dt = (v_rest - v) + R I,   R = tau_m / cm
    spike when v > v_thresh; reset and refractory as in :mod:`neuro.models.lif`

Discrete step (one form covers exact integration and snnTorch)::

    I[t] = alpha I[t-1] + syn_gain x[t]
    v[t] = v_rest + beta (v[t-1] - v_rest) + i_old I[t-1] + i_new I[t] - reset

Exact propagators (input jump at the start of the step): ``alpha = exp(-dt/tau_syn)``,
``beta = exp(-dt/tau_m)``, ``syn_gain = alpha w_in``, ``i_old = 0``,
``i_new = R tau_syn/(tau_syn - tau_m) (alpha - beta) / alpha`` (``R (dt/tau) beta / alpha`` when the
time constants are equal). snnTorch's ``Synaptic`` is ``syn_gain = 1, i_old = 0, i_new = 1``
(:meth:`CubaLIF.discrete`).

NIR: ``nir.CubaLIF(tau_syn, tau_mem=tau_m, r=R, v_leak=v_rest, v_threshold, v_reset, w_in)``.

Example:
    >>> import numpy as np
    >>> from neuro.models import CubaLIF
    >>> cell = CubaLIF.discrete(alpha=0.8, beta=0.9, threshold=1.0)
    >>> x = np.zeros((6, 1), np.float32); x[0] = 1.0
    >>> res = cell.simulate(x, dt=1.0)
    >>> [round(float(v), 3) for v in res.states["i"][:3, 0]]
    [1.0, 0.8, 0.64]
"""

from __future__ import annotations

import numba
import numpy as np

from neuro.models import coefficients
from neuro.models._base import RESET_SUBTRACT, RESET_TO_VALUE, Dynamics
from neuro.models._neuron import NeuronModel, as_param
from neuro.models._spiking import ONE, ZERO, delayed_reset, fire, fire_vjp


@numba.njit(inline="always")
def step(i, v, ref, x, syn_decay, mem_decay, syn_gain, i_old, i_new, v_leak, threshold, v_reset, t_ref,
         reset_mode, reset_delay, dt):
    v_base, sub, ref, _ = delayed_reset(v, ref, threshold, v_reset, t_ref, reset_mode, reset_delay)
    i_n = syn_decay * i + syn_gain * x
    v_int = v_leak + mem_decay * (v_base - v_leak) + i_old * i + i_new * i_n - sub
    v_new, ref, spike = fire(v_int, ref, threshold, v_reset, t_ref, reset_mode, reset_delay)
    return i_n, v_new, ref, spike


def make_backward(surrogate):
    @numba.njit(inline="always")
    def backward(i, v, ref, x, syn_decay, mem_decay, syn_gain, i_old, i_new, v_leak, threshold, v_reset,
                 t_ref, reset_mode, reset_delay, dt, slope, g_spike, g_i_new, g_v_new, g_ref_new):
        v_base, sub, ref1, fired = delayed_reset(v, ref, threshold, v_reset, t_ref, reset_mode, reset_delay)
        i_n = syn_decay * i + syn_gain * x
        if ref1 > ZERO:  # membrane clamped; the synaptic current still integrates
            g_in = g_i_new
            return (g_in * syn_decay, ZERO, ZERO, g_in * syn_gain, g_in * i, ZERO, g_in * x, ZERO, ZERO, ZERO,
                    ZERO, g_v_new, ZERO)
        v_int = v_leak + mem_decay * (v_base - v_leak) + i_old * i + i_new * i_n - sub
        sgv = surrogate(v_int - threshold, slope)
        g_int, g_thr, g_vr = fire_vjp(sgv, v_int, threshold, v_reset, reset_mode, reset_delay, g_spike, g_v_new)
        g_v = g_int * mem_decay
        if fired > ZERO:
            if reset_mode == RESET_SUBTRACT:
                g_thr -= g_int
            elif reset_mode == RESET_TO_VALUE:
                g_vr += g_v
                g_v = ZERO
        g_in = g_i_new + g_int * i_new
        g_i = g_in * syn_decay + g_int * i_old
        return (g_i, g_v, ZERO, g_in * syn_gain, g_in * i, g_int * (v_base - v_leak), g_in * x, g_int * i,
                g_int * i_n, g_int * (ONE - mem_decay), g_thr, g_vr, ZERO)

    return backward


DYNAMICS = Dynamics(
    name="cuba_lif",
    state=("i", "v", "ref"),
    params=("syn_decay", "mem_decay", "syn_gain", "i_old", "i_new", "v_leak", "threshold", "v_reset", "t_ref"),
    options=("reset_mode", "reset_delay"),
    step=step,
    make_backward=make_backward,
)


class CubaLIF(NeuronModel):
    """Current-based LIF (see module docstring). Parameters as :class:`~neuro.models.LIF` plus
    ``tau_syn`` [ms] and ``w_in`` (input scale; 1 means an input of x nA makes I jump by x nA)."""

    dynamics = DYNAMICS

    def __init__(self, tau_m=20.0, tau_syn=5.0, cm=1.0, v_rest=-65.0, v_thresh=-50.0, v_reset=-65.0,
                 tau_refrac=0.0, w_in=1.0, reset: str = "to_value", reset_delay: bool = False):
        self.tau_m = as_param("tau_m", tau_m, positive=True)
        self.tau_syn = as_param("tau_syn", tau_syn, positive=True)
        self.cm = as_param("cm", cm, positive=True)
        self.v_rest = as_param("v_rest", v_rest)
        self.v_thresh = as_param("v_thresh", v_thresh)
        self.v_reset = as_param("v_reset", v_reset)
        self.tau_refrac = as_param("tau_refrac", tau_refrac, nonnegative=True)
        self.w_in = as_param("w_in", w_in)
        self._set_reset(reset, reset_delay)
        self._discrete = None

    @classmethod
    def discrete(cls, alpha=0.9, beta=0.8, threshold=1.0, reset: str = "subtract",
                 reset_delay: bool = True) -> CubaLIF:
        """snnTorch's ``Synaptic``: ``I = alpha I + x``, ``v = beta v + I - S thr``."""
        cell = cls(v_rest=0.0, v_thresh=threshold, v_reset=0.0, reset=reset, reset_delay=reset_delay)
        cell._discrete = (as_param("alpha", alpha, unit_interval=True), as_param("beta", beta, unit_interval=True))
        return cell

    def kernel_params(self, dt: float) -> dict[str, np.ndarray]:
        dt = self._dt(dt)
        if self._discrete is not None:
            alpha, beta = self._discrete
            syn_gain, i_old, i_new = 1.0, 0.0, 1.0
        else:
            alpha, beta = coefficients.decay(self.tau_syn, dt), coefficients.decay(self.tau_m, dt)
            r = self.tau_m / self.cm
            p21 = coefficients.cuba_p21(self.tau_syn, self.tau_m, dt)
            syn_gain, i_old, i_new = alpha * self.w_in, 0.0, r * p21 / alpha
        return self._pack(syn_decay=alpha, mem_decay=beta, syn_gain=syn_gain, i_old=i_old, i_new=i_new,
                          v_leak=self.v_rest, threshold=self.v_thresh, v_reset=self.v_reset,
                          t_ref=np.round(self.tau_refrac / dt))

    def initial_state(self, n: int) -> dict[str, np.ndarray]:
        return self._state(n, i=0.0, v=0.0 if self._discrete is not None else self.v_rest, ref=0.0)
