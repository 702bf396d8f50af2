"""Public base class of the neuron models: parameters in physical units, validated once, turned into
per-step kernel coefficients for a given ``dt``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from neuro.models._base import Dynamics, check_dt, reset_mode_code


def as_param(name: str, value, *, positive: bool = False, nonnegative: bool = False,
             unit_interval: bool = False) -> np.ndarray:
    """Validate a scalar or per-neuron parameter; returns a float64 1-D array (length 1 for scalars)."""
    try:
        arr = np.array(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number or a 1-D array of numbers, got {value!r}") from None
    if np.ndim(value) > 1:
        raise ValueError(f"{name} must be a scalar or 1-D (one value per neuron), got shape {np.shape(value)}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0, got {value!r}")
    if nonnegative and np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    if unit_interval and np.any((arr < 0) | (arr > 1)):
        raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
    return arr


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


class NeuronModel:
    """Base of :class:`~neuro.models.LIF` and friends. Subclasses set ``dynamics`` and implement
    :meth:`kernel_params` and :meth:`initial_state`."""

    dynamics: ClassVar[Dynamics]
    reset_mode: int = 0
    reset_delay: int = 0

    # -- helpers for subclasses -------------------------------------------------------------------
    def _set_reset(self, reset: str, reset_delay: bool) -> None:
        self.reset = reset
        self.reset_mode = reset_mode_code(reset)
        self.reset_delay = int(bool(reset_delay))

    @staticmethod
    def _check_integration(integration: str) -> str:
        if integration not in ("exact", "euler"):
            raise ValueError(f"integration must be 'exact' or 'euler', got {integration!r}")
        return integration

    @staticmethod
    def _dt(dt) -> float:
        return check_dt(dt)

    def _pack(self, **params) -> dict[str, np.ndarray]:
        names = self.dynamics.params
        assert set(params) == set(names), (sorted(params), names)
        return {k: np.asarray(params[k], dtype=np.float32).reshape(-1) for k in names}

    def _state(self, n: int, **values) -> dict[str, np.ndarray]:
        out = {}
        for k in self.dynamics.state:
            val = np.asarray(values.get(k, 0.0), dtype=np.float32).reshape(-1)
            if val.size not in (1, n):
                raise ValueError(f"initial {k} has {val.size} values for {n} neurons")
            out[k] = np.array(np.broadcast_to(val, (n,)), dtype=np.float32)
        return out

    # -- public API -----------------------------------------------------------------------------
    def kernel_params(self, dt: float) -> dict[str, np.ndarray]:
        """Per-step float32 coefficients for the kernels, each of length 1 or N."""
        raise NotImplementedError

    def kernel_options(self) -> dict[str, int]:
        """Integer flags shared by the population (reset mode and timing)."""
        return {k: int(getattr(self, k)) for k in self.dynamics.options}

    def initial_state(self, n: int) -> dict[str, np.ndarray]:
        """The resting state of ``n`` neurons."""
        raise NotImplementedError

    def simulate(self, current, dt: float, initial_state: dict | None = None) -> SimulationResult:
        """Run ``N`` independent neurons driven by ``current`` [T, N] for T steps of ``dt`` ms.

        Runs the compiled multi-step CPU kernel; returns spikes and every state variable per step.
        """
        from neuro.kernels import forward

        x = np.asarray(current)
        if x.ndim != 2:
            raise ValueError(f"current must have shape [T, N] (time-major), got shape {x.shape}")
        if not np.issubdtype(x.dtype, np.floating) and not np.issubdtype(x.dtype, np.integer):
            raise TypeError(f"current must be a float array, got dtype {x.dtype}")
        if not np.all(np.isfinite(x)):
            raise ValueError("current contains NaN or infinite values")
        n = x.shape[1]
        state = self.initial_state(n)
        if initial_state is not None:
            for k, val in initial_state.items():
                if k not in state:
                    raise ValueError(f"unknown state variable {k!r}; this model has {self.dynamics.state}")
                state[k] = self._state(n, **{k: val})[k]
        params = self.kernel_params(dt)
        for k, p in params.items():
            if p.size not in (1, n):
                raise ValueError(f"parameter {k} has {p.size} values but current has {n} neurons")
        spikes, rec = forward(self.dynamics, x.astype(np.float32), state, params, self.kernel_options(),
                              dt=dt, record=True)
        states = {k: rec[:, i, :] for i, k in enumerate(self.dynamics.state)}
        return SimulationResult(spikes=spikes, states=states, final_state=state)

    def __repr__(self) -> str:
        fields = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        body = ", ".join(f"{k}={v.tolist() if isinstance(v, np.ndarray) and v.size > 1 else v}"
                         for k, v in fields.items())
        return f"{type(self).__name__}({body})"
