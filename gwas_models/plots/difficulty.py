"""Figures of the difficulty analyses (paper Figures 2–5), from the results of
:mod:`gwas_models.analysis.difficulty`.

Single-panel functions take ``ax=None`` and return the Axes (a new pyplot figure when ``ax`` is
None, as the other plots do). Multi-panel functions take ``fig=None`` and return the Figure; when
``fig`` is None they create a bare :class:`~matplotlib.figure.Figure` sized to the content, not
registered with pyplot, so scripts and the command line leave no global state behind and need no
interactive backend (notebooks still display a returned Figure). Nothing here calls ``show()``.
"""

from __future__ import annotations

import textwrap

import math
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from gwas_models.analysis.difficulty import TIE_HEAVY_FRACTION, ScoreCorrelations, ScorePca
from gwas_models.plots._style import BAND_COLOUR, CLASS_COLOURS, new_axes

LINE_COLOUR = CLASS_COLOURS[0]
PANEL_WIDTH = 3.3
PANEL_HEIGHT = 2.6
MAX_ANNOTATED_CELLS = 14
"""Heatmaps with at most this many rows get the value written in each cell."""
STABILITY_PANELS = (
    ("rank_change_median", "median rank change"),
    ("rank_change_q95", "95th percentile rank change"),
    ("split_change", "examples changing 50% split"),
)


def _bare_figure(fig: Figure | None, size: tuple[float, float]) -> Figure:
    if fig is not None:
        return fig
    return Figure(figsize=size, layout="constrained")


LINE_STYLES = ("-", "--", ":")


def score_styles(scores: Sequence[str]) -> dict[str, dict[str, object]]:
    """Line colour and style for each score, distinct for up to 30 scores.

    The ten tab10 colours are reused with a dashed, then dotted line beyond ten scores (tab20's
    paired light shades are too easy to confuse in a legend).
    """
    palette = colormaps["tab10"]
    return {
        name: {"color": palette(i % 10), "linestyle": LINE_STYLES[(i // 10) % len(LINE_STYLES)]}
        for i, name in enumerate(scores)
    }


def _label(score: str) -> str:
    return score.replace("_", " ")


def _hide_unused(axes: np.ndarray, used: int) -> None:
    for ax in axes.ravel()[used:]:
        ax.set_visible(False)


# ------------------------------------------------------------------------------------------
# Variance (Figure 2)
# ------------------------------------------------------------------------------------------


def plot_variance_panel(table: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """The per-run spread of one score against the difficulty rank of the examples' means.

    Parameters
    ----------
    table : DataFrame
        Rows of one score from :func:`~gwas_models.analysis.difficulty.score_variance`.
    ax : Axes, optional

    Returns
    -------
    Axes
    """
    ax = new_axes(ax, (PANEL_WIDTH + 0.6, PANEL_HEIGHT + 0.4))
    x = table["rank_fraction"].to_numpy(dtype=np.float64)
    interval = float(table["interval"].iloc[0]) if len(table) else 0.9
    ax.fill_between(
        x,
        table["lower"].to_numpy(dtype=np.float64),
        table["upper"].to_numpy(dtype=np.float64),
        color=BAND_COLOUR,
        linewidth=0,
        label=f"{interval:.0%} of runs × examples",
    )
    ax.plot(x, table["median"].to_numpy(dtype=np.float64), color=LINE_COLOUR, linewidth=1.5, label="median")
    ax.set_xlim(0.0, 1.0)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.yaxis.set_major_locator(MaxNLocator(5))
    ax.tick_params(labelsize=8)
    if len(table):
        ax.set_title(_label(str(table["score"].iloc[0])), fontsize=10)
    return ax


def plot_variance(table: pd.DataFrame, fig: Figure | None = None, max_columns: int = 4) -> Figure:
    """Figure 2: one panel per score, the band of per-run scores along the difficulty ranking.

    Parameters
    ----------
    table : DataFrame
        Output of :func:`~gwas_models.analysis.difficulty.score_variance`.
    fig : Figure, optional
    max_columns : int
        Panels per row.

    Returns
    -------
    Figure
    """
    scores = list(dict.fromkeys(table["score"]))
    columns = max(1, min(max_columns, len(scores)))
    rows = max(1, math.ceil(len(scores) / columns))
    fig = _bare_figure(fig, (PANEL_WIDTH * columns, PANEL_HEIGHT * rows + 0.7))
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False))
    for ax, score in zip(axes.ravel(), scores):
        plot_variance_panel(table[table["score"] == score], ax=ax)
    _hide_unused(axes, len(scores))
    for column in range(columns):
        # The lowest panel drawn in each column carries the x label (the last row may be short).
        lowest = axes[(len(scores) - 1 - column) // columns, column] if column < len(scores) else None
        if lowest is not None:
            lowest.set_xlabel("rank of mean (easiest → hardest)", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("score in one run", fontsize=8)
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    return fig


# ------------------------------------------------------------------------------------------
# Stability (Figure 3)
# ------------------------------------------------------------------------------------------


def plot_stability_panel(
    table: pd.DataFrame,
    column: str = "rank_change_median",
    ax: Axes | None = None,
    styles: dict[str, dict[str, object]] | None = None,
) -> Axes:
    """One stability statistic against the number of runs averaged, one line per score.

    Parameters
    ----------
    table : DataFrame
        Output of :func:`~gwas_models.analysis.difficulty.score_stability`.
    column : str
        ``rank_change_median``, ``rank_change_q95`` or ``split_change``.
    ax : Axes, optional
    styles : dict of score to line properties, optional
        As :func:`score_styles` returns (default: from the scores in ``table``).

    Returns
    -------
    Axes
    """
    ax = new_axes(ax, (PANEL_WIDTH + 0.6, PANEL_HEIGHT + 0.4))
    scores = list(dict.fromkeys(table["score"]))
    styles = styles or score_styles(scores)
    for score in scores:
        rows = table[table["score"] == score].sort_values("n_runs")
        ax.plot(
            rows["n_runs"], rows[column], marker="o", markersize=3, linewidth=1.3, label=_label(score), **styles[score]
        )
    ax.set_ylim(bottom=0.0)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0 if table[column].max() >= 0.05 else 1))
    ax.xaxis.set_major_locator(MaxNLocator(6, integer=True))
    ax.set_xlabel("runs averaged", fontsize=8)
    ax.tick_params(labelsize=8)
    titles = dict(STABILITY_PANELS)
    ax.set_title(titles.get(column, column), fontsize=10)
    return ax


def plot_stability(table: pd.DataFrame, fig: Figure | None = None) -> Figure:
    """Figure 3: median and 95th percentile rank change, and split change, against runs averaged.

    Parameters
    ----------
    table : DataFrame
        Output of :func:`~gwas_models.analysis.difficulty.score_stability`.
    fig : Figure, optional

    Returns
    -------
    Figure
    """
    scores = list(dict.fromkeys(table["score"]))
    fig = _bare_figure(fig, (3 * PANEL_WIDTH + 1.6, PANEL_HEIGHT + 0.5))
    axes = fig.subplots(1, len(STABILITY_PANELS))
    styles = score_styles(scores)
    for ax, (column, _) in zip(axes, STABILITY_PANELS):
        plot_stability_panel(table, column, ax=ax, styles=styles)
    axes[0].set_ylabel("fraction of the dataset", fontsize=8)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=8, frameon=False)
    note = tie_note(table)
    if note:
        # A figure-level label, so that the layout keeps room for it under the panels.
        fig.supxlabel(textwrap.fill(note, 150), fontsize=7, color="#555555", x=0.01, ha="left")
    return fig


def tie_note(table: pd.DataFrame) -> str:
    """A caption for tie-heavy scores: what their curves mean ("" when no score is tie-heavy)."""
    if "tied_fraction" not in table:
        return ""
    first = table.sort_values("n_runs").groupby("score", sort=False).first()
    heavy = first[first["tied_fraction"] >= TIE_HEAVY_FRACTION]
    if heavy.empty:
        return ""
    shares = ", ".join(f"{_label(score)} {fraction:.0%}" for score, fraction in heavy["tied_fraction"].items())
    return (
        f"Tied examples in one run: {shares}. Ties are broken at random: a tied block is unordered, so "
        "these curves start high and fall as averaging runs breaks the ties."
    )


# ------------------------------------------------------------------------------------------
# Correlation (Figure 4)
# ------------------------------------------------------------------------------------------


def plot_correlation_heatmap(
    matrix: pd.DataFrame,
    title: str = "",
    ax: Axes | None = None,
    symmetric_range: float | None = None,
) -> Axes:
    """A heatmap of a square correlation table, with values in the cells when it is small.

    Parameters
    ----------
    matrix : DataFrame
        Rows and columns labelled by score.
    title : str
    ax : Axes, optional
    symmetric_range : float, optional
        Colour scale from −range to +range (default: the largest absolute finite value, at least
        0.05, so that small differences stay visible without exaggerating noise).

    Returns
    -------
    Axes
    """
    size = 1.2 + 0.45 * max(len(matrix.columns), 2)
    ax = new_axes(ax, (size + 1.0, size))
    values = matrix.to_numpy(dtype=np.float64)
    finite = values[np.isfinite(values)]
    largest = float(np.abs(finite).max()) if finite.size else 1.0
    limit = symmetric_range if symmetric_range is not None else max(largest, 0.05)
    image = ax.imshow(np.ma.masked_invalid(values), cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="equal")
    ax.set_xticks(
        range(len(matrix.columns)),
        [_label(c) for c in matrix.columns],
        rotation=45,
        ha="right",
        rotation_mode="anchor",
        fontsize=8,
    )
    ax.set_yticks(range(len(matrix.index)), [_label(r) for r in matrix.index], fontsize=8)
    ax.tick_params(length=0)
    if len(matrix.index) <= MAX_ANNOTATED_CELLS:
        _annotate_cells(ax, values, limit)
    ax.set_title(title, fontsize=10)
    ax.figure.colorbar(image, ax=ax, shrink=0.8).ax.tick_params(labelsize=7)
    return ax


def _annotate_cells(ax: Axes, values: np.ndarray, limit: float) -> None:
    fontsize = 7 if max(values.shape) <= 8 else 6
    for (row, column), value in np.ndenumerate(values):
        if not np.isfinite(value):
            continue
        # White text on the dark ends of the colour scale, black in the pale middle.
        colour = "white" if abs(value) > 0.6 * limit else "black"
        text = f"{value:.2f}" if round(value, 2) != 0 else "0.00"  # no "-0.00"
        ax.text(column, row, text, ha="center", va="center", fontsize=fontsize, color=colour)


def plot_correlations(result: ScoreCorrelations, fig: Figure | None = None) -> Figure:
    """Figure 4: mean-to-mean correlations, and the changes mean to run and run to run.

    Parameters
    ----------
    result : ScoreCorrelations
    fig : Figure, optional

    Returns
    -------
    Figure
    """
    n_scores = len(result.mean_to_mean)
    side = 1.6 + 0.36 * max(n_scores, 3)
    # One above the other: side by side, three heatmaps of a dozen scores make a figure so wide that
    # a page (the report) shrinks its cell values past reading.
    fig = _bare_figure(fig, (side + 1.4, 3 * (side + 0.5)))
    axes = fig.subplots(3, 1)
    plot_correlation_heatmap(result.mean_to_mean, "mean to mean\ncorr(E[X], E[Y])", ax=axes[0], symmetric_range=1.0)
    plot_correlation_heatmap(
        result.mean_to_run_change, "mean to run − mean to mean\nE_Y[corr(E[X], Y)] − corr(E[X], E[Y])", ax=axes[1]
    )
    plot_correlation_heatmap(
        result.run_to_run_change, "run to run − mean to run\nE[corr(X, Y)] − E_Y[corr(E[X], Y)]", ax=axes[2]
    )
    for ax in axes[1:]:
        ax.set_xlabel("Y: single run", fontsize=8)
        ax.set_ylabel("X: averaged over runs", fontsize=8)
    fig.suptitle(f"Spearman correlation, oriented to difficulty ({result.n_runs} runs)", fontsize=10)
    return fig


# ------------------------------------------------------------------------------------------
# Principal components (Figure 5)
# ------------------------------------------------------------------------------------------


def plot_explained_variance(result: ScorePca, ax: Axes | None = None) -> Axes:
    """Bars of the variance ratio each component explains, with the cumulative ratio as a line."""
    ax = new_axes(ax, (PANEL_WIDTH + 0.6, PANEL_HEIGHT + 0.4))
    ratios = result.explained_variance_ratio
    positions = np.arange(1, len(ratios) + 1)
    ax.bar(positions, ratios, color=LINE_COLOUR, label="component")
    ax.plot(positions, np.cumsum(ratios), color="black", marker="o", markersize=3, linewidth=1, label="cumulative")
    ax.set_ylim(0.0, 1.08)
    ax.set_xticks(positions, [f"PC{i}" for i in positions], fontsize=8, rotation=45 if len(ratios) > 6 else 0)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.tick_params(labelsize=8)
    ax.set_title(f"explained variance (PC1: {ratios[0]:.0%})", fontsize=10)
    ax.legend(fontsize=7, frameon=False, loc="center right")
    return ax


def plot_pc1_stability(result: ScorePca, ax: Axes | None = None) -> Axes:
    """Rank and split changes of PC1 used as a score, against the number of runs averaged."""
    ax = new_axes(ax, (PANEL_WIDTH + 0.6, PANEL_HEIGHT + 0.4))
    table = result.stability
    if table.empty:
        message = "PC1 stability needs\nat least 2 runs"
        ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, fontsize=9)
        ax.set_axis_off()
        return ax
    styles = score_styles([label for _, label in STABILITY_PANELS])
    for column, label in STABILITY_PANELS:
        ax.plot(table["n_runs"], table[column], marker="o", markersize=3, linewidth=1.3, label=label, **styles[label])
    ax.set_ylim(bottom=0.0)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.xaxis.set_major_locator(MaxNLocator(6, integer=True))
    ax.set_xlabel("runs averaged", fontsize=8)
    ax.set_ylabel("fraction of the dataset", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.set_title("PC1 as a score", fontsize=10)
    ax.legend(fontsize=7, frameon=False)
    return ax


def plot_pca(result: ScorePca, fig: Figure | None = None) -> Figure:
    """Figure 5: explained variance, loadings of each score, and the stability of PC1.

    Parameters
    ----------
    result : ScorePca
    fig : Figure, optional

    Returns
    -------
    Figure
    """
    n_scores = len(result.scores)
    height = max(PANEL_HEIGHT + 0.6, 1.4 + 0.3 * n_scores)
    fig = _bare_figure(fig, (3 * PANEL_WIDTH + 2.2, height))
    axes = fig.subplots(1, 3, width_ratios=[1.0, 1.15, 1.0])
    plot_explained_variance(result, ax=axes[0])
    plot_correlation_heatmap(result.loadings, "loadings", ax=axes[1], symmetric_range=1.0)
    if len(result.loadings.columns) <= 8:
        axes[1].set_xticklabels(result.loadings.columns, rotation=0, ha="center", fontsize=8)
    plot_pc1_stability(result, ax=axes[2])
    return fig
