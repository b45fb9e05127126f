"""QQ plots of p-values: observed against expected −log10 p, with a 95% band and λGC.

Under the null hypothesis the ``n`` p-values of a score are uniform, and the k-th smallest follows
Beta(k, n − k + 1). Its mean k / (n + 1) gives the expected value and its 2.5% and 97.5% quantiles
give the pointwise band. Points above the band that leave the diagonal only at the top are
associations; a whole curve lifted off the diagonal is inflation, measured by the genomic control
factor λGC = median(χ²₁ quantile of p) / median(χ²₁) (1 without inflation).

With replicate runs, every example of a run shares the run's luck, so the p-values of one study
are correlated and λGC swings widely between studies in which nothing differs (0.4 to 4.4 with
8 v 8 runs): a curve off the diagonal is not by itself a global difference. Whether it is more
than run-to-run noise is said by λ's relabelling null, in the association's ``.log``
(:mod:`gwas_models.analysis.genomic_control`). The colours of λ here are display only.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from scipy import stats

from gwas_models.analysis.multitest import genomic_control_lambda
from gwas_models.errors import InputError
from gwas_models.formats.sumstats_schema import COMBINED_SCORES, LAMBDA_WARN_ABOVE, SEPARATED
from gwas_models.plots._style import (
    BAND_COLOUR,
    NEG_LOG10_P_LABEL,
    NEUTRAL_TEXT_COLOUR,
    as_text,
    available_scores,
    data_per_point,
    holds_legacy_ranking,
    inflation_colour,
    neg_log10_p,
    new_axes,
    require_columns,
    score_rows,
    sync_layout,
    tested_mask,
    thin_on_grid,
)

QQ_COLUMNS = ("SCORE", "NEG_LOG10_P")
MARKER_AREA = 6.0
THIN_CELL_FRACTION = 0.25
BAND_POINTS = 400
#: Curve colours: tab10, then the light shades of tab20 (a score set has 11 built-in names plus
#: variants, so ten colours made ``loss`` and the 11th score share one). Past these, the marker
#: shape changes too (:func:`curve_style`), so every curve stays apart.
CURVE_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)  # fmt: skip
CURVE_MARKERS = ("o", "s", "^", "D")
LEGEND_FONTSIZE = 7.5
LEGEND_ROWS_PER_COLUMN = 18  # beyond this the legend outside the axes takes a second columnLN10 = np.log(10.0)


def curve_style(index: int) -> tuple[str, str]:
    """Colour and marker of the ``index``-th curve: distinct for the first 80 curves."""
    colour = CURVE_COLOURS[index % len(CURVE_COLOURS)]
    marker = CURVE_MARKERS[(index // len(CURVE_COLOURS)) % len(CURVE_MARKERS)]
    return colour, marker


def qq_figsize(n_curves: int = 12) -> tuple[float, float]:
    """A figure size with a square-ish plot and room on the right for the legend."""
    return (8.0 if n_curves <= LEGEND_ROWS_PER_COLUMN else 10.0), 5.5


def lambda_gc(neg_log10_p: np.ndarray) -> float:
    """Genomic control inflation factor of p-values given as −log10 p.

    ``median(chi2.isf(p, 1)) / chi2.ppf(0.5, 1)``, by
    :func:`~gwas_models.analysis.multitest.genomic_control_lambda`. p is recovered as ``10 ** -x``:
    p-values below 1e-308 become 0, i.e. infinitely large statistics, which leaves the median
    unchanged unless half the tests are that extreme. NaN for no finite values.
    """
    values = np.asarray(neg_log10_p, dtype=np.float64)
    return genomic_control_lambda(np.power(10.0, -values[np.isfinite(values)]))


def expected_neg_log10_p(n: int) -> np.ndarray:
    """Expected −log10 p of the sorted p-values (smallest first): −log10(k / (n + 1)), k = 1..n."""
    return np.log10(n + 1.0) - np.log10(np.arange(1, n + 1, dtype=np.float64))


def confidence_band(n: int, level: float = 0.95, n_points: int = BAND_POINTS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pointwise band of the k-th smallest of ``n`` uniform p-values, on the −log10 scale.

    Parameters
    ----------
    n : int
        Number of p-values.
    level : float
        Coverage of the band.
    n_points : int
        Ranks at which it is computed: log-spaced, i.e. evenly spaced in expected −log10 p,
        always including ranks 1 and n.

    Returns
    -------
    (expected, lower, upper) : arrays
        Expected −log10 p, and the band's lower and upper −log10 p, at the chosen ranks (largest
        expected value first).
    """
    if n < 1:
        empty = np.empty(0)
        return empty, empty, empty
    ranks = np.unique(np.round(np.geomspace(1, n, num=min(n, n_points))).astype(np.int64))
    tail = (1.0 - level) / 2.0
    # beta.isf/ppf of the k-th order statistic; −log10 of the small p end is the upper edge.
    upper = -np.log10(stats.beta.ppf(tail, ranks, n - ranks + 1))
    lower = -np.log10(stats.beta.isf(tail, ranks, n - ranks + 1))
    expected = np.log10(n + 1.0) - np.log10(ranks)
    return expected, lower, upper


def qq(
    sumstats: pd.DataFrame,
    score: str | Sequence[str] | None = None,
    *,
    level: float = 0.95,
    thin: bool = True,
    lambda_null: Mapping[str, float] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Draw a QQ plot: one curve per score, the null band, and λGC of each curve in the legend.

    Parameters
    ----------
    sumstats : DataFrame
        Summary statistics with ``SCORE`` and ``NEG_LOG10_P`` (and ``ERRCODE``: failed tests are
        left out).
    score : str or sequence of str, optional
        Score(s) to draw. Default: every single score, or the combined evidence when nothing else
        is there. The combined rows' p (the Cauchy combination over scores) may be drawn by
        naming them; not their ranking, the mean −log10 p, which is no p-value (the combined
        rows of tables written before ``MEAN_NEG_LOG10_P`` held that mean, and are refused).
    level : float
        Coverage of the band, computed for the largest number of tests among the curves.
    thin : bool
        Drop points hidden under an identical marker of the same curve (the bulk near the origin
        of a million tests); the tail is unaffected.
    lambda_null : mapping, optional
        95th percentile of each score's λGC relabelling null (the association records it), shown
        in the legend beside λGC.
    ax : Axes, optional
        Where to draw; a new figure otherwise.

    Returns
    -------
    Axes
        Curves are scatter collections labelled with their score (gid ``qq:<score>``), the band is
        a ``fill_between`` with gid ``band``, and the legend (outside the axes, on the right) text
        of each curve reads ``<score>  λGC = …`` (plus ``, null 95%: …`` when known), coloured
        orange above 1.1 and red above 1.25 without a null; with one, red when λ exceeds it.
    """
    require_columns(sumstats, QQ_COLUMNS, "a QQ plot")
    if not 0.0 < level < 1.0:
        raise InputError(f"level must lie strictly between 0 and 1, got {level}", parameter="level")
    curves, statistics = _curves(sumstats, score)
    ax = new_axes(ax, qq_figsize(len(curves)))
    largest_n = max(len(values) for values in curves.values())
    top_expected = np.log10(largest_n + 1.0)
    top_observed = max([float(values.max()) for values in curves.values() if len(values)] + [top_expected])
    ax.set_xlim(0.0, top_expected * 1.04)
    ax.set_ylim(0.0, top_observed * 1.06)
    ax.set_xlabel(f"expected {NEG_LOG10_P_LABEL}", fontsize=9)
    ax.set_ylabel(f"observed {NEG_LOG10_P_LABEL}", fontsize=9)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if {"A", "B"} <= set(sumstats.columns) and len(sumstats):
        ax.set_title(f"{sumstats['A'].iloc[0]} vs {sumstats['B'].iloc[0]}", fontsize=10, loc="left")
    sync_layout(ax.figure)
    _band(ax, largest_n, level)
    ax.plot([0.0, top_expected * 1.04], [0.0, top_expected * 1.04], color="0.35", lw=0.8, ls=(0, (4, 3)), zorder=2, gid="diagonal")
    inflation = {}
    for index, (name, values) in enumerate(curves.items()):
        inflation[name] = lambda_gc(statistics[name])
        _curve(ax, name, values, curve_style(index), thin)
    _legend(ax, inflation, dict(lambda_null or {}))
    return ax


def _curves(sumstats: pd.DataFrame, score: str | Sequence[str] | None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """−log10 p of the tested rows of each score to draw, sorted largest first; and, for λGC, of
    the rows that have a test statistic (not ``SEPARATED``, whose p is an exact permutation p), from
    Welch's t where ``P`` is a permutation p (``EMP1``), as the association computes λ."""
    if score is None:
        names = available_scores(sumstats)
        chosen = [name for name in names if name not in COMBINED_SCORES] or names
    elif isinstance(score, str):
        chosen = [score]
    else:
        chosen = list(score)
    if not chosen:
        raise InputError("the summary statistics hold no scores to draw")
    curves, statistics = {}, {}
    for name in chosen:
        rows = score_rows(sumstats, name)
        if holds_legacy_ranking(rows, name):
            raise InputError(
                f"score {name!r} of this table holds the mean -log10 p over scores (written before the Cauchy "
                "combination p): a ranking, not p-values, so it has no QQ plot"
            )
        values = neg_log10_p(rows[tested_mask(rows)])
        if values.size == 0:
            raise InputError(f"score {name!r} has no tested examples (every row has an ERRCODE)")
        curves[name] = np.sort(values)[::-1]
        with_statistic = rows[tested_mask(rows)]
        if "ERRCODE" in with_statistic.columns:
            with_statistic = with_statistic[as_text(with_statistic["ERRCODE"]).to_numpy() != SEPARATED]
        statistics[name] = neg_log10_p(with_statistic)
        if {"EMP1", "T_STAT", "DF"} <= set(with_statistic.columns) and name not in COMBINED_SCORES:
            # A permutation table's P is EMP1; its λGC is of Welch's t, as the association reports it.
            t_stat = pd.to_numeric(with_statistic["T_STAT"], errors="coerce").to_numpy(dtype=np.float64)
            df = pd.to_numeric(with_statistic["DF"], errors="coerce").to_numpy(dtype=np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                statistics[name] = -stats.t.logsf(np.abs(t_stat), df) / np.log(10.0) - np.log10(2.0)
    return curves, statistics


def _band(ax: Axes, n: int, level: float) -> None:
    expected, lower, upper = confidence_band(n, level)
    ax.fill_between(expected, lower, upper, color=BAND_COLOUR, alpha=0.55, linewidth=0, zorder=1, gid="band", label=f"{level:.0%} band (n = {n:,})")


def _curve(ax: Axes, name: str, observed: np.ndarray, style: tuple[str, str], thin: bool) -> None:
    expected = expected_neg_log10_p(len(observed))
    if thin:
        per_x, per_y = data_per_point(ax)
        cell = np.sqrt(MARKER_AREA) * THIN_CELL_FRACTION
        # The few most extreme points are always kept, whatever their spacing.
        always = np.zeros(len(observed), dtype=bool)
        always[: min(len(observed), 1000)] = True
        keep = thin_on_grid(expected, observed, cell * per_x, cell * per_y, always)
    else:
        keep = slice(None)
    colour, marker = style
    ax.scatter(expected[keep], observed[keep], s=MARKER_AREA, c=colour, marker=marker, linewidths=0, rasterized=True, zorder=3, label=name, gid=f"qq:{name}")


def _legend(ax: Axes, inflation: dict[str, float], nulls: dict[str, float]) -> None:
    """Legend outside the axes on the right (inside, it hid the upper left of the curves): entries
    ``score  λGC = x.xx`` with the null's 95th percentile when known, coloured by inflation."""
    handles, labels = ax.get_legend_handles_labels()
    relabelled = [_legend_label(label, inflation[label], nulls.get(label)) if label in inflation else label for label in labels]
    legend = ax.legend(
        handles, relabelled, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=LEGEND_FONTSIZE,
        frameon=False, markerscale=2.0, handletextpad=0.3, labelspacing=0.35,
        ncol=1 if len(labels) <= LEGEND_ROWS_PER_COLUMN else 2,
    )  # fmt: skip
    for text, label in zip(legend.get_texts(), labels):
        if label in inflation:
            colour = _lambda_colour(inflation[label], nulls.get(label))
            text.set_color(colour)
            if colour != NEUTRAL_TEXT_COLOUR:
                text.set_fontweight("bold")
        text.set_gid(f"legend:{label}")
    worst = max(inflation.values())
    if worst > LAMBDA_WARN_ABOVE:
        # Say what the colour means, and what it does not: with replicate runs λ swings between
        # studies without any difference, so only its relabelling null (in the .log) tells.
        # Under the legend, outside the axes: inside, it ran over the curves' lower end.
        ax.text(
            1.02,
            0.0,
            f"λGC > {LAMBDA_WARN_ABOVE:g}: p-values inflated overall.\nRuns share their seed's luck, so compare\n"
            "λ with its relabelling null (null 95%, and\nthe .log) before reading a global difference.",
            transform=ax.transAxes,
            ha="left",
            va="bottom",
            fontsize=7,
            color=inflation_colour(worst),
            gid="inflation-note",
        )


def _legend_label(score: str, value: float, null_95: float | None) -> str:
    if null_95 is not None and np.isfinite(null_95):
        return f"{score}  λGC = {value:.2f} (null 95%: {null_95:.2f})"
    return f"{score}  λGC = {value:.3f}"


def _lambda_colour(value: float, null_95: float | None) -> str:
    """Display thresholds without a null; with one, strong only when λ exceeds its 95th percentile
    (more than run-to-run noise), neutral otherwise."""
    if null_95 is not None and np.isfinite(null_95):
        return inflation_colour(2.0) if value > null_95 else NEUTRAL_TEXT_COLOUR
    return inflation_colour(value)
