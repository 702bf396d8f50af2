"""Energy estimation from real network activity, per layer and per device."""
