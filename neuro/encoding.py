"""Turn static data into spike trains ``[T, B, ...]`` and decode spiking outputs.

All encoders take an explicit ``seed`` or ``torch.Generator`` (no global random state), so the same seed
gives the same spikes.

Example:
    >>> import torch
    >>> from neuro import encoding
    >>> x = torch.tensor([[0.0, 0.5, 1.0]])
    >>> encoding.rate(x, num_steps=1000, seed=0).mean(0)                     # firing probability = intensity
    tensor([[0.0000, 0.5040, 1.0000]])
    >>> encoding.latency(torch.tensor([[0.1, 0.5, 1.0]]), num_steps=5)[:, 0].argmax(0).tolist()  # brighter: earlier
    [4, 2, 0]
"""

from __future__ import annotations

import torch

from neuro import _checks
from neuro.nn.losses import first_spike_decode, rate_decode

__all__ = ["rate", "latency", "delta", "repeat", "rate_decode", "first_spike_decode"]


def _generator(seed, device) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    seed = _checks.check_seed("seed", seed)
    g = torch.Generator(device=device)
    g.manual_seed(0 if seed is None else seed)
    return g


def _check(x, num_steps: int) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a float torch.Tensor, got {type(x).__name__}"
                        + (f" of dtype {x.dtype}" if isinstance(x, torch.Tensor) else ""))
    xf = x if x.dtype == torch.float32 else x.float()  # finiteness in float32, the dtype used downstream
    if not torch.isfinite(xf).all():
        raise ValueError("x contains NaN or infinite values (in float32)")
    _checks.check_int("num_steps", num_steps, minimum=1, maximum=1 << 31)
    return x


def repeat(x: torch.Tensor, num_steps: int) -> torch.Tensor:
    """The analog input repeated at every step: ``[T, B, ...]`` (the usual input of converted networks)."""
    x = _check(x, num_steps)
    return x.unsqueeze(0).expand(int(num_steps), *x.shape)


def rate(x: torch.Tensor, num_steps: int, gain: float = 1.0, seed: int | torch.Generator | None = None) -> torch.Tensor:
    """Bernoulli rate code: at each step a spike with probability ``clip(gain * x, 0, 1)``."""
    x = _check(x, num_steps)
    gain = _checks.check_float("gain", gain)
    p = (x * gain).clamp(0, 1)
    g = _generator(seed, x.device)
    return (torch.rand((int(num_steps), *x.shape), generator=g, device=x.device) < p).float()


def latency(x: torch.Tensor, num_steps: int, threshold: float = 0.01, normalize: bool = True) -> torch.Tensor:
    """Time-to-first-spike code: one spike per input at ``t = (1 - x) (T - 1)`` (linear, ``x`` in [0, 1]);
    inputs below ``threshold`` never fire."""
    x = _check(x, num_steps).clamp(0, 1)
    threshold = _checks.check_float("threshold", threshold)
    normalize = _checks.check_bool("normalize", normalize)
    T = int(num_steps)
    t_fire = torch.round((1 - x) * (T - 1)).long() if normalize else torch.round(x).long()
    out = torch.zeros((T, *x.shape), device=x.device)
    fire = x >= threshold
    out.scatter_(0, t_fire.clamp(0, T - 1).unsqueeze(0), fire.unsqueeze(0).float())
    return out


def delta(x: torch.Tensor, threshold: float = 0.1, off_spikes: bool = False) -> torch.Tensor:
    """Delta modulation of a time series ``x [T, B, ...]``: a spike when the signal rose by more than
    ``threshold`` since the last step (and -1 when it fell, if ``off_spikes``)."""
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        raise ValueError(f"x must be a time series [T, ...], got {getattr(x, 'shape', type(x))}")
    _checks.check_tensor("x", x)
    threshold = _checks.check_float("threshold", threshold, nonnegative=True)
    off_spikes = _checks.check_bool("off_spikes", off_spikes)
    d = torch.diff(x, dim=0, prepend=x[:1])
    on = (d > threshold).float()
    return on - (d < -threshold).float() if off_spikes else on
