"""Fingerprinting architectures from the scores of a few marker examples (paper §4.3, Figure 1).

A *fingerprint* is a small classifier that tells which architecture trained a run from the run's
scores on K *marker* examples: a scikit-learn :class:`~sklearn.pipeline.Pipeline` of
:class:`~gwas_models.analysis.markers.MarkerSelector`, ``StandardScaler`` and unpenalised
``LogisticRegression`` (multinomial for three or more classes). This module builds such
pipelines, fits one on every run, and applies a fitted one to new runs; their evaluation on
held-out runs lives in :mod:`gwas_models.analysis.fingerprint_evaluation`. It is pure: arrays and
:class:`~gwas_models.matrix.ScoreMatrix` in, dataclasses and DataFrames out; the file format lives
in :mod:`gwas_models.formats.fingerprint_file`.
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
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from gwas_models import __version__
from gwas_models.analysis.markers import (
    DEFAULT_MARKERS,
    EVIDENCE_TESTS,
    MarkerSelector,
    check_marker_count,
    fitted_selector,
)
from gwas_models.errors import InputError
from gwas_models.matrix import ScoreMatrix

MIN_TRAINING_RUNS = 2  # Welch's variance needs two runs per architecture
#: Names of the pipeline's steps, in order.
PIPELINE_STEPS: tuple[str, ...] = ("select", "scale", "logistic")

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


def _classifier_steps() -> list[tuple[str, Any]]:
    """Unfitted scaler and logistic steps.

    ``C=inf`` is how scikit-learn >= 1.8 asks for no penalty (``penalty=None`` is deprecated there);
    for three or more classes every solver but liblinear fits the multinomial loss.
    """
    return [("scale", StandardScaler()), ("logistic", LogisticRegression(C=np.inf, max_iter=_MAX_ITER))]


def fingerprint_pipeline(
    n_markers: int = DEFAULT_MARKERS, selection: str = "top", random_state: int | np.random.RandomState | None = None
) -> Pipeline:
    """A fresh, unfitted fingerprint: marker selector, ``StandardScaler``, ``LogisticRegression``.

    Fit it on score rows ``(n_runs, n_examples)`` and integer class codes; it predicts class codes.

    Parameters
    ----------
    n_markers, selection, random_state
        Those of :class:`~gwas_models.analysis.markers.MarkerSelector`.
    """
    selector = MarkerSelector(n_markers=n_markers, selection=selection, random_state=random_state)
    return Pipeline([("select", selector), *_classifier_steps()])


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
) -> Pipeline:
    """A fitted :func:`fingerprint_pipeline` rebuilt from its arrays (e.g. read from a file).

    The fitted attributes of each step are set as ``fit`` would have set them, so the pipeline
    predicts exactly as the one that was fitted. ``n_runs`` (the runs it was fitted on, 0 when
    unknown) only fills ``StandardScaler.n_samples_seen_``.
    """
    scaler_mean = np.asarray(scaler_mean, dtype=np.float64)
    coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    n_markers = len(scaler_mean)
    (_, scaler), (_, logistic) = _classifier_steps()
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
        Runs (seeds per architecture), K, versions, creation time, training accuracy, ...

    The arrays that a file saves are read from the pipeline: :attr:`marker_ids`,
    :attr:`marker_neg_log10_p`, :attr:`evidence_test`, :attr:`scaler_mean`, :attr:`scaler_scale`,
    :attr:`coef`, :attr:`intercept`. Build one from those arrays with :meth:`from_arrays`.
    """

    dataset: str
    n_examples: int
    score: str
    higher_is_harder: bool
    classes: tuple[str, ...]
    pipeline: Pipeline = field(repr=False)
    provenance: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        object.__setattr__(self, "n_examples", int(self.n_examples))
        object.__setattr__(self, "higher_is_harder", bool(self.higher_is_harder))
        object.__setattr__(self, "provenance", dict(self.provenance))
        _check_pipeline(self.pipeline, self.n_examples)
        _check_parts(self.classes, self.n_examples, self.evidence_test, self.arrays())

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
    ) -> "Fingerprint":
        """A fingerprint from its saved arrays (see :data:`SAVED_ARRAYS`), its pipeline rebuilt.

        Raises
        ------
        InputError
            When the parts do not make one classifier (shapes, classes, marker ids, non-finite or
            non-positive values).
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
        pipeline = fitted_pipeline(int(n_examples), evidence_test=evidence_test, n_runs=_count_runs(provenance), **arrays)
        return cls(dataset, n_examples, score, higher_is_harder, classes, pipeline, provenance)

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

    def arrays(self) -> dict[str, np.ndarray]:
        """The saved arrays, by name (:data:`SAVED_ARRAYS`)."""
        return {name: getattr(self, name) for name in SAVED_ARRAYS}

    def __eq__(self, other: object) -> bool:
        """Equal when every saved field is equal, arrays element for element."""
        if not isinstance(other, Fingerprint):
            return NotImplemented
        fields = ("dataset", "n_examples", "score", "higher_is_harder", "classes", "evidence_test", "provenance")
        if any(getattr(self, name) != getattr(other, name) for name in fields):
            return False
        theirs = other.arrays()
        return all(np.array_equal(mine, theirs[name], equal_nan=True) for name, mine in self.arrays().items())

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
) -> Fingerprint:
    """Fit the fingerprint pipeline, with the top-K markers, on all runs of ``matrix``.

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
        Extra entries for the provenance (e.g. the store path); merged over the computed ones.

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
    pipeline = fingerprint_pipeline(n_markers, "top")
    with quiet_fitting(), _about_score(matrix.score):
        pipeline.fit(rows, codes)
    record = {
        "runs": {arch: sorted(int(s) for s in seeds[groups == arch]) for arch in archs},
        "n_markers": int(n_markers),
        "training_accuracy": float(pipeline.score(rows, codes)),
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
    )


def identify(
    fingerprint: Fingerprint,
    example_id: np.ndarray,
    values: np.ndarray,
    run_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Predict the architecture of runs from their scores.

    Parameters
    ----------
    fingerprint : Fingerprint
    example_id : int array (n_examples,)
    values : float array (n_runs, n_examples), or (n_examples,) for one run
        The fingerprint's score of each run.
    run_names : sequence of str, optional
        A name per run (default ``run0``, ``run1``, ...).

    Returns
    -------
    DataFrame
        One row per run: ``RUN``, ``PREDICTED``, then ``P(<class>)`` for every class.
    """
    features = fingerprint.marker_features(example_id, values)
    names = list(run_names) if run_names is not None else [f"run{i}" for i in range(len(features))]
    if len(names) != len(features):
        raise InputError(f"{len(names)} run names for {len(features)} runs")
    probabilities = fingerprint.predict_proba(features)
    table = pd.DataFrame({"RUN": names, "PREDICTED": fingerprint.predict(features)})
    for column, cls in enumerate(fingerprint.classes):
        table[f"P({cls})"] = probabilities[:, column]
    return table


__all__ = [
    "Fingerprint",
    "PIPELINE_STEPS",
    "SAVED_ARRAYS",
    "check_architectures",
    "check_seed",
    "class_codes",
    "fingerprint_pipeline",
    "fit_fingerprint",
    "fitted_pipeline",
    "identify",
    "quiet_fitting",
]
