"""The lean layer writes the input gradient into the incoming spike gradient's buffer only when nothing else can
see that buffer (``neuro.nn.functional._sole_reference``). Checked against the same backward with the reuse
switched off: every gradient equal bit for bit, whoever else holds the incoming gradient (the caller's
``grad_outputs``, a hook, ``retain_grad``, another branch, another output), and a tensor the user passed in is
never written."""

import pytest
import torch

import neuro
import neuro.nn.functional as F
from neuro import kernels

T, B, N = 70, 3, 5
W = torch.randn(T, B, N, generator=torch.Generator().manual_seed(0))


def _retain(layer, x):
    s = layer(x)
    s.retain_grad()
    (s * W).sum().backward()
    return [s.grad]


def _hook(layer, x):
    kept = []
    s = layer(x)
    s.register_hook(lambda g: kept.append(g))
    (s * W).sum().backward()
    return kept


def _user_gradient(layer, x):
    g = W.clone()
    layer(x).backward(g)
    return [g]


def _grad_outputs(layer, x):
    g = W.clone()
    (x.grad,) = torch.autograd.grad(layer(x), x, g)
    return [g]


def _shared_branch(layer, x, other_first):
    y = torch.ones(T, B, N, requires_grad=True)
    if other_first:
        z = y * 3
        s = layer(x)
    else:
        s = layer(x)
        z = y * 3
    ((s + z) * W).sum().backward()
    return [y.grad]


def _spikes_and_v(layer, x):
    s, v = layer(x, return_v=True)
    ((s + v) * W).sum().backward()
    return []


def _cat_twice(layer, x):
    s = layer(x)
    (torch.cat([s, s]) * torch.cat([W, W])).sum().backward()
    return []


def _create_graph(layer, x):
    (g,) = torch.autograd.grad((layer(x) * W).sum(), x, create_graph=True)
    x.grad = g.detach()
    return []


CASES = {
    "mean": (lambda layer, x: layer(x).mean().backward() or [], True),
    "weighted": (lambda layer, x: (layer(x) * W).sum().backward() or [], True),
    "retain_grad": (_retain, None),
    "hook keeps it": (_hook, False),
    "backward(gradient=g)": (_user_gradient, False),
    "autograd.grad(grad_outputs=g)": (_grad_outputs, False),
    "shared branch, layer first": (lambda layer, x: _shared_branch(layer, x, False), None),
    "shared branch, other first": (lambda layer, x: _shared_branch(layer, x, True), None),
    "spikes and v": (_spikes_and_v, None),
    "cat twice": (_cat_twice, None),
    "create_graph": (_create_graph, False),
}


def _run(build, reuse, monkeypatch):
    if not reuse:
        monkeypatch.setattr(F, "_sole_reference", lambda g: False)
    outs = []
    real = kernels.backward_lean
    monkeypatch.setattr(kernels, "backward_lean", lambda *a, out=None, **k: outs.append(out is not None)
                        or real(*a, out=out, **k))
    torch.manual_seed(1)
    layer = neuro.nn.LIF(beta=0.9)
    x = (torch.rand(T, B, N) * 0.8).requires_grad_(True)
    held = build(layer, x)
    monkeypatch.undo()
    return x.grad, held, outs


@pytest.mark.parametrize("name", list(CASES))
def test_reuse_changes_no_gradient_and_no_user_tensor(name, monkeypatch):
    build, expect_reuse = CASES[name]
    gx, held, outs = _run(build, True, monkeypatch)
    gx_ref, held_ref, _ = _run(build, False, monkeypatch)
    assert torch.equal(gx, gx_ref)
    assert len(held) == len(held_ref) and all(torch.equal(a, b) for a, b in zip(held, held_ref, strict=True))
    if name in ("backward(gradient=g)", "autograd.grad(grad_outputs=g)"):
        assert torch.equal(held[0], W)  # the user's gradient tensor is not overwritten
    if expect_reuse is not None:
        assert outs == [expect_reuse]  # the buffer is reused exactly when nothing else holds it
