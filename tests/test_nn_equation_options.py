"""neuro.nn.Neuron runs a user model's kernel options: a model written as update equations with named resets
(``options=("reset_mode", "reset_delay")``) trains with the reset and timing it chose, checked against the
same discrete update written here in plain torch (forward bit for bit, gradients to float32 rounding)."""

import math

import pytest
import torch

from neuro.models import Equations
from neuro.nn import Neuron

RESETS = {"subtract": "v -= v_th", "to_value": "v = v_reset", "none": ""}


def _model(mode, delay):
    return Equations("v <- beta*v + I : volt", threshold="v > v_th", reset=RESETS, reset_mode=mode,
                     reset_delay=delay, options=("reset_mode", "reset_delay"), beta=0.8, v_th=1.0, v_reset=-0.2)


def _torch_reference(x, beta, v_th, v_reset, mode, delay, slope=2.0):
    """``v = beta v + x``, spike when ``v > v_th`` (atan surrogate, snnTorch's alpha = 2). Next-step reset
    (``delay``): the previous step's spike, detached, subtracts ``v_th`` after the update or restarts the step
    from ``v_reset``; same-step reset: applied to the new ``v`` with the surrogate gradient through it."""

    class Spike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, u):
            ctx.save_for_backward(u)
            return (u > 0).float()

        @staticmethod
        def backward(ctx, g):
            (u,) = ctx.saved_tensors
            return g * (slope / 2) / (1 + (math.pi * slope / 2 * u) ** 2)

    v = torch.zeros(x.shape[1:])
    spikes, vs = [], []
    for t in range(x.shape[0]):
        fired = (v > v_th).float().detach() if delay else torch.zeros_like(v)
        start = fired * v_reset + (1 - fired) * v if mode == "to_value" else v
        v_new = beta * start + x[t]
        if mode == "subtract":
            v_new = v_new - fired * v_th
        s = Spike.apply(v_new - v_th)
        if not delay:
            if mode == "subtract":
                v_new = v_new - s * v_th
            elif mode == "to_value":  # v = v_reset exactly; gradients of v_new + s (v_reset - v_new)
                v_new = torch.where(s > 0, v_reset, v_new) + (s - s.detach()) * (v_reset - v_new).detach()
        v = v_new
        spikes.append(s)
        vs.append(v)
    return torch.stack(spikes), torch.stack(vs)


@pytest.mark.parametrize("delay", [False, True])
@pytest.mark.parametrize("mode", ["subtract", "to_value", "none"])
def test_neuron_trains_a_user_model_with_its_chosen_reset(mode, delay):
    torch.manual_seed(4)
    T, B, n = 40, 3, 5
    x = (torch.rand(T, B, n) * 0.9).requires_grad_()
    layer = Neuron(_model(mode, delay), surrogate="atan", learn=("beta", "v_th"))
    spikes, v = layer(x, return_v=True)
    w_s, w_v = torch.randn(T, B, n), torch.randn(T, B, n)
    ((spikes * w_s).sum() + (v * w_v).sum()).backward()

    x2 = x.detach().clone().requires_grad_()
    beta, v_th = torch.tensor(0.8, requires_grad=True), torch.tensor(1.0, requires_grad=True)
    s_ref, v_ref = _torch_reference(x2, beta, v_th, torch.tensor(-0.2), mode, delay)
    ((s_ref * w_s).sum() + (v_ref * w_v).sum()).backward()

    assert spikes.sum() > 20
    assert torch.equal(spikes, s_ref)
    assert torch.equal(v, v_ref)  # the update is printed as written: bit for bit
    assert (x.grad - x2.grad).abs().max() <= 1e-5 * x2.grad.abs().max()
    for got, ref in ((layer.beta.grad, beta.grad), (layer.v_th.grad, v_th.grad)):
        assert abs(float(got) - float(ref)) <= 1e-5 * max(1.0, abs(float(ref)))
    assert layer.reset == mode and layer.reset_delay == delay  # what a NIR file would record


def test_the_chosen_reset_changes_the_membrane():
    """The layer does not fall back to one reset: each choice gives different membranes (to_value gives the same
    spikes at either timing: the step after a spike starts from v_reset both ways)."""
    torch.manual_seed(5)
    x = torch.rand(40, 2, 6) * 0.9
    choices = [(m, d) for m in ("subtract", "to_value") for d in (False, True)] + [("none", False)]
    out = {(m, d): Neuron(_model(m, d))(x, return_v=True)[1] for m, d in choices}  # no reset: timing moot
    assert len({tuple(s.flatten().tolist()) for s in out.values()}) == len(out)
