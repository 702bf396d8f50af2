"""The simulator's named layout: monitors before a run, generated code named after the model, CSR rows
ordered by target, run-time buffers kept off user objects."""

import numpy as np

import neuro
from neuro.sim.engine import source
from neuro.sim.runtime import Layout, Runtime


def test_monitors_before_the_first_run_report_nothing():
    net = neuro.sim.Network(dt=0.1)
    pop = net.population(3, neuro.models.LIF())
    spikes, rates = net.spike_monitor(pop), net.rate_monitor(pop, bin_ms=1.0)
    assert spikes.rate_hz() == 0.0 and spikes.count() == 0
    assert len(rates.rate) == 0


def test_generated_loop_names_variables_after_the_model():
    net = neuro.sim.Network(dt=0.1)
    izh = net.population(4, neuro.models.Izhikevich(a=[0.02, 0.1, 0.02, 0.1]))
    lif = net.population(3, neuro.models.LIF())
    net.connect(izh, lif, neuro.sim.AllToAll(), weight=0.1, tau_syn=5.0)
    net.connect(izh, lif, neuro.sim.AllToAll(), weight=0.01, tau_syn=5.0, e_rev=0.0)
    src = source(Layout(net, Runtime(), 10, None))
    # per-neuron parameters are indexed, shared ones are scalars; state by name; receptors by kind
    assert "p0_a[i]" in src and "p0_b[i]" not in src and " p0_b," in src
    assert "p0_v[i] = new_v" in src and "p0_u[i] = new_u" in src and "p1_ref[i] = new_ref" in src
    assert "x += p1_syn0_coupling * c0\n" in src and "(p1_syn1_erev - p1_v[i])" in src
    body = src.split("def update_p1")[1].split("for i in range(lo, hi):")[1]
    assert "== " not in body.split("_step_p1")[0]  # no run-time test tells receptor kinds apart


def test_rows_ordered_by_target_and_sums_follow_source_order():
    net = neuro.sim.Network(dt=0.1)
    a, b = net.population(3, neuro.models.LIF()), net.population(5, neuro.models.LIF(v_thresh=1e9))
    pairs = [[2, 4], [0, 3], [2, 0], [0, 1], [2, 2], [0, 3]]
    proj = net.connect(a, b, neuro.sim.FromList(pairs), weight=np.arange(1, 7) * 0.125, tau_syn=0.0)
    np.testing.assert_array_equal(proj.indptr, [0, 3, 3, 6])
    np.testing.assert_array_equal(proj.targets, [1, 3, 3, 0, 2, 4])
    np.testing.assert_array_equal(proj.weights, np.array([4, 2, 6, 3, 5, 1]) * 0.125)  # duplicates keep order


def test_run_time_buffers_live_in_the_runtime_not_on_user_objects():
    net = neuro.sim.Network(dt=0.1, seed=0)
    src = net.poisson(5, rate_hz=100.0)
    pop = net.population(4, neuro.models.LIF())
    proj = net.connect(src, pop, neuro.sim.AllToAll(), weight=0.5, stdp=neuro.sim.STDP())
    before = {id(o): set(vars(o)) for o in (src, pop, proj)}
    net.run(5.0)
    assert {id(o): set(vars(o)) for o in (src, pop, proj)} == before
    assert {"p0_syn0_isyn", "p0_syn0_ring", "c0_xpre", "c0_xpost"} <= set(net._runtime.buffers)
