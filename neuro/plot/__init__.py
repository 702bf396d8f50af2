"""Matplotlib figures a person would rather look at than read: rasters, membrane traces, rates,
accuracy against time steps, energy per layer. Every function returns ``(fig, ax)``."""
from neuro.plot.activity import isi_histogram, membrane, population_rate, raster, rate_histogram  # noqa: F401
from neuro.plot.conversion import plot_accuracy_vs_timesteps  # noqa: F401
from neuro.plot.energy import plot_accuracy_energy, plot_energy  # noqa: F401
