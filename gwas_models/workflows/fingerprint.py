"""Fingerprints from the run store: evaluate and save them, identify runs with a saved one.

:func:`fingerprint_from_store` is ``gwasm fingerprint``: it reads the runs of some architectures,
measures how well K marker examples identify held-out runs (:mod:`gwas_models.analysis.fingerprint_evaluation`),
optionally fits the fingerprint on every run, and writes ``<prefix>.tsv``, ``<prefix>.png`` and the
fingerprint's JSON. With several scores, the score is chosen inside each split (nested
cross-validation) and the accuracy of that whole procedure is the headline and the saved
fingerprint's ``provenance.heldout_accuracy``; the per-score rows are descriptive. :func:`identify`
is ``gwasm identify``: it applies a saved fingerprint to runs in the store (:func:`identify_runs`)
or to a score file (:func:`identify_file`), and returns, with the table, what the fingerprint knows
of its own accuracy and which runs it was fitted on.

The fingerprint file holds plain data (:mod:`gwas_models.formats.fingerprint_file`); this layer
joins it to the classifier (:func:`load_fingerprint`, :func:`save_fingerprint`).

Every check happens, and everything is computed and drawn, before anything is written, so a failed
call leaves no file behind.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import pandas as pd
from matplotlib.figure import Figure

from gwas_models.analysis.fingerprint import (
    Fingerprint,
    check_architectures,
    check_seed,
    fit_fingerprint,
    identify as identify_scores,
)
from gwas_models.analysis.fingerprint_evaluation import (
    DEFAULT_INNER_SPLITS,
    DEFAULT_RANDOM_DRAWS,
    DEFAULT_SEED,
    DEFAULT_SPLITS,
    DEFAULT_TRAIN_FRACTION,
    FingerprintEvaluation,
    ScoreSelectingFingerprint,
    check_evaluation_options,
    check_inner_splits,
    evaluate_scores,
    heldout_accuracy_record,
    parse_selections,
    stack_scores,
)
from gwas_models.analysis.fingerprint import quiet_fitting
from gwas_models.analysis.marker_distance import DEFAULT_OOD_QUANTILE, MIN_REFERENCE_RUNS, NONE_OF_THESE, check_ood_quantile
from gwas_models.analysis.markers import DEFAULT_MARKERS, check_marker_count
from gwas_models.errors import InputError, ResultsError, StoreError
from gwas_models.formats import store as run_store
from gwas_models.formats.fingerprint_file import (
    PROCEDURE_CHOSEN,
    read_fingerprint,
    record_to_dict,
    write_evaluation,
    write_fingerprint,
)
from gwas_models.formats.results import DEFAULT_RESULTS_DIR
from gwas_models.formats.score_vector import is_whole_vector, read_score_vector
from gwas_models.matrix import format_seeds
from gwas_models.plots._style import save_figure
from gwas_models.plots.fingerprint import fingerprint_accuracy, fingerprint_figsize
from gwas_models.scores import score_info

#: ``score`` value that evaluates every score recorded for all the architectures.
ALL_SCORES = "all"
#: ``selections`` value for every marker selection.
ALL_SELECTIONS = "all"


# --------------------------------------------------------------------------------------------
# Fingerprint files
# --------------------------------------------------------------------------------------------


def save_fingerprint(fingerprint: Fingerprint, path: str | os.PathLike) -> Path:
    """Write a fitted fingerprint as JSON (:func:`~gwas_models.formats.fingerprint_file.write_fingerprint`), atomically."""
    return write_fingerprint(fingerprint.to_record(), path)


def load_fingerprint(path: str | os.PathLike) -> Fingerprint:
    """Read a fingerprint JSON file and rebuild the fitted fingerprint.

    Raises
    ------
    ResultsError
        One line naming the file and its first problem: missing, unreadable, not JSON, another
        format or version, a missing or mistyped field, or parts that do not make one classifier.
    """
    record = read_fingerprint(path)
    try:
        return Fingerprint.from_record(record)
    except InputError as error:
        raise ResultsError(f"{path}: {error}") from None


def fingerprint_to_dict(fingerprint: Fingerprint) -> dict:
    """The JSON document that :func:`save_fingerprint` writes (plain JSON types)."""
    return record_to_dict(fingerprint.to_record())


@dataclass(frozen=True)
class FingerprintResult:
    """What :func:`fingerprint_from_store` computed and wrote.

    Attributes
    ----------
    dataset : str
    archs : tuple of str
        The architectures, in class order.
    evaluation : FingerprintEvaluation
        Held-out accuracies; ``evaluation.summary`` is the table written.
    table_path, figure_path : Path
        ``<prefix>.tsv`` and ``<prefix>.png``.
    fingerprint : Fingerprint or None
        The fingerprint fitted on every run, when one was saved.
    save_path : Path or None
        Where it was saved.
    chosen_as_best : bool
        The saved score was chosen among several, by cross-validation over all the runs (the
        procedure whose accuracy the evaluation measured inside each split).
    """

    dataset: str
    archs: tuple[str, ...]
    evaluation: FingerprintEvaluation
    table_path: Path
    figure_path: Path
    fingerprint: Fingerprint | None = None
    save_path: Path | None = None
    chosen_as_best: bool = False

    @property
    def summary(self) -> pd.DataFrame:
        return self.evaluation.summary

    def headline(self) -> str:
        """The evaluation's honest accuracy in one plain-language line (or why there is none)."""
        return headline_text(self.evaluation)


def headline_text(evaluation: FingerprintEvaluation) -> str:
    """One line: the held-out accuracy of the whole procedure, and what the per-score rows are."""
    row = evaluation.headline()
    if row is None:
        if evaluation.note:
            return (
                f"no held-out accuracy for a score chosen among {len(evaluation.scores)}: {evaluation.note}. "
                "The per-score rows are descriptive (the best of them was picked on the splits it is scored on, "
                "so it is optimistic); name one score for an honest accuracy"
            )
        return "no top-marker evaluation: no headline accuracy"
    accuracy = (
        f"{row['MEAN_ACCURACY']:.3f} (95% of {int(row['N_SPLITS'])} splits within {row['LOW']:.3f}-{row['HIGH']:.3f}; "
        f"{int(row['N_HELDOUT_RUNS'])} runs held out per split, chance {row['CHANCE']:.3f})"
    )
    if not evaluation.chose_score:
        return f"held-out accuracy of the top {int(row['K'])} {row['SCORE']} markers: {accuracy}"
    counts = evaluation.chosen_counts()
    chosen = ", ".join(f"{name} in {n}" for name, n in counts.items())
    return (
        f"held-out accuracy of the top {int(row['K'])} markers, score chosen inside each split (nested cross-validation, "
        f"{evaluation.inner_splits} inner splits of each split's training runs): {accuracy}; chosen: {chosen} of "
        f"{int(row['N_SPLITS'])} splits. The per-score rows are descriptive: the best of them is picked on the splits "
        "it is scored on, so it overstates"
    )


def fingerprint_from_store(
    archs: Iterable[str],
    *,
    store: str | os.PathLike | None = None,
    dataset: str | None = None,
    score: str = ALL_SCORES,
    n_markers: int = DEFAULT_MARKERS,
    selections: str | Iterable[str] = ALL_SELECTIONS,
    random_draws: int = DEFAULT_RANDOM_DRAWS,
    n_splits: int = DEFAULT_SPLITS,
    train_fraction: float = DEFAULT_TRAIN_FRACTION,
    seed: int = DEFAULT_SEED,
    out_prefix: str | os.PathLike | None = None,
    save_path: str | os.PathLike | None = None,
    inner_splits: int = DEFAULT_INNER_SPLITS,
) -> FingerprintResult:
    """Held-out accuracy of K-marker fingerprints per score and selection; optionally save one.

    Parameters
    ----------
    archs : iterable of str
        Two or more architectures to tell apart, in class order.
    store, dataset : optional
        Where the runs are (default ``$GWASM_STORE`` or ``./gwasm-store``, and its only dataset).
    score : str
        A built-in score, or ``"all"``: every score recorded for all of ``archs``, in turn.
    n_markers : int
        K, the marker examples per fingerprint.
    selections : str or iterable of str
        ``"top"``, ``"bottom"``, ``"random"``, a comma-separated list of them, or ``"all"``.
    random_draws : int
        Random marker sets per split (the random baseline).
    n_splits : int
        Random train/held-out splits of the runs.
    train_fraction : float
        Share of each architecture's runs used to choose markers and fit.
    seed : int
        Seed of the splits and the random markers.
    out_prefix : path, optional
        Output prefix (default ``./gwasm-results/<dataset>.fingerprint``).
    save_path : path, optional
        Also fit the fingerprint on every run (top-K markers, penalty chosen by cross-validation,
        with its out-of-distribution reference) and save it there as JSON, with the evaluation's
        headline as ``provenance.heldout_accuracy`` (or, when the runs are too few to choose the
        score inside each split, none, and why as ``provenance.heldout_accuracy_missing``).
        With ``score="all"`` the score is chosen by
        :class:`~gwas_models.analysis.fingerprint_evaluation.ScoreSelectingFingerprint` on all
        runs (inner splits of them), the procedure whose accuracy the evaluation measured with
        the choice made inside each split; with one score, that score's top-K row. Either is the
        accuracy of the same procedure (choice, top-K markers chosen on the training runs, then a
        logistic regression) fitted on ``train_fraction`` of the runs and unpenalised; the saved
        fingerprint sees every run and is penalised, which changes its probabilities more than
        its answers, and with fewer runs than it saw the evaluation tends to understate its
        accuracy rather than overstate it.
    inner_splits : int
        Inner splits of each split's training runs that choose the score (several scores).

    Returns
    -------
    FingerprintResult
    """
    archs = check_architectures(list(archs))
    selections = parse_selections(selections)
    check_evaluation_options(n_splits, random_draws, train_fraction)
    inner_splits = check_inner_splits(inner_splits)
    seed = check_seed(seed)
    save_path = _check_save_path(save_path, score, selections)
    store_path = run_store.resolve_store(store)
    dataset_name = run_store.resolve_dataset(store_path, dataset)
    check_marker_count(n_markers, int(run_store.read_dataset_info(store_path, dataset_name)["n_examples"]))
    scores = _scores_to_evaluate(store_path, dataset_name, archs, score)
    matrices = run_store.load_score_matrices(store_path, dataset_name, scores, archs)
    evaluation = evaluate_scores(
        matrices,
        archs,
        seed,
        n_markers=n_markers,
        selections=selections,
        n_splits=n_splits,
        random_draws=random_draws,
        train_fraction=train_fraction,
        inner_splits=inner_splits,
    )
    fitted = None
    if save_path is not None:
        chosen = scores[0] if len(matrices) == 1 else _choose_score(matrices, archs, n_markers, inner_splits, train_fraction, seed)
        provenance = {"store": str(store_path.resolve()), "seed": seed}
        if evaluation.headline() is not None:
            provenance["heldout_accuracy"] = heldout_accuracy_record(evaluation, chosen)
        else:  # too few runs to choose inside each split: the choice is made, its accuracy not measured
            provenance["heldout_accuracy_missing"] = evaluation.note
        fitted = fit_fingerprint(matrices[chosen], archs, n_markers, provenance=provenance, random_state=seed)
    prefix = Path(out_prefix) if out_prefix is not None else DEFAULT_RESULTS_DIR / f"{dataset_name}.fingerprint"
    table_path, figure_path = _write_outputs(evaluation.summary, prefix, fitted, save_path)
    return FingerprintResult(
        dataset=dataset_name,
        archs=archs,
        evaluation=evaluation,
        table_path=table_path,
        figure_path=figure_path,
        fingerprint=fitted,
        save_path=save_path,
        chosen_as_best=fitted is not None and len(matrices) > 1,
    )


def _choose_score(matrices: dict, archs: tuple[str, ...], n_markers: int, inner_splits: int, train_fraction: float, seed: int) -> str:
    """The score that :class:`ScoreSelectingFingerprint` chooses on every run: the evaluated procedure, applied once more."""
    X, groups, scores = stack_scores(matrices, archs)
    with quiet_fitting():
        chooser = ScoreSelectingFingerprint(scores, n_markers, inner_splits, train_fraction, random_state=seed).fit(X, groups)
    return chooser.chosen_score_


def _check_save_path(save_path: str | os.PathLike | None, score: str, selections: tuple[str, ...]) -> Path | None:
    """Refuse a save path that would fail only after the evaluation's files are written."""
    if save_path is None:
        return None
    save_path = Path(save_path)
    if save_path.is_dir():
        raise InputError(f"save_path {save_path}: it is a directory, cannot save the fingerprint there", parameter="save_path")
    if score == ALL_SCORES and "top" not in selections:
        raise InputError(
            "save_path with score 'all' saves the score chosen by cross-validation of its top-K markers, and records the "
            "held-out accuracy of that choice: add top to the selections, or name one score",
            parameter="save_path",
        )
    return save_path


def _scores_to_evaluate(store_path: Path, dataset: str, archs: tuple[str, ...], score: str) -> list[str]:
    """The recorded scores (``all``), or the one named, checked to be recorded for every architecture."""
    recorded = run_store.recorded_scores(store_path, dataset, archs)
    if score == ALL_SCORES:
        if not recorded:
            raise InputError(f"no score was recorded for every one of {', '.join(archs)} in dataset {dataset!r}")
        return recorded
    score_info(score)
    if score not in recorded:
        raise InputError(
            f"score {score!r} was not recorded for every one of {', '.join(archs)} in dataset {dataset!r}; "
            f"recorded: {', '.join(recorded) or 'none'}"
        )
    return [score]


def _write_outputs(summary: pd.DataFrame, prefix: Path, fitted: Fingerprint | None, save_path: Path | None) -> tuple[Path, Path]:
    """Draw first (the likeliest step to fail), then write the table, figure and fingerprint."""
    figure = Figure(figsize=fingerprint_figsize(summary["SCORE"].nunique()), layout="constrained")
    fingerprint_accuracy(summary, ax=figure.add_subplot())
    table_path = write_evaluation(summary, prefix.with_name(prefix.name + ".tsv"))
    figure_path = save_figure(figure, prefix.with_name(prefix.name + ".png"))
    if fitted is not None and save_path is not None:
        save_fingerprint(fitted, save_path)
    return table_path, figure_path


# --------------------------------------------------------------------------------------------
# Identifying runs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdentifyResult:
    """What :func:`identify` found, and what the fingerprint knows of its own limits.

    Attributes
    ----------
    table : DataFrame
        One row per run, the columns of :func:`gwas_models.analysis.fingerprint.identify_columns`:
        ``RUN``, ``PREDICTED`` (an architecture or ``"none of these"``), ``P(<class>)``,
        ``DIST(<class>)``, ``THRESHOLD``, ``AS_FAR``, ``OOD_P``, ``USED_IN_FIT``.
    fingerprint : Fingerprint
        The fingerprint applied.
    ood_quantile : float
        The quantile of the reference that set ``THRESHOLD``.
    """

    table: pd.DataFrame
    fingerprint: Fingerprint
    ood_quantile: float

    @property
    def heldout_accuracy(self) -> dict | None:
        """The fingerprint's recorded held-out accuracy (``mean``, ``low``, ``high``, ...), or None."""
        return self.fingerprint.heldout_accuracy

    @property
    def has_reference(self) -> bool:
        """Whether the fingerprint has an out-of-distribution reference (else no run is "none of these")."""
        return self.fingerprint.reference is not None

    @property
    def used_in_fit(self) -> list[str]:
        """Names of the runs identified that the fingerprint was fitted on."""
        return self.table.loc[self.table["USED_IN_FIT"] == "yes", "RUN"].tolist()

    @property
    def none_of_these(self) -> list[str]:
        """Names of the runs far from every architecture the fingerprint knows."""
        return self.table.loc[self.table["PREDICTED"] == NONE_OF_THESE, "RUN"].tolist()

    def summary(self) -> str:
        """One plain-language line: the fingerprint, its held-out accuracy and its threshold."""
        fp = self.fingerprint
        head = f"fingerprint of {' vs '.join(fp.classes)} on {fp.n_markers} {fp.score} markers"
        record = self.heldout_accuracy
        missing = fp.provenance.get("heldout_accuracy_missing")
        if record is None:
            accuracy = "no held-out accuracy recorded" + (f" ({missing})" if isinstance(missing, str) and missing else "")
        else:
            accuracy = (
                f"held-out accuracy {record['mean']:.2f} (95% of {record['n_splits']} splits within "
                f"{record['low']:.2f}-{record['high']:.2f}; {record['n_heldout_runs']} runs held out per split, chance {record.get('chance', float('nan')):.2f}"
                f"{_procedure_text(record)})"
            )
        if self.has_reference:
            n_reference = len(fp.reference.reference_distance_)
            limit = f"'{NONE_OF_THESE}' beyond the {self.ood_quantile:g} bound of {n_reference} training runs' left-out distances"
        else:
            limit = f"no out-of-distribution reference: every run is named as one of {', '.join(fp.classes)}"
        return f"{head}: {accuracy}; {limit}"


def _procedure_text(record: dict) -> str:
    """What a recorded held-out accuracy measured, for :meth:`IdentifyResult.summary`."""
    procedure = record.get("procedure")
    if procedure == PROCEDURE_CHOSEN:
        considered = record.get("scores_considered") or []
        return f"; score chosen inside each split among {len(considered)}" if considered else "; score chosen inside each split"
    if procedure is None:  # format version 2
        return "; recorded before the choice of score was nested: optimistic if the score was picked among several"
    return ""


def identify(
    fingerprint_path: str | os.PathLike,
    *,
    arch: str | None = None,
    seed: int | None = None,
    scores_path: str | os.PathLike | None = None,
    store: str | os.PathLike | None = None,
    dataset: str | None = None,
    ood_quantile: float = DEFAULT_OOD_QUANTILE,
) -> IdentifyResult:
    """Predict which architecture trained some runs: :func:`identify_runs` or :func:`identify_file`.

    Give either ``arch`` (runs in the store, optionally only ``seed``) or ``scores_path``.
    ``ood_quantile`` sets the threshold of "none of these" (see
    :func:`gwas_models.analysis.fingerprint.identify`).

    Returns
    -------
    IdentifyResult
    """
    if (arch is None) == (scores_path is None):
        raise InputError("identify needs either arch (runs in the store) or scores_path (a score file), not both")
    check_ood_quantile(ood_quantile)
    if arch is not None:
        return identify_runs(fingerprint_path, arch, seed=seed, store=store, dataset=dataset, ood_quantile=ood_quantile)
    if seed is not None:
        raise InputError("seed selects a run of arch; it does not apply to scores_path", parameter="seed")
    return identify_file(fingerprint_path, scores_path, ood_quantile=ood_quantile)


def identify_runs(
    fingerprint_path: str | os.PathLike,
    arch: str,
    *,
    seed: int | None = None,
    store: str | os.PathLike | None = None,
    dataset: str | None = None,
    ood_quantile: float = DEFAULT_OOD_QUANTILE,
) -> IdentifyResult:
    """Apply a saved fingerprint to the runs of ``arch`` in the store.

    A run is marked ``USED_IN_FIT`` when its architecture label and seed are among the runs the
    fingerprint was fitted on (its provenance), in the fingerprint's dataset: a store copied
    elsewhere holds the same runs under the same names.

    Parameters
    ----------
    fingerprint_path : path
        Fingerprint JSON saved by :func:`fingerprint_from_store`.
    arch : str
        Architecture whose runs to identify.
    seed : int, optional
        Only the run with this seed (default: every run of ``arch``).
    store : path, optional
        Default ``$GWASM_STORE`` or ``./gwasm-store``.
    dataset : str, optional
        Dataset of the runs; default and requirement: the fingerprint's.
    ood_quantile : float

    Returns
    -------
    IdentifyResult
        One row per run (``<arch> seed <n>``).
    """
    fitted = load_fingerprint(fingerprint_path)
    fitted.check_dataset(dataset, None)
    store_path = run_store.resolve_store(store)
    dataset_name = run_store.resolve_dataset(store_path, fitted.dataset)
    info = run_store.read_dataset_info(store_path, dataset_name)
    fitted.check_dataset(dataset_name, info.get("n_examples"))
    matrix = run_store.load_score_matrices(store_path, dataset_name, [fitted.score], [arch])[fitted.score]
    if seed is not None:
        keep = matrix.seeds == seed
        if not keep.any():
            raise StoreError(
                f"no run of {arch!r} with seed {seed} in dataset {dataset_name!r}; seeds there: {format_seeds(matrix.seeds)}"
            )
        matrix = matrix.subset_runs(keep)
    names = [f"{arch} seed {s}" for s in matrix.seeds]
    used = fitted.fitted_on(arch, matrix.seeds).tolist()
    table = identify_scores(fitted, matrix.example_id, matrix.values, names, used_in_fit=used, ood_quantile=ood_quantile)
    return IdentifyResult(table, fitted, ood_quantile)


def identify_file(
    fingerprint_path: str | os.PathLike, scores_path: str | os.PathLike, *, ood_quantile: float = DEFAULT_OOD_QUANTILE
) -> IdentifyResult:
    """Apply a saved fingerprint to one run's scores in a file.

    Parameters
    ----------
    fingerprint_path : path
        Fingerprint JSON saved by :func:`fingerprint_from_store`.
    scores_path : path
        CSV with ``example_id`` and one value column, or a ``.npy`` vector indexed by example id
        (:func:`~gwas_models.formats.score_vector.read_score_vector`).
    ood_quantile : float

    Returns
    -------
    IdentifyResult
        One row, named after the file; ``USED_IN_FIT`` is ``unknown`` (a file does not say which
        run it came from).
    """
    fitted = load_fingerprint(fingerprint_path)
    example_id, values = read_score_vector(scores_path)
    if is_whole_vector(scores_path):
        fitted.check_dataset(None, len(values))
    elif len(example_id) and example_id.max() >= fitted.n_examples:
        fitted.check_dataset(None, int(example_id.max()) + 1)  # ids beyond the fingerprint's dataset
    table = identify_scores(fitted, example_id, values, [Path(scores_path).name], used_in_fit=[None], ood_quantile=ood_quantile)
    return IdentifyResult(table, fitted, ood_quantile)


__all__ = [
    "ALL_SCORES",
    "ALL_SELECTIONS",
    "DEFAULT_INNER_SPLITS",
    "DEFAULT_MARKERS",
    "DEFAULT_OOD_QUANTILE",
    "DEFAULT_RANDOM_DRAWS",
    "DEFAULT_SEED",
    "DEFAULT_SPLITS",
    "DEFAULT_TRAIN_FRACTION",
    "FingerprintResult",
    "IdentifyResult",
    "MIN_REFERENCE_RUNS",
    "NONE_OF_THESE",
    "fingerprint_from_store",
    "fingerprint_to_dict",
    "headline_text",
    "identify",
    "identify_file",
    "identify_runs",
    "load_fingerprint",
    "save_fingerprint",
]
