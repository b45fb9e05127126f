"""The study layer: score matrices in, sumstats tables out."""

from __future__ import annotations

from math import factorial

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.oneway import anova_oneway

from gwas_models.analysis.simulate import simulate_score_matrix, simulate_scores
from gwas_models.analysis.association import two_sample_test
from gwas_models.analysis.association_log import format_log, format_summary
from gwas_models.analysis.multitest import adjust_pvalues, genomic_control_lambda
from gwas_models.analysis.study import AssociationSettings, associate
from gwas_models.errors import InputError
from gwas_models.analysis.combine import cauchy_combination
from gwas_models.formats.sumstats_schema import COMBINED, COMBINED_PAIRS, ONEWAY_COLUMNS, PAIR_COLUMNS, RANKING_COLUMN
from gwas_models.matrix import ScoreMatrix


@pytest.fixture
def two_scores():
    rng = np.random.default_rng(0)
    matrices = simulate_scores(rng, ("loss", "aum"), 300, {"r": 6, "v": 5}, effect_examples=np.arange(10), effect_size=3.0)
    loss = matrices["loss"]
    values = loss.values.copy()
    values[:, 20] = 0.25  # constant in every run
    values[:6, 21] = np.nan  # every run of r (rows 0-5) misses example 21...
    values[0, 21] = 1.0  # ...but one: FEW_RUNS
    matrices["loss"] = ScoreMatrix(**{**_fields(loss), "values": values})
    return matrices


def _fields(matrix: ScoreMatrix) -> dict:
    return {k: getattr(matrix, k) for k in ("score", "values", "groups", "seeds", "example_id", "labels", "class_names", "dataset", "higher_is_harder")}


def test_pair_table_has_the_plink_style_columns_and_one_row_per_example_and_score(two_scores):
    study = associate(two_scores, ["r", "v"], normalize="none")
    table = study.pairs[0].sumstats
    adjusted = ["BONF", "HOLM", "SIDAK", "FDR_BH", "FDR_BY"]
    expected = list(PAIR_COLUMNS) + adjusted + [f"NEG_LOG10_{c}" for c in adjusted] + ["ERRCODE"]
    assert list(table.columns) == expected
    assert len(table) == 300 * 3
    assert list(dict.fromkeys(table["SCORE"].astype(str))) == ["loss", "aum", COMBINED]
    loss = table[table["SCORE"].astype(str) == "loss"]
    np.testing.assert_array_equal(loss["ID"], np.arange(300))
    assert (loss["#CHROM"].astype(str).to_numpy()[:3] == ["class0", "class1", "class2"]).all()
    assert list(loss["POS"].iloc[:11]) == [1] * 10 + [2]


def test_pair_values_equal_scipy_and_statsmodels(two_scores):
    table = associate(two_scores, ["r", "v"], normalize="none").pairs[0].sumstats
    aum = table[table["SCORE"].astype(str) == "aum"]
    matrix = two_scores["aum"]
    reference = stats.ttest_ind(matrix.runs_of("v"), matrix.runs_of("r"), equal_var=False)
    np.testing.assert_allclose(aum["P"], reference.pvalue, rtol=1e-12)
    np.testing.assert_allclose(aum["T_STAT"], reference.statistic, rtol=1e-12)
    np.testing.assert_allclose(aum["FDR_BY"], multipletests(reference.pvalue, method="fdr_by")[1], rtol=1e-12)
    assert (aum["A"].astype(str) == "r").all() and (aum["B"].astype(str) == "v").all()
    assert (aum["N_A"] == 6).all() and (aum["N_B"] == 5).all()


def test_untested_examples_have_codes_and_stay_out_of_adjustment_and_lambda(two_scores):
    comparison = associate(two_scores, ["r", "v"], normalize="none").pairs[0]
    table = comparison.sumstats
    loss = table[table["SCORE"].astype(str) == "loss"].reset_index(drop=True)
    assert loss.loc[20, "ERRCODE"] == "CONST" and loss.loc[21, "ERRCODE"] == "FEW_RUNS"
    assert loss.loc[[20, 21], ["P", "NEG_LOG10_P", "BONF", "FDR_BH"]].isna().all().all()
    tested_p = loss["P"].drop(index=[20, 21]).to_numpy()
    np.testing.assert_allclose(loss["BONF"].drop(index=[20, 21]), np.minimum(tested_p * 298, 1.0), rtol=1e-12)
    summary = comparison.scores[0]
    assert summary.n_tested == 298 and summary.errcodes == {"CONST": 1, "FEW_RUNS": 1}
    expected_lambda = np.median(stats.chi2.isf(tested_p, 1)) / stats.chi2.ppf(0.5, 1)
    assert summary.lambda_gc == pytest.approx(expected_lambda, rel=1e-10)
    # The combined row of example 20 rests on aum alone.
    combined = table[table["SCORE"].astype(str) == COMBINED].reset_index(drop=True)
    aum = table[table["SCORE"].astype(str) == "aum"].reset_index(drop=True)
    assert combined.loc[20, "NEG_LOG10_P"] == pytest.approx(aum.loc[20, "NEG_LOG10_P"])
    assert combined.loc[20, "ERRCODE"] == "."


def test_combined_rows_hold_the_cauchy_combination_and_the_mean_as_a_ranking(two_scores):
    """Combined rows: P / NEG_LOG10_P from ACAT over the scores (a p-value, adjusted like a score's),
    MEAN_NEG_LOG10_P the paper's mean -log10 p (a ranking); before, NEG_LOG10_P held the mean and
    P the geometric mean, with no adjusted p."""
    comparison = associate(two_scores, ["r", "v"], normalize="none").pairs[0]
    table = comparison.sumstats
    by_score = {s: table[table["SCORE"].astype(str) == s].reset_index(drop=True) for s in ("loss", "aum", COMBINED)}
    combined = by_score[COMBINED]
    evidence = np.vstack([by_score["loss"]["NEG_LOG10_P"], by_score["aum"]["NEG_LOG10_P"]])
    p, neg_log10_p = cauchy_combination(evidence)
    np.testing.assert_allclose(combined["NEG_LOG10_P"], neg_log10_p, rtol=1e-12)
    np.testing.assert_allclose(combined["P"], p, rtol=1e-12)
    expected_mean = (by_score["loss"]["NEG_LOG10_P"] + by_score["aum"]["NEG_LOG10_P"]) / 2
    np.testing.assert_allclose(combined[RANKING_COLUMN].iloc[22:], expected_mean.iloc[22:], rtol=1e-12)
    assert by_score["loss"][RANKING_COLUMN].isna().all()  # a single score's rows have no ranking column
    np.testing.assert_allclose(combined["BONF"], np.minimum(combined["P"] * 300, 1.0), rtol=1e-12)
    assert combined[["T_STAT", "BETA"]].isna().all().all()
    assert comparison.combined[0].score == COMBINED
    assert comparison.combined[0].n_significant["bonferroni"] == int((combined["BONF"] <= 0.01).sum())
    # The paper's ranking: top() orders the combined rows by the mean, not by the ACAT p.
    top = comparison.top(5)
    assert list(top["ID"]) == list(combined.nlargest(5, RANKING_COLUMN)["ID"])
    # Planted examples 0-9 are harder in v: loss up, aum down, combined d positive.
    assert (by_score["loss"]["HARDER_IN"].iloc[:10] == "v").all()
    assert (by_score["aum"]["BETA"].iloc[:10] < 0).all() and (by_score["aum"]["HARDER_IN"].iloc[:10] == "v").all()
    assert (combined["HARDER_IN"].iloc[:10] == "v").all()


def test_three_architectures_give_every_pair_and_a_welch_anova():
    rng = np.random.default_rng(1)
    matrices = simulate_scores(rng, ("loss", "aum"), 200, {"a": 5, "b": 6, "c": 4}, effect_examples=[0, 1], effect_size=4.0)
    study = associate(matrices, normalize="none")
    assert [c.archs for c in study.pairs] == [("a", "b"), ("a", "c"), ("b", "c")]
    oneway = study.oneway.sumstats
    adjusted = ["BONF", "HOLM", "SIDAK", "FDR_BH", "FDR_BY"]
    assert list(oneway.columns) == list(ONEWAY_COLUMNS) + adjusted + [f"NEG_LOG10_{c}" for c in adjusted] + ["ERRCODE"]
    loss = oneway[oneway["SCORE"].astype(str) == "loss"].reset_index(drop=True)
    m = matrices["loss"]
    reference = anova_oneway([m.runs_of(g)[:, 7] for g in ("a", "b", "c")], use_var="unequal")
    assert loss.loc[7, "P"] == pytest.approx(reference.pvalue, rel=1e-12)
    assert loss.loc[0, "HARDEST_IN"] == "c"  # the effect is planted in the last architecture
    pairs = oneway[oneway["SCORE"].astype(str) == COMBINED_PAIRS].reset_index(drop=True)
    every = np.vstack(
        [c.sumstats[c.sumstats["SCORE"].astype(str) == s]["NEG_LOG10_P"].to_numpy() for c in study.pairs for s in ("loss", "aum")]
    )
    np.testing.assert_allclose(pairs[RANKING_COLUMN], every.mean(axis=0), rtol=1e-12)  # the paper's ranking
    np.testing.assert_allclose(pairs["NEG_LOG10_P"], cauchy_combination(every)[1], rtol=1e-12)  # ACAT over pair x score
    assert pairs["BONF"].notna().all()
    assert [s.score for s in study.oneway.combined] == [COMBINED, COMBINED_PAIRS]
    assert study.pairs[0].top(3)["SCORE"].astype(str).eq(COMBINED).all()
    assert study.oneway.top(2)["SCORE"].astype(str).eq(COMBINED_PAIRS).all()


def test_paired_study_uses_seed_pairs_and_rejects_unmatched_seeds():
    rng = np.random.default_rng(2)
    matrix = simulate_score_matrix(rng, 100, {"a": 5, "b": 5}, seed_sd=2.0)
    study = associate(matrix, paired=True, normalize="none")
    table = study.pairs[0].sumstats
    reference = stats.ttest_rel(matrix.runs_of("b"), matrix.runs_of("a"))
    np.testing.assert_allclose(table["P"], reference.pvalue, rtol=1e-12)
    shuffled = matrix.subset_runs(np.array([4, 2, 0, 1, 3, 9, 8, 7, 6, 5]))  # pairing is by seed, not row
    np.testing.assert_allclose(associate(shuffled, paired=True, normalize="none").pairs[0].sumstats["P"], reference.pvalue, rtol=1e-12)
    settings = AssociationSettings(test=" Welch ", paired=True, normalize=" None ")  # names are taken case- and space-insensitively
    pd.testing.assert_frame_equal(associate(matrix, settings=settings).pairs[0].sumstats, table)
    with pytest.raises(TypeError, match="not both"):
        associate(matrix, settings=settings, paired=True)
    unmatched = matrix.subset_runs(np.array([0, 1, 2, 5, 6, 9]))
    seeds = unmatched.seeds.copy()
    seeds[-1] = 7
    unmatched = ScoreMatrix(**{**_fields(unmatched), "seeds": seeds})
    with pytest.raises(InputError, match="seeds only in a: 2; only in b: 7"):
        associate(unmatched, paired=True)


def test_bad_inputs_raise_input_errors():
    matrix = simulate_score_matrix(np.random.default_rng(3), 20, {"a": 3, "b": 1, "c": 3})
    with pytest.raises(InputError, match="'b' has 1 run"):
        associate(matrix, ["a", "b"])
    with pytest.raises(InputError, match="no runs of 'x'; architectures there: a, b, c"):
        associate(matrix, ["a", "x"])
    with pytest.raises(InputError, match="at least two architectures"):
        associate(matrix, ["a"])
    with pytest.raises(InputError, match="named twice"):
        associate(matrix, ["a", "a"])
    for options, message in (
        ({"test": "mann-whitney"}, "test must be one of welch, student, permutation"),
        ({"adjust": ["bh"]}, "adjust holds an unknown adjustment method 'bh'"),
        ({"alpha": 1.5}, "alpha must be strictly between 0 and 1"),
        ({"normalize": "quantile"}, "normalize must be one of relative, none, rank, zscore"),
        ({"n_permutations": 0}, "n_permutations must be at least 1"),
        ({"n_permutations": 2.5}, "n_permutations must be at least 1"),
    ):
        with pytest.raises(InputError, match=message) as refused:
            AssociationSettings(**options)
        assert refused.value.parameter == next(iter(options))  # the front end names it its own way


def test_permutation_study_adds_empirical_columns_and_warns_when_they_cannot_pass():
    matrix = simulate_score_matrix(np.random.default_rng(4), 300, {"a": 5, "b": 5}, effect_examples=[0], effect_size=8.0)
    study = associate(matrix, test="permutation", n_permutations=300, normalize="none", rng=np.random.default_rng(5))
    table = study.pairs[0].sumstats
    assert list(table.columns[-3:]) == ["EMP1", "EMP2", "ERRCODE"]
    assert table["EMP1"].min() >= 1 / 301 and (table["EMP2"] >= table["EMP1"]).all()
    summary = study.pairs[0].scores[0]
    assert summary.smallest_p == pytest.approx(2 / 252) and "EMP2" in summary.n_significant
    assert any("smallest permutation p" in w for w in study.warnings)
    again = associate(matrix, test="permutation", n_permutations=300, normalize="none", rng=np.random.default_rng(5))
    pd.testing.assert_frame_equal(table, again.pairs[0].sumstats)


def test_the_floor_of_the_permutation_p_is_said_per_adjustment():
    """Issue 20: at 5 vs 5 (exact: 126 partitions, p >= 1/126) over 1,437 examples no Bonferroni,
    Holm, Sidak or Benjamini-Yekutieli discovery is possible, and Benjamini-Hochberg needs at
    least ceil(1437 / 126 / 0.01) = 1,141 examples at the floor; only Bonferroni was warned about."""
    matrix = simulate_score_matrix(np.random.default_rng(4), 1437, {"a": 5, "b": 5}, effect_examples=[0], effect_size=8.0)
    study = associate(matrix, test="permutation", normalize="none", rng=np.random.default_rng(5))
    (warning,) = [w for w in study.warnings if "smallest permutation p" in w]
    assert "0.00794" in warning and "every relabelling enumerated" in warning and "1,437 tested examples" in warning
    assert "no example can reach alpha 0.01 by Bonferroni (BONF), Holm (HOLM), Sidak (SIDAK) or Benjamini-Yekutieli (FDR_BY)" in warning
    assert "Benjamini-Hochberg (FDR_BH) only if at least 1,141 of them have that smallest p" in warning
    assert "EMP2" not in warning  # the max-T p is not multiplied by the number of examples: 1/126 <= 0.01
    assert "n_permutations" not in warning and "--" not in warning and "\n" not in warning
    assert study.pairs[0].scores[0].n_significant["bonferroni"] == 0
    # 3 vs 3: 10 partitions, p >= 0.1 > alpha: nothing at all, the max-T p included.
    few = associate(matrix.subset_runs(np.array([0, 1, 2, 5, 6, 7])), test="permutation", normalize="none")
    (warning,) = [w for w in few.warnings if "smallest permutation p" in w]
    assert "the max-T family-wise p (EMP2)" in warning and "Benjamini-Hochberg (FDR_BH)," in warning
    # Enough runs and permutations for every adjustment: no warning.
    many = simulate_score_matrix(np.random.default_rng(4), 50, {"a": 12, "b": 12})
    quiet = associate(many, test="permutation", n_permutations=99_999, alpha=0.05, adjust="bonferroni,fdr_bh", normalize="none", rng=np.random.default_rng(1))
    assert not [w for w in quiet.warnings if "smallest permutation p" in w]


def _tied_count_study(seed: int, n_examples: int = 2000, n_changed: int = 100, runs: int = 10, effect: float = 3.0):
    """Forgetting-like counts (0-5 of a binomial) of 10 vs 10 runs with a level per run and per-run
    noise; ``n_changed`` examples move by ``effect`` (logit) in B, half of them each way."""
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(0.0, 1.0, n_examples)
    run_level = rng.normal(0.0, 0.3, 2 * runs)
    changed = np.sort(rng.choice(n_examples, n_changed, replace=False))
    shift = np.zeros(n_examples)
    shift[changed] = effect * rng.choice([-1.0, 1.0], n_changed)
    groups = np.repeat(["A", "B"], runs)
    latent = difficulty + run_level[:, None] + rng.normal(0.0, 0.3, (2 * runs, n_examples)) + (groups == "B")[:, None] * shift
    values = rng.binomial(5, 1.0 / (1.0 + np.exp(-latent))).astype(np.float64)
    matrix = ScoreMatrix(
        score="forgetting",
        values=values,
        groups=groups,
        seeds=np.tile(np.arange(runs), 2),
        example_id=np.arange(n_examples),
        labels=np.arange(n_examples) % 10,
        class_names=tuple(f"class{c}" for c in range(10)),
        dataset="simulated",
        higher_is_harder=True,
    )
    return matrix, changed


def test_the_permutation_p_is_the_p_of_the_table_all_the_way_through():
    """Issue 20: with test="permutation" the adjusted columns were Welch's; BH on EMP1 has the power."""
    matrix, changed = _tied_count_study(3)
    study = associate(matrix, test="permutation", n_permutations=4999, alpha=0.05, normalize="none", rng=np.random.default_rng(3))
    comparison = study.pairs[0]
    table = comparison.sumstats
    emp1 = table["EMP1"].to_numpy()
    tested = table["ERRCODE"].astype(str).isin([".", "SEPARATED"]).to_numpy()
    np.testing.assert_array_equal(table["P"].to_numpy(), emp1)
    np.testing.assert_allclose(table["NEG_LOG10_P"].to_numpy()[tested], -np.log10(emp1[tested]), rtol=1e-12)
    expected = adjust_pvalues(emp1, ["bonferroni", "holm", "sidak", "fdr_bh", "fdr_by"], 0.05)
    for method, column in (("bonferroni", "BONF"), ("holm", "HOLM"), ("sidak", "SIDAK"), ("fdr_bh", "FDR_BH"), ("fdr_by", "FDR_BY")):
        np.testing.assert_array_equal(table[column].to_numpy(), expected[method].to_numpy(), err_msg=column)
        np.testing.assert_allclose(10 ** -table[f"NEG_LOG10_{column}"].to_numpy(), expected[method].to_numpy(), rtol=1e-9)
        assert comparison.scores[0].n_significant[method] == int((expected[method] <= 0.05).sum())
    # λ is of Welch's t, not of the discrete permutation p.
    welch = two_sample_test(matrix.runs_of("A"), matrix.runs_of("B"))
    assert comparison.scores[0].lambda_gc == pytest.approx(genomic_control_lambda(welch.p[welch.has_statistic]), rel=1e-12)
    np.testing.assert_allclose(table["T_STAT"].to_numpy(), welch.t_stat, rtol=1e-12)
    # Power where Welch's p adjusted in its place found next to nothing on such counts.
    hits = np.flatnonzero(table["FDR_BH"].to_numpy() <= 0.05)
    found = np.isin(hits, changed).sum()
    assert found / len(changed) >= 0.6 and (len(hits) - found) / len(hits) <= 0.05


def _separated_study(**options):
    """5 vs 5 runs: example 0 is 0.967 in every run of a and 1.0 in every run of b, example 1 is 0.5
    in every run of both; the others vary."""
    matrix = simulate_score_matrix(np.random.default_rng(7), 60, {"a": 5, "b": 5}, effect_examples=[2], effect_size=3.0)
    values = matrix.values.copy()
    values[:, 0] = np.where(matrix.groups == "a", 0.967, 1.0)
    values[:, 1] = 0.5
    matrix = ScoreMatrix(**{**_fields(matrix), "values": values})
    return associate({"loss": matrix, "aum": ScoreMatrix(**{**_fields(matrix), "score": "aum"})}, **options)


@pytest.mark.parametrize(
    "options",
    [
        {"normalize": "none"},
        {"normalize": "zscore"},
        {"normalize": "none", "test": "student"},
        {"normalize": "none", "test": "moderated"},
        {"normalize": "zscore", "test": "permutation"},
        {"normalize": "none", "paired": True},
    ],
    ids=["welch", "zscore", "student", "moderated", "permutation", "paired"],
)
def test_a_perfect_separation_is_tested_with_its_exact_p_and_counted(options):
    study = _separated_study(rng=np.random.default_rng(0), **options)
    comparison = study.pairs[0]
    table = comparison.sumstats
    loss = table[table["SCORE"].astype(str) == "loss"].reset_index(drop=True)
    separation_p = 2 / 2**5 if options.get("paired") else 2 / 252  # the labelling and its mirror, of C(10, 5)
    assert loss.loc[0, "ERRCODE"] == "SEPARATED" and loss.loc[1, "ERRCODE"] == "CONST"
    assert loss.loc[0, "P"] == pytest.approx(separation_p, rel=1e-12)
    assert loss.loc[0, "NEG_LOG10_P"] == pytest.approx(-np.log10(separation_p), rel=1e-12)
    assert np.isnan(loss.loc[0, "T_STAT"]) and np.isnan(loss.loc[1, "P"])
    n_tested = int(loss["P"].notna().sum())
    assert loss.loc[0, "BONF"] == pytest.approx(min(separation_p * n_tested, 1.0), rel=1e-12)
    summary = comparison.scores[0]
    assert summary.n_tested == n_tested == 59 and summary.n_separated == 1 and summary.errcodes == {"CONST": 1}
    # λ leaves it out: it has no t statistic.
    with_t = loss["ERRCODE"].eq(".").to_numpy()
    if not options.get("test") == "permutation":
        assert summary.lambda_gc == pytest.approx(genomic_control_lambda(loss["P"].to_numpy()[with_t]), rel=1e-12)
    else:
        assert loss.loc[0, "EMP1"] == pytest.approx(separation_p, rel=1e-12)
    if options.get("test") == "moderated":
        assert summary.variance_prior.n_examples == 58  # neither the constant nor the separated example
    # The Cauchy combination takes it (both scores are separations here).
    combined = table[table["SCORE"].astype(str) == COMBINED].reset_index(drop=True)
    assert combined.loc[0, "ERRCODE"] == "." and combined.loc[0, "P"] == pytest.approx(separation_p, rel=1e-9)
    assert combined.loc[1, "ERRCODE"] == "CONST"


def test_the_one_way_table_separates_groups_constant_at_different_levels():
    matrix = simulate_score_matrix(np.random.default_rng(8), 30, {"a": 4, "b": 4, "c": 4})
    values = matrix.values.copy()
    values[:, 0] = np.select([matrix.groups == "a", matrix.groups == "b"], [0.9, 1.0], 0.8)
    values[:, 1] = np.where(matrix.groups == "a", 0.9, 1.0)  # a at one level, b and c at another
    values[:, 2] = 0.7
    matrix = ScoreMatrix(**{**_fields(matrix), "values": values})
    for normalize in ("none", "zscore"):
        oneway = associate(matrix, normalize=normalize).oneway.sumstats
        assert list(oneway["ERRCODE"].astype(str)[:3]) == ["SEPARATED", "SEPARATED", "CONST"]
        # Every group constant: 3! of 12! / 4!^3 deals; two at one level: 3 deals of 8 runs, 8! 4! / 12!.
        assert oneway.loc[0, "P"] == pytest.approx(6 * 24**3 / factorial(12), rel=1e-12)
        assert oneway.loc[1, "P"] == pytest.approx(3 * factorial(8) * factorial(4) / factorial(12), rel=1e-12)
        assert np.isnan(oneway.loc[0, "F_STAT"])


def test_log_and_summary_text(two_scores):
    study = associate(two_scores, ["r", "v"], normalize="none")
    log = format_log(study, study.pairs[0], {"command": "gwasm associate r v"})
    for expected in ("command: gwasm associate r v", "r: 6 runs, seeds 0-5", "lambda_GC", "CONST=1", "FEW_RUNS=1", "BONF", "top 10 examples"):
        assert expected in log
    summary = format_summary(study)
    assert summary.startswith("r vs v:") and "loss" in summary and "top examples" in summary


def test_comparisons_can_be_handed_over_one_at_a_time_and_dropped(two_scores):
    seen = []
    study = associate(two_scores, ["r", "v"], on_comparison=lambda design, c: seen.append((design, len(c.sumstats))), keep_tables=False)
    design, rows = seen[0]
    assert rows == 900 and design.runs == {"r": tuple(range(6)), "v": tuple(range(5))} and design.pairs == ()
    assert len(study.pairs[0].sumstats) == 0 and study.pairs[0].scores[0].n_tested == 298
    assert "top examples" not in format_summary(study)


def test_lambda_is_judged_against_its_relabelling_null_and_the_shift_on_run_means():
    rng = np.random.default_rng(6)
    matrix = simulate_score_matrix(rng, 400, {"a": 4, "b": 4}, run_offset_sd=1.0)
    study = associate(matrix, normalize="none")
    summary = study.pairs[0].scores[0]
    null, shift = summary.lambda_null, summary.run_shift
    # 4 v 4 runs allow 35 distinct relabellings: all of them, the observed one included.
    assert null.exact and null.n_relabelings == 35 and null.n_examples == 400
    assert null.lambda_gc == pytest.approx(summary.lambda_gc, rel=1e-12)
    assert null.low <= null.median <= null.upper <= null.high
    assert null.p == pytest.approx(np.mean(_relabelled_lambdas(matrix) >= null.lambda_gc * (1 - 1e-9)))
    # The run-level test is Welch's t of the runs' mean scores.
    means = matrix.values.mean(axis=1)
    reference = stats.ttest_ind(means[4:], means[:4], equal_var=False)
    assert shift.test == "welch" and shift.p == pytest.approx(reference.pvalue, rel=1e-10)
    assert shift.difference == pytest.approx(means[4:].mean() - means[:4].mean())
    assert study.pairs[0].summary().loc[0, "lambda_p"] == null.p
    log = format_log(study, study.pairs[0])
    assert "95th percentile under relabelling" in log and "all 35 relabellings" in log and "run means B - A" in log
    assert "lambda_95" in format_summary(study)
    # The same study gives the same null (a seeded default generator), and a paired study flips signs.
    assert associate(matrix, normalize="none").pairs[0].scores[0].lambda_null == null
    paired = associate(matrix, paired=True, normalize="none").pairs[0].scores[0]
    assert paired.lambda_null.n_relabelings == 16 and paired.run_shift.test == "paired"


def _relabelled_lambdas(matrix: ScoreMatrix) -> np.ndarray:
    """λ of every partition of 8 runs into 4 + 4, computed one by one, the plain way."""
    from itertools import combinations

    from gwas_models.analysis.multitest import genomic_control_lambda

    lambdas = []
    for chosen in combinations(range(1, 8), 3):  # run 0 stays in A: each partition once
        in_a = np.isin(np.arange(8), (0,) + chosen)
        lambdas.append(genomic_control_lambda(stats.ttest_ind(matrix.values[~in_a], matrix.values[in_a], equal_var=False).pvalue))
    return np.asarray(lambdas)


def test_a_warning_needs_lambda_beyond_its_null_or_a_significant_shift_of_run_means():
    rng = np.random.default_rng(7)
    noisy = simulate_score_matrix(rng, 500, {"a": 8, "b": 8}, run_offset_sd=1.0, run_scale_sd=0.2)
    comparison = associate(noisy, normalize="none").pairs[0]
    assert comparison.warnings == ()  # the old rule warned at lambda_GC > 1.1 whatever its null
    shifted = simulate_score_matrix(rng, 500, {"a": 8, "b": 8}, global_shift=1.0, run_offset_sd=0.3)
    warnings = associate(shifted, normalize="none").pairs[0].warnings
    assert any("beyond its null under relabelling" in w for w in warnings)
    assert any("global shift" in w and "run means B - A" in w for w in warnings)
    # Normalised, the shift is out of every test: the run-level test is still reported, not warned about.
    centred = associate(shifted, normalize="center_class").pairs[0]
    assert not any("global shift" in w for w in centred.warnings) and centred.scores[0].run_shift.p < 0.01


def test_a_tied_count_example_does_not_become_a_hit_by_ranking():
    """Defect 3: within-run ranks of a heavily tied count turned raw p 0.058 into 2e-6, a Bonferroni
    hit among 400 null examples. Ranks of such scores are refused; the shift-only alternatives keep
    the raw evidence."""
    rng = np.random.default_rng(5)
    rows = []
    for run in range(8):  # about 75% of each run tied at 1, the share varying between runs
        share = 0.70 + 0.025 * (run % 4)
        probs = np.array([1.0 - share - 0.05, share, 0.02, 0.015, 0.015])
        rows.append(rng.choice(5, 400, p=probs).astype(float))
    values = np.array(rows)
    values[:, 0] = [1, 1, 1, 1, 2, 2, 2, 4]  # constant in a, spread in b
    matrix = ScoreMatrix(
        score="forgetting",
        values=values,
        groups=np.repeat(["a", "b"], 4),
        seeds=np.tile(np.arange(4), 2),
        example_id=np.arange(400),
        labels=np.arange(400) % 10,
        class_names=tuple(f"class{c}" for c in range(10)),
        dataset="simulated",
        higher_is_harder=True,
    )
    raw = associate(matrix, normalize="none").pairs[0].sumstats
    assert raw.loc[0, "P"] == pytest.approx(0.0577, abs=1e-4)
    with pytest.raises(InputError, match=r"normalize='rank' is not valid for score 'forgetting': in run a seed \d, \d+% of the scores are tied at 1") as refused:
        associate(matrix, normalize="rank")
    assert refused.value.parameter == "normalize"
    # The default reference ranks too (normal scores, p 0.002 here), but its level trend keeps the
    # tie blocks from making hits: no example of this null is a Bonferroni hit.
    relative = associate(matrix).pairs[0].sumstats
    assert relative.loc[0, "P"] > 0.01 / 400 and not (relative["BONF"] <= 0.01).any()
    for normalize in ("zscore", "center_class"):
        table = associate(matrix, normalize=normalize).pairs[0].sumstats
        assert table.loc[0, "P"] > 0.01 and not (table["BONF"] <= 0.01).any()
