"""Energy figures: per layer per device, SNN against ANN, and accuracy-energy against time steps."""

from __future__ import annotations

import numpy as np


def plot_energy(report, ax=None):
    """Two panels: energy per layer per device (log scale), and SNN against ANN energy per device.

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> # fig, axes = neuro.plot.plot_energy(neuro.energy.estimate(model, x))
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5)) if ax is None else (ax[0].figure, ax)
    names = [r["name"] for r in report.layers]
    devs = [d.name for d in report.devices]
    width = 0.8 / max(len(devs), 1)
    x = np.arange(len(names))
    for k, dev in enumerate(devs):
        vals = [max(r["energy_j"][dev], 1e-18) for r in report.layers]
        axes[0].bar(x + k * width, vals, width, label=dev)
    axes[0].set_yscale("log")
    axes[0].set_xticks(x + width * (len(devs) - 1) / 2, names, rotation=45, ha="right")
    axes[0].set_ylabel("energy per inference [J]")
    axes[0].set_title(f"energy per layer (T = {report.timesteps})")
    axes[0].legend(fontsize=8)
    snn = [report.energy_j[d] for d in devs]
    ann = [report.ann_energy_j.get(d, np.nan) for d in devs]
    xd = np.arange(len(devs))
    axes[1].bar(xd - 0.2, snn, 0.4, label="SNN")
    axes[1].bar(xd + 0.2, ann, 0.4, label="ANN (MACs)")
    axes[1].set_yscale("log")
    axes[1].set_xticks(xd, devs, rotation=30)
    axes[1].set_title("SNN against ANN per device")
    axes[1].legend()
    fig.tight_layout()
    return fig, axes


def plot_accuracy_energy(table: dict, device: str, ann_accuracy: float | None = None, ax=None):
    """Accuracy and energy per inference against time steps for one device (from
    :func:`neuro.energy.accuracy_energy`); returns ``(fig, (ax_acc, ax_energy))``."""
    import matplotlib.pyplot as plt

    fig, ax1 = plt.subplots(figsize=(6, 4)) if ax is None else (ax.figure, ax)
    ts = sorted(table)
    acc = [table[t]["accuracy"] for t in ts]
    en = [table[t]["energy_j"][device] for t in ts]
    ax1.plot(ts, acc, "o-", color="C0", label="SNN accuracy")
    if ann_accuracy is not None:
        ax1.axhline(ann_accuracy, color="C0", ls="--", label="ANN accuracy")
    ax1.set_xscale("log", base=2)
    ax1.set_xlabel("time steps T")
    ax1.set_ylabel("accuracy", color="C0")
    ax2 = ax1.twinx()
    ax2.plot(ts, en, "s-", color="C3", label=f"energy on {device}")
    ann_e = table[ts[0]]["ann_energy_j"].get(device)
    if ann_e:
        ax2.axhline(ann_e, color="C3", ls=":", label=f"ANN energy on {device}")
    ax2.set_ylabel("energy per inference [J]", color="C3")
    ax1.set_title("accuracy and energy against time steps")
    fig.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig, (ax1, ax2)
