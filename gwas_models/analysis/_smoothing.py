"""The numerical pieces behind limma's ``trend=TRUE`` and ``robust=TRUE``, in numpy.

Private to :mod:`gwas_models.analysis.moderated`. Each piece reproduces what R computes, so that
the moderated t equals limma's to rounding:

* :func:`natural_spline_basis`: a basis of the space that ``splines::ns(x, df, intercept=TRUE)``
  spans (cubic B-splines on knots at quantiles of ``x``, boundary knots at its range, second
  derivative zero at both boundaries);
* :func:`least_squares_fit`: the fitted values and rank of ``lm.fit`` (columns that add less than
  1e-7 of their norm are dropped, as LINPACK's ``dqrdc2`` does);
* :func:`lowess`: Cleveland's (1979) locally weighted regression with robustness iterations and
  the ``delta`` shortcut, as ``stats::lowess`` (which limma's ``loessFit`` calls without weights);
* :func:`find_root`: Brent's (1973) root finder, step for step as R's ``uniroot``, whose
  tolerance (1e-8 on a 0-1 scale) leaves the root's last digits to the path of its iterates;
* :func:`gauss_legendre_unit`: Gauss-Legendre nodes and weights on [0, 1]
  (``statmod::gauss.quad.prob(n, "uniform")``).

All work on arrays; the only Python loops run over spline orders, lowess anchor points (at most
a few hundred: one per ``delta`` = 1% of the range) and root-finding steps.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Callable

import numpy as np
from scipy import linalg

#: ``lm.fit``'s tolerance: a column whose part outside the previous columns is below this
#: fraction of its norm is left out of the fit.
LM_TOLERANCE = 1e-7
# Anchors x window entries per block of lowess's local fits (32 MB of float64).
_LOWESS_BLOCK = 4_000_000


# --------------------------------------------------------------------------------------------
# Natural cubic splines and least squares
# --------------------------------------------------------------------------------------------


def quantile_type7(values: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """R's default ``quantile`` (type 7, linear between order statistics); numpy's default."""
    return np.quantile(np.asarray(values, dtype=np.float64), probabilities)


def bspline_basis(x: np.ndarray, knots: np.ndarray, order: int, derivative: int = 0) -> np.ndarray:
    """B-spline basis functions (or a derivative) of ``order`` on ``knots`` at ``x``.

    The Cox-de Boor recursion with ``0/0 = 0`` for repeated knots; a point at the last knot counts
    in the last non-empty interval (as ``splines::splineDesign`` evaluates the right boundary).

    Parameters
    ----------
    x : float array (n,)
        Points inside ``[knots[0], knots[-1]]``.
    knots : float array, non-decreasing
    order : int
        4 for cubic splines.
    derivative : int
        0 for the values; 1, 2, ... for derivatives.

    Returns
    -------
    float array (n, len(knots) - order)
    """
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(knots, dtype=np.float64)
    n_intervals = len(t) - 1
    basis = ((t[:-1] <= x[:, None]) & (x[:, None] < t[1:])).astype(np.float64)
    at_end = x == t[-1]
    if at_end.any():
        last = np.flatnonzero(t[:-1] < t[1:])[-1]
        basis[at_end] = 0.0
        basis[at_end, last] = 1.0
    for degree in range(1, order):
        width = n_intervals - degree
        left_span = t[degree : degree + width] - t[:width]
        right_span = t[degree + 1 : degree + 1 + width] - t[1 : 1 + width]
        with np.errstate(divide="ignore", invalid="ignore"):
            if degree >= order - derivative:  # differentiate at this step
                left = np.where(left_span > 0, degree / left_span, 0.0) * basis[:, :width]
                right = np.where(right_span > 0, degree / right_span, 0.0) * basis[:, 1 : 1 + width]
            else:
                left = np.where(left_span > 0, (x[:, None] - t[:width]) / left_span, 0.0) * basis[:, :width]
                right = np.where(right_span > 0, (t[degree + 1 : degree + 1 + width] - x[:, None]) / right_span, 0.0) * basis[:, 1 : 1 + width]
        basis = left - right if degree >= order - derivative else left + right
    return basis


def natural_spline_basis(x: np.ndarray, df: int) -> np.ndarray:
    """A basis of the natural cubic splines of ``splines::ns(x, df=df, intercept=TRUE)``.

    ``df - 2`` interior knots at the quantiles ``1/(df-1), ..., (df-2)/(df-1)`` of ``x``, boundary
    knots at its minimum and maximum; the cubic B-splines on them, restricted to those with zero
    second derivative at both boundaries. The columns differ from R's by an invertible linear map
    (R takes them from a QR decomposition), so fitted values are the same.

    Parameters
    ----------
    x : float array (n,)
    df : int
        At least 2: the number of columns.

    Returns
    -------
    float array (n, df)
    """
    x = np.asarray(x, dtype=np.float64)
    boundary = np.array([x.min(), x.max()])
    n_interior = df - 2
    interior = quantile_type7(x, np.linspace(0.0, 1.0, n_interior + 2)[1:-1]) if n_interior > 0 else np.empty(0)
    knots = np.sort(np.concatenate([np.repeat(boundary, 4), interior]))
    basis = bspline_basis(x, knots, 4)
    constraints = bspline_basis(boundary, knots, 4, derivative=2)  # (2, n_basis): f'' at both ends
    # The last columns of Q in QR(constraints') span the splines whose f'' vanishes at both ends.
    q, _ = linalg.qr(constraints.T)
    return basis @ q[:, 2:]


def independent_columns(design: np.ndarray, tolerance: float = LM_TOLERANCE) -> np.ndarray:
    """Indices of the columns that ``lm.fit`` keeps: each column in order, unless its part outside
    the columns kept before it is below ``tolerance`` times its norm (``dqrdc2``'s limited pivoting).

    Parameters
    ----------
    design : float array (n, p)

    Returns
    -------
    int array of the kept columns, in order.
    """
    design = np.asarray(design, dtype=np.float64)
    kept: list[int] = []
    basis = np.empty((design.shape[0], 0))
    for column in range(design.shape[1]):  # a loop over the (few) columns of a design
        vector = design[:, column]
        norm = np.linalg.norm(vector)
        residual = vector - basis @ (basis.T @ vector)
        residual = residual - basis @ (basis.T @ residual)  # twice is enough (Kahan, Parlett)
        remaining = np.linalg.norm(residual)
        if norm > 0 and remaining >= tolerance * norm:
            kept.append(column)
            basis = np.column_stack([basis, residual / remaining])
    return np.asarray(kept, dtype=np.int64)


_LAST_TREND: list[tuple[np.ndarray, int, np.ndarray, int]] = []


def spline_trend_fit(x: np.ndarray, df: int, y: np.ndarray) -> tuple[np.ndarray, int]:
    """Fitted values and rank of the least-squares fit of ``y`` on
    :func:`natural_spline_basis` ``(x, df)``; the projection is kept for the next call with the
    same ``x`` and ``df`` (the relabellings of λ's null refit the same mean scores)."""
    if _LAST_TREND and _LAST_TREND[0][1] == df and np.array_equal(_LAST_TREND[0][0], x):
        _, _, q, rank = _LAST_TREND[0]
    else:
        design = natural_spline_basis(x, df)
        kept = independent_columns(design)
        q, _ = np.linalg.qr(design[:, kept])
        rank = len(kept)
        _LAST_TREND[:] = [(np.array(x, dtype=np.float64), df, q, rank)]
    return q @ (q.T @ y), rank


def least_squares_fit(design: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, int]:
    """Fitted values of the least-squares fit of ``y`` on ``design`` and its rank, as ``lm.fit``.

    Parameters
    ----------
    design : float array (n, p)
    y : float array (n,) or (n, k)

    Returns
    -------
    fitted : float array shaped like ``y``
    rank : int
    """
    kept = independent_columns(design)
    q, _ = np.linalg.qr(np.asarray(design, dtype=np.float64)[:, kept])
    return q @ (q.T @ y), len(kept)


# --------------------------------------------------------------------------------------------
# lowess
# --------------------------------------------------------------------------------------------


def lowess(x: np.ndarray, y: np.ndarray, span: float, iterations: int) -> np.ndarray:
    """Cleveland's lowess fit of ``y`` on ``x``, as limma's ``loessFit(y, x, span=span,
    iterations=iterations)`` without weights, i.e. ``stats::lowess(x, y, f=span,
    iter=iterations - 1)`` with ``delta`` = 1% of the range of ``x``.

    Each fit is a local linear regression with tricube weights over the ``span * n`` nearest
    points, computed at anchor points at most ``delta`` apart and linearly interpolated between
    them; the robustness iterations downweight points by the bisquare of their residual over six
    times the median absolute residual. What depends on ``x`` alone (anchors, windows, tricube
    weights) is kept for the next call with the same ``x`` (the relabellings of λ's null refit
    the same mean scores).

    Parameters
    ----------
    x, y : float arrays (n,)
    span : float
        Fraction of the points in each local fit.
    iterations : int
        Local fits in all (the first, then ``iterations - 1`` robustness iterations).

    Returns
    -------
    float array (n,): the fitted values, in the order of ``x``.

    References
    ----------
    W. S. Cleveland (1979), "Robust locally weighted regression and smoothing scatterplots",
    Journal of the American Statistical Association 74, 829-836.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = len(x)
    if n < 2:
        return y.copy()
    plan = _lowess_plan(x, span)
    ys = y[plan.order]
    robustness = np.ones(n)
    fitted = np.empty(n)
    for step in range(iterations):  # a loop over robustness iterations (4 in limma)
        fitted[plan.anchors] = _local_fits(plan, ys, robustness if step > 0 else None)
        fitted[plan.copy_to] = fitted[plan.copy_from]
        if len(plan.between):
            last, nxt = plan.before, plan.after
            fitted[plan.between] = plan.alpha * fitted[nxt] + (1.0 - plan.alpha) * fitted[last]
        if step == iterations - 1:
            break
        absolute = np.abs(ys - fitted)
        scale = absolute.sum() / n
        middle = np.partition(absolute, [(n - 1) // 2, n // 2])
        six_mad = 3.0 * (middle[n // 2] + middle[n // 2 - 1]) if n % 2 == 0 else 6.0 * middle[n // 2]
        if six_mad < 1e-7 * scale:  # residuals already (nearly) zero
            break
        robustness = np.where(
            absolute <= 0.001 * six_mad, 1.0, np.where(absolute <= 0.999 * six_mad, (1.0 - (absolute / six_mad) ** 2) ** 2, 0.0)
        )
    result = np.empty(n)
    result[plan.order] = fitted
    return result


@dataclass(frozen=True)
class _LowessPlan:
    """What lowess's fits depend on besides ``y``: sorted order, anchors with their windows,
    points copied (ties of an anchor) or interpolated between fitted points, and per block of
    anchors the window indices and tricube weights (kept when small)."""

    x: np.ndarray
    span: float
    n_local: int
    order: np.ndarray
    xs: np.ndarray
    anchors: np.ndarray
    lefts: np.ndarray
    radius: np.ndarray
    copy_to: np.ndarray
    copy_from: np.ndarray
    between: np.ndarray
    before: np.ndarray
    after: np.ndarray
    alpha: np.ndarray
    windows: tuple | None  # ((rows, index, tricube), ...) per block of anchors, or None: made per call


_LAST_PLAN: list[_LowessPlan] = []


def _lowess_plan(x: np.ndarray, span: float) -> _LowessPlan:
    """The plan of :func:`lowess` for ``x`` (the last one, when ``x`` and ``span`` are the same)."""
    if _LAST_PLAN and _LAST_PLAN[0].span == span and np.array_equal(_LAST_PLAN[0].x, x):
        return _LAST_PLAN[0]
    n = len(x)
    order = np.argsort(x, kind="stable")
    xs = x[order]
    n_local = max(2, min(n, int(span * n + 1e-7)))
    delta = 0.01 * (xs[-1] - xs[0])
    anchors, lefts = [], []
    copy_to, copy_from = [], []
    gaps: list[tuple[int, int]] = []  # (last fitted point, next anchor) around skipped points
    left, last, i = 0, -1, 0
    while True:  # a loop over anchors: at most about two per delta, i.e. a few hundred
        if left + n_local < n:
            # The window [left, left + n_local) moves right while that shrinks its radius about x[i].
            left = _window_left(xs, i, left, n_local)
        anchors.append(i)
        lefts.append(left)
        if last < i - 1:
            gaps.append((last, i))
        last = i
        # Points within delta of the anchor are skipped; its ties copy its fit.
        stop = int(np.searchsorted(xs, xs[last] + delta, side="right"))
        ties_end = int(np.searchsorted(xs, xs[last], side="right"))
        if ties_end > last + 1:
            copy_to.extend(range(last + 1, ties_end))
            copy_from.extend([i] * (ties_end - last - 1))
            last = ties_end - 1
        i = max(last + 1, stop - 1)
        if last >= n - 1:
            break
    def joined(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts).astype(np.int64) if parts else np.empty(0, dtype=np.int64)

    between = joined([np.arange(start + 1, end) for start, end in gaps])
    before = joined([np.full(end - start - 1, start) for start, end in gaps])
    after = joined([np.full(end - start - 1, end) for start, end in gaps])
    alpha = (xs[between] - xs[before]) / (xs[after] - xs[before]) if len(between) else np.empty(0)
    anchors_array, lefts_array = np.asarray(anchors, dtype=np.int64), np.asarray(lefts, dtype=np.int64)
    centre = xs[anchors_array]
    plan = _LowessPlan(
        x=x.copy(),
        span=span,
        n_local=n_local,
        order=order,
        xs=xs,
        anchors=anchors_array,
        lefts=lefts_array,
        radius=np.maximum(centre - xs[lefts_array], xs[lefts_array + n_local - 1] - centre),
        copy_to=np.asarray(copy_to, dtype=np.int64),
        copy_from=np.asarray(copy_from, dtype=np.int64),
        between=between,
        before=before,
        after=after,
        alpha=alpha,
        windows=None,
    )
    if len(anchors_array) * plan.n_local <= _LOWESS_BLOCK:  # small enough to keep the weights too
        plan = replace(plan, windows=tuple(_windows(plan)))
    _LAST_PLAN[:] = [plan]
    return plan


def _window_left(x: np.ndarray, i: int, left: int, n_local: int) -> int:
    """The left end of the ``n_local``-point window about ``x[i]``: moved right from ``left`` while
    the point leaving is farther from ``x[i]`` than the one entering (as lowess steps it)."""
    n = len(x)
    candidates = range(left, n - n_local)

    class _Stays:  # "the window stops here": false for a prefix of the candidates, then true
        def __getitem__(self, k: int) -> bool:
            position = candidates[k]
            return not (x[i] - x[position] > x[position + n_local] - x[i])

        def __len__(self) -> int:
            return len(candidates)

    return left + bisect_left(_Stays(), True)


def _windows(plan: _LowessPlan):
    """Per block of anchors: the rows of the anchors, the indices of their windows (anchors x
    width, clipped) and the tricube weights (0 outside the window, past 0.999 of the radius)."""
    xs, anchors, lefts, radius = plan.xs, plan.anchors, plan.lefts, plan.radius
    n = len(xs)
    rights = lefts + plan.n_local - 1
    centre = xs[anchors]
    # Points past the window that lie within the radius (ties) take part too.
    ends = np.maximum(np.searchsorted(xs, centre + radius, side="right"), rights + 1)
    width = int((ends - lefts).max())
    offsets = np.arange(width)
    block = max(1, _LOWESS_BLOCK // max(width, 1))
    out = []
    for start in range(0, len(anchors), block):  # blocks of anchors
        rows = slice(start, start + block)
        index = lefts[rows, None] + offsets
        inside = index < ends[rows, None]
        index = np.minimum(index, n - 1)
        h = radius[rows, None]
        r = np.abs(xs[index] - centre[rows, None])
        with np.errstate(divide="ignore", invalid="ignore"):
            tricube = np.where(r <= 0.001 * h, 1.0, (1.0 - (r / h) ** 3) ** 3)
        out.append((rows, index, np.where(inside & (r <= 0.999 * h), tricube, 0.0)))
    return out


def _local_fits(plan: _LowessPlan, y: np.ndarray, robustness: np.ndarray | None) -> np.ndarray:
    """lowess's weighted local linear fits at the anchors (``y`` in sorted order), by blocks."""
    xs, anchors = plan.xs, plan.anchors
    spread = xs[-1] - xs[0]
    centre = xs[anchors]
    windows = plan.windows if plan.windows is not None else _windows(plan)
    out = np.empty(len(anchors))
    for rows, index, tricube in windows:  # blocks of anchors
        weights = tricube * robustness[index] if robustness is not None else tricube
        xw = xs[index]
        xi = centre[rows, None]
        total = weights.sum(axis=1, keepdims=True)
        ok = total[:, 0] > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            weights = weights / total
            mean_x = (weights * xw).sum(axis=1, keepdims=True)
            spread_x = (weights * (xw - mean_x) ** 2).sum(axis=1, keepdims=True)
            slope = (xi - mean_x) / spread_x
            sloped = (plan.radius[rows, None] > 0) & (np.sqrt(spread_x) > 0.001 * spread)
            weights = np.where(sloped, weights * (slope * (xw - mean_x) + 1.0), weights)
            fit = (weights * y[index]).sum(axis=1)
        out[rows] = np.where(ok, fit, y[anchors[rows]])
    return out


# --------------------------------------------------------------------------------------------
# Root finding and quadrature
# --------------------------------------------------------------------------------------------


def find_root(
    function: Callable[[float], float],
    lower: float,
    upper: float,
    f_lower: float,
    f_upper: float,
    tolerance: float,
    max_iterations: int = 1000,
) -> float:
    """A root of ``function`` in ``[lower, upper]`` by Brent's method, as R's ``uniroot``.

    Each step takes inverse quadratic (or linear) interpolation when it falls well inside the
    bracket and shrinks it fast enough, else bisection; it stops when half the bracket is below
    ``2 eps |b| + tolerance / 2``. The iterates are those of R's ``zeroin``, so the root agrees
    with ``uniroot(..., tol=tolerance)`` to rounding, not merely to ``tolerance``.

    Parameters
    ----------
    function : callable float -> float
    lower, upper : float
        The bracket; ``f_lower`` and ``f_upper`` are the function's values there, of opposite sign.
    tolerance : float
    max_iterations : int

    Returns
    -------
    float

    References
    ----------
    R. P. Brent (1973), Algorithms for Minimization without Derivatives, chapter 4.
    """
    eps = np.finfo(np.float64).eps
    a, b, fa, fb = float(lower), float(upper), float(f_lower), float(f_upper)
    c, fc = a, fa
    if fa == 0.0:
        return a
    if fb == 0.0:
        return b
    for _ in range(max_iterations + 1):  # root-finding steps
        previous_step = b - a
        if abs(fc) < abs(fb):  # keep b the best estimate, c the other end of the bracket
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tolerance_here = 2.0 * eps * abs(b) + tolerance / 2.0
        step = (c - b) / 2.0
        if abs(step) <= tolerance_here or fb == 0.0:
            return b
        if abs(previous_step) >= tolerance_here and abs(fa) > abs(fb):
            towards_c = c - b
            if a == c:  # two points: the secant
                ratio = fb / fa
                p = towards_c * ratio
                q = 1.0 - ratio
            else:  # three points: inverse quadratic interpolation
                q_ratio, ratio_c, ratio_a = fa / fc, fb / fc, fb / fa
                p = ratio_a * (towards_c * q_ratio * (q_ratio - ratio_c) - (b - a) * (ratio_c - 1.0))
                q = (q_ratio - 1.0) * (ratio_c - 1.0) * (ratio_a - 1.0)
            if p > 0:
                q = -q
            else:
                p = -p
            if p < 0.75 * towards_c * q - abs(tolerance_here * q) / 2.0 and p < abs(previous_step * q / 2.0):
                step = p / q
        if abs(step) < tolerance_here:
            step = tolerance_here if step > 0 else -tolerance_here
        a, fa = b, fb
        b = b + step
        fb = float(function(b))
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    return b


@lru_cache(maxsize=4)
def gauss_legendre_unit(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights for integrals over [0, 1] (weights sum to 1)."""
    nodes, weights = np.polynomial.legendre.leggauss(n)
    return (nodes + 1.0) / 2.0, weights / 2.0
