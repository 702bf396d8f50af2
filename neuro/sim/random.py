"""Counter-based random numbers for compiled loops: the value for (seed, step, neuron) is a pure function
of those three, so parallel loops give the same numbers on any thread count (splitmix64 finaliser)."""

import numba
import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_SCALE = 1.0 / 9007199254740992.0  # 2^-53


@numba.njit(inline="always")
def uniform(seed, counter):
    """A float64 uniform in [0, 1) for (seed, counter)."""
    z = np.uint64(seed) + (np.uint64(counter) + np.uint64(1)) * _GOLDEN
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    z = z ^ (z >> _S31)
    return float(z >> _S11) * _SCALE


@numba.njit(inline="always")
def poisson(seed, counter, lam):
    """A Poisson(lam) count by inversion from one uniform (fine for the small lam of one time step)."""
    return poisson_p0(seed, counter, lam, np.exp(-lam))


@numba.njit(inline="always")
def poisson_p0(seed, counter, lam, p0):
    """:func:`poisson` with ``p0 = exp(-lam)`` computed once by the caller (it is the same for every draw)."""
    u = uniform(seed, counter)
    k = 0
    p = p0
    f = p
    while u > f and k < 1000:
        k += 1
        p *= lam / k
        f += p
    return k


_POISSON_KMAX = 1000  # inversion stops here (a count of 1000 in one step is far beyond any sensible lam)


@numba.njit(cache=True, nogil=True)
def poisson_cdf(lam):
    """The cumulative sums :func:`poisson_p0` walks for ``lam``, in the same float64 operations and order,
    so that :func:`poisson_table` returns exactly its counts without a division per draw."""
    cdf = np.empty(_POISSON_KMAX + 1, np.float64)
    p = np.exp(-lam)
    f = p
    cdf[0] = f
    for k in range(1, _POISSON_KMAX + 1):
        p *= lam / k
        f += p
        cdf[k] = f
    return cdf


@numba.njit(inline="always")
def poisson_table(seed, counter, cdf):
    """:func:`poisson` for the ``lam`` of ``cdf = poisson_cdf(lam)`` (the same count for the same draw)."""
    u = uniform(seed, counter)
    k = 0
    while k < _POISSON_KMAX and u > cdf[k]:
        k += 1
    return k


@numba.njit(cache=True)
def fixed_indegree_csr(n_pre, n_post, k, seed):
    """CSR by source of ``k`` random sources per target (with repetition), without pair arrays."""
    counts = np.zeros(n_pre + 1, np.int64)
    for j in range(n_post):
        for m in range(k):
            src = int(uniform(seed, j * k + m) * n_pre)
            counts[src + 1] += 1
    indptr = np.cumsum(counts)
    fill = indptr[:-1].copy()
    targets = np.empty(n_post * k, np.int32)
    for j in range(n_post):
        for m in range(k):
            src = int(uniform(seed, j * k + m) * n_pre)
            targets[fill[src]] = j
            fill[src] += 1
    return indptr, targets
