"""`gwasm demo` end to end on a tiny configuration, and parallel collection."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq

from gwas_models.formats.store import RunKey, run_dir


def test_demo_runs_the_whole_pipeline(run_gwasm, tmp_path):
    code, out, err = run_gwasm(
        "demo", "--dir", tmp_path / "demo", "--archs", "mlp,mlp-32,mlp-16", "--runs", "4", "--epochs", "2", "--workers", "1", "--quiet"
    )
    assert code == 0, err
    results = tmp_path / "demo" / "results"
    expected = [
        "digits.mlp_vs_mlp-32.sumstats.parquet",
        "digits.mlp_vs_mlp-32_vs_mlp-16.sumstats.parquet",
        "digits.mlp_vs_mlp-32.manhattan.png",
        "digits.mlp_vs_mlp-16.manhattan.png",
        "digits.mlp_vs_mlp-32.qq.png",
        "digits.mlp_vs_mlp-32_vs_mlp-16.gallery.png",
        "digits.fingerprint.tsv",
        "digits.fingerprint.json",
        "digits.mlp.pca.tsv",
        "digits.sizes.tsv",
        "report.html",
    ]
    for name in expected:
        assert (results / name).stat().st_size > 0, name
    assert "demo finished" in out
    # Every command of the demo is in the history the report shows.
    history = (results / "commands.log").read_text()
    assert history.count("gwasm collect") == 3 and "gwasm fingerprint mlp mlp-32" in history
    page = (results / "report.html").read_text()
    assert "Fingerprints" in page and "gwasm associate mlp mlp-32 mlp-16" in page
    runs = pd.read_parquet(tmp_path / "demo" / "store")
    assert sorted(runs["arch"].unique()) == ["mlp", "mlp-16", "mlp-32"] and runs.groupby("arch")["seed"].nunique().eq(4).all()


def test_demo_rejects_too_few_runs(run_gwasm, tmp_path):
    code, _, err = run_gwasm("demo", "--dir", tmp_path / "demo", "--runs", "2")
    assert code == 2 and err.strip().startswith("gwasm: error:") and len(err.strip().splitlines()) == 1


def test_worker_processes_give_the_same_runs_as_one_process(run_gwasm, tmp_path, tiny_digits_npz):
    common = ["--arch", "mlp", "--dataset", tiny_digits_npz, "--runs", "2", "--epochs", "2", "--quiet", "--device", "cpu", "--threads", "1"]
    assert run_gwasm("collect", *common, "--store", tmp_path / "one")[0] == 0
    assert run_gwasm("collect", *common, "--workers", "2", "--store", tmp_path / "two")[0] == 0
    for seed in (0, 1):
        key = RunKey("tiny_digits", "mlp", seed)
        one = pq.read_table(run_dir(tmp_path / "one", key) / "part-0.parquet").to_pandas()
        two = pq.read_table(run_dir(tmp_path / "two", key) / "part-0.parquet").to_pandas()
        pd.testing.assert_frame_equal(one, two)


def test_cnn_vs_vit_study_trains_the_vit_with_its_own_recipe(run_gwasm, tmp_path):
    from gwasm_cli.demo import VIT

    code, out, err = run_gwasm(
        "demo", "--study", "cnn-vs-vit", "--archs", f"mlp-16,{VIT}", "--dir", tmp_path / "demo", "--runs", "4", "--epochs", "2",
        "--workers", "1", "--quiet",
    )  # fmt: skip
    assert code == 0, err
    results = tmp_path / "demo" / "results-cnn-vs-vit"
    assert (results / "report.html").stat().st_size > 0 and (results / "digits.fingerprint.json").stat().st_size > 0
    assert len(list(results.glob("digits.mlp-16_vs_timm_vit_tiny_patch16_224-*.gallery.png"))) == 1
    history = (results / "commands.log").read_text()
    assert f"--arch {VIT} --runs 4 --epochs 3 --arch-option depth=2" in history and "--optimizer adamw" in history
    assert not (tmp_path / "demo" / "results").exists()


def test_unknown_demo_study_is_one_error_line(run_gwasm, tmp_path):
    code, _, err = run_gwasm("demo", "--study", "cnn-vs-rnn", "--dir", tmp_path / "demo")
    assert code == 2 and err.strip() == "gwasm: error: unknown --study 'cnn-vs-rnn'; choose one of architectures, cnn-vs-vit"
