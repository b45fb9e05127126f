"""limma's empirical-Bayes moderated t: per-example variances that borrow strength across examples.

With few runs per architecture, each example's sample variance is noisy, and an ordinary t-test
pays for that noise with few degrees of freedom. When the examples are many and their variances
vary smoothly, they can share what they say about variances: the moderated t of limma (Smyth
2004) takes every example's residual variance ``s²`` (with ``d`` degrees of freedom) as a draw from
a scaled inverse chi-square prior ``(d0, s0²)`` fitted across all the examples, and replaces it by
the posterior variance::

    s̃² = (d0 s0² + d s²) / (d0 + d),   t̃ = BETA / (s̃ · u),   df = d0 + d

where ``u`` is the unscaled standard error of BETA (``sqrt(1/n_a + 1/n_b)``; paired:
``sqrt(1/n_pairs)``). The moderation is a step after an ordinary fit, as limma's ``eBayes`` comes
after ``lmFit``: :func:`moderate` takes Student's pooled-variance test (two groups,
``d = n_a + n_b - 2``, what ``lmFit`` gives for a two-group design) or the paired test (one-sample
on the differences B - A, ``d = n_pairs - 1``) from
:func:`~gwas_models.analysis.association.two_sample_test` and returns the same
:class:`~gwas_models.analysis.association.TwoSampleResult` with the moderated ``SE``, ``T_STAT``,
``DF`` and p, plus the fitted :class:`VariancePrior`.

How limma's corner cases are handled:

* ``d0 = ∞``: when the log-variances spread no more than sampling alone explains, the prior is
  exact: every example gets ``s̃² = s0²``, the mean of the (floored) variances, and, as in limma, the degrees
  of freedom are capped at the residual df summed over the examples (``df = min(d0 + d, Σ d)``, a
  cap that also applies to a finite but huge ``d0``).
* zero variances: :func:`fit_variance_prior` does what limma's ``fitFDist`` does (variances below
  ``1e-5`` times their median are raised to it; a zero median counts as 1). In a study, though, a
  zero pooled variance means both groups are constant (``ERRCODE`` CONST), and such examples, like
  every example set aside (CONST, FEW_RUNS, NAN), take no part in the prior and keep their code.
* missing runs: each example has its own ``n_a``, ``n_b`` and so its own ``d`` (limma's unequal
  residual df); the prior is fitted with the per-example ``d``, all vectorised.

Reference: G. K. Smyth (2004), "Linear models and empirical Bayes methods for assessing
differential expression in microarray experiments", Statistical Applications in Genetics and
Molecular Biology 3(1), article 3; limma's ``squeezeVar``, ``fitFDist`` and ``eBayes``. The
results equal limma's to about 1e-12 (``tests/test_moderated.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import special

from gwas_models.analysis._logspace import t_pvalue
from gwas_models.analysis.association import NAN, TwoSampleResult, set_untested, two_sample_test
from gwas_models.errors import InputError

#: Variances below this fraction of their median are raised to it before taking logs (limma's
#: ``fitFDist``): a near-zero variance would otherwise dominate the spread of the log-variances.
VARIANCE_FLOOR = 1e-5

# Where trigamma(y) = x is solved: below _SMALL_TRIGAMMA, y = 0.5 + 1/x is already the root to
# x²/12 relative (trigamma(y) = 1/y + 1/(2y²) + 1/(6y³) + ...), and Newton's steps would divide by
# polygamma(2, y) ~ -1/y², which underflows for tiny x. Above _LARGE_TRIGAMMA, Newton starts from
# y = 1/sqrt(x) (trigamma(y) ~ 1/y² as y -> 0), which it refines in one or two steps, instead of
# the dozens it needs from 0.5 + 1/x. limma stops at these two asymptotes (y = 1/x, 1/sqrt(x)),
# which are off by up to 5e-7 at the bounds; the roots here are exact to rounding everywhere.
_SMALL_TRIGAMMA = 1e-6
_LARGE_TRIGAMMA = 1e7
_NEWTON_TOLERANCE = 1e-14
_NEWTON_MAX_STEPS = 50


@dataclass(frozen=True)
class VariancePrior:
    """The prior of the per-example variances, fitted across examples (Smyth 2004).

    Attributes
    ----------
    df : float
        Prior degrees of freedom ``d0``: how many residual df's worth of information the prior
        adds to each example; ``inf`` when the variances are all alike (every example then gets
        ``var``), 0 when there is nothing to pool (a single example).
    var : float
        Prior variance ``s0²``, the typical variance of an example (paired: of the differences
        B - A, twice the residual variance of limma's blocked ``~pair + group`` design).
    n_examples : int
        Examples the prior was fitted on.
    """

    df: float
    var: float
    n_examples: int

    def describe(self) -> str:
        """``prior degrees of freedom d0 = ..., prior variance s0^2 = ...`` in one line."""
        df = "inf (variances all alike: every example gets s0^2)" if np.isinf(self.df) else f"{self.df:.4g}"
        return f"prior degrees of freedom d0 = {df}, prior variance s0^2 = {self.var:.6g} (from {self.n_examples} examples)"


@dataclass(frozen=True)
class ModeratedResult:
    """A moderated t-test of every example, and the prior it used.

    Attributes
    ----------
    result : TwoSampleResult
        ``test`` is ``"moderated"`` (or ``"moderated_paired"``); ``se`` the moderated standard
        error ``s̃ · u``, ``t_stat`` the moderated t, ``df`` the total ``min(d0 + d, Σ d)``. The
        examples set aside keep their error code and the ordinary fit's ``se``.
    prior : VariancePrior
    """

    result: TwoSampleResult
    prior: VariancePrior


# --------------------------------------------------------------------------------------------
# The prior
# --------------------------------------------------------------------------------------------


def trigamma_inverse(x: np.ndarray) -> np.ndarray:
    """The ``y > 0`` with ``trigamma(y) = x``, for every ``x > 0``.

    Newton's method (Smyth 2004, Appendix), started at ``0.5 + 1/x``, from which it decreases
    monotonically to the root (for ``x > 1e7``, at ``1/sqrt(x)``, next to it), run until the step
    is below 1e-14 of ``y``. Every root is exact to rounding, where limma's ``trigammaInverse``
    uses the asymptotes ``1/x`` below ``x = 1e-6`` and ``1/sqrt(x)`` above ``1e7`` (off by up to
    5e-7 relative there: prior df above 2e6 or below 2e-3, where they make no difference to t).

    Parameters
    ----------
    x : array of positive floats

    Returns
    -------
    float array of the same shape (NaN where ``x`` is NaN or negative).
    """
    x = np.asarray(x, dtype=np.float64)
    shape = x.shape
    x = x.ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.where(x > _LARGE_TRIGAMMA, 1.0 / np.sqrt(x), 0.5 + 1.0 / x)
    y = np.where(np.isnan(x) | (x < 0), np.nan, y)
    solve = (x >= _SMALL_TRIGAMMA) & np.isfinite(x)
    # The loop runs over Newton steps (a handful), never over examples.
    for _ in range(_NEWTON_MAX_STEPS):
        if not solve.any():
            break
        current = y[solve]
        trigamma = special.polygamma(1, current)
        step = trigamma * (1.0 - trigamma / x[solve]) / special.polygamma(2, current)
        y[solve] = current + step
        solve[solve] = np.abs(step) > _NEWTON_TOLERANCE * current
    return y.reshape(shape)


def fit_variance_prior(variances: np.ndarray, df: np.ndarray | float) -> VariancePrior:
    """Fit the scaled inverse chi-square prior ``(d0, s0²)`` of per-example variances.

    limma's ``fitFDist`` without covariate (Smyth 2004, section 6.2): the method of moments on
    ``log s²``, whose expectation and variance under the prior are
    ``log s0² + digamma(d/2) - log(d/2) - digamma(d0/2) + log(d0/2)`` and
    ``trigamma(d/2) + trigamma(d0/2)``.

    Parameters
    ----------
    variances : float array (n,)
        Residual variances ``s²``, finite and non-negative. Those below :data:`VARIANCE_FLOOR`
        times their median are raised to it (a zero median counts as 1), as in limma.
    df : float array (n,) or float
        Residual degrees of freedom ``d`` of each variance (positive).

    Returns
    -------
    VariancePrior
        ``df = inf`` and ``var`` the mean (floored) variance when the log-variances vary no more
        than their sampling variance explains; ``df = 0`` and ``var`` the variance itself for a
        single example.

    Raises
    ------
    InputError
        No variance, a non-finite or negative one, or a df that is not positive.
    """
    variances = np.asarray(variances, dtype=np.float64).ravel()
    df = np.broadcast_to(np.asarray(df, dtype=np.float64), variances.shape)
    if variances.size == 0:
        raise InputError("variances is empty: a variance prior needs at least one example with a variance", parameter="variances")
    if not (np.isfinite(variances).all() and (variances >= 0).all()):
        raise InputError("variances must be finite and non-negative", parameter="variances")
    if not (np.isfinite(df).all() and (df > 0).all()):
        raise InputError("df must be finite and positive", parameter="df")
    if variances.size == 1:
        return VariancePrior(df=0.0, var=float(variances[0]), n_examples=1)
    median = float(np.median(variances))
    floored = np.maximum(variances, VARIANCE_FLOOR * (median if median > 0 else 1.0))
    half_df = df / 2.0
    # log s² minus its expectation's df-dependent part: mean log s0² - (digamma - log)(d0/2).
    centred = np.log(floored) - _per_distinct(lambda h: special.digamma(h) - np.log(h), half_df)
    mean = float(centred.mean())
    excess = float(centred.var(ddof=1) - _per_distinct(lambda h: special.polygamma(1, h), half_df).mean())
    if excess <= 0:
        return VariancePrior(df=np.inf, var=float(floored.mean()), n_examples=variances.size)
    prior_df = float(2.0 * trigamma_inverse(excess))
    half_prior = prior_df / 2.0
    prior_var = float(np.exp(mean + special.digamma(half_prior) - np.log(half_prior)))
    return VariancePrior(df=prior_df, var=prior_var, n_examples=variances.size)


def _per_distinct(function, values: np.ndarray) -> np.ndarray:
    """``function(values)``, evaluated once per distinct value: the residual df take a few values
    over a million examples, and scipy's polygamma costs 0.2 s per million."""
    if values.size and (values == values[0]).all():  # no missing runs: one df for every example
        return np.full(values.shape, function(values[:1])[0])
    distinct, index = np.unique(values, return_inverse=True)
    return function(distinct)[index.reshape(values.shape)]


def posterior_variance(variances: np.ndarray, df: np.ndarray | float, prior: VariancePrior) -> np.ndarray:
    """Posterior variances ``(d0 s0² + d s²) / (d0 + d)``; ``s0²`` everywhere when ``d0 = ∞``.

    Parameters
    ----------
    variances, df : float arrays of the same shape
    prior : VariancePrior
    """
    variances = np.asarray(variances, dtype=np.float64)
    if np.isinf(prior.df):
        return np.full(variances.shape, prior.var)
    df = np.asarray(df, dtype=np.float64)
    return (prior.df * prior.var + df * variances) / (prior.df + df)


# --------------------------------------------------------------------------------------------
# The test
# --------------------------------------------------------------------------------------------


def moderate(ordinary: TwoSampleResult) -> ModeratedResult:
    """Moderate a Student's or paired t-test result: limma's ``eBayes`` after ``lmFit``.

    Parameters
    ----------
    ordinary : TwoSampleResult
        Of ``test="student"`` (pooled variance) or ``"paired"``, from
        :func:`~gwas_models.analysis.association.two_sample_test`, possibly with more examples
        set aside (:func:`~gwas_models.analysis.association.set_untested`). Only the examples it
        tested take part in the prior.

    Returns
    -------
    ModeratedResult

    Raises
    ------
    InputError
        A Welch result (its variance is not a residual variance with known df), or no example
        tested (all constant or missing): there is no variance to fit a prior on.
    """
    if ordinary.test not in ("student", "paired"):
        raise InputError(f"test of the result to moderate must be student or paired, got {ordinary.test!r}", parameter="test")
    tested = ordinary.tested
    if not tested.any():
        raise InputError(
            f"no example of the {ordinary.n_examples} could be tested (each is constant or lacks runs): "
            "the moderated t has no variance to fit its prior on"
        )
    unscaled_var = _unscaled_variance(ordinary)
    residual_df = ordinary.df[tested]
    # The ordinary SE is s · u, so s² = SE² / u²: s² of the pooled (or paired) fit, with its df.
    residual_var = ordinary.se[tested] ** 2 / unscaled_var[tested]
    prior = fit_variance_prior(residual_var, residual_df)
    se = ordinary.se.copy()
    se[tested] = np.sqrt(posterior_variance(residual_var, residual_df, prior) * unscaled_var[tested])
    # limma caps the total df at the pooled residual df: with d0 = ∞ the posterior variance is
    # known no better than from all the examples' residuals together.
    df = np.full(ordinary.n_examples, np.nan)
    df[tested] = np.minimum(residual_df + prior.df, residual_df.sum())
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        t_stat = np.where(tested, ordinary.beta / se, np.nan)
    p, neg_log10_p = t_pvalue(t_stat, df)
    result = replace(
        ordinary,
        test="moderated_paired" if ordinary.test == "paired" else "moderated",
        se=se,
        t_stat=t_stat,
        df=df,
        p=p,
        neg_log10_p=neg_log10_p,
    )
    result = set_untested(result, ~(np.isfinite(t_stat) & np.isfinite(p) & np.isfinite(neg_log10_p)), NAN)
    return ModeratedResult(result=result, prior=prior)


def moderated_test(
    values_a: np.ndarray,
    values_b: np.ndarray,
    *,
    paired: bool = False,
    names: tuple[str, str] = ("A", "B"),
) -> ModeratedResult:
    """limma's moderated t of every example (column) between the runs of A and of B.

    Parameters
    ----------
    values_a : array (n_runs_a, n_examples)
        Scores of the runs of architecture A; non-finite scores are missing.
    values_b : array (n_runs_b, n_examples)
        Scores of the runs of architecture B, same examples in the same order.
    paired : bool
        Row i of A and row i of B share a seed: moderate the one-sample t of the differences
        B - A (``d = n_pairs - 1``) instead of the pooled two-sample t (``d = n_a + n_b - 2``).
    names : (str, str)
        Group names used in error messages.

    Returns
    -------
    ModeratedResult
        Equal to limma's ``eBayes(lmFit(...))`` on the ``~group`` design (paired: ``~pair +
        group``) over the examples tested: ``t_stat`` = ``t``, ``df`` = ``df.total``, ``p`` =
        ``p.value``, ``prior`` = (``df.prior``, ``s2.prior``; paired: twice it, the variance of
        the differences).

    Raises
    ------
    InputError
        Mismatched shapes, a group with fewer than two runs, or no example that can be tested.

    References
    ----------
    Smyth, G. K. (2004). Linear models and empirical Bayes methods for assessing differential
    expression in microarray experiments. Statistical Applications in Genetics and Molecular
    Biology 3(1), article 3.
    """
    return moderate(two_sample_test(values_a, values_b, "paired" if paired else "student", names=names))


def _unscaled_variance(result: TwoSampleResult) -> np.ndarray:
    """``u²``, the variance of BETA per unit residual variance: ``1/n_a + 1/n_b`` (paired: ``1/n``)."""
    n_a = result.n_a.astype(np.float64)
    with np.errstate(divide="ignore"):
        if result.test == "paired":
            return 1.0 / n_a
        return 1.0 / n_a + 1.0 / result.n_b.astype(np.float64)
