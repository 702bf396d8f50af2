"""Models written as equations against the hand-written numba steps they replaced, side by side in one run.

Izhikevich, AdEx, LIF and IF (LIF's kernels), CubaLIF and ALIF became :class:`neuro.models.Equations` definitions
(their kernels generated from the equations). The hand-written scalar steps they had before are kept below, only as
the speed and spike reference: both run through the same multi-step CPU kernel factory on the same input,
interleaved, and the script reports throughput (neuron updates per second), their ratio, whether the spikes are
identical and the largest membrane difference. Forward cases also report the paired ratio (median over rounds of
the two times measured in the same round) and, with ``--control``, the same for the hand-written kernel run twice
(the harness's own scatter: a difference no larger than that is noise). Cases:

* ``izhikevich``, ``adex``: ``--neurons`` x ``--steps`` (default 200,000 x 200);
* ``lif_roofline``: the workload of ``benchmarks/kernel_roofline.py`` (``LIF.discrete(0.9, 1.0)``, snnTorch's
  subtract-at-next-step reset, N = 1,000,000 x T = 100, packed kernels);
* ``lif_physical``: ``LIF(tau_refrac=2.0)`` (reset to value in the same step, refractory clamp), dt 0.1 ms,
  ``--neurons`` x ``--steps``;
* ``cuba_discrete`` (snnTorch's ``Synaptic``, next-step subtract) and ``cuba_physical`` (``CubaLIF(tau_refrac=2.0)``,
  dt 0.1 ms): ``--neurons`` x ``--steps``, against the hand-written CubaLIF step;
* ``cuba_train``: the same MLP training step with ``neuro.nn.CubaLIF(alpha=0.9, beta=0.8)`` layers;
* ``alif_discrete`` (``ALIF.discrete(beta=0.9, threshold=1.0, adapt_decay=0.95, adapt_gain=0.1)``, subtract in the
  same step) and ``alif_physical`` (``ALIF(tau_refrac=2.0)``, reset to value, dt 0.1 ms): ``--neurons`` x
  ``--steps``, against the hand-written ALIF step;
* ``alif_train``: the same MLP training step with ``neuro.nn.ALIF(beta=0.9, adapt_gain=0.1)`` layers (LSNN-style
  adaptation, subtract reset);
* ``lif_train``: the MLP training step of ``benchmarks/train_step.py`` (784-1000-10, two ``neuro.nn.LIF``
  layers, T = 25, B = 128: forward and backward kernels) with the generated and the hand-written LIF kernels
  in one process, steps interleaved; spikes and gradients compared after the first step.

Last line: one JSON object.

    python benchmarks/equation_models.py [--cases a,b] [--neurons N] [--steps T] [--threads K] [--repeats R]
                                         [--control]
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
from neuro.models import ALIF, LIF, AdEx, CubaLIF, Izhikevich, alif, cuba_lif, lif
from neuro.models._base import RESET_SUBTRACT, RESET_TO_VALUE, Dynamics
from neuro.models._spiking import delayed_reset, fire, fire_vjp

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


@numba.njit(inline="always")
def lif_step(v, ref, x, decay, gain, v_leak, threshold, v_reset, t_ref, reset_mode, reset_delay, dt):  # hand-written
    v_base, sub, ref, _ = delayed_reset(v, ref, threshold, v_reset, t_ref, reset_mode, reset_delay)
    v_int = v_leak + decay * (v_base - v_leak) + gain * x - sub
    return fire(v_int, ref, threshold, v_reset, t_ref, reset_mode, reset_delay)


def lif_make_backward(surrogate):  # the hand-written backward step (before the equations)
    @numba.njit(inline="always")
    def backward(v, ref, x, decay, gain, v_leak, threshold, v_reset, t_ref, reset_mode, reset_delay, dt,
                 slope, g_spike, g_v_new, g_ref_new):
        v_base, sub, ref1, fired = delayed_reset(v, ref, threshold, v_reset, t_ref, reset_mode, reset_delay)
        if ref1 > _ZERO:
            return _ZERO, _ZERO, _ZERO, _ZERO, _ZERO, _ZERO, _ZERO, g_v_new, _ZERO
        v_int = v_leak + decay * (v_base - v_leak) + gain * x - sub
        sgv = surrogate(v_int - threshold, slope)
        g_int, g_thr, g_vr = fire_vjp(sgv, v_int, threshold, v_reset, reset_mode, reset_delay, g_spike, g_v_new)
        g_v = g_int * decay
        if fired > _ZERO:
            if reset_mode == RESET_SUBTRACT:
                g_thr -= g_int
            elif reset_mode == RESET_TO_VALUE:
                g_vr += g_v
                g_v = _ZERO
        return (g_v, _ZERO, g_int * gain, g_int * (v_base - v_leak), g_int * x, g_int * (_ONE - decay),
                g_thr, g_vr, _ZERO)

    return backward


@numba.njit(inline="always")
def cuba_step(i, v, ref, x, syn_decay, mem_decay, syn_gain, i_old, i_new, v_leak, threshold, v_reset, t_ref,
              reset_mode, reset_delay, dt):  # the hand-written CubaLIF step (before the equations)
    v_base, sub, ref, _ = delayed_reset(v, ref, threshold, v_reset, t_ref, reset_mode, reset_delay)
    i_n = syn_decay * i + syn_gain * x
    v_int = v_leak + mem_decay * (v_base - v_leak) + i_old * i + i_new * i_n - sub
    v_new, ref, spike = fire(v_int, ref, threshold, v_reset, t_ref, reset_mode, reset_delay)
    return i_n, v_new, ref, spike


def cuba_make_backward(surrogate):  # the hand-written CubaLIF backward step
    @numba.njit(inline="always")
    def backward(i, v, ref, x, syn_decay, mem_decay, syn_gain, i_old, i_new, v_leak, threshold, v_reset,
                 t_ref, reset_mode, reset_delay, dt, slope, g_spike, g_i_new, g_v_new, g_ref_new):
        v_base, sub, ref1, fired = delayed_reset(v, ref, threshold, v_reset, t_ref, reset_mode, reset_delay)
        i_n = syn_decay * i + syn_gain * x
        if ref1 > _ZERO:  # membrane clamped; the synaptic current still integrates
            g_in = g_i_new
            return (g_in * syn_decay, _ZERO, _ZERO, g_in * syn_gain, g_in * i, _ZERO, g_in * x, _ZERO, _ZERO, _ZERO,
                    _ZERO, g_v_new, _ZERO)
        v_int = v_leak + mem_decay * (v_base - v_leak) + i_old * i + i_new * i_n - sub
        sgv = surrogate(v_int - threshold, slope)
        g_int, g_thr, g_vr = fire_vjp(sgv, v_int, threshold, v_reset, reset_mode, reset_delay, g_spike, g_v_new)
        g_v = g_int * mem_decay
        if fired > _ZERO:
            if reset_mode == RESET_SUBTRACT:
                g_thr -= g_int
            elif reset_mode == RESET_TO_VALUE:
                g_vr += g_v
                g_v = _ZERO
        g_in = g_i_new + g_int * i_new
        g_i = g_in * syn_decay + g_int * i_old
        return (g_i, g_v, _ZERO, g_in * syn_gain, g_in * i, g_int * (v_base - v_leak), g_in * x, g_int * i,
                g_int * i_n, g_int * (_ONE - mem_decay), g_thr, g_vr, _ZERO)

    return backward


@numba.njit(inline="always")
def alif_step(v, a, ref, x, decay, gain, v_leak, threshold, v_reset, t_ref, adapt_decay, adapt_gain, reset_mode,
              dt):  # the hand-written ALIF step (before the equations)
    theta = threshold + adapt_gain * a
    v_int = v_leak + decay * (v - v_leak) + gain * x
    v_new, ref, spike = fire(v_int, ref, theta, v_reset, t_ref, reset_mode, 0)
    return v_new, adapt_decay * a + spike, ref, spike


def alif_make_backward(surrogate):  # the hand-written ALIF backward step
    @numba.njit(inline="always")
    def backward(v, a, ref, x, decay, gain, v_leak, threshold, v_reset, t_ref, adapt_decay, adapt_gain,
                 reset_mode, dt, slope, g_spike, g_v_new, g_a_new, g_ref_new):
        g_a = g_a_new * adapt_decay
        g_rho = g_a_new * a
        if ref > _ZERO:  # clamped, no spike
            return _ZERO, g_a, _ZERO, _ZERO, _ZERO, _ZERO, _ZERO, _ZERO, g_v_new, _ZERO, g_rho, _ZERO
        theta = threshold + adapt_gain * a
        v_int = v_leak + decay * (v - v_leak) + gain * x
        sgv = surrogate(v_int - theta, slope)
        g_int, g_theta, g_vr = fire_vjp(sgv, v_int, theta, v_reset, reset_mode, 0, g_spike + g_a_new, g_v_new)
        g_a += g_theta * adapt_gain
        return (g_int * decay, g_a, _ZERO, g_int * gain, g_int * (v - v_leak), g_int * x, g_int * (_ONE - decay),
                g_theta, g_vr, _ZERO, g_rho, g_theta * a)

    return backward


HAND = {
    "alif": Dynamics("bench_alif_hand", alif.DYNAMICS.state,  # the hand-written step's own parameter order
                     ("decay", "gain", "v_leak", "threshold", "v_reset", "t_ref", "adapt_decay", "adapt_gain"),
                     alif.DYNAMICS.options, alif_step, alif_make_backward),

    "cuba_lif": Dynamics("bench_cuba_lif_hand", cuba_lif.DYNAMICS.state, cuba_lif.DYNAMICS.params,
                         cuba_lif.DYNAMICS.options, cuba_step, cuba_make_backward),
    "lif": Dynamics("bench_lif_hand", lif.DYNAMICS.state, lif.DYNAMICS.params, lif.DYNAMICS.options, lif_step,
                    lif_make_backward),
    "izhikevich": Dynamics("bench_izhikevich_hand", ("v", "u"), ("a", "b", "c", "d", "v_peak"), (), izhikevich_step),
    "adex": Dynamics("bench_adex_hand", ("v", "w", "_ref"), ("C", "g_l", "e_l", "delta_t", "v_t", "tau_w", "a", "b",
                                                           "v_reset", "v_peak", "_t_ref"), (), adex_step),
}


def _case(name: str, n: int, T: int, rng):
    if name == "izhikevich":
        model, dt, x = Izhikevich(), 0.5, rng.uniform(0, 20, (T, n))
    elif name == "adex":
        model, dt, x = AdEx(tau_refrac=0.3), 0.1, rng.uniform(1.0, 4.0, (T, n))
    elif name == "lif_roofline":  # benchmarks/kernel_roofline.py's workload and input
        n, T = 1_000_000, 100
        model, dt = LIF.discrete(beta=0.9, threshold=1.0), 1.0
        x = rng.standard_normal((T, n), dtype=np.float32) * np.float32(0.5) + np.float32(0.3)
    elif name == "lif_physical":
        model, dt, x = LIF(tau_refrac=2.0), 0.1, rng.uniform(1.0, 4.0, (T, n))
    elif name == "alif_discrete":
        model, dt = ALIF.discrete(beta=0.9, threshold=1.0, adapt_decay=0.95, adapt_gain=0.1), 1.0
        x = rng.standard_normal((T, n), dtype=np.float32) * np.float32(0.5) + np.float32(0.3)
    elif name == "alif_physical":
        model, dt, x = ALIF(tau_refrac=2.0), 0.1, rng.uniform(1.0, 4.0, (T, n))
    elif name == "cuba_discrete":  # snnTorch's Synaptic
        model, dt = CubaLIF.discrete(alpha=0.9, beta=0.8, threshold=1.0), 1.0
        x = rng.standard_normal((T, n), dtype=np.float32) * np.float32(0.5) + np.float32(0.1)
    else:  # cuba_physical
        model, dt, x = CubaLIF(tau_refrac=2.0), 0.1, rng.uniform(0.0, 0.6, (T, n))
    return model, dt, np.ascontiguousarray(x, np.float32)


def _hand(name: str) -> Dynamics:
    kind = name.split("_")[0]
    return HAND[{"cuba": "cuba_lif", "lif": "lif", "alif": "alif"}.get(kind, name)]


def forward_case(name: str, args, rng) -> dict:
    model, dt, x = _case(name, args.neurons, args.steps, rng)
    n, T = x.shape[1], x.shape[0]
    runs = {"equations": model.dynamics, "hand-written": _hand(name)}
    if args.control:  # A/A: the same hand-written kernel once more, on its own arrays: the harness's own scatter
        runs["control"] = runs["hand-written"]
    # packed by name for each: the hand-written steps may take their parameters in another order
    params = {k: kernels.pack_params(dyn, model.kernel_params(dt), n) for k, dyn in runs.items()}
    opts = kernels.pack_options(model.dynamics, model.kernel_options())
    init = {k: kernels.pack_state(dyn, model.initial_state(n), n) for k, dyn in runs.items()}
    times = {k: [] for k in runs}
    spikes, states = {}, {}
    for rep in range(args.repeats + 1):  # the first round compiles; the order changes between rounds
        for label in _order(list(runs), rep):
            dyn = runs[label]
            state = init[label].copy()
            out = np.empty_like(x)
            t0 = time.perf_counter()
            kernels.forward_packed(dyn, x, state, params[label], opts, dt, spikes=out)
            if rep:
                times[label].append(time.perf_counter() - t0)
            spikes[label], states[label] = out, state
    med = {k: float(np.median(v)) for k, v in times.items()}
    ups = {k: n * T / t / 1e9 for k, t in med.items()}
    diff = np.nonzero((spikes["equations"] != spikes["hand-written"]).any(axis=1))[0]
    res = {
        "neurons": n, "steps": T,
        "G_updates_per_s": {k: round(v, 3) for k, v in ups.items()},
        "equations_time_ratio": round(med["equations"] / med["hand-written"], 3),
        "equations_time_ratio_paired": _paired(times, "equations"),
        "identical_spikes": bool(diff.size == 0),
        "first_differing_step": int(diff[0]) if diff.size else None,
        "max_abs_dstate_final": float(np.max(np.abs(states["equations"] - states["hand-written"]))),
        "spikes": int(spikes["equations"].sum()),
    }
    control = ""
    if args.control:
        res["control_time_ratio_paired"] = _paired(times, "control")
        control = f", control (hand-written again) {res['control_time_ratio_paired']}"
    print(f"{name:>13}: equations {ups['equations']:.3f} G updates/s, hand-written {ups['hand-written']:.3f}; "
          f"time ratio {res['equations_time_ratio']} (paired {res['equations_time_ratio_paired']}{control}), "
          f"identical spikes {res['identical_spikes']}, max |d state| {res['max_abs_dstate_final']:.3g}", flush=True)
    return res


def _order(labels: list[str], rep: int) -> list[str]:
    """Run order of round ``rep``: two runs alternate; three rotate, the rotation reversed every other cycle, so
    each run is first, middle and last, and follows each other run, equally often."""
    if len(labels) == 2:
        return labels[::1 if rep % 2 else -1]
    k = rep % len(labels)
    order = labels[k:] + labels[:k]
    return order[::-1] if (rep // len(labels)) % 2 else order


def _paired(times: dict[str, list[float]], label: str) -> float:
    """Median over rounds of ``label``'s time / the hand-written time in the same round: a load change between
    rounds (this machine's throughput varies 3x within minutes) cancels, unlike in the ratio of the medians."""
    return round(float(np.median(np.asarray(times[label]) / np.asarray(times["hand-written"]))), 3)


def _mlp(kind: str):
    """train_step.py's MLP with snnTorch-style CubaLIF (Synaptic) or ALIF layers in place of LIF."""
    import torch
    import train_step

    import neuro
    from neuro.nn import TimeDistributed as TD

    def layer():
        return neuro.nn.CubaLIF(alpha=0.9, beta=0.8) if kind == "cuba" else neuro.nn.ALIF(beta=0.9, adapt_gain=0.1)

    net = torch.nn.Sequential(TD(torch.nn.Linear(784, 1000)), layer(), TD(torch.nn.Linear(1000, 10)))
    out = layer()

    def step(x, y):
        _, mem = out(net(x), return_v=True)
        return train_step._membrane_ce(mem)(y)

    return torch.nn.ModuleList([net, out]), step


def train_case(args, kind: str = "lif") -> dict:
    """train_step.py's MLP step (LIF, CubaLIF or ALIF layers), generated and hand-written kernels in one process,
    interleaved."""
    import torch
    import train_step

    torch.set_num_threads(args.threads)
    nets = {}
    layer, gen = {"lif": ("LIF", lif.DYNAMICS), "cuba": ("CubaLIF", cuba_lif.DYNAMICS),
                  "alif": ("ALIF", alif.DYNAMICS)}[kind]
    for label, dyn in (("equations", gen), ("hand-written", _hand(kind))):
        torch.manual_seed(0)
        params, step = train_step.neuro_mlp() if kind == "lif" else _mlp(kind)
        for m in params.modules():
            if type(m).__name__ == layer:
                m.dynamics = dyn  # instance attribute: this layer runs these kernels
        nets[label] = (params, step, torch.optim.Adam(params.parameters(), lr=1e-3))
    x, y = train_step._data("neuro_mlp")
    times = {k: [] for k in nets}
    grads = {}
    for rep in range(args.repeats + 2):  # two warm-up rounds compile and let Adam allocate
        for label, (params, step, opt) in list(nets.items())[::1 if rep % 2 else -1]:
            t0 = time.perf_counter()
            loss = step(x, y)
            opt.zero_grad()
            loss.backward()
            if rep == 0:
                grads[label] = [p.grad.clone() for p in params.parameters()]
            opt.step()
            if rep >= 2:
                times[label].append(time.perf_counter() - t0)
    med = {k: float(np.median(v)) for k, v in times.items()}
    max_rel = max(float((a - b).abs().max() / (b.abs().max() + 1e-30))
                  for a, b in zip(grads["equations"], grads["hand-written"], strict=True))
    res = {"ms": {k: round(1e3 * v, 2) for k, v in med.items()},
           "equations_time_ratio": round(med["equations"] / med["hand-written"], 3),
           "max_rel_grad_diff_first_step": max_rel}
    print(f"{kind + '_train':>13}: equations {res['ms']['equations']} ms/step, "
          f"hand-written {res['ms']['hand-written']}; "
          f"time ratio {res['equations_time_ratio']}, first-step gradients max rel diff {max_rel:.2e}", flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="izhikevich,adex,lif_roofline,lif_physical,lif_train,cuba_discrete,"
                                       "cuba_physical,cuba_train,alif_discrete,alif_physical,alif_train")
    ap.add_argument("--neurons", type=int, default=200_000)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--threads", type=int, default=min(2, numba.config.NUMBA_NUM_THREADS))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--control", action="store_true",
                    help="forward cases: also run the hand-written kernel a second time (A/A), reporting its paired "
                         "time ratio to the first: the scatter the harness itself shows on this machine")
    args = ap.parse_args()
    numba.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    out = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "threads": args.threads,
           "load_avg_start": os.getloadavg(), "models": {}}
    for name in args.cases.split(","):
        out["models"][name] = train_case(args, name.split("_")[0]) if name.endswith("_train") else \
            forward_case(name, args, rng)
    out["load_avg_end"] = os.getloadavg()
    print(json.dumps(out))


if __name__ == "__main__":
    # run as the importable module: the kernel factory imports a step by its module name, never from __main__
    import equation_models

    equation_models.main()
