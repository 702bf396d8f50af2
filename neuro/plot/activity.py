"""Figures of simulated activity: spike rasters, membrane traces, population rates, ISI and rate
histograms. Each takes monitors (or arrays) and returns ``(fig, ax)``.

Example:
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import numpy as np
    >>> from neuro.plot import raster
    >>> fig, ax = raster(np.array([1.0, 2.5, 3.0]), np.array([0, 2, 1]))
    >>> ax.get_xlabel()
    'time [ms]'
"""

from __future__ import annotations

import numpy as np


def _times_ids(monitor_or_times, ids=None):
    if ids is None:
        return np.asarray(monitor_or_times.times), np.asarray(monitor_or_times.ids)
    return np.asarray(monitor_or_times), np.asarray(ids)


def raster(monitor_or_times, ids=None, ax=None, max_neurons: int | None = None, title: str = ""):
    """Spike raster: one dot per spike (time [ms], neuron id)."""
    import matplotlib.pyplot as plt

    t, i = _times_ids(monitor_or_times, ids)
    if max_neurons is not None:
        keep = i < max_neurons
        t, i = t[keep], i[keep]
    fig, ax = plt.subplots(figsize=(8, 4)) if ax is None else (ax.figure, ax)
    ax.plot(t, i, "|", ms=2, color="k")
    ax.set_xlabel("time [ms]")
    ax.set_ylabel("neuron")
    ax.set_title(title or f"{len(t)} spikes")
    fig.tight_layout()
    return fig, ax


def membrane(state_monitor, ax=None, max_traces: int = 5, title: str = ""):
    """Membrane (or any recorded state) traces of a :class:`neuro.sim.StateMonitor`."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3)) if ax is None else (ax.figure, ax)
    values = state_monitor.values
    for j in range(min(max_traces, values.shape[1])):
        ax.plot(state_monitor.times, values[:, j], lw=0.8, label=f"neuron {state_monitor.ids[j]}")
    ax.set_xlabel("time [ms]")
    ax.set_ylabel(f"{state_monitor.var} [mV]" if state_monitor.var == "v" else state_monitor.var)
    ax.set_title(title or "membrane traces")
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig, ax


def population_rate(monitor_or_times, n_neurons: int, ids=None, bin_ms: float = 5.0, ax=None, title: str = ""):
    """Population firing rate [Hz] in bins of ``bin_ms``."""
    import matplotlib.pyplot as plt

    t, _ = _times_ids(monitor_or_times, ids if ids is not None else (None if hasattr(monitor_or_times, "ids")
                                                                      else np.zeros(len(monitor_or_times))))
    end = t.max() + bin_ms if len(t) else bin_ms
    counts, edges = np.histogram(t, bins=np.arange(0, end + bin_ms, bin_ms))
    fig, ax = plt.subplots(figsize=(8, 2.5)) if ax is None else (ax.figure, ax)
    ax.plot(edges[:-1], counts / n_neurons / (bin_ms / 1000.0), color="C0")
    ax.set_xlabel("time [ms]")
    ax.set_ylabel("rate [Hz]")
    ax.set_title(title or "population rate")
    fig.tight_layout()
    return fig, ax


def isi_histogram(monitor_or_times, ids=None, bins: int = 50, ax=None):
    """Histogram of inter-spike intervals [ms] pooled over neurons."""
    import matplotlib.pyplot as plt

    t, i = _times_ids(monitor_or_times, ids)
    order = np.lexsort((t, i))
    t, i = t[order], i[order]
    same = i[1:] == i[:-1]
    isi = np.diff(t)[same]
    fig, ax = plt.subplots(figsize=(5, 3)) if ax is None else (ax.figure, ax)
    ax.hist(isi, bins=bins, color="C1")
    ax.set_xlabel("inter-spike interval [ms]")
    ax.set_ylabel("count")
    fig.tight_layout()
    return fig, ax


def rate_histogram(monitor_or_times, n_neurons: int, duration_ms: float, ids=None, bins: int = 30, ax=None):
    """Histogram of per-neuron firing rates [Hz]."""
    import matplotlib.pyplot as plt

    _, i = _times_ids(monitor_or_times, ids)
    rates = np.bincount(i.astype(int), minlength=n_neurons) / (duration_ms / 1000.0)
    fig, ax = plt.subplots(figsize=(5, 3)) if ax is None else (ax.figure, ax)
    ax.hist(rates, bins=bins, color="C2")
    ax.set_xlabel("firing rate [Hz]")
    ax.set_ylabel("neurons")
    fig.tight_layout()
    return fig, ax
