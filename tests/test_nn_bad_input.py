"""neuro.nn rejects bad input with errors that name the argument; inputs are left untouched."""

import pytest
import torch

import neuro


@pytest.mark.parametrize("beta", [1.5, -0.1, float("nan")])
def test_beta_outside_unit_interval(beta):
    with pytest.raises(ValueError, match=r"beta must (lie in \[0, 1\]|be finite)"):
        neuro.nn.LIF(beta=beta)


def test_wrong_rank_is_not_time_major():
    with pytest.raises(ValueError, match=r"x must be time-major \[T, B, \.\.\.\].*got shape \(4, 10\)"):
        neuro.nn.LIF(beta=0.9)(torch.zeros(4, 10))


def test_non_float_and_nan_inputs():
    lif = neuro.nn.LIF(beta=0.9)
    with pytest.raises(TypeError, match="x must be a float tensor, got dtype torch.int64"):
        lif(torch.zeros(3, 2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="x contains NaN"):
        lif(torch.full((3, 2, 4), float("nan")))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        lif([[[0.0]]])


def test_parameter_shape_that_does_not_broadcast():
    lif = neuro.nn.LIF(beta=torch.full((5,), 0.9))
    with pytest.raises(ValueError, match=r"decay of shape \(5,\) does not broadcast to the neuron shape \(4,\)"):
        lif(torch.zeros(2, 1, 4))


def test_unknown_reset_and_surrogate():
    with pytest.raises(ValueError, match="reset must be one of"):
        neuro.nn.LIF(beta=0.9, reset="hard")
    with pytest.raises(ValueError, match="unknown surrogate 'relu'"):
        neuro.nn.LIF(beta=0.9, surrogate="relu")


def test_input_not_modified_and_float64_accepted():
    x = torch.rand(5, 2, 3, dtype=torch.float64)
    keep = x.clone()
    spk = neuro.nn.LIF(beta=0.9)(x)
    assert torch.equal(x, keep) and spk.dtype == torch.float32


def test_rlif_shape_check():
    with pytest.raises(ValueError, match=r"RLIF expects input \[T, B, 8\], got shape \(3, 2, 5\)"):
        neuro.nn.RLIF(8, beta=0.9)(torch.zeros(3, 2, 5))


def test_encoders_and_losses_check_arguments():
    with pytest.raises(ValueError, match="num_steps must be >= 1"):
        neuro.encoding.rate(torch.rand(2, 3), num_steps=0)
    with pytest.raises(TypeError, match="x must be a float torch.Tensor"):
        neuro.encoding.rate(torch.ones(2, 3, dtype=torch.long), num_steps=3)
    with pytest.raises(ValueError, match=r"targets must have shape \(2,\)"):
        neuro.nn.losses.ce_count_loss(torch.zeros(4, 2, 3), torch.zeros(3, dtype=torch.long))


def test_encoders_are_seeded_and_match_their_definitions():
    x = torch.rand(4, 6)
    a = neuro.encoding.rate(x, 50, seed=3)
    assert torch.equal(a, neuro.encoding.rate(x, 50, seed=3))
    assert not torch.equal(a, neuro.encoding.rate(x, 50, seed=4))
    lat = neuro.encoding.latency(x, 11)
    fired = x >= 0.01
    assert torch.equal(lat.sum(0), fired.float())  # one spike per input that fires
    t_first = lat.argmax(0)
    assert torch.equal(t_first[fired], torch.round((1 - x[fired]) * 10).long())
    sig = torch.tensor([0.0, 0.5, 0.55, 0.2, 0.9]).view(5, 1)
    assert neuro.encoding.delta(sig, threshold=0.1, off_spikes=True).view(-1).tolist() == [0, 1, 0, -1, 1]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_input_found_by_the_kernel_anywhere(dtype, bad):
    """On the CPU the forward kernel checks x as it reads it (no separate reduction): one bad value at the
    first, a middle and the last step, in the first, a middle and the last neuron of several kernel blocks
    (BLOCK neurons each), is refused; the user's tensors and the layer's state are untouched."""
    from neuro.kernels import cpu

    torch.manual_seed(0)
    n = 2 * cpu.BLOCK + 37  # three blocks, the last one short
    lif = neuro.nn.LIF(beta=0.9)
    x = (torch.rand(6, 1, n) * 0.5).to(dtype)
    state = {"v": torch.rand(1, n), "ref": torch.zeros(1, n)}
    kept = {k: v.clone() for k, v in state.items()}
    clean = lif(x, state=state)
    for t in (0, 3, 5):
        for j in (0, cpu.BLOCK - 1, cpu.BLOCK, n // 2, n - 1):
            y = x.clone()
            y[t, 0, j] = bad
            before = y.clone()
            with pytest.raises(ValueError, match="x contains NaN or infinite values"):
                lif(y, state=state)
            assert torch.equal(y.isnan(), before.isnan()) and torch.equal(y.nan_to_num(), before.nan_to_num())
            assert all(torch.equal(state[k], kept[k]) for k in state)
    assert torch.equal(lif(x, state=state), clean)  # and a clean input still runs as before


def test_rlif_spikes_are_marked_for_packing(monkeypatch):
    """RLIF stacks its per-step spikes itself: the stack is marked, so a TimeDistributed Linear after it keeps
    the spikes as bits, with the plain path's gradients."""
    from neuro.nn import spike_inputs

    # the unpacking path, torch's arithmetic bit for bit (a Linear this narrow would otherwise sum its weight
    # gradient over every bit, another float32 summation order: tests/test_spike_inputs.py)
    monkeypatch.setattr(spike_inputs, "DENSE_GRAD_OUT", 0)
    torch.manual_seed(0)
    rlif = neuro.nn.RLIF(8, beta=0.9)
    fc = neuro.nn.TimeDistributed(torch.nn.Linear(8, 3))
    s = rlif(torch.rand(12, 2, 8) * 2)
    assert spike_inputs.is_spikes(s) and 0 < s.sum() < s.numel()
    fc(s).square().sum().backward()
    packed = fc.layer.weight.grad.clone()
    fc.layer.weight.grad = None
    fc(s.detach().clone()).square().sum().backward()
    assert torch.equal(packed, fc.layer.weight.grad)
