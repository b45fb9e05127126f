"""limma's ``eBayes(trend=TRUE)`` and ``eBayes(robust=TRUE)`` (``--trend``, ``--robust``) against limma.

The references (``tests/data/limma/options.csv``, ``lowess.csv``) were made by
``tests/data/make_limma_reference.R``; the inputs are stored beside them, so R is not needed here.
Covariate cases of the same file are in ``tests/test_covariates.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gwas_models.analysis._smoothing import find_root, lowess, natural_spline_basis
from gwas_models.analysis.association_log import format_log
from gwas_models.analysis.moderated import VariancePrior, fit_variance_prior, moderated_test, posterior_variance
from gwas_models.analysis.simulate import simulate_score_matrix
from gwas_models.analysis.study import AssociationSettings, associate
from gwas_models.errors import InputError

LIMMA = Path(__file__).parent / "data" / "limma"
OPTIONS = pd.read_csv(LIMMA / "options.csv")
CASES = [case for case, rows in OPTIONS.groupby("case", sort=False) if rows["covariates"].iloc[0] == "none"]
RTOL = 1e-8


def _values(name: str) -> tuple[np.ndarray, np.ndarray]:
    values = pd.read_csv(LIMMA / f"{name}.values.csv", index_col="example")
    a = values[[c for c in values.columns if c.startswith("A_")]].to_numpy().T
    b = values[[c for c in values.columns if c.startswith("B_")]].to_numpy().T
    return a, b


def assert_equals_limma(moderated, rows: pd.DataFrame, scale: float = 1.0) -> None:
    """A ModeratedResult against limma's eBayes rows (the examples limma fitted), at RTOL."""
    result, prior = moderated.result, moderated.prior
    examples = rows["example"].to_numpy()
    assert set(np.flatnonzero(result.tested)) == set(examples)
    np.testing.assert_allclose(result.t_stat[examples], rows["t"], rtol=RTOL)
    np.testing.assert_allclose(result.df[examples], rows["df_total"], rtol=RTOL)
    np.testing.assert_allclose(np.broadcast_to(prior.df, examples.shape), rows["df_prior"], rtol=RTOL)
    np.testing.assert_allclose(np.broadcast_to(prior.var, examples.shape), scale * rows["s2_prior"], rtol=RTOL)
    normal = rows["p_value"].to_numpy() > 1e-300
    np.testing.assert_allclose(result.p[examples][normal], rows["p_value"][normal], rtol=RTOL)
    np.testing.assert_allclose(result.neg_log10_p[examples], rows["neg_log10_p"], rtol=RTOL)


@pytest.mark.parametrize("case", CASES)
def test_trend_and_robust_equal_limma(case):
    rows = OPTIONS[OPTIONS["case"] == case]
    a, b = _values(rows["values"].iloc[0])
    moderated = moderated_test(a, b, trend=bool(rows["trend"].iloc[0]), robust=bool(rows["robust"].iloc[0]))
    assert moderated.prior.trend == bool(rows["trend"].iloc[0]) and moderated.prior.robust == bool(rows["robust"].iloc[0])
    assert_equals_limma(moderated, rows)
    # s2.post through the posterior variance (unscaled variance 1/n_a + 1/n_b).
    examples = rows["example"].to_numpy()
    unscaled = 1.0 / moderated.result.n_a + 1.0 / moderated.result.n_b
    np.testing.assert_allclose(moderated.result.se[examples] ** 2 / unscaled[examples], rows["s2_post"], rtol=RTOL)


def test_the_options_cover_every_branch_of_limma():
    by_case = OPTIONS.groupby("case")
    df_prior = by_case["df_prior"].agg(["min", "max"])
    s2_prior = by_case["s2_prior"].agg(["min", "max"])
    assert np.isinf(df_prior.loc["counts_trend"]).all()  # the trend explains every variance: d0 = inf
    assert np.isinf(df_prior.loc["equal_variances_robust"]).all()  # robust's winsorised spread below chance
    assert np.isinf(df_prior.loc["counts_trend_robust", "max"]) and np.isfinite(df_prior.loc["counts_trend_robust", "min"])
    assert df_prior.loc["hypervariable_robust", "min"] < 0.9 * df_prior.loc["hypervariable_robust", "max"]  # outliers
    assert s2_prior.loc["hypervariable_trend", "max"] > 10 * s2_prior.loc["hypervariable_trend", "min"]  # a real trend
    assert OPTIONS.loc[OPTIONS["case"] == "missing_runs_robust", "df_residual"].nunique() > 3  # df mapped to the largest


def test_lowess_equals_limma_loessfit_with_ties_gaps_and_outliers():
    data = pd.read_csv(LIMMA / "lowess.csv")
    fitted = lowess(data["x"].to_numpy(), data["y"].to_numpy(), span=0.4, iterations=4)
    np.testing.assert_allclose(fitted, data["fitted"], rtol=RTOL)


def test_natural_spline_basis_spans_cubics_with_zero_curvature_at_the_ends():
    x = np.linspace(-1.0, 2.0, 41)
    basis = natural_spline_basis(x, 4)
    assert basis.shape == (41, 4) and np.linalg.matrix_rank(basis) == 4
    # Constants and straight lines are natural splines; a pure quadratic is not.
    for target, inside in ((np.ones_like(x), True), (3 * x - 1, True), (x**2, False)):
        coefficients, residual, *_ = np.linalg.lstsq(basis, target, rcond=None)
        assert np.allclose(basis @ coefficients, target, atol=1e-10) == inside


def test_find_root_is_brent_to_the_tolerance():
    root = find_root(lambda u: np.log(u) + 0.5, 0.01, 1.0, np.log(0.01) + 0.5, 0.5, 1e-12)
    assert root == pytest.approx(np.exp(-0.5), abs=1e-11)


def test_posterior_variance_per_example_prior_df_with_infinite_entries():
    prior = VariancePrior(df=np.array([np.inf, 2.0, 0.0]), var=np.array([1.0, 2.0, 3.0]), n_examples=3, robust=True, trend=True)
    np.testing.assert_allclose(posterior_variance(np.array([5.0, 5.0, 5.0]), 4, prior), [1.0, (4 + 20) / 6, 5.0])


def test_describe_says_trend_and_robust():
    a, b = _values("hypervariable")
    prior = moderated_test(a, b, trend=True, robust=True).prior
    text = prior.describe()
    assert "follows the mean score (trend)" in text and "robust:" in text and "examples with outlying variances" in text
    assert "\n" not in text


def test_bad_inputs_are_one_line_input_errors():
    with pytest.raises(InputError) as error:
        fit_variance_prior(np.ones(5), 3, covariate=np.ones(4))
    assert error.value.parameter == "covariate"
    with pytest.raises(InputError) as error:
        fit_variance_prior(np.r_[np.zeros(10), np.ones(3)], 3, robust=True)
    assert error.value.parameter == "variances" and "mostly zero" in error.value.message
    for option in ("trend", "robust"):
        with pytest.raises(InputError) as error:
            AssociationSettings(test="welch", **{option: True})
        assert error.value.parameter == option and "\n" not in error.value.message


def test_single_variance_and_tiny_sets():
    prior = fit_variance_prior(np.array([3.0]), 4, covariate=np.array([1.0]), robust=True)
    assert prior.df[0] == 0 and prior.var[0] == 3.0
    # Two variances: robust falls back to the plain fit; a constant covariate to no trend.
    plain = fit_variance_prior(np.array([1.0, 2.0, 4.0]), 4)
    flat = fit_variance_prior(np.array([1.0, 2.0, 4.0]), 4, covariate=np.full(3, 0.5))
    np.testing.assert_allclose(flat.var, plain.var) and np.testing.assert_allclose(flat.df, plain.df)


def test_study_passes_trend_and_robust_to_the_test_and_the_log():
    matrix = simulate_score_matrix(np.random.default_rng(5), 300, {"A": 4, "B": 4}, effect_examples=np.arange(10), effect_size=3.0)
    settings = AssociationSettings(test="moderated", trend=True, robust=True, normalize="none")
    study = associate(matrix, settings=settings)
    expected = moderated_test(matrix.runs_of("A"), matrix.runs_of("B"), trend=True, robust=True)
    np.testing.assert_array_equal(study.pairs[0].sumstats["T_STAT"], expected.result.t_stat)
    prior = study.pairs[0].scores[0].variance_prior
    assert prior.trend and prior.robust
    assert "eBayes: trend+robust" in settings.describe()
    log = format_log(study, study.pairs[0])
    assert "trend=TRUE" in log and "follows the mean score (trend)" in log
    assert np.isfinite(study.pairs[0].scores[0].lambda_null.lambda_gc)
