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
from gwas_models.formats.sumstats import read_sumstats, write_sumstats
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
    """A pair table as `gwasm associate` writes it: scores aum and loss, their combined rows, and
    examples 0-2 planted at p = 1e-12, 1e-9, 1e-7 in both scores."""
    labels = np.arange(n_examples) % 3
    keys = {
        "#CHROM": [str(label) for label in labels],
        "POS": np.arange(n_examples) // 3 + 1,
        "ID": np.arange(n_examples),
        "LABEL": labels,
        "A": "resnet20",
        "B": "vgg11",
    }
    blocks, evidence = [], []
    for score in ("aum", "loss"):
        p = rng.uniform(size=n_examples)
        p[:3] = [1e-12, 1e-9, 1e-7]
        evidence.append(-np.log10(p))
        blocks.append(pd.DataFrame({**keys, "SCORE": score, "BETA": rng.normal(size=n_examples), "P": p, "NEG_LOG10_P": evidence[-1]}))
    combined = np.mean(evidence, axis=0)  # the mean of -log10 p over the scores: a ranking, not a test
    blocks.append(pd.DataFrame({**keys, "SCORE": "combined", "BETA": np.nan, "P": 10.0**-combined, "NEG_LOG10_P": combined}))
    table = pd.concat(blocks, ignore_index=True)
    table["HARDER_IN"] = np.where(table["ID"] % 2, "resnet20", "vgg11")
    table["ERRCODE"] = "."
    return table


@pytest.fixture()
def results(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    results_dir = tmp_path / "gwasm-results"
    results_dir.mkdir()
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [0, 1])
    fig.savefig(results_dir / "digits.resnet20_vs_vgg11.manhattan.png")
    plt.close(fig)
    write_sumstats(_sumstats(60, rng), results_dir / "digits", "resnet20", "vgg11")
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
    path = results_dir / "digits.resnet20_vs_vgg11.sumstats.parquet"
    per_score, top = association_summary(path, alpha=0.01)
    table = read_sumstats(path)
    per_score = per_score.set_index("SCORE")
    for score in ("aum", "loss"):
        p = table.loc[table["SCORE"] == score, "P"]
        # Bonferroni at 0.01 over 60 tests: p <= 1.67e-4; the planted 1e-12, 1e-9 and 1e-7 among them.
        assert per_score.loc[score, "N_TESTED"] == 60
        assert per_score.loc[score, "BONFERRONI_HITS"] == int((p <= 0.01 / 60).sum()) >= 3
    # The combined rows rank examples; they are not tests, so they have neither λGC nor hits.
    assert np.isnan(per_score.loc["combined", "LAMBDA_GC"]) and np.isnan(per_score.loc["combined", "BONFERRONI_HITS"])
    assert (top["SCORE"] == "combined").all() and list(top["ID"][:3]) == [0, 1, 2]


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
