"""neuro.kernels.bits against NumPy's packbits / unpackbits (and torch's ``!= 0`` and casts for bfloat16).

Reference: ``np.packbits(x != 0)`` for packing (bfloat16: ``torch``'s ``t != 0``), and
``np.unpackbits(packed)[start:start + count].astype(dtype)`` for unpacking (bfloat16: the uint8 bits cast by
torch), compared byte for byte. Inputs: random values with many +0.0 / -0.0 (NaN, inf and the smallest
subnormals too), lengths around the kernels' 64-element words and blocks, start bits off the byte boundary,
and outputs at odd byte offsets (the kernels' word loads and stores are unaligned).
"""

import numba
import numpy as np
import pytest
import torch

from neuro.kernels import bits
from neuro.nn import spike_inputs

pytestmark = pytest.mark.skipif(not bits.AVAILABLE, reason="neuro.kernels.bits needs a little-endian machine")

LENGTHS = [0, 1, 7, 8, 9, 63, 64, 65, 127, 129, 1000, 4101]
DTYPES = ["float32", "float64", "float16", "bfloat16"]


def _values(n: int, dtype: str, seed: int, p_one: float = 0.4) -> torch.Tensor:
    """0/1 with some -0.0, and a few other nonzero values (NaN, inf, negative, smallest subnormal)."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, generator=g) < p_one).double()
    x[torch.rand(n, generator=g) < 0.2] = -0.0
    odd = torch.tensor([float("nan"), float("inf"), -3.0, 1e-45, -1e-45, 6e-8, 1e-40])
    pick = torch.rand(n, generator=g) < 0.05
    x[pick] = odd[torch.randint(len(odd), (int(pick.sum()),), generator=g)].double()
    return x.to(getattr(torch, dtype))  # the cast makes the tiny values 0 or subnormal per dtype


def _kernel_input(t: torch.Tensor) -> np.ndarray:
    return t.view(torch.int16).numpy().view(np.uint16) if t.dtype == torch.bfloat16 else t.numpy()


def _unpack_reference(packed: np.ndarray, start: int, count: int, dtype: str) -> np.ndarray:
    b = np.unpackbits(packed)[start:start + count]
    if dtype == "bfloat16":
        return torch.from_numpy(b).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    return b.astype(dtype)


def _empty_out(count: int, dtype: str) -> tuple[np.ndarray, int | None]:
    if dtype == "bfloat16":
        return np.empty(count, np.uint16), bits.BF16_ONE
    return np.empty(count, dtype), None


@pytest.fixture
def threads():
    """Run with ``numba.set_num_threads(n)``, restored after the test."""
    before = numba.get_num_threads()
    yield numba.set_num_threads
    numba.set_num_threads(before)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", LENGTHS)
def test_pack_matches_packbits(n, dtype):
    t = _values(n, dtype, seed=n)
    expected = np.packbits((t != 0).numpy())
    got = bits.pack_nonzero(_kernel_input(t))
    assert got.dtype == np.uint8 and np.array_equal(got, expected)


def test_negative_zero_and_nan():
    x = np.array([-0.0, 0.0, np.nan, -np.nan, -0.0, np.inf, -np.inf, 5e-324, -0.0], np.float64)
    assert bits.pack_nonzero(x).tolist() == np.packbits(x != 0).tolist() == [0b00110111, 0]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", LENGTHS)
def test_unpack_matches_unpackbits(n, dtype):
    packed = np.packbits(np.random.default_rng(n).random(n + 24) < 0.5)
    for start in sorted({0, 1, 3, 7, 8, 13, 21}):
        out, one = _empty_out(n, dtype)
        out.fill(7)  # every element must be written
        bits.unpack_bits(packed, start, n, out, one=one)
        assert np.array_equal(out.view(np.uint8), _unpack_reference(packed, start, n, dtype).view(np.uint8)), start


@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_at_odd_offsets(dtype):
    """Views starting at odd bytes / elements: the unaligned word loads and stores."""
    t = _values(3000, dtype, seed=3)
    src = _kernel_input(t)[5:]  # input starting 5 elements in
    buf = np.zeros(1 + (src.size + 7) // 8, np.uint8)
    packed = bits.pack_nonzero(src, out=buf[1:])  # output starting at byte 1
    assert buf[0] == 0 and np.array_equal(packed, np.packbits((t[5:] != 0).numpy()))
    out, one = _empty_out(src.size + 1, dtype)
    bits.unpack_bits(packed, 0, src.size, out[1:], one=one)
    assert np.array_equal(out[1:], _unpack_reference(packed, 0, src.size, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_thread_counts_give_the_same_bytes(dtype, threads, monkeypatch):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has one thread here")
    monkeypatch.setattr(bits, "BLOCK_WORDS", 3)  # many blocks, uneven split over the threads
    t = _values(64 * 3 * 11 + 37, dtype, seed=11)
    results = []
    for n in (1, 2):
        threads(n)
        packed = bits.pack_nonzero(_kernel_input(t))
        out, one = _empty_out(t.numel() - 3, dtype)
        bits.unpack_bits(packed, 3, t.numel() - 3, out, one=one)
        results.append((packed, out))
    assert np.array_equal(results[0][0], results[1][0]) and np.array_equal(results[0][0], np.packbits((t != 0).numpy()))
    assert np.array_equal(results[0][1], results[1][1])
    assert np.array_equal(results[0][1], _unpack_reference(results[0][0], 3, t.numel() - 3, dtype))


@pytest.mark.parametrize("kernel_threads", [1, None])
@pytest.mark.parametrize("dtype", DTYPES)
def test_spike_inputs_pack_and_unpack(dtype, kernel_threads, monkeypatch):
    """neuro.nn.spike_inputs on the kernel path: the packbits bytes, rows unpacked in every dtype."""
    monkeypatch.setattr(spike_inputs, "CHUNK_BYTES", 4 * 8 * 37)  # chunks of 8 rows of 37
    monkeypatch.setattr(spike_inputs, "KERNEL_THREADS", kernel_threads)
    threads_before = numba.get_num_threads()
    rows, shape = 43, (43, 37)
    g = torch.Generator().manual_seed(5)
    s = torch.where(torch.rand(shape, generator=g) < 0.3, 1.0, -0.0).to(getattr(torch, dtype))
    p = spike_inputs._pack(s)
    assert np.array_equal(p.numpy(), np.packbits((s != 0).numpy().reshape(-1)))
    assert np.array_equal(p.numpy(), spike_inputs._pack(s.t().contiguous().t()).numpy())  # the NumPy path
    for out_dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        for start, stop in ((0, rows), (8, 16), (16, rows)):
            got = spike_inputs._unpack(p, s.shape, start, stop, out_dtype)
            assert got.dtype == out_dtype and torch.equal(got, (s[start:stop] != 0).to(out_dtype))
    assert numba.get_num_threads() == threads_before  # restored


def test_bad_input_errors():
    with pytest.raises(TypeError, match="float16, float32, float64 or uint16"):
        bits.pack_nonzero(np.zeros(8, np.int32))
    with pytest.raises(ValueError, match="C-contiguous"):
        bits.pack_nonzero(np.zeros(16, np.float32)[::2])
    with pytest.raises(ValueError, match="uint8 of 2 elements"):
        bits.pack_nonzero(np.zeros(9, np.float32), out=np.empty(1, np.uint8))
    packed = np.zeros(2, np.uint8)
    with pytest.raises(ValueError, match="outside the 16 bits"):
        bits.unpack_bits(packed, 9, 8, np.empty(8, np.float32))
    with pytest.raises(ValueError, match="fewer than count"):
        bits.unpack_bits(packed, 0, 8, np.empty(4, np.float32))
    with pytest.raises(ValueError, match="F16_ONE"):
        bits.unpack_bits(packed, 0, 8, np.empty(8, np.uint16))
    with pytest.raises(TypeError, match="packed must be uint8"):
        bits.unpack_bits(packed.view(np.int8), 0, 8, np.empty(8, np.float32))
    with pytest.raises(TypeError, match="got int32"):
        bits.unpack_bits(packed, 0, 8, np.empty(8, np.int32))
