"""The summary statistics schema: every column, what it means, and the constants that go with them.

A summary statistics ("sumstats") table has one row per training example and score, for one
comparison: a pair of architectures A and B (a *pair table*), or all the architectures of a study
at once (a *one-way table*, Welch's ANOVA). Its columns follow PLINK 2's naming (``#CHROM POS ID``
first). This module is the one place that defines them; the table builder
(:mod:`gwas_models.analysis.sumstats_table`), the files (:mod:`gwas_models.formats.sumstats`), the
plots and the report read their names and constants from here. It is pure: no file format, no
pyarrow, no torch.

Pair table, columns :func:`pair_columns`::

    #CHROM POS ID LABEL SCORE A B N_A N_B MEAN_A MEAN_B SD_A SD_B BETA SE COHEN_D T_STAT DF P
    NEG_LOG10_P MEAN_NEG_LOG10_P HARDER_IN <BONF HOLM SIDAK FDR_BH FDR_BY>
    <NEG_LOG10_BONF ... NEG_LOG10_FDR_BY> [EMP1 EMP2] ERRCODE

One-way table (three or more architectures), columns :func:`oneway_columns`::

    #CHROM POS ID LABEL SCORE N F_STAT DF1 DF2 P NEG_LOG10_P MEAN_NEG_LOG10_P HARDEST_IN EASIEST_IN
    <adjusted> <-log10 adjusted> ERRCODE

The adjusted-p columns are those of the methods asked for, in :data:`ADJUST_COLUMNS` order of the
request, each followed (after all of them) by its -log10 (:data:`ADJUST_LOG_COLUMNS`), computed by
the study in log space: the exact adjusted p where float64 p underflows, which the TSV writer
takes its text from. ``EMP1``/``EMP2`` only with permutation tests.

Permutation tables (``test="permutation"``). The permutation p is the p of the table, all the
way through: ``P`` = ``EMP1`` and ``NEG_LOG10_P`` = -log10 ``EMP1``, so the adjusted columns, the
counts of significant examples, the plots (which draw ``NEG_LOG10_P``) and the combined rows all
use it. ``T_STAT``, ``DF`` and ``SE`` are Welch's, the statistic that was permuted; Welch's
parametric p follows from them and is not written. ``EMP2`` is the max-T family-wise p, not
adjusted further. λGC of a permutation study (the ``.log``, the Parquet metadata) is computed
from Welch's parametric p of the tested examples, not from ``P``: λ is a statement about the
inflation of the t statistics, its relabelling null is built on them, and the median of a discrete
permutation p (at 5 vs 5 runs it takes 126 values) says little about inflation.

Combined rows. ``SCORE=combined`` rows (written when more than one score is tested) hold the
combined evidence of each example over the scores it was tested on, twice:

* ``P`` and ``NEG_LOG10_P`` are the Cauchy combination test (ACAT, Liu & Xie 2020,
  :mod:`gwas_models.analysis.combine`): a p-value that holds however strongly the scores of an
  example are correlated, adjusted over the examples like any score's (the adjusted columns);
* ``MEAN_NEG_LOG10_P`` is the mean of -log10 p over the scores (-log10 of the geometric mean of
  p, the paper's summary): a ranking, not a p-value (the scores of one example are strongly
  correlated, so it would be far too small as one). The paper's ranking of the examples, the
  gallery and ``top`` rank by it; see :func:`ranking_column`.

In a pair table their ``COHEN_D`` is the mean over scores of the difficulty-oriented d (positive:
harder in B), whose sign gives ``HARDER_IN``; ``N_A``/``N_B`` are the runs of A and B. A one-way
table also has ``SCORE=combined_pairs`` rows: the same two summaries over every pair *and* score;
its ``MEAN_NEG_LOG10_P`` is the paper's ranking of the examples most sensitive to the architecture
(its Figure 1); see :func:`ranking_score`. ``MEAN_NEG_LOG10_P`` is missing on the rows of a single
score. Tables written before it existed held the mean in the combined rows' ``NEG_LOG10_P``.

Missing values are NaN in numeric columns and :data:`MISSING` (``'.'``) in text columns; TSV
files write missing numbers as :data:`MISSING_NUMBER` (``NA``, as PLINK 2 does). ``ERRCODE`` is
``'.'`` when the test was done, :data:`SEPARATED` when it was done on a perfect separation (a p,
no t: see :data:`ERRCODE_MEANINGS`), else one of :data:`ERRCODES`; rows of
:data:`TESTED_ERRCODES` have a p. A combined row has ``'.'`` when at least one score was tested,
otherwise the code its scores share, or :data:`MIXED`.

p below the smallest double. ``P`` and the adjusted columns are float64 in a table and in the
Parquet file: 0 (or a subnormal with few digits) below about 1e-308. ``NEG_LOG10_P`` holds every
p exactly (it is computed in log space), so a reader of the Parquet file takes the exact p from
it, ``10 ** -NEG_LOG10_P`` in any precision. TSV files write ``P`` and each adjusted p from log
space where float64 cannot hold it (``3.1623e-401``), never as 0 for a finite statistic.

Every column, from :data:`COLUMN_MEANINGS`:
"""

from __future__ import annotations

from typing import Iterable, Sequence

#: How a missing value is written in text columns.
MISSING = "."
#: How a missing number is written in TSV files (PLINK 2's ``NA``; readers also take ``'.'``).
MISSING_NUMBER = "NA"

#: ``SCORE`` of the combined evidence over the scores of one comparison.
COMBINED = "combined"
#: ``SCORE`` of the combined evidence over every pair and score (one-way tables only).
COMBINED_PAIRS = "combined_pairs"
#: The ``SCORE`` values of combined evidence: a Cauchy combination p and a ranking column each.
COMBINED_SCORES: tuple[str, ...] = (COMBINED, COMBINED_PAIRS)
#: Column of the combined rows' ranking, the mean of -log10 p (the paper's geometric mean of p).
RANKING_COLUMN = "MEAN_NEG_LOG10_P"
#: What the p of each combined score is, in words (titles of plots of its ``NEG_LOG10_P``).
COMBINED_MEANINGS: dict[str, str] = {
    COMBINED: "Cauchy combination (ACAT) of p over scores",
    COMBINED_PAIRS: "Cauchy combination (ACAT) of p over pairs and scores",
}
#: What the ranking column (:data:`RANKING_COLUMN`) of each combined score is (gallery captions,
#: plots of the ranking): a ranking, not a p-value.
RANKING_MEANINGS: dict[str, str] = {
    COMBINED: "mean −log10 p over scores",
    COMBINED_PAIRS: "mean −log10 p over pairs and scores",
}

#: ``ERRCODE`` of a perfect separation: tested, with its exact permutation p but no t statistic.
SEPARATED = "SEPARATED"
#: ``ERRCODE`` of a test, in the order of the integer codes the statistics use (0: tested).
ERRCODES: tuple[str, ...] = (MISSING, "CONST", "FEW_RUNS", "NAN", SEPARATED)
#: ``ERRCODE`` values of rows that were tested and have a p: what adjustments, counts, plots and
#: combined evidence take. λGC takes only :data:`MISSING` (a t or F statistic).
TESTED_ERRCODES: tuple[str, ...] = (MISSING, SEPARATED)
#: ``ERRCODE`` of a combined row whose scores were untested for different reasons.
MIXED = "MIXED"
#: Every ``ERRCODE`` value a table can hold.
ALL_ERRCODES: tuple[str, ...] = ERRCODES + (MIXED,)
#: What each ``ERRCODE`` means.
ERRCODE_MEANINGS: dict[str, str] = {
    MISSING: "the test was done",
    "CONST": "zero variance, up to rounding (both groups constant, or a standard error below 10 ulps of the means; paired: constant differences; one-way: a constant group)",
    "FEW_RUNS": "a group has fewer than 2 finite runs (paired: fewer than 2 complete pairs)",
    "NAN": "no finite score in a group, or a non-finite statistic",
    SEPARATED: (
        "tested: each group without spread (up to rounding), at levels that do not overlap (paired: differences "
        "without spread, all of one sign; one-way: every group exactly constant, not all at one level); P is the "
        "exact permutation p of that separation, 1 / C(N_A + N_B, N_A), twice that when N_A = N_B (paired: "
        "2 / 2^N_A; one-way: a conservative bound), T_STAT, DF and COHEN_D are missing, SE is 0; "
        "adjusted, counted and combined like any p, left out of lambda_GC (not a t statistic)"
    ),
    MIXED: "combined row whose scores were all untested, for different reasons",
}

#: Adjusted-p column of each multiple-testing method (statsmodels ``multipletests`` names), in
#: output order.
ADJUST_COLUMNS: dict[str, str] = {
    "bonferroni": "BONF",
    "holm": "HOLM",
    "sidak": "SIDAK",
    "fdr_bh": "FDR_BH",
    "fdr_by": "FDR_BY",
}
#: Column of -log10 of each adjusted p, computed in log space (the adjusted p where float64 holds 0).
ADJUST_LOG_COLUMNS: dict[str, str] = {method: f"NEG_LOG10_{column}" for method, column in ADJUST_COLUMNS.items()}
#: The adjusted-p column of each -log10 adjusted-p column.
ADJUSTED_OF_LOG_COLUMN: dict[str, str] = {ADJUST_LOG_COLUMNS[method]: ADJUST_COLUMNS[method] for method in ADJUST_COLUMNS}

KEY_COLUMNS: tuple[str, ...] = ("#CHROM", "POS", "ID", "LABEL", "SCORE")
PAIR_COLUMNS: tuple[str, ...] = KEY_COLUMNS + (
    "A", "B", "N_A", "N_B", "MEAN_A", "MEAN_B", "SD_A", "SD_B", "BETA", "SE", "COHEN_D",
    "T_STAT", "DF", "P", "NEG_LOG10_P", RANKING_COLUMN, "HARDER_IN",
)  # fmt: skip
ONEWAY_COLUMNS: tuple[str, ...] = KEY_COLUMNS + (
    "N", "F_STAT", "DF1", "DF2", "P", "NEG_LOG10_P", RANKING_COLUMN, "HARDEST_IN", "EASIEST_IN",
)  # fmt: skip
PERMUTATION_COLUMNS: tuple[str, ...] = ("EMP1", "EMP2")
ERRCODE_COLUMN = "ERRCODE"

#: Columns every sumstats table has (pair and one-way tables alike): what readers may rely on.
REQUIRED_COLUMNS: tuple[str, ...] = ("#CHROM", "POS", "ID", "SCORE", "P", "NEG_LOG10_P", ERRCODE_COLUMN)
#: Text columns (:data:`MISSING` when missing); every other column is numeric (NaN when missing).
TEXT_COLUMNS: frozenset[str] = frozenset({"#CHROM", "SCORE", "A", "B", "HARDER_IN", "HARDEST_IN", "EASIEST_IN", ERRCODE_COLUMN})
#: Numeric columns whose values are whole numbers.
INTEGER_COLUMNS: frozenset[str] = frozenset({"POS", "ID", "LABEL", "N_A", "N_B", "N"})

#: One line on every column.
COLUMN_MEANINGS: dict[str, str] = {
    "#CHROM": "class of the example (its label name; the GWAS chromosome)",
    "POS": "1-based order of the example inside its class, by example id (the GWAS position)",
    "ID": "example id: the example's index in the training set (the GWAS variant)",
    "LABEL": "class index of the example",
    "SCORE": f"difficulty score tested, or {COMBINED!r} / {COMBINED_PAIRS!r} for combined evidence",
    "A": "first architecture of the pair",
    "B": "second architecture of the pair",
    "N_A": "runs of A used (finite scores; paired: complete pairs)",
    "N_B": "runs of B used",
    "MEAN_A": "mean score over the runs of A",
    "MEAN_B": "mean score over the runs of B",
    "SD_A": "sample standard deviation over the runs of A",
    "SD_B": "sample standard deviation over the runs of B",
    "BETA": "mean(B) - mean(A) (paired: mean of the differences B - A)",
    "SE": "standard error of BETA under the test's variance model (moderated t: from the posterior variance)",
    "COHEN_D": "BETA over the pooled standard deviation (combined rows: difficulty-oriented mean d)",
    "T_STAT": "t statistic, BETA / SE (missing for SEPARATED: SE is 0)",
    "DF": "degrees of freedom of the t test (moderated t: residual plus prior df, d + d0)",
    "N": "runs used over all architectures",
    "F_STAT": "Welch's F (with Welch's correction)",
    "DF1": "numerator degrees of freedom of F",
    "DF2": "denominator degrees of freedom of F",
    "P": (
        "two-sided p (F: upper tail); permutation test: EMP1, the permutation p; SEPARATED: the exact permutation p of "
        "the separation; combined rows: Cauchy combination (ACAT) p over the scores, valid however they are correlated"
    ),
    "NEG_LOG10_P": "-log10 p, computed in log space so it stays finite when p underflows: the exact p of any row",
    RANKING_COLUMN: "combined rows only: mean -log10 p over the scores (-log10 of the geometric mean p, the paper's summary), a ranking, not a p-value",
    "HARDER_IN": f"architecture under which the example is harder, from BETA's sign and the score's direction ({MISSING!r}: BETA 0 or missing)",
    "HARDEST_IN": "architecture under which the example is hardest",
    "EASIEST_IN": "architecture under which the example is easiest",
    **{column: f"P adjusted over the tested examples of the score ({method})" for method, column in ADJUST_COLUMNS.items()},
    **{
        ADJUST_LOG_COLUMNS[method]: f"-log10 {column}, computed in log space: the exact adjusted p where {column} underflows to 0"
        for method, column in ADJUST_COLUMNS.items()
    },
    "EMP1": (
        "permutation p: (1 + relabellings with |t| at least as large) / (1 + relabellings), over those under which the "
        "statistic is defined, ties exact (enumerated: the share of every distinct relabelling); P is EMP1"
    ),
    "EMP2": "family-wise empirical p: as EMP1, against the largest |t| over the examples of each permutation (max-T)",
    ERRCODE_COLUMN: (
        f"{MISSING!r} when the test was done, {SEPARATED} when it was done on a separation (exact permutation p, no "
        "t), else why not: " + ", ".join(code for code in ALL_ERRCODES[1:] if code not in TESTED_ERRCODES)
    ),
}

#: λGC above this is coloured as inflated in plots and the report. Display only: with replicate
#: runs λ of a study without any difference often exceeds it; whether λ is more than run-to-run
#: noise is said by its relabelling null (:mod:`gwas_models.analysis.genomic_control`).
LAMBDA_WARN_ABOVE: float = 1.1
#: λGC above this is coloured as strongly inflated (red; display only, as above).
LAMBDA_STRONG_ABOVE: float = 1.25


def adjusted_columns(adjust: Sequence[str]) -> tuple[str, ...]:
    """The adjusted-p columns of the ``adjust`` methods asked for, then their -log10 columns."""
    return tuple(ADJUST_COLUMNS[m] for m in adjust) + tuple(ADJUST_LOG_COLUMNS[m] for m in adjust)


def pair_columns(adjust: Sequence[str], permutation: bool = False) -> tuple[str, ...]:
    """Columns of a pair table, in order, for the adjustment ``adjust`` methods asked for."""
    permutation_columns = PERMUTATION_COLUMNS if permutation else ()
    return PAIR_COLUMNS + adjusted_columns(adjust) + permutation_columns + (ERRCODE_COLUMN,)


def oneway_columns(adjust: Sequence[str]) -> tuple[str, ...]:
    """Columns of a one-way table, in order, for the adjustment ``adjust`` methods asked for."""
    return ONEWAY_COLUMNS + adjusted_columns(adjust) + (ERRCODE_COLUMN,)


def ranking_score(scores: Iterable[str]) -> str | None:
    """The score that ranks the examples by sensitivity to the architecture (the paper's ranking).

    ``combined_pairs`` when the table has it (three or more architectures), else ``combined``
    (several scores), else the only score of a one-score table; ``None`` when there is no such
    choice (several scores and no combined rows).

    Examples
    --------
    >>> ranking_score(["loss", "aum", "combined"])
    'combined'
    >>> ranking_score(["loss"])
    'loss'
    """
    names = list(dict.fromkeys(str(name) for name in scores))
    for name in (COMBINED_PAIRS, COMBINED):
        if name in names:
            return name
    return names[0] if len(names) == 1 else None


def ranking_column(score: str) -> str:
    """The column that ranks the examples of one score: :data:`RANKING_COLUMN` (the mean -log10 p)
    for a combined score, ``NEG_LOG10_P`` for a single score.

    Examples
    --------
    >>> ranking_column("combined"), ranking_column("loss")
    ('MEAN_NEG_LOG10_P', 'NEG_LOG10_P')
    """
    return RANKING_COLUMN if str(score) in COMBINED_SCORES else "NEG_LOG10_P"


def inflation_level(lambda_gc: float) -> str:
    """``"strong"`` above :data:`LAMBDA_STRONG_ABOVE`, ``"warn"`` above :data:`LAMBDA_WARN_ABOVE`,
    else ``""`` (also for NaN)."""
    if lambda_gc > LAMBDA_STRONG_ABOVE:
        return "strong"
    if lambda_gc > LAMBDA_WARN_ABOVE:
        return "warn"
    return ""


def _column_docs() -> str:
    width = max(len(name) for name in COLUMN_MEANINGS)
    return "\n".join(f"{name.ljust(width)}  {meaning}" for name, meaning in COLUMN_MEANINGS.items())


# The column list of the module's documentation is written from COLUMN_MEANINGS, so the two never
# disagree.
__doc__ = (__doc__ or "") + "\n::\n\n" + "\n".join("    " + line for line in _column_docs().splitlines()) + "\n"
