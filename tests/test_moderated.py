"""limma's empirical-Bayes moderated t (``test="moderated"``) against limma's own numbers.

The reference values in ``tests/data/limma/`` were made by ``tests/data/make_limma_reference.R``
(``lmFit`` + ``eBayes``, ``squeezeVar``); the inputs are stored beside them, so R is not needed here.
"""

from __future__ import annotations

from math import comb
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from gwas_models.analysis.association import CONST, FEW_RUNS, NAN, OK, SEPARATED, set_untested, two_sample_test
from gwas_models.analysis.association_log import format_log
from gwas_models.analysis.moderated import (
    VariancePrior,
    fit_variance_prior,
    moderate,
    moderated_test,
    posterior_variance,
    trigamma_inverse,
)
from gwas_models.analysis.simulate import simulate_score_matrix
from gwas_models.analysis.study import AssociationSettings, associate
from gwas_models.errors import InputError
from gwas_models.formats.store import RunKey, run_table, write_dataset_info, write_run
from gwas_models.formats.sumstats import read_sumstats

LIMMA = Path(__file__).parent / "data" / "limma"
REFERENCE = pd.read_csv(LIMMA / "reference.csv")
CASES = list(dict.fromkeys(REFERENCE["case"]))
RTOL = 1e-10


def _limma_case(case: str) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """The (runs, examples) matrices of A and B of a case, and limma's rows for it."""
    values = pd.read_csv(LIMMA / f"{case}.values.csv", index_col="example")
    a = values[[c for c in values.columns if c.startswith("A_")]].to_numpy().T
    b = values[[c for c in values.columns if c.startswith("B_")]].to_numpy().T
    return a, b, REFERENCE[REFERENCE["case"] == case]


def _relative(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(ours) / np.asarray(theirs) - 1.0)))


# --------------------------------------------------------------------------------------------
# Against limma
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_moderated_t_equals_limma(case):
    a, b, rows = _limma_case(case)
    moderated = moderated_test(a, b, paired=case == "paired")
    result, prior = moderated.result, moderated.prior
    tested = rows["example"].to_numpy()
    assert set(np.flatnonzero(result.has_statistic)) == set(tested)  # limma drops SEPARATED ones too (no t)
    # limma's paired design (~pair + group) has residual variance var(B - A) / 2; ours is the
    # variance of the differences.
    scale = 2.0 if case == "paired" else 1.0
    assert prior.var == pytest.approx(scale * rows["s2_prior"].iloc[0], rel=RTOL)
    assert prior.n_examples == len(tested)
    if np.isinf(rows["df_prior"].iloc[0]):
        assert np.isinf(prior.df)
    else:
        assert prior.df == pytest.approx(rows["df_prior"].iloc[0], rel=RTOL)
    np.testing.assert_allclose(result.t_stat[tested], rows["t"], rtol=RTOL)
    np.testing.assert_allclose(result.df[tested], rows["df_total"], rtol=RTOL)
    unscaled = 1.0 / result.n_a + (0.0 if case == "paired" else 1.0 / result.n_b)
    np.testing.assert_allclose(result.se[tested] ** 2 / unscaled[tested], scale * rows["s2_post"], rtol=RTOL)
    # p where float64 holds it with full precision; -log10 p everywhere, also where p underflows.
    normal = rows["p_value"].to_numpy() > 1e-300
    np.testing.assert_allclose(result.p[tested][normal], rows["p_value"][normal], rtol=RTOL)
    np.testing.assert_allclose(result.neg_log10_p[tested], rows["neg_log10_p"], rtol=RTOL)


def test_the_reference_covers_tiny_p_and_an_infinite_prior_df():
    assert REFERENCE["neg_log10_p"].max() > 320  # p = 0 in float64: only log space gets it
    assert (REFERENCE.loc[REFERENCE["case"] == "twenty_vs_twenty", "neg_log10_p"] > 308).any()  # with a finite d0
    assert np.isinf(REFERENCE.loc[REFERENCE["case"] == "equal_variances", "df_prior"]).all()


@pytest.mark.parametrize("case", ["some_zero", "mostly_zero"])
def test_variance_prior_equals_limma_squeezevar_with_zero_variances(case):
    rows = pd.read_csv(LIMMA / "squeeze.csv").query("case == @case")
    variances, df = rows["var"].to_numpy(), rows["df"].to_numpy()
    assert (variances == 0).any()
    prior = fit_variance_prior(variances, df)
    assert prior.df == pytest.approx(rows["df_prior"].iloc[0], rel=RTOL)
    assert prior.var == pytest.approx(rows["var_prior"].iloc[0], rel=RTOL)
    np.testing.assert_allclose(posterior_variance(variances, df, prior), rows["var_post"], rtol=RTOL)


def test_constant_examples_keep_their_code_and_take_no_part_in_the_prior():
    a, b, rows = _limma_case("constant_removed")
    result = moderated_test(a, b).result
    assert (result.error[:5] == CONST).all() and (result.error[10:] == OK).all()  # 10-14: constant in A only
    assert np.isnan(result.t_stat[:10]).all() and np.isnan(result.p[:5]).all() and np.isnan(result.df[:10]).all()
    # 5-9: 0.25 in every run of A, 1.25 in every run of B: separated, with their exact p (2 of C(16, 8)).
    assert (result.error[5:10] == SEPARATED).all()
    np.testing.assert_allclose(result.p[5:10], 2 / comb(16, 8), rtol=1e-12)


def test_missing_runs_give_each_example_its_own_residual_df():
    a, b, rows = _limma_case("missing_runs")
    result = moderated_test(a, b)
    residual_df = result.result.n_a + result.result.n_b - 2.0
    assert len(np.unique(residual_df)) > 3
    np.testing.assert_allclose(result.result.df, residual_df + result.prior.df, rtol=1e-14)


def test_examples_that_cannot_be_tested_change_nothing_else():
    a, b, _ = _limma_case("eight_vs_eight")
    reference = moderated_test(a, b)
    extra_a = np.column_stack([a, np.full(8, np.nan), np.r_[1.0, np.full(7, np.nan)], np.full(8, 2.0)])
    extra_b = np.column_stack([b, np.ones(8), np.ones(8), np.full(8, 2.0)])
    moderated = moderated_test(extra_a, extra_b)
    assert list(moderated.result.error[-3:]) == [NAN, FEW_RUNS, CONST]
    # Equal up to rounding: a block with missing scores takes the masked path of the moments.
    assert moderated.prior.n_examples == reference.prior.n_examples
    assert moderated.prior.df == pytest.approx(reference.prior.df, rel=1e-12)
    np.testing.assert_allclose(moderated.result.p[:-3], reference.result.p, rtol=1e-12)


def test_examples_set_aside_before_moderating_take_no_part_in_the_prior():
    a, b, _ = _limma_case("eight_vs_eight")
    ordinary = two_sample_test(a, b, "student")
    aside = np.zeros(a.shape[1], dtype=bool)
    aside[:50] = True
    moderated = moderate(set_untested(ordinary, aside, CONST))
    assert moderated.prior == moderated_test(a[:, 50:], b[:, 50:]).prior
    assert (moderated.result.error[:50] == CONST).all() and np.isnan(moderated.result.p[:50]).all()


# --------------------------------------------------------------------------------------------
# The prior's pieces
# --------------------------------------------------------------------------------------------


def test_trigamma_inverse_inverts_trigamma_on_every_range():
    x = np.array([1e-9, 1e-6, 1e-3, 0.1, 1.0, 10.0, 1e4, 1e7, 1e9])
    y = trigamma_inverse(x)
    np.testing.assert_allclose(special.polygamma(1, y), x, rtol=1e-12)
    assert trigamma_inverse(0.5).shape == () and float(trigamma_inverse(0.5)) == pytest.approx(2.4599529483523077, rel=1e-14)
    assert np.isnan(trigamma_inverse(np.array([np.nan, -1.0]))).all()


def test_alike_variances_give_an_infinite_prior_df_and_the_mean_variance():
    prior = fit_variance_prior(np.full(100, 2.5), 6)
    assert np.isinf(prior.df) and prior.var == pytest.approx(2.5)
    np.testing.assert_array_equal(posterior_variance(np.linspace(1, 4, 5), 6, prior), np.full(5, prior.var))
    assert "d0 = inf" in prior.describe() and "s0^2 = 2.5" in prior.describe()


def test_one_example_has_nothing_to_pool():
    assert fit_variance_prior(np.array([3.0]), 4) == VariancePrior(df=0.0, var=3.0, n_examples=1)


@pytest.mark.parametrize(
    "variances, df, parameter",
    [(np.array([]), 4, "variances"), (np.array([1.0, np.nan]), 4, "variances"), (np.array([1.0, -1.0]), 4, "variances"), (np.ones(3), 0, "df")],
)
def test_bad_variances_name_their_parameter(variances, df, parameter):
    with pytest.raises(InputError) as error:
        fit_variance_prior(variances, df)
    assert error.value.parameter == parameter


# --------------------------------------------------------------------------------------------
# Calibration and bad input
# --------------------------------------------------------------------------------------------


def _null_scores(rng: np.random.Generator, n_examples: int, n_runs: int, structure: str) -> tuple[np.ndarray, np.ndarray]:
    """Two groups with the same distribution per example; variances from the prior the moderated
    t assumes (scaled inverse chi-square, d0 = 6) or log-normal (an assumption it does not make)."""
    if structure == "inverse_chi2":
        variances = 6.0 / rng.chisquare(6.0, n_examples)
    else:
        variances = np.exp(rng.normal(0.0, 1.0, n_examples))
    sd, mean = np.sqrt(variances), rng.normal(0.0, 3.0, n_examples)
    return mean + sd * rng.normal(size=(n_runs, n_examples)), mean + sd * rng.normal(size=(n_runs, n_examples))


@pytest.mark.parametrize("structure", ["inverse_chi2", "lognormal"])
def test_null_p_values_are_uniform_and_family_wise_error_holds(structure):
    rng = np.random.default_rng(12)
    n_studies, n_examples, alpha = 200, 500, 0.01
    p = np.array([moderated_test(*_null_scores(rng, n_examples, 8, structure)).result.p for _ in range(n_studies)])
    family_wise_error = np.mean((p <= alpha / n_examples).any(axis=1))
    assert family_wise_error <= 0.03  # alpha 0.01; 200 studies: 0.03 is 2.9 binomial sd above
    for level in (0.001, 0.01, 0.05, 0.2, 0.5):
        share = np.mean(p <= level)
        assert abs(share - level) <= 4 * np.sqrt(level * (1 - level) / p.size) + 0.1 * level, (level, share)


def test_paired_null_is_calibrated_too():
    rng = np.random.default_rng(5)
    seed_part = rng.normal(0.0, 2.0, (6, 4000))
    a = seed_part + rng.normal(size=(6, 4000)) * np.exp(rng.normal(0, 0.5, 4000))
    b = seed_part + rng.normal(size=(6, 4000)) * np.exp(rng.normal(0, 0.5, 4000))
    p = moderated_test(a, b, paired=True).result.p
    assert stats.kstest(p, "uniform").pvalue > 1e-3


def test_fewer_than_two_runs_in_a_group_is_an_error():
    with pytest.raises(InputError, match="group B has 1 run"):
        moderated_test(np.ones((3, 5)), np.ones((1, 5)))


def test_all_examples_constant_is_a_one_line_error():
    with pytest.raises(InputError) as error:
        moderated_test(np.ones((4, 10)), np.zeros((4, 10)))
    assert "constant" in error.value.message and "\n" not in error.value.message


def test_only_student_or_paired_results_can_be_moderated():
    a, b, _ = _limma_case("three_vs_three")
    with pytest.raises(InputError) as error:
        moderate(two_sample_test(a, b, "welch"))
    assert error.value.parameter == "test"


# --------------------------------------------------------------------------------------------
# In a study, the log and the command line
# --------------------------------------------------------------------------------------------


@pytest.fixture
def matrix():
    rng = np.random.default_rng(3)
    return simulate_score_matrix(rng, 400, {"A": 5, "B": 5}, effect_examples=np.arange(12), effect_size=3.0)


def test_study_uses_the_moderated_t_and_logs_its_prior(matrix):
    study = associate(matrix, test="moderated", normalize="none")
    table = study.pairs[0].sumstats
    expected = moderated_test(matrix.runs_of("A"), matrix.runs_of("B"))
    np.testing.assert_array_equal(table["T_STAT"], expected.result.t_stat)
    np.testing.assert_array_equal(table["SE"], expected.result.se)
    np.testing.assert_array_equal(table["DF"], expected.result.df)
    assert study.pairs[0].scores[0].variance_prior == expected.prior
    log = format_log(study, study.pairs[0])
    assert "test: moderated t (limma eBayes" in log
    assert "loss: prior degrees of freedom d0 = " in log and "prior variance s0^2 = " in log


def test_study_moderates_paired_differences(matrix):
    study = associate(matrix, test="moderated", paired=True, normalize="none")
    expected = moderated_test(matrix.runs_of("A"), matrix.runs_of("B"), paired=True)
    np.testing.assert_array_equal(study.pairs[0].sumstats["P"], expected.result.p)
    assert "moderated paired t" in study.settings.describe()


def test_a_score_with_nothing_to_test_keeps_its_errcodes_and_the_study_goes_on(matrix):
    """Forgetting of runs that never forget: every example CONST, no prior, the other scores tested."""
    constant = simulate_score_matrix(np.random.default_rng(0), 400, {"A": 5, "B": 5}, noise_sd=0.0, difficulty_sd=0.0)
    never = type(matrix)(**{**constant.__dict__, "score": "forgetting"})
    study = associate({"loss": matrix, "forgetting": never}, test="moderated")
    forgetting = next(s for s in study.pairs[0].scores if s.score == "forgetting")
    assert forgetting.n_tested == 0 and forgetting.errcodes == {"CONST": 400} and forgetting.variance_prior is None
    loss = next(s for s in study.pairs[0].scores if s.score == "loss")
    assert loss.n_tested == 400 and loss.variance_prior is not None


def test_raw_constant_examples_stay_out_of_the_prior_when_normalised(matrix):
    values = matrix.values.copy()
    values[:, :30] = np.where(matrix.groups[:, None] == "A", 1.0, 2.0)  # constant within each group: separated
    values[:, 30:40] = 1.0  # constant in every run
    study = associate(type(matrix)(**{**matrix.__dict__, "values": values}), test="moderated", normalize="rank")
    summary = study.pairs[0].scores[0]
    assert summary.errcodes == {"CONST": 10} and summary.n_separated == 30 and summary.variance_prior.n_examples == 360


def test_settings_accept_moderated():
    settings = AssociationSettings(test=" Moderated ")
    assert settings.test == "moderated" and settings.moderated and settings.t_test == "student"
    assert AssociationSettings(test="moderated", paired=True).t_test == "paired"


def test_command_line_runs_the_moderated_t(tmp_path, run_gwasm, monkeypatch):
    store = tmp_path / "store"
    rng = np.random.default_rng(1)
    write_dataset_info(store, "toy", {"n_examples": 80, "class_names": ["a", "b"], "source": {"kind": "test"}})
    for arch in ("mlp", "vgg"):
        for seed in range(4):
            loss = rng.normal(size=80) * np.exp(np.linspace(-1, 1, 80)) + (2.0 * (np.arange(80) < 5) if arch == "vgg" else 0.0)
            write_run(store, RunKey("toy", arch, seed), run_table(np.arange(80), np.arange(80) % 2, {"loss": loss}), {})
    code, out, err = run_gwasm("associate", "mlp", "vgg", "--store", store, "--test", "moderated", "--out", tmp_path / "res")
    assert code == 0, err
    assert "prior degrees of freedom d0 = " in (tmp_path / "res.mlp_vs_vgg.log").read_text()
    assert "--test moderated" in (tmp_path / "res.mlp_vs_vgg.log").read_text()
    table = read_sumstats(tmp_path / "res.mlp_vs_vgg.sumstats.parquet")
    loss = table[table["SCORE"].astype(str) == "loss"]
    assert len(loss) == 80 and (loss["DF"] > 6).all()  # d = 6, plus the prior's d0
    code, out, err = run_gwasm("associate", "--help")
    assert "moderated" in out and "few runs per" in " ".join(out.split())
