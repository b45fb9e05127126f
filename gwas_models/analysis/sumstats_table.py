"""Building summary statistics tables from test results, column block by column block.

A table (columns: :mod:`gwas_models.formats.sumstats_schema`) stacks one block per score, plus the
combined rows. Each block is a dict column -> array of one value per example; text columns are
:class:`CodedColumn` (integer codes into fixed categories) until :func:`assemble` turns them into
pandas categoricals: a million-row table is built without a Python object per cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from gwas_models.analysis.association import OK, OnewayResult, TwoSampleResult, finite_mean
from gwas_models.analysis.combine import CombinedEvidence
from gwas_models.analysis.permutation import PermutationResult
from gwas_models.formats.sumstats_schema import (
    ADJUST_COLUMNS,
    ADJUST_LOG_COLUMNS,
    ALL_ERRCODES,
    COMBINED,
    COMBINED_PAIRS,
    MISSING,
    MIXED,
    RANKING_COLUMN,
)
from gwas_models.matrix import ScoreMatrix, within_class_positions

Block = dict[str, object]


class CodedColumn:
    """A categorical column under construction: integer codes into fixed categories."""

    def __init__(self, codes: np.ndarray, categories: Sequence[str]):
        self.codes = np.asarray(codes, dtype=np.int32)
        self.categories = tuple(categories)


@dataclass(frozen=True)
class TableLayout:
    """What every block of a study's tables shares: the example key columns and the score names."""

    chrom_codes: np.ndarray
    chrom_names: tuple[str, ...]
    positions: np.ndarray
    example_id: np.ndarray
    labels: np.ndarray
    score_names: tuple[str, ...]

    @classmethod
    def of(cls, first: ScoreMatrix, scores: Sequence[str]) -> "TableLayout":
        """The layout of the examples of ``first`` for tables of ``scores`` (plus the combined rows)."""
        names = list(dict.fromkeys(first.class_names))
        lookup = {name: i for i, name in enumerate(names)}
        # Class names are normally distinct, so the code is the label; duplicates share a code.
        codes = np.asarray([lookup[name] for name in first.class_names], dtype=np.int64)[first.labels]
        return cls(
            chrom_codes=codes,
            chrom_names=tuple(names),
            positions=_positions(first.labels, first.example_id),
            example_id=first.example_id,
            labels=first.labels,
            score_names=tuple(scores) + (COMBINED, COMBINED_PAIRS),
        )

    @property
    def n_examples(self) -> int:
        return len(self.example_id)

    def key_columns(self, score: str) -> Block:
        """``#CHROM POS ID LABEL SCORE`` of one score's block."""
        n = self.n_examples
        return {
            "#CHROM": CodedColumn(self.chrom_codes, self.chrom_names),
            "POS": self.positions,
            "ID": self.example_id,
            "LABEL": self.labels,
            "SCORE": CodedColumn(np.full(n, self.score_names.index(score)), self.score_names),
        }


def _positions(labels: np.ndarray, example_id: np.ndarray) -> np.ndarray:
    """POS: 1-based order of each example inside its class, by example id.

    Same as :func:`within_class_positions`; when the ids are already increasing (the store's
    order) a stable integer sort of the labels gives the order without a lexsort.
    """
    if len(example_id) < 2 or not np.all(example_id[1:] > example_id[:-1]):
        return within_class_positions(labels, example_id)
    small = labels.astype(np.int16) if len(labels) and 0 <= labels.min() and labels.max() < 2**15 else labels
    order = np.argsort(small, kind="stable")  # a radix sort for 16-bit integers
    sorted_labels = labels[order]
    starts = np.searchsorted(sorted_labels, sorted_labels, side="left")
    positions = np.empty(len(labels), dtype=np.int64)
    positions[order] = np.arange(len(labels)) - starts + 1
    return positions


def assemble(blocks: list[Block], columns: Sequence[str]) -> pd.DataFrame:
    """Stack column blocks into one DataFrame; text columns become categoricals (fast, compact)."""
    data = {}
    for name in columns:
        parts = [block[name] for block in blocks]
        if isinstance(parts[0], CodedColumn):
            codes = parts[0].codes if len(parts) == 1 else np.concatenate([part.codes for part in parts])
            data[name] = pd.Categorical.from_codes(codes, categories=list(parts[0].categories), validate=False)
        else:
            data[name] = np.asarray(parts[0]) if len(parts) == 1 else np.concatenate([np.asarray(part) for part in parts])
    return pd.DataFrame(data, copy=False)


def _direction_codes(oriented: np.ndarray) -> np.ndarray:
    """0 ('.') where undefined or zero, 1 (A) where easier in B, 2 (B) where harder in B."""
    codes = np.zeros(len(oriented), dtype=np.int32)
    codes[oriented < 0] = 1
    codes[oriented > 0] = 2
    return codes


def _adjusted(adjusted: pd.DataFrame, adjusted_log: pd.DataFrame) -> Block:
    """The adjusted-p columns and their -log10 columns of the methods in ``adjusted``."""
    block: Block = {ADJUST_COLUMNS[method]: adjusted[method].to_numpy() for method in adjusted}
    block.update({ADJUST_LOG_COLUMNS[method]: adjusted_log[method].to_numpy() for method in adjusted})
    return block


def _combined_errcodes(errors: np.ndarray, count: np.ndarray) -> np.ndarray:
    """ERRCODE of combined rows: '.' if any score was tested, else the shared code, else MIXED."""
    errors = np.atleast_2d(errors)
    shared = (errors == errors[0]).all(axis=0)
    codes = np.where(shared, errors[0], ALL_ERRCODES.index(MIXED))
    return np.where(count > 0, OK, codes).astype(np.int32)


# --------------------------------------------------------------------------------------------
# Pair tables
# --------------------------------------------------------------------------------------------


def pair_block(
    layout: TableLayout,
    name: str,
    sign: int,
    result: TwoSampleResult,
    adjusted: pd.DataFrame,
    adjusted_log: pd.DataFrame,
    permutation: PermutationResult | None,
    a: str,
    b: str,
) -> Block:
    """The rows of one score of a pair table.

    Parameters
    ----------
    layout : TableLayout
    name : str
        The score.
    sign : int
        +1 when a higher score is harder, -1 when easier (orients ``HARDER_IN``).
    result : TwoSampleResult
    adjusted, adjusted_log : DataFrame
        Adjusted p by method (:func:`~gwas_models.analysis.multitest.adjust_pvalues`) and its
        -log10 (:func:`~gwas_models.analysis.multitest.adjust_neg_log10_p`).
    permutation : PermutationResult, optional
    a, b : str
        The architectures.
    """
    n = layout.n_examples
    block = layout.key_columns(name)
    block.update(
        {
            "A": CodedColumn(np.zeros(n), (a,)),
            "B": CodedColumn(np.zeros(n), (b,)),
            "N_A": result.n_a,
            "N_B": result.n_b,
            "MEAN_A": result.mean_a,
            "MEAN_B": result.mean_b,
            "SD_A": result.sd_a,
            "SD_B": result.sd_b,
            "BETA": result.beta,
            "SE": result.se,
            "COHEN_D": result.cohen_d,
            "T_STAT": result.t_stat,
            "DF": result.df,
            "P": result.p,
            "NEG_LOG10_P": result.neg_log10_p,
            RANKING_COLUMN: np.full(n, np.nan),  # the ranking of combined rows only
            "HARDER_IN": CodedColumn(_direction_codes(sign * result.beta), (MISSING, a, b)),
            "ERRCODE": CodedColumn(result.error, ALL_ERRCODES),
        }
    )
    block.update(_adjusted(adjusted, adjusted_log))
    if permutation is not None:
        block["EMP1"], block["EMP2"] = permutation.emp1, permutation.emp2
    return block


def pair_combined_block(
    layout: TableLayout,
    combined: CombinedEvidence,
    adjusted: pd.DataFrame,
    adjusted_log: pd.DataFrame,
    oriented_d: np.ndarray,
    errors: np.ndarray,
    a: str,
    b: str,
    n_runs: tuple[int, int],
) -> Block:
    """The ``SCORE=combined`` rows of a pair table.

    Parameters
    ----------
    layout : TableLayout
    combined : CombinedEvidence
        Cauchy combination p and mean -log10 p over the scores
        (:func:`~gwas_models.analysis.combine.combine_evidence`).
    adjusted, adjusted_log : DataFrame
        The combination p adjusted over the examples, by method, and its -log10.
    oriented_d, errors : arrays (n_scores, n_examples)
        Difficulty-oriented Cohen's d and error codes of each score.
    a, b : str
    n_runs : (int, int)
        Runs of A and of B.
    """
    n = layout.n_examples
    mean_d, _ = finite_mean(oriented_d)
    missing = np.full(n, np.nan)
    block = layout.key_columns(COMBINED)
    block.update(
        {
            "A": CodedColumn(np.zeros(n), (a,)),
            "B": CodedColumn(np.zeros(n), (b,)),
            "N_A": np.full(n, n_runs[0], dtype=np.int64),
            "N_B": np.full(n, n_runs[1], dtype=np.int64),
            "COHEN_D": mean_d,
            "P": combined.p,
            "NEG_LOG10_P": combined.neg_log10_p,
            RANKING_COLUMN: combined.mean_neg_log10_p,
            "HARDER_IN": CodedColumn(_direction_codes(mean_d), (MISSING, a, b)),
            "ERRCODE": CodedColumn(_combined_errcodes(errors, combined.count), ALL_ERRCODES),
            "EMP1": missing,
            "EMP2": missing,
        }
    )
    for column in ("MEAN_A", "MEAN_B", "SD_A", "SD_B", "BETA", "SE", "T_STAT", "DF"):
        block[column] = missing
    block.update(_adjusted(adjusted, adjusted_log))
    return block


# --------------------------------------------------------------------------------------------
# One-way tables
# --------------------------------------------------------------------------------------------


def oneway_block(
    layout: TableLayout,
    name: str,
    sign: int,
    result: OnewayResult,
    adjusted: pd.DataFrame,
    adjusted_log: pd.DataFrame,
    archs: tuple[str, ...],
) -> Block:
    """The rows of one score of a one-way table (``sign`` orients ``HARDEST_IN``/``EASIEST_IN``;
    ``adjusted``, ``adjusted_log``: adjusted p by method and its -log10)."""
    oriented = sign * result.mean
    defined = np.isfinite(oriented).any(axis=0)
    hardest = np.where(defined, np.argmax(np.where(np.isfinite(oriented), oriented, -np.inf), axis=0) + 1, 0)
    easiest = np.where(defined, np.argmin(np.where(np.isfinite(oriented), oriented, np.inf), axis=0) + 1, 0)
    block = layout.key_columns(name)
    block.update(
        {
            "N": result.n.sum(axis=0),
            "F_STAT": result.f_stat,
            "DF1": result.df_num,
            "DF2": result.df_denom,
            "P": result.p,
            "NEG_LOG10_P": result.neg_log10_p,
            RANKING_COLUMN: np.full(len(result.p), np.nan),  # the ranking of combined rows only
            "HARDEST_IN": CodedColumn(hardest, (MISSING,) + archs),
            "EASIEST_IN": CodedColumn(easiest, (MISSING,) + archs),
            "ERRCODE": CodedColumn(result.error, ALL_ERRCODES),
        }
    )
    block.update(_adjusted(adjusted, adjusted_log))
    return block


def oneway_combined_block(
    layout: TableLayout,
    score: str,
    combined: CombinedEvidence,
    adjusted: pd.DataFrame,
    adjusted_log: pd.DataFrame,
    errors: np.ndarray,
    n_runs: int,
    archs: tuple[str, ...],
) -> Block:
    """``SCORE=combined`` or ``combined_pairs`` rows of a one-way table: the Cauchy combination p
    (adjusted by method in ``adjusted``, with its -log10 in ``adjusted_log``) and mean -log10 p of
    the tests they combine, whose error codes, shape (n_tests, n_examples), are ``errors``."""
    n = layout.n_examples
    missing = np.full(n, np.nan)
    block = layout.key_columns(score)
    block.update(
        {
            "N": np.full(n, n_runs, dtype=np.int64),
            "F_STAT": missing,
            "DF1": missing,
            "DF2": missing,
            "P": combined.p,
            "NEG_LOG10_P": combined.neg_log10_p,
            RANKING_COLUMN: combined.mean_neg_log10_p,
            "HARDEST_IN": CodedColumn(np.zeros(n), (MISSING,) + archs),
            "EASIEST_IN": CodedColumn(np.zeros(n), (MISSING,) + archs),
            "ERRCODE": CodedColumn(_combined_errcodes(errors, combined.count), ALL_ERRCODES),
        }
    )
    block.update(_adjusted(adjusted, adjusted_log))
    return block
