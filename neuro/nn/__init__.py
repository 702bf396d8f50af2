"""PyTorch modules whose whole time loop runs in one fused kernel call (surrogate-gradient training).

Multi-step and time-major: inputs ``[T, B, ...]``, outputs of the same shape. Conv, linear, pooling and
batch-norm layers are torch's own, applied over time with :class:`TimeDistributed`.

Example:
    >>> import torch
    >>> import neuro
    >>> net = torch.nn.Sequential(neuro.nn.TimeDistributed(torch.nn.Linear(64, 32)), neuro.nn.LIF(beta=0.9),
    ...                           neuro.nn.TimeDistributed(torch.nn.Linear(32, 10)), neuro.nn.LIF(beta=0.9))
    >>> out = net(torch.rand(25, 4, 64))
    >>> out.shape, neuro.nn.losses.ce_count_loss(out, torch.tensor([0, 1, 2, 3])).shape
    (torch.Size([25, 4, 10]), torch.Size([]))
"""

from neuro.nn import losses
from neuro.nn.base import SpikingNeuron
from neuro.nn.equation_neuron import Neuron
from neuro.nn.functional import neuron_scan
from neuro.nn.layers import Flatten, TimeDistributed
from neuro.nn.low_memory import SpikingConv2d, SpikingLinear
from neuro.nn.neurons import ALIF, IF, LI, LIF, RLIF, CubaLIF

__all__ = ["LIF", "IF", "LI", "CubaLIF", "ALIF", "RLIF", "Neuron", "TimeDistributed", "Flatten", "SpikingNeuron",
           "neuron_scan", "losses", "SpikingLinear", "SpikingConv2d"]
