"""The paper's difficulty analyses within one architecture (§2.1–2.2, §4.1–4.2, Figures 2–5).

* :func:`score_variance`: how much each example's score varies from run to run, at every level of
  difficulty (Figure 2).
* :func:`score_stability`: how much ranking or splitting the data by a score averaged over ``n`` runs
  changes when another ``n`` runs are used (Figure 3), and :func:`runs_for_rank_error`, the number
  of runs needed for a given rank error.
* :func:`score_correlations`: Spearman correlations between scores, mean to mean, mean to run and
  run to run (Figure 4).
* :func:`score_pca`: principal components of the quantile-normalised mean scores, and the first
  one used as a score of its own (Figure 5).

Everything here is pure: score matrices (and imported single-run scores) in, DataFrames and frozen
dataclasses out. No file is read or written and nothing is drawn. Statistics never loop over
examples in Python; loops run over scores, bins, or numbers of runs.

Orientation: every score declares whether higher means harder. Where scores are compared or
combined (stability, correlation, PCA) they are first multiplied by their sign, so that all of them
point towards "harder". The variance analysis keeps each score's own units and only orders the
examples from easiest to hardest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.preprocessing import QuantileTransformer

from gwas_models.errors import InputError
from gwas_models.matrix import ScoreMatrix, check_same_runs

DEFAULT_BINS = 50
"""Bins of the variance analysis: the paper's 50,000 CIFAR-10 examples in groups of 1,000."""
DEFAULT_INTERVAL = 0.9
"""Central interval of the variance band (the paper's 90%)."""
DEFAULT_REPEATS = 20
"""Random pairs of disjoint run sets drawn for every set size in the stability analysis."""
RANK_CHANGE_QUANTILE = 0.95
"""The stability analysis reports the rank change that 95% of the examples stay within."""
MAX_QUANTILES = 1000
"""Upper bound on the quantiles the quantile transform estimates (scikit-learn's default)."""

VARIANCE_COLUMNS = (
    "score",
    "bin",
    "first_rank",
    "last_rank",
    "rank_fraction",
    "n_examples",
    "mean",
    "median",
    "lower",
    "upper",
    "interval",
    "mean_sd",
)
STABILITY_COLUMNS = (
    "score", "n_runs", "repeats", "rank_change_median", "rank_change_q95", "split_change", "tied_fraction",
)  # fmt: skip
#: A stability curve whose first point has at least this share of tied examples is tie-dominated.
TIE_HEAVY_FRACTION = 0.2
RUNS_NEEDED_COLUMNS = (
    "score",
    "target_rank_error",
    "runs_needed",
    "extrapolated",
    "max_measured_runs",
    "rank_change_at_max",
)
CORRELATION_COLUMNS = (
    "score_a",
    "score_b",
    "mean_to_mean",
    "mean_to_run",
    "run_to_run",
    "mean_to_run_change",
    "run_to_run_change",
)
PC1_NAME = "pc1"


# ------------------------------------------------------------------------------------------
# Inputs: orientation, imported single-run scores, screening out unusable scores
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SingleRunScore:
    """A score that has one value per example and no runs, e.g. imported ensemble agreement.

    Attributes
    ----------
    name : str
    values : float64 array of shape (n_examples,)
        Aligned with the score matrices' ``example_id``; NaN for examples the score does not cover.
    higher_is_harder : bool
    """

    name: str
    values: np.ndarray
    higher_is_harder: bool = True

    @property
    def sign(self) -> int:
        """+1 when higher is harder, else -1."""
        return 1 if self.higher_is_harder else -1


def single_run_score(name: str, values: pd.Series, higher_is_harder: bool, example_id: np.ndarray) -> SingleRunScore:
    """Align a score indexed by example id (as the store's imported scores are) with the runs' examples.

    Parameters
    ----------
    name : str
    values : Series indexed by example_id
    higher_is_harder : bool
    example_id : int array of shape (n_examples,)
        The examples of the score matrices, in their order.

    Returns
    -------
    SingleRunScore, NaN where ``values`` has no entry for an example.
    """
    aligned = pd.to_numeric(values[~values.index.duplicated()], errors="coerce").reindex(np.asarray(example_id))
    return SingleRunScore(name, aligned.to_numpy(dtype=np.float64, na_value=np.nan), bool(higher_is_harder))


EL2N_OVER_RUNS = "el2n:paul"
"""Name of EL2N averaged over the runs of an architecture, as Paul et al. (2021) score examples."""


def run_averaged_score(matrix: ScoreMatrix, group: str | None = None, name: str | None = None) -> SingleRunScore:
    """A score averaged over the runs of one architecture, as a single-run score of its own.

    Parameters
    ----------
    matrix : ScoreMatrix
    group : str, optional
        The architecture whose runs to average (default: the matrix's only one).
    name : str, optional
        Name of the result (default ``"<score>:mean"``).

    Returns
    -------
    SingleRunScore with the per-example mean over the runs (NaN where any run is NaN), the
    score's direction, usable wherever imported single-run scores are (e.g. the correlations).
    """
    groups = matrix.group_names()
    if group is None:
        if len(groups) != 1:
            raise InputError(f"group must be named: the matrix holds runs of {', '.join(groups) or 'nothing'}", parameter="group")
        group = groups[0]
    values = matrix.runs_of(group).mean(axis=0)
    return SingleRunScore(name or f"{matrix.score}:mean", values, matrix.higher_is_harder)


def el2n_over_runs(matrix: ScoreMatrix, group: str | None = None) -> SingleRunScore:
    """EL2N averaged over the runs of an architecture (Paul et al. 2021), named ``el2n:paul``.

    Paul et al. score an example by its early-epoch EL2N averaged over independent runs (10 in
    their paper), since one run's EL2N is noisy; the paper's code keeps one value per run. This is
    their score, made at analysis time from the per-run ``el2n`` of the store.

    Parameters
    ----------
    matrix : ScoreMatrix
        The ``el2n`` of some runs (as :func:`gwas_models.formats.store.load_score_matrices` reads it).
    group : str, optional
        The architecture (default: the matrix's only one).

    Raises
    ------
    InputError
        ``matrix`` holds another score, or several architectures and ``group`` is not named.
    """
    if matrix.score != "el2n":
        raise InputError(f"matrix must hold el2n, got {matrix.score!r}", parameter="matrix")
    return run_averaged_score(matrix, group, name=EL2N_OVER_RUNS)


def oriented(matrix: ScoreMatrix) -> np.ndarray:
    """The matrix's values multiplied by its sign, so that higher means harder."""
    return matrix.values * matrix.sign


@dataclass(frozen=True)
class ScreenedScores:
    """The scores an analysis can use, and why the others were set aside.

    Attributes
    ----------
    matrices : dict of name to ScoreMatrix
        Scores with finite values everywhere that differ between examples.
    imported : tuple of SingleRunScore
        Single-run scores with at least two distinct finite values.
    dropped : dict of name to reason
    """

    matrices: dict[str, ScoreMatrix]
    imported: tuple[SingleRunScore, ...] = ()
    dropped: dict[str, str] = field(default_factory=dict)

    def notes(self) -> list[str]:
        """One human-readable line per dropped score."""
        return [f"score {name!r} left out: {reason}" for name, reason in self.dropped.items()]


def _matrix_problem(matrix: ScoreMatrix) -> str | None:
    values = matrix.values
    if values.size == 0:
        return "no runs"
    finite = np.isfinite(values)
    if not finite.any():
        return "no finite value (not recorded)"
    if not finite.all():
        # Ranks and correlations are undefined with holes; a partly recorded score is a store problem.
        return f"{int((~finite).sum())} of {values.size} values are not finite"
    if np.ptp(values.mean(axis=0)) == 0:
        return "constant: every example has the same mean score"
    return None


def _single_run_problem(score: SingleRunScore) -> str | None:
    finite = score.values[np.isfinite(score.values)]
    if finite.size == 0:
        return "no finite value for these examples"
    if np.ptp(finite) == 0:
        return "constant: every example has the same score"
    return None


def screen_scores(matrices: Mapping[str, ScoreMatrix], imported: Sequence[SingleRunScore] = ()) -> ScreenedScores:
    """Set aside scores that no analysis can use: all NaN (not recorded), partly NaN, or constant.

    Parameters
    ----------
    matrices : mapping of name to ScoreMatrix
    imported : sequence of SingleRunScore, optional
        Single-run scores; they may miss some examples (those are left out pairwise).

    Returns
    -------
    ScreenedScores
    """
    kept: dict[str, ScoreMatrix] = {}
    dropped: dict[str, str] = {}
    for name, matrix in matrices.items():
        problem = _matrix_problem(matrix)
        if problem is None:
            kept[name] = matrix
        else:
            dropped[name] = problem
    kept_imported = []
    for score in imported:
        problem = _single_run_problem(score)
        if problem is None:
            kept_imported.append(score)
        else:
            dropped[score.name] = problem
    return ScreenedScores(kept, tuple(kept_imported), dropped)


def _require_scores(matrices: Mapping[str, ScoreMatrix], analysis: str, minimum: int = 1) -> None:
    if len(matrices) < minimum:
        raise InputError(
            f"{analysis} needs at least {minimum} usable score{'s' if minimum > 1 else ''}, got {len(matrices)}"
            + (f" ({', '.join(matrices)})" if matrices else "")
        )


def _arch_label(matrix: ScoreMatrix) -> str:
    return ", ".join(matrix.group_names()) or "the architecture"


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks along the last axis, tied values sharing their average rank.

    The same as ``scipy.stats.rankdata(values, axis=-1)`` for finite values, about twice as fast:
    rankdata sorts with a stable merge sort, which ties do not need since they are averaged
    anyway. Every stability split and correlation ranks whole runs, so this is the hot loop.
    """
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, axis=-1)
    ordered = np.take_along_axis(values, order, axis=-1)
    n = ordered.shape[-1]
    positions = np.broadcast_to(np.arange(n), ordered.shape)
    starts_group = np.ones(ordered.shape, dtype=bool)
    starts_group[..., 1:] = ordered[..., 1:] != ordered[..., :-1]
    ends_group = np.ones(ordered.shape, dtype=bool)
    ends_group[..., :-1] = starts_group[..., 1:]
    # First and last sorted position of each element's group of ties, by running max / min.
    first = np.maximum.accumulate(np.where(starts_group, positions, 0), axis=-1)
    last = np.flip(np.minimum.accumulate(np.flip(np.where(ends_group, positions, n), axis=-1), axis=-1), axis=-1)
    ranks = np.empty(ordered.shape)
    np.put_along_axis(ranks, order, (first + last) / 2.0 + 1.0, axis=-1)
    return ranks


def random_tie_ranks(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """1-based ranks along the last axis, ties broken uniformly at random.

    Tied values carry no order: a count score (forgetting, accuracy) ties most examples of a run,
    and giving a tied block one average rank would make its examples look perfectly stable, and a
    50% split fall wherever the block ends. Broken at random, ties count as the uncertainty they
    are, and a split always holds half the examples.
    """
    values = np.asarray(values, dtype=np.float64)
    # Sort by value, then by a random key among equal values.
    order = np.lexsort((rng.random(values.shape), values), axis=-1)
    ranks = np.empty(values.shape)
    np.put_along_axis(ranks, order, np.broadcast_to(np.arange(1.0, values.shape[-1] + 1), values.shape), axis=-1)
    return ranks


def tied_fraction(values: np.ndarray) -> np.ndarray:
    """Share of the examples of each row (last axis) whose value another example of the row shares."""
    ordered = np.sort(np.asarray(values, dtype=np.float64), axis=-1)
    equal_next = ordered[..., 1:] == ordered[..., :-1]
    tied = np.zeros(ordered.shape, dtype=bool)
    tied[..., 1:] |= equal_next
    tied[..., :-1] |= equal_next
    return tied.mean(axis=-1)


# ------------------------------------------------------------------------------------------
# Variance (Figure 2)
# ------------------------------------------------------------------------------------------


def _per_example_sd(values: np.ndarray) -> np.ndarray:
    if values.shape[0] < 2:
        return np.full(values.shape[1], np.nan)
    return values.std(axis=0, ddof=1)


def _variance_of_one(matrix: ScoreMatrix, n_bins: int, interval: float) -> pd.DataFrame:
    values = matrix.values
    n_examples = matrix.n_examples
    # Stable sort on the oriented mean: bin 0 holds the easiest examples, ties keep example order.
    order = np.argsort(oriented(matrix).mean(axis=0), kind="stable")
    means = values.mean(axis=0)
    sds = _per_example_sd(values)
    tail = (1.0 - interval) / 2.0
    rows = []
    first_rank = 1
    for number, members in enumerate(np.array_split(order, min(n_bins, n_examples))):
        last_rank = first_rank + len(members) - 1
        lower, median, upper = np.quantile(values[:, members], [tail, 0.5, 1.0 - tail])
        rows.append(
            {
                "score": matrix.score,
                "bin": number,
                "first_rank": first_rank,
                "last_rank": last_rank,
                "rank_fraction": (first_rank + last_rank) / 2.0 / n_examples,
                "n_examples": len(members),
                "mean": means[members].mean(),
                "median": median,
                "lower": lower,
                "upper": upper,
                "interval": interval,
                "mean_sd": sds[members].mean(),
            }
        )
        first_rank = last_rank + 1
    return pd.DataFrame(rows, columns=list(VARIANCE_COLUMNS))


def score_variance(
    matrices: Mapping[str, ScoreMatrix],
    n_bins: int = DEFAULT_BINS,
    interval: float = DEFAULT_INTERVAL,
) -> pd.DataFrame:
    """Per-run spread of each score, with examples binned by the rank of their mean (Figure 2).

    Examples are ordered from easiest to hardest by their mean score over runs (oriented, so a
    higher-is-easier score puts its highest values in the first bin) and cut into ``n_bins`` groups
    of nearly equal size. For each group the per-run scores of all its examples are pooled.

    Parameters
    ----------
    matrices : mapping of score name to ScoreMatrix
        Usable scores (see :func:`screen_scores`) of the runs to describe.
    n_bins : int
        Number of bins (at most one per example).
    interval : float in (0, 1)
        Coverage of the central band, e.g. 0.9 for the 5% and 95% quantiles.

    Returns
    -------
    DataFrame with one row per score and bin, columns :data:`VARIANCE_COLUMNS`:
    ``first_rank``/``last_rank`` (1-based, inclusive; rank 1 is the easiest example),
    ``rank_fraction`` (bin centre as a fraction of the dataset), ``n_examples``, ``mean`` (of the
    examples' mean scores), ``median``, ``lower`` and ``upper`` (quantiles of the pooled per-run
    scores, in the score's own units), ``interval`` and ``mean_sd`` (mean over the bin's examples
    of the standard deviation over runs; NaN with one run).
    """
    if int(n_bins) != n_bins or n_bins < 1:
        raise InputError(f"the number of bins must be a positive integer, got {n_bins}")
    if not 0.0 < interval < 1.0:
        raise InputError(f"the interval must lie strictly between 0 and 1, got {interval}")
    _require_scores(matrices, "the variance analysis")
    tables = [_variance_of_one(matrix, int(n_bins), float(interval)) for matrix in matrices.values()]
    return pd.concat(tables, ignore_index=True)


# ------------------------------------------------------------------------------------------
# Stability (Figure 3)
# ------------------------------------------------------------------------------------------


def _selection_weights(run_sets: np.ndarray, n_runs: int) -> np.ndarray:
    """``(repeats, n_runs)`` weights whose product with the values averages each set of runs."""
    repeats, set_size = run_sets.shape
    weights = np.zeros((repeats, n_runs))
    np.put_along_axis(weights, run_sets, 1.0 / set_size, axis=1)
    return weights


def split_rank_change(
    values: np.ndarray, first_runs: np.ndarray, second_runs: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """How examples move between two averages of disjoint sets of runs.

    Parameters
    ----------
    values : float array of shape (n_runs, n_examples)
        Oriented scores (higher is harder).
    first_runs, second_runs : int arrays of shape (set_size,) or (repeats, set_size)
        Row indices of the two sets; several pairs of sets are compared at once when 2-D.
    rng : numpy.random.Generator
        Breaks ties (:func:`random_tie_ranks`).

    Returns
    -------
    rank_change : float array of shape (n_examples,) or (repeats, n_examples)
        Absolute difference of the example's rank (ties broken at random) between the two
        averages, as a fraction of the number of examples.
    side_changed : bool array of the same shape
        True where the example is in the harder half (rank above n_examples / 2) of one average and
        not of the other: it changes side of a 50% split.
    """
    values = np.asarray(values, dtype=np.float64)
    first = np.atleast_2d(np.asarray(first_runs))
    second = np.atleast_2d(np.asarray(second_runs))
    n_runs, n_examples = values.shape
    first_mean = _selection_weights(first, n_runs) @ values
    second_mean = _selection_weights(second, n_runs) @ values
    first_rank = random_tie_ranks(first_mean, rng)
    second_rank = random_tie_ranks(second_mean, rng)
    rank_change = np.abs(first_rank - second_rank) / n_examples
    side_changed = (first_rank > n_examples / 2.0) != (second_rank > n_examples / 2.0)
    if np.ndim(first_runs) == 1:
        return rank_change[0], side_changed[0]
    return rank_change, side_changed


def stability_curve(values: np.ndarray, repeats: int = DEFAULT_REPEATS, seed: int = 0) -> pd.DataFrame:
    """Rank and split changes between averages of two disjoint sets of ``n`` runs, for every ``n``.

    For n = 1 … floor(n_runs / 2), ``repeats`` times: shuffle the runs, average the first ``n`` and
    the next ``n``, and compare (:func:`split_rank_change`). The statistics over examples are
    computed for each draw and then averaged over draws.

    Ties are broken at random. A score with many ties (a count such as ``forgetting``: most
    examples of one run are never forgotten) cannot order the examples of a tied block, so its
    few-run averages show large rank changes that fall as averaging breaks the ties: the curve says
    how many runs it takes before the score orders the examples at all. ``tied_fraction`` says how
    much of a point is ties.

    Parameters
    ----------
    values : float array of shape (n_runs, n_examples), n_runs >= 2
        Oriented scores.
    repeats : int
        Random pairs of sets per ``n``.
    seed : int
        Seed of the NumPy Generator that draws the sets. The same seed draws the same sets for any
        score of the same runs, so scores are compared on the same splits.

    Returns
    -------
    DataFrame with columns ``n_runs``, ``repeats``, ``rank_change_median`` (median absolute rank
    change, fraction of the dataset), ``rank_change_q95`` (the 95th percentile: 95% of the examples
    move less, the upper end of the interval [0, q95] that holds 95% of them) and ``split_change``
    (fraction of examples that change side of the 50% split) and ``tied_fraction`` (share of the
    examples tied with another in an average of ``n`` runs).
    """
    values = np.asarray(values, dtype=np.float64)
    n_runs = values.shape[0]
    if n_runs < 2:
        raise InputError(f"the stability analysis needs at least 2 runs, got {n_runs}")
    if int(repeats) != repeats or repeats < 1:
        raise InputError(f"repeats must be a positive integer, got {repeats}")
    repeats = int(repeats)
    generator = np.random.default_rng(seed)
    rows = []
    for set_size in range(1, n_runs // 2 + 1):
        shuffled = generator.permuted(np.tile(np.arange(n_runs), (repeats, 1)), axis=1)
        first, second = shuffled[:, :set_size], shuffled[:, set_size : 2 * set_size]
        rank_change, side_changed = split_rank_change(values, first, second, generator)
        rows.append(
            {
                "n_runs": set_size,
                "repeats": repeats,
                "rank_change_median": np.median(rank_change, axis=1).mean(),
                "rank_change_q95": np.quantile(rank_change, RANK_CHANGE_QUANTILE, axis=1).mean(),
                "split_change": side_changed.mean(axis=1).mean(),
                "tied_fraction": tied_fraction(_selection_weights(first, n_runs) @ values).mean(),
            }
        )
    return pd.DataFrame(rows, columns=list(STABILITY_COLUMNS[1:]))


def score_stability(
    matrices: Mapping[str, ScoreMatrix], repeats: int = DEFAULT_REPEATS, seed: int = 0
) -> pd.DataFrame:
    """Stability of ranking and splitting by each score as the number of averaged runs grows (Figure 3).

    Parameters
    ----------
    matrices : mapping of score name to ScoreMatrix
        Usable scores of the runs of one architecture.
    repeats, seed
        See :func:`stability_curve`; every score is split the same way.

    Returns
    -------
    DataFrame with columns :data:`STABILITY_COLUMNS`, one row per score and set size ``n_runs``.

    Raises
    ------
    InputError
        With fewer than 2 runs, naming the architecture and its run count.
    """
    _require_scores(matrices, "the stability analysis")
    tables = []
    for name, matrix in matrices.items():
        if matrix.n_runs < 2:
            raise InputError(
                f"the stability analysis needs at least 2 runs of {_arch_label(matrix)}, which has {matrix.n_runs}"
            )
        table = stability_curve(oriented(matrix), repeats=repeats, seed=seed)
        table.insert(0, "score", name)
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def _runs_needed_for_one(curve: pd.DataFrame, target: float) -> tuple[int, bool, int, float]:
    curve = curve.sort_values("n_runs")
    sizes = curve["n_runs"].to_numpy(dtype=np.int64)
    medians = curve["rank_change_median"].to_numpy(dtype=np.float64)
    max_measured = int(sizes[-1])
    reached = np.flatnonzero(medians <= target)
    if reached.size:
        return int(sizes[reached[0]]), False, max_measured, float(medians[-1])
    # Averaging n runs shrinks the noise of the mean, and with it small rank changes, as 1/sqrt(n).
    # Fit the constant on the larger half of the measured sizes, nearest the asymptotic regime.
    upper_half = sizes >= math.ceil(max_measured / 2)
    constant = float(np.mean(medians[upper_half] * np.sqrt(sizes[upper_half])))
    needed = max(max_measured + 1, math.ceil((constant / target) ** 2 - 1e-9))
    return needed, True, max_measured, float(medians[-1])


def check_rank_error_target(target: float) -> float:
    """Return ``target`` if it is a usable rank error (a fraction strictly between 0 and 1), else raise."""
    if not 0.0 < target < 1.0:
        raise InputError(f"the target rank error is a fraction of the dataset, strictly between 0 and 1; got {target}")
    return float(target)


def runs_for_rank_error(stability: pd.DataFrame, target: float) -> pd.DataFrame:
    """How many runs to average so that the median rank change is at most ``target``.

    The answer is in the sense of :func:`stability_curve`: two averages of that many independent
    runs each rank the median example within ``target`` (a fraction of the dataset) of each other.
    Beyond the measured sizes the median is extrapolated with the 1/sqrt(n) law.

    Parameters
    ----------
    stability : DataFrame
        Output of :func:`score_stability` (or a :func:`stability_curve` with a ``score`` column).
    target : float in (0, 1)
        Acceptable median absolute rank change, as a fraction of the dataset.

    Returns
    -------
    DataFrame with columns :data:`RUNS_NEEDED_COLUMNS`, one row per score: ``runs_needed`` (the
    smallest measured ``n`` reaching the target, else the extrapolated one), ``extrapolated``,
    ``max_measured_runs`` and ``rank_change_at_max`` (the median at the largest measured ``n``).
    """
    target = check_rank_error_target(target)
    rows = []
    for name, curve in stability.groupby("score", sort=False):
        needed, extrapolated, max_measured, at_max = _runs_needed_for_one(curve, target)
        rows.append(
            {
                "score": name,
                "target_rank_error": target,
                "runs_needed": needed,
                "extrapolated": extrapolated,
                "max_measured_runs": max_measured,
                "rank_change_at_max": at_max,
            }
        )
    return pd.DataFrame(rows, columns=list(RUNS_NEEDED_COLUMNS))


# ------------------------------------------------------------------------------------------
# Correlation (Figure 4)
# ------------------------------------------------------------------------------------------


def _standardised_ranks(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ranks along the last axis, centred and scaled to unit variance.

    The Spearman correlation of two rows is then the mean of their product, so correlations of many
    rows are one matrix product. Rows without variation (no ranking) come back as zeros and are
    marked invalid, so callers can leave them out of averages.
    """
    ranks = average_ranks(values)
    centred = ranks - ranks.mean(axis=-1, keepdims=True)
    scale = np.sqrt((centred**2).mean(axis=-1, keepdims=True))
    valid = scale[..., 0] > 0
    standardised = np.divide(centred, scale, out=np.zeros_like(centred), where=scale > 0)
    return standardised, valid


def _spearman_on_common(first: np.ndarray, second: np.ndarray) -> float:
    """Spearman correlation over the examples where both scores are finite."""
    common = np.isfinite(first) & np.isfinite(second)
    if common.sum() < 3:
        return np.nan
    standardised, valid = _standardised_ranks(np.vstack([first[common], second[common]]))
    if not valid.all():
        return np.nan
    return float(standardised[0] @ standardised[1] / common.sum())


def _mean_to_mean(means: np.ndarray) -> np.ndarray:
    """Spearman matrix of oriented mean scores, rows possibly with NaN for uncovered examples."""
    complete = np.isfinite(means).all(axis=1)
    standardised, _ = _standardised_ranks(np.where(complete[:, None], means, 0.0))
    result = standardised @ standardised.T / means.shape[1]
    # Only imported scores can miss examples; they are few, so a loop over their pairs is cheap.
    for row in np.flatnonzero(~complete):
        for column in range(len(means)):
            result[row, column] = result[column, row] = _spearman_on_common(means[row], means[column])
    return result


@dataclass(frozen=True)
class ScoreCorrelations:
    """Spearman correlations between oriented scores (Figure 4).

    Attributes
    ----------
    mean_to_mean : DataFrame
        Square, symmetric, over the scores with runs and then the imported single-run scores:
        corr(E[X], E[Y]).
    mean_to_run : DataFrame
        Square over the scores with runs; row X, column Y: E_Y[corr(E[X], Y)], the mean score X
        correlated with single runs of Y, averaged over runs.
    run_to_run : DataFrame
        Square, symmetric, over the scores with runs: E_r[corr(X_r, Y_r)], both scores taken from
        the same run r, averaged over runs (1 on the diagonal).
    n_runs : int
    """

    mean_to_mean: pd.DataFrame
    mean_to_run: pd.DataFrame
    run_to_run: pd.DataFrame
    n_runs: int

    @property
    def run_scores(self) -> list[str]:
        """The scores that have runs (the imported ones are only in ``mean_to_mean``)."""
        return list(self.mean_to_run.index)

    @property
    def mean_to_run_change(self) -> pd.DataFrame:
        """E_Y[corr(E[X], Y)] − corr(E[X], E[Y]): Figure 4, centre (diagonal ρ − 1)."""
        scores = self.run_scores
        return self.mean_to_run - self.mean_to_mean.loc[scores, scores]

    @property
    def run_to_run_change(self) -> pd.DataFrame:
        """E_{X,Y}[corr(X, Y)] − E_Y[corr(E[X], Y)]: Figure 4, right (diagonal 1 − ρ)."""
        return self.run_to_run - self.mean_to_run

    def table(self) -> pd.DataFrame:
        """Long form, one row per ordered pair of scores, columns :data:`CORRELATION_COLUMNS`.

        ``score_a`` is the row (the averaged score in mean-to-run), ``score_b`` the column. The
        run-based columns are NaN for pairs that involve an imported score.
        """
        names = list(self.mean_to_mean.index)
        frames = {
            "mean_to_mean": self.mean_to_mean,
            "mean_to_run": self.mean_to_run,
            "run_to_run": self.run_to_run,
            "mean_to_run_change": self.mean_to_run_change,
            "run_to_run_change": self.run_to_run_change,
        }
        pairs = pd.MultiIndex.from_product([names, names], names=["score_a", "score_b"])
        long = pd.DataFrame(index=pairs)
        for column, frame in frames.items():
            long[column] = frame.reindex(index=names, columns=names).stack(future_stack=True).reindex(pairs)
        return long.reset_index()[list(CORRELATION_COLUMNS)]


def score_correlations(
    matrices: Mapping[str, ScoreMatrix], imported: Sequence[SingleRunScore] = ()
) -> ScoreCorrelations:
    """Spearman correlations between scores, mean to mean, mean to run and run to run (Figure 4).

    Each score is multiplied by its sign first, so every correlation compares "harder" with
    "harder". Every run is ranked once; the correlations are then matrix products of standardised
    ranks, so the cost is one sort per run and score plus products over runs × examples.

    Parameters
    ----------
    matrices : mapping of score name to ScoreMatrix
        Usable scores of the same runs and examples.
    imported : sequence of SingleRunScore, optional
        Scores without runs; they join the mean-to-mean matrix only. Where one misses examples,
        its correlations use the examples it covers.

    Returns
    -------
    ScoreCorrelations
    """
    _require_scores(matrices, "the correlation analysis")
    check_same_runs(matrices)
    names = list(matrices)
    n_runs, n_examples = next(iter(matrices.values())).values.shape
    oriented_runs = np.stack([oriented(matrix) for matrix in matrices.values()])  # (scores, runs, examples)

    means = oriented_runs.mean(axis=1)
    for score in imported:
        if np.shape(score.values) != (n_examples,):
            raise InputError(f"imported score {score.name!r} has {np.size(score.values)} values for {n_examples} examples")
    imported_means = np.array([score.values * score.sign for score in imported]).reshape(len(imported), n_examples)
    all_names = names + [score.name for score in imported]
    mean_to_mean = _mean_to_mean(np.vstack([means, imported_means]))

    mean_ranks, _ = _standardised_ranks(means)
    run_ranks, run_valid = _standardised_ranks(oriented_runs)
    valid_runs = run_valid.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        # E_Y[corr(E[X], Y_r)] = corr-product of E[X]'s ranks with the average standardised run of Y.
        average_run = run_ranks.sum(axis=1) / valid_runs[:, None]
        mean_to_run = mean_ranks @ average_run.T / n_examples
        flat = run_ranks.reshape(len(names), n_runs * n_examples)
        shared_runs = run_valid.astype(np.float64) @ run_valid.T.astype(np.float64)
        run_to_run = (flat @ flat.T / n_examples) / shared_runs

    return ScoreCorrelations(
        mean_to_mean=pd.DataFrame(mean_to_mean, index=all_names, columns=all_names),
        mean_to_run=pd.DataFrame(mean_to_run, index=names, columns=names),
        run_to_run=pd.DataFrame(run_to_run, index=names, columns=names),
        n_runs=n_runs,
    )


# ------------------------------------------------------------------------------------------
# Principal components (Figure 5)
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScorePca:
    """Principal components of quantile-normalised mean scores, and PC1 as a score (Figure 5).

    Attributes
    ----------
    scores : tuple of str
        The scores, in the order of the loadings' rows.
    explained_variance_ratio : float array of shape (n_components,)
    loadings : DataFrame
        Index: scores; columns ``PC1``, ``PC2``, …; unit-norm columns. PC1 is oriented so that it
        correlates positively with difficulty (its loadings sum to a non-negative number).
    example_id : int array of shape (n_examples,)
    pc1 : float array of shape (n_examples,)
        PC1 of the mean scores: higher is harder.
    pc1_runs : float array of shape (n_runs, n_examples)
        PC1 of each run's scores, through the transform and components fitted on the means.
    stability : DataFrame
        :func:`stability_curve` of ``pc1_runs`` with ``score`` = ``"pc1"``; empty with one run.
    notes : tuple of str
    """

    scores: tuple[str, ...]
    explained_variance_ratio: np.ndarray
    loadings: pd.DataFrame
    example_id: np.ndarray
    pc1: np.ndarray
    pc1_runs: np.ndarray
    stability: pd.DataFrame
    notes: tuple[str, ...] = ()

    def components_table(self) -> pd.DataFrame:
        """One row per component: ``component``, ``explained_variance_ratio``,
        ``cumulative_ratio``, then one loading column per score."""
        table = self.loadings.T.reset_index(names="component")
        table.insert(1, "explained_variance_ratio", self.explained_variance_ratio)
        table.insert(2, "cumulative_ratio", np.cumsum(self.explained_variance_ratio))
        table.columns.name = None
        return table


def score_pca(
    matrices: Mapping[str, ScoreMatrix], repeats: int = DEFAULT_REPEATS, seed: int = 0
) -> ScorePca:
    """PCA over quantile-normalised mean scores, and the stability of PC1 used as a score.

    The oriented mean scores are mapped to a standard normal by scikit-learn's
    ``QuantileTransformer`` (as Spearman correlation does with ranks, this removes non-linear but
    monotonic differences between scores), then decomposed by PCA. Each run's oriented scores go
    through the same fitted transform and components to give a per-run PC1, whose stability is
    measured like any score's (:func:`stability_curve`).

    Parameters
    ----------
    matrices : mapping of score name to ScoreMatrix
        At least two usable scores of the same runs and examples.
    repeats, seed
        Of the stability analysis of PC1; ``seed`` also fixes the transform's subsample.

    Returns
    -------
    ScorePca
    """
    _require_scores(matrices, "the principal component analysis", minimum=2)
    check_same_runs(matrices)
    names = tuple(matrices)
    first = next(iter(matrices.values()))
    n_runs, n_examples = first.values.shape
    oriented_runs = np.stack([oriented(matrix) for matrix in matrices.values()], axis=-1)  # (runs, examples, scores)
    means = oriented_runs.mean(axis=0)

    transform = QuantileTransformer(
        n_quantiles=min(MAX_QUANTILES, n_examples), output_distribution="normal", random_state=seed
    )
    pca = PCA(n_components=min(len(names), n_examples))
    components = pca.fit_transform(transform.fit_transform(means))
    direction = 1.0 if pca.components_[0].sum() >= 0 else -1.0
    loadings = pca.components_.T.copy()
    loadings[:, 0] *= direction

    per_run = pca.transform(transform.transform(oriented_runs.reshape(n_runs * n_examples, len(names))))
    pc1_runs = direction * per_run[:, 0].reshape(n_runs, n_examples)
    notes: tuple[str, ...] = ()
    if n_runs >= 2:
        stability = stability_curve(pc1_runs, repeats=repeats, seed=seed)
        stability.insert(0, "score", PC1_NAME)
    else:
        stability = pd.DataFrame(columns=list(STABILITY_COLUMNS))
        notes = (f"PC1 stability needs at least 2 runs of {_arch_label(first)}, which has {n_runs}",)
    return ScorePca(
        scores=names,
        explained_variance_ratio=pca.explained_variance_ratio_.copy(),
        loadings=pd.DataFrame(loadings, index=list(names), columns=[f"PC{i + 1}" for i in range(loadings.shape[1])]),
        example_id=first.example_id,
        pc1=direction * components[:, 0],
        pc1_runs=pc1_runs,
        stability=stability,
        notes=notes,
    )
