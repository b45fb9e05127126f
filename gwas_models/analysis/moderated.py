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
from scipy import special, stats

from gwas_models.analysis._logspace import f_pvalue, t_pvalue
from gwas_models.analysis._smoothing import (
    find_root,
    gauss_legendre_unit,
    lowess,
    quantile_type7,
    spline_trend_fit,
)
from gwas_models.analysis.association import NAN, TwoSampleResult, set_untested, two_sample_test
from gwas_models.errors import InputError

#: Variances below this fraction of their median are raised to it before taking logs (limma's
#: ``fitFDist``): a near-zero variance would otherwise dominate the spread of the log-variances.
VARIANCE_FLOOR = 1e-5
#: limma's default tail probabilities winsorised by the robust fit (lower, upper).
WINSOR_TAIL_P = (0.05, 0.1)
# The robust fit: Gauss-Legendre nodes of its winsorised moments, tolerance of its root (limma's).
_QUADRATURE_NODES = 128
_ROOT_TOLERANCE = 1e-8

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
    df : float, or float array (n_examples,) with ``robust``
        Prior degrees of freedom ``d0``: how many residual df's worth of information the prior
        adds to each example; ``inf`` when the variances are all alike (every example then gets
        ``var``), 0 when there is nothing to pool (a single example). With ``robust``, one per
        example (limma's ``df.prior`` of ``eBayes(robust=TRUE)``): ``df_fitted`` for most, less
        for examples whose variance is an outlier.
    var : float, or float array (n_examples,) with ``trend``
        Prior variance ``s0²``, the typical variance of an example (paired: of the differences
        B - A, twice the residual variance of limma's blocked ``~pair + group`` design); with
        ``trend``, one per example, a smooth function of the example's mean score.
    n_examples : int
        Examples the prior was fitted on.
    trend : bool
        ``s0²`` follows the mean score (limma's ``trend=TRUE``).
    robust : bool
        Fitted robustly to outlying variances (limma's ``robust=TRUE``).
    df_fitted : float or None
        With ``robust``, the prior df fitted to the winsorised variances, before each outlier's
        is reduced (limma's ``df2`` of ``fitFDistRobustly``); None otherwise.

    Notes
    -----
    With ``trend`` or ``robust`` the fields are arrays: compare priors field by field
    (``numpy.testing``), not with ``==``.
    """

    df: float | np.ndarray
    var: float | np.ndarray
    n_examples: int
    trend: bool = False
    robust: bool = False
    df_fitted: float | None = None

    def describe(self) -> str:
        """``prior degrees of freedom d0 = ..., prior variance s0^2 = ...`` in one line."""
        if self.robust:
            df_values = np.asarray(self.df, dtype=np.float64)
            fitted = "inf" if np.isinf(self.df_fitted) else f"{self.df_fitted:.4g}"
            reduced = df_values < self.df_fitted
            df = f"{fitted} (robust: {int(reduced.sum())} examples with outlying variances get less"
            df += f", down to {df_values.min():.4g})" if reduced.any() else ")"
        else:
            df = "inf (variances all alike: every example gets s0^2)" if np.isinf(self.df) else f"{self.df:.4g}"
        if self.trend:
            var_values = np.asarray(self.var, dtype=np.float64)
            var = (
                f"follows the mean score (trend), {var_values.min():.6g} to {var_values.max():.6g}, "
                f"median {np.median(var_values):.6g}"
            )
        else:
            var = f"= {self.var:.6g}"
        return f"prior degrees of freedom d0 = {df}, prior variance s0^2 {var} (from {self.n_examples} examples)"


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


def fit_variance_prior(
    variances: np.ndarray,
    df: np.ndarray | float,
    *,
    covariate: np.ndarray | None = None,
    robust: bool = False,
    winsor_tail_p: tuple[float, float] = WINSOR_TAIL_P,
) -> VariancePrior:
    """Fit the scaled inverse chi-square prior ``(d0, s0²)`` of per-example variances.

    limma's ``fitFDist`` (Smyth 2004, section 6.2): the method of moments on ``log s²``, whose
    expectation and variance under the prior are
    ``log s0² + digamma(d/2) - log(d/2) - digamma(d0/2) + log(d0/2)`` and
    ``trigamma(d/2) + trigamma(d0/2)``.

    With a ``covariate`` (limma's ``trend=TRUE``, where it is the mean score of each example),
    the expectation of ``log s²`` is a natural cubic spline of the covariate, fitted by least
    squares with ``1 + [n >= 3] + [n >= 6] + [n >= 30]`` degrees of freedom (at most the number of
    distinct covariate values), so ``s0²`` is one per example; the variance of ``log s²`` is that
    of the spline's residuals.

    With ``robust`` (limma's ``fitFDistRobustly``, Phipson et al. 2016), ``log s²`` is winsorised
    at its ``winsor_tail_p`` quantiles (about its trimmed mean, or with a covariate about a lowess
    trend), ``d0`` is solved so that the winsorised moments of the F distribution match, and each
    example whose variance is improbably large under that prior gets a smaller ``d0`` (so its own
    variance weighs more): ``df`` is then one per example.

    Parameters
    ----------
    variances : float array (n,)
        Residual variances ``s²``, finite and non-negative. Those below :data:`VARIANCE_FLOOR`
        times their median are raised to it (a zero median counts as 1), as in limma.
    df : float array (n,) or float
        Residual degrees of freedom ``d`` of each variance (positive).
    covariate : float array (n,), optional
        A finite value per variance that its expectation follows (the mean score: trend).
    robust : bool
        Fit robustly to outlying variances.
    winsor_tail_p : (float, float)
        With ``robust``, the lower and upper tail probabilities winsorised (limma's default
        0.05, 0.1).

    Returns
    -------
    VariancePrior
        ``df = inf`` and ``var`` the mean (floored) variance (with a covariate, the fitted trend)
        when the log-variances vary no more than their sampling variance explains; ``df = 0``
        and ``var`` the variance itself for a single example.

    Raises
    ------
    InputError
        No variance, a non-finite or negative one, or a df that is not positive; a covariate
        of another length or not finite; ``robust`` with a median variance of 0.

    References
    ----------
    B. Phipson, S. Lee, I. J. Majewski, W. S. Alexander, G. K. Smyth (2016), "Robust
    hyperparameter estimation protects against hypervariable genes and improves power to detect
    differential expression", Annals of Applied Statistics 10(2), 946-963.
    """
    variances = np.asarray(variances, dtype=np.float64).ravel()
    df = np.broadcast_to(np.asarray(df, dtype=np.float64), variances.shape)
    if variances.size == 0:
        raise InputError("variances is empty: a variance prior needs at least one example with a variance", parameter="variances")
    if not (np.isfinite(variances).all() and (variances >= 0).all()):
        raise InputError("variances must be finite and non-negative", parameter="variances")
    if not (np.isfinite(df).all() and (df > 0).all()):
        raise InputError("df must be finite and positive", parameter="df")
    if covariate is not None:
        covariate = np.asarray(covariate, dtype=np.float64).ravel()
        if covariate.shape != variances.shape or not np.isfinite(covariate).all():
            raise InputError(f"covariate must hold a finite value per variance ({variances.size})", parameter="covariate")
    trend = covariate is not None
    if variances.size == 1:
        var = np.array([variances[0]]) if trend else float(variances[0])
        df0 = np.zeros(1) if robust else 0.0
        return VariancePrior(df=df0, var=var, n_examples=1, trend=trend, robust=robust, df_fitted=0.0 if robust else None)
    if robust:
        scale, df_fitted, df_prior = _fit_robustly(variances, df, covariate, winsor_tail_p)
    else:
        scale, df_fitted = _fit(variances, df, covariate)
        df_prior = df_fitted
    if trend:
        scale = np.broadcast_to(scale, variances.shape).copy()
    else:
        scale = float(scale)
    return VariancePrior(
        df=df_prior, var=scale, n_examples=variances.size, trend=trend, robust=robust, df_fitted=float(df_fitted) if robust else None
    )


def _fit(variances: np.ndarray, df: np.ndarray, covariate: np.ndarray | None) -> tuple[float | np.ndarray, float]:
    """limma's ``fitFDist`` of at least two valid variances: ``(s0², d0)``, ``s0²`` one per
    variance with a covariate (its spline trend)."""
    n = variances.size
    spline_df = 1
    if covariate is not None:
        spline_df = min(1 + (n >= 3) + (n >= 6) + (n >= 30), len(np.unique(covariate)))
    median = float(np.median(variances))
    floored = np.maximum(variances, VARIANCE_FLOOR * (median if median > 0 else 1.0))
    half_df = df / 2.0
    # log s² minus its expectation's df-dependent part: mean log s0² - (digamma - log)(d0/2).
    centred = np.log(floored) - _per_distinct(lambda h: special.digamma(h) - np.log(h), half_df)
    if spline_df < 2:  # no covariate, or too few distinct values for a trend: one s0² for all
        mean = float(centred.mean())
        spread = float(centred.var(ddof=1))
    else:
        mean, rank = spline_trend_fit(covariate, spline_df, centred)
        spread = float(np.sum((centred - mean) ** 2) / (n - rank))
    excess = spread - float(_per_distinct(lambda h: special.polygamma(1, h), half_df).mean())
    if excess <= 0:
        return (float(floored.mean()) if spline_df < 2 else np.exp(mean)), np.inf
    prior_df = float(2.0 * trigamma_inverse(excess))
    half_prior = prior_df / 2.0
    return np.exp(mean + special.digamma(half_prior) - np.log(half_prior)), prior_df


def _fit_robustly(
    variances: np.ndarray, df: np.ndarray, covariate: np.ndarray | None, winsor_tail_p: tuple[float, float]
) -> tuple[float | np.ndarray, float, np.ndarray]:
    """limma's ``fitFDistRobustly`` of at least two valid variances: ``(s0², d0, d0 per variance)``.

    The steps: the variances of examples with fewer residual df are first mapped to the largest df
    at the same F tail probability; ``log s²`` is winsorised about its 10%-trimmed mean (or a
    lowess trend of the covariate, span 0.4); ``d0`` solves ``log(winsorised variance / its
    expectation under F(d, d0)) = 0`` on the scale ``d0 / (1 + d0)`` (Brent, tolerance 1e-8, from
    the non-robust ``d0`` up), the expectation by 128-point Gauss-Legendre quadrature; then each
    example's ``d0`` is reduced by its probability of being an outlier (its F tail probability
    against its empirical one), made monotone in that tail probability.
    """
    n = variances.size
    if n == 2:
        scale, df_fitted = _fit(variances, df, covariate)
        return scale, df_fitted, np.full(n, df_fitted)
    median = float(np.median(variances))
    if median <= 0:
        raise InputError(
            "variances are mostly zero: the robust variance prior needs a positive median variance", parameter="variances"
        )
    x = np.maximum(variances, median * 1e-12)
    scale, df_fitted = _fit(x, df, covariate)
    tail = np.broadcast_to(np.asarray(winsor_tail_p, dtype=np.float64), (2,))
    if (tail < 1.0 / n).all():  # too few variances to winsorise any
        return scale, df_fitted, np.full(n, df_fitted)
    df1 = float(df.max())
    fewer = df < df1 - 1e-14
    if fewer.any():  # the same F tail probability at the largest residual df
        s = scale[fewer] if np.ndim(scale) else scale
        f = x[fewer] / s
        log_upper = _f_log_sf(f, df[fewer], df_fitted)
        log_lower = _f_log_cdf(f, df[fewer], df_fitted)
        upper = log_upper < log_lower
        f = np.where(
            upper,
            _f_quantile(np.exp(log_upper), df1, df_fitted, upper_tail=True),
            _f_quantile(np.exp(log_lower), df1, df_fitted, upper_tail=False),
        )
        x = x.copy()
        x[fewer] = f * s
    z = np.log(x)
    if covariate is None:
        level = _trimmed_mean(z, tail[1])
    else:
        level = lowess(covariate, z, span=0.4, iterations=4)
    residual = z - level
    low, high = quantile_type7(residual, np.array([tail[0], 1.0 - tail[1]]))
    winsorised = np.clip(residual, low, high)
    winsorised_mean = float(winsorised.mean())
    winsorised_var = float(np.mean((winsorised - winsorised_mean) ** 2) * n / (n - 1))
    nodes, weights = gauss_legendre_unit(_QUADRATURE_NODES)

    def moments(df2: float) -> tuple[float, float]:
        """Mean and variance of log F(df1, df2) winsorised at the tail probabilities."""
        quantiles = np.array(
            [_f_quantile(tail[0], df1, df2, upper_tail=False), _f_quantile(tail[1], df1, df2, upper_tail=True)]
        )
        log_quantiles = np.log(quantiles)
        q = quantiles / (1.0 + quantiles)
        width = q[1] - q[0]
        u = q[0] + width * nodes
        f_nodes = u / (1.0 - u)
        log_f = np.log(f_nodes)
        density = _f_density(f_nodes, df1, df2) / (1.0 - u) ** 2
        mean = width * np.sum(weights * density * log_f) + np.sum(log_quantiles * tail)
        var = width * np.sum(weights * density * (log_f - mean) ** 2) + np.sum((log_quantiles - mean) ** 2 * tail)
        return float(mean), float(var)

    infinite_mean, infinite_var = moments(np.inf)
    at_infinity = float(np.log(winsorised_var / infinite_var))
    if at_infinity <= 0:  # the winsorised spread is no more than chance: d0 = inf, outliers aside
        centre = level + winsorised_mean - infinite_mean
        f_stat = np.exp(z - centre)
        tail_p = special.gammaincc(df1 / 2.0, f_stat * df1 / 2.0)  # pchisq(F d, d, upper)
        empirical = (n - stats.rankdata(f_stat) + 0.5) / n
        not_outlier = np.minimum(tail_p / empirical, 1.0)
        df_prior = np.full(n, np.inf)
        outlying = not_outlier < 1
        if outlying.any():
            df_prior[outlying] = not_outlier[outlying] * n * df1
            order = np.argsort(tail_p, kind="stable")
            df_prior[order] = np.maximum.accumulate(df_prior[order])
        return np.exp(centre), np.inf, df_prior
    if np.isinf(df_fitted):
        return scale, df_fitted, np.full(n, df_fitted)

    def gap(u: float) -> float:
        return float(np.log(winsorised_var / moments(_from_unit(u))[1]))

    start = df_fitted / (1.0 + df_fitted)
    at_start = gap(start)
    df2 = df_fitted if at_start >= 0 else _from_unit(find_root(gap, start, 1.0, at_start, at_infinity, _ROOT_TOLERANCE))
    centre = level + winsorised_mean - moments(df2)[0]
    f_stat = np.exp(z - centre)
    log_tail = _f_log_sf(f_stat, df1, df2)
    log_empirical = np.log(n - stats.rankdata(f_stat) + 0.5) - np.log(n)
    log_not_outlier = np.minimum(log_tail - log_empirical, 0.0)
    if not (log_not_outlier < 0).any():
        return np.exp(centre), df2, np.full(n, df2)
    not_outlier = np.exp(log_not_outlier)
    outlier = -np.expm1(log_not_outlier)
    smallest = float(log_tail.min())
    if smallest == -np.inf:
        df_prior = not_outlier * df2
    else:
        # The df at which the largest F would have tail probability 1/2, refined once.
        df_outlier = np.log(0.5) / smallest * df2
        df_outlier = np.log(0.5) / float(_f_log_sf(np.array([f_stat.max()]), df1, df_outlier)[0]) * df_outlier
        df_prior = not_outlier * df2 + outlier * df_outlier
    order = np.argsort(log_tail, kind="stable")
    ordered = df_prior[order]
    running = np.cumsum(ordered) / np.arange(1, n + 1)
    lowest = int(np.argmin(running))
    ordered[: lowest + 1] = running[lowest]
    df_prior[order] = np.maximum.accumulate(ordered)
    return np.exp(centre), df2, df_prior


def _trimmed_mean(values: np.ndarray, trim: float) -> float:
    """R's ``mean(values, trim=trim)``: the mean without the ``floor(n * trim)`` smallest and largest."""
    cut = int(np.floor(values.size * trim))
    ordered = np.sort(values)
    return float(ordered[cut : values.size - cut].mean())


def _from_unit(u: float) -> float:
    """``u / (1 - u)``: d0 from its 0-1 scale (infinite at 1)."""
    with np.errstate(divide="ignore"):
        return float(np.float64(u) / (np.float64(1.0) - np.float64(u)))


def _chi2_like(df1: float, df2: float) -> bool:
    """Where R's F quantile uses chi-square / df1 (df2 infinite, or above 4e5 and at least df1)."""
    return bool(np.isinf(df2) or (df1 <= df2 and df2 > 4e5))


def _f_quantile(p: np.ndarray | float, df1: float, df2: float, *, upper_tail: bool) -> np.ndarray:
    """The F(df1, df2) quantile with lower (or upper) tail probability ``p``, as R's ``qf``."""
    p = np.asarray(p, dtype=np.float64)
    if _chi2_like(df1, df2):
        inverse = special.gammainccinv if upper_tail else special.gammaincinv
        return 2.0 * inverse(df1 / 2.0, p) / df1
    # F = (1/x - 1) df2/df1 where x ~ Beta(df2/2, df1/2) falls as F rises.
    inverse = special.betaincinv if upper_tail else special.betainccinv
    return (1.0 / inverse(df2 / 2.0, df1 / 2.0, p) - 1.0) * (df2 / df1)


def _f_log_sf(f: np.ndarray, df1: np.ndarray | float, df2: float) -> np.ndarray:
    """log P(F(df1, df2) > f), accurate far into the tail; df2 may be infinite (chi-square / df1)."""
    f = np.asarray(f, dtype=np.float64)
    df1 = np.broadcast_to(np.asarray(df1, dtype=np.float64), f.shape)
    if np.isinf(df2):
        with np.errstate(divide="ignore"):
            return np.log(special.gammaincc(df1 / 2.0, f * df1 / 2.0))
    _, neg_log10_p = f_pvalue(f, df1, np.full(f.shape, df2))
    return -neg_log10_p * np.log(10.0)


def _f_log_cdf(f: np.ndarray, df1: np.ndarray | float, df2: float) -> np.ndarray:
    """log P(F(df1, df2) <= f); df2 may be infinite."""
    f = np.asarray(f, dtype=np.float64)
    with np.errstate(divide="ignore"):
        if np.isinf(df2):
            return np.log(special.gammainc(np.asarray(df1) / 2.0, f * np.asarray(df1) / 2.0))
        return np.log(special.fdtr(df1, df2, f))


def _f_density(f: np.ndarray, df1: float, df2: float) -> np.ndarray:
    """The F(df1, df2) density at ``f > 0``; df2 may be infinite (then chi-square(df1) / df1).

    In logs, ``(m/2) log(m f / (n + m f)) - (n/2) log1p(m f / n) - log f - log B(m/2, n/2)``, with
    :func:`_log_beta` exact for a huge ``n`` (scipy's ``f.pdf`` and ``betaln`` lose 1e-10 there).
    """
    m = df1
    if np.isinf(df2):
        return stats.chi2.pdf(f * m, m) * m
    n = df2
    log_density = (m / 2.0) * np.log(m * f / (n + m * f)) - (n / 2.0) * np.log1p(m * f / n) - np.log(f) - _log_beta(m / 2.0, n / 2.0)
    return np.exp(log_density)


def _log_beta(a: float, b: float) -> float:
    """log B(a, b), accurate when one or both arguments are large (as R's ``lbeta``)."""
    small, large = min(a, b), max(a, b)
    if large < 10:
        return float(special.betaln(small, large))
    if small < 10:
        total = small + large
        return float(
            special.gammaln(small)
            + _stirling_correction(large)
            - _stirling_correction(total)
            + small
            - small * np.log(total)
            + (large - 0.5) * np.log1p(-small / total)
        )
    total = small + large
    correction = _stirling_correction(small) + _stirling_correction(large) - _stirling_correction(total)
    return float(
        -0.5 * np.log(large) + 0.5 * np.log(2.0 * np.pi) + correction + (small - 0.5) * np.log(small / total) + large * np.log1p(-small / total)
    )


def _stirling_correction(x: float) -> float:
    """``log Gamma(x) - ((x - 1/2) log x - x + log(2 pi)/2)`` for x >= 10, by its asymptotic series
    (error below 1e-14 at x = 10)."""
    inverse_square = 1.0 / (x * x)
    series = 1.0 / 12 - inverse_square * (1.0 / 360 - inverse_square * (1.0 / 1260 - inverse_square * (1.0 / 1680 - inverse_square / 1188)))
    return series / x


def _per_distinct(function, values: np.ndarray) -> np.ndarray:
    """``function(values)``, evaluated once per distinct value: the residual df take a few values
    over a million examples, and scipy's polygamma costs 0.2 s per million."""
    if values.size and (values == values[0]).all():  # no missing runs: one df for every example
        return np.full(values.shape, function(values[:1])[0])
    distinct, index = np.unique(values, return_inverse=True)
    return function(distinct)[index.reshape(values.shape)]


def posterior_variance(variances: np.ndarray, df: np.ndarray | float, prior: VariancePrior) -> np.ndarray:
    """Posterior variances ``(d0 s0² + d s²) / (d0 + d)``; ``s0²`` where ``d0 = ∞``.

    Parameters
    ----------
    variances, df : float arrays of the same shape
    prior : VariancePrior
        Its ``df`` and ``var`` may be arrays of that shape (``robust``, ``trend``).
    """
    variances = np.asarray(variances, dtype=np.float64)
    prior_df = np.asarray(prior.df, dtype=np.float64)
    prior_var = np.broadcast_to(np.asarray(prior.var, dtype=np.float64), variances.shape)
    if np.isinf(prior_df).all():
        return np.array(prior_var, dtype=np.float64)
    df = np.asarray(df, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        shrunk = (prior_df * prior_var + df * variances) / (prior_df + df)
    return np.where(np.isinf(prior_df), prior_var, shrunk)


# --------------------------------------------------------------------------------------------
# The test
# --------------------------------------------------------------------------------------------


def moderate(
    ordinary: TwoSampleResult,
    *,
    trend: bool = False,
    robust: bool = False,
    mean_score: np.ndarray | None = None,
    unscaled_variance: np.ndarray | None = None,
) -> ModeratedResult:
    """Moderate a Student's or paired t-test result: limma's ``eBayes`` after ``lmFit``.

    Parameters
    ----------
    ordinary : TwoSampleResult
        Of ``test="student"`` (pooled variance, or the group coefficient of a linear model with
        covariates: :func:`~gwas_models.analysis.covariates.covariate_test`) or ``"paired"``, from
        :func:`~gwas_models.analysis.association.two_sample_test`, possibly with more examples
        set aside (:func:`~gwas_models.analysis.association.set_untested`). Only the examples it
        tested take part in the prior.
    trend : bool
        limma's ``eBayes(trend=TRUE)``: the prior variance follows each example's mean score
        (``mean_score``), for scores whose variance depends on their level (counts, accuracies).
    robust : bool
        limma's ``eBayes(robust=TRUE)``: the prior is fitted robustly, and examples with outlying
        variances get a smaller prior df.
    mean_score : float array (n_examples,), optional
        The covariate of ``trend``, limma's ``Amean``: the mean of each example's scores over
        all the runs used (default: from the result's group means and counts, which is that).
    unscaled_variance : float array (n_examples,), optional
        ``u²``, the variance of BETA per unit residual variance (limma's ``stdev.unscaled²``);
        default ``1/n_a + 1/n_b`` (paired: ``1/n``).

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
    tested = ordinary.has_statistic  # SEPARATED examples keep their exact p, outside the prior
    if not tested.any():
        raise InputError(
            f"no example of the {ordinary.n_examples} could be tested (each is constant or lacks runs): "
            "the moderated t has no variance to fit its prior on"
        )
    unscaled_var = _unscaled_variance(ordinary) if unscaled_variance is None else np.asarray(unscaled_variance, dtype=np.float64)
    residual_df = ordinary.df[tested]
    # The ordinary SE is s · u, so s² = SE² / u²: s² of the pooled (or paired) fit, with its df.
    residual_var = ordinary.se[tested] ** 2 / unscaled_var[tested]
    covariate = None
    if trend:
        covariate = (mean_score if mean_score is not None else _mean_score(ordinary))[tested]
    prior = fit_variance_prior(residual_var, residual_df, covariate=covariate, robust=robust)
    se = ordinary.se.copy()
    se[tested] = np.sqrt(posterior_variance(residual_var, residual_df, prior) * unscaled_var[tested])
    # limma caps the total df at the pooled residual df: with d0 = ∞ the posterior variance is
    # known no better than from all the examples' residuals together.
    df = np.full(ordinary.n_examples, np.nan)
    df[tested] = np.minimum(residual_df + prior.df, residual_df.sum())
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        t_stat = np.where(tested, ordinary.beta / se, np.nan)
    p, neg_log10_p = t_pvalue(t_stat, df)
    p, neg_log10_p = np.where(tested, p, ordinary.p), np.where(tested, neg_log10_p, ordinary.neg_log10_p)
    result = replace(
        ordinary,
        test="moderated_paired" if ordinary.test == "paired" else "moderated",
        se=se,
        t_stat=t_stat,
        df=df,
        p=p,
        neg_log10_p=neg_log10_p,
    )
    result = set_untested(result, tested & ~(np.isfinite(t_stat) & np.isfinite(p) & np.isfinite(neg_log10_p)), NAN)
    return ModeratedResult(result=result, prior=prior)


def moderated_test(
    values_a: np.ndarray,
    values_b: np.ndarray,
    *,
    paired: bool = False,
    trend: bool = False,
    robust: bool = False,
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
    trend, robust : bool
        limma's ``eBayes(trend=TRUE)`` (the prior variance follows the mean score of each
        example over all its finite scores, limma's ``Amean``) and ``eBayes(robust=TRUE)``; see
        :func:`moderate`.
    names : (str, str)
        Group names used in error messages.

    Returns
    -------
    ModeratedResult
        Equal to limma's ``eBayes(lmFit(...), trend=trend, robust=robust)`` on the ``~group``
        design (paired: ``~pair + group``) over the examples tested: ``t_stat`` = ``t``, ``df``
        = ``df.total``, ``p`` = ``p.value``, ``prior`` = (``df.prior``, ``s2.prior``; paired:
        twice it, the variance of the differences).

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
    ordinary = two_sample_test(values_a, values_b, "paired" if paired else "student", names=names)
    mean_score = mean_over_runs(values_a, values_b) if trend else None
    return moderate(ordinary, trend=trend, robust=robust, mean_score=mean_score)


def mean_over_runs(*groups: np.ndarray) -> np.ndarray:
    """Each example's mean over the finite scores of all the runs of ``groups`` (limma's ``Amean``,
    ``rowMeans(y, na.rm=TRUE)``), shape (n_examples,)."""
    stacked = np.vstack([np.atleast_2d(np.asarray(g, dtype=np.float64)) for g in groups])
    finite = np.isfinite(stacked)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(finite, stacked, 0.0).sum(axis=0) / finite.sum(axis=0)


def _mean_score(result: TwoSampleResult) -> np.ndarray:
    """The mean over the runs used, from the group means and counts."""
    n_a, n_b = result.n_a.astype(np.float64), result.n_b.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (n_a * result.mean_a + n_b * result.mean_b) / (n_a + n_b)


def _unscaled_variance(result: TwoSampleResult) -> np.ndarray:
    """``u²``, the variance of BETA per unit residual variance: ``1/n_a + 1/n_b`` (paired: ``1/n``)."""
    n_a = result.n_a.astype(np.float64)
    with np.errstate(divide="ignore"):
        if result.test == "paired":
            return 1.0 / n_a
        return 1.0 / n_a + 1.0 / result.n_b.astype(np.float64)
