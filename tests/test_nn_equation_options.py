"""neuro.nn.Neuron runs a user model's kernel options: a model written as update equations with named resets
(``options=("reset_mode", "reset_delay")``) trains with the reset and timing it chose, checked against the
same discrete update written here in plain torch (forward bit for bit, gradients to float32 rounding)."""

import pytest
import torch
from torch_references import discrete_lif

from neuro.models import Equations
from neuro.nn import Neuron

RESETS = {"subtract": "v -= v_th", "to_value": "v = v_reset", "none": ""}


def _model(mode, delay):
    return Equations("v <- beta*v + I : volt", threshold="v > v_th", reset=RESETS, reset_mode=mode,
                     reset_delay=delay, options=("reset_mode", "reset_delay"), beta=0.8, v_th=1.0, v_reset=-0.2)


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
    s_ref, v_ref = discrete_lif(x2, beta, v_th, torch.tensor(-0.2), mode, delay)
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
