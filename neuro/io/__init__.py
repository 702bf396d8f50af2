"""NIR import and export: the graph every network can become.

* :func:`to_nir` / :func:`write`: a neuro-snn model as a ``nir.NIRGraph`` / ``.nir`` file.
* :func:`from_nir`: any NIR graph or file as a runnable time-major module, with named conventions for
  what each exporter's files leave unsaid (:mod:`neuro.io.conventions`).
"""

from __future__ import annotations

import nir

from neuro.io.conventions import CONVENTIONS, Convention
from neuro.io.export import NIRExportError, to_nir
from neuro.io.load import NIRImportError, NIRNetwork, from_nir


def write(path, model_or_graph, input_shape=None, dt: float = 1e-4) -> nir.NIRGraph:
    """Write ``model_or_graph`` to ``path`` (HDF5 via ``nir.write``); returns the graph written."""
    graph = model_or_graph if isinstance(model_or_graph, nir.NIRGraph) else to_nir(model_or_graph, input_shape, dt)
    nir.write(str(path), graph)
    return graph


__all__ = ["to_nir", "from_nir", "write", "NIRNetwork", "CONVENTIONS", "Convention", "NIRExportError",
           "NIRImportError"]
