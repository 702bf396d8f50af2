"""neuro.nn.Neuron over the built-in models (LIF, CubaLIF, ALIF, IF): one parameter object per model for both
front ends. The layer keeps the model's physical parameters as tensors and computes the kernel coefficients in
torch with the model's own ``coefficients``; checked against the model's NumPy ``simulate`` (forward, bit for
bit), against the discrete update written in plain torch here (gradients w.r.t. tau_m, tau_syn, the threshold),
and the NumPy coefficients against the formulas written in NumPy here (bytewise)."""

import numpy as np
import pytest
import torch
from torch_references import discrete_lif

from neuro.models import ALIF, IF, LIF, CubaLIF, Equations
from neuro.models._neuron import NeuronModel
from neuro.nn import Neuron

N = 4  # neurons; per-neuron parameters below have N values
TAU_M = np.array([4.0, 10.0, 6.5, 20.0])  # float32-representable, so the layer's float32 tensors hold them exactly


def _models():
    """(id, model, input scale): every form each built-in model has, with resets and timings varied."""
    lif = dict(tau_m=TAU_M, cm=0.5, v_rest=-0.25, v_thresh=1.0, v_reset=-0.5, tau_refrac=2.0)
    cuba = dict(tau_m=TAU_M, tau_syn=np.array([2.0, 5.0, 6.5, 3.0]), cm=0.5, v_rest=0.0, v_thresh=1.0,
                v_reset=0.0, tau_refrac=1.0, w_in=1.5)
    alif = dict(tau_m=TAU_M, cm=0.5, v_rest=0.0, v_thresh=0.5, v_reset=0.0, tau_adapt=30.0, adapt_gain=0.25)
    return [
        ("lif-exact", LIF(**lif), 1.0),
        ("lif-euler-subtract-delay", LIF(**lif, integration="euler", reset="subtract", reset_delay=True), 1.0),
        ("lif-discrete", LIF.discrete(beta=np.array([0.5, 0.75, 0.875, 0.9375])), 0.6),
        ("cuba-exact", CubaLIF(**cuba), 0.8),
        ("cuba-euler-subtract", CubaLIF(**cuba, integration="euler", reset="subtract"), 0.8),
        ("cuba-discrete", CubaLIF.discrete(alpha=0.5, beta=np.array([0.5, 0.75, 0.875, 0.9375])), 0.5),
        ("alif-exact", ALIF(**alif), 0.6),
        ("alif-euler-subtract", ALIF(**alif, integration="euler", reset="subtract"), 0.6),
        ("alif-discrete", ALIF.discrete(beta=0.75, adapt_decay=0.875, adapt_gain=0.25), 0.6),
        ("if-subtract", IF(r=np.array([0.5, 1.0, 1.5, 2.0]), v_thresh=1.0, v_init=0.25), 0.5),
        ("if-to-value-delay", IF(r=0.75, v_thresh=1.0, v_reset=-0.25, tau_refrac=2.0, reset="to_value",
                                 reset_delay=True), 0.5),
    ]


MODELS = _models()


# -- (a) the layer's forward pass is the model's simulate ---------------------------------------------------------
@pytest.mark.parametrize("name,model,scale", MODELS, ids=[m[0] for m in MODELS])
def test_layer_forward_equals_simulate(name, model, scale):
    rng = np.random.default_rng(1)
    T, B, dt = 60, 3, 0.5 if "discrete" not in name else 1.0
    x = (rng.random((T, B, N)) * scale).astype(np.float32)
    learn = tuple(k for k in model.parameters if k not in model.stepped_parameters)
    layer = Neuron(model, surrogate="atan", learn=learn, dt=dt)
    spikes, v = layer(torch.from_numpy(x), return_v=True)
    total = 0
    for b in range(B):
        ref = model.simulate(x[:, b], dt=dt)
        assert np.array_equal(spikes[:, b].detach().numpy(), ref.spikes)
        assert np.array_equal(v[:, b].detach().numpy(), ref.v)
        total += ref.spikes.sum()
    assert total > 10  # the resets are exercised
    assert layer.reset == model.reset and layer.reset_delay == bool(model.reset_delay)


@pytest.mark.parametrize("name,model,scale", MODELS, ids=[m[0] for m in MODELS])
def test_torch_coefficients_equal_numpy(name, model, scale):
    """The one method computes the coefficients in both namespaces: float64 torch equals float64 NumPy up to
    the last bit of ``exp`` (torch's and NumPy's libm may differ by 1 ulp), which ``1 - decay`` magnifies by
    ``1 / (1 - decay)`` (at most 1 / (1 - exp(-0.1/20)) ~ 200 here): rtol 1e-12, where a different formula
    would differ by far more."""
    for dt in (0.1, 0.5, 1.0):
        ref = model.coefficients(model.parameters, dt)
        got = model.coefficients({k: torch.tensor(v) for k, v in model.parameters.items()}, dt)
        assert set(got) == set(model.dynamics.params)
        for k in ref:
            assert isinstance(got[k], torch.Tensor), k
            np.testing.assert_allclose(got[k].numpy(), ref[k], rtol=1e-12, atol=0, err_msg=k)
        assert all(np.array_equal(model.kernel_params(dt)[k], np.asarray(ref[k], np.float32).reshape(-1))
                   for k in ref)


# -- (b) gradients against the discrete update written in plain torch ----------------------------------------------
def _loss_weights(T, B):
    g = torch.Generator().manual_seed(7)
    return torch.randn(T, B, N, generator=g), torch.randn(T, B, N, generator=g)


def _close(got, ref):
    got, ref = got.detach().double().reshape(-1), ref.detach().double().reshape(-1)
    assert got.shape == ref.shape
    err = (got - ref).abs().max().item()
    assert err <= 1e-5 * max(ref.abs().max().item(), 1e-3), (got, ref)


@pytest.mark.parametrize("integration", ["exact", "euler"])
@pytest.mark.parametrize("mode,delay", [("subtract", False), ("to_value", False), ("subtract", True),
                                        ("to_value", True)])
def test_lif_gradients_match_plain_torch(integration, mode, delay):
    torch.manual_seed(3)
    T, B, dt, cm, v_reset = 50, 3, 0.5, 0.5, -0.25
    x = torch.rand(T, B, N) * 0.8
    model = LIF(tau_m=TAU_M, cm=cm, v_rest=0.0, v_thresh=1.0, v_reset=v_reset, reset=mode, reset_delay=delay,
                integration=integration)
    layer = Neuron(model, surrogate="atan", learn=("tau_m", "v_thresh"), dt=dt)
    x1 = x.clone().requires_grad_()
    spikes, v = layer(x1, return_v=True)
    w_s, w_v = _loss_weights(T, B)
    ((spikes * w_s).sum() + (v * w_v).sum()).backward()

    # the same update in plain torch: coefficients in float64 from tau_m, rounded once to float32 as the kernels
    tau = torch.tensor(TAU_M, dtype=torch.float64, requires_grad=True)
    v_th = torch.tensor(1.0, requires_grad=True)
    if integration == "exact":
        decay = torch.exp(-dt / tau)
        gain = tau / cm * (1 - decay)
    else:
        decay = 1 - dt / tau
        gain = tau / cm * dt / tau
    x2 = x.clone().requires_grad_()
    s_ref, v_ref = discrete_lif(x2 * gain.float(), decay.float(), v_th, torch.tensor(v_reset), mode, delay)
    ((s_ref * w_s).sum() + (v_ref * w_v).sum()).backward()

    assert spikes.sum() > 20
    assert torch.equal(spikes, s_ref) and torch.equal(v, v_ref)
    _close(x1.grad, x2.grad)
    _close(layer.tau_m.grad, tau.grad)
    _close(layer.v_thresh.grad, v_th.grad)


@pytest.mark.parametrize("integration", ["exact", "euler"])
@pytest.mark.parametrize("delay", [False, True])
def test_cuba_lif_gradients_match_plain_torch(integration, delay):
    torch.manual_seed(5)
    T, B, dt, cm, w_in = 50, 3, 0.5, 0.5, 1.5
    tau_syn_values = np.array([2.0, 5.0, 10.0, 3.0])  # 10 = tau_m there: the equal-time-constant propagator
    x = torch.rand(T, B, N) * 0.5
    model = CubaLIF(tau_m=TAU_M, tau_syn=tau_syn_values, cm=cm, v_rest=0.0, v_thresh=1.0, v_reset=0.0,
                    w_in=w_in, reset="subtract", reset_delay=delay, integration=integration)
    layer = Neuron(model, surrogate="atan", learn=("tau_m", "tau_syn", "v_thresh", "w_in"), dt=dt)
    spikes, v = layer(x, return_v=True)
    w_s, w_v = _loss_weights(T, B)
    ((spikes * w_s).sum() + (v * w_v).sum()).backward()

    tau_m = torch.tensor(TAU_M, dtype=torch.float64, requires_grad=True)
    tau_syn = torch.tensor(tau_syn_values, dtype=torch.float64, requires_grad=True)
    w = torch.tensor(w_in, dtype=torch.float64, requires_grad=True)
    v_th = torch.tensor(1.0, requires_grad=True)
    r = tau_m / cm
    if integration == "exact":
        alpha, beta = torch.exp(-dt / tau_syn), torch.exp(-dt / tau_m)
        syn_gain = alpha * w
        same = torch.isclose(tau_syn, tau_m)
        p21 = torch.where(same, dt / tau_m * beta,
                          tau_syn / torch.where(same, torch.ones_like(tau_m), tau_syn - tau_m) * (alpha - beta))
        i_new = r * p21 / alpha
    else:
        alpha, beta = 1 - dt / tau_syn, 1 - dt / tau_m
        syn_gain, i_new = w * dt / tau_syn, r * dt / tau_m
    alpha, beta, syn_gain, i_new = (c.float() for c in (alpha, beta, syn_gain, i_new))
    i, currents = torch.zeros(B, N), []
    for t in range(T):  # the synaptic current has no reset: i_next = alpha i + syn_gain x
        i = alpha * i + syn_gain * x[t]
        currents.append(i_new * i)
    s_ref, v_ref = discrete_lif(torch.stack(currents), beta, v_th, torch.tensor(0.0), "subtract", delay)
    ((s_ref * w_s).sum() + (v_ref * w_v).sum()).backward()

    assert spikes.sum() > 20
    assert torch.equal(spikes, s_ref)
    assert torch.equal(v, v_ref)
    _close(layer.tau_m.grad, tau_m.grad)
    _close(layer.tau_syn.grad, tau_syn.grad)
    _close(layer.w_in.grad, w.grad)
    _close(layer.v_thresh.grad, v_th.grad)


# -- (c) training moves tau_m the way the gradient says --------------------------------------------------------------
def test_training_moves_tau_m_towards_the_target():
    """Fit the membrane of a LIF with tau_m = 15 ms (a high threshold, so no spikes) starting from 5 ms: the
    loss is smallest at 15, so each step must raise tau_m (minus the gradient) and lower the loss."""
    torch.manual_seed(0)
    x = torch.rand(80, 8, 1)
    kwargs = dict(cm=1.0, v_rest=0.0, v_thresh=1e3, v_reset=0.0)
    with torch.no_grad():
        _, target = Neuron(LIF(tau_m=15.0, **kwargs))(x, return_v=True)
    layer = Neuron(LIF(tau_m=5.0, **kwargs), surrogate="atan", learn=("tau_m",))
    opt = torch.optim.SGD(layer.parameters(), lr=2.0)
    losses, taus = [], [layer.tau_m.item()]
    for _ in range(15):
        opt.zero_grad()
        _, v = layer(x, return_v=True)
        loss = ((v - target) ** 2).mean()
        loss.backward()
        grad = layer.tau_m.grad.item()
        assert grad < 0  # loss falls as tau_m rises towards 15
        opt.step()
        assert np.sign(layer.tau_m.item() - taus[-1]) == -np.sign(grad)
        losses.append(loss.item())
        taus.append(layer.tau_m.item())
    assert taus[-1] > taus[0] + 2 and taus[-1] < 15.0 + 1e-3
    assert losses[-1] < 0.5 * losses[0]
    assert set(layer.state_dict()) == set(LIF().parameters)  # every physical parameter is saved


# -- (d) the NumPy coefficients, bytewise against the formulas written here ------------------------------------------
@pytest.mark.parametrize("dt", [0.1, 0.25, 1.0, 1.7])
def test_numpy_kernel_params_bytewise(dt):
    tau_m, tau_s = np.array([0.5, 3.7, 10.0, 123.4]), np.array([3.7, 2.0, 10.0, 9.9])
    cm = np.array([0.25, 3.0, 1.0, 1.0])
    r = tau_m / cm

    def same(got, want):
        assert np.asarray(want, np.float32).reshape(-1).tobytes() == got.tobytes()

    for integration in ("exact", "euler"):
        d = np.exp(-dt / tau_m) if integration == "exact" else 1.0 - dt / tau_m
        g = r * (1.0 - d) if integration == "exact" else r * dt / tau_m
        k = LIF(tau_m=tau_m, cm=cm, tau_refrac=2.6 * dt, integration=integration).kernel_params(dt)
        same(k["decay"], d), same(k["gain"], g), same(k["t_ref"], 3.0), same(k["v_leak"], -65.0)
        a = np.exp(-dt / tau_s) if integration == "exact" else 1.0 - dt / tau_s
        k = ALIF(tau_m=tau_m, cm=cm, tau_adapt=tau_s, integration=integration).kernel_params(dt)
        same(k["decay"], d), same(k["gain"], g), same(k["adapt_decay"], a)
        k = CubaLIF(tau_m=tau_m, tau_syn=tau_s, cm=cm, w_in=0.75, integration=integration).kernel_params(dt)
        if integration == "exact":
            eq = np.isclose(tau_s, tau_m)
            p21 = np.where(eq, dt / tau_m * d, tau_s / np.where(eq, 1.0, tau_s - tau_m) * (a - d))
            syn_gain, i_new = a * 0.75, r * p21 / a
        else:
            syn_gain, i_new = 0.75 * dt / tau_s, r * dt / tau_m
        same(k["syn_decay"], a), same(k["mem_decay"], d), same(k["syn_gain"], syn_gain), same(k["i_new"], i_new)
        same(k["i_old"], 0.0)
    k = IF(r=np.array([0.5, -2.0]), tau_refrac=dt * 0.5).kernel_params(dt)
    same(k["gain"], np.array([0.5, -2.0]) * dt), same(k["decay"], 1.0), same(k["t_ref"], 0.0)  # 0.5 -> 0 (even)


# -- (e) errors -----------------------------------------------------------------------------------------------------
def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="'tau_mem', which is not a parameter of the model.*tau_m"):
        Neuron(LIF(), learn=("tau_mem",))
    with pytest.raises(ValueError, match="'tau_refrac', which the model rounds to whole steps"):
        Neuron(CubaLIF(tau_refrac=2.0), learn=("tau_m", "tau_refrac"))
    with pytest.raises(ValueError, match="'tau_m', which is not a parameter of the model with integration="
                                         "'discrete'.*beta"):
        Neuron(LIF.discrete(), learn=("tau_m",))
    with pytest.raises(TypeError, match="model must be a neuro.models.NeuronModel.*got dict"):
        Neuron({"tau_m": 10.0})

    class KernelOnly(NeuronModel):  # a model with kernel_params but no parameter interface
        dynamics = LIF.dynamics

    with pytest.raises(TypeError, match="got KernelOnly"):
        Neuron(KernelOnly())
    # an equation parameter only the refractory period reads: the kernel takes it in whole steps
    model = Equations("dv/dt = (-v + I) / tau_m : volt", threshold="v > 1", reset="v = 0", refractory="t_r",
                      tau_m=5.0, t_r=2.0)
    with pytest.raises(ValueError, match="'t_r', but the kernel coefficients .* do not depend on it"):
        Neuron(model, learn=("t_r",))
    with pytest.raises(ValueError, match="missing \\['v_reset'\\]"):
        LIF().coefficients(dict(tau_m=1.0, cm=1.0, v_rest=0.0, v_thresh=1.0, tau_refrac=0.0), 1.0)
    with pytest.raises(ValueError, match="dt"):
        LIF().coefficients(LIF().parameters, 0.0)


def test_learned_v_rest_is_where_the_membrane_starts():
    """The state resting at a parameter starts at the layer's value of it (as simulate starts v at v_rest)."""
    layer = Neuron(LIF(v_rest=-1.0, v_thresh=10.0, v_reset=0.0), learn=("v_rest",))
    with torch.no_grad():
        layer.v_rest.fill_(-2.0)
    _, v = layer(torch.zeros(3, 1, 1), return_v=True)
    assert v.flatten().tolist() == [-2.0, -2.0, -2.0]
    assert Neuron(IF(v_init=0.5), dt=1.0)(torch.zeros(1, 1, 1), return_v=True)[1].item() == 0.5


def test_nir_export_names_what_is_missing():
    """NIR export of a layer over a built-in model is not written: a NIRExportError saying so, not a crash."""
    from neuro.io import NIRExportError, to_nir

    net = torch.nn.Sequential(Neuron(LIF(tau_m=10.0, v_rest=0.0, v_thresh=1.0, v_reset=0.0)))
    with pytest.raises(NIRExportError, match="built-in LIF has no NIR export yet"):
        to_nir(net, (3,), dt=1.0)
