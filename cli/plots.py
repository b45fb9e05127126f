"""`gwasm manhattan`, `gwasm qq`, `gwasm gallery`: figures of the summary statistics.

Each command parses its options and calls one function of :mod:`gwas_models.workflows.plots`, which
reads a summary statistics file (default: the most recent under ``./gwasm-results/``), draws, and
saves the figure beside it unless ``--out`` says otherwise.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from gwas_models.workflows import plots
from gwas_models.workflows.plots import DEFAULT_ALPHA, DEFAULT_GALLERY_K
from gwasm_cli.app import app


class AnnotateChoice(str, Enum):
    """Which hits `gwasm manhattan` labels."""

    per_class = "per-class"
    top = "top"
    none = "none"


SUMSTATS_ARGUMENT = typer.Argument(
    None, help="Summary statistics (TSV or Parquet) from `gwasm associate`; default: the most recent in ./gwasm-results/."
)
OUT_OPTION = typer.Option(None, "--out", help="Output figure: .png, .svg or .pdf (default: next to the summary statistics).")
STORE_OPTION = typer.Option(
    None, "--store", help="Run store of the runs (default: the one recorded in the summary statistics, else $GWASM_STORE or ./gwasm-store)."
)
DATASET_OPTION = typer.Option(None, "--dataset", help="Dataset in the store (default: the one recorded in the summary statistics, else the store's only one).")


@app.command("manhattan")
def manhattan_command(
    sumstats: Optional[Path] = SUMSTATS_ARGUMENT,
    score: Optional[str] = typer.Option(
        None, "--score", help="Score to plot (default: the file's only score, else 'combined', the evidence over scores)."
    ),
    out: Optional[Path] = OUT_OPTION,
    alpha: float = typer.Option(DEFAULT_ALPHA, "--alpha", help="Family-wise level of the Bonferroni line: p = alpha / n_tests."),
    suggestive: Optional[float] = typer.Option(None, "--suggestive", help="p-value of the dashed suggestive line (default 1 / n_tests)."),
    annotate: AnnotateChoice = typer.Option(AnnotateChoice.per_class, "--annotate", help="Label the top hit of each class, the top k overall, or none."),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Hits to label: per class (default 1) or overall (default 10)."),
    signed: bool = typer.Option(False, "--signed", help="Two-sided plot: up = harder under A, down = harder under B."),
    facet: bool = typer.Option(False, "--facet", help="One panel per score, every score in the file (--score is then ignored)."),
    thumbnails: bool = typer.Option(False, "--thumbnails", help="Show the labelled examples' images (needs the run store)."),
    store: Optional[Path] = STORE_OPTION,
    dataset: Optional[str] = DATASET_OPTION,
) -> None:
    """Manhattan plot: -log10 p of every training example, grouped by class like chromosomes.

    Example: gwasm manhattan --score loss --signed --out loss.pdf
    """
    written = plots.manhattan_figure(
        sumstats,
        score,
        out,
        alpha=alpha,
        suggestive=suggestive,
        annotate=annotate.value,
        top_k=top_k,
        signed=signed,
        facet=facet,
        thumbnails=thumbnails,
        store=store,
        dataset=dataset,
    )
    typer.echo(f"wrote {written}")


@app.command("qq")
def qq_command(
    sumstats: Optional[Path] = SUMSTATS_ARGUMENT,
    score: Optional[str] = typer.Option(None, "--score", help="One score (default: a curve per score, 'combined' left out)."),
    out: Optional[Path] = OUT_OPTION,
) -> None:
    """QQ plot: observed against expected -log10 p, with a 95% band and the inflation factor lambda_GC.

    Example: gwasm qq --out qq.png
    """
    typer.echo(f"wrote {plots.qq_figure(sumstats, score, out)}")


@app.command("gallery")
def gallery_command(
    sumstats: Optional[Path] = SUMSTATS_ARGUMENT,
    store: Optional[Path] = STORE_OPTION,
    dataset: Optional[str] = DATASET_OPTION,
    k: int = typer.Option(DEFAULT_GALLERY_K, "--k", min=1, help="Images in each row."),
    score: Optional[str] = typer.Option(
        None,
        "--score",
        help="What ranks the examples: 'mean_neg_log10_p' (default), the paper's ranking, the mean -log10 p over scores "
        "(over pairs and scores with 3+ architectures); or a score's p ('combined': the Cauchy combination p).",
    ),
    out: Optional[Path] = OUT_OPTION,
) -> None:
    """Images of the k examples most and least sensitive to the architecture (paper, Figure 1 left).

    Example: gwasm gallery --k 8 --out gallery.png
    """
    typer.echo(f"wrote {plots.gallery_figure(sumstats, store, dataset, k=k, score=score, out=out)}")
