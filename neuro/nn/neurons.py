"""Spiking layers: multi-step, time-major ``[T, B, ...]``, the time loop fused in one kernel call.

Semantics and defaults follow snnTorch (``Leaky``, ``Synaptic``, ``RLeaky``) so a snnTorch user gets the same
spikes and gradients: membrane starts at 0, spike when ``v > threshold`` (strict), reset by subtraction
applied at the next step from the previous step's spike with the reset term detached
(``reset_delay=True``); ``reset_delay=False`` resets in the same step and lets the surrogate gradient
flow through the reset. ``beta`` is clamped to [0, 1] in forward as snnTorch does, and rejected outside
it at construction.

Example:
    >>> import torch
    >>> import neuro
    >>> lif = neuro.nn.LIF(beta=0.95, threshold=1.0, surrogate=neuro.surrogate.atan(alpha=2.0))
    >>> x = torch.rand(25, 8, 100)
    >>> spk = lif(x)
    >>> spk, v = lif(x, return_v=True)
    >>> spk.shape, v.shape
    (torch.Size([25, 8, 100]), torch.Size([25, 8, 100]))
"""

from __future__ import annotations

import math

import torch
from torch import nn

from neuro import _checks
from neuro.models import alif, cuba_lif, lif
from neuro.nn.base import SpikingNeuron, check_time_major
from neuro.nn.functional import neuron_layer
from neuro.nn.spike_inputs import mark_spikes


class LIF(SpikingNeuron):
    """Leaky integrate-and-fire (snnTorch ``Leaky``): ``v[t] = beta v[t-1] + x[t] - S[t-1] threshold``.

    Args:
        beta: membrane decay in [0, 1], one value or one per neuron (broadcastable to a sample's shape).
        threshold: firing threshold (``v > threshold``).
        surrogate: :mod:`neuro.surrogate` object or name (default atan(alpha=2), snnTorch's).
        reset: ``"subtract"``, ``"zero"`` or ``"none"``.
        reset_delay: snnTorch's next-step reset (default) or same-step reset.
        learn_beta, learn_threshold: make them trainable parameters.
    """

    dynamics = lif.DYNAMICS
    user_names = {"decay": "beta"}

    def __init__(self, beta, threshold=1.0, surrogate=None, reset: str = "subtract", reset_delay: bool = True,
                 learn_beta: bool = False, learn_threshold: bool = False, gain=1.0, v_leak=0.0, v_reset=0.0):
        super().__init__(surrogate, reset, reset_delay)
        self._param("beta", beta, learn_beta, unit_interval=True)
        self._param("threshold", threshold, learn_threshold)
        # input scale, resting potential and reset value: 1, 0, 0 in snnTorch; set by NIR import
        self._param("gain", gain, False)
        self._param("v_leak", v_leak, False)
        self._param("v_reset", v_reset, False)

    def kernel_params(self):
        return {"decay": self.beta.clamp(0, 1), "gain": self.gain, "v_leak": self.v_leak, "threshold": self.threshold,
                "v_reset": self.v_reset, "t_ref": 0.0}


class IF(SpikingNeuron):
    """Integrate-and-fire, the neuron of ANN-to-SNN conversion: ``v[t] = v[t-1] + x[t]``, spike when
    ``v > threshold``, then ``v -= threshold`` (``reset="subtract"``) in the same step by default.

    ``threshold`` and ``v_init`` may be tensors broadcastable to a sample's shape (e.g. ``[C, 1, 1]``).
    """

    dynamics = lif.DYNAMICS
    user_names = {"v": "v_init"}

    def __init__(self, threshold=1.0, reset: str = "subtract", reset_delay: bool = False, v_init=0.0,
                 surrogate=None, learn_threshold: bool = False, gain=1.0, v_reset=0.0):
        super().__init__(surrogate, reset, reset_delay)
        self._param("threshold", threshold, learn_threshold)
        self._param("v_init", v_init, False)
        self._param("gain", gain, False)
        self._param("v_reset", v_reset, False)

    def kernel_params(self):
        return {"decay": 1.0, "gain": self.gain, "v_leak": 0.0, "threshold": self.threshold, "v_reset": self.v_reset,
                "t_ref": 0.0}

    def initial_state(self):
        return {"v": self.v_init}


class LI(SpikingNeuron):
    """Leaky integrator without spikes (readout, or the last layer of a converted network):
    ``v[t] = beta v[t-1] + x[t]``; returns the membrane ``[T, B, ...]``."""

    dynamics = lif.DYNAMICS
    emits_spikes = False
    user_names = {"decay": "beta"}

    def __init__(self, beta=1.0, learn_beta: bool = False, gain=1.0, v_leak=0.0):
        super().__init__(None, "none", False)
        self._param("beta", beta, learn_beta, unit_interval=True)
        self._param("gain", gain, False)
        self._param("v_leak", v_leak, False)

    def kernel_params(self):
        return {"decay": self.beta.clamp(0, 1), "gain": self.gain, "v_leak": self.v_leak, "threshold": math.inf,
                "v_reset": 0.0, "t_ref": 0.0}

    def forward(self, x: torch.Tensor, state: dict | None = None, return_v: bool = True,
                return_state: bool = False):
        """The membrane ``[T, B, ...]``; with ``return_state=True`` also the final state (see
        :meth:`SpikingNeuron.forward`)."""
        out = super().forward(x, state=state, return_v=True, return_state=return_state)
        return (out[1], out[2]) if return_state else out[1]


class CubaLIF(SpikingNeuron):
    """Current-based LIF (snnTorch ``Synaptic``): ``I[t] = alpha I[t-1] + x[t]``,
    ``v[t] = beta v[t-1] + I[t] - S[t-1] threshold``. ``return_v=True`` returns the membrane."""

    dynamics = cuba_lif.DYNAMICS
    user_names = {"syn_decay": "alpha", "mem_decay": "beta"}

    def __init__(self, alpha, beta, threshold=1.0, surrogate=None, reset: str = "subtract", reset_delay: bool = True,
                 learn_alpha: bool = False, learn_beta: bool = False, learn_threshold: bool = False,
                 syn_gain=1.0, i_old=0.0, i_new=1.0, v_leak=0.0, v_reset=0.0):
        super().__init__(surrogate, reset, reset_delay)
        self._param("alpha", alpha, learn_alpha, unit_interval=True)
        self._param("beta", beta, learn_beta, unit_interval=True)
        self._param("threshold", threshold, learn_threshold)
        # snnTorch's Synaptic is syn_gain 1, i_old 0, i_new 1; exact propagators come from NIR import
        self._param("syn_gain", syn_gain, False)
        self._param("i_old", i_old, False)
        self._param("i_new", i_new, False)
        self._param("v_leak", v_leak, False)
        self._param("v_reset", v_reset, False)

    def kernel_params(self):
        return {"syn_decay": self.alpha.clamp(0, 1), "mem_decay": self.beta.clamp(0, 1), "syn_gain": self.syn_gain,
                "i_old": self.i_old, "i_new": self.i_new, "v_leak": self.v_leak, "threshold": self.threshold,
                "v_reset": self.v_reset, "t_ref": 0.0}


class ALIF(SpikingNeuron):
    """Adaptive LIF (LSNN): threshold ``threshold + adapt_gain a``, ``a[t] = adapt_decay a[t-1] + S[t]``,
    ``v[t] = beta v[t-1] + x[t]``, reset in the same step."""

    dynamics = alif.DYNAMICS
    user_names = {"decay": "beta"}

    def __init__(self, beta, threshold=1.0, adapt_decay=0.95, adapt_gain=0.1, surrogate=None,
                 reset: str = "subtract", learn_beta: bool = False, learn_threshold: bool = False,
                 learn_adaptation: bool = False):
        super().__init__(surrogate, reset, False)
        self._param("beta", beta, learn_beta, unit_interval=True)
        self._param("threshold", threshold, learn_threshold)
        self._param("adapt_decay", adapt_decay, learn_adaptation, unit_interval=True)
        self._param("adapt_gain", adapt_gain, learn_adaptation)

    def kernel_params(self):
        return {"decay": self.beta.clamp(0, 1), "gain": 1.0, "v_leak": 0.0, "threshold": self.threshold,
                "v_reset": 0.0, "t_ref": 0.0, "adapt_decay": self.adapt_decay.clamp(0, 1),
                "adapt_gain": self.adapt_gain}


class RLIF(LIF):
    """Recurrent LIF (snnTorch ``RLeaky`` with ``all_to_all=True``): the previous step's spikes feed back
    through a learnable ``nn.Linear(size, size)``:
    ``v[t] = beta v[t-1] + x[t] + W S[t-1] + b - S[t-1] threshold``.

    The recurrence couples neurons at every step, so time is stepped here with one single-step kernel call
    per step (each differentiable); the feed-forward layers stay fused.
    """

    def __init__(self, size: int, beta, threshold=1.0, surrogate=None, reset: str = "subtract",
                 learn_beta: bool = False, learn_threshold: bool = False):
        super().__init__(beta, threshold, surrogate, reset, True, learn_beta, learn_threshold)
        self.size = _checks.check_int("size", size, minimum=1)
        self.recurrent = nn.Linear(self.size, self.size)

    def forward(self, x: torch.Tensor, state: dict | None = None, return_v: bool = False,
                return_state: bool = False):
        """As :meth:`SpikingNeuron.forward`; the state also holds ``"spk"``, the last step's spikes
        ``[B, size]`` that feed back at the next step."""
        x = check_time_major(x)
        return_v = _checks.check_bool("return_v", return_v)
        return_state = _checks.check_bool("return_state", return_state)
        if x.shape[-1] != self.size or x.dim() != 3:
            raise ValueError(f"RLIF expects input [T, B, {self.size}], got shape {tuple(x.shape)}")
        T, B = x.shape[0], x.shape[1]
        params = self._param_rows((self.size,), x.device)
        if state is not None and not isinstance(state, dict):
            raise TypeError(f"state must be a dict of state name -> tensor [B, ...], got {type(state).__name__}")
        state = dict(state or {})
        spk = state.pop("spk", None)
        st = self._initial(state or None, B, (self.size,), x.device)
        spk = x.new_zeros((B, self.size)) if spk is None else spk.to(x.dtype).expand(B, self.size)
        spikes, vs = [], []
        for t in range(T):
            drive = (x[t] + self.recurrent(spk)).reshape(1, -1)
            s, _, st = neuron_layer(self.dynamics, drive, params, st, self.options(), self.surrogate, self.dt,
                                    want_v=False)
            spk = s.reshape(B, self.size)
            spikes.append(spk)
            vs.append(st[0].reshape(B, self.size))
        out = [mark_spikes(torch.stack(spikes))] if T else [x.new_zeros(x.shape)]  # spike_inputs: packed
        if return_v:
            out.append(torch.stack(vs) if T else x.new_zeros(x.shape))
        if return_state:
            out.append({**self._state_dict_out(st, B, (self.size,)), "spk": spk})
        return out[0] if len(out) == 1 else tuple(out)

    def extra_repr(self) -> str:
        return f"size={self.size}, " + super().extra_repr()
