"""How far a run's marker scores lie from each architecture a fingerprint knows: "none of these".

A fingerprint's classifier always names one of its architectures. :class:`MarkerDistance` says
when a run is unlike all of them: per architecture, each marker's score as a z-score against that
architecture's training runs (its mean, and a within-architecture spread pooled over the
architectures), averaged over the markers; its null distribution is the distance of each training
run to its own architecture with that run left out of everything, the choice of markers included.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from scipy import stats
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted, validate_data

from gwas_models.analysis.markers import MIN_TRAINING_RUNS, MarkerSelector, RunScoresTags
from gwas_models.errors import InputError

#: ``PREDICTED`` of a run whose marker scores lie far from every architecture the fingerprint knows.
NONE_OF_THESE = "none of these"
#: Share of the runs of known architectures that :func:`identify` should name (not call
#: :data:`NONE_OF_THESE`): the quantile of the reference distances used as the threshold.
DEFAULT_OOD_QUANTILE = 0.99
#: Runs per architecture that the out-of-distribution reference needs: a run left out still leaves
#: its architecture the two runs that Welch's test needs to choose markers without it.
MIN_REFERENCE_RUNS = MIN_TRAINING_RUNS + 1


# --------------------------------------------------------------------------------------------
# Out-of-distribution reference: "none of these"
# --------------------------------------------------------------------------------------------


def check_ood_quantile(ood_quantile: float) -> float:
    """``ood_quantile`` as a float, or :class:`InputError` unless 0.5 <= it < 1."""
    if isinstance(ood_quantile, bool) or not isinstance(ood_quantile, (int, float, np.floating)) or not 0.5 <= ood_quantile < 1:
        raise InputError(f"ood_quantile must lie in [0.5, 1), got {ood_quantile!r}", parameter="ood_quantile")
    return float(ood_quantile)


class MarkerDistance(RunScoresTags, BaseEstimator):
    """How far a run's marker scores lie from each architecture, and how unusual that is.

    The *distance* of a run ``x`` (its K marker scores) to architecture ``c`` is the mean over the
    markers of its squared z-score against that architecture's training runs, divided by the
    variance factor of a prediction from ``n_c`` runs::

        d_c(x) = mean_k ((x_k - m_ck) / s_k)² / (1 + 1/n_c)

    with ``m_ck`` the architecture's mean and ``s_k`` the pooled within-architecture standard
    deviation of marker k (``n - n_classes`` degrees of freedom). Per-marker z-scores need no
    covariance matrix, so K may exceed the runs per architecture; dividing by ``1 + 1/n_c`` puts
    architectures with different run counts on one scale.

    The *reference* is the same distance of every training run to its own architecture, computed
    with that run left out of everything, **marker selection included**: the selector is refitted
    on the other runs, and the run's distance is taken on the markers they choose. Markers are the
    examples where the training runs happened to agree within an architecture and differ between
    them (Welch's t is large when the variance is small), so a run that helped choose them lies
    closer to its architecture than a new run would; leaving it out of the selection too makes it
    exchangeable with a new run of that architecture, and the reference an honest null.

    A new run is *out of distribution* when even its nearest architecture is farther than the
    ``q`` quantile of that null. With a few dozen runs the empirical 0.99 quantile does not exist,
    so the threshold is the one-sided upper ``q`` prediction bound of a normal fitted to the cube
    roots of the reference distances, ``mean + t(q; n-1) · sd · sqrt(1 + 1/n)``, cubed: the cube
    root makes a sum of squares nearly normal (Wilson and Hilferty, 1931), and the Student t and
    ``sqrt(1 + 1/n)`` account for estimating the null from ``n`` runs (the small-sample
    correction). :meth:`p_value` is the same model's probability that a run of a known
    architecture lies at least this far, so a run is out of distribution exactly when its
    p-value is below ``1 - q``; :meth:`as_far` is the plain fraction of reference runs at least as
    far from their own architecture. Left out, a run's architecture has one run fewer than the
    fitted reference, which makes the reference, and so the threshold, slightly conservative.

    Parameters
    ----------
    selector : MarkerSelector, optional
        Unfitted template of the marker selection (default ``MarkerSelector()``: top, K = 8);
        cloned for the fit on every run and for each run left out.

    Attributes
    ----------
    selector_ : MarkerSelector
        Fitted on every run; its ``markers_`` are the distance's markers.
    classes_ : array (n_classes,)
        The labels of ``y``, sorted; distances come in this order.
    class_mean_ : float array (n_classes, K)
    scale_ : float array (K,)
        Pooled within-architecture standard deviation of each marker.
    class_count_ : int array (n_classes,)
        Training runs per architecture.
    reference_distance_ : float array (n_runs,)
        Each training run's distance to its own architecture, left out of everything.
    reference_class_ : int array (n_runs,)
        Index into ``classes_`` of each reference run.
    n_features_in_ : int
    """

    def __init__(self, selector: MarkerSelector | None = None) -> None:
        self.selector = selector

    def fit(self, X, y) -> "MarkerDistance":
        """Fit on score rows ``X`` (n_runs, n_examples) of architectures ``y``; column j is example j.

        Raises
        ------
        InputError
            When an architecture has fewer than :data:`MIN_REFERENCE_RUNS` runs.
        """
        X, y = validate_data(self, X, y, ensure_all_finite=False, dtype=np.float64)
        self.classes_, codes = np.unique(y, return_inverse=True)
        counts = np.bincount(codes, minlength=len(self.classes_))
        if len(self.classes_) < 2 or counts.min() < MIN_REFERENCE_RUNS:
            fewest = self.classes_[int(counts.argmin())]
            raise InputError(
                f"architecture {fewest!r} has {int(counts.min())} run(s); the out-of-distribution reference leaves each run out "
                f"in turn and needs at least {MIN_REFERENCE_RUNS} runs of each of at least two architectures"
            )
        template = self.selector if self.selector is not None else MarkerSelector()
        self.selector_ = clone(template).fit(X, codes)
        self.class_mean_, self.scale_, self.class_count_ = _reference_model(X[:, self.selector_.markers_], codes, len(self.classes_))
        self.reference_distance_ = _left_out_distances(X, codes, template, len(self.classes_))
        self.reference_class_ = codes
        return self

    def distance(self, features: np.ndarray) -> np.ndarray:
        """Distances (n_runs, n_classes) of the markers' scores ``features`` (n_runs, K) to each architecture."""
        check_is_fitted(self)
        features = np.atleast_2d(np.asarray(features, dtype=np.float64))
        return _distances(features, self.class_mean_, self.scale_, self.class_count_)

    def transform(self, X) -> np.ndarray:
        """Distances (n_runs, n_classes) of score rows ``X`` (n_runs, n_examples) to each architecture."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, ensure_all_finite=False, dtype=np.float64)
        return self.distance(X[:, self.selector_.markers_])

    def threshold(self, quantile: float = DEFAULT_OOD_QUANTILE) -> float:
        """The distance beyond which a run is out of distribution: the ``quantile`` prediction bound."""
        check_is_fitted(self)
        quantile = check_ood_quantile(quantile)
        centre, spread, df = self._null()
        return float(max(centre + stats.t.ppf(quantile, df) * spread, 0.0) ** 3)

    def p_value(self, distance: np.ndarray) -> np.ndarray:
        """Probability that a run of a known architecture lies at least ``distance`` from it."""
        check_is_fitted(self)
        centre, spread, df = self._null()
        root = np.cbrt(np.asarray(distance, dtype=np.float64))
        if spread == 0:  # every reference run equally far: beyond it is unusual, within it is not
            return np.where(root > centre, 0.0, 1.0)
        return stats.t.sf((root - centre) / spread, df)

    def as_far(self, distance: np.ndarray) -> np.ndarray:
        """Fraction of the reference runs at least ``distance`` from their own architecture."""
        check_is_fitted(self)
        distance = np.asarray(distance, dtype=np.float64)
        reference = np.sort(self.reference_distance_)
        return (len(reference) - np.searchsorted(reference, distance, side="left")) / len(reference)

    def _null(self) -> tuple[float, float, int]:
        """Centre and prediction spread of the reference's cube roots, and the t's degrees of freedom."""
        roots = np.cbrt(self.reference_distance_)
        n = len(roots)
        return float(roots.mean()), float(roots.std(ddof=1) * np.sqrt(1.0 + 1.0 / n)), n - 1


def _reference_model(features: np.ndarray, codes: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class means (n_classes, K), pooled within-class sd (K,) and run counts of marker scores."""
    counts = np.bincount(codes, minlength=n_classes)
    sums = np.zeros((n_classes, features.shape[1]))
    np.add.at(sums, codes, features)
    means = sums / counts[:, None]
    residuals = features - means[codes]
    variance = (residuals**2).sum(axis=0) / (len(features) - n_classes)
    # A marker constant within every architecture would divide by zero; give it the typical
    # variance of the others (1 when there is none), so that a deviation counts, but finitely.
    positive = variance[variance > 0]
    variance = np.where(variance > 0, variance, positive.mean() if len(positive) else 1.0)
    return means, np.sqrt(variance), counts


def _distances(features: np.ndarray, means: np.ndarray, scale: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``mean_k ((x_k - m_ck) / s_k)² / (1 + 1/n_c)`` for every run and class, (n_runs, n_classes)."""
    z = (features[:, None, :] - means[None, :, :]) / scale
    return (z**2).mean(axis=2) / (1.0 + 1.0 / counts)


def _left_out_distances(X: np.ndarray, codes: np.ndarray, selector: MarkerSelector, n_classes: int) -> np.ndarray:
    """Each run's distance to its own class, with the run left out of marker selection and reference.

    A loop over runs, not examples: each left-out run needs its own marker selection (one Welch
    test over every example, vectorised inside the selector).
    """
    distances = np.empty(len(X))
    for run in range(len(X)):
        others = np.arange(len(X)) != run
        markers = clone(selector).fit(X[others], codes[others]).markers_
        means, scale, counts = _reference_model(X[others][:, markers], codes[others], n_classes)
        distances[run] = _distances(X[run : run + 1, markers], means, scale, counts)[0, codes[run]]
    return distances


def fitted_distance(
    selector: MarkerSelector,
    classes: Sequence[Any],
    class_mean: np.ndarray,
    scale: np.ndarray,
    reference_distance: np.ndarray,
    reference_class: np.ndarray,
) -> MarkerDistance:
    """A :class:`MarkerDistance` in its fitted state, rebuilt from saved arrays.

    ``selector`` is the fitted selector whose markers the distance uses (a saved fingerprint's);
    the run counts per class are those of ``reference_class`` (every training run is a reference run).
    """
    distance = MarkerDistance(selector=MarkerSelector(n_markers=len(selector.markers_), selection="top"))
    distance.selector_ = selector
    distance.n_features_in_ = selector.n_features_in_
    distance.classes_ = np.asarray(classes)
    distance.class_mean_ = np.asarray(class_mean, dtype=np.float64)
    distance.scale_ = np.asarray(scale, dtype=np.float64)
    distance.reference_distance_ = np.asarray(reference_distance, dtype=np.float64)
    distance.reference_class_ = np.asarray(reference_class, dtype=np.int64)
    distance.class_count_ = np.bincount(distance.reference_class_, minlength=len(distance.classes_))
    return distance


__all__ = [
    "DEFAULT_OOD_QUANTILE",
    "MIN_REFERENCE_RUNS",
    "MarkerDistance",
    "NONE_OF_THESE",
    "check_ood_quantile",
    "fitted_distance",
]
