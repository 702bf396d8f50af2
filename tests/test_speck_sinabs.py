"""Speck output read by Sinabs itself: ``Speck.emit`` writes a nir 1.0.4 file; in the Sinabs venv
(``scripts/toolchains/sinabs.txt``) ``sinabs.from_nir`` imports it and Sinabs' own layers simulate it; the
spikes must equal neuro-snn's for the same file and input.

Our side: ``Speck.simulate`` (Sinabs' IAFSqueeze update with its clip at -thr, on neuro-snn's from_nir for the
synaptic layers) and ``neuro.from_nir(path, convention="sinabs")`` (no clip: checked where it cannot bind).
Weights, biases and thresholds in the file are integers, so every sum is exact in float32 and the spikes match
bit for bit. Sinabs' DynapcnnNetwork cannot be checked here: ``sinabs.backend.dynapcnn`` needs samna, which is
not installable from the registry.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

import neuro
from neuro.hardware_targets.speck import Speck
from tests.toolchains import run_in_venv, venv_python

pytestmark = pytest.mark.toolchain
TD = neuro.nn.TimeDistributed

SINABS_RUN = r"""
import json, sys
import numpy as np, torch, nir, nirtorch, sinabs, sinabs.layers as sl
from sinabs.activation import SingleSpike
out = {}
for path, xpath in zip(sys.argv[1::2], sys.argv[2::2]):
    x = np.load(xpath)                      # time-major [T, B, ...] spikes
    T, B = x.shape[:2]
    inp = torch.as_tensor(np.ascontiguousarray(np.swapaxes(x, 0, 1))).reshape(B * T, *x.shape[2:])
    for mode in ("multi", "single"):
        model = sinabs.from_nir(nir.read(path), batch_size=B)
        kinds = sorted({type(m).__name__ for m in model.modules()})
        for m in model.modules():
            if isinstance(m, sl.IAFSqueeze) and mode == "single":
                m.spike_fn = SingleSpike
        with torch.no_grad():
            y = model(inp)
        y = y[0] if isinstance(y, tuple) else y
        y = y.reshape(B, T, *y.shape[1:]).swapaxes(0, 1).numpy()
        np.save(path + f".{mode}.npy", y)
    out[path] = kinds
print(json.dumps({"modules": out, "sinabs": sinabs.__version__, "nir": nir.version, "torch": torch.__version__}))
"""


def _conv_net():
    torch.manual_seed(3)
    net = torch.nn.Sequential(TD(torch.nn.Conv2d(2, 4, 3, padding=1)), neuro.nn.IF(threshold=torch.tensor(
        [0.6, 0.8, 1.0, 1.2]).reshape(4, 1, 1)), TD(torch.nn.AvgPool2d(2)), TD(torch.nn.Conv2d(4, 6, 3, padding=1)),
        neuro.nn.IF(threshold=0.5), TD(torch.nn.AvgPool2d(2)), neuro.nn.Flatten(), TD(torch.nn.Linear(6 * 2 * 2, 5)),
        neuro.nn.IF(threshold=0.4))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d | torch.nn.Linear):
                m.weight.mul_(2.0)
    return neuro.to_nir(net, (2, 8, 8)), (2, 8, 8)


def _dense_net(nonneg: bool):
    torch.manual_seed(4)
    net = torch.nn.Sequential(TD(torch.nn.Linear(10, 16)), neuro.nn.IF(threshold=1.0), TD(torch.nn.Linear(16, 6)),
                              neuro.nn.IF(threshold=torch.linspace(0.5, 1.0, 6)))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.mul_(3.0)
                if nonneg:
                    m.weight.abs_()
                    m.bias.abs_()
    return neuro.to_nir(net, (10,)), (10,)


@pytest.fixture(scope="module")
def sinabs_runs(tmp_path_factory):
    py = venv_python("sinabs")
    folder = tmp_path_factory.mktemp("speck")
    rng = np.random.default_rng(0)
    cases = {"conv": _conv_net(), "dense": _dense_net(False), "dense_nonneg": _dense_net(True)}
    args, inputs = [], {}
    for name, (graph, shape) in cases.items():
        path = folder / f"{name}.nir"
        Speck().emit(graph, path)
        x = (rng.random((25, 3, *shape)) < 0.35).astype(np.float32)
        np.save(folder / f"{name}.npy", x)
        args += [str(path), str(folder / f"{name}.npy")]
        inputs[name] = (path, x)
    info = json.loads(run_in_venv(py, SINABS_RUN, *args).strip().splitlines()[-1])
    results = {name: {m: np.load(f"{path}.{m}.npy") for m in ("multi", "single")} for name, (path, _) in
               inputs.items()}
    return inputs, results, info


@pytest.mark.parametrize("case", ["conv", "dense"])
@pytest.mark.parametrize("mode", ["multi", "single"])
def test_sinabs_spikes_equal_speck_simulate(sinabs_runs, case, mode):
    inputs, results, info = sinabs_runs
    path, x = inputs[case]
    ours = Speck().simulate(path, torch.as_tensor(x), multi_spike=(mode == "multi")).numpy()
    theirs = results[case][mode]
    assert ours.shape == theirs.shape
    assert theirs.sum() > 0, "no output spikes: the comparison would be empty"
    np.testing.assert_array_equal(ours, theirs)


def test_sinabs_imports_our_layers_as_its_own(sinabs_runs):
    _, _, info = sinabs_runs
    assert info["nir"] == "1.0.4" and info["sinabs"].startswith("3.")
    conv = info["modules"][next(k for k in info["modules"] if k.endswith("conv.nir"))]
    assert {"Conv2d", "IAFSqueeze", "SumPool2d", "Linear", "Flatten"} <= set(conv)


def test_multispike_occurs_and_differs_from_single(sinabs_runs):
    """The conv case drives some neurons past 2 thresholds in a step: Sinabs' default MultiSpike then emits
    counts > 1, which our Speck.simulate reproduces (checked above) and single-spike readers cannot."""
    _, results, _ = sinabs_runs
    assert results["conv"]["multi"].max() > 1 or results["dense"]["multi"].max() > 1


@pytest.mark.parametrize("mode", ["multi", "single"])
def test_neuro_from_nir_sinabs_convention_equals_sinabs(sinabs_runs, mode):
    """neuro.from_nir(file, convention="sinabs") (MultiSpike by default, ``multi_spike=False`` for one spike a
    step) does not clip the membrane at -thr as Sinabs' IAFSqueeze does: with non-negative weights and biases
    the membrane never goes below 0, so there it must equal Sinabs exactly."""
    inputs, results, _ = sinabs_runs
    path, x = inputs["dense_nonneg"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the file's IF nodes have no v_reset (nir 1.0.4): read as subtract
        net = neuro.from_nir(path, convention="sinabs", multi_spike=(mode == "multi"))
    with torch.no_grad():
        ours = net(torch.as_tensor(x)).numpy()
    assert results["dense_nonneg"][mode].sum() > 0
    np.testing.assert_array_equal(ours, results["dense_nonneg"][mode])
