"""Sumstats files: TSV and Parquet round trips, names, atomic writes, GWAS-SSF, reading errors."""

from __future__ import annotations

import os
import time

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
    read_sumstats,
    read_sumstats_metadata,
    safe_name,
    to_gwas_ssf,
    write_sumstats,
)


@pytest.fixture(scope="module")
def study():
    rng = np.random.default_rng(0)
    matrices = simulate_scores(rng, ("loss", "aum"), 120, {"r": 5, "v": 4}, effect_examples=[3], effect_size=1e100)
    values = matrices["loss"].values
    values[:, 5] = 1.0  # constant: a row with missing statistics
    return associate(matrices, ["r", "v"])


def test_tsv_and_parquet_hold_the_same_table(tmp_path, study):
    table = study.pairs[0].sumstats
    paths = write_sumstats(table, tmp_path / "out" / "toy", "r", "v", log_text="log\n")
    assert paths.tsv == tmp_path / "out" / "toy.r_vs_v.sumstats.tsv"
    assert paths.parquet.name == "toy.r_vs_v.sumstats.parquet" and paths.log.read_text() == "log\n"
    lines = paths.tsv.read_text().splitlines()
    assert lines[0].split("\t") == list(table.columns) and lines[0].startswith("#CHROM\tPOS\tID")
    constant_row = next(line.split("\t") for line in lines[1:] if line.split("\t")[2] == "5")
    assert constant_row[list(table.columns).index("P")] == "." and constant_row[-1] == "CONST"
    from_tsv, from_parquet = read_sumstats(paths.tsv), read_sumstats(paths.parquet)
    pd.testing.assert_frame_equal(from_tsv, from_parquet)
    np.testing.assert_array_equal(from_tsv["P"].to_numpy(), table["P"].to_numpy())  # full precision
    assert from_tsv["ERRCODE"].iloc[5] == "CONST" and from_tsv["POS"].dtype == np.int64
    assert (from_tsv["HARDER_IN"].isin([".", "r", "v"])).all()


def test_underflowed_p_keeps_its_evidence_on_disk(tmp_path, study):
    table = study.pairs[0].sumstats
    row = table[(table["SCORE"].astype(str) == "loss") & (table["ID"] == 3)]
    assert row["P"].iloc[0] == 0.0 and np.isfinite(row["NEG_LOG10_P"].iloc[0])
    paths = write_sumstats(table, tmp_path / "toy", "r", "v")
    back = read_sumstats(paths.tsv)
    assert back.loc[row.index[0], "NEG_LOG10_P"] == row["NEG_LOG10_P"].iloc[0]


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
    for path, age in ((older.tsv, 20), (older.parquet, 20), (newer.tsv, 5), (newer.parquet, 5)):
        os.utime(path, (now - age, now - age))
    assert latest_sumstats(tmp_path) == newer.parquet
    newer.parquet.unlink()
    assert latest_sumstats(tmp_path) == newer.tsv


def test_gwas_ssf_layout(tmp_path, study):
    table = study.pairs[0].sumstats
    ssf = to_gwas_ssf(table, "loss")
    assert tuple(ssf.columns[: len(SSF_COLUMNS)]) == SSF_COLUMNS and "variant_id" in ssf.columns
    assert len(ssf) == 119  # the constant example has no p-value and is left out
    assert (ssf["effect_allele"] == "v").all() and (ssf["other_allele"] == "r").all()
    assert ssf["chromosome"].between(1, 10).all() and ssf["effect_allele_frequency"].isna().all()
    underflowed = ssf.loc[ssf["example_id"] == 3, "p_value"].iloc[0]
    assert underflowed != "0" and float(underflowed.split("e-")[1]) > 300
    paths = write_sumstats(table, tmp_path / "toy", "r", "v", gwas_ssf_scores=["aum"])
    assert [p.name for p in paths.gwas_ssf] == ["toy.r_vs_v.gwas-ssf.tsv"]
    text = paths.gwas_ssf[0].read_text().splitlines()
    assert text[0].split("\t")[:8] == list(SSF_COLUMNS) and "\tNA\t" in text[1]
    assert (tmp_path / "toy.r_vs_v.gwas-ssf.tsv-meta.yaml").read_text().startswith("data_file_name:")
    both = write_sumstats(table, tmp_path / "two", "r", "v", gwas_ssf_scores=["loss", "aum"])
    assert [p.name for p in both.gwas_ssf] == ["two.r_vs_v.loss.gwas-ssf.tsv", "two.r_vs_v.aum.gwas-ssf.tsv"]
    with pytest.raises(InputError, match="not in the table"):
        to_gwas_ssf(table, "grand")


def test_format_p_from_log():
    text = format_p_from_log(np.array([0.5, 0.0, 0.0, 1e-310]), np.array([0.30103, 400.5, 1000.0, 310.0]))
    assert list(text) == ["0.5", "3.1623e-401", "1e-1000", "1e-310"]


def test_metadata_is_kept_in_the_parquet_file_and_read_back_for_either_file(tmp_path, study):
    table = study.pairs[0].sumstats
    metadata = {"store": "/data/store", "dataset": "toy", "archs": ["r", "v"], "scores": ["loss", "aum"]}
    paths = write_sumstats(table, tmp_path / "toy", "r", "v", metadata=metadata)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy.r_vs_v.sumstats.parquet", "toy.r_vs_v.sumstats.tsv"]
    assert read_sumstats_metadata(paths.parquet) == metadata
    assert read_sumstats_metadata(paths.tsv) == metadata  # from the Parquet copy beside it
    pd.testing.assert_frame_equal(read_sumstats(paths.parquet), read_sumstats(paths.tsv))  # the table is unchanged
    plain = write_sumstats(table, tmp_path / "old", "r", "v")  # as older versions wrote it
    assert read_sumstats_metadata(plain.parquet) == {} and read_sumstats_metadata(plain.tsv) == {}
    plain.parquet.unlink()
    assert read_sumstats_metadata(plain.tsv) == {}
    with pytest.raises(ResultsError, match="not found"):
        read_sumstats_metadata(tmp_path / "missing.sumstats.tsv")


def test_comparison_stem_of_sumstats_files():
    assert comparison_stem_of("results/toy.r_vs_v.sumstats.parquet") == "toy.r_vs_v"
    assert comparison_stem_of("toy.r_vs_v.sumstats.tsv") == "toy.r_vs_v"
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
