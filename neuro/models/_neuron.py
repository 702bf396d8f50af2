"""Public base class of the neuron models: parameters in physical units, validated once, turned into
per-step kernel coefficients for a given ``dt``.

One parameter interface serves both front ends: ``model.parameters`` maps the physical parameters' names to the
model's values, and ``model.coefficients(params, dt, torch_module=None)`` turns any such mapping into the
kernels' per-step coefficients, in NumPy for NumPy values and in torch for tensors (the same arithmetic,
:mod:`neuro.models.coefficients`). ``kernel_params(dt)`` is that method on the model's own values (``neuro.sim``);
``neuro.nn.Neuron`` keeps the parameters as torch tensors and calls it every forward pass, so gradients reach
the physical parameters.

Example:
    >>> import torch
    >>> from neuro.models import LIF
    >>> cell = LIF(tau_m=10.0, cm=2.0)
    >>> list(cell.parameters)
    ['tau_m', 'cm', 'v_rest', 'v_thresh', 'v_reset', 'tau_refrac']
    >>> params = {k: torch.tensor(v, dtype=torch.float64) for k, v in cell.parameters.items()}
    >>> params["tau_m"].requires_grad_()
    tensor([10.], dtype=torch.float64, requires_grad=True)
    >>> c = cell.coefficients(params, dt=1.0)
    >>> c["decay"].backward()                            # d exp(-dt/tau_m) / d tau_m
    >>> round(c["decay"].item(), 6), round(params["tau_m"].grad.item(), 6)   # exp(-0.1), 0.01 exp(-0.1)
    (0.904837, 0.009048)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from neuro import _checks
from neuro.models import coefficients
from neuro.models._base import Dynamics, reset_mode_code


def check_param(name: str, value, *, positive: bool = False, nonnegative: bool = False,
                unit_interval: bool = False, per_neuron: bool = True) -> np.ndarray:
    """The one validation of a neuron parameter, for both front ends: ``neuro.models`` and ``neuro.sim`` keep
    the float64 array it returns (:func:`as_param`), ``neuro.nn`` makes it a float32 tensor
    (:func:`neuro.nn.base.as_parameter`).

    Values must be real numbers (not strings, bools or complex), finite in float32 (the kernels' dtype), and
    ``> 0`` / ``>= 0`` / in ``[0, 1]`` when asked; the errors name ``name``. With ``per_neuron`` the value is a
    scalar or one value per neuron (1-D, not empty); otherwise any shape (a tensor a layer broadcasts over its
    neurons, e.g. ``[C, 1, 1]``).

    Example:
        >>> from neuro.models._neuron import check_param
        >>> check_param("beta", 1.5, unit_interval=True)
        Traceback (most recent call last):
        ...
        ValueError: beta must lie in [0, 1], got 1.5
    """
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError, RuntimeError):
        raw = np.asarray(None)
    if raw.dtype == bool or raw.dtype.kind not in "iuf":
        what = "a 1-D array" if per_neuron else "a tensor"
        raise TypeError(f"{name} must be a number or {what} of numbers, got {_checks._short(value)}")
    if per_neuron:
        if raw.ndim > 1:
            raise ValueError(f"{name} must be a scalar or 1-D (one value per neuron), got shape {raw.shape}")
        if raw.size == 0:
            raise ValueError(f"{name} must not be empty")
    # the caller's value (not `raw`) so the error shows what was given
    return _checks.check_float_array(name, value, positive=positive, nonnegative=nonnegative,
                                     unit_interval=unit_interval)


def as_param(name: str, value, *, positive: bool = False, nonnegative: bool = False,
             unit_interval: bool = False) -> np.ndarray:
    """A scalar or per-neuron model parameter checked by :func:`check_param`, as a float64 1-D array (length 1
    for scalars)."""
    return check_param(name, value, positive=positive, nonnegative=nonnegative,
                       unit_interval=unit_interval).reshape(-1)


@dataclass
class SimulationResult:
    """Output of :meth:`NeuronModel.simulate`: ``spikes`` [T, N] float32 (0/1) and ``states`` name -> [T, N]
    (each state after its step), plus the final state."""

    spikes: np.ndarray
    states: dict[str, np.ndarray]
    final_state: dict[str, np.ndarray]

    @property
    def v(self) -> np.ndarray:
        return self.states["v"]


class _Parameters:
    """``model.parameters``: name -> the model's float64 value (1-D) of each physical parameter its
    :meth:`NeuronModel.coefficients` reads. A non-data descriptor, so a model that keeps its own dict in the
    attribute (:class:`~neuro.models.Equations`) overrides it."""

    def __get__(self, model, owner=None):
        if model is None:
            return self
        return {k: getattr(model, k) for k in model._parameter_names()}


class NeuronModel:
    """Base of :class:`~neuro.models.LIF` and friends. Subclasses set ``dynamics`` and either implement
    :meth:`_parameter_names`, :meth:`coefficients` and :meth:`initial_values` (the built-in models; then
    :meth:`kernel_params`, :meth:`initial_state` and ``neuro.nn.Neuron`` follow) or override
    :meth:`kernel_params` and :meth:`initial_state` themselves."""

    dynamics: ClassVar[Dynamics]
    reset_mode: int = 0
    reset_delay: int = 0
    parameters = _Parameters()
    #: physical parameters :meth:`coefficients` rounds to whole steps (a refractory period): no gradient
    #: reaches them, so ``neuro.nn.Neuron`` refuses to learn them
    stepped_parameters: ClassVar[tuple[str, ...]] = ()

    # -- helpers for subclasses -------------------------------------------------------------------
    def _set_reset(self, reset: str, reset_delay: bool) -> None:
        self.reset = reset
        self.reset_mode = reset_mode_code(reset)
        self.reset_delay = int(_checks.check_bool("reset_delay", reset_delay))

    def _set_integration(self, integration: str, **factors) -> None:
        """Set ``integration`` (one of :data:`neuro.models.coefficients.FORMS`) and the per-step ``factors``
        (``beta=...``) of the discrete form: given (each in [0, 1]) with ``"discrete"``, None otherwise."""
        if not isinstance(integration, str) or integration not in coefficients.FORMS:
            raise ValueError(f"integration must be 'exact' or 'euler' (time constants), or 'discrete' (per-step "
                             f"factors {', '.join(factors)}), got {integration!r}")
        self.integration = integration
        for name, value in factors.items():
            if integration == "discrete":
                if value is None:
                    raise ValueError(f"integration='discrete' takes {name}, the factor per step")
                value = as_param(name, value, unit_interval=True)
            elif value is not None:
                raise ValueError(f"{name} is the per-step factor of integration='discrete'; integration="
                                 f"{integration!r} takes time constants")
            setattr(self, name, value)

    @staticmethod
    def _dt(dt) -> float:
        return _checks.check_dt(dt)

    def _pack(self, **params) -> dict[str, np.ndarray]:
        names = self.dynamics.params
        assert set(params) == set(names), (sorted(params), names)
        return {k: np.asarray(params[k], dtype=np.float32).reshape(-1) for k in names}

    def _state(self, n: int, /, **values) -> dict[str, np.ndarray]:  # "/": a state may be called n
        out = {}
        for k in self.dynamics.state:
            val = values.get(k, 0.0)
            val = as_param(f"initial {k}", val) if np.size(val) else np.zeros(0)
            if val.size not in (1, n):
                raise ValueError(f"initial {k} has {val.size} values for {n} neurons")
            out[k] = np.array(np.broadcast_to(val, (n,)), dtype=np.float32)
        return out

    def _parameter_names(self) -> tuple[str, ...]:
        """The names in :attr:`parameters` (those of the model's ``integration`` form)."""
        raise NotImplementedError(f"{type(self).__name__} does not expose its physical parameters")

    def _given(self, params: dict, dt, torch_module) -> tuple[dict, float]:
        """``params`` checked to name exactly this model's parameters, as tensors when ``torch_module`` is
        given; ``dt`` checked."""
        if not isinstance(params, dict):
            raise TypeError(f"params must be a dict of parameter name -> value, got {type(params).__name__}")
        names = self._parameter_names()
        missing = [k for k in names if k not in params]
        unknown = [k for k in params if k not in names]
        if missing or unknown:
            raise ValueError(f"params of {type(self).__name__} (integration={getattr(self, 'integration', None)!r}) "
                             f"must name {', '.join(names)}; missing {missing}, unknown {unknown}")
        if torch_module is not None:
            params = {k: v if isinstance(v, torch_module.Tensor)
                      else torch_module.as_tensor(np.asarray(v, np.float64)) for k, v in params.items()}
        return params, self._dt(dt)

    # -- public API -----------------------------------------------------------------------------
    def coefficients(self, params: dict, dt: float, torch_module=None) -> dict:
        """The kernels' per-step coefficients (the names of ``dynamics.params``) from the physical parameters
        ``params`` (names as :attr:`parameters`), in float64 before the kernels round them to float32.

        NumPy arrays give NumPy arrays; torch tensors give tensors, differentiable (the same formulas,
        :mod:`neuro.models.coefficients`). With ``torch_module`` (``torch``) NumPy values are made tensors first,
        as :meth:`neuro.models.Equations.coefficients` takes it."""
        raise NotImplementedError(f"{type(self).__name__} does not compute coefficients from given parameters")

    def kernel_params(self, dt: float) -> dict[str, np.ndarray]:
        """Per-step float32 coefficients for the kernels, each of length 1 or N: :meth:`coefficients` of the
        model's own :attr:`parameters`."""
        return self._pack(**self.coefficients(self.parameters, dt))

    def initial_values(self, params: dict | None = None) -> dict:
        """Each state variable's resting value (scalar or one per neuron) from ``params`` (default: the model's
        :attr:`parameters`; a tensor where a state rests at a parameter, e.g. ``v`` at a learned ``v_rest``)."""
        raise NotImplementedError

    def nir_node(self, parameters: dict | None = None, time_scale: float = 1.0, shape: tuple | None = None):
        """NIR export of a ``neuro.nn.Neuron`` over this model: not written for the built-in models (their NIR
        reading of ``integration``, ``tau_refrac`` and the discrete forms is not decided), so this raises the
        :class:`~neuro.models.equations.EquationError` NIR export reports as its ``NIRExportError``, naming
        the layers that export (:class:`~neuro.models.Equations` overrides it with its NIR node)."""
        from neuro.models.equations import EquationError

        raise EquationError(f"a neuro.nn.Neuron over a built-in {type(self).__name__} has no NIR export yet; "
                            "the neuro.nn.LIF, CubaLIF and IF layers export to NIR")

    def kernel_options(self) -> dict[str, int]:
        """Integer flags shared by the population (reset mode and timing)."""
        return {k: int(getattr(self, k)) for k in self.dynamics.options}

    def initial_state(self, n: int) -> dict[str, np.ndarray]:
        """The resting state of ``n`` neurons (:meth:`initial_values` as float32 arrays of length ``n``)."""
        return self._state(n, **self.initial_values())

    def simulate(self, current, dt: float, initial_state: dict | None = None) -> SimulationResult:
        """Run ``N`` independent neurons driven by ``current`` [T, N] for T steps of ``dt`` ms.

        Runs the compiled multi-step CPU kernel; returns spikes and every state variable per step.
        """
        from neuro.kernels import forward

        x = np.asarray(current)
        if x.ndim != 2:
            raise ValueError(f"current must have shape [T, N] (time-major), got shape {x.shape}")
        if x.dtype == bool or x.dtype.kind not in "iuf":
            raise TypeError(f"current must be a float array, got dtype {x.dtype}")
        with np.errstate(over="ignore"):
            x = x.astype(np.float32)  # finiteness is checked in float32: 1e39 overflows to inf here
        if not np.all(np.isfinite(x)):
            raise ValueError("current contains NaN or infinite values (in float32, |x| <= 3.4e38)")
        dt = _checks.check_dt(dt)
        n = x.shape[1]
        state = self.initial_state(n)
        if initial_state is not None:
            if not isinstance(initial_state, dict):
                raise TypeError(f"initial_state must be a dict of state name -> values, got {initial_state!r}")
            for k, val in initial_state.items():
                if k not in state:
                    raise ValueError(f"unknown state variable {k!r}; this model has {self.dynamics.state}")
                state[k] = self._state(n, **{k: val})[k]
        params = self.kernel_params(dt)
        for k, p in params.items():
            if p.size not in (1, n):
                raise ValueError(f"parameter {k} has {p.size} values but current has {n} neurons")
        spikes, rec = forward(self.dynamics, x, state, params, self.kernel_options(),
                              dt=dt, record=True)
        states = {k: rec[:, i, :] for i, k in enumerate(self.dynamics.state)}
        return SimulationResult(spikes=spikes, states=states, final_state=state)

    def __repr__(self) -> str:
        # None: a parameter of another form (LIF's beta unless integration="discrete")
        fields = {k: v for k, v in vars(self).items() if not k.startswith("_") and v is not None}
        body = ", ".join(f"{k}={v.tolist() if isinstance(v, np.ndarray) and v.size > 1 else v}"
                         for k, v in fields.items())
        return f"{type(self).__name__}({body})"
