"""Counter-based random numbers for compiled loops: the value for (seed, counter) is a pure function of the two
(splitmix64 finaliser over the counter), so parallel loops give the same numbers on any thread count, and the CPU
loop, the numba.cuda kernels and the CUDA C of the CuPy backend give the same numbers on any device.

The draws the simulation loop makes every step are float32 arithmetic end to end (hashing is uint64 integer
work, not floating point), so a GPU runs them on its float32 pipe:

* :func:`uniform`: ``u = (h >> 40) * 2^-24``, the top 24 bits of the hash ``h`` as a float32 in ``[0, 1)``
  (exact: every value is a multiple of ``2^-24``);
* :func:`poisson_table`: a Poisson count by inversion, ``k = min{k : u <= F(k)}``, walking ``F = poisson_cdf(lam)``,
  the cumulative distribution ``F(k) = sum_{j <= k} e^{-lam} lam^j / j!`` as a float32 table made once per run on
  the host (summed in float64 and rounded once; it ends at the first entry that rounds to 1, so the walk always
  stops: ``u < 1``).

Connectivity (:func:`fixed_indegree_csr`) is built on the host and keeps the 53-bit :func:`uniform64`, which picks
among any number of sources without the float32 grid.

Example (the same draws from the same counters; a count's mean is ``lam``):
    >>> import numpy as np
    >>> from neuro.sim.random import poisson_cdf, poisson_table, uniform
    >>> u = uniform(7, 12)
    >>> 0.0 <= u < 1.0, u == uniform(7, 12), (u * 2**24).is_integer()   # on the float32 grid of 2^-24
    (True, True, True)
    >>> cdf = poisson_cdf(0.5)
    >>> cdf.dtype, float(cdf[-1])
    (dtype('float32'), 1.0)
    >>> k = np.array([poisson_table(7, c, cdf) for c in range(20000)])
    >>> bool(abs(k.mean() - 0.5) < 0.03)
    True
"""

import math

import numba
import numba.extending
import numpy as np

GOLDEN = 0x9E3779B97F4A7C15
M1 = 0xBF58476D1CE4E5B9
M2 = 0x94D049BB133111EB
"""The splitmix64 constants (also printed into the CUDA C of :mod:`neuro.kernels.cuda_c`)."""

_GOLDEN, _M1, _M2 = np.uint64(GOLDEN), np.uint64(M1), np.uint64(M2)
_S30, _S27, _S31, _S11, _S40 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11), np.uint64(40)
_ONE = np.uint64(1)
_SCALE24 = np.float32(1.0 / 16777216.0)  # 2^-24, exact in float32
_SCALE53 = 1.0 / 9007199254740992.0  # 2^-53

POISSON_KMAX = 1000
"""The largest count :func:`poisson_cdf` tabulates (far beyond the ``lam`` of one time step)."""


@numba.njit(inline="always")
def hash64(seed, counter):
    """The uint64 splitmix64 hash of ``(seed, counter)`` (integer work only)."""
    z = np.uint64(seed) + (np.uint64(counter) + _ONE) * _GOLDEN
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@numba.njit(inline="always")
def uniform(seed, counter):
    """A float32 uniform in ``[0, 1)``: the top 24 bits of :func:`hash64` times ``2^-24`` (float32 only)."""
    return np.float32(hash64(seed, counter) >> _S40) * _SCALE24


@numba.njit(inline="always")
def uniform64(seed, counter):
    """A float64 uniform in ``[0, 1)`` from the top 53 bits (host-side connectivity only, never in a GPU kernel)."""
    return float(hash64(seed, counter) >> _S11) * _SCALE53


@numba.njit(inline="always")
def poisson_table(seed, counter, cdf):
    """A Poisson count for the ``lam`` of ``cdf = poisson_cdf(lam)``: the first ``k`` with ``u <= cdf[k]``
    (float32 comparisons; ``cdf[-1] == 1 > u`` ends the walk)."""
    u = uniform(seed, counter)
    k = 0
    while u > cdf[k]:
        k += 1
    return k


C_SOURCE = f"""
NEURO_HD unsigned long long neuro_hash64(long long seed, long long counter) {{
    unsigned long long z = (unsigned long long)seed + ((unsigned long long)counter + 1ULL) * {GOLDEN:#x}ULL;
    z = (z ^ (z >> 30)) * {M1:#x}ULL;
    z = (z ^ (z >> 27)) * {M2:#x}ULL;
    return z ^ (z >> 31);
}}
NEURO_HD float neuro_uniform(long long seed, long long counter) {{
    return (float)(unsigned int)(neuro_hash64(seed, counter) >> 40) * 5.9604644775390625e-08f;  /* 2^-24 */
}}
NEURO_HD long long neuro_poisson_table(long long seed, long long counter, const float* cdf) {{
    const float u = neuro_uniform(seed, counter);
    long long k = 0;
    while (u > cdf[k]) ++k;
    return k;
}}
"""
"""The same generator in C (``__host__ __device__`` through :data:`neuro.kernels.cuda_c.PRELUDE`), for the CUDA C
of the CuPy backend: :func:`hash64`, :func:`uniform` and :func:`poisson_table` bit for bit (checked on the host in
``tests/test_sim_cupy_host.py``)."""


_TAIL = 2.0 ** -24  # the largest mass the table may leave beyond POISSON_KMAX (one step of the uniform's grid)


@numba.njit(cache=True, nogil=True)
def _cdf(lam):
    """The table of :func:`poisson_cdf` (``lam`` checked by the caller) and the mass it leaves beyond
    :data:`POISSON_KMAX` (0 when an entry reached 1)."""
    if lam == 0.0:
        return np.ones(1, np.float32), 0.0
    log_lam = math.log(lam)
    out = np.empty(POISSON_KMAX + 1, np.float32)
    f = 0.0
    for k in range(POISSON_KMAX + 1):
        f += math.exp(k * log_lam - lam - math.lgamma(k + 1))
        out[k] = np.float32(f)
        if out[k] >= 1.0:
            out[k] = 1.0
            return out[:k + 1].copy(), 0.0
    out[POISSON_KMAX] = 1.0
    return out, 1.0 - f


def poisson_cdf(lam: float) -> np.ndarray:
    """The float32 table :func:`poisson_table` walks for a mean of ``lam`` events per draw.

    Each ``F(k)`` is summed in float64 from the probabilities ``exp(k log lam - lam - log k!)`` (no underflow of
    ``e^{-lam}`` alone) and rounded once to float32; the table stops at the first entry that rounds to 1 (set to
    exactly 1). Computed once per run on the host; the kernels only read it. Callable from numba-compiled code too
    (the same table; errors without the value of ``lam`` there).

    Raises ValueError when ``lam`` is negative or not finite, or so large that more than ``2^-24`` of the mass lies
    beyond :data:`POISSON_KMAX` (lam above about 840)."""
    lam = float(lam)
    if not math.isfinite(lam) or lam < 0:
        raise ValueError(f"Poisson mean per step must be finite and >= 0, got lam = {lam!r}")
    table, rest = _cdf(lam)
    if rest > _TAIL:
        raise ValueError(f"Poisson mean per step lam = {lam:g} is too large for the inversion table (counts up to "
                         f"{POISSON_KMAX}): use a smaller dt or rate")
    return table


@numba.extending.overload(poisson_cdf)
def _poisson_cdf_jit(lam):
    def impl(lam):
        if not (lam >= 0.0 and lam < np.inf):
            raise ValueError("Poisson mean per step must be finite and >= 0")
        table, rest = _cdf(lam)
        if rest > _TAIL:
            raise ValueError("Poisson mean per step is too large for the inversion table: use a smaller dt or rate")
        return table
    return impl


@numba.njit(cache=True)
def fixed_indegree_csr(n_pre, n_post, k, seed):
    """CSR by source of ``k`` random sources per target (with repetition), without pair arrays."""
    counts = np.zeros(n_pre + 1, np.int64)
    for j in range(n_post):
        for m in range(k):
            src = int(uniform64(seed, j * k + m) * n_pre)
            counts[src + 1] += 1
    indptr = np.cumsum(counts)
    fill = indptr[:-1].copy()
    targets = np.empty(n_post * k, np.int32)
    for j in range(n_post):
        for m in range(k):
            src = int(uniform64(seed, j * k + m) * n_pre)
            targets[fill[src]] = j
            fill[src] += 1
    return indptr, targets
