"""PyTorch modules whose whole time loop runs in one fused kernel call (surrogate-gradient training)."""
