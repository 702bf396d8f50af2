"""Plain torch references shared by the gradient tests: a Heaviside spike with snnTorch's atan surrogate, and
the discrete update ``v = beta v + x`` with every reset mode and timing, written out step by step."""

import math

import torch


class AtanSpike(torch.autograd.Function):
    """``S = H(u)`` forward; backward ``(slope / 2) / (1 + (pi slope u / 2)^2)`` (snnTorch's ``atan``, alpha =
    ``slope``). ``AtanSpike.apply(u, slope)``."""

    @staticmethod
    def forward(ctx, u, slope=2.0):
        ctx.save_for_backward(u)
        ctx.slope = slope
        return (u > 0).to(u.dtype)

    @staticmethod
    def backward(ctx, g):
        (u,) = ctx.saved_tensors
        return g * (ctx.slope / 2) / (1 + (math.pi * ctx.slope / 2 * u) ** 2), None


def discrete_lif(x, beta, v_th, v_reset, mode, delay, slope=2.0):
    """``v = beta v + x``, spike when ``v > v_th``. Next-step reset (``delay``): the previous step's spike,
    detached (snnTorch), subtracts ``v_th`` after the update or restarts the step from ``v_reset``; same-step
    reset: applied to the new ``v`` with the surrogate gradient through it (``to_value`` sets ``v_reset``
    exactly, with the gradients of ``v + S (v_reset - v)``). Returns ``(spikes [T, ...], v [T, ...])``."""
    v = torch.zeros(x.shape[1:])
    spikes, vs = [], []
    for t in range(x.shape[0]):
        fired = (v > v_th).float().detach() if delay else torch.zeros_like(v)
        start = fired * v_reset + (1 - fired) * v if mode == "to_value" else v
        v_new = beta * start + x[t]
        if mode == "subtract":
            v_new = v_new - fired * v_th
        s = AtanSpike.apply(v_new - v_th, slope)
        if not delay:
            if mode == "subtract":
                v_new = v_new - s * v_th
            elif mode == "to_value":
                v_new = torch.where(s > 0, v_reset, v_new) + (s - s.detach()) * (v_reset - v_new).detach()
        v = v_new
        spikes.append(s)
        vs.append(v)
    return torch.stack(spikes), torch.stack(vs)
