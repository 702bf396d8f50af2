"""Bit packing of 0/1 tensors: ``np.packbits(x != 0)`` and ``np.unpackbits(...).astype(dtype)`` as numba kernels.

Layout (NumPy's ``packbits`` with ``bitorder="big"``): element ``i`` of the flattened input is bit
``7 - i % 8`` of byte ``i // 8``, so element 0 is the most significant bit of byte 0; the last byte is padded
with zero bits. For the float inputs "nonzero" is tested on the bits with the sign bit masked off,

    bit_i = (bits(x_i) & ~sign_mask) != 0,

which equals ``x_i != 0`` for every value (``-0.0`` counts as zero, NaN as nonzero). Unpacking writes, for
``i < count``, ``out_i = one`` where bit ``start_bit + i`` is set and ``0`` where it is not (``one``: the bit
pattern of 1.0 in ``out``'s dtype), which is ``np.unpackbits(packed)[start_bit:start_bit + count]`` cast to
``out``'s dtype.

How: 64 elements at a time as one LLVM vector (a compare, a bit reversal within each byte by a shuffle, a
bitcast of the ``<64 x i1>`` mask to a 64-bit word; the reverse for unpacking), which ``np.packbits`` of a
bool array cannot do in one pass; the loop over words is split in blocks over threads (``prange``), each block
writing whole bytes (packing) or whole elements (unpacking) that depend only on their own input, so any thread
count gives the same output. The word loads and stores are unaligned, so any byte offset of a view is fine.
Little-endian machines only (:data:`AVAILABLE`): the 64-bit words are stored byte 0 first.

Compiled on first call (cached on disk), one specialisation per element width: packing takes the input as
uint16 / uint32 / uint64 words with a mask, unpacking the output as such words with the pattern of 1.0.

Example:
    >>> import numpy as np
    >>> from neuro.kernels import bits
    >>> x = np.array([1, 0, -0.0, 1, 0, 0, 0, 1, 1], np.float32)
    >>> bits.pack_nonzero(x).tolist(), np.packbits(x != 0).tolist()
    ([145, 128], [145, 128])
    >>> out = np.empty(5, np.float32)
    >>> bits.unpack_bits(bits.pack_nonzero(x), 3, 5, out).tolist()
    [1.0, 0.0, 0.0, 0.0, 1.0]
"""

from __future__ import annotations

import sys

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

#: whether the kernels can run here (they store 64-bit words byte 0 first: little-endian machines)
AVAILABLE = sys.byteorder == "little"

#: 64-element words per parallel block (16 Ki elements): blocks for load balance, each long enough that the
#: per-block overhead is small
BLOCK_WORDS = 256

#: bit patterns of 1.0 for 16-bit outputs given as uint16
F16_ONE = 0x3C00
BF16_ONE = 0x3F80

_PJIT = numba.njit(cache=True, nogil=True, parallel=True, error_model="numpy")

# element k of a 64-element group <-> bit k of the <64 x i1> mask, reordered so element k lands on bit
# 7 - k % 8 of byte k // 8 once the word is stored little-endian
_BYTE_REVERSED = [(k & ~7) | (7 - (k & 7)) for k in range(64)]
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)


def _splat(builder, value, vty):
    v = builder.insert_element(ir.Constant(vty, ir.Undefined), value, ir.Constant(_I32, 0))
    return builder.shuffle_vector(v, ir.Constant(vty, ir.Undefined), ir.Constant(ir.VectorType(_I32, 64), [0] * 64))


def _element_pointer(context, builder, arr_type, arr, index, elem_type):
    data = context.make_array(arr_type)(context, builder, arr).data
    return builder.bitcast(builder.gep(data, [index]), elem_type.as_pointer())


@intrinsic
def _load_flags(typingctx, x, i, mask):
    """``(x[i:i + 64] & mask) != 0`` as a uint64 word in packbits order (little-endian store)."""
    sig = types.uint64(x, types.intp, x.dtype)

    def codegen(context, builder, signature, args):
        arr, index, m = args
        vty = ir.VectorType(ir.IntType(signature.args[0].dtype.bitwidth), 64)
        v = builder.load(_element_pointer(context, builder, signature.args[0], arr, index, vty), align=1)
        c = builder.icmp_unsigned("!=", builder.and_(v, _splat(builder, m, vty)), ir.Constant(vty, None))
        c = builder.shuffle_vector(c, ir.Constant(c.type, ir.Undefined),
                                   ir.Constant(ir.VectorType(_I32, 64), _BYTE_REVERSED))
        return builder.bitcast(c, _I64)

    return sig, codegen


@intrinsic
def _store_flags(typingctx, out, i, word, one):
    """``out[i:i + 64] = one`` where the bit of the word (packbits order) is set, else 0."""
    sig = types.void(out, types.intp, types.uint64, out.dtype)

    def codegen(context, builder, signature, args):
        arr, index, w, o = args
        vty = ir.VectorType(ir.IntType(signature.args[0].dtype.bitwidth), 64)
        c = builder.bitcast(w, ir.VectorType(ir.IntType(1), 64))
        c = builder.shuffle_vector(c, ir.Constant(c.type, ir.Undefined),
                                   ir.Constant(ir.VectorType(_I32, 64), _BYTE_REVERSED))
        v = builder.select(c, _splat(builder, o, vty), ir.Constant(vty, None))
        builder.store(v, _element_pointer(context, builder, signature.args[0], arr, index, vty), align=1)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _load_word(typingctx, a, i):
    """The 8 bytes ``a[i:i + 8]`` as a little-endian uint64 (unaligned load)."""
    sig = types.uint64(a, types.intp)

    def codegen(context, builder, signature, args):
        return builder.load(_element_pointer(context, builder, signature.args[0], args[0], args[1], _I64), align=1)

    return sig, codegen


@intrinsic
def _store_word(typingctx, a, i, word):
    """``a[i:i + 8]`` = the uint64 word, little-endian (unaligned store)."""
    sig = types.void(a, types.intp, types.uint64)

    def codegen(context, builder, signature, args):
        builder.store(args[2], _element_pointer(context, builder, signature.args[0], args[0], args[1], _I64),
                      align=1)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _bswap(typingctx, w):
    """The uint64 with its bytes reversed."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.bswap", [_I64])
        return builder.call(fn, [args[0]])

    return sig, codegen


@numba.njit(inline="always")
def pack_span(x, start, count, mask, out):
    """Bits of ``(x[start:start + count] & mask) != 0`` into the bytes ``out[start // 8:]`` (``start % 8 == 0``;
    a last partial byte padded with zero bits): 64 elements a word, the elements after the last whole word one
    bit at a time. For numba code, e.g. the spiking layers' forward kernels (one block's row of spikes)."""
    o = start >> 3
    words = count >> 6
    for w in range(words):
        _store_word(out, o + 8 * w, _load_flags(x, start + 64 * w, mask))
    for j in range(8 * words, (count + 7) >> 3):
        byte = np.uint8(0)
        for i in range(8 * j, min(8 * j + 8, count)):
            if x[start + i] & mask:
                byte |= np.uint8(0x80 >> (i - 8 * j))
        out[o + j] = byte


@numba.njit(inline="always")
def unpack_span(packed, start, count, out, one):
    """``out[:count] = one`` where bits ``8 start ...`` of ``packed`` (packbits order, from byte ``start``) are
    set, else 0: 64 elements a word, the elements after the last whole word one bit at a time. The inverse of
    :func:`pack_span`, for numba code that expands a row of bits in a buffer of its own (``out`` takes the raw
    bits of its dtype, as :func:`unpack_bits` does; :mod:`neuro.kernels.spike_grad`)."""
    words = count >> 6
    for w in range(words):
        _store_flags(out, 64 * w, _load_word(packed, start + 8 * w), one)
    zero = one ^ one
    for i in range(64 * words, count):
        out[i] = one if (packed[start + (i >> 3)] >> (7 - (i & 7))) & 1 else zero


@_PJIT
def _pack(x, mask, out, block):
    n = x.size
    words = n // 64
    for b in numba.prange((words + block - 1) // block):
        w0 = b * block
        pack_span(x, 64 * w0, 64 * (min(w0 + block, words) - w0), mask, out)
    pack_span(x, 64 * words, n - 64 * words, mask, out)  # the last partial word (< 64 elements)


@_PJIT
def _unpack(packed, start_bit, count, out, one, block):
    shift = start_bit & 7
    first = start_bit >> 3
    words = count // 64
    for b in numba.prange((words + block - 1) // block):
        for w in range(b * block, min((b + 1) * block, words)):
            q = first + 8 * w
            # bits start_bit + 64 w ... + 63 in stream order, most significant first (big-endian word)
            word = _bswap(_load_word(packed, q))
            if shift:  # the word straddles 9 bytes: q + 8 holds the last bits (present: they are < count)
                word = (word << np.uint64(shift)) | np.uint64(packed[q + 8] >> (8 - shift))
            _store_flags(out, 64 * w, _bswap(word), one)
    zero = one ^ one
    for i in range(64 * words, count):
        p = start_bit + i
        out[i] = one if (packed[p >> 3] >> (7 - (p & 7))) & 1 else zero


# -- the public functions: checks, then the kernels on integer views --------------------------------------------
_WORDS = {np.dtype(np.float16): np.uint16, np.dtype(np.float32): np.uint32, np.dtype(np.float64): np.uint64,
          np.dtype(np.uint16): np.uint16}


def _flat(a: np.ndarray, name: str) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(a).__name__}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (got strides {a.strides} for shape {a.shape})")
    return a.reshape(-1)


def _check_available() -> None:
    if not AVAILABLE:
        raise RuntimeError("neuro.kernels.bits needs a little-endian machine; use np.packbits / np.unpackbits")


def pack_nonzero(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``np.packbits(x != 0)`` of the flattened ``x`` (see the module docstring for the layout).

    ``x``: a C-contiguous float16 / float32 / float64 array, or uint16 holding the bits of bfloat16 or float16
    values (the sign bit is ignored: ``-0.0`` is zero). ``out``: optional uint8 array of ``ceil(x.size / 8)``
    elements, C-contiguous, to write into (returned). Same bytes for any thread count.

    Example:
        >>> import numpy as np
        >>> from neuro.kernels import bits
        >>> x = np.array([0, 1, 0, 0, 0, 0, 0, 0, 1, 0], np.float16)
        >>> bits.pack_nonzero(x).tolist()
        [64, 128]
    """
    _check_available()
    flat = _flat(x, "x")
    word = _WORDS.get(flat.dtype)
    if word is None:
        raise TypeError(f"pack_nonzero: x must be float16, float32, float64 or uint16 (bits of a 16-bit float), "
                        f"got {flat.dtype}")
    nbytes = -(-flat.size // 8)
    if out is None:
        out = np.empty(nbytes, np.uint8)
    dst = _flat(out, "out")
    if dst.dtype != np.uint8 or dst.size != nbytes:
        raise ValueError(f"pack_nonzero: out must be uint8 of {nbytes} elements for {flat.size} values, "
                         f"got {dst.dtype} of {dst.size}")
    if flat.size:
        bits = np.dtype(word).itemsize * 8
        _pack(flat.view(word), word((1 << (bits - 1)) - 1), dst, BLOCK_WORDS)
    return out


_ONES = {np.dtype(np.float16): (np.uint16, F16_ONE), np.dtype(np.float32): (np.uint32, 0x3F800000),
         np.dtype(np.float64): (np.uint64, 0x3FF0000000000000)}


def unpack_bits(packed: np.ndarray, start_bit: int, count: int, out: np.ndarray, one: int | None = None
                ) -> np.ndarray:
    """Write bits ``start_bit ... start_bit + count - 1`` of ``packed`` (packbits order) into ``out[:count]`` as
    1.0 / 0.0: ``np.unpackbits(packed)[start_bit:start_bit + count].astype(out.dtype)``. Returns ``out``.

    ``packed``: C-contiguous uint8. ``out``: C-contiguous float16 / float32 / float64 with at least ``count``
    elements, or uint16 taking the raw bits of a 16-bit float, for which ``one`` is required: :data:`F16_ONE`
    (float16) or :data:`BF16_ONE` (bfloat16). ``start_bit`` need not be a multiple of 8.

    Example:
        >>> import numpy as np
        >>> from neuro.kernels import bits
        >>> out = np.empty(4, np.uint16)
        >>> [hex(v) for v in bits.unpack_bits(np.array([0b01100000], np.uint8), 0, 4, out, one=bits.BF16_ONE)]
        ['0x0', '0x3f80', '0x3f80', '0x0']
    """
    _check_available()
    src = _flat(packed, "packed")
    if src.dtype != np.uint8:
        raise TypeError(f"unpack_bits: packed must be uint8, got {src.dtype}")
    dst = _flat(out, "out")
    start_bit, count = int(start_bit), int(count)
    if start_bit < 0 or count < 0 or start_bit + count > 8 * src.size:
        raise ValueError(f"unpack_bits: bits {start_bit}:{start_bit + count} are outside the {8 * src.size} bits "
                         f"of packed")
    if count > dst.size:
        raise ValueError(f"unpack_bits: out has {dst.size} elements, fewer than count = {count}")
    if dst.dtype == np.uint16:
        if one is None:
            raise ValueError("unpack_bits: out is uint16 (raw 16-bit float bits): give one=bits.F16_ONE (float16) "
                             "or one=bits.BF16_ONE (bfloat16)")
        word, pattern = np.uint16, one
    elif dst.dtype in _ONES:
        if one is not None:
            raise ValueError(f"unpack_bits: one is only for uint16 outputs; out is {dst.dtype}")
        word, pattern = _ONES[dst.dtype]
    else:
        raise TypeError(f"unpack_bits: out must be float16, float32, float64 or uint16, got {dst.dtype}")
    if count:
        _unpack(src, start_bit, count, dst.view(word), word(pattern), BLOCK_WORDS)
    return out
