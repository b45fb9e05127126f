"""`gwasm associate`: per-example association tests between architectures, written as sumstats."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import typer

from gwas_models.errors import InputError
from gwas_models.workflows.associate import (
    DEFAULT_OUTPUT_FORMAT,
    DEFAULT_RESULTS_DIR,
    DEFAULT_SETTINGS,
    NORMALIZATIONS,
    OUTPUT_FORMATS,
    SUMMARY_TOP,
    TESTS,
    AssociationInputs,
    AssociationSettings,
    WrittenComparison,
    associate_from_store,
)
from gwasm_cli.app import app


@app.command("associate")
def associate_command(
    archs: Optional[list[str]] = typer.Argument(
        None, help="Architectures to compare (two or more; three or more add a one-way test).", show_default=False
    ),
    all_archs: bool = typer.Option(False, "--all", help="Compare every architecture of the dataset."),
    scores: Optional[str] = typer.Option(
        None, "--scores", help="Comma-separated scores, e.g. aum,loss [default: every score recorded for these architectures]."
    ),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Dataset in the store [default: the store's only one]."),
    store: Optional[Path] = typer.Option(None, "--store", help="Run store [default: $GWASM_STORE or ./gwasm-store]."),
    out: Optional[str] = typer.Option(
        None, "--out", help=f"Output prefix [default: {DEFAULT_RESULTS_DIR}/<dataset>]; files are <prefix>.<A>_vs_<B>.*"
    ),
    test: str = typer.Option(
        DEFAULT_SETTINGS.test,
        "--test",
        help=(
            f"{', '.join(TESTS)} (permutation: Welch's t with label permutations; moderated: limma's "
            "empirical-Bayes moderated t, which shrinks each example's variance towards a prior fitted "
            "across examples; with --paired, of the paired differences)."
        ),
    ),
    adjust: str = typer.Option(",".join(DEFAULT_SETTINGS.adjust), "--adjust", help="Comma-separated multiple-testing adjustments."),
    alpha: float = typer.Option(
        DEFAULT_SETTINGS.alpha, "--alpha", help="Significance level for the counts (the paper's Bonferroni 0.01)."
    ),
    normalize: str = typer.Option(
        DEFAULT_SETTINGS.normalize,
        "--normalize",
        help=(
            f"{', '.join(NORMALIZATIONS)}. relative: which examples change difficulty relative to their "
            "architecture (normal scores within runs, then each architecture centred on the level trend of its "
            "difference); one architecture better overall is the global-shift line, not per-example hits. none: the "
            "scores as collected. rank, zscore, center_class: each run on its own (rank is refused for heavily "
            "tied scores)."
        ),
    ),
    paired: bool = typer.Option(DEFAULT_SETTINGS.paired, "--paired", help="Pair runs of A and B that share a seed (paired t-test)."),
    trend: bool = typer.Option(
        DEFAULT_SETTINGS.trend,
        "--trend",
        help=(
            "With --test moderated: limma's eBayes(trend=TRUE), the prior variance a smooth function of each "
            "example's mean score (for scores whose variance depends on their level: counts, accuracies)."
        ),
    ),
    robust: bool = typer.Option(
        DEFAULT_SETTINGS.robust,
        "--robust",
        help="With --test moderated: limma's eBayes(robust=TRUE), a prior robust to examples with outlying variances.",
    ),
    covariates: Optional[Path] = typer.Option(
        None,
        "--covariates",
        help=(
            "CSV or TSV of run covariates: columns arch, seed, then covariates (numbers, or words for categories); "
            "each example's test becomes score ~ group + covariates (welch: HC2 SE with Bell-McCaffrey df; "
            "student; moderated: limma lmFit + eBayes). Two architectures, not with --paired or permutation."
        ),
    ),
    permutations: int = typer.Option(
        DEFAULT_SETTINGS.n_permutations, "--permutations", help="Label permutations for --test permutation."
    ),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the permutations [default: fresh, written to the log]."),
    output_format: str = typer.Option(
        DEFAULT_OUTPUT_FORMAT, "--format", help=f"{' or '.join(OUTPUT_FORMATS)} (plink: TSV + Parquet; gwas-ssf: also the GWAS Catalog layout)."
    ),
    ssf_score: Optional[str] = typer.Option(None, "--ssf-score", help="Score for --format gwas-ssf [default: each score]."),
    top: int = typer.Option(SUMMARY_TOP, "--top", min=0, help="Top examples to print per comparison."),
) -> None:
    """Test every training example and score for a difference between architectures.

    For each example, the score of the runs of A is compared with that of the runs of B by an
    independent two-sample test; p-values are adjusted over examples, λGC is reported, and the
    summary statistics go to <prefix>.<A>_vs_<B>.sumstats.tsv / .parquet with a .log.

    Prefer --test moderated (limma's eBayes, Smyth 2004) with few runs per architecture (say 3 to
    10) and many examples whose variances vary smoothly from one example to the next: each
    example's noisy variance borrows strength from all the others, which adds degrees of freedom
    and power while keeping the error rate. It assumes one common prior for the variances of a
    score; when a few examples have wildly different variances, or runs are many (the prior then
    adds little), Welch's t is the safer choice. The log reports the prior (d0, s0^2) per score.

    Example: gwasm associate resnet20 vgg16 --scores aum,loss --adjust bonferroni,fdr_bh
    """
    if all_archs and archs:
        raise InputError("give architectures or --all, not both")
    settings = AssociationSettings(
        test=test,
        adjust=adjust,
        alpha=alpha,
        normalize=normalize,
        paired=paired,
        n_permutations=permutations,
        trend=trend,
        robust=robust,
    )

    def present(written: WrittenComparison) -> None:
        for warning in written.warnings:
            print(f"gwasm: warning: {warning}", file=sys.stderr)
        typer.echo(written.summary(n_top=top))
        typer.echo("  wrote: " + ", ".join(str(path) for path in written.paths.all()))

    associate_from_store(
        None if all_archs else (archs or []),
        store=store,
        dataset=dataset,
        scores=scores,
        settings=settings,
        out_prefix=out,
        output_format=output_format,
        ssf_score=ssf_score,
        seed=seed,
        command_line=_command_line,
        on_comparison=present,
        covariates=covariates,
    )


def _command_line(inputs: AssociationInputs) -> str:
    """The command with every option spelled out, to rerun the same analysis."""
    settings = inputs.settings
    words = ["gwasm", "associate", *inputs.archs, "--dataset", inputs.dataset, "--store", str(inputs.store)]
    words += ["--scores", ",".join(inputs.scores)]
    words += ["--test", settings.test, "--adjust", ",".join(settings.adjust), "--alpha", f"{settings.alpha:g}"]
    words += ["--normalize", settings.normalize, "--out", str(inputs.prefix)]
    if settings.paired:
        words.append("--paired")
    words += [flag for flag, on in (("--trend", settings.trend), ("--robust", settings.robust)) if on]
    if inputs.covariates_file is not None:
        words += ["--covariates", str(inputs.covariates_file)]
    if settings.permutation:
        words += ["--permutations", str(settings.n_permutations), "--seed", str(inputs.seed)]
    if inputs.output_format != DEFAULT_OUTPUT_FORMAT:
        words += ["--format", inputs.output_format] + (["--ssf-score", inputs.ssf_score] if inputs.ssf_score else [])
    return " ".join(shlex.quote(w) for w in words)
