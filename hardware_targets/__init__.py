"""Chip targets: one module per chip family (device spec, fit report, emitter)."""
