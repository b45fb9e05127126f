"""Multiple testing and genomic control over the examples of one score.

The family of tests is one score in one comparison (a pair of architectures, or the one-way test):
its examples that could be tested. Untested examples (p missing, an ``ERRCODE``) are set aside
before adjusting, because a single NaN makes statsmodels' ``fdr_bh`` return NaN for every example;
they get a missing adjusted p.

Adjusted p-values come from ``statsmodels.stats.multitest.multipletests``, always called with an
explicit ``method`` (its default, ``"hs"``, is Holm–Šidák, not Benjamini–Hochberg); Holm's are
computed here by statsmodels' own formula (see :func:`holm_adjust`).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import special, stats
from statsmodels.stats.multitest import multipletests

from gwas_models.errors import InputError
from gwas_models.formats.sumstats_schema import ADJUST_COLUMNS

#: Adjustment methods (statsmodels names), in output order; :data:`ADJUST_COLUMNS` names their columns.
ADJUST_METHODS: tuple[str, ...] = tuple(ADJUST_COLUMNS)
#: Median of the chi-squared distribution with one degree of freedom (0.454936...).
CHI2_1DF_MEDIAN: float = float(stats.chi2.ppf(0.5, 1))


def parse_adjust_list(text: str | Iterable[str] | None, parameter: str = "adjust") -> tuple[str, ...]:
    """Adjustment methods from a comma-separated list (``None``, ``""`` or ``"all"``: all five).

    Parameters
    ----------
    text : str, iterable of str, or None
    parameter : str
        Name of the caller's parameter that holds ``text``, for the error.

    Raises
    ------
    InputError
        For a name that is not one of :data:`ADJUST_METHODS`.
    """
    if text is None:
        return ADJUST_METHODS
    parts = text.split(",") if isinstance(text, str) else list(text)
    names = [part.strip().lower() for part in parts if part.strip()]
    if not names or names == ["all"]:
        return ADJUST_METHODS
    for name in names:
        if name not in ADJUST_METHODS:
            raise InputError(
                f"{parameter} holds an unknown adjustment method {name!r}; choose from {', '.join(ADJUST_METHODS)}",
                parameter=parameter,
            )
    return tuple(dict.fromkeys(names))


def check_alpha(alpha: float) -> float:
    """Return ``alpha`` as a float, or raise :class:`InputError` unless 0 < alpha < 1."""
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise InputError(f"alpha must be strictly between 0 and 1, got {alpha:g}", parameter="alpha")
    return alpha


def adjust_pvalues(p: np.ndarray, methods: Sequence[str] = ADJUST_METHODS, alpha: float = 0.05) -> pd.DataFrame:
    """Adjusted p-values of one family of tests, ignoring missing p.

    Parameters
    ----------
    p : float array (n_examples,)
        Raw p-values; NaN marks an example that was not tested.
    methods : sequence of str
        statsmodels ``multipletests`` methods, each passed explicitly.
    alpha : float
        Passed to ``multipletests`` (it does not change the adjusted p of these methods).

    Returns
    -------
    DataFrame with one float column per method (named by the method), one row per example; NaN
    where ``p`` is NaN. Each column equals ``multipletests(p[finite], method=m)[1]`` placed back at
    the finite positions.

    Notes
    -----
    The finite p-values are sorted once and passed with ``is_sorted=True``, so five methods cost
    one sort.
    """
    methods = parse_adjust_list(methods, parameter="methods")
    p = np.asarray(p, dtype=np.float64)
    finite = np.isfinite(p)
    if finite.all():
        order = np.argsort(p)
    else:
        finite_index = np.flatnonzero(finite)
        order = finite_index[np.argsort(p[finite_index])]
    # Tied p-values get equal adjusted values whatever their order, so any sort will do.
    sorted_p = p[order]
    columns = {}
    for method in methods:
        adjusted = np.full(p.shape, np.nan)
        if len(sorted_p):
            adjusted[order] = _adjust_sorted(sorted_p, method, alpha)
        columns[method] = adjusted
    return pd.DataFrame(columns)


def _adjust_sorted(sorted_p: np.ndarray, method: str, alpha: float) -> np.ndarray:
    if method == "holm":
        return holm_adjust(sorted_p)
    # sidak takes log1p(-p): -inf at p = 1, which gives the right answer, 1.
    with np.errstate(divide="ignore"):
        return multipletests(sorted_p, alpha=alpha, method=method, is_sorted=True)[1]


def adjust_neg_log10_p(neg_log10_p: np.ndarray, methods: Sequence[str] = ADJUST_METHODS) -> pd.DataFrame:
    """-log10 of the adjusted p-values of one family of tests, computed in log space.

    The adjustments of :func:`adjust_pvalues` (statsmodels' formulas), taken from -log10 p so that
    an adjusted p far below 1e-308, where float64 p is 0, keeps its value: a Bonferroni p of
    1e-400 over 1,000 tests is 1e-397, not 0. With p_(k) the k-th smallest of n p-values
    (k = 1..n) and x = -log10 p:

    * bonferroni: x - log10 n; sidak: -log10(1 - (1 - p)^n), that is x - log10 n where p underflows;
    * holm: min over j <= k of x_(j) - log10(n - j + 1);
    * fdr_bh: max over j >= k of x_(j) - log10(n / j); fdr_by: that minus log10(sum_{i<=n} 1/i);

    each at least 0 (an adjusted p is capped at 1). Where both are representable, 10**-result
    equals :func:`adjust_pvalues` to rounding.

    Parameters
    ----------
    neg_log10_p : float array (n_examples,)
        -log10 of the raw p-values; NaN marks an example that was not tested.
    methods : sequence of str

    Returns
    -------
    DataFrame with one float column per method, one row per example; NaN where the input is NaN.
    """
    methods = parse_adjust_list(methods, parameter="methods")
    neg_log10_p = np.asarray(neg_log10_p, dtype=np.float64)
    finite_index = np.flatnonzero(~np.isnan(neg_log10_p))
    order = finite_index[np.argsort(-neg_log10_p[finite_index], kind="stable")]  # smallest p first
    sorted_x = neg_log10_p[order]
    columns = {}
    for method in methods:
        adjusted = np.full(neg_log10_p.shape, np.nan)
        if len(sorted_x):
            adjusted[order] = np.maximum(_adjust_sorted_log10(sorted_x, method), 0.0)
        columns[method] = adjusted
    return pd.DataFrame(columns)


def _adjust_sorted_log10(sorted_x: np.ndarray, method: str) -> np.ndarray:
    """-log10 adjusted p of -log10 p sorted in decreasing order (p increasing), before capping."""
    n = len(sorted_x)
    log10_n = np.log10(n)
    if method == "bonferroni":
        return sorted_x - log10_n
    if method == "sidak":
        with np.errstate(divide="ignore", invalid="ignore"):
            p = 10.0 ** -sorted_x
            exact = -np.log10(-np.expm1(n * np.log1p(-p)))  # statsmodels' formula, where p is normal
        # Below the smallest normal double, 1 - (1 - p)^n = n p to far better than float precision.
        return np.where(p >= np.finfo(np.float64).tiny, exact, sorted_x - log10_n)
    if method == "holm":
        return np.minimum.accumulate(sorted_x - np.log10(np.arange(n, 0, -1, dtype=np.float64)))
    rank = np.arange(1, n + 1, dtype=np.float64)
    step_up = np.maximum.accumulate((sorted_x - (log10_n - np.log10(rank)))[::-1])[::-1]
    if method == "fdr_bh":
        return step_up
    return step_up - np.log10(np.sum(1.0 / rank))  # fdr_by


def holm_adjust(sorted_p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values of p-values sorted in increasing order.

    The k-th smallest p (k from 0) becomes max over j <= k of (n - j) p_(j), capped at 1: the
    arithmetic of statsmodels' ``multipletests(method="holm")``, with equal results. statsmodels'
    Holm branch also runs ``gc.collect()``, a full pass over every live object: about 0.09 s in
    the ``gwasm`` process (180,000 objects) whatever the number of p-values, once per score and
    comparison, which is why Holm is computed here.
    """
    sorted_p = np.asarray(sorted_p, dtype=np.float64)
    adjusted = np.maximum.accumulate(sorted_p * np.arange(len(sorted_p), 0, -1))
    adjusted[adjusted > 1] = 1
    return adjusted


def genomic_control_lambda(p: np.ndarray) -> float:
    """Genomic inflation factor λGC of a set of p-values.

    λGC = median(chi2.isf(p, 1)) / chi2.ppf(0.5, 1): the median test statistic, as a 1-df
    chi-squared, over its expectation under the null. About 1 when the tests are calibrated; above 1
    when every test is shifted (here: one architecture harder or easier overall, the analogue of
    population stratification).

    Parameters
    ----------
    p : float array
        p-values; NaN entries are ignored.

    Returns
    -------
    float
        λGC, NaN when no p is finite.

    Notes
    -----
    chi2.isf is decreasing in p, so the median statistic is taken from the one or two middle
    p-values (found by partitioning) instead of transforming every p.
    """
    p = np.asarray(p, dtype=np.float64)
    p = p[np.isfinite(p)]
    n = len(p)
    if n == 0:
        return float("nan")
    middle = np.partition(p, [(n - 1) // 2, n // 2])[[(n - 1) // 2, n // 2]]
    # chi2.isf(p, 1) = ndtri(p / 2)²; ndtri is accurate for tiny p.
    statistics = special.ndtri(middle / 2.0) ** 2
    return float(statistics.mean() / CHI2_1DF_MEDIAN)


def count_significant(adjusted_p: np.ndarray, alpha: float) -> int:
    """Number of tests with adjusted p at most ``alpha`` (missing p never counts)."""
    adjusted_p = np.asarray(adjusted_p, dtype=np.float64)
    return int(np.count_nonzero(adjusted_p <= alpha))
