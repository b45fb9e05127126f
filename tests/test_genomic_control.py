"""λGC against its relabelling null, and the run-level test of the global shift."""

from __future__ import annotations

from itertools import combinations, product

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.oneway import anova_oneway

from gwas_models.analysis.association import two_sample_test, welch_anova
from gwas_models.analysis.genomic_control import (
    genomic_control_lambdas,
    lambda_null,
    lambda_null_oneway,
    run_level_anova,
    run_level_test,
)
from gwas_models.analysis.multitest import genomic_control_lambda


def _runs(seed: int, n_runs: int, n_examples: int = 300, shift_sd: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n_runs, n_examples)) + rng.normal(0.0, shift_sd, (n_runs, 1))


def test_lambdas_of_many_sets_equal_lambda_of_each():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=(5, 101)) ** 1.3
    p[1, :50] = np.nan
    p[2, 0] = 0.0  # underflowed: an infinite statistic
    expected = [genomic_control_lambda(row) for row in p]
    np.testing.assert_allclose(genomic_control_lambdas(p), expected, rtol=1e-12)
    assert np.isnan(genomic_control_lambdas(np.full((1, 3), np.nan))[0])


def test_exact_null_of_a_paired_design_is_every_sign_pattern():
    values = _runs(1, 8)
    a, b = values[:4], values[4:]
    null = lambda_null(a, b, "paired")
    lambdas = []
    for signs in product((1.0, -1.0), repeat=4):  # swap A and B within the pairs where -1
        flip = np.array(signs)[:, None] < 0
        lambdas.append(genomic_control_lambda(stats.ttest_rel(np.where(flip, a, b), np.where(flip, b, a)).pvalue))
    lambdas = np.array(lambdas)
    assert null.exact and null.n_relabelings == 16
    assert null.lambda_gc == pytest.approx(lambdas[0], rel=1e-12)
    assert null.p == pytest.approx(np.mean(lambdas >= lambdas[0] * (1 - 1e-9)))
    assert null.high == pytest.approx(np.percentile(lambdas, 97.5), rel=1e-9)


def test_monte_carlo_null_is_reproducible_from_its_generator_and_thins_the_examples():
    values = _runs(2, 16, n_examples=900)
    first = lambda_null(values[:8], values[8:], rng=np.random.default_rng(3), max_relabelings=50, max_examples=300)
    again = lambda_null(values[:8], values[8:], rng=np.random.default_rng(3), max_relabelings=50, max_examples=300)
    assert first == again and not first.exact and first.n_relabelings == 50 and first.n_examples == 300
    # The observed λ is over the same 300 examples, evenly spaced (about every third).
    kept = np.linspace(0, 899, 300).round().astype(int)
    assert first.lambda_gc == pytest.approx(genomic_control_lambda(two_sample_test(values[:8, kept], values[8:, kept]).p), rel=1e-12)
    assert (1 / 51) <= first.p <= 1
    tested = np.zeros(900, dtype=bool)
    tested[:100] = True
    assert lambda_null(values[:8], values[8:], rng=np.random.default_rng(3), tested=tested).n_examples == 100


def test_one_way_null_deals_the_runs_out_to_groups_of_the_same_sizes():
    values = _runs(4, 6, n_examples=200)
    groups = [values[:2], values[2:4], values[4:]]
    null = lambda_null_oneway(groups)
    assert null.exact and null.n_relabelings == 90  # 6! / (2! 2! 2!)
    assert null.lambda_gc == pytest.approx(genomic_control_lambda(welch_anova(groups).p), rel=1e-12)
    lambdas = []
    for first in combinations(range(6), 2):
        rest = [r for r in range(6) if r not in first]
        for second in combinations(rest, 2):
            third = [r for r in rest if r not in second]
            lambdas.append(genomic_control_lambda(welch_anova([values[list(first)], values[list(second)], values[third]]).p))
    assert null.p == pytest.approx(np.mean(np.array(lambdas) >= null.lambda_gc * (1 - 1e-9)))


def test_a_real_global_difference_is_beyond_the_null_and_run_noise_is_not():
    noise = _runs(5, 16, shift_sd=0.5)
    assert not lambda_null(noise[:8], noise[8:], rng=np.random.default_rng(0)).beyond
    shifted = noise.copy()
    shifted[8:, :150] += 1.5  # half of the examples differ in B: more than run luck explains
    null = lambda_null(shifted[:8], shifted[8:], rng=np.random.default_rng(0))
    assert null.beyond and "beyond it" in null.describe()


def test_run_level_test_is_welch_on_run_means_and_paired_t_when_paired():
    values = _runs(6, 10)
    values[0, 5] = np.nan  # example 5 is left out of every run's mean
    a, b = values[:5], values[5:]
    keep = np.ones(300, dtype=bool)
    keep[5] = False
    means_a, means_b = a[:, keep].mean(axis=1), b[:, keep].mean(axis=1)
    result = run_level_test(a, b)
    reference = stats.ttest_ind(means_b, means_a, equal_var=False)
    assert result.p == pytest.approx(reference.pvalue, rel=1e-12) and result.statistic == pytest.approx(reference.statistic)
    assert result.n_examples == 299 and result.difference == pytest.approx(means_b.mean() - means_a.mean())
    paired = run_level_test(a, b, paired=True)
    assert paired.p == pytest.approx(stats.ttest_rel(means_b, means_a).pvalue, rel=1e-12)
    groups = [values[:3], values[3:6], values[6:]]
    anova = run_level_anova(groups)
    means = [g[:, keep].mean(axis=1) for g in groups]
    assert anova.p == pytest.approx(anova_oneway(means, use_var="unequal").pvalue, rel=1e-10)
    # Runs with the same mean score (here identical runs): no shift to test.
    same = np.tile(values[0, keep], (10, 1))
    result = run_level_test(same[:5], same[5:])
    assert result.errcode == "CONST" and np.isnan(result.p) and "not tested (CONST)" in result.describe()
