"""Fingerprinting architectures from the scores of a few marker examples (paper §4.3, Figure 1).

A *fingerprint* is a small classifier that tells which architecture trained a run from the run's
scores on K *marker* examples: a scikit-learn :class:`~sklearn.pipeline.Pipeline` of
:class:`~gwas_models.analysis.markers.MarkerSelector`, ``StandardScaler`` and ``LogisticRegression``
(multinomial for three or more classes). This module builds such pipelines, fits one on every run,
and applies a fitted one to new runs; their evaluation on held-out runs lives in
:mod:`gwas_models.analysis.fingerprint_evaluation`. It is pure: arrays and
:class:`~gwas_models.matrix.ScoreMatrix` in, dataclasses and DataFrames out; the file format lives
in :mod:`gwas_models.formats.fingerprint_file`.

A fitted fingerprint knows its limits in two ways:

* **Probabilities.** The evaluation's pipelines are unpenalised (the paper's protocol: only their
  accuracy counts). On separable training runs, the usual case, an unpenalised fit's probabilities
  are 0 and 1 whatever the evidence, so the fingerprint that :func:`fit_fingerprint` keeps is
  L2-penalised, its strength ``C`` chosen by the held-out log-loss of a cross-validation over runs
  in which the markers, too, are chosen afresh on each fold's training runs (``GridSearchCV`` over
  the whole pipeline): the probabilities are as confident as runs the fit has not seen justify.
* **"None of these".** :class:`MarkerDistance` measures how far a run's marker scores lie from each
  architecture, against the same distance of the training runs, each left out in turn (see its
  docstring); :func:`identify` answers :data:`NONE_OF_THESE` for a run far from every one.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import sklearn
from scipy import stats
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from gwas_models import __version__
from gwas_models.analysis.marker_distance import (
    DEFAULT_OOD_QUANTILE,
    MIN_REFERENCE_RUNS,
    MarkerDistance,
    NONE_OF_THESE,
    check_ood_quantile,
    fitted_distance,
)
from gwas_models.analysis.markers import (
    DEFAULT_MARKERS,
    MIN_TRAINING_RUNS,
    MarkerSelector,
    check_marker_count,
    fitted_selector,
)
from gwas_models.errors import InputError
from gwas_models.formats.fingerprint_file import EVIDENCE_TESTS, FingerprintRecord
from gwas_models.matrix import ScoreMatrix

#: Names of the pipeline's steps, in order.
PIPELINE_STEPS: tuple[str, ...] = ("select", "scale", "logistic")

#: Penalty strengths ``C`` (inverse L2 strength, on standardised markers) among which the saved
#: fingerprint's is chosen: from probabilities near 1/n_classes (0.01) to nearly unpenalised (100).
PENALTY_GRID: tuple[float, ...] = tuple(float(c) for c in np.round(10.0 ** np.arange(-2.0, 2.01, 0.5), 10))
#: ``C`` when too few runs leave a cross-validation nothing to fit on: scikit-learn's default.
DEFAULT_PENALTY = 1.0
#: Most folds of the cross-validation that chooses ``C``; fewer when an architecture has fewer runs.
MAX_PENALTY_FOLDS = 5

# An unpenalised fit has no finite optimum when the training runs are separable (the usual case
# for good markers): the coefficients grow until lbfgs stops. The direction, and so every
# prediction, is settled long before; this cap only bounds the time spent growing them.
_MAX_ITER = 1000
# RandomState, and so StratifiedShuffleSplit, takes seeds below 2**32.
_SEED_LIMIT = 2**32


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------


def check_architectures(archs: Sequence[str]) -> tuple[str, ...]:
    """At least two distinct architecture names, in the given order."""
    archs = tuple(str(a) for a in archs)
    duplicated = sorted({a for a in archs if archs.count(a) > 1})
    if duplicated:
        raise InputError(f"architecture {duplicated[0]!r} is given twice; name each architecture once")
    if len(archs) < 2:
        raise InputError(f"a fingerprint tells architectures apart: give at least two, got {len(archs)} ({', '.join(archs) or 'none'})")
    return archs


def check_seed(seed: int, parameter: str = "seed") -> int:
    """``seed`` as an int, or :class:`InputError` (naming ``parameter``) unless 0 <= seed < 2**32."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < _SEED_LIMIT:
        raise InputError(f"{parameter} must be an integer from 0 to {_SEED_LIMIT - 1}, got {seed!r}", parameter=parameter)
    return int(seed)


# --------------------------------------------------------------------------------------------
# The classifier
# --------------------------------------------------------------------------------------------


def class_codes(groups: np.ndarray, archs: Sequence[str]) -> np.ndarray:
    """Index of each run's architecture in ``archs`` (-1 for runs of other architectures)."""
    groups = np.asarray(groups).astype(str)
    codes = np.full(len(groups), -1, dtype=np.int64)
    for code, arch in enumerate(archs):
        codes[groups == arch] = code
    return codes


def _classifier_steps(C: float = np.inf) -> list[tuple[str, Any]]:
    """Unfitted scaler and logistic steps; ``C`` is the inverse L2 penalty strength.

    ``C=inf`` is how scikit-learn >= 1.8 asks for no penalty (``penalty=None`` is deprecated there);
    for three or more classes every solver but liblinear fits the multinomial loss.
    """
    return [("scale", StandardScaler()), ("logistic", LogisticRegression(C=C, max_iter=_MAX_ITER))]


def fingerprint_pipeline(
    n_markers: int = DEFAULT_MARKERS,
    selection: str = "top",
    random_state: int | np.random.RandomState | None = None,
    C: float = np.inf,
) -> Pipeline:
    """A fresh, unfitted fingerprint: marker selector, ``StandardScaler``, ``LogisticRegression``.

    Fit it on score rows ``(n_runs, n_examples)`` and integer class codes; it predicts class codes.

    Parameters
    ----------
    n_markers, selection, random_state
        Those of :class:`~gwas_models.analysis.markers.MarkerSelector`.
    C : float
        The logistic regression's inverse L2 penalty (``inf``: unpenalised, as the evaluation fits).
    """
    selector = MarkerSelector(n_markers=n_markers, selection=selection, random_state=random_state)
    return Pipeline([("select", selector), *_classifier_steps(C)])


def penalised_fit(
    rows: np.ndarray, codes: np.ndarray, n_markers: int, random_state: int | None = 0
) -> tuple[Pipeline, dict[str, Any]]:
    """The top-K fingerprint pipeline with its penalty chosen by cross-validated log-loss over runs.

    ``GridSearchCV`` over :data:`PENALTY_GRID` with stratified folds of runs: every fold refits the
    whole pipeline, marker selection included, on its training runs, so the held-out runs that
    score a ``C`` never chose the markers (choosing them on all runs would make every ``C`` look
    right and favour the most confident). With a few dozen runs the cross-validated log-loss is
    noisy, and its minimum over the grid is optimistic: on pure noise a lucky fold split can make
    the nearly unpenalised fit look best. So ``C`` is the smallest whose mean log-loss lies within
    one standard error (over folds) of the best (the one-standard-error rule; Hastie, Tibshirani
    and Friedman, *Elements of Statistical Learning*, 7.10): the humblest probabilities that the
    held-out runs cannot tell from the best. With fewer than :data:`MIN_REFERENCE_RUNS` runs of
    some architecture a fold would leave it fewer than the two runs Welch's test needs, so ``C``
    is :data:`DEFAULT_PENALTY`, not chosen.

    Parameters
    ----------
    rows : float array (n_runs, n_examples)
        Column j is example j.
    codes : int array (n_runs,)
        Class codes ``0 .. n_classes - 1``.
    n_markers : int
    random_state : int or None
        Shuffles the runs into folds.

    Returns
    -------
    pipeline : Pipeline
        Fitted on every run with the chosen ``C``.
    record : dict
        ``C``, ``chosen_by`` and, when cross-validated, ``folds``, ``cv_log_loss`` (the chosen
        ``C``'s mean held-out log-loss), ``best_cv_log_loss`` (the grid's lowest) and ``grid``.
    """
    n_folds = min(MAX_PENALTY_FOLDS, int(np.bincount(codes).min()))
    if n_folds < MIN_REFERENCE_RUNS:
        pipeline = fingerprint_pipeline(n_markers, "top", C=DEFAULT_PENALTY).fit(rows, codes)
        return pipeline, {"C": DEFAULT_PENALTY, "chosen_by": f"default: an architecture has fewer than {MIN_REFERENCE_RUNS} runs to cross-validate"}
    search = GridSearchCV(
        fingerprint_pipeline(n_markers, "top"),
        {"logistic__C": list(PENALTY_GRID)},
        scoring="neg_log_loss",
        cv=StratifiedKFold(n_folds, shuffle=True, random_state=random_state),
        refit=_smallest_within_one_standard_error,
        error_score="raise",
    )
    search.fit(rows, codes)
    losses = -search.cv_results_["mean_test_score"]
    record = {
        "C": float(search.best_params_["logistic__C"]),
        "chosen_by": "cross-validated log-loss over runs, one-standard-error rule",
        "folds": n_folds,
        "cv_log_loss": float(losses[search.best_index_]),
        "best_cv_log_loss": float(losses.min()),
        "grid": list(PENALTY_GRID),
    }
    return search.best_estimator_, record


def _smallest_within_one_standard_error(cv_results: Mapping[str, np.ndarray]) -> int:
    """Index of the first grid point (smallest ``C``) whose mean score is within one SE of the best.

    A ``GridSearchCV`` ``refit`` callable; the standard error is the best point's standard
    deviation over folds divided by the square root of the number of folds.
    """
    means = np.asarray(cv_results["mean_test_score"], dtype=np.float64)
    n_folds = sum(1 for key in cv_results if key.startswith("split") and key.endswith("_test_score"))
    best = int(np.nanargmax(means))
    standard_error = float(cv_results["std_test_score"][best]) / np.sqrt(n_folds)
    return int(np.flatnonzero(means >= means[best] - standard_error)[0])


@contextmanager
def quiet_fitting() -> Iterator[None]:
    """Fit many tiny pipelines fast and without expected warnings.

    BLAS threads only add contention on problems this small (25x slower on 2 busy cores).
    Convergence warnings are silenced on purpose: with separable training runs the unpenalised
    optimum is at infinity (see ``_MAX_ITER``), which is the expected case, not a failure; and
    scikit-learn and scipy warn about overflow in exp() once coefficients are huge.
    """
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings(), np.errstate(over="ignore"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


@contextmanager
def _about_score(score: str) -> Iterator[None]:
    """Name the score in a too-many-markers error (the selector only sees arrays)."""
    try:
        yield
    except InputError as error:
        if error.parameter != "n_markers":
            raise
        raise InputError(f"{error.message} (score {score!r})", parameter="n_markers") from None


# --------------------------------------------------------------------------------------------
# The fitted fingerprint
# --------------------------------------------------------------------------------------------

#: The arrays that describe a fitted fingerprint (and that its file saves), with their dtypes.
SAVED_ARRAYS: dict[str, type] = {
    "marker_ids": np.int64,
    "marker_neg_log10_p": np.float64,
    "scaler_mean": np.float64,
    "scaler_scale": np.float64,
    "coef": np.float64,
    "intercept": np.float64,
}
#: The arrays of a fitted out-of-distribution reference (:class:`MarkerDistance`), with their dtypes.
REFERENCE_ARRAYS: dict[str, type] = {
    "class_mean": np.float64,
    "scale": np.float64,
    "reference_distance": np.float64,
    "reference_class": np.int64,
}


def fitted_pipeline(
    n_examples: int,
    marker_ids: np.ndarray,
    marker_neg_log10_p: np.ndarray,
    evidence_test: str,
    scaler_mean: np.ndarray,
    scaler_scale: np.ndarray,
    coef: np.ndarray,
    intercept: np.ndarray,
    n_runs: int = 0,
    C: float = np.inf,
) -> Pipeline:
    """A fitted :func:`fingerprint_pipeline` rebuilt from its arrays (e.g. read from a file).

    The fitted attributes of each step are set as ``fit`` would have set them, so the pipeline
    predicts exactly as the one that was fitted. ``n_runs`` (the runs it was fitted on, 0 when
    unknown) only fills ``StandardScaler.n_samples_seen_``; ``C``, the penalty it was fitted with
    (``inf``: unpenalised), only the logistic step's parameter.
    """
    scaler_mean = np.asarray(scaler_mean, dtype=np.float64)
    coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    n_markers = len(scaler_mean)
    (_, scaler), (_, logistic) = _classifier_steps(C)
    scaler.mean_ = scaler_mean
    scaler.scale_ = np.asarray(scaler_scale, dtype=np.float64)
    scaler.var_ = scaler.scale_**2
    scaler.n_features_in_ = n_markers
    scaler.n_samples_seen_ = np.int64(n_runs)
    logistic.coef_ = coef
    logistic.intercept_ = np.atleast_1d(np.asarray(intercept, dtype=np.float64))
    logistic.classes_ = np.arange(max(2, coef.shape[0]))  # one row of coefficients: two classes
    logistic.n_features_in_ = n_markers
    logistic.n_iter_ = np.zeros(1, dtype=np.int32)
    selector = fitted_selector(n_examples, marker_ids, marker_neg_log10_p, evidence_test)
    return Pipeline([("select", selector), ("scale", scaler), ("logistic", logistic)])


@dataclass(frozen=True, eq=False)
class Fingerprint:
    """A fitted fingerprint: the fitted pipeline and what it applies to.

    Attributes
    ----------
    dataset : str
        Dataset the runs were trained on; a fingerprint applies to runs of that dataset only.
    n_examples : int
        Training examples of the dataset.
    score : str
        The score whose values are the features.
    higher_is_harder : bool
        Direction of the score (recorded so a reader knows how the markers' coefficients read).
    classes : tuple of str
        Architectures, in class order (the pipeline predicts their index).
    pipeline : sklearn Pipeline
        Fitted ``select`` → ``scale`` → ``logistic``, on score rows ``(n_runs, n_examples)`` whose
        column j is example j; it predicts class indices.
    provenance : dict
        Runs (seeds per architecture), K, versions, creation time, training accuracy, the penalty
        and how it was chosen, and (when ``gwasm fingerprint`` saved it) ``heldout_accuracy``:
        the evaluation of this score's top-K fingerprints on held-out runs.
    reference : MarkerDistance or None
        The out-of-distribution reference, on the pipeline's markers, with class index i meaning
        ``classes[i]``; None when the fingerprint has none (written before it existed, or fitted
        on fewer than :data:`MIN_REFERENCE_RUNS` runs of some architecture).

    The arrays that a file saves are read from the pipeline: :attr:`marker_ids`,
    :attr:`marker_neg_log10_p`, :attr:`evidence_test`, :attr:`scaler_mean`, :attr:`scaler_scale`,
    :attr:`coef`, :attr:`intercept`, and :attr:`penalty`; and from the reference,
    :meth:`reference_arrays`. Build one from those arrays with :meth:`from_arrays`.
    """

    dataset: str
    n_examples: int
    score: str
    higher_is_harder: bool
    classes: tuple[str, ...]
    pipeline: Pipeline = field(repr=False)
    provenance: dict = field(default_factory=dict)
    reference: MarkerDistance | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        object.__setattr__(self, "n_examples", int(self.n_examples))
        object.__setattr__(self, "higher_is_harder", bool(self.higher_is_harder))
        object.__setattr__(self, "provenance", dict(self.provenance))
        _check_pipeline(self.pipeline, self.n_examples)
        _check_parts(self.classes, self.n_examples, self.evidence_test, self.arrays())
        if self.reference is not None:
            _check_reference(self.reference_arrays(), len(self.classes), self.n_markers)
            if not np.array_equal(self.reference.selector_.markers_, self.marker_ids):
                raise InputError("the out-of-distribution reference was fitted on other markers than the classifier")

    @classmethod
    def from_arrays(
        cls,
        *,
        dataset: str,
        n_examples: int,
        score: str,
        higher_is_harder: bool,
        classes: Sequence[str],
        marker_ids: np.ndarray,
        marker_neg_log10_p: np.ndarray,
        evidence_test: str,
        scaler_mean: np.ndarray,
        scaler_scale: np.ndarray,
        coef: np.ndarray,
        intercept: np.ndarray,
        provenance: Mapping[str, Any] | None = None,
        penalty: float = np.inf,
        reference: Mapping[str, np.ndarray] | None = None,
    ) -> "Fingerprint":
        """A fingerprint from its saved arrays (see :data:`SAVED_ARRAYS`), its pipeline rebuilt.

        ``penalty`` is the logistic regression's ``C`` (``inf``: unpenalised); ``reference`` the
        arrays of :meth:`reference_arrays` (:data:`REFERENCE_ARRAYS`), or None for no reference.

        Raises
        ------
        InputError
            When the parts do not make one classifier (shapes, classes, marker ids, non-finite or
            non-positive values), or the reference does not fit them.
        """
        arrays = {
            "marker_ids": marker_ids,
            "marker_neg_log10_p": marker_neg_log10_p,
            "scaler_mean": scaler_mean,
            "scaler_scale": scaler_scale,
            "coef": np.atleast_2d(np.asarray(coef, dtype=np.float64)),
            "intercept": np.atleast_1d(np.asarray(intercept, dtype=np.float64)),
        }
        arrays = {name: np.asarray(value, dtype=SAVED_ARRAYS[name]) for name, value in arrays.items()}
        classes = tuple(str(c) for c in classes)
        _check_parts(classes, int(n_examples), evidence_test, arrays)
        provenance = dict(provenance or {})
        penalty = _check_penalty(penalty)
        pipeline = fitted_pipeline(int(n_examples), evidence_test=evidence_test, n_runs=_count_runs(provenance), C=penalty, **arrays)
        distance = None
        if reference is not None:
            saved = {name: np.asarray(reference[name], dtype=dtype) for name, dtype in REFERENCE_ARRAYS.items()}
            _check_reference(saved, len(classes), len(arrays["marker_ids"]))
            distance = fitted_distance(pipeline.named_steps["select"], np.arange(len(classes)), **saved)
        return cls(dataset, n_examples, score, higher_is_harder, classes, pipeline, provenance, distance)

    @classmethod
    def from_record(cls, record: FingerprintRecord) -> "Fingerprint":
        """A fingerprint from what its file holds (:func:`~gwas_models.formats.fingerprint_file.read_fingerprint`).

        Raises
        ------
        InputError
            When the parts do not make one classifier (see :meth:`from_arrays`).
        """
        return cls.from_arrays(
            dataset=record.dataset,
            n_examples=record.n_examples,
            score=record.score,
            higher_is_harder=record.higher_is_harder,
            classes=record.classes,
            marker_ids=record.marker_ids,
            marker_neg_log10_p=record.marker_neg_log10_p,
            evidence_test=record.evidence_test,
            scaler_mean=record.scaler_mean,
            scaler_scale=record.scaler_scale,
            coef=record.coef,
            intercept=record.intercept,
            provenance=record.provenance,
            penalty=np.inf if record.penalty is None else record.penalty,
            reference=record.reference,
        )

    def to_record(self) -> FingerprintRecord:
        """What a file keeps of this fingerprint (:func:`~gwas_models.formats.fingerprint_file.write_fingerprint`)."""
        return FingerprintRecord(
            dataset=self.dataset,
            n_examples=self.n_examples,
            score=self.score,
            higher_is_harder=self.higher_is_harder,
            classes=self.classes,
            evidence_test=self.evidence_test,
            penalty=self.penalty if np.isfinite(self.penalty) else None,
            reference=self.reference_arrays(),
            provenance=dict(self.provenance),
            **self.arrays(),
        )

    # ---- the saved arrays, read from the pipeline ------------------------------------------------

    @property
    def selector(self) -> MarkerSelector:
        return self.pipeline.named_steps["select"]

    @property
    def classifier(self) -> Pipeline:
        """The fitted scaler and logistic steps: they take the markers' scores ``(n_runs, K)``."""
        return self.pipeline[1:]

    @property
    def marker_ids(self) -> np.ndarray:
        """``example_id`` of the markers, strongest evidence first."""
        return self.selector.markers_

    @property
    def marker_neg_log10_p(self) -> np.ndarray:
        """The markers' evidence on the runs the fingerprint was fitted on."""
        return self.selector.neg_log10_p_[self.marker_ids]

    @property
    def evidence_test(self) -> str:
        """``"welch"`` (two architectures) or ``"welch_anova"`` (more)."""
        return self.selector.evidence_test_

    @property
    def scaler_mean(self) -> np.ndarray:
        return self.pipeline.named_steps["scale"].mean_

    @property
    def scaler_scale(self) -> np.ndarray:
        return self.pipeline.named_steps["scale"].scale_

    @property
    def coef(self) -> np.ndarray:
        """``LogisticRegression.coef_``: (1, K) for two classes, (n_classes, K) for more."""
        return self.pipeline.named_steps["logistic"].coef_

    @property
    def intercept(self) -> np.ndarray:
        return self.pipeline.named_steps["logistic"].intercept_

    @property
    def n_markers(self) -> int:
        return len(self.marker_ids)

    @property
    def penalty(self) -> float:
        """The logistic regression's ``C``: ``inf`` when unpenalised (every version-1 fingerprint)."""
        return float(self.pipeline.named_steps["logistic"].C)

    @property
    def heldout_accuracy(self) -> dict | None:
        """The held-out evaluation recorded when the fingerprint was saved, or None.

        Keys of :func:`~gwas_models.analysis.fingerprint_evaluation.heldout_accuracy_record`:
        ``mean``, ``low``, ``high`` (the interval over splits), ``n_splits``, ``n_train_runs``,
        ``n_heldout_runs``, ...
        """
        record = self.provenance.get("heldout_accuracy")
        return dict(record) if isinstance(record, Mapping) else None

    def fitted_on(self, arch: str, seeds: np.ndarray) -> np.ndarray:
        """Whether each run of ``arch`` with these ``seeds`` is one the fingerprint was fitted on.

        From the provenance's ``runs`` (seeds per architecture; none listed: all False). Runs are
        named by architecture label and seed within the fingerprint's dataset, as in the run store.
        """
        runs = self.provenance.get("runs")
        seeds = np.asarray(seeds, dtype=np.int64)
        fitted = runs.get(str(arch)) if isinstance(runs, Mapping) else None
        if not isinstance(fitted, list):
            return np.zeros(len(seeds), dtype=bool)
        return np.isin(seeds, np.asarray([s for s in fitted if isinstance(s, int)], dtype=np.int64))

    def arrays(self) -> dict[str, np.ndarray]:
        """The saved arrays, by name (:data:`SAVED_ARRAYS`)."""
        return {name: getattr(self, name) for name in SAVED_ARRAYS}

    def reference_arrays(self) -> dict[str, np.ndarray] | None:
        """The reference's saved arrays, by name (:data:`REFERENCE_ARRAYS`), or None without one."""
        if self.reference is None:
            return None
        ref = self.reference
        return {
            "class_mean": ref.class_mean_,
            "scale": ref.scale_,
            "reference_distance": ref.reference_distance_,
            "reference_class": ref.reference_class_,
        }

    def __eq__(self, other: object) -> bool:
        """Equal when every saved field is equal, arrays element for element."""
        if not isinstance(other, Fingerprint):
            return NotImplemented
        fields = ("dataset", "n_examples", "score", "higher_is_harder", "classes", "evidence_test", "provenance", "penalty")
        if any(getattr(self, name) != getattr(other, name) for name in fields):
            return False
        mine_ref, theirs_ref = self.reference_arrays(), other.reference_arrays()
        if (mine_ref is None) != (theirs_ref is None):
            return False
        pairs = [(mine, other.arrays()[name]) for name, mine in self.arrays().items()]
        pairs += [(mine, theirs_ref[name]) for name, mine in (mine_ref or {}).items()]
        return all(np.array_equal(mine, theirs, equal_nan=True) for mine, theirs in pairs)

    __hash__ = None  # mutable arrays inside: not hashable

    # ---- applying it ------------------------------------------------------------------------

    def decision_function(self, features: np.ndarray) -> np.ndarray:
        """Linear scores of the markers' scores ``(n_runs, K)``: (n_runs,) for two classes, else (n_runs, n_classes)."""
        return self.classifier.decision_function(self._as_features(features))

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities (n_runs, n_classes) from the markers' scores ``(n_runs, K)``."""
        return self.classifier.predict_proba(self._as_features(features))

    def predict_codes(self, features: np.ndarray) -> np.ndarray:
        """Index into :attr:`classes` of each run's predicted architecture."""
        return self.classifier.predict(self._as_features(features))

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Predicted architecture name of each run, from the markers' scores ``(n_runs, K)``."""
        return np.asarray(self.classes, dtype=object)[self.predict_codes(features)]

    def _as_features(self, features: np.ndarray) -> np.ndarray:
        features = np.asarray(features, dtype=np.float64)
        if features.ndim == 1:
            features = features[None, :]
        if features.ndim != 2 or features.shape[1] != self.n_markers:
            raise InputError(f"expected features of shape (n_runs, {self.n_markers}), got {features.shape}")
        return features

    # ---- from scores to features --------------------------------------------------------------

    def check_dataset(self, dataset: str | None, n_examples: int | None) -> None:
        """Raise :class:`InputError` when scores come from another dataset than the fingerprint's.

        Parameters
        ----------
        dataset : str or None
            Name of the scores' dataset (None when unknown, e.g. a bare file).
        n_examples : int or None
            Size of the scores' dataset (None when unknown).
        """
        if dataset is not None and dataset != self.dataset:
            raise InputError(
                f"the fingerprint was fitted on dataset {self.dataset!r}; these scores come from {dataset!r}"
            )
        if n_examples is not None and int(n_examples) != self.n_examples:
            raise InputError(
                f"the fingerprint's dataset {self.dataset!r} has {self.n_examples} examples; these scores cover {n_examples}: "
                "scores of another dataset?"
            )

    def marker_features(self, example_id: np.ndarray, values: np.ndarray) -> np.ndarray:
        """The markers' scores of each run, in marker order.

        Parameters
        ----------
        example_id : int array (n_examples,)
            Ids of the columns of ``values``, without repeats.
        values : float array (n_runs, n_examples), or (n_examples,) for one run

        Returns
        -------
        float array (n_runs, K)

        Raises
        ------
        InputError
            When some marker id is absent from ``example_id`` or its score is not finite.
        """
        example_id = np.asarray(example_id, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 1:
            values = values[None, :]
        if values.ndim != 2 or values.shape[1] != len(example_id):
            raise InputError(f"scores of shape {values.shape} do not match {len(example_id)} example ids")
        columns = _columns_of(example_id, self.marker_ids)
        absent = self.marker_ids[columns < 0]
        if len(absent):
            raise InputError(f"the scores lack {len(absent)} of the {self.n_markers} marker examples (example_id {_list_ids(absent)})")
        features = values[:, columns]
        missing = ~np.isfinite(features).all(axis=0)
        if missing.any():
            raise InputError(
                f"the {self.score} scores of marker example(s) {_list_ids(self.marker_ids[missing])} are missing (NaN) in "
                f"{int((~np.isfinite(features).all(axis=1)).sum())} run(s)"
            )
        return features


def _check_pipeline(pipeline: Any, n_examples: int) -> None:
    """Raise :class:`InputError` unless ``pipeline`` is a fitted fingerprint pipeline over ``n_examples`` columns."""
    names = tuple(name for name, _ in pipeline.steps) if isinstance(pipeline, Pipeline) else ()
    if names != PIPELINE_STEPS:
        raise InputError(f"a fingerprint's pipeline has the steps {', '.join(PIPELINE_STEPS)}, got {list(names)}")
    try:
        for _, step in pipeline.steps:
            check_is_fitted(step)
    except NotFittedError:
        raise InputError("a fingerprint's pipeline must be fitted") from None
    if pipeline.named_steps["select"].n_features_in_ != n_examples:
        raise InputError(f"the pipeline takes {pipeline.named_steps['select'].n_features_in_} examples, the dataset has {n_examples}")


def _check_parts(classes: tuple[str, ...], n_examples: int, evidence_test: str, arrays: Mapping[str, np.ndarray]) -> None:
    """Raise :class:`InputError` when the parts do not make one classifier."""
    marker_ids = arrays["marker_ids"]
    k = len(marker_ids)
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise InputError(f"a fingerprint needs at least two distinct classes, got {list(classes)}")
    if evidence_test not in EVIDENCE_TESTS:
        raise InputError(f"the evidence test must be one of {', '.join(EVIDENCE_TESTS)}, got {evidence_test!r}")
    if k < 1 or marker_ids.ndim != 1:
        raise InputError("a fingerprint needs at least one marker example")
    if len(np.unique(marker_ids)) != k:
        raise InputError("the marker example ids repeat")
    if n_examples < 1 or marker_ids.min() < 0 or marker_ids.max() >= n_examples:
        raise InputError(f"marker example ids must lie in 0..{n_examples - 1}")
    rows = 1 if len(classes) == 2 else len(classes)
    expected = {"marker_neg_log10_p": (k,), "scaler_mean": (k,), "scaler_scale": (k,), "coef": (rows, k), "intercept": (rows,)}
    for name, shape in expected.items():
        if arrays[name].shape != shape:
            raise InputError(f"{name} has shape {arrays[name].shape}, expected {shape} for {k} markers and {len(classes)} classes")
    for name in ("scaler_mean", "scaler_scale", "coef", "intercept"):
        if not np.isfinite(arrays[name]).all():
            raise InputError(f"{name} holds non-finite values")
    if not (arrays["scaler_scale"] > 0).all():
        raise InputError("scaler_scale must be positive")


def _check_penalty(penalty: float | None) -> float:
    """The logistic regression's ``C`` (None or ``inf``: unpenalised), or :class:`InputError`."""
    penalty = np.inf if penalty is None else float(penalty)
    if not penalty > 0:
        raise InputError(f"the penalty C must be positive (or absent: unpenalised), got {penalty}")
    return penalty


def _check_reference(arrays: Mapping[str, np.ndarray], n_classes: int, n_markers: int) -> None:
    """Raise :class:`InputError` when a reference's arrays do not fit the classes and markers."""
    classes = arrays["reference_class"]
    expected = {"class_mean": (n_classes, n_markers), "scale": (n_markers,), "reference_distance": classes.shape}
    for name, shape in expected.items():
        if arrays[name].shape != shape:
            raise InputError(f"reference {name} has shape {arrays[name].shape}, expected {shape} for {n_markers} markers and {n_classes} classes")
    if classes.ndim != 1 or len(classes) < 2 * MIN_REFERENCE_RUNS:
        raise InputError(f"a reference needs the distances of at least {2 * MIN_REFERENCE_RUNS} runs")
    if classes.min() < 0 or classes.max() >= n_classes:
        raise InputError(f"reference_class must lie in 0..{n_classes - 1}")
    if np.bincount(classes, minlength=n_classes).min() < MIN_REFERENCE_RUNS:
        raise InputError(f"a reference needs at least {MIN_REFERENCE_RUNS} runs of every class")
    if not all(np.isfinite(arrays[name]).all() for name in ("class_mean", "scale", "reference_distance")):
        raise InputError("the reference holds non-finite values")
    if not (arrays["scale"] > 0).all() or (arrays["reference_distance"] < 0).any():
        raise InputError("the reference's scale must be positive and its distances non-negative")


def _count_runs(provenance: Mapping[str, Any]) -> int:
    """Runs listed in a provenance's ``runs`` (seeds per architecture); 0 when it has none."""
    runs = provenance.get("runs")
    if not isinstance(runs, Mapping) or not all(isinstance(seeds, list) for seeds in runs.values()):
        return 0
    return sum(len(seeds) for seeds in runs.values())


def _columns_of(example_id: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Column of each ``wanted`` id in ``example_id`` (-1 where absent), without a loop over examples."""
    if len(example_id) == 0:
        return np.full(len(wanted), -1)
    order = np.argsort(example_id, kind="stable")
    at = np.minimum(np.searchsorted(example_id[order], wanted), len(order) - 1)
    return np.where(example_id[order][at] == wanted, order[at], -1)


def _list_ids(ids: Iterable[int], limit: int = 5) -> str:
    ids = [int(i) for i in ids]
    shown = ", ".join(str(i) for i in ids[:limit])
    return shown + (f", ... ({len(ids)} in all)" if len(ids) > limit else "")


def _require_runs_of(matrix: ScoreMatrix, archs: Sequence[str]) -> None:
    present = set(matrix.groups.tolist())
    for arch in archs:
        if arch not in present:
            raise InputError(f"no runs of {arch!r} for score {matrix.score!r}; architectures present: {', '.join(matrix.group_names())}")


def _rows_by_example_id(matrix: ScoreMatrix) -> np.ndarray:
    """``matrix.values`` with column j holding example j (the pipeline's input layout)."""
    ids = matrix.example_id
    if not np.array_equal(np.sort(ids), np.arange(matrix.n_examples)):
        raise InputError(f"a fingerprint needs the scores of every example 0..{matrix.n_examples - 1} of the dataset, each once")
    return matrix.values[:, np.argsort(ids)]


def fit_fingerprint(
    matrix: ScoreMatrix,
    archs: Sequence[str],
    n_markers: int = DEFAULT_MARKERS,
    provenance: Mapping[str, Any] | None = None,
    random_state: int = 0,
) -> Fingerprint:
    """Fit the fingerprint pipeline, with the top-K markers, on all runs of ``matrix``.

    The logistic regression is penalised, its ``C`` chosen by cross-validation over runs
    (:func:`penalised_fit`), and the out-of-distribution reference (:class:`MarkerDistance`) is
    fitted on the same runs and markers when every architecture has at least
    :data:`MIN_REFERENCE_RUNS` runs.

    Parameters
    ----------
    matrix : ScoreMatrix
        Every run to learn from (runs of architectures not in ``archs`` are ignored); pass a
        :meth:`~gwas_models.matrix.ScoreMatrix.subset_runs` to keep runs aside.
    archs : sequence of str
        The classes, in order.
    n_markers : int
        K.
    provenance : mapping, optional
        Extra entries for the provenance (e.g. the store path, ``heldout_accuracy``); merged over
        the computed ones.
    random_state : int
        Seeds the folds of the cross-validation that chooses ``C``.

    Returns
    -------
    Fingerprint
    """
    archs = check_architectures(archs)
    check_marker_count(n_markers, matrix.n_examples)
    _require_runs_of(matrix, archs)
    codes = class_codes(matrix.groups, archs)
    ours = codes >= 0
    groups, seeds, codes = matrix.groups[ours], matrix.seeds[ours], codes[ours]
    for arch in archs:
        n_runs = int((groups == arch).sum())
        if n_runs < MIN_TRAINING_RUNS:
            raise InputError(f"architecture {arch!r} has {n_runs} run(s); fitting a fingerprint needs at least {MIN_TRAINING_RUNS} per architecture")
    rows = _rows_by_example_id(matrix)[ours]
    seed = check_seed(random_state, "random_state")
    with quiet_fitting(), _about_score(matrix.score):
        pipeline, penalty = penalised_fit(rows, codes, n_markers, seed)
        reference, reference_note = _fit_reference(rows, codes, n_markers)
    record = {
        "runs": {arch: sorted(int(s) for s in seeds[groups == arch]) for arch in archs},
        "n_markers": int(n_markers),
        "training_accuracy": float(pipeline.score(rows, codes)),
        "penalty": penalty,
        "reference": reference_note,
        "gwasm_version": __version__,
        "scikit_learn_version": sklearn.__version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    record.update(provenance or {})
    return Fingerprint(
        dataset=matrix.dataset,
        n_examples=matrix.n_examples,
        score=matrix.score,
        higher_is_harder=matrix.higher_is_harder,
        classes=archs,
        pipeline=pipeline,
        provenance=record,
        reference=reference,
    )


def _fit_reference(rows: np.ndarray, codes: np.ndarray, n_markers: int) -> tuple[MarkerDistance | None, str]:
    """The out-of-distribution reference of the top-K markers, or None and why there is none."""
    counts = np.bincount(codes)
    if counts.min() < MIN_REFERENCE_RUNS:
        return None, f"none: an architecture has fewer than {MIN_REFERENCE_RUNS} runs"
    reference = MarkerDistance(MarkerSelector(n_markers, "top")).fit(rows, codes)
    return reference, f"left-out distances of {len(codes)} training runs, markers chosen without each"


#: The columns of :func:`identify` after the per-class ones, in order.
IDENTIFY_TAIL_COLUMNS: tuple[str, ...] = ("THRESHOLD", "AS_FAR", "OOD_P", "USED_IN_FIT")


def identify_columns(classes: Sequence[str]) -> list[str]:
    """The columns of :func:`identify`'s table for a fingerprint of ``classes``, in order."""
    return ["RUN", "PREDICTED", *(f"P({c})" for c in classes), *(f"DIST({c})" for c in classes), *IDENTIFY_TAIL_COLUMNS]


def identify(
    fingerprint: Fingerprint,
    example_id: np.ndarray,
    values: np.ndarray,
    run_names: Sequence[str] | None = None,
    *,
    used_in_fit: Sequence[bool | None] | None = None,
    ood_quantile: float = DEFAULT_OOD_QUANTILE,
) -> pd.DataFrame:
    """Predict the architecture of runs from their scores, or say that it is none of them.

    Parameters
    ----------
    fingerprint : Fingerprint
    example_id : int array (n_examples,)
    values : float array (n_runs, n_examples), or (n_examples,) for one run
        The fingerprint's score of each run.
    run_names : sequence of str, optional
        A name per run (default ``run0``, ``run1``, ...).
    used_in_fit : sequence of bool or None, optional
        Whether each run is one the fingerprint was fitted on (None: not known).
    ood_quantile : float
        Share of the runs of the known architectures that should be named: a run farther from
        its nearest architecture than this quantile of the reference is :data:`NONE_OF_THESE`.

    Returns
    -------
    DataFrame
        One row per run, columns :func:`identify_columns`:

        ``RUN``
            The run's name.
        ``PREDICTED``
            The most probable architecture, or :data:`NONE_OF_THESE` when the run lies beyond
            the threshold from every architecture.
        ``P(<class>)``
            The fingerprint's probability of each architecture, given that it is one of them.
        ``DIST(<class>)``
            The run's distance to each architecture (:class:`MarkerDistance`: mean squared
            z-score over the markers).
        ``THRESHOLD``
            The distance beyond which a run is none of these (the ``ood_quantile`` bound).
        ``AS_FAR``
            Fraction of the training runs, each left out, at least as far from their own
            architecture as this run is from its nearest one.
        ``OOD_P``
            The reference's probability that a run of a known architecture lies this far from it;
            below ``1 - ood_quantile`` exactly when ``PREDICTED`` is none of these.
        ``USED_IN_FIT``
            ``yes`` when the fingerprint was fitted on this run (its answer says nothing about the
            fingerprint's accuracy), ``no``, or ``unknown``.

        Without a reference (older fingerprints) the distance columns are NaN and every run gets
        an architecture.
    """
    ood_quantile = check_ood_quantile(ood_quantile)
    features = fingerprint.marker_features(example_id, values)
    names = list(run_names) if run_names is not None else [f"run{i}" for i in range(len(features))]
    used = list(used_in_fit) if used_in_fit is not None else [None] * len(features)
    if len(names) != len(features) or len(used) != len(features):
        raise InputError(f"{len(names)} run names and {len(used)} used-in-fit flags for {len(features)} runs")
    probabilities = fingerprint.predict_proba(features)
    predicted = fingerprint.predict(features)
    table = pd.DataFrame({"RUN": names, "PREDICTED": predicted})
    for column, cls in enumerate(fingerprint.classes):
        table[f"P({cls})"] = probabilities[:, column]
    ood = _out_of_distribution(fingerprint, features, ood_quantile)
    for column, cls in enumerate(fingerprint.classes):
        table[f"DIST({cls})"] = ood["distances"][:, column]
    table["THRESHOLD"], table["AS_FAR"], table["OOD_P"] = ood["threshold"], ood["as_far"], ood["p_value"]
    table.loc[ood["outside"], "PREDICTED"] = NONE_OF_THESE
    table["USED_IN_FIT"] = ["unknown" if flag is None else ("yes" if flag else "no") for flag in used]
    return table[identify_columns(fingerprint.classes)]


def _out_of_distribution(fingerprint: Fingerprint, features: np.ndarray, quantile: float) -> dict[str, Any]:
    """Each run's distances to the classes, the threshold, as-far fraction, p-value and verdict.

    Without a reference every number is NaN and no run is out of distribution.
    """
    reference = fingerprint.reference
    if reference is None:
        missing = np.full(len(features), np.nan)
        return {
            "distances": np.full((len(features), len(fingerprint.classes)), np.nan),
            "threshold": np.nan,
            "as_far": missing,
            "p_value": missing,
            "outside": np.zeros(len(features), dtype=bool),
        }
    distances = reference.distance(features)
    nearest = distances.min(axis=1)
    threshold = reference.threshold(quantile)
    return {
        "distances": distances,
        "threshold": threshold,
        "as_far": reference.as_far(nearest),
        "p_value": reference.p_value(nearest),
        "outside": nearest > threshold,
    }


__all__ = [
    "DEFAULT_PENALTY",
    "Fingerprint",
    "IDENTIFY_TAIL_COLUMNS",
    "PENALTY_GRID",
    "PIPELINE_STEPS",
    "REFERENCE_ARRAYS",
    "SAVED_ARRAYS",
    "check_architectures",
    "check_seed",
    "class_codes",
    "fingerprint_pipeline",
    "fit_fingerprint",
    "fitted_pipeline",
    "identify",
    "identify_columns",
    "penalised_fit",
    "quiet_fitting",
]
