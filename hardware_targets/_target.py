"""The uniform interface of every chip target: a spec, a fit report, an emitter."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import nir


@dataclass(frozen=True)
class Violation:
    """One broken constraint: which layer, what, how much it needs and how much the chip allows."""

    layer: str
    constraint: str
    required: float | str
    allowed: float | str

    def __str__(self) -> str:
        return f"{self.layer}: {self.constraint} needs {self.required}, chip allows {self.allowed}"


@dataclass
class FitReport:
    """Whether a graph fits a chip, every violated constraint by layer, and the resources each layer uses."""

    target: str
    violations: list[Violation] = field(default_factory=list)
    layers: list[dict] = field(default_factory=list)
    cores_used: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        return not self.violations

    def __str__(self) -> str:
        head = f"{self.target}: {'fits' if self.fits else 'does NOT fit'} ({self.cores_used} cores)"
        lines = [head]
        lines += [f"  layer {r['name']}: " + ", ".join(f"{k}={v}" for k, v in r.items() if k != "name")
                  for r in self.layers]
        lines += [f"  VIOLATION {v}" for v in self.violations]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"target": self.target, "fits": self.fits, "cores_used": self.cores_used, "layers": self.layers,
                "violations": [v.__dict__ for v in self.violations], "notes": self.notes}


class TargetError(ValueError):
    """Raised by ``emit`` when the graph does not fit and ``force`` is not set."""


class Target(ABC):
    """A chip family: ``spec`` (limits, precisions, with sources), ``fit``, ``emit``, and ``quantize`` (the
    graph as the chip would compute it, runnable with :func:`neuro.from_nir`)."""

    name: str
    spec: dict

    @abstractmethod
    def fit(self, graph: nir.NIRGraph) -> FitReport: ...

    @abstractmethod
    def _write(self, graph: nir.NIRGraph, path: Path, report: FitReport) -> None: ...

    def _layers(self, graph: nir.NIRGraph, report: FitReport, expected: str = "a chain of layers") -> list:
        """The graph's layer chain, spike amplitudes folded into the weights; structural problems (branches,
        recurrence, nodes without a chip equivalent) become violations in ``report``."""
        from neuro.hardware_targets._layers import chain, fold_scales

        layers, problems = chain(graph)
        for p in problems:
            report.violations.append(Violation(p.split(":")[0], "layer chain", p, expected))
        return fold_scales(layers)

    def quantize(self, graph: nir.NIRGraph) -> nir.NIRGraph:
        """The graph with weights, thresholds and decays at the chip's precision."""
        return graph

    def emit(self, graph: nir.NIRGraph, path, force: bool = False, overwrite: bool = False) -> FitReport:
        """Write the toolchain's file; refuses a graph that does not fit unless ``force``.

        The file is written atomically (a failure leaves any old file untouched and no partial file), and an
        existing file is replaced only with ``overwrite=True``.
        """
        from neuro.files import atomic_output, check_output_path

        check_output_path(path, overwrite=overwrite, what=f"{self.name} output")
        report = self.fit(graph)
        if not report.fits and not force:
            raise TargetError(f"the network does not fit {self.name}:\n" + "\n".join(f"  {v}" for v in
                                                                                  report.violations))
        with atomic_output(path, overwrite=overwrite, what=f"{self.name} output") as tmp:
            self._write(graph, tmp, report)
        return report

    def simulate(self, graph: nir.NIRGraph, x, dt: float | None = None, convention: str = "neuro"):
        """Run the quantised graph on neuro-snn's kernels: the outputs the chip would give."""
        from neuro.io import from_nir

        return from_nir(self.quantize(graph), dt=dt, convention=convention)(x)
