"""Brian2's equation blocks pasted into neuro.models.Equations give Brian2's spikes.

16 neurons, each driven by its own current trace, for 1 s at dt = 0.1 ms; Brian2 (numpy target, float64) runs
in its own venv (scripts/toolchains/brian2.txt, built once and cached; the test skips when it cannot be built).
Done when at least 99% of Brian2's spikes are matched by ours within one step on the same neuron, and 99% of
ours by Brian2's. The equation text is the same string on both sides; parameters are floats in the project's
units here, and the same values with Brian2 units there.
"""

import json
import pathlib

import numpy as np
import pytest
from toolchains import run_in_venv, venv_python

from neuro.models import Equations

HERE = pathlib.Path(__file__).parent
T, N, DT = 10_000, 16, 0.1

CASES = [
    dict(name="lif", method="exact", refractory=2.0, threshold="v > v_th", reset="v = v_reset",
         equations="dv/dt = (El - v + R*I) / tau : volt (unless refractory)",
         params={"El": (-65.0, "mV"), "R": (100.0, "Mohm"), "tau": (10.0, "ms"), "v_th": (-50.0, "mV"),
                 "v_reset": (-70.0, "mV")},
         initial={"v": (-65.0, "mV")}, current=(0.14, 0.12), input_annotation="amp", input_unit="nA"),
    dict(name="adaptive_lif", method="exact", refractory=2.0, threshold="v > v_th", reset="v = v_reset; w += b",
         equations="""
             dv/dt = (El - v + R*I - R*w) / tau_m : volt (unless refractory)
             dw/dt = (a*(v - El) - w) / tau_w : amp
         """,
         params={"El": (-65.0, "mV"), "R": (100.0, "Mohm"), "tau_m": (10.0, "ms"), "v_th": (-50.0, "mV"),
                 "v_reset": (-70.0, "mV"), "a": (0.002, "uS"), "b": (0.02, "nA"), "tau_w": (100.0, "ms")},
         initial={"v": (-65.0, "mV"), "w": (0.0, "nA")}, current=(0.22, 0.15), input_annotation="amp",
         input_unit="nA"),
    dict(name="adex", method="euler", refractory=0.0, threshold="v > Vcut", reset="v = Vr; w += b",
         equations="""
             dv/dt = (gL*(EL - v) + gL*DeltaT*exp((v - VT)/DeltaT) + I - w)/C : volt
             dw/dt = (a*(v - EL) - w)/tauw : amp
         """,
         params={"gL": (0.03, "uS"), "EL": (-70.6, "mV"), "DeltaT": (2.0, "mV"), "VT": (-50.4, "mV"),
                 "C": (0.281, "nF"), "a": (0.004, "uS"), "tauw": (144.0, "ms"), "Vcut": (-40.4, "mV"),
                 "Vr": (-70.6, "mV"), "b": (0.0805, "nA")},
         initial={"v": (-70.6, "mV"), "w": (0.0, "nA")}, current=(0.8, 0.3), input_annotation="amp",
         input_unit="nA"),
    dict(name="izhikevich", method="euler", refractory=0.0, threshold="v >= 30*mV", reset="v = c; u += d",
         equations="""
             dv/dt = (0.04/ms/mV)*v**2 + (5/ms)*v + 140*mV/ms - u + I : volt
             du/dt = a*(b*v - u) : volt/second
         """,
         params={"a": (0.02, "1/ms"), "b": (0.2, "1/ms"), "c": (-65.0, "mV"), "d": (8.0, "mV/ms")},
         initial={"v": (-65.0, "mV"), "u": (-13.0, "mV/ms")}, current=(8.0, 4.0), input_annotation="volt/second",
         input_unit="mV/ms"),
    dict(name="hh", method="exponential_euler", refractory=3.0, threshold="v > -20*mV", reset="",
         equations="""
             dv/dt = (gl*(El-v) - g_na*(m*m*m)*h*(v-ENa) - g_kd*(n*n*n*n)*(v-EK) + I)/Cm : volt
             dm/dt = alpha_m*(1-m)-beta_m*m : 1
             dn/dt = alpha_n*(1-n)-beta_n*n : 1
             dh/dt = alpha_h*(1-h)-beta_h*h : 1
             alpha_m = 0.32*(mV**-1)*4*mV/exprel((13.*mV-v+VT)/(4*mV))/ms : Hz
             beta_m = 0.28*(mV**-1)*5*mV/exprel((v-VT-40.*mV)/(5*mV))/ms : Hz
             alpha_h = 0.128*exp((17.*mV-v+VT)/(18.*mV))/ms : Hz
             beta_h = 4./(1+exp((40.*mV-v+VT)/(5.*mV)))/ms : Hz
             alpha_n = 0.032*(mV**-1)*5*mV/exprel((15.*mV-v+VT)/(5.*mV))/ms : Hz
             beta_n = .5*exp((10.*mV-v+VT)/(40.*mV))/ms : Hz
         """,
         params={"gl": (0.01, "uS"), "El": (-60.0, "mV"), "g_na": (20.0, "uS"), "ENa": (50.0, "mV"),
                 "g_kd": (6.0, "uS"), "EK": (-90.0, "mV"), "Cm": (0.2, "nF"), "VT": (-63.0, "mV")},
         initial={"v": (-65.0, "mV"), "m": (0.05, "1"), "n": (0.3, "1"), "h": (0.6, "1")}, current=(0.5, 0.3),
         input_annotation="amp", input_unit="nA"),
]


def _currents(mean, spread):
    """One smooth, noisy trace a neuron, held over each step: the same array goes to both simulators."""
    rng = np.random.default_rng(7)
    t = np.arange(T) * DT
    base = mean + spread * np.linspace(-1, 1, N)
    slow = 0.3 * spread * np.sin(2 * np.pi * t[:, None] / rng.uniform(50, 300, N))
    noise = np.cumsum(rng.normal(0, 1, (T, N)), 0)
    noise = 0.2 * spread * (noise - noise.mean(0)) / (noise.std(0) + 1e-9)
    return (base + slow + noise).astype(np.float32)


def _match(ours: list[np.ndarray], theirs: list[np.ndarray]) -> float:
    """Fraction of ``theirs``' spikes with one of ``ours`` within one step on the same neuron (greedy 1:1)."""
    hit = total = 0
    for a, b in zip(ours, theirs, strict=True):
        used = np.zeros(len(a), bool)
        for tb in b:
            total += 1
            near = np.nonzero((np.abs(a - tb) <= 1) & ~used)[0]
            if near.size:
                used[near[0]] = True
                hit += 1
    return hit / max(total, 1)


@pytest.fixture(scope="module")
def brian2_spikes(tmp_path_factory):
    py = venv_python("brian2")
    tmp = tmp_path_factory.mktemp("brian2")
    cases = [dict(name=c["name"], equations=c["equations"], threshold=c["threshold"], reset=c["reset"],
                  refractory=c["refractory"], method=c["method"], namespace=c["params"], initial=c["initial"],
                  input_annotation=c["input_annotation"], input_unit=c["input_unit"]) for c in CASES]
    out = {}
    for c in CASES:
        (tmp / "cases.json").write_text(json.dumps([d for d in cases if d["name"] == c["name"]]))
        np.save(tmp / "current.npy", _currents(*c["current"]))
        run_in_venv(py, (HERE / "brian2_reference.py").read_text().replace('if __name__ == "__main__":', "if True:"),
                    tmp / "cases.json", tmp / "current.npy", tmp / f"{c['name']}.npz", timeout=900)
        out[c["name"]] = dict(np.load(tmp / f"{c['name']}.npz"))
    return out


@pytest.mark.toolchain
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_brian2_blocks_give_brian2_spikes(case, brian2_spikes):
    model = Equations(case["equations"], threshold=case["threshold"], reset=case["reset"],
                      refractory=case["refractory"], method=case["method"],
                      initial={k: v for k, (v, _) in case["initial"].items()},
                      **{k: v for k, (v, _) in case["params"].items()})
    res = model.simulate(_currents(*case["current"]), dt=DT)
    ours = [np.nonzero(res.spikes[:, i])[0] for i in range(N)]
    b = brian2_spikes[case["name"]]
    theirs = [np.sort(b[f"{case['name']}_t"][b[f"{case['name']}_i"] == i]) for i in range(N)]
    n_theirs, n_ours = sum(map(len, theirs)), sum(map(len, ours))
    assert n_theirs > 10 * N, f"Brian2 fired only {n_theirs} spikes: the test would prove little"
    fwd, back = _match(ours, theirs), _match(theirs, ours)
    print(f"{case['name']}: Brian2 {n_theirs} spikes, ours {n_ours}; matched {fwd:.4f} / {back:.4f}")
    assert fwd >= 0.99 and back >= 0.99, (fwd, back, n_theirs, n_ours)
