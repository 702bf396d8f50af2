"""What each exporter's NIR files leave unsaid, as named conventions (see shared ANCHORS: observed by
running each library and replaying its files).

A convention fixes the time step the exporter assumed, the threshold test, the reset and its timing.
NIR itself is continuous-time and says none of this.
"""

from __future__ import annotations

from dataclasses import dataclass


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
        note: what the convention assumes, in words.
    """

    name: str
    dt: float
    reset: str
    reset_delay: bool
    inclusive_threshold: bool = False
    tau_scaled_by_dt: bool = False
    note: str = ""


CONVENTIONS = {
    "neuro": Convention("neuro", 1e-4, "file", False, note="neuro-snn's own files: reset mode and timing are "
                        "written in graph metadata (neuro.reset / neuro.reset_delay) and read back"),
    "snntorch": Convention("snntorch", 1e-4, "subtract", True, note="snnTorch 1.0 exports dt = 1e-4, "
                           "tau = dt/(1-beta), r = tau/dt; v > thr; subtract reset from the previous step's spike"),
    "norse": Convention("norse", 1e-3, "zero", False, tau_scaled_by_dt=True, note="Norse 1.1 exports dt = 1e-3 and "
                        "writes tau = dt x true tau; resets to v_reset in the same step"),
    "sinabs": Convention("sinabs", 1.0, "subtract", False, inclusive_threshold=True, note="Sinabs 3.1 (nir 1.0.4 "
                         "files): one step per unit time, v >= thr, subtract in the same step (Sinabs' multi-spike "
                         "mode is read as one spike per step)"),
    "spikingjelly": Convention("spikingjelly", 1e-4, "zero", False, inclusive_threshold=True,
                               note="SpikingJelly 2.0: dt = 1e-4, v >= thr, hard reset in the same step"),
}


def get(name: str | Convention) -> Convention:
    if isinstance(name, Convention):
        return name
    try:
        return CONVENTIONS[name]
    except KeyError:
        raise ValueError(f"unknown NIR convention {name!r}; known: {', '.join(CONVENTIONS)}") from None
