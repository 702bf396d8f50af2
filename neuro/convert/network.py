"""The converted spiking network: a time-major ``torch.fx`` graph of neuro.nn layers, with evaluation over
several horizons in one pass."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import fx, nn

from neuro import _checks
from neuro.convert.layers import IFSpikes


def _static_input(x) -> torch.Tensor:
    """Static inputs ``[N, ...]``: a float tensor, finite in float32."""
    return _checks.check_tensor("x", x, min_dim=1)


def _timesteps(timesteps) -> list[int]:
    """Sorted distinct horizons, each an integer >= 1 (2.5 or True are refused, not truncated)."""
    if isinstance(timesteps, int | np.integer) and not isinstance(timesteps, bool):
        timesteps = [timesteps]
    if isinstance(timesteps, str | bytes) or not hasattr(timesteps, "__iter__"):
        raise TypeError(f"timesteps must be a list of positive integers, got {timesteps!r}")
    ts = sorted({_checks.check_int("timesteps", t, minimum=1, maximum=1 << 31) for t in timesteps})
    if not ts:
        raise ValueError(f"timesteps must be positive integers, got {list(timesteps)}")
    return ts


class SpikingNetwork(nn.Module):
    """A converted network. ``forward(x)`` takes ``[T, B, ...]`` (analog input repeated over time, or spikes)
    and returns the output layer's current ``[T, B, outputs]`` at every step; the prediction at horizon T is
    the argmax of its sum over the first T steps (the output layer is a non-spiking integrator).

    Attributes:
        body: the spiking ``fx.GraphModule``.
        thresholds: neuron site -> threshold (activation scale) taken from the calibration data.
        options: the conversion options used.
    """

    def __init__(self, body: fx.GraphModule, thresholds: dict, options: dict, ann_accuracy: float | None = None):
        super().__init__()
        self.body = body
        self.thresholds = thresholds
        self.options = options
        self.ann_accuracy = ann_accuracy

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() < 3:
            raise ValueError(f"x must be time-major [T, B, ...], got {tuple(getattr(x, 'shape', ()))}")
        return self.body(_checks.check_tensor("x", x))

    def neuron_layers(self) -> dict[str, IFSpikes]:
        return {name: m for name, m in self.body.named_modules() if isinstance(m, IFSpikes)}

    @torch.no_grad()
    def predict_over_time(self, x: torch.Tensor, timesteps: Sequence[int], batch_size: int = 256,
                          progress: bool = True) -> dict[int, torch.Tensor]:
        """Class predictions at every horizon in ``timesteps`` from one run to ``max(timesteps)``.

        ``x`` is static input ``[N, ...]``, presented as a constant current at every step.
        """
        from tqdm.auto import tqdm

        x = _static_input(x)
        batch_size = _checks.check_int("batch_size", batch_size, minimum=1)
        progress = _checks.check_bool("progress", progress)
        ts = _timesteps(timesteps)
        preds: dict[int, list] = {t: [] for t in ts}
        was = self.training
        self.eval()
        try:
            for start in tqdm(range(0, len(x), batch_size), desc=f"SNN up to T={ts[-1]}", disable=not progress,
                              leave=False):
                xb = x[start:start + batch_size]
                out = self(xb.unsqueeze(0).expand(ts[-1], *xb.shape))
                cum = out.cumsum(0)
                for t in ts:
                    preds[t].append(cum[t - 1].argmax(-1))
        finally:
            self.train(was)
        return {t: torch.cat(p) for t, p in preds.items()}

    def evaluate(self, x: torch.Tensor, y: torch.Tensor, timesteps: Sequence[int] = (4, 8, 16, 32),
                 batch_size: int = 256, progress: bool = True) -> dict[int, float]:
        """Accuracy at each horizon T (one pass to max(T)): ``{T: accuracy}``.

        Example:
            >>> # acc = snn.evaluate(x_test, y_test, timesteps=[4, 8, 16, 32])
        """
        x = _static_input(x)
        if not isinstance(y, torch.Tensor | list | tuple) and not hasattr(y, "__array__"):
            raise TypeError(f"y must be a tensor of class labels, got {type(y).__name__}")
        y = torch.as_tensor(y)
        if y.is_floating_point() or y.dtype == torch.bool:
            raise TypeError(f"y must be integer class labels, got dtype {y.dtype}")
        if y.shape != (len(x),):
            raise ValueError(f"y must have shape ({len(x)},), got {tuple(y.shape)}")
        preds = self.predict_over_time(x, timesteps, batch_size, progress)
        return {t: float((p == y).float().mean()) for t, p in preds.items()}

    @torch.no_grad()
    def layer_rates(self, x: torch.Tensor, timesteps: int) -> dict[str, torch.Tensor]:
        """Firing rate x threshold of every neuron layer for static input ``x`` over ``timesteps`` steps
        (in ANN units: what conversion promises equals the clipped ANN activation)."""
        x = _static_input(x)
        timesteps = _checks.check_int("timesteps", timesteps, minimum=1)
        rates, handles = {}, []
        for name, layer in self.neuron_layers().items():
            handles.append(layer.register_forward_hook(
                lambda _m, _i, out, name=name: rates.__setitem__(name, out.mean(0))))
        try:
            self(x.unsqueeze(0).expand(timesteps, *x.shape))
        finally:
            for h in handles:
                h.remove()
        return rates
