"""Models written as equations against the hand-written numba steps they replaced, side by side in one run.

Izhikevich and AdEx became :class:`neuro.models.Equations` definitions (their kernels generated from the
equations). The hand-written scalar steps they had before are kept below, only as the speed and spike
reference: both run through the same multi-step CPU kernel factory on the same input, interleaved, and the
script reports throughput (neuron updates per second), their ratio and whether the spikes are identical.
Last line: one JSON object.

    python benchmarks/equation_models.py [--neurons N] [--steps T] [--threads K] [--repeats R]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numba
import numpy as np

from neuro import kernels
from neuro.models import AdEx, Izhikevich
from neuro.models._base import Dynamics

_ONE, _ZERO = np.float32(1.0), np.float32(0.0)
_C04, _C5, _C140, _EXP_CAP = np.float32(0.04), np.float32(5.0), np.float32(140.0), np.float32(20.0)


@numba.njit(inline="always")
def izhikevich_step(v, u, x, a, b, c, d, v_peak, dt):  # the hand-written step (before the equations)
    v_new = v + dt * (_C04 * v * v + _C5 * v + _C140 - u + x)
    u_new = u + dt * (a * (b * v - u))
    if v_new >= v_peak:
        return c, u_new + d, _ONE
    return v_new, u_new, _ZERO


@numba.njit(inline="always")
def adex_step(v, w, ref, x, C, g_l, e_l, delta_t, v_t, tau_w, a, b, v_reset, v_peak, t_ref, dt):  # noqa: N803
    w_new = w + dt * ((a * (v - e_l) - w) / tau_w)
    if ref > _ZERO:
        return v_reset, w_new, ref - _ONE, _ZERO
    arg = min((v - v_t) / delta_t, _EXP_CAP)
    v_new = v + dt * ((-g_l * (v - e_l) + g_l * delta_t * np.exp(arg) - w + x) / C)
    if v_new > v_peak:
        return v_reset, w_new + b, t_ref, _ONE
    return v_new, w_new, ref, _ZERO


HAND = {
    "izhikevich": Dynamics("bench_izhikevich_hand", ("v", "u"), ("a", "b", "c", "d", "v_peak"), (), izhikevich_step),
    "adex": Dynamics("bench_adex_hand", ("v", "w", "_ref"), ("C", "g_l", "e_l", "delta_t", "v_t", "tau_w", "a", "b",
                                                           "v_reset", "v_peak", "_t_ref"), (), adex_step),
}


def _case(name: str, n: int, T: int, rng):
    if name == "izhikevich":
        model, dt, x = Izhikevich(), 0.5, rng.uniform(0, 20, (T, n))
    else:
        model, dt, x = AdEx(tau_refrac=0.3), 0.1, rng.uniform(1.0, 4.0, (T, n))
    return model, dt, np.ascontiguousarray(x, np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neurons", type=int, default=200_000)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--threads", type=int, default=min(2, numba.config.NUMBA_NUM_THREADS))
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    numba.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    out = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "threads": args.threads,
           "neurons": args.neurons, "steps": args.steps, "load_avg": os.getloadavg()[0], "models": {}}
    for name in ("izhikevich", "adex"):
        model, dt, x = _case(name, args.neurons, args.steps, rng)
        params = model.kernel_params(dt)
        runs = {"equations": model.dynamics, "hand-written": HAND[name]}
        times = {k: [] for k in runs}
        spikes = {}
        for rep in range(args.repeats + 1):  # the first round compiles
            for label, dyn in runs.items():
                state = model.initial_state(args.neurons)
                t0 = time.perf_counter()
                s, _ = kernels.forward(dyn, x, state, params, {}, dt=dt)
                if rep:
                    times[label].append(time.perf_counter() - t0)
                spikes[label] = s
        med = {k: float(np.median(v)) for k, v in times.items()}
        ups = {k: args.neurons * args.steps / t / 1e9 for k, t in med.items()}
        out["models"][name] = {
            "G_updates_per_s": {k: round(v, 3) for k, v in ups.items()},
            "equations_time_ratio": round(med["equations"] / med["hand-written"], 3),
            "identical_spikes": bool(np.array_equal(spikes["equations"], spikes["hand-written"])),
            "spikes": int(spikes["equations"].sum()),
        }
        print(f"{name:>10}: equations {ups['equations']:.3f} G updates/s, hand-written {ups['hand-written']:.3f}; "
              f"time ratio {out['models'][name]['equations_time_ratio']}, identical spikes "
              f"{out['models'][name]['identical_spikes']}")
    print(json.dumps(out))


if __name__ == "__main__":
    # run as the importable module: the kernel factory imports a step by its module name, never from __main__
    import equation_models

    equation_models.main()
