"""Multiple-testing adjustment and genomic control."""

from __future__ import annotations

import gc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.multitest import multipletests

from gwas_models.analysis.multitest import (
    ADJUST_METHODS,
    CHI2_1DF_MEDIAN,
    adjust_neg_log10_p,
    adjust_pvalues,
    check_alpha,
    count_significant,
    genomic_control_lambda,
    parse_adjust_list,
)
from gwas_models.errors import InputError


@pytest.mark.parametrize("method", ADJUST_METHODS)
def test_adjusted_p_equals_statsmodels_on_the_tested_examples(method):
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.uniform(size=500), rng.uniform(0, 1e-4, 20), [np.nan] * 7, [1.0, 0.0]])
    rng.shuffle(p)
    ours = adjust_pvalues(p, [method])[method].to_numpy()
    finite = np.isfinite(p)
    with np.errstate(divide="ignore"):
        expected = multipletests(p[finite], method=method)[1]
    np.testing.assert_allclose(ours[finite], expected, rtol=1e-15, atol=0)
    assert np.isnan(ours[~finite]).all()


def test_holm_equals_statsmodels_bit_for_bit_and_leaves_the_garbage_collector_alone():
    p = np.random.default_rng(1).uniform(size=2000) ** 4
    with np.errstate(divide="ignore"):
        expected = multipletests(p, method="holm")[1]
    gc.freeze()  # a caller's own freeze must survive the adjustment (unfreezing would empty it)
    try:
        ours = adjust_pvalues(p, ADJUST_METHODS)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    np.testing.assert_array_equal(ours["holm"].to_numpy(), expected)


def test_one_missing_p_does_not_poison_fdr_bh():
    p = np.array([0.001, 0.02, np.nan, 0.5])
    assert np.isnan(multipletests(p, method="fdr_bh")[1]).all()  # the trap this module avoids
    adjusted = adjust_pvalues(p, ["fdr_bh"])["fdr_bh"].to_numpy()
    np.testing.assert_allclose(adjusted[[0, 1, 3]], [0.003, 0.03, 0.5])


def test_adjust_pvalues_returns_one_column_per_method_in_order():
    frame = adjust_pvalues(np.array([0.01, 0.2]), ["holm", "bonferroni"])
    assert list(frame.columns) == ["holm", "bonferroni"]
    assert adjust_pvalues(np.array([np.nan, np.nan])).isna().all().all()
    assert len(adjust_pvalues(np.array([]))) == 0


@pytest.mark.parametrize("n", [1, 2, 999, 1000])
def test_lambda_gc_is_the_median_chi_squared_over_its_null_median(n):
    rng = np.random.default_rng(n)
    p = rng.uniform(size=n)
    expected = np.median(stats.chi2.isf(p, 1)) / stats.chi2.ppf(0.5, 1)
    assert genomic_control_lambda(np.append(p, np.nan)) == pytest.approx(expected, rel=1e-10)
    assert CHI2_1DF_MEDIAN == pytest.approx(0.454936423119572, rel=1e-12)


def test_lambda_gc_of_inflated_and_of_no_tests():
    rng = np.random.default_rng(1)
    z = rng.normal(0.0, 1.3, 50_000)  # every statistic scaled by 1.3: lambda about 1.69
    assert genomic_control_lambda(2 * stats.norm.sf(np.abs(z))) == pytest.approx(1.69, abs=0.05)
    assert np.isnan(genomic_control_lambda(np.array([np.nan])))


def test_parse_adjust_list_and_alpha_checks():
    assert parse_adjust_list(None) == ADJUST_METHODS
    assert parse_adjust_list("all") == ADJUST_METHODS
    assert parse_adjust_list(" Holm, fdr_bh,holm") == ("holm", "fdr_bh")
    with pytest.raises(InputError, match="unknown adjustment method 'hs'") as refused:
        parse_adjust_list("bonferroni,hs", parameter="methods")
    assert refused.value.parameter == "methods" and str(refused.value).startswith("methods ")
    assert check_alpha(0.05) == 0.05
    for bad in (0.0, 1.0, -0.1, 2.0):
        with pytest.raises(InputError, match="alpha must be strictly between 0 and 1"):
            check_alpha(bad)
    assert count_significant(np.array([0.01, 0.02, np.nan, 0.011]), 0.011) == 2


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.one_of(st.floats(0.0, 1.0), st.just(float("nan"))), min_size=1, max_size=40),
    st.sampled_from(ADJUST_METHODS),
)
def test_adjusted_p_is_at_least_raw_p_and_at_most_one(p, method):
    p = np.asarray(p)
    adjusted = adjust_pvalues(p, [method])[method].to_numpy()
    finite = np.isfinite(p)
    np.testing.assert_array_equal(np.isfinite(adjusted), finite)
    assert np.all(adjusted[finite] >= p[finite] - 1e-15)
    assert np.all(adjusted[finite] <= 1.0)


@pytest.mark.parametrize("method", ADJUST_METHODS)
def test_log_space_adjustment_equals_statsmodels_where_p_is_representable(method):
    rng = np.random.default_rng(2)
    p = np.concatenate([rng.uniform(size=300), rng.uniform(0, 1e-6, 30), 10.0 ** -rng.uniform(20, 290, 10), [np.nan] * 3, [1.0]])
    p = np.concatenate([p, p[:5]])  # ties
    rng.shuffle(p)
    with np.errstate(divide="ignore"):
        neg_log10_p = -np.log10(p)
    logged = adjust_neg_log10_p(neg_log10_p, [method])[method].to_numpy()
    expected = adjust_pvalues(p, [method])[method].to_numpy()
    finite = np.isfinite(p)
    assert np.isnan(logged[~finite]).all() and (logged[finite] >= 0).all()
    np.testing.assert_allclose(10.0 ** -logged[finite], expected[finite], rtol=1e-11, atol=0)


def test_log_space_adjustment_far_below_the_smallest_double():
    # Regression (issue 12): adjusted p below 1e-308 was 0. Every value here underflows as a p.
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 30
    x = np.array([400.0, 350.5, 350.5, 2.0, 0.5, 1000.0])
    n = len(x)
    p = [mp.mpf(10) ** -mp.mpf(v) for v in x]
    order = sorted(range(n), key=lambda i: p[i])

    def exact(method: str) -> list:
        ranked = [p[i] for i in order]
        if method in ("bonferroni", "sidak"):
            raw = [min(1, n * q) if method == "bonferroni" else -mp.expm1(n * mp.log1p(-q)) for q in ranked]
        elif method == "holm":
            raw = [min(1, max((n - j) * ranked[j] for j in range(k + 1))) for k in range(n)]
        else:
            factor = sum(mp.mpf(1) / i for i in range(1, n + 1)) if method == "fdr_by" else 1
            raw = [min(1, min(ranked[j] * n / (j + 1) * factor for j in range(k, n))) for k in range(n)]
        values = [0] * n
        for rank, i in enumerate(order):
            values[i] = -mp.log10(raw[rank])
        return [float(v) for v in values]

    logged = adjust_neg_log10_p(x)
    for method in ADJUST_METHODS:
        np.testing.assert_allclose(logged[method].to_numpy(), exact(method), rtol=1e-12, err_msg=method)
    assert adjust_pvalues(10.0 ** -x)["bonferroni"].to_numpy()[0] == 0.0  # what float p makes of it
