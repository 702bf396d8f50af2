"""Low-memory mode for long sequences: a synaptic layer fused with a spiking neuron, worked through time in
chunks and recomputed in backward (activation checkpointing over time).

``SpikingLinear(in, out, neuron)`` computes what ``nn.Sequential(TimeDistributed(nn.Linear(in, out)), neuron)``
computes, with the same spikes and gradients, without ever keeping a ``[T, B, out]`` float tensor for
backward. For chunk ``k`` of ``chunk`` steps, with ``s_k`` the neuron state before it:

    forward:   I_k = x_k W^T + b,   (S_k, s_{k+1}) = neuron(I_k; s_k)        keep s_k only
    backward:  recompute I_k from x_k, then the neuron's BPTT over the chunk from s_k
               (:func:`neuro.kernels.backward_lean` recomputes the chunk's states from s_k in the kernel):
               dL/dI_k, dL/ds_k  <-  dL/dS_k, dL/ds_{k+1}
               dL/dW += dL/dI_k^T x_k,  dL/db += sum dL/dI_k,  dL/dx_k = dL/dI_k W,  dL/dtheta += ...

walking the chunks in reverse and carrying ``dL/ds_k`` to the previous chunk. What is kept for backward: the
input (which the caller holds anyway), the weights, and the state at chunk boundaries ``[ceil(T/chunk), S, B
out]``. The spikes are not kept (backward recomputes them), so nothing of size ``T x B x out`` outlives the
forward call except the output itself. Alive at once besides the output (forward) or its gradient (backward):
one chunk's pre-activation and its gradient, ``chunk x B x out`` floats each.

The price is one more synaptic product per step in backward (the recompute of ``I_k``). The CPU runs the fused
path; on other devices the layer runs the unfused composition (same results, no memory saving). The layer
computes in float32 under ``torch.autocast`` too; bfloat16 / float16 input is read one chunk at a time.

Default chunk: 32 steps, chosen by measurement on the T = 500, B = 16, Linear(512, 4096) + LIF training step
(``benchmarks/train_step.py --chunk C``, RESULTS.md "Training step"; one step's peak memory, ms per step on a
quiet machine): chunk 16: +159 MB, 931 ms; **32: +159 MB, 887 ms**; 64: +171 MB, 836 ms; 128: +201 MB,
909 ms; 500 (one chunk): +408 MB, 1089 ms. 32 is the smallest memory within 6% of the best time; on a
loaded machine larger chunks lose less time waiting between the many short parallel calls (load 3: chunk 32
3.0 s, chunk 64 2.2 s), so ``chunk=64`` trades about 12 MB for speed there.

Example:
    >>> import torch, neuro
    >>> layer = neuro.nn.SpikingLinear(64, 32, neuro.nn.LIF(beta=0.95, learn_beta=True), chunk=16)
    >>> x = (torch.rand(100, 4, 64) < 0.2).float()          # [T, B, in]
    >>> spikes, state = layer(x, return_state=True)          # spikes [T, B, 32], state {"v", "ref"} [B, 32]
    >>> spikes.mean().backward()
    >>> spikes.shape, layer.weight.grad.shape, layer.neuron.beta.grad is not None
    (torch.Size([100, 4, 32]), torch.Size([32, 64]), True)
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

from neuro import _checks, kernels
from neuro.nn.base import SpikingNeuron, check_time_major
from neuro.nn.functional import option_codes
from neuro.nn.spike_inputs import mark_spikes

#: default number of time steps per chunk (chosen by measurement: see the module docstring)
DEFAULT_CHUNK = 32


def _pre(synapse: nn.Module, weights: dict, x: torch.Tensor) -> torch.Tensor:
    """The synaptic layer with parameters ``weights`` over a chunk ``x [c, B, ...]``: ``[c, B * prod(out)]``
    float32, time folded into the batch as :class:`~neuro.nn.TimeDistributed` does."""
    c, b = x.shape[0], x.shape[1]
    y = functional_call(synapse, weights, (x.reshape(c * b, *x.shape[2:]).float(),))
    return y.reshape(c, -1).contiguous()


class _ChunkedSynapseNeuron(torch.autograd.Function):
    """Forward chunk by chunk, keeping the state at chunk boundaries; backward recomputes each chunk.

    ``names`` are the synapse's parameter names, ``weights`` the tensors in that order (inputs here, so
    autograd routes their gradients and checks they were not modified in place before backward)."""

    @staticmethod
    def forward(ctx, x, init, params, synapse, neuron, chunk, names, *weights):
        dyn = neuron.dynamics
        opts = option_codes(dyn, neuron.options())
        T, n = x.shape[0], init.shape[1]
        need_grad = any(ctx.needs_input_grad)
        state = init.detach().clone().contiguous()
        p_np = params.detach().contiguous().numpy()
        w = {k: v.detach() for k, v in zip(names, weights, strict=True)}
        starts = range(0, T, chunk)
        ckpt = torch.empty((len(starts), *state.shape)) if need_grad else None
        spikes = torch.empty((T, n), dtype=x.dtype)
        with torch.no_grad(), torch.autocast("cpu", enabled=False):  # float32 whatever the ambient autocast
            for k, s in enumerate(starts):
                pre = _pre(synapse, w, x[s:s + chunk])
                if need_grad:
                    ckpt[k] = state
                spk, _, _ = kernels.forward_lean(dyn, pre.numpy(), state.numpy(), p_np, opts, neuron.dt,
                                                 checkpoint=False)
                spikes[s:s + chunk] = torch.from_numpy(spk)
                del pre, spk  # one chunk's temporaries alive at a time
        ctx.synapse, ctx.neuron, ctx.chunk, ctx.opts, ctx.names = synapse, neuron, chunk, opts, names
        if need_grad:
            ctx.save_for_backward(x, params, ckpt, *weights)
        ctx.set_materialize_grads(False)
        return spikes, state

    @staticmethod
    def backward(ctx, g_spikes, g_final):
        x, params, ckpt, *weights = ctx.saved_tensors
        neuron, chunk = ctx.neuron, ctx.chunk
        need_x = ctx.needs_input_grad[0]
        need_w = ctx.needs_input_grad[7:]
        P, M = params.shape
        p_np = params.detach().contiguous().numpy()
        g_state = None if g_final is None else g_final.float().contiguous()
        g_x = torch.empty_like(x) if need_x else None
        g_w = [torch.zeros_like(w) if need else None for w, need in zip(weights, need_w, strict=True)]
        need_p = ctx.needs_input_grad[2]
        g_p = torch.zeros((P, M)) if need_p else None
        w = {k: v.detach().requires_grad_(need) for k, v, need in zip(ctx.names, weights, need_w, strict=True)}
        T = x.shape[0]
        for k in range((T + chunk - 1) // chunk - 1, -1, -1):
            s, e = k * chunk, min(T, (k + 1) * chunk)
            xk = x[s:e].detach().requires_grad_(need_x)
            with torch.enable_grad(), torch.autocast("cpu", enabled=False):
                pre = _pre(ctx.synapse, w, xk)  # recomputed: the forward kept no pre-activation
            gs = (torch.zeros((e - s, pre.shape[1])) if g_spikes is None
                  else g_spikes[s:e].float().reshape(e - s, -1).contiguous())
            # the chunk's checkpoint is its only segment (every = chunk length): the kernel recomputes the
            # chunk's states from it and runs the reverse sweep, dL/ds carried in from the next chunk
            g_pre, gp, g_init = kernels.backward_lean(
                neuron.dynamics, neuron.surrogate, pre.detach().numpy(), ckpt[k:k + 1].numpy(), p_np, ctx.opts,
                gs.numpy(), None, None if g_state is None else g_state.numpy(), neuron.dt, "float32", every=e - s,
                grad_params=need_p)
            g_state = torch.from_numpy(g_init)
            if need_p:
                g_p += torch.from_numpy(gp).reshape(P, -1, M).sum(1)  # per neuron -> per column of the [P, M] rows
            inputs = ([xk] if need_x else []) + [w[n] for n, need in zip(ctx.names, need_w, strict=True) if need]
            if inputs:
                grads = list(torch.autograd.grad(pre, inputs, torch.from_numpy(g_pre)))
                if need_x:
                    g_x[s:e] = grads.pop(0)
                for i, need in enumerate(need_w):
                    if need:
                        g_w[i] += grads.pop(0)
            del pre, gs, g_pre, gp
        return (g_x, g_state, g_p, None, None, None, None, *g_w)


# torch.compile: one clean graph break here instead of dynamo tracing into numba (as neuron_layer does)
@torch.compiler.disable
def _fused(*args):
    return _ChunkedSynapseNeuron.apply(*args)


class _FusedSpiking(nn.Module):
    """Base of the fused layers: ``self.synapse`` (a stateless torch layer) followed by ``self.neuron``."""

    synapse: nn.Module

    def __init__(self, neuron: SpikingNeuron, chunk: int):
        super().__init__()
        if not isinstance(neuron, SpikingNeuron):
            raise TypeError(f"neuron must be a neuro.nn neuron module instance (e.g. neuro.nn.LIF(beta=0.95)), got "
                            f"{neuron!r}")
        if type(neuron).forward is not SpikingNeuron.forward:
            # LI returns the membrane, RLIF feeds its spikes back: neither is a plain kernel over the input
            raise ValueError(f"{type(self).__name__} fuses feed-forward spiking neurons; {type(neuron).__name__} has "
                             f"its own forward (readout or recurrence): use TimeDistributed(...) + "
                             f"{type(neuron).__name__} instead")
        self.neuron = neuron
        self.chunk = _checks.check_int("chunk", chunk, minimum=1)

    def _check_sample(self, x: torch.Tensor) -> None:
        raise NotImplementedError

    def _unfused(self, x: torch.Tensor, state, return_state: bool):
        """The same computation as plain layers (devices without the fused CPU path)."""
        T, B = x.shape[0], x.shape[1]
        pre = self.synapse(x.reshape(T * B, *x.shape[2:]).float())
        out = self.neuron(pre.reshape(T, B, *pre.shape[1:]), state=state, return_state=True)
        spikes = out[0].to(x.dtype)
        return (spikes, out[1]) if return_state else spikes

    def forward(self, x: torch.Tensor, state: dict | None = None, return_state: bool = False):
        """Run the layer over ``x [T, B, ...]`` (time-major).

        Args:
            x: the input (float32; bfloat16 / float16 are read chunk by chunk as float32, other float dtypes
                are taken as float32).
            state: the neuron state to start from, ``{name: tensor [B, ...]}`` as ``return_state=True`` gave
                it for the previous chunk of a sequence (missing names start at the neuron's initial value).
            return_state: also return the final state (differentiable; ``.detach()`` it for truncated BPTT).

        Returns:
            ``spikes [T, B, ...]`` in x's dtype, and with ``return_state`` the final state dict. A sequence
            run in pieces, each started from the previous piece's state, gives exactly the spikes and final
            state of one call.
        """
        x = check_time_major(x)
        return_state = _checks.check_bool("return_state", return_state)
        self._check_sample(x)
        for name, w in self.synapse.named_parameters():
            if w.dtype != torch.float32:
                raise TypeError(f"{type(self).__name__} computes in float32 (the kernels' dtype); its {name} is "
                                f"{w.dtype}")
            if w.device != x.device:
                raise ValueError(f"{type(self).__name__}: x is on {x.device} but the layer's {name} is on {w.device}")
        if x.device.type != "cpu":
            return self._unfused(x, state, return_state)
        neuron, dyn = self.neuron, self.neuron.dynamics
        T, B = x.shape[0], x.shape[1]
        out = self.out_shape(tuple(x.shape[2:]))
        params = neuron._param_rows(out, x.device)
        init = neuron._initial(state, B, out, x.device)
        names, weights = zip(*self.synapse.named_parameters(), strict=True)
        if torch.is_grad_enabled() and not dyn.trainable and (
                x.requires_grad or params.requires_grad or init.requires_grad or any(w.requires_grad for w in weights)):
            raise ValueError(f"{dyn.name} has no backward step (not trainable by BPTT); run the layer under "
                             f"torch.no_grad() or freeze its weights")
        spikes, final = _fused(x, init, params, self.synapse, neuron, self.chunk, names, *weights)
        spikes = mark_spikes(spikes.reshape(T, B, *out))  # 0/1 from the kernel: a next layer may keep them packed
        return (spikes, neuron._state_dict_out(final, B, out)) if return_state else spikes

    def out_shape(self, sample: tuple) -> tuple:
        """A sample's output shape: the synapse run on the meta device (shapes only, no data, no compute)."""
        meta = {k: torch.empty_like(v, device="meta") for k, v in self.synapse.named_parameters()}
        try:
            y = functional_call(self.synapse, meta, (torch.empty((1, *sample), device="meta"),))
        except RuntimeError as err:
            raise ValueError(f"{type(self).__name__}: input samples of shape {sample} do not fit the layer "
                             f"{self.synapse}: {err}") from None
        return tuple(y.shape[1:])

    def extra_repr(self) -> str:
        return f"chunk={self.chunk}"


class SpikingLinear(_FusedSpiking):
    """``nn.Linear(in_features, out_features)`` fused with a spiking ``neuron``, trained in chunks of ``chunk``
    time steps with recomputation in backward: the memory of a ``[chunk, B, out]`` tensor instead of
    ``[T, B, out]`` ones (see the module docstring for the equations and what is kept).

    Same spikes and gradients as ``nn.Sequential(TimeDistributed(nn.Linear(in, out)), neuron)`` with the same
    weights (``layer.weight``, ``layer.bias``; ``layer.synapse`` is the ``nn.Linear``, so
    ``layer.synapse.load_state_dict(linear.state_dict())`` copies one in). The neuron's learnable parameters
    (``learn_beta=True`` ...) train as in the unfused layer.

    Args:
        in_features, out_features: as ``nn.Linear``.
        neuron: a :mod:`neuro.nn` neuron instance (``LIF``, ``IF``, ``CubaLIF``, ``ALIF``, ``Neuron``), whose
            parameters broadcast to ``[out_features]``.
        bias: as ``nn.Linear``.
        chunk: time steps per chunk (default :data:`DEFAULT_CHUNK`, chosen by measurement). ``chunk >= T``
            is one chunk; small chunks keep more state checkpoints (``ceil(T / chunk)`` states) and run slower.

    Example:
        >>> import torch, neuro
        >>> layer = neuro.nn.SpikingLinear(10, 6, neuro.nn.CubaLIF(alpha=0.8, beta=0.9))
        >>> x = torch.rand(50, 2, 10)
        >>> s1, st = layer(x[:20], return_state=True)
        >>> s2 = layer(x[20:], state=st)
        >>> bool((torch.cat([s1, s2]) == layer(x)).all())
        True
    """

    def __init__(self, in_features: int, out_features: int, neuron: SpikingNeuron, bias: bool = True,
                 chunk: int = DEFAULT_CHUNK):
        super().__init__(neuron, chunk)
        self.in_features = _checks.check_int("in_features", in_features, minimum=1)
        self.out_features = _checks.check_int("out_features", out_features, minimum=1)
        self.synapse = nn.Linear(self.in_features, self.out_features, bias=_checks.check_bool("bias", bias))

    @property
    def weight(self) -> nn.Parameter:
        return self.synapse.weight

    @property
    def bias(self) -> nn.Parameter | None:
        return self.synapse.bias

    def _check_sample(self, x: torch.Tensor) -> None:
        if x.dim() != 3 or x.shape[2] != self.in_features:
            raise ValueError(f"SpikingLinear expects input [T, B, {self.in_features}] (time-major), got shape "
                             f"{tuple(x.shape)}")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, chunk={self.chunk}"


class SpikingConv2d(_FusedSpiking):
    """``nn.Conv2d`` fused with a spiking ``neuron``, trained in chunks of ``chunk`` time steps with
    recomputation in backward, as :class:`SpikingLinear`. Input ``[T, B, C, H, W]``, output spikes
    ``[T, B, out_channels, H', W']``; the neuron's parameters broadcast to ``[out_channels, H', W']`` (e.g.
    ``[out_channels, 1, 1]`` per channel).

    Same spikes and gradients as ``nn.Sequential(TimeDistributed(nn.Conv2d(...)), neuron)`` with the same
    weights (``layer.synapse`` is the ``nn.Conv2d``).

    Example:
        >>> import torch, neuro
        >>> layer = neuro.nn.SpikingConv2d(1, 4, 3, neuro.nn.LIF(beta=0.9), padding=1, chunk=8)
        >>> layer(torch.rand(20, 2, 1, 8, 8)).shape
        torch.Size([20, 2, 4, 8, 8])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, neuron: SpikingNeuron, stride=1,
                 padding=0, dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 chunk: int = DEFAULT_CHUNK):
        super().__init__(neuron, chunk)
        in_channels = _checks.check_int("in_channels", in_channels, minimum=1)
        out_channels = _checks.check_int("out_channels", out_channels, minimum=1)
        self.synapse = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                                 dilation=dilation, groups=groups, bias=_checks.check_bool("bias", bias),
                                 padding_mode=padding_mode)

    @property
    def weight(self) -> nn.Parameter:
        return self.synapse.weight

    @property
    def bias(self) -> nn.Parameter | None:
        return self.synapse.bias

    def _check_sample(self, x: torch.Tensor) -> None:
        c = self.synapse.in_channels
        if x.dim() != 5 or x.shape[2] != c:
            raise ValueError(f"SpikingConv2d expects input [T, B, {c}, H, W] (time-major), got shape "
                             f"{tuple(x.shape)}")
