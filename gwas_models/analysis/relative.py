"""Each example relative to its architecture: the default reference of an association.

The question a user means by "which examples change difficulty when the architecture changes" is
*relative*: an example that is harder under B only because every example is harder under B (one
architecture better overall, a global shift) has not changed. Testing raw scores answers the other
question, and then a global shift surfaces as thousands of per-example hits (simulated: 69-72% of
the hits are examples that did not change). The global question has its own answer, the run-level
test of the runs' mean scores (:func:`~gwas_models.analysis.genomic_control.run_level_test`).

``normalize="relative"`` takes two steps, both needed on realistic runs:

1. **Within each run, normal scores of the ranks** (:func:`~gwas_models.analysis.association.normalize_within_runs`
   with ``"relative"``): removes the run's shift and scale and any monotone distortion of it, so a
   bounded score (confidence, whose global shift is large mid-range and nil at the ceiling) and a
   skewed one (loss) are treated alike.
2. **Between architectures, a level-matched robust centring** (:func:`center_on_level_trend`): the
   difference of each architecture's mean from the examples' common mean is centred on the median
   difference of the examples *at the same level* (binned by the mean over architectures), fitted
   on the examples that do not look changed (the half with the smallest deviations, re-fitted
   :data:`TREND_STEPS` times). This is the robust, intensity-dependent centring of microarray MA
   plots (limma's loess normalisation), in the trimmed spirit of TMM. It removes what ranks
   cannot: the displacement of every unchanged example when many examples move one way (the
   ranks of the others move the other way), and the tie-block artefacts of count scores (an
   example at the ceiling in every run has a normal score set by the size of the ceiling block,
   which a global shift changes), so heavily tied scores need no refusal here.

Measured on simulations with run shifts, scales and class effects (2,000 examples, 10 v 10 runs,
Welch's t, BH at 0.01; ``benchmarks/calibration.py`` prints the full table):

============================================  ==============  ==============  ==============
scenario                                      none            rank            relative
============================================  ==============  ==============  ==============
global shift + 50 changed, loss-like          0.55 / 0.72     1.00 / 0.03     1.00 / 0.04
global shift + 50 changed, confidence-like    0.73 / 0.46     1.00 / 0.03     1.00 / 0.04
400 of 2,000 moving one way, loss-like        0.30 / 0.00     0.72 / 0.13     0.94 / 0.02
global shift + 100 changed, tied counts       0.55 / 0.72     refused         0.68 / 0.01
============================================  ==============  ==============  ==============

(share of changed examples found / false discovery proportion, 3 studies pooled; ``rank`` refuses
heavily tied scores.)

Every function is vectorised over examples; the loops are over the few bins, groups and steps.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from gwas_models.analysis.association import constant_level, group_moments, rank_ties_reason

#: Fits of the level trend: each re-fit leaves out the examples that deviate most under the last.
TREND_STEPS = 3
#: Share of the examples the trend is fitted on (those with the smallest deviation): a median-like
#: breakdown, so up to about half the examples may change without moving the reference.
TREND_KEEP = 0.5
#: Examples per level bin, and the most bins: a bin's median is steady with 50 examples or more,
#: and 50 bins follow any smooth trend of the level.
TREND_BIN_EXAMPLES = 200
TREND_MAX_BINS = 20
#: The same for heavily tied scores (counts over eval passes; see
#: :func:`~gwas_models.analysis.association.rank_ties_reason`): their tie-block artefacts form a
#: sawtooth along the level that wide bins smooth over. Simulated (10 v 10, global shift, 100 of
#: 2,000 changed, BH at 0.05): false discovery proportion 0.057 with bins of 50, 0.103 with 200;
#: complete nulls of such counts keep the same family-wise error with either (4 v 4 to 10 v 10).
#: Continuous scores keep the wide bins: each bin's median is noise added to every example of it.
TREND_BIN_EXAMPLES_TIED = 50
TREND_MAX_BINS_TIED = 80


def center_on_level_trend(
    groups: Sequence[np.ndarray], *, tested: np.ndarray | None = None, tied: bool = False
) -> list[np.ndarray]:
    """Centre each group of runs on the robust level trend of its difference from the others.

    Parameters
    ----------
    groups : sequence of arrays (n_runs_g, n_examples)
        The (within-run normalised) scores of each architecture's runs, same examples in the same
        order; non-finite entries are missing.
    tested : bool array (n_examples,), optional
        Examples that can be tested; the trend is fitted on these only (default: every example
        with a finite mean in each group).
    tied : bool
        The score is heavily tied (:func:`is_heavily_tied` of the scores as collected): narrower
        bins (:data:`TREND_BIN_EXAMPLES_TIED`).

    Returns
    -------
    list of float arrays, the shapes of ``groups``
        ``groups[g] - trend_g(level)``, where ``level`` is each example's mean over the groups'
        means and ``trend_g`` the median, among examples of similar level that do not look
        changed, of group g's mean minus ``level``. The trends of all groups sum to zero at every
        level, so the examples' common level is unchanged.

    Notes
    -----
    An example's own scores take part in the median of its bin, among at least
    :data:`TREND_BIN_EXAMPLES` others: its influence on its own centring is at most one rank of a
    median, negligible next to its run-to-run noise.

    An example at one and the same value in every run of every group (the easiest example of every
    run has the same normal score in each) keeps its values: centring would set its groups apart
    with no spread to test the distance against, a separation made by the trend alone.
    """
    groups = [np.asarray(g, dtype=np.float64) for g in groups]
    trends = level_trends(groups, tested=tested, tied=tied)
    levels = np.vstack([constant_level(values) for values in groups])
    flat = np.isfinite(levels).all(axis=0) & (levels == levels[0]).all(axis=0)
    trends[:, flat] = 0.0
    return [values - trend for values, trend in zip(groups, trends)]


def is_heavily_tied(groups: Sequence[np.ndarray]) -> bool:
    """Whether some run of these scores (as collected) has a tied block above
    :data:`~gwas_models.analysis.association.RANK_MAX_TIED_SHARE` of its examples."""
    return rank_ties_reason(np.vstack([np.asarray(g, dtype=np.float64) for g in groups])) is not None


def level_trends(groups: Sequence[np.ndarray], *, tested: np.ndarray | None = None, tied: bool = False) -> np.ndarray:
    """The fitted trend of every group at every example, shape (n_groups, n_examples).

    See :func:`center_on_level_trend`; examples that cannot be placed (no finite mean in some
    group) get a trend of 0.
    """
    moments = [group_moments(values) for values in groups]
    means = np.vstack([m.mean for m in moments])
    spread = np.vstack([np.where(m.n > 0, m.var / np.maximum(m.n, 1), np.nan) for m in moments])
    usable = np.isfinite(means).all(axis=0)
    if tested is not None:
        usable &= np.asarray(tested, dtype=bool)
    level = np.where(usable, means.mean(axis=0), np.nan)
    deviation = means - level
    trends = np.zeros_like(means)
    if usable.sum() < 2:
        return trends
    keep = usable.copy()
    bins = (TREND_BIN_EXAMPLES_TIED, TREND_MAX_BINS_TIED) if tied else (TREND_BIN_EXAMPLES, TREND_MAX_BINS)
    for _ in range(TREND_STEPS):
        trends = _binned_median_trend(level, deviation, keep, *bins)
        keep = _least_deviating(deviation - trends, spread, usable)
    trends = _binned_median_trend(level, deviation, keep, *bins)
    trends -= trends.mean(axis=0)  # the groups' trends sum to zero: the common level stays
    return np.where(np.isfinite(trends), trends, 0.0)


def _least_deviating(residual: np.ndarray, spread: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """The :data:`TREND_KEEP` share of usable examples whose residual deviations are smallest,
    each group's residual in units of its standard error (a chi-square-like sum over groups)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        # A group without spread (constant runs) counts by its raw residual: no infinite weight.
        scale = np.where(spread > 0, spread, 1.0)
        distance = np.nansum(residual**2 / scale, axis=0)
    distance = np.where(usable & np.isfinite(distance), distance, np.inf)
    n_keep = max(2, int(np.ceil(TREND_KEEP * usable.sum())))
    keep = np.zeros(len(distance), dtype=bool)
    keep[np.argsort(distance, kind="stable")[:n_keep]] = True
    return keep & usable


def _binned_median_trend(
    level: np.ndarray, deviation: np.ndarray, keep: np.ndarray, bin_examples: int, max_bins: int
) -> np.ndarray:
    """Median deviation of each group in quantile bins of the level (over the ``keep`` examples),
    interpolated linearly between the bins' median levels at every example's level (flat beyond
    the outer bins).

    A heavily tied level (many examples at the ceiling in every run share one level) becomes one
    bin of its own: quantile edges that coincide are merged.
    """
    kept_level = level[keep]
    n_bins = int(np.clip(len(kept_level) // bin_examples, 1, max_bins))
    edges = np.unique(np.quantile(kept_level, np.linspace(0.0, 1.0, n_bins + 1)))
    inner = edges[1:-1]
    bins = np.searchsorted(inner, kept_level, side="right")  # 0 .. len(inner)
    order = np.lexsort((kept_level, bins))
    sorted_bins = bins[order]
    starts = np.searchsorted(sorted_bins, np.arange(len(inner) + 1), side="left")
    ends = np.searchsorted(sorted_bins, np.arange(len(inner) + 1), side="right")
    filled = ends > starts
    starts, ends = starts[filled], ends[filled]
    centres = _sorted_medians(kept_level[order], starts, ends)
    trends = np.empty_like(deviation)
    for g, group_deviation in enumerate(deviation):  # a loop over the few groups
        kept = group_deviation[keep]
        medians = _bin_medians(kept, bins, starts, ends)
        trends[g] = np.interp(np.where(np.isfinite(level), level, 0.0), centres, medians)
    return trends


def _bin_medians(values: np.ndarray, bins: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Median of ``values`` within each bin (bins given by their sorted start/end positions)."""
    order = np.lexsort((values, bins))
    return _sorted_medians(values[order], starts, ends)


def _sorted_medians(ordered: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Medians of the consecutive sorted runs ``ordered[start:end]``."""
    low = starts + (ends - starts - 1) // 2
    high = starts + (ends - starts) // 2
    return (ordered[low] + ordered[high]) / 2.0
