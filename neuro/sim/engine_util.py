"""Small compiled helpers the generated simulation loop calls."""

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, inline="always")
def spike_list(fired, out):
    """Write the indices of the non-zero entries of ``fired`` (uint8, length a multiple of 8) to ``out`` in
    increasing order and return their count; eight entries are tested at once, so a quiet step costs n/8."""
    words = fired.view(np.uint64)
    c = 0
    for j in range(words.shape[0]):
        if words[j] != 0:
            for i in range(8 * j, 8 * j + 8):
                if fired[i]:
                    out[c] = i
                    c += 1
    return c


@numba.njit(cache=True, nogil=True, inline="always")
def share(n, th, nthreads):
    """Start of thread ``th``'s share of ``n`` items split over ``nthreads`` (``share(n, nthreads, nthreads) == n``):
    a multiple of 64, so two threads never write one cache line of a float32 or uint8 array."""
    if th >= nthreads:
        return n
    return min(n, n * th // nthreads // 64 * 64)
