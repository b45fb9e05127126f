"""Does a bigger change in model size move difficulty more? (the paper's Figure 6, right).

For every pair of architectures, the association evidence is summarised as the mean of −log10 p
over all tested examples and scores (the log of the geometric mean of p) and set against the ratio
of the two architectures' trainable parameter counts.
"""

from __future__ import annotations

import itertools

from typing import Iterable, Mapping

import numpy as np
import pandas as pd
from scipy import stats

from gwas_models.analysis.study import ComparisonResult
from gwas_models.errors import InputError
from gwas_models.formats.sumstats_schema import COMBINED, COMBINED_PAIRS, TESTED_ERRCODES

CAPACITY_COLUMNS = (
    "A", "B", "N_PARAMS_A", "N_PARAMS_B", "SIZE_RATIO", "MEAN_NEG_LOG10_P", "N_TESTS", "N_SCORES",
)  # fmt: skip


def pair_mean_evidence(sumstats: pd.DataFrame) -> tuple[float, int]:
    """Mean −log10 p over every tested (example, score) row of one pair's table, and their count.

    The combined rows are left out: they are themselves means of the per-score rows.
    """
    per_score = sumstats[~sumstats["SCORE"].astype(str).isin((COMBINED, COMBINED_PAIRS))]
    values = pd.to_numeric(per_score["NEG_LOG10_P"], errors="coerce").to_numpy(dtype=float)
    tested = np.isfinite(values) & per_score["ERRCODE"].astype(str).isin(TESTED_ERRCODES).to_numpy()
    if not tested.any():
        return float("nan"), 0
    return float(values[tested].mean()), int(tested.sum())


def capacity_row(comparison: ComparisonResult, n_parameters: Mapping[str, int]) -> dict[str, object]:
    """One row of :func:`capacity_table` from a pair comparison."""
    a, b = comparison.a, comparison.b
    missing = [arch for arch in (a, b) if not n_parameters.get(arch)]
    if missing:
        raise InputError(f"no parameter count recorded for {', '.join(missing)}")
    mean, n_tests = pair_mean_evidence(comparison.sumstats)
    size_a, size_b = int(n_parameters[a]), int(n_parameters[b])
    return {
        "A": a,
        "B": b,
        "N_PARAMS_A": size_a,
        "N_PARAMS_B": size_b,
        "SIZE_RATIO": max(size_a, size_b) / min(size_a, size_b),
        "MEAN_NEG_LOG10_P": mean,
        "N_TESTS": n_tests,
        "N_SCORES": len(comparison.scores),
    }


def capacity_table(rows: Iterable[Mapping[str, object]]) -> pd.DataFrame:
    """Rows of :func:`capacity_row` as a table sorted by size ratio.

    Columns: ``A``, ``B``, ``N_PARAMS_A``, ``N_PARAMS_B``, ``SIZE_RATIO`` (larger over smaller
    parameter count, ≥ 1), ``MEAN_NEG_LOG10_P`` (mean over tested examples and scores),
    ``N_TESTS`` (tested example × score rows), ``N_SCORES``.
    """
    table = pd.DataFrame(list(rows), columns=list(CAPACITY_COLUMNS))
    return table.sort_values(["SIZE_RATIO", "A", "B"], ignore_index=True)


#: Up to this many pairs, the correlation's p-value enumerates every pairing (n! of them).
EXACT_PAIRS = 8


def size_effect_correlation(table: pd.DataFrame) -> tuple[float, float]:
    """Spearman correlation between log size ratio and mean −log10 p over pairs, and its p-value.

    A study compares few pairs of architectures, where the usual t approximation of Spearman's p
    is far off (ρ = 0.5 over 3 pairs: 0.67, while every ordering of 3 pairs gives |ρ| ≥ 0.5, so the
    exact p is 1): up to :data:`EXACT_PAIRS` pairs the two-sided p enumerates every pairing.
    NaN when fewer than three pairs have both values.
    """
    usable = table[np.isfinite(table["MEAN_NEG_LOG10_P"].astype(float))]
    if len(usable) < 3:
        return float("nan"), float("nan")
    x = np.log(usable["SIZE_RATIO"].astype(float).to_numpy())
    y = usable["MEAN_NEG_LOG10_P"].astype(float).to_numpy()
    rho = float(stats.spearmanr(x, y).statistic)
    if len(usable) > EXACT_PAIRS:
        return rho, float(stats.spearmanr(x, y).pvalue)
    return rho, _exact_spearman_p(x, y, rho)


def _exact_spearman_p(x: np.ndarray, y: np.ndarray, rho: float) -> float:
    """Two-sided p of Spearman's ρ over every pairing of ``x`` with a reordering of ``y``.

    Every ordering of ``y``'s ranks (at most 8! = 40,320) at once: ρ is the Pearson correlation
    of the ranks, so one matrix product gives them all.
    """
    rank_x = stats.rankdata(x) - (len(x) + 1) / 2
    rank_y = stats.rankdata(y) - (len(y) + 1) / 2
    orderings = rank_y[np.array(list(itertools.permutations(range(len(y)))))]
    scale = np.sqrt((rank_x**2).sum() * (rank_y**2).sum())
    if scale == 0:
        return float("nan")
    rhos = orderings @ rank_x / scale
    # A small tolerance, so that orderings giving the observed |ρ| count as at least as extreme.
    return float(np.mean(np.abs(rhos) >= abs(rho) - 1e-12))
