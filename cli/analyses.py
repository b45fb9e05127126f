"""`gwasm variance`, `gwasm stability`, `gwasm correlate`, `gwasm pca`, `gwasm sizes`: the paper's §4.1–4.2.

Each command parses its options, calls one function of :mod:`gwas_models.workflows.analyses`
(which reads the runs, computes, draws and writes a TSV and a figure under an output prefix,
default ``./gwasm-results/<dataset>.<arch>.<analysis>``), and prints what it wrote.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from gwas_models.workflows import analyses
from gwas_models.workflows.analyses import DEFAULT_BINS, DEFAULT_INTERVAL, DEFAULT_REPEATS
from gwasm_cli.app import app


class FigureFormat(str, Enum):
    png = "png"
    svg = "svg"
    pdf = "pdf"


ArchArgument = Annotated[
    str, typer.Argument(help="Architecture whose runs to analyse, as recorded by `gwasm collect`.")
]
StoreOption = Annotated[
    Optional[Path], typer.Option("--store", help="Run store (default: $GWASM_STORE, else ./gwasm-store).")
]
DatasetOption = Annotated[
    Optional[str], typer.Option("--dataset", help="Dataset in the store (default: the store's only dataset).")
]
ScoresOption = Annotated[
    Optional[str],
    typer.Option("--scores", help="Comma-separated scores (default: all recorded for ARCH)."),
]
OutOption = Annotated[
    Optional[Path],
    typer.Option(
        "--out",
        help="Output prefix (default: ./gwasm-results/<dataset>.<arch>.<analysis>); "
        ".tsv and the figure extension are added.",
    ),
]
FormatOption = Annotated[FigureFormat, typer.Option("--format", help="Figure format.")]
RepeatsOption = Annotated[
    int, typer.Option("--repeats", min=1, help="Random pairs of disjoint run sets per number of runs.")
]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed of the random split of runs.")]


def _present(output: analyses.AnalysisOutput, lines_first: bool = False) -> None:
    """Print the notes (stderr), then what was written and the analysis' answer (stdout)."""
    for message in output.notes:
        print(f"gwasm: note: {message}", file=sys.stderr)
    if lines_first:
        for line in output.lines:
            typer.echo(line)
    for path in output.written:
        typer.echo(f"wrote {path}")
    if not lines_first:
        for line in output.lines:
            typer.echo(line)


# ------------------------------------------------------------------------------------------
# Commands
# ------------------------------------------------------------------------------------------


@app.command("variance")
def variance_command(
    arch: ArchArgument,
    store: StoreOption = None,
    dataset: DatasetOption = None,
    scores: ScoresOption = None,
    bins: Annotated[
        int, typer.Option("--bins", min=1, help="Bins of examples along the ranking of mean scores.")
    ] = DEFAULT_BINS,
    interval: Annotated[
        float, typer.Option("--interval", help="Coverage of the band, e.g. 0.9 for 5%-95%.")
    ] = DEFAULT_INTERVAL,
    out: OutOption = None,
    figure_format: FormatOption = FigureFormat.png,
) -> None:
    """Per-run spread of each score along the ranking of examples by mean score (paper Figure 2).

    Example: gwasm variance resnet20 --scores loss,aum --bins 50
    """
    output = analyses.variance(
        arch, store, dataset, scores, n_bins=bins, interval=interval, out=out, figure_format=figure_format.value
    )
    _present(output)


@app.command("stability")
def stability_command(
    arch: ArchArgument,
    store: StoreOption = None,
    dataset: DatasetOption = None,
    scores: ScoresOption = None,
    repeats: RepeatsOption = DEFAULT_REPEATS,
    seed: SeedOption = 0,
    target_rank_error: Annotated[
        Optional[float],
        typer.Option(
            "--target-rank-error",
            help="Also print how many runs give a median rank change at most this fraction of the dataset (e.g. 0.02).",
        ),
    ] = None,
    out: OutOption = None,
    figure_format: FormatOption = FigureFormat.png,
) -> None:
    """Rank and 50%-split changes between averages of two disjoint sets of n runs (paper Figure 3).

    Example: gwasm stability resnet20 --repeats 20 --target-rank-error 0.02
    """
    output = analyses.stability(
        arch,
        store,
        dataset,
        scores,
        repeats=repeats,
        seed=seed,
        target_rank_error=target_rank_error,
        out=out,
        figure_format=figure_format.value,
    )
    _present(output)


@app.command("correlate")
def correlate_command(
    arch: ArchArgument,
    store: StoreOption = None,
    dataset: DatasetOption = None,
    scores: Annotated[
        Optional[str],
        typer.Option(
            "--scores", help="Comma-separated scores, built-in or imported (default: all recorded and all imported)."
        ),
    ] = None,
    out: OutOption = None,
    figure_format: FormatOption = FigureFormat.png,
) -> None:
    """Spearman correlations between scores: mean to mean, mean to run, run to run (paper Figure 4).

    Imported single-run scores join the mean-to-mean matrix only.

    Example: gwasm correlate resnet20
    """
    _present(analyses.correlate(arch, store, dataset, scores, out=out, figure_format=figure_format.value))


@app.command("pca")
def pca_command(
    arch: ArchArgument,
    store: StoreOption = None,
    dataset: DatasetOption = None,
    scores: ScoresOption = None,
    repeats: RepeatsOption = DEFAULT_REPEATS,
    seed: SeedOption = 0,
    out: OutOption = None,
    figure_format: FormatOption = FigureFormat.png,
) -> None:
    """Principal components of the quantile-normalised mean scores, and PC1 as a score (paper Figure 5).

    Writes the components and loadings (<prefix>.tsv), PC1 of every example (<prefix>.pc1.tsv) and
    the stability of PC1 (<prefix>.stability.tsv).

    Example: gwasm pca resnet20
    """
    output = analyses.pca(arch, store, dataset, scores, repeats=repeats, seed=seed, out=out, figure_format=figure_format.value)
    _present(output)


@app.command("sizes")
def sizes_command(
    archs: Annotated[
        Optional[list[str]], typer.Argument(help="Architectures to compare pairwise (default: every one of the dataset).", show_default=False)
    ] = None,
    store: StoreOption = None,
    dataset: DatasetOption = None,
    scores: ScoresOption = None,
    out: Annotated[
        Optional[Path], typer.Option("--out", help="Output prefix (default: ./gwasm-results/<dataset>.sizes).")
    ] = None,
    figure_format: FormatOption = FigureFormat.png,
) -> None:
    """Mean -log10 p of every pair of architectures against the ratio of their parameter counts.

    Example: gwasm sizes resnet20 resnet20-64 vgg11-16
    """
    output = analyses.sizes(archs, store, dataset, scores, out=out, figure_format=figure_format.value)
    _present(output, lines_first=True)