"""Mean association evidence of each pair of architectures against their size ratio."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from gwas_models.analysis.capacity import size_effect_correlation
from gwas_models.plots._style import new_axes


def capacity_scatter(table: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Scatter of ``MEAN_NEG_LOG10_P`` against ``SIZE_RATIO`` (log x), one labelled point per pair.

    Parameters
    ----------
    table : DataFrame from :func:`gwas_models.analysis.capacity.capacity_table`
    ax : matplotlib Axes, optional
    """
    ax = new_axes(ax, (6.4, 4.4))
    x = table["SIZE_RATIO"].astype(float).to_numpy()
    y = table["MEAN_NEG_LOG10_P"].astype(float).to_numpy()
    ax.scatter(x, y, s=36, color="#1f5fa8", zorder=3)
    for ratio, evidence, a, b in zip(x, y, table["A"], table["B"]):
        if np.isfinite(evidence):
            ax.annotate(f"{a} vs {b}", (ratio, evidence), xytext=(5, 4), textcoords="offset points", fontsize=8)
    ax.set_xscale("log")
    # Plain numbers on the log axis; matplotlib's default minor labels (3x10^0 ...) collide.
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("parameter count ratio (larger / smaller)")
    ax.set_ylabel("mean −log10 p over examples and scores")
    rho, p = size_effect_correlation(table)
    subtitle = f"Spearman ρ = {rho:.2f}, p = {p:.2g} over {len(table)} pairs" if np.isfinite(rho) else "fewer than 3 pairs: no correlation"
    ax.set_title(f"Difficulty change vs model size\n{subtitle}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.margins(x=0.15, y=0.12)
    return ax
