"""Run neuron models in Brian2 (numpy target, float64) and save their spikes; executed by
tests/test_equations_brian2.py with the python of the brian2 toolchain venv (scripts/toolchains/brian2.txt).

Usage: python brian2_reference.py CASES.json CURRENT.npy OUT.npz
CASES.json: a list of {name, equations, threshold, reset, refractory, method, namespace: {name: [value, unit]},
initial: {name: [value, unit]}, input_unit}; CURRENT.npy: [T, N] input values in the project's units of each case's
input (converted with its input_unit). Writes for each case ``<name>_i`` and ``<name>_t`` (neuron index and
step index of every spike).
"""

import json
import sys

import brian2
import numpy as np
from brian2 import NeuronGroup, SpikeMonitor, TimedArray, defaultclock, ms, prefs, run, start_scope

prefs.codegen.target = "numpy"


def unit(text):
    return eval(text, vars(brian2)) if text != "1" else 1.0  # noqa: S307 - the test's own unit names


def main(cases_path, current_path, out_path):
    cases = json.load(open(cases_path))
    current = np.load(current_path).astype(np.float64)
    T, N = current.shape
    out = {}
    for case in cases:
        start_scope()
        defaultclock.dt = 0.1 * ms
        drive = TimedArray(current * unit(case["input_unit"]), dt=defaultclock.dt)
        ns = {k: v * unit(u) for k, (v, u) in case["namespace"].items()}
        ns["drive"] = drive
        eqs = case["equations"] + f"\nI = drive(t, i) : {case['input_annotation']}\n"
        ref = case["refractory"]
        ref = ref * ms if isinstance(ref, float | int) else ref
        g = NeuronGroup(N, eqs, threshold=case["threshold"], reset=case["reset"], refractory=ref,
                        method=case["method"], namespace=ns)
        for k, (v, u) in case["initial"].items():
            setattr(g, k, v * unit(u))
        mon = SpikeMonitor(g)
        run(T * defaultclock.dt)
        out[case["name"] + "_i"] = np.asarray(mon.i[:], np.int64)
        out[case["name"] + "_t"] = np.round(np.asarray(mon.t / defaultclock.dt)).astype(np.int64)
    np.savez(out_path, **out)


if __name__ == "__main__":
    main(*sys.argv[1:4])
