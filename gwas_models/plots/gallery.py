"""The gallery of the examples most and least sensitive to the architecture (paper, Figure 1 left).

By default the examples are ranked by the paper's ranking, :data:`PAPER_RANKING`: the mean
−log10 p over scores (``MEAN_NEG_LOG10_P`` of the ``SCORE == 'combined'`` rows; of the
``combined_pairs`` rows, over pairs and scores, with three or more architectures): the ``k``
highest are "most sensitive", the ``k`` lowest "least sensitive". Naming a score ranks by its p:
``combined`` is, here as in every plot, the Cauchy combination (ACAT) p over scores, not the
paper's ranking. The images are passed in as an array indexed by ``example_id`` (the dataset's
``x_train``), so the library needs no dataset loader and tests can use synthetic images.

Each caption also says which architecture finds the image harder (``HARDER_IN`` of a pair table,
coloured as in the Manhattan plot) or, with three or more architectures, under which it is hardest
(``HARDEST_IN``). Where a combined row has no direction of its own (``combined_pairs``), the
direction most of the example's score rows give is shown; with none, the line is left out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from gwas_models.errors import DataError, InputError
from gwas_models.formats.sumstats_schema import COMBINED_MEANINGS, COMBINED_SCORES, MISSING, RANKING_MEANINGS
from gwas_models.plots._style import (
    HARDER_IN_A_DARK,
    HARDER_IN_B_DARK,
    NEUTRAL_TEXT_COLOUR,
    as_text,
    available_scores,
    axes_size_points,
    holds_legacy_ranking,
    neg_log10_p,
    new_axes,
    ranking_score,
    ranking_values,
    require_columns,
    score_rows,
    sync_layout,
    tested_mask,
    text_size_points,
)

GALLERY_COLUMNS = ("#CHROM", "ID", "LABEL", "SCORE", "NEG_LOG10_P")
#: ``score`` that asks for the paper's ranking (the default): the mean −log10 p of the combined rows
#: (``MEAN_NEG_LOG10_P``), over pairs and scores when the table has ``combined_pairs`` rows.
PAPER_RANKING = "mean_neg_log10_p"
ROW_TITLES = ("Most sensitive to the architecture (highest {what})", "Least sensitive to the architecture (lowest {what})")

# Mosaic geometry, in units of the tile height: room for a row title above each row of tiles and
# for a two-line caption below each tile.
_PAD = 0.12
_TITLE_ROOM = 0.32
_CAPTION_ROOM = 0.72  # three lines: class, value and id, direction


# ------------------------------------------------------------------------------------------
# Images
# ------------------------------------------------------------------------------------------


def channels_last(images: np.ndarray) -> np.ndarray:
    """A channels-last view ``(n, h, w, c)`` of an image array, ``c`` being 1 or 3.

    Accepts ``(n, c, h, w)`` (the datasets' layout), ``(n, h, w, c)`` and ``(n, h, w)``.

    Raises
    ------
    DataError
        If the array does not hold images: another number of dimensions, channels other than 1 or
        3, or a side shorter than 2 pixels (e.g. tabular features reshaped into ``(n, 1, 1, d)``).
    """
    array = np.asarray(images)
    if array.ndim == 3:
        array = array[..., None]
    elif array.ndim == 4 and array.shape[1] in (1, 3) and array.shape[3] not in (1, 3):
        array = np.moveaxis(array, 1, 3)
    if array.ndim != 4 or array.shape[3] not in (1, 3) or min(array.shape[1:3]) < 2:
        raise DataError(
            f"the dataset's inputs have shape {tuple(np.shape(images))}, which is not an image shape "
            "(n, channels, height, width) with 1 or 3 channels; the gallery and thumbnails need an image dataset"
        )
    if not np.issubdtype(array.dtype, np.number):
        raise DataError(f"the dataset's images must be numeric, got {array.dtype}")
    return array


def image_tile(images: np.ndarray, example_id: int) -> np.ndarray:
    """One image as RGB float in [0, 1], shape ``(h, w, 3)``, from a channels-last array.

    Images already in [0, 1] are shown as they are; others (e.g. standardised inputs) are scaled
    to [0, 1] per image, so that they remain visible.
    """
    if not 0 <= example_id < len(images):
        raise DataError(
            f"the summary statistics refer to example {example_id} but the dataset has {len(images)} "
            "training images; are they from another dataset?"
        )
    tile = np.asarray(images[example_id], dtype=np.float64)
    finite = np.nan_to_num(tile, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(finite.min()), float(finite.max())
    if low < 0.0 or high > 1.0:
        finite = (finite - low) / (high - low) if high > low else np.zeros_like(finite)
    if finite.shape[2] == 1:
        finite = np.repeat(finite, 3, axis=2)
    return finite


def check_images_match(sumstats: pd.DataFrame, images: np.ndarray, labels: np.ndarray | None = None) -> None:
    """Check that the images are those the summary statistics were computed on.

    Raises
    ------
    DataError
        If the images are not images, an example id has no image, or (with ``labels``) an
        example's class in the table differs from the dataset's label: the store's dataset is not
        the one the runs were trained on.
    """
    channels_last(images)
    ids = pd.to_numeric(sumstats["ID"]).to_numpy(dtype=np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= len(images)):
        raise DataError(
            f"the summary statistics refer to examples up to {ids.max()} but the dataset has "
            f"{len(images)} training images; are they from another dataset?"
        )
    if labels is not None and "LABEL" in sumstats.columns and ids.size:
        differ = np.asarray(labels)[ids] != pd.to_numeric(sumstats["LABEL"]).to_numpy(dtype=np.int64)
        if differ.any():
            raise DataError(
                f"{int(differ.sum())} examples have another class in the dataset than in the summary "
                "statistics; are they from another dataset?"
            )


# ------------------------------------------------------------------------------------------
# Ranking
# ------------------------------------------------------------------------------------------


def most_and_least_sensitive(sumstats: pd.DataFrame, k: int = 8, score: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``k`` examples ranked highest and the ``k`` ranked lowest.

    Parameters
    ----------
    sumstats : DataFrame
        Summary statistics (see :mod:`gwas_models.formats.sumstats_schema`).
    k : int
        Examples per group; fewer when the ranking has fewer tested examples (the two groups never
        share an example).
    score : str, optional
        What ranks the examples. Default :data:`PAPER_RANKING`, the paper's ranking: the mean
        −log10 p over scores (``MEAN_NEG_LOG10_P`` of the ``combined`` rows, or of the
        ``combined_pairs`` rows, over every pair and score, in a table of three or more
        architectures; a table of one score: its −log10 p). Any score in the table ranks by its
        ``NEG_LOG10_P``: ``combined`` by its Cauchy combination p.

    Returns
    -------
    (most, least) : DataFrames
        Rows of the summary statistics, most sensitive first in ``most``, least sensitive first in
        ``least``; ties broken by example id so that the choice is reproducible.
    """
    if k < 1:
        raise InputError(f"k must be at least 1, got {k}", parameter="k")
    require_columns(sumstats, GALLERY_COLUMNS, "the gallery")
    rows, values, _ = ranked_rows(sumstats, score)
    rows = rows.assign(_NLP=values)
    ranked = rows.sort_values(["_NLP", "ID"], ascending=[False, True], kind="stable")
    n_most = min(k, len(ranked))
    n_least = min(k, len(ranked) - n_most)
    most = ranked.iloc[:n_most].drop(columns="_NLP")
    least = ranked.iloc[len(ranked) - n_least :].iloc[::-1].drop(columns="_NLP")
    return most, least


def ranked_rows(sumstats: pd.DataFrame, score: str | None = None) -> tuple[pd.DataFrame, np.ndarray, str]:
    """The tested rows that ``score`` ranks (see :func:`most_and_least_sensitive`), their ranking
    values (largest: most sensitive), and what those values are, in words."""
    score = PAPER_RANKING if score is None else str(score)
    if score == PAPER_RANKING:
        names = available_scores(sumstats)
        source = names[0] if len(names) == 1 else ranking_score(sumstats)
        rows = score_rows(sumstats, source)
        rows = rows[tested_mask(rows)]
        what = RANKING_MEANINGS.get(source, f"−log10 p of {source}")
        return rows, ranking_values(rows, source), f"{what}, the paper's ranking" if source in COMBINED_SCORES else what
    rows = score_rows(sumstats, score)
    rows = rows[tested_mask(rows)]
    if holds_legacy_ranking(rows, score):  # an older table: its combined rows' NEG_LOG10_P was the mean
        return rows, neg_log10_p(rows), f"{RANKING_MEANINGS[score]}, the paper's ranking"
    what = f"−log10 p, {COMBINED_MEANINGS[score]}" if score in COMBINED_SCORES else f"−log10 p of {score}"
    return rows, neg_log10_p(rows), what


# ------------------------------------------------------------------------------------------
# Drawing
# ------------------------------------------------------------------------------------------


def gallery_figsize(k: int) -> tuple[float, float]:
    """A figure size (inches) in which a gallery of ``k`` square images per row fills the width."""
    tile_inches = 1.15 if k <= 10 else max(0.6, 11.5 / k)
    width = tile_inches * (k + (k + 1) * _PAD) + 0.3
    height = tile_inches * 2 * (_TITLE_ROOM + 1 + _CAPTION_ROOM) + 0.3
    return width, height


def sensitivity_gallery(
    sumstats: pd.DataFrame,
    images: np.ndarray,
    *,
    k: int = 8,
    score: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Draw the ``k`` most and ``k`` least architecture-sensitive examples as two rows of images.

    Each image is captioned with its class, its ranking value (by default the paper's ranking,
    the mean −log10 p over scores; with a named score, its −log10 p) and its example id, as in the
    paper's Figure 1 (left). The images are drawn as one mosaic, so the whole gallery lives in one
    Axes.

    Parameters
    ----------
    sumstats : DataFrame
        Summary statistics with at least ``#CHROM``, ``ID``, ``LABEL``, ``SCORE``, ``NEG_LOG10_P``.
    images : array
        The training images indexed by ``example_id``: ``(n, c, h, w)`` (or ``(n, h, w, c)``,
        ``(n, h, w)``), with 1 or 3 channels, values in [0, 1] (others are rescaled per image).
    k : int
        Images per row.
    score : str, optional
        What ranks the examples (default :data:`PAPER_RANKING`, the paper's ranking; see
        :func:`most_and_least_sensitive`).
    ax : Axes, optional
        Where to draw; a new figure otherwise.

    Returns
    -------
    Axes

    Raises
    ------
    DataError
        If ``images`` are not images, or an example id is outside the image array.
    InputError, ResultsError
        For an unknown score or a table without the needed columns.
    """
    most, least = most_and_least_sensitive(sumstats, k, score)
    _, _, what = ranked_rows(sumstats, score)
    pictures = channels_last(images)
    height, width = pictures.shape[1:3]
    ax = new_axes(ax, gallery_figsize(k))
    mosaic, tile_origins = _mosaic(pictures, [most, least], k)
    ax.imshow(mosaic, interpolation="nearest", origin="upper", extent=(0, mosaic.shape[1], mosaic.shape[0], 0))
    ax.set_axis_off()
    sync_layout(ax.figure)
    fontsize = _caption_fontsize(ax, mosaic.shape, height)
    tile_width_pt = width * _points_per_pixel(ax, mosaic.shape)  # the tile itself: the pad keeps captions apart
    for title, group, origins in zip(ROW_TITLES, (most, least), tile_origins):
        directions = [_fit(text, fontsize, tile_width_pt) for text in direction_captions(sumstats, group)]
        colours = direction_colours(sumstats, group)
        values = _values_of(sumstats, group, score)
        _label_row(ax, title.format(what=what), values, group, origins, (height, width), fontsize, directions, colours)
    return ax


def _values_of(sumstats: pd.DataFrame, group: pd.DataFrame, score: str | None) -> np.ndarray:
    """The ranking values of the rows of ``group`` (rows that :func:`ranked_rows` returned)."""
    rows, values, _ = ranked_rows(sumstats, score)
    by_index = pd.Series(values, index=rows.index)
    return by_index.loc[group.index].to_numpy(dtype=np.float64)


def direction_captions(sumstats: pd.DataFrame, group: pd.DataFrame) -> list[str]:
    """``harder in <arch>`` (pair table) or ``hardest in <arch>`` (one-way) of each row of
    ``group``, ``''`` when unknown.

    A combined row without a direction of its own takes the direction most of the example's
    score rows give (none on a tie)."""
    column, prefix = ("HARDER_IN", "harder in") if "HARDER_IN" in sumstats.columns else ("HARDEST_IN", "hardest in")
    if column not in sumstats.columns:
        return [""] * len(group)
    names = [_direction_of(sumstats, column, row) for row in group.to_dict("records")]
    return [f"{prefix} {name}" if name else "" for name in names]


def direction_colours(sumstats: pd.DataFrame, group: pd.DataFrame) -> list[str]:
    """Caption colour of each row's direction line: A's and B's colours of the Manhattan plot in a
    pair table, neutral otherwise."""
    if not {"A", "B", "HARDER_IN"} <= set(sumstats.columns):
        return [NEUTRAL_TEXT_COLOUR] * len(group)
    colours = []
    for row in group.to_dict("records"):
        name = _direction_of(sumstats, "HARDER_IN", row)
        colours.append({str(row["A"]): HARDER_IN_A_DARK, str(row["B"]): HARDER_IN_B_DARK}.get(name, NEUTRAL_TEXT_COLOUR))
    return colours


def _direction_of(sumstats: pd.DataFrame, column: str, row: dict) -> str:
    value = row.get(column)
    if _known(value):
        return str(value)
    if str(row["SCORE"]) not in COMBINED_SCORES:
        return ""
    scores = as_text(sumstats["SCORE"])
    mine = sumstats[(sumstats["ID"] == row["ID"]).to_numpy() & ~scores.isin(COMBINED_SCORES).to_numpy()]
    votes = as_text(mine[column])[[_known(v) for v in mine[column]]].value_counts()
    if votes.empty or (len(votes) > 1 and votes.iloc[0] == votes.iloc[1]):
        return ""
    return str(votes.index[0])


def _known(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value)) and str(value) not in (MISSING, "", "nan", "<NA>")


def _fit(text: str, fontsize: float, width_pt: float) -> str:
    """``text``, cut with an ellipsis to fit ``width_pt`` (a long architecture name would run into
    the neighbouring caption)."""
    if text_size_points(text, fontsize)[0] <= width_pt:
        return text
    # The name matters more than the words around it: shorten those first.
    text = text.replace("harder in ", "harder: ").replace("hardest in ", "hardest: ")
    if text_size_points(text, fontsize)[0] <= width_pt:
        return text
    while len(text) > 4 and text_size_points(text + "…", fontsize)[0] > width_pt:
        text = text[:-1]
    return text + "…"


def format_neg_log10_p(value: float) -> str:
    """−log10 p for a caption: one decimal, or two significant digits below 1 (so not all 0.0)."""
    return f"{value:.1f}" if value >= 1.0 else f"{value:.2g}"


def _mosaic(pictures: np.ndarray, groups: list[pd.DataFrame], k: int) -> tuple[np.ndarray, list[list[tuple[int, int]]]]:
    """White canvas with the groups' images in rows; also each tile's top-left (row, column)."""
    height, width = pictures.shape[1:3]
    pad = max(1, int(round(_PAD * width)))
    title_room = max(2, int(round(_TITLE_ROOM * height)))
    caption_room = max(3, int(round(_CAPTION_ROOM * height)))
    row_height = title_room + height + caption_room
    canvas = np.ones((row_height * len(groups), pad + k * (width + pad), 3))
    origins: list[list[tuple[int, int]]] = []
    for row_index, group in enumerate(groups):
        top = row_index * row_height + title_room
        row_origins = []
        for column_index, example_id in enumerate(group["ID"].to_numpy(dtype=np.int64)):
            left = pad + column_index * (width + pad)
            canvas[top : top + height, left : left + width] = image_tile(pictures, int(example_id))
            row_origins.append((top, left))
        origins.append(row_origins)
    return canvas, origins


def _points_per_pixel(ax: Axes, mosaic_shape: tuple[int, ...]) -> float:
    """Points per mosaic pixel (an image with equal aspect is letterboxed)."""
    width_pt, height_pt = axes_size_points(ax)
    return min(width_pt / mosaic_shape[1], height_pt / mosaic_shape[0])


def _caption_fontsize(ax: Axes, mosaic_shape: tuple[int, ...], tile_height: int) -> float:
    """Caption size that scales with the drawn tiles; never below 6 pt, the smallest that reads."""
    return float(np.clip(0.13 * tile_height * _points_per_pixel(ax, mosaic_shape), 6.0, 9.0))


def _label_row(
    ax: Axes,
    title: str,
    values: np.ndarray,
    group: pd.DataFrame,
    origins: list[tuple[int, int]],
    tile_shape: tuple[int, int],
    fontsize: float,
    directions: list[str],
    colours: list[str],
) -> None:
    """Row title above the tiles; class, ranking value (``values``) and example id below each
    tile, and under them the architecture that finds it harder (``directions``, in ``colours``)."""
    height, width = tile_shape
    if origins:
        top, left = origins[0]
        ax.text(left, top - 0.08 * height, title, ha="left", va="bottom", fontsize=fontsize + 1, fontweight="bold", gid="gallery-title")
    else:
        return
    captions = zip(origins, group["#CHROM"].astype(str), values, group["ID"], directions, colours)
    for (top, left), class_name, value, example_id, direction, colour in captions:
        # A bare digit class ("7") above a number would read as part of it.
        shown_class = f"class {class_name}" if class_name.isdigit() else class_name
        caption = f"{shown_class}\n{format_neg_log10_p(value)}  #{int(example_id)}"
        if direction:
            # Its own text, so it can take the direction's colour; two lines below the caption's top.
            ax.annotate(
                direction,
                xy=(left + width / 2, top + height + 0.06 * height),
                xytext=(0, -2 * 1.15 * fontsize),
                textcoords="offset points",
                ha="center",
                va="top",
                fontsize=fontsize,
                color=colour,
                gid=f"direction:{int(example_id)}",
            )
        ax.text(
            left + width / 2,
            top + height + 0.06 * height,
            caption,
            ha="center",
            va="top",
            fontsize=fontsize,
            linespacing=1.15,
            gid=f"caption:{int(example_id)}",
        )
