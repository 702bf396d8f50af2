"""Losses on time-major spiking outputs ``[T, B, classes]``.

Example:
    >>> import torch
    >>> from neuro.nn import losses
    >>> spk = torch.zeros(10, 2, 3); spk[:, 0, 1] = 1; spk[:5, 1, 2] = 1
    >>> losses.ce_count_loss(spk, torch.tensor([1, 2])) < losses.ce_count_loss(spk, torch.tensor([0, 0]))
    tensor(True)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check(out: torch.Tensor, targets: torch.Tensor):
    if out.dim() != 3:
        raise ValueError(f"outputs must be time-major [T, B, classes], got shape {tuple(out.shape)}")
    if targets.shape != (out.shape[1],):
        raise ValueError(f"targets must have shape ({out.shape[1]},), got {tuple(targets.shape)}")


def ce_count_loss(spikes: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with the spike counts (summed over time) as logits."""
    _check(spikes, targets)
    return F.cross_entropy(spikes.sum(0), targets)


def ce_rate_loss(spikes: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy applied at every time step and averaged (snnTorch ``ce_rate_loss``)."""
    _check(spikes, targets)
    T = spikes.shape[0]
    return F.cross_entropy(spikes.flatten(0, 1), targets.repeat(T))


def ce_membrane_loss(v: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on the membrane at every step, averaged (for LI readouts or ``return_v``)."""
    _check(v, targets)
    T = v.shape[0]
    return F.cross_entropy(v.flatten(0, 1), targets.repeat(T))


def mse_count_loss(spikes: torch.Tensor, targets: torch.Tensor, correct_rate: float = 0.8,
                   incorrect_rate: float = 0.2) -> torch.Tensor:
    """Mean-square error between spike counts and target counts (snnTorch ``mse_count_loss``)."""
    _check(spikes, targets)
    T, _, C = spikes.shape
    want = torch.full_like(spikes[0], incorrect_rate * T)
    want[torch.arange(len(targets)), targets] = correct_rate * T
    return F.mse_loss(spikes.sum(0), want)


def rate_decode(spikes: torch.Tensor) -> torch.Tensor:
    """Predicted class: the output with the most spikes."""
    return spikes.sum(0).argmax(-1)


def first_spike_decode(spikes: torch.Tensor) -> torch.Tensor:
    """Predicted class: the output that spikes first (ties and silence resolved by spike count)."""
    T = spikes.shape[0]
    t = torch.arange(T, device=spikes.device, dtype=spikes.dtype).view(T, *([1] * (spikes.dim() - 1)))
    first = torch.where(spikes > 0, t, torch.full_like(spikes, T)).amin(0)
    score = -first * (T + 1) + spikes.sum(0) / (T + 1)
    return score.argmax(-1)
