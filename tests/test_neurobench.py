"""NeuroBench 2.3 run on our models through :mod:`neuro.neurobench`, against :func:`neuro.energy.estimate`.

NeuroBench is the independent reference: its ``SynapticOperations``, ``ActivationSparsity`` and
``MembraneUpdates`` run in the test on the same network and input. Where its definitions differ from ours,
the exact relation (derived in :mod:`neuro.neurobench`'s docstring) is asserted:

* synaptic operations are events x non-zero fan-out in both; NeuroBench calls a layer's operations MACs
  when its input is not all in {-1, 0, 1} (analog input, average-pooled spikes, a converted network's
  spikes that carry the threshold) and does not count pooling layers;
* a non-spiking readout (LI) outputs its membrane, whose non-zero values NeuroBench counts as activations;
* NeuroBench's membrane updates count only steps where the membrane changed (plus step 0); ours count every
  neuron at every step. The unchanged steps are counted here from a plain NumPy LIF.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import neuro
from neuro import energy
from neuro.nn import SpikingNeuron

neurobench = pytest.importorskip("neurobench", reason="NeuroBench 2.3 not installed (pip install 'neurobench==2.3.*')")
from neurobench.benchmarks import Benchmark  # noqa: E402
from neurobench.metrics.workload import ActivationSparsity, MembraneUpdates, SynapticOperations  # noqa: E402

from neuro.neurobench import to_neurobench  # noqa: E402

T, N, BATCH = 10, 6, 3  # two equal batches, so NeuroBench's batch-weighted sparsity is the global one


def run_neurobench(model: nn.Module, data: torch.Tensor, timesteps: int | None = None) -> dict:
    """NeuroBench's workload metrics; ``data`` in its layout ([N, T, ...], or static [N, ...])."""
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data, torch.zeros(len(data))),
                                         batch_size=BATCH)
    wrapped = to_neurobench(model, timesteps=timesteps)
    bench = Benchmark(wrapped, loader, [], [], [[], [SynapticOperations, ActivationSparsity, MembraneUpdates]])
    res = bench.run(quiet=True)
    wrapped.cleanup_hooks()
    return res


def ours(model: nn.Module, x_time_major: torch.Tensor):
    """Our report, its counts summed by layer type, and (spikes out, neuron updates) of the neuron layers."""
    rep = energy.estimate(model, x_time_major, devices=["45nm"], batch_size=BATCH, progress=False)
    by_type: dict[str, dict[str, float]] = {}
    for r in rep.layers:
        for f in ("synops", "input_macs", "spikes_out", "neuron_updates"):
            by_type.setdefault(r["type"], {}).setdefault(f, 0.0)
            by_type[r["type"]][f] += r[f]
    # only the neuron layers' rows: the report also has a neuron_updates row for neuro.nn.Flatten (see
    # test_flatten_is_not_counted_as_neurons)
    modules = dict(model.named_modules())
    neuron_rows = [r for r in rep.layers if isinstance(modules.get(r["name"]), SpikingNeuron)]
    spikes = sum(r["spikes_out"] for r in neuron_rows)
    updates = sum(r["neuron_updates"] for r in neuron_rows)
    return rep, by_type, (spikes, updates)


def numpy_lif(current: np.ndarray, beta: float, threshold: float):
    """snnTorch Leaky in float32: v[t] = beta v[t-1] + I[t] - S[t-1] thr, S[t] = v[t] > thr."""
    v = np.zeros(current.shape[1:], np.float32)
    s = np.zeros_like(v)
    vs, ss = [], []
    for t in range(current.shape[0]):
        v = np.float32(beta) * v + current[t] - s * np.float32(threshold)
        s = (v > np.float32(threshold)).astype(np.float32)
        vs.append(v)
        ss.append(s)
    return np.stack(vs), np.stack(ss)


def test_spiking_mlp_synops_sparsity_and_membrane_updates():
    torch.manual_seed(0)
    lin1, lin2 = nn.Linear(20, 32, bias=False), nn.Linear(32, 10, bias=False)
    with torch.no_grad():  # pruned synapses: the fan-out that counts is the non-zero one
        lin1.weight[torch.rand(lin1.weight.shape) < 0.3] = 0.0
        lin1.weight.mul_(2.0)
    net = nn.Sequential(neuro.nn.TimeDistributed(lin1), neuro.nn.LIF(beta=0.9),
                        neuro.nn.TimeDistributed(lin2), neuro.nn.LIF(beta=0.8, threshold=0.5))
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(T, N, 20, generator=g) < 0.3).float()
    x[:4, ::2] = 0.0  # silent start for half the samples: membranes that stay at 0 do not change
    nb = run_neurobench(net, x.transpose(0, 1).contiguous())
    rep, _, (spikes, updates) = ours(net, x)

    synops = nb["SynapticOperations"]
    assert rep.total("synops") > 0
    assert synops["Effective_ACs"] == rep.total("synops")
    assert synops["Effective_MACs"] == rep.total("input_macs") == 0.0
    # all-ones inputs through all-ones weights: T x the dense ANN MACs of each Linear
    assert synops["Dense"] == T * rep.total("ann_macs") == T * (20 * 32 + 32 * 10)

    assert 0 < spikes < updates
    assert nb["ActivationSparsity"] == pytest.approx(1.0 - spikes / updates, rel=1e-12)

    # membrane updates: NeuroBench skips steps where v did not change; count those with a NumPy LIF
    i1 = lin1(x).detach().numpy()
    v1, s1 = numpy_lif(i1, 0.9, 1.0)
    i2 = lin2(torch.from_numpy(s1)).detach().numpy()
    v2, s2 = numpy_lif(i2, 0.8, 0.5)
    np.testing.assert_array_equal(s2, net(x).detach().numpy())  # the reference is the same network
    unchanged = sum(int((v[1:] == v[:-1]).sum()) for v in (v1, v2))
    assert unchanged > 0
    assert updates == T * (32 + 10)
    assert nb["MembraneUpdates"] == pytest.approx((updates * N - unchanged) / N, rel=1e-12)


def test_conv_analog_input_pooling_and_readout():
    torch.manual_seed(2)
    net = nn.Sequential(
        neuro.nn.TimeDistributed(nn.Conv2d(2, 4, 3, padding=1)), neuro.nn.LIF(beta=0.9, threshold=0.5),
        neuro.nn.TimeDistributed(nn.AvgPool2d(2)), neuro.nn.Flatten(),
        neuro.nn.TimeDistributed(nn.Linear(4 * 4 * 4, 5)), neuro.nn.LI(beta=0.9),
    )
    g = torch.Generator().manual_seed(3)
    x = torch.rand(T, N, 2, 8, 8, generator=g)  # analog input
    nb = run_neurobench(net, x.transpose(0, 1).contiguous())
    rep, by, (spikes, updates) = ours(net, x)

    synops = nb["SynapticOperations"]
    assert by["Conv2d"]["input_macs"] > 0 and by["AvgPool2d"]["synops"] > 0 and by["Linear"]["synops"] > 0
    # the average of spikes is not in {-1, 0, 1}: NeuroBench calls the Linear's operations MACs; pooling
    # is no connection layer to it
    assert synops["Effective_MACs"] == by["Conv2d"]["input_macs"] + by["Linear"]["synops"]
    assert synops["Effective_ACs"] == 0
    assert rep.total("synops") == by["AvgPool2d"]["synops"] + by["Linear"]["synops"]

    # the LI readout's membrane is an activation to NeuroBench wherever it is non-zero
    with torch.no_grad():
        readout = net(x)
    li_nonzero = int(torch.count_nonzero(readout)) / N
    assert li_nonzero > 0 and by["LI"]["spikes_out"] == 0 and spikes == by["LIF"]["spikes_out"] > 0
    assert updates == T * (4 * 8 * 8 + 5)
    assert nb["ActivationSparsity"] == pytest.approx(1.0 - (spikes + li_nonzero) / updates, rel=1e-12)
    assert nb["MembraneUpdates"] <= updates


def test_converted_network_static_input():
    torch.manual_seed(4)
    ann = nn.Sequential(nn.Linear(12, 24), nn.ReLU(), nn.Linear(24, 16), nn.ReLU(), nn.Linear(16, 3))
    calib = torch.rand(64, 12)
    snn = neuro.convert.ann_to_snn(ann, calib, progress=False)
    scales = [float(m.scale.reshape(-1)[0]) for m in snn.neuron_layers().values()]
    assert len(scales) == 2 and all(s != 1.0 for s in scales)  # spikes carry the threshold, not 1
    x = torch.rand(N, 12, generator=torch.Generator().manual_seed(5))
    nb = run_neurobench(snn, x, timesteps=T)
    rep, _, (spikes, updates) = ours(snn, x.unsqueeze(0).expand(T, *x.shape).contiguous())

    synops = nb["SynapticOperations"]
    assert rep.total("input_macs") > 0 and rep.total("synops") > 0
    # first layer: analog input (MACs in both); later layers: graded spikes, MACs to NeuroBench
    assert synops["Effective_MACs"] == rep.total("input_macs") + rep.total("synops")
    assert synops["Effective_ACs"] == 0
    assert 0 < spikes < updates == T * (24 + 16)
    assert nb["ActivationSparsity"] == pytest.approx(1.0 - spikes / updates, rel=1e-12)
    # the wrapper presents the static batch as a constant input: the same outputs as a time-major call
    wrapped = to_neurobench(snn, timesteps=T)
    torch.testing.assert_close(wrapped(x), snn(x.unsqueeze(0).expand(T, *x.shape)).transpose(0, 1))


def test_wrapper_rejects_bad_arguments():
    net = nn.Sequential(neuro.nn.TimeDistributed(nn.Linear(4, 2)), neuro.nn.LIF(beta=0.9))
    with pytest.raises(TypeError, match="model"):
        to_neurobench("net")
    with pytest.raises(ValueError, match="timesteps"):
        to_neurobench(net, timesteps=0)
    with pytest.raises(ValueError, match=r"\[B, T, \.\.\.\]"):
        to_neurobench(net)(torch.rand(3, 4))


def test_flatten_is_not_counted_as_neurons():
    net = nn.Sequential(neuro.nn.TimeDistributed(nn.Conv2d(1, 2, 3)), neuro.nn.LIF(beta=0.9), neuro.nn.Flatten(),
                        neuro.nn.TimeDistributed(nn.Linear(2 * 2 * 2, 3)), neuro.nn.LIF(beta=0.9))
    rep = energy.estimate(net, torch.rand(4, 2, 1, 4, 4), devices=["45nm"], progress=False)
    assert rep.total("neuron_updates") == 4 * (2 * 2 * 2 + 3)
