"""λGC against its relabelling null, and the run-level test of the global shift."""

from __future__ import annotations

from itertools import combinations, product

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.oneway import anova_oneway

from gwas_models.analysis.association import two_sample_test, welch_anova
from gwas_models.analysis.genomic_control import (
    LAMBDA_NULL_ALPHA,
    LAMBDA_NULL_RELABELINGS,
    _relabelled_lambdas,
    _sign_flip_orders,
    _TwoSampleSums,
    genomic_control_lambdas,
    lambda_null,
    lambda_null_oneway,
    relabelling_p_interval,
    run_level_anova,
    run_level_test,
    two_sample_p,
)
from gwas_models.analysis.permutation import draw_labelings, enumerate_sign_flips
from gwas_models.analysis.multitest import genomic_control_lambda
from gwas_models.errors import InputError


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


# --------------------------------------------------------------------------------------------
# Verdicts with their Monte Carlo uncertainty
# --------------------------------------------------------------------------------------------


def _verdicts(a: np.ndarray, b: np.ndarray, seeds=range(5), **options) -> list[str]:
    return [lambda_null(a, b, rng=np.random.default_rng(seed), **options).verdict_code for seed in seeds]


def test_clear_verdicts_do_not_change_with_the_seed_of_the_relabellings():
    """10 v 10 runs: 92,378 partitions, drawn. A λ far from its null is decided by the first block
    of draws, the same way whatever the seed."""
    noise = _runs(5, 20, n_examples=200, shift_sd=0.5)
    shifted = noise.copy()
    shifted[10:, :100] += 1.5  # half of the examples differ in B
    assert _verdicts(noise[:10], noise[10:]) == ["within"] * 5
    assert _verdicts(shifted[:10], shifted[10:]) == ["beyond"] * 5
    null = lambda_null(shifted[:10], shifted[10:], rng=np.random.default_rng(0))
    assert not null.exact and null.n_relabelings == LAMBDA_NULL_RELABELINGS  # decided at once
    assert null.beyond and null.p_high <= LAMBDA_NULL_ALPHA and "MC interval" in null.describe()


def test_a_borderline_lambda_ends_undecided_rather_than_flipping_with_the_seed():
    """6 v 6 runs whose exact relabelling p is 23/462 = 0.0498, at the line: drawn at random (the
    exact enumeration turned off), every seed draws up to the cap and says it cannot tell."""
    values = _runs(288, 12, n_examples=200, shift_sd=0.5)
    exact = lambda_null(values[:6], values[6:])
    assert exact.exact and exact.p == pytest.approx(23 / 462) and exact.verdict_code == "beyond"
    verdicts = set()
    for seed in range(5):
        null = lambda_null(values[:6], values[6:], rng=np.random.default_rng(seed), exact_limit=0, max_relabelings=800)
        assert null.n_relabelings == 800 and null.p_low <= exact.p <= null.p_high
        verdicts.add(null.verdict_code)
        assert not null.beyond and "undecided" in null.describe()
    assert verdicts == {"undecided"}


def test_monte_carlo_interval_covers_the_exact_p_and_exact_enumeration_has_none():
    """6 v 6 runs: the 462 partitions enumerated give the exact p (a zero-width interval); random
    draws from them give an interval around it."""
    for study in range(4):
        values = _runs(30 + study, 12, n_examples=150)
        exact = lambda_null(values[:6], values[6:])
        assert exact.exact and exact.n_relabelings == 462 and exact.p_low == exact.p == exact.p_high
        assert exact.smallest_p == pytest.approx(1 / 462) and exact.interval() == "exact"
        for seed in range(3):
            drawn = lambda_null(values[:6], values[6:], rng=np.random.default_rng(seed), exact_limit=0)
            assert not drawn.exact and drawn.p_low <= exact.p <= drawn.p_high
            assert drawn.p_low <= drawn.p <= drawn.p_high
            assert drawn.verdict_code in (exact.verdict_code, "undecided")


def test_relabelling_p_interval_is_clopper_pearson():
    low, high = relabelling_p_interval(np.array([0, 7, 200]), np.array([200, 200, 200]), confidence=0.95)
    for b, lo, hi in zip((0, 7, 200), low, high):
        reference = stats.binomtest(b, 200).proportion_ci(0.95, method="exact")
        assert lo == pytest.approx(reference.low, abs=1e-12) and hi == pytest.approx(reference.high, abs=1e-12)
    with pytest.raises(InputError, match="confidence"):
        relabelling_p_interval(1, 10, confidence=1.0)
    with pytest.raises(InputError, match="max_relabelings"):
        lambda_null(np.zeros((3, 4)), np.ones((3, 4)), max_relabelings=0)


def test_too_few_runs_for_any_p_to_reach_alpha_give_no_verdict():
    """2 v 2 runs allow 3 partitions: the smallest relabelling p is 1/3, so however large λ is, no
    verdict; likewise 5 seed pairs (16 sign patterns up to the mirror) and 2 + 2 + 2 runs (15)."""
    values = _runs(8, 4, n_examples=100)
    values[2:, :60] += 5.0  # a huge difference: still no verdict from 2 v 2 runs
    null = lambda_null(values[:2], values[2:])
    assert null.exact and null.n_relabelings == 3 and null.smallest_p == pytest.approx(1 / 3)
    assert null.verdict_code == "no_verdict" and not null.beyond
    assert "no verdict" in null.describe() and "0.333" in null.describe()
    pairs = _runs(9, 12, n_examples=100)
    paired = lambda_null(pairs[:5], pairs[5:10], "paired")
    assert paired.smallest_p == pytest.approx(1 / 16) and paired.verdict_code == "no_verdict"
    assert lambda_null(pairs[:6], pairs[6:] + 3.0, "paired").verdict_code == "beyond"  # 1/32 reachable
    three = lambda_null_oneway([pairs[:2], pairs[2:4], pairs[4:6]])
    assert three.smallest_p == pytest.approx(1 / 15) and three.verdict_code == "no_verdict"


def test_one_way_monte_carlo_null_is_drawn_until_decided():
    values = _runs(11, 15, n_examples=120, shift_sd=0.2)
    values[10:, :60] += 2.0
    null = lambda_null_oneway([values[:5], values[5:10], values[10:]], rng=np.random.default_rng(0))
    assert not null.exact and null.verdict_code == "beyond" and null.p_high <= LAMBDA_NULL_ALPHA


@pytest.mark.parametrize("test", ["welch", "student", "paired"])
def test_matrix_product_path_gives_the_lambdas_of_the_per_example_test(test):
    """The fast path (sums by matrix products, p only near each relabelling's median) against
    two_sample_test of every relabelling's gathered runs, on tied scores with groups that become
    constant under some relabellings (as accuracy of a few epochs)."""
    rng = np.random.default_rng(12)
    values = np.round(rng.uniform(size=(12, 400)) + rng.normal(0, 0.3, (12, 1)), 1)
    values[:, :20] = 0.5  # constant in every run: never tested
    values[:5, 20:40] = 1.0  # constant in five runs
    values[7:, 40:50] = -2.0
    values[:5, 50], values[5:, 50] = 1.0, 2.0  # both groups constant under the observed labelling
    if test == "paired":
        patterns = np.vstack([np.ones((1, 6)), enumerate_sign_flips(6)])
        orders = _sign_flip_orders(patterns)
    else:
        patterns = np.vstack([np.r_[np.zeros(5), np.ones(7)][None, :], draw_labelings(rng, 5, 7, 300)])
        orders = np.argsort(patterns, axis=1, kind="stable")
    n_a = 6 if test == "paired" else 5
    expected = _relabelled_lambdas(values, orders, (n_a, 12 - n_a), two_sample_p(test))
    fast = _TwoSampleSums.of(values, n_a, test).lambdas(patterns)
    np.testing.assert_allclose(fast, expected, rtol=1e-12)


def test_two_sided_t_p_falls_as_the_degrees_of_freedom_rise():
    """The bracket of the fast path's median rests on P(|T_df| >= t) falling with df at every t."""
    t = np.linspace(0.01, 8.0, 400)[:, None]
    df = np.concatenate([np.linspace(1.0, 3.0, 41), np.linspace(3.0, 400.0, 300)])[None, :]
    p = 2.0 * stats.t.sf(t, df)
    assert np.all(np.diff(p, axis=1) <= 1e-15)


def test_a_study_reports_the_verdict_its_interval_and_no_warning_without_a_verdict():
    from gwas_models.analysis.association_log import format_log, format_summary
    from gwas_models.analysis.simulate import simulate_score_matrix
    from gwas_models.analysis.study import associate

    rng = np.random.default_rng(13)
    few = associate(simulate_score_matrix(rng, 200, {"a": 2, "b": 2}, global_shift=3.0), normalize="none")
    row = few.pairs[0].summary().iloc[0]
    assert row["lambda_verdict"] == "no_verdict" and row["lambda_p_low"] == row["lambda_p"] == row["lambda_p_high"]
    assert not any("beyond its null" in w for w in few.pairs[0].warnings)
    assert "no_verdict" in format_summary(few) and "lambda_p_ci" in format_summary(few)
    assert "no verdict: these runs allow no relabelling p below 0.333" in format_log(few, few.pairs[0])
    many = associate(simulate_score_matrix(rng, 200, {"a": 10, "b": 10}, global_shift=1.0, run_offset_sd=0.1), normalize="none")
    null = many.pairs[0].scores[0].lambda_null
    row = many.pairs[0].summary().iloc[0]
    assert row["lambda_verdict"] == null.verdict_code == "beyond" and row["lambda_p_high"] == null.p_high <= LAMBDA_NULL_ALPHA
    assert "99.9% MC interval" in format_log(many, many.pairs[0]) and "BEYOND" in format_summary(many)
    assert any("99.9% MC interval" in w for w in many.pairs[0].warnings)
