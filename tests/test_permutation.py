"""Permutation p-values: EMP1 per example and max-T EMP2, against direct computations."""

from __future__ import annotations

from fractions import Fraction
from itertools import combinations
from math import comb

import numpy as np
import pytest
from scipy import stats

from gwas_models.analysis.association import two_sample_test
from gwas_models.analysis.permutation import (
    count_distinct_labelings,
    count_labelings,
    draw_labelings,
    draw_sign_flips,
    paired_t_for_signs,
    permutation_plan,
    permutation_test,
    smallest_permutation_p,
    welch_t_for_labelings,
)
from gwas_models.errors import InputError


def test_welch_t_for_labelings_equals_the_two_sample_test_per_labeling():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(9, 30))
    values[2, 4] = np.nan
    labelings = draw_labelings(rng, 4, 5, 12)
    statistics = welch_t_for_labelings(values, labelings)
    for row, labeling in zip(statistics, labelings):
        in_b = labeling == 1
        expected = two_sample_test(values[~in_b], values[in_b]).t_stat
        np.testing.assert_allclose(row, expected, rtol=1e-9)


def test_paired_t_for_signs_equals_ttest_rel_of_flipped_pairs():
    rng = np.random.default_rng(1)
    differences = rng.normal(0.3, 1.0, size=(7, 25))
    signs = draw_sign_flips(rng, 7, 6)
    statistics = paired_t_for_signs(differences, signs)
    for row, pattern in zip(statistics, signs):
        flipped = differences * pattern[:, None]
        np.testing.assert_allclose(row, stats.ttest_1samp(flipped, 0.0, axis=0).statistic, rtol=1e-9)


def test_emp1_and_emp2_follow_their_definitions_for_the_drawn_labelings():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(5, 40))
    b = rng.normal(size=(6, 40))
    b[:, :3] += 2.0
    n_permutations = 300
    # 5 vs 6 runs would be enumerated (462 partitions); drawn here, to check the Monte Carlo formulas.
    result = permutation_test(a, b, n_permutations, np.random.default_rng(7), exact_limit=0)
    # The same generator state gives the same labelings (one block of draws for 40 examples).
    labelings = draw_labelings(np.random.default_rng(7), 5, 6, n_permutations)
    values = np.vstack([a, b])
    observed = np.abs(stats.ttest_ind(b, a, equal_var=False).statistic)
    permuted = np.abs(np.array([stats.ttest_ind(values[l == 1], values[l == 0], equal_var=False).statistic for l in labelings]))
    tolerance = 1 - 1e-9
    expected_emp1 = ((permuted >= observed * tolerance).sum(axis=0) + 1) / (n_permutations + 1)
    maxima = permuted.max(axis=1)
    expected_emp2 = ((maxima[:, None] >= observed * tolerance).sum(axis=0) + 1) / (n_permutations + 1)
    np.testing.assert_array_equal(result.emp1, expected_emp1)
    np.testing.assert_array_equal(result.emp2, expected_emp2)
    assert np.all(result.emp2 >= result.emp1)


def test_emp1_approaches_the_exact_permutation_p():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(4, 3)), rng.normal(0.8, 1.0, size=(4, 3))
    values = np.vstack([a, b])
    exact = []
    observed = np.abs(stats.ttest_ind(b, a, equal_var=False).statistic)
    all_t = []
    for chosen in combinations(range(8), 4):  # all 70 labelings
        in_b = np.zeros(8, bool)
        in_b[list(chosen)] = True
        all_t.append(np.abs(stats.ttest_ind(values[in_b], values[~in_b], equal_var=False).statistic))
    exact = (np.array(all_t) >= observed * (1 - 1e-9)).mean(axis=0)
    n_permutations = 20_000
    result = permutation_test(a, b, n_permutations, np.random.default_rng(4), exact_limit=0)  # drawn, not enumerated
    standard_error = np.sqrt(exact * (1 - exact) / n_permutations)
    assert np.all(np.abs(result.emp1 - exact) <= 5 * standard_error + 2 / n_permutations)


def test_paired_permutation_and_untested_examples():
    rng = np.random.default_rng(5)
    a = rng.normal(size=(6, 20))
    b = a + rng.normal(0.0, 0.3, size=(6, 20))
    b[:, 0] += 5.0
    tested = np.ones(20, bool)
    tested[7] = False
    result = permutation_test(a, b, 200, np.random.default_rng(6), paired=True, tested=tested)
    assert np.isnan(result.emp1[7]) and np.isnan(result.emp2[7])
    # Every sign pattern but all-plus and all-minus gives a smaller |t| for the shifted example.
    assert result.emp1[0] < 0.05
    assert result.n_labelings == 2**6 and result.smallest_p == pytest.approx(2 / 64)


def test_null_emp1_is_roughly_uniform_and_never_zero():
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(8, 3000)), rng.normal(size=(8, 3000))
    result = permutation_test(a, b, 199, np.random.default_rng(9), exact_limit=0)
    assert result.emp1.min() >= 1 / 200
    assert result.emp1.mean() == pytest.approx(0.5, abs=0.03)
    assert np.mean(result.emp1 <= 0.05) == pytest.approx(0.05, abs=0.015)


def test_smallest_reachable_p():
    assert count_labelings(5, 5) == comb(10, 5) == 252
    # Exact (enumerated) whatever n_permutations, up to EXACT_LIMIT distinct relabellings.
    assert smallest_permutation_p(5, 5, 10) == pytest.approx(2 / 252)
    assert smallest_permutation_p(5, 6, 10_000) == pytest.approx(1 / 462)
    assert smallest_permutation_p(4, 4, 10, paired=True) == pytest.approx(2 / 16)
    assert smallest_permutation_p(10, 10, 10, paired=True) == pytest.approx(2 / 1024)
    # Monte Carlo: the floor is 1 / (B + 1), whatever the exact test could reach.
    assert smallest_permutation_p(20, 20, 999) == pytest.approx(1 / 1000)
    assert smallest_permutation_p(14, 14, 10, paired=True) == pytest.approx(1 / 11)
    assert smallest_permutation_p(4, 4, 10, exact_limit=0) == pytest.approx(1 / 11)


def test_bad_permutation_counts_raise():
    for bad in (0, -3, 2.5):
        with pytest.raises(InputError, match="n_permutations must be at least 1"):
            permutation_test(np.zeros((3, 2)), np.ones((3, 2)), bad)


# ------------------------------------------------------------------------------------------
# Regression: relabellings under which a statistic is undefined, and exact enumeration
# ------------------------------------------------------------------------------------------


def tied_counts_with_one_separated_example(n_per_group: int = 5, n_examples: int = 300) -> tuple[np.ndarray, np.ndarray, int]:
    """Integer counts (like forgetting) of n vs n runs: most examples are 0/1 ties, one is separated.

    Examples with as many ones as zeros are constant in both groups under some relabellings (|t| =
    inf there); the separated example (index 0) has every A below every B.
    """
    rng = np.random.default_rng(11)
    values = rng.binomial(1, 0.5, size=(2 * n_per_group, n_examples)).astype(np.float64)
    values[:, 0] = np.r_[np.zeros(n_per_group - 1), 1.0, np.full(n_per_group - 2, 5.0), 6.0, 6.0]
    return values[:n_per_group], values[n_per_group:], 0


def brute_force_welch(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """|Welch t| of every labelling of the runs (all C(n, n_a) of them), written out directly:
    NaN where both groups are constant (the statistic is undefined), and the identity's |t|."""
    values = np.vstack([a, b])
    n, n_a = values.shape[0], a.shape[0]
    statistics = []
    for chosen in combinations(range(n), n - n_a):
        in_b = np.zeros(n, bool)
        in_b[list(chosen)] = True
        x, y = values[~in_b], values[in_b]
        var_x, var_y = x.var(axis=0, ddof=1), y.var(axis=0, ddof=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (y.mean(axis=0) - x.mean(axis=0)) / np.sqrt(var_x / len(x) + var_y / len(y))
        statistics.append(np.where((var_x == 0) & (var_y == 0), np.nan, np.abs(t)))
    statistics = np.array(statistics)
    var_a, var_b = a.var(axis=0, ddof=1), b.var(axis=0, ddof=1)
    observed = np.abs((b.mean(axis=0) - a.mean(axis=0)) / np.sqrt(var_a / len(a) + var_b / len(b)))
    return statistics, observed, (var_a == 0) & (var_b == 0)


@pytest.mark.parametrize("exact_limit", [10_000, 0], ids=["exact", "monte-carlo"])
def test_relabellings_that_make_an_example_constant_leave_it_out_of_the_maximum(exact_limit):
    # Regression (issue 12): a relabelling that made both groups of an example constant put
    # |t| = inf into the max-T distribution, so EMP2 of a perfectly separated example was ~0.4.
    a, b, separated = tied_counts_with_one_separated_example()
    tested = ~(np.all(a == a[0], axis=0) & np.all(b == b[0], axis=0))
    result = permutation_test(a, b, 2000, np.random.default_rng(12), tested=tested, exact_limit=exact_limit)
    assert result.exact == (exact_limit > 0)
    assert np.isfinite(result.max_t).all()  # no infinite (and no undefined) maximum
    # Nothing else reaches the separated example's |t|, so its EMP2 is its EMP1: 1 partition of 126
    # (exact), or about 2 labellings in 252 (Monte Carlo).
    assert result.emp2[separated] == result.emp1[separated]
    noise = 0 if result.exact else 5 * np.sqrt(1 / 126 / result.n_permutations) + 1 / result.n_permutations
    assert abs(result.emp1[separated] - 1 / 126) <= noise + 1e-15


# ------------------------------------------------------------------------------------------
# An independent reference in exact rational arithmetic (issue 20): ties, t = 0, separations
# ------------------------------------------------------------------------------------------

INFINITE = "inf"


def exact_t_squared(x: np.ndarray, y: np.ndarray):
    """Welch's t² of groups x and y (finite values only) as a Fraction; INFINITE when neither group
    has spread and their means differ; None when undefined (a group with fewer than two values, or
    every value equal)."""
    x = [Fraction(float(v)) for v in x if np.isfinite(v)]
    y = [Fraction(float(v)) for v in y if np.isfinite(v)]
    if len(x) < 2 or len(y) < 2:
        return None
    mean_x, mean_y = sum(x) / len(x), sum(y) / len(y)
    spread = sum((v - mean_x) ** 2 for v in x) / (len(x) - 1) / len(x) + sum((v - mean_y) ** 2 for v in y) / (len(y) - 1) / len(y)
    difference = (mean_y - mean_x) ** 2
    if spread == 0:
        return INFINITE if difference else None
    return difference / spread


def exact_paired_t_squared(d: np.ndarray):
    """Paired t² of differences d (finite only), as :func:`exact_t_squared`."""
    d = [Fraction(float(v)) for v in d if np.isfinite(v)]
    if len(d) < 2:
        return None
    mean = sum(d) / len(d)
    spread = sum((v - mean) ** 2 for v in d) / (len(d) - 1) / len(d)
    if spread == 0:
        return INFINITE if mean else None
    return mean * mean / spread


def at_least(value, reference) -> bool:
    if value == INFINITE:
        return True
    return reference != INFINITE and value >= reference


def exact_reference(statistics: list[list], observed: list) -> tuple[list, list]:
    """EMP1 and EMP2 from every relabelling's statistics (rows: relabellings, the identity included;
    columns: examples), as the module defines them: EMP1 over the relabellings where the example's
    statistic is defined; EMP2 against the largest finite statistic of each relabelling (a
    separated example: the relabellings that separate any example), never below EMP1."""
    n = len(statistics)
    maxima = [max((s for s in row if s not in (None, INFINITE)), default=None) for row in statistics]
    separating = sum(any(s == INFINITE for s in row) for row in statistics)
    emp1, emp2 = [], []
    for j, value in enumerate(observed):
        defined = [row[j] for row in statistics if row[j] is not None]
        p1 = Fraction(sum(at_least(s, value) for s in defined), len(defined))
        family = separating if value == INFINITE else sum(m is not None and m >= value for m in maxima)
        emp1.append(p1)
        emp2.append(max(Fraction(family, n), p1))
    return emp1, emp2


def tied_counts(n_a: int, n_b: int, n_examples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Forgetting-like counts 0..5 with every kind of tie: identical groups (t = 0), separated
    groups, two-level examples that relabellings separate, equal means with different spreads, and
    an example with so many missing runs that some relabellings leave a group short."""
    rng = np.random.default_rng(seed)
    a = rng.binomial(5, 0.3, size=(n_a, n_examples)).astype(np.float64)
    b = rng.binomial(5, 0.4, size=(n_b, n_examples)).astype(np.float64)
    a[:, 0], b[:, 0] = 2.0, 4.0  # separated
    a[:, 1] = np.arange(n_a) % 3
    b[:, 1] = np.resize(a[:, 1], n_b) if n_a == n_b else np.resize([0.0, 1.0, 2.0], n_b)  # same multiset when n_a == n_b
    a[:, 2] = np.resize([0.0, 1.0], n_a)  # two levels: separated by some relabellings
    b[:, 2] = np.resize([1.0, 0.0], n_b)
    a[:, 3] = np.resize([1.0, 3.0], n_a)  # mean 2 ...
    b[:, 3] = np.resize([0.0, 4.0], n_b)  # ... mean 2: t = 0 when the sizes are even
    a[2:, 4] = np.nan  # two finite runs in A, two in B: defined, but not under every relabelling
    b[2:, 4] = np.nan
    a[:2, 4], b[:2, 4] = [0.0, 1.0], [3.0, 5.0]
    return a, b


@pytest.mark.parametrize("n_a, n_b", [(4, 4), (4, 5), (5, 5)])
def test_exact_emp1_and_emp2_equal_a_rational_enumeration_of_every_labelling(n_a, n_b):
    a, b = tied_counts(n_a, n_b, 40, seed=n_a * 10 + n_b)
    values = np.vstack([a, b])
    n = n_a + n_b
    tested = two_sample_test(a, b).tested  # CONST examples aside; SEPARATED ones tested
    columns = np.flatnonzero(tested)
    statistics = []
    for chosen in combinations(range(n), n_b):  # every labelling, mirror images included
        in_b = np.zeros(n, bool)
        in_b[list(chosen)] = True
        statistics.append([exact_t_squared(values[~in_b, j], values[in_b, j]) for j in columns])
    observed = [exact_t_squared(a[:, j], b[:, j]) for j in columns]
    emp1, emp2 = exact_reference(statistics, observed)
    result = permutation_test(a, b, 100, tested=tested)
    assert result.exact
    np.testing.assert_array_equal(result.emp1[columns], [float(p) for p in emp1])
    np.testing.assert_array_equal(result.emp2[columns], [float(p) for p in emp2])
    assert result.emp1[0] == pytest.approx((2.0 if n_a == n_b else 1.0) / comb(n, n_a))  # the separation
    if n_a == n_b:
        assert result.emp1[1] == 1.0  # identical groups: t = 0
    if n_a % 2 == 0 and n_b % 2 == 0:
        assert result.emp1[3] == 1.0  # equal means, different spreads: t = 0
    assert np.isnan(result.emp1[~tested]).all()


def test_exact_paired_sign_flips_equal_a_rational_enumeration():
    rng = np.random.default_rng(21)
    a = rng.integers(0, 6, size=(6, 30)).astype(np.float64)
    b = rng.integers(0, 6, size=(6, 30)).astype(np.float64)
    b[:, 0] = a[:, 0] + 2  # constant differences: separated (2 of 64 patterns)
    b[:, 1] = a[:, 1] + np.array([1, -1, 2, -2, 0, 0])  # differences summing to 0: t = 0
    b[:, 2] = a[:, 2] + np.array([1, 1, 1, -1, -1, -1])  # |d| equal: separated by some flips, t = 0 here
    b[:, 3] = a[:, 3]  # no difference: untested
    a[4:, 4] = np.nan  # four complete pairs
    tested = two_sample_test(a, b, "paired").tested
    columns = np.flatnonzero(tested)
    differences = b - a
    statistics = [
        [exact_paired_t_squared(differences[:, j] * np.array(signs)) for j in columns]
        for signs in np.ndindex(*(2,) * 6)
        for signs in [2 * np.array(signs) - 1]
    ]
    observed = [exact_paired_t_squared(differences[:, j]) for j in columns]
    emp1, emp2 = exact_reference(statistics, observed)
    result = permutation_test(a, b, 100, paired=True, tested=tested)
    assert result.exact and not tested[3]
    np.testing.assert_array_equal(result.emp1[columns], [float(p) for p in emp1])
    np.testing.assert_array_equal(result.emp2[columns], [float(p) for p in emp2])
    assert result.emp1[0] == 2 / 64 and result.emp1[1] == 1.0 and result.emp1[2] == 1.0


def test_monte_carlo_emp1_counts_the_same_ties_exactly():
    a, b = tied_counts(10, 10, 60, seed=3)
    values = np.vstack([a, b])
    tested = two_sample_test(a, b).tested
    columns = np.flatnonzero(tested)
    n_draws = 150
    result = permutation_test(a, b, n_draws, np.random.default_rng(8), tested=tested)
    assert not result.exact  # 92,378 partitions: drawn
    labelings = draw_labelings(np.random.default_rng(8), 10, 10, n_draws)  # the same draws (one block)
    statistics = [[exact_t_squared(values[l == 0, j], values[l == 1, j]) for j in columns] for l in labelings]
    identity = [exact_t_squared(a[:, j], b[:, j]) for j in columns]
    for k, j in enumerate(columns):
        defined = [row[k] for row in statistics if row[k] is not None]
        expected = (1 + sum(at_least(s, identity[k]) for s in defined)) / (1 + len(defined))
        assert result.emp1[j] == expected, j
    assert result.emp1[1] == 1.0 and result.emp1[3] == 1.0  # t = 0


def test_emp1_is_1_when_the_groups_are_identical_whatever_the_scores():
    """Issue 20: rounding residue of t = 0 was compared with a relative tolerance: EMP1 0.60-0.96."""
    rng = np.random.default_rng(30)
    base = rng.normal(size=(6, 50)) * np.exp(rng.normal(size=50))  # continuous, any scale
    counts = rng.integers(0, 6, size=(6, 50)).astype(np.float64)
    for scores in (base, counts, np.round(base, 1), 0.1 * counts + 0.7):
        a, b = scores, scores[::-1]  # B holds A's scores in another order
        for exact_limit in (10_000, 0):
            result = permutation_test(a, b, 200, np.random.default_rng(1), exact_limit=exact_limit)
            np.testing.assert_array_equal(result.emp1, 1.0)
            np.testing.assert_array_equal(result.emp2, 1.0)
    paired = permutation_test(base, base + np.array([1.0, -1.0, 0.5, -0.5, 2.0, -2.0])[:, None], 10, paired=True)
    np.testing.assert_array_equal(paired.emp1, 1.0)


def test_exact_paired_permutations_enumerate_every_sign_flip():
    rng = np.random.default_rng(15)
    a = rng.normal(size=(5, 12))
    b = a + rng.normal(0.2, 1.0, size=(5, 12))
    b[:, 0] = a[:, 0] + np.array([1.0, 1.1, 1.2, 1.3, 1.4])  # every difference positive
    result = permutation_test(a, b, 100, rng, paired=True)
    assert result.exact and result.n_permutations == 32
    differences = b - a
    signs = np.array([[1 if (k >> i) & 1 else -1 for i in range(5)] for k in range(32)], dtype=float)
    flipped = differences[None, :, :] * signs[:, :, None]
    permuted = np.abs(flipped.mean(axis=1) / (flipped.std(axis=1, ddof=1) / np.sqrt(5)))
    observed = np.abs(differences.mean(axis=0) / (differences.std(axis=0, ddof=1) / np.sqrt(5)))
    np.testing.assert_allclose(result.emp1, (permuted >= observed * (1 - 1e-9)).mean(axis=0), rtol=1e-12)
    assert result.emp1[0] == pytest.approx(2 / 32) == result.smallest_p  # itself and its mirror


def test_the_plan_says_which_was_done_and_its_floor():
    exact = permutation_plan(4, 4, 1000)
    assert exact.exact and exact.n_relabelings == 35 and exact.smallest_p == pytest.approx(1 / 35)
    assert "exact" in exact.describe() and "35" in exact.describe()
    sampled = permutation_plan(20, 20, 999)
    assert not sampled.exact and sampled.n_relabelings == 999 and sampled.smallest_p == pytest.approx(1 / 1000)
    assert "Monte Carlo" in sampled.describe() and "0.001" in sampled.describe()
    assert permutation_plan(7, 7, 10).exact and not permutation_plan(9, 9, 10).exact  # 1716 and 24310 partitions
    assert count_distinct_labelings(4, 4) == 35 and count_distinct_labelings(4, 5) == 126
    assert count_distinct_labelings(6, 6, paired=True) == 64
