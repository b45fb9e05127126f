"""What the plots share: colours, selecting the rows to draw, thinning, measuring, saving.

The summary statistics columns are documented in :mod:`gwas_models.formats.sumstats_schema`. A row
is drawn only when its test was done: ``ERRCODE`` is ``'.'`` and ``NEG_LOG10_P`` is finite.

Two kinds of values are drawn: p-values (``NEG_LOG10_P`` of any score, the Cauchy combination p
of the combined rows included), against which thresholds mean something, and the paper's ranking
of the combined rows (``MEAN_NEG_LOG10_P``, :func:`ranking_values`), a mean of -log10 p that is no
p-value, so no threshold is ever drawn on it. Tables written before ``MEAN_NEG_LOG10_P`` existed
held that mean in the combined rows' ``NEG_LOG10_P`` (:func:`holds_legacy_ranking`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import text_to_path

from gwas_models.errors import InputError, ResultsError
from gwas_models.formats import sumstats_schema as schema
from gwas_models.formats.atomic import atomic_path
from gwas_models.formats.sumstats_schema import COMBINED, COMBINED_SCORES, RANKING_COLUMN, TESTED_ERRCODES

CLASS_COLOURS = ("#2c5d8a", "#8fb8de")
"""Alternating colours of neighbouring classes: dark and light blue, distinct in greyscale too."""
UNDEFINED_DIRECTION_COLOUR = "#9a9a9a"
#: Points of examples harder under A, and under B (Okabe–Ito orange and blue: apart for colour-blind
#: readers and in greyscale). Plots that show a direction use these, so the figures agree.
HARDER_IN_A_COLOUR = "#e69f00"
HARDER_IN_B_COLOUR = "#0072b2"
#: Darker shades of the two, for the class summaries drawn over the points.
HARDER_IN_A_DARK = "#8a5a00"
HARDER_IN_B_DARK = "#003f66"
#: Background of every other class band (the classes stay readable when colour shows direction).
CLASS_BAND_SHADE = "#ededed"
THRESHOLD_COLOUR = "#b03a2e"
BAND_COLOUR = "#bdbdbd"
INFLATION_WARNING_COLOUR = "#d68910"
INFLATION_STRONG_COLOUR = "#c0392b"
NEUTRAL_TEXT_COLOUR = "#222222"
#: Text colour of λGC by :func:`~gwas_models.formats.sumstats_schema.inflation_level`.
INFLATION_COLOURS = {"": NEUTRAL_TEXT_COLOUR, "warn": INFLATION_WARNING_COLOUR, "strong": INFLATION_STRONG_COLOUR}

SUPPORTED_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
SAVE_DPI = 150
NEG_LOG10_P_LABEL = r"$-\log_{10}\,p$"
RANKING_LABEL = r"mean $-\log_{10}\,p$ (a ranking, not a p-value)"


# ------------------------------------------------------------------------------------------
# Selecting rows
# ------------------------------------------------------------------------------------------


def require_columns(sumstats: pd.DataFrame, columns: Iterable[str], purpose: str) -> None:
    """Raise :class:`ResultsError` naming the columns ``purpose`` needs that the table lacks."""
    missing = [name for name in columns if name not in sumstats.columns]
    if missing:
        raise ResultsError(
            f"the summary statistics lack column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"needed for {purpose}; they come from an association study"
        )


def as_text(column: pd.Series) -> pd.Series:
    """A column as strings; string columns are returned as they are (converting a million Arrow
    strings to Python objects is what would be slow)."""
    return column if pd.api.types.is_string_dtype(column.dtype) else column.astype(str)


def available_scores(sumstats: pd.DataFrame) -> list[str]:
    """Score names in the table, in order of first appearance."""
    return [str(name) for name in as_text(sumstats["SCORE"]).unique()]


def ranking_score(sumstats: pd.DataFrame) -> str:
    """The score of the paper's ranking of examples by sensitivity in this table
    (:func:`~gwas_models.formats.sumstats_schema.ranking_score`); ``combined`` when the table has
    none, so that selecting it names what is missing."""
    return schema.ranking_score(available_scores(sumstats)) or COMBINED


def score_rows(sumstats: pd.DataFrame, score: str) -> pd.DataFrame:
    """All rows of one score (tested or not); :class:`InputError` if the score is absent."""
    rows = sumstats[(as_text(sumstats["SCORE"]) == score).to_numpy(dtype=bool, na_value=False)]
    if rows.empty:
        scores = available_scores(sumstats)
        raise InputError(f"no score {score!r} in the summary statistics; scores there: {', '.join(scores) or 'none'}")
    check_single_pair(rows)
    return rows


def check_single_pair(rows: pd.DataFrame) -> None:
    """Refuse tables that mix architecture pairs: each example must appear once per plot."""
    if "A" not in rows.columns or "B" not in rows.columns:
        return
    pairs = rows[["A", "B"]].drop_duplicates()
    if len(pairs) > 1:
        listed = ", ".join(f"{a} v {b}" for a, b in pairs.itertuples(index=False))
        raise InputError(f"the summary statistics hold several architecture pairs ({listed}); plot one pair's file at a time")


def tested_mask(rows: pd.DataFrame) -> np.ndarray:
    """True for rows whose test was done: ``ERRCODE`` is ``'.'`` (or ``SEPARATED``: a p without a t)
    and −log10 p is finite."""
    neg_log10_p = pd.to_numeric(rows["NEG_LOG10_P"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    mask = np.isfinite(neg_log10_p)
    if "ERRCODE" in rows.columns:
        # '.' marks a done test; a reader that maps the TSV's '.' to missing gives NA instead.
        errcode = rows["ERRCODE"]
        mask &= (errcode.isna() | as_text(errcode).isin(TESTED_ERRCODES)).to_numpy(dtype=bool, na_value=True)
    return mask


def neg_log10_p(rows: pd.DataFrame) -> np.ndarray:
    """``NEG_LOG10_P`` as float64 (NaN where missing)."""
    return pd.to_numeric(rows["NEG_LOG10_P"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def holds_legacy_ranking(rows: pd.DataFrame, score: str) -> bool:
    """True for the combined rows of a table written before ``MEAN_NEG_LOG10_P``: their
    ``NEG_LOG10_P`` is the mean -log10 p over the scores, a ranking, not a p-value."""
    return str(score) in COMBINED_SCORES and RANKING_COLUMN not in rows.columns


def ranking_values(rows: pd.DataFrame, score: str) -> np.ndarray:
    """The values that rank the rows of one score (largest: most sensitive), float64.

    ``MEAN_NEG_LOG10_P`` for a combined score (the paper's ranking; ``NEG_LOG10_P`` in older tables,
    which held the mean there), ``NEG_LOG10_P`` for a single score.
    """
    column = RANKING_COLUMN if str(score) in COMBINED_SCORES and RANKING_COLUMN in rows.columns else "NEG_LOG10_P"
    return pd.to_numeric(rows[column], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


# ------------------------------------------------------------------------------------------
# Thinning
# ------------------------------------------------------------------------------------------


def thin_on_grid(x: np.ndarray, y: np.ndarray, cell_x: float, cell_y: float, always: np.ndarray) -> np.ndarray:
    """Indices of the points to draw: every ``always`` point, and one point per grid cell of the rest.

    With a cell of a quarter of the marker's diameter, a dropped point lies under a kept marker of
    the same colour, so the picture does not change and no density step appears where thinning
    starts; only stacks of nearly coincident points are thinned. Deterministic: the first point of
    each cell (in input order) is kept.

    Parameters
    ----------
    x, y : arrays of shape (n,)
        Data coordinates.
    cell_x, cell_y : float
        Cell size in data units (positive).
    always : bool array of shape (n,)
        Points that are drawn whatever their neighbours.

    Returns
    -------
    Sorted int64 indices into ``x``.
    """
    candidates = np.flatnonzero(~always)
    if candidates.size == 0 or not (cell_x > 0 and cell_y > 0):
        return np.arange(len(x))
    column = np.floor((x[candidates] - x[candidates].min()) / cell_x).astype(np.int64)
    row = np.floor((y[candidates] - y[candidates].min()) / cell_y).astype(np.int64)
    cell = column * (int(row.max()) + 1) + row
    _, first = np.unique(cell, return_index=True)
    kept = np.concatenate([np.flatnonzero(always), candidates[first]])
    kept.sort()
    return kept


# ------------------------------------------------------------------------------------------
# Figures and measuring
# ------------------------------------------------------------------------------------------


def new_axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    """``ax``, or the axes of a new pyplot figure (so notebooks display it) with constrained layout."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt  # only here: the CLI draws on bare Figures, without pyplot state

    _, created = plt.subplots(figsize=figsize, layout="constrained")
    return created


def sync_layout(figure: Figure) -> None:
    """Run the figure's layout engine now, so that measured axes sizes match the saved figure."""
    engine = figure.get_layout_engine()
    if engine is not None:
        engine.execute(figure)


def axes_size_points(ax: Axes) -> tuple[float, float]:
    """Width and height of the axes box in points (1/72 inch)."""
    width, height = ax.figure.get_size_inches()
    box = ax.get_position()
    return box.width * width * 72.0, box.height * height * 72.0


def text_size_points(text: str, fontsize: float) -> tuple[float, float]:
    """Width and line height of a one-line text in points, measured from the font's glyphs."""
    width, _, _ = text_to_path.get_text_width_height_descent(text, FontProperties(size=fontsize), ismath=False)
    return float(width), 1.2 * fontsize


def data_per_point(ax: Axes) -> tuple[float, float]:
    """Data units per point along x and y at the current limits and axes size."""
    width_pt, height_pt = axes_size_points(ax)
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    return abs(x1 - x0) / max(width_pt, 1e-9), abs(y1 - y0) / max(height_pt, 1e-9)


def inflation_colour(lambda_gc: float) -> str:
    """Text colour of a λGC value: neutral, warning above 1.1, strong above 1.25 (the thresholds of
    :func:`~gwas_models.formats.sumstats_schema.inflation_level`)."""
    return INFLATION_COLOURS[schema.inflation_level(lambda_gc)]


# ------------------------------------------------------------------------------------------
# Saving
# ------------------------------------------------------------------------------------------


def output_format(path: str | os.PathLike) -> str:
    """Matplotlib format name of an output path; :class:`InputError` for other extensions."""
    suffix = Path(path).suffix.lower()
    if suffix not in SUPPORTED_FORMATS:
        raise InputError(
            f"cannot write {Path(path).name!r}: the output must end in {', '.join(SUPPORTED_FORMATS)}"
        )
    return SUPPORTED_FORMATS[suffix]


def save_figure(figure: Figure, path: str | os.PathLike, dpi: int = SAVE_DPI) -> Path:
    """Save ``figure`` atomically: into a temporary file beside ``path``, then renamed onto it.

    A failure while drawing or writing leaves neither a half-written figure nor the temporary file.
    The format follows the extension (``.png``, ``.svg``, ``.pdf``).
    """
    path = Path(path)
    file_format = output_format(path)
    if path.is_dir():
        raise InputError(f"cannot write the figure to {path}: it is a directory")
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format=file_format, dpi=dpi)
    return path
