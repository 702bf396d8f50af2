"""The simulator's float32 counter-based draws (neuro.sim.random) have the right distributions.

Each statistic of ``N = 2^20`` draws is compared with its exact value within 5 standard errors computed from ``N``
and the distribution's own moments (uniform: mean 1/2, variance 1/12, fourth central moment 1/80; Poisson(lam):
mean and variance lam, fourth central moment lam (1 + 3 lam)), and the Poisson probabilities with
``exp(-lam) lam^k / k!`` from the math module. The draws are deterministic (fixed seeds), so the test does not
flake; a 5-sigma band fails a correct generator with probability below 1e-6 per statistic."""

import math

import numba
import numpy as np
import pytest

from neuro.sim.random import POISSON_KMAX, poisson_cdf, poisson_table, uniform

N = 1 << 20
Z = 5.0  # standard errors allowed


@numba.njit(cache=False)
def _uniforms(seed, n):
    out = np.empty(n, np.float32)
    for c in range(n):
        out[c] = uniform(seed, c)
    return out


@numba.njit(cache=False)
def _counts(seed, n, cdf):
    out = np.empty(n, np.int64)
    for c in range(n):
        out[c] = poisson_table(seed, c, cdf)
    return out


def _within(value, expected, se, what):
    assert abs(value - expected) <= Z * se, f"{what}: {value} vs {expected} (5 SE = {Z * se:.3g})"


def test_uniform_range_grid_mean_variance():
    u = _uniforms(12345, N)
    assert u.dtype == np.float32
    assert u.min() >= 0.0 and u.max() < 1.0
    k = u.astype(np.float64) * 2.0**24
    np.testing.assert_array_equal(k, np.floor(k))  # the top 24 bits, exactly: a grid of 2^-24
    d = u.astype(np.float64)
    _within(d.mean(), 0.5, math.sqrt(1 / 12 / N), "uniform mean")
    _within(d.var(), 1 / 12, math.sqrt((1 / 80 - 1 / 144) / N), "uniform variance")
    counts = np.bincount((d * 16).astype(int), minlength=16)  # 16 equal bins, each binomial(N, 1/16)
    for b, c in enumerate(counts):
        _within(c / N, 1 / 16, math.sqrt(15 / 256 / N), f"bin {b}")


def test_uniform_streams_are_uncorrelated():
    """Neighbouring counters (neurons of one step) and neighbouring seeds (drives of two populations) give
    independent streams: correlations within 5 / sqrt(N) of 0."""
    a = _uniforms(7, N + 1).astype(np.float64)
    b = _uniforms(8, N).astype(np.float64)
    se = 1 / math.sqrt(N)
    _within(np.corrcoef(a[:-1], a[1:])[0, 1], 0.0, se, "lag-1 correlation")
    _within(np.corrcoef(a[:-1], b)[0, 1], 0.0, se, "seed-to-seed correlation")


@pytest.mark.parametrize("lam", [0.001, 0.05, 0.5, 3.0])
def test_poisson_mean_variance_and_probabilities(lam):
    k = _counts(99, N, poisson_cdf(lam))
    _within(k.mean(), lam, math.sqrt(lam / N), f"mean at lam={lam}")
    _within(k.var(), lam, math.sqrt((lam + 2 * lam * lam) / N), f"variance at lam={lam}")
    freq = np.bincount(k) / N
    for j in range(int(lam + 6 * math.sqrt(lam)) + 2):
        p = math.exp(-lam) * lam**j / math.factorial(j)
        _within(freq[j] if j < len(freq) else 0.0, p, math.sqrt(max(p * (1 - p), 1 / N) / N), f"P(k={j}) at {lam}")


@pytest.mark.parametrize("lam", [0.001, 0.5, 3.0, 40.0, 700.0])
def test_cdf_table_is_float32_rounded_and_ends_at_one(lam):
    cdf = poisson_cdf(lam)
    assert cdf.dtype == np.float32 and cdf[-1] == 1.0 and len(cdf) <= POISSON_KMAX + 1
    assert np.all(np.diff(cdf) >= 0)
    ref = np.cumsum([math.exp(j * math.log(lam) - lam - math.lgamma(j + 1)) for j in range(len(cdf))])
    # every entry but the last is the exact cdf rounded once to float32 (within one float32 ulp of it)
    np.testing.assert_allclose(cdf[:-1], ref[:-1], rtol=2.0**-23, atol=2.0**-40)
    assert 1.0 - ref[-1] <= 2.0**-24  # the mass cut off by ending the table at 1


def test_zero_rate_never_fires_and_bad_lam_is_refused():
    assert poisson_cdf(0.0).tolist() == [1.0]
    assert _counts(3, 1000, poisson_cdf(0.0)).max() == 0
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite and >= 0"):
            poisson_cdf(bad)
    with pytest.raises(ValueError, match="too large for the inversion table"):
        poisson_cdf(990.0)
