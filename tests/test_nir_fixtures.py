"""Files written by other libraries' own NIR exporters replay with those libraries' own spikes.

Each pair in tests/data/nir was made by scripts/nir_fixtures/generate.py: ``<library>_<case>.nir`` written by
the library's exporter, ``<library>_<case>.npz`` the input and the spikes (or, for Sinabs' MultiSpike, spike
counts) the library itself produced, step by step. The replay must equal them exactly: every step, every
neuron, every sample.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import neuro

DATA = Path(__file__).parent / "data" / "nir"
CASES = sorted(p.stem for p in DATA.glob("*.npz"))
LIBRARIES = ("snntorch", "norse", "sinabs", "spikingjelly")
# what the library was told that its file does not say (snnTorch writes the same file for both resets)
OVERRIDES = {"snntorch_leaky_zero": {"reset": "zero"}}


def _replay(stem, **overrides):
    ref = np.load(DATA / f"{stem}.npz")
    library = stem.split("_")[0]
    with pytest.warns() if library == "sinabs" else _nothing():
        net = neuro.from_nir(DATA / f"{stem}.nir", convention=library, **overrides)
    with torch.no_grad():
        got = net(torch.from_numpy(ref["input"])).numpy()
    return ref, got


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_every_library_and_case_is_present():
    libs = {c.split("_")[0] for c in CASES}
    assert libs == set(LIBRARIES)
    for c in CASES:
        assert (DATA / f"{c}.nir").is_file()
    assert sum(p.stat().st_size for p in DATA.iterdir()) < 1_000_000


@pytest.mark.parametrize("stem", CASES)
def test_fixture_replays_exactly(stem):
    ref, got = _replay(stem, **OVERRIDES.get(stem, {}))
    expected = ref["output"]
    assert got.shape == expected.shape
    assert expected.sum() > 10 and (expected > 0).mean() < 0.6  # many spikes, not saturated
    mismatch = np.argwhere(got != expected)
    assert mismatch.size == 0, (f"{stem}: {len(mismatch)} of {expected.size} entries differ; first at "
                                f"[t, b, ...] = {mismatch[0].tolist()} (library {expected[tuple(mismatch[0])]}, "
                                f"ours {got[tuple(mismatch[0])]}); versions {json.loads(str(ref['versions']))}")


def test_sinabs_multispike_counts_are_exercised_and_single_spike_is_an_option():
    ref, got = _replay("sinabs_iaf")
    assert ref["output"].max() > 1  # the fixture has steps with several spikes
    _, single = _replay("sinabs_iaf", multi_spike=False)
    assert single.max() == 1 and not np.array_equal(single, ref["output"])


def test_snntorch_reset_override():
    # snnTorch writes the same file for reset_mechanism="zero" and "subtract": the override says which
    zero, got = _replay("snntorch_leaky_zero", reset="zero")
    assert np.array_equal(got, zero["output"])
    _, as_subtract = _replay("snntorch_leaky_zero")
    assert not np.array_equal(as_subtract, zero["output"])


def test_rlif_exports_with_its_cycle_and_round_trips_exactly(tmp_path):
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(neuro.nn.TimeDistributed(nn.Linear(5, 7)), neuro.nn.RLIF(7, beta=0.85))
    with torch.no_grad():
        net[1].recurrent.weight.mul_(2)
    graph = neuro.to_nir(net, (5,))
    assert ("1", "1_rec") in graph.edges and ("1_rec", "1") in graph.edges
    neuro.io.write(tmp_path / "rlif.nir", graph)
    back = neuro.from_nir(tmp_path / "rlif.nir")
    x = torch.rand(40, 3, 5) * 2
    with torch.no_grad():
        expected, got = net(x), back(x)
    assert 0.1 < expected.mean() < 0.6
    assert torch.equal(got, expected)


def test_recurrent_graph_against_numpy():
    # input -> lif -> w -> lif: v[t] = beta v[t-1] + x[t] + W S[t-1] + b, same-step reset to 0, v > 1
    import nir

    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.8, (4, 4)).astype(np.float32)
    b = rng.normal(0, 0.1, 4).astype(np.float32)
    dt = 1e-3
    tau = np.full(4, dt / (1 - 0.9), np.float32)
    g = nir.NIRGraph(nodes={"input": nir.Input({"input": np.array([4])}),
                            "lif": nir.LIF(tau=tau, r=tau / dt, v_leak=np.zeros(4, np.float32),
                                           v_threshold=np.ones(4, np.float32), v_reset=np.zeros(4, np.float32)),
                            "w": nir.Affine(weight=w, bias=b), "output": nir.Output({"output": np.array([4])})},
                     edges=[("input", "lif"), ("lif", "w"), ("w", "lif"), ("lif", "output")], type_check=False)
    x = rng.uniform(0, 0.6, (50, 2, 4)).astype(np.float32)
    net = neuro.from_nir(g, dt=dt, convention="spikingjelly", inclusive_threshold=False)
    with torch.no_grad():
        got = net(torch.from_numpy(x)).numpy()
    v, s, ref = np.zeros((2, 4)), np.zeros((2, 4)), []
    decay = 1 - dt / tau.astype(np.float64)
    for t in range(50):
        v = decay * v + x[t] + s @ w.T.astype(np.float64) + b
        s = (v > 1).astype(np.float64)
        v = np.where(s > 0, 0.0, v)
        ref.append(s)
    ref = np.stack(ref)
    assert 0.1 < ref.mean() < 0.6
    assert np.array_equal(got, ref)


def test_cycle_without_neuron_is_refused():
    import nir

    g = nir.NIRGraph(nodes={"input": nir.Input({"input": np.array([2])}),
                            "a": nir.Linear(weight=np.eye(2, dtype=np.float32)),
                            "b": nir.Linear(weight=np.eye(2, dtype=np.float32)),
                            "output": nir.Output({"output": np.array([2])})},
                     edges=[("input", "a"), ("a", "b"), ("b", "a"), ("b", "output")], type_check=False)
    with pytest.raises(neuro.io.NIRImportError, match=r"cycle a -> b -> a: no neuron"):
        neuro.from_nir(g)


def test_override_arguments_are_checked():
    path = DATA / "snntorch_leaky_subtract.nir"
    with pytest.raises(ValueError, match="reset must be 'subtract' or 'zero', got 'hard'"):
        neuro.from_nir(path, convention="snntorch", reset="hard")
    with pytest.raises(TypeError, match="multi_spike must be True or False, got 1"):
        neuro.from_nir(path, convention="sinabs", multi_spike=1)
    with pytest.raises(ValueError, match="integration must be 'euler' or 'exact', got 'rk4'"):
        neuro.from_nir(path, integration="rk4")
