"""LIF forward kernel throughput against this machine's memory roofline.

Runs the fused LIF forward kernel over N = 1,000,000 neurons x T = 100 steps (float32 input current in,
float32 spikes out) and, in the same run, a STREAM-style copy and read over arrays of the same size.
Each neuron update must read its input (4 B) and write its spike (4 B); state and parameters stay in
cache. The roofline is the copy bandwidth (bytes counted as STREAM does: read + written) divided by
8 B per update. Last line: one JSON object.

    python benchmarks/kernel_roofline.py [--neurons N] [--steps T] [--threads K] [--repeats R]
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
from neuro.models import LIF


@numba.njit(parallel=True, cache=True)
def _copy(src, dst):
    for i in numba.prange(src.size):
        dst[i] = src[i]


@numba.njit(parallel=True, cache=True, fastmath=True)  # fastmath lets the sum vectorise (a true read test)
def _read(src):
    acc = np.float32(0.0)
    for i in numba.prange(src.size):
        acc += src[i]
    return acc


def _median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neurons", type=int, default=1_000_000)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=min(2, numba.config.NUMBA_NUM_THREADS))
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    numba.set_num_threads(args.threads)
    n, T = args.neurons, args.steps

    rng = np.random.default_rng(0)
    x = (rng.standard_normal((T, n), dtype=np.float32) * np.float32(0.5) + np.float32(0.3))
    cell = LIF.discrete(beta=0.9, threshold=1.0)
    dyn = cell.dynamics
    params = kernels.pack_params(dyn, cell.kernel_params(1.0), n)
    opts = kernels.pack_options(dyn, cell.kernel_options())
    state = kernels.pack_state(dyn, cell.initial_state(n), n)
    spikes = np.empty_like(x)

    t0 = time.perf_counter()
    kernels.forward_packed(dyn, x[:2], state.copy(), params, opts, 1.0, spikes=spikes[:2])
    compile_s = time.perf_counter() - t0

    def run():
        kernels.forward_packed(dyn, x, state.copy(), params, opts, 1.0, spikes=spikes)

    kernel_s = _median_time(run, args.repeats)
    updates_per_s = n * T / kernel_s
    rate = float(spikes.mean())

    src, dst = x.reshape(-1), np.empty(x.size, np.float32)
    _copy(src[:16], dst[:16])
    _read(src[:16])
    copy_s = _median_time(lambda: _copy(src, dst), args.repeats)
    read_s = _median_time(lambda: _read(src), args.repeats)
    copy_bw = 2 * src.nbytes / copy_s
    read_bw = src.nbytes / read_s
    bytes_per_update = 8  # read x (float32) + write spike (float32)
    roofline = copy_bw / bytes_per_update

    cpu_name = platform.processor() or platform.machine()
    print(f"machine: {cpu_name}, {os.cpu_count()} cores, numba threads {args.threads}")
    print(f"LIF forward N={n:,} T={T}: {kernel_s * 1e3:.1f} ms  ({updates_per_s / 1e9:.3f} G updates/s, "
          f"firing prob {rate:.3f}, first-call compile/load {compile_s:.2f} s)")
    print(f"copy {copy_bw / 1e9:.2f} GB/s, read {read_bw / 1e9:.2f} GB/s -> roofline "
          f"{roofline / 1e9:.3f} G updates/s at {bytes_per_update} B/update")
    print(json.dumps({"updates_per_s": updates_per_s, "roofline_updates_per_s": roofline,
                      "ratio": updates_per_s / roofline, "copy_bandwidth_gbs": copy_bw / 1e9,
                      "read_bandwidth_gbs": read_bw / 1e9, "kernel_ms": kernel_s * 1e3, "neurons": n, "steps": T,
                      "threads": args.threads}))


if __name__ == "__main__":
    main()
