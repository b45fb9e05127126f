"""The text of an association study: the ``.log`` of each comparison and the console summary."""

from __future__ import annotations

from typing import Mapping

from gwas_models.analysis.permutation import count_labelings
from gwas_models.analysis.study import AssociationSettings, AssociationStudy, ComparisonResult
from gwas_models.formats.sumstats_schema import ADJUST_COLUMNS
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
    """The ``.log`` text of one comparison: inputs, runs used, λGC, counts, warnings, top examples.

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
    lines.append(settings.describe())
    lines.append(f"examples: {study.n_examples}")
    lines.append("runs used:")
    for arch in comparison.archs:
        seeds = study.runs[arch]
        lines.append(f"  {arch}: {len(seeds)} runs, seeds {format_seeds(seeds) or 'none'}")
    lines.append("")
    methods = list(settings.adjust) + (["EMP2"] if settings.permutation and comparison.kind == "pair" else [])
    lines.append(f"per score (significant = adjusted p <= {settings.alpha:g}):")
    head = ["score", "tested", "untested", "lambda_GC"] + [ADJUST_COLUMNS.get(m, m) for m in methods]
    rows = [head]
    for item in comparison.scores:
        untested = ",".join(f"{code}={count}" for code, count in item.errcodes.items()) or "0"
        rows.append(
            [item.score, str(item.n_tested), untested, f"{item.lambda_gc:.4f}"]
            + [str(item.n_significant.get(m, "")) for m in methods]
        )
    lines += _aligned(rows, indent="  ")
    if settings.permutation and comparison.kind == "pair":
        item = comparison.scores[0]
        lines.append(
            f"smallest reachable permutation p: {item.smallest_p:.3g} "
            f"(runs allow {_labelings_text(study, comparison)} distinct labelings; {settings.n_permutations} permutations)"
        )
    lines.append("")
    if len(study.scores) > 1 or comparison.kind == "oneway":
        lines.append(
            "combined rows: SCORE=combined holds the mean over scores of -log10 p (-log10 of the geometric mean p); "
            "not a p-value, so not adjusted"
        )
        if comparison.kind == "oneway":
            lines.append("SCORE=combined_pairs holds the mean of -log10 p over every pair of architectures and every score")
    lines.append(
        "ERRCODE: CONST zero variance; FEW_RUNS fewer than 2 finite runs in a group; NAN no finite score in a group "
        "(or a non-finite statistic); such examples have no p and are left out of adjustment, lambda_GC and combined rows "
        "(a combined row is '.' when any score was tested, else its scores' shared code, or MIXED)"
    )
    lines.append("")
    lines.append("warnings:" if comparison.warnings else "warnings: none")
    lines += [f"  - {w}" for w in comparison.warnings]
    lines.append("")
    lines.append(f"top {n_top} examples:")
    lines += _aligned(_top_rows(comparison, n_top), indent="  ")
    return "\n".join(lines) + "\n"


def format_comparison_summary(settings: AssociationSettings, comparison: ComparisonResult, n_top: int = SUMMARY_TOP) -> str:
    """Short console summary of one comparison: λGC and significant examples per score, top examples.

    Parameters
    ----------
    settings : AssociationSettings
    comparison : ComparisonResult
    n_top : int
        Examples listed (none when 0, or when the comparison's table was dropped).
    """
    method = "bonferroni" if "bonferroni" in settings.adjust else settings.adjust[0]
    title = comparison.label if comparison.kind == "pair" else f"one-way ({comparison.label})"
    lines = [f"{title}:"]
    rows = [["score", "tested", "lambda_GC", f"{ADJUST_COLUMNS[method]}<={settings.alpha:g}"]]
    for item in comparison.scores:
        rows.append([item.score, str(item.n_tested), f"{item.lambda_gc:.3f}", str(item.n_significant[method])])
    lines += _aligned(rows, indent="  ")
    if n_top > 0 and len(comparison.sumstats):
        lines.append("  top examples:")
        lines += _aligned(_top_rows(comparison, n_top), indent="    ")
    return "\n".join(lines)


def format_summary(study: AssociationStudy, n_top: int = SUMMARY_TOP) -> str:
    """Short console summary of every comparison of a study."""
    return "\n".join(format_comparison_summary(study.settings, c, n_top) for c in study.comparisons)


def _labelings_text(study: AssociationStudy, comparison: ComparisonResult) -> str:
    n_a, n_b = len(study.runs[comparison.a]), len(study.runs[comparison.b])
    return str(count_labelings(n_a, n_b, study.settings.paired))


def _top_rows(comparison: ComparisonResult, n_top: int) -> list[list[str]]:
    top = comparison.top(n_top)
    direction = "HARDER_IN" if "HARDER_IN" in top else "HARDEST_IN"
    rows = [["#CHROM", "POS", "ID", "SCORE", "NEG_LOG10_P", direction]]
    for record in top.itertuples(index=False):
        values = dict(zip(top.columns, record))
        rows.append(
            [
                str(values["#CHROM"]),
                str(values["POS"]),
                str(values["ID"]),
                str(values["SCORE"]),
                f"{values['NEG_LOG10_P']:.3f}",
                str(values[direction]),
            ]
        )
    return rows


def _aligned(rows: list[list[str]], indent: str = "") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
