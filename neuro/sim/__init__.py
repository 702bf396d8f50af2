"""Clock-driven network simulator: populations, projections, delays, plasticity, monitors."""
