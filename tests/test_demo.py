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
