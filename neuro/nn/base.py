"""The one module class every spiking layer of :mod:`neuro.nn` is: it validates the time-major input,
lays the layer's parameters out per neuron and calls :func:`neuro.nn.functional.neuron_layer`."""

from __future__ import annotations

import math

import torch
from torch import nn

from neuro import _checks
from neuro import surrogate as surrogate_mod
from neuro.models._base import Dynamics, reset_mode_code
from neuro.models._neuron import check_param
from neuro.nn.functional import neuron_layer
from neuro.nn.spike_inputs import pass_mark


def as_parameter(name: str, value, learn: bool, unit_interval: bool = False) -> torch.Tensor:
    """A float32 tensor (a ``nn.Parameter`` when learnable) of any shape, validated by the models' own check
    (:func:`neuro.models._neuron.check_param`: real, finite in float32, in [0, 1] when asked); a tensor keeps its
    device and is detached and copied, so the caller's tensor is never modified."""
    learn = _checks.check_bool(f"learn_{name}", learn)
    shown = value
    if isinstance(value, torch.Tensor):
        shown = value.detach().cpu()
        if shown.dtype in (torch.float16, torch.bfloat16):
            shown = shown.float()  # exact; NumPy has no bfloat16
    check_param(name, shown, unit_interval=unit_interval, per_neuron=False)
    t = torch.as_tensor(value).detach().to(torch.float32).clone()
    return nn.Parameter(t) if learn else t


def check_time_major(x, name: str = "x", finite: bool = True) -> torch.Tensor:
    """``x`` as a time-major tensor ``[T, B, ...]`` checked finite (unless ``finite=False``: the caller's kernel
    checks it): float32, bfloat16 and float16 as they are (the kernels read them directly), any other float
    dtype as float32 (finite there)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 3:
        raise ValueError(f"{name} must be time-major [T, B, ...] with at least 3 dimensions, got shape "
                         f"{tuple(x.shape)} (for a single step use x.unsqueeze(0))")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a float tensor, got dtype {x.dtype}")
    if x.dtype not in (torch.float32, torch.bfloat16, torch.float16):
        x = x.float()  # finiteness in the dtype used: 1e39 is inf here
    if finite and x.numel() and not torch.isfinite(x.sum()) and not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values (in float32)")
    return x


class SpikingNeuron(nn.Module):
    """Base of the spiking layers: a multi-step neuron population over time-major input ``[T, B, ...]``.

    Subclasses set ``dynamics`` and implement :meth:`kernel_params` (name -> tensor broadcastable to one
    sample's shape) and optionally :meth:`initial_state`.
    """

    dynamics: Dynamics
    emits_spikes = True

    def __init__(self, surrogate=None, reset: str = "subtract", reset_delay: bool = True, dt: float = 1.0):
        super().__init__()
        reset_mode_code(reset)
        self.surrogate = surrogate_mod.get(surrogate)
        self.reset = reset
        self.reset_delay = _checks.check_bool("reset_delay", reset_delay)
        self.dt = _checks.check_dt(dt)

    def _param(self, name: str, value, learn: bool = False, unit_interval: bool = False) -> None:
        """Set ``name``: a ``nn.Parameter`` when learnable, else a buffer, so it is in ``state_dict()``
        either way (a loaded model gets the saved value) and follows ``.to(device)``."""
        t = as_parameter(name, value, learn, unit_interval)
        if isinstance(t, nn.Parameter):
            setattr(self, name, t)
        else:
            self.register_buffer(name, t)

    #: kernel parameter or state name -> the user's name for it, for error messages
    user_names: dict = {}

    # -- what subclasses provide ---------------------------------------------------------------------
    def kernel_params(self) -> dict[str, torch.Tensor | float]:
        raise NotImplementedError

    def initial_state(self) -> dict[str, torch.Tensor | float]:
        return {}

    def options(self) -> list[int]:
        values = {"reset_mode": reset_mode_code(self.reset), "reset_delay": int(self.reset_delay)}
        return [values[k] for k in self.dynamics.options]

    # -- the forward pass -------------------------------------------------------------------------------
    def _param_rows(self, sample_shape, device) -> torch.Tensor:
        """The kernel parameters as rows over one sample's neurons, ``[P, prod(sample_shape)]`` float32, or
        ``[P, 1]`` when every parameter is a scalar: the kernels broadcast one column over all neurons, and the
        rows are neither built nor compared (0.1 ms a call on a 1000-neuron layer)."""
        names = self.dynamics.params
        values = {name: torch.as_tensor(v, dtype=torch.float32, device=device)  # converted once: _rows keeps them
                  for name, v in self.kernel_params().items() if name in names}
        scalars = all(v.dim() == 0 for v in values.values())
        return self._rows(values, names, (1,) if scalars else sample_shape, 1, device)

    def _rows(self, values: dict, names, sample_shape, batch: int, device) -> torch.Tensor:
        """``[len(names), batch * prod(sample_shape)]`` float32, one row per name (missing names: 0)."""
        n = batch * math.prod(sample_shape)
        tensors = [torch.as_tensor(values.get(name, 0.0), dtype=torch.float32, device=device) for name in names]
        rows = []
        for name, v in zip(names, tensors, strict=True):
            if v.dim() == 0:  # a view of the scalar: the stack below is the only copy
                rows.append(v.reshape(1).expand(n))
                continue
            try:
                v = v.expand(sample_shape) if v.dim() <= len(sample_shape) else None
            except RuntimeError:
                v = None
            if v is None:
                user = self.user_names.get(name, name)
                label = f"{user} -> {name}" if user != name else name
                raise ValueError(f"{type(self).__name__}: {label} of shape "
                                 f"{tuple(torch.as_tensor(values[name]).shape)} does not broadcast to the neuron "
                                 f"shape {tuple(sample_shape)}")
            rows.append(v.unsqueeze(0).expand(batch, *sample_shape).reshape(n))
        return torch.stack(rows)

    def _initial(self, state, batch: int, sample_shape: tuple, device) -> torch.Tensor:
        """The initial state ``[S, B * prod(sample)]`` float32: the layer's own (``initial_state``) where
        ``state`` is None, else the user's ``{name: [B, ...]}`` (missing names take the layer's value)."""
        names = self.dynamics.state
        if state is None:
            return self._rows(self.initial_state(), names, sample_shape, batch, device)
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict of state name -> tensor [B, ...] (from return_state=True), "
                            f"got {type(state).__name__}")
        unknown = [k for k in state if k not in names]
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown state variables {unknown}; expected {list(names)}")
        full = (batch, *sample_shape)
        own = self.initial_state()
        rows = []
        for name in names:
            if name not in state:
                rows.append(self._rows({name: own.get(name, 0.0)}, (name,), sample_shape, batch, device)[0])
                continue
            v = state[name]
            if not isinstance(v, torch.Tensor) or not v.is_floating_point():
                raise TypeError(f"state[{name!r}] must be a float tensor of shape {full}, got "
                                f"{getattr(v, 'dtype', type(v).__name__)}")
            if v.device != device:
                raise ValueError(f"state[{name!r}] is on {v.device} but x is on {device}")
            try:
                v = v.to(torch.float32).expand(full)  # the state is float32 whatever the input's dtype
            except RuntimeError:
                raise ValueError(f"state[{name!r}] of shape {tuple(v.shape)} does not broadcast to [B, ...] = "
                                 f"{full}") from None
            _checks.check_finite_tensor(f"state[{name!r}]", v)
            rows.append(v.reshape(-1))
        return torch.stack(rows)

    def _state_dict_out(self, final: torch.Tensor, batch: int, sample_shape: tuple) -> dict[str, torch.Tensor]:
        return {name: final[k].reshape(batch, *sample_shape) for k, name in enumerate(self.dynamics.state)}

    def forward(self, x: torch.Tensor, state: dict | None = None, return_v: bool = False,
                return_state: bool = False):
        """Run the layer over ``x [T, B, ...]``.

        Args:
            x: time-major input current.
            state: the state to start from, ``{name: tensor [B, ...]}`` with the names of
                ``self.dynamics.state`` (what ``return_state=True`` returned for the previous chunk; missing
                names start at the layer's initial value). None: the layer's initial state.
            return_v: also return the membrane after each step ``[T, B, ...]``.
            return_state: also return the final state, in the form ``state`` takes. It is differentiable:
                carry it as is to backpropagate through chunks, or ``.detach()`` it for truncated BPTT.

        Returns:
            ``spikes``; ``(spikes, v)`` with ``return_v``; ``(spikes[, v], state)`` with ``return_state``.
            A run in chunks, each started from the previous chunk's state, gives exactly the spikes and
            final state of one call over the whole sequence.

        Example:
            >>> import torch, neuro
            >>> lif = neuro.nn.LIF(beta=0.9)
            >>> x = torch.rand(20, 2, 5)
            >>> s1, st = lif(x[:10], return_state=True)
            >>> s2, st = lif(x[10:], state=st, return_state=True)      # st = {k: v.detach() ...}: truncated BPTT
            >>> bool((torch.cat([s1, s2]) == lif(x)).all()), sorted(st)
            (True, ['ref', 'v'])
        """
        x = check_time_major(x, finite=False)  # neuron_layer checks it (on the CPU in the kernel's pass over x)
        return_v = _checks.check_bool("return_v", return_v)
        return_state = _checks.check_bool("return_state", return_state)
        T, B, sample = x.shape[0], x.shape[1], tuple(x.shape[2:])
        # one row per parameter over a sample's neurons; the kernel broadcasts them over the batch
        params = self._param_rows(sample, x.device)
        init = self._initial(state, B, sample, x.device)
        spikes, v, final = neuron_layer(self.dynamics, x.reshape(T, B * math.prod(sample)), params, init,
                                        self.options(), self.surrogate, self.dt, want_v=return_v,
                                        check_finite=True)
        out = [pass_mark(spikes, spikes.reshape(x.shape))]  # the returned spikes stay marked (spike_inputs)
        if return_v:
            out.append(v.reshape(x.shape).to(x.dtype))
        if return_state:
            out.append(self._state_dict_out(final, B, sample))
        return out[0] if len(out) == 1 else tuple(out)

    def extra_repr(self) -> str:
        return f"reset={self.reset!r}, reset_delay={self.reset_delay}, surrogate={self.surrogate.name}"
