"""Permutation tests of the per-example two-sample statistic, with max-T family-wise adjustment.

Under the null hypothesis that an example's score does not depend on the architecture, the runs'
architecture labels are exchangeable. Relabelling the runs at random and recomputing Welch's t for
every example gives each example's permutation distribution; recording the largest |t| over all
examples in each relabelling gives the distribution of the maximum, which adjusts for testing every
example (Westfall & Young's single-step max-T, PLINK's ``--mperm``).

* ``EMP1`` = (1 + #{permutations with |t| >= observed |t| of this example}) / (1 + n_permutations)
* ``EMP2`` = (1 + #{permutations with max over examples of |t| >= observed |t|}) / (1 + n_permutations)

The +1 counts the observed labelling, so neither is ever 0 and both are valid p-values for a random
sample of relabellings (Phipson & Smyth 2010). For a paired design the relabelling swaps A and B
within a seed pair, i.e. flips the sign of each pair's difference.

Every relabelling is computed for all examples at once, as matrix products of a block of labellings
with the score matrix; the loop runs over blocks of permutations, never over examples.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb

import numpy as np

from gwas_models.analysis.association import as_score_matrix
from gwas_models.errors import InputError

# Relative tolerance for "at least as extreme": relabellings equivalent to the observed one (the
# identity, the A/B mirror) must count even when summation order changes the last bits of t.
_TIE_TOLERANCE = 1e-9
# Permuted statistics held at once (n_permutations_in_block * n_examples): about 16 MB per array.
_BLOCK_ELEMENTS = 2_000_000


def check_n_permutations(n_permutations: int) -> int:
    """``n_permutations`` as an int; :class:`InputError` unless it is a whole number of at least 1."""
    if int(n_permutations) != n_permutations or n_permutations < 1:
        raise InputError(f"n_permutations must be at least 1 and whole, got {n_permutations}", parameter="n_permutations")
    return int(n_permutations)


@dataclass(frozen=True)
class PermutationResult:
    """Permutation p-values of every example.

    Attributes
    ----------
    emp1 : float array (n_examples,)
        Per-example empirical p (NaN for examples left out via ``tested``).
    emp2 : float array (n_examples,)
        Max-T family-wise adjusted empirical p over the tested examples.
    n_permutations : int
    n_labelings : int
        Number of distinct relabellings the runs allow: C(n_a + n_b, n_a), or 2**n_pairs paired.
    smallest_p : float
        The smallest EMP1 this design can produce: see :func:`smallest_permutation_p`.
    """

    emp1: np.ndarray
    emp2: np.ndarray
    n_permutations: int
    n_labelings: int
    smallest_p: float


def count_labelings(n_a: int, n_b: int, paired: bool = False) -> int:
    """Distinct relabellings of the runs: C(n_a + n_b, n_a), or 2**n_a sign patterns when paired."""
    return 2**n_a if paired else comb(n_a + n_b, n_a)


def smallest_permutation_p(n_a: int, n_b: int, n_permutations: int, paired: bool = False) -> float:
    """Smallest two-sided permutation p that ``n_a`` vs ``n_b`` runs and ``n_permutations`` allow.

    An exact test cannot go below (number of relabellings as extreme as the observed) / (number of
    relabellings). The observed one always counts, and so does its mirror image whenever it is a
    valid relabelling with the same |t| (equal group sizes, or the all-signs flip of a paired
    design): 1 / C(n_a + n_b, n_a) for unequal groups, 2 / C(n, n_a) for equal groups, 2 / 2**n
    paired. A sample of ``n_permutations`` relabellings cannot go below 1 / (n_permutations + 1).
    The larger of the two bounds is returned.

    Examples
    --------
    >>> round(smallest_permutation_p(5, 5, 1000), 5)  # 2 / 252
    0.00794
    """
    labelings = count_labelings(n_a, n_b, paired)
    mirrored = paired or n_a == n_b
    exact = (2 if mirrored else 1) / labelings
    return max(exact, 1.0 / (n_permutations + 1))


def draw_labelings(rng: np.random.Generator, n_a: int, n_b: int, n_permutations: int) -> np.ndarray:
    """Random relabellings: a float array (n_permutations, n_a + n_b), 1.0 where a run goes to B."""
    base = np.concatenate([np.zeros(n_a), np.ones(n_b)])
    return rng.permuted(np.tile(base, (n_permutations, 1)), axis=1)


def draw_sign_flips(rng: np.random.Generator, n_pairs: int, n_permutations: int) -> np.ndarray:
    """Random sign patterns for a paired design: a float array (n_permutations, n_pairs) of ±1."""
    return rng.choice(np.array([-1.0, 1.0]), size=(n_permutations, n_pairs))


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
    float array (n_labelings, n_examples); NaN where a group has fewer than two finite scores.

    Notes
    -----
    Group sums, sums of squares and counts are matrix products of the labellings with the
    (per-example centred) scores, so one product serves every example. Centring first keeps the
    sum-of-squares variance formula free of cancellation.
    """
    values = as_score_matrix(values)
    labelings = np.asarray(labelings, dtype=np.float64)
    finite = np.isfinite(values)
    all_finite = bool(finite.all())
    with np.errstate(invalid="ignore", divide="ignore"):
        count_all = finite.sum(axis=0)
        filled = np.where(finite, values, 0.0)
        centred = np.where(finite, filled - filled.sum(axis=0) / count_all, 0.0)
    squares = centred * centred
    sum_all, square_all = centred.sum(axis=0), squares.sum(axis=0)
    sum_b, square_b = labelings @ centred, labelings @ squares
    if all_finite:
        n_b = labelings.sum(axis=1, keepdims=True)
        n_a = values.shape[0] - n_b
    else:
        n_b = labelings @ finite.astype(np.float64)
        n_a = count_all - n_b
    with np.errstate(invalid="ignore", divide="ignore"):
        sum_a, square_a = sum_all - sum_b, square_all - square_b
        mean_a, mean_b = sum_a / n_a, sum_b / n_b
        var_a = np.maximum(square_a - sum_a * mean_a, 0.0) / (n_a - 1)
        var_b = np.maximum(square_b - sum_b * mean_b, 0.0) / (n_b - 1)
        t_stat = (mean_b - mean_a) / np.sqrt(var_a / n_a + var_b / n_b)
    return np.where((n_a >= 2) & (n_b >= 2), t_stat, np.nan)


def paired_t_for_signs(differences: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """Paired t of every example under each sign pattern of the pair differences.

    Parameters
    ----------
    differences : array (n_pairs, n_examples)
        B - A for each seed pair; non-finite entries are missing pairs.
    signs : array (n_patterns, n_pairs) of ±1

    Returns
    -------
    float array (n_patterns, n_examples); NaN with fewer than two complete pairs.
    """
    differences = as_score_matrix(differences)
    finite = np.isfinite(differences)
    filled = np.where(finite, differences, 0.0)
    n = finite.sum(axis=0).astype(np.float64)
    square_sum = (filled * filled).sum(axis=0)  # unchanged by sign flips
    signed_sum = np.asarray(signs, dtype=np.float64) @ filled
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = signed_sum / n
        var = np.maximum(square_sum - signed_sum * mean, 0.0) / (n - 1)
        t_stat = mean / np.sqrt(var / n)
    return np.where(n >= 2, t_stat, np.nan)


def permutation_test(
    values_a: np.ndarray,
    values_b: np.ndarray,
    n_permutations: int = 1000,
    rng: np.random.Generator | None = None,
    *,
    paired: bool = False,
    tested: np.ndarray | None = None,
) -> PermutationResult:
    """Per-example (EMP1) and max-T family-wise (EMP2) permutation p-values of Welch's t.

    Parameters
    ----------
    values_a, values_b : arrays (n_runs_a, n_examples), (n_runs_b, n_examples)
        Scores of the runs of each architecture (paired: row i of A and of B share a seed).
    n_permutations : int
        Random relabellings to draw (at least 1).
    rng : numpy.random.Generator, optional
        Source of the relabellings; a fresh unseeded generator when omitted.
    paired : bool
        Flip the signs of the pair differences (paired t) instead of relabelling runs.
    tested : bool array (n_examples,), optional
        Examples to include (default: all). Excluded examples, e.g. constant ones, get NaN and do
        not enter the maximum.

    Returns
    -------
    PermutationResult
    """
    n_permutations = check_n_permutations(n_permutations)
    rng = rng if rng is not None else np.random.default_rng()
    values_a = as_score_matrix(values_a, "scores of A")
    values_b = as_score_matrix(values_b, "scores of B")
    n_a, n_b = values_a.shape[0], values_b.shape[0]
    if paired and values_a.shape != values_b.shape:
        raise InputError(f"a paired permutation test needs the same runs in both groups ({n_a} vs {n_b})")
    n_examples = values_a.shape[1]
    tested = np.ones(n_examples, dtype=bool) if tested is None else np.asarray(tested, dtype=bool)
    if paired:
        data = (values_b - values_a)[:, tested]
        statistic, identity = paired_t_for_signs, np.ones((1, n_a))
    else:
        data = np.vstack([values_a, values_b])[:, tested]
        statistic, identity = welch_t_for_labelings, np.concatenate([np.zeros(n_a), np.ones(n_b)])[None, :]
    # The observed |t| through the same arithmetic as the permuted ones, so ties compare equal.
    observed = np.abs(statistic(data, identity)[0])
    threshold = observed * (1.0 - _TIE_TOLERANCE)
    exceed = np.zeros(data.shape[1], dtype=np.int64)
    maxima = np.empty(n_permutations)
    block = max(1, _BLOCK_ELEMENTS // max(data.shape[1], 1))
    for start in range(0, n_permutations, block):
        size = min(block, n_permutations - start)
        draws = draw_sign_flips(rng, n_a, size) if paired else draw_labelings(rng, n_a, n_b, size)
        permuted = np.abs(statistic(data, draws))
        exceed += (permuted >= threshold).sum(axis=0)  # NaN compares False: never "more extreme"
        maxima[start : start + size] = np.fmax.reduce(permuted, axis=1, initial=-np.inf)
    maxima.sort()
    max_exceed = n_permutations - np.searchsorted(maxima, threshold, side="left")
    # An observed statistic that is NaN cannot be ranked: no empirical p rather than a tiny one.
    defined = ~np.isnan(observed)
    emp1 = np.full(n_examples, np.nan)
    emp2 = np.full(n_examples, np.nan)
    emp1[tested] = np.where(defined, (exceed + 1.0) / (n_permutations + 1.0), np.nan)
    emp2[tested] = np.where(defined, (max_exceed + 1.0) / (n_permutations + 1.0), np.nan)
    return PermutationResult(
        emp1=emp1,
        emp2=emp2,
        n_permutations=n_permutations,
        n_labelings=count_labelings(n_a, n_b, paired),
        smallest_p=smallest_permutation_p(n_a, n_b, n_permutations, paired),
    )
