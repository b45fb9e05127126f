"""`gwasm variance`, `gwasm stability`, `gwasm correlate`, `gwasm pca`: the paper's §4.1–4.2.

Each command reads the runs of one architecture from the store, calls one function of
:mod:`gwas_models.analysis.difficulty`, and writes a TSV and a figure under an output prefix
(default ``./gwasm-results/<dataset>.<arch>.<analysis>``). Everything is computed before anything is
written, so a failing command leaves no output behind.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import pandas as pd
import typer
from matplotlib.figure import Figure

from gwas_models.analysis import difficulty
from gwas_models.errors import InputError, StoreError
from gwas_models.formats.store import (
    list_archs,
    list_imported_scores,
    load_score_matrices,
    read_imported_score,
    recorded_scores,
    resolve_dataset,
    resolve_store,
)
from gwas_models.formats.atomic import atomic_path
from gwas_models.formats.sumstats import safe_name
from gwas_models.plots import difficulty as difficulty_plots
from gwas_models.plots._style import save_figure
from gwas_models.scores import SCORE_NAMES, SCORES
from gwasm_cli.app import app

RESULTS_DIR = Path("gwasm-results")
KNOWN_SUFFIXES = (".tsv", ".png", ".svg", ".pdf")


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


# ------------------------------------------------------------------------------------------
# Reading the inputs
# ------------------------------------------------------------------------------------------


def _requested_scores(
    text: Optional[str], recorded: list[str], imported: list[str], allow_imported: bool
) -> tuple[list[str], list[str]]:
    """Split ``--scores`` into built-in and imported names (default: all recorded, and all imported)."""
    if text is None or text.strip() in ("", "all"):
        return recorded, (imported if allow_imported else [])
    names = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    built_in, single_run = [], []
    for name in names:
        if name in SCORES:
            built_in.append(name)
        elif name in imported and allow_imported:
            single_run.append(name)
        elif name in imported:
            raise InputError(
                f"{name!r} is an imported single-run score: it has no runs to analyse (only `gwasm correlate` uses it)"
            )
        else:
            valid = list(SCORE_NAMES) + (imported if allow_imported else [])
            raise InputError(f"unknown score {name!r}; valid scores: {', '.join(valid)}")
    return built_in, single_run


def _load_scores(
    store: Optional[Path], dataset: Optional[str], arch: str, scores: Optional[str], allow_imported: bool = False
) -> tuple[str, difficulty.ScreenedScores]:
    """The dataset name and the usable scores of ``arch``'s runs."""
    store_path = resolve_store(store)
    dataset_name = resolve_dataset(store_path, dataset)
    archs = list_archs(store_path, dataset_name)
    if arch not in archs:
        raise StoreError(
            f"no runs of {arch!r} for dataset {dataset_name!r} in {store_path}; "
            f"architectures there: {', '.join(archs) or 'none'}"
        )
    imported_names = list_imported_scores(store_path, dataset_name)
    recorded = recorded_scores(store_path, dataset_name, [arch])
    built_in, single_run = _requested_scores(scores, recorded, imported_names, allow_imported)
    if not built_in:
        raise InputError(f"no score recorded for {arch!r} in dataset {dataset_name!r}")
    matrices = load_score_matrices(store_path, dataset_name, built_in, [arch])
    example_id = next(iter(matrices.values())).example_id
    imported = []
    for name in single_run:
        values, higher_is_harder = read_imported_score(store_path, dataset_name, name)
        imported.append(difficulty.single_run_score(name, values, higher_is_harder, example_id))
    screened = difficulty.screen_scores(matrices, imported)
    if not screened.matrices:
        raise InputError(f"no usable score for {arch!r}: " + "; ".join(screened.notes()))
    return dataset_name, screened


# ------------------------------------------------------------------------------------------
# Writing the outputs
# ------------------------------------------------------------------------------------------


def _output_prefix(out: Optional[Path], dataset: str, arch: str, analysis: str) -> Path:
    if out is None:
        # The same file-name form of dataset and architecture names as the summary statistics use.
        return RESULTS_DIR / f"{safe_name(dataset)}.{safe_name(arch)}.{analysis}"
    # A prefix given with one of our extensions would otherwise end in ".tsv.tsv".
    return out.with_suffix("") if out.suffix.lower() in KNOWN_SUFFIXES else out


def _with_suffix(prefix: Path, suffix: str) -> Path:
    return prefix.with_name(prefix.name + suffix)


def _write_tsv(table: pd.DataFrame, path: Path) -> Path:
    """Write a TSV atomically (temporary file, then rename), so no half-written table remains."""
    with atomic_path(path) as temporary:
        table.to_csv(temporary, sep="\t", index=False, float_format="%.6g", na_rep="NA")
    return path


def _note(message: str) -> None:
    print(f"gwasm: note: {message}", file=sys.stderr)


def _finish(
    notes: list[str], tables: dict[str, pd.DataFrame], figure: Figure, prefix: Path, figure_format: FigureFormat
) -> None:
    """Print the notes, then write every table (``<prefix><suffix>``) and the figure."""
    for message in notes:
        _note(message)
    written = [_write_tsv(table, _with_suffix(prefix, suffix)) for suffix, table in tables.items()]
    written.append(save_figure(figure, _with_suffix(prefix, f".{figure_format.value}")))
    for path in written:
        typer.echo(f"wrote {path}")


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
    ] = difficulty.DEFAULT_BINS,
    interval: Annotated[
        float, typer.Option("--interval", help="Coverage of the band, e.g. 0.9 for 5%-95%.")
    ] = difficulty.DEFAULT_INTERVAL,
    out: OutOption = None,
    figure_format: FormatOption = FigureFormat.png,
) -> None:
    """Per-run spread of each score along the ranking of examples by mean score (paper Figure 2).

    Example: gwasm variance resnet20 --scores loss,aum --bins 50
    """
    dataset_name, screened = _load_scores(store, dataset, arch, scores)
    table = difficulty.score_variance(screened.matrices, n_bins=bins, interval=interval)
    figure = difficulty_plots.plot_variance(table)
    figure.suptitle(f"{dataset_name} · {arch}: variance over {_runs(screened)} runs", fontsize=10)
    prefix = _output_prefix(out, dataset_name, arch, "variance")
    _finish(screened.notes(), {".tsv": table}, figure, prefix, figure_format)


@app.command("stability")
def stability_command(
    arch: ArchArgument,
    store: StoreOption = None,
    dataset: DatasetOption = None,
    scores: ScoresOption = None,
    repeats: RepeatsOption = difficulty.DEFAULT_REPEATS,
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
    if target_rank_error is not None:
        difficulty.check_rank_error_target(target_rank_error)
    dataset_name, screened = _load_scores(store, dataset, arch, scores)
    table = difficulty.score_stability(screened.matrices, repeats=repeats, seed=seed)
    needed = difficulty.runs_for_rank_error(table, target_rank_error) if target_rank_error is not None else None
    figure = difficulty_plots.plot_stability(table)
    figure.suptitle(f"{dataset_name} · {arch}: stability of ranks and splits ({_runs(screened)} runs)", fontsize=10)
    prefix = _output_prefix(out, dataset_name, arch, "stability")
    _finish(screened.notes(), {".tsv": table}, figure, prefix, figure_format)
    if needed is not None:
        for line in _runs_needed_lines(needed):
            typer.echo(line)


def _runs_needed_lines(needed: pd.DataFrame) -> list[str]:
    lines = []
    for row in needed.itertuples(index=False):
        line = (
            f"{row.score}: {row.runs_needed} runs per average for a median rank change "
            f"<= {row.target_rank_error:.2%}"
        )
        if row.extrapolated:
            line += (
                f" (extrapolated with the 1/sqrt(n) law beyond the {row.max_measured_runs} runs measured, "
                f"which give {row.rank_change_at_max:.2%})"
            )
        lines.append(line)
    return lines


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
    dataset_name, screened = _load_scores(store, dataset, arch, scores, allow_imported=True)
    result = difficulty.score_correlations(screened.matrices, screened.imported)
    figure = difficulty_plots.plot_correlations(result)
    prefix = _output_prefix(out, dataset_name, arch, "correlate")
    _finish(screened.notes(), {".tsv": result.table()}, figure, prefix, figure_format)


@app.command("pca")
def pca_command(
    arch: ArchArgument,
    store: StoreOption = None,
    dataset: DatasetOption = None,
    scores: ScoresOption = None,
    repeats: RepeatsOption = difficulty.DEFAULT_REPEATS,
    seed: SeedOption = 0,
    out: OutOption = None,
    figure_format: FormatOption = FigureFormat.png,
) -> None:
    """Principal components of the quantile-normalised mean scores, and PC1 as a score (paper Figure 5).

    Writes the components and loadings (<prefix>.tsv), PC1 of every example (<prefix>.pc1.tsv) and
    the stability of PC1 (<prefix>.stability.tsv).

    Example: gwasm pca resnet20
    """
    dataset_name, screened = _load_scores(store, dataset, arch, scores)
    result = difficulty.score_pca(screened.matrices, repeats=repeats, seed=seed)
    labels = next(iter(screened.matrices.values())).labels
    pc1 = pd.DataFrame({"example_id": result.example_id, "label": labels, difficulty.PC1_NAME: result.pc1})
    figure = difficulty_plots.plot_pca(result)
    figure.suptitle(f"{dataset_name} · {arch}: principal components of {len(result.scores)} scores", fontsize=10)
    prefix = _output_prefix(out, dataset_name, arch, "pca")
    tables = {".tsv": result.components_table(), ".pc1.tsv": pc1, ".stability.tsv": result.stability}
    _finish(screened.notes() + list(result.notes), tables, figure, prefix, figure_format)
    typer.echo(f"PC1 explains {result.explained_variance_ratio[0]:.1%} of the variance of the scores")


def _runs(screened: difficulty.ScreenedScores) -> int:
    return next(iter(screened.matrices.values())).n_runs if screened.matrices else 0


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
    from gwas_models.analysis.capacity import capacity_row, capacity_table, size_effect_correlation
    from gwas_models.analysis.study import associate
    from gwas_models.formats.store import list_runs
    from gwas_models.plots.capacity import capacity_scatter
    from gwas_models.scores import parse_score_list

    store_path = resolve_store(store)
    dataset_name = resolve_dataset(store_path, dataset)
    present = list_archs(store_path, dataset_name)
    chosen = list(archs) if archs else present
    if len(chosen) < 2:
        raise InputError(f"sizes needs at least two architectures; dataset {dataset_name!r} has {', '.join(present) or 'none'}")
    recorded = recorded_scores(store_path, dataset_name, [a for a in chosen if a in present])
    names = recorded if scores is None or scores.strip() in ("", "all") else list(parse_score_list(scores))
    if not names:
        raise InputError(f"no score recorded for all of {', '.join(chosen)}")
    matrices = load_score_matrices(store_path, dataset_name, names, chosen)
    n_parameters = list_runs(store_path, dataset_name).groupby("arch")["n_parameters"].first().to_dict()
    rows: list[dict] = []
    associate(
        matrices,
        chosen,
        on_comparison=lambda _, comparison: rows.append(capacity_row(comparison, n_parameters)) if comparison.kind == "pair" else None,
        keep_tables=False,
    )
    table = capacity_table(rows)
    figure = Figure(figsize=(6.4, 4.4), layout="constrained")
    capacity_scatter(table, ax=figure.add_subplot())
    rho, p = size_effect_correlation(table)
    notes = [] if len(table) >= 3 else ["fewer than three pairs: no size-effect correlation"]
    prefix = RESULTS_DIR / f"{safe_name(dataset_name)}.sizes" if out is None else _output_prefix(out, dataset_name, "", "sizes")
    typer.echo(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if len(table) >= 3:
        typer.echo(f"Spearman correlation of log size ratio and mean -log10 p over {len(table)} pairs: {rho:.3f} (p = {p:.3g})")
    _finish(notes, {".tsv": table}, figure, prefix, figure_format)
