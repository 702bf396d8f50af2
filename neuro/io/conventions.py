"""What each exporter's NIR files leave unsaid, as named conventions (see shared ANCHORS: observed by
running each library and replaying its files; ``tests/test_nir_fixtures.py`` replays files written by each
library's own exporter against that library's own spikes).

A convention fixes the time step the exporter assumed, the integration of the neuron ODEs, the threshold
test, the reset and its timing, and each library's own reading of the NIR fields:

========== ======= ========================================================================================
convention dt      semantics
========== ======= ========================================================================================
neuro      1e-4    neuro-snn's own files: reset mode and timing read from the graph's metadata
snntorch   1e-4    Euler ``v = beta v + I`` (``beta = 1 - dt/tau``, ``r = tau/dt``); ``v > thr``; subtract
                   reset from the previous step's spike (``reset_mechanism="zero"`` writes the same file:
                   pass ``reset="zero"``)
norse      1e-3    Euler; the file's tau is ``dt`` x the true tau; IF adds the input without ``dt``
                   (``v += r x``, it writes ``r = 1``); CubaLIF's current jumps by the input unscaled
                   (``I += w_in x``, it writes ``w_in = 1``); ``v > thr``; to ``v_reset`` in the same step
sinabs     1 step  IAF ``v += x``; LIF exact ``v = a v + (1 - a) r x``, ``a = exp(-dt/tau)`` (float32, as
                   Sinabs computes it); ``v >= thr``; subtract in the same step; MultiSpike: the output is
                   the spike count ``floor(v/thr)`` when ``v >= thr`` (else 0) and ``v -= count thr``
spikingjelly 1e-4  Euler (IF: ``r = 1/dt``); ``v >= thr``; hard reset in the same step
========== ======= ========================================================================================

Any of ``dt``, ``integration``, ``reset``, ``reset_delay``, ``inclusive_threshold`` and ``multi_spike`` can
be overridden on top of a convention (:meth:`Convention.override`, or keyword arguments of
:func:`neuro.from_nir`).

Example:
    >>> from neuro.io.conventions import get
    >>> c = get("snntorch").override(reset="zero")
    >>> c.reset, c.reset_delay, get("sinabs").multi_spike
    ('zero', True, True)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from neuro import _checks

_RESETS = ("subtract", "zero")
_INTEGRATIONS = ("euler", "exact")
#: what a caller may override on top of a convention (what no NIR file says)
OVERRIDES = ("dt", "integration", "reset", "reset_delay", "inclusive_threshold", "multi_spike")


@dataclass(frozen=True)
class Convention:
    """How to read a NIR file written by one tool.

    Attributes:
        name: convention name.
        dt: the time step the exporter assumed (used when the caller gives none).
        reset: ``"subtract"``, ``"zero"`` (to ``v_reset``) or ``"file"`` (subtract if the file says so in
            metadata, else to ``v_reset``).
        reset_delay: the spike resets at the next step (snnTorch) rather than the same step.
        inclusive_threshold: spike when ``v >= threshold`` (else strict ``v > threshold``).
        tau_scaled_by_dt: the file's ``tau`` is ``dt`` times too large (a known exporter bug).
        integration: ``"euler"`` (``decay = 1 - dt/tau``, ``gain = r dt/tau``) or ``"exact"``
            (``decay = exp(-dt/tau)``, ``gain = r (1 - decay)``).
        if_input_dt: IF integrates ``v += r dt x`` (NIR's reading); ``False``: ``v += r x`` (Norse).
        cuba_input_unscaled: CubaLIF's current jumps by ``w_in x`` (Norse); else ``w_in dt/tau_syn x``.
        multi_spike: Sinabs' MultiSpike: the output is the spike count ``floor(v/thr)`` (``v >= thr``).
        overridden: the fields the caller set explicitly (they win over what a file's version implies).
        note: what the convention assumes, in words.
    """

    name: str
    dt: float
    reset: str
    reset_delay: bool
    inclusive_threshold: bool = False
    tau_scaled_by_dt: bool = False
    integration: str = "euler"
    if_input_dt: bool = True
    cuba_input_unscaled: bool = False
    multi_spike: bool = False
    overridden: frozenset = frozenset()
    note: str = ""

    def override(self, **values) -> Convention:
        """This convention with some of :data:`OVERRIDES` replaced (``None`` values are ignored).

        Raises ``TypeError``/``ValueError`` naming the argument and the bad value.

        Example:
            >>> from neuro.io.conventions import get
            >>> get("norse").override(dt=1e-4, inclusive_threshold=True).dt
            0.0001
        """
        changes = {}
        for key, value in values.items():
            if key not in OVERRIDES:
                raise TypeError(f"unknown convention override {key!r}; known: {', '.join(OVERRIDES)}")
            if value is None:
                continue
            if key == "dt":
                value = _checks.check_dt(value)
            elif key == "integration":
                if value not in _INTEGRATIONS:
                    raise ValueError(f"integration must be 'euler' or 'exact', got {value!r}")
            elif key == "reset":
                if value not in _RESETS:
                    raise ValueError(f"reset must be 'subtract' or 'zero', got {value!r}")
            elif not isinstance(value, bool | np.bool_):
                raise TypeError(f"{key} must be True or False, got {value!r}")
            else:
                value = bool(value)
            changes[key] = value
        if not changes:
            return self
        return dataclasses.replace(self, **changes, overridden=self.overridden | frozenset(changes))


CONVENTIONS = {
    "neuro": Convention("neuro", 1e-4, "file", False, note="neuro-snn's own files: reset mode and timing are "
                        "written in graph metadata (neuro.reset / neuro.reset_delay) and read back"),
    "snntorch": Convention("snntorch", 1e-4, "subtract", True, note="snnTorch 1.0 exports dt = 1e-4, "
                           "tau = dt/(1-beta), r = tau/dt; v > thr; subtract reset from the previous step's spike "
                           "(reset_mechanism='zero' writes the same file: pass reset='zero')"),
    "norse": Convention("norse", 1e-3, "zero", False, tau_scaled_by_dt=True, if_input_dt=False,
                        cuba_input_unscaled=True, note="Norse 1.1 exports dt = 1e-3 and writes tau = dt x true tau; "
                        "IF adds the input without dt; CubaLIF's current jumps by the input unscaled; resets to "
                        "v_reset in the same step"),
    "sinabs": Convention("sinabs", 1.0, "subtract", False, inclusive_threshold=True, integration="exact",
                         multi_spike=True, note="Sinabs 3.1 (nir 1.0.4 files): one step per unit time, LIF exact "
                         "v = a v + (1 - a) x, v >= thr, subtract in the same step, MultiSpike counts by default"),
    "spikingjelly": Convention("spikingjelly", 1e-4, "zero", False, inclusive_threshold=True,
                               note="SpikingJelly 2.0: dt = 1e-4, v >= thr, hard reset in the same step"),
}


def get(name: str | Convention) -> Convention:
    """The convention called ``name`` (or ``name`` itself if it is a :class:`Convention`).

    Example:
        >>> from neuro.io.conventions import get
        >>> get("norse").dt
        0.001
    """
    if isinstance(name, Convention):
        return name
    try:
        return CONVENTIONS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown NIR convention {name!r}; known: {', '.join(CONVENTIONS)}") from None


class MultiSpike(nn.Module):
    """Sinabs' integrate-and-fire / LIF with ``MultiSpike`` output, one step per input step::

        v = v_leak + decay (v - v_leak) + gain x
        n = floor(v / threshold) if v >= threshold else 0      (torch.div(v, thr, rounding_mode="trunc"))
        v = v - n threshold      (reset="subtract")   or   v = v_reset where n > 0   (reset="zero")

    and returns the counts ``n`` (float32), time-major ``[T, B, ...]``. Inference only (Sinabs trains it
    with a surrogate; import is for replaying files).

    Example:
        >>> import torch
        >>> from neuro.io.conventions import MultiSpike
        >>> m = MultiSpike(decay=1.0, gain=1.0, v_leak=0.0, threshold=1.0, v_reset=0.0)
        >>> m(torch.tensor([[[2.5]], [[0.2]], [[0.4]]]))[:, 0, 0].tolist()
        [2.0, 0.0, 1.0]
    """

    def __init__(self, decay, gain, v_leak, threshold, v_reset, reset: str = "subtract"):
        super().__init__()
        if reset not in _RESETS:
            raise ValueError(f"reset must be 'subtract' or 'zero', got {reset!r}")
        self.reset = reset
        for name, value in (("decay", decay), ("gain", gain), ("v_leak", v_leak), ("threshold", threshold),
                            ("v_reset", v_reset)):
            t = torch.as_tensor(np.asarray(value, np.float32))
            if not torch.isfinite(t).all():
                raise ValueError(f"{name} must be finite, got {value!r}")
            self.register_buffer(name, t)
        if bool((self.threshold <= 0).any()):
            raise ValueError("threshold must be > 0 for multi-spike counts (floor(v / threshold))")

    def step(self, x: torch.Tensor, state):
        """One step: ``x`` ``[1, B, ...]``; ``state`` the membrane or ``None``; returns ``(counts, state)``."""
        v = torch.zeros_like(x[0]) if state is None else state
        v = self.v_leak + self.decay * (v - self.v_leak) + self.gain * x[0]
        n = (v > 0) * torch.div(v, self.threshold, rounding_mode="trunc")
        v = v - n * self.threshold if self.reset == "subtract" else torch.where(n > 0, self.v_reset, v)
        return n.unsqueeze(0), v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() < 3:
            raise ValueError(f"x must be a time-major tensor [T, B, ...], got {getattr(x, 'shape', x)!r}")
        state, out = None, []
        for t in range(x.shape[0]):
            n, state = self.step(x[t:t + 1], state)
            out.append(n)
        return torch.cat(out)
