"""Per-example association tests: does a score differ between the runs of two (or more) architectures?

Every function here works on score matrices of shape ``(n_runs, n_examples)``: one row per training
run, one column per training example. Each column is an independent test, and all columns are
computed at once with array operations (no Python loop over examples), in float64.

Conventions
-----------
* ``BETA = mean(B) - mean(A)`` and ``T_STAT = BETA / SE``, so a positive statistic means the score is
  larger under architecture B. (scipy's ``ttest_ind(a, b)`` reports the opposite sign.)
* Non-finite scores (NaN, ±inf) are missing values: each example is tested on the runs where its
  score is finite (for a paired test: on the seed pairs where both scores are finite), and ``N_A``,
  ``N_B`` report how many were used.
* ``NEG_LOG10_P`` is computed in log space where p itself would lose precision (p < 1e-280), so it
  stays finite and accurate when p underflows to 0 (:func:`~gwas_models.analysis._logspace.t_pvalue`,
  :func:`~gwas_models.analysis._logspace.f_pvalue`).

Error codes (``ERRCODE``), set when an example cannot be tested; its p is then missing and the
example is left out of multiple-testing adjustment, of λGC and of combined evidence:

``CONST``
    Zero variance, or a spread that is rounding residue: both groups constant, or a standard error
    below 10 ulps of the larger group mean (two-sample tests, R's "data are essentially constant");
    the paired differences constant up to rounding, i.e. a spread below 8 ulps of the scores
    (paired test); at least one group constant, or with a standard error below 10 ulps of its mean
    (Welch's ANOVA, whose weights n/s² are then infinite or absurd). The t statistic would be 0/0,
    ±inf, or a meaningless 1e16.
``FEW_RUNS``
    A group has fewer than two finite scores for this example (paired: fewer than two complete
    pairs), so its variance is undefined.
``NAN``
    Every score of this example is missing in some group, or the statistic came out non-finite
    from finite input (extreme scores that overflow, or a standard error that underflows to 0).

One code marks a test that *was* done: ``SEPARATED``, two groups each without spread (as for
``CONST``, up to rounding) at different levels that do not overlap, e.g. 0.967 in every run of A and
1.0 in every run of B (paired: differences without spread, all of one sign). t would be ±inf and
the t distribution's p 0; the example gets instead its exact permutation p, the share of
relabellings of its runs that separate it as well (:func:`separation_p`): 1 / C(n_a + n_b, n_a),
twice that when n_a == n_b (the mirror labelling); paired 2 / 2**n. ``T_STAT``, ``DF`` and
``COHEN_D`` are missing (NaN), ``BETA``, ``SE`` (0) and the means are kept. Such an example is
tested (:attr:`TwoSampleResult.tested`): it enters adjustments, counts and combined evidence, but
not λGC or the moderated t's prior, which need a t statistic
(:attr:`TwoSampleResult.has_statistic`). Welch's ANOVA calls an example ``SEPARATED`` when every
group is exactly constant and not all at one level, with a conservative p (:func:`oneway_separation_p`);
some groups constant and others not stays ``CONST``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from math import comb
from typing import Literal, Sequence

import numpy as np
import pandas as pd

from scipy.special import gammaln

from gwas_models.analysis._logspace import f_pvalue, t_pvalue
from gwas_models.errors import InputError
from gwas_models.formats.sumstats_schema import ERRCODES

TwoSampleTest = Literal["welch", "student", "paired"]
TWO_SAMPLE_TESTS: tuple[str, ...] = ("welch", "student", "paired")
NORMALIZATIONS: tuple[str, ...] = ("relative", "none", "rank", "zscore", "center_class")
#: The default reference: each example relative to its architecture (see :mod:`gwas_models.analysis.relative`).
DEFAULT_NORMALIZATION = "relative"

#: Integer error codes, indices into :data:`~gwas_models.formats.sumstats_schema.ERRCODES`
#: (``"."``, ``"CONST"``, ``"FEW_RUNS"``, ``"NAN"``, ``"SEPARATED"``); 0 means the test was done
#: with a statistic, SEPARATED that it was done with the exact permutation p of a separation.
OK, CONST, FEW_RUNS, NAN, SEPARATED = (ERRCODES.index(code) for code in (".", "CONST", "FEW_RUNS", "NAN", "SEPARATED"))

# A standard error below this many ulps of the scores' magnitude is rounding residue, not spread
# (R's t.test: stderr < 10 * .Machine$double.eps * max(abs(mx), abs(my))).
_CONSTANT_ULPS = 10.0

# Scores per block in the moment computations (512 KB of float64): the passes over a block stay in
# cache, which measured 2-3x faster than whole-matrix passes on a million examples.
_CHUNK_ELEMENTS = 1 << 16


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


def as_score_matrix(values: np.ndarray, name: str = "values") -> np.ndarray:
    """A float64 ``(n_runs, n_examples)`` array; a 1-D input is one example seen by many runs."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise InputError(f"{name} must be a (n_runs, n_examples) array, got shape {array.shape}")
    return array


def _require_runs(values: np.ndarray, name: str, minimum: int = 2) -> None:
    if values.shape[0] < minimum:
        raise InputError(f"group {name} has {values.shape[0]} run(s); a test needs at least {minimum} runs per group")


# --------------------------------------------------------------------------------------------
# Moments per example
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupMoments:
    """Per-example count, mean and variance of one group of runs.

    Attributes
    ----------
    n : int array (n_examples,)
        Number of finite scores.
    mean : float array (n_examples,)
        Mean of the finite scores (NaN when there is none).
    var : float array (n_examples,)
        Sample variance (ddof=1) of the finite scores; exactly 0 when they are all equal, NaN when
        there are fewer than two.
    """

    n: np.ndarray
    mean: np.ndarray
    var: np.ndarray

    @property
    def sd(self) -> np.ndarray:
        return np.sqrt(self.var)


def group_moments(values: np.ndarray) -> GroupMoments:
    """Count, mean and variance (ddof=1) over runs of every example, ignoring non-finite scores.

    Parameters
    ----------
    values : array (n_runs, n_examples)

    Returns
    -------
    GroupMoments

    Notes
    -----
    Two-pass (mean, then squared deviations), like ``numpy.var``, on scores shifted by the first
    run's score, in blocks of examples that stay in cache. A constant column gets a variance of
    exactly 0 and its value as mean: unshifted, the two-pass formula would leave rounding residue
    (the mean of twenty copies of 0.1 is not 0.1), which would turn a constant example into a huge t.
    """
    values = as_score_matrix(values)
    n_runs, n_examples = values.shape
    if n_runs == 0:
        return GroupMoments(n=np.zeros(n_examples, dtype=np.int64), mean=np.full(n_examples, np.nan), var=np.full(n_examples, np.nan))
    n = np.empty(n_examples, dtype=np.int64)
    mean = np.empty(n_examples)
    var = np.empty(n_examples)
    width = max(1, _CHUNK_ELEMENTS // max(n_runs, 1))
    for start in range(0, n_examples, width):
        columns = slice(start, min(start + width, n_examples))
        n[columns], mean[columns], var[columns] = _block_moments(values[:, columns])
    return GroupMoments(n=n, mean=mean, var=var)


def _block_moments(block: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_runs = block.shape[0]
    # Shift every column by its first run's score: a constant column becomes exact zeros, so its
    # variance is exactly 0 and its mean exactly its value (shifted data, also better conditioned).
    shifted = block - block[0]
    shifted_sum = shifted.sum(axis=0)
    if np.isfinite(shifted_sum).all():  # no missing score (a NaN or inf would make its sum non-finite)
        shift_mean = shifted_sum / n_runs
        shifted -= shift_mean
        var = np.einsum("ij,ij->j", shifted, shifted) / (n_runs - 1) if n_runs > 1 else np.full(block.shape[1], np.nan)
        return np.full(block.shape[1], n_runs, dtype=np.int64), block[0] + shift_mean, var
    return _masked_block_moments(block)


def _masked_block_moments(block: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moments over the finite scores only; constant columns detected by max == min."""
    finite = np.isfinite(block)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        count = finite.sum(axis=0)
        mean = np.where(finite, block, 0.0).sum(axis=0) / count
        deviation = np.where(finite, block - mean, 0.0)
        var = np.einsum("ij,ij->j", deviation, deviation) / (count - 1)
    highest = np.where(finite, block, -np.inf).max(axis=0)
    lowest = np.where(finite, block, np.inf).min(axis=0)
    constant = (highest == lowest) & (count >= 1)
    mean = np.where(constant, lowest, mean)
    var = np.where(count < 2, np.nan, np.where(constant, 0.0, var))
    mean = np.where(count == 0, np.nan, mean)
    return count, mean, var


# --------------------------------------------------------------------------------------------
# Two-sample tests
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TwoSampleResult:
    """Per-example two-sample test of group B against group A; every array has shape (n_examples,).

    Attributes
    ----------
    test : {"welch", "student", "paired"}
    n_a, n_b : int arrays
        Finite runs used (paired: complete pairs, so ``n_a == n_b``).
    mean_a, mean_b, sd_a, sd_b : float arrays
        Group means and sample standard deviations over the runs used.
    beta : float array
        ``mean_b - mean_a`` (paired: mean of the differences B - A).
    se : float array
        Standard error of ``beta`` under the test's variance model.
    cohen_d : float array
        ``beta`` over the pooled standard deviation of the two groups.
    t_stat, df, p, neg_log10_p : float arrays
        Statistic, degrees of freedom, two-sided p-value, and -log10 p computed in log space.
    error : int8 array
        Index into :data:`ERRCODES`; 0 when the test was done. Where it is not 0, ``t_stat``,
        ``df``, ``p``, ``neg_log10_p`` and ``cohen_d`` are NaN, except that ``SEPARATED``
        examples keep a p and -log10 p (their exact permutation p).
    """

    test: str
    n_a: np.ndarray
    n_b: np.ndarray
    mean_a: np.ndarray
    mean_b: np.ndarray
    sd_a: np.ndarray
    sd_b: np.ndarray
    beta: np.ndarray
    se: np.ndarray
    cohen_d: np.ndarray
    t_stat: np.ndarray
    df: np.ndarray
    p: np.ndarray
    neg_log10_p: np.ndarray
    error: np.ndarray

    @property
    def n_examples(self) -> int:
        return len(self.p)

    @property
    def tested(self) -> np.ndarray:
        """Boolean mask of the examples whose test was done and that have a p: ``ERRCODE`` '.'
        or ``SEPARATED``."""
        return (self.error == OK) | (self.error == SEPARATED)

    @property
    def has_statistic(self) -> np.ndarray:
        """Boolean mask of the examples tested with a finite t statistic (``ERRCODE == '.'``):
        what λGC and the moderated t's prior use."""
        return self.error == OK

    @property
    def errcode(self) -> np.ndarray:
        """Error code names (``'.'`` when fine)."""
        return np.asarray(ERRCODES, dtype=object)[self.error]

    def to_frame(self) -> pd.DataFrame:
        """The result as a DataFrame with sumstats column names (``N_A`` ... ``ERRCODE``)."""
        return pd.DataFrame(
            {
                "N_A": self.n_a,
                "N_B": self.n_b,
                "MEAN_A": self.mean_a,
                "MEAN_B": self.mean_b,
                "SD_A": self.sd_a,
                "SD_B": self.sd_b,
                "BETA": self.beta,
                "SE": self.se,
                "COHEN_D": self.cohen_d,
                "T_STAT": self.t_stat,
                "DF": self.df,
                "P": self.p,
                "NEG_LOG10_P": self.neg_log10_p,
                "ERRCODE": self.errcode,
            }
        )


def two_sample_test(
    values_a: np.ndarray,
    values_b: np.ndarray,
    test: TwoSampleTest = "welch",
    *,
    names: tuple[str, str] = ("A", "B"),
) -> TwoSampleResult:
    """Independent two-sample test of every example (column) between the runs of A and of B.

    Parameters
    ----------
    values_a : array (n_runs_a, n_examples)
        Scores of the runs of architecture A. A 1-D array is read as one example.
    values_b : array (n_runs_b, n_examples)
        Scores of the runs of architecture B, same examples in the same order.
    test : {"welch", "student", "paired"}
        Welch's unequal-variance t-test (default), Student's pooled-variance t-test, or the paired
        t-test on B - A, where row i of A and row i of B are runs that share a seed.
    names : (str, str)
        Group names used in error messages.

    Returns
    -------
    TwoSampleResult
        Per-example statistics; see its attributes. ``p`` equals ``scipy.stats.ttest_ind(b, a,
        equal_var=(test == "student"))`` (or ``ttest_rel(b, a)``) column by column.

    Raises
    ------
    InputError
        Unknown test, mismatched shapes, or a group with fewer than two runs.
    """
    if test not in TWO_SAMPLE_TESTS:
        raise InputError(f"test must be one of {', '.join(TWO_SAMPLE_TESTS)}, got {test!r}", parameter="test")
    values_a = as_score_matrix(values_a, f"scores of {names[0]}")
    values_b = as_score_matrix(values_b, f"scores of {names[1]}")
    if values_a.shape[1] != values_b.shape[1]:
        raise InputError(
            f"{names[0]} and {names[1]} cover different numbers of examples ({values_a.shape[1]} vs {values_b.shape[1]})"
        )
    _require_runs(values_a, names[0])
    _require_runs(values_b, names[1])
    if test == "paired":
        return _paired_test(values_a, values_b, names)
    return _independent_test(values_a, values_b, test)


def compare_groups(
    values: np.ndarray,
    groups: np.ndarray,
    a: str,
    b: str,
    test: TwoSampleTest = "welch",
    *,
    seeds: np.ndarray | None = None,
) -> TwoSampleResult:
    """:func:`two_sample_test` of group ``b`` against group ``a`` of one score matrix.

    Parameters
    ----------
    values : array (n_runs, n_examples)
    groups : array (n_runs,)
        Architecture of each run.
    a, b : str
        The two groups to compare (BETA = mean(b) - mean(a)).
    test : {"welch", "student", "paired"}
    seeds : int array (n_runs,), optional
        Seed of each run; required for ``paired``, whose pairs are the runs of ``a`` and ``b``
        that share a seed (the seeds must match one to one).

    Returns
    -------
    TwoSampleResult
    """
    values = as_score_matrix(values)
    groups = np.asarray(groups).astype(str)
    if groups.shape != (values.shape[0],):
        raise InputError(f"groups needs one entry per run ({values.shape[0]}), got shape {groups.shape}")
    rows_a, rows_b = np.flatnonzero(groups == a), np.flatnonzero(groups == b)
    if test == "paired":
        if seeds is None:
            raise InputError("a paired test needs the seeds of the runs")
        seeds = np.asarray(seeds)
        rows_a, rows_b = rows_a[np.argsort(seeds[rows_a], kind="stable")], rows_b[np.argsort(seeds[rows_b], kind="stable")]
        if not np.array_equal(seeds[rows_a], seeds[rows_b]):
            raise InputError(f"a paired test needs the same seeds in {a} and {b}")
    return two_sample_test(values[rows_a], values[rows_b], test, names=(a, b))


def _pooled_variance(moments_a: GroupMoments, moments_b: GroupMoments) -> np.ndarray:
    dof = moments_a.n + moments_b.n - 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((moments_a.n - 1) * moments_a.var + (moments_b.n - 1) * moments_b.var) / dof


def _base_errors(moments_a: GroupMoments, moments_b: GroupMoments) -> np.ndarray:
    error = np.zeros(len(moments_a.n), dtype=np.int8)
    error[(moments_a.n < 2) | (moments_b.n < 2)] = FEW_RUNS
    error[(moments_a.n == 0) | (moments_b.n == 0)] = NAN
    return error


def _independent_test(values_a: np.ndarray, values_b: np.ndarray, test: str) -> TwoSampleResult:
    moments_a = group_moments(values_a)
    moments_b = group_moments(values_b)
    n_a = moments_a.n.astype(np.float64)
    n_b = moments_b.n.astype(np.float64)
    pooled = _pooled_variance(moments_a, moments_b)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        beta = moments_b.mean - moments_a.mean
        if test == "welch":
            share_a = moments_a.var / n_a
            share_b = moments_b.var / n_b
            se = np.sqrt(share_a + share_b)
            df = (share_a + share_b) ** 2 / (share_a**2 / (n_a - 1) + share_b**2 / (n_b - 1))
        else:
            se = np.sqrt(pooled * (1.0 / n_a + 1.0 / n_b))
            df = n_a + n_b - 2
        t_stat = beta / se
        cohen_d = beta / np.sqrt(pooled)
    error = _base_errors(moments_a, moments_b)
    both_constant = (moments_a.var == 0) & (moments_b.var == 0)
    without_spread = (error == OK) & (both_constant | _essentially_constant(se, moments_a.mean, moments_b.mean))
    error[without_spread] = CONST
    result = finish_two_sample(test, moments_a, moments_b, beta, se, cohen_d, t_stat, np.asarray(df, dtype=np.float64), error)
    return set_separated(result, _apart(values_a, values_b, without_spread & (beta != 0)))


def _apart(lower: np.ndarray, upper: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Where the finite scores of one group all lie below those of the other (only the
    ``candidates`` columns are looked at: groups without spread, whose ranges are points)."""
    apart = np.zeros(len(candidates), dtype=bool)
    if candidates.any():
        columns = np.flatnonzero(candidates)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            low_a, high_a = np.nanmin(lower[:, columns], axis=0), np.nanmax(lower[:, columns], axis=0)
            low_b, high_b = np.nanmin(upper[:, columns], axis=0), np.nanmax(upper[:, columns], axis=0)
        apart[columns] = (high_a < low_b) | (high_b < low_a)
    return apart


def _essentially_constant(se: np.ndarray, *means: np.ndarray) -> np.ndarray:
    """Where a standard error is rounding residue: below :data:`_CONSTANT_ULPS` ulps of the largest
    |mean|, R's ``t.test`` rule ("data are essentially constant").

    Groups equal up to their last bits (1, 1, 1, 1, 1+ε against 2, ..., 2+2ε) have a spread made of
    rounding alone; dividing a real mean difference by it gives t near 1e16 and a p near 1e-154.
    A small spread of small scores is not caught: the threshold scales with the scores.
    """
    with np.errstate(invalid="ignore"):
        magnitude = np.max(np.abs(np.vstack(means)), axis=0)
        return se < _CONSTANT_ULPS * np.finfo(np.float64).eps * magnitude


def _paired_test(values_a: np.ndarray, values_b: np.ndarray, names: tuple[str, str]) -> TwoSampleResult:
    if values_a.shape != values_b.shape:
        raise InputError(
            f"a paired test needs the same runs in both groups: {names[0]} has {values_a.shape[0]}, {names[1]} has {values_b.shape[0]}"
        )
    complete = np.isfinite(values_a) & np.isfinite(values_b)
    if not complete.all():
        # A pair counts only when both of its scores are finite.
        values_a = np.where(complete, values_a, np.nan)
        values_b = np.where(complete, values_b, np.nan)
    moments_a = group_moments(values_a)
    moments_b = group_moments(values_b)
    differences = group_moments(values_b - values_a)
    # B - A carries rounding noise of up to one ulp of the larger score even when B is exactly A
    # shifted: a spread of differences at that level is no variation, and would give a huge t.
    with np.errstate(invalid="ignore"):
        magnitude = np.fmax(np.nanmax(np.abs(values_a), axis=0, initial=0.0), np.nanmax(np.abs(values_b), axis=0, initial=0.0))
    rounding_only = differences.sd <= 8.0 * np.finfo(np.float64).eps * magnitude
    n = differences.n.astype(np.float64)
    pooled = _pooled_variance(moments_a, moments_b)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        beta = differences.mean
        se = np.sqrt(differences.var / n)
        t_stat = beta / se
        cohen_d = beta / np.sqrt(pooled)
    error = _base_errors(differences, differences)
    without_spread = (error == OK) & rounding_only
    error[without_spread] = CONST
    result = finish_two_sample("paired", moments_a, moments_b, beta, se, cohen_d, t_stat, n - 1.0, error)
    # Differences without spread, all of one sign (none 0): a separation of the sign flips.
    candidates = without_spread & (beta != 0)
    zero = np.zeros((1, values_a.shape[1]))
    return set_separated(result, _apart(zero, values_b - values_a, candidates), paired=True)


def _blank(values: np.ndarray, failed: np.ndarray) -> np.ndarray:
    """A float copy of ``values`` with NaN where ``failed``."""
    values = np.array(values, dtype=np.float64)
    values[failed] = np.nan
    return values


def finish_two_sample(
    test: str,
    moments_a: GroupMoments,
    moments_b: GroupMoments,
    beta: np.ndarray,
    se: np.ndarray,
    cohen_d: np.ndarray,
    t_stat: np.ndarray,
    df: np.ndarray,
    error: np.ndarray,
) -> TwoSampleResult:
    """A :class:`TwoSampleResult` from its statistics: p-values (log space), then the error codes'
    NaN policy (an untested example has no t, df, p or d). ``error`` is updated in place: ``NAN``
    where the statistic came out non-finite."""
    p, neg_log10_p = t_pvalue(t_stat, df)
    error[(error == OK) & ~(np.isfinite(t_stat) & np.isfinite(p) & np.isfinite(neg_log10_p))] = NAN
    failed = error != OK
    if failed.any():
        t_stat, df, p, neg_log10_p, cohen_d = (_blank(v, failed) for v in (t_stat, df, p, neg_log10_p, cohen_d))
    return TwoSampleResult(
        test=test,
        n_a=moments_a.n,
        n_b=moments_b.n,
        mean_a=moments_a.mean,
        mean_b=moments_b.mean,
        sd_a=moments_a.sd,
        sd_b=moments_b.sd,
        beta=beta,
        se=se,
        cohen_d=cohen_d,
        t_stat=t_stat,
        df=df,
        p=p,
        neg_log10_p=neg_log10_p,
        error=error,
    )


_TEST_FIELDS = ("t_stat", "df", "cohen_d", "f_stat", "df_num", "df_denom", "p", "neg_log10_p")


def set_untested(result, mask: np.ndarray, code: int):
    """A copy of a :class:`TwoSampleResult` or :class:`OnewayResult` in which the examples of
    ``mask`` that were tested get error ``code`` and, like any untested example, no statistic, df,
    p, -log10 p or effect size."""
    mask = np.asarray(mask, dtype=bool) & (result.error == OK)
    if not mask.any():
        return result
    error = result.error.copy()
    error[mask] = code
    blanked = {name: _blank(getattr(result, name), mask) for name in _TEST_FIELDS if hasattr(result, name)}
    return replace(result, error=error, **blanked)


def separation_p(n_a: np.ndarray, n_b: np.ndarray, paired: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Exact permutation p of a separation, and its -log10, from the runs used.

    Two groups without spread at different levels hold n_a copies of one value and n_b of another:
    of the C(n_a + n_b, n_a) relabellings of the runs, only the observed one separates them (t =
    ±inf), and its mirror image when n_a == n_b (A and B swapped: the same |t|); every other one
    mixes the levels in some group, a finite t. Paired, constant differences d ≠ 0 stay constant
    only under the all-plus and all-minus sign patterns: 2 of 2**n.

    Parameters
    ----------
    n_a, n_b : int arrays (n_examples,)
        Finite runs of each group (paired: complete pairs, ``n_b`` unused).
    paired : bool

    Returns
    -------
    p, neg_log10_p : float arrays (n_examples,)

    Examples
    --------
    >>> p, _ = separation_p(np.array([5, 4]), np.array([5, 6]))
    >>> [round(1 / x) for x in p]  # 252 / 2 and C(10, 4)
    [126, 210]
    """
    n_a = np.asarray(n_a, dtype=np.float64)
    n_b = np.asarray(n_b, dtype=np.float64)
    if paired:
        log_p = (1.0 - n_a) * np.log(2.0)
    else:
        log_labelings = gammaln(n_a + n_b + 1.0) - gammaln(n_a + 1.0) - gammaln(n_b + 1.0)
        log_p = np.where(n_a == n_b, np.log(2.0), 0.0) - log_labelings
    log_p = np.minimum(log_p, 0.0)
    return np.exp(log_p), -log_p / np.log(10.0)


def set_separated(result: "TwoSampleResult", mask: np.ndarray, paired: bool | None = None) -> "TwoSampleResult":
    """A copy of a :class:`TwoSampleResult` in which the examples of ``mask`` are ``SEPARATED``:
    their exact permutation p (:func:`separation_p`), no t, df or effect size.

    Only examples tested (``'.'``) or set aside as constant (``CONST``) change; ``paired``
    defaults to the result's test.
    """
    mask = np.asarray(mask, dtype=bool) & ((result.error == OK) | (result.error == CONST))
    if not mask.any():
        return result
    paired = result.test in ("paired", "moderated_paired") if paired is None else paired
    p, neg_log10_p = separation_p(result.n_a, result.n_b, paired)
    error = result.error.copy()
    error[mask] = SEPARATED
    blanked = {name: _blank(getattr(result, name), mask) for name in ("t_stat", "df", "cohen_d")}
    return replace(
        result,
        error=error,
        p=np.where(mask, p, result.p),
        neg_log10_p=np.where(mask, neg_log10_p, result.neg_log10_p),
        **blanked,
    )


def constant_level(values: np.ndarray) -> np.ndarray:
    """The value of examples whose finite scores are all equal over the runs of one group, NaN
    for the others (and where no score is finite), shape (n_examples,)."""
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns are FEW_RUNS/NAN elsewhere
        highest, lowest = np.nanmax(values, axis=0), np.nanmin(values, axis=0)
    return np.where(highest == lowest, lowest, np.nan)


def constant_within_runs(values: np.ndarray) -> np.ndarray:
    """Examples whose finite values are all equal over the runs of one group, shape (n_examples,)."""
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns are FEW_RUNS/NAN elsewhere
        return np.nanmax(values, axis=0) == np.nanmin(values, axis=0)


# --------------------------------------------------------------------------------------------
# Welch's one-way ANOVA across three or more groups
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OnewayResult:
    """Per-example Welch's ANOVA across groups; arrays over examples unless stated.

    Attributes
    ----------
    names : tuple of str
        Group names, in the order of the rows of ``n``, ``mean``, ``sd``.
    n, mean, sd : arrays (n_groups, n_examples)
        Finite runs, means and sample standard deviations per group.
    f_stat, df_num, df_denom, p, neg_log10_p : float arrays
        Welch's F (with Welch's correction), its degrees of freedom and upper-tail p-value.
    error : int8 array
        Index into :data:`ERRCODES` (``CONST``: some group has zero variance, up to rounding).
    """

    names: tuple[str, ...]
    n: np.ndarray
    mean: np.ndarray
    sd: np.ndarray
    f_stat: np.ndarray
    df_num: np.ndarray
    df_denom: np.ndarray
    p: np.ndarray
    neg_log10_p: np.ndarray
    error: np.ndarray

    @property
    def tested(self) -> np.ndarray:
        """Examples that have a p: ``ERRCODE`` '.' or ``SEPARATED``."""
        return (self.error == OK) | (self.error == SEPARATED)

    @property
    def has_statistic(self) -> np.ndarray:
        """Examples tested with a finite F statistic (``ERRCODE == '.'``)."""
        return self.error == OK

    @property
    def errcode(self) -> np.ndarray:
        return np.asarray(ERRCODES, dtype=object)[self.error]


def welch_anova(groups: Sequence[np.ndarray], names: Sequence[str] | None = None) -> OnewayResult:
    """Welch's one-way ANOVA of every example across groups of runs (unequal variances).

    Parameters
    ----------
    groups : sequence of arrays (n_runs_g, n_examples)
        The runs of each architecture, same examples in the same order.
    names : sequence of str, optional
        Group names for messages and the result.

    Returns
    -------
    OnewayResult
        Equal, example by example, to ``statsmodels.stats.oneway.anova_oneway(data,
        use_var="unequal")`` (whose default applies Welch's correction).
    """
    names = tuple(names) if names is not None else tuple(f"group {i + 1}" for i in range(len(groups)))
    if len(groups) < 2:
        raise InputError(f"a one-way test needs at least two groups, got {len(groups)}")
    if len(names) != len(groups):
        raise InputError(f"{len(groups)} groups but {len(names)} names")
    matrices = [as_score_matrix(g, f"scores of {name}") for g, name in zip(groups, names)]
    if len({m.shape[1] for m in matrices}) != 1:
        raise InputError("the groups cover different numbers of examples")
    for matrix, name in zip(matrices, names):
        _require_runs(matrix, name)
    moments = [group_moments(m) for m in matrices]
    n = np.vstack([m.n for m in moments])
    mean = np.vstack([m.mean for m in moments])
    var = np.vstack([m.var for m in moments])
    n_groups = len(matrices)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        weights = n / var
        weight_share = weights / weights.sum(axis=0)
        weighted_mean = (weight_share * mean).sum(axis=0)
        between = (weights * (mean - weighted_mean) ** 2).sum(axis=0) / (n_groups - 1.0)
        correction_sum = ((1.0 - weight_share) ** 2 / (n - 1)).sum(axis=0) / (n_groups**2 - 1.0)
        f_stat = between / (1.0 + 2.0 * (n_groups - 2.0) * correction_sum)
        df_denom = 1.0 / (3.0 * correction_sum)
    df_num = np.full(n.shape[1], n_groups - 1.0)
    p, neg_log10_p = f_pvalue(f_stat, df_num, df_denom)
    error = np.zeros(n.shape[1], dtype=np.int8)
    # A group whose spread is rounding residue weighs n/var ~ 1e30: as good as constant.
    with np.errstate(invalid="ignore", divide="ignore"):
        rounding_only = np.sqrt(var / n) < _CONSTANT_ULPS * np.finfo(np.float64).eps * np.abs(mean)
    error[((var == 0) | rounding_only).any(axis=0)] = CONST
    error[(n < 2).any(axis=0)] = FEW_RUNS
    error[(n == 0).any(axis=0)] = NAN
    error[(error == OK) & ~(np.isfinite(f_stat) & np.isfinite(p) & np.isfinite(neg_log10_p))] = NAN
    failed = error != OK
    f_stat, df_num, df_denom, p, neg_log10_p = (_blank(v, failed) for v in (f_stat, df_num, df_denom, p, neg_log10_p))
    result = OnewayResult(
        names=names,
        n=n,
        mean=mean,
        sd=np.sqrt(var),
        f_stat=f_stat,
        df_num=df_num,
        df_denom=df_denom,
        p=p,
        neg_log10_p=neg_log10_p,
        error=error,
    )
    return set_oneway_separated(result, (var == 0).all(axis=0), mean)


def oneway_separation_p(n: np.ndarray, level: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A conservative permutation p of groups that are each constant, not all at one level.

    Of the n! / prod n_g! relabellings of the runs into groups of the observed sizes, those that
    leave every group constant (F = inf) number A * prod_j c_j! / prod_g n_g!, where c_j counts
    the runs at the j-th distinct level and A the ways to give each group one level so that the
    sizes add up: p = A * prod_j c_j! / n!. With equal group sizes A = k! / prod_j m_j! exactly
    (m_j groups at level j); otherwise A is bounded by the number of maps of the k groups onto the
    levels (every level needs a group): a p at least the exact one, so still valid. Two groups of
    equal size give :func:`separation_p`; of unequal size, twice it.

    Parameters
    ----------
    n : int array (n_groups, n_examples)
        Finite runs per group.
    level : float array (n_groups, n_examples)
        Each group's constant value.

    Returns
    -------
    p, neg_log10_p : float arrays (n_examples,)
    """
    n = np.asarray(n, dtype=np.float64)
    level = np.asarray(level, dtype=np.float64)
    k = n.shape[0]
    order = np.argsort(level, axis=0, kind="stable")
    sorted_level = np.take_along_axis(level, order, axis=0)
    sorted_n = np.take_along_axis(n, order, axis=0)
    starts = np.vstack([np.ones((1, n.shape[1]), dtype=bool), sorted_level[1:] != sorted_level[:-1]])
    level_index = np.cumsum(starts, axis=0) - 1
    n_levels = starts.sum(axis=0)
    log_runs_per_level = np.zeros(n.shape[1])
    log_groups_per_level = np.zeros(n.shape[1])
    for j in range(k):  # a loop over levels (at most one per group), each over every example
        at_level = level_index == j
        log_runs_per_level += gammaln(np.where(at_level, sorted_n, 0.0).sum(axis=0) + 1.0)
        log_groups_per_level += gammaln(at_level.sum(axis=0) + 1.0)
    surjections = np.array([float(sum((-1) ** i * comb(m, i) * (m - i) ** k for i in range(m + 1))) for m in range(k + 1)])
    equal_sizes = (n == n[:1]).all(axis=0)
    log_assignments = np.where(equal_sizes, gammaln(k + 1.0) - log_groups_per_level, np.log(np.maximum(surjections[n_levels], 1.0)))
    log_p = np.minimum(log_assignments + log_runs_per_level - gammaln(n.sum(axis=0) + 1.0), 0.0)
    return np.exp(log_p), -log_p / np.log(10.0)


def set_oneway_separated(result: OnewayResult, constant: np.ndarray, level: np.ndarray) -> OnewayResult:
    """A copy of an :class:`OnewayResult` in which the examples whose groups are all ``constant``
    at the levels ``level`` (n_groups, n_examples), not all equal, are ``SEPARATED``, with the p of
    :func:`oneway_separation_p` and no F or denominator df. Only examples tested or ``CONST``
    change."""
    level = np.asarray(level, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        several = level.max(axis=0, initial=-np.inf) > level.min(axis=0, initial=np.inf)
    mask = np.asarray(constant, dtype=bool) & several & ((result.error == OK) | (result.error == CONST))
    if not mask.any():
        return result
    p, neg_log10_p = oneway_separation_p(result.n[:, mask], level[:, mask])
    error = result.error.copy()
    error[mask] = SEPARATED
    fields = {name: np.array(getattr(result, name), dtype=np.float64) for name in ("p", "neg_log10_p", "f_stat", "df_denom")}
    fields["p"][mask], fields["neg_log10_p"][mask] = p, neg_log10_p
    fields["f_stat"][mask] = fields["df_denom"][mask] = np.nan
    return replace(result, error=error, **fields)


def welch_anova_by_group(values: np.ndarray, groups: np.ndarray, names: Sequence[str] | None = None) -> OnewayResult:
    """:func:`welch_anova` of one score matrix across the groups of its runs.

    Parameters
    ----------
    values : array (n_runs, n_examples)
    groups : array (n_runs,)
        Architecture of each run.
    names : sequence of str, optional
        Groups to include, in order (default: all, in order of first appearance).
    """
    values = as_score_matrix(values)
    groups = np.asarray(groups).astype(str)
    if groups.shape != (values.shape[0],):
        raise InputError(f"groups needs one entry per run ({values.shape[0]}), got shape {groups.shape}")
    names = list(dict.fromkeys(groups.tolist())) if names is None else list(names)
    return welch_anova([values[groups == name] for name in names], names)


# --------------------------------------------------------------------------------------------
# Normalisation within runs, and combining evidence
# --------------------------------------------------------------------------------------------


def normalize_within_runs(
    values: np.ndarray,
    method: str = "none",
    labels: np.ndarray | None = None,
    *,
    run_names: Sequence[str] | None = None,
    parameter: str = "method",
    what: str = "these scores",
) -> np.ndarray:
    """Transform each run's scores across examples before testing.

    Each run is transformed on its own scores only, so runs that were exchangeable stay
    exchangeable and the per-example tests stay valid; what changes is what they test.

    Parameters
    ----------
    values : array (n_runs, n_examples)
    method : {"relative", "none", "rank", "zscore", "center_class"}
        ``relative`` is the within-run half of the default reference: the normal scores of ``rank``,
        without its refusal of tied scores, because the study then centres each architecture on the
        level trend of its difference from the other
        (:func:`~gwas_models.analysis.relative.center_on_level_trend`), which removes what ties
        create. ``none`` leaves the scores as they are (the paper's setting). ``rank`` replaces each score by
        the normal score of its rank among the run's finite scores, ``Φ⁻¹((rank - ½) / n)`` (ties
        averaged; the rank-based inverse normal transform of GWAS traits); a global shift of one
        architecture (every example easier) then disappears, and so does any monotone distortion
        of a run's scale. Normal scores, not the uniform ``rank / n``: with uniform ranks, an
        example's values are short-tailed and its t-test anti-conservative at Bonferroni levels
        (simulated null studies of 500 examples, 4-8 v 4-8 runs: family-wise error 0.07-0.11 for
        Student's t at nominal 0.05, up to 0.057 for Welch's; 0.042-0.050 with normal scores).
        It is refused for heavily tied scores (see :func:`rank_ties_reason`). ``zscore`` subtracts
        the run's mean and divides by its standard deviation (a constant run becomes all zeros). ``center_class`` subtracts, from each score,
        the mean of the run's scores in the example's class: it removes a run's shift even when the
        shift differs between classes (on real runs most of ``el2n``'s run-to-run variation), and,
        being a shift, creates nothing from ties. Non-finite scores stay NaN.
    labels : int array (n_examples,), optional
        Class of each example; required for ``center_class``.
    run_names, parameter, what : optional
        How the refusal of ``rank`` names the runs (default ``run <row>``), the caller's parameter
        that holds ``method`` and the scores (a study: ``normalize``, ``score 'accuracy'``).

    Returns
    -------
    float64 array of the same shape.

    Raises
    ------
    InputError
        Unknown ``method``, ``center_class`` without ``labels``, or ``rank`` of a heavily tied score.
    """
    if method not in NORMALIZATIONS:
        raise InputError(f"method must be one of {', '.join(NORMALIZATIONS)}, got {method!r}", parameter="method")
    values = as_score_matrix(values)
    if method == "none":
        return values
    finite = np.isfinite(values)
    masked = np.where(finite, values, np.nan)
    if method == "center_class":
        return _center_by_class(masked, finite, labels)
    if method in ("rank", "relative"):
        return _rank_normal_scores(masked, run_names, parameter, what, refuse_ties=method == "rank")
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = np.nanmean(masked, axis=1, keepdims=True)
        spread = np.nanstd(masked, axis=1, keepdims=True)
        spread = np.where(spread > 0, spread, 1.0)
        return np.where(finite, (masked - centre) / spread, np.nan)


def _center_by_class(masked: np.ndarray, finite: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
    """Each finite score minus the mean of its run's finite scores of the same class."""
    n_examples = masked.shape[1]
    if labels is None:
        raise InputError("labels are needed to centre within classes (method='center_class')", parameter="labels")
    labels = np.asarray(labels)
    if labels.shape != (n_examples,):
        raise InputError(f"labels needs one class per example ({n_examples}), got shape {labels.shape}", parameter="labels")
    # Class sums as one reduceat over the examples sorted by class: no loop over classes or examples.
    classes, index = np.unique(labels, return_inverse=True)
    order = np.argsort(index, kind="stable")
    starts = np.searchsorted(index[order], np.arange(len(classes)))
    filled = np.where(finite, masked, 0.0)
    sums = np.add.reduceat(filled[:, order], starts, axis=1)
    counts = np.add.reduceat(finite[:, order].astype(np.int64), starts, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    return np.where(finite, masked - means[:, index], np.nan)


#: ``normalize="rank"`` is refused when, in some run, more than this share of the finite scores
#: are one tied value. Simulated 4 v 4 null studies (1,000 examples, a random shift per run,
#: normal scores of the ranks): Bonferroni family-wise error of Student's t at nominal 0.05 of
#: 0.050 with a tied block of 30% of each run, 0.090 at 56%, 0.12 at 74% (a count score with five
#: levels; 0.22 with the uniform ranks used before).
RANK_MAX_TIED_SHARE = 0.25


def _rank_normal_scores(
    masked: np.ndarray, run_names: Sequence[str] | None, parameter: str, what: str, *, refuse_ties: bool = True
) -> np.ndarray:
    """Φ⁻¹((average rank - ½) / n) of each run's finite scores, refused for heavy ties when ``refuse_ties``.

    One sort per run gives both the ranks and the tied blocks (a loop over runs, each over all of
    its examples at once).
    """
    from scipy.special import ndtri

    scores = np.full(masked.shape, np.nan)
    ties = []
    for run, row in enumerate(masked):
        finite = np.isfinite(row)
        order = np.argsort(row[finite], kind="stable")
        ordered = row[finite][order]
        starts, lengths = _tie_blocks(ordered)
        ranks = np.empty(len(ordered))
        ranks[order] = np.repeat(starts + (lengths + 1) / 2.0, lengths)  # 1-based average ranks
        scores[run, finite] = ndtri((ranks - 0.5) / max(len(ordered), 1))
        ties.append(_largest_tie(ordered, starts, lengths))
    reason = _ties_reason(ties, run_names) if refuse_ties else None
    if reason is not None:
        raise InputError(f"{parameter}='rank' is not valid for {what}: {reason}", parameter=parameter)
    return scores


def _tie_blocks(ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start (0-based) and length of each block of equal values of a sorted array."""
    bounds = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1], True])
    return bounds[:-1], np.diff(bounds)


def _largest_tie(ordered: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> tuple[float, float]:
    """Share of the scores in the largest tied block of a sorted run, and its value."""
    if len(ordered) == 0:
        return 0.0, float("nan")
    largest = int(np.argmax(lengths))
    return lengths[largest] / len(ordered), float(ordered[starts[largest]])


def _ties_reason(ties: Sequence[tuple[float, float]], run_names: Sequence[str] | None) -> str | None:
    """The sentence of :func:`rank_ties_reason` from each run's largest tie (share, value)."""
    worst_run = int(np.argmax([share for share, _ in ties])) if ties else 0
    if not ties or ties[worst_run][0] <= RANK_MAX_TIED_SHARE:
        return None
    share, value = ties[worst_run]
    run_name = run_names[worst_run] if run_names is not None else f"run {worst_run}"
    return (
        f"in {run_name}, {share:.0%} of the scores are tied at {value:g} (above "
        f"{RANK_MAX_TIED_SHARE:.0%}); the average rank of a tied block moves between runs with the "
        "block sizes, which creates differences from the ties alone (family-wise error above alpha); "
        "use 'zscore' or 'center_class' instead"
    )


def rank_ties_reason(values: np.ndarray, run_names: Sequence[str] | None = None) -> str | None:
    """Why within-run ranks of these scores would create differences from ties, or None.

    A tied block (accuracy 1.0, forgetting 0) takes the average rank of its places, which moves
    from run to run with the size of the block and of the blocks below it. An example in such
    blocks gets ranks that vary by almost nothing within a group yet jump by whole blocks
    between levels: a t-test then turns a difference of one level in a few runs into p ~ 1e-7
    where the raw scores give 0.05. The rank of a score with few ties is unaffected.

    Parameters
    ----------
    values : array (n_runs, n_examples)
        Non-finite entries are ignored.
    run_names : sequence of str, optional
        How to name each run in the sentence (default: ``run <row index>``).

    Returns
    -------
    str or None
        A sentence naming the run, its largest tied block and its share, when that share exceeds
        :data:`RANK_MAX_TIED_SHARE` in some run; else None.
    """
    ties = []
    for row in as_score_matrix(values):  # a loop over runs (few), each a sort of its examples
        ordered = np.sort(row[np.isfinite(row)])
        ties.append(_largest_tie(ordered, *_tie_blocks(ordered)))
    return _ties_reason(ties, run_names)


def finite_mean(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over the rows of each column, ignoring non-finite entries, and how many were averaged.

    Parameters
    ----------
    values : array (n_rows, n_examples)

    Returns
    -------
    mean : float array (n_examples,)
        NaN where no entry of the column is finite.
    count : int array (n_examples,)
    """
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    finite = np.isfinite(values)
    count = finite.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(finite, values, 0.0).sum(axis=0) / count
    return np.where(count > 0, mean, np.nan), count


def mean_neg_log10_p(neg_log10_p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The paper's ranking of each example: the mean of -log10 p over the rows that were tested.

    Not the combined p of the ``combined`` rows (that is the Cauchy combination,
    :func:`gwas_models.analysis.combine.cauchy_combination`): a ranking, kept as ``MEAN_NEG_LOG10_P``.

    Parameters
    ----------
    neg_log10_p : array (n_tests, n_examples)
        One row per score (or per score and pair); NaN marks an untested example.

    Returns
    -------
    mean : float array (n_examples,)
        Mean over the finite entries: -log10 of the geometric mean of p (the paper's summary).
        NaN where no entry is finite.
    count : int array (n_examples,)
        Number of finite entries averaged.
    """
    return finite_mean(neg_log10_p)
