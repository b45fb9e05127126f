"""Per-example two-sample tests, Welch's ANOVA and -log10 p against scipy, statsmodels and mpmath."""

from __future__ import annotations

from itertools import combinations, permutations
from math import comb

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import special, stats
from statsmodels.stats.oneway import anova_oneway

from gwas_models.analysis.association import (
    CONST,
    ERRCODES,
    FEW_RUNS,
    NAN,
    OK,
    SEPARATED,
    compare_groups,
    group_moments,
    mean_neg_log10_p,
    normalize_within_runs,
    oneway_separation_p,
    rank_ties_reason,
    separation_p,
    two_sample_test,
    welch_anova,
    welch_anova_by_group,
)
from gwas_models.analysis._logspace import f_pvalue, log_betainc_small, t_pvalue
from gwas_models.errors import InputError

RTOL = 1e-12


def _random_groups(seed: int, n_a: int = 7, n_b: int = 9, n_examples: int = 400):
    rng = np.random.default_rng(seed)
    a = rng.normal(0.0, 1.0, (n_a, n_examples))
    b = rng.normal(rng.normal(0, 1, n_examples), rng.uniform(0.2, 3.0, n_examples), (n_b, n_examples))
    return a, b


@pytest.mark.parametrize("test, equal_var", [("welch", False), ("student", True)])
@pytest.mark.parametrize("seed", [0, 1])
def test_independent_tests_equal_scipy_ttest_ind(test, equal_var, seed):
    a, b = _random_groups(seed)
    ours = two_sample_test(a, b, test)
    reference = stats.ttest_ind(b, a, equal_var=equal_var, axis=0)
    np.testing.assert_allclose(ours.p, reference.pvalue, rtol=RTOL)
    np.testing.assert_allclose(ours.t_stat, reference.statistic, rtol=RTOL)
    np.testing.assert_allclose(ours.df, reference.df, rtol=RTOL)
    np.testing.assert_allclose(ours.beta, b.mean(axis=0) - a.mean(axis=0), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(ours.sd_a, a.std(axis=0, ddof=1), rtol=1e-12)
    assert (ours.error == OK).all()


def test_paired_test_equals_scipy_ttest_rel():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(8, 300))
    b = 0.6 * a + rng.normal(0.2, 0.5, size=(8, 300))
    ours = two_sample_test(a, b, "paired")
    reference = stats.ttest_rel(b, a, axis=0)
    np.testing.assert_allclose(ours.p, reference.pvalue, rtol=RTOL)
    np.testing.assert_allclose(ours.t_stat, reference.statistic, rtol=RTOL)
    np.testing.assert_array_equal(ours.df, 7.0)


def test_standard_error_and_cohen_d_follow_their_definitions():
    a, b = _random_groups(4, 5, 6, 50)
    ours = two_sample_test(a, b, "welch")
    var_a, var_b = a.var(axis=0, ddof=1), b.var(axis=0, ddof=1)
    np.testing.assert_allclose(ours.se, np.sqrt(var_a / 5 + var_b / 6), rtol=1e-12)
    pooled = (4 * var_a + 5 * var_b) / 9
    np.testing.assert_allclose(ours.cohen_d, ours.beta / np.sqrt(pooled), rtol=1e-12)
    np.testing.assert_allclose(ours.neg_log10_p, -np.log10(ours.p), rtol=1e-12)


def test_neg_log10_p_is_finite_and_exact_when_p_underflows():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    t_values = np.array([1e10, 1e8, 1e5, 60.0, 45.0, 40.0, 1e150])
    dfs = np.array([38.0, 38.0, 10.0, 1000.0, 5000.0, 1e5, 1.5])
    p, neg_log10_p = t_pvalue(t_values, dfs)
    assert np.all(np.isfinite(neg_log10_p))
    for t, df, ours in zip(t_values, dfs, neg_log10_p):
        x = mpmath.mpf(df) / (df + mpmath.mpf(t) ** 2)
        exact = -mpmath.log10(mpmath.betainc(mpmath.mpf(df) / 2, 0.5, 0, x, regularized=True))
        assert ours == pytest.approx(float(exact), rel=1e-10), (t, df)
    assert p[0] == 0.0 and neg_log10_p[0] > 350  # p is 0 in float64, its -log10 is not lost


def test_log_space_formula_agrees_with_plain_p_where_both_are_representable():
    # Around p = 1e-100..1e-250 both routes are exact: the log-space one must agree.
    t_values = np.array([30.0, 80.0, 200.0, 1e4])
    dfs = np.array([100.0, 60.0, 38.0, 12.0])
    plain = -np.log10(2 * special.stdtr(dfs, -t_values))
    x_log = np.log(dfs) - np.logaddexp(np.log(dfs), 2 * np.log(t_values))
    one_minus_x_log = 2 * np.log(t_values) - np.logaddexp(np.log(dfs), 2 * np.log(t_values))
    log_space = -log_betainc_small(dfs / 2, 0.5, x_log, one_minus_x_log) / np.log(10)
    assert plain.min() > 20 and plain.max() < 300
    np.testing.assert_allclose(log_space, plain, rtol=1e-11)


def test_f_pvalue_underflow_matches_mpmath():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    f_values, d1, d2 = np.array([1e40, 1e6, 5e3]), np.array([2.0, 4.0, 9.0]), np.array([30.0, 80.0, 300.0])
    p, neg_log10_p = f_pvalue(f_values, d1, d2)
    for f, a, b, ours in zip(f_values, d1, d2, neg_log10_p):
        x = mpmath.mpf(b) / (b + a * mpmath.mpf(f))
        exact = -mpmath.log10(mpmath.betainc(mpmath.mpf(b) / 2, mpmath.mpf(a) / 2, 0, x, regularized=True))
        assert ours == pytest.approx(float(exact), rel=1e-10)
    np.testing.assert_allclose(f_pvalue([3.0], [2.0], [20.0])[0], stats.f.sf(3.0, 2, 20), rtol=1e-13)


def test_extreme_separation_gives_finite_evidence_in_the_test_itself():
    rng = np.random.default_rng(5)
    a = rng.normal(0, 1e-9, (20, 3))
    b = rng.normal(0, 1e-9, (20, 3)) + np.array([100.0, 10.0, 1e-3])
    result = two_sample_test(a, b)
    assert (result.p[:2] == 0).all()  # below float64's smallest subnormal
    assert np.all(np.isfinite(result.neg_log10_p)) and np.all(result.neg_log10_p[:2] > 324)
    assert np.all(np.diff(result.neg_log10_p) < 0)  # the ranking survives the underflow
    assert np.all(result.error == OK)


def test_welch_anova_equals_statsmodels_anova_oneway():
    rng = np.random.default_rng(6)
    groups = [rng.normal(0, 1, (5, 120)), rng.normal(0.4, 2, (6, 120)), rng.normal(-0.3, 0.5, (8, 120)), rng.normal(0, 1, (4, 120))]
    ours = welch_anova(groups, ["a", "b", "c", "d"])
    for j in range(120):
        reference = anova_oneway([g[:, j] for g in groups], use_var="unequal")
        assert ours.p[j] == pytest.approx(reference.pvalue, rel=RTOL)
        assert ours.f_stat[j] == pytest.approx(reference.statistic, rel=RTOL)
        assert ours.df_denom[j] == pytest.approx(reference.df_denom, rel=RTOL)
    assert (ours.df_num == 3).all()


def test_constant_examples_get_const_and_no_p():
    a = np.array([[0.1, 1.0, 0.0], [0.1, 1.0, 1.0], [0.1, 1.0, 0.5]] * 7)  # 21 runs
    b = np.array([[0.1, 2.0, 3.0], [0.1, 2.0, 3.5], [0.1, 2.0, 4.0]] * 7)
    result = two_sample_test(a, b)
    # 0.1 twenty-one times has a rounding-residue mean; it must still count as constant. Constant
    # groups at different levels (1.0 vs 2.0) are a separation, tested with its exact p.
    assert list(result.errcode) == ["CONST", "SEPARATED", "."]
    assert np.isnan(result.p[0]) and np.isnan(result.t_stat[:2]).all()
    assert result.p[1] == pytest.approx(2 / comb(42, 21), rel=1e-12)
    assert list(result.tested) == [False, True, True] and list(result.has_statistic) == [False, False, True]
    assert result.beta[1] == 1.0 and result.se[1] == 0.0
    assert result.mean_a[0] == 0.1 and result.sd_a[0] == 0.0


@pytest.mark.filterwarnings("ignore:Precision loss occurred")  # scipy's warning about its reference result
def test_one_constant_group_is_still_a_welch_test_but_not_a_welch_anova():
    a = np.ones((5, 1))
    b = np.array([[1.0], [2.0], [3.0], [2.5], [1.5]])
    welch = two_sample_test(a, b)
    assert welch.error[0] == OK
    assert welch.p[0] == pytest.approx(stats.ttest_ind(b[:, 0], a[:, 0], equal_var=False).pvalue, rel=1e-12)
    anova = welch_anova([a, b, b + 1])
    assert anova.error[0] == CONST and np.isnan(anova.p[0])


def test_missing_scores_are_dropped_per_example():
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(6, 4)), rng.normal(size=(5, 4))
    a[0, 0] = np.nan
    b[1, 0] = np.inf
    a[:5, 1] = np.nan  # one finite run left in A
    b[:, 2] = np.nan  # nothing left in B
    result = two_sample_test(a, b)
    assert [ERRCODES[e] for e in result.error] == [".", "FEW_RUNS", "NAN", "."]
    reference = stats.ttest_ind(b[[0, 2, 3, 4], 0], a[1:, 0], equal_var=False)
    assert result.p[0] == pytest.approx(reference.pvalue, rel=1e-12)
    assert (result.n_a[0], result.n_b[0]) == (5, 4)
    assert result.n_a[1] == 1 and np.isnan(result.p[1])


def test_paired_test_drops_incomplete_pairs():
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    a[2, 0] = np.nan
    result = two_sample_test(a, b, "paired")
    keep = [0, 1, 3, 4, 5]
    assert result.p[0] == pytest.approx(stats.ttest_rel(b[keep, 0], a[keep, 0]).pvalue, rel=1e-12)
    assert result.n_a[0] == result.n_b[0] == 5
    identical = two_sample_test(a[:, 1:], a[:, 1:], "paired")
    assert identical.error[0] == CONST
    shifted = two_sample_test(a[:, 1:], a[:, 1:] + 2.0, "paired")  # differences 2 up to rounding: separated
    assert shifted.errcode[0] == "SEPARATED" and shifted.p[0] == pytest.approx(2 / 2**6, rel=1e-12)


def test_matrix_and_group_vector_interface():
    rng = np.random.default_rng(10)
    values = rng.normal(size=(9, 40))
    groups = np.array(["x", "y", "x", "y", "x", "y", "z", "z", "z"])
    seeds = np.array([0, 2, 1, 1, 2, 0, 0, 1, 2])
    result = compare_groups(values, groups, "x", "y")
    direct = two_sample_test(values[groups == "x"], values[groups == "y"])
    np.testing.assert_array_equal(result.p, direct.p)
    paired = compare_groups(values, groups, "x", "y", "paired", seeds=seeds)
    reference = stats.ttest_rel(values[[5, 3, 1]], values[[0, 2, 4]])  # y then x, both by seed 0, 1, 2
    np.testing.assert_allclose(paired.p, reference.pvalue, rtol=1e-12)
    oneway = welch_anova_by_group(values, groups)
    assert oneway.names == ("x", "y", "z")
    np.testing.assert_array_equal(oneway.p, welch_anova([values[groups == g] for g in "xyz"]).p)
    with pytest.raises(InputError, match="same seeds"):
        compare_groups(values, groups, "x", "y", "paired", seeds=np.arange(9))


def test_fewer_than_two_runs_is_an_input_error_naming_the_group():
    with pytest.raises(InputError, match="vgg16 has 1 run"):
        two_sample_test(np.zeros((3, 4)), np.zeros((1, 4)), names=("resnet20", "vgg16"))
    with pytest.raises(InputError, match="test must be one of welch, student, paired, got 'wilcoxon'"):
        two_sample_test(np.zeros((3, 4)), np.zeros((3, 4)), "wilcoxon")
    with pytest.raises(InputError, match="same runs"):
        two_sample_test(np.zeros((3, 4)), np.zeros((4, 4)), "paired")
    with pytest.raises(InputError, match="different numbers of examples"):
        two_sample_test(np.zeros((3, 4)), np.zeros((3, 5)))


def test_group_moments_match_numpy_and_flag_constant_columns():
    rng = np.random.default_rng(9)
    values = rng.normal(size=(11, 70_000))  # several chunks
    moments = group_moments(values)
    np.testing.assert_allclose(moments.mean, values.mean(axis=0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(moments.var, values.var(axis=0, ddof=1), rtol=1e-12)
    constant = group_moments(np.full((4, 2), 0.3))
    assert (constant.var == 0).all() and (constant.mean == 0.3).all()


def test_normalize_within_runs():
    values = np.array([[3.0, 1.0, 2.0, np.nan, 5.0, 6.0, 7.0, 8.0], [10.0, 30.0, 20.0, 20.0, 40.0, 50.0, 60.0, 70.0]])
    ranks = normalize_within_runs(values, "rank")  # normal scores of the ranks: Φ⁻¹((rank - ½) / n)
    np.testing.assert_allclose(ranks[0, :3], stats.norm.ppf(np.array([2.5, 0.5, 1.5]) / 7))
    assert np.isnan(ranks[0, 3])
    np.testing.assert_allclose(ranks[1, :4], stats.norm.ppf(np.array([0.5, 3.5, 2.0, 2.0]) / 8))  # a tie of two (25%) is averaged
    shifted = normalize_within_runs(values + 5.0, "rank")
    np.testing.assert_array_equal(np.isnan(shifted), np.isnan(ranks))
    np.testing.assert_allclose(shifted[~np.isnan(shifted)], ranks[~np.isnan(ranks)])
    z = normalize_within_runs(values[1:], "zscore")
    assert z.mean() == pytest.approx(0.0, abs=1e-12) and z.std() == pytest.approx(1.0)
    np.testing.assert_array_equal(normalize_within_runs(values, "none"), values)  # as they are, NaN included
    with pytest.raises(InputError, match="method must be one of relative, none, rank, zscore, center_class, got 'quantile'"):
        normalize_within_runs(values, "quantile")


def test_center_class_removes_each_runs_shift_within_each_class():
    rng = np.random.default_rng(11)
    labels = np.arange(60) % 3
    base = rng.normal(size=(1, 60))
    shifts = rng.normal(0.0, 5.0, (4, 3))  # a shift per run and class
    values = base + shifts[:, labels]
    values[1, 7] = np.nan
    centred = normalize_within_runs(values, "center_class", labels=labels)
    for c in range(3):
        members = labels == c
        np.testing.assert_allclose(np.nanmean(centred[:, members], axis=1), 0.0, atol=1e-12)
    # The shifts are gone: every complete run is the same centred baseline.
    complete = np.isfinite(values).all(axis=0)
    np.testing.assert_allclose(centred[0, complete], centred[2, complete], atol=1e-12)
    assert np.isnan(centred[1, 7])
    with pytest.raises(InputError, match="labels are needed") as missing:
        normalize_within_runs(values, "center_class")
    assert missing.value.parameter == "labels"


def test_rank_is_refused_for_heavily_tied_scores_and_kept_for_continuous_ones():
    rng = np.random.default_rng(12)
    counts = np.minimum(rng.poisson(0.4, (6, 500)), 3).astype(float)  # most examples never forgotten
    assert rank_ties_reason(counts) is not None
    with pytest.raises(InputError, match=r"method='rank' is not valid .* tied at 0") as refused:
        normalize_within_runs(counts, "rank")
    assert refused.value.parameter == "method"
    continuous = rng.normal(size=(6, 500))
    assert rank_ties_reason(continuous) is None
    assert rank_ties_reason(np.round(continuous, 2)) is None  # many small ties are harmless
    np.testing.assert_allclose(normalize_within_runs(counts, "zscore").mean(axis=1), 0.0, atol=1e-12)  # still allowed


def test_essentially_constant_groups_get_const_like_r():
    """Defect 4: groups equal up to their last bits gave t ~ 1e16 and p ~ 1e-154 with ERRCODE '.'.

    R's t.test refuses them ("data are essentially constant": stderr < 10 eps max(|mx|, |my|));
    a genuinely tiny spread of small or of large scores is still tested."""
    eps = np.finfo(np.float64).eps
    a = np.array([1.0, 1.0, 1.0, 1.0, 1.0 + eps])
    b = np.array([2.0, 2.0, 2.0, 2.0, 2.0 + 2 * eps])
    for test in ("welch", "student"):
        # No t (no spread beyond rounding), but the groups do not overlap: a separation, with the
        # exact permutation p of 5 vs 5 runs (the observed labelling and its mirror of 252).
        result = two_sample_test(a, b, test)
        assert result.errcode[0] == "SEPARATED" and result.p[0] == pytest.approx(2 / 252) and np.isnan(result.t_stat[0])
        overlapping = two_sample_test(a, a[::-1], test)
        assert overlapping.errcode[0] == "CONST" and np.isnan(overlapping.p[0])
    assert welch_anova([a, b, b + 1.0]).errcode[0] == "CONST"  # not exactly constant
    # Tiny but genuine spreads: small scores, and a 1e-9 spread on scores near 1.
    spread = np.array([1.0, 1.1, 0.9, 1.05, 0.95])
    for offset, scale in ((0.0, 1e-12), (1.0, 1e-9)):
        result = two_sample_test(offset + scale * spread, offset + scale * 1.5 * spread)
        reference = stats.ttest_ind(offset + scale * 1.5 * spread, offset + scale * spread, equal_var=False)
        assert result.errcode[0] == "." and result.p[0] == pytest.approx(reference.pvalue, rel=1e-4)  # data rounded at 1e-7
    assert welch_anova([spread * 1e-12, spread * 2e-12, spread * 3e-12]).errcode[0] == "."


def test_groups_constant_at_different_levels_are_separated_with_their_exact_p():
    """Issue 20: 0.967 in every run of A and 1.0 in every run of B was CONST with no p."""
    a = np.full((5, 4), 0.967)
    b = np.full((6, 4), 1.0)
    a[:, 1] = 1.0  # equal constants: nothing to test
    a[:, 2] = [0.9, 0.95, 1.0, 0.96, 0.97]  # one group constant: an ordinary Welch test
    b[1:, 3] = np.nan  # a single finite run in B: FEW_RUNS
    result = two_sample_test(a, b)
    assert list(result.errcode) == ["SEPARATED", "CONST", ".", "FEW_RUNS"]
    assert result.p[0] == pytest.approx(1 / comb(11, 5), rel=1e-12)  # only the observed labelling separates
    assert result.neg_log10_p[0] == pytest.approx(np.log10(comb(11, 5)), rel=1e-12)
    assert np.isnan(result.t_stat[0]) and np.isnan(result.df[0]) and np.isnan(result.cohen_d[0])
    assert result.beta[0] == pytest.approx(0.033) and result.se[0] == 0.0
    assert result.tested[0] and not result.has_statistic[0] and result.error[0] == SEPARATED
    # Equal groups: the mirror labelling separates too; missing runs shrink the count.
    equal = two_sample_test(np.full((5, 2), 0.967), np.full((5, 2), 1.0))
    assert equal.p[0] == pytest.approx(2 / comb(10, 5))
    a_missing = np.full((5, 1), 0.967)
    a_missing[0] = np.nan
    assert two_sample_test(a_missing, np.full((5, 1), 1.0)).p[0] == pytest.approx(1 / comb(9, 4))
    for test in ("student", "paired"):
        other = two_sample_test(np.full((5, 1), 0.967), np.full((5, 1), 1.0), test)
        assert other.errcode[0] == "SEPARATED"
    assert two_sample_test(np.full((5, 1), 0.967), np.full((5, 1), 1.0), "paired").p[0] == pytest.approx(2 / 2**5)


def test_separation_p_is_the_share_of_relabellings_that_separate():
    """Brute force: every labelling of the runs (every sign pattern, paired) counted directly."""
    for n_a, n_b in ((2, 2), (3, 5), (4, 4), (5, 6)):
        values = np.r_[np.zeros(n_a), np.ones(n_b)]
        separating = 0
        for chosen in combinations(range(n_a + n_b), n_b):
            in_b = np.zeros(n_a + n_b, bool)
            in_b[list(chosen)] = True
            separating += values[in_b].std() == 0 and values[~in_b].std() == 0
        p, neg_log10_p = separation_p(np.array([n_a]), np.array([n_b]))
        assert p[0] == pytest.approx(separating / comb(n_a + n_b, n_a), rel=1e-12)
        assert neg_log10_p[0] == pytest.approx(-np.log10(p[0]), rel=1e-12)
    for n in (2, 3, 6):
        flips = [2 * np.array(k) - 1 for k in np.ndindex(*(2,) * n)]
        constant = sum(len(set(0.7 * signs)) == 1 for signs in flips)  # flipped differences all equal
        assert separation_p(np.array([n]), np.array([n]), paired=True)[0][0] == pytest.approx(constant / 2**n)


def _deals_that_keep_every_group_constant(levels: list[float], sizes: list[int]) -> float:
    """Brute force for the one-way separation: the share of deals of the runs into groups of these
    sizes (ordered runs, every arrangement) under which every group is constant."""
    runs = np.repeat(levels, sizes)
    bounds = np.cumsum([0] + sizes)
    kept = total = 0
    for order in set(permutations(range(len(runs)))):
        dealt = runs[list(order)]
        total += 1
        kept += all(np.all(dealt[s:e] == dealt[s]) for s, e in zip(bounds[:-1], bounds[1:]))
    return kept / total


def test_welch_anova_of_constant_groups_at_several_levels():
    # Every group exactly constant, not all at one level: SEPARATED with an exact p (equal sizes)
    # or a larger, conservative one (unequal sizes); a constant group beside spread ones: CONST.
    cases = [([0.0, 0.0, 1.0], [2, 2, 2]), ([0.0, 1.0, 2.0], [2, 2, 2]), ([0.0, 1.0, 1.0], [2, 3, 2]), ([0.0, 1.0, 2.0], [3, 2, 2])]
    for levels, sizes in cases:
        groups = [np.full((size, 1), level) for level, size in zip(levels, sizes)]
        result = welch_anova(groups)
        exact = _deals_that_keep_every_group_constant(levels, sizes)
        assert result.errcode[0] == "SEPARATED" and np.isnan(result.f_stat[0]) and result.tested[0]
        if len(set(sizes)) == 1:
            assert result.p[0] == pytest.approx(exact, rel=1e-12)
        else:
            assert exact - 1e-12 <= result.p[0] <= 1.0
    p, _ = oneway_separation_p(np.array([[5], [5]]), np.array([[0.967], [1.0]]))
    assert p[0] == pytest.approx(separation_p(np.array([5]), np.array([5]))[0][0])
    same = welch_anova([np.full((3, 1), 1.0)] * 3)
    assert same.errcode[0] == "CONST" and np.isnan(same.p[0])
    mixed = welch_anova([np.full((3, 1), 1.0), np.array([[1.0], [2.0], [3.0]]), np.full((3, 1), 5.0)])
    assert mixed.errcode[0] == "CONST"


def test_mean_neg_log10_p_skips_untested_entries():
    mean, count = mean_neg_log10_p(np.array([[1.0, np.nan, np.nan], [3.0, 4.0, np.nan]]))
    np.testing.assert_allclose(mean[:2], [2.0, 4.0])
    assert np.isnan(mean[2]) and list(count) == [2, 1, 0]


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------

_finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


@st.composite
def _two_groups(draw):
    n_examples = draw(st.integers(1, 6))
    n_a, n_b = draw(st.integers(2, 6)), draw(st.integers(2, 6))
    a = draw(arrays(np.float64, (n_a, n_examples), elements=_finite))
    b = draw(arrays(np.float64, (n_b, n_examples), elements=_finite))
    test = draw(st.sampled_from(["welch", "student"]))
    return a, b, test


@settings(max_examples=150, deadline=None)
@given(_two_groups())
def test_p_is_a_probability_or_missing_with_an_error_code(groups):
    a, b, test = groups
    result = two_sample_test(a, b, test)
    tested = result.tested
    assert np.all((result.p[tested] > 0) & (result.p[tested] <= 1))
    assert np.all(np.isfinite(result.neg_log10_p[tested])) and np.all(result.neg_log10_p[tested] >= 0)
    assert np.all(np.isnan(result.p[~tested]))
    assert np.all(np.isfinite(result.t_stat[result.has_statistic])) and np.all(np.isnan(result.t_stat[~result.has_statistic]))
    assert set(np.unique(result.error)) <= {OK, CONST, FEW_RUNS, NAN, SEPARATED}


@settings(max_examples=150, deadline=None)
@given(_two_groups())
def test_swapping_groups_flips_t_and_beta_and_keeps_p(groups):
    a, b, test = groups
    forward, backward = two_sample_test(a, b, test), two_sample_test(b, a, test)
    np.testing.assert_array_equal(forward.error, backward.error)
    np.testing.assert_allclose(backward.t_stat, -forward.t_stat, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(backward.beta, -forward.beta, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(backward.p, forward.p, rtol=1e-9, atol=1e-300)


@settings(max_examples=100, deadline=None)
@given(_two_groups(), st.randoms(use_true_random=False))
def test_permuting_examples_permutes_the_results(groups, random):
    a, b, test = groups
    order = list(range(a.shape[1]))
    random.shuffle(order)
    whole = two_sample_test(a, b, test).to_frame()
    shuffled = two_sample_test(a[:, order], b[:, order], test).to_frame()
    expected = whole.iloc[order].reset_index(drop=True)
    np.testing.assert_array_equal(shuffled["ERRCODE"].to_numpy(), expected["ERRCODE"].to_numpy())
    numeric = [c for c in expected.columns if c != "ERRCODE"]
    np.testing.assert_allclose(shuffled[numeric].to_numpy(float), expected[numeric].to_numpy(float), rtol=1e-12, atol=0)
