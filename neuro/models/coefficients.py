"""Per-step coefficients of the linear neuron dynamics, computed in one place.

Every front end (the models, ``neuro.nn`` layers, NIR import and export, the chip and NEST emitters) turns time
constants into per-step factors with these functions, so one reading of ``tau`` holds everywhere. For
``tau dv/dt = (v_leak - v) + r I`` with the input held over a step of ``dt``::

    exact:  decay = exp(-dt/tau),   gain = r (1 - decay)
    euler:  decay = 1 - dt/tau,     gain = r dt / tau

and for the current-based synapse ``tau_syn dI/dt = -I`` feeding ``tau_mem dv/dt = -v + r I``, the exact
propagator's entry from ``I`` to ``v`` over one step, per unit ``r``::

    p21 = tau_syn / (tau_syn - tau_mem) (exp(-dt/tau_syn) - exp(-dt/tau_mem))   (dt/tau exp(-dt/tau) if equal)

Arguments are NumPy arrays (or floats); results are float64 arrays, rounded to float32 only where the kernels
take them.

Example:
    >>> from neuro.models import coefficients
    >>> float(coefficients.decay(10.0, 1.0, "euler"))
    0.9
    >>> round(float(coefficients.euler_tau(0.9, 1.0)), 6)
    10.0
"""

from __future__ import annotations

import numpy as np

INTEGRATIONS = ("exact", "euler")


def decay(tau, dt: float, integration: str = "exact") -> np.ndarray:
    """Membrane (or synaptic) decay per step: ``exp(-dt/tau)`` (exact) or ``1 - dt/tau`` (forward Euler)."""
    tau = np.asarray(tau, np.float64)
    if integration == "exact":
        return np.exp(-dt / tau)
    if integration == "euler":
        return 1.0 - dt / tau
    raise ValueError(f"integration must be one of {INTEGRATIONS}, got {integration!r}")


def input_gain(r, tau, dt: float, integration: str = "exact") -> np.ndarray:
    """Membrane change per step from a unit input held over the step: ``r (1 - decay)`` or ``r dt/tau``."""
    r, tau = np.asarray(r, np.float64), np.asarray(tau, np.float64)
    if integration == "euler":
        return r * (dt / tau)
    return r * (1.0 - decay(tau, dt, integration))


def euler_tau(decay_per_step, dt: float) -> np.ndarray:
    """The time constant whose forward-Euler decay ``1 - dt/tau`` is ``decay_per_step`` (inf for 1)."""
    d = np.asarray(decay_per_step, np.float64)
    with np.errstate(divide="ignore"):
        return np.where(d < 1, dt / (1.0 - d), np.inf)


def exact_tau(decay_per_step, dt: float) -> np.ndarray:
    """The time constant whose exact decay ``exp(-dt/tau)`` is ``decay_per_step`` (in (0, 1))."""
    return -dt / np.log(np.asarray(decay_per_step, np.float64))


def exact_tau_of_euler(tau, dt: float) -> np.ndarray:
    """The time constant whose exact decay ``exp(-dt/tau')`` equals forward Euler's ``1 - dt/tau``."""
    return exact_tau(decay(tau, dt, "euler"), dt)


def cuba_p21(tau_syn, tau_mem, dt: float) -> np.ndarray:
    """Exact propagator entry from the synaptic current to the membrane over one step, per unit ``r``
    (see the module docstring); the limit ``dt/tau exp(-dt/tau)`` where the two time constants are equal."""
    tau_syn, tau_mem = np.asarray(tau_syn, np.float64), np.asarray(tau_mem, np.float64)
    alpha, beta = decay(tau_syn, dt), decay(tau_mem, dt)
    same = np.isclose(tau_syn, tau_mem)
    return np.where(same, dt / tau_mem * beta, tau_syn / np.where(same, 1.0, tau_syn - tau_mem) * (alpha - beta))
