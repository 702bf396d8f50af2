"""The digits data and models live in the package (neuro.digits); tests import them from here."""

from neuro.digits import ResNet, accuracy, act, cnn, digits_split, mlp, train  # noqa: F401
