"""Connectors: which pre neuron connects to which post neuron (PyNN's names), as (pre, post) index arrays.

Each takes the population sizes and a seeded ``numpy.random.Generator``.

Example:
    >>> import numpy as np
    >>> from neuro.sim.connectors import FixedInDegree
    >>> pre, post = FixedInDegree(3, seed=0).connect(10, 4, np.random.default_rng(0))
    >>> np.bincount(post).tolist()
    [3, 3, 3, 3]
"""

from __future__ import annotations

import numpy as np


class Connector:
    def connect(self, n_pre: int, n_post: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


class AllToAll(Connector):
    def __init__(self, allow_self: bool = True):
        self.allow_self = allow_self

    def connect(self, n_pre, n_post, rng):
        pre, post = np.meshgrid(np.arange(n_pre), np.arange(n_post), indexing="ij")
        pre, post = pre.ravel(), post.ravel()
        if not self.allow_self:
            keep = pre != post
            pre, post = pre[keep], post[keep]
        return pre, post


class OneToOne(Connector):
    def connect(self, n_pre, n_post, rng):
        if n_pre != n_post:
            raise ValueError(f"OneToOne needs populations of equal size, got {n_pre} and {n_post}")
        idx = np.arange(n_pre)
        return idx, idx.copy()


class FixedProbability(Connector):
    """Each pair connected independently with probability ``p``."""

    def __init__(self, p: float, allow_self: bool = True, seed: int | None = None):
        if not 0 <= p <= 1:
            raise ValueError(f"p must lie in [0, 1], got {p}")
        self.p, self.allow_self, self.seed = p, allow_self, seed

    def connect(self, n_pre, n_post, rng):
        rng = np.random.default_rng(self.seed) if self.seed is not None else rng
        counts = rng.binomial(n_post, self.p, size=n_pre)
        pre = np.repeat(np.arange(n_pre), counts)
        post = np.concatenate([rng.choice(n_post, c, replace=False) for c in counts]) if n_pre else np.zeros(0, int)
        if not self.allow_self:
            keep = pre != post
            pre, post = pre[keep], post[keep]
        return pre, post.astype(np.int64)


class FixedInDegree(Connector):
    """Every post neuron receives exactly ``k`` connections from random pre neurons (with repetition, as
    NEST's ``fixed_indegree`` with multapses)."""

    def __init__(self, k: int, seed: int | None = None):
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        self.k, self.seed = int(k), seed

    def connect(self, n_pre, n_post, rng):
        rng = np.random.default_rng(self.seed) if self.seed is not None else rng
        pre = rng.integers(0, n_pre, size=n_post * self.k, dtype=np.int64)
        post = np.repeat(np.arange(n_post, dtype=np.int64), self.k)
        return pre, post


class FromList(Connector):
    """Explicit ``(pre, post)`` pairs."""

    def __init__(self, pairs):
        arr = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        self.pre, self.post = arr[:, 0], arr[:, 1]

    def connect(self, n_pre, n_post, rng):
        if len(self.pre) and (self.pre.max() >= n_pre or self.post.max() >= n_post or min(self.pre.min(),
                                                                                             self.post.min()) < 0):
            raise ValueError(f"FromList indices out of range for populations of {n_pre} and {n_post} neurons")
        return self.pre.copy(), self.post.copy()
