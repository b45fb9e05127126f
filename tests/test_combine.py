"""The Cauchy combination test (ACAT) against a direct high-precision computation."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from scipy import stats

from gwas_models.analysis.combine import ACAT_LARGEST_P, cauchy_combination, combine_evidence


def _direct(neg_log10_p: list[float]) -> mpmath.mpf:
    """-log10 of the ACAT p, straight from its definition in 60-digit arithmetic.

    tan(π (0.5 - p)) is written cot(π p), and 1/2 - arctan(T)/π as arctan(1/T)/π for T > 0: the
    same numbers, so that p = 1e-1000 keeps its digits.
    """
    with mpmath.workdps(60):
        p = [min(mpmath.power(10, -mpmath.mpf(x)), mpmath.mpf(ACAT_LARGEST_P)) for x in neg_log10_p]
        statistic = sum(mpmath.cot(mpmath.pi * v) for v in p) / len(p)
        if statistic > 0:
            combined = mpmath.atan(1 / statistic) / mpmath.pi
        else:
            combined = mpmath.mpf(0.5) - mpmath.atan(statistic) / mpmath.pi
        return -mpmath.log10(combined)


@pytest.mark.parametrize(
    "p",
    [
        [0.01, 0.02],
        [0.5, 0.9, 0.3],
        [0.2, 0.4, 0.6, 0.8],
        [1e-20, 0.5],
        [1e-16, 2e-16, 0.3],
        [0.999999, 1e-8],
        [1.0, 0.03],
        [0.7],
        [3e-5, 4e-5, 0.02, 0.6, 0.99],
    ],
)
def test_equals_the_definition_computed_directly(p):
    neg_log10_p = -np.log10(np.asarray(p, dtype=np.float64))
    combined_p, combined_neg_log10_p = cauchy_combination(neg_log10_p[:, None])
    expected = _direct(list(neg_log10_p))
    assert combined_neg_log10_p[0] == pytest.approx(float(expected), rel=1e-12, abs=1e-14)
    assert combined_p[0] == pytest.approx(float(mpmath.power(10, -expected)), rel=1e-12)


def test_a_hand_computed_case():
    """p = 0.01 and 0.02: T = (cot(0.01 π) + cot(0.02 π)) / 2 = (31.8205 + 15.8945) / 2 = 23.8575,
    and P(C > T) = 1/2 - arctan(T) / π = 0.0133343. (scipy's combine_pvalues has no Cauchy method.)"""
    p, _ = cauchy_combination(-np.log10([[0.01], [0.02]]))
    assert p[0] == pytest.approx(0.013334308429863512, rel=1e-13)
    statistic = (1 / np.tan(np.pi * 0.01) + 1 / np.tan(np.pi * 0.02)) / 2
    assert p[0] == pytest.approx(stats.cauchy.sf(statistic), rel=1e-12)
    assert "cauchy" not in combine_pvalues_methods()


def combine_pvalues_methods() -> str:
    return (stats.combine_pvalues.__doc__ or "").lower().split("method :")[1].split("\n")[0]


def test_stays_exact_far_below_the_smallest_double():
    # Two tests at p = 1e-400: identical tests combine to the same p (T is their common value).
    _, neg_log10_p = cauchy_combination(np.array([[400.0], [400.0]]))
    assert neg_log10_p[0] == pytest.approx(400.0, rel=1e-14)
    # 1e-400 and 1e-5: T ≈ 1 / (2 π 1e-400), so p = 2e-400.
    p, neg_log10_p = cauchy_combination(np.array([[400.0, 1000.0], [5.0, 3.0]]))
    assert neg_log10_p[0] == pytest.approx(400 - np.log10(2.0), rel=1e-14)
    assert neg_log10_p[1] == pytest.approx(float(_direct([1000.0, 3.0])), rel=1e-14)
    assert p[0] == 0.0 and np.isfinite(neg_log10_p).all()  # p underflows, its -log10 does not


def test_skips_untested_entries_and_keeps_single_tests_and_identical_tests_as_they_are():
    neg_log10_p = np.array([[2.0, np.nan, 0.5, np.nan], [2.0, 3.0, np.nan, np.nan]])
    p, combined = cauchy_combination(neg_log10_p)
    np.testing.assert_allclose(combined[:3], [2.0, 3.0, 0.5], rtol=1e-12)  # identical, single, single
    assert np.isnan(p[3]) and np.isnan(combined[3])
    evidence = combine_evidence(neg_log10_p)
    np.testing.assert_allclose(evidence.mean_neg_log10_p[:3], [2.0, 3.0, 0.5])
    np.testing.assert_array_equal(evidence.count, [2, 1, 1, 0])


def test_is_a_p_value_for_independent_and_for_identical_tests():
    """Under the null, the mean of independent (or identical) standard Cauchy variables is standard
    Cauchy: the combined p is uniform."""
    rng = np.random.default_rng(0)
    independent = rng.uniform(size=(5, 200_000))
    identical = np.repeat(rng.uniform(size=(1, 200_000)), 5, axis=0)
    for p in (independent, identical):
        combined, _ = cauchy_combination(-np.log10(p))
        for level in (0.5, 0.05, 0.01, 0.001):
            share = np.mean(combined <= level)
            assert abs(share - level) <= 4 * np.sqrt(level * (1 - level) / 200_000) + 0.001 * level
