"""Held-out evaluation of fingerprints: how well K marker examples identify runs (paper §4.3, Figure 1).

This module evaluates the pipelines of :mod:`gwas_models.analysis.fingerprint` on held-out runs,
over random splits, for each marker selection. It is pure: arrays and
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

An example can be a marker only if its score is finite in every run (the classifier needs every
feature of every run). The evaluation applies that rule to all runs, held-out ones included, before
splitting: the rule does not look at the architectures, so it leaks nothing about which examples
differ, and it guarantees that the held-out runs have every marker's score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedShuffleSplit, cross_validate
from sklearn.pipeline import Pipeline

from gwas_models.analysis.fingerprint import (
    _about_score,
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
    check_marker_count,
    require_candidates,
    usable_examples,
)
from gwas_models.errors import InputError
from gwas_models.matrix import ScoreMatrix

DEFAULT_SPLITS = 10
DEFAULT_RANDOM_DRAWS = 20
DEFAULT_TRAIN_FRACTION = 0.5
DEFAULT_SEED = 0
MIN_HELDOUT_RUNS = 1
INTERVAL_PERCENTILES = (2.5, 97.5)

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
    train, heldout = splits[0]
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


def heldout_accuracy_record(summary: pd.DataFrame, score: str, selection: str = "top") -> dict[str, Any]:
    """One summary row as the ``heldout_accuracy`` that a saved fingerprint's provenance keeps.

    Parameters
    ----------
    summary : DataFrame
        :attr:`FingerprintEvaluation.summary`.
    score, selection : str
        The row: the saved fingerprint's score and its marker selection (``top``).

    Returns
    -------
    dict
        ``score``, ``selection``, ``k``, ``mean``, ``sd`` (None with one fit), ``low``, ``high``
        (the 2.5 and 97.5 percentiles over splits, ``interval`` says which), ``n_splits``,
        ``n_train_runs``, ``n_heldout_runs``, ``chance``: plain JSON types.
    """
    row = summary[(summary["SCORE"] == score) & (summary["SELECT"] == selection)]
    if row.empty:
        raise InputError(f"no evaluation of score {score!r} with selection {selection!r}")
    row = row.iloc[0]
    sd = float(row["SD"])
    return {
        "score": str(score),
        "selection": str(selection),
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


def evaluate_scores(
    matrices: Mapping[str, ScoreMatrix],
    archs: Sequence[str],
    random_state: int = DEFAULT_SEED,
    **options: Any,
) -> FingerprintEvaluation:
    """:func:`evaluate_fingerprint` for several scores, one after the other, in one table.

    Every score is evaluated with the same ``random_state``, so scores of the same runs are
    compared on the same splits; keyword options are those of :func:`evaluate_fingerprint`.
    """
    if not matrices:
        raise InputError("no score to evaluate")
    parts = [evaluate_fingerprint(matrix, archs, random_state, **options) for matrix in matrices.values()]
    return FingerprintEvaluation(
        summary=pd.concat([p.summary for p in parts], ignore_index=True),
        accuracies=pd.concat([p.accuracies for p in parts], ignore_index=True),
    )


__all__ = [
    "ACCURACY_COLUMNS",
    "DEFAULT_RANDOM_DRAWS",
    "DEFAULT_SEED",
    "DEFAULT_SPLITS",
    "DEFAULT_TRAIN_FRACTION",
    "FingerprintEvaluation",
    "SUMMARY_COLUMNS",
    "check_evaluation_options",
    "cross_validated_accuracy",
    "evaluate_fingerprint",
    "evaluate_scores",
    "heldout_accuracy_record",
    "parse_selections",
    "run_splits",
    "training_run_counts",
]
