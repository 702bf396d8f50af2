"""Conversion refuses what it cannot convert, listing every such layer with a suggested replacement, and
never changes the user's model."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neuro
from neuro.convert import ConversionError


class Mixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 8)
        self.act = nn.Sigmoid()
        self.norm = nn.LayerNorm(8)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        x = self.norm(self.act(self.fc1(x)))
        x = torch.tanh(x)
        return self.fc2(x.view(x.shape[0], -1))


def test_every_unconvertible_layer_is_listed_with_a_replacement():
    with pytest.raises(ConversionError) as err:
        neuro.convert.ann_to_snn(Mixed(), torch.rand(16, 8), progress=False)
    msg = str(err.value)
    assert "act (Sigmoid): replace with ReLU (or QCFS)" in msg
    assert "norm (LayerNorm): replace with BatchNorm" in msg
    assert "tanh (function tanh): replace with ReLU (or QCFS)" in msg
    assert "(method .view()): replace with torch.flatten(x, 1) or nn.Flatten" in msg


def test_bad_calibration_data():
    ann = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(TypeError, match="calibration_data must be a float tensor"):
        neuro.convert.ann_to_snn(ann, torch.ones(4, 4, dtype=torch.long), progress=False)
    with pytest.raises(ValueError, match="calibration_data contains NaN"):
        neuro.convert.ann_to_snn(ann, torch.full((4, 4), float("nan")), progress=False)
    with pytest.raises(ValueError, match="threshold method must be 'max' or 'percentile'"):
        neuro.convert.ann_to_snn(ann, torch.rand(4, 4), threshold="mean", progress=False)


def test_model_is_not_modified_and_functional_ops_are_traced():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(1, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)
            self.b = nn.Conv2d(1, 4, 3, padding=1)
            self.fc = nn.Linear(8 * 16, 3)

        def forward(self, x):
            y = torch.cat([F.relu(self.bn(self.a(x))), torch.relu(self.b(x))], dim=1)
            y = F.max_pool2d(y, 2)
            return self.fc(torch.flatten(y, 1))

    torch.manual_seed(0)
    net = Net()
    net.bn.running_mean.uniform_(-0.2, 0.2)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.rand(64, 1, 8, 8)
    snn = neuro.convert.ann_to_snn(net, x, progress=False, threshold="max", v_init=0.5)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert len(snn.neuron_layers()) == 2
    with torch.no_grad():
        ann_out = net.eval()(x[:8])
        snn_out = snn(x[:8].unsqueeze(0).expand(512, 8, 1, 8, 8)).mean(0)
    # with max thresholds nothing clips, so the time-averaged output converges to the ANN's
    torch.testing.assert_close(snn_out, ann_out, atol=0.05, rtol=0.05)


def test_wrong_input_rank_to_converted_model():
    snn = neuro.convert.ann_to_snn(nn.Sequential(nn.Linear(4, 2), nn.ReLU()), torch.rand(8, 4), progress=False)
    with pytest.raises(ValueError, match=r"x must be time-major \[T, B, \.\.\.\]"):
        snn(torch.rand(3, 4))
