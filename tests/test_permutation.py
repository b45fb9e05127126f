"""Permutation p-values: EMP1 per example and max-T EMP2, against direct computations."""

from __future__ import annotations

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


def test_exact_emp1_and_emp2_equal_a_brute_force_enumeration_at_4_vs_4():
    # 4 vs 4 runs: 70 labellings, 35 partitions (A/B swapped gives the same |t|), enumerated once each.
    a, b, separated = tied_counts_with_one_separated_example(4, 60)
    rng = np.random.default_rng(13)
    a[:, 1:30] += rng.normal(0, 1, (4, 29))  # some continuous examples beside the ties
    b[:, 1:30] += rng.normal(0.5, 1, (4, 29))
    statistics, observed, constant = brute_force_welch(a, b)
    tested = ~constant
    result = permutation_test(a, b, 1000, np.random.default_rng(14), tested=tested)
    assert result.exact and result.n_permutations == 35 and result.n_labelings == 70
    extreme = statistics[:, tested] >= observed[tested] * (1 - 1e-9)  # NaN (undefined) never counts
    np.testing.assert_allclose(result.emp1[tested], extreme.mean(axis=0), rtol=1e-12)
    maxima = np.fmax.reduce(np.where(np.isnan(statistics[:, tested]), -np.inf, statistics[:, tested]), axis=1)
    expected_emp2 = (maxima[:, None] >= observed[tested] * (1 - 1e-9)).mean(axis=0)
    np.testing.assert_allclose(result.emp2[tested], expected_emp2, rtol=1e-12)
    # The smallest reachable p is a floor, and the perfectly separated example attains it.
    assert result.smallest_p == pytest.approx(1 / 35)
    assert result.emp1[separated] == pytest.approx(result.smallest_p) and np.nanmin(result.emp1) >= result.smallest_p


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
