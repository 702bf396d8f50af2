"""Surrogate derivatives dS/dU of the spike nonlinearity, ``U = v - threshold``.

Each surrogate is a numba scalar function ``grad(u, slope)`` plus its slope; the kernels call it in the
backward step. Defaults match snnTorch's, so a snnTorch user gets the same gradients.

==================  ========================================  ================
name                dS/dU                                     default slope
==================  ========================================  ================
atan                (a/2) / (1 + (pi a U / 2)^2)              a = 2
fast_sigmoid        1 / (1 + k |U|)^2                         k = 25
sigmoid             k s(kU) (1 - s(kU))                       k = 25
triangle            a max(0, 1 - |U|)                         a = 1
straight_through    1                                         (none)
==================  ========================================  ================

A custom surrogate is any numba-compatible ``f(u, slope) -> float32`` defined at module level:

Example:
    >>> import numba, numpy as np
    >>> from neuro import surrogate
    >>> @numba.njit
    ... def box(u, slope):
    ...     return np.float32(1.0) if abs(u) < slope else np.float32(0.0)
    >>> sg = surrogate.custom(box, slope=0.5)
    >>> float(sg(np.float32(0.2)))
    1.0
    >>> round(float(surrogate.atan()(np.float32(0.0))), 6)
    1.0
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np

_HALF = np.float32(0.5)
_ONE = np.float32(1.0)
_ZERO = np.float32(0.0)
_HALF_PI = np.float32(math.pi / 2)


@numba.njit(inline="always")
def atan_grad(u, alpha):
    return alpha / np.float32(2.0) / (_ONE + (_HALF_PI * alpha * u) ** 2)


@numba.njit(inline="always")
def fast_sigmoid_grad(u, k):
    d = _ONE + k * abs(u)
    return _ONE / (d * d)


@numba.njit(inline="always")
def sigmoid_grad(u, k):
    s = _ONE / (_ONE + np.exp(-k * u))
    return k * s * (_ONE - s)


@numba.njit(inline="always")
def triangle_grad(u, alpha):
    return alpha * max(_ZERO, _ONE - abs(u))


@numba.njit(inline="always")
def straight_through_grad(u, slope):
    return _ONE


@dataclass(frozen=True)
class Surrogate:
    """A surrogate derivative: the jitted scalar ``grad(u, slope)`` and the slope it is used with."""

    name: str
    grad: Callable
    slope: float

    def __call__(self, u):
        """Evaluate dS/dU at ``u`` (NumPy arrays or scalars) — for plotting and tests."""
        u = np.asarray(u, dtype=np.float32)
        f = np.vectorize(lambda z: self.grad(np.float32(z), np.float32(self.slope)), otypes=[np.float32])
        out = f(u)
        return out if out.ndim else out[()]


def _slope(name: str, value) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name} must be a finite number > 0, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v <= 0 or v > np.finfo(np.float32).max:
        raise ValueError(f"{name} must be a finite number > 0 (in float32), got {value!r}")
    return v


def atan(alpha: float = 2.0) -> Surrogate:
    """Arctan surrogate (snnTorch's default): ``(alpha/2) / (1 + (pi alpha U / 2)^2)``."""
    return Surrogate("atan", atan_grad, _slope("alpha", alpha))


def fast_sigmoid(slope: float = 25.0) -> Surrogate:
    """Fast sigmoid / SuperSpike: ``1 / (1 + slope |U|)^2``."""
    return Surrogate("fast_sigmoid", fast_sigmoid_grad, _slope("slope", slope))


def sigmoid(slope: float = 25.0) -> Surrogate:
    """Logistic sigmoid derivative: ``slope s(slope U) (1 - s(slope U))``."""
    return Surrogate("sigmoid", sigmoid_grad, _slope("slope", slope))


def triangle(alpha: float = 1.0) -> Surrogate:
    """Triangle: ``alpha max(0, 1 - |U|)``."""
    return Surrogate("triangle", triangle_grad, _slope("alpha", alpha))


def straight_through() -> Surrogate:
    """Straight-through estimator: dS/dU = 1."""
    return Surrogate("straight_through", straight_through_grad, 1.0)


def custom(grad: Callable, slope: float = 1.0, name: str | None = None) -> Surrogate:
    """Wrap a user's numba scalar function ``grad(u, slope)``; plain Python functions are jitted."""
    if not callable(grad):
        raise TypeError(f"grad must be a function grad(u, slope), got {grad!r}")
    if not hasattr(grad, "py_func"):
        grad = numba.njit(grad)
    return Surrogate(name or grad.py_func.__name__, grad, _slope("slope", slope))


def get(spec: str | Surrogate | None) -> Surrogate:
    """Resolve a surrogate given by name (``"atan"``) or object; ``None`` gives snnTorch's atan(2)."""
    if spec is None:
        return atan()
    if isinstance(spec, Surrogate):
        return spec
    table = {"atan": atan, "fast_sigmoid": fast_sigmoid, "sigmoid": sigmoid, "triangle": triangle,
             "straight_through": straight_through}
    if not isinstance(spec, str):
        raise TypeError(f"surrogate must be a name {sorted(table)} or a neuro.surrogate.Surrogate, got {spec!r}")
    if spec not in table:
        raise ValueError(f"unknown surrogate {spec!r}; known: {sorted(table)}")
    return table[spec]()
