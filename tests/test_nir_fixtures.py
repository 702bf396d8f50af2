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
