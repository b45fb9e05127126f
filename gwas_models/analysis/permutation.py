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

Undefined statistics. A relabelling can leave an example with no statistic: both groups constant
(zero variance, |t| = inf or 0/0), or a group with fewer than two finite scores. Such an example
is set aside under that relabelling exactly as it would have been had it been observed so
(``ERRCODE`` CONST, FEW_RUNS, NAN): it takes no part in that relabelling's maximum and does not
count as "at least as extreme" for its own EMP1. Counts of a few runs (forgetting, 5 vs 5) make
examples constant under a large share of relabellings; counted as |t| = inf, they would push EMP2
of every example towards that share.

Every relabelling is computed for all examples at once, as matrix products of a block of labellings
with the score matrix; the loop runs over blocks of relabellings, never over examples.
"""

from __future__ import annotations

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

# Relative tolerance for "at least as extreme": relabellings equivalent to the observed one (the
# identity, the A/B mirror) must count even when summation order changes the last bits of t.
_TIE_TOLERANCE = 1e-9
# A group's sum of squared deviations counts as zero below this many ulps of the example's total
# sum of squares (times the number of runs): what is left of a constant group by the cancellation
# in sum(x**2) - sum(x)**2 / n, far below any real spread.
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
class _Centred:
    """Scores prepared once for any number of relabellings: per-example centred scores (0 where
    missing), their squares, the totals, the finite mask and the zero-spread tolerance."""

    centred: np.ndarray
    squares: np.ndarray
    finite: np.ndarray | None  # None: every score finite
    count: np.ndarray
    square_all: np.ndarray
    zero_spread: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray) -> "_Centred":
        finite = np.isfinite(values)
        all_finite = bool(finite.all())
        with np.errstate(invalid="ignore", divide="ignore"):
            count = finite.sum(axis=0)
            filled = values if all_finite else np.where(finite, values, 0.0)
            centred = filled - filled.sum(axis=0) / count
            if not all_finite:
                centred = np.where(finite, centred, 0.0)
        squares = centred * centred
        square_all = squares.sum(axis=0)
        zero_spread = _ZERO_SPREAD_ULPS * values.shape[0] * np.finfo(np.float64).eps * square_all
        return cls(centred, squares, None if all_finite else finite, count, square_all, zero_spread)


def _welch_t(data: _Centred, labelings: np.ndarray) -> np.ndarray:
    """|Welch t| (signed: B minus A) of every example under each labelling; NaN where undefined.

    Group sums, sums of squares and counts are matrix products of the labellings with the centred
    scores, so one product serves every example; centring first keeps the sum-of-squares variance
    formula free of cancellation.
    """
    sum_b, square_b = labelings @ data.centred, labelings @ data.squares
    if data.finite is None:
        n_b = labelings.sum(axis=1, keepdims=True)
        n_a = data.centred.shape[0] - n_b
    else:
        n_b = labelings @ data.finite.astype(np.float64)
        n_a = data.count - n_b
    with np.errstate(invalid="ignore", divide="ignore"):
        sum_a = data.centred.sum(axis=0) - sum_b
        deviations_a = np.maximum((data.square_all - square_b) - sum_a * sum_a / n_a, 0.0)
        deviations_b = np.maximum(square_b - sum_b * sum_b / n_b, 0.0)
        t_stat = (sum_b / n_b - sum_a / n_a) / np.sqrt(deviations_a / ((n_a - 1) * n_a) + deviations_b / ((n_b - 1) * n_b))
    # Undefined as it would be for observed scores: a group with fewer than two runs (FEW_RUNS,
    # NAN), or both groups constant (CONST).
    constant = (deviations_a <= data.zero_spread) & (deviations_b <= data.zero_spread)
    return np.where((n_a >= 2) & (n_b >= 2) & ~constant, t_stat, np.nan)


def _paired_t(data: _Centred, signs: np.ndarray) -> np.ndarray:
    """Paired t of every example under each sign pattern; NaN where undefined.

    ``data`` holds the differences *uncentred* (the centre of sign-flipped differences is not
    fixed): see :func:`_uncentred`.
    """
    n = data.count.astype(np.float64)
    signed_sum = signs @ data.centred
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = signed_sum / n
        deviations = np.maximum(data.square_all - signed_sum * mean, 0.0)
        t_stat = mean / np.sqrt(deviations / ((n - 1) * n))
    # Flipped differences that are all equal have zero variance (CONST): |t| = inf, undefined.
    return np.where((n >= 2) & (deviations > data.zero_spread), t_stat, np.nan)


def _uncentred(differences: np.ndarray) -> _Centred:
    """Differences prepared for :func:`_paired_t`: missing ones as 0, their sum of squares."""
    finite = np.isfinite(differences)
    filled = np.where(finite, differences, 0.0)
    squares = filled * filled
    square_all = squares.sum(axis=0)
    zero_spread = _ZERO_SPREAD_ULPS * differences.shape[0] * np.finfo(np.float64).eps * square_all
    return _Centred(filled, squares, finite, finite.sum(axis=0), square_all, zero_spread)


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
    float array (n_labelings, n_examples); NaN where the statistic is undefined: a group with
    fewer than two finite scores, or both groups constant.
    """
    return _welch_t(_Centred.of(as_score_matrix(values)), np.asarray(labelings, dtype=np.float64))


def paired_t_for_signs(differences: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """Paired t of every example under each sign pattern of the pair differences.

    Parameters
    ----------
    differences : array (n_pairs, n_examples)
        B - A for each seed pair; non-finite entries are missing pairs.
    signs : array (n_patterns, n_pairs) of ±1

    Returns
    -------
    float array (n_patterns, n_examples); NaN with fewer than two complete pairs, or when the
    flipped differences are all equal.
    """
    return _paired_t(_uncentred(as_score_matrix(differences)), np.asarray(signs, dtype=np.float64))


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
        Largest defined |t| over the tested examples in each relabelling, sorted (-inf where no
        example has a statistic under that relabelling): the max-T null distribution.
    """

    emp1: np.ndarray
    emp2: np.ndarray
    n_permutations: int
    n_labelings: int
    smallest_p: float
    exact: bool = False
    max_t: np.ndarray = field(default_factory=lambda: np.empty(0))


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
    statistic: Callable[[_Centred, np.ndarray], np.ndarray]
    if paired:
        data, statistic, identity = _uncentred((values_b - values_a)[:, tested]), _paired_t, np.ones((1, n_a))
    else:
        data, statistic = _Centred.of(np.vstack([values_a, values_b])[:, tested]), _welch_t
        identity = np.concatenate([np.zeros(n_a), np.ones(n_b)])[None, :]
    # The observed |t| through the same arithmetic as the permuted ones, so ties compare equal.
    observed = np.abs(statistic(data, identity)[0])
    threshold = observed * (1.0 - _TIE_TOLERANCE)
    exceed = np.zeros(observed.shape, dtype=np.int64)
    maxima = np.empty(plan.n_relabelings)
    block = max(1, _BLOCK_ELEMENTS // max(observed.size, 1))
    done = 0
    for relabelings in _relabelings(plan, n_a, n_b, rng, block):
        permuted = np.abs(statistic(data, relabelings))
        exceed += (permuted >= threshold).sum(axis=0)  # NaN (undefined) compares False
        maxima[done : done + len(relabelings)] = np.fmax.reduce(permuted, axis=1, initial=-np.inf)
        done += len(relabelings)
    maxima.sort()
    max_exceed = plan.n_relabelings - np.searchsorted(maxima, threshold, side="left")
    # The enumeration holds the identity; random draws get it added: (b + 1) / (B + 1).
    extra = 0.0 if plan.exact else 1.0
    # An observed statistic that is NaN cannot be ranked: no permutation p rather than a tiny one.
    defined = ~np.isnan(observed)
    emp1 = np.full(n_examples, np.nan)
    emp2 = np.full(n_examples, np.nan)
    emp1[tested] = np.where(defined, (exceed + extra) / (plan.n_relabelings + extra), np.nan)
    emp2[tested] = np.where(defined, (max_exceed + extra) / (plan.n_relabelings + extra), np.nan)
    return PermutationResult(
        emp1=emp1,
        emp2=emp2,
        n_permutations=plan.n_relabelings,
        n_labelings=count_labelings(n_a, n_b, paired),
        smallest_p=plan.smallest_p,
        exact=plan.exact,
        max_t=maxima,
    )


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
