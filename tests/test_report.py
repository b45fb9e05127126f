"""The HTML report: content, self-containment, and rendering in a real browser."""

from __future__ import annotations

import base64
import os
import re
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
from gwas_models.report import association_summary, load_comparison, parse_log, record_command, render_report, write_report
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
    table["HARDEST_IN"] = "."  # empty, as in any pair table: the report must not show it
    table["ERRCODE"] = "."
    return table


# The parts of a comparison's .log that the report reads, as format_log writes them.
LOG = """# gwasm associate
dataset: digits
runs used:
  resnet20: 2 runs, seeds 0-1
  vgg11: 2 runs, seeds 0-1

per score (significant = adjusted p <= 0.01; lambda_95: 95th percentile of lambda_GC under relabelling of the runs):
  score     tested  untested  lambda_GC  lambda_95  lambda_p  shift_p  BONF
  aum       60      0         1.0200     1.5000     0.4       0.3      3
  loss      60      0         2.5000     1.4000     0.02      0.01     3
  combined  60      0         .          .          .         .        3
lambda_GC against its null (the runs relabelled, every example tested again; no p is divided by lambda):
  aum: λ = 1.02, 95th percentile under relabelling 1.50 (null 2.5-97.5%: 0.5-1.6; p 0.4; all 3 relabellings, 60 examples): consistent with run-to-run noise
  loss: λ = 2.50, 95th percentile under relabelling 1.40 (null 2.5-97.5%: 0.5-1.5; p 0.02; all 3 relabellings, 60 examples): beyond it: a real global difference between the architectures

warnings: none
"""


@pytest.fixture()
def results(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    results_dir = tmp_path / "gwasm-results"
    results_dir.mkdir()
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [0, 1])
    fig.savefig(results_dir / "digits.resnet20_vs_vgg11.manhattan.png")
    plt.close(fig)
    store = tmp_path / "store"
    metadata = {"store": str(store), "dataset": "digits", "archs": ["resnet20", "vgg11"], "scores": ["aum", "loss"]}
    write_sumstats(_sumstats(60, rng), results_dir / "digits", "resnet20", "vgg11", log_text=LOG, metadata=metadata)
    pd.DataFrame({"SCORE": ["aum", "loss"], "SELECT": ["top", "top"], "MEAN_ACCURACY": [1.0, 0.875]}).to_csv(
        results_dir / "digits.fingerprint.tsv", sep="\t", index=False
    )
    pd.DataFrame({"ID": np.arange(300), "VALUE": rng.normal(size=300)}).to_csv(
        results_dir / "digits.resnet20.variance.tsv", sep="\t", index=False
    )
    record_command(results_dir, ["associate", "resnet20", "vgg11"])
    write_dataset_info(store, "digits", {"n_examples": 60, "class_names": ["0", "1", "2"], "source": {"kind": "digits"}})
    for arch in ("resnet20", "vgg11"):
        for seed in range(2):
            table = run_table(np.arange(60), np.arange(60) % 3, {"aum": rng.normal(size=60)})
            accuracy = 0.9 if arch == "resnet20" else 0.8
            write_run(store, RunKey("digits", arch, seed), table, {"test_accuracy": accuracy, "n_parameters": 1000, "config": {"epochs": 3}})
    return results_dir, store


def _sections(page: str) -> list[str]:
    return re.findall(r"<h2[^>]*>(.*?)</h2>", page)


def test_report_opens_with_the_summary_then_figures_then_collapsed_tables(results):
    results_dir, store = results
    page = render_report(results_dir, store)
    assert _sections(page) == ["Summary", "Figures", "Tables and provenance"]
    summary = page[page.index('id="summary"') : page.index('id="figures"')]
    # Runs and mean test accuracy per architecture, hits per score, λ with its verdict.
    assert "<b>resnet20</b> 2 runs (mean test accuracy 0.900)" in summary and "<b>vgg11</b> 2 runs (mean test accuracy 0.800)" in summary
    assert re.search(r"Hits \(Bonferroni, α = 0.01, of 60 examples\): (aum|loss) \d+, (aum|loss) \d+\.", summary)
    assert "beyond run-to-run noise</b>" in summary and "loss 2.50" in summary
    assert "consistent with run-to-run noise for" in summary and "aum 1.02" in summary
    # Top examples as thumbnails of the dataset's images (digits), with their direction.
    assert summary.count('<img alt="example') == 8 and "harder in vgg11" in summary
    assert "Top examples by the paper&#x27;s ranking (mean −log10 p over scores):" in summary and "combined evidence" not in page
    # Fingerprint accuracy from its evaluation table.
    assert "Held-out accuracy of the top" in summary and "aum <b>1.00</b>" in summary
    assert "<table" not in summary and "Stale" not in summary
    # Tables come after the figures, collapsed; no empty column, no preview of a large table.
    details = page[page.index('id="details"') :]
    assert page.index("<figure") < page.index("<table") and "<table" in details
    assert "HARDEST_IN" not in page and "EASIEST_IN" not in page
    assert "digits.resnet20.variance.tsv</code>: 300 rows" in details
    assert all(table_start > page.index("<details") for table_start in [m.start() for m in re.finditer("<table", page)])


def test_report_flags_an_association_older_than_the_store(results):
    results_dir, store = results
    table = run_table(np.arange(60), np.arange(60) % 3, {"aum": np.zeros(60)})
    write_run(store, RunKey("digits", "vgg11", 2), table, {"test_accuracy": 0.5})
    page = render_report(results_dir, store)
    assert "computed on 2 runs of vgg11 (seeds 0-1); the store now holds 3 (seeds 0-2): rerun gwasm associate" in page
    assert "runs of resnet20" not in page  # unchanged architectures are not flagged


def test_report_without_images_or_store_still_summarises(results, tmp_path):
    results_dir, store = results
    # A store whose dataset source cannot be loaded: no thumbnails, the example ids instead.
    (info,) = (store / "dataset=digits").glob("*.json")
    info.write_text(info.read_text().replace('"kind": "digits"', '"kind": "npz", "path": "/nonexistent.npz"'))
    page = render_report(results_dir, store)
    # Issue 20: the thumbnails name their ranking (they said "by combined evidence", while the combined
    # Manhattan plot draws the Cauchy combination p).
    assert '<img alt="example' not in page
    assert "Top examples by the paper&#x27;s ranking (mean −log10 p over scores) (images not available): #0 harder in vgg11" in page
    page = render_report(results_dir, tmp_path / "no-store")  # metadata's store is used instead
    assert "Runs: <b>resnet20</b> 2 runs" in page


def test_parse_log_reads_alpha_runs_and_lambda_verdicts():
    facts = parse_log(LOG)
    assert facts.alpha == 0.01
    assert facts.runs == {"resnet20": (2, (0, 1)), "vgg11": (2, (0, 1))}
    assert facts.lambdas["loss"].beyond and facts.lambdas["loss"].upper == 1.4
    assert not facts.lambdas["aum"].beyond and facts.lambdas["aum"].verdict == "consistent with run-to-run noise"
    assert "combined" not in facts.lambdas
    assert parse_log("not a log").runs == {}


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
    # The page opens with the summary, and the first figure comes before any table.
    assert _sections(dom)[0] == "Summary" and dom.index("<figure") < dom.index("<table")
    assert dom.count("<img") >= 1 and "data:image/png;base64," in dom
    # No horizontal scrollbar at 1280 px, every collapsed table opened: measured by a script in a
    # copy of the page (the report itself has none).
    measure = (
        "<script>document.querySelectorAll('details').forEach(d => d.open = true);"
        "const e = document.documentElement, p = document.createElement('p'); p.id = 'measure';"
        "p.textContent = e.scrollWidth + ' ' + e.clientWidth; document.body.appendChild(p);</script>"
    )
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", measure + "</body>"))
    dom = subprocess.run(
        [*common, "--window-size=1280,1600", "--dump-dom", probe.resolve().as_uri()], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    scroll_width, client_width = map(int, re.search(r'<p id="measure">(\d+) (\d+)</p>', dom).groups())
    assert client_width > 1000 and scroll_width <= client_width
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*common, f"--screenshot={shot}", "--window-size=1280,1600", page.resolve().as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    image = plt.imread(shot)
    assert image.shape[0] >= 1000 and image.shape[1] >= 1000
    # A rendered page has text and figures: far from a uniform blank screenshot.
    assert image[..., :3].std() > 0.05


def test_lambda_verdicts_of_newer_logs_and_metadata_and_of_older_metadata():
    """λ's four verdicts (issue 20), from the .log sentences and the Parquet metadata; metadata
    written before the verdict was recorded still gives beyond or consistent from its flag."""
    from types import SimpleNamespace

    from gwas_models.report import _lambda_sentence, _metadata_lambdas

    lines = LOG.replace(
        "  combined  60      0",
        "  acc       60      0         1.7000     1.8000     0.052     0.3      0\n"
        "  few       60      0         3.0000     2.0000     0.333     0.3      0\n"
        "  combined  60      0",
    ).replace(
        "\nwarnings: none",
        "  acc: λ = 1.70, 95th percentile under relabelling 1.80 (null 2.5-97.5%: 0.5-1.9; p 0.052, 99.9% MC interval"
        " 0.043-0.062; 6400 random relabellings, 60 examples): undecided: the relabelling p's interval straddles 0.05"
        " after 6400 random relabellings (λ too near its null's 95th percentile to tell)\n"
        "  few: λ = 3.00, 95th percentile under relabelling 2.00 (null 2.5-97.5%: 0.5-3.0; p 0.333, exact; all 3"
        " relabellings, 60 examples): no verdict: these runs allow no relabelling p below 0.333, above 0.05 (too few"
        " runs to tell λ from run-to-run noise)\n\nwarnings: none",
    )
    facts = parse_log(lines).lambdas
    assert facts["acc"].verdict.startswith("undecided") and not facts["acc"].beyond
    assert facts["few"].verdict.startswith("no verdict") and not facts["few"].beyond
    assert facts["loss"].beyond and facts["aum"].verdict == "consistent with run-to-run noise"
    sentence = _lambda_sentence(SimpleNamespace(lambdas=facts))
    assert "undecided (too near" in sentence and "acc 1.70" in sentence
    assert "no verdict (too few runs" in sentence and "few 3.00" in sentence
    assert "<b>beyond run-to-run noise</b>" in sentence and "consistent with run-to-run noise for" in sentence

    newer = {"lambda_gc": 1.7, "null_95": 1.8, "beyond": False, "verdict": "undecided", "p": 0.052, "p_low": 0.043, "p_high": 0.062}
    older = {"lambda_gc": 2.5, "null_95": 1.4, "beyond": True}
    none = {"lambda_gc": 1.1, "null_95": None, "beyond": False, "verdict": "no_null"}
    read = _metadata_lambdas({"lambda": {"acc": newer, "loss": older, "empty": none}})
    assert read["acc"].verdict.startswith("undecided") and read["loss"].beyond and read["empty"].verdict == ""


def test_summary_says_relative_hits_and_the_global_shift_on_its_own_line(tmp_path):
    """Issue 20: the report's hits are relative changes under the default reference, and which
    architecture is harder overall is its own line, from the metadata the association wrote."""
    rng = np.random.default_rng(1)
    results_dir = tmp_path / "gwasm-results"
    results_dir.mkdir()
    shift = {"loss": {"difference": 0.4, "p": 1e-5, "harder_overall": "vgg11"}, "aum": {"difference": 0.01, "p": 0.4, "harder_overall": None}}
    metadata = {"dataset": "digits", "archs": ["resnet20", "vgg11"], "scores": ["aum", "loss"], "normalize": "relative", "alpha": 0.05, "global_shift": shift}
    write_sumstats(_sumstats(60, rng), results_dir / "digits", "resnet20", "vgg11", log_text=LOG, metadata=metadata)
    comparison = load_comparison(results_dir / "digits.resnet20_vs_vgg11.sumstats.parquet", None)
    assert comparison.alpha == 0.05  # from the metadata, not the .log's 0.01
    page = render_report(results_dir)
    assert "Examples that change difficulty relative to their architecture (Bonferroni, α = 0.05" in page
    assert "Global shift (run means, α = 0.05): <b>vgg11 harder overall</b> for loss." in page
    raw = {**metadata, "normalize": "none", "global_shift": {"loss": {**shift["loss"], "harder_overall": None}}}
    write_sumstats(_sumstats(60, rng), results_dir / "digits", "resnet20", "vgg11", log_text=LOG, metadata=raw)
    page = render_report(results_dir)
    assert "Hits (scores as collected: a global shift counts in every example)" in page
    assert "Global shift: none (no score's run means differ at α = 0.05)." in page
