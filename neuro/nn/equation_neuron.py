"""``neuro.nn.Neuron``: a layer of any neuron model, built-in (:class:`~neuro.models.LIF`,
:class:`~neuro.models.CubaLIF`, :class:`~neuro.models.ALIF`, :class:`~neuro.models.IF`) or written as
:class:`neuro.models.Equations`, trained with surrogate gradients through the fused kernels.

The model's physical parameters (``model.parameters``: ``tau_m``, ``cm``, ``v_thresh`` ... for a built-in
model, the named parameters of equations) become the layer's tensors: ``nn.Parameter`` for the names in
``learn``, buffers otherwise, so ``state_dict()`` holds all of them. Every forward pass the per-step
coefficients the kernel reads are computed from them in torch by the model itself,
``model.coefficients(params, dt, torch_module=torch)``: for a built-in model the formulas of
:mod:`neuro.models.coefficients` that ``neuro.sim`` runs in NumPy (``decay = exp(-dt/tau_m)``,
``gain = (tau_m/cm) (1 - decay)`` for the exact LIF ...), for equations the propagators of ``method="exact"``
(a matrix exponential). So gradients reach e.g. ``tau_m``, and a layer's forward pass is the model's
``simulate`` (the same float32 coefficients, the same kernels). A parameter rounded to whole steps
(``tau_refrac``) gets no gradient and cannot be learned.

Example (a built-in model):
    >>> import numpy as np, torch
    >>> from neuro.models import LIF
    >>> from neuro.nn import Neuron
    >>> model = LIF(tau_m=10.0, cm=1.0, v_rest=0.0, v_thresh=1.0, v_reset=0.0)
    >>> layer = Neuron(model, surrogate="atan", learn=("tau_m", "v_thresh"), dt=1.0)
    >>> x = torch.rand(50, 4, 3) * 0.4                     # [T, B, neurons]
    >>> spikes, v = layer(x, return_v=True)
    >>> ref = model.simulate(x.reshape(50, 12).numpy(), dt=1.0)     # the same neurons in neuro.models
    >>> same = lambda a, b: bool((a.detach().reshape(50, 12).numpy() == b).all())
    >>> same(spikes, ref.spikes), same(v, ref.v)
    (True, True)
    >>> spikes.sum().backward()
    >>> layer.tau_m.grad.shape, layer.v_thresh.grad.shape
    (torch.Size([1]), torch.Size([1]))

Example (equations):
    >>> from neuro.models import Equations
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
from neuro.models.coefficients import steps
from neuro.nn.base import SpikingNeuron


class Neuron(SpikingNeuron):
    """A spiking layer of ``model``, time-major ``[T, B, ...]``.

    Args:
        model: the neuron model: a built-in :class:`~neuro.models.NeuronModel` (``LIF``, ``CubaLIF``, ``ALIF``,
            ``IF``) or an :class:`~neuro.models.Equations` (``Izhikevich``, ``AdEx``, your own); its parameters
            (scalar or one per neuron) are the layer's initial values, its reset and reset timing the layer's.
        surrogate: surrogate gradient (name or :class:`neuro.surrogate.Surrogate`), dS/dU at the threshold.
        learn: names of the model's parameters to train (of ``model.parameters``; the coefficients must depend
            on each differentiably).
        dt: the time step in ms.
    """

    def __init__(self, model, surrogate=None, learn: tuple[str, ...] | list[str] = (), dt: float = 1.0):
        from neuro.models._neuron import NeuronModel
        from neuro.models.equations import Equations

        if isinstance(model, Equations):
            # the reset a NIR file records for this layer: the model's named reset and its timing, else a reset
            # in the step they spike (Brian2's schedule)
            reset = model.reset if model.reset_modes is not None and model.reset in RESET_MODES else "zero"
        elif isinstance(model, NeuronModel) and type(model).coefficients is not NeuronModel.coefficients:
            reset = model.reset
        else:
            raise TypeError(f"model must be a neuro.models.NeuronModel whose coefficients are computed from its "
                            f"parameters (LIF, CubaLIF, ALIF, IF) or a neuro.models.Equations, got "
                            f"{type(model).__name__}")
        super().__init__(surrogate=surrogate, reset=reset, reset_delay=bool(model.reset_delay), dt=dt)
        self.model = model
        self.dynamics = model.dynamics
        if isinstance(learn, str):
            learn = (learn,)
        learn = tuple(learn)
        parameters = model.parameters
        unknown = [k for k in learn if k not in parameters]
        if unknown:
            form = f" with integration={model.integration!r}" if hasattr(model, "integration") else ""
            raise ValueError(f"learn names {unknown[0]!r}, which is not a parameter of the model{form} "
                             f"(parameters: {', '.join(parameters) or 'none'})")
        stepped = [k for k in learn if k in getattr(model, "stepped_parameters", ())]
        if stepped:
            raise ValueError(f"learn names {stepped[0]!r}, which the model rounds to whole steps of dt: no gradient "
                             f"reaches it, so it cannot be learned")
        self.learn = learn
        self._names = list(parameters)
        for name in self._names:
            if hasattr(nn.Module, name) or name in ("model", "dynamics", "learn", "surrogate", "dt", "reset",
                                                    "reset_delay"):
                raise ValueError(f"parameter name {name!r} clashes with a torch.nn.Module attribute; rename it")
            self._param(name, torch.as_tensor(np.asarray(parameters[name], np.float64), dtype=torch.float32),
                        learn=name in learn)
        self._check_differentiable()

    def _coefficients(self, physical: dict) -> dict[str, torch.Tensor]:
        """The kernel parameters (names of ``dynamics.params``, float64) from the physical tensors."""
        coefs = self.model.coefficients({k: v.to(torch.float64) for k, v in physical.items()}, self.dt,
                                        torch_module=torch)
        return {k: coefs[k] for k in self.dynamics.params if k in coefs}

    def _check_differentiable(self) -> None:
        """Refuse a learned parameter no kernel coefficient depends on through torch (e.g. one an equation's
        refractory period alone reads, which the kernel takes in whole steps from NumPy)."""
        if not self.learn:
            return
        probe = {k: getattr(self, k).detach().clone().requires_grad_(k in self.learn) for k in self._names}
        outs = [v for v in self._coefficients(probe).values() if isinstance(v, torch.Tensor) and v.requires_grad]
        grads = (torch.autograd.grad([o.sum() for o in outs], [probe[k] for k in self.learn], allow_unused=True)
                 if outs else [None] * len(self.learn))
        for name, g in zip(self.learn, grads, strict=True):
            if g is None:
                raise ValueError(f"learn names {name!r}, but the kernel coefficients the model computes do not "
                                 f"depend on it differentiably, so it cannot be learned")

    def kernel_params(self) -> dict[str, torch.Tensor]:
        out = self._coefficients({k: getattr(self, k) for k in self._names})
        if "_t_ref" in self.dynamics.params:
            out["_t_ref"] = torch.as_tensor(steps(self.model.refractory_ms(), self.dt), dtype=torch.float32)
        return {k: torch.as_tensor(v).to(torch.float32) for k, v in out.items()}

    def initial_state(self) -> dict:
        from neuro.models.equations import Equations

        if isinstance(self.model, Equations):
            values = self.model.initial
        else:  # a state resting at a parameter (v at v_rest) starts at the layer's, learned, value
            values = self.model.initial_values({k: getattr(self, k) for k in self._names})
        return {k: torch.as_tensor(values.get(k, 0.0), dtype=torch.float32) for k in self.dynamics.state}

    def options(self) -> list[int]:
        """The model's kernel options (its reset mode and timing, e.g. ``options=("reset_mode", "reset_delay")``
        of equations)."""
        chosen = self.model.kernel_options()
        return [chosen[k] for k in self.dynamics.options]

    def extra_repr(self) -> str:
        return f"{self.model!r}, learn={self.learn}, surrogate={self.surrogate.name}, dt={_checks.check_dt(self.dt)}"

