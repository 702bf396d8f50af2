"""neuro.models.Equations against independent references: the analytic LIF solution, plain NumPy integrators
of the same equations and method written here, torch autograd of the same discrete update for the generated
backward step, neuro.sim running the model in a network, training on digits, and errors that name the line
and the symbol. (Brian2's own spikes: tests/test_equations_brian2.py.)"""

import math

import nir
import numpy as np
import pytest
import torch
from torch_references import AtanSpike, discrete_lif

import neuro
from neuro.models import EquationError, Equations

DT = 0.1


def test_user_lif_exact_follows_the_analytic_solution():
    # tau dv/dt = El - v + R I with constant I: v(t) = v_inf + (v0 - v_inf) exp(-t/tau) until the threshold
    m = Equations("dv/dt = (El - v + R*I) / tau : volt", threshold="v > v_th", reset="v = El",
                  El=-65.0, R=10.0, tau=20.0, v_th=-50.0, initial={"v": -65.0})
    T = 3000
    res = m.simulate(np.full((T, 1), 2.0, np.float32), dt=DT)  # v_inf = -45 mV
    t = DT * np.arange(1, T + 1)
    t_star = -20.0 * math.log((-45.0 + 50.0) / (-45.0 + 65.0))  # first crossing of -50 mV
    first = int(np.nonzero(res.spikes[:, 0])[0][0])
    assert first == math.floor(t_star / DT + 1e-9), (first, t_star / DT)  # first step whose end lies past t*
    analytic = -45.0 + (-20.0) * np.exp(-t[:first] / 20.0)
    np.testing.assert_allclose(res.v[:first, 0], analytic, atol=2e-4)
    isi = np.diff(np.nonzero(res.spikes[:, 0])[0])
    assert np.all(np.abs(isi - t_star / DT) <= 1)  # every interval is the same crossing again


def _adaptive(method):
    return Equations("""
        dv/dt = (El - v + R*I - R*w) / tau_m : volt
        dw/dt = (a*(v - El) - w) / tau_w : amp
    """, threshold="v > v_th", reset="v = v_reset; w += b", method=method, El=-65.0, R=100.0, tau_m=10.0,
        v_th=-50.0, v_reset=-70.0, a=0.002, b=0.02, tau_w=100.0, initial={"v": -65.0})


def _current(T, N, seed=0):
    rng = np.random.default_rng(seed)
    return (0.2 + 0.1 * np.linspace(-1, 1, N) + 0.05 * rng.standard_normal((T, N))).astype(np.float32)


def test_coupled_adaptive_lif_exact_equals_numpy_propagator():
    cur = _current(4000, 6)
    res = _adaptive("exact").simulate(cur, dt=DT)
    # NumPy reference: the same linear system's propagator by eigen-decomposition (not the library's expm)
    El, R, tm, a, tw = -65.0, 100.0, 10.0, 0.002, 100.0
    A = np.array([[-1 / tm, -R / tm], [a / tw, -1 / tw]])
    lam, V = np.linalg.eig(A)
    P = (V @ np.diag(np.exp(lam * DT)) @ np.linalg.inv(V)).real
    # x = [v - El, w]: x' = A x + [R I / tm, 0]; with I held, x_new = P x + A^-1 (P - 1) b
    G = np.linalg.solve(A, P - np.eye(2))
    x = np.tile(np.array([0.0, 0.0])[:, None], (1, cur.shape[1]))
    spikes = np.zeros_like(cur)
    for k in range(cur.shape[0]):
        x = P @ x + G @ np.vstack([R * cur[k] / tm, np.zeros(cur.shape[1])])
        fired = x[0] + El > -50.0
        spikes[k] = fired
        x[0, fired] = -70.0 - El
        x[1, fired] += 0.02
    assert spikes.sum() > 50
    assert np.array_equal(res.spikes, spikes)


@pytest.mark.parametrize("method", ["euler", "rk2", "rk4"])
def test_adaptive_lif_explicit_methods_equal_numpy(method):
    cur = _current(3000, 6, seed=1) + np.float32(0.05)
    res = _adaptive(method).simulate(cur, dt=DT)
    El, R, tm, a, tw = -65.0, 100.0, 10.0, 0.002, 100.0

    def f(v, w, i):
        return (El - v + R * i - R * w) / tm, (a * (v - El) - w) / tw

    v, w = np.full(cur.shape[1], -65.0), np.zeros(cur.shape[1])
    spikes = np.zeros_like(cur)
    for k in range(cur.shape[0]):
        i = cur[k].astype(np.float64)
        if method == "euler":
            dv, dw = f(v, w, i)
            v, w = v + DT * dv, w + DT * dw
        elif method == "rk2":
            k1 = f(v, w, i)
            k2 = f(v + DT / 2 * k1[0], w + DT / 2 * k1[1], i)
            v, w = v + DT * k2[0], w + DT * k2[1]
        else:
            k1 = f(v, w, i)
            k2 = f(v + DT / 2 * k1[0], w + DT / 2 * k1[1], i)
            k3 = f(v + DT / 2 * k2[0], w + DT / 2 * k2[1], i)
            k4 = f(v + DT * k3[0], w + DT * k3[1], i)
            v = v + DT / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
            w = w + DT / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        fired = v > -50.0
        spikes[k] = fired
        v = np.where(fired, -70.0, v)
        w = np.where(fired, w + 0.02, w)
    assert spikes.sum() > 50
    ours, ref = [np.nonzero(s)[0] for s in res.spikes.T], [np.nonzero(s)[0] for s in spikes.T]
    assert all(len(a) == len(b) and np.all(np.abs(a - b) <= 1) for a, b in zip(ours, ref, strict=True))


def test_hodgkin_huxley_exponential_euler_equals_numpy():
    from test_equations_brian2 import CASES  # the Traub-Miles block of Brian2's COBAHH example

    eqs = next(c["equations"] for c in CASES if c["name"] == "hh")
    p = dict(gl=0.01, El=-60.0, g_na=20.0, ENa=50.0, g_kd=6.0, EK=-90.0, Cm=0.2, VT=-63.0)
    init = dict(v=-65.0, m=0.05, n=0.3, h=0.6)
    m = Equations(eqs, threshold="v > -20*mV", refractory="v > -20*mV", method="exponential_euler", initial=init,
                  **p)
    cur = np.tile(np.linspace(0.2, 0.8, 4, dtype=np.float32), (3000, 1))
    res = m.simulate(cur, dt=DT)

    def exprel(x):
        return np.where(x == 0, 1.0, np.expm1(x) / np.where(x == 0, 1.0, x))

    v, mm, n, h = (np.full(4, init[k]) for k in "vmnh")
    spikes, refr = np.zeros((3000, 4)), np.zeros(4, bool)
    VT = p["VT"]
    for k in range(3000):
        refr = v > -20.0  # refractory while the condition holds at the start of the step
        am = 0.32 * 4 / exprel((13 - v + VT) / 4)
        bm = 0.28 * 5 / exprel((v - VT - 40) / 5)
        ah = 0.128 * np.exp((17 - v + VT) / 18)
        bh = 4 / (1 + np.exp((40 - v + VT) / 5))
        an = 0.032 * 5 / exprel((15 - v + VT) / 5)
        bn = 0.5 * np.exp((10 - v + VT) / 40)
        # each variable: x' = A x + B, x <- -B/A + (x + B/A) exp(A dt), A and B from the old state
        gna, gk = p["g_na"] * mm ** 3 * h, p["g_kd"] * n ** 4
        A = -(p["gl"] + gna + gk) / p["Cm"]
        B = (p["gl"] * p["El"] + gna * p["ENa"] + gk * p["EK"] + cur[k]) / p["Cm"]
        v_new = -B / A + (v + B / A) * np.exp(A * DT)
        mm, n, h = ((a / (a + b)) + (x - a / (a + b)) * np.exp(-(a + b) * DT) for x, a, b in
                    ((mm, am, bm), (n, an, bn), (h, ah, bh)))
        v = v_new
        spikes[k] = (v > -20.0) & ~refr
    assert spikes.sum() >= 20
    ours, ref = [np.nonzero(s)[0] for s in res.spikes.T], [np.nonzero(s)[0] for s in spikes.T]
    assert all(len(a) == len(b) and np.all(np.abs(a - b) <= 1) for a, b in zip(ours, ref, strict=True))


def test_refractory_timing_brian2_and_nest():
    # strong drive: the neuron fires as soon as it may; the period is the frozen updates plus one
    kw = dict(threshold="v > 1", reset="v = 0", refractory=2.0, tau=1.0)
    eq = "dv/dt = I / tau : 1 (unless refractory)"
    cur = np.full((400, 1), 1e3, np.float32)
    brian = np.nonzero(Equations(eq, **kw).simulate(cur, dt=DT).spikes[:, 0])[0]
    nest = np.nonzero(Equations(eq, refractory_timing="nest", **kw).simulate(cur, dt=DT).spikes[:, 0])[0]
    assert set(np.diff(brian)) == {20} and set(np.diff(nest)) == {21}  # 19 and 20 frozen updates


def test_refractory_given_as_a_parameter_is_per_neuron():
    # Brian2's refractory='tau_ref': a time per neuron, from a parameter; each neuron's period is its frozen
    # updates plus one, as with the same time given as a number
    kw = dict(threshold="v > 1", reset="v = 0", tau=1.0)
    eq = "dv/dt = I / tau : 1 (unless refractory)"
    cur = np.full((400, 3), 1e3, np.float32)
    times = [1.0, 2.0, 3.5]
    per_neuron = Equations(eq, refractory="tau_ref", refractory_timing="nest", tau_ref=times, **kw)
    spikes = per_neuron.simulate(cur, dt=DT).spikes
    for k, t_ref in enumerate(times):
        alone = Equations(eq, refractory=t_ref, refractory_timing="nest", **kw).simulate(cur[:, :1], dt=DT).spikes
        np.testing.assert_array_equal(spikes[:, k], alone[:, 0])
        assert set(np.diff(np.nonzero(spikes[:, k])[0])) == {round(t_ref / DT) + 1}
    with pytest.raises(ValueError, match="refractory 'tau_ref' must be a time >= 0"):
        Equations(eq, refractory="tau_ref", tau_ref=[1.0, -1.0], **kw).kernel_params(DT)
    with pytest.raises(EquationError, match="may use parameters only, not v"):
        Equations(eq, refractory="v * ms", **kw)


def _torch_reference(x, tau_m, a, b, v_th, slope=2.0):
    """The adaptive LIF's Euler step and reset written out in torch, with the atan surrogate."""

    v = torch.zeros(x.shape[1:])
    w = torch.zeros(x.shape[1:])
    out = []
    for t in range(x.shape[0]):
        v_i = v + 1.0 * ((-v - w + x[t]) / tau_m)
        w_i = w + 1.0 * ((a * v - w) / 20.0)
        s = AtanSpike.apply(v_i - v_th, slope)
        v = v_i + s * (0.0 - v_i)
        w = w_i + s * (w_i + b - w_i)
        out.append(s)
    return torch.stack(out), v


def test_gradients_of_a_user_model_equal_torch_autograd():
    model = Equations("""
        dv/dt = (-v - w + I) / tau_m : volt
        dw/dt = (a*v - w) / (20*ms) : amp
    """, threshold="v > v_th", reset="v = 0; w += b", method="euler", tau_m=4.0, a=0.3, b=0.2, v_th=1.0)
    layer = neuro.nn.Neuron(model, surrogate=neuro.surrogate.atan(2.0), learn=("tau_m", "a", "b", "v_th"), dt=1.0)
    torch.manual_seed(0)
    x = (torch.rand(40, 3, 7) * 3).requires_grad_()
    w_out = torch.randn(40, 3, 7)
    spikes = layer(x)
    (spikes * w_out).sum().backward()
    ps = {k: torch.tensor(float(getattr(layer, k)), requires_grad=True) for k in ("tau_m", "a", "b", "v_th")}
    x2 = x.detach().clone().requires_grad_()
    ref, _ = _torch_reference(x2, ps["tau_m"], ps["a"], ps["b"], ps["v_th"])
    (ref * w_out).sum().backward()
    assert torch.equal(spikes, ref) and spikes.sum() > 50
    scale = x2.grad.abs().max()
    assert (x.grad - x2.grad).abs().max() <= 1e-5 * scale
    for k, p in ps.items():
        g = getattr(layer, k).grad
        assert abs(float(g) - float(p.grad)) <= 1e-5 * max(1.0, abs(float(p.grad))), (k, float(g), float(p.grad))


def test_exact_model_gradient_reaches_tau_through_the_propagator():
    model = Equations("dv/dt = (-v + I) / tau : volt", threshold="v > 0.5", reset="v = 0", tau=5.0)
    layer = neuro.nn.Neuron(model, learn=("tau",), surrogate=neuro.surrogate.atan(2.0), dt=1.0)
    torch.manual_seed(1)
    x = torch.rand(30, 2, 5)
    w_out = torch.randn(30, 2, 5)
    (layer(x) * w_out).sum().backward()
    tau = torch.tensor(5.0, dtype=torch.float64, requires_grad=True)

    decay = torch.exp(-1.0 / tau)  # exact: v <- v decay + (1 - decay) I
    v, loss = torch.zeros(2, 5, dtype=torch.float64), 0
    for t in range(30):
        v = v * decay + (1 - decay) * x[t].double()
        s = AtanSpike.apply(v - 0.5)
        v = v * (1 - s)
        loss = loss + (s * w_out[t].double()).sum()
    loss.backward()
    assert abs(float(layer.tau.grad) - float(tau.grad)) <= 1e-4 * max(1.0, abs(float(tau.grad)))


def test_equation_model_runs_in_a_network_as_it_does_alone():
    model = _adaptive("exact")
    cur = _current(2000, 5, seed=3)
    alone = model.simulate(cur, dt=DT)
    net = neuro.sim.Network(dt=DT, seed=0)
    pop = net.population(5, model, initial={"v": -65.0})
    pop.inject_series(cur)
    mon = net.spike_monitor(pop)
    net.run(2000 * DT)
    got = np.zeros_like(alone.spikes)
    got[np.round(mon.times / DT).astype(int), mon.ids] = 1
    assert alone.spikes.sum() > 20 and np.array_equal(got, alone.spikes)


def test_user_model_trains_on_digits():
    from neuro import digits as dm
    from neuro.nn import TimeDistributed as TD

    torch.manual_seed(0)
    xtr, ytr, xte, yte = dm.digits_split()
    xtr, xte = xtr.flatten(1), xte.flatten(1)
    model = Equations("""
        dv/dt = (-v - w + I) / tau_m : volt
        dw/dt = (a*v - w) / tau_w : amp
    """, threshold="v > 1", reset="v = 0; w += b", method="exact", tau_m=5.0, tau_w=30.0, a=0.1, b=0.1)
    net = torch.nn.Sequential(TD(torch.nn.Linear(64, 128)), neuro.nn.Neuron(model, learn=("tau_m",)),
                              TD(torch.nn.Linear(128, 10)))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    T, g = 12, torch.Generator().manual_seed(0)
    for _ in range(10):
        perm = torch.randperm(len(xtr), generator=g)
        for i in range(0, len(xtr), 32):
            idx = perm[i:i + 32]
            loss = torch.nn.functional.cross_entropy(net(xtr[idx].unsqueeze(0).expand(T, -1, -1)).mean(0), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        acc = float((net(xte.unsqueeze(0).expand(T, -1, -1)).mean(0).argmax(-1) == yte).float().mean())
    assert float(net[1].tau_m) != 5.0  # the time constant was trained
    assert acc >= 0.94, acc  # 95.4% measured after 8 epochs


@pytest.mark.parametrize("kwargs, match", [
    (dict(equations="dv/dt = (-v + I) / tau + q : volt", tau=1.0), r"unknown symbol 'q' \(line 1"),
    (dict(equations="dv/dt = (-v + I) / tau : volt", tau=1.0, threshold="u > 1"), r"unknown symbol 'u'"),
    (dict(equations="dv/dt = (-v + I*w) / tau : volt", tau=1.0, w=1.0, reset="w = 0"),
     r"assigns 'w', which is a parameter"),
    (dict(equations="dv/dt = (v**2 + I) / tau : volt", tau=1.0, method="exact"),
     r"'exact' cannot integrate line 1.*not linear in 'v'"),
    (dict(equations="dv/dt = (-v + I) / tau : volt", tau=1.0, method="midpoint"), r"method must be one of"),
    (dict(equations="dv/dt = foo(v) + I : volt"), r"unknown function 'foo'"),
    (dict(equations="dv/dt = -v + I : volt\ndv/dt = I : volt"), r"'v' is defined twice"),
    (dict(equations="dv/dt = -v + I : volt", tau=1.0), r"parameter 'tau' is not used"),
    (dict(equations="dv/dt = (-v + I) / cm : volt", cm=1.0), r"parameter 'cm' has the name of a unit"),
    (dict(equations="dv/dt = -v + I"), r"no ': unit' annotation"),
    (dict(equations="dv/dt = -v : volt"), r"input 'I' does not appear"),
    (dict(equations="dv/dt = -v + I : volt", threshold="v + 1"), r"must be one comparison"),
    (dict(equations="dv/dt = -v*exp(v) + I : volt", method="exponential_euler"), r"not linear in 'v' itself"),
    (dict(equations="dv/dt = -v + I : volt (unless refractory)\nx = v*2 : volt\ny = x + z : volt\nz = y : volt"),
     r"cycle"),
])
def test_bad_equations_name_the_line_and_symbol(kwargs, match):
    kw = dict(threshold="v > 1")
    kw.update(kwargs)
    eq = kw.pop("equations")
    with pytest.raises(EquationError, match=match):
        Equations(eq, **kw)


def test_equation_models_that_are_nir_nodes_export_as_those_nodes():
    # one step of 1 ms is 1e-4 NIR time units: taus scale by 1e-4, IF's rate r by 1e4
    lif = Equations("dv/dt = (v_leak - v + R*I) / tau : volt", threshold="v > v_th", reset="v = v_reset",
                    method="euler", v_leak=0.25, R=2.0, tau=[4.0, 8.0], v_th=1.0, v_reset=-0.5)
    node = lif.nir_node(time_scale=1e-4)
    assert isinstance(node, nir.LIF)
    np.testing.assert_allclose(node.tau, [4e-4, 8e-4], rtol=1e-6)
    np.testing.assert_allclose(node.r, [2.0, 2.0], rtol=1e-6)
    np.testing.assert_allclose(node.v_leak, [0.25, 0.25], rtol=1e-6)
    np.testing.assert_allclose(node.v_threshold, [1.0, 1.0])
    np.testing.assert_allclose(node.v_reset, [-0.5, -0.5])
    cuba = Equations("""
        dI_s/dt = (-I_s + w_in*I) / tau_syn : amp
        dv/dt = (-v + R*I_s) / tau_mem : volt
        """, threshold="v > 1", reset="v = 0", tau_syn=2.0, tau_mem=10.0, w_in=3.0, R=0.5)
    node = cuba.nir_node(time_scale=1e-4)
    assert isinstance(node, nir.CubaLIF)
    np.testing.assert_allclose([node.tau_syn[0], node.tau_mem[0], node.w_in[0], node.r[0], node.v_leak[0]],
                               [2e-4, 10e-4, 3.0, 0.5, 0.0], rtol=1e-6, atol=1e-9)
    integrator = Equations("dv/dt = R*I : volt", threshold="v > 1", reset="v = 0", R=2.0)
    node = integrator.nir_node(time_scale=1e-4)
    assert isinstance(node, nir.IF)
    np.testing.assert_allclose(node.r, [2e4], rtol=1e-6)


def test_equation_layer_round_trips_through_nir_with_its_spikes():
    torch.manual_seed(0)
    model = Equations("dv/dt = (-v + I) / tau : volt", threshold="v > v_th", reset="v = 0", method="euler",
                      tau=4.0, v_th=1.0)
    net = torch.nn.Sequential(neuro.nn.TimeDistributed(torch.nn.Linear(3, 6)), neuro.nn.Neuron(model, dt=1.0))
    graph = neuro.to_nir(net, (3,), dt=1e-4)
    back = neuro.from_nir(graph, dt=1e-4)  # forward Euler: beta = 1 - dt/tau = 0.75, input gain 0.25
    x = torch.rand(40, 5, 3) * 3.0
    with torch.no_grad():
        ours, theirs = net(x), back(x)
    assert 0 < ours.sum() < ours.numel()
    torch.testing.assert_close(theirs, ours)


@pytest.mark.parametrize("kwargs, match", [
    (dict(equations="dv/dt = (-v - w + I) / tau : volt\ndw/dt = -w / tau : amp\ndu/dt = -u / tau : 1",
          reset="v = 0"), r"state variables v, w, u"),
    (dict(equations="dv/dt = (-v + I) / tau : volt (unless refractory)", reset="v = 0", refractory=2.0),
     r"a refractory period"),
    (dict(equations="dv/dt = (-v + I) / tau : volt", reset="v = 0", threshold="v >= 1"), r"strictly"),
    (dict(equations="dv/dt = (-v + I) / tau : volt", reset="v -= 1"), r"the reset 'v -= 1'"),
    (dict(equations="dv/dt = (-v*v + I) / tau : volt", reset="v = 0", method="euler"), r"nonlinear"),
])
def test_equations_without_a_nir_node_say_why(kwargs, match):
    kw = dict(threshold="v > 1", tau=2.0)
    kw.update(kwargs)
    with pytest.raises(EquationError, match=match):
        Equations(kw.pop("equations"), **kw).nir_node()


def test_nir_export_of_an_equation_model_says_what_has_no_nir_form():
    m = Equations("dv/dt = (-v + I) / tau : volt", threshold="v > 1", tau=2.0)
    net = torch.nn.Sequential(neuro.nn.TimeDistributed(torch.nn.Linear(3, 2)), neuro.nn.Neuron(m))
    with pytest.raises((ValueError, TypeError), match="(?i)nir"):
        neuro.to_nir(net, (3,))


# -- update equations (discrete time), reset modes and timing as options, refractory clamp ----------------------
_RESETS = {"subtract": "v -= v_th", "to_value": "v = v_reset", "none": ""}


def _discrete_model(**kw):
    """snnTorch's Leaky written as an update, with every reset mode and timing as run-time options."""
    args = dict(threshold="v > v_th", reset=_RESETS, options=("reset_mode", "reset_delay"), refractory="tau_ref",
                refractory_timing="nest", refractory_clamp="v = v_reset", beta=0.8, v_th=1.0, v_reset=-0.2,
                tau_ref=0.0)
    args.update(kw)
    return Equations("v <- beta*v + I : volt", **args)


def _numpy_discrete(x, beta, v_th, v_reset, mode, delay, t_ref):
    """The same update in float32 NumPy, operations in the written order: snnTorch's next-step reset
    (``v = beta v + x - S[t-1] v_th``; reset to value: the step starts from ``v_reset``) or the same-step reset;
    after a spike, ``t_ref`` steps with v held at v_reset."""
    f = np.float32
    beta, v_th, v_reset = f(beta), f(v_th), f(v_reset)
    T, n = x.shape
    v, ref = np.zeros(n, f), np.zeros(n, f)
    spikes, vs = np.zeros((T, n), f), np.zeros((T, n), f)
    for t in range(T):
        fired = (v > v_th) if delay else np.zeros(n, bool)
        start = np.where(fired & (mode == "to_value"), v_reset, v)
        ref = np.where(fired, f(t_ref), ref)
        frozen = ref > 0
        ref = np.where(frozen, ref - f(1), ref)
        v_new = beta * start + x[t]
        if mode == "subtract":
            v_new = np.where(fired, v_new - v_th, v_new)
        v_new = np.where(frozen, v_reset, v_new)
        s = ~frozen & (v_new > v_th)
        if not delay:
            if mode == "subtract":
                v_new = np.where(s, v_new - v_th, v_new)
            elif mode == "to_value":
                v_new = np.where(s, v_reset, v_new)
            ref = np.where(s, f(t_ref), ref)
        v = v_new.astype(f)
        spikes[t], vs[t] = s, v
    return spikes, vs


@pytest.mark.parametrize("t_ref", [0, 3])
@pytest.mark.parametrize("delay", [False, True])
@pytest.mark.parametrize("mode", ["subtract", "to_value", "none"])
def test_update_equations_with_reset_options_equal_numpy_bit_for_bit(mode, delay, t_ref):
    from neuro import kernels

    rng = np.random.default_rng(3)
    x = rng.normal(0.35, 0.6, (60, 9)).astype(np.float32)
    model = _discrete_model()
    params = model.kernel_params(1.0)
    params["_t_ref"] = np.float32([t_ref])  # the counter in steps, as the built-in layers pass it
    state = model.initial_state(9)
    spikes, rec = kernels.forward(model.dynamics, x, state, params, {"reset_mode": mode, "reset_delay": delay},
                                  record=True)
    s_ref, v_ref = _numpy_discrete(x, 0.8, 1.0, -0.2, mode, delay, t_ref)
    assert s_ref.sum() > 20
    np.testing.assert_array_equal(spikes, s_ref)
    np.testing.assert_array_equal(rec[:, 0], v_ref)  # bit for bit: the update is printed as written
    # the same choice made at construction (no options: one variant compiled) and through simulate
    fixed = _discrete_model(reset=_RESETS[mode], options=(), reset_delay=delay, tau_ref=float(t_ref))
    res = fixed.simulate(x, dt=1.0)
    np.testing.assert_array_equal(res.spikes, s_ref)
    np.testing.assert_array_equal(res.v, v_ref)
    chosen = _discrete_model(reset_mode=mode, reset_delay=delay, tau_ref=float(t_ref)).simulate(x, dt=1.0)
    np.testing.assert_array_equal(chosen.spikes, s_ref)


def test_refractory_timing_of_an_update_model_brian2_and_nest():
    # strong drive: a spike as soon as the neuron may; Brian2 freezes round(t/dt) - 1 updates, NEST round(t/dt)
    cur = np.full((200, 1), 50.0, np.float32)
    kw = dict(reset="v = v_reset", options=(), tau_ref=3.0)
    brian = _discrete_model(refractory_timing="brian2", **kw).simulate(cur, dt=1.0).spikes[:, 0]
    nest = _discrete_model(**kw).simulate(cur, dt=1.0).spikes[:, 0]
    assert set(np.diff(np.nonzero(brian)[0])) == {3} and set(np.diff(np.nonzero(nest)[0])) == {4}


@pytest.mark.parametrize("delay", [False, True])
@pytest.mark.parametrize("mode", ["subtract", "to_value"])
def test_update_model_gradients_equal_torch_autograd(mode, delay):
    from neuro.nn.functional import neuron_scan

    model = _discrete_model()
    torch.manual_seed(1)
    T, n = 30, 6
    x = (torch.rand(T, n) * 0.9).requires_grad_()
    names = model.dynamics.params
    values = {"beta": 0.8, "v_th": 1.0, "v_reset": -0.2, "_t_ref": 0.0}
    p = torch.tensor([[values[k]] * n for k in names], requires_grad=True)
    w_s, w_v = torch.randn(T, n), torch.randn(T, n)
    spikes, states = neuron_scan(model.dynamics, x, p, torch.zeros(2, n), [mode, delay],
                                 neuro.surrogate.atan(2.0))
    ((spikes * w_s).sum() + (states[:, 0] * w_v).sum()).backward()
    ps = {k: torch.tensor(values[k], requires_grad=True) for k in ("beta", "v_th", "v_reset")}
    x2 = x.detach().clone().requires_grad_()
    s_ref, v_ref = discrete_lif(x2, ps["beta"], ps["v_th"], ps["v_reset"], mode, delay)
    ((s_ref * w_s).sum() + (v_ref * w_v).sum()).backward()
    assert torch.equal(spikes, s_ref) and spikes.sum() > 10
    assert (x.grad - x2.grad).abs().max() <= 1e-5 * x2.grad.abs().max()
    for k, ref in ps.items():
        g, g_ref = float(p.grad[names.index(k)].sum()), 0.0 if ref.grad is None else float(ref.grad)
        assert abs(g - g_ref) <= 1e-5 * max(1.0, abs(g_ref)), (k, g, g_ref)


@pytest.mark.parametrize("kwargs, match", [
    (dict(equations="v <- beta*v + I : volt\ndw/dt = -w : 1", beta=0.9), r"cannot be mixed"),
    (dict(equations="dv/dt = -v + I : volt", method="discrete"), r"'discrete' is for update equations"),
    (dict(equations="v <- beta*v + I : volt", beta=0.9, options=("reset_mode",), reset="v = 0"),
     r"option 'reset_mode' selects among named resets"),
    (dict(equations="v <- beta*v + I : volt", beta=0.9, reset={"hard": "v = 0"}), r"reset mode 'hard' is not one"),
    (dict(equations="v <- beta*v + I : volt", beta=0.9, reset={"zero": "v = 0", "to_value": "v = 0"}),
     r"are the same mode"),
    (dict(equations="v <- beta*v + I : volt", beta=0.9, options=("reset_time",)), r"unknown option 'reset_time'"),
    (dict(equations="v <- beta*v + I : volt", beta=0.9, refractory=1.0, refractory_clamp="v -= 1"),
     r"write an assignment"),
    (dict(equations="v <- beta*v + I : volt", beta=0.9, refractory_clamp="beta = 0"), r"assigns 'beta'"),
])
def test_bad_update_equations_and_options_are_named(kwargs, match):
    kw = dict(threshold="v > 1")
    kw.update(kwargs)
    eq = kw.pop("equations")
    with pytest.raises(EquationError, match=match):
        Equations(eq, **kw)


def test_update_equations_have_no_nir_node():
    with pytest.raises(EquationError, match="update equations"):
        Equations("v <- beta*v + I : volt", threshold="v > 1", reset="v = 0", beta=0.9).nir_node()
