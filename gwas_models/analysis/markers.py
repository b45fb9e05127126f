"""Marker selection as a scikit-learn transformer (paper §4.3).

:class:`MarkerSelector` learns, from the scores of some runs ``X`` (n_runs, n_examples) and their
architectures ``y``, which K examples serve as *markers*, and then keeps only those columns. Put in
a :class:`~sklearn.pipeline.Pipeline` before a classifier, it is refitted on the training runs of
every cross-validation split, so markers are chosen on training runs only by construction: the
held-out runs' noise never chooses them.

Evidence
    −log10 p per example of Welch's two-sample t-test (two architectures) or of Welch's one-way
    ANOVA (three or more), both from :mod:`gwas_models.analysis.association`, computed for every
    example at once.
Candidates
    An example can be a marker only if its score is finite in every run of ``X`` (a classifier needs
    every feature of every run); ``top`` and ``bottom`` further need the test to have been done.
Selections
    ``top``: the K highest evidence, strongest first; ``bottom``: the K lowest, weakest first (ties
    go to the lower column); ``random``: K candidates drawn uniformly, in increasing column order.
"""

from __future__ import annotations

import zlib
from typing import NamedTuple, Sequence

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_feature_names_in, check_array, check_is_fitted, validate_data

from gwas_models.analysis.association import two_sample_test, welch_anova
from gwas_models.errors import InputError
# The evidence tests' names are those a fingerprint file records (its ``markers.test``).
from gwas_models.formats.fingerprint_file import EVIDENCE_TESTS, MULTI_TEST, PAIR_TEST

#: Marker selections, in the order the evaluation reports them.
SELECTIONS: tuple[str, ...] = ("top", "bottom", "random")
#: K, the markers of a fingerprint, when not given.
DEFAULT_MARKERS = 8
#: Runs per architecture that choosing markers needs: Welch's variance needs two.
MIN_TRAINING_RUNS = 2

# Why a column is not a candidate, per selection, for the "too few candidates" message.
_CANDIDATE_RULE = {
    "random": "have a finite score in every run",
    "top": "were tested on the training runs, with a finite score in every run",
    "bottom": "were tested on the training runs, with a finite score in every run",
}


class Evidence(NamedTuple):
    """Per-example association evidence between the architectures of some runs.

    Attributes
    ----------
    test : {"welch", "welch_anova"}
    neg_log10_p : float array (n_examples,)
        −log10 p; NaN where the test could not be done.
    tested : bool array (n_examples,)
        The test was done (``ERRCODE`` '.').
    """

    test: str
    neg_log10_p: np.ndarray
    tested: np.ndarray


def check_marker_count(n_markers: int, n_examples: int) -> None:
    """Raise :class:`InputError` unless 1 <= ``n_markers`` <= ``n_examples``."""
    if n_markers < 1:
        raise InputError(f"n_markers must be at least 1, got {n_markers}", parameter="n_markers")
    if n_markers > n_examples:
        raise InputError(f"n_markers {n_markers} exceeds the {n_examples} examples of the dataset", parameter="n_markers")


def check_selection(selection: str) -> None:
    """Raise :class:`InputError` unless ``selection`` is one of :data:`SELECTIONS`."""
    if selection not in SELECTIONS:
        raise InputError(f"selection must be top, bottom or random, got {selection!r}", parameter="selection")


def require_candidates(n_candidates: int, n_markers: int, selection: str) -> None:
    """Raise :class:`InputError` when fewer than ``n_markers`` examples can be ``selection`` markers."""
    if n_candidates < n_markers:
        raise InputError(
            f"n_markers {n_markers} is too many: only {n_candidates} example(s) {_CANDIDATE_RULE[selection]}; "
            f"choose {n_candidates} or fewer, or another score",
            parameter="n_markers",
        )


def usable_examples(values: np.ndarray) -> np.ndarray:
    """Examples whose score is finite in every run (the candidates for markers)."""
    return np.isfinite(np.asarray(values, dtype=np.float64)).all(axis=0)


def marker_evidence(values: np.ndarray, codes: np.ndarray, names: Sequence[str]) -> Evidence:
    """Welch evidence of every example between the groups of runs.

    Parameters
    ----------
    values : float array (n_runs, n_examples)
    codes : int array (n_runs,)
        Group of each run, ``0 .. len(names) - 1``.
    names : sequence of str
        Group names, for messages; two groups: Welch's t-test, more: Welch's ANOVA.
    """
    blocks = [values[codes == code] for code in range(len(names))]
    if len(names) == 2:
        result = two_sample_test(blocks[0], blocks[1], PAIR_TEST, names=(names[0], names[1]))
        return Evidence(PAIR_TEST, result.neg_log10_p, result.tested)
    result = welch_anova(blocks, names)
    return Evidence(MULTI_TEST, result.neg_log10_p, result.tested)


class RunScoresTags:
    """scikit-learn tags of an estimator fitted on score rows of runs labelled by architecture."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # examples with missing scores are simply never markers
        tags.target_tags.required = True
        return tags


class MarkerSelector(RunScoresTags, SelectorMixin, BaseEstimator):
    """Keep the scores of K marker examples.

    Parameters
    ----------
    n_markers : int
        K.
    selection : {"top", "bottom", "random"}
        Strongest evidence, weakest evidence, or a uniform draw (the baseline).
    random_state : int, RandomState instance or None
        Seeds the ``random`` draw. The draw also depends on the set of runs it is fitted on, so
        that cross-validation, which fits a clone with the same ``random_state`` in every split,
        draws new markers for every training set (as the random baseline needs); the same
        ``random_state`` and the same runs always give the same markers.

    Attributes
    ----------
    markers_ : int array (n_markers,)
        Selected columns, in output order: strongest evidence first (``top``), weakest first
        (``bottom``), increasing column (``random``).
    neg_log10_p_ : float array (n_features_in_,)
        Evidence of every column on the runs fitted on (NaN where untested). ``random`` does not
        look at the evidence and leaves it NaN: it is refitted many times per split, and the test
        would be most of its cost.
    evidence_test_ : {"welch", "welch_anova"}
        Welch's t-test for two classes in ``y``, Welch's one-way ANOVA for more.
    n_features_in_ : int

    Notes
    -----
    Unlike scikit-learn's other selectors, :meth:`transform` returns the markers in the order of
    ``markers_``, not in column order: a fitted fingerprint stores its scaler and coefficients in
    marker order, strongest first.
    """

    def __init__(self, n_markers: int = DEFAULT_MARKERS, selection: str = "top", random_state=None) -> None:
        self.n_markers = n_markers
        self.selection = selection
        self.random_state = random_state

    def fit(self, X, y) -> "MarkerSelector":
        """Choose the markers from the runs ``X`` (n_runs, n_examples) of architectures ``y``."""
        X, y = validate_data(self, X, y, ensure_all_finite=False, dtype=np.float64)
        check_selection(self.selection)
        check_marker_count(self.n_markers, X.shape[1])
        names, codes = np.unique(y, return_inverse=True)
        if len(names) < 2:
            raise InputError(f"y holds 1 class ({names[0]!r}); markers tell at least two architectures apart")
        finite = np.isfinite(X)
        usable = finite.all(axis=0)
        self.evidence_test_ = PAIR_TEST if len(names) == 2 else MULTI_TEST
        if self.selection == "random":
            self.neg_log10_p_ = np.full(X.shape[1], np.nan)
            candidates = np.flatnonzero(usable)
            require_candidates(len(candidates), self.n_markers, self.selection)
            self.markers_ = np.sort(self._generator(X, finite).choice(candidates, size=self.n_markers, replace=False))
            return self
        evidence = marker_evidence(X, codes, [str(name) for name in names])
        self.neg_log10_p_ = evidence.neg_log10_p
        candidates = np.flatnonzero(evidence.tested & usable)
        require_candidates(len(candidates), self.n_markers, self.selection)
        strength = evidence.neg_log10_p[candidates]
        # lexsort: the last key is the primary one; the column index breaks ties deterministically.
        order = np.lexsort((candidates, -strength if self.selection == "top" else strength))
        self.markers_ = candidates[order[: self.n_markers]]
        return self

    def _generator(self, X: np.ndarray, finite: np.ndarray) -> np.random.Generator:
        """The random draw's generator: ``random_state`` and a digest of the set of runs in ``X``."""
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        # Each run's sum of finite scores identifies it; sorted, the digest ignores the row order.
        run_sums = np.sort(np.where(finite, X, 0.0).sum(axis=1))
        return np.random.default_rng([seed, zlib.crc32(run_sums.tobytes())])

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self)
        mask = np.zeros(self.n_features_in_, dtype=bool)
        mask[self.markers_] = True
        return mask

    def transform(self, X) -> np.ndarray:
        """The markers' columns of ``X``, in the order of ``markers_``."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, ensure_all_finite=False, dtype=None)
        return X[:, self.markers_]

    def inverse_transform(self, X) -> np.ndarray:
        """Put the markers' columns back in place; every other column is zero."""
        check_is_fitted(self)
        X = check_array(X, ensure_all_finite=False, dtype=None)
        if X.shape[1] != len(self.markers_):
            raise ValueError(f"X has {X.shape[1]} features, but {len(self.markers_)} markers were selected")
        full = np.zeros((X.shape[0], self.n_features_in_), dtype=X.dtype)
        full[:, self.markers_] = X
        return full

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names of the markers' columns, in the order of ``markers_``."""
        check_is_fitted(self)
        return _check_feature_names_in(self, input_features)[self.markers_]


def fitted_selector(
    n_examples: int, markers: np.ndarray, marker_neg_log10_p: np.ndarray, evidence_test: str
) -> MarkerSelector:
    """A :class:`MarkerSelector` in the fitted state of a saved ``top`` selection.

    Only the markers' evidence is saved with a fingerprint; every other column's is NaN.
    """
    markers = np.asarray(markers, dtype=np.int64)
    selector = MarkerSelector(n_markers=len(markers), selection="top")
    selector.n_features_in_ = int(n_examples)
    selector.markers_ = markers
    selector.neg_log10_p_ = np.full(int(n_examples), np.nan)
    selector.neg_log10_p_[markers] = marker_neg_log10_p
    selector.evidence_test_ = evidence_test
    return selector


__all__ = [
    "DEFAULT_MARKERS",
    "EVIDENCE_TESTS",
    "Evidence",
    "MULTI_TEST",
    "MarkerSelector",
    "PAIR_TEST",
    "SELECTIONS",
    "check_marker_count",
    "check_selection",
    "fitted_selector",
    "marker_evidence",
    "require_candidates",
    "usable_examples",
]
