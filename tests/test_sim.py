"""neuro.sim against independent truth: analytic f-I curve and membrane solution, the exact PSP of an
exponential synapse, delays to the step, the STDP formula, Poisson statistics, a dense NumPy reference
network, the CUBA benchmark's rate band, thread determinism, and bad input."""

import math

import numpy as np
import pytest

import neuro
from neuro.sim import STDP, AllToAll, FixedInDegree, FromList, Network, OneToOne

DT = 0.1
LIF = neuro.models.LIF


def test_membrane_follows_exact_solution():
    net = Network(dt=DT)
    pop = net.population(1, LIF(tau_m=20.0, cm=0.5, v_rest=-70.0, v_thresh=0.0))
    pop.inject(0.3)
    mon = net.state_monitor(pop, "v")
    net.run(50.0)
    t = np.arange(1, 501) * DT
    exact = -70.0 + (20.0 / 0.5) * 0.3 * (1 - np.exp(-t / 20.0))
    # float32 state near -70 mV: one rounding per step (ulp 7.6e-6) accumulates over the 500 steps
    np.testing.assert_allclose(mon.values[:, 0], exact, rtol=1e-5, atol=0)


@pytest.mark.parametrize("current", [0.9, 1.5, 3.0])
def test_lif_rate_matches_analytic_fi_curve(current):
    tau, cm, vr, vt, tref = 20.0, 1.0, -65.0, -50.0, 2.0
    net = Network(dt=DT)
    pop = net.population(1, LIF(tau_m=tau, cm=cm, v_rest=vr, v_thresh=vt, v_reset=vr, tau_refrac=tref))
    pop.inject(current)
    mon = net.spike_monitor(pop)
    net.run(2000.0)
    R = tau / cm
    t_fire = tau * math.log(R * current / (R * current - (vt - vr)))
    isi = np.diff(mon.times)
    # the crossing is detected at the end of the step it happens in: each ISI is the analytic one rounded up
    # to the step grid, plus the refractory steps
    expected = (math.ceil(t_fire / DT - 1e-9) + round(tref / DT)) * DT
    assert len(isi) > 5
    np.testing.assert_allclose(isi, expected, atol=DT + 1e-6)


def test_exponential_synapse_psp_and_delay_are_exact():
    tau_m, tau_s, cm, w, delay = 20.0, 5.0, 1.0, 0.5, 1.5
    net = Network(dt=DT)
    src = net.spike_source([[2.0]])
    pop = net.population(1, LIF(tau_m=tau_m, cm=cm, v_rest=0.0, v_thresh=100.0, v_reset=0.0))
    net.connect(src, pop, OneToOne(), weight=w, delay=delay, tau_syn=tau_s)
    mon = net.state_monitor(pop, "v")
    net.run(60.0)
    v = mon.values[:, 0]
    arrive = round((2.0 + delay) / DT)  # the step the current jumps
    assert np.all(v[:arrive] == 0.0) and v[arrive] > 0.0  # state after step `arrive` is the first non-zero
    t = (np.arange(len(v)) - arrive + 1) * DT
    R = tau_m / cm
    psp = R * w * tau_s / (tau_s - tau_m) * (np.exp(-t / tau_s) - np.exp(-t / tau_m))
    np.testing.assert_allclose(v[arrive:], psp[arrive:], rtol=1e-4, atol=1e-5)


def test_stdp_pair_matches_formula():
    a_plus, a_minus, tau_p, tau_m = 0.01, 0.012, 16.8, 33.7
    net = Network(dt=DT)
    pre = net.spike_source([[10.0]])
    kick = net.spike_source([[14.0], [40.0]])
    post = net.population(1, LIF(tau_m=10.0, cm=1.0, v_rest=0.0, v_thresh=1.0, v_reset=0.0))
    net.connect(kick, post, AllToAll(), weight=50.0, delay=DT, tau_syn=0.5)  # makes post fire on cue
    plastic = net.connect(pre, post, AllToAll(), weight=0.5, delay=DT,
                          stdp=STDP(a_plus, a_minus, tau_p, tau_m, 0.0, 1.0))
    post_mon, pre_mon = net.spike_monitor(post), net.spike_monitor(pre)
    net.run(30.0)
    (t_pre,), t_post = pre_mon.times, post_mon.times
    assert len(t_post) >= 1 and t_post[0] > t_pre
    expected = 0.5 + sum(a_plus * math.exp(-(tp - t_pre) / tau_p) for tp in t_post)
    assert plastic.weights[0] == pytest.approx(expected, rel=1e-5)
    # then post before pre: another pre spike after the second post spike depresses
    net2 = Network(dt=DT)
    pre2 = net2.spike_source([[30.0]])
    kick2 = net2.spike_source([[20.0]])
    post2 = net2.population(1, LIF(tau_m=10.0, cm=1.0, v_rest=0.0, v_thresh=1.0, v_reset=0.0))
    net2.connect(kick2, post2, AllToAll(), weight=50.0, delay=DT, tau_syn=0.5)
    p2 = net2.connect(pre2, post2, AllToAll(), weight=0.5, delay=DT, stdp=STDP(a_plus, a_minus, tau_p, tau_m))
    m2 = net2.spike_monitor(post2)
    net2.run(35.0)
    t_posts = m2.times[m2.times < 30.0]
    expected2 = 0.5 - a_minus * sum(math.exp(-(30.0 - tp) / tau_m) for tp in t_posts)
    assert p2.weights[0] == pytest.approx(expected2, rel=1e-5)


def test_poisson_rate_and_independence():
    net = Network(dt=DT, seed=3)
    src = net.poisson(400, rate_hz=40.0)
    mon = net.spike_monitor(src)
    net.run(2000.0)
    counts = np.bincount(mon.ids, minlength=400)
    expected = 40.0 * 2.0
    assert abs(counts.mean() - expected) < 3 * math.sqrt(expected / 400) + 0.5
    assert abs(counts.var() / counts.mean() - 1) < 0.25  # Fano factor of a Poisson count is 1
    bins = np.zeros((400, 200))
    np.add.at(bins, (mon.ids, (mon.times / 10.0).astype(int)), 1)
    c = np.corrcoef(bins)
    off = c[~np.eye(400, dtype=bool)]
    assert abs(off.mean()) < 0.01


def _reference(n, w, delays, drive_steps, drive_w, steps, tau_m, tau_s, cm, vt, vr):
    """Dense NumPy reference of the same discrete equations, written from the docstrings."""
    f32 = np.float32
    em, es = math.exp(-DT / tau_m), math.exp(-DT / tau_s)
    R = tau_m / cm
    gain = R * (1 - em)
    p21 = tau_s / (tau_s - tau_m) * (es - em)
    k = f32(R * p21 / gain)
    v = np.full(n, vr, f32)
    isyn = np.zeros(n, f32)
    buf = np.zeros((delays.max() + 1, n), f32)
    spikes = []
    for t in range(steps):
        slot = t % buf.shape[0]
        cur = (isyn + buf[slot]).astype(f32)
        buf[slot] = 0
        x = (f32(0) + k * cur).astype(f32)
        isyn = (cur * f32(es)).astype(f32)
        v_int = (f32(vr) + f32(em) * (v - f32(vr)) + f32(gain) * x).astype(f32)
        fired = v_int > f32(vt)
        v = np.where(fired, f32(vr), v_int).astype(f32)
        if t in drive_steps:
            buf[(t + 1) % buf.shape[0]] += drive_w
        for i in np.nonzero(fired)[0]:
            for j in range(n):
                if w[i, j] != 0:
                    buf[(t + delays[i, j]) % buf.shape[0], j] += w[i, j]
        spikes.append(fired.copy())
    return np.array(spikes)


def test_event_driven_network_equals_dense_numpy_reference():
    rng = np.random.default_rng(5)
    n, steps = 12, 600
    w = (rng.random((n, n)) < 0.4) * rng.normal(0.4, 0.3, (n, n))
    np.fill_diagonal(w, 0)
    w = w.astype(np.float32)
    delays = rng.integers(1, 4, (n, n))
    drive_steps = set(range(0, steps, 37))
    drive_w = rng.uniform(1.0, 2.5, n).astype(np.float32)
    net = Network(dt=DT)
    pop = net.population(n, LIF(tau_m=20.0, cm=1.0, v_rest=-60.0, v_thresh=-50.0, v_reset=-60.0))
    src = net.spike_source([[s * DT for s in sorted(drive_steps)]])
    pre, post = np.nonzero(w)
    net.connect(src, pop, AllToAll(), weight=drive_w, delay=DT, tau_syn=5.0)
    net.connect(pop, pop, FromList(np.stack([pre, post], 1)), weight=w[pre, post], delay=delays[pre, post] * DT,
                tau_syn=5.0)
    mon = net.spike_monitor(pop)
    net.run(steps * DT)
    got = np.zeros((steps, n), bool)
    got[np.round(mon.times / DT).astype(int), mon.ids] = True
    ref = _reference(n, w, delays, drive_steps, drive_w, steps, 20.0, 5.0, 1.0, -50.0, -60.0)
    assert ref.sum() > 20
    np.testing.assert_array_equal(got, ref)


def test_cuba_rate_in_band_and_same_spikes_on_one_and_two_threads():
    import sys
    from pathlib import Path

    import numba

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import cuba

    results = []
    before = numba.get_num_threads()
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            _, mon, _, _ = cuba.neuro_cuba(300.0)
            results.append((mon.times.copy(), mon.ids.copy()))
    finally:
        numba.set_num_threads(before)
    rate = len(results[0][0]) / 4000 / 0.3
    assert 2.0 < rate < 10.0, rate  # Brian2 gives about 5-6 Hz
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_continue_and_reset():
    def build():
        net = Network(dt=DT, seed=9)
        src = net.poisson(50, 30.0)
        pop = net.population(20, LIF(tau_m=20.0, cm=1.0, v_rest=-65.0, v_thresh=-55.0))
        net.connect(src, pop, FixedInDegree(10), weight=0.4, delay=0.5)
        return net, net.spike_monitor(pop)

    a, ma = build()
    a.run(100.0)
    a.run(100.0)
    b, mb = build()
    b.run(200.0)
    np.testing.assert_array_equal(ma.times, mb.times)
    b.reset()
    assert b.t == 0 and mb.count() == 0
    b.run(200.0)
    np.testing.assert_array_equal(ma.ids, mb.ids)


def test_bad_input_leaves_network_usable():
    net = Network(dt=DT)
    a = net.population(3, LIF())
    b = net.population(4, LIF())
    with pytest.raises(ValueError, match="weight has 2 values for 12 synapses"):
        net.connect(a, b, AllToAll(), weight=[0.1, 0.2])
    with pytest.raises(ValueError, match="delays must be >= dt"):
        net.connect(a, b, AllToAll(), weight=0.1, delay=-1.0)
    with pytest.raises(ValueError, match="delays must be multiples of dt"):
        net.connect(a, b, AllToAll(), weight=0.1, delay=0.25)
    with pytest.raises(ValueError, match="weight contains NaN"):
        net.connect(a, b, AllToAll(), weight=float("nan"))
    with pytest.raises(ValueError, match="OneToOne needs populations of equal size"):
        net.connect(a, b, OneToOne())
    with pytest.raises(ValueError, match="FromList indices out of range"):
        net.connect(a, b, FromList([[0, 5]]))
    with pytest.raises(ValueError, match="dt must be a finite number > 0"):
        Network(dt=0.0)
    net.connect(a, b, AllToAll(), weight=0.1)
    b.inject(2.0)
    mon = net.spike_monitor(b)
    net.run(50.0)
    assert mon.count() > 0


def test_time_varying_current_follows_the_exact_step():
    net = Network(dt=DT)
    cell = LIF(tau_m=10.0, cm=0.5, v_rest=-70.0, v_thresh=0.0)
    pop = net.population(2, cell)
    steps = 300
    current = np.stack([np.sin(np.arange(steps) * 0.05), np.linspace(0, 1, steps)], 1).astype(np.float32)
    pop.inject_series(current)
    mon = net.state_monitor(pop, "v")
    net.run(steps * DT)
    p = cell.kernel_params(DT)
    f32 = np.float32
    v = np.full(2, -70.0, f32)
    ref = []
    for t in range(steps):  # the LIF step written from its docstring
        v = (p["v_leak"] + p["decay"] * (v - p["v_leak"]) + p["gain"] * (f32(0) + current[t])).astype(f32)
        ref.append(v)
    np.testing.assert_allclose(mon.values, np.array(ref), rtol=1e-6, atol=1e-5)
    with pytest.raises(ValueError, match=r"current series must have shape \[steps\] or \[steps, 2\]"):
        pop.inject_series(np.zeros((3, 5)))


def test_conductance_synapse_settles_at_the_conductance_weighted_reversal():
    """A steady conductance g to reversal E pulls v to (gL v_rest + g E) / (gL + g), gL = cm / tau_m."""
    tau_m, cm, v_rest, e_rev, w = 20.0, 0.5, -70.0, 0.0, 0.002
    net = Network(dt=DT)
    pop = net.population(1, LIF(tau_m=tau_m, cm=cm, v_rest=v_rest, v_thresh=100.0))
    src = net.spike_source([np.arange(0.0, 400.0, DT)])  # a spike every step: g settles at w / (1 - e^{-dt/tau})
    net.connect(src, pop, OneToOne(), weight=w, delay=DT, tau_syn=5.0, e_rev=e_rev)
    mon = net.state_monitor(pop, "v")
    net.run(400.0)
    g = w / (1 - math.exp(-DT / 5.0))  # steady conductance at the start of each step, after that step's arrival
    g_l = cm / tau_m
    expected = (g_l * v_rest + g * e_rev) / (g_l + g)
    assert mon.values[-1, 0] == pytest.approx(expected, abs=1e-3)
    with pytest.raises(ValueError, match="conductance weights must be >= 0"):
        net.connect(src, pop, OneToOne(), weight=-0.1, tau_syn=5.0, e_rev=-80.0)


def test_convolutional_connector_equals_torch_conv2d():
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(4)
    w = rng.normal(0, 1, (3, 2, 3, 3)).astype(np.float32)
    conv = neuro.sim.Convolution(w, in_shape=(2, 6, 6), stride=2, padding=1)
    pattern = (rng.random((2, 6, 6)) < 0.5)
    net = Network(dt=DT)
    src = net.spike_source([[1.0] if f else [] for f in pattern.reshape(-1)])
    pop = net.population(int(np.prod(conv.out_shape)), LIF(tau_m=1e6, cm=1.0, v_rest=0.0, v_thresh=1e6))
    net.connect(src, pop, conv, weight=None, delay=DT, tau_syn=0.0)  # delta synapses: v jumps by the weight
    mon = net.state_monitor(pop, "v")
    net.run(2.0)
    expected = F.conv2d(torch.tensor(pattern[None].astype(np.float32)), torch.tensor(w), stride=2, padding=1)
    np.testing.assert_allclose(mon.values[-1], expected.numpy().reshape(-1), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="Convolution maps 72 -> 27 neurons"):
        net.connect(src, net.population(5, LIF()), conv, weight=None)


def test_rate_monitor_matches_spike_counts():
    net = Network(dt=DT, seed=2)
    src = net.poisson(200, rate_hz=20.0)
    rates = net.rate_monitor(src, bin_ms=10.0)
    spikes = net.spike_monitor(src)
    net.run(500.0)
    assert len(rates.rate) == 50
    # each bin: spikes in it / neurons / bin width
    counts = np.histogram(spikes.times, bins=np.arange(0, 510.0, 10.0))[0]
    np.testing.assert_allclose(rates.rate, counts / 200 / 0.01)
    assert abs(rates.rate.mean() - 20.0) < 2.0
