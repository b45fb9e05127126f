"""p-values of the t and F distributions, and their -log10 in log space where p underflows.

float64 p keeps full relative precision down to about 1e-308 and underflows to 0 below about
1e-324, yet a strong association over many runs has p far below that. Both tails are regularised
incomplete beta functions I_x(a, b); where p < 1e-280, -log10 p is taken from a log-space
evaluation of I_x (:func:`log_betainc_small`) with x formed from logs, so that neither the
statistic squared nor p overflows or underflows. The special functions are evaluated on several
threads for long arrays (:func:`_elementwise`): they dominate the cost of a test over a million
examples.

Private to the statistics of :mod:`gwas_models.analysis`, which use :func:`t_pvalue` and
:func:`f_pvalue`.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import special

# Below this p, -log10(p) is taken from the log-space incomplete beta function instead of from p:
# float64 p keeps full relative precision down to ~1e-308 and underflows to 0 below ~1e-324.
_LOG_SPACE_BELOW = 1e-280
_LN10 = np.log(10.0)
# Arrays at least this long get their special functions evaluated on several threads.
_THREAD_ABOVE = 200_000



def _elementwise(function, *arrays: np.ndarray) -> np.ndarray:
    """``function(*arrays)`` for an elementwise scipy.special ufunc, split over CPU threads.

    The special functions (incomplete beta, Student's t) dominate the cost of a test over a
    million examples; ufuncs release the GIL, so halves of the array run on two cores at once.
    """
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in arrays))
    size = arrays[0].size
    n_threads = min(os.cpu_count() or 1, 8)
    if size < _THREAD_ABOVE or n_threads < 2:
        return function(*arrays)
    flat = [a.ravel() for a in arrays]
    out = np.empty(size)
    bounds = np.linspace(0, size, n_threads + 1).astype(int)

    def work(part: int) -> None:
        lo, hi = bounds[part], bounds[part + 1]
        out[lo:hi] = function(*(a[lo:hi] for a in flat))

    with ThreadPoolExecutor(n_threads) as pool:
        list(pool.map(work, range(n_threads)))
    return out.reshape(arrays[0].shape)


def _log_hyp2f1_tail_series(a: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """log 2F1(a+b, 1; a+1; x) for 0 <= x < 1 by its power series.

    The k-th term is prod_{j<k} (a+b+j)/(a+1+j) * x^k. scipy's ``hyp2f1`` returns NaN for large a
    with x near 1, which is where p underflows for large degrees of freedom, so the series is summed
    here, vectorised over examples (the loop runs over terms), with a geometric estimate of the
    remainder once the terms are negligible or the term budget is spent.
    """
    total = np.ones_like(x)
    term = np.ones_like(x)
    for k in range(20_000):
        term = term * x * (a + b + k) / (a + 1.0 + k)
        total = total + term
        if k % 16 == 15 and np.all(term <= 1e-17 * total):
            break
    ratio = x * (a + b + k + 1) / (a + 2.0 + k)
    with np.errstate(divide="ignore", invalid="ignore"):
        remainder = np.where(ratio < 1.0, term * ratio / (1.0 - ratio), 0.0)
    return np.log(total + remainder)


def log_betainc_small(a: np.ndarray, b: np.ndarray, log_x: np.ndarray, log_1mx: np.ndarray) -> np.ndarray:
    """Natural log of the regularised incomplete beta function I_x(a, b), accurate for tiny values.

    Uses I_x(a, b) = x^a (1-x)^b / (a B(a, b)) * 2F1(a+b, 1; a+1; x), taking x through its logs so
    that x^a never underflows.

    Parameters
    ----------
    a, b : arrays of positive shape parameters
    log_x, log_1mx : arrays
        log(x) and log(1 - x), computed by the caller without cancellation.
    """
    a, b, log_x, log_1mx = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a, b, log_x, log_1mx)))
    x = np.exp(log_x)
    return a * log_x + b * log_1mx - np.log(a) - special.betaln(a, b) + _log_hyp2f1_tail_series(a, b, x)


def t_pvalue(t_stat: np.ndarray, df: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided p-value of Student's t and its -log10, the latter finite when p underflows.

    Parameters
    ----------
    t_stat, df : arrays of the same shape

    Returns
    -------
    p, neg_log10_p : arrays. NaN in, NaN out.

    Notes
    -----
    The two-sided p equals I_x(df/2, 1/2) with x = df / (df + t²). Where p < 1e-280,
    -log10 p comes from :func:`log_betainc_small` with log x and log(1-x) formed from log|t|, so
    neither t² nor p overflows or underflows.
    """
    t_abs = np.abs(np.asarray(t_stat, dtype=np.float64))
    df = np.asarray(df, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.minimum(2.0 * _elementwise(special.stdtr, df, -t_abs), 1.0)
        neg_log10_p = -np.log10(p)
    tiny = p < _LOG_SPACE_BELOW
    if np.any(tiny):
        with np.errstate(invalid="ignore", divide="ignore"):  # t = ±inf gives NaN, reported as NAN
            neg_log10_p[tiny] = _t_tail_neg_log10_p(t_abs[tiny], df[tiny])
    return p, neg_log10_p


def _t_tail_neg_log10_p(t_abs: np.ndarray, df: np.ndarray) -> np.ndarray:
    """-log10 of the two-sided t p-value from log x and log(1-x), x = df / (df + t²)."""
    log_df = np.log(df)
    log_t2 = 2.0 * np.log(t_abs)
    log_denominator = np.logaddexp(log_df, log_t2)
    log_p = log_betainc_small(df / 2.0, 0.5, log_df - log_denominator, log_t2 - log_denominator)
    return -log_p / _LN10


def f_pvalue(f_stat: np.ndarray, df_num: np.ndarray, df_denom: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Upper-tail p-value of the F distribution and its -log10 (finite when p underflows).

    The upper tail equals I_x(df_denom/2, df_num/2) with x = df_denom / (df_denom + df_num F).
    """
    f_stat = np.asarray(f_stat, dtype=np.float64)
    df_num, df_denom = np.broadcast_arrays(np.asarray(df_num, dtype=np.float64), np.asarray(df_denom, dtype=np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        p = _elementwise(special.fdtrc, df_num, df_denom, f_stat)
        neg_log10_p = -np.log10(p)
    tiny = p < _LOG_SPACE_BELOW
    if np.any(tiny):
        with np.errstate(invalid="ignore", divide="ignore"):
            neg_log10_p[tiny] = _f_tail_neg_log10_p(f_stat[tiny], df_num[tiny], df_denom[tiny])
    return p, neg_log10_p


def _f_tail_neg_log10_p(f_stat: np.ndarray, df_num: np.ndarray, df_denom: np.ndarray) -> np.ndarray:
    """-log10 of the F upper tail from log x and log(1-x), x = df_denom / (df_denom + df_num F)."""
    log_d2 = np.log(df_denom)
    log_d1f = np.log(df_num) + np.log(f_stat)
    log_denominator = np.logaddexp(log_d2, log_d1f)
    log_p = log_betainc_small(df_denom / 2.0, df_num / 2.0, log_d2 - log_denominator, log_d1f - log_denominator)
    return -log_p / _LN10
