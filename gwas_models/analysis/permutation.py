"""Permutation tests of the per-example two-sample statistic, with max-T family-wise adjustment.

Under the null hypothesis that an example's score does not depend on the architecture, the runs'
architecture labels are exchangeable. Relabelling the runs and recomputing Welch's t for every
example gives each example's permutation distribution; recording the largest |t| over all
examples in each relabelling gives the distribution of the maximum, which adjusts for testing every
example (Westfall & Young's single-step max-T, PLINK's ``--mperm``). For a paired design the
relabelling swaps A and B within a seed pair, i.e. flips the sign of each pair's difference.

Exact or Monte Carlo (:func:`permutation_plan`):

* When the runs allow at most :data:`EXACT_LIMIT` distinct relabellings
  (:func:`count_distinct_labelings`), every one is computed once and the p-values are exact:
  ``EMP1`` = #{relabellings with |t| >= observed |t|} / #relabellings, the identity included, and
  ``EMP2`` likewise against the maximum over examples. Unpaired, a relabelling is a partition of
  the runs into two groups: with equal group sizes, swapping A and B gives the same partition and
  the same |t| (the test is two-sided), so the two count once (4 vs 4 runs: 70 labellings, 35
  partitions). Paired, every sign pattern counts (2**n_pairs), the all-flipped one included.
* Otherwise ``n_permutations`` relabellings are drawn at random and the identity is counted with
  them: ``EMP1`` = (1 + #{draws with |t| >= observed}) / (1 + n_permutations), never 0 and a
  valid p-value (Phipson & Smyth 2010); its floor is 1 / (1 + n_permutations).

Ties, exactly. "At least as extreme" is |t*| >= |t|, ties included, and ties are exact: examples
whose scores lie on a grid (counts such as ``forgetting``, accuracies k / E over E eval passes, any
example with two levels: see :func:`_on_grid`) are computed in integer arithmetic held in float64
(every sum below 2**53), and two statistics
t² = N / D are compared by cross-multiplying with error-free products, so relabellings that give
the same groups, or a different grouping with the same t, tie whatever the order of the sums. An
observed t of exactly 0 (the groups have the same mean) is reached by every relabelling: EMP1 = 1.
Other scores are compared with a relative tolerance of 1e-9, and a mean difference that is
rounding residue counts as 0.

Separations and undefined statistics. A relabelling can leave both groups of an example without
spread: at different levels, a *separation* (|t| = inf, more extreme than any finite t; the observed
labelling of a ``SEPARATED`` example is one); at one level, the example is constant and was not
tested. A group with fewer than two finite scores leaves the statistic undefined. EMP1 counts over
the relabellings under which the example's statistic is defined (all of them, without missing
scores): (b + 1) / (B + 1) with b and B counted there. The max-T distribution holds, per
relabelling, the largest *finite* |t| (counts of a few runs, e.g. forgetting at 5 vs 5, separate
some example under a large share of relabellings; counted as inf, they would push EMP2 of every
example towards that share). EMP2 of a separated example is the share of relabellings that
separate any tested example; no EMP2 is below the example's EMP1.

Every relabelling is computed for all examples at once, as matrix products of a block of labellings
with the score matrix; the loop runs over blocks of relabellings, never over examples.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from itertools import combinations
from math import comb
from typing import Callable, Iterator

import numpy as np

from gwas_models.analysis.association import as_score_matrix
from gwas_models.errors import InputError

#: Largest number of distinct relabellings that are enumerated (an exact test); above it,
#: ``n_permutations`` random ones are drawn (7 vs 7 runs, 1,716 partitions: exact; 9 vs 9, 24,310:
#: Monte Carlo; paired: up to 13 pairs). The cost is that of as many random relabellings: at most
#: 10 times the default 1,000 (8 vs 8 runs, 6,435 partitions: about 6 times).
EXACT_LIMIT = 10_000

# Scores on a grid (counts, accuracies k / E, two levels; see _on_grid) are computed in whole
# numbers, exactly, while the statistic's integers stay below _EXACT_BOUND: the grid step is the
# smallest gap between scores divided by at most _GRID_DIVISIONS, every score within
# _GRID_TOLERANCE (relative) of it.
_GRID_DIVISIONS = 16
_GRID_TOLERANCE = 1e-9
_EXACT_BOUND = 2.0**53
# Other scores: a relative tolerance for "at least as extreme", so that relabellings equivalent to
# the observed one (the same groups summed in another order) count when the last bits of t differ.
_TIE_TOLERANCE = 1e-9
# ... a mean difference below this many ulps of n² times the largest |score| is rounding residue
# (groups with the same scores): t is 0 there, which every relabelling reaches.
_NOISE_ULPS = 4.0
# ... and a group's sum of squared deviations counts as zero below this many ulps of the example's
# total sum of squares (times the number of runs): what is left of a constant group by the
# cancellation in sum(x**2) - sum(x)**2 / n, far below any real spread.
_ZERO_SPREAD_ULPS = 16.0
# Permuted statistics held at once (n_relabelings_in_block * n_examples): about 16 MB per array.
_BLOCK_ELEMENTS = 2_000_000


def check_n_permutations(n_permutations: int) -> int:
    """``n_permutations`` as an int; :class:`InputError` unless it is a whole number of at least 1."""
    if int(n_permutations) != n_permutations or n_permutations < 1:
        raise InputError(f"n_permutations must be at least 1 and whole, got {n_permutations}", parameter="n_permutations")
    return int(n_permutations)


# --------------------------------------------------------------------------------------------
# How many relabellings, and which
# --------------------------------------------------------------------------------------------


def count_labelings(n_a: int, n_b: int, paired: bool = False) -> int:
    """Relabellings of the runs: C(n_a + n_b, n_a), or 2**n_a sign patterns when paired."""
    return 2**n_a if paired else comb(n_a + n_b, n_a)


def count_distinct_labelings(n_a: int, n_b: int, paired: bool = False) -> int:
    """Relabellings an exact test enumerates: partitions of the runs into groups of n_a and n_b
    (the A/B swap of equal groups counted once: same partition, same |t|), or every sign pattern
    (2**n_pairs) when paired.

    Examples
    --------
    >>> count_distinct_labelings(4, 4), count_distinct_labelings(4, 5), count_distinct_labelings(4, 4, paired=True)
    (35, 126, 16)
    """
    if paired:
        return 2**n_a
    total = comb(n_a + n_b, n_a)
    return total // 2 if n_a == n_b else total


@dataclass(frozen=True)
class PermutationPlan:
    """What a permutation test of n_a vs n_b runs does.

    Attributes
    ----------
    exact : bool
        Every distinct relabelling is enumerated (else random ones are drawn).
    n_relabelings : int
        Relabellings computed: every distinct one (exact), or the random draws (Monte Carlo).
    n_distinct : int
        Distinct relabellings the runs allow (:func:`count_distinct_labelings`).
    smallest_p : float
        The smallest EMP1 the test can give: 1 / n_distinct exact (paired: 2 / 2**n, since the
        all-flipped pattern has the observed |t| too), 1 / (n_relabelings + 1) Monte Carlo.
    paired : bool
    """

    exact: bool
    n_relabelings: int
    n_distinct: int
    smallest_p: float
    paired: bool = False

    def describe(self) -> str:
        """One line for the ``.log``: exact or Monte Carlo, how many relabellings, the floor of p."""
        kind = "sign flips" if self.paired else "relabellings"
        if self.exact:
            counted = "every sign pattern" if self.paired else "each partition of the runs once"
            return (
                f"exact permutation p: all {self.n_distinct} distinct {kind} enumerated ({counted}); "
                f"smallest reachable p {self.smallest_p:.3g}"
            )
        return (
            f"Monte Carlo permutation p: {self.n_relabelings} random {kind} of {self.n_distinct} distinct, "
            f"identity counted, (b+1)/(B+1); smallest reachable p (floor) {self.smallest_p:.3g}"
        )


def permutation_plan(
    n_a: int, n_b: int, n_permutations: int, paired: bool = False, exact_limit: int = EXACT_LIMIT
) -> PermutationPlan:
    """Exact enumeration when the runs allow at most ``exact_limit`` distinct relabellings, else
    ``n_permutations`` random ones.

    Examples
    --------
    >>> permutation_plan(4, 4, 1000).describe()
    'exact permutation p: all 35 distinct relabellings enumerated (each partition of the runs once); smallest reachable p 0.0286'
    """
    n_distinct = count_distinct_labelings(n_a, n_b, paired)
    if n_distinct <= exact_limit:
        smallest = 2.0 / n_distinct if paired else 1.0 / n_distinct
        return PermutationPlan(True, n_distinct, n_distinct, smallest, paired)
    n_permutations = check_n_permutations(n_permutations)
    return PermutationPlan(False, n_permutations, n_distinct, 1.0 / (n_permutations + 1), paired)


def smallest_permutation_p(
    n_a: int, n_b: int, n_permutations: int, paired: bool = False, exact_limit: int = EXACT_LIMIT
) -> float:
    """Smallest EMP1 that ``n_a`` vs ``n_b`` runs and ``n_permutations`` allow (a floor, attained
    by an example whose observed |t| no other relabelling reaches); see :func:`permutation_plan`.

    Examples
    --------
    >>> round(smallest_permutation_p(5, 5, 1000), 5)  # exact: 1 / 126 partitions
    0.00794
    >>> smallest_permutation_p(20, 20, 999)  # Monte Carlo: 1 / (999 + 1)
    0.001
    """
    return permutation_plan(n_a, n_b, n_permutations, paired, exact_limit).smallest_p


def enumerate_labelings(n_a: int, n_b: int) -> np.ndarray:
    """Every partition of the runs once: a float array (n_partitions, n_a + n_b), 1.0 where a run
    goes to B, the identity (A first, then B) in the first row. With equal groups only the
    partitions that keep run 0 in A are listed (the others are their A/B mirror images)."""
    n = n_a + n_b
    first = 1 if n_a == n_b else 0
    chosen = np.array(list(combinations(range(first, n), n_b)), dtype=np.int64).reshape(-1, n_b)
    labelings = np.zeros((len(chosen), n))
    np.put_along_axis(labelings, chosen, 1.0, axis=1)
    return labelings[::-1]  # combinations come in lexicographic order: the identity is last


def enumerate_sign_flips(n_pairs: int) -> np.ndarray:
    """Every sign pattern of a paired design: a float array (2**n_pairs, n_pairs) of ±1, all +1 first."""
    bits = (np.arange(2**n_pairs)[:, None] >> np.arange(n_pairs)) & 1
    return 1.0 - 2.0 * bits


def draw_labelings(rng: np.random.Generator, n_a: int, n_b: int, n_permutations: int) -> np.ndarray:
    """Random relabellings: a float array (n_permutations, n_a + n_b), 1.0 where a run goes to B."""
    base = np.concatenate([np.zeros(n_a), np.ones(n_b)])
    return rng.permuted(np.tile(base, (n_permutations, 1)), axis=1)


def draw_sign_flips(rng: np.random.Generator, n_pairs: int, n_permutations: int) -> np.ndarray:
    """Random sign patterns for a paired design: a float array (n_permutations, n_pairs) of ±1."""
    return rng.choice(np.array([-1.0, 1.0]), size=(n_permutations, n_pairs))


# --------------------------------------------------------------------------------------------
# Statistics under relabellings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scores:
    """Scores of some examples, prepared once for any number of relabellings.

    ``exact``: every value is a whole number (the scores shifted to start at 0, unpaired, and
    scaled by a power of two; :func:`_on_grid`), small enough that every sum, product and square
    below is an exact integer in float64. Otherwise the scores centred per example (unpaired) or
    as they are (paired differences). Missing scores are 0, with their mask in ``finite``.
    """

    values: np.ndarray
    squares: np.ndarray
    finite: np.ndarray | None  # None: every score finite
    count: np.ndarray
    total: np.ndarray
    square_total: np.ndarray
    exact: bool
    noise: np.ndarray  # float only: a mean difference below this is rounding residue
    zero_spread: np.ndarray  # float only: a sum of squared deviations below this is zero

    @classmethod
    def of(cls, values: np.ndarray, exact: bool, centre: bool) -> "_Scores":
        finite = np.isfinite(values)
        all_finite = bool(finite.all())
        with np.errstate(invalid="ignore", divide="ignore"):
            count = finite.sum(axis=0)
            filled = values if all_finite else np.where(finite, values, 0.0)
            if centre and not exact:
                filled = filled - filled.sum(axis=0) / count
                if not all_finite:
                    filled = np.where(finite, filled, 0.0)
        squares = filled * filled
        square_total = squares.sum(axis=0)
        n_runs = values.shape[0]
        eps = np.finfo(np.float64).eps
        # A sum of n terms of at most |x|max is off by at most n² eps |x|max; centred sums of
        # squares below _ZERO_SPREAD_ULPS * n * eps of the total are what cancellation leaves of 0.
        largest = np.abs(filled).max(axis=0, initial=0.0)
        noise = _NOISE_ULPS * n_runs * n_runs * eps * largest
        zero_spread = _ZERO_SPREAD_ULPS * n_runs * eps * square_total
        return cls(
            filled, squares, None if all_finite else finite, count, filled.sum(axis=0), square_total, exact, noise, zero_spread
        )

    def columns(self, index: np.ndarray) -> "_Scores":
        """The same scores restricted to the examples ``index``."""
        finite = None if self.finite is None else self.finite[:, index]
        return _Scores(
            self.values[:, index],
            self.squares[:, index],
            finite,
            self.count[index],
            self.total[index],
            self.square_total[index],
            self.exact,
            self.noise[index],
            self.zero_spread[index],
        )


@dataclass(frozen=True)
class _Statistic:
    """t² of every example under each relabelling, as ``numerator / denominator``.

    Exact scores give both as exact whole numbers, so two statistics compare exactly by cross
    multiplication (:func:`_at_least`). A zero denominator with a positive numerator is a
    separation (both groups without spread, different levels: t² = inf); 0 / 0 and groups with
    fewer than two finite scores are undefined (``defined`` False).
    """

    signed: np.ndarray  # has the sign of t (B minus A)
    numerator: np.ndarray
    denominator: np.ndarray
    defined: np.ndarray

    @property
    def square(self) -> np.ndarray:
        """t² (inf for a separation, NaN where undefined)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.defined, self.numerator / self.denominator, np.nan)

    @property
    def t(self) -> np.ndarray:
        """t itself: signed, ±inf for a separation, NaN where undefined."""
        return np.copysign(np.sqrt(self.square), self.signed)


def _two_group_statistic(data: _Scores, labelings: np.ndarray) -> _Statistic:
    """Welch's t² of every example under each labelling (1.0: the run goes to B).

    Group sums, sums of squares and counts are matrix products of the labellings with the scores,
    so one product serves every example. With exact scores, t² = E² (n_a - 1)(n_b - 1) /
    (W_a (n_b - 1) n_b² + W_b (n_a - 1) n_a²), where E = n_a S_b - n_b S_a and W = n Q - S² (S, Q:
    a group's sum and sum of squares) are whole numbers; otherwise the centred form, whose sums of
    squares have no cancellation.
    """
    sum_b, square_b = labelings @ data.values, labelings @ data.squares
    if data.finite is None:
        n_b = labelings.sum(axis=1, keepdims=True)
        n_a = data.values.shape[0] - n_b
    else:
        n_b = labelings @ data.finite.astype(np.float64)
        n_a = data.count - n_b
    sum_a, square_a = data.total - sum_b, data.square_total - square_b
    with np.errstate(invalid="ignore", divide="ignore"):
        if data.exact:
            signed = n_a * sum_b - n_b * sum_a
            spread_a = n_a * square_a - sum_a * sum_a
            spread_b = n_b * square_b - sum_b * sum_b
            numerator = signed * signed * ((n_a - 1.0) * (n_b - 1.0))
            denominator = spread_a * ((n_b - 1.0) * n_b * n_b) + spread_b * ((n_a - 1.0) * n_a * n_a)
        else:
            signed = sum_b / n_b - sum_a / n_a
            signed = np.where(np.abs(signed) <= data.noise, 0.0, signed)
            deviations_a = np.maximum(square_a - sum_a * sum_a / n_a, 0.0)
            deviations_b = np.maximum(square_b - sum_b * sum_b / n_b, 0.0)
            deviations_a = np.where(deviations_a <= data.zero_spread, 0.0, deviations_a)
            deviations_b = np.where(deviations_b <= data.zero_spread, 0.0, deviations_b)
            numerator = signed * signed
            denominator = deviations_a / ((n_a - 1.0) * n_a) + deviations_b / ((n_b - 1.0) * n_b)
    defined = (n_a >= 2) & (n_b >= 2) & ((numerator > 0) | (denominator > 0))
    return _Statistic(signed, numerator, denominator, defined)


def _paired_statistic(data: _Scores, signs: np.ndarray) -> _Statistic:
    """Paired t² of every example under each sign pattern of the pair differences.

    ``data`` holds the differences *uncentred* (the centre of sign-flipped differences is not
    fixed). Exact: t² = T² (n - 1) / (n Q - T²), T the signed sum and Q the sum of squares.
    """
    n = data.count.astype(np.float64)
    signed_sum = signs @ data.values
    with np.errstate(invalid="ignore", divide="ignore"):
        if data.exact:
            signed = signed_sum
            numerator = signed * signed * (n - 1.0)
            denominator = n * data.square_total - signed * signed
        else:
            signed = np.where(np.abs(signed_sum) <= data.noise, 0.0, signed_sum / n)
            deviations = np.maximum(data.square_total - signed_sum * signed, 0.0)
            deviations = np.where(deviations <= data.zero_spread, 0.0, deviations)
            numerator = signed * signed
            denominator = deviations / ((n - 1.0) * n)
    defined = (n >= 2) & ((numerator > 0) | (denominator > 0))
    return _Statistic(signed, numerator, denominator, defined)


def _split(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Veltkamp's split of doubles into two halves of 26 bits: x = high + low exactly."""
    scaled = 134217729.0 * x  # 2**27 + 1
    high = scaled - (scaled - x)
    return high, x - high


def _two_product(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dekker's error-free product: x * y = product + error exactly (finite, no overflow)."""
    product = x * y
    x_high, x_low = _split(x)
    y_high, y_low = _split(y)
    error = ((x_high * y_high - product) + x_high * y_low + x_low * y_high) + x_low * y_low
    return product, error


def _at_least(permuted: _Statistic, square: np.ndarray, observed: _Statistic, exact: bool) -> np.ndarray:
    """Where a permuted t² (``square``, of ``permuted``) is at least the observed one (undefined
    ones excluded by the caller).

    Exact scores: t² = N / D is rounded once, so unequal floats order the statistics as they are;
    equal floats, ties or not, are decided by ``N_p D_o >= N_o D_p`` from error-free products, so
    equal statistics tie whatever the order of their sums. Otherwise t² against the observed t²
    less a relative :data:`_TIE_TOLERANCE` (a mean difference that is rounding residue was set to
    0, so t = 0 ties with everything).
    """
    observed_square = observed.square
    if not exact:
        with np.errstate(invalid="ignore"):
            return square >= observed_square * (1.0 - 2.0 * _TIE_TOLERANCE)
    with np.errstate(invalid="ignore"):
        above = square > observed_square
        rows, columns = np.nonzero(square == observed_square)
    left, left_error = _two_product(permuted.numerator[rows, columns], observed.denominator[columns])
    right, right_error = _two_product(observed.numerator[columns], permuted.denominator[rows, columns])
    above[rows, columns] = (left > right) | ((left == right) & (left_error >= right_error))
    return above


def _on_grid(values: np.ndarray, shift: bool) -> tuple[np.ndarray, np.ndarray]:
    """Which examples can be computed exactly, and their scores as whole numbers.

    Welch's t does not change when an example's scores are shifted and scaled (paired t: scaled),
    so scores on a grid, ``low + k * step`` (counts; accuracies k / E over E eval passes; any
    example with two levels), become the whole numbers k: ``step`` is the smallest gap between the
    example's distinct scores (paired: the smallest nonzero |difference|) divided by the first
    q = 1, ..., :data:`_GRID_DIVISIONS` that puts every score within 1e-9 (relative) of the grid.
    An example qualifies when one does and the statistic's integers stay below 2**53
    (:func:`_two_group_statistic`: n**6 k**2 / 64 and n**5 k**2 / 2 for n runs and scores up to k;
    paired: n**3 k**2). Scores that are within 1e-9 of the grid without being on it (k / E in
    binary) are tested as the grid values they stand for.

    Returns
    -------
    exact : bool array (n_examples,)
    whole : float array (n_runs, n_examples)
        The whole-number scores (NaN where missing); meaningful where ``exact``.
    """
    finite = np.isfinite(values)
    filled = np.where(finite, values, np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # columns without a finite score
        if shift:
            low = np.nanmin(filled, axis=0)
            offsets = filled - low
            ordered = np.sort(filled, axis=0)  # NaN last
            gaps = np.diff(ordered, axis=0)
            step = np.nanmin(np.where(gaps > 0, gaps, np.nan), axis=0)
        else:
            offsets = filled
            magnitude = np.abs(filled)
            step = np.nanmin(np.where(magnitude > 0, magnitude, np.nan), axis=0)
    step = np.where(np.isfinite(step) & (step > 0), step, 1.0)  # one level (or none): all 0
    ratios = np.where(finite, offsets / step, 0.0)
    divisions = np.zeros(values.shape[1])
    for division in range(1, _GRID_DIVISIONS + 1):  # a loop over grid divisions, each over every example
        undecided = divisions == 0
        if not undecided.any():
            break
        scaled = ratios[:, undecided] * division
        on_grid = (np.abs(scaled - np.round(scaled)) <= _GRID_TOLERANCE * np.maximum(np.abs(scaled), 1.0)).all(axis=0)
        divisions[np.flatnonzero(undecided)[on_grid]] = division
    exact = (divisions > 0) & np.isfinite(ratios).all(axis=0)
    whole = np.where(finite, np.round(ratios * np.where(exact, divisions, 0.0)), np.nan)
    n = finite.sum(axis=0).astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        largest = np.nan_to_num(np.nanmax(np.abs(whole), axis=0), nan=0.0)
    if shift:
        bound = np.maximum(n**6 * largest**2 / 64.0, n**5 * largest**2 / 2.0)
    else:
        bound = n**3 * largest**2
    exact &= bound < _EXACT_BOUND
    return exact, whole


@dataclass(frozen=True)
class _Part:
    """The examples computed one way (exact or not): their indices among those tested, their
    scores and the observed statistic."""

    index: np.ndarray
    data: _Scores
    observed: _Statistic


def _parts(values: np.ndarray, paired: bool, statistic: Callable[[_Scores, np.ndarray], _Statistic], identity: np.ndarray) -> list[_Part]:
    """The tested examples split into those computed exactly and the others (either may be empty)."""
    exact, whole = _on_grid(values, shift=not paired)
    parts = []
    for is_exact, chosen in ((True, exact), (False, ~exact)):
        index = np.flatnonzero(chosen)
        if len(index):
            data = _Scores.of((whole if is_exact else values)[:, index], exact=is_exact, centre=not paired)
            parts.append(_Part(index, data, _first(statistic(data, identity))))
    return parts


def _first(statistic: _Statistic) -> _Statistic:
    """The statistic of the first (only) relabelling, as arrays over examples."""
    return _Statistic(*(np.broadcast_to(getattr(statistic, name), statistic.defined.shape)[0] for name in ("signed", "numerator", "denominator", "defined")))


def _statistic_of_all(values: np.ndarray, patterns: np.ndarray, paired: bool) -> np.ndarray:
    """t of every example under each relabelling, exact examples and the others alike."""
    statistic = _paired_statistic if paired else _two_group_statistic
    t = np.full((len(patterns), values.shape[1]), np.nan)
    identity = patterns[:1]
    for part in _parts(values, paired, statistic, identity):
        t[:, part.index] = statistic(part.data, patterns).t
    return t


def welch_t_for_labelings(values: np.ndarray, labelings: np.ndarray) -> np.ndarray:
    """Welch's t (B minus A) of every example under each relabelling of the runs.

    Parameters
    ----------
    values : array (n_runs, n_examples)
        Scores of all runs; non-finite entries are missing.
    labelings : array (n_labelings, n_runs)
        1.0 where the run belongs to B, 0.0 where to A.

    Returns
    -------
    float array (n_labelings, n_examples); ±inf where both groups are constant at different
    levels (a separation), NaN where the statistic is undefined: a group with fewer than two finite
    scores, or every score equal.
    """
    labelings = np.asarray(labelings, dtype=np.float64)
    if len(labelings) == 0:
        return np.empty((0, as_score_matrix(values).shape[1]))
    return _statistic_of_all(as_score_matrix(values), labelings, paired=False)


def paired_t_for_signs(differences: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """Paired t of every example under each sign pattern of the pair differences.

    Parameters
    ----------
    differences : array (n_pairs, n_examples)
        B - A for each seed pair; non-finite entries are missing pairs.
    signs : array (n_patterns, n_pairs) of ±1

    Returns
    -------
    float array (n_patterns, n_examples); ±inf where the flipped differences are all equal and not
    0 (a separation), NaN with fewer than two complete pairs or differences all 0.
    """
    signs = np.asarray(signs, dtype=np.float64)
    if len(signs) == 0:
        return np.empty((0, as_score_matrix(differences).shape[1]))
    return _statistic_of_all(as_score_matrix(differences), signs, paired=True)


# --------------------------------------------------------------------------------------------
# The test
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PermutationResult:
    """Permutation p-values of every example.

    Attributes
    ----------
    emp1 : float array (n_examples,)
        Per-example permutation p (NaN for examples left out via ``tested``).
    emp2 : float array (n_examples,)
        Max-T family-wise adjusted permutation p over the tested examples.
    n_permutations : int
        Relabellings computed: every distinct one when ``exact``, else the random draws.
    n_labelings : int
        Relabellings the runs allow: C(n_a + n_b, n_a), or 2**n_pairs paired.
    smallest_p : float
        The smallest EMP1 this test can give (see :class:`PermutationPlan`).
    exact : bool
        Every distinct relabelling was enumerated (exact p), else Monte Carlo.
    max_t : float array (n_permutations,)
        Largest finite |t| over the tested examples in each relabelling, sorted (-inf where no
        example has a finite statistic under that relabelling): the max-T null distribution.
    n_separating : int
        Relabellings (of those computed) that separate at least one tested example (|t| = inf):
        the max-T count of a separated example.
    """

    emp1: np.ndarray
    emp2: np.ndarray
    n_permutations: int
    n_labelings: int
    smallest_p: float
    exact: bool = False
    max_t: np.ndarray = field(default_factory=lambda: np.empty(0))
    n_separating: int = 0


def permutation_test(
    values_a: np.ndarray,
    values_b: np.ndarray,
    n_permutations: int = 1000,
    rng: np.random.Generator | None = None,
    *,
    paired: bool = False,
    tested: np.ndarray | None = None,
    exact_limit: int = EXACT_LIMIT,
) -> PermutationResult:
    """Per-example (EMP1) and max-T family-wise (EMP2) permutation p-values of Welch's t.

    Parameters
    ----------
    values_a, values_b : arrays (n_runs_a, n_examples), (n_runs_b, n_examples)
        Scores of the runs of each architecture (paired: row i of A and of B share a seed).
    n_permutations : int
        Random relabellings to draw (at least 1) when the test is not exact.
    rng : numpy.random.Generator, optional
        Source of the random relabellings; a fresh unseeded generator when omitted.
    paired : bool
        Flip the signs of the pair differences (paired t) instead of relabelling runs.
    tested : bool array (n_examples,), optional
        Examples to include (default: all). Excluded examples, e.g. constant ones, get NaN and do
        not enter the maximum.
    exact_limit : int
        Enumerate every distinct relabelling when there are at most this many (default
        :data:`EXACT_LIMIT`; 0 always draws).

    Returns
    -------
    PermutationResult
    """
    n_permutations = check_n_permutations(n_permutations)
    values_a = as_score_matrix(values_a, "scores of A")
    values_b = as_score_matrix(values_b, "scores of B")
    n_a, n_b = values_a.shape[0], values_b.shape[0]
    if paired and values_a.shape != values_b.shape:
        raise InputError(f"a paired permutation test needs the same runs in both groups ({n_a} vs {n_b})")
    plan = permutation_plan(n_a, n_b, n_permutations, paired, exact_limit)
    n_examples = values_a.shape[1]
    tested = np.ones(n_examples, dtype=bool) if tested is None else np.asarray(tested, dtype=bool)
    statistic: Callable[[_Scores, np.ndarray], _Statistic]
    if paired:
        values, statistic, identity = (values_b - values_a)[:, tested], _paired_statistic, np.ones((1, n_a))
    else:
        values, statistic = np.vstack([values_a, values_b])[:, tested], _two_group_statistic
        identity = np.concatenate([np.zeros(n_a), np.ones(n_b)])[None, :]
    # The observed statistic through the same arithmetic as the permuted ones, so ties compare equal.
    parts = _parts(values, paired, statistic, identity)
    n_tested = values.shape[1]
    exceed = np.zeros(n_tested, dtype=np.int64)
    defined = np.zeros(n_tested, dtype=np.int64)
    maxima = np.empty(plan.n_relabelings)
    separating = 0
    block = max(1, _BLOCK_ELEMENTS // max(n_tested, 1))
    done = 0
    for relabelings in _relabelings(plan, n_a, n_b, rng, block):
        block_max = np.full(len(relabelings), -np.inf)
        block_separates = np.zeros(len(relabelings), dtype=bool)
        for part in parts:
            permuted = statistic(part.data, relabelings)
            square = permuted.square
            exceed[part.index] += (permuted.defined & _at_least(permuted, square, part.observed, part.data.exact)).sum(axis=0)
            defined[part.index] += permuted.defined.sum(axis=0)
            infinite = np.isinf(square)  # a separation (NaN, undefined, is neither)
            block_separates |= infinite.any(axis=1)
            block_max = np.fmax(block_max, np.fmax.reduce(np.where(infinite, np.nan, square), axis=1, initial=-np.inf))
        maxima[done : done + len(relabelings)] = block_max
        separating += int(block_separates.sum())
        done += len(relabelings)
    maxima.sort()
    # The enumeration holds the identity; random draws get it added: (b + 1) / (B + 1).
    extra = 0.0 if plan.exact else 1.0
    observed = np.full(n_tested, np.nan)
    threshold = np.full(n_tested, np.nan)
    for part in parts:
        observed[part.index] = part.observed.square
        # Exact statistics are rounded once, so equal ones are equal floats.
        threshold[part.index] = observed[part.index] * (1.0 if part.data.exact else 1.0 - 2.0 * _TIE_TOLERANCE)
    # An observed statistic that is undefined cannot be ranked: no permutation p rather than a tiny one.
    ranked = ~np.isnan(observed)
    with np.errstate(invalid="ignore", divide="ignore"):
        emp1 = np.where(ranked, (exceed + extra) / (defined + extra), np.nan)
        at_least_max = plan.n_relabelings - np.searchsorted(maxima, np.where(ranked, threshold, np.inf), side="left")
        family = np.where(np.isinf(observed), separating, at_least_max)
        # Relabellings that separate the example itself count for its EMP1 but not in the maxima
        # of finite |t|: a family-wise p is never below the example's own.
        emp2 = np.where(ranked, np.maximum((family + extra) / (plan.n_relabelings + extra), emp1), np.nan)
    emp1_all = np.full(n_examples, np.nan)
    emp2_all = np.full(n_examples, np.nan)
    emp1_all[tested], emp2_all[tested] = emp1, emp2
    return PermutationResult(
        emp1=emp1_all,
        emp2=emp2_all,
        n_permutations=plan.n_relabelings,
        n_labelings=count_labelings(n_a, n_b, paired),
        smallest_p=plan.smallest_p,
        exact=plan.exact,
        max_t=_roots(maxima),
        n_separating=separating,
    )


def _roots(squares: np.ndarray) -> np.ndarray:
    """|t| from sorted t² (-inf, where no example had a finite statistic, kept)."""
    with np.errstate(invalid="ignore"):
        return np.where(squares == -np.inf, -np.inf, np.sqrt(squares))


def _relabelings(
    plan: PermutationPlan, n_a: int, n_b: int, rng: np.random.Generator | None, block: int
) -> Iterator[np.ndarray]:
    """The relabellings of a plan, in blocks of at most ``block`` rows: every distinct one, or
    random draws (a fresh unseeded generator when ``rng`` is None)."""
    if plan.exact:
        every = enumerate_sign_flips(n_a) if plan.paired else enumerate_labelings(n_a, n_b)
        for start in range(0, len(every), block):
            yield every[start : start + block]
        return
    rng = rng if rng is not None else np.random.default_rng()
    for start in range(0, plan.n_relabelings, block):
        size = min(block, plan.n_relabelings - start)
        yield draw_sign_flips(rng, n_a, size) if plan.paired else draw_labelings(rng, n_a, n_b, size)
