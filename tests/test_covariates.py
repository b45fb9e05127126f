"""Run covariates (``--covariates``): per-example linear models ``score ~ group + covariates``.

Student's and the moderated t against limma's ``lmFit`` + ``eBayes`` (``tests/data/limma/options.csv``,
made by ``tests/data/make_limma_reference.R``); Welch's HC2 / Bell-McCaffrey test against its
reduction to Welch's t, statsmodels' HC2 and a direct matrix computation; the covariate table, its
errors, the study and the command line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from gwas_models.analysis.association import CONST, FEW_RUNS, OK, two_sample_test
from gwas_models.analysis.association_log import format_log
from gwas_models.analysis.covariates import (
    RunCovariates,
    covariate_moderated_test,
    covariate_test,
    design_matrix,
)
from gwas_models.analysis.moderated import moderated_test
from gwas_models.analysis.multitest import genomic_control_lambda
from gwas_models.analysis.study import AssociationSettings, associate
from gwas_models.errors import InputError
from gwas_models.formats.covariates_file import read_covariates_table
from gwas_models.formats.store import RunKey, run_table, write_dataset_info, write_run
from gwas_models.formats.sumstats import read_sumstats, read_sumstats_metadata
from gwas_models.matrix import ScoreMatrix

LIMMA = Path(__file__).parent / "data" / "limma"
OPTIONS = pd.read_csv(LIMMA / "options.csv")
COVARIATE_CASES = [case for case, rows in OPTIONS.groupby("case", sort=False) if rows["covariates"].iloc[0] != "none"]
RTOL = 1e-8


def _limma_inputs(name: str):
    """Scores of A and B and each run's covariates (design columns) of a stored case."""
    values = pd.read_csv(LIMMA / f"{name}.values.csv", index_col="example")
    a = values[[c for c in values.columns if c.startswith("A_")]].to_numpy().T
    b = values[[c for c in values.columns if c.startswith("B_")]].to_numpy().T
    table = pd.read_csv(LIMMA / f"{name}.covariates.csv")
    table.insert(0, "arch", table.pop("run").str[0])
    table.insert(1, "seed", [int(run[2:]) for run in pd.read_csv(LIMMA / f"{name}.covariates.csv")["run"]])
    covariates = RunCovariates.from_frame(table)
    return a, b, covariates.for_runs("A", range(a.shape[0])), covariates.for_runs("B", range(b.shape[0])), covariates


# --------------------------------------------------------------------------------------------
# Against limma
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", COVARIATE_CASES)
def test_covariate_fits_equal_limma_lmfit_and_ebayes(case):
    rows = OPTIONS[OPTIONS["case"] == case]
    a, b, covariates_a, covariates_b, covariates = _limma_inputs(rows["values"].iloc[0])
    examples = rows["example"].to_numpy()
    ordinary = covariate_test(a, b, covariates_a, covariates_b, "student", covariate_names=covariates.names)
    assert set(np.flatnonzero(ordinary.result.tested)) == set(examples)
    np.testing.assert_allclose(ordinary.result.beta[examples], rows["coefficient"], rtol=RTOL)
    np.testing.assert_allclose(np.sqrt(ordinary.unscaled_variance[examples]), rows["stdev_unscaled"], rtol=RTOL)
    np.testing.assert_allclose(ordinary.result.t_stat[examples], rows["t_ordinary"], rtol=RTOL)
    np.testing.assert_allclose(ordinary.result.df[examples], rows["df_residual"], rtol=RTOL)
    np.testing.assert_allclose(ordinary.result.p[examples], rows["p_ordinary"], rtol=RTOL)
    moderated = covariate_moderated_test(
        a, b, covariates_a, covariates_b, trend=bool(rows["trend"].iloc[0]), robust=bool(rows["robust"].iloc[0])
    )
    result, prior = moderated.result, moderated.prior
    np.testing.assert_allclose(result.t_stat[examples], rows["t"], rtol=RTOL)
    np.testing.assert_allclose(result.df[examples], rows["df_total"], rtol=RTOL)
    np.testing.assert_allclose(np.broadcast_to(prior.df, examples.shape), rows["df_prior"], rtol=RTOL)
    np.testing.assert_allclose(np.broadcast_to(prior.var, examples.shape), rows["s2_prior"], rtol=RTOL)
    np.testing.assert_allclose(result.p[examples], rows["p_value"], rtol=RTOL)
    np.testing.assert_allclose(result.neg_log10_p[examples], rows["neg_log10_p"], rtol=RTOL)


def test_the_covariate_cases_have_a_batch_factor_and_missing_scores():
    _, _, _, _, covariates = _limma_inputs("covariate_batch")
    assert covariates.names == ("accuracy", "batch[b2]") and "reference b1" in covariates.describe()
    rows = OPTIONS[OPTIONS["case"] == "covariate_batch_none"]
    assert rows["df_residual"].nunique() > 3  # examples fitted on their finite runs


# --------------------------------------------------------------------------------------------
# Welch with covariates
# --------------------------------------------------------------------------------------------


def _groups(seed: int, n_a: int = 5, n_b: int = 7, n_examples: int = 40):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n_a, n_examples)), rng.normal(2.0, 1.0, size=(n_b, n_examples)) * rng.uniform(0.5, 3, n_examples)


def test_without_covariates_welch_is_welch_and_student_is_student():
    a, b = _groups(0)
    none_a, none_b = np.empty((a.shape[0], 0)), np.empty((b.shape[0], 0))
    welch = covariate_test(a, b, none_a, none_b, "welch").result
    scipy = stats.ttest_ind(b, a, equal_var=False)
    np.testing.assert_allclose(welch.t_stat, scipy.statistic, rtol=1e-12)
    np.testing.assert_allclose(welch.df, scipy.df, rtol=1e-12)
    np.testing.assert_allclose(welch.p, scipy.pvalue, rtol=1e-10)
    student = covariate_test(a, b, none_a, none_b, "student").result
    reference = two_sample_test(a, b, "student")
    for field in ("beta", "se", "t_stat", "df", "p", "cohen_d"):
        np.testing.assert_allclose(getattr(student, field), getattr(reference, field), rtol=1e-12)


def _direct_welch(y: np.ndarray, design: np.ndarray, in_b: np.ndarray) -> tuple[float, float, float]:
    """HC2 SE and the Bell-McCaffrey df of the group coefficient of one example, by explicit matrices."""
    inverse = np.linalg.inv(design.T @ design)
    hat = design @ inverse @ design.T
    coefficient = (inverse @ design.T @ y)[1]
    residuals = y - hat @ y
    leverage = np.diag(hat)
    weights = (inverse @ design.T)[1]
    a = np.diag(weights**2 / (1 - leverage))
    se = np.sqrt(residuals @ a @ residuals)
    m = np.eye(len(y)) - hat
    b = m @ a @ m
    omega = np.where(in_b, (residuals[in_b] ** 2).sum() / (1 - leverage[in_b]).sum(), (residuals[~in_b] ** 2).sum() / (1 - leverage[~in_b]).sum())
    bo = b @ np.diag(omega)
    return coefficient, se, np.trace(bo) ** 2 / np.trace(bo @ bo)


def test_welch_with_covariates_is_hc2_with_bell_mccaffrey_df():
    a, b = _groups(1)
    rng = np.random.default_rng(2)
    covariates_a, covariates_b = rng.normal(size=(5, 2)), rng.normal(size=(7, 2))
    a[3, 5], b[6, 7], b[0, 7] = np.nan, np.nan, np.nan  # missing scores: other runs, other fits
    fit = covariate_test(a, b, covariates_a, covariates_b, "welch").result
    design = design_matrix(covariates_a, covariates_b)
    y = np.vstack([a, b])
    in_b = np.r_[np.zeros(5, dtype=bool), np.ones(7, dtype=bool)]
    for example in range(y.shape[1]):  # the reference, one example at a time
        observed = np.isfinite(y[:, example])
        coefficient, se, df = _direct_welch(y[observed, example], design[observed], in_b[observed])
        hc2 = sm.OLS(y[observed, example], design[observed]).fit(cov_type="HC2")
        assert fit.beta[example] == pytest.approx(coefficient, rel=1e-10)
        assert fit.se[example] == pytest.approx(se, rel=1e-10) == hc2.bse[1]
        assert fit.df[example] == pytest.approx(df, rel=1e-10)
    assert fit.df[5] != fit.df[6]


def test_welch_refuses_a_run_fitted_exactly():
    made = _matrix(np.random.default_rng(3), 30, n_runs=4)
    matrix = made[0]
    frame = _covariate_frame(made, batch=["x", "y", "y", "y", "y", "y", "y", "y"])  # one run alone in batch x
    with pytest.raises(InputError) as error:
        associate(matrix, settings=AssociationSettings(covariates=RunCovariates.from_frame(frame), normalize="none"))
    assert error.value.parameter == "covariates" and "exactly" in error.value.message
    study = associate(matrix, settings=AssociationSettings(test="student", covariates=RunCovariates.from_frame(frame), normalize="none"))
    assert study.pairs[0].scores[0].n_tested == 30


def test_examples_that_lose_their_residual_df_are_few_runs_and_constants_stay_const():
    a, b = _groups(4, 3, 3, 6)
    a[:, 0], b[:, 0] = 1.0, 1.0
    a[2, 1] = np.nan  # 5 runs, 4 coefficients: 1 residual df left
    a[1:, 2] = np.nan  # A has one run: FEW_RUNS already
    covariates_a, covariates_b = np.array([[0.1, 1], [0.5, 0], [0.2, 1]]), np.array([[0.9, 0], [0.3, 1], [0.6, 1]])
    fit = covariate_test(a, b, covariates_a, covariates_b, "student").result
    assert fit.error[0] == CONST and fit.error[1] == OK and fit.df[1] == 1 and fit.error[2] == FEW_RUNS
    b[1, 3] = np.nan
    a[1, 3] = np.nan  # 4 runs for 4 coefficients: no residual df
    assert covariate_test(a, b, covariates_a, covariates_b, "student").result.error[3] == FEW_RUNS


# --------------------------------------------------------------------------------------------
# The covariate table
# --------------------------------------------------------------------------------------------


def test_table_encodes_numbers_and_categories_and_finds_runs():
    frame = pd.DataFrame({"arch": ["a", "a", "b", "b"], "seed": [0, 1, 0, 1], "acc": [0.9, 0.8, 0.7, 0.95], "gpu": ["v100", "a100", "a100", "h100"]})
    covariates = RunCovariates.from_frame(frame)
    assert covariates.columns == ("acc", "gpu") and covariates.names == ("acc", "gpu[h100]", "gpu[v100]")
    np.testing.assert_array_equal(covariates.for_runs("b", [1, 0]), [[0.95, 1, 0], [0.7, 0, 0]])
    assert covariates.describe() == "acc, gpu (categorical, reference a100)"


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f: f.drop(columns="seed"), "need columns arch and seed; missing: seed"),
        (lambda f: f[["arch", "seed"]], "no covariate column"),
        (lambda f: f.assign(acc=[0.9, np.nan, 0.7, 0.8]), "covariates (t): 'acc' is missing (NaN) for run a seed 1"),
        (lambda f: f.assign(acc=["0.9", "high", "0.7", "0.8"]), "mixes numbers and other values: 'high' for run a seed 1"),
        (lambda f: f.assign(acc=[0.9, np.inf, 0.7, 0.8]), "is infinite for run a seed 1"),
        (lambda f: f.assign(seed=[0, 0, 0, 1]), "list run a seed 0 twice"),
        (lambda f: f.assign(seed=[0, 1.5, 0, 1]), "seed must be an integer, got '1.5'"),
    ],
)
def test_bad_tables_are_one_line_input_errors(change, message):
    frame = pd.DataFrame({"arch": ["a", "a", "b", "b"], "seed": [0, 1, 0, 1], "acc": [0.9, 0.8, 0.7, 0.95]})
    with pytest.raises(InputError) as error:
        RunCovariates.from_frame(change(frame), where="t")
    assert error.value.parameter == "covariates" and message in error.value.message and "\n" not in error.value.message


def test_runs_without_a_row_singular_designs_and_unsupported_settings_are_refused():
    made = _matrix(np.random.default_rng(5), 20)
    matrix = made[0]
    frame = _covariate_frame(made)
    cases = [
        (frame.iloc[1:], "no row for 1 run(s) of A used in the test: seed 0"),
        (frame.assign(accuracy=0.9), "covariates: 'accuracy' is constant over the runs of A and B"),
        (frame.assign(accuracy=(frame["arch"] == "B") * 0.1), "covariates: 'accuracy' is collinear with the group"),
        (frame.assign(gpu=frame["accuracy"] * 2 + (frame["arch"] == "B")), "covariates: 'gpu' is collinear with the group and the covariates before it"),
    ]
    for table, message in cases:
        with pytest.raises(InputError) as error:
            associate(matrix, settings=AssociationSettings(covariates=RunCovariates.from_frame(table), normalize="none"))
        assert error.value.parameter == "covariates" and message in error.value.message, error.value.message
    covariates = RunCovariates.from_frame(frame)
    for options in ({"test": "permutation"}, {"paired": True}):
        with pytest.raises(InputError) as error:
            AssociationSettings(covariates=covariates, **options)
        assert error.value.parameter == "covariates"
    three = _matrix(np.random.default_rng(6), 20, archs=("A", "B", "C"))
    with pytest.raises(InputError) as error:
        associate(three[0], settings=AssociationSettings(covariates=RunCovariates.from_frame(_covariate_frame(three))))
    assert "two architectures, got 3" in error.value.message


def test_covariate_files_csv_and_tsv(tmp_path):
    frame = pd.DataFrame({"arch": ["a", "b"], "seed": [0, 0], "acc": [0.9, 0.8], "batch": ["x", "y"]})
    frame.to_csv(tmp_path / "c.csv", index=False)
    frame.to_csv(tmp_path / "c.tsv", index=False, sep="\t")
    frame.to_csv(tmp_path / "c.table", index=False, sep="\t")
    for name in ("c.csv", "c.tsv", "c.table"):
        pd.testing.assert_frame_equal(read_covariates_table(tmp_path / name), frame)
    (tmp_path / "empty.csv").write_text("")
    for path, message in ((tmp_path / "nope.csv", "does not exist"), (tmp_path / "empty.csv", "is empty")):
        with pytest.raises(InputError) as error:
            read_covariates_table(path)
        assert error.value.parameter == "covariates" and message in error.value.message


# --------------------------------------------------------------------------------------------
# What covariates do in a study
# --------------------------------------------------------------------------------------------


def _matrix(rng, n_examples, n_runs=6, archs=("A", "B"), shift=None, effect=None, balanced=False):
    """Scores of runs whose accuracy moves every example (slopes vary), optional planted effects;
    ``balanced``: the runs of each architecture have the same accuracies, in another order."""
    groups = np.repeat(np.array(archs), n_runs)
    seeds = np.tile(np.arange(n_runs), len(archs))
    accuracy = 0.9 + 0.02 * rng.normal(size=len(groups)) + (shift if shift is not None else 0.0) * (groups == archs[-1])
    if balanced:
        accuracy = np.concatenate([rng.permutation(accuracy[:n_runs]) for _ in archs])
    slope = 60.0 * rng.uniform(0.5, 1.5, n_examples)
    values = rng.normal(size=(len(groups), n_examples)) + np.outer(accuracy - 0.9, slope)
    if effect is not None:
        values[groups == archs[-1]] += effect
    matrix = ScoreMatrix(
        score="loss", values=values, groups=groups, seeds=seeds, example_id=np.arange(n_examples),
        labels=np.arange(n_examples) % 2, class_names=("even", "odd"), dataset="toy",
    )
    return matrix, accuracy


def _covariate_frame(matrix_and_accuracy, **extra) -> pd.DataFrame:
    matrix, accuracy = matrix_and_accuracy
    return pd.DataFrame({"arch": matrix.groups, "seed": matrix.seeds, "accuracy": accuracy, **extra})


def test_a_covariate_that_explains_run_shifts_raises_power():
    rng = np.random.default_rng(12)
    effect = np.r_[np.full(25, 3.0), np.zeros(375)]
    made = _matrix(rng, 400, effect=effect, balanced=True)
    matrix = made[0]
    covariates = RunCovariates.from_frame(_covariate_frame(made))
    a, b = matrix.runs_of("A"), matrix.runs_of("B")
    covariates_a, covariates_b = covariates.for_runs("A", range(6)), covariates.for_runs("B", range(6))
    for test in ("welch", "student", "moderated"):
        if test == "moderated":
            plain = moderated_test(a, b).result
            adjusted = covariate_moderated_test(a, b, covariates_a, covariates_b).result
        else:
            plain = two_sample_test(a, b, test)
            adjusted = covariate_test(a, b, covariates_a, covariates_b, test).result
        found = [int((400 * result.p[:25] <= 0.05).sum()) for result in (plain, adjusted)]  # Bonferroni
        false = int((400 * adjusted.p[25:] <= 0.05).sum())
        t_planted = [np.median(np.abs(result.t_stat[:25])) for result in (plain, adjusted)]
        assert found[1] >= found[0] + 5 and false == 0 and t_planted[1] > 1.3 * t_planted[0], (test, found, false, t_planted)


def test_a_confounded_covariate_removes_a_spurious_difference():
    rng = np.random.default_rng(8)
    made = _matrix(rng, 300, shift=0.04)  # B's runs are more accurate, and accuracy moves every score
    matrix = made[0]
    covariates = RunCovariates.from_frame(_covariate_frame(made))
    plain = associate(matrix, settings=AssociationSettings(test="student", normalize="none"))
    adjusted = associate(matrix, settings=AssociationSettings(test="student", normalize="none", covariates=covariates))
    spurious = int((plain.pairs[0].sumstats["BONF"] <= 0.05).sum())
    assert spurious > 100 and int((adjusted.pairs[0].sumstats["BONF"] <= 0.05).sum()) == 0
    assert abs(adjusted.pairs[0].sumstats["BETA"].mean()) < 0.2 < plain.pairs[0].sumstats["BETA"].mean()


def test_study_reports_the_covariate_fit_and_its_lambda_null_keeps_each_runs_covariates():
    made = _matrix(np.random.default_rng(9), 200, n_runs=5)
    matrix = made[0]
    covariates = RunCovariates.from_frame(_covariate_frame(made, batch=np.tile(["p", "q"], 5)))
    for test in ("welch", "moderated"):
        settings = AssociationSettings(test=test, normalize="none", covariates=covariates, trend=test == "moderated")
        study = associate(matrix, settings=settings)
        table, summary = study.pairs[0].sumstats, study.pairs[0].scores[0]
        a, b = matrix.runs_of("A"), matrix.runs_of("B")
        if test == "welch":
            expected = covariate_test(a, b, covariates.for_runs("A", range(5)), covariates.for_runs("B", range(5)), "welch").result
        else:
            expected = covariate_moderated_test(a, b, covariates.for_runs("A", range(5)), covariates.for_runs("B", range(5)), trend=True).result
        np.testing.assert_allclose(table["T_STAT"], expected.t_stat, rtol=1e-12)
        np.testing.assert_allclose(table["BETA"], expected.beta, rtol=1e-12)
        # λ's first relabelling is the observed one, through the hook: each run kept its covariates.
        assert summary.lambda_null.lambda_gc == pytest.approx(genomic_control_lambda(expected.p), rel=1e-9)
        assert summary.lambda_null.exact and np.isfinite(summary.lambda_null.p)
        assert "covariates: accuracy, batch (categorical, reference p)" in format_log(study, study.pairs[0])


# --------------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------------


def test_command_line_with_covariates_trend_and_robust(tmp_path, run_gwasm):
    store = tmp_path / "store"
    rng = np.random.default_rng(10)
    n = 60
    write_dataset_info(store, "toy", {"n_examples": n, "class_names": ["a", "b"], "source": {"kind": "test"}})
    rows = []
    for arch in ("mlp", "vgg"):
        for seed in range(4):
            accuracy = 0.9 + 0.02 * rng.normal()
            loss = rng.normal(size=n) + 50 * (accuracy - 0.9) + (2.0 * (np.arange(n) < 5) if arch == "vgg" else 0.0)
            write_run(store, RunKey("toy", arch, seed), run_table(np.arange(n), np.arange(n) % 2, {"loss": loss}), {})
            rows.append({"arch": arch, "seed": seed, "accuracy": accuracy})
    pd.DataFrame(rows).to_csv(tmp_path / "runs.tsv", sep="\t", index=False)
    args = ["associate", "mlp", "vgg", "--store", store, "--test", "moderated", "--normalize", "none", "--out", tmp_path / "res"]
    code, out, err = run_gwasm(*args, "--trend", "--robust", "--covariates", tmp_path / "runs.tsv")
    assert code == 0, err
    log = (tmp_path / "res.mlp_vs_vgg.log").read_text()
    assert "--trend --robust --covariates" in log and "covariates: accuracy (per example score ~ group + covariates" in log
    assert "eBayes: trend+robust" in log and "covariates file: " in log
    metadata = read_sumstats_metadata(tmp_path / "res.mlp_vs_vgg.sumstats.parquet")
    assert metadata["covariates"] == ["accuracy"] and metadata["trend"] and metadata["robust"]
    table = read_sumstats(tmp_path / "res.mlp_vs_vgg.sumstats.parquet")
    assert len(table) == n and (table["ERRCODE"] == ".").all()
    # One-line errors naming the flags.
    code, out, err = run_gwasm("associate", "mlp", "vgg", "--store", store, "--trend", "--out", tmp_path / "x")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--trend applies to the moderated test only" in err
    pd.DataFrame(rows[1:]).to_csv(tmp_path / "short.csv", index=False)
    code, out, err = run_gwasm("associate", "mlp", "vgg", "--store", store, "--covariates", tmp_path / "short.csv", "--out", tmp_path / "x")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--covariates have no row for 1 run(s) of mlp" in err
    assert not list(tmp_path.glob("x.*"))
