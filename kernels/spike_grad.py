"""The weight gradient of a narrow layer over spikes kept as bits: ``dW = dY^T S`` straight from the bits.

``S [M, K]`` holds 0/1 (spikes, one row per time step and sample), packed as ``np.packbits`` of its rows
(row ``r`` starts at bit ``r K``; ``K`` a multiple of 8, so every row starts on a byte). ``dY [M, OUT]``. Then

    dW[o, k] = sum over rows r with S[r, k] = 1 of dY[r, o]

is a sum over the set bits only: for each set bit, one row of ``dY`` added into one row of ``acc [K, OUT]``.
Unpacking ``S`` to floats for a GEMM writes and reads ``M K`` floats whatever the spike rate; here the cost
follows the set bits. For a narrow output (snnTorch's MLP 784-1000-10: ``OUT`` = 10, 5.7% spikes) it is 1.4-1.6
ms against 2.7-2.8 ms for unpack + GEMM; the two meet near 20-25% spikes (``benchmarks/RESULTS.md``), so
:func:`spike_rate` lets the caller choose.

The rows are split into :data:`PARTS` fixed parts, each summed in row order into its own float64 accumulator by
one thread, and the parts added in order: the same bits for any thread count, and exact sums of float32
terms until they exceed float64's 53 bits (more accurate than a float32 GEMM).

Example:
    >>> import numpy as np
    >>> from neuro.kernels import spike_grad
    >>> s = np.array([[1, 0, 0, 0, 0, 0, 0, 1], [0, 1, 0, 0, 0, 0, 0, 1]], np.float32)
    >>> dy = np.array([[1.0], [10.0]], np.float32)
    >>> spike_grad.weight_grad(np.packbits(s != 0), 8, dy).tolist()          # dY^T S
    [[1.0, 10.0, 0.0, 0.0, 0.0, 0.0, 0.0, 11.0]]
"""

from __future__ import annotations

import numba
import numpy as np

#: fixed row parts (each one thread's float64 accumulator ``[K, OUT]``): the result does not depend on threads
PARTS = 8

#: bit offset (0 = most significant, numpy.packbits order) of the first set bit of each byte value
_FIRST_BIT = np.array([0] + [8 - b.bit_length() for b in range(1, 256)], np.int64)
#: set bits of each byte value
_POPCOUNT = np.array([bin(b).count("1") for b in range(256)], np.int64)


@numba.njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def _accumulate(bits, K, dy, acc, first_bit):
    M, OUT = dy.shape
    parts = acc.shape[0]
    row_bytes = K >> 3
    for p in numba.prange(parts):
        for r in range(p * M // parts, (p + 1) * M // parts):
            base = r * row_bytes
            for j in range(row_bytes):
                byte = np.int64(bits[base + j])
                while byte != 0:  # one pass per set bit, not per bit
                    at = first_bit[byte]
                    byte ^= 0x80 >> at
                    k = 8 * j + at
                    for o in range(OUT):
                        acc[p, k, o] += dy[r, o]


def weight_grad(bits: np.ndarray, K: int, dy: np.ndarray) -> np.ndarray:
    """``dY^T S`` ``[OUT, K]`` in ``dy``'s dtype, for ``bits`` (uint8, ``np.packbits`` of ``S [M, K]``'s rows,
    ``K % 8 == 0``) and ``dy [M, OUT]`` (float32 or float64, C-contiguous)."""
    M, out = dy.shape
    if K % 8 or bits.dtype != np.uint8 or bits.size < M * K // 8:
        raise ValueError(f"weight_grad: bits must be uint8 packbits of a [{M}, {K}] matrix with K % 8 == 0 "
                         f"(got {bits.size} {bits.dtype} bytes)")
    acc = np.zeros((min(PARTS, max(M, 1)), K, out), np.float64)
    _accumulate(bits, K, dy, acc, _FIRST_BIT)
    return acc.sum(axis=0).T.astype(dy.dtype)


def spike_rate(bits: np.ndarray, samples: int = 4096) -> float:
    """The fraction of set bits, estimated from ``samples`` bytes spread evenly over ``bits`` (all when fewer)."""
    if bits.size == 0:
        return 0.0
    picked = bits[:: max(1, bits.size // samples)]
    return float(_POPCOUNT[picked].sum()) / (8 * picked.size)
