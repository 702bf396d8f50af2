"""neuro.energy counts against hand counts and brute-force counts written in this file."""

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from neuro import energy
from neuro.hardware_targets import devices


class Threshold(nn.Module):
    """Stand-in neuron layer for counting tests: spikes where the input exceeds 0.5 (no state)."""

    counts_as_neuron = True  # counted as a neuron layer (neuro.energy.counting.is_neuron_layer)

    def forward(self, x):
        return (x > 0.5).float()


class TimeFolded(nn.Module):
    """Applies a layer to [T, B, ...] by folding time into the batch, as neuro.nn.TimeDistributed does."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        y = self.layer(x.flatten(0, 1))
        return y.reshape(x.shape[0], x.shape[1], *y.shape[1:])


def brute_conv_fanout(c_in, h, w, c_out, k, stride, pad):
    """For each input position, count (output channel, output position, kernel offset) pairs reading it."""
    ho = (h + 2 * pad - k) // stride + 1
    wo = (w + 2 * pad - k) // stride + 1
    fan = np.zeros((c_in, h, w))
    for _co, oy, ox, ci, ky, kx in itertools.product(range(c_out), range(ho), range(wo), range(c_in), range(k),
                                                      range(k)):
        iy, ix = oy * stride - pad + ky, ox * stride - pad + kx
        if 0 <= iy < h and 0 <= ix < w:
            fan[ci, iy, ix] += 1
    return fan, ho, wo


def test_dense_counts_by_hand():
    lin = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]]))  # input 1 reaches one synapse
    model = nn.Sequential(lin, Threshold())
    x = torch.tensor([[[1.0, 1.0, 0.0]], [[0.0, 1.0, 1.0]]])  # T=2, B=1: spikes (in0,in1), (in1,in2)
    rep = energy.estimate(model, x, devices=["45nm"], progress=False)
    syn, neu = rep.layers
    assert syn["spikes_in"] == 4
    assert syn["synops"] == (2 + 1) + (1 + 2)  # fan-outs 2, 1, 2
    assert syn["input_macs"] == 0
    assert syn["ann_macs"] == 6
    # outputs: t0 = [1, 2] -> spikes at out0 (1 > .5) and out1; t1 = [1, 2] -> both again
    assert neu["neuron_updates"] == 4 and neu["spikes_out"] == 4
    assert neu["firing_rate"] == 1.0
    e45 = devices.get("45nm")
    assert rep.energy_j["45nm"] == pytest.approx(6 * e45.synop + 4 * e45.neuron_update)
    assert rep.ann_energy_j["45nm"] == pytest.approx(6 * e45.mac)


@pytest.mark.parametrize("k,stride,pad", [(3, 1, 1), (3, 2, 1), (2, 2, 0), (3, 2, 0)])
def test_conv_synops_equal_brute_force_with_padding_and_stride(k, stride, pad):
    torch.manual_seed(0)
    c_in, c_out, h, w, T, B = 2, 3, 5, 6, 4, 3
    conv = nn.Conv2d(c_in, c_out, k, stride=stride, padding=pad)
    with torch.no_grad():
        conv.weight.copy_(torch.rand_like(conv.weight) + 0.1)  # all non-zero
    model = nn.Sequential(TimeFolded(conv), Threshold())
    x = (torch.rand(T, B, c_in, h, w) < 0.3).float()
    rep = energy.estimate(model, x, devices=["loihi"], progress=False)
    fan, ho, wo = brute_conv_fanout(c_in, h, w, c_out, k, stride, pad)
    expected = float((x.numpy() * fan).sum() / B)
    syn = rep.layers[0]
    assert syn["synops"] == pytest.approx(expected)
    assert syn["spikes_in"] == pytest.approx(float(x.sum()) / B)
    assert syn["ann_macs"] == c_out * ho * wo * c_in * k * k
    assert rep.layers[1]["neuron_updates"] == T * c_out * ho * wo


def test_pruned_weights_do_not_count():
    conv = nn.Conv2d(1, 2, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.weight[1] = 0.0  # second output channel disconnected
    x = torch.zeros(1, 1, 1, 3, 3)
    x[0, 0, 0, 1, 1] = 1.0  # one spike in the centre: reaches 9 outputs of channel 0 only
    rep = energy.estimate(nn.Sequential(TimeFolded(conv), Threshold()), x, devices=["45nm"], progress=False)
    assert rep.layers[0]["synops"] == 9


def test_average_pooling_fanout_and_totals_equal_recorded_spikes():
    torch.manual_seed(1)
    model = nn.Sequential(TimeFolded(nn.AvgPool2d(2)), Threshold(), nn.Flatten(2), nn.Linear(4, 3), Threshold())
    x = (torch.rand(5, 4, 1, 4, 4) < 0.5).float()
    recorded = {}

    def keep(name):
        def hook(_m, _i, out):
            recorded[name] = out.detach().clone()
        return hook

    model[1].register_forward_hook(keep("pool_spikes"))
    rep = energy.estimate(model, x, devices=["45nm"], progress=False)
    pool, n1, lin, n2 = rep.layers
    assert pool["synops"] == pytest.approx(float(x.sum()) / 4)  # non-overlapping 2x2 windows: fan-out 1
    assert lin["synops"] == pytest.approx(float(recorded["pool_spikes"].sum()) * 3 / 4)
    assert rep.total("spikes_out") == pytest.approx(n1["spikes_out"] + n2["spikes_out"])
    assert rep.total("synops") == pytest.approx(pool["synops"] + lin["synops"])


def test_silent_network_costs_only_neuron_updates():
    model = nn.Sequential(nn.Linear(4, 6), Threshold(), nn.Linear(6, 2), Threshold())
    x = torch.zeros(7, 3, 4)
    rep = energy.estimate(model, x, devices=["loihi", "45nm"], progress=False)
    assert rep.total("synops") == 0 and rep.total("spikes_out") == 0 and rep.total("input_macs") == 0
    assert rep.total("neuron_updates") == 7 * (6 + 2)
    loihi = devices.get("loihi")
    assert rep.energy_j["loihi"] == pytest.approx(7 * 8 * loihi.neuron_update)


def test_analog_first_layer_input_counts_as_macs():
    model = nn.Sequential(nn.Linear(3, 2), Threshold())
    x = torch.tensor([[[0.2, 0.0, 0.7]]]).repeat(4, 1, 1)  # two non-zero analog values, 4 steps
    rep = energy.estimate(model, x, devices=["45nm"], progress=False)
    assert rep.layers[0]["input_macs"] == 4 * 2 * 2 and rep.layers[0]["synops"] == 0


def test_accuracy_energy_uses_cumulative_counts():
    model = nn.Sequential(nn.Linear(2, 2, bias=False), Threshold())
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(2))
    x = torch.zeros(4, 2, 2)
    x[:, 0, 0] = 1.0  # sample 0 drives output 0 every step
    x[2:, 1, 1] = 1.0  # sample 1 drives output 1 from step 2 on
    table = energy.accuracy_energy(model, x, torch.tensor([0, 1]), timesteps=[1, 4], devices=["45nm"],
                                   progress=False)
    assert table[1]["accuracy"] == 0.5  # sample 1 has no output yet at T=1: argmax of zeros is class 0
    assert table[4]["accuracy"] == 1.0
    assert table[1]["synops"] == pytest.approx(0.5) and table[4]["synops"] == pytest.approx((4 + 2) / 2)


def test_bad_input_is_named():
    model = nn.Sequential(nn.Linear(4, 2), Threshold())
    with pytest.raises(ValueError, match=r"unknown device 'tpu'; known devices: 45nm, arm, cpu"):
        energy.estimate(model, torch.zeros(2, 1, 4), devices=["tpu"], progress=False)
    with pytest.raises(ValueError, match=r"inputs must have shape \[T, B, 4\] \(time-major\), got \(2, 1, 5\)"):
        energy.estimate(model, torch.zeros(2, 1, 5), progress=False)
    with pytest.raises(ValueError, match="NaN"):
        energy.estimate(model, torch.full((2, 1, 4), float("nan")), progress=False)
    with pytest.raises(ValueError, match="unknown field 'flops'"):
        energy.estimate(model, torch.zeros(2, 1, 4), progress=False).total("flops")


def test_report_outputs(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    model = nn.Sequential(nn.Linear(4, 3), Threshold())
    rep = energy.estimate(model, torch.rand(3, 2, 4), progress=False)
    md = rep.to_markdown()
    assert "| device | SNN energy |" in md and "Davies et al. 2018" in md
    d = rep.to_dict()
    assert set(d["energy_j"]) == set(energy.DEFAULT_DEVICES)
    fig, _ = rep.plot()
    fig.savefig(tmp_path / "e.png")
    assert (tmp_path / "e.png").stat().st_size > 1000


def test_latency_and_energy_delay_product_for_a_device_with_a_step_time():
    chip = devices.DeviceSpec("test-chip", synop=1e-12, neuron_update=2e-12, step_time=1e-6, source="test")
    model = nn.Sequential(nn.Linear(4, 3), Threshold())
    rep = energy.estimate(model, torch.rand(10, 2, 4), devices=[chip, "45nm"], progress=False)
    assert rep.latency_s == {"test-chip": pytest.approx(10e-6)}
    assert rep.edp["test-chip"] == pytest.approx(rep.energy_j["test-chip"] * 10e-6)
    with pytest.raises(ValueError, match="synop must be a finite number >= 0"):
        devices.DeviceSpec("bad", synop=-1.0, neuron_update=0.0)
