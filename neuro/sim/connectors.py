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

from neuro import _checks


class Connector:
    def connect(self, n_pre: int, n_post: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


class AllToAll(Connector):
    def __init__(self, allow_self: bool = True):
        self.allow_self = _checks.check_bool("allow_self", allow_self)

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
        p = _checks.check_float("p", p, unit_interval=True)
        self.p, self.allow_self = p, _checks.check_bool("allow_self", allow_self)
        self.seed = _checks.check_seed("seed", seed)

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
        self.k = _checks.check_int("k", k, minimum=0, maximum=1 << 31)
        self.seed = _checks.check_seed("seed", seed)

    def connect(self, n_pre, n_post, rng):
        indptr, targets = self.csr(n_pre, n_post, rng)
        pre = np.repeat(np.arange(n_pre, dtype=np.int64), np.diff(indptr))
        return pre, targets.astype(np.int64)

    def csr(self, n_pre, n_post, rng):
        """``(indptr, targets)`` by source, built in compiled code without pair arrays (for 100 M synapses)."""
        from neuro.sim.random import fixed_indegree_csr

        if n_pre == 0 and self.k > 0 and n_post > 0:
            raise ValueError(f"FixedInDegree(k={self.k}) cannot draw sources from an empty pre population")
        if n_post * self.k > (1 << 31) - 1:
            raise ValueError(f"FixedInDegree(k={self.k}) to {n_post} neurons is {n_post * self.k} synapses; at most "
                             f"{(1 << 31) - 1} a projection")
        seed = self.seed if self.seed is not None else int(rng.integers(1 << 62))
        return fixed_indegree_csr(n_pre, n_post, self.k, seed)


class FromList(Connector):
    """Explicit ``(pre, post)`` pairs."""

    def __init__(self, pairs):
        arr = _checks.check_index_array("pairs", pairs if np.size(pairs) else np.zeros((0, 2), np.int64))
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ValueError(f"pairs must be a list of (pre, post) index pairs, shape [n, 2], got shape {arr.shape}")
        self.pre, self.post = arr[:, 0], arr[:, 1]

    def connect(self, n_pre, n_post, rng):
        if len(self.pre) and (self.pre.max() >= n_pre or self.post.max() >= n_post or min(self.pre.min(),
                                                                                             self.post.min()) < 0):
            raise ValueError(f"FromList indices out of range for populations of {n_pre} and {n_post} neurons")
        return self.pre.copy(), self.post.copy()


class FromSubset(Connector):
    """Apply ``connector`` from the pre neurons ``start .. start+count-1`` only (e.g. the excitatory part of
    one population that holds both E and I neurons)."""

    def __init__(self, connector: Connector, start: int, count: int):
        if not isinstance(connector, Connector):
            raise TypeError(f"connector must be a neuro.sim connector, got {connector!r}")
        self.inner = connector
        self.start = _checks.check_int("start", start, minimum=0)
        self.count = _checks.check_int("count", count, minimum=0)

    def _check(self, n_pre):
        if self.start < 0 or self.start + self.count > n_pre:
            raise ValueError(f"subset {self.start}..{self.start + self.count - 1} outside {n_pre} pre neurons")

    def connect(self, n_pre, n_post, rng):
        self._check(n_pre)
        pre, post = self.inner.connect(self.count, n_post, rng)
        return pre + self.start, post

    def csr(self, n_pre, n_post, rng):
        self._check(n_pre)
        if not hasattr(self.inner, "csr"):
            pre, post = self.connect(n_pre, n_post, rng)
            order = np.lexsort((post, pre))  # rows ordered by target (see neuro.sim.projections)
            indptr = np.zeros(n_pre + 1, np.int64)
            np.cumsum(np.bincount(pre, minlength=n_pre), out=indptr[1:])
            return indptr, post[order].astype(np.int32)
        sub_ptr, targets = self.inner.csr(self.count, n_post, rng)
        indptr = np.zeros(n_pre + 1, np.int64)
        indptr[self.start + 1:self.start + self.count + 1] = sub_ptr[1:]
        indptr[self.start + self.count + 1:] = sub_ptr[-1]
        return indptr, targets


def conv_pairs(w: np.ndarray, in_shape, out_shape, stride, padding):
    """Explicit (pre, post, weight) triples of a 2-D convolution (flattened C, H, W indices)."""
    c_out, c_in, kh, kw = w.shape
    _, h, wd = in_shape
    _, ho, wo = out_shape
    sh, sw = np.broadcast_to(np.atleast_1d(stride), 2)
    ph, pw = np.broadcast_to(np.atleast_1d(padding), 2)
    pre, post, weight = [], [], []
    for co in range(c_out):
        for oy in range(ho):
            for ox in range(wo):
                for ci in range(c_in):
                    for ky in range(kh):
                        for kx in range(kw):
                            iy, ix = oy * sh - ph + ky, ox * sw - pw + kx
                            if 0 <= iy < h and 0 <= ix < wd and w[co, ci, ky, kx] != 0:
                                pre.append((ci * h + iy) * wd + ix)
                                post.append((co * ho + oy) * wo + ox)
                                weight.append(float(w[co, ci, ky, kx]))
    return pre, post, weight


class Convolution(Connector):
    """A 2-D convolution between populations laid out as ``[C, H, W]`` (flattened C-major): each post neuron
    connects to its receptive field with the kernel's weights (``weight [C_out, C_in, kh, kw]``, zeros
    skipped). The synapses carry these weights, so ``connect(..., weight=None)``.

    Example:
        >>> import numpy as np
        >>> from neuro.sim.connectors import Convolution
        >>> conv = Convolution(np.ones((1, 1, 3, 3)), in_shape=(1, 4, 4), padding=1)
        >>> pre, post = conv.connect(16, 16, None)
        >>> len(pre)          # 4 corners x 4 + 8 edges x 6 + 4 inner x 9
        100
    """

    def __init__(self, weight, in_shape, stride=1, padding=0):
        self.weight = _checks.check_float_array("weight", weight).astype(np.float32)
        if self.weight.ndim != 4:
            raise ValueError(f"weight must be [C_out, C_in, kh, kw], got shape {self.weight.shape}")
        if not isinstance(in_shape, tuple | list) or len(in_shape) != 3:
            raise ValueError(f"in_shape must be (C, H, W), got {in_shape!r}")
        c, h, w = (_checks.check_int(f"in_shape[{i}]", v, minimum=1) for i, v in enumerate(in_shape))
        if c != self.weight.shape[1]:
            raise ValueError(f"in_shape has {c} channels but the kernel expects {self.weight.shape[1]}")
        s = [_checks.check_int("stride", v, minimum=1) for v in np.broadcast_to(np.atleast_1d(stride), 2).tolist()]
        p = [_checks.check_int("padding", v, minimum=0) for v in np.broadcast_to(np.atleast_1d(padding), 2).tolist()]
        kh, kw = self.weight.shape[2:]
        if h + 2 * p[0] < kh or w + 2 * p[1] < kw:
            raise ValueError(f"kernel {kh}x{kw} is larger than the padded input {h + 2 * p[0]}x{w + 2 * p[1]}")
        self.in_shape = (c, h, w)
        self.out_shape = (self.weight.shape[0], (h + 2 * p[0] - kh) // s[0] + 1, (w + 2 * p[1] - kw) // s[1] + 1)
        self.stride, self.padding = tuple(int(v) for v in s), tuple(int(v) for v in p)
        pre, post, wts = conv_pairs(self.weight, self.in_shape, self.out_shape, self.stride, self.padding)
        self._pre, self._post = np.asarray(pre, np.int64), np.asarray(post, np.int64)
        self.weights = np.asarray(wts, np.float32)

    def connect(self, n_pre, n_post, rng):
        if n_pre != int(np.prod(self.in_shape)) or n_post != int(np.prod(self.out_shape)):
            raise ValueError(f"Convolution maps {int(np.prod(self.in_shape))} -> {int(np.prod(self.out_shape))} "
                             f"neurons, got populations of {n_pre} and {n_post}")
        return self._pre.copy(), self._post.copy()
