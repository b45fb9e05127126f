"""Figures of a summary-statistics file: Manhattan, QQ and gallery.

Each function reads one summary-statistics file (default: the most recent under
``./gwasm-results/``), draws with :mod:`gwas_models.plots`, and saves the figure atomically beside
the input unless ``out`` says otherwise. The output's format (.png, .svg, .pdf) is checked before
anything is read, so a bad name costs nothing and writes nothing. Where a figure needs the training
images (gallery, thumbnails), the store and dataset come from the metadata that the association
wrote into the summary statistics.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from gwas_models.formats.sumstats import (
    comparison_stem_of,
    latest_sumstats,
    read_sumstats,
    read_sumstats_metadata,
)
from gwas_models.formats.sumstats_schema import COMBINED, COMBINED_SCORES
from gwas_models.plots._style import output_format, save_figure

#: Examples per row of the gallery.
DEFAULT_GALLERY_K = 8
#: Family-wise level of the Manhattan plot's Bonferroni line.
DEFAULT_ALPHA = 0.01


def _read(sumstats: str | os.PathLike | None) -> tuple[pd.DataFrame, Path]:
    """The summary statistics and where they were read from (the latest result by default)."""
    source = Path(sumstats) if sumstats is not None else latest_sumstats()
    return read_sumstats(source), source


def _default_output(source: Path, kind: str) -> Path:
    """``<dir>/<stem>.<kind>.png`` beside the summary statistics."""
    return source.parent / f"{comparison_stem_of(source)}.{kind}.png"


def _check_out(out: str | os.PathLike | None) -> None:
    if out is not None:
        output_format(out)


def recorded_lambda_null(source: Path) -> dict[str, float]:
    """95th percentile of each score's λGC relabelling null, as the association recorded it in the
    Parquet metadata (``lambda``); empty for files of older versions or a TSV without its Parquet."""
    recorded = read_sumstats_metadata(source).get("lambda")
    if not isinstance(recorded, dict):
        return {}
    nulls = {}
    for score, entry in recorded.items():
        value = entry.get("null_95") if isinstance(entry, dict) else None
        if isinstance(value, (int, float)) and np.isfinite(value):
            nulls[str(score)] = float(value)
    return nulls


def training_images(
    table: pd.DataFrame,
    source: Path,
    store: str | os.PathLike | None = None,
    dataset: str | None = None,
) -> np.ndarray:
    """The training images of the dataset behind a summary-statistics file, checked against it.

    Without ``store``/``dataset``, the file's own metadata (written by the association) says which
    store and dataset the runs came from; failing that (files of older versions), the default
    store and its only dataset are used.
    """
    from gwas_models.data import load_dataset_from_source
    from gwas_models.formats.store import read_dataset_info, resolve_dataset, resolve_store
    from gwas_models.plots.gallery import check_images_match

    recorded = read_sumstats_metadata(source)
    if store is None and recorded.get("store") and Path(recorded["store"]).is_dir():
        store = Path(recorded["store"])
    root = resolve_store(store)
    name = resolve_dataset(root, dataset if dataset is not None else recorded.get("dataset"))
    data = load_dataset_from_source(read_dataset_info(root, name).get("source") or {})
    check_images_match(table, data.x_train, data.y_train)
    return data.x_train


def manhattan_figure(
    sumstats: str | os.PathLike | None = None,
    score: str | None = None,
    out: str | os.PathLike | None = None,
    *,
    alpha: float = DEFAULT_ALPHA,
    suggestive: float | None = None,
    annotate: str = "per-class",
    top_k: int | None = None,
    signed: bool = False,
    facet: bool = False,
    thumbnails: bool = False,
    store: str | os.PathLike | None = None,
    dataset: str | None = None,
) -> Path:
    """Draw and save a Manhattan plot; return the figure's path.

    Parameters
    ----------
    sumstats : path, optional
        Summary statistics (TSV or Parquet); default the most recent in ``./gwasm-results/``.
    score : str, optional
        Score to plot (one panel), ignored with ``facet``; default: the file's only score (a
        per-score TSV), else ``combined``.
    out : path, optional
        Figure path; default beside the input, ``<stem>.manhattan[.<score>|.facets][.signed].png``
        (the score named unless it is ``combined``), the same name whichever file of the
        comparison (Parquet or per-score TSV) is read.
    alpha, suggestive, annotate, top_k, signed
        See :func:`gwas_models.plots.manhattan.manhattan`.
    facet : bool
        One panel per score of the file.
    thumbnails : bool
        Show the labelled examples' images (reads the training images, see :func:`training_images`).
    store, dataset : optional
        Where the training images are, when not as recorded in the file.
    """
    from gwas_models.plots._style import available_scores
    from gwas_models.plots.manhattan import class_layout, facet_figsize, manhattan, manhattan_facets, manhattan_figsize

    _check_out(out)
    table, source = _read(sumstats)
    images = training_images(table, source, store, dataset) if thumbnails else None
    options = dict(
        alpha=alpha, suggestive=suggestive, annotate=annotate, top_k=top_k, signed=signed, images=images,
        lambda_null=recorded_lambda_null(source),
    )  # fmt: skip
    n_classes = len(class_layout(table).class_names)
    default_score = _default_score(table)
    if facet:
        figure = Figure(figsize=facet_figsize(len(available_scores(table)), n_classes), layout="constrained")
        manhattan_facets(table, figure=figure, **options)
        kind = "manhattan.facets"
    else:
        score = score or default_score
        figure = Figure(figsize=manhattan_figsize(n_classes, signed), layout="constrained")
        manhattan(table, score, ax=figure.add_subplot(), **options)
        kind = "manhattan" if score == COMBINED else f"manhattan.{score}"
    kind += ".signed" if signed else ""
    return save_figure(figure, out or _default_output(source, kind))


def _default_score(table: pd.DataFrame) -> str:
    """The score a one-panel figure shows by default: the file's only score, else ``combined``."""
    from gwas_models.plots._style import available_scores

    names = available_scores(table)
    return names[0] if len(names) == 1 else COMBINED


def qq_figure(
    sumstats: str | os.PathLike | None = None,
    score: str | None = None,
    out: str | os.PathLike | None = None,
) -> Path:
    """Draw and save a QQ plot (one curve per score, or one score); return the figure's path.

    The default name beside the input is ``<stem>.qq.png`` for every score of the comparison and
    ``<stem>.qq.<score>.png`` for one.
    """
    from gwas_models.plots._style import available_scores
    from gwas_models.plots.qq import qq, qq_figsize

    _check_out(out)
    table, source = _read(sumstats)
    figure = Figure(figsize=qq_figsize(len(available_scores(table))), layout="constrained")
    qq(table, score, lambda_null=recorded_lambda_null(source), ax=figure.add_subplot())
    return save_figure(figure, out or _default_output(source, _qq_name(table, score)))


def _qq_name(table: pd.DataFrame, score: str | None) -> str:
    """``qq`` for every score of a comparison, ``qq.<score>`` for one (also a per-score file's)."""
    from gwas_models.plots._style import available_scores

    tested = [name for name in available_scores(table) if name not in COMBINED_SCORES]
    if score is None and len(tested) == 1:
        score = tested[0]
    return f"qq.{score}" if score else "qq"


def gallery_figure(
    sumstats: str | os.PathLike | None = None,
    store: str | os.PathLike | None = None,
    dataset: str | None = None,
    k: int = DEFAULT_GALLERY_K,
    score: str | None = None,
    out: str | os.PathLike | None = None,
) -> Path:
    """Draw and save the images of the k examples most and least sensitive to the architecture."""
    from gwas_models.plots.gallery import gallery_figsize, sensitivity_gallery

    _check_out(out)
    table, source = _read(sumstats)
    images = training_images(table, source, store, dataset)
    figure = Figure(figsize=gallery_figsize(k), layout="constrained")
    sensitivity_gallery(table, images, k=k, score=score, ax=figure.add_subplot())
    return save_figure(figure, out or _default_output(source, "gallery"))
