"""Permutation p-values: EMP1 per example and max-T EMP2, against direct computations."""

from __future__ import annotations

from itertools import combinations
from math import comb

import numpy as np
import pytest
from scipy import stats

from gwas_models.analysis.association import two_sample_test
from gwas_models.analysis.permutation import (
    count_labelings,
    draw_labelings,
    draw_sign_flips,
    paired_t_for_signs,
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
    result = permutation_test(a, b, n_permutations, np.random.default_rng(7))
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
    result = permutation_test(a, b, n_permutations, np.random.default_rng(4))
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
    result = permutation_test(a, b, 199, np.random.default_rng(9))
    assert result.emp1.min() >= 1 / 200
    assert result.emp1.mean() == pytest.approx(0.5, abs=0.03)
    assert np.mean(result.emp1 <= 0.05) == pytest.approx(0.05, abs=0.015)


def test_smallest_reachable_p():
    assert count_labelings(5, 5) == comb(10, 5) == 252
    assert smallest_permutation_p(5, 5, 10_000) == pytest.approx(2 / 252)
    assert smallest_permutation_p(5, 6, 10_000) == pytest.approx(1 / 462)
    assert smallest_permutation_p(20, 20, 999) == pytest.approx(1 / 1000)
    assert smallest_permutation_p(4, 4, 10, paired=True) == pytest.approx(2 / 16)
    assert smallest_permutation_p(10, 10, 10, paired=True) == pytest.approx(1 / 11)


def test_bad_permutation_counts_raise():
    for bad in (0, -3, 2.5):
        with pytest.raises(InputError, match="n_permutations must be at least 1"):
            permutation_test(np.zeros((3, 2)), np.ones((3, 2)), bad)
