"""The weight gradient of a narrow layer over spikes kept as bits: ``dW = dY^T S`` straight from the bits.

``S [M, K]`` holds 0/1 (spikes, one row per time step and sample), packed as ``np.packbits`` of its rows
(row ``r`` starts at bit ``r K``; ``K`` a multiple of 8, so every row starts on a byte). ``dY [M, OUT]``. Then

    dW[o, k] = sum over rows r with S[r, k] = 1 of dY[r, o]

Two kernels, neither of which writes ``S`` out as floats (``M K`` floats that a GEMM would read back):

* :func:`weight_grad` sums over the set bits only: for each set bit, one row of ``dY`` added into one row of
  ``acc [K, OUT]``, in float64. Its cost follows the set bits, so it pays for very sparse spikes.
* :func:`weight_grad_dense` runs over every bit: eight rows of bits at a time are expanded to 0/1 floats in a
  buffer that stays in cache, and each output's accumulator row takes
  ``acc[o, :] += sum_q dY[r_q, o] S[r_q, :]`` over them, in float32 (a GEMM's arithmetic; a NaN or infinity in
  ``dY`` spreads to the whole row as it does in the GEMM). Its cost does not depend on the spike rate.

On the Intel Xeon this was measured on ([3200, 1000] spikes, 10 outputs, alone): the sparse kernel 0.56 / 1.16 /
2.2 ms at 2 / 5.7 / 21% spikes, the dense one 0.70-0.75 ms at any rate, unpacking to floats + GEMM 0.74-0.80 ms
alone and about twice that inside a training step (the 12.8 MB of floats go to cold memory); in the MLP step,
alternating the two in one process, the dense kernel made the step 0.96x as long (``benchmarks/RESULTS.md``).
:func:`spike_rate` lets the caller choose.

Both split the rows into :data:`PARTS` fixed parts, each summed in row order into its own accumulator by one
thread, and add the parts in order in float64: the same bits for any thread count. The sparse kernel's sums of
float32 terms are exact until they exceed float64's 53 bits (more accurate than a float32 GEMM).

Example:
    >>> import numpy as np
    >>> from neuro.kernels import spike_grad
    >>> s = np.array([[1, 0, 0, 0, 0, 0, 0, 1], [0, 1, 0, 0, 0, 0, 0, 1]], np.float32)
    >>> dy = np.array([[1.0], [10.0]], np.float32)
    >>> spike_grad.weight_grad(np.packbits(s != 0), 8, dy).tolist()          # dY^T S
    [[1.0, 10.0, 0.0, 0.0, 0.0, 0.0, 0.0, 11.0]]
    >>> spike_grad.weight_grad_dense(np.packbits(s != 0), 8, dy).tolist()
    [[1.0, 10.0, 0.0, 0.0, 0.0, 0.0, 0.0, 11.0]]
"""

from __future__ import annotations

import numba
import numpy as np

from neuro.kernels.bits import unpack_span

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


#: rows of bits expanded per pass of the dense kernel (each pass reads and writes the accumulator once): 8 rows
#: took 0.71 ms on the MLP's [3200, 1000] x 10 outputs, 4 rows 0.78, 1 row 1.3
_DENSE_ROWS = 8
_ONE_F32 = np.uint32(0x3F800000)


@numba.njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def _dense_accumulate(bits, K, dy, acc):
    M, OUT = dy.shape
    parts = acc.shape[0]
    row_bytes = K >> 3
    for p in numba.prange(parts):
        a = acc[p]
        # zeros: rows past the part's end are read (weighing 0) and must be finite
        rows_u = np.zeros((_DENSE_ROWS, K), np.uint32)
        rows = rows_u.view(np.float32)
        d = np.zeros(_DENSE_ROWS, np.float32)
        r0, r1 = p * M // parts, (p + 1) * M // parts
        for rb in range(r0, r1, _DENSE_ROWS):
            n = min(_DENSE_ROWS, r1 - rb)
            for q in range(n):
                unpack_span(bits, (rb + q) * row_bytes, K, rows_u[q], _ONE_F32)
            s0, s1, s2, s3 = rows[0], rows[1], rows[2], rows[3]
            s4, s5, s6, s7 = rows[4], rows[5], rows[6], rows[7]
            for o in range(OUT):
                for q in range(_DENSE_ROWS):
                    d[q] = dy[rb + q, o] if q < n else np.float32(0.0)
                d0, d1, d2, d3, d4, d5, d6, d7 = d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
                ao = a[o]
                for k in range(K):
                    ao[k] += (((d0 * s0[k] + d1 * s1[k]) + (d2 * s2[k] + d3 * s3[k]))
                              + ((d4 * s4[k] + d5 * s5[k]) + (d6 * s6[k] + d7 * s7[k])))


def _check_bits(name: str, bits: np.ndarray, K: int, M: int) -> None:
    if K % 8 or not isinstance(bits, np.ndarray) or bits.dtype != np.uint8 or bits.size < M * K // 8:
        raise ValueError(f"{name}: bits must be uint8 packbits of a [{M}, {K}] matrix with K % 8 == 0 "
                         f"(got {getattr(bits, 'size', '?')} {getattr(bits, 'dtype', type(bits).__name__)} bytes)")


def weight_grad_dense(bits: np.ndarray, K: int, dy: np.ndarray) -> np.ndarray:
    """``dY^T S`` ``[OUT, K]`` float32 over every bit (see the module docstring), for ``bits`` (uint8,
    ``np.packbits`` of ``S [M, K]``'s rows, ``K % 8 == 0``) and ``dy [M, OUT]`` (float32, C-contiguous)."""
    M, out = dy.shape
    _check_bits("weight_grad_dense", bits, K, M)
    if dy.dtype != np.float32 or not dy.flags.c_contiguous:
        raise ValueError(f"weight_grad_dense: dy must be C-contiguous float32, got {dy.dtype}")
    acc = np.zeros((min(PARTS, max(M, 1)), out, K), np.float32)
    if M and K:
        _dense_accumulate(bits.reshape(-1), K, dy, acc)
    return acc.sum(axis=0, dtype=np.float64).astype(np.float32)


def weight_grad(bits: np.ndarray, K: int, dy: np.ndarray) -> np.ndarray:
    """``dY^T S`` ``[OUT, K]`` in ``dy``'s dtype, for ``bits`` (uint8, ``np.packbits`` of ``S [M, K]``'s rows,
    ``K % 8 == 0``) and ``dy [M, OUT]`` (float32 or float64, C-contiguous)."""
    M, out = dy.shape
    _check_bits("weight_grad", bits, K, M)
    acc = np.zeros((min(PARTS, max(M, 1)), K, out), np.float64)
    _accumulate(bits, K, dy, acc, _FIRST_BIT)
    return acc.sum(axis=0).T.astype(dy.dtype)


def spike_rate(bits: np.ndarray, samples: int = 4096) -> float:
    """The fraction of set bits, estimated from ``samples`` bytes spread evenly over ``bits`` (all when fewer)."""
    if bits.size == 0:
        return 0.0
    picked = bits[:: max(1, bits.size // samples)]
    return float(_POPCOUNT[picked].sum()) / (8 * picked.size)
