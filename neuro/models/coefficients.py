"""Per-step coefficients of the linear neuron dynamics, computed in one place.

Every front end (the models, ``neuro.nn`` layers, NIR import and export, the chip and NEST emitters) turns time
constants into per-step factors with these functions, so one reading of ``tau`` holds everywhere. For
``tau dv/dt = (v_leak - v) + r I`` with the input held over a step of ``dt``::

    exact:  decay = exp(-dt/tau),   gain = r (1 - decay)
    euler:  decay = 1 - dt/tau,     gain = r dt / tau

and for the current-based synapse ``tau_syn dI/dt = -I`` feeding ``tau_mem dv/dt = -v + r I``, the exact
propagator's entry from ``I`` to ``v`` over one step, per unit ``r``::

    p21 = tau_syn / (tau_syn - tau_mem) (exp(-dt/tau_syn) - exp(-dt/tau_mem))   (dt/tau exp(-dt/tau) if equal)

A model's ``integration`` picks the form (:data:`FORMS`): ``"exact"`` and ``"euler"`` integrate time constants;
``"discrete"`` is the discrete-time form of snnTorch (``Leaky``, ``Synaptic``), whose per-step factors
(``beta``, ``alpha``, ALIF's ``adapt_decay``) are the parameters themselves. :func:`lif`, :func:`alif` and
:func:`cuba_lif` give every coefficient of the built-in models' updates for each form; ``neuro.sim``, NIR import
and export, the NEST and chip emitters read them from here.

Each formula is written once: the Euler gain is :func:`input_gain`'s ``r dt/tau`` everywhere (the models, NIR
import, the Loihi 2, Xylo and SpiNNaker emitters). The one second form kept is float32 arithmetic other tools use,
:func:`exact_decay_float32` and :func:`exact_lif_float32` (Sinabs' exact LIF, Rockpool's decays), which their
spikes are matched against bit for bit. The inverses (NIR export, the NEST and chip emitters) are here too:
:func:`euler_tau`, :func:`exact_tau`, :func:`exact_tau_of_euler`, :func:`exact_tau_of_rate`,
:func:`euler_resistance`, :func:`integrator_resistance`, :func:`exact_capacitance`.

Arguments are NumPy arrays (or floats); results are float64 arrays, rounded to float32 only where the kernels
take them (the float32 forms excepted). The functions the models' :meth:`~neuro.models.NeuronModel.coefficients`
use (:func:`lif`, :func:`alif`, :func:`cuba_lif` and what they call, :func:`integrator_gain`, :func:`steps`) also
take torch tensors: when any argument is a tensor, the same formula runs in torch (floating tensors keep their
dtype, the other arguments join them on their device), so ``neuro.nn`` differentiates the very arithmetic
``neuro.sim`` runs in NumPy.

Example:
    >>> from neuro.models import coefficients
    >>> float(coefficients.decay(10.0, 1.0, "euler"))
    0.9
    >>> round(float(coefficients.euler_tau(0.9, 1.0)), 6)
    10.0
    >>> import torch
    >>> tau = torch.tensor([10.0], dtype=torch.float64, requires_grad=True)
    >>> decay, gain = coefficients.lif(1.0, "exact", tau=tau, r=torch.ones(1, dtype=torch.float64))
    >>> decay.backward(); round(tau.grad.item(), 6)     # d exp(-dt/tau) / dtau = dt/tau^2 exp(-dt/tau)
    0.009048
"""

from __future__ import annotations

import sys

import numpy as np

INTEGRATIONS = ("exact", "euler")
"""Ways to integrate a time constant over a step."""
FORMS = INTEGRATIONS + ("discrete",)
"""A model's ``integration``: a time-constant integration, or the discrete-time form with per-step factors given."""


def _tensor_among(values):
    """The first torch tensor among ``values``, or None (torch is not imported for NumPy arguments)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        for v in values:
            if isinstance(v, torch.Tensor):
                return v
    return None


def _arrays(*values):
    """``(xp, arrays)``: ``values`` as float64 NumPy arrays with ``xp = numpy``, or, when any is a torch tensor,
    as tensors with ``xp = torch``: in the floating dtype the tensors promote to (float64 if none is floating),
    on the first tensor's device, floating tensors converted differentiably so gradients flow. One formula
    serves both."""
    like = _tensor_among(values)
    if like is None:
        return np, tuple(np.asarray(v, np.float64) for v in values)
    import torch

    dtype = None
    for v in values:
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            dtype = v.dtype if dtype is None else torch.promote_types(dtype, v.dtype)
    dtype = dtype or torch.float64
    return torch, tuple(v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point()
                        else torch.as_tensor(v if isinstance(v, torch.Tensor) else np.asarray(v, np.float64),
                                             dtype=dtype, device=like.device)
                        for v in values)


def _full(value: float, like):
    """``[value]``: a float64 NumPy array, or a tensor of ``like``'s dtype and device when it is a tensor."""
    if _tensor_among((like,)) is None:
        return np.full(1, value)
    xp, (t,) = _arrays(like)
    return xp.full((1,), value, dtype=t.dtype, device=t.device)


def euler_rate(tau, dt: float) -> np.ndarray:
    """``dt/tau``: the fraction of the state forward Euler removes per step (``1 - decay``; Loihi's decay)."""
    _, (tau,) = _arrays(tau)
    return dt / tau


def decay(tau, dt: float, integration: str = "exact") -> np.ndarray:
    """Membrane (or synaptic) decay per step: ``exp(-dt/tau)`` (exact) or ``1 - dt/tau`` (forward Euler)."""
    xp, (tau,) = _arrays(tau)
    if integration == "exact":
        return xp.exp(-dt / tau)
    if integration == "euler":
        return 1.0 - euler_rate(tau, dt)
    raise ValueError(f"integration must be one of {INTEGRATIONS}, got {integration!r}")


def exact_decay_float32(tau, dt: float) -> np.ndarray:
    """``exp(-dt/tau)`` as float32 torch computes it: ``torch.exp(-dt / tau)`` on a float32 tensor of ``tau``,
    a float32 array.

    Why a second exact decay: :func:`decay` computes in float64 and the kernels round once to float32; here
    ``tau``, the quotient and the exponential are each rounded to float32, which can differ in the last bit.
    Sinabs (whose exact LIF :func:`exact_lif_float32` reproduces for NIR import) and Rockpool's ``LIFTorch``
    (the Xylo target's float simulation) compute their decays this way, and their spikes are matched exactly.

    Example:
        >>> from neuro.models import coefficients
        >>> coefficients.exact_decay_float32([10.0], 1.0)
        array([0.9048374], dtype=float32)
    """
    import torch  # only these float32 paths need it

    tau32 = torch.as_tensor(np.asarray(tau, np.float32))
    return torch.exp(-float(dt) / tau32).numpy().astype(np.float32)


def exact_lif_float32(tau, r, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """``(decay, gain)`` of the exact LIF in float32 as Sinabs computes them: ``decay`` from
    :func:`exact_decay_float32`, ``gain = r (1 - decay)`` of that float32 decay (rounded to float32). NIR import
    of LIF nodes with ``integration="exact"`` uses it, so Sinabs files replay spike for spike.

    Example:
        >>> import numpy as np
        >>> from neuro.models import coefficients
        >>> decay, gain = coefficients.exact_lif_float32(np.array([5.0]), np.array([1.0]), 1.0)
        >>> bool(decay[0] + gain[0] == 1)
        True
    """
    d = exact_decay_float32(tau, dt)
    return d, _leak_gain(np.asarray(r, np.float64), d.astype(np.float64)).astype(np.float32)


def exact_capacitance(gain, tau, dt: float) -> np.ndarray:
    """The capacitance ``C`` whose exact LIF input gain per step, ``(tau/C) (1 - exp(-dt/tau))``, is ``gain``
    (``expm1`` keeps ``1 - exp(-dt/tau)`` accurate for ``dt << tau``); the NEST export writes a membrane given
    by its per-step ``(decay, gain)`` this way."""
    return tau * -np.expm1(-dt / tau) / gain


def input_gain(r, tau, dt: float, integration: str = "exact") -> np.ndarray:
    """Membrane change per step from a unit input held over the step: ``r (1 - decay)`` (exact) or
    ``r dt / tau`` (forward Euler, NIR's reading)."""
    _, (r, tau) = _arrays(r, tau)
    if integration == "euler":
        return r * dt / tau
    return _leak_gain(r, decay(tau, dt, integration))


def integrator_gain(r, dt: float):
    """``r dt``: the input gain per step of ``dv/dt = r I`` (IF, no leak; exact and Euler agree). The dtype of
    ``r`` is kept (NIR's float32 arrays stay float32; a tensor stays a tensor)."""
    return r * dt


def steps(time, dt: float):
    """``round(time / dt)``: a duration (a refractory period) in whole steps, halves to even (NumPy's and
    torch's ``round``). The rounding is flat, so no gradient reaches ``time`` through it."""
    xp, (time,) = _arrays(time)
    return xp.round(time / dt)


def integrator_resistance(gain, dt: float):
    """The ``r`` whose integrator gain ``r dt`` is ``gain`` (NIR export of IF); dtypes kept (float32 stays)."""
    return gain / dt


def euler_resistance(gain, tau, dt: float):
    """The ``r`` whose Euler input gain ``r dt/tau`` is ``gain`` (NIR export); dtypes kept (float32 stays)."""
    return gain * tau / dt


def _leak_gain(r, d) -> np.ndarray:
    return r * (1.0 - d)


def _factor(name: str, value) -> np.ndarray:
    if value is None:
        raise ValueError(f"integration='discrete' takes {name} (the factor per step)")
    return _arrays(value)[1][0]


def lif(dt: float, integration: str = "exact", *, tau=None, r=None, beta=None) -> tuple[np.ndarray, np.ndarray]:
    """``(decay, gain)`` of the LIF update ``v <- v_leak + decay (v - v_leak) + gain x``.

    exact: ``exp(-dt/tau), r (1 - decay)``; euler: ``1 - dt/tau, r dt/tau`` (:func:`input_gain`, the one Euler
    gain: NIR import, the chip emitters and the models agree); discrete: ``beta, 1`` (snnTorch's ``Leaky``).

    Example:
        >>> from neuro.models import coefficients
        >>> [float(c.squeeze()) for c in coefficients.lif(1.0, "discrete", beta=0.9)]
        [0.9, 1.0]
    """
    if integration == "discrete":
        beta = _factor("beta", beta)
        return beta, _full(1.0, beta)
    return decay(tau, dt, integration), input_gain(r, tau, dt, integration)


def alif(dt: float, integration: str = "exact", *, tau=None, r=None, tau_adapt=None, beta=None,
         adapt_decay=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(decay, gain, adapt_decay)`` of the ALIF update (:mod:`neuro.models.alif`): the membrane's ``(decay,
    gain)`` from :func:`lif`, and the adaptation's decay per step, :func:`decay` of ``tau_adapt`` (exact, euler)
    or ``adapt_decay`` as given (discrete).

    Example:
        >>> from neuro.models import coefficients
        >>> [float(c.squeeze()) for c in coefficients.alif(1.0, "euler", tau=10.0, r=1.0, tau_adapt=4.0)]
        [0.9, 0.1, 0.75]
    """
    d, g = lif(dt, integration, tau=tau, r=r, beta=beta)
    if integration == "discrete":
        return d, g, _factor("adapt_decay", adapt_decay)
    return d, g, decay(tau_adapt, dt, integration)


def cuba_lif(dt: float, integration: str = "exact", *, tau_syn=None, tau_mem=None, r=None, w_in=None, alpha=None,
             beta=None) -> dict[str, np.ndarray]:
    """The coefficients of the CubaLIF update (:mod:`neuro.models.cuba_lif`)::

        i_next = syn_decay i + syn_gain x;   v <- v_leak + mem_decay (v - v_leak) + i_old i + i_new i_next

    exact (input jump at the start of the step): ``alpha = exp(-dt/tau_syn), beta = exp(-dt/tau_mem)``,
    ``syn_gain = alpha w_in, i_old = 0, i_new = r p21 / alpha``; euler (NIR exporters' reading): ``1 - dt/tau``
    for both decays, ``syn_gain = w_in dt/tau_syn, i_old = 0, i_new = r dt/tau_mem``; discrete (snnTorch's
    ``Synaptic``): ``alpha, beta, 1, 0, 1``.

    Example:
        >>> from neuro.models import coefficients
        >>> c = coefficients.cuba_lif(1.0, "euler", tau_syn=2.0, tau_mem=4.0, r=1.0, w_in=1.0)
        >>> [float(c[k].squeeze()) for k in ("syn_decay", "mem_decay", "syn_gain", "i_old", "i_new")]
        [0.5, 0.75, 0.5, 0.0, 0.25]
    """
    if integration == "discrete":
        alpha, beta = _factor("alpha", alpha), _factor("beta", beta)
        return dict(syn_decay=alpha, mem_decay=beta, syn_gain=_full(1.0, alpha), i_old=_full(0.0, alpha),
                    i_new=_full(1.0, alpha))
    _, (w_in, r) = _arrays(w_in, r)
    a, b = decay(tau_syn, dt, integration), decay(tau_mem, dt, integration)
    if integration == "euler":
        syn_gain, i_new = input_gain(w_in, tau_syn, dt, "euler"), input_gain(r, tau_mem, dt, "euler")
    else:
        syn_gain, i_new = a * w_in, r * cuba_p21(tau_syn, tau_mem, dt) / a
    return dict(syn_decay=a, mem_decay=b, syn_gain=syn_gain, i_old=_full(0.0, a), i_new=i_new)


def euler_tau(decay_per_step, dt: float) -> np.ndarray:
    """The time constant whose forward-Euler decay ``1 - dt/tau`` is ``decay_per_step`` (inf for 1)."""
    d = np.asarray(decay_per_step, np.float64)
    with np.errstate(divide="ignore"):
        return np.where(d < 1, dt / (1.0 - d), np.inf)


def exact_tau(decay_per_step, dt: float) -> np.ndarray:
    """The time constant whose exact decay ``exp(-dt/tau)`` is ``decay_per_step`` (in (0, 1))."""
    return -dt / np.log(np.asarray(decay_per_step, np.float64))


def exact_tau_of_rate(rate, dt: float) -> np.ndarray:
    """The time constant whose exact decay ``exp(-dt/tau)`` is ``1 - rate``: ``-dt / log1p(-rate)`` (accurate
    for small rates, e.g. a chip's bit-shift decay ``rate = 2**-k``)."""
    return -dt / np.log1p(-np.asarray(rate, np.float64))


def exact_tau_of_euler(tau, dt: float) -> np.ndarray:
    """The time constant whose exact decay ``exp(-dt/tau')`` equals forward Euler's ``1 - dt/tau``."""
    return exact_tau(decay(tau, dt, "euler"), dt)


def cuba_p21(tau_syn, tau_mem, dt: float) -> np.ndarray:
    """Exact propagator entry from the synaptic current to the membrane over one step, per unit ``r``
    (see the module docstring); the limit ``dt/tau exp(-dt/tau)`` where the two time constants are equal."""
    xp, (tau_syn, tau_mem) = _arrays(tau_syn, tau_mem)
    alpha, beta = decay(tau_syn, dt), decay(tau_mem, dt)
    same = xp.isclose(tau_syn, tau_mem)  # numpy's and torch's defaults agree: rtol 1e-5, atol 1e-8
    # the inner where keeps the unused branch finite, so torch's gradient through the outer one is too
    return xp.where(same, dt / tau_mem * beta, tau_syn / xp.where(same, 1.0, tau_syn - tau_mem) * (alpha - beta))
