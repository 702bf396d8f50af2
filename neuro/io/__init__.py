"""NIR import and export: the graph every network can become.

* :func:`to_nir` / :func:`write`: a neuro-snn model as a ``nir.NIRGraph`` / ``.nir`` file.
* :func:`from_nir` / :func:`read`: any NIR graph or file, checked in full (:func:`check_graph`), as a runnable
  time-major module / as a graph, with named conventions for what each exporter's files leave unsaid
  (:mod:`neuro.io.conventions`).

Files are written atomically through :mod:`neuro.files`: an existing file is replaced only with
``overwrite=True``, and a failure leaves it untouched with no partial file.
"""

from __future__ import annotations

import nir
import numpy as np

from neuro.io.conventions import CONVENTIONS, Convention
from neuro.io.export import NIRExportError, to_nir
from neuro.io.load import MAX_ELEMENTS, NIRFileNotFoundError, NIRImportError, NIRNetwork, check_graph, from_nir, read


def _check_finite_params(graph: nir.NIRGraph, prefix: str = "") -> None:
    """Every numeric array of every node finite in float32 (NaN weights are refused before writing)."""
    big = float(np.finfo(np.float32).max)
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            _check_finite_params(node, f"{prefix}{name}.")
            continue
        for field, value in vars(node).items():
            if isinstance(value, np.ndarray | float | int) and not isinstance(value, bool):
                a = np.asarray(value)
                if a.dtype.kind in "fiu" and a.size:
                    a = a.astype(np.float64)
                    if not np.all(np.isfinite(a)) or np.any(np.abs(a) > big):
                        raise ValueError(f"node {prefix}{name!r}: {field} has NaN or values not finite in float32; "
                                         "refusing to write it")


def write(path, model_or_graph, input_shape=None, dt: float = 1e-4, overwrite: bool = False) -> nir.NIRGraph:
    """Write ``model_or_graph`` to ``path`` (HDF5 via ``nir.write``); returns the graph written.

    The file is written atomically (a temporary file in the same folder, renamed when complete); an existing
    file is replaced only with ``overwrite=True``. A model is exported with :func:`to_nir` at ``dt`` for one
    sample of ``input_shape``; a graph with NaN or (in float32) infinite parameters is refused.

    Example:
        >>> import tempfile, pathlib, torch, neuro
        >>> net = torch.nn.Sequential(neuro.nn.TimeDistributed(torch.nn.Linear(3, 2)), neuro.nn.LIF(beta=0.9))
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "net.nir"
        >>> _ = neuro.io.write(path, net, (3,))
        >>> _ = neuro.io.write(path, net, (3,))
        Traceback (most recent call last):
        ...
        FileExistsError: NIR file ... already exists; pass overwrite=True (or --overwrite) to replace it
        >>> sorted(type(n).__name__ for n in neuro.io.write(path, net, (3,), overwrite=True).nodes.values())
        ['Affine', 'Input', 'LIF', 'Output']
    """
    from neuro.files import atomic_output, check_output_path

    if not isinstance(overwrite, bool):
        raise TypeError(f"overwrite must be True or False, got {overwrite!r}")
    check_output_path(path, overwrite=overwrite, what="NIR file")  # before any export work
    if isinstance(model_or_graph, nir.NIRGraph):
        graph = model_or_graph
        _check_finite_params(graph)
    else:
        if input_shape is None:
            raise ValueError("input_shape is required to write a model (one sample's shape, e.g. (1, 28, 28))")
        graph = to_nir(model_or_graph, input_shape, dt)
    with atomic_output(path, overwrite=overwrite, what="NIR file") as tmp:
        nir.write(str(tmp), graph)
    return graph


__all__ = ["to_nir", "from_nir", "write", "read", "check_graph", "NIRNetwork", "CONVENTIONS", "Convention",
           "NIRExportError", "NIRImportError", "NIRFileNotFoundError", "MAX_ELEMENTS"]
