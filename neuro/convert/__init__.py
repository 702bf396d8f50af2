"""ANN-to-SNN conversion of trained torch models.

``ann_to_snn(model, calibration_data)`` traces the model with ``torch.fx``, folds batch-norm, sets IF
thresholds from activation statistics (99.9th percentile by default, or max, per layer or channel),
converts max pooling, residual additions and concatenation, and returns a :class:`SpikingNetwork`
whose ``evaluate`` gives accuracy against time steps in one pass. :class:`QCFS` is the activation to
fine-tune with for near-lossless conversion at 4-8 steps.

Example:
    >>> import torch
    >>> from torch import nn
    >>> import neuro
    >>> cnn = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    >>> snn = neuro.convert.ann_to_snn(cnn, calibration_data=torch.rand(32, 1, 8, 8), progress=False)
    >>> x_test = torch.rand(5, 1, 8, 8)
    >>> snn(x_test.unsqueeze(0).expand(32, *x_test.shape)).shape
    torch.Size([32, 5, 10])
"""

from neuro.convert.convert import ann_to_snn
from neuro.convert.graph import ConversionError
from neuro.convert.layers import IFSpikes, SpikingMaxPool2d
from neuro.convert.network import SpikingNetwork
from neuro.convert.qcfs import QCFS

__all__ = ["ann_to_snn", "SpikingNetwork", "QCFS", "ConversionError", "IFSpikes", "SpikingMaxPool2d"]
