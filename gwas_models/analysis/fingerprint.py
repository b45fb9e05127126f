"""Fingerprinting architectures from the scores of a few marker examples (paper §4.3, Figure 1).

A *fingerprint* is a small logistic classifier that tells which architecture trained a run from the
run's scores on K *marker* examples. This module picks markers, fits the classifier, measures how
well it identifies held-out runs, and applies a fitted fingerprint to new runs. It is pure: arrays
and :class:`~gwas_models.matrix.ScoreMatrix` in, dataclasses and DataFrames out; the file format
lives in :mod:`gwas_models.formats.fingerprint_file`.

Protocol (the paper's, made repeatable)
---------------------------------------
1. The runs of each architecture are split at random into training and held-out runs, in the same
   proportion for every architecture (stratified; default half and half, the paper's 20 + 20).
2. Association evidence is computed **on the training runs only**: −log10 p of Welch's two-sample
   t-test per example for two architectures, of Welch's one-way ANOVA for three or more (both
   from :mod:`gwas_models.analysis.association`). Selecting markers on all runs would let the
   held-out runs' noise choose the markers, and even pure noise would then look identifiable.
3. Markers: ``top`` = the K examples with the highest evidence, ``bottom`` = the K lowest (among
   the examples whose test could be done), ``random`` = K examples drawn uniformly (the baseline,
   drawn ``random_draws`` times).
4. Features are the markers' scores in each run; the classifier is a scikit-learn ``Pipeline`` of
   ``StandardScaler`` and unpenalised ``LogisticRegression`` (multinomial for three or more
   classes), fitted on the training runs and scored on the held-out runs.
5. Steps 1–4 are repeated over ``n_splits`` random splits; the summary reports the mean accuracy and
   the 2.5/97.5 percentiles over splits.

An example can be a marker only if its score is finite in every run (the classifier needs every
feature of every run). That condition does not look at the architectures, so using the held-out
runs for it leaks nothing about which examples differ.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import sklearn
from scipy.special import expit, softmax
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from gwas_models import __version__
from gwas_models.analysis.association import two_sample_test, welch_anova
from gwas_models.errors import InputError
from gwas_models.matrix import ScoreMatrix

SELECTIONS: tuple[str, ...] = ("top", "bottom", "random")
DEFAULT_MARKERS = 8
DEFAULT_SPLITS = 10
DEFAULT_RANDOM_DRAWS = 20
DEFAULT_TRAIN_FRACTION = 0.5
MIN_TRAINING_RUNS = 2  # Welch's variance needs two runs per architecture
MIN_HELDOUT_RUNS = 1
INTERVAL_PERCENTILES = (2.5, 97.5)

#: Evidence test per number of architectures.
PAIR_TEST = "welch"
MULTI_TEST = "welch_anova"

#: Columns of the evaluation summary (the ``<prefix>.tsv`` that ``gwasm fingerprint`` writes).
SUMMARY_COLUMNS: tuple[str, ...] = (
    "SCORE",
    "SELECT",
    "K",
    "MEAN_ACCURACY",
    "SD",
    "LOW",
    "HIGH",
    "N_SPLITS",
    "N_DRAWS",
    "N_TRAIN_RUNS",
    "N_HELDOUT_RUNS",
    "CHANCE",
    "ARCHS",
)
#: Columns of the per-fit accuracies (one row per score × selection × split × draw).
ACCURACY_COLUMNS: tuple[str, ...] = ("SCORE", "SELECT", "SPLIT", "DRAW", "ACCURACY")

# An unpenalised fit has no finite optimum when the training runs are separable (the usual case
# for good markers): the coefficients grow until lbfgs stops. The direction, and so every
# prediction, is settled long before; this cap only bounds the time spent growing them.
_MAX_ITER = 1000


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------


def parse_selections(text: str | Iterable[str] | None) -> tuple[str, ...]:
    """Marker selections from ``"all"``, one name, or a comma-separated list.

    Parameters
    ----------
    text : str, iterable of str, or None
        ``None``, ``""`` and ``"all"`` mean every selection (top, bottom, random).

    Returns
    -------
    tuple of str, in the order of :data:`SELECTIONS`.
    """
    if text is None:
        return SELECTIONS
    parts = text.split(",") if isinstance(text, str) else list(text)
    names = {part.strip() for part in parts if part.strip()}
    if not names or names == {"all"}:
        return SELECTIONS
    unknown = sorted(names - set(SELECTIONS))
    if unknown:
        raise InputError(f"unknown marker selection {unknown[0]!r}; choose top, bottom, random or all")
    return tuple(name for name in SELECTIONS if name in names)


def check_architectures(archs: Sequence[str]) -> tuple[str, ...]:
    """At least two distinct architecture names, in the given order."""
    archs = tuple(str(a) for a in archs)
    duplicated = sorted({a for a in archs if archs.count(a) > 1})
    if duplicated:
        raise InputError(f"architecture {duplicated[0]!r} is given twice; name each architecture once")
    if len(archs) < 2:
        raise InputError(f"a fingerprint tells architectures apart: give at least two, got {len(archs)} ({', '.join(archs) or 'none'})")
    return archs


def check_marker_count(n_markers: int, n_examples: int) -> None:
    """Raise :class:`InputError` unless 1 <= ``n_markers`` <= ``n_examples``."""
    if n_markers < 1:
        raise InputError(f"--markers must be at least 1, got {n_markers}")
    if n_markers > n_examples:
        raise InputError(f"--markers {n_markers} exceeds the {n_examples} examples of the dataset")


def check_evaluation_options(n_splits: int, random_draws: int, train_fraction: float) -> None:
    """Raise :class:`InputError` for a split count, draw count or train fraction that cannot work."""
    if n_splits < 1:
        raise InputError(f"--splits must be at least 1, got {n_splits}")
    if random_draws < 1:
        raise InputError(f"--random-draws must be at least 1, got {random_draws}")
    if not (0.0 < train_fraction < 1.0):
        raise InputError(f"--train-fraction must lie strictly between 0 and 1, got {train_fraction}")


# --------------------------------------------------------------------------------------------
# Splitting runs
# --------------------------------------------------------------------------------------------


def class_codes(groups: np.ndarray, archs: Sequence[str]) -> np.ndarray:
    """Index of each run's architecture in ``archs`` (-1 for runs of other architectures)."""
    groups = np.asarray(groups).astype(str)
    codes = np.full(len(groups), -1, dtype=np.int64)
    for code, arch in enumerate(archs):
        codes[groups == arch] = code
    return codes


def training_run_counts(groups: np.ndarray, archs: Sequence[str], train_fraction: float) -> dict[str, int]:
    """Training runs per architecture for a stratified split.

    ``round(train_fraction * n_runs)`` (halves round up), which must leave at least
    :data:`MIN_TRAINING_RUNS` training runs and :data:`MIN_HELDOUT_RUNS` held-out run per architecture.

    Raises
    ------
    InputError
        Naming the first architecture that cannot be split, with its number of runs.
    """
    groups = np.asarray(groups).astype(str)
    counts: dict[str, int] = {}
    for arch in archs:
        n_runs = int((groups == arch).sum())
        n_train = int(np.floor(train_fraction * n_runs + 0.5))
        if n_train < MIN_TRAINING_RUNS or n_runs - n_train < MIN_HELDOUT_RUNS:
            raise InputError(
                f"architecture {arch!r} has {n_runs} run(s): a train fraction of {train_fraction:g} leaves "
                f"{n_train} to fit and {n_runs - n_train} held out; each architecture needs at least "
                f"{MIN_TRAINING_RUNS} training runs and {MIN_HELDOUT_RUNS} held-out run"
            )
        counts[arch] = n_train
    return counts


def split_runs(
    groups: np.ndarray, archs: Sequence[str], train_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One random stratified split of the runs into training and held-out runs.

    Parameters
    ----------
    groups : str array (n_runs,)
        Architecture of each run; runs of architectures not in ``archs`` are left out of both parts.
    archs : sequence of str
    train_fraction : float
    rng : numpy.random.Generator

    Returns
    -------
    train, heldout : sorted int arrays of run indices.
    """
    groups = np.asarray(groups).astype(str)
    counts = training_run_counts(groups, archs, train_fraction)
    train, heldout = [], []
    for arch in archs:
        runs = rng.permutation(np.flatnonzero(groups == arch))
        train.append(runs[: counts[arch]])
        heldout.append(runs[counts[arch] :])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(heldout))


# --------------------------------------------------------------------------------------------
# Association evidence and marker selection
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MarkerEvidence:
    """How strongly each example's score differs between architectures, on some runs.

    Attributes
    ----------
    test : {"welch", "welch_anova"}
        Welch's t-test for two architectures, Welch's one-way ANOVA for more.
    neg_log10_p : float array (n_examples,)
        −log10 p of the test; NaN where the test could not be done.
    tested : bool array (n_examples,)
        The test was done (``ERRCODE`` '.').
    usable : bool array (n_examples,)
        The score is finite in every run, so the example can serve as a feature.
    """

    test: str
    neg_log10_p: np.ndarray
    tested: np.ndarray
    usable: np.ndarray

    @property
    def n_examples(self) -> int:
        return len(self.neg_log10_p)


def usable_examples(values: np.ndarray) -> np.ndarray:
    """Examples whose score is finite in every run (candidates for markers)."""
    return np.isfinite(np.asarray(values, dtype=np.float64)).all(axis=0)


def marker_evidence(
    values: np.ndarray, groups: np.ndarray, archs: Sequence[str], usable: np.ndarray | None = None
) -> MarkerEvidence:
    """Per-example association evidence between the architectures' runs.

    Parameters
    ----------
    values : float array (n_runs, n_examples)
        Scores of the runs to compute the evidence on (the training runs, when evaluating).
    groups : str array (n_runs,)
        Architecture of each run.
    archs : sequence of str
        Two architectures: Welch's two-sample t-test; three or more: Welch's one-way ANOVA.
    usable : bool array (n_examples,), optional
        Examples that may serve as markers; default: finite in every row of ``values``.

    Returns
    -------
    MarkerEvidence
    """
    values = np.asarray(values, dtype=np.float64)
    groups = np.asarray(groups).astype(str)
    blocks = [values[groups == arch] for arch in archs]
    if len(archs) == 2:
        result = two_sample_test(blocks[0], blocks[1], PAIR_TEST, names=(archs[0], archs[1]))
        test = PAIR_TEST
    else:
        result = welch_anova(blocks, archs)
        test = MULTI_TEST
    usable = usable_examples(values) if usable is None else np.asarray(usable, dtype=bool)
    return MarkerEvidence(test=test, neg_log10_p=result.neg_log10_p, tested=result.tested, usable=usable)


def select_markers(
    evidence: MarkerEvidence,
    n_markers: int,
    selection: str = "top",
    rng: np.random.Generator | None = None,
    *,
    score: str = "",
) -> np.ndarray:
    """Column indices of ``n_markers`` marker examples.

    Parameters
    ----------
    evidence : MarkerEvidence
    n_markers : int
    selection : {"top", "bottom", "random"}
        ``top``: highest −log10 p, strongest first; ``bottom``: lowest −log10 p, weakest first (both
        among tested, usable examples; ties go to the lower column); ``random``: drawn uniformly
        without replacement among the usable examples, in increasing column order.
    rng : numpy.random.Generator
        Needed for ``random``.
    score : str
        Score name, for error messages.

    Returns
    -------
    int array (n_markers,)
    """
    if selection not in SELECTIONS:
        raise InputError(f"unknown marker selection {selection!r}; choose top, bottom, random or all")
    check_marker_count(n_markers, evidence.n_examples)
    if selection == "random":
        if rng is None:
            raise InputError("random marker selection needs a numpy Generator")
        candidates = np.flatnonzero(evidence.usable)
        _require_candidates(candidates, n_markers, score, "have a finite score in every run")
        return np.sort(rng.choice(candidates, size=n_markers, replace=False))
    candidates = np.flatnonzero(evidence.tested & evidence.usable)
    _require_candidates(candidates, n_markers, score, "were tested on the training runs, with a finite score in every run")
    strength = evidence.neg_log10_p[candidates]
    # lexsort: the last key is the primary one; the column index breaks ties deterministically.
    order = np.lexsort((candidates, -strength if selection == "top" else strength))
    return candidates[order[:n_markers]]


def _require_candidates(candidates: np.ndarray, n_markers: int, score: str, condition: str) -> None:
    if len(candidates) < n_markers:
        where = f" of score {score!r}" if score else ""
        raise InputError(
            f"only {len(candidates)} example(s){where} {condition}; cannot pick {n_markers} markers "
            f"(use --markers {len(candidates)} or fewer, or another score)"
        )


# --------------------------------------------------------------------------------------------
# The classifier
# --------------------------------------------------------------------------------------------


def make_classifier() -> Pipeline:
    """A fresh, unfitted ``StandardScaler`` + unpenalised ``LogisticRegression`` pipeline.

    ``C=inf`` is how scikit-learn >= 1.8 asks for no penalty (``penalty=None`` is deprecated there);
    for three or more classes every solver but liblinear fits the multinomial loss.
    """
    return Pipeline(
        [
            ("scale", StandardScaler()),
            ("logistic", LogisticRegression(C=np.inf, max_iter=_MAX_ITER)),
        ]
    )


def fit_classifier(features: np.ndarray, codes: np.ndarray) -> Pipeline:
    """Fit :func:`make_classifier` on ``features`` (n_runs, K) and integer class ``codes``.

    Convergence warnings are silenced on purpose: with separable training runs the unpenalised
    optimum is at infinity (see ``_MAX_ITER``), which is the expected case, not a failure.
    """
    pipeline = make_classifier()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # scikit-learn and scipy warn about overflow in exp() once coefficients are huge.
        with np.errstate(over="ignore"):
            pipeline.fit(np.asarray(features, dtype=np.float64), np.asarray(codes))
    return pipeline


def heldout_accuracy(pipeline: Pipeline, features: np.ndarray, codes: np.ndarray) -> float:
    """Fraction of runs whose architecture ``pipeline`` predicts correctly."""
    return float(np.mean(pipeline.predict(np.asarray(features, dtype=np.float64)) == np.asarray(codes)))


# --------------------------------------------------------------------------------------------
# Evaluation over random splits
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FingerprintEvaluation:
    """Held-out accuracy of fingerprints, per score and marker selection.

    Attributes
    ----------
    summary : DataFrame
        One row per score × selection, columns :data:`SUMMARY_COLUMNS`:

        ``K``
            Markers per fingerprint.
        ``MEAN_ACCURACY``
            Mean held-out accuracy over every fit (splits × draws).
        ``SD``
            Standard deviation of the held-out accuracy over every fit: over splits for top and
            bottom, over splits and random draws for random (NaN with a single fit).
        ``LOW``, ``HIGH``
            2.5 and 97.5 percentiles over splits of the split's mean accuracy (random: mean over
            the split's draws): the interval drawn as error bars.
        ``N_SPLITS``, ``N_DRAWS``
            Splits, and marker sets per split (1 for top and bottom).
        ``N_TRAIN_RUNS``, ``N_HELDOUT_RUNS``
            Runs used to fit and to score, all architectures together, in every split.
        ``CHANCE``
            Accuracy of always guessing the most frequent held-out architecture.
        ``ARCHS``
            The architectures, comma-separated, in class order.
    accuracies : DataFrame
        Every fit's held-out accuracy, columns :data:`ACCURACY_COLUMNS`.
    """

    summary: pd.DataFrame
    accuracies: pd.DataFrame

    def accuracy(self, score: str, selection: str) -> float:
        """``MEAN_ACCURACY`` of one score and selection."""
        row = self.summary[(self.summary["SCORE"] == score) & (self.summary["SELECT"] == selection)]
        if row.empty:
            raise InputError(f"no evaluation of score {score!r} with selection {selection!r}")
        return float(row["MEAN_ACCURACY"].iloc[0])

    def best_score(self, selection: str = "top") -> str:
        """The score whose ``selection`` markers identify held-out runs best.

        Highest mean accuracy; ties go to the smaller ``SD``, then to the earlier row.
        """
        rows = self.summary[self.summary["SELECT"] == selection]
        if rows.empty:
            raise InputError(f"no {selection}-marker evaluation to choose a score from")
        ranked = rows.assign(_sd=rows["SD"].fillna(0.0), _order=np.arange(len(rows)))
        ranked = ranked.sort_values(["MEAN_ACCURACY", "_sd", "_order"], ascending=[False, True, True])
        return str(ranked["SCORE"].iloc[0])


def evaluate_fingerprint(
    matrix: ScoreMatrix,
    archs: Sequence[str],
    rng: np.random.Generator,
    *,
    n_markers: int = DEFAULT_MARKERS,
    selections: Sequence[str] = SELECTIONS,
    n_splits: int = DEFAULT_SPLITS,
    random_draws: int = DEFAULT_RANDOM_DRAWS,
    train_fraction: float = DEFAULT_TRAIN_FRACTION,
) -> FingerprintEvaluation:
    """Held-out accuracy of K-marker fingerprints of one score, over random splits.

    Parameters
    ----------
    matrix : ScoreMatrix
        One score of the runs; runs of architectures not in ``archs`` are ignored.
    archs : sequence of str
        The architectures to tell apart (class order).
    rng : numpy.random.Generator
        Draws the splits and the random markers.
    n_markers : int
        K, the markers per fingerprint.
    selections : sequence of {"top", "bottom", "random"}
    n_splits : int
        Random train/held-out splits.
    random_draws : int
        Random marker sets per split.
    train_fraction : float
        Share of each architecture's runs used for fitting (and for choosing markers).

    Returns
    -------
    FingerprintEvaluation
    """
    archs = check_architectures(archs)
    selections = parse_selections(selections)
    check_evaluation_options(n_splits, random_draws, train_fraction)
    check_marker_count(n_markers, matrix.n_examples)
    _require_runs_of(matrix, archs)
    codes = class_codes(matrix.groups, archs)
    ours = codes >= 0
    values, groups, codes = matrix.values[ours], matrix.groups[ours], codes[ours]
    usable = usable_examples(values)
    accuracies: dict[str, np.ndarray] = {
        s: np.empty((n_splits, random_draws if s == "random" else 1)) for s in selections
    }
    # Tiny least-squares problems: BLAS threads only add contention (25x slower on 2 busy cores).
    with threadpool_limits(limits=1, user_api="blas"):
        for split in range(n_splits):
            train, heldout = split_runs(groups, archs, train_fraction, rng)
            evidence = marker_evidence(values[train], groups[train], archs, usable)
            for selection in selections:
                for draw in range(accuracies[selection].shape[1]):
                    columns = select_markers(evidence, n_markers, selection, rng, score=matrix.score)
                    pipeline = fit_classifier(values[np.ix_(train, columns)], codes[train])
                    accuracies[selection][split, draw] = heldout_accuracy(pipeline, values[np.ix_(heldout, columns)], codes[heldout])
    n_heldout = np.bincount(codes[heldout], minlength=len(archs))
    context = {
        "score": matrix.score,
        "n_markers": n_markers,
        "n_train": len(train),
        "n_heldout": len(heldout),
        "chance": float(n_heldout.max() / n_heldout.sum()),
        "archs": ",".join(archs),
    }
    summary = pd.DataFrame([_summary_row(selection, acc, context) for selection, acc in accuracies.items()], columns=list(SUMMARY_COLUMNS))
    return FingerprintEvaluation(summary=summary, accuracies=_accuracy_frame(matrix.score, accuracies))


def _require_runs_of(matrix: ScoreMatrix, archs: Sequence[str]) -> None:
    present = set(matrix.groups.tolist())
    for arch in archs:
        if arch not in present:
            raise InputError(f"no runs of {arch!r} for score {matrix.score!r}; architectures present: {', '.join(matrix.group_names())}")


def _summary_row(selection: str, accuracies: np.ndarray, context: Mapping[str, Any]) -> dict[str, Any]:
    per_split = accuracies.mean(axis=1)
    low, high = np.percentile(per_split, INTERVAL_PERCENTILES)
    return {
        "SCORE": context["score"],
        "SELECT": selection,
        "K": context["n_markers"],
        "MEAN_ACCURACY": float(accuracies.mean()),
        "SD": float(accuracies.std(ddof=1)) if accuracies.size > 1 else np.nan,
        "LOW": float(low),
        "HIGH": float(high),
        "N_SPLITS": accuracies.shape[0],
        "N_DRAWS": accuracies.shape[1],
        "N_TRAIN_RUNS": context["n_train"],
        "N_HELDOUT_RUNS": context["n_heldout"],
        "CHANCE": context["chance"],
        "ARCHS": context["archs"],
    }


def _accuracy_frame(score: str, accuracies: Mapping[str, np.ndarray]) -> pd.DataFrame:
    frames = []
    for selection, acc in accuracies.items():
        split, draw = np.indices(acc.shape)
        frames.append(
            pd.DataFrame(
                {"SCORE": score, "SELECT": selection, "SPLIT": split.ravel(), "DRAW": draw.ravel(), "ACCURACY": acc.ravel()}
            )
        )
    return pd.concat(frames, ignore_index=True)[list(ACCURACY_COLUMNS)]


def evaluate_scores(
    matrices: Mapping[str, ScoreMatrix],
    archs: Sequence[str],
    rng: np.random.Generator,
    **options: Any,
) -> FingerprintEvaluation:
    """:func:`evaluate_fingerprint` for several scores, one after the other, in one table.

    Every score gets its own splits, drawn from ``rng`` in the order of ``matrices``; keyword
    options are those of :func:`evaluate_fingerprint`.
    """
    if not matrices:
        raise InputError("no score to evaluate")
    parts = [evaluate_fingerprint(matrix, archs, rng, **options) for matrix in matrices.values()]
    return FingerprintEvaluation(
        summary=pd.concat([p.summary for p in parts], ignore_index=True),
        accuracies=pd.concat([p.accuracies for p in parts], ignore_index=True),
    )


# --------------------------------------------------------------------------------------------
# The fitted fingerprint
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Fingerprint:
    """A fitted fingerprint: enough to identify the architecture of a new run without scikit-learn.

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
        Architectures, in class order.
    marker_ids : int array (K,)
        ``example_id`` of the markers, strongest evidence first.
    marker_neg_log10_p : float array (K,)
        Their evidence on the runs the fingerprint was fitted on.
    evidence_test : {"welch", "welch_anova"}
    scaler_mean, scaler_scale : float arrays (K,)
        ``StandardScaler``'s ``mean_`` and ``scale_``.
    coef : float array (1, K) for two classes, (n_classes, K) for more
        ``LogisticRegression.coef_``.
    intercept : float array (1,) or (n_classes,)
        ``LogisticRegression.intercept_``.
    provenance : dict
        Runs (seeds per architecture), K, versions, creation time, training accuracy, ...
    pipeline : sklearn Pipeline or None
        The fitted pipeline when fitted in this process (not saved, not compared).
    """

    dataset: str
    n_examples: int
    score: str
    higher_is_harder: bool
    classes: tuple[str, ...]
    marker_ids: np.ndarray
    marker_neg_log10_p: np.ndarray
    evidence_test: str
    scaler_mean: np.ndarray
    scaler_scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    provenance: dict = field(default_factory=dict)
    pipeline: Pipeline | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        arrays = {
            "marker_ids": np.asarray(self.marker_ids, dtype=np.int64),
            "marker_neg_log10_p": np.asarray(self.marker_neg_log10_p, dtype=np.float64),
            "scaler_mean": np.asarray(self.scaler_mean, dtype=np.float64),
            "scaler_scale": np.asarray(self.scaler_scale, dtype=np.float64),
            "coef": np.atleast_2d(np.asarray(self.coef, dtype=np.float64)),
            "intercept": np.atleast_1d(np.asarray(self.intercept, dtype=np.float64)),
        }
        for name, value in arrays.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        object.__setattr__(self, "n_examples", int(self.n_examples))
        object.__setattr__(self, "higher_is_harder", bool(self.higher_is_harder))
        self._check()

    def _check(self) -> None:
        """Raise :class:`InputError` when the parts do not make one classifier."""
        k = len(self.marker_ids)
        if len(self.classes) < 2 or len(set(self.classes)) != len(self.classes):
            raise InputError(f"a fingerprint needs at least two distinct classes, got {list(self.classes)}")
        if k < 1 or self.marker_ids.ndim != 1:
            raise InputError("a fingerprint needs at least one marker example")
        if len(np.unique(self.marker_ids)) != k:
            raise InputError("the marker example ids repeat")
        if self.n_examples < 1 or self.marker_ids.min() < 0 or self.marker_ids.max() >= self.n_examples:
            raise InputError(f"marker example ids must lie in 0..{self.n_examples - 1}")
        rows = 1 if len(self.classes) == 2 else len(self.classes)
        expected = {
            "marker_neg_log10_p": (k,),
            "scaler_mean": (k,),
            "scaler_scale": (k,),
            "coef": (rows, k),
            "intercept": (rows,),
        }
        for name, shape in expected.items():
            value = getattr(self, name)
            if value.shape != shape:
                raise InputError(f"{name} has shape {value.shape}, expected {shape} for {k} markers and {len(self.classes)} classes")
        for name in ("scaler_mean", "scaler_scale", "coef", "intercept"):
            if not np.isfinite(getattr(self, name)).all():
                raise InputError(f"{name} holds non-finite values")
        if not (self.scaler_scale > 0).all():
            raise InputError("scaler_scale must be positive")

    def __eq__(self, other: object) -> bool:
        """Equal when every saved field is equal, arrays element for element (the pipeline is ignored)."""
        if not isinstance(other, Fingerprint):
            return NotImplemented
        for name in self.__dataclass_fields__:
            if name == "pipeline":
                continue
            mine, theirs = getattr(self, name), getattr(other, name)
            same = np.array_equal(mine, theirs, equal_nan=True) if isinstance(mine, np.ndarray) else mine == theirs
            if not same:
                return False
        return True

    __hash__ = None  # mutable arrays inside: not hashable

    @property
    def n_markers(self) -> int:
        return len(self.marker_ids)

    # ---- applying it ------------------------------------------------------------------------

    def decision_function(self, features: np.ndarray) -> np.ndarray:
        """Linear scores, as ``pipeline.decision_function``: (n_runs,) for two classes, else (n_runs, n_classes)."""
        features = self._as_features(features)
        # Same operations in the same order as StandardScaler.transform and
        # LinearClassifierMixin.decision_function, so the results agree to the last bits.
        scaled = (features - self.scaler_mean) / self.scaler_scale
        scores = scaled @ self.coef.T + self.intercept
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities (n_runs, n_classes), computed as scikit-learn's ``predict_proba``.

        Two classes: the logistic function of the decision score gives the second class; more: the
        softmax of the decision scores (the multinomial model).
        """
        scores = self.decision_function(features)
        with np.errstate(over="ignore"):
            if scores.ndim == 1:
                second = expit(scores)
                return np.stack([1.0 - second, second], axis=1)
            return softmax(scores, axis=1)

    def predict_codes(self, features: np.ndarray) -> np.ndarray:
        """Index into :attr:`classes` of each run's predicted architecture."""
        scores = self.decision_function(features)
        if scores.ndim == 1:
            return (scores > 0).astype(np.int64)
        return np.argmax(scores, axis=1)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Predicted architecture name of each run."""
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
        """The markers' scores of each run.

        Parameters
        ----------
        example_id : int array (n_examples,)
            Ids of the columns of ``values``.
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
        position = {int(e): i for i, e in enumerate(example_id)}
        absent = [int(m) for m in self.marker_ids if int(m) not in position]
        if absent:
            raise InputError(f"the scores lack {len(absent)} of the {self.n_markers} marker examples (example_id {_list_ids(absent)})")
        features = values[:, [position[int(m)] for m in self.marker_ids]]
        missing = ~np.isfinite(features).all(axis=0)
        if missing.any():
            raise InputError(
                f"the {self.score} scores of marker example(s) {_list_ids(self.marker_ids[missing])} are missing (NaN) in "
                f"{int((~np.isfinite(features).all(axis=1)).sum())} run(s)"
            )
        return features


def _list_ids(ids: Iterable[int], limit: int = 5) -> str:
    ids = [int(i) for i in ids]
    shown = ", ".join(str(i) for i in ids[:limit])
    return shown + (f", ... ({len(ids)} in all)" if len(ids) > limit else "")


def fit_fingerprint(
    matrix: ScoreMatrix,
    archs: Sequence[str],
    n_markers: int = DEFAULT_MARKERS,
    provenance: Mapping[str, Any] | None = None,
) -> Fingerprint:
    """Pick the top-K markers on all runs of ``matrix`` and fit the classifier on them.

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
        With :attr:`Fingerprint.pipeline` set to the fitted pipeline.
    """
    archs = check_architectures(archs)
    check_marker_count(n_markers, matrix.n_examples)
    _require_runs_of(matrix, archs)
    codes = class_codes(matrix.groups, archs)
    ours = codes >= 0
    values, groups, seeds, codes = matrix.values[ours], matrix.groups[ours], matrix.seeds[ours], codes[ours]
    for arch in archs:
        n_runs = int((groups == arch).sum())
        if n_runs < MIN_TRAINING_RUNS:
            raise InputError(f"architecture {arch!r} has {n_runs} run(s); fitting a fingerprint needs at least {MIN_TRAINING_RUNS} per architecture")
    evidence = marker_evidence(values, groups, archs)
    columns = select_markers(evidence, n_markers, "top", score=matrix.score)
    features = values[:, columns]
    with threadpool_limits(limits=1, user_api="blas"):
        pipeline = fit_classifier(features, codes)
    scaler: StandardScaler = pipeline.named_steps["scale"]
    logistic: LogisticRegression = pipeline.named_steps["logistic"]
    record = {
        "runs": {arch: sorted(int(s) for s in seeds[groups == arch]) for arch in archs},
        "n_markers": int(n_markers),
        "training_accuracy": heldout_accuracy(pipeline, features, codes),
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
        marker_ids=matrix.example_id[columns],
        marker_neg_log10_p=evidence.neg_log10_p[columns],
        evidence_test=evidence.test,
        scaler_mean=scaler.mean_,
        scaler_scale=scaler.scale_,
        coef=logistic.coef_,
        intercept=logistic.intercept_,
        provenance=record,
        pipeline=pipeline,
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
    "ACCURACY_COLUMNS",
    "DEFAULT_MARKERS",
    "DEFAULT_RANDOM_DRAWS",
    "DEFAULT_SPLITS",
    "DEFAULT_TRAIN_FRACTION",
    "Fingerprint",
    "FingerprintEvaluation",
    "MarkerEvidence",
    "SELECTIONS",
    "SUMMARY_COLUMNS",
    "check_architectures",
    "check_evaluation_options",
    "check_marker_count",
    "class_codes",
    "evaluate_fingerprint",
    "evaluate_scores",
    "fit_classifier",
    "fit_fingerprint",
    "heldout_accuracy",
    "identify",
    "make_classifier",
    "marker_evidence",
    "parse_selections",
    "select_markers",
    "split_runs",
    "training_run_counts",
    "usable_examples",
]
