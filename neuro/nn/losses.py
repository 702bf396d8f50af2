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

from neuro import _checks


def _check(out: torch.Tensor, targets: torch.Tensor, name: str = "spikes"):
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor [T, B, classes], got {type(out).__name__}")
    if out.dim() != 3:
        raise ValueError(f"outputs must be time-major [T, B, classes], got shape {tuple(out.shape)}")
    if not out.is_floating_point():
        raise TypeError(f"{name} must be a float tensor, got dtype {out.dtype}")
    _checks.check_finite_tensor(name, out)
    if not isinstance(targets, torch.Tensor):
        raise TypeError(f"targets must be a torch.Tensor of class indices, got {type(targets).__name__}")
    if targets.shape != (out.shape[1],):
        raise ValueError(f"targets must have shape ({out.shape[1]},), got {tuple(targets.shape)}")
    if targets.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(f"targets must be integer class indices, got dtype {targets.dtype}")
    if targets.numel() and (targets.min() < 0 or targets.max() >= out.shape[2]):
        raise ValueError(f"targets must be class indices in [0, {out.shape[2]}), got values in "
                         f"[{int(targets.min())}, {int(targets.max())}]")
    if out.shape[0] == 0 or out.shape[1] == 0:
        raise ValueError(f"outputs of shape {tuple(out.shape)} are empty (T = 0 or B = 0): no loss to compute")
    return targets.long()


def _decodable(spikes) -> None:
    if not isinstance(spikes, torch.Tensor):
        raise TypeError(f"spikes must be a torch.Tensor [T, B, classes], got {type(spikes).__name__}")
    if spikes.dim() < 2 or spikes.shape[-1] == 0:
        raise ValueError(f"spikes must be [T, ..., classes] with at least one class, got shape {tuple(spikes.shape)}")


def ce_count_loss(spikes: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with the spike counts (summed over time) as logits."""
    targets = _check(spikes, targets)
    return F.cross_entropy(spikes.sum(0), targets)


def ce_rate_loss(spikes: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy applied at every time step and averaged (snnTorch ``ce_rate_loss``)."""
    targets = _check(spikes, targets)
    T = spikes.shape[0]
    return F.cross_entropy(spikes.flatten(0, 1), targets.repeat(T))


def ce_membrane_loss(v: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on the membrane at every step, averaged (for LI readouts or ``return_v``)."""
    targets = _check(v, targets, "v")
    T = v.shape[0]
    return F.cross_entropy(v.flatten(0, 1), targets.repeat(T))


def mse_count_loss(spikes: torch.Tensor, targets: torch.Tensor, correct_rate: float = 0.8,
                   incorrect_rate: float = 0.2) -> torch.Tensor:
    """Mean-square error between spike counts and target counts (snnTorch ``mse_count_loss``)."""
    targets = _check(spikes, targets)
    correct_rate = _checks.check_float("correct_rate", correct_rate, unit_interval=True)
    incorrect_rate = _checks.check_float("incorrect_rate", incorrect_rate, unit_interval=True)
    T, _, C = spikes.shape
    want = torch.full_like(spikes[0], incorrect_rate * T)
    want[torch.arange(len(targets)), targets] = correct_rate * T
    return F.mse_loss(spikes.sum(0), want)


def rate_decode(spikes: torch.Tensor) -> torch.Tensor:
    """Predicted class: the output with the most spikes."""
    _decodable(spikes)
    return spikes.sum(0).argmax(-1)


def first_spike_decode(spikes: torch.Tensor) -> torch.Tensor:
    """Predicted class: the output that spikes first (ties and silence resolved by spike count)."""
    _decodable(spikes)
    T = spikes.shape[0]
    t = torch.arange(T, device=spikes.device, dtype=spikes.dtype).view(T, *([1] * (spikes.dim() - 1)))
    first = torch.where(spikes > 0, t, torch.full_like(spikes, T)).amin(0)
    score = -first * (T + 1) + spikes.sum(0) / (T + 1)
    return score.argmax(-1)
