"""`gwasm associate` end to end on a tiny run store, including its one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gwas_models.formats.store import RunKey, run_table, write_dataset_info, write_run
from gwas_models.formats.sumstats import latest_sumstats, read_sumstats, read_sumstats_metadata
from gwas_models.workflows.associate import AssociationSettings, associate_from_store

N_EXAMPLES = 60
RUNS = {  # dataset -> arch -> seeds
    "toy": {"resnet20": [0, 1, 2, 3, 4], "vgg": [0, 1, 2, 3, 4], "mlp": [0, 1, 2, 7], "solo": [0]},
    "clean": {"a": [0, 1, 2], "b": [0, 1, 2], "c": [0, 1, 2]},
}


@pytest.fixture(scope="module")
def store_path(tmp_path_factory) -> Path:
    """Two datasets of 60 examples in 3 classes, with scores loss and aum."""
    path = tmp_path_factory.mktemp("associate") / "store"
    rng = np.random.default_rng(0)
    example_id = np.arange(N_EXAMPLES)
    labels = example_id % 3
    for dataset, archs in RUNS.items():
        write_dataset_info(path, dataset, {"n_examples": N_EXAMPLES, "class_names": ["cat", "dog", "frog"], "source": {"kind": "test"}})
        for arch_index, (arch, seeds) in enumerate(archs.items()):
            for seed in seeds:
                loss = rng.normal(size=N_EXAMPLES)
                loss[:4] += 3.0 * arch_index  # examples 0-3 get harder from one architecture to the next
                aum = -loss + rng.normal(0, 0.1, N_EXAMPLES)
                table = run_table(example_id, labels, {"loss": loss, "aum": aum})
                write_run(path, RunKey(dataset, arch, seed), table, {"test_accuracy": 0.9, "n_parameters": 1000})
    return path


@pytest.fixture
def store(store_path, tmp_path, monkeypatch) -> Path:
    """The shared store, run from an empty working directory so default outputs land in tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GWASM_STORE", raising=False)
    monkeypatch.delenv("GWASM_RESULTS", raising=False)
    return store_path


def test_pair_end_to_end(store, run_gwasm, tmp_path):
    code, out, err = run_gwasm("associate", "resnet20", "vgg", "--dataset", "toy", "--store", store)
    assert code == 0, err
    results = tmp_path / "gwasm-results"
    tsvs = {score: results / f"toy.resnet20_vs_vgg.{score}.sumstats.tsv" for score in ("loss", "aum", "combined")}
    parquet = results / "toy.resnet20_vs_vgg.sumstats.parquet"
    log = results / "toy.resnet20_vs_vgg.log"
    assert all(tsv.is_file() for tsv in tsvs.values()) and parquet.is_file() and log.is_file()
    assert sorted(p.name for p in results.glob("toy.resnet20_vs_vgg*")) == sorted([parquet.name, log.name, *(t.name for t in tsvs.values())])
    table = read_sumstats(parquet)
    assert list(table.columns[:8]) == ["#CHROM", "POS", "ID", "LABEL", "SCORE", "A", "B", "N_A"]
    assert list(table.columns[-11:-6]) == ["BONF", "HOLM", "SIDAK", "FDR_BH", "FDR_BY"] and table.columns[-1] == "ERRCODE"
    assert len(table) == N_EXAMPLES * 3 and set(table["SCORE"]) == {"loss", "aum", "combined"}
    assert set(table["#CHROM"]) == {"cat", "dog", "frog"} and (table["N_A"] == 5).all()
    for score, tsv in tsvs.items():  # one association per example in each TSV, as GWAS tools expect
        rows = read_sumstats(tsv)
        assert len(rows) == N_EXAMPLES and rows["ID"].is_unique and set(rows["SCORE"]) == {score}
        pd.testing.assert_frame_equal(rows, table[table["SCORE"] == score].reset_index(drop=True))
    # Under the default relative reference normal scores cap the planted +3 SD at the top ranks of
    # 60 examples (5 v 5 runs): most planted examples lead, each harder in vgg.
    top = table[table["SCORE"] == "combined"].nlargest(6, "NEG_LOG10_P")
    planted = top[top["ID"].isin([0, 1, 2, 3])]
    assert len(planted) >= 3 and (planted["HARDER_IN"] == "vgg").all()
    text = log.read_text()
    assert "resnet20: 5 runs, seeds 0-4" in text and "lambda_GC" in text and "gwasm associate resnet20 vgg" in text
    assert "resnet20 vs vgg" in out and "lambda_GC" in out
    # The hits are relative changes; the global question has its own line (issue 20).
    assert "resnet20 vs vgg: examples that change difficulty relative to their architecture" in out
    assert "  global shift" in out and "question: examples that change difficulty relative" in text
    assert all(str(path.relative_to(tmp_path)) in out for path in (parquet, *tsvs.values()))
    assert latest_sumstats(results) == parquet


def test_three_architectures_with_an_output_prefix(store, run_gwasm, tmp_path):
    code, out, err = run_gwasm(
        "associate", "resnet20", "vgg", "mlp", "--dataset", "toy", "--store", store, "--scores", "aum", "--out", tmp_path / "res" / "run1"
    )
    assert code == 0, err
    names = sorted(p.name for p in (tmp_path / "res").glob("*.sumstats.tsv"))
    assert names == [
        "run1.resnet20_vs_mlp.aum.sumstats.tsv",
        "run1.resnet20_vs_vgg.aum.sumstats.tsv",
        "run1.resnet20_vs_vgg_vs_mlp.aum.sumstats.tsv",
        "run1.resnet20_vs_vgg_vs_mlp.combined_pairs.sumstats.tsv",
        "run1.vgg_vs_mlp.aum.sumstats.tsv",
    ]
    pair = read_sumstats(tmp_path / "res" / "run1.resnet20_vs_mlp.aum.sumstats.tsv")
    assert len(pair) == N_EXAMPLES and set(pair["SCORE"]) == {"aum"}  # one score: no combined rows
    oneway = read_sumstats(tmp_path / "res" / "run1.resnet20_vs_vgg_vs_mlp.sumstats.parquet")
    assert {"F_STAT", "DF1", "DF2", "HARDEST_IN"} <= set(oneway.columns)
    assert set(oneway["SCORE"]) == {"aum", "combined_pairs"}
    assert "one-way" in out


def test_all_architectures_of_a_dataset(store, run_gwasm, tmp_path):
    code, out, err = run_gwasm("associate", "--all", "--dataset", "clean", "--store", store)
    assert code == 0, err
    assert len(list((tmp_path / "gwasm-results").glob("clean.*.sumstats.parquet"))) == 4


def test_permutation_test_is_reproducible_and_warns_about_its_floor(store, run_gwasm, tmp_path):
    args = ["associate", "resnet20", "vgg", "--dataset", "toy", "--store", store, "--test", "permutation", "--permutations", "30", "--seed", "3"]
    code, out, err = run_gwasm(*args)
    assert code == 0, err
    assert "gwasm: warning:" in err and "smallest permutation p" in err
    parquet = tmp_path / "gwasm-results" / "toy.resnet20_vs_vgg.sumstats.parquet"
    first = read_sumstats(parquet)
    # 5 vs 5 runs: 126 partitions, all enumerated (exact p), whatever --permutations says.
    assert list(first.columns[-3:]) == ["EMP1", "EMP2", "ERRCODE"] and first["EMP1"].min() >= 1 / 126
    log = (tmp_path / "gwasm-results" / "toy.resnet20_vs_vgg.log").read_text()
    assert "--seed 3" in log and "exact permutation p: all 126 distinct relabellings" in log
    assert "smallest reachable p 0.00794" in log
    assert run_gwasm(*args)[0] == 0
    pd.testing.assert_frame_equal(first, read_sumstats(parquet))


def test_paired_normalised_and_gwas_ssf_outputs(store, run_gwasm, tmp_path):
    code, out, err = run_gwasm(
        "associate", "resnet20", "vgg", "--dataset", "toy", "--store", store, "--paired", "--normalize", "rank",
        "--format", "gwas-ssf", "--ssf-score", "loss", "--adjust", "holm,fdr_bh", "--alpha", "0.05",
    )  # fmt: skip
    assert code == 0, err
    results = tmp_path / "gwasm-results"
    table = read_sumstats(results / "toy.resnet20_vs_vgg.loss.sumstats.tsv")
    assert list(table.columns[-5:-2]) == ["HOLM", "FDR_BH", "NEG_LOG10_HOLM"] and (table["DF"].dropna() == 4).all()
    log = (results / "toy.resnet20_vs_vgg.log").read_text()
    assert "paired t-test" in log and "normalize: rank" in log and "alpha: 0.05" in log
    ssf = (results / "toy.resnet20_vs_vgg.gwas-ssf.tsv").read_text().splitlines()
    assert ssf[0].startswith("chromosome\tbase_pair_location\teffect_allele\tother_allele\tbeta")
    assert len(ssf) == N_EXAMPLES + 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["resnet20", "nope"], "no runs of 'nope' for dataset 'toy'"),
        (["resnet20"], "at least two architectures"),
        (["resnet20", "solo"], "'solo' has 1 run"),
        (["resnet20", "mlp", "--paired"], "seeds only in resnet20: 3,4; only in mlp: 7"),
        (["resnet20", "vgg", "--scores", "loss,nope"], "unknown score 'nope'"),
        (["resnet20", "vgg", "--scores", "grand"], "score 'grand' was not recorded"),
        (["resnet20", "vgg", "--adjust", "bonferroni,bh"], "unknown adjustment method 'bh'"),
        (["resnet20", "vgg", "--alpha", "1.5"], "alpha must be strictly between 0 and 1"),
        (["resnet20", "vgg", "--alpha", "0"], "alpha must be strictly between 0 and 1"),
        (["resnet20", "vgg", "--test", "wilcoxon"], "must be one of welch, student, permutation, moderated, got 'wilcoxon'"),
        (["resnet20", "vgg", "--test", "permutation", "--permutations", "0"], "permutations must be at least 1"),
        (["resnet20", "vgg", "--normalize", "quantile"], "must be one of relative, none, rank, zscore, center_class, got 'quantile'"),
        (["resnet20", "vgg", "--format", "vcf"], "must be one of plink, gwas-ssf, got 'vcf'"),
        (["resnet20", "vgg", "--all"], "not both"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(store, run_gwasm, tmp_path, args, message):
    code, out, err = run_gwasm("associate", *args, "--dataset", "toy", "--store", store, "--out", tmp_path / "out" / "x")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gwasm: error:"), err
    assert message in lines[0]
    assert not (tmp_path / "out").exists() and not (tmp_path / "gwasm-results").exists()


def test_several_datasets_need_a_choice(store, run_gwasm, tmp_path):
    code, out, err = run_gwasm("associate", "a", "b", "--store", store)
    assert code == 2 and err.startswith("gwasm: error:") and "--dataset" in err


def test_the_workflow_writes_each_comparison_hands_it_over_and_records_where_it_came_from(store, tmp_path):
    seen = []
    result = associate_from_store(
        None,  # every architecture of the dataset
        store=store,
        dataset="clean",
        scores="loss",
        settings=AssociationSettings(adjust="bonferroni"),
        out_prefix=tmp_path / "w" / "clean",
        command_line=lambda inputs: f"rerun {' '.join(inputs.archs)}",
        on_comparison=lambda written: seen.append((written.comparison.archs, len(written.comparison.sumstats), written.paths)),
    )
    assert result.inputs.archs == ("a", "b", "c") and result.inputs.scores == ("loss",) and result.inputs.seed is None
    assert [archs for archs, _, _ in seen] == [("a", "b"), ("a", "c"), ("b", "c"), ("a", "b", "c")]
    assert all(rows == N_EXAMPLES * (1 if len(archs) == 2 else 2) for archs, rows, _ in seen)  # tables seen whole...
    assert all(len(c.sumstats) == 0 for c in result.study.comparisons)  # ...then dropped
    assert result.written == tuple(paths for _, _, paths in seen)
    first = result.written[0]
    metadata = read_sumstats_metadata(first.tsv["loss"])
    lam = metadata.pop("lambda")["loss"]
    shift = metadata.pop("global_shift")["loss"]
    run_shift = result.study.pairs[0].scores[0].run_shift
    assert shift == {"difference": run_shift.difference, "p": run_shift.p, "harder_overall": None}
    assert metadata == {
        "store": str(store.resolve()),
        "dataset": "clean",
        "archs": ["a", "b"],
        "scores": ["loss"],
        "test": "welch",
        "trend": False,
        "robust": False,
        "covariates": [],
        "normalize": "relative",
        "alpha": 0.01,
        "adjust": ["bonferroni"],
        "paired": False,
        "runs": {"a": [0, 1, 2], "b": [0, 1, 2]},
    }
    summary = result.study.pairs[0].scores[0]
    null = summary.lambda_null
    assert lam == {
        "lambda_gc": summary.lambda_gc,
        "null_95": null.upper,
        "beyond": null.beyond,
        "verdict": null.verdict_code,
        "p": null.p,
        "p_low": null.p_low,
        "p_high": null.p_high,
        "exact": null.exact,
    }
    assert first.log.read_text().splitlines()[1] == "command (effective): rerun a b c"
