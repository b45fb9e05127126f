"""`gwasm manhattan`, `gwasm qq`, `gwasm gallery`: figures of the summary statistics.

Each command reads one summary statistics file (default: the most recent under
``./gwasm-results/``), draws with :mod:`gwas_models.plots`, and saves the figure atomically next
to the input unless ``--out`` says otherwise. The output's extension (.png, .svg, .pdf) is checked
before anything is read, so a bad name costs nothing and writes nothing.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import typer
from matplotlib.figure import Figure

from gwas_models.formats.sumstats import LOG_SUFFIX, PARQUET_SUFFIX, TSV_SUFFIX, latest_sumstats, read_sumstats
from gwas_models.plots._style import COMBINED, output_format, save_figure
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
    None, "--store", help="Run store of the runs (default: the one named in the association's .log, else $GWASM_STORE or ./gwasm-store)."
)
DATASET_OPTION = typer.Option(None, "--dataset", help="Dataset in the store (default: the one named in the .log, else the store's only one).")


@app.command("manhattan")
def manhattan_command(
    sumstats: Optional[Path] = SUMSTATS_ARGUMENT,
    score: str = typer.Option(COMBINED, "--score", help="Score to plot, or 'combined' (mean -log10 p over scores)."),
    out: Optional[Path] = OUT_OPTION,
    alpha: float = typer.Option(0.01, "--alpha", help="Family-wise level of the Bonferroni line: p = alpha / n_tests."),
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
    from gwas_models.plots.manhattan import class_layout, facet_figsize, manhattan, manhattan_facets, manhattan_figsize

    if out is not None:
        output_format(out)
    table, source = _read_sumstats(sumstats)
    images = _training_images(store, dataset, table, source) if thumbnails else None
    options = dict(alpha=alpha, suggestive=suggestive, annotate=annotate.value, top_k=top_k, signed=signed, images=images)
    n_classes = len(class_layout(table).class_names)
    if facet:
        from gwas_models.plots._style import available_scores

        n_panels = len(available_scores(table))
        figure = Figure(figsize=facet_figsize(n_panels, n_classes), layout="constrained")
        manhattan_facets(table, figure=figure, **options)
        name = "facet"
    else:
        figure = Figure(figsize=manhattan_figsize(n_classes, signed), layout="constrained")
        manhattan(table, score, ax=figure.add_subplot(), **options)
        name = score
    suffix = ".signed" if signed else ""
    _save(figure, out or _default_output(source, f"manhattan.{name}{suffix}"))


@app.command("qq")
def qq_command(
    sumstats: Optional[Path] = SUMSTATS_ARGUMENT,
    score: Optional[str] = typer.Option(None, "--score", help="One score (default: a curve per score, 'combined' left out)."),
    out: Optional[Path] = OUT_OPTION,
) -> None:
    """QQ plot: observed against expected -log10 p, with a 95% band and the inflation factor lambda_GC.

    Example: gwasm qq --out qq.png
    """
    from gwas_models.plots.qq import qq

    if out is not None:
        output_format(out)
    table, source = _read_sumstats(sumstats)
    figure = Figure(figsize=(5.5, 5.5), layout="constrained")
    qq(table, score, ax=figure.add_subplot())
    _save(figure, out or _default_output(source, f"qq.{score or 'scores'}"))


@app.command("gallery")
def gallery_command(
    sumstats: Optional[Path] = SUMSTATS_ARGUMENT,
    store: Optional[Path] = STORE_OPTION,
    dataset: Optional[str] = DATASET_OPTION,
    k: int = typer.Option(8, "--k", min=1, help="Images in each row."),
    score: Optional[str] = typer.Option(
        None, "--score", help="Score that ranks the examples (default: 'combined', or 'combined_pairs' with 3+ architectures)."
    ),
    out: Optional[Path] = OUT_OPTION,
) -> None:
    """Images of the k examples most and least sensitive to the architecture (paper, Figure 1 left).

    Example: gwasm gallery --k 8 --out gallery.png
    """
    from gwas_models.plots.gallery import gallery_figsize, sensitivity_gallery

    if out is not None:
        output_format(out)
    table, source = _read_sumstats(sumstats)
    images = _training_images(store, dataset, table, source)
    figure = Figure(figsize=gallery_figsize(k), layout="constrained")
    sensitivity_gallery(table, images, k=k, score=score, ax=figure.add_subplot())
    _save(figure, out or _default_output(source, "gallery"))


# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------


def _read_sumstats(path: Optional[Path]) -> tuple[pd.DataFrame, Path]:
    """The summary statistics and where they were read from (the latest result by default)."""
    source = Path(path) if path is not None else latest_sumstats()
    return read_sumstats(source), source


def _training_images(store: Optional[Path], dataset: Optional[str], table: pd.DataFrame, source: Path) -> np.ndarray:
    """The training images of the dataset the runs were trained on, checked against the table.

    Without ``--store``/``--dataset``, the association's ``.log`` says which store and dataset the
    runs came from; failing that, the default store and its only dataset are used.
    """
    from gwas_models.data import load_dataset_from_source
    from gwas_models.formats.store import read_dataset_info, resolve_dataset, resolve_store
    from gwas_models.plots.gallery import check_images_match

    logged = _log_fields(source)
    if store is None and logged.get("store") and Path(logged["store"]).is_dir():
        store = Path(logged["store"])
    root = resolve_store(store)
    name = resolve_dataset(root, dataset if dataset is not None else logged.get("dataset"))
    data = load_dataset_from_source(read_dataset_info(root, name).get("source") or {})
    check_images_match(table, data.x_train, data.y_train)
    return data.x_train


def _log_fields(source: Path) -> dict[str, str]:
    """``key: value`` lines of the ``.log`` written beside the summary statistics (empty if none)."""
    log = source.with_name(_stem(source) + LOG_SUFFIX)
    if not log.is_file():
        return {}
    fields: dict[str, str] = {}
    for line in log.read_text(errors="replace").splitlines():
        if not line.strip():
            break  # the header ends at the first blank line
        key, separator, value = line.partition(": ")
        if separator and not line.startswith((" ", "#")):
            fields.setdefault(key.strip(), value.strip())
    return fields


def _stem(source: Path) -> str:
    """The comparison's stem: the file name without ``.sumstats.tsv``/``.sumstats.parquet``."""
    for suffix in (TSV_SUFFIX, PARQUET_SUFFIX, ".tsv.gz"):
        if source.name.endswith(suffix):
            return source.name[: -len(suffix)]
    return source.stem


def _default_output(source: Path, kind: str) -> Path:
    """``<dir>/<stem>.<kind>.png`` beside the summary statistics."""
    return source.parent / f"{_stem(source)}.{kind}.png"


def _save(figure: Figure, path: Path) -> None:
    written = save_figure(figure, path)
    typer.echo(f"wrote {written}")
