"""Combining the evidence of one example over several tests (its scores, or every pair and score).

The scores of one example are strongly correlated (loss, margin and confidence all move when an
example gets harder), so the tests of one example are far from independent and neither Fisher's
method nor the paper's geometric mean of p is a p-value. Two summaries are kept:

* the **Cauchy combination test** (ACAT; Liu & Xie 2020, *JASA* 115:393-402), a p-value that holds
  under arbitrary dependence between the tests: with equal weights,
  ``T = mean_i tan(π (0.5 - p_i))`` and ``p = P(C > T)`` for a standard Cauchy ``C``. Each term is
  standard Cauchy under its null; a mean of standard Cauchy variables is standard Cauchy when they
  are independent or identical, and has the same tail whatever their dependence (the tail is what
  a small p is about). It is the ``P`` of the ``combined`` rows, so they can be adjusted and
  thresholded like any score;
* the **mean of -log10 p** (-log10 of the geometric mean p, the paper's summary): a ranking of the
  examples, kept as ``MEAN_NEG_LOG10_P``; the paper's figures and the gallery rank by it.

Both are computed from -log10 p, which stays finite where p underflows, and ACAT in log space
where p is tiny: ``tan(π (0.5 - p)) = 1 / tan(π p) ≈ 1 / (π p)`` for p < 1e-15, and the survival
function of a huge T is ``arctan(1/T) / π ≈ 1 / (π T)``, so a combined p of 1e-400 is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from gwas_models.analysis.association import mean_neg_log10_p

_LN10 = np.log(10.0)
_LOG_PI = np.log(np.pi)
# Below this p, tan(π (0.5 - p)) is taken as 1 / (π p) in log space (relative error < 1e-29).
_TINY_NEG_LOG10_P = 15.0
#: p-values above this count as this in the Cauchy combination: tan(π (0.5 - p)) tends to -inf as
#: p tends to 1, so one score with p = 1 (tied means of a discrete score) would drag the combined p
#: to 1 whatever the others say. Raising a p of 0.9995 to 0.999 only matters for p-values that
#: carry no evidence (as in the GRAB package's CCT, which maps p = 1 to 0.999).
ACAT_LARGEST_P = 0.999


@dataclass(frozen=True)
class CombinedEvidence:
    """The combined evidence of every example; arrays of shape (n_examples,).

    Attributes
    ----------
    p, neg_log10_p : float arrays
        Cauchy combination p-value and its -log10 (exact where p underflows); NaN where no test
        was done.
    mean_neg_log10_p : float array
        Mean of -log10 p over the tests done: the paper's ranking, not a p-value.
    count : int array
        Tests combined.
    """

    p: np.ndarray
    neg_log10_p: np.ndarray
    mean_neg_log10_p: np.ndarray
    count: np.ndarray


def combine_evidence(neg_log10_p: np.ndarray) -> CombinedEvidence:
    """Cauchy combination p and mean -log10 p of each example over its tests.

    Parameters
    ----------
    neg_log10_p : array (n_tests, n_examples)
        -log10 p of each test; NaN marks a test that was not done, which is left out.

    Returns
    -------
    CombinedEvidence
    """
    neg_log10_p = np.atleast_2d(np.asarray(neg_log10_p, dtype=np.float64))
    p, combined = cauchy_combination(neg_log10_p)
    mean, count = mean_neg_log10_p(neg_log10_p)
    return CombinedEvidence(p=p, neg_log10_p=combined, mean_neg_log10_p=mean, count=count)


def cauchy_combination(neg_log10_p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cauchy combination test (ACAT) of each column, with equal weights over its finite entries.

    Parameters
    ----------
    neg_log10_p : array (n_tests, n_examples)
        -log10 of the p-values to combine; non-finite entries are left out.

    Returns
    -------
    p, neg_log10_p : float arrays (n_examples,)
        Combined p (0 where it underflows) and its -log10, exact far below 1e-308. NaN where a
        column has no finite entry.

    Notes
    -----
    p-values above :data:`ACAT_LARGEST_P` count as that value. With one test the combined p is
    that test's p (up to rounding, for p at most :data:`ACAT_LARGEST_P`).

    Examples
    --------
    >>> p, _ = cauchy_combination(-np.log10([[0.01], [0.01]]))  # identical tests: the same p
    >>> round(float(p[0]), 12)
    0.01
    """
    x = np.atleast_2d(np.asarray(neg_log10_p, dtype=np.float64))
    finite = np.isfinite(x)
    count = finite.sum(axis=0)
    tiny = finite & (x > _TINY_NEG_LOG10_P)
    ordinary = finite & ~tiny
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        # tan(π (0.5 - p)) = 1 / tan(π p): no cancellation in 0.5 - p for small p.
        p_ordinary = np.minimum(np.power(10.0, -np.where(ordinary, x, 0.0)), ACAT_LARGEST_P)
        sum_ordinary = np.where(ordinary, 1.0 / np.tan(np.pi * p_ordinary), 0.0).sum(axis=0)
        # The tiny p's: log(1 / (π p)) = x ln 10 - ln π, summed in log space (they may overflow).
        log_sum_tiny = special.logsumexp(np.where(tiny, x * _LN10 - _LOG_PI, -np.inf), axis=0)
        has_tiny = tiny.any(axis=0)
        # T = (sum_tiny + sum_ordinary) / count; sum_tiny >= 3e14 outweighs the ordinary terms'
        # negative part (at least -318 each), so T > 0 and log1p's argument exceeds -1.
        log_t = log_sum_tiny + np.log1p(sum_ordinary * np.exp(-log_sum_tiny)) - np.log(count)
        statistic = sum_ordinary / count
        # The Cauchy survival function without cancellation: arctan(1/T)/π for T > 0.
        p_plain = np.where(statistic > 0, np.arctan(1.0 / statistic) / np.pi, 0.5 + np.arctan(-statistic) / np.pi)
        # T >= 3e14 / n_tests when a p is tiny: arctan(1/T) = 1/T to relative 1/(3 T²).
        log_p_tiny = -_LOG_PI - log_t
    log_p = np.where(has_tiny, log_p_tiny, np.log(np.where(has_tiny, 1.0, p_plain)))
    log_p = np.where(count > 0, log_p, np.nan)
    with np.errstate(under="ignore"):
        p = np.exp(log_p)
    return p, -log_p / _LN10
