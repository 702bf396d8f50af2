"""Energy estimation from real network activity, per layer and per device.

``estimate`` runs a spiking model on real inputs and counts, per layer, the spikes that arrive, the
synaptic operations they cause (each event times its real fan-out), the analog input MACs, the neuron
updates and the spikes out; then prices them on device specs from :mod:`neuro.hardware_targets.devices`
(each number with its published source), beside the equivalent ANN's MACs::

    E_snn(device) = synops * E_synop + input_macs * E_mac + neuron_updates * E_update + spikes * E_spike
    E_ann(device) = ann_macs * E_mac

Example:
    >>> import torch
    >>> from torch import nn
    >>> from neuro import energy
    >>> class Step(nn.Module):          # a stand-in spiking layer: spikes where the input is positive
    ...     counts_as_neuron = True
    ...     def forward(self, x):
    ...         return (x > 0).float()
    >>> model = nn.Sequential(nn.Linear(4, 3), Step())
    >>> with torch.no_grad():
    ...     _ = model[0].weight.fill_(1.0), model[0].bias.zero_()
    >>> x = torch.full((5, 2, 4), 0.5)                    # T=5, batch 2, analog input
    >>> rep = energy.estimate(model, x, devices=["45nm", "loihi"], progress=False)
    >>> rep.total("input_macs"), rep.total("neuron_updates"), rep.total("spikes_out")
    (60.0, 15.0, 15.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from neuro import _checks
from neuro.energy.counting import SYNAPTIC, ActivityCounter, LayerCounts, fanout_map
from neuro.energy.report import EnergyReport
from neuro.hardware_targets import devices as device_registry

DEFAULT_DEVICES = ("45nm", "cpu", "gpu", "loihi", "spinnaker2")

__all__ = ["estimate", "accuracy_energy", "EnergyReport", "LayerCounts", "fanout_map", "DEFAULT_DEVICES"]


def _first_synaptic(model: nn.Module) -> nn.Module | None:
    for m in model.modules():
        if isinstance(m, SYNAPTIC):
            return m
    return None


def _check_devices(devices) -> list:
    """``devices`` as specs: one name or spec, or a list of them (a string is one device, not its letters)."""
    if isinstance(devices, str | device_registry.DeviceSpec):
        devices = [devices]
    if not hasattr(devices, "__iter__"):
        raise TypeError(f"devices must be a device name, a DeviceSpec or a list of them, got {devices!r}")
    devices = list(devices)
    if not devices:
        raise ValueError("devices is empty: name at least one device, e.g. devices=['45nm']")
    return [device_registry.get(d) for d in devices]


def _check_common(model, batch_size, progress) -> int:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _checks.check_bool("progress", progress)
    return _checks.check_int("batch_size", batch_size, minimum=1)


def _check_inputs(model: nn.Module, inputs) -> torch.Tensor:
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"inputs must be a torch.Tensor [T, B, ...] (time-major), got {type(inputs).__name__}")
    first = _first_synaptic(model)
    expected = "[T, B, ...]"
    if isinstance(first, nn.Linear):
        expected = f"[T, B, {first.in_features}]"
    elif isinstance(first, nn.Conv2d):
        expected = f"[T, B, {first.in_channels}, H, W]"
    elif isinstance(first, nn.Conv1d):
        expected = f"[T, B, {first.in_channels}, L]"
    bad = inputs.dim() < 3
    if isinstance(first, nn.Linear) and not bad:  # a flatten may come before the first Linear
        bad = inputs.shape[-1] != first.in_features and math.prod(inputs.shape[2:]) != first.in_features
    if isinstance(first, nn.Conv1d | nn.Conv2d) and not bad:
        bad = inputs.dim() != (5 if isinstance(first, nn.Conv2d) else 4) or inputs.shape[2] != first.in_channels
    if bad:
        raise ValueError(f"inputs must have shape {expected} (time-major), got {tuple(inputs.shape)}")
    if not inputs.is_floating_point():
        raise TypeError(f"inputs must be a float tensor, got dtype {inputs.dtype}")
    if not torch.isfinite(inputs.float()).all():
        raise ValueError("inputs contain NaN or infinite values (in float32)")
    if inputs.shape[0] == 0 or inputs.shape[1] == 0:
        raise ValueError(f"inputs of shape {tuple(inputs.shape)} hold no time step (T = 0) or no sample (B = 0): "
                         "there is no activity to count per inference")
    return inputs


def _run_counted(model: nn.Module, inputs: torch.Tensor, batch_size: int, progress: bool):
    from tqdm.auto import tqdm

    counts: dict[str, LayerCounts] = {}
    outputs = []
    n = inputs.shape[1]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in tqdm(range(0, n, batch_size), desc="counting activity", disable=not progress,
                              leave=False):
                x = inputs[:, start:start + batch_size].contiguous()
                with ActivityCounter(model) as counter:
                    counter.set_input(x)
                    out = model(x)
                outputs.append(out[0] if isinstance(out, tuple) else out)
                for name, row in counter.layers.items():
                    acc = counts.get(name)
                    if acc is None:
                        counts[name] = row
                        continue
                    for f in ("spikes_in", "synops", "input_macs", "neuron_updates", "spikes_out"):
                        a, b = getattr(acc, f), getattr(row, f)
                        if b is not None:
                            setattr(acc, f, b if a is None else a + b)
    finally:
        model.train(was_training)
    if not counts:
        raise ValueError("the model has no layer neuro.energy can count (Linear, Conv1d/2d, AvgPool, or neuro.nn "
                         "neuron layers)")
    return list(counts.values()), torch.cat(outputs, dim=1)


def estimate(model: nn.Module, inputs: torch.Tensor, devices: Sequence = DEFAULT_DEVICES, batch_size: int = 256,
             progress: bool = True) -> EnergyReport:
    """Run ``model`` on ``inputs`` ``[T, B, ...]`` and count and price its activity per inference.

    Args:
        model: a time-major spiking model (``neuro.nn``, converted, or imported from NIR).
        inputs: time-major input, spikes or analog values (analog inputs to the first layer count as MACs).
        devices: names in :mod:`neuro.hardware_targets.devices` or :class:`DeviceSpec` objects (one name
            or a list).
        batch_size: inputs per forward pass.
        progress: show a progress bar.
    """
    batch_size = _check_common(model, batch_size, progress)
    specs = _check_devices(devices)
    inputs = _check_inputs(model, inputs)
    counts, _ = _run_counted(model, inputs, batch_size, progress)
    return EnergyReport.from_counts(counts, samples=inputs.shape[1], timesteps=inputs.shape[0], devices=specs)


def accuracy_energy(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, timesteps: Sequence[int],
                    devices: Sequence = DEFAULT_DEVICES, batch_size: int = 256, progress: bool = True) -> dict:
    """Accuracy and energy per inference at each horizon T, from one run to ``max(timesteps)``.

    The prediction at T is the argmax of the output summed over the first T steps. Returns
    ``{T: {"accuracy": float, "energy_j": {device: J}, "ann_energy_j": {...}, "synops": float}}``.
    """
    batch_size = _check_common(model, batch_size, progress)
    specs = _check_devices(devices)
    if isinstance(timesteps, str | bytes) or not hasattr(timesteps, "__iter__"):
        raise TypeError(f"timesteps must be a list of positive integers, got {timesteps!r}")
    ts = sorted({_checks.check_int("timesteps", t, minimum=1) for t in timesteps})
    if not ts:
        raise ValueError(f"timesteps must be positive integers, got {list(timesteps)}")
    inputs = _check_inputs(model, inputs)
    if ts[-1] > inputs.shape[0]:
        raise ValueError(f"max(timesteps) = {ts[-1]} exceeds the input length T = {inputs.shape[0]}")
    labels = torch.as_tensor(labels)
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise TypeError(f"labels must be integer class labels, got dtype {labels.dtype}")
    if labels.shape != (inputs.shape[1],):
        raise ValueError(f"labels must have shape ({inputs.shape[1]},), got {tuple(labels.shape)}")
    counts, out = _run_counted(model, inputs[: ts[-1]], batch_size, progress)
    cum = out.cumsum(0)
    result = {}
    for t in ts:
        acc = float((cum[t - 1].argmax(-1) == labels).double().mean())
        rep = EnergyReport.from_counts(counts, samples=inputs.shape[1], timesteps=ts[-1], devices=specs, upto=t)
        result[t] = {"accuracy": acc, "energy_j": dict(rep.energy_j), "ann_energy_j": dict(rep.ann_energy_j),
                     "synops": rep.total("synops")}
    return result

