"""Manhattan plots: every training example's −log10 p, grouped by class like chromosomes.

x runs over the examples, class after class in ``LABEL`` order and by ``POS`` inside a class, with
a small gap between classes; every other class band is shaded. y is −log10 p of one score (or
of the combined evidence: its Cauchy combination p). Two horizontal lines mark the Bonferroni
threshold ``α / n_tests`` (solid) and a suggestive threshold (dashed, ``1 / n_tests`` by default),
``n_tests`` being the number of examples tested for that score.

A p-value has no sign, so colour says which architecture finds each example harder
(``HARDER_IN`` of a pair table): one colour for A, one for B, grey where the direction is undefined.
In a one-way table (no pair) the points take one neutral colour.

Whole classes often shift together (resnet20 v an MLP on CIFAR-10: class 8 high, 4 and 6 low): that
is one finding, not hundreds. A short segment across each class band marks the class median of y,
split in the share of the class harder under A (left, A's colour) and under B (right), so that a
class-level effect reads as one. λGC of the p-values drawn is in the title, with the 95th percentile
of its relabelling null when the association recorded it (``lambda_null``).

With ``ranking=True`` a combined score is drawn by its ranking instead, the paper's mean −log10 p
over scores (``MEAN_NEG_LOG10_P``): no p-value, so no threshold line, and the axis and title say
it is a ranking. The combined rows of a table written before that column (whose ``NEG_LOG10_P``
held the mean) are drawn that way too.

Drawing a million points is cheap when each class is one ``scatter`` call with one colour (a
per-point colour array is what is slow), and vector files stay small when the points are
rasterized. Below the suggestive line, points hidden under an identical marker are dropped (see
:func:`~gwas_models.plots._style.thin_on_grid`); every point at or above it is always drawn.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.offsetbox import AnnotationBbox, OffsetImage, TextArea, VPacker
from matplotlib.ticker import FuncFormatter

from gwas_models.errors import InputError
from gwas_models.formats.sumstats_schema import COMBINED, COMBINED_SCORES
from gwas_models.plots._style import (
    CLASS_BAND_SHADE,
    CLASS_COLOURS,
    HARDER_IN_A_COLOUR,
    HARDER_IN_A_DARK,
    HARDER_IN_B_COLOUR,
    HARDER_IN_B_DARK,
    NEG_LOG10_P_LABEL,
    RANKING_LABEL,
    THRESHOLD_COLOUR,
    UNDEFINED_DIRECTION_COLOUR,
    as_text,
    available_scores,
    axes_size_points,
    check_single_pair,
    data_per_point,
    holds_legacy_ranking,
    inflation_colour,
    neg_log10_p,
    new_axes,
    ranking_values,
    require_columns,
    score_rows,
    sync_layout,
    tested_mask,
    text_size_points,
    thin_on_grid,
)
from gwas_models.analysis.multitest import genomic_control_lambda
from gwas_models.plots.gallery import channels_last, image_tile

AnnotateMode = Literal["per-class", "top", "none"]
ANNOTATE_MODES: tuple[str, ...] = ("per-class", "top", "none")
MANHATTAN_COLUMNS = ("#CHROM", "POS", "ID", "LABEL", "SCORE", "NEG_LOG10_P")
SIGNED_COLUMNS = ("A", "B", "HARDER_IN")

MARKER_AREA = 4.0  # points², i.e. a 2 pt disc: a million of them stay distinguishable in the tails
THIN_CELL_FRACTION = 0.25  # thinning cell, as a fraction of the marker diameter
CLASS_GAP_FRACTION = 0.08  # gap between classes, as a fraction of the mean class size
TICK_FONTSIZE = 8.0
LABEL_FONTSIZE = 7.0
THUMBNAIL_POINTS = 30.0
HEADROOM_POINTS = 16.0  # room above the highest point for its label
LABEL_GAP_POINTS = 3.0  # between a point and its label
DEFAULT_TOP_K = {"per-class": 1, "top": 10, "none": 0}
LEGEND_FONTSIZE = 7.0
LEGEND_ROOM_POINTS = 26.0  # headroom for the legend's two rows, so it covers no point
SUMMARY_LINEWIDTH = 2.2  # the class-median segment: thicker than a marker, thinner than a label
#: Direction codes of the points (index into the colours below); undefined is drawn grey.
HARDER_A, HARDER_B, UNDEFINED = 0, 1, -1
DIRECTION_COLOURS = {HARDER_A: HARDER_IN_A_COLOUR, HARDER_B: HARDER_IN_B_COLOUR, UNDEFINED: UNDEFINED_DIRECTION_COLOUR}
CLASS_SUMMARY_NOTE = "— class median, split by the share harder in A | B: a whole class that shifts is one finding, not many"


# ------------------------------------------------------------------------------------------
# Where each example goes on x
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassLayout:
    """Positions of the examples on the x axis.

    Attributes
    ----------
    class_names : list of str
        Class names in ``LABEL`` order.
    labels : int array
        The class indices (``LABEL``) in the same order.
    example_ids : int array
        Every example, in plotting order (by class, then ``POS``).
    x : float array
        x of each entry of ``example_ids``.
    starts, ends, centres : float arrays
        x extent and middle of each class.
    gap : float
        Space between classes, in x units.
    """

    class_names: list[str]
    labels: np.ndarray
    example_ids: np.ndarray
    x: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    centres: np.ndarray
    gap: float

    def positions(self, example_ids: np.ndarray) -> np.ndarray:
        """x of the given example ids."""
        index = pd.Index(self.example_ids).get_indexer(np.asarray(example_ids))
        return self.x[index]

    def class_rank(self, labels: np.ndarray) -> np.ndarray:
        """Index of each label among the classes (0 for the first class on x)."""
        return np.searchsorted(self.labels, np.asarray(labels))


def class_layout(sumstats: pd.DataFrame) -> ClassLayout:
    """Lay out every example of the table along x, class by class in ``LABEL`` order.

    Rows whose test failed still take their place, so that every score of one table, and every
    panel of a faceted plot, shares the same x.
    """
    require_columns(sumstats, ("#CHROM", "POS", "ID", "LABEL"), "a Manhattan plot")
    examples = sumstats[["ID", "LABEL", "POS", "#CHROM"]]
    if examples["ID"].duplicated().any():  # several scores: one row per example is enough
        examples = examples.drop_duplicates("ID")
    example_ids = examples["ID"].to_numpy(dtype=np.int64)
    example_labels = examples["LABEL"].to_numpy(dtype=np.int64)
    order = _class_order(example_labels, examples["POS"].to_numpy(dtype=np.int64), example_ids)
    example_ids, example_labels = example_ids[order], example_labels[order]
    labels, first = np.unique(example_labels, return_index=True)
    class_names = [str(name) for name in examples["#CHROM"].iloc[order[first]]]
    rank = np.searchsorted(labels, example_labels)
    gap = CLASS_GAP_FRACTION * len(examples) / max(len(labels), 1)
    x = np.arange(len(examples), dtype=np.float64) + rank * gap
    last = np.r_[first[1:], len(examples)] - 1
    starts, ends = x[first], x[last]
    return ClassLayout(
        class_names=class_names,
        labels=labels,
        example_ids=example_ids,
        x=x,
        starts=starts,
        ends=ends,
        centres=(starts + ends) / 2,
        gap=gap,
    )


def _class_order(labels: np.ndarray, positions: np.ndarray, example_ids: np.ndarray) -> np.ndarray:
    """Order by (LABEL, POS, ID): one argsort of a packed integer key when it fits in 63 bits.

    For a million examples the packed key sorts in a tenth of the time of a three-key lexsort.
    """
    if labels.size == 0:
        return np.arange(0)
    spans = [int(values.max()) - int(values.min()) + 1 for values in (labels, positions, example_ids)]
    if min(int(v.min()) for v in (labels, positions, example_ids)) >= 0 and np.prod(np.array(spans, dtype=float)) < 2.0**62:
        key = (labels - labels.min()) * spans[1] + (positions - positions.min())
        key = key * spans[2] + (example_ids - example_ids.min())
        return np.argsort(key, kind="stable")
    return np.lexsort((example_ids, positions, labels))


# ------------------------------------------------------------------------------------------
# Public drawing functions
# ------------------------------------------------------------------------------------------


def manhattan(
    sumstats: pd.DataFrame,
    score: str = COMBINED,
    *,
    alpha: float = 0.01,
    suggestive: float | None = None,
    annotate: AnnotateMode = "per-class",
    top_k: int | None = None,
    signed: bool = False,
    thin: bool = True,
    images: np.ndarray | None = None,
    show_class_labels: bool = True,
    ranking: bool = False,
    lambda_null: Mapping[str, float] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Draw a Manhattan plot of one score.

    Parameters
    ----------
    sumstats : DataFrame
        Summary statistics (see :mod:`gwas_models.formats.sumstats_schema`). Rows whose ``ERRCODE`` is not
        ``'.'`` or whose ``NEG_LOG10_P`` is missing are not drawn.
    score : str
        ``SCORE`` to draw; ``'combined'`` is the Cauchy combination p over scores.
    alpha : float
        Family-wise level of the Bonferroni line, drawn at ``−log10(alpha / n_tests)``.
    suggestive : float, optional
        p-value of the dashed suggestive line; default ``1 / n_tests`` (one false positive
        expected by chance).
    annotate : {'per-class', 'top', 'none'}
        Label with its example id the ``top_k`` best examples of each class that reach the
        suggestive line (``'per-class'``, default ``top_k`` 1), or the ``top_k`` best overall
        (``'top'``, default 10). Labels that cannot be placed without overlapping another label or
        leaving the axes are left out, least significant first.
    top_k : int, optional
        See ``annotate``.
    signed : bool
        Two-sided ("Miami") plot: examples harder under architecture ``A`` (``HARDER_IN``) point
        up, those harder under ``B`` point down. Examples without a direction are drawn up, grey.
    thin : bool
        Drop points below the suggestive line that would be hidden under an identical marker.
    images : array, optional
        Training images indexed by example id (``(n, c, h, w)``); when given, the annotated
        examples are shown as thumbnails instead of bare ids.
    show_class_labels : bool
        Write class names under the x axis (off for the upper panels of a faceted plot).
    ranking : bool
        Draw a combined score's ranking, the mean −log10 p over scores (``MEAN_NEG_LOG10_P``),
        instead of its p: no threshold line (a mean of −log10 p is no p-value); ``per-class``
        labels the best ``top_k`` of every class.
    lambda_null : mapping, optional
        95th percentile of λGC's relabelling null by score (the association records it); shown
        beside λGC, which is computed from the p-values drawn. Not used for a ranking.
    ax : Axes, optional
        Where to draw; a new figure otherwise.

    Returns
    -------
    Axes
        The points are one scatter collection per direction, with gids ``direction:A``,
        ``direction:B`` and ``direction:undefined`` (one-way tables: ``direction:none``); shaded
        class bands have gids ``class-band:<name>``; each class's summary segment
        ``class-summary:<name>:A`` / ``:B`` (one-way: ``:all``); threshold lines have gids
        ``bonferroni`` and ``suggestive``; annotations have gids ``hit:<example id>``; λGC is the
        right-hand title.
    """
    _require_manhattan_columns(sumstats, signed)
    if ranking and score not in COMBINED_SCORES:
        raise InputError(
            f"ranking draws a combined score's mean -log10 p ({', '.join(COMBINED_SCORES)}), not {score!r}", parameter="ranking"
        )
    options = _Options(alpha, suggestive, annotate, top_k, signed, thin, show_class_labels, panel=False)
    options.check()
    rows = score_rows(sumstats, score)
    options = replace(options, ranking=ranking or holds_legacy_ranking(rows, score), null_95=(lambda_null or {}).get(score))
    return _draw(rows, class_layout(rows), score, options, images, ax)


def manhattan_facets(
    sumstats: pd.DataFrame,
    scores: Sequence[str] | None = None,
    *,
    figure: Figure | None = None,
    alpha: float = 0.01,
    suggestive: float | None = None,
    annotate: AnnotateMode = "per-class",
    top_k: int | None = None,
    signed: bool = False,
    thin: bool = True,
    images: np.ndarray | None = None,
    ranking: bool = False,
    lambda_null: Mapping[str, float] | None = None,
) -> list[Axes]:
    """One Manhattan panel per score, stacked, sharing x (one layout of the examples for all).

    Parameters
    ----------
    sumstats : DataFrame
        Summary statistics.
    scores : sequence of str, optional
        Scores to draw, top to bottom; default every score in the table, the combined evidence last.
    figure : Figure, optional
        Figure to draw in (its panels are added); a new one otherwise.
    alpha, suggestive, annotate, top_k, signed, thin, images
        As for :func:`manhattan`; thresholds are computed per panel from its own number of tests.
    ranking : bool
        Draw the combined scores' panels by their ranking (see :func:`manhattan`); the other
        panels are p-values as always.
    lambda_null : mapping, optional
        95th percentile of each score's λGC relabelling null (see :func:`manhattan`).

    Returns
    -------
    list of Axes, one per score.
    """
    _require_manhattan_columns(sumstats, signed)
    _Options(alpha, suggestive, annotate, top_k, signed, thin, True, panel=True).check()
    if scores is None:
        names = available_scores(sumstats)
        scores = [name for name in names if name not in COMBINED_SCORES] + [name for name in names if name in COMBINED_SCORES]
    scores = list(scores)
    if not scores:
        raise InputError("no scores to draw")
    panel_rows = [score_rows(sumstats, name) for name in scores]
    check_single_pair(sumstats)
    layout = class_layout(sumstats)
    if figure is None:
        import matplotlib.pyplot as plt  # a pyplot figure displays in notebooks; the CLI passes its own

        figure = plt.figure(figsize=facet_figsize(len(scores), len(layout.class_names)), layout="constrained")
    axes = figure.subplots(len(scores), 1, sharex=True, squeeze=False)[:, 0].tolist()
    title = _pair_title(sumstats, "one panel per score" if len(scores) > 1 else scores[0])
    if signed:
        title += f"\n{_direction_note(sumstats)}"
    figure.suptitle(title, fontsize=10)
    for index, (name, rows, ax) in enumerate(zip(scores, panel_rows, axes)):
        last = index == len(scores) - 1
        ranked = (ranking and name in COMBINED_SCORES) or holds_legacy_ranking(rows, name)
        options = _Options(
            alpha, suggestive, annotate, top_k, signed, thin, show_class_labels=last, panel=True, ranking=ranked,
            legend=index == 0, null_95=(lambda_null or {}).get(name),
        )  # fmt: skip
        _draw(rows, layout, name, options, images, ax)
    return axes


def _require_manhattan_columns(sumstats: pd.DataFrame, signed: bool) -> None:
    require_columns(sumstats, MANHATTAN_COLUMNS, "a Manhattan plot")
    if signed:
        require_columns(sumstats, SIGNED_COLUMNS, "a signed plot (a table of two architectures)")


def manhattan_figsize(n_classes: int, signed: bool = False) -> tuple[float, float]:
    """A figure size (inches) that keeps class labels readable: wider with many classes."""
    width = float(np.clip(7.0 + 0.06 * n_classes, 10.0, 16.0))
    return width, 6.0 if signed else 4.8


def facet_figsize(n_panels: int, n_classes: int) -> tuple[float, float]:
    """Figure size of a faceted plot: one short panel per score (its two-line title included)."""
    width, _ = manhattan_figsize(n_classes)
    return width, 1.4 + 2.3 * n_panels


# ------------------------------------------------------------------------------------------
# Drawing, step by step
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Points:
    """The tested rows of one score, ready to draw."""

    example_ids: np.ndarray
    x: np.ndarray
    y: np.ndarray  # signed in a Miami plot
    strength: np.ndarray  # −log10 p, always ≥ 0
    class_rank: np.ndarray
    direction: np.ndarray  # HARDER_A, HARDER_B or UNDEFINED (all UNDEFINED without a pair)
    pair: tuple[str, str] | None  # (A, B); None for a one-way table

    @property
    def undefined_direction(self) -> np.ndarray:
        return self.direction == UNDEFINED


@dataclass(frozen=True)
class _Options:
    """How to draw one panel (see :func:`manhattan` for the meaning of each)."""

    alpha: float
    suggestive: float | None
    annotate: str
    top_k: int | None
    signed: bool
    thin: bool
    show_class_labels: bool
    panel: bool  # one panel of a faceted figure: short title, the pair is in the figure's title
    ranking: bool = False  # y is a ranking (mean -log10 p), not a p-value: no threshold
    legend: bool = True  # the direction legend (a faceted figure shows it once, on the top panel)
    null_95: float | None = None  # 95th percentile of λ's relabelling null, when recorded

    def check(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise InputError(f"alpha must lie strictly between 0 and 1, got {self.alpha}", parameter="alpha")
        if self.suggestive is not None and not 0.0 < self.suggestive <= 1.0:
            raise InputError(f"suggestive must be a p-value in (0, 1], got {self.suggestive}", parameter="suggestive")
        if self.annotate not in ANNOTATE_MODES:
            raise InputError(f"annotate must be one of {', '.join(ANNOTATE_MODES)}, got {self.annotate!r}", parameter="annotate")
        if self.top_k is not None and self.top_k < 0:
            raise InputError(f"top_k must not be negative, got {self.top_k}", parameter="top_k")


def _draw(rows: pd.DataFrame, layout: ClassLayout, score: str, options: _Options, images: np.ndarray | None, ax: Axes | None) -> Axes:
    pictures = channels_last(images) if images is not None else None
    points = _points(rows, layout, options.signed, score if options.ranking else None)
    n_tests = len(points.x)
    if options.ranking:
        # A ranking has no threshold: nothing is drawn for sure above one, no label needs to reach one.
        lines, always_y, label_y = [], np.inf, -np.inf
    else:
        bonferroni_y = -np.log10(options.alpha / max(n_tests, 1))
        suggestive_y = -np.log10(options.suggestive if options.suggestive is not None else 1.0 / max(n_tests, 1))
        lines, always_y, label_y = [bonferroni_y, suggestive_y], suggestive_y, suggestive_y
    ax = new_axes(ax, manhattan_figsize(len(layout.class_names), options.signed))
    show_legend = options.legend and points.pair is not None
    # Everything that takes room around the axes comes first, so that after the layout runs the
    # axes size is final: thinning cells and label positions are computed in points from it.
    _set_limits(ax, layout, points, max(lines, default=0.0), options.signed, pictures is not None, show_legend)
    _class_axis(ax, layout, options.show_class_labels)
    if lines:
        _threshold_lines(ax, bonferroni_y, suggestive_y, options)
    _axis_labels(ax, rows, score, n_tests, options)
    legend = _direction_legend(ax, points.pair) if show_legend else None
    sync_layout(ax.figure)
    _class_bands(ax, layout)
    _scatter_directions(ax, points, always_y, options.thin)
    _draw_class_summary(ax, layout, _summarise(points, layout))
    hits = _choose_hits(points, label_y, options.annotate, options.top_k)
    line_ys = lines + ([-y for y in lines] + [0.0] if options.signed else [])
    _annotate_hits(ax, points, hits, pictures, line_ys, legend)
    return ax


def _points(rows: pd.DataFrame, layout: ClassLayout, signed: bool, ranked_score: str | None = None) -> _Points:
    """x, y and class of every tested row; y negative for "harder under B" in a signed plot.

    y is −log10 p, or with ``ranked_score`` the ranking value of that combined score."""
    tested = rows[tested_mask(rows)]
    strength = ranking_values(tested, ranked_score) if ranked_score is not None else neg_log10_p(tested)
    if not np.isfinite(strength).all():  # a ranking value missing where the p is not
        tested, strength = tested[np.isfinite(strength)], strength[np.isfinite(strength)]
    pair = _pair(rows) if "HARDER_IN" in rows.columns else None
    direction = np.full(len(tested), UNDEFINED, dtype=np.int8)
    if pair is not None:
        harder_in = as_text(tested["HARDER_IN"])
        direction[(harder_in == as_text(tested["A"])).to_numpy(dtype=bool, na_value=False)] = HARDER_A
        direction[(harder_in == as_text(tested["B"])).to_numpy(dtype=bool, na_value=False)] = HARDER_B
    y = strength.copy()
    if signed:
        y[direction == HARDER_B] = -y[direction == HARDER_B]
    example_ids = tested["ID"].to_numpy(dtype=np.int64)
    return _Points(
        example_ids=example_ids,
        x=layout.positions(example_ids),
        y=y,
        strength=strength,
        class_rank=layout.class_rank(tested["LABEL"].to_numpy(dtype=np.int64)),
        direction=direction,
        pair=pair,
    )


def _set_limits(
    ax: Axes, layout: ClassLayout, points: _Points, bonferroni_y: float, signed: bool, thumbnails: bool, legend: bool = False
) -> None:
    """x spans the classes; y leaves room above the highest point (and threshold) for labels and
    for the legend, which sits in that room and so covers no point."""
    ax.set_xlim(layout.starts[0] - layout.gap / 2 if len(layout.starts) else 0, layout.ends[-1] + layout.gap / 2 if len(layout.ends) else 1)
    highest = max(float(points.strength.max()) if len(points.strength) else 0.0, bonferroni_y)
    _, height_pt = axes_size_points(ax)
    room_pt = HEADROOM_POINTS + (THUMBNAIL_POINTS if thumbnails else 0.0) + (LEGEND_ROOM_POINTS if legend else 0.0)
    half_height_pt = height_pt / 2 if signed else height_pt
    top = highest / max(1.0 - room_pt / max(half_height_pt, 1.0), 0.5) * 1.02
    ax.set_ylim(-top if signed else 0.0, top)


def _class_axis(ax: Axes, layout: ClassLayout, show_labels: bool) -> None:
    """Class names at class centres: horizontal when they fit, else upright, else every k-th.

    With many classes (CIFAR-100) every class keeps a short tick, and the labelled ones are spaced
    so that upright labels never touch.
    """
    if not show_labels or len(layout.centres) == 0:
        # Upper panels of a faceted plot share the bottom panel's ticks; they only hide the names.
        ax.tick_params(axis="x", which="both", labelbottom=False)
        return
    width_pt, _ = axes_size_points(ax)
    spacing_pt = _smallest_spacing_points(layout, ax, width_pt)
    widest_pt = max(text_size_points(name, TICK_FONTSIZE)[0] for name in layout.class_names)
    line_pt = 1.2 * TICK_FONTSIZE
    if widest_pt + 4.0 <= spacing_pt:
        step, rotation = 1, 0
    else:
        step, rotation = max(1, int(np.ceil((line_pt + 1.0) / max(spacing_pt, 1e-9)))), 90
    shown = np.arange(0, len(layout.centres), step)
    ax.set_xticks(layout.centres[shown], [layout.class_names[i] for i in shown], rotation=rotation, fontsize=TICK_FONTSIZE)
    ax.tick_params(axis="x", which="major", length=4)
    if step > 1:  # the unlabelled classes keep a short tick, so that every class can be counted
        ax.set_xticks(np.delete(layout.centres, shown), minor=True)
        ax.tick_params(axis="x", which="minor", length=2, labelbottom=False)


def _smallest_spacing_points(layout: ClassLayout, ax: Axes, width_pt: float) -> float:
    if len(layout.centres) < 2:
        return width_pt
    x0, x1 = ax.get_xlim()
    return float(np.diff(layout.centres).min()) * width_pt / (x1 - x0)


def _class_bands(ax: Axes, layout: ClassLayout) -> None:
    """Shade every other class band: colour is taken by direction, so the background tells the
    classes apart."""
    half_gap = layout.gap / 2
    for rank in range(1, len(layout.class_names), 2):
        ax.axvspan(
            layout.starts[rank] - half_gap,
            layout.ends[rank] + half_gap,
            color=CLASS_BAND_SHADE,
            lw=0,
            zorder=0,
            gid=f"class-band:{layout.class_names[rank]}",
        )


def _scatter_directions(ax: Axes, points: _Points, suggestive_y: float, thin: bool) -> None:
    """One rasterized scatter per direction (one colour each: a per-point colour array is what is
    slow with a million points), each thinned on its own below the suggestive line, so that a
    dropped point always lies under a kept marker of its own colour.

    Grey first, then the more numerous direction, then the rarer one on top, so that the rarer
    direction stays visible in the dense bulk.
    """
    groups = [UNDEFINED] + sorted((HARDER_A, HARDER_B), key=lambda code: -int(np.sum(points.direction == code)))
    per_x, per_y = data_per_point(ax)
    cell = np.sqrt(MARKER_AREA) * THIN_CELL_FRACTION
    for code in groups:
        members = np.flatnonzero(points.direction == code)
        if members.size == 0:
            continue
        if thin:
            keep = thin_on_grid(points.x[members], points.y[members], cell * per_x, cell * per_y, always=points.strength[members] >= suggestive_y)
            members = members[keep]
        name, label = _direction_names(code, points.pair)
        ax.scatter(
            points.x[members],
            points.y[members],
            s=MARKER_AREA,
            c=DIRECTION_COLOURS[code] if points.pair is not None else CLASS_COLOURS[0],
            linewidths=0,
            rasterized=True,
            zorder=2,
            label=label,
            gid=f"direction:{name}",
        )


def _direction_names(code: int, pair: tuple[str, str] | None) -> tuple[str, str]:
    """gid suffix and legend label of one direction's points."""
    if pair is None:
        return "none", "_examples"  # one-way table: no direction to show
    return {HARDER_A: ("A", f"harder in {pair[0]}"), HARDER_B: ("B", f"harder in {pair[1]}")}.get(code, ("undefined", "direction undefined"))


def _direction_legend(ax: Axes, pair: tuple[str, str]):
    """Legend of the point colours and of the class summary, in the headroom at the upper right."""
    marker = {"marker": "o", "ls": "none", "markersize": 4.5, "markeredgewidth": 0}
    handles = [
        Line2D([], [], color=HARDER_IN_A_COLOUR, label=f"harder in {pair[0]}", **marker),
        Line2D([], [], color=HARDER_IN_B_COLOUR, label=f"harder in {pair[1]}", **marker),
        Line2D([], [], color=UNDEFINED_DIRECTION_COLOUR, label="direction undefined", **marker),
        Line2D([], [], color=HARDER_IN_A_DARK, lw=SUMMARY_LINEWIDTH, label="class median (share A | B)"),
    ]
    legend = ax.legend(
        handles=handles, loc="upper right", ncol=2, fontsize=LEGEND_FONTSIZE, frameon=True, framealpha=0.85,
        edgecolor="none", borderaxespad=0.3, handlelength=1.4, columnspacing=1.2, borderpad=0.3,
    )  # fmt: skip
    legend.set_gid("direction-legend")
    legend.set_zorder(6)
    return legend


def class_summary(sumstats: pd.DataFrame, score: str = COMBINED, *, ranking: bool = False) -> pd.DataFrame:
    """Per-class summary of one score, as the Manhattan plot draws it.

    Returns
    -------
    DataFrame, one row per class in ``LABEL`` order, columns ``class``, ``n`` (tested examples),
    ``median`` (median −log10 p, or of the ranking with ``ranking``), ``share_harder_in_b`` (of the
    examples with a direction; NaN without a pair or a direction).
    """
    rows = score_rows(sumstats, score)
    ranked = ranking or holds_legacy_ranking(rows, score)
    layout = class_layout(rows)
    return _summarise(_points(rows, layout, False, score if ranked else None), layout)


def _summarise(points: _Points, layout: ClassLayout) -> pd.DataFrame:
    """Class medians of y and each class's share harder under B (see :func:`class_summary`)."""
    n_classes = len(layout.class_names)
    count = np.bincount(points.class_rank, minlength=n_classes)
    n_a = np.bincount(points.class_rank[points.direction == HARDER_A], minlength=n_classes)
    n_b = np.bincount(points.class_rank[points.direction == HARDER_B], minlength=n_classes)
    order = np.argsort(points.class_rank, kind="stable")
    bounds = np.searchsorted(points.class_rank[order], np.arange(n_classes + 1))
    # The median of the signed y in a signed plot: a class harder under B sits below zero.
    medians = [float(np.median(points.y[order[bounds[r] : bounds[r + 1]]])) if count[r] else np.nan for r in range(n_classes)]
    with np.errstate(invalid="ignore", divide="ignore"):
        share_b = np.where(n_a + n_b > 0, n_b / np.maximum(n_a + n_b, 1), np.nan)
    return pd.DataFrame({"class": layout.class_names, "n": count, "median": medians, "share_harder_in_b": share_b})


def _draw_class_summary(ax: Axes, layout: ClassLayout, summary: pd.DataFrame) -> None:
    """A segment across each class band at the class median, its left part in A's colour and its
    right part in B's, in proportion to the class's share harder under each."""
    for rank, row in enumerate(summary.itertuples(index=False)):
        if not row.n or not np.isfinite(row.median):
            continue
        start, end = layout.starts[rank], layout.ends[rank]
        style = {"lw": SUMMARY_LINEWIDTH, "zorder": 4, "solid_capstyle": "butt"}
        if not np.isfinite(row.share_harder_in_b):
            ax.plot([start, end], [row.median] * 2, color="0.15", gid=f"class-summary:{row[0]}:all", **style)
            continue
        split = start + (1.0 - row.share_harder_in_b) * (end - start)
        ax.plot([start, split], [row.median] * 2, color=HARDER_IN_A_DARK, gid=f"class-summary:{row[0]}:A", **style)
        ax.plot([split, end], [row.median] * 2, color=HARDER_IN_B_DARK, gid=f"class-summary:{row[0]}:B", **style)


def _threshold_lines(ax: Axes, bonferroni_y: float, suggestive_y: float, options: _Options) -> None:
    """Solid Bonferroni and dashed suggestive lines, named just outside the right edge."""
    alpha, suggestive = options.alpha, options.suggestive
    sides = (1.0, -1.0) if options.signed else (1.0,)
    for side in sides:
        ax.axhline(side * bonferroni_y, color=THRESHOLD_COLOUR, lw=0.9, ls="-", zorder=3, gid="bonferroni")
        ax.axhline(side * suggestive_y, color=THRESHOLD_COLOUR, lw=0.8, ls=(0, (4, 3)), alpha=0.8, zorder=3, gid="suggestive")
    suggestive_name = "1/n" if suggestive is None else f"{suggestive:g}"
    texts = {"bonferroni": f"Bonferroni\nα = {alpha:g}", "suggestive": f"suggestive\np = {suggestive_name}"}
    # Nudge the two names apart when the lines are closer than the names are tall.
    _, per_y = data_per_point(ax)
    gap_pt = (bonferroni_y - suggestive_y) / per_y
    needed_pt = 2 * 1.2 * LABEL_FONTSIZE + 3
    push_pt = max(0.0, (needed_pt - gap_pt) / 2)
    for side in sides:
        for name, y, nudge in (("bonferroni", bonferroni_y, push_pt), ("suggestive", suggestive_y, -push_pt)):
            ax.annotate(
                texts[name],
                xy=(1.0, side * y),
                xycoords=("axes fraction", "data"),
                xytext=(4, side * nudge),
                textcoords="offset points",
                ha="left",
                va="center",
                fontsize=LABEL_FONTSIZE,
                color=THRESHOLD_COLOUR,
                annotation_clip=False,
                gid=f"{name}-label",
            )


def _axis_labels(ax: Axes, rows: pd.DataFrame, score: str, n_tests: int, options: _Options) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if options.show_class_labels:
        note = f"\n{CLASS_SUMMARY_NOTE}" if options.legend or options.panel else ""
        ax.set_xlabel(f"class (examples in class order){note}", fontsize=9)
    label = RANKING_LABEL if options.ranking else NEG_LOG10_P_LABEL
    if options.signed:
        ax.axhline(0.0, color="0.3", lw=0.6, zorder=2.5)
        # A panel is too short for the directions: the figure title carries them instead.
        ax.set_ylabel(label if options.panel else _signed_ylabel(rows, label), fontsize=9)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{abs(value):g}"))
    else:
        ax.set_ylabel(label, fontsize=9)
    what = " · ranking: mean −log10 p, not a p-value (no threshold)" if options.ranking else ""
    # Two lines: what is drawn, then how many; a long pair name then never runs into λ on the right.
    if options.panel:
        ax.set_title(f"{score} · {n_tests:,} examples tested{what}", fontsize=9, loc="left")
    else:
        ax.set_title(f"{_pair_title(rows, score)}\n{n_tests:,} examples tested{what}", fontsize=10, loc="left")
    if not options.ranking:  # λ describes p-values; a mean of -log10 p has none
        _lambda_title(ax, rows, options)


def _lambda_title(ax: Axes, rows: pd.DataFrame, options: _Options) -> None:
    """λGC of the p-values drawn as the right-hand title, with its relabelling null when recorded.

    Coloured by the display thresholds when there is no null; with one, red only when λ exceeds
    its 95th percentile (more than run-to-run noise), neutral otherwise.
    """
    tested = rows[tested_mask(rows)]
    value = genomic_control_lambda(np.power(10.0, -neg_log10_p(tested)))
    if not np.isfinite(value):
        return
    null = options.null_95
    if null is not None and np.isfinite(null):
        text = f"λGC = {value:.2f} (relabelling null 95%: {null:.2f})"
        colour = inflation_colour(2.0) if value > null else inflation_colour(1.0)
    else:
        text = f"λGC = {value:.2f} (from these p; no relabelling null)"
        colour = inflation_colour(value)
    ax.set_title(text, fontsize=8 if options.panel else 9, loc="right", color=colour)


def _signed_ylabel(rows: pd.DataFrame, label: str = NEG_LOG10_P_LABEL) -> str:
    """y label of a signed plot, read bottom to top: harder under B, then harder under A."""
    arch_a, arch_b = _pair(rows) or ("A", "B")
    return f"harder under {arch_b}  ←  {label}  →  harder under {arch_a}"


def _direction_note(rows: pd.DataFrame) -> str:
    """Which side of a signed plot is harder under which architecture, as one line."""
    arch_a, arch_b = _pair(rows) or ("A", "B")
    return f"up: harder under {arch_a}, down: harder under {arch_b}"


def _pair(rows: pd.DataFrame) -> tuple[str, str] | None:
    """The two architectures of a pair table; None for a table of three or more (one-way)."""
    if {"A", "B"} <= set(rows.columns) and len(rows):
        first = rows.iloc[0]
        return str(first["A"]), str(first["B"])
    return None


def _pair_title(rows: pd.DataFrame, score: str) -> str:
    pair = _pair(rows)
    return f"{pair[0]} vs {pair[1]}: {score}" if pair else score


# ------------------------------------------------------------------------------------------
# Annotations
# ------------------------------------------------------------------------------------------


def _choose_hits(points: _Points, suggestive_y: float, annotate: str, top_k: int | None) -> np.ndarray:
    """Indices into ``points`` of the examples to label, most significant first."""
    k = DEFAULT_TOP_K[annotate] if top_k is None else top_k
    if annotate == "none" or k == 0 or len(points.x) == 0:
        return np.empty(0, dtype=np.int64)
    if annotate == "top":
        # Only the k largest (with ties at the k-th) need sorting; sorting a million floats does not.
        cut = np.partition(points.strength, len(points.strength) - k)[len(points.strength) - k] if k < len(points.strength) else -np.inf
        candidates = np.flatnonzero(points.strength >= cut)
    else:
        candidates = np.flatnonzero(points.strength >= suggestive_y)
    # Most significant first; equal values by example id, so the choice is reproducible.
    ranked = candidates[np.lexsort((points.example_ids[candidates], -points.strength[candidates]))]
    if annotate == "top":
        return ranked[:k]
    # Place of each hit within its class: a stable sort by class keeps the significance order.
    by_class = np.argsort(points.class_rank[ranked], kind="stable")
    sorted_classes = points.class_rank[ranked][by_class]
    within = np.arange(len(by_class)) - np.searchsorted(sorted_classes, sorted_classes, side="left")
    order_in_class = np.empty(len(ranked), dtype=np.int64)
    order_in_class[by_class] = within
    return ranked[order_in_class < k]


def _annotate_hits(
    ax: Axes, points: _Points, hits: np.ndarray, pictures: np.ndarray | None, line_ys: list[float], legend=None
) -> None:
    """Label the hits with their id (or a thumbnail and id), placed so that no two labels overlap.

    Labels also keep off the threshold lines and the legend, so that neither hides a label.
    """
    if len(hits) == 0:
        return
    to_points = 72.0 / ax.figure.dpi
    anchors = ax.transData.transform(np.column_stack([points.x[hits], points.y[hits]])) * to_points
    texts = [str(int(points.example_ids[i])) for i in hits]
    sizes = np.array([_box_size(text, pictures is not None) for text in texts])
    box = ax.get_window_extent().get_points() * to_points
    line_heights = ax.transData.transform(np.column_stack([np.zeros(len(line_ys)), line_ys]))[:, 1] * to_points
    lines = [np.array([box[0][0], y - 1.0, box[1][0], y + 1.0]) for y in line_heights]
    if legend is not None:
        lines.append(legend.get_window_extent().get_points().ravel() * to_points)
    downward = points.y[hits] < 0
    offsets = place_labels(anchors, sizes, box, downward, obstacles=lines)
    for hit, text, size, offset in zip(hits, texts, sizes, offsets):
        if offset is None:
            continue
        xy = (points.x[hit], points.y[hit])
        # A leader line only when the label is not right next to its point.
        distance = max(abs(offset[0]) - size[0] / 2, abs(offset[1]) - size[1] / 2)
        far = distance > LABEL_GAP_POINTS + 1.0
        if pictures is not None:
            _thumbnail(ax, xy, offset, text, pictures, int(points.example_ids[hit]))
        else:
            ax.annotate(
                text,
                xy=xy,
                xytext=offset,
                textcoords="offset points",
                ha="center",
                va="center",
                fontsize=LABEL_FONTSIZE,
                zorder=5,
                bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.75},
                arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.35", "shrinkA": 0, "shrinkB": 1.5} if far else None,
                gid=f"hit:{text}",
            )


def _box_size(text: str, thumbnail: bool) -> tuple[float, float]:
    """Width and height in points of a label (text with its padding, or thumbnail above text)."""
    width, height = text_size_points(text, LABEL_FONTSIZE)
    if thumbnail:
        return max(width, THUMBNAIL_POINTS) + 6.0, THUMBNAIL_POINTS + height + 6.0
    return width + 2.0, height + 1.0


def _thumbnail(ax: Axes, xy: tuple[float, float], offset: tuple[float, float], text: str, pictures: np.ndarray, example_id: int) -> None:
    tile = image_tile(pictures, example_id)
    zoom = THUMBNAIL_POINTS / max(tile.shape[:2])
    content = VPacker(
        children=[OffsetImage(tile, zoom=zoom, interpolation="nearest"), TextArea(text, textprops={"fontsize": LABEL_FONTSIZE})],
        align="center",
        pad=0,
        sep=1,
    )
    box = AnnotationBbox(
        content,
        xy,
        xybox=offset,
        xycoords="data",
        boxcoords="offset points",
        pad=0.15,
        frameon=True,
        bboxprops={"ec": "0.5", "lw": 0.5},
        arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.35", "shrinkA": 0, "shrinkB": 1.5},
        zorder=5,
    )
    box.set_gid(f"hit:{text}")
    ax.add_artist(box)


def place_labels(
    anchors: np.ndarray,
    sizes: np.ndarray,
    bounds: np.ndarray,
    downward: np.ndarray,
    gap: float = LABEL_GAP_POINTS,
    obstacles: Sequence[np.ndarray] = (),
) -> list[tuple[float, float] | None]:
    """Greedy placement of label boxes next to their points, without overlaps or clipping.

    Labels are placed in the given order (most important first). Each tries positions above its
    point (below, for ``downward`` points of a signed plot), then diagonally, beside, on the other
    side, and stacked further out; it takes the first position that stays inside ``bounds`` and overlaps neither a
    placed label nor another labelled point. A label with no such position is left out.

    Parameters
    ----------
    anchors : array (m, 2)
        Points to label, in points (1/72 inch) in display space.
    sizes : array (m, 2)
        Width and height of each label box, in points.
    bounds : array (2, 2)
        Lower-left and upper-right corners of the area labels must stay in.
    downward : bool array (m,)
        Place below rather than above.
    gap : float
        Space between a point and its label, in points.
    obstacles : sequence of arrays (4,)
        Further boxes ``(x0, y0, x1, y1)`` that labels must not cover (e.g. threshold lines).

    Returns
    -------
    list of (dx, dy) offsets of each box centre from its anchor, or None where it did not fit.
    """
    placed: list[np.ndarray] = [np.asarray(box, dtype=np.float64) for box in obstacles]
    point_boxes = [np.array([x - 1.5, y - 1.5, x + 1.5, y + 1.5]) for x, y in anchors]
    offsets: list[tuple[float, float] | None] = []
    for index, ((x, y), (width, height), down) in enumerate(zip(anchors, sizes, downward)):
        sign = -1.0 if down else 1.0
        chosen = None
        for dx, dy in _candidate_offsets(width, height, gap):
            centre_x, centre_y = x + dx, y + sign * dy
            candidate = np.array([centre_x - width / 2, centre_y - height / 2, centre_x + width / 2, centre_y + height / 2])
            if not _inside(candidate, bounds):
                continue
            if any(_overlap(candidate, other) for other in placed):
                continue
            if any(_overlap(candidate, point_boxes[j]) for j in range(len(point_boxes)) if j != index):
                continue
            chosen = (float(dx), float(sign * dy))
            placed.append(candidate)
            break
        offsets.append(chosen)
    return offsets


def _candidate_offsets(width: float, height: float, gap: float) -> list[tuple[float, float]]:
    above = gap + height / 2
    beside = gap + width / 2
    candidates = [(0.0, above), (beside, above), (-beside, above), (beside, 0.0), (-beside, 0.0)]
    candidates += [(0.0, -above), (beside, -above), (-beside, -above)]
    for level in range(1, 6):
        lift = above + level * (height + 1.0)
        candidates += [(0.0, lift), (beside, lift), (-beside, lift)]
    return candidates


def _inside(box: np.ndarray, bounds: np.ndarray) -> bool:
    return box[0] >= bounds[0][0] and box[1] >= bounds[0][1] and box[2] <= bounds[1][0] and box[3] <= bounds[1][1]


def _overlap(first: np.ndarray, second: np.ndarray) -> bool:
    return first[0] < second[2] and second[0] < first[2] and first[1] < second[3] and second[1] < first[3]
