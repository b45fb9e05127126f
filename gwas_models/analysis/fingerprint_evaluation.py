"""Held-out evaluation of fingerprints: how well K marker examples identify runs (paper §4.3, Figure 1).

This module evaluates the pipelines of :mod:`gwas_models.analysis.fingerprint` on held-out runs,
over random splits, for each marker selection, and evaluates the whole procedure that chooses a
fingerprint's score among several (:class:`ScoreSelectingFingerprint`). It is pure: arrays and
:class:`~gwas_models.matrix.ScoreMatrix` in, dataclasses and DataFrames out; the table format lives
in :mod:`gwas_models.formats.fingerprint_file`.

Protocol (the paper's, made repeatable)
---------------------------------------
1. The runs are split at random into training and held-out runs, in the same proportion for every
   architecture (``StratifiedShuffleSplit``; default half and half, the paper's 20 + 20).
2. The pipeline is fitted on the training runs of each split (``cross_validate``): its selector
   computes the association evidence **on the training runs only** and picks the markers there.
   Selecting markers on all runs would let the held-out runs' noise choose them, and even pure
   noise would then look identifiable.
3. Markers: ``top`` = the K examples with the highest evidence, ``bottom`` = the K lowest (among
   the examples whose test could be done), ``random`` = K examples drawn uniformly (the baseline,
   drawn ``random_draws`` times per split).
4. The summary reports the mean held-out accuracy and the 2.5/97.5 percentiles over splits.

Choosing the score is part of the procedure
-------------------------------------------
The per-score rows are descriptive: each score's accuracy, measured alone. Picking the best of
several scores by those very held-out accuracies, and reporting the best one's, scores the choice
on the runs that made it, which is optimistic: with 11 scores and no signal at all, the best one
looks better than chance. So when several scores are evaluated, the score is chosen **inside each
split** (nested cross-validation): :class:`ScoreSelectingFingerprint` splits the split's training
runs again (``StratifiedShuffleSplit``), scores every candidate's top-K pipeline on those inner
held-out runs (``GridSearchCV`` over a parameter that names the score), refits the best on all the
split's training runs, and only then meets the split's held-out runs. Its held-out accuracy, the
row ``SCORE =`` :data:`~gwas_models.formats.fingerprint_file.SCORE_CHOSEN_PER_SPLIT`, is the
accuracy of the whole procedure and the headline; ``CHOSEN`` says how often each score was chosen.

An example can be a marker only if its score is finite in every run (the classifier needs every
feature of every run). The evaluation applies that rule to all runs, held-out ones included, before
splitting: the rule does not look at the architectures, so it leaks nothing about which examples
differ, and it guarantees that the held-out runs have every marker's score.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.model_selection import GridSearchCV, StratifiedShuffleSplit, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from gwas_models.analysis.fingerprint import (
    _about_score,
    _classifier_steps,
    _require_runs_of,
    check_architectures,
    check_seed,
    class_codes,
    fingerprint_pipeline,
    quiet_fitting,
)
from gwas_models.analysis.markers import (
    MIN_TRAINING_RUNS,
    DEFAULT_MARKERS,
    SELECTIONS,
    MarkerSelector,
    RunScoresTags,
    check_marker_count,
    require_candidates,
    usable_examples,
)
from gwas_models.errors import InputError
from gwas_models.formats.fingerprint_file import PROCEDURE_CHOSEN, PROCEDURE_GIVEN, SCORE_CHOSEN_PER_SPLIT, SUMMARY_COLUMNS
from gwas_models.matrix import ScoreMatrix

DEFAULT_SPLITS = 10
DEFAULT_RANDOM_DRAWS = 20
DEFAULT_TRAIN_FRACTION = 0.5
DEFAULT_SEED = 0
#: Inner splits of a split's training runs that choose the score (:class:`ScoreSelectingFingerprint`).
DEFAULT_INNER_SPLITS = 5
MIN_HELDOUT_RUNS = 1
INTERVAL_PERCENTILES = (2.5, 97.5)

#: Columns of the per-fit accuracies (one row per score × selection × split × draw).
ACCURACY_COLUMNS: tuple[str, ...] = ("SCORE", "SELECT", "SPLIT", "DRAW", "ACCURACY")
#: Columns of the choices made inside the splits (one row per split): the score and K chosen on
#: the split's training runs, their mean accuracy on the inner held-out runs, and the accuracy of
#: the refitted pipeline on the split's own held-out runs.
CHOICE_COLUMNS: tuple[str, ...] = ("SPLIT", "SCORE", "K", "INNER_ACCURACY", "ACCURACY")


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
        raise InputError(
            f"selections has an unknown marker selection {unknown[0]!r}; choose top, bottom, random or all",
            parameter="selections",
        )
    return tuple(name for name in SELECTIONS if name in names)


def check_evaluation_options(n_splits: int, random_draws: int, train_fraction: float) -> None:
    """Raise :class:`InputError` for a split count, draw count or train fraction that cannot work."""
    if n_splits < 1:
        raise InputError(f"n_splits must be at least 1, got {n_splits}", parameter="n_splits")
    if random_draws < 1:
        raise InputError(f"random_draws must be at least 1, got {random_draws}", parameter="random_draws")
    if not (0.0 < train_fraction < 1.0):
        raise InputError(f"train_fraction must lie strictly between 0 and 1, got {train_fraction}", parameter="train_fraction")


def check_inner_splits(inner_splits: int) -> int:
    """``inner_splits`` as an int, or :class:`InputError` unless it is a positive integer."""
    if isinstance(inner_splits, bool) or not isinstance(inner_splits, (int, np.integer)) or inner_splits < 1:
        raise InputError(f"inner_splits must be an integer of at least 1, got {inner_splits!r}", parameter="inner_splits")
    return int(inner_splits)


# --------------------------------------------------------------------------------------------
# Splitting runs
# --------------------------------------------------------------------------------------------


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


def run_splits(
    groups: np.ndarray,
    archs: Sequence[str],
    train_fraction: float = DEFAULT_TRAIN_FRACTION,
    n_splits: int = DEFAULT_SPLITS,
    random_state: int | np.random.RandomState | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Random stratified splits of the runs into training and held-out runs.

    A ``StratifiedShuffleSplit`` whose training size is the sum of :func:`training_run_counts`;
    scikit-learn shares it out in proportion to each architecture's runs, which gives every
    architecture exactly its count when all have the same number of runs.

    Parameters
    ----------
    groups : str array (n_runs,)
        Architecture of each run; runs of architectures not in ``archs`` are left out of both parts.
    archs : sequence of str
    train_fraction : float
    n_splits : int
    random_state : int, RandomState instance or None
        Seed of ``StratifiedShuffleSplit``.

    Returns
    -------
    list of (train, heldout)
        Sorted int arrays of indices into ``groups``, one pair per split.

    Raises
    ------
    InputError
        When some architecture has too few runs to fit on and to hold out.
    """
    groups = np.asarray(groups).astype(str)
    n_train = sum(training_run_counts(groups, archs, train_fraction).values())
    ours = np.flatnonzero(np.isin(groups, archs))
    splitter = StratifiedShuffleSplit(
        n_splits=n_splits, train_size=n_train, test_size=len(ours) - n_train, random_state=random_state
    )
    splits = [(np.sort(ours[train]), np.sort(ours[test])) for train, test in splitter.split(ours, groups[ours])]
    _check_split_sizes(splits, groups, archs)
    return splits


def _check_split_sizes(splits: list[tuple[np.ndarray, np.ndarray]], groups: np.ndarray, archs: Sequence[str]) -> None:
    """Refuse splits that leave an architecture too few runs (possible with very unequal run counts)."""
    for train, heldout in splits:
        for arch in archs:
            n_train, n_heldout = int((groups[train] == arch).sum()), int((groups[heldout] == arch).sum())
            if n_train < MIN_TRAINING_RUNS or n_heldout < MIN_HELDOUT_RUNS:
                raise InputError(
                    f"a stratified split gives architecture {arch!r} {n_train} run(s) to fit and {n_heldout} held out; "
                    f"each architecture needs at least {MIN_TRAINING_RUNS} training runs and {MIN_HELDOUT_RUNS} "
                    "held-out run: collect more runs of it, or change train_fraction"
                )


# --------------------------------------------------------------------------------------------
# Evaluation over random splits
# --------------------------------------------------------------------------------------------


def cross_validated_accuracy(pipeline: Pipeline, X: np.ndarray, y: np.ndarray, splits: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Held-out accuracy of ``pipeline`` fitted on the training runs of each split (``cross_validate``).

    Parameters
    ----------
    pipeline : sklearn Pipeline (unfitted; cloned for every split)
    X : float array (n_runs, n_examples)
    y : int array (n_runs,)
        Class codes.
    splits : sequence of (train, heldout) index arrays

    Returns
    -------
    float array (n_splits,)
    """
    result = cross_validate(pipeline, X, y, cv=list(splits), scoring="accuracy", error_score="raise")
    return np.asarray(result["test_score"], dtype=np.float64)


def _empty_choices() -> pd.DataFrame:
    return pd.DataFrame({column: [] for column in CHOICE_COLUMNS})


@dataclass(frozen=True)
class FingerprintEvaluation:
    """Held-out accuracy of fingerprints, per score and marker selection, and of the score's choice.

    Attributes
    ----------
    summary : DataFrame
        One row per score × selection, columns :data:`SUMMARY_COLUMNS`, and, when several scores
        were evaluated with top markers, one row ``SCORE =`` :data:`SCORE_CHOSEN_PER_SPLIT`
        (``SELECT`` top): the procedure that chooses the score inside each split, the headline.

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
        ``CHOSEN``
            The row of the score chosen inside each split only: how many splits chose each
            score, ``score:count`` comma-separated, most often chosen first (NaN elsewhere).

        The per-score rows are descriptive; the best of them is chosen on the splits it is
        scored on, so it overstates what a fingerprint of the best-looking score would do.
    accuracies : DataFrame
        Every fit's held-out accuracy, columns :data:`ACCURACY_COLUMNS` (the chosen score's
        splits under ``SCORE =`` :data:`SCORE_CHOSEN_PER_SPLIT`).
    choices : DataFrame
        The choice made in each split, columns :data:`CHOICE_COLUMNS`; empty with one score.
    note : str
        Why the score could not be chosen inside each split ("" when it was, or when one score
        was evaluated).
    inner_splits : int
        Inner splits of each split's training runs that chose the score (0: no choice made).
    """

    summary: pd.DataFrame
    accuracies: pd.DataFrame
    choices: pd.DataFrame = field(default_factory=_empty_choices)
    note: str = ""
    inner_splits: int = 0

    def accuracy(self, score: str, selection: str) -> float:
        """``MEAN_ACCURACY`` of one score and selection."""
        row = self.summary[(self.summary["SCORE"] == score) & (self.summary["SELECT"] == selection)]
        if row.empty:
            raise InputError(f"no evaluation of score {score!r} with selection {selection!r}")
        return float(row["MEAN_ACCURACY"].iloc[0])

    @property
    def scores(self) -> list[str]:
        """The scores evaluated, in order (without :data:`SCORE_CHOSEN_PER_SPLIT`)."""
        return [str(s) for s in dict.fromkeys(self.summary["SCORE"]) if s != SCORE_CHOSEN_PER_SPLIT]

    @property
    def chose_score(self) -> bool:
        """Whether the score was chosen inside each split (several scores, top markers)."""
        return bool((self.summary["SCORE"] == SCORE_CHOSEN_PER_SPLIT).any())

    def headline(self) -> pd.Series | None:
        """The summary row whose accuracy is honest for the procedure as a whole.

        The row of the score chosen inside each split when several scores were evaluated; the
        top-marker row of the only score when one was; None when neither exists (several scores
        whose choice could not be nested, see :attr:`note`, or no top markers).
        """
        if self.chose_score:
            return self.summary[self.summary["SCORE"] == SCORE_CHOSEN_PER_SPLIT].iloc[0]
        scores = self.scores
        top = self.summary[self.summary["SELECT"] == "top"]
        return top.iloc[0] if len(scores) == 1 and not top.empty else None

    def chosen_counts(self) -> dict[str, int]:
        """How many splits chose each score, most often chosen first (empty without a choice)."""
        if self.choices.empty:
            return {}
        counts = self.choices["SCORE"].astype(str).value_counts(sort=False)
        order = sorted(counts.index, key=lambda name: (-counts[name], self.scores.index(name) if name in self.scores else 0))
        return {name: int(counts[name]) for name in order}


def evaluate_fingerprint(
    matrix: ScoreMatrix,
    archs: Sequence[str],
    random_state: int = DEFAULT_SEED,
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
    random_state : int
        Seeds the splits (:func:`run_splits`) and, independently, the random marker draws. The
        same seed gives the same splits for every score of the same runs.
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
    seed = check_seed(random_state, "random_state")
    check_marker_count(n_markers, matrix.n_examples)
    _require_runs_of(matrix, archs)
    codes = class_codes(matrix.groups, archs)
    ours = codes >= 0
    values, groups, codes = matrix.values[ours], matrix.groups[ours], codes[ours]
    usable = usable_examples(values)  # see the module docstring: leaks nothing
    splits = run_splits(groups, archs, train_fraction, n_splits, seed)
    draw_seeds = np.random.SeedSequence(seed).generate_state(random_draws)
    accuracies: dict[str, np.ndarray] = {}
    with quiet_fitting(), _about_score(matrix.score):
        require_candidates(int(usable.sum()), n_markers, "random")  # before the selector sees fewer columns
        features = values[:, usable]
        for selection in selections:
            seeds = [int(s) for s in draw_seeds] if selection == "random" else [None]  # top and bottom draw nothing
            fits = [cross_validated_accuracy(fingerprint_pipeline(n_markers, selection, s), features, codes, splits) for s in seeds]
            accuracies[selection] = np.column_stack(fits)
    context = _split_context(codes, splits, archs, matrix.score, n_markers)
    summary = pd.DataFrame([_summary_row(selection, acc, context) for selection, acc in accuracies.items()], columns=list(SUMMARY_COLUMNS))
    return FingerprintEvaluation(summary=summary, accuracies=_accuracy_frame(matrix.score, accuracies))


def _summary_row(selection: str, accuracies: np.ndarray, context: Mapping[str, Any], score: str | None = None, chosen: Any = np.nan) -> dict[str, Any]:
    per_split = accuracies.mean(axis=1)
    low, high = np.percentile(per_split, INTERVAL_PERCENTILES)
    return {
        "SCORE": context["score"] if score is None else score,
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
        "CHOSEN": chosen,
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


def _split_context(codes: np.ndarray, splits: Sequence[tuple[np.ndarray, np.ndarray]], archs: Sequence[str], score: str, n_markers: int) -> dict[str, Any]:
    """What every summary row of one set of splits shares."""
    train, heldout = splits[0]
    n_heldout = np.bincount(codes[heldout], minlength=len(archs))
    return {
        "score": score,
        "n_markers": n_markers,
        "n_train": len(train),
        "n_heldout": len(heldout),
        "chance": float(n_heldout.max() / n_heldout.sum()),
        "archs": ",".join(archs),
    }


# --------------------------------------------------------------------------------------------
# Choosing the score inside each split (nested cross-validation)
# --------------------------------------------------------------------------------------------


class ScoreColumns(TransformerMixin, BaseEstimator):
    """Keep one score's columns from the scores of several scores laid side by side.

    ``X`` holds, for every run, the examples of ``scores[0]``, then those of ``scores[1]``, and
    so on (:func:`stack_scores`); the transform returns the block of ``name``. A parameter that
    names the score lets ``GridSearchCV`` choose it like any other.

    Parameters
    ----------
    name : str
        The score to keep; one of ``scores``. (Not ``score``: that is every estimator's scoring method.)
    scores : sequence of str
        The scores of ``X``'s blocks, in order.

    Attributes
    ----------
    n_examples_ : int
        Columns per score.
    block_ : int
        Index of ``name`` in ``scores``.
    n_features_in_ : int
    """

    def __init__(self, name: str | None = None, scores: Sequence[str] = ()) -> None:
        self.name = name
        self.scores = scores

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # examples missing in some run are simply never markers
        return tags

    def fit(self, X, y=None) -> "ScoreColumns":
        """Check ``X`` and find the block of score ``name``."""
        X = validate_data(self, X, ensure_all_finite=False, dtype=np.float64)
        scores = _check_scores(self.scores)
        if self.name not in scores:
            raise InputError(f"name {self.name!r} is not among the scores {', '.join(scores)}", parameter="name")
        if X.shape[1] % len(scores):
            raise InputError(f"X has {X.shape[1]} columns, not one block of examples per score ({len(scores)} scores)")
        self.n_examples_ = X.shape[1] // len(scores)
        self.block_ = scores.index(self.name)
        return self

    def transform(self, X) -> np.ndarray:
        """The columns of score ``name``."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, ensure_all_finite=False, dtype=np.float64)
        start = self.block_ * self.n_examples_
        return X[:, start : start + self.n_examples_]


class ScoreSelectingFingerprint(RunScoresTags, ClassifierMixin, BaseEstimator):
    """A top-K fingerprint whose score (and K, given several) is chosen on the runs it is fitted on.

    ``fit`` splits its runs again (``StratifiedShuffleSplit``, :func:`run_splits`), scores the
    top-K pipeline of every candidate score (and K) on the inner held-out runs, with the markers
    chosen on the inner training runs each time (``GridSearchCV`` over
    ``score__name`` and ``select__n_markers``), and refits the best candidate on all the runs.
    Put in ``cross_validate``, every outer split fits a clone, so the choice is made on that
    split's training runs only and its held-out runs score the whole procedure: nested
    cross-validation. Ties go to the earlier score, then to the smaller K. With a single candidate
    nothing is chosen and no inner split is made.

    Parameters
    ----------
    scores : sequence of str
        The candidate scores, in the order of ``X``'s blocks (:func:`stack_scores`).
    n_markers : int or sequence of int
        K, or the candidate Ks.
    inner_splits : int
        Inner splits of the runs that choose.
    train_fraction : float
        Share of each architecture's runs that an inner split fits on.
    random_state : int, RandomState instance or None
        Seeds the inner splits.

    Attributes
    ----------
    classes_ : array
        The architectures (labels of ``y``).
    chosen_score_ : str
        The score chosen.
    n_markers_ : int
        The K chosen.
    best_estimator_ : Pipeline
        ``score`` (:class:`ScoreColumns`) → ``select`` → ``scale`` → ``logistic``, refitted on
        every run given to ``fit`` with the chosen score and K (unpenalised, as the evaluation's).
    inner_accuracy_ : float
        The chosen candidate's mean accuracy on the inner held-out runs (NaN with one candidate).
    cv_results_ : dict or None
        ``GridSearchCV.cv_results_`` of the choice (None with one candidate).
    n_features_in_ : int
    """

    def __init__(
        self,
        scores: Sequence[str] = (),
        n_markers: int | Sequence[int] = DEFAULT_MARKERS,
        inner_splits: int = DEFAULT_INNER_SPLITS,
        train_fraction: float = DEFAULT_TRAIN_FRACTION,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.scores = scores
        self.n_markers = n_markers
        self.inner_splits = inner_splits
        self.train_fraction = train_fraction
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # K markers out of every example, by design: on generic data most features are dropped.
        tags.classifier_tags.poor_score = True
        return tags

    def fit(self, X, y) -> "ScoreSelectingFingerprint":
        """Choose the score (and K) on inner splits of the runs ``X`` of architectures ``y``, then refit."""
        X, y = validate_data(self, X, y, ensure_all_finite=False, dtype=np.float64)
        scores = _check_scores(self.scores)
        ks = _check_marker_counts(self.n_markers)
        check_inner_splits(self.inner_splits)
        check_evaluation_options(1, 1, self.train_fraction)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise InputError(f"y holds 1 class ({self.classes_[0]!r}); a fingerprint tells at least two architectures apart")
        pipeline = Pipeline(
            [("score", ScoreColumns(scores[0], scores)), ("select", MarkerSelector(ks[0], "top")), *_classifier_steps()]
        )
        if len(scores) * len(ks) == 1:
            self.best_estimator_ = pipeline.fit(X, y)
            self.cv_results_, self.inner_accuracy_ = None, float("nan")
        else:
            search = GridSearchCV(
                pipeline,
                {"score__name": list(scores), "select__n_markers": ks},
                scoring="accuracy",
                cv=self._inner_splits(y),
                refit=True,
                error_score="raise",
            )
            search.fit(X, y)
            self.best_estimator_ = search.best_estimator_
            self.cv_results_ = search.cv_results_
            self.inner_accuracy_ = float(search.best_score_)
        self.chosen_score_ = str(self.best_estimator_.named_steps["score"].name)
        self.n_markers_ = int(self.best_estimator_.named_steps["select"].n_markers)
        return self

    def _inner_splits(self, y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        groups = np.asarray(y).astype(str)
        try:
            return run_splits(groups, list(dict.fromkeys(groups)), self.train_fraction, self.inner_splits, self.random_state)
        except InputError as error:
            raise InputError(f"choosing the score among several splits the runs it is fitted on again, and {error.message}") from None

    def predict(self, X) -> np.ndarray:
        """The architecture of each run."""
        check_is_fitted(self)
        return self.best_estimator_.predict(X)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities of each run (columns in the order of ``classes_``)."""
        check_is_fitted(self)
        return self.best_estimator_.predict_proba(X)

    def decision_function(self, X) -> np.ndarray:
        check_is_fitted(self)
        return self.best_estimator_.decision_function(X)


def _check_scores(scores: Sequence[str]) -> tuple[str, ...]:
    scores = (scores,) if isinstance(scores, str) else tuple(str(s) for s in scores)
    if not scores:
        raise InputError("scores must name at least one score", parameter="scores")
    if len(set(scores)) != len(scores):
        raise InputError(f"scores names a score twice: {', '.join(scores)}", parameter="scores")
    return scores


def _check_marker_counts(n_markers: int | Sequence[int]) -> list[int]:
    ks = [n_markers] if isinstance(n_markers, (int, np.integer)) else list(n_markers)
    if not ks or any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 for k in ks):
        raise InputError(f"n_markers must be a positive integer or a list of them, got {n_markers!r}", parameter="n_markers")
    return sorted(set(int(k) for k in ks))


def stack_scores(matrices: Mapping[str, ScoreMatrix], archs: Sequence[str]) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """The runs of ``archs`` with every score's examples side by side, for :class:`ScoreSelectingFingerprint`.

    Parameters
    ----------
    matrices : mapping of score name to ScoreMatrix
        Scores of the same runs (same architectures and seeds, in the same order) over the same
        examples.
    archs : sequence of str

    Returns
    -------
    X : float array (n_runs, n_scores * n_examples)
        Block k holds score k; an example whose score is missing in any run (of any
        architecture) is NaN in every run, so that it is never a marker (see the module docstring).
    groups : str array (n_runs,)
        Architecture of each run.
    scores : tuple of str
    """
    if not matrices:
        raise InputError("no score to evaluate")
    scores = tuple(matrices)
    first = matrices[scores[0]]
    for name in scores[1:]:
        other = matrices[name]
        same_runs = np.array_equal(other.groups, first.groups) and np.array_equal(other.seeds, first.seeds)
        if not same_runs or not np.array_equal(other.example_id, first.example_id):
            raise InputError(f"scores {scores[0]!r} and {name!r} come from other runs or examples; choosing between scores needs the same runs")
    ours = class_codes(first.groups, archs) >= 0
    blocks = []
    for name in scores:
        values = np.asarray(matrices[name].values[ours], dtype=np.float64)
        blocks.append(np.where(usable_examples(values)[None, :], values, np.nan))
    return np.hstack(blocks), np.asarray(first.groups[ours]).astype(str), scores


def score_choice_runs(groups: np.ndarray, archs: Sequence[str], train_fraction: float) -> str:
    """Why the score cannot be chosen inside each split of these runs, or ``""`` when it can.

    Choosing inside a split splits its training runs again, so every architecture needs enough
    runs for two rounds of :func:`training_run_counts`.
    """
    groups = np.asarray(groups).astype(str)
    for arch in archs:
        n_runs = int((groups == arch).sum())
        if not _splits_twice(n_runs, train_fraction):
            enough = next((n for n in range(n_runs + 1, 10_000) if _splits_twice(n, train_fraction)), None)
            need = f"at least {enough} runs of each architecture at train fraction {train_fraction:g}" if enough else "another train fraction"
            return (
                f"architecture {arch!r} has {n_runs} run(s): a split leaves {_fit_share(n_runs, train_fraction)} of them to fit, "
                f"too few to split again and choose the score there; that needs {need}"
            )
    return ""


def _fit_share(n_runs: int, train_fraction: float) -> int:
    return int(np.floor(train_fraction * n_runs + 0.5))


def _splits_twice(n_runs: int, train_fraction: float) -> bool:
    outer = _fit_share(n_runs, train_fraction)
    inner = _fit_share(outer, train_fraction)
    return outer < n_runs and inner >= MIN_TRAINING_RUNS and outer - inner >= MIN_HELDOUT_RUNS


def evaluate_score_choice(
    matrices: Mapping[str, ScoreMatrix],
    archs: Sequence[str],
    random_state: int = DEFAULT_SEED,
    *,
    n_markers: int | Sequence[int] = DEFAULT_MARKERS,
    n_splits: int = DEFAULT_SPLITS,
    train_fraction: float = DEFAULT_TRAIN_FRACTION,
    inner_splits: int = DEFAULT_INNER_SPLITS,
) -> FingerprintEvaluation:
    """Held-out accuracy of the top-K fingerprint whose score is chosen inside each split.

    The outer splits are :func:`run_splits` with ``random_state``, the very splits on which
    :func:`evaluate_fingerprint` scores each score alone; in each, a
    :class:`ScoreSelectingFingerprint` is fitted on the training runs (``cross_validate``), where
    it chooses the score on inner splits of those runs, and is scored on the held-out runs, which
    never took part in the choice.

    Parameters
    ----------
    matrices : mapping of score name to ScoreMatrix
        The candidate scores, of the same runs.
    archs : sequence of str
    random_state : int
        Seeds the outer splits and, through :class:`ScoreSelectingFingerprint`, the inner ones.
    n_markers : int or sequence of int
        K, or candidate Ks chosen inside each split too.
    n_splits, train_fraction
        Those of :func:`evaluate_fingerprint`; ``train_fraction`` also shares out the inner splits.
    inner_splits : int
        Inner splits per outer split.

    Returns
    -------
    FingerprintEvaluation
        One summary row, ``SCORE =`` :data:`SCORE_CHOSEN_PER_SPLIT`, ``SELECT`` top, ``K`` the
        most often chosen K; :attr:`~FingerprintEvaluation.choices` says what each split chose.

    Raises
    ------
    InputError
        When an architecture has too few runs to split twice (:func:`score_choice_runs`).
    """
    archs = check_architectures(archs)
    check_evaluation_options(n_splits, 1, train_fraction)
    inner_splits = check_inner_splits(inner_splits)
    seed = check_seed(random_state, "random_state")
    for matrix in matrices.values():
        _require_runs_of(matrix, archs)
    X, groups, scores = stack_scores(matrices, archs)
    for k in _check_marker_counts(n_markers):
        check_marker_count(k, X.shape[1] // len(scores))
    problem = score_choice_runs(groups, archs, train_fraction)
    if problem:
        raise InputError(problem)
    splits = run_splits(groups, archs, train_fraction, n_splits, seed)
    estimator = ScoreSelectingFingerprint(scores, n_markers, inner_splits, train_fraction, random_state=seed)
    with quiet_fitting():
        result = cross_validate(estimator, X, groups, cv=splits, scoring="accuracy", return_estimator=True, error_score="raise")
    accuracy = np.asarray(result["test_score"], dtype=np.float64)
    fitted = result["estimator"]
    choices = pd.DataFrame(
        {
            "SPLIT": np.arange(len(splits)),
            "SCORE": [e.chosen_score_ for e in fitted],
            "K": [e.n_markers_ for e in fitted],
            "INNER_ACCURACY": [e.inner_accuracy_ for e in fitted],
            "ACCURACY": accuracy,
        }
    )[list(CHOICE_COLUMNS)]
    counts = choices["SCORE"].value_counts(sort=False)
    order = sorted(counts.index, key=lambda name: (-counts[name], scores.index(name)))
    chosen_text = ",".join(f"{name}:{counts[name]}" for name in order)
    k = int(choices["K"].mode().min())
    context = _split_context(class_codes(groups, archs), splits, archs, SCORE_CHOSEN_PER_SPLIT, k)
    summary = pd.DataFrame([_summary_row("top", accuracy[:, None], context, chosen=chosen_text)], columns=list(SUMMARY_COLUMNS))
    accuracies = _accuracy_frame(SCORE_CHOSEN_PER_SPLIT, {"top": accuracy[:, None]})
    return FingerprintEvaluation(summary=summary, accuracies=accuracies, choices=choices, inner_splits=inner_splits)


def heldout_accuracy_record(evaluation: FingerprintEvaluation, score: str) -> dict[str, Any]:
    """The headline of an evaluation as the ``heldout_accuracy`` that a saved fingerprint keeps.

    Parameters
    ----------
    evaluation : FingerprintEvaluation
        With a :meth:`~FingerprintEvaluation.headline`: the score chosen inside each split, or
        the only score evaluated.
    score : str
        The saved fingerprint's score (chosen on all runs, by the same procedure, or given).

    Returns
    -------
    dict
        ``procedure`` (:data:`~gwas_models.formats.fingerprint_file.PROCEDURE_CHOSEN` or
        :data:`~gwas_models.formats.fingerprint_file.PROCEDURE_GIVEN`), ``score``,
        ``scores_considered``, ``selection``, ``k``, ``mean``, ``sd`` (None with one fit), ``low``,
        ``high`` (the 2.5 and 97.5 percentiles over splits, ``interval`` says which),
        ``n_splits``, ``n_train_runs``, ``n_heldout_runs``, ``chance`` and, for a chosen score,
        ``chosen_in_splits`` (splits that chose each score) and ``inner_splits``: plain JSON types.
    """
    row = evaluation.headline()
    if row is None:
        raise InputError(f"no held-out accuracy of a single procedure to record: {evaluation.note or 'no top-marker evaluation'}")
    if not evaluation.chose_score and str(row["SCORE"]) != str(score):
        raise InputError(f"the evaluation is of score {row['SCORE']!r}, not {score!r}")
    sd = float(row["SD"])
    record: dict[str, Any] = {
        "procedure": PROCEDURE_CHOSEN if evaluation.chose_score else PROCEDURE_GIVEN,
        "score": str(score),
        "scores_considered": evaluation.scores,
        "selection": str(row["SELECT"]),
        "k": int(row["K"]),
        "mean": float(row["MEAN_ACCURACY"]),
        "sd": sd if np.isfinite(sd) else None,
        "low": float(row["LOW"]),
        "high": float(row["HIGH"]),
        "interval": [float(p) for p in INTERVAL_PERCENTILES],
        "n_splits": int(row["N_SPLITS"]),
        "n_train_runs": int(row["N_TRAIN_RUNS"]),
        "n_heldout_runs": int(row["N_HELDOUT_RUNS"]),
        "chance": float(row["CHANCE"]),
    }
    if evaluation.chose_score:
        record["chosen_in_splits"] = evaluation.chosen_counts()
        record["inner_splits"] = int(evaluation.inner_splits)
    return record


def evaluate_scores(
    matrices: Mapping[str, ScoreMatrix],
    archs: Sequence[str],
    random_state: int = DEFAULT_SEED,
    *,
    inner_splits: int = DEFAULT_INNER_SPLITS,
    **options: Any,
) -> FingerprintEvaluation:
    """:func:`evaluate_fingerprint` for several scores, in one table, and the choice between them.

    Every score is evaluated with the same ``random_state``, so scores of the same runs are
    compared on the same splits; keyword options are those of :func:`evaluate_fingerprint`. With
    two or more scores and top markers, the procedure that chooses the score inside each split
    (:func:`evaluate_score_choice`, on the same splits) adds the headline row; when the runs are
    too few to split twice, the row is left out and :attr:`FingerprintEvaluation.note` says why.
    """
    if not matrices:
        raise InputError("no score to evaluate")
    parts = [evaluate_fingerprint(matrix, archs, random_state, **options) for matrix in matrices.values()]
    choices, note = _empty_choices(), ""
    if len(matrices) > 1 and "top" in parse_selections(options.get("selections")):
        train_fraction = options.get("train_fraction", DEFAULT_TRAIN_FRACTION)
        groups = next(iter(matrices.values())).groups
        note = score_choice_runs(groups, check_architectures(archs), train_fraction)
        if not note:
            nested = evaluate_score_choice(
                matrices,
                archs,
                random_state,
                n_markers=options.get("n_markers", DEFAULT_MARKERS),
                n_splits=options.get("n_splits", DEFAULT_SPLITS),
                train_fraction=train_fraction,
                inner_splits=inner_splits,
            )
            parts.insert(0, nested)
            choices = nested.choices
    return FingerprintEvaluation(
        summary=pd.concat([p.summary for p in parts], ignore_index=True),
        accuracies=pd.concat([p.accuracies for p in parts], ignore_index=True),
        choices=choices,
        note=note,
        inner_splits=inner_splits if not choices.empty else 0,
    )


__all__ = [
    "ACCURACY_COLUMNS",
    "CHOICE_COLUMNS",
    "DEFAULT_INNER_SPLITS",
    "DEFAULT_RANDOM_DRAWS",
    "DEFAULT_SEED",
    "DEFAULT_SPLITS",
    "DEFAULT_TRAIN_FRACTION",
    "FingerprintEvaluation",
    "SCORE_CHOSEN_PER_SPLIT",
    "SUMMARY_COLUMNS",
    "ScoreColumns",
    "ScoreSelectingFingerprint",
    "check_evaluation_options",
    "check_inner_splits",
    "cross_validated_accuracy",
    "evaluate_fingerprint",
    "evaluate_score_choice",
    "evaluate_scores",
    "heldout_accuracy_record",
    "parse_selections",
    "run_splits",
    "score_choice_runs",
    "stack_scores",
    "training_run_counts",
]
