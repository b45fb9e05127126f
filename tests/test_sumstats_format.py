"""Sumstats files: TSV and Parquet round trips, names, atomic writes, GWAS-SSF, reading errors."""

from __future__ import annotations

import hashlib
import os
import time
from math import comb

import numpy as np
import pandas as pd
import pytest

from gwas_models.analysis.simulate import simulate_scores
from gwas_models.analysis.study import associate
from gwas_models.errors import InputError, ResultsError
from gwas_models.formats import sumstats, sumstats_schema
from gwas_models.formats.sumstats import (
    SSF_COLUMNS,
    comparison_stem,
    format_p_from_log,
    comparison_stem_of,
    latest_sumstats,
    list_sumstats,
    read_sumstats,
    read_sumstats_metadata,
    safe_name,
    score_file_name,
    to_gwas_ssf,
    write_sumstats,
)


@pytest.fixture(scope="module")
def study():
    rng = np.random.default_rng(0)
    # Example 3: p far below 1e-308 (t ~ 1e12 on 38 degrees of freedom).
    matrices = simulate_scores(rng, ("loss", "aum"), 120, {"r": 20, "v": 20}, effect_examples=[3], effect_size=1e12)
    values = matrices["loss"].values
    values[:, 5] = 1.0  # constant: a row with missing statistics
    return associate(matrices, ["r", "v"], normalize="none")


def test_one_tsv_per_score_and_the_long_table_in_parquet(tmp_path, study):
    table = study.pairs[0].sumstats
    paths = write_sumstats(table, tmp_path / "out" / "toy", "r", "v", log_text="log\n")
    assert list(paths.tsv) == ["loss", "aum", "combined"]
    assert paths.tsv["loss"] == tmp_path / "out" / "toy.r_vs_v.loss.sumstats.tsv"
    assert paths.parquet.name == "toy.r_vs_v.sumstats.parquet" and paths.log.read_text() == "log\n"
    assert set(paths.all()) == set(tmp_path.joinpath("out").iterdir())
    lines = paths.tsv["loss"].read_text().splitlines()
    assert len(lines) == 1 + 120  # one association per example
    assert lines[0].split("\t") == list(table.columns) and lines[0].startswith("#CHROM\tPOS\tID")
    constant_row = next(line.split("\t") for line in lines[1:] if line.split("\t")[2] == "5")
    # PLINK 2's conventions: missing numbers NA, missing text '.'.
    assert constant_row[list(table.columns).index("P")] == "NA" and constant_row[-1] == "CONST"
    assert constant_row[list(table.columns).index("HARDER_IN")] in (".", "r", "v")
    from_parquet = read_sumstats(paths.parquet)
    from_tsvs = pd.concat([read_sumstats(path) for path in paths.tsv.values()], ignore_index=True)
    pd.testing.assert_frame_equal(from_tsvs, from_parquet)
    tested = np.isfinite(table["P"].to_numpy()) & (table["P"].to_numpy() > 1e-300)
    np.testing.assert_array_equal(from_tsvs["P"].to_numpy()[tested], table["P"].to_numpy()[tested])  # full precision
    assert from_tsvs["ERRCODE"].iloc[5] == "CONST" and from_tsvs["POS"].dtype == np.int64
    assert (from_tsvs["HARDER_IN"].isin([".", "r", "v"])).all()
    # pandas alone reads the numbers as numbers (with '.' for missing numbers it read text).
    plain = pd.read_csv(paths.tsv["loss"], sep="\t")
    assert all(pd.api.types.is_float_dtype(plain[c]) for c in ("P", "T_STAT", "BETA", "SE", "BONF"))


def test_every_number_of_the_tsv_reads_back_as_the_same_double(tmp_path, study):
    table = study.pairs[0].sumstats
    paths = write_sumstats(table, tmp_path / "toy", "r", "v")
    from_tsvs = pd.concat([read_sumstats(path) for path in paths.tsv.values()], ignore_index=True)
    float_columns = [c for c in table.columns if pd.api.types.is_float_dtype(table[c])]
    assert {"MEAN_A", "SD_B", "BETA", "SE", "T_STAT", "DF", "NEG_LOG10_P", "FDR_BH"} <= set(float_columns)
    for column in float_columns:
        written, kept = from_tsvs[column].to_numpy(), table[column].to_numpy()
        held = ~(kept < np.finfo(np.float64).tiny)  # p below the smallest normal double: from log space
        np.testing.assert_array_equal(written[held], kept[held], err_msg=column)


@pytest.mark.parametrize("class_name", ['with\ttab', 'with "quotes"', "with\nnewline", "plain"])
def test_text_that_needs_quoting_is_quoted_and_reads_back(tmp_path, study, class_name):
    table = study.pairs[0].sumstats.copy()
    table["#CHROM"] = table["#CHROM"].astype(str).where(table["ID"] != 7, class_name)
    paths = write_sumstats(table, tmp_path / "toy", "r", "v")
    text = paths.tsv["loss"].read_text()
    assert ('"' in text) == (class_name != "plain")  # only a value that needs it is quoted
    plain = pd.read_csv(paths.tsv["loss"], sep="\t", keep_default_na=False)
    assert plain.loc[plain["ID"] == 7, "#CHROM"].item() == class_name
    assert len(plain) == 120 and plain["SCORE"].eq("loss").all()


def test_files_of_older_versions_still_load(tmp_path, study):
    table = study.pairs[0].sumstats
    paths = write_sumstats(table, tmp_path / "toy", "r", "v")
    old = tmp_path / "old.r_vs_v.sumstats.tsv"  # one TSV of every score, '.' for missing numbers
    text = paths.tsv["loss"].read_text().replace("\tNA", "\t.")
    old.write_text(text)
    assert comparison_stem_of(old) == "old.r_vs_v"
    pd.testing.assert_frame_equal(read_sumstats(old), read_sumstats(paths.tsv["loss"]))


def test_underflowed_p_keeps_its_evidence_on_disk(tmp_path, study):
    table = study.pairs[0].sumstats
    row = table[(table["SCORE"].astype(str) == "loss") & (table["ID"] == 3)]
    assert row["P"].iloc[0] == 0.0 and np.isfinite(row["NEG_LOG10_P"].iloc[0])
    paths = write_sumstats(table, tmp_path / "toy", "r", "v")
    back = read_sumstats(paths.tsv["loss"])
    assert back.loc[row.index[0], "NEG_LOG10_P"] == row["NEG_LOG10_P"].iloc[0]
    assert read_sumstats(paths.parquet).loc[row.index[0], "NEG_LOG10_P"] == row["NEG_LOG10_P"].iloc[0]


def test_safe_names_for_files():
    assert safe_name("resnet20-64") == "resnet20-64"
    factory = safe_name("pkg.models:factory")
    assert factory.startswith("pkg.models_factory-") and "/" not in factory and ":" not in factory
    assert safe_name("pkg.models_factory") != factory  # no collision with the cleaned spelling
    assert not safe_name("../../etc").startswith(".") and "/" not in safe_name("../../etc")
    assert len(safe_name("x" * 500)) < 100
    stem = comparison_stem("results/cifar10", ["a/b", "c d"])
    assert stem.parent.name == "results" and stem.name.startswith("cifar10.a_b-") and "_vs_c_d-" in stem.name


def test_a_failed_write_leaves_no_file(tmp_path, study, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(sumstats.pq, "write_table", broken)
    with pytest.raises(OSError, match="disk full"):
        write_sumstats(study.pairs[0].sumstats, tmp_path / "toy", "r", "v", log_text="x")
    assert list(tmp_path.iterdir()) == []  # neither the finished TSV nor any temporary file


def test_read_sumstats_errors_are_one_line(tmp_path):
    with pytest.raises(ResultsError, match="not found") as missing:
        read_sumstats(tmp_path / "nothing.sumstats.tsv")
    assert "\n" not in str(missing.value)
    partial = tmp_path / "partial.sumstats.tsv"
    partial.write_text("#CHROM\tPOS\tID\n0\t1\t0\n")
    with pytest.raises(ResultsError, match="missing column.*SCORE, P, NEG_LOG10_P, ERRCODE"):
        read_sumstats(partial)
    corrupt = tmp_path / "corrupt.sumstats.parquet"
    corrupt.write_bytes(b"not parquet at all")
    with pytest.raises(ResultsError, match="cannot read sumstats file") as unreadable:
        read_sumstats(corrupt)
    assert "\n" not in str(unreadable.value)
    other = tmp_path / "table.csv"
    other.write_text("a,b\n")
    with pytest.raises(ResultsError, match="neither a .tsv nor a .parquet"):
        read_sumstats(other)


def test_latest_sumstats_picks_the_newest_comparison_and_prefers_parquet(tmp_path, study):
    with pytest.raises(ResultsError, match="no .*sumstats") as caught:
        latest_sumstats(tmp_path)
    assert caught.value.missing_step == "associate"
    older = write_sumstats(study.pairs[0].sumstats, tmp_path / "toy", "old", "pair")
    newer = write_sumstats(study.pairs[0].sumstats, tmp_path / "toy", "new", "pair")
    now = time.time()
    for paths, age in ((older, 20), (newer, 5)):
        for path in paths.all():
            os.utime(path, (now - age, now - age))
    assert latest_sumstats(tmp_path) == newer.parquet
    assert set(list_sumstats(tmp_path)) == set(older.all()) | set(newer.all())
    newer.parquet.unlink()
    assert latest_sumstats(tmp_path) in set(newer.tsv.values())


def test_gwas_ssf_layout(tmp_path, study):
    table = study.pairs[0].sumstats
    ssf = to_gwas_ssf(table, "loss")
    assert tuple(ssf.columns[: len(SSF_COLUMNS)]) == SSF_COLUMNS and "variant_id" in ssf.columns
    assert len(ssf) == 119  # the constant example has no p-value and is left out
    assert (ssf["effect_allele"] == "v").all() and (ssf["other_allele"] == "r").all()
    assert ssf["chromosome"].between(1, 10).all() and ssf["effect_allele_frequency"].isna().all()
    underflowed = ssf.loc[ssf["example_id"] == 3, "p_value"].iloc[0]
    assert underflowed != "0" and float(underflowed.split("e-")[1]) > 300
    assert ssf.loc[ssf["example_id"] == 3, "neg_log_10_p_value"].iloc[0] > 300
    assert ssf["variant_id"].str.fullmatch(r"[A-Za-z0-9_]+").all()
    paths = write_sumstats(table, tmp_path / "toy", "r", "v", gwas_ssf_scores=["aum"])
    assert [p.name for p in paths.gwas_ssf] == ["toy.r_vs_v.gwas-ssf.tsv"]
    text = paths.gwas_ssf[0].read_text().splitlines()
    assert text[0].split("\t")[:8] == list(SSF_COLUMNS) and "\tNA\t" in text[1]
    meta = (tmp_path / "toy.r_vs_v.gwas-ssf.tsv-meta.yaml").read_text()
    assert "\ndata_file_name: \"toy.r_vs_v.gwas-ssf.tsv\"\n" in meta
    assert f"data_file_md5sum: \"{hashlib.md5(paths.gwas_ssf[0].read_bytes()).hexdigest()}\"" in meta
    assert meta.startswith("date_metadata_last_modified: 20") and "samples:\n  - sample_size: 40\n" in meta
    both = write_sumstats(table, tmp_path / "two", "r", "v", gwas_ssf_scores=["loss", "aum"])
    assert [p.name for p in both.gwas_ssf] == ["two.r_vs_v.loss.gwas-ssf.tsv", "two.r_vs_v.aum.gwas-ssf.tsv"]
    with pytest.raises(InputError, match="not in the table"):
        to_gwas_ssf(table, "grand")


def _separated_table() -> pd.DataFrame:
    """A 20 vs 20 study: example 0 separated (0.967 vs 1.0 in every run), example 1 constant, example
    2 far beyond the smallest double (adjusted p from log space)."""
    rng = np.random.default_rng(9)
    matrix = simulate_scores(rng, ("loss",), 30, {"r": 20, "v": 20})["loss"]
    in_v = matrix.groups == "v"
    matrix.values[:, 0] = np.where(in_v, 1.0, 0.967)
    matrix.values[:, 1] = 0.5
    matrix.values[:, 2] = np.where(in_v, 1e12, 0.0) + rng.normal(0.0, 1.0, 40)
    return associate(matrix, ["r", "v"], normalize="none").pairs[0].sumstats


def test_a_separated_example_is_written_with_its_p_and_kept_in_gwas_ssf(tmp_path):
    table = _separated_table()
    paths = write_sumstats(table, tmp_path / "toy", "r", "v", gwas_ssf_scores=["loss"])
    text = pd.read_csv(paths.tsv["loss"], sep="\t", dtype=str, keep_default_na=False)
    separated = text[text["ID"] == "0"].iloc[0]
    assert separated["ERRCODE"] == "SEPARATED" and separated["T_STAT"] == "NA" and separated["SE"] == "0.0"
    separation_p = 2 / comb(40, 20)  # the labelling and its mirror image
    assert float(separated["P"]) == pytest.approx(separation_p, rel=1e-12)
    assert float(separated["BONF"]) == pytest.approx(separation_p * 29, rel=1e-12)
    assert text.loc[text["ID"] == "1", "ERRCODE"].item() == "CONST"
    assert read_sumstats(paths.tsv["loss"]).loc[0, "ERRCODE"] == "SEPARATED"
    ssf = to_gwas_ssf(table, "loss")
    assert len(ssf) == 29 and 0 in set(ssf["example_id"])  # tested: it has a p-value; the constant one does not
    row = ssf[ssf["example_id"] == 0].iloc[0]
    assert float(row["p_value"]) == pytest.approx(separation_p, rel=1e-12) and row["standard_error"] == 0.0


def test_adjusted_p_below_the_smallest_double_is_written_from_the_study_s_log_columns(tmp_path):
    """The writer computes nothing: it takes the text of an underflowed adjusted p from the
    -log10 column the study computed (formats do not import the analysis)."""
    table = _separated_table()
    row = (table["ID"] == 2).to_numpy()
    assert table.loc[row, "BONF"].item() == 0.0 and table.loc[row, "NEG_LOG10_BONF"].item() > 300
    np.testing.assert_allclose(
        table.loc[row, "NEG_LOG10_BONF"].item(), table.loc[row, "NEG_LOG10_P"].item() - np.log10(29), rtol=1e-12
    )
    edited = table.copy()
    edited.loc[row, "NEG_LOG10_BONF"] = 500.0  # whatever the study says is written
    paths = write_sumstats(edited, tmp_path / "edited", "r", "v")
    text = pd.read_csv(paths.tsv["loss"], sep="\t", dtype=str, keep_default_na=False)
    assert text.loc[text["ID"] == "2", "BONF"].item() == "1e-500"
    assert text.loc[text["ID"] == "2", "NEG_LOG10_BONF"].item() == "500.0"
    # A table without the -log10 column (written by another tool) keeps the float as it is.
    bare = write_sumstats(table.drop(columns=["NEG_LOG10_BONF"]), tmp_path / "bare", "r", "v")
    text = pd.read_csv(bare.tsv["loss"], sep="\t", dtype=str, keep_default_na=False)
    assert float(text.loc[text["ID"] == "2", "BONF"].item()) == 0.0


def test_format_p_from_log():
    text = format_p_from_log(np.array([0.5, 0.0, 0.0, 1e-310, 1e-305, np.nan]), np.array([0.30103, 400.5, 1000.0, 310.0, 305.0, np.nan]))
    assert list(text) == ["0.5", "3.1623e-401", "1e-1000", "1e-310", "1e-305", None]


def test_metadata_is_kept_in_the_parquet_file_and_read_back_for_either_file(tmp_path, study):
    table = study.pairs[0].sumstats
    metadata = {"store": "/data/store", "dataset": "toy", "archs": ["r", "v"], "scores": ["loss", "aum"]}
    paths = write_sumstats(table, tmp_path / "toy", "r", "v", metadata=metadata)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "toy.r_vs_v.aum.sumstats.tsv",
        "toy.r_vs_v.combined.sumstats.tsv",
        "toy.r_vs_v.loss.sumstats.tsv",
        "toy.r_vs_v.sumstats.parquet",
    ]
    assert read_sumstats_metadata(paths.parquet) == metadata
    assert read_sumstats_metadata(paths.tsv["aum"]) == metadata  # from the Parquet copy beside it
    plain = write_sumstats(table, tmp_path / "old", "r", "v")  # as older versions wrote it
    pd.testing.assert_frame_equal(read_sumstats(paths.parquet), read_sumstats(plain.parquet))  # the table is unchanged
    assert read_sumstats_metadata(plain.parquet) == {} and read_sumstats_metadata(plain.tsv["loss"]) == {}
    plain.parquet.unlink()
    assert read_sumstats_metadata(plain.tsv["loss"]) == {}
    with pytest.raises(ResultsError, match="not found"):
        read_sumstats_metadata(tmp_path / "missing.sumstats.tsv")


def test_comparison_stem_of_sumstats_files():
    assert comparison_stem_of("results/toy.r_vs_v.sumstats.parquet") == "toy.r_vs_v"
    assert comparison_stem_of("results/toy.r_vs_v.loss.sumstats.tsv") == "toy.r_vs_v"
    assert comparison_stem_of("toy.a.b_vs_c.combined_pairs.sumstats.tsv") == "toy.a.b_vs_c"
    assert comparison_stem_of("toy.r_vs_v.sumstats.tsv") == "toy.r_vs_v"  # older versions: every score
    assert score_file_name("my.score") != "my.score" and "." not in score_file_name("my.score")
    assert comparison_stem_of("toy.r_vs_v.tsv.gz") == "toy.r_vs_v"
    assert comparison_stem_of("toy.table.txt") == "toy.table"


def test_the_schema_describes_every_column_a_table_can_have(study):
    every = set(sumstats_schema.pair_columns(sumstats_schema.ADJUST_COLUMNS, permutation=True))
    every |= set(sumstats_schema.oneway_columns(sumstats_schema.ADJUST_COLUMNS))
    assert every == set(sumstats_schema.COLUMN_MEANINGS)
    assert all(f"    {name} " in sumstats_schema.__doc__ for name in every)  # the documentation lists each
    assert set(sumstats_schema.REQUIRED_COLUMNS) <= every and sumstats_schema.TEXT_COLUMNS <= every
    assert tuple(study.pairs[0].sumstats.columns) == sumstats_schema.pair_columns(sumstats_schema.ADJUST_COLUMNS)


def test_ranking_score_and_inflation_levels():
    ranking = sumstats_schema.ranking_score
    assert ranking(["loss", "aum", "combined", "combined_pairs"]) == "combined_pairs"
    assert ranking(["loss", "aum", "combined"]) == "combined"
    assert ranking(["loss", "loss"]) == "loss" and ranking(["loss", "aum"]) is None and ranking([]) is None
    level = sumstats_schema.inflation_level
    assert [level(x) for x in (0.9, 1.1, 1.1001, 1.25, 1.2501, float("nan"))] == ["", "", "warn", "warn", "strong", ""]


def test_p_far_below_the_smallest_double_is_written_from_log_space(tmp_path):
    # Regression (issue 12): P and every adjusted column were written as 0 below ~1e-308.
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 40
    rng = np.random.default_rng(5)
    matrix = simulate_scores(rng, ("loss",), 40, {"r": 20, "v": 20})["loss"]
    in_v = matrix.groups == "v"
    matrix.values[~in_v, 0] = rng.normal(0.0, 1.0, 20)  # two tight groups, far apart: p ~ 1e-400
    matrix.values[in_v, 0] = 1e12 + rng.normal(0.0, 1.0, 20)
    matrix.values[:, 1] = 2.0  # constant: no statistic, NA
    table = associate(matrix, ["r", "v"], normalize="none").pairs[0].sumstats
    paths = write_sumstats(table, tmp_path / "toy", "r", "v")
    text = pd.read_csv(paths.tsv["loss"], sep="\t", dtype=str, keep_default_na=False)

    # An independent computation: Welch's t and its two-sided p in 40-digit arithmetic.
    a = [mp.mpf(float(x)) for x in matrix.values[~in_v, 0]]
    b = [mp.mpf(float(x)) for x in matrix.values[in_v, 0]]
    mean_a, mean_b = sum(a) / 20, sum(b) / 20
    share_a = sum((x - mean_a) ** 2 for x in a) / 19 / 20
    share_b = sum((x - mean_b) ** 2 for x in b) / 19 / 20
    t = (mean_b - mean_a) / mp.sqrt(share_a + share_b)
    df = (share_a + share_b) ** 2 / (share_a**2 / 19 + share_b**2 / 19)
    p = mp.betainc(df / 2, mp.mpf(1) / 2, 0, df / (df + t * t), regularized=True)
    assert p < mp.mpf("1e-380")
    n_tested = int((table["ERRCODE"].astype(str) == ".").sum())
    row = text[text["ID"] == "0"].iloc[0]
    assert abs(mp.mpf(row["P"]) / p - 1) < 1e-4
    assert abs(mp.mpf(row["BONF"]) / (n_tested * p) - 1) < 1e-4
    for column in ("HOLM", "SIDAK", "FDR_BH", "FDR_BY"):
        assert 0 < mp.mpf(row[column]) < mp.mpf("1e-370"), column
    # No finite statistic has a p of 0, and a missing one is NA.
    finite = text["T_STAT"] != "NA"
    for column in ("P", "BONF", "HOLM", "SIDAK", "FDR_BH", "FDR_BY"):
        assert (text.loc[finite, column].map(mp.mpf) > 0).all(), column
        assert (text.loc[~finite, column] == "NA").all()
    assert (text.loc[text["ID"] == "1", "ERRCODE"] == "CONST").all()
    # The Parquet file holds float p (0 here) and the exact value in NEG_LOG10_P.
    parquet = read_sumstats(paths.parquet)
    assert parquet.loc[0, "P"] == 0.0
    assert abs(parquet.loc[0, "NEG_LOG10_P"] + float(mp.log10(p))) < 1e-6


def test_a_gwas_tool_reads_one_association_per_example(tmp_path, study):
    # gwaslab's PLINK 2 reader (fmt="plink2") loaded 3 rows per example from the TSV of every
    # score. gwaslab cannot share this environment (see pyproject.toml), so its reader is
    # mimicked with pandas: tab-separated, '#CHROM' header, ID as the variant, P as a number.
    paths = write_sumstats(study.pairs[0].sumstats, tmp_path / "toy", "r", "v")
    for score, path in paths.tsv.items():
        loaded = pd.read_csv(path, sep="\t", usecols=["#CHROM", "POS", "ID", "BETA", "SE", "T_STAT", "P"])
        assert len(loaded) == 120 and loaded["ID"].is_unique, score
        assert loaded[["POS", "ID"]].dtypes.map(pd.api.types.is_integer_dtype).all()
        assert loaded[["BETA", "SE", "T_STAT", "P"]].dtypes.map(pd.api.types.is_float_dtype).all()
