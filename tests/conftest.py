"""Test-suite settings: hypothesis draws the same examples on every run (a failure is reproducible and CI is
not at the mercy of a new random draw); plots never open a window."""

import os

import matplotlib
from hypothesis import settings

matplotlib.use("Agg")
settings.register_profile("neuro", derandomize=True, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "neuro"))
