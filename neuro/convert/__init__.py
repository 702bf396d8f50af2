"""ANN-to-SNN conversion of trained torch models."""
