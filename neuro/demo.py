"""``neuro demo``: the main job end to end on this machine, writing a report and plots to a folder.

Steps (each on the compiled kernels): simulate a population of LIF neurons driven by Poisson-like
input currents and save its raster and membrane traces.

Example:
    >>> from neuro.demo import run_demo
    >>> summary = run_demo("/tmp/neuro-demo-doctest", size="tiny", progress=False)   # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

SIZES = {"tiny": 0.25, "small": 0.5, "full": 1.0}


def _simulate_population(out: Path, scale: float, rng: np.random.Generator) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neuro.models import LIF

    n, steps, dt = int(400 * scale) or 10, 2000, 0.1
    cell = LIF(tau_m=20.0, cm=0.25, v_rest=-65.0, v_thresh=-50.0, v_reset=-65.0, tau_refrac=2.0)
    # input: a constant drive just below threshold plus Poisson-distributed current pulses
    drive = rng.uniform(0.7, 0.95, n) * 15.0 / 80.0  # nA; R = tau_m / cm = 80 MOhm, 15 mV to threshold
    current = (drive + rng.poisson(0.03, (steps, n)) * 1.5).astype(np.float32)
    t0 = time.perf_counter()
    res = cell.simulate(current, dt=dt)
    run_s = time.perf_counter() - t0
    t_idx, n_idx = np.nonzero(res.spikes)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    ax1.plot(t_idx * dt, n_idx, "|", ms=2, color="k")
    ax1.set_ylabel("neuron")
    ax1.set_title(f"{n} LIF neurons, {steps * dt:.0f} ms")
    for k in range(3):
        ax2.plot(np.arange(steps) * dt, res.v[:, k], lw=0.8)
    ax2.set_xlabel("time [ms]")
    ax2.set_ylabel("v [mV]")
    fig.tight_layout()
    path = out / "raster.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    rate = float(res.spikes.sum() / n / (steps * dt / 1000.0))
    return {"neurons": n, "duration_ms": steps * dt, "mean_rate_hz": rate, "run_s": run_s, "raster": str(path)}


def run_demo(out_dir: str | Path = "neuro-output", size: str = "small", seed: int = 0, progress: bool = True) -> dict:
    """Run the demo and write ``report.md``, ``summary.json`` and the plots into ``out_dir``."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}, got {size!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    summary = {"simulation": _simulate_population(out, SIZES[size], rng)}
    sim = summary["simulation"]
    report = [
        "# neuro-snn demo report",
        "",
        "## Simulation",
        f"{sim['neurons']} LIF neurons for {sim['duration_ms']:.0f} ms: mean rate {sim['mean_rate_hz']:.1f} Hz, "
        f"kernel run {sim['run_s'] * 1e3:.1f} ms.",
        "",
        "![raster](raster.png)",
    ]
    (out / "report.md").write_text("\n".join(report) + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
