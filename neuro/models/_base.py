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

from collections.abc import Callable
from dataclasses import dataclass

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
        inert: ``(state index, parameter index)`` pairs: the state stays exactly 0, and passes on no gradient,
            while it starts at 0 and the parameter is 0 (a refractory counter with no refractory period).
            Large kernel calls drop such a state from their loops (:func:`neuro.kernels.forward_lean`).
    """

    name: str
    state: tuple[str, ...]
    params: tuple[str, ...]
    options: tuple[str, ...]
    step: Callable
    make_backward: Callable | None = None
    membrane: str = "v"
    inert: tuple[tuple[int, int], ...] = ()

    @property
    def trainable(self) -> bool:
        return self.make_backward is not None


OPTION_VALUES = {"reset_mode": {"subtract": RESET_SUBTRACT, "zero": RESET_TO_VALUE, "to_value": RESET_TO_VALUE,
                               "none": RESET_NONE},
                "reset_delay": {"same_step": 0, "next_step": 1}}
"""The enum of every kernel option: names a user may give, and the int code the kernels read."""


def option_code(name: str, value) -> int:
    """The int code of kernel option ``name`` given as its name (``"subtract"``), a bool (``reset_delay``) or
    an int that is one of the known codes; anything else is refused by name."""
    table = OPTION_VALUES.get(name)
    if isinstance(value, str):
        if table is None or value not in table:
            raise ValueError(f"option {name} must be one of {sorted(table or {})}, got {value!r}")
        return table[value]
    if isinstance(value, bool | np.bool_) and name == "reset_delay":
        return int(value)
    try:
        code = int(value)
    except (TypeError, ValueError):
        raise TypeError(f"option {name} must be a name or an int code, got {value!r}") from None
    if code != value or (table is not None and code not in set(table.values())):
        allowed = sorted(set(table.values())) if table is not None else "an integer"
        raise ValueError(f"option {name} must be one of {allowed} (or a name: {sorted(table or {})}), got {value!r}")
    return code


def reset_mode_code(reset: str) -> int:
    if not isinstance(reset, str):
        raise TypeError(f"reset must be one of {sorted(RESET_MODES)} (a string), got {reset!r}")
    try:
        return RESET_MODES[reset]
    except KeyError:
        raise ValueError(f"reset must be one of {sorted(RESET_MODES)}, got {reset!r}") from None
