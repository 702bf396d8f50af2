"""Memory stays flat under repeated work: the resident set size (RSS) of the process levels off over repeated
``Network.run`` calls, repeated network builds and 200 small training steps.

Each loop first warms up (compiles, fills allocator pools), then runs N more iterations, sampling RSS
(``/proc/self/statm`` on Linux, else psutil) after every iteration. A leak grows with the iteration count;
noise does not. The check: the growth over the last half of the samples is under a generous 20 MB (a leak
of the sizes involved here, e.g. one population's state, spike buffers or a training batch per iteration,
would exceed it several times over)."""

import gc
import os

import numpy as np
import pytest
import torch

import neuro

LAST_HALF_BOUND_MB = 20.0


def rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        psutil = pytest.importorskip("psutil")
        return psutil.Process().memory_info().rss / 2**20


def growth(step, warmup: int, iterations: int) -> tuple[float, float, list[float]]:
    """Run ``step`` ``warmup`` times, then ``iterations`` times sampling RSS; return (growth over the last
    half, growth over all iterations, samples) in MB."""
    for _ in range(warmup):
        step()
    gc.collect()
    samples = []
    half = iterations // 2
    for k in range(iterations):
        step()
        # a full collection walks every object of the test process (seconds, late in the suite): collect only
        # where the growth is measured, so cycles freed by the collector do not count as growth
        if k in (0, half, iterations - 1):
            gc.collect()
        samples.append(rss_mb())
    return samples[-1] - samples[half], samples[-1] - samples[0], samples


def _report(name, last_half, total, samples):
    print(f"{name}: RSS {samples[0]:.1f} -> {samples[-1]:.1f} MB, growth {total:+.2f} MB in all, "
          f"{last_half:+.2f} MB in the last half")


def test_repeated_network_run_is_flat():
    net = neuro.sim.Network(dt=0.1, seed=0)
    src = net.poisson(200, rate_hz=20.0)
    pop = net.population(500, neuro.models.LIF())
    net.connect(src, pop, neuro.sim.FixedProbability(0.1, seed=1), weight=0.5, delay=1.0)
    mon = net.spike_monitor(pop)

    def step():
        net.run(20.0)
        mon.clear()  # the monitor's own record grows by design; clear it so only leaks remain

    last_half, total, samples = growth(step, warmup=3, iterations=60)
    _report("Network.run x60", last_half, total, samples)
    assert last_half < LAST_HALF_BOUND_MB, samples


def test_repeated_network_builds_are_flat():
    def step():
        net = neuro.sim.Network(dt=0.1, seed=0)
        a = net.population(300, neuro.models.LIF())
        b = net.population(300, neuro.models.LIF())
        net.connect(a, b, neuro.sim.FixedInDegree(20, seed=2), weight=0.1)
        a.inject(2.0)
        net.spike_monitor(b)
        net.run(2.0)

    last_half, total, samples = growth(step, warmup=3, iterations=40)
    _report("network build + run x40", last_half, total, samples)
    assert last_half < LAST_HALF_BOUND_MB, samples


def test_training_steps_are_flat():
    torch.manual_seed(0)
    model = torch.nn.Sequential(neuro.nn.TimeDistributed(torch.nn.Linear(20, 32)), neuro.nn.LIF(beta=0.9),
                                neuro.nn.TimeDistributed(torch.nn.Linear(32, 4)), neuro.nn.LIF(beta=0.9))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.random((10, 16, 20), dtype=np.float32))
    y = torch.from_numpy(rng.integers(0, 4, 16))

    def step():
        opt.zero_grad()
        loss = neuro.nn.losses.ce_count_loss(model(x), y)
        loss.backward()
        opt.step()

    last_half, total, samples = growth(step, warmup=10, iterations=200)
    _report("training step x200", last_half, total, samples)
    assert last_half < LAST_HALF_BOUND_MB, samples
