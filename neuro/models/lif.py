"""Leaky integrate-and-fire neuron (NIR ``LIF``; snnTorch ``Leaky``; PyNN ``IF_curr_exp`` without synapse).

Equations (continuous time, units as PyNN: ms, mV, nA, nF)::

    tau_m dv/dt = (v_rest - v) + R I(t),        R = tau_m / cm   [MOhm]
    spike when v > v_thresh (strict); then reset, and clamp v at v_reset for tau_refrac ms

Discretisation, exact for input held constant over a step (as NEST and Brian2 do)::

    v[t] = v_rest + decay (v[t-1] - v_rest) + gain I[t],   decay = exp(-dt/tau_m),  gain = R (1 - decay)

Resets: ``"subtract"`` (v -= v_thresh), ``"zero"``/``"to_value"`` (v = v_reset) or ``"none"``; applied in
the same step (``reset_delay=False``, NEST/Brian2) or at the next step from the previous step's spike
(``reset_delay=True``, snnTorch's default; see :mod:`neuro.models._spiking`).
The discrete-time form used by snnTorch (``v = beta v + x``) is :meth:`LIF.discrete`.

NIR: ``nir.LIF(tau=tau_m, r=R, v_leak=v_rest, v_threshold=v_thresh, v_reset=v_reset)``.

Example:
    >>> import numpy as np
    >>> from neuro.models import LIF
    >>> cell = LIF(tau_m=20.0, cm=1.0, v_rest=-65.0, v_thresh=-50.0, v_reset=-65.0, tau_refrac=2.0)
    >>> res = cell.simulate(np.full((1000, 1), 1.0, np.float32), dt=0.1)   # 1 nA for 100 ms
    >>> int(res.spikes.sum())
    3
"""

from __future__ import annotations

import numba
import numpy as np

from neuro.models import coefficients
from neuro.models._base import RESET_SUBTRACT, RESET_TO_VALUE, Dynamics
from neuro.models._neuron import NeuronModel, as_param
from neuro.models._spiking import ONE, ZERO, delayed_reset, fire, fire_vjp


@numba.njit(inline="always")
def step(v, ref, x, decay, gain, v_leak, threshold, v_reset, t_ref, reset_mode, reset_delay, dt):
    v_base, sub, ref, _ = delayed_reset(v, ref, threshold, v_reset, t_ref, reset_mode, reset_delay)
    v_int = v_leak + decay * (v_base - v_leak) + gain * x - sub
    return fire(v_int, ref, threshold, v_reset, t_ref, reset_mode, reset_delay)


def make_backward(surrogate):
    """Backward step of :func:`step` with ``surrogate(u, slope)`` as dS/dU."""

    @numba.njit(inline="always")
    def backward(v, ref, x, decay, gain, v_leak, threshold, v_reset, t_ref, reset_mode, reset_delay, dt,
                 slope, g_spike, g_v_new, g_ref_new):
        v_base, sub, ref1, fired = delayed_reset(v, ref, threshold, v_reset, t_ref, reset_mode, reset_delay)
        if ref1 > ZERO:  # clamped at v_reset: only v_reset receives gradient
            return ZERO, ZERO, ZERO, ZERO, ZERO, ZERO, ZERO, g_v_new, ZERO
        v_int = v_leak + decay * (v_base - v_leak) + gain * x - sub
        sgv = surrogate(v_int - threshold, slope)
        g_int, g_thr, g_vr = fire_vjp(sgv, v_int, threshold, v_reset, reset_mode, reset_delay, g_spike, g_v_new)
        g_v = g_int * decay
        if fired > ZERO:
            if reset_mode == RESET_SUBTRACT:
                g_thr -= g_int
            elif reset_mode == RESET_TO_VALUE:
                g_vr += g_v
                g_v = ZERO
        return (g_v, ZERO, g_int * gain, g_int * (v_base - v_leak), g_int * x, g_int * (ONE - decay),
                g_thr, g_vr, ZERO)

    return backward


DYNAMICS = Dynamics(
    name="lif",
    state=("v", "ref"),
    params=("decay", "gain", "v_leak", "threshold", "v_reset", "t_ref"),
    options=("reset_mode", "reset_delay"),
    step=step,
    make_backward=make_backward,
)


class LIF(NeuronModel):
    """Leaky integrate-and-fire neuron; see the module docstring for equations and units.

    Args:
        tau_m: membrane time constant [ms], > 0.
        cm: membrane capacitance [nF], > 0 (R = tau_m / cm).
        v_rest: resting (leak) potential [mV].
        v_thresh: firing threshold [mV].
        v_reset: reset potential [mV].
        tau_refrac: refractory period [ms], >= 0 (rounded to whole steps).
        reset: ``"to_value"`` (alias ``"zero"``), ``"subtract"`` or ``"none"``.
        reset_delay: reset at the next step from the previous spike (snnTorch) instead of the same step.
        integration: ``"exact"`` (default) or ``"euler"`` (decay = 1 - dt/tau_m, as NIR exporters assume).

    Every parameter may be a scalar or one value per neuron.
    """

    dynamics = DYNAMICS

    def __init__(self, tau_m=20.0, cm=1.0, v_rest=-65.0, v_thresh=-50.0, v_reset=-65.0, tau_refrac=0.0,
                 reset: str = "to_value", reset_delay: bool = False, integration: str = "exact"):
        self.tau_m = as_param("tau_m", tau_m, positive=True)
        self.cm = as_param("cm", cm, positive=True)
        self.v_rest = as_param("v_rest", v_rest)
        self.v_thresh = as_param("v_thresh", v_thresh)
        self.v_reset = as_param("v_reset", v_reset)
        self.tau_refrac = as_param("tau_refrac", tau_refrac, nonnegative=True)
        self._set_reset(reset, reset_delay)
        self.integration = self._check_integration(integration)
        self._decay_override = None

    @classmethod
    def discrete(cls, beta=0.9, threshold=1.0, reset: str = "subtract", reset_delay: bool = True) -> LIF:
        """snnTorch's ``Leaky`` in time steps: ``v[t] = beta v[t-1] + x[t]``, threshold in input units.

        Example:
            >>> from neuro.models import LIF
            >>> cell = LIF.discrete(beta=0.9, threshold=1.0)
            >>> cell.kernel_params(dt=1.0)["decay"].item()
            0.8999999761581421
        """
        beta_arr = as_param("beta", beta, unit_interval=True)
        cell = cls(tau_m=1.0, cm=1.0, v_rest=0.0, v_thresh=threshold, v_reset=0.0, reset=reset,
                   reset_delay=reset_delay)
        cell._decay_override = beta_arr
        return cell

    def kernel_params(self, dt: float) -> dict[str, np.ndarray]:
        dt = self._dt(dt)
        if self._decay_override is not None:
            decay, gain = self._decay_override, np.ones(1)
        else:
            decay = coefficients.decay(self.tau_m, dt, self.integration)
            gain = (self.tau_m / self.cm) * (1.0 - decay)
        return self._pack(decay=decay, gain=gain, v_leak=self.v_rest, threshold=self.v_thresh,
                          v_reset=self.v_reset, t_ref=np.round(self.tau_refrac / dt))

    def initial_state(self, n: int) -> dict[str, np.ndarray]:
        return self._state(n, v=self.v_rest if self._decay_override is None else 0.0, ref=0.0)

    def synaptic_coupling(self, tau_syn: float, dt: float, params: dict, n: int) -> np.ndarray | None:
        """Factor from a synaptic current to this model's input ``x`` for one step (``neuro.sim``): the exact
        propagator of an exponential current (time constant ``tau_syn`` ms, in nA) into the membrane,
        ``r p21 / gain`` (see :func:`neuro.models.coefficients.cuba_p21`), or ``1 / gain`` for a delta synapse
        (``tau_syn = 0``, the weight in mV lands on the membrane in this step). None for the discrete form."""
        if self._decay_override is not None:
            return None
        gain = np.broadcast_to(params["gain"], (n,)).astype(np.float64)
        if tau_syn == 0:
            return (1.0 / gain).astype(np.float32)
        tau_m = np.broadcast_to(self.tau_m, (n,))
        r = np.broadcast_to(self.tau_m / self.cm, (n,))
        return (r * coefficients.cuba_p21(tau_syn, tau_m, dt) / gain).astype(np.float32)
