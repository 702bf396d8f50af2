"""Matplotlib figures a person would rather look at than read: rasters, membrane traces, rates,
accuracy against time steps, energy per layer. Every function returns ``(fig, ax)``."""
