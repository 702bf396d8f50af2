"""NIR: round trips are exact for every node type, files go through nir.write/nir.read, and snnTorch's
own NIR export and import agree with ours (snnTorch run in the same test)."""

import nir
import numpy as np
import pytest
import torch
from torch import nn

import neuro
from neuro.nn import TimeDistributed as TD


def _roundtrip(net, shape, tmp_path, x):
    path = tmp_path / "net.nir"
    neuro.io.write(path, net, shape, overwrite=True)
    back = neuro.from_nir(path)
    with torch.no_grad():
        torch.testing.assert_close(back(x), net(x), rtol=0, atol=0)
    return back


def test_every_neuron_type_round_trips_exactly(tmp_path):
    torch.manual_seed(0)
    x = torch.rand(20, 3, 6) * 2
    nets = [
        nn.Sequential(TD(nn.Linear(6, 5)), neuro.nn.LIF(beta=torch.rand(5) * 0.5 + 0.4, threshold=0.8)),
        nn.Sequential(TD(nn.Linear(6, 5)), neuro.nn.LIF(beta=0.9, reset="zero", reset_delay=False)),
        nn.Sequential(TD(nn.Linear(6, 5, bias=False)), neuro.nn.IF(threshold=1.2, v_init=0.3)),
        nn.Sequential(TD(nn.Linear(6, 5)), neuro.nn.CubaLIF(alpha=0.7, beta=0.85)),
        nn.Sequential(TD(nn.Linear(6, 4)), neuro.nn.LI(beta=0.8)),
    ]
    for net in nets:
        _roundtrip(net, (6,), tmp_path, x)


def test_conv_pool_flatten_round_trip(tmp_path):
    torch.manual_seed(1)
    net = nn.Sequential(TD(nn.Conv2d(1, 4, 3, padding=1, stride=1)), neuro.nn.LIF(beta=0.9),
                        TD(nn.AvgPool2d(2)), neuro.nn.Flatten(), TD(nn.Linear(4 * 4 * 4, 3)), neuro.nn.LIF(beta=0.8))
    x = torch.rand(12, 2, 1, 8, 8) * 3
    back = _roundtrip(net, (1, 8, 8), tmp_path, x)
    kinds = {type(n).__name__ for n in nir.read(str(tmp_path / "net.nir")).nodes.values()}
    assert {"Conv2d", "AvgPool2d", "Flatten", "Affine", "LIF"} <= kinds
    assert isinstance(back, neuro.io.NIRNetwork)


def test_converted_residual_network_round_trips(tmp_path):
    import digits_models as dm

    torch.manual_seed(0)
    xtr, ytr, xte, _ = dm.digits_split()
    ann = dm.train(dm.ResNet(), xtr, ytr, epochs=2)
    snn = neuro.convert.ann_to_snn(ann, xtr[:256], progress=False, v_init=0.5)
    x = xte[:8].unsqueeze(0).expand(16, 8, 1, 8, 8)
    _roundtrip(snn, (1, 8, 8), tmp_path, x)


def test_snntorch_export_imports_with_snntorch_spikes():
    snn = pytest.importorskip("snntorch")
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(2)
    fc1, fc2 = nn.Linear(8, 16), nn.Linear(16, 4)
    # per-neuron parameters: snnTorch's exporter writes empty shapes for scalar ones (a known bug)
    lif1 = snn.Leaky(beta=torch.full((16,), 0.9), threshold=torch.ones(16), init_hidden=True)
    syn2 = snn.Synaptic(alpha=torch.full((4,), 0.8), beta=torch.full((4,), 0.85), threshold=torch.ones(4),
                        init_hidden=True)
    ref = nn.Sequential(fc1, lif1, fc2, syn2)
    x = torch.rand(30, 5, 8) * 1.5
    graph = export_to_nir(ref, x[0, 0])
    spikes = []
    from snntorch import utils as snn_utils

    snn_utils.reset(ref)
    with torch.no_grad():
        for t in range(x.shape[0]):
            spikes.append(ref(x[t]))
    expected = torch.stack(spikes)
    ours = neuro.from_nir(graph, convention="snntorch")
    with torch.no_grad():
        got = ours(x)
    assert torch.equal(got, expected)


def test_our_export_imports_into_snntorch():
    pytest.importorskip("snntorch")
    from snntorch.import_nir import import_from_nir

    torch.manual_seed(3)
    # snnTorch's importer builds reset-to-zero, same-step neurons: export that kind of network
    net = nn.Sequential(TD(nn.Linear(6, 10)), neuro.nn.LIF(beta=0.9, reset="zero", reset_delay=False),
                        TD(nn.Linear(10, 3)), neuro.nn.LIF(beta=0.8, reset="zero", reset_delay=False))
    graph = neuro.to_nir(net, (6,))
    theirs = import_from_nir(graph)
    x = torch.rand(25, 4, 6) * 2
    with torch.no_grad():
        ours = net(x)
        state = None
        outs = []
        for t in range(x.shape[0]):
            out, state = theirs(x[t], state)
            outs.append(out)
    assert torch.equal(ours, torch.stack(outs))


def test_conventions_threshold_and_old_files(tmp_path):
    # Sinabs spikes when v >= thr: with an input that lands exactly on the threshold
    g = nir.NIRGraph(nodes={"input": nir.Input({"input": np.array([1])}),
                            "w": nir.Linear(weight=np.ones((1, 1), np.float32)),
                            "if": nir.IF(r=np.ones(1, np.float32), v_threshold=np.ones(1, np.float32),
                                         v_reset=np.zeros(1, np.float32)),
                            "output": nir.Output({"output": np.array([1])})},
                     edges=[("input", "w"), ("w", "if"), ("if", "output")])
    x = torch.full((4, 1, 1), 0.5)
    strict = neuro.from_nir(g, convention="neuro", dt=1.0)(x)
    inclusive = neuro.from_nir(g, convention="sinabs")(x)
    assert strict[:, 0, 0].tolist() == [0, 0, 1, 0]  # v > thr first at 1.5, then reset to v_reset = 0
    assert inclusive[:, 0, 0].tolist() == [0, 1, 0, 1]  # subtract reset: 0.5, 1.0 -> spike, 0.5, 1.0 -> spike
    with pytest.raises(ValueError, match="unknown NIR convention 'brian'"):
        neuro.from_nir(g, convention="brian")
    with pytest.raises(FileNotFoundError, match="no NIR file"):
        neuro.from_nir(tmp_path / "missing.nir")


def test_unsupported_nodes_are_listed():
    g = nir.NIRGraph(nodes={"input": nir.Input({"input": np.array([2])}),
                            "d": nir.Delay(delay=np.ones(2, np.float32)),
                            "output": nir.Output({"output": np.array([2])})},
                     edges=[("input", "d"), ("d", "output")])
    with pytest.raises(neuro.io.NIRImportError, match="d: Delay"):
        neuro.from_nir(g, dt=1e-3)
    with pytest.raises(neuro.io.NIRExportError, match="ALIF and RLIF are not in NIR"):
        neuro.to_nir(nn.Sequential(TD(nn.Linear(2, 2)), neuro.nn.ALIF(beta=0.9)), (2,))
