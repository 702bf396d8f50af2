"""Accuracy of a converted network against time steps, with the ANN as a reference line."""

from __future__ import annotations


def plot_accuracy_vs_timesteps(results: dict, ann_accuracy: float | None = None, ax=None, title: str = ""):
    """``results``: ``{label: {T: accuracy}}`` (or a single ``{T: accuracy}``); returns ``(fig, ax)``.

    Example:
        >>> import matplotlib; matplotlib.use("Agg")
        >>> from neuro.plot import plot_accuracy_vs_timesteps
        >>> fig, ax = plot_accuracy_vs_timesteps({"percentile": {4: 0.9, 8: 0.97, 16: 0.99}}, ann_accuracy=0.99)
        >>> ax.get_xlabel()
        'time steps T'
    """
    import matplotlib.pyplot as plt

    if results and all(isinstance(k, int) for k in results):
        results = {"SNN": results}
    fig, ax = plt.subplots(figsize=(6, 4)) if ax is None else (ax.figure, ax)
    for label, table in results.items():
        ts = sorted(table)
        ax.plot(ts, [table[t] for t in ts], "o-", label=label)
    if ann_accuracy is not None:
        ax.axhline(ann_accuracy, color="k", ls="--", lw=1, label="ANN")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("time steps T")
    ax.set_ylabel("test accuracy")
    ax.set_title(title or "converted SNN: accuracy against time steps")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig, ax
