"""Scalar pieces shared by every threshold-and-reset model (LIF, CubaLIF, ALIF, IF).

Written once so the reset semantics are the same everywhere:

* ``reset_delay = 1`` (snnTorch's default): the spike of step t-1 resets the membrane at step t,
  before integration; subtraction is applied after the decay, reset-to-value before it
  (``v <- beta (1 - s) v + x`` for snnTorch's ``"zero"``). The reset term carries no gradient.
* ``reset_delay = 0``: the neuron spikes and resets within the same step (NEST, Brian2, Norse); the
  surrogate gradient flows through the reset.
* Refractory: after a reset the membrane is clamped at ``v_reset`` for ``t_ref`` steps.
"""

import numba
import numpy as np

from neuro.models._base import RESET_SUBTRACT, RESET_TO_VALUE

ZERO = np.float32(0.0)
ONE = np.float32(1.0)


@numba.njit(inline="always")
def delayed_reset(v, ref, threshold, v_reset, t_ref, reset_mode, reset_delay):
    """Apply the previous step's reset. Returns ``(v_base, subtract, ref, fired_prev)``."""
    if reset_delay == 0:
        return v, ZERO, ref, ZERO
    fired = ONE if v > threshold else ZERO
    sub = ZERO
    if fired > ZERO:
        if reset_mode == RESET_SUBTRACT:
            sub = threshold
        elif reset_mode == RESET_TO_VALUE:
            v = v_reset
        if t_ref > ZERO:
            ref = t_ref
    return v, sub, ref, fired


@numba.njit(inline="always")
def fire(v_int, ref, threshold, v_reset, t_ref, reset_mode, reset_delay):
    """Threshold test (strict ``v > threshold``), refractory clamp and same-step reset.

    Returns ``(v_new, ref_new, spike)``. ``v_int`` is the integrated (pre-reset) membrane.
    """
    if ref > ZERO:
        return v_reset, ref - ONE, ZERO
    spike = ONE if v_int > threshold else ZERO
    v_new = v_int
    if reset_delay == 0 and spike > ZERO:
        if reset_mode == RESET_SUBTRACT:
            v_new = v_int - threshold
        elif reset_mode == RESET_TO_VALUE:
            v_new = v_reset
        if t_ref > ZERO:
            ref = t_ref
    return v_new, ref, spike


@numba.njit(inline="always")
def fire_vjp(sg_value, v_int, threshold, v_reset, reset_mode, reset_delay, g_spike, g_v_new):
    """Vector-Jacobian product of :func:`fire` outside the refractory clamp.

    ``sg_value`` is the surrogate derivative dS/dU at ``U = v_int - threshold``.
    Returns ``(g_v_int, g_threshold, g_v_reset)``.
    """
    g_int = g_spike * sg_value
    g_thr = -g_int
    g_vr = ZERO
    if reset_delay == 0:
        spike = ONE if v_int > threshold else ZERO
        if reset_mode == RESET_SUBTRACT:
            # v_new = v_int - S(v_int - thr) * thr
            g_int += g_v_new * (ONE - threshold * sg_value)
            g_thr += g_v_new * (threshold * sg_value - spike)
        elif reset_mode == RESET_TO_VALUE:
            # v_new = (1 - S) v_int + S v_reset
            g_int += g_v_new * ((ONE - spike) + (v_reset - v_int) * sg_value)
            g_thr -= g_v_new * (v_reset - v_int) * sg_value
            g_vr += g_v_new * spike
        else:
            g_int += g_v_new
    else:
        g_int += g_v_new
    return g_int, g_thr, g_vr
