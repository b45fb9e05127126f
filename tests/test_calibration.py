"""Calibration on simulated data: null λGC, family-wise error, power, and stratification."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from gwas_models.analysis.association import two_sample_test
from gwas_models.analysis.multitest import adjust_pvalues, genomic_control_lambda
from gwas_models.analysis.simulate import simulate_score_matrix, simulate_scores
from gwas_models.analysis.study import associate


@pytest.mark.parametrize("test", ["welch", "student"])
def test_null_lambda_gc_is_near_one_with_20_vs_20_runs(test):
    matrix = simulate_score_matrix(np.random.default_rng(0), 20_000, {"A": 20, "B": 20})
    result = two_sample_test(matrix.runs_of("A"), matrix.runs_of("B"), test)
    assert 0.9 <= genomic_control_lambda(result.p) <= 1.1


def test_bonferroni_family_wise_error_rate_is_at_most_alpha():
    """400 null studies of 1,000 examples, 10 vs 10 runs, alpha = 0.05.

    Bonferroni's family-wise error rate for independent tests is 1 - (1 - alpha/m)^m = 0.0488, so
    about 19.5 of the 400 studies should have a false positive. The count must lie inside the
    central 99.9% of Binomial(400, 0.0488): at most about 35 (so the rate is not above alpha), and not
    implausibly few (so the test is not vacuously conservative).
    """
    n_studies, n_examples, alpha = 400, 1000, 0.05
    matrix = simulate_score_matrix(np.random.default_rng(1), n_studies * n_examples, {"A": 10, "B": 10})
    p = two_sample_test(matrix.runs_of("A"), matrix.runs_of("B")).p.reshape(n_studies, n_examples)
    studies_with_false_positive = sum(
        bool((adjust_pvalues(study_p, ["bonferroni"])["bonferroni"] <= alpha).any()) for study_p in p
    )
    expected_rate = 1 - (1 - alpha / n_examples) ** n_examples
    low, high = stats.binom.ppf([0.0005, 0.9995], n_studies, expected_rate)
    assert low <= studies_with_false_positive <= high, studies_with_false_positive
    # One-sided: no evidence that the family-wise error rate exceeds alpha.
    assert stats.binomtest(studies_with_false_positive, n_studies, alpha, alternative="greater").pvalue > 0.001


def test_planted_effects_are_recovered_with_the_expected_power():
    """200 of 20,000 examples shifted by d = 2.5 in B, 20 vs 20 runs, Bonferroni at 0.01.

    Welch's t of a planted example is about noncentral t with 38 df and noncentrality
    2.5 * sqrt(20 / 2) = 7.9: power 0.94. The recovered fraction must be at least 0.9 and within
    four binomial standard errors of that figure, with no false positive among the others.
    """
    rng = np.random.default_rng(2)
    planted = rng.choice(20_000, 200, replace=False)
    matrix = simulate_score_matrix(rng, 20_000, {"A": 20, "B": 20}, effect_examples=planted, effect_size=2.5)
    table = associate(matrix, alpha=0.01).pairs[0].sumstats
    significant = table["BONF"].to_numpy() <= 0.01
    power = significant[planted].mean()
    critical = stats.t.isf(0.01 / 20_000 / 2, 38)
    noncentrality = 2.5 * np.sqrt(10)
    expected = stats.nct.sf(critical, 38, noncentrality) + stats.nct.cdf(-critical, 38, noncentrality)
    assert power >= 0.9
    assert abs(power - expected) <= 4 * np.sqrt(expected * (1 - expected) / 200)
    assert significant.sum() - significant[planted].sum() == 0
    # The planted examples are harder in B for a loss-like score (higher is harder).
    assert set(table["HARDER_IN"].astype(str).to_numpy()[planted[significant[planted]]]) == {"B"}


def test_planted_effects_point_the_same_way_for_scores_of_both_directions():
    rng = np.random.default_rng(3)
    matrices = simulate_scores(rng, ("loss", "aum"), 2000, {"A": 10, "B": 10}, effect_examples=np.arange(30), effect_size=4.0)
    table = associate(matrices).pairs[0].sumstats
    for score, sign in (("loss", 1), ("aum", -1)):
        rows = table[table["SCORE"].astype(str) == score].iloc[:30]
        assert (np.sign(rows["BETA"]) == sign).all()  # aum drops where the example gets harder
        assert (rows["HARDER_IN"].astype(str) == "B").all()
    combined = table[table["SCORE"].astype(str) == "combined"].iloc[:30]
    assert (combined["HARDER_IN"].astype(str) == "B").all() and (combined["COHEN_D"] > 0).all()


def test_a_global_shift_inflates_lambda_and_rank_normalisation_removes_it():
    matrix = simulate_score_matrix(np.random.default_rng(4), 20_000, {"A": 20, "B": 20}, global_shift=0.3)
    raw = associate(matrix)
    ranked = associate(matrix, normalize="rank")
    assert raw.pairs[0].scores[0].lambda_gc > 1.5
    assert any("lambda_GC" in warning and "normalize='rank'" in warning for warning in raw.warnings)
    assert 0.9 <= ranked.pairs[0].scores[0].lambda_gc <= 1.1
    assert not any("lambda_GC" in warning for warning in ranked.warnings)
