"""Brunel (2000) balanced network at full size: 80k excitatory + 20k inhibitory LIF neurons, fixed in-degree
1000 (800 E + 200 I: 100 M synapses), J = 0.1 mV, g = 5, delay 1.5 ms, tau_m 20 ms, threshold 20 mV,
reset 10 mV, refractory 2 ms, external Poisson drive at twice the threshold rate, dt 0.1 ms, 1 s.

A serial hand-written CSR loop of the same network side by side (``reference_loop``: one numba function,
update then threshold then propagate, the same connectivity arrays and Poisson counts): ``ref_run_s`` and
``ratio_vs_serial_reference`` (our loop / the reference; the target on 2 threads is <= 0.6).

NEST side by side (unless ``--no-nest``): the same network written by ``Network.to_nest`` and run with the
same thread count; ``nest_run_s`` is NEST's ``Simulate`` time.

Last line: one JSON object with setup_s, run_s, peak_mem_mb, bytes_per_synapse, rate_hz, ref_run_s, ref_rate_hz
(and nest_* figures).

    python benchmarks/brunel.py [--scale 1.0] [--duration 1000] [--threads 2] [--no-nest] [--no-reference]
"""

from __future__ import annotations

import argparse
import json
import time

import numba
import numpy as np

from neuro.sim.random import poisson_cdf, poisson_table


@numba.njit(cache=True, nogil=True)
def reference_loop(steps, v, ref, indptr, targets, weights, delay, decay, v_rest, theta, v_reset, t_ref, lam,
                   drive_w, seed):
    """The Brunel network written by hand, serial: LIF with delta synapses and a Poisson drive (the same
    counter-based counts as neuro.sim's), one ring buffer, CSR rows of both projections (``weights[p]`` for
    projection ``p``: indptr[p], targets[p]). Returns the spike count."""
    n = v.shape[0]
    ring = np.zeros((delay + 1, n), np.float32)
    fired = np.empty(n, np.int32)
    cdf = poisson_cdf(lam)
    total = 0
    for t in range(steps):
        slot = t % (delay + 1)
        row = ring[slot]
        nf = 0
        for i in range(n):
            x = row[i] + np.float32(drive_w * poisson_table(seed, t * n + i, cdf))
            row[i] = 0.0
            if ref[i] > 0:
                ref[i] -= 1
                v[i] = v_reset
                continue
            vi = v_rest + decay * (v[i] - v_rest) + x
            if vi > theta:
                v[i] = v_reset
                ref[i] = t_ref
                fired[nf] = i
                nf += 1
            else:
                v[i] = vi
        total += nf
        out = ring[(t + delay) % (delay + 1)]
        for p in range(len(weights)):
            ptr, tgt, w = indptr[p], targets[p], weights[p]
            for m in range(nf):
                i = fired[m]
                for k in range(ptr[i], ptr[i + 1]):
                    out[tgt[k]] += w
    return total


def reference(net, duration_ms: float) -> tuple[float, float]:
    """Loop time and rate of :func:`reference_loop` on ``net``'s own connectivity and parameters."""
    pop = net.populations[0]
    par = pop.model.kernel_params(net.dt)
    f32 = np.float32
    args = (np.zeros(pop.n, f32), np.zeros(pop.n, f32))
    steps = int(round(duration_ms / net.dt))
    prj = net.projections
    delay = int(prj[0].delays[0])
    assert all(int(p.delays[0]) == delay and p.weights.size == 1 for p in prj)
    ptrs = numba.typed.List([p.indptr for p in prj])
    tgts = numba.typed.List([p.targets for p in prj])
    ws = np.array([p.weights[0] for p in prj], f32)
    lam = pop.drive.rate_hz * net.dt / 1000.0
    common = (ptrs, tgts, ws, delay, f32(par["decay"][0]), f32(par["v_leak"][0]), f32(par["threshold"][0]),
              f32(par["v_reset"][0]), f32(par["t_ref"][0]), lam, pop.drive.weight, pop.drive.seed)
    reference_loop(2, *args, *common)  # compile or load
    v, r = np.zeros(pop.n, f32), np.zeros(pop.n, f32)
    t0 = time.perf_counter()
    count = reference_loop(steps, v, r, *common)
    return time.perf_counter() - t0, count / pop.n / (duration_ms / 1000.0)


def vmhwm_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the 100k neurons (in-degree scales too)")
    ap.add_argument("--duration", type=float, default=1000.0)
    ap.add_argument("--threads", type=int, default=min(2, numba.config.NUMBA_NUM_THREADS))
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--no-reference", action="store_true", help="skip the serial hand-written loop")
    ap.add_argument("--no-nest", action="store_true", help="skip the NEST column (it lists every synapse: "
                    "about 40 B a synapse in the exported file, then NEST's own memory)")
    args = ap.parse_args()
    numba.set_num_threads(args.threads)
    base_mem = vmhwm_mb()
    t0 = time.perf_counter()
    net, mon, (exc, inh), (n_e, n_i) = build_brunel(args.scale)
    net.run(0.1)  # compile or load the loop
    setup_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    net.run(args.duration, progress=args.progress)
    run_s = time.perf_counter() - t1
    n_syn = exc.n_synapses + inh.n_synapses
    syn_bytes = exc.nbytes + inh.nbytes
    rate = mon.count() / (n_e + n_i) / ((args.duration + 0.1) / 1000.0)
    print(f"{n_e + n_i} neurons, {n_syn / 1e6:.1f} M synapses ({syn_bytes / n_syn:.2f} B/synapse), "
          f"setup {setup_s:.1f} s, loop {run_s:.1f} s for {args.duration:.0f} ms on {args.threads} threads, "
          f"{rate:.1f} Hz")
    out = {"setup_s": setup_s, "run_s": run_s, "peak_mem_mb": vmhwm_mb() - base_mem,
           "bytes_per_synapse": syn_bytes / n_syn, "rate_hz": rate, "synapses": n_syn, "threads": args.threads}
    if not args.no_reference:
        ref_s, ref_rate = reference(net, args.duration)
        out.update(ref_run_s=ref_s, ref_rate_hz=ref_rate, ratio_vs_serial_reference=run_s / ref_s)
        print(f"serial hand-written CSR loop: {ref_s:.1f} s, {ref_rate:.1f} Hz; ours / reference = {run_s / ref_s:.2f}")
    del net, mon, exc, inh
    if not args.no_nest:  # the same network (every synapse listed) on NEST with the same threads
        from cuba import nest_column

        out.update(nest_column(lambda: build_brunel(args.scale)[:2], args.duration, args.threads))
    print(json.dumps(out))


def build_brunel(scale: float):
    """The network (not yet run), its spike monitor, the two projections and (n_e, n_i)."""
    import neuro

    n_e, n_i = int(80_000 * scale), int(20_000 * scale)
    c_e, c_i = int(800 * scale), int(200 * scale)
    J, g, theta, tau = 0.1, 5.0, 20.0, 20.0
    nu_thr = theta / (J * c_e * tau)  # kHz
    net = neuro.sim.Network(dt=0.1, seed=1)
    cell = neuro.models.LIF(tau_m=tau, cm=1.0, v_rest=0.0, v_thresh=theta, v_reset=10.0, tau_refrac=2.0)
    pop = net.population(n_e + n_i, cell)
    pop.poisson_drive(rate_hz=2 * nu_thr * c_e * 1000.0, weight=J, tau_syn=0.0, seed=7)
    # E sources are neurons 0..n_e-1, I sources n_e.. ; one projection each with a shared weight and delay
    from_e = neuro.sim.FromSubset(neuro.sim.FixedInDegree(c_e, seed=11), 0, n_e)
    from_i = neuro.sim.FromSubset(neuro.sim.FixedInDegree(c_i, seed=12), n_e, n_i)
    exc = net.connect(pop, pop, from_e, weight=J, delay=1.5, tau_syn=0.0)
    inh = net.connect(pop, pop, from_i, weight=-g * J, delay=1.5, tau_syn=0.0)
    mon = net.spike_monitor(pop)
    return net, mon, (exc, inh), (n_e, n_i)


if __name__ == "__main__":
    main()
