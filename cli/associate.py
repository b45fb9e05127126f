"""`gwasm associate`: per-example association tests between architectures, written as sumstats."""

from __future__ import annotations

import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from gwas_models import __version__
from gwas_models.analysis.multitest import ADJUST_METHODS, parse_adjust_list
from gwas_models.analysis.study import (
    AssociationSettings,
    AssociationStudy,
    ComparisonResult,
    associate,
    format_comparison_summary,
    format_log,
)
from gwas_models.errors import InputError, StoreError
from gwas_models.formats.store import list_archs, load_score_matrices, recorded_scores, resolve_dataset, resolve_store
from gwas_models.formats.sumstats import DEFAULT_RESULTS_DIR, safe_name, write_sumstats
from gwas_models.scores import parse_score_list
from gwasm_cli.app import app

FORMATS = ("plink", "gwas-ssf")


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
    test: str = typer.Option("welch", "--test", help="welch, student or permutation (Welch's t with label permutations)."),
    adjust: str = typer.Option(",".join(ADJUST_METHODS), "--adjust", help="Comma-separated multiple-testing adjustments."),
    alpha: float = typer.Option(0.01, "--alpha", help="Significance level for the counts (the paper's Bonferroni 0.01)."),
    normalize: str = typer.Option(
        "none", "--normalize", help="none, rank or zscore, within each run across examples (rank removes a global shift)."
    ),
    paired: bool = typer.Option(False, "--paired", help="Pair runs of A and B that share a seed (paired t-test)."),
    permutations: int = typer.Option(1000, "--permutations", help="Label permutations for --test permutation."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the permutations [default: fresh, written to the log]."),
    output_format: str = typer.Option(
        "plink", "--format", help="plink (TSV + Parquet) or gwas-ssf (also the GWAS Catalog layout)."
    ),
    ssf_score: Optional[str] = typer.Option(None, "--ssf-score", help="Score for --format gwas-ssf [default: each score]."),
    top: int = typer.Option(5, "--top", help="Top examples to print per comparison."),
) -> None:
    """Test every training example and score for a difference between architectures.

    For each example, the score of the runs of A is compared with that of the runs of B by an
    independent two-sample test; p-values are adjusted over examples, λGC is reported, and the
    summary statistics go to <prefix>.<A>_vs_<B>.sumstats.tsv / .parquet with a .log.

    Example: gwasm associate resnet20 vgg16 --scores aum,loss --adjust bonferroni,fdr_bh
    """
    settings = AssociationSettings(
        test=test.strip().lower(),
        adjust=parse_adjust_list(adjust),
        alpha=alpha,
        normalize=normalize.strip().lower(),
        paired=paired,
        n_permutations=permutations,
    )
    output_format = output_format.strip().lower()
    if output_format not in FORMATS:
        raise InputError(f"unknown --format {output_format!r}; choose one of {', '.join(FORMATS)}")
    if top < 0:
        raise InputError(f"--top must be at least 0, got {top}")

    store_path = resolve_store(store)
    dataset_name = resolve_dataset(store_path, dataset)
    chosen = _choose_archs(store_path, dataset_name, archs or [], all_archs)
    score_names = _choose_scores(store_path, dataset_name, chosen, scores)
    ssf_scores = _choose_ssf_scores(output_format, ssf_score, score_names)

    matrices = load_score_matrices(store_path, dataset_name, score_names, chosen)
    if settings.permutation and seed is None:
        seed = int(np.random.SeedSequence().entropy % 2**63)
    rng = np.random.default_rng(seed) if seed is not None else None
    prefix = out if out is not None else f"{DEFAULT_RESULTS_DIR}/{safe_name(dataset_name)}"
    header = {
        "command (effective)": _command_line(chosen, score_names, dataset_name, store_path, prefix, settings, seed, output_format, ssf_score),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "gwas-models": __version__,
        "store": str(store_path),
    }
    if seed is not None:
        header["permutation seed"] = str(seed)

    def write_and_report(design: AssociationStudy, comparison: ComparisonResult) -> None:
        # Each comparison is written as soon as it is done, and its table then dropped: every pair
        # of many architectures over a large dataset would not fit in memory at once.
        paths = write_sumstats(
            comparison.sumstats,
            prefix,
            *comparison.archs,
            log_text=format_log(design, comparison, header),
            gwas_ssf_scores=ssf_scores if comparison.kind == "pair" else (),
            ssf_metadata={"dataset": design.dataset},
        )
        for warning in comparison.warnings:
            print(f"gwasm: warning: {warning}", file=sys.stderr)
        typer.echo(format_comparison_summary(design.settings, comparison, n_top=top))
        typer.echo("  wrote: " + ", ".join(str(path) for path in paths.all()))

    associate(
        matrices,
        chosen,
        test=settings.test,
        adjust=settings.adjust,
        alpha=settings.alpha,
        normalize=settings.normalize,
        paired=settings.paired,
        n_permutations=settings.n_permutations,
        rng=rng,
        on_comparison=write_and_report,
        keep_tables=False,
    )


def _choose_archs(store: Path, dataset: str, archs: list[str], all_archs: bool) -> list[str]:
    present = list_archs(store, dataset)
    if all_archs and archs:
        raise InputError("give architectures or --all, not both")
    chosen = present if all_archs else archs
    unknown = [a for a in chosen if a not in present]
    if unknown:
        raise StoreError(
            f"unknown architecture {unknown[0]!r} for dataset {dataset!r}; architectures there: {', '.join(present) or 'none'}"
        )
    repeated = sorted({a for a in chosen if chosen.count(a) > 1})
    if repeated:
        raise InputError(f"architecture {repeated[0]!r} is named twice")
    if len(chosen) < 2:
        where = f"dataset {dataset!r} has only {', '.join(present) or 'no architecture'}" if all_archs else f"got {len(chosen)}"
        raise InputError(f"associate needs at least two architectures ({where}); e.g. gwasm associate resnet20 vgg11")
    return chosen


def _choose_scores(store: Path, dataset: str, archs: list[str], text: Optional[str]) -> list[str]:
    recorded = recorded_scores(store, dataset, archs)
    if text is None or text.strip() in ("", "all"):
        if not recorded:
            raise StoreError(f"no score was recorded for every one of {', '.join(archs)} in dataset {dataset!r}")
        return recorded
    wanted = list(parse_score_list(text))
    absent = [s for s in wanted if s not in recorded]
    if absent:
        raise InputError(
            f"score {absent[0]!r} was not recorded for the runs of {', '.join(archs)}; recorded there: {', '.join(recorded) or 'none'}"
        )
    return wanted


def _choose_ssf_scores(output_format: str, ssf_score: Optional[str], scores: list[str]) -> list[str]:
    if output_format != "gwas-ssf":
        if ssf_score is not None:
            raise InputError("--ssf-score needs --format gwas-ssf")
        return []
    if ssf_score is None:
        return scores
    if ssf_score not in scores:
        raise InputError(f"--ssf-score {ssf_score!r} is not among the scores tested ({', '.join(scores)})")
    return [ssf_score]


def _command_line(
    archs: list[str],
    scores: list[str],
    dataset: str,
    store: Path,
    prefix: str,
    settings: AssociationSettings,
    seed: Optional[int],
    output_format: str,
    ssf_score: Optional[str],
) -> str:
    """The command with every option spelled out, to rerun the same analysis."""
    words = ["gwasm", "associate", *archs, "--dataset", dataset, "--store", str(store), "--scores", ",".join(scores)]
    words += ["--test", settings.test, "--adjust", ",".join(settings.adjust), "--alpha", f"{settings.alpha:g}"]
    words += ["--normalize", settings.normalize, "--out", prefix]
    if settings.paired:
        words.append("--paired")
    if settings.permutation:
        words += ["--permutations", str(settings.n_permutations), "--seed", str(seed)]
    if output_format != "plink":
        words += ["--format", output_format] + (["--ssf-score", ssf_score] if ssf_score else [])
    return " ".join(shlex.quote(w) for w in words)
