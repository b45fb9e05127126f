"""How well K marker examples identify the architecture: the paper's Figure 1 (right).

One group of bars per score, one bar per marker selection (top, random, bottom), the bar height
the mean held-out accuracy, the error bar the 2.5–97.5 percentile interval over random
train/held-out splits, and a dashed line at chance (always guessing the most frequent held-out
architecture). Input is the evaluation summary of
:func:`gwas_models.analysis.fingerprint_evaluation.evaluate_fingerprint` or ``evaluate_scores``
(or its TSV).

When several scores were evaluated, the summary's row of the score chosen inside each split
(``SCORE =`` :data:`~gwas_models.formats.fingerprint_file.SCORE_CHOSEN_PER_SPLIT`) comes first,
hatched and set apart by a line: it is the accuracy of the whole procedure, choice included. The
per-score bars after it are descriptive; the tallest of them was picked by looking at them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from gwas_models.errors import InputError
from gwas_models.formats.fingerprint_file import SCORE_CHOSEN_PER_SPLIT
from gwas_models.plots._style import new_axes, require_columns

#: Bar order inside a group and colours: strongest markers dark, baseline mid, weakest light, so the
#: order reads in greyscale too.
SELECTION_STYLE: dict[str, dict[str, str]] = {
    "top": {"color": "#2c5d8a", "label": "top {k}"},
    "random": {"color": "#8fb8de", "label": "random {k}"},
    "bottom": {"color": "#d9d9d9", "label": "bottom {k}"},
}
CHANCE_COLOUR = "#b03a2e"
PLOT_COLUMNS = ("SCORE", "SELECT", "K", "MEAN_ACCURACY", "LOW", "HIGH", "CHANCE")
GROUP_WIDTH = 0.8  # share of a score's slot that its bars fill
#: Tick label and hatch of the row of the score chosen inside each split.
CHOSEN_LABEL = "score chosen\ninside each split"
CHOSEN_HATCH = "///"


def fingerprint_figsize(n_scores: int) -> tuple[float, float]:
    """Figure size (inches) that leaves every score group about 0.75 inch."""
    return (max(5.5, 1.6 + 0.75 * n_scores), 3.8)


def fingerprint_accuracy(summary: pd.DataFrame, ax: Axes | None = None, *, title: str | None = None) -> Axes:
    """Bar chart of held-out accuracy per score and marker selection.

    Parameters
    ----------
    summary : DataFrame
        The evaluation summary (columns ``SCORE``, ``SELECT``, ``K``, ``MEAN_ACCURACY``, ``LOW``,
        ``HIGH``, ``CHANCE``; ``ARCHS`` is used for the default title when present).
    ax : matplotlib Axes, optional
        Where to draw; default: a new figure.
    title : str, optional
        Default: "Identifying <archs> from K examples".

    Returns
    -------
    matplotlib Axes
    """
    require_columns(summary, PLOT_COLUMNS, "the fingerprint accuracy chart")
    if summary.empty:
        raise InputError("the fingerprint evaluation is empty: nothing to draw")
    scores = list(dict.fromkeys(summary["SCORE"].astype(str)))
    if SCORE_CHOSEN_PER_SPLIT in scores:  # the headline first
        scores = [SCORE_CHOSEN_PER_SPLIT] + [s for s in scores if s != SCORE_CHOSEN_PER_SPLIT]
    selections = [s for s in SELECTION_STYLE if s in set(summary["SELECT"].astype(str))]
    if not selections:
        raise InputError(f"no known marker selection in the evaluation (expected {', '.join(SELECTION_STYLE)})")
    ax = new_axes(ax, fingerprint_figsize(len(scores)))
    width = GROUP_WIDTH / len(selections)
    centres = np.arange(len(scores), dtype=float)
    for index, selection in enumerate(selections):
        offsets = centres - GROUP_WIDTH / 2 + width * (index + 0.5)
        _draw_selection(ax, summary, scores, selection, offsets, width)
    if SCORE_CHOSEN_PER_SPLIT in scores:
        ax.axvline(0.5, color="#777777", linestyle=":", linewidth=0.9, zorder=1)
    _draw_chance(ax, summary)
    _decorate(ax, summary, scores, selections, title)
    return ax


def _draw_selection(ax: Axes, summary: pd.DataFrame, scores: list[str], selection: str, x: np.ndarray, width: float) -> None:
    rows = summary[summary["SELECT"].astype(str) == selection]
    rows = rows.assign(SCORE=rows["SCORE"].astype(str)).drop_duplicates("SCORE").set_index("SCORE")
    rows = rows.reindex(scores)  # a score without this selection leaves a gap
    mean = rows["MEAN_ACCURACY"].to_numpy(dtype=float)
    low = rows["LOW"].to_numpy(dtype=float)
    high = rows["HIGH"].to_numpy(dtype=float)
    # The interval is over split means and need not contain the overall mean; clip so that error
    # bar lengths stay non-negative.
    below = np.clip(mean - low, 0.0, None)
    above = np.clip(high - mean, 0.0, None)
    style = SELECTION_STYLE[selection]
    bars = ax.bar(x, mean, width=width * 0.92, color=style["color"], edgecolor="#333333", linewidth=0.5, zorder=2)
    for bar, score in zip(bars, scores):
        if score == SCORE_CHOSEN_PER_SPLIT:
            bar.set_hatch(CHOSEN_HATCH)
            bar.set_edgecolor("#ffffff")
    ax.errorbar(x, mean, yerr=np.vstack([below, above]), fmt="none", ecolor="#111111", elinewidth=0.9, capsize=2.5, zorder=3)


def _draw_chance(ax: Axes, summary: pd.DataFrame) -> None:
    chance = pd.to_numeric(summary["CHANCE"], errors="coerce").dropna().unique()
    if len(chance):
        # One line per distinct chance level (equal for every score when the runs are the same).
        for level in chance:
            # Above the bars: a bar at chance must visibly touch the line, not hide it.
            ax.axhline(level, color=CHANCE_COLOUR, linestyle="--", linewidth=1.0, zorder=4)


def _decorate(ax: Axes, summary: pd.DataFrame, scores: list[str], selections: list[str], title: str | None) -> None:
    k_text = "/".join(str(k) for k in sorted(set(int(k) for k in summary["K"])))
    _style_axes(ax, scores)
    if title is None:
        archs = str(summary["ARCHS"].iloc[0]).replace(",", " v ") if "ARCHS" in summary.columns else "architectures"
        title = f"Identifying {archs} from {k_text} examples"
    ax.set_title(title, fontsize=10, loc="left", pad=20)  # pad: room for the legend row under it
    _legend(ax, summary, selections, k_text)


def _style_axes(ax: Axes, scores: list[str]) -> None:
    ax.set_xticks(np.arange(len(scores)))
    labels = [CHOSEN_LABEL if s == SCORE_CHOSEN_PER_SPLIT else s for s in scores]
    rotate = len(scores) > 4 or max((len(s) for s in scores if s != SCORE_CHOSEN_PER_SPLIT), default=0) > 12
    ax.set_xticklabels(labels, rotation=30 if rotate else 0, ha="right" if rotate else "center")
    # With one or two scores, keep the bars about as wide as with three instead of filling the axes.
    margin = max(0.6, (3 - len(scores)) / 2 + 0.6)
    ax.set_xlim(-margin, len(scores) - 1 + margin)
    ax.set_ylim(0.0, 1.05)
    ax.set_yticks(np.linspace(0.0, 1.0, 6))
    ax.set_ylabel("held-out accuracy")
    ax.set_xlabel("score   (top / bottom: strongest / weakest evidence on the training runs)", fontsize=8, color="#444444")
    ax.grid(axis="y", color="#e5e5e5", linewidth=0.6, zorder=0)
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)


def _legend(ax: Axes, summary: pd.DataFrame, selections: list[str], k_text: str) -> None:
    handles: list = [
        Patch(facecolor=SELECTION_STYLE[s]["color"], edgecolor="#333333", linewidth=0.5, label=SELECTION_STYLE[s]["label"].format(k=k_text))
        for s in selections
    ]
    if (summary["SCORE"].astype(str) == SCORE_CHOSEN_PER_SPLIT).any():
        handles.append(
            Patch(facecolor=SELECTION_STYLE["top"]["color"], edgecolor="#ffffff", hatch=CHOSEN_HATCH, label="score chosen inside each split")
        )
    handles.append(Line2D([], [], color=CHANCE_COLOUR, linestyle="--", linewidth=1.0, label="chance"))
    n_splits = sorted(set(int(n) for n in summary["N_SPLITS"])) if "N_SPLITS" in summary.columns else []
    splits_text = f" ({'/'.join(str(n) for n in n_splits)} splits)" if n_splits else ""
    handles.append(Line2D([], [], color="#111111", marker="|", markersize=9, linestyle="none", label=f"95% interval{splits_text}"))
    # One row between the title and the axes: beside the axes it would take a third of the width
    # from the bars, below them it collides with rotated score names.
    ax.legend(
        handles=handles,
        fontsize=7.5,
        frameon=False,
        loc="lower left",
        bbox_to_anchor=(0.0, 1.0),
        borderaxespad=0.2,
        ncol=len(handles),
        handlelength=1.5,
        handletextpad=0.5,
        columnspacing=1.1,
    )
