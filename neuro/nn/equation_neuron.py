"""``neuro.nn.Neuron``: a layer of any neuron model, built-in or written as :class:`neuro.models.Equations`,
trained with surrogate gradients through the fused kernels.

The model's physical parameters become the layer's tensors (``nn.Parameter`` for the names in ``learn``,
buffers otherwise, so ``state_dict()`` holds all of them); the per-step coefficients the kernel reads
(propagators for ``method="exact"``) are computed from them in torch by the model itself
(:meth:`Equations.coefficients`), so gradients reach e.g. ``tau_m`` through the matrix exponential.

Example:
    >>> import torch
    >>> from neuro.models import Equations
    >>> from neuro.nn import Neuron
    >>> model = Equations("dv/dt = (-v + I) / tau_m : volt", threshold="v > v_th", reset="v = 0",
    ...                   tau_m=5.0, v_th=0.5)
    >>> layer = Neuron(model, surrogate="atan", learn=("tau_m",), dt=1.0)
    >>> x = torch.rand(20, 4, 8, requires_grad=True)        # [T, B, neurons]
    >>> layer(x).sum().backward()
    >>> layer.tau_m.grad is not None and x.grad.shape == x.shape
    True
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from neuro import _checks
from neuro.models._base import RESET_MODES
from neuro.nn.base import SpikingNeuron


class Neuron(SpikingNeuron):
    """A spiking layer of ``model`` (an :class:`~neuro.models.Equations`), time-major ``[T, B, ...]``.

    Args:
        model: the neuron model; its parameters (scalar or one per neuron) are the layer's initial values.
        surrogate: surrogate gradient (name or :class:`neuro.surrogate.Surrogate`), dS/dU at the threshold.
        learn: names of the model's parameters to train.
        dt: the time step in ms.
    """

    def __init__(self, model, surrogate=None, learn: tuple[str, ...] | list[str] = (), dt: float = 1.0):
        from neuro.models.equations import Equations

        if not isinstance(model, Equations):
            raise TypeError(f"model must be a neuro.models.Equations, got {type(model).__name__}")
        # the reset a NIR file records for this layer: the model's named reset and its timing, else a reset
        # in the step they spike (Brian2's schedule)
        reset = model.reset if model.reset_modes is not None and model.reset in RESET_MODES else "zero"
        super().__init__(surrogate=surrogate, reset=reset, reset_delay=bool(model.reset_delay), dt=dt)
        self.model = model
        self.dynamics = model.dynamics
        if isinstance(learn, str):
            learn = (learn,)
        learn = tuple(learn)
        unknown = [k for k in learn if k not in model.parameters]
        if unknown:
            raise ValueError(f"learn names {unknown[0]!r}, which is not a parameter of the model "
                             f"(parameters: {', '.join(model.parameters) or 'none'})")
        self.learn = learn
        self._names = list(model.parameters)
        for name in self._names:
            if hasattr(nn.Module, name) or name in ("model", "dynamics", "learn", "surrogate", "dt"):
                raise ValueError(f"parameter name {name!r} clashes with a torch.nn.Module attribute; rename it")
            self._param(name, torch.as_tensor(model.parameters[name], dtype=torch.float32), learn=name in learn)

    def kernel_params(self) -> dict[str, torch.Tensor]:
        physical = {k: getattr(self, k) for k in self._names}
        coefs = self.model.coefficients({k: v.to(torch.float64) for k, v in physical.items()}, self.dt,
                                        torch_module=torch)
        out = {k: coefs[k] for k in self.dynamics.params if k in coefs}
        if "_t_ref" in self.dynamics.params:
            out["_t_ref"] = torch.as_tensor(np.round(self.model.refractory_ms() / self.dt), dtype=torch.float32)
        return {k: v.to(torch.float32) for k, v in out.items()}

    def initial_state(self) -> dict:
        return {k: torch.as_tensor(self.model.initial.get(k, 0.0), dtype=torch.float32)
                for k in self.dynamics.state}

    def options(self) -> list[int]:
        """The model's kernel options (``options=("reset_mode", "reset_delay")``: its chosen reset and timing)."""
        chosen = self.model.kernel_options()
        return [chosen[k] for k in self.dynamics.options]

    def extra_repr(self) -> str:
        return f"{self.model!r}, learn={self.learn}, surrogate={self.surrogate.name}, dt={_checks.check_dt(self.dt)}"
