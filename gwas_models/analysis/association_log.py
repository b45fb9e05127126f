"""The text of an association study: the ``.log`` of each comparison and the console summary."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from gwas_models.analysis.genomic_control import LAMBDA_NULL_ALPHA, LAMBDA_NULL_CONFIDENCE, LambdaNull
from gwas_models.analysis.permutation import permutation_plan
from gwas_models.analysis.study import AssociationSettings, AssociationStudy, ComparisonResult, ScoreSummary
from gwas_models.formats.sumstats_schema import ADJUST_COLUMNS, MISSING, RANKING_COLUMN
from gwas_models.matrix import format_seeds

#: Examples listed at the end of a ``.log``.
LOG_TOP = 10
#: Examples listed per comparison in the console summary.
SUMMARY_TOP = 5


def format_log(
    study: AssociationStudy,
    comparison: ComparisonResult,
    header: Mapping[str, str] | None = None,
    n_top: int = LOG_TOP,
) -> str:
    """The ``.log`` text of one comparison: inputs, runs used, λGC against its relabelling null, the
    run-level test of the global shift, counts, warnings, top examples.

    Parameters
    ----------
    study : AssociationStudy
    comparison : ComparisonResult
        One of ``study.pairs`` or ``study.oneway`` (with its table).
    header : mapping, optional
        Extra ``key: value`` lines printed first (command, store, date...).
    n_top : int
        Examples listed at the end.
    """
    settings = study.settings
    lines = ["# gwasm associate"]
    for key, value in (header or {}).items():
        lines.append(f"{key}: {value}")
    lines.append(f"dataset: {study.dataset}")
    lines.append(f"scores: {', '.join(study.scores)}")
    if comparison.kind == "pair":
        lines.append(f"comparison: {comparison.a} (A) vs {comparison.b} (B); BETA = mean(B) - mean(A)")
    else:
        lines.append(
            f"comparison: Welch's one-way ANOVA across {', '.join(comparison.archs)} "
            "(always Welch's ANOVA, whatever the two-sample test)"
        )
    lines.append(f"question: {question(settings)}")
    lines.append(settings.describe())
    lines.append(f"examples: {study.n_examples}")
    lines.append("runs used:")
    for arch in comparison.archs:
        seeds = study.runs[arch]
        lines.append(f"  {arch}: {len(seeds)} runs, seeds {format_seeds(seeds) or 'none'}")
    lines.append("")
    methods = list(settings.adjust) + (["EMP2"] if settings.permutation and comparison.kind == "pair" else [])
    lines.append(
        f"per score (significant = adjusted p <= {settings.alpha:g}; lambda_95: 95th percentile of lambda_GC under "
        "relabelling of the runs, lambda_p: its relabelling p, lambda_p_ci: that p's Monte Carlo interval "
        f"({LAMBDA_NULL_CONFIDENCE:.1%}; 'exact' when every relabelling was used), lambda: the verdict; "
        "shift_p: run-level test of the global shift):"
    )
    head = ["score", "tested", "untested", "lambda_GC", "lambda_95", "lambda_p", "lambda_p_ci", "lambda", "shift_p"]
    head += [ADJUST_COLUMNS.get(m, m) for m in methods]
    rows = [head]
    for item in comparison.scores + comparison.combined:
        untested = ",".join(f"{code}={count}" for code, count in item.errcodes.items()) or "0"
        rows.append(
            [item.score, str(item.n_tested), untested, _number(item.lambda_gc, ".4f")]
            + _null_cells(item)[:3]
            + [_lambda_word(item)]
            + _null_cells(item)[3:]
            + [str(item.n_significant.get(m, "")) for m in methods]
        )
    lines += _aligned(rows, indent="  ")
    if settings.permutation and comparison.kind == "pair":
        n_a, n_b = len(study.runs[comparison.a]), len(study.runs[comparison.b])
        lines.append(permutation_plan(n_a, n_b, settings.n_permutations, settings.paired).describe())
    moderated = [item for item in comparison.scores if item.variance_prior is not None]
    if moderated:
        lines.append("moderated t: variance prior per score, fitted over its tested examples (SE from the posterior variance, DF = d + d0):")
        lines += [f"  {item.score}: {item.variance_prior.describe()}" for item in moderated]
    lines += _global_difference_lines(comparison)
    lines.append("")
    if len(study.scores) > 1 or comparison.kind == "oneway":
        lines.append(
            "combined rows: SCORE=combined has P and NEG_LOG10_P from the Cauchy combination test over the scores "
            "(ACAT, Liu & Xie 2020: a p-value whatever the correlation between the scores), adjusted over the examples "
            "like a score's; MEAN_NEG_LOG10_P holds the mean over scores of -log10 p (-log10 of the geometric mean p, "
            "the paper's summary), a ranking, not a p-value: the top examples are ranked by it"
        )
        if comparison.kind == "oneway":
            lines.append("SCORE=combined_pairs holds the same two over every pair of architectures and every score")
    lines.append(
        "ERRCODE: CONST zero variance (up to rounding); FEW_RUNS fewer than 2 finite runs in a group; NAN no finite score in a group "
        "(or a non-finite statistic); such examples have no p and are left out of adjustment, lambda_GC and combined rows "
        "(a combined row is '.' when any score was tested, else its scores' shared code, or MIXED); SEPARATED: "
        "tested, two groups without spread at different levels, P the exact permutation p of that separation, "
        "adjusted and counted (in 'tested') but, having no t statistic, left out of lambda_GC"
    )
    lines.append("")
    lines.append("warnings:" if comparison.warnings else "warnings: none")
    lines += [f"  - {w}" for w in comparison.warnings]
    lines.append("")
    lines.append(f"top {n_top} examples{_ranked_by(comparison)}:")
    lines += _aligned(_top_rows(comparison, n_top), indent="  ")
    return "\n".join(lines) + "\n"


def format_comparison_summary(settings: AssociationSettings, comparison: ComparisonResult, n_top: int = SUMMARY_TOP) -> str:
    """Short console summary of one comparison: per score λGC, its relabelling null's 95th
    percentile, p and verdict, the run-level shift's p, and significant examples; top examples.

    Parameters
    ----------
    settings : AssociationSettings
    comparison : ComparisonResult
    n_top : int
        Examples listed (none when 0, or when the comparison's table was dropped).
    """
    method = "bonferroni" if "bonferroni" in settings.adjust else settings.adjust[0]
    title = comparison.label if comparison.kind == "pair" else f"one-way ({comparison.label})"
    lines = [f"{title}: {question(settings)}"]
    rows = [
        ["score", "tested", "lambda_GC", "lambda_95", "lambda_p", "lambda_p_ci", "lambda", "shift_p", f"{ADJUST_COLUMNS[method]}<={settings.alpha:g}"]
    ]
    for item in comparison.scores + comparison.combined:
        cells = _null_cells(item)
        rows.append(
            [item.score, str(item.n_tested), _number(item.lambda_gc, ".3f")]
            + cells[:3]
            + [_lambda_word(item)]
            + cells[3:]
            + [str(item.n_significant[method])]
        )
    lines += _aligned(rows, indent="  ")
    lines.append("  " + global_shift_line(comparison, settings.alpha))
    lines.append(LAMBDA_LEGEND)
    if n_top > 0 and len(comparison.sumstats):
        lines.append(f"  top examples{_ranked_by(comparison)}:")
        lines += _aligned(_top_rows(comparison, n_top), indent="    ")
    return "\n".join(lines)


def question(settings: AssociationSettings) -> str:
    """What the per-example hits answer, in words: relative changes under the default reference."""
    if settings.relative:
        return "examples that change difficulty relative to their architecture (each against its architecture's level)"
    if settings.normalize == "none":
        return "examples whose scores differ as collected (a global shift counts in every example)"
    return f"examples whose scores differ after within-run normalisation ({settings.normalize})"


def global_shift_line(comparison: ComparisonResult, alpha: float) -> str:
    """The global question on its own line: which architecture is harder overall, per score, by
    the run-level test of the runs' mean scores (at ``alpha``)."""
    scores = [item for item in comparison.scores if item.run_shift is not None]
    if not scores:
        return "global shift: not tested"
    if comparison.kind != "pair":
        shifted = [item.score for item in scores if item.run_shift.significant(alpha)]
        listed = ", ".join(shifted) if shifted else "none"
        return f"global shift (run means differ, p <= {alpha:g}): {listed}"
    harder: dict[str, list[str]] = {}
    for item in scores:
        arch = item.harder_overall(comparison.archs, alpha)
        if arch is not None:
            harder.setdefault(arch, []).append(item.score)
    if not harder:
        return f"global shift: none (no score's run means differ at p <= {alpha:g})"
    parts = [f"{arch} harder overall for {', '.join(names)}" for arch, names in harder.items()]
    unshifted = len(scores) - sum(len(names) for names in harder.values())
    tail = f"; {unshifted} score(s) without a shift" if unshifted else ""
    return f"global shift (run means, p <= {alpha:g}): " + "; ".join(parts) + tail


def format_summary(study: AssociationStudy, n_top: int = SUMMARY_TOP) -> str:
    """Short console summary of every comparison of a study."""
    return "\n".join(format_comparison_summary(study.settings, c, n_top) for c in study.comparisons)


def _number(value: float, spec: str) -> str:
    """A number for a table cell, ``'.'`` when missing."""
    return format(value, spec) if np.isfinite(value) else MISSING


def _null_cells(item: ScoreSummary) -> list[str]:
    """lambda_95, lambda_p, lambda_p_ci and shift_p of a score (``'.'`` for combined rows)."""
    null, shift = item.lambda_null, item.run_shift
    return [
        _number(null.upper, ".4f") if null else MISSING,
        _number(null.p, ".3g") if null else MISSING,
        _p_interval(null),
        _number(shift.p, ".3g") if shift else MISSING,
    ]


def _p_interval(null: LambdaNull | None) -> str:
    """The relabelling p's interval as one cell: ``exact``, e.g. ``0.0310-0.0720``, or ``'.'``."""
    if null is None or not np.isfinite(null.p):
        return MISSING
    return "exact" if null.exact else f"{null.p_low:.4f}-{null.p_high:.4f}"


#: The console summary's key to its ``lambda`` column.
LAMBDA_LEGEND = (
    "  (lambda: 'noise' within its relabelling null, 'BEYOND' its 95th percentile: a real global difference; "
    f"judged on the relabelling p's whole interval at {LAMBDA_NULL_ALPHA:g}: 'undecided' when it still straddles "
    f"{LAMBDA_NULL_ALPHA:g} after the most relabellings drawn, 'no_verdict' when the runs are too few for any p to reach it)"
)
_LAMBDA_WORDS = {"beyond": "BEYOND", "within": "noise", "undecided": "undecided", "no_verdict": "no_verdict"}


def _lambda_word(item: ScoreSummary) -> str:
    """``noise`` when λ is within its relabelling null, ``BEYOND`` when above its 95th percentile,
    else ``undecided`` or ``no_verdict``
    (:attr:`~gwas_models.analysis.genomic_control.LambdaNull.verdict_code`)."""
    null = item.lambda_null
    if null is None or not np.isfinite(null.p):
        return MISSING
    return _LAMBDA_WORDS[null.verdict_code]


def _global_difference_lines(comparison: ComparisonResult) -> list[str]:
    """What λ and the run means say of a global difference between the architectures, per score."""
    scores = [item for item in comparison.scores if item.lambda_null is not None]
    if not scores:
        return []
    lines = ["lambda_GC against its null (the runs relabelled, every example tested again; no p is divided by lambda):"]
    lines += [f"  {item.score}: {item.lambda_null.describe()}" for item in scores]
    lines.append("global shift, tested on the runs' mean scores over the tested examples, as collected:")
    lines += [f"  {item.score}: {item.run_shift.describe()}" for item in scores if item.run_shift is not None]
    lines.append(
        f"(each score is judged on its own, lambda at {LAMBDA_NULL_ALPHA:g} and the shift at alpha: with many scores, "
        "expect some such findings by chance even when the architectures do not differ)"
    )
    return lines


def _ranked_by(comparison: ComparisonResult) -> str:
    """What ranks the top examples, when it is the paper's ranking rather than a score's p."""
    return f" by the paper's ranking ({RANKING_COLUMN}, the mean -log10 p)" if comparison.combined else ""


def _top_rows(comparison: ComparisonResult, n_top: int) -> list[list[str]]:
    top = comparison.top(n_top)
    direction = "HARDER_IN" if "HARDER_IN" in top else "HARDEST_IN"
    ranked = RANKING_COLUMN in top and top[RANKING_COLUMN].notna().any()  # a combined score: its ranking too
    rows = [["#CHROM", "POS", "ID", "SCORE", "NEG_LOG10_P"] + ([RANKING_COLUMN] if ranked else []) + [direction]]
    for record in top.itertuples(index=False):
        values = dict(zip(top.columns, record))
        rows.append(
            [
                str(values["#CHROM"]),
                str(values["POS"]),
                str(values["ID"]),
                str(values["SCORE"]),
                f"{values['NEG_LOG10_P']:.3f}",
            ]
            + ([f"{values[RANKING_COLUMN]:.3f}"] if ranked else [])
            + [str(values[direction])]
        )
    return rows


def _aligned(rows: list[list[str]], indent: str = "") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
