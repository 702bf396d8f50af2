"""Integrate-and-fire neuron without leak (NIR ``IF``); the neuron of ANN-to-SNN conversion.

Equations::

    dv/dt = R I(t)            (NIR: ``nir.IF(r, v_threshold, v_reset)``)
    spike when v > v_thresh, then v -= v_thresh (``reset="subtract"``, the conversion default) or v = v_reset

Discrete step: ``v[t] = v[t-1] + gain x[t]`` with ``gain = R dt`` (exact: the ODE has no decay).
IF is the LIF update ``v <- v_leak + decay*(v - v_leak) + gain*I`` with ``decay = 1``: it runs LIF's kernels,
generated from that equation (see :mod:`neuro.models.lif`).

Example:
    >>> import numpy as np
    >>> from neuro.models import IF
    >>> res = IF(v_thresh=1.0).simulate(np.full((8, 1), 0.25, np.float32), dt=1.0)
    >>> res.spikes[:, 0].tolist()
    [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
"""

from __future__ import annotations

from neuro.models import coefficients
from neuro.models._neuron import NeuronModel, as_param
from neuro.models.lif import DYNAMICS


class IF(NeuronModel):
    """Integrate-and-fire. Args: ``r`` (input resistance, gain per ms), ``v_thresh``, ``v_reset``,
    ``v_init`` (initial membrane, e.g. ``v_thresh / 2`` for conversion), ``reset`` and ``reset_delay``
    as in :class:`~neuro.models.LIF`."""

    dynamics = DYNAMICS

    def __init__(self, r=1.0, v_thresh=1.0, v_reset=0.0, v_init=0.0, tau_refrac=0.0, reset: str = "subtract",
                 reset_delay: bool = False):
        self.r = as_param("r", r)
        self.v_thresh = as_param("v_thresh", v_thresh)
        self.v_reset = as_param("v_reset", v_reset)
        self.v_init = as_param("v_init", v_init)
        self.tau_refrac = as_param("tau_refrac", tau_refrac, nonnegative=True)
        self._set_reset(reset, reset_delay)

    stepped_parameters = ("tau_refrac",)

    def _parameter_names(self) -> tuple[str, ...]:
        return ("r", "v_thresh", "v_reset", "tau_refrac")

    def coefficients(self, params: dict, dt: float, torch_module=None) -> dict:
        """The kernel coefficients from physical ``params`` (NumPy or torch; see
        :meth:`neuro.models.NeuronModel.coefficients`): LIF's update with ``decay = 1``, ``v_leak = 0`` and
        ``gain = r dt`` (:func:`neuro.models.coefficients.integrator_gain`), ``t_ref`` in whole steps.

        Example:
            >>> from neuro.models import IF
            >>> c = IF().coefficients(dict(r=2.0, v_thresh=1.0, v_reset=0.0, tau_refrac=0.0), dt=0.5)
            >>> c["gain"].item(), c["decay"].item()
            (1.0, 1.0)
        """
        p, dt = self._given(params, dt, torch_module)
        _, (r,) = coefficients._arrays(p["r"])
        return dict(decay=coefficients._full(1.0, r), gain=coefficients.integrator_gain(r, dt),
                    v_leak=coefficients._full(0.0, r), threshold=p["v_thresh"], v_reset=p["v_reset"],
                    t_ref=coefficients.steps(p["tau_refrac"], dt))

    def initial_values(self, params: dict | None = None) -> dict:
        # v starts at v_init, an initial state rather than a parameter of the update
        return {"v": self.v_init, "ref": 0.0}
