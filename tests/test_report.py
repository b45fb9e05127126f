"""The HTML report: content, self-containment, and rendering in a real browser."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from gwas_models.errors import ResultsError
from gwas_models.formats.store import RunKey, run_table, write_dataset_info, write_run
from gwas_models.report import association_summary, record_command, render_report, write_report
from gwasm_cli.main import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _sumstats(n_examples: int, rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for score in ("aum", "loss", "combined"):
        p = rng.uniform(size=n_examples)
        p[:3] = [1e-12, 1e-9, 1e-7]
        rows.append(
            pd.DataFrame(
                {
                    "#CHROM": [str(i % 3) for i in range(n_examples)],
                    "ID": np.arange(n_examples),
                    "SCORE": score,
                    "P": p,
                    "NEG_LOG10_P": -np.log10(p),
                    "HARDER_IN": np.where(np.arange(n_examples) % 2, "resnet20", "vgg11"),
                    "BETA": rng.normal(size=n_examples),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


@pytest.fixture()
def results(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    results_dir = tmp_path / "gwasm-results"
    results_dir.mkdir()
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [0, 1])
    fig.savefig(results_dir / "digits.resnet20_vs_vgg11.manhattan.png")
    plt.close(fig)
    _sumstats(60, rng).to_parquet(results_dir / "digits.resnet20_vs_vgg11.sumstats.parquet")
    pd.DataFrame({"SCORE": ["aum", "loss"], "SELECT": ["top", "top"], "MEAN_ACCURACY": [1.0, 0.875]}).to_csv(
        results_dir / "digits.fingerprint.tsv", sep="\t", index=False
    )
    (results_dir / "digits.resnet20_vs_vgg11.log").write_text("lambda_GC aum 1.02\n")
    record_command(results_dir, ["associate", "resnet20", "vgg11"])
    store = tmp_path / "store"
    write_dataset_info(store, "digits", {"n_examples": 60, "class_names": ["0", "1", "2"], "source": {"kind": "digits"}})
    for arch in ("resnet20", "vgg11"):
        for seed in range(2):
            table = run_table(np.arange(60), np.arange(60) % 3, {"aum": rng.normal(size=60)})
            write_run(store, RunKey("digits", arch, seed), table, {"test_accuracy": 0.9, "n_parameters": 1000, "config": {"epochs": 3}})
    return results_dir, store


def test_report_embeds_figures_tables_and_provenance(results):
    results_dir, store = results
    page = render_report(results_dir, store)
    png = (results_dir / "digits.resnet20_vs_vgg11.manhattan.png").read_bytes()
    assert base64.b64encode(png).decode() in page
    assert "Manhattan plots" in page and "Fingerprints" in page
    assert "digits.fingerprint.tsv" in page and "0.875" in page
    assert "gwasm associate resnet20 vgg11" in page
    assert "resnet20" in page and "Provenance of digits/vgg11/seed 0" in page
    # Self-contained: no external resource is referenced.
    assert "http://" not in page and "https://" not in page and "<script" not in page


def test_association_summary_counts_bonferroni_hits(results):
    results_dir, _ = results
    per_score, top = association_summary(results_dir / "digits.resnet20_vs_vgg11.sumstats.parquet", alpha=0.01)
    aum = per_score.set_index("SCORE").loc["aum"]
    # Threshold -log10(0.01 / 60) = 3.78: the planted 1e-12, 1e-9 and 1e-7 pass, uniform p (almost surely) not.
    assert aum["N_TESTED"] == 60
    assert aum["BONFERRONI_HITS"] >= 3
    assert list(top["ID"][:3]) == [0, 1, 2]


def test_report_cli_writes_html_and_rejects_bad_input(results, tmp_path, capsys):
    results_dir, store = results
    out = tmp_path / "report.html"
    assert main(["report", str(results_dir), "--out", str(out), "--store", str(store)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gwasm: error:")
    assert main(["report", str(results_dir), "--out", str(tmp_path / "report.txt")]) == 2
    assert not (tmp_path / "report.txt").exists()


def test_empty_results_folder_is_an_error(tmp_path):
    with pytest.raises(ResultsError):
        write_report(tmp_path)


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="Chromium not installed (CI installs it)")
def test_report_renders_in_headless_chromium(results, tmp_path):
    assert CHROMIUM is not None, "CI must install Debian's chromium (see .ci/run)"
    results_dir, store = results
    page = write_report(results_dir, tmp_path / "report.html", store=store)
    profile = tmp_path / "profile"
    common = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    dom = subprocess.run(
        [*common, "--dump-dom", page.resolve().as_uri()], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert "<h2 id=\"association\">Association</h2>" in dom
    assert dom.count("<img") >= 1 and "data:image/png;base64," in dom
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*common, f"--screenshot={shot}", "--window-size=1200,1600", page.resolve().as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    image = plt.imread(shot)
    assert image.shape[0] >= 1000 and image.shape[1] >= 1000
    # A rendered page has text and figures: far from a uniform blank screenshot.
    assert image[..., :3].std() > 0.05
