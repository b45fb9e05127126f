"""Multiple testing and genomic control over the examples of one score.

The family of tests is one score in one comparison (a pair of architectures, or the one-way test):
its examples that could be tested. Untested examples (p missing, an ``ERRCODE``) are set aside
before adjusting, because a single NaN makes statsmodels' ``fdr_bh`` return NaN for every example;
they get a missing adjusted p.

Adjusted p-values come from ``statsmodels.stats.multitest.multipletests``, always called with an
explicit ``method`` (its default, ``"hs"``, is Holm–Šidák, not Benjamini–Hochberg).
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
from scipy import special, stats
from statsmodels.stats.multitest import multipletests

from gwas_models.errors import InputError

#: Adjustment methods (statsmodels names), in output order.
ADJUST_METHODS: tuple[str, ...] = ("bonferroni", "holm", "sidak", "fdr_bh", "fdr_by")
#: Sumstats column of each method.
ADJUST_COLUMNS: dict[str, str] = {
    "bonferroni": "BONF",
    "holm": "HOLM",
    "sidak": "SIDAK",
    "fdr_bh": "FDR_BH",
    "fdr_by": "FDR_BY",
}
#: Median of the chi-squared distribution with one degree of freedom (0.454936...).
CHI2_1DF_MEDIAN: float = float(stats.chi2.ppf(0.5, 1))
#: λGC above this is reported as inflation.
LAMBDA_WARN_ABOVE: float = 1.1


def parse_adjust_list(text: str | Iterable[str] | None) -> tuple[str, ...]:
    """Adjustment methods from a comma-separated list (``None``, ``""`` or ``"all"``: all five).

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
            raise InputError(f"unknown adjustment method {name!r}; choose from {', '.join(ADJUST_METHODS)}")
    return tuple(dict.fromkeys(names))


def check_alpha(alpha: float) -> float:
    """Return ``alpha`` as a float, or raise :class:`InputError` unless 0 < alpha < 1."""
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise InputError(f"alpha must be strictly between 0 and 1, got {alpha:g}")
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
    methods = parse_adjust_list(methods)
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
            # sidak takes log1p(-p): -inf at p = 1, which gives the right answer, 1.
            with np.errstate(divide="ignore"), _gc_frozen():
                adjusted[order] = multipletests(sorted_p, alpha=alpha, method=method, is_sorted=True)[1]
        columns[method] = adjusted
    return pd.DataFrame(columns)


@contextmanager
def _gc_frozen() -> Iterator[None]:
    """Hide the objects that exist now from the garbage collector for the duration of a call.

    statsmodels' Holm adjustment calls ``gc.collect()``, which costs 0.1-0.2 s in a process that has
    imported the whole toolkit (a full pass over every live object), once per score and pair.
    Frozen objects are skipped by that pass, which then only sees the call's own garbage.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


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
