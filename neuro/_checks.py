"""Argument checks shared by every public entry point (models, kernels, nn, sim, convert, energy).

Each check is written once here. Every failure is a ``ValueError`` (bad value) or ``TypeError`` (wrong
kind of object) whose message names the caller's parameter and the value it got. Floating-point values
are checked for finiteness *in float32*, the dtype the kernels use: ``1e39`` is finite in float64 but
``inf`` in float32, so it is refused here rather than turning into ``inf`` later.

Example:
    >>> from neuro import _checks
    >>> _checks.check_dt(0.1)
    0.1
    >>> _checks.check_int("num_steps", 25, minimum=1)
    25
    >>> _checks.check_int("num_steps", 2.5, minimum=1)
    Traceback (most recent call last):
    ...
    TypeError: num_steps must be an integer, got 2.5
    >>> _checks.check_float("tau_m", 1e39, positive=True)
    Traceback (most recent call last):
    ...
    ValueError: tau_m must be finite in float32 (|x| <= 3.4e38), got 1e+39
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable

import numpy as np

F32_MAX = float(np.finfo(np.float32).max)
INT32_MAX = int(np.iinfo(np.int32).max)
INT64_MAX = int(np.iinfo(np.int64).max)
SEED_MAX = (1 << 63) - 1


def _short(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def is_number(value) -> bool:
    """A real scalar (Python or NumPy), not a bool and not a string."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def check_bool(name: str, value) -> bool:
    """``value`` as a bool; only ``True``/``False`` (and NumPy bools) are accepted, not 0/1 or strings."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {_short(value)}")
    return bool(value)


def check_int(name: str, value, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as a Python int in ``[minimum, maximum]``; floats (even 3.0), bools and strings are refused."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        if hasattr(value, "ndim") and value.ndim == 0 and hasattr(value, "item"):
            item = value.item()  # a 0-d integer array or tensor
            if isinstance(item, int) and not isinstance(item, bool):
                return check_int(name, item, minimum=minimum, maximum=maximum)
        raise TypeError(f"{name} must be an integer, got {_short(value)}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_seed(name: str, value, *, allow_none: bool = True) -> int | None:
    """A seed: None (if allowed) or an integer in ``[0, 2**63 - 1]``."""
    if value is None and allow_none:
        return None
    return check_int(name, value, minimum=0, maximum=SEED_MAX)


def check_float(name: str, value, *, positive: bool = False, nonnegative: bool = False,
                unit_interval: bool = False, allow_inf: bool = False) -> float:
    """A real scalar, finite in float32 (unless ``allow_inf``: then +-inf pass, NaN never), with optional range."""
    if not is_number(value):
        if hasattr(value, "ndim") and value.ndim == 0 and hasattr(value, "item"):
            return check_float(name, value.item(), positive=positive, nonnegative=nonnegative,
                               unit_interval=unit_interval, allow_inf=allow_inf)
        raise TypeError(f"{name} must be a real number, got {_short(value)}")
    v = float(value)
    _range(name, np.asarray([v]), value, positive, nonnegative, unit_interval, allow_inf)
    return v


def _range(name, arr, shown, positive, nonnegative, unit_interval, allow_inf=False):
    if np.isnan(arr).any():
        raise ValueError(f"{name} must be finite (not NaN), got {_short(shown)}")
    big = np.abs(arr) > F32_MAX
    if not allow_inf and big.any():
        raise ValueError(f"{name} must be finite in float32 (|x| <= 3.4e38), got {_short(shown)}")
    if positive and (arr <= 0).any():
        raise ValueError(f"{name} must be > 0, got {_short(shown)}")
    if nonnegative and (arr < 0).any():
        raise ValueError(f"{name} must be >= 0, got {_short(shown)}")
    if unit_interval and ((arr < 0) | (arr > 1)).any():
        raise ValueError(f"{name} must lie in [0, 1], got {_short(shown)}")


def check_float_array(name: str, value, *, positive: bool = False, nonnegative: bool = False,
                      unit_interval: bool = False, allow_inf: bool = False) -> np.ndarray:
    """``value`` (scalar or array-like of reals) as a float64 array whose entries are finite in float32."""
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be numbers, got {_short(value)}") from None
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must be real numbers, got {_short(value)} (dtype {arr.dtype})")
    arr = arr.astype(np.float64)
    _range(name, arr, value, positive, nonnegative, unit_interval, allow_inf)
    return arr


def check_index_array(name: str, value, *, size: int | None = None, what: str = "") -> np.ndarray:
    """Integer indices (as int64) in ``[0, size)``; floats are refused even when integral-looking (0.7 would
    silently become 0)."""
    arr = np.asarray(value)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        if arr.size == 0 and arr.dtype != bool and arr.dtype != object:
            return np.zeros(arr.shape, np.int64)
        raise TypeError(f"{name} must be integer indices, got {_short(value)} (dtype {arr.dtype})")
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} must be >= 0, got {int(arr.min())}")
    if size is not None and arr.size and arr.max() >= size:
        raise ValueError(f"{name} has index {int(arr.max())} out of range for {size}{' ' + what if what else ''}")
    return arr


def check_dt(dt, name: str = "dt") -> float:
    """A time step (ms for the models and ``neuro.sim``, s for NIR): a real number, finite in float32 and > 0
    there (so not one that rounds to 0 in float32). The one check of a time step (``neuro.io`` adds only its
    TypeError for non-numbers)."""
    # "not 0 < dt <= max" also refuses NaN, inf and ints too large for a float without converting them
    if not is_number(dt) or not 0 < dt <= F32_MAX or np.float32(dt) == 0:
        raise ValueError(f"{name} must be a finite number > 0 (in float32), got {_short(dt)}")
    return float(dt)


def check_choice(name: str, value, choices: Iterable[str]):
    """One of ``choices`` (strings); ints in place of names are refused."""
    choices = list(choices)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {choices} (a string), got {_short(value)}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_tensor(name: str, x, *, min_dim: int = 0, floating: bool = True):
    """A torch tensor of at least ``min_dim`` dimensions; float tensors are returned as float32, checked
    finite in float32 (so float64 values beyond 3.4e38 are refused, not turned into inf)."""
    import torch

    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < min_dim:
        raise ValueError(f"{name} must have at least {min_dim} dimensions, got shape {tuple(x.shape)}")
    if floating:
        if not x.is_floating_point():
            raise TypeError(f"{name} must be a float tensor, got dtype {x.dtype}")
        x = x if x.dtype == torch.float32 else x.float()
        check_finite_tensor(name, x)
    return x


def check_finite_tensor(name: str, x) -> None:
    """Refuse NaN or inf entries (one reduction first: a finite sum proves every entry finite)."""
    import torch

    if x.numel() and not torch.isfinite(x.sum()) and not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values (in float32)")


def check_instance(name: str, value, types, what: str):
    if not isinstance(value, types):
        raise TypeError(f"{name} must be {what}, got {_short(value)}")
    return value
