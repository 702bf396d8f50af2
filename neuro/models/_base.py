"""What every neuron model provides to the kernel factory, and the shared public-class behaviour.

A model's dynamics are written once, as numba scalar functions over one neuron for one time step:

* ``step(*state, x, *params, *options) -> (*new_state, spike)``
* for trainable models, ``make_backward(surrogate)`` returning
  ``backward(*state, x, *params, *options, slope, g_spike, *g_new_state) -> (*g_state, g_x, *g_params)``:
  the vector-Jacobian product of one step, recomputing the step from the state that entered it.

``state`` and ``params`` are float32 per neuron; ``options`` are int64 flags shared by a population
(reset mode, reset timing). Per-step coefficients (decays, gains) are computed from physical
parameters and ``dt`` in NumPy by the public model class, so the compiled step stays free of ``exp``.
:mod:`neuro.kernels` turns a :class:`Dynamics` into CPU and CUDA multi-step kernels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

RESET_SUBTRACT = 0
RESET_TO_VALUE = 1
RESET_NONE = 2
RESET_MODES = {"subtract": RESET_SUBTRACT, "zero": RESET_TO_VALUE, "to_value": RESET_TO_VALUE, "none": RESET_NONE}


@dataclass(frozen=True, eq=False)  # hashed by identity: one kernel set per model
class Dynamics:
    """The compiled-core description of a neuron model.

    Attributes:
        name: model name, used in kernel file names.
        state: names of the per-neuron state variables, in the order ``step`` takes and returns them.
        params: names of the per-neuron float32 parameters, in ``step`` order.
        options: names of the int64 flags shared by all neurons.
        step: numba-jitted scalar step (see module docstring).
        make_backward: ``surrogate -> jitted backward step`` or ``None`` for models not trained by BPTT.
        membrane: name of the state variable a user reads as "the membrane potential".
    """

    name: str
    state: tuple[str, ...]
    params: tuple[str, ...]
    options: tuple[str, ...]
    step: Callable
    make_backward: Callable | None = None
    membrane: str = "v"
    default_options: Mapping[str, int] = field(default_factory=dict)

    @property
    def trainable(self) -> bool:
        return self.make_backward is not None


def check_positive(name: str, value, *, allow_zero: bool = False) -> np.ndarray:
    """Return ``value`` as float64 array after checking it is finite and > 0 (or >= 0)."""
    arr = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    bad = arr < 0 if allow_zero else arr <= 0
    if np.any(bad):
        rel = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {rel}, got {value!r}")
    return arr


def check_finite(name: str, value) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return arr


def check_dt(dt) -> float:
    if not isinstance(dt, int | float | np.floating | np.integer) or not math.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt must be a finite number > 0 (in ms), got {dt!r}")
    return float(dt)


def reset_mode_code(reset: str) -> int:
    try:
        return RESET_MODES[reset]
    except KeyError:
        raise ValueError(f"reset must be one of {sorted(RESET_MODES)}, got {reset!r}") from None
