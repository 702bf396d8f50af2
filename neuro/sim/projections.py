"""Synapses: projections between populations (CSR by source, each row ordered by target) and the pair STDP
rule. Rows ordered by target let the compiled loop hand each thread a fixed range of postsynaptic neurons
(see :mod:`neuro.sim.engine`), so every buffer cell receives its additions in the same order on any
thread count.

Example:
    >>> import neuro
    >>> net = neuro.sim.Network(dt=0.1, seed=0)
    >>> a, b = net.population(20, neuro.models.LIF()), net.population(30, neuro.models.LIF())
    >>> proj = net.connect(a, b, neuro.sim.FixedProbability(0.5), weight=0.2)
    >>> bool(all((proj.targets[s:e][1:] >= proj.targets[s:e][:-1]).all() for s, e in zip(proj.indptr, proj.indptr[1:])))
    True
"""

from __future__ import annotations

import numba
import numpy as np

from neuro import _checks


@numba.njit(cache=True)
def _rows_sorted(indptr, targets):
    for i in range(indptr.shape[0] - 1):
        for k in range(indptr[i] + 1, indptr[i + 1]):
            if targets[k] < targets[k - 1]:
                return False
    return True


class STDP:
    """Pair-based STDP with all-to-all traces (Song et al. 2000)::

        pre before post by dt > 0:  dw = +a_plus  * exp(-dt / tau_plus)   (x (w_max - w) if multiplicative)
        post before pre by dt > 0:  dw = -a_minus * exp(-dt / tau_minus)  (x (w - w_min) if multiplicative)

    weights clipped to [w_min, w_max] (nA)."""

    def __init__(self, a_plus=0.01, a_minus=0.012, tau_plus=20.0, tau_minus=20.0, w_min=0.0, w_max=1.0,
                 multiplicative: bool = False):
        a_plus, a_minus = _checks.check_float("a_plus", a_plus), _checks.check_float("a_minus", a_minus)
        tau_plus = _checks.check_float("tau_plus", tau_plus, positive=True)
        tau_minus = _checks.check_float("tau_minus", tau_minus, positive=True)
        w_min, w_max = _checks.check_float("w_min", w_min), _checks.check_float("w_max", w_max)
        multiplicative = _checks.check_bool("multiplicative", multiplicative)
        if w_max < w_min:
            raise ValueError(f"STDP needs w_max >= w_min, got w_min={w_min}, w_max={w_max}")
        self.a_plus, self.a_minus, self.tau_plus, self.tau_minus = a_plus, a_minus, tau_plus, tau_minus
        self.w_min, self.w_max, self.multiplicative = w_min, w_max, multiplicative


class Projection:
    """Synapses from ``pre`` to ``post`` in CSR by source, each row ordered by target: ``indptr``, ``targets``
    (int32), ``weights`` (float32, nA; negative for inhibition) and ``delays`` (int32, steps); one shared
    weight or delay is stored once."""

    def __init__(self, pre, post, pairs, weight, delay_steps, receptor: int, stdp: STDP | None, name: str,
                 csr=None):
        self.pre, self.post, self.receptor, self.stdp, self.name = pre, post, receptor, stdp, name
        if csr is not None:
            self.indptr, self.targets = csr
            order = None
            pre_idx = np.zeros(len(self.targets), np.int64)[:0]
            if not _rows_sorted(self.indptr, self.targets):
                raise ValueError("a connector's CSR rows must be ordered by target")
        else:
            pre_idx, post_idx = pairs
            order = np.lexsort((post_idx, pre_idx))  # by source, then target (duplicates keep their order)
            self.targets = post_idx[order].astype(np.int32)
            self.indptr = np.zeros(len(pre) + 1, np.int64)
            np.cumsum(np.bincount(pre_idx, minlength=len(pre)), out=self.indptr[1:])
        n_syn = len(self.targets)
        w = np.asarray(weight, np.float32).reshape(-1)
        d = np.asarray(delay_steps, np.int32).reshape(-1)
        # one shared weight / delay is stored once (4 bytes a synapse for the targets alone); plastic
        # synapses always get their own weights
        if w.size == 1 and stdp is not None:
            w = np.repeat(w, n_syn)
        self.weights = (w[order] if w.size > 1 and order is not None else w).astype(np.float32).copy()
        self.delays = (d[order] if d.size > 1 and order is not None else d).astype(np.int32).copy()
        del pre_idx
        if stdp is not None:  # synapses by target, for updates on post spikes
            self.by_post = np.argsort(self.targets, kind="stable").astype(np.int64)
            self.post_ptr = np.zeros(len(post) + 1, np.int64)
            np.cumsum(np.bincount(self.targets, minlength=len(post)), out=self.post_ptr[1:])
            self.pre_of = np.repeat(np.arange(len(pre), dtype=np.int32), np.diff(self.indptr))

    @property
    def n_synapses(self) -> int:
        return len(self.targets)

    @property
    def nbytes(self) -> int:
        arrays = [self.targets, self.indptr, self.weights, self.delays]
        return int(sum(a.nbytes for a in arrays))
