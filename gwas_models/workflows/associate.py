"""Association tests between the architectures of a run store, written as summary statistics.

:func:`associate_from_store` is what ``gwasm associate`` does: it finds the store and dataset,
chooses the architectures and scores, loads the runs, runs the study
(:func:`~gwas_models.analysis.study.associate`) and writes each comparison's files
(:func:`~gwas_models.formats.sumstats.write_sumstats`) as soon as it is done. Each comparison is then
handed to a callback, for the caller to present (the console summary and the warnings), before its
table is dropped: every pair of many architectures over a large dataset would not fit in memory at
once.

The text of a comparison is made by :meth:`WrittenComparison.summary` (console) and
:func:`~gwas_models.analysis.association_log.format_log` (the ``.log``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from gwas_models import __version__
from gwas_models.analysis.association import NORMALIZATIONS
from gwas_models.analysis.association_log import SUMMARY_TOP, format_comparison_summary, format_log
from gwas_models.analysis.study import TESTS, AssociationSettings, AssociationStudy, ComparisonResult, ScoreSummary, associate, check_archs
from gwas_models.analysis.covariates import RunCovariates
from gwas_models.errors import InputError, StoreError
from gwas_models.formats import store as run_store
from gwas_models.formats.covariates_file import read_covariates_table
from gwas_models.formats.results import DEFAULT_RESULTS_DIR
from gwas_models.formats.sumstats import OUTPUT_FORMATS, SumstatsPaths, comparison_stem, safe_name, write_sumstats
from gwas_models.scores import parse_score_list

__all__ = [
    "comparison_stem",
    "safe_name",
    "DEFAULT_OUTPUT_FORMAT",
    "DEFAULT_RESULTS_DIR",
    "DEFAULT_SETTINGS",
    "NORMALIZATIONS",
    "OUTPUT_FORMATS",
    "SUMMARY_TOP",
    "TESTS",
    "AssociationInputs",
    "AssociationSettings",
    "StoreAssociation",
    "WrittenComparison",
    "associate_from_store",
    "choose_scores",
]

#: The settings of an association when none are given (Welch's t, all five adjustments, alpha 0.01).
DEFAULT_SETTINGS = AssociationSettings()
#: The files written when no output format is given: one TSV per score, the Parquet long table, the log.
DEFAULT_OUTPUT_FORMAT = OUTPUT_FORMATS[0]


@dataclass(frozen=True)
class AssociationInputs:
    """What an association of a store ran on, once every default was resolved.

    Attributes
    ----------
    store : Path
    dataset : str
    archs, scores : tuple of str
        The architectures compared and the scores tested, in order.
    settings : AssociationSettings
    prefix : str or Path
        Output prefix: files are ``<prefix>.<A>_vs_<B>.*``.
    output_format : str
        One of :data:`OUTPUT_FORMATS`.
    ssf_score : str or None
        The one score written in GWAS-SSF layout, as asked (None: every score).
    ssf_scores : tuple of str
        The scores written in GWAS-SSF layout (none for ``plink``).
    seed : int or None
        Seed of the permutations (drawn afresh for permutation tests when not given).
    covariates_file : Path or None
        The run covariate file the settings' covariates were read from.
    """

    store: Path
    dataset: str
    archs: tuple[str, ...]
    scores: tuple[str, ...]
    settings: AssociationSettings
    prefix: str | Path
    output_format: str
    ssf_score: str | None
    ssf_scores: tuple[str, ...]
    seed: int | None
    covariates_file: Path | None = None


@dataclass(frozen=True)
class StoreAssociation:
    """What :func:`associate_from_store` did.

    Attributes
    ----------
    inputs : AssociationInputs
    study : AssociationStudy
        Every comparison's summary and warnings; the tables themselves were written and dropped.
    written : tuple of SumstatsPaths
        The files of each comparison, in the order of ``study.comparisons``.
    """

    inputs: AssociationInputs
    study: AssociationStudy
    written: tuple[SumstatsPaths, ...]


@dataclass(frozen=True)
class WrittenComparison:
    """One comparison, just written: what a caller presents of it.

    Its table is still there while the ``on_comparison`` callback runs, and dropped from the
    study afterwards; keep only what you need of it.

    Attributes
    ----------
    settings : AssociationSettings
    comparison : ComparisonResult
    paths : SumstatsPaths
        The files written.
    """

    settings: AssociationSettings
    comparison: ComparisonResult
    paths: SumstatsPaths

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.comparison.warnings

    def summary(self, n_top: int = SUMMARY_TOP) -> str:
        """Short text of the comparison: λGC and significant examples per score, ``n_top`` examples."""
        return format_comparison_summary(self.settings, self.comparison, n_top)


#: Called once per comparison, just after its files were written.
OnWritten = Callable[[WrittenComparison], None]


def associate_from_store(
    archs: Sequence[str] | None = None,
    *,
    store: str | os.PathLike | None = None,
    dataset: str | None = None,
    scores: str | Iterable[str] | None = None,
    settings: AssociationSettings = DEFAULT_SETTINGS,
    out_prefix: str | os.PathLike | None = None,
    output_format: str = DEFAULT_OUTPUT_FORMAT,
    ssf_score: str | None = None,
    seed: int | None = None,
    command_line: Callable[[AssociationInputs], str] | None = None,
    on_comparison: OnWritten | None = None,
    covariates: str | os.PathLike | None = None,
) -> StoreAssociation:
    """Test every example and score of a store for a difference between architectures; write
    each comparison as summary statistics.

    Parameters
    ----------
    archs : sequence of str, optional
        Architectures to compare, in order (default: every architecture of the dataset). Two give
        one pair; three or more give every pair plus Welch's one-way ANOVA.
    store, dataset : optional
        Where the runs are (default: ``$GWASM_STORE`` or ``./gwasm-store``, and its only dataset).
    scores : str or iterable of str, optional
        Scores to test, or a comma-separated list (default, or ``"all"``: every score recorded
        for all of ``archs``).
    settings : AssociationSettings
        How to test.
    out_prefix : path, optional
        Output prefix (default: ``gwasm-results/<dataset>``); files are ``<prefix>.<A>_vs_<B>.*``.
    output_format : {"plink", "gwas-ssf"}
        ``plink``: ``<stem>.<score>.sumstats.tsv`` per score (the combined rows included), the
        long table ``<stem>.sumstats.parquet`` and the log; ``gwas-ssf``: also the GWAS Catalog
        layout of pair tables (see :mod:`gwas_models.formats.sumstats`).
    ssf_score : str, optional
        The one score to write in GWAS-SSF layout (default: each score); needs ``gwas-ssf``.
    seed : int, optional
        Seed of the permutations of ``test="permutation"`` (default: drawn afresh and written to
        the log, so the run can be repeated).
    command_line : callable, optional
        Makes, from the resolved inputs, the command that reruns this analysis: the first line of
        each ``.log`` header ("command (effective)"). A front end knows its own syntax.
    on_comparison : callable, optional
        ``on_comparison(written)`` with a :class:`WrittenComparison`, called once per comparison as
        soon as its files are written (e.g. to print its summary and warnings).
    covariates : path, optional
        A run covariate file (:mod:`gwas_models.formats.covariates_file`: ``arch``, ``seed``,
        covariates): each example's test is then adjusted for them (the settings' ``covariates``).

    Returns
    -------
    StoreAssociation

    Raises
    ------
    InputError, StoreError
        Bad settings or output options, an unknown, repeated or missing architecture, a score
        that was not recorded, an architecture with fewer than two runs, unmatched seeds for a
        paired test. Nothing is written then.
    """
    output_format = str(output_format).strip().lower()
    if output_format not in OUTPUT_FORMATS:
        raise InputError(
            f"output_format must be one of {', '.join(OUTPUT_FORMATS)}, got {output_format!r}", parameter="output_format"
        )
    store_path = run_store.resolve_store(store)
    dataset_name = run_store.resolve_dataset(store_path, dataset)
    present = run_store.list_archs(store_path, dataset_name)
    chosen = check_archs(present if archs is None else archs, present, where=f" for dataset {dataset_name!r} in {store_path}")
    score_names = choose_scores(store_path, dataset_name, chosen, scores)
    ssf_scores = _choose_ssf_scores(output_format, ssf_score, score_names)

    covariates_file = None
    if covariates is not None:
        covariates_file = Path(covariates)
        table = RunCovariates.from_frame(read_covariates_table(covariates_file), where=covariates_file.name)
        settings = replace(settings, covariates=table)
    matrices = run_store.load_score_matrices(store_path, dataset_name, score_names, chosen)
    if settings.permutation and seed is None:
        seed = int(np.random.SeedSequence().entropy % 2**63)
    inputs = AssociationInputs(
        store=store_path,
        dataset=dataset_name,
        archs=chosen,
        scores=score_names,
        settings=settings,
        prefix=out_prefix if out_prefix is not None else DEFAULT_RESULTS_DIR / safe_name(dataset_name),
        output_format=output_format,
        ssf_score=ssf_score,
        ssf_scores=ssf_scores,
        seed=seed,
        covariates_file=covariates_file,
    )
    header = _log_header(inputs, command_line)
    written: list[SumstatsPaths] = []

    def write(design: AssociationStudy, comparison: ComparisonResult) -> None:
        paths = write_sumstats(
            comparison.sumstats,
            inputs.prefix,
            *comparison.archs,
            log_text=format_log(design, comparison, header),
            gwas_ssf_scores=ssf_scores if comparison.kind == "pair" else (),
            ssf_metadata={"dataset": design.dataset},
            metadata=_provenance(inputs, comparison, design.runs),
        )
        written.append(paths)
        if on_comparison is not None:
            on_comparison(WrittenComparison(design.settings, comparison, paths))

    rng = np.random.default_rng(seed) if seed is not None else None
    study = associate(matrices, chosen, settings=settings, rng=rng, on_comparison=write, keep_tables=False)
    return StoreAssociation(inputs=inputs, study=study, written=tuple(written))


def choose_scores(store: Path, dataset: str, archs: Sequence[str], scores: str | Iterable[str] | None) -> tuple[str, ...]:
    """The scores to test: those asked for, each recorded for every architecture, or (default, or
    ``"all"``) every score recorded for all of them.

    Raises
    ------
    InputError
        An unknown score, or one not recorded for every architecture.
    StoreError
        No score recorded for all the architectures.
    """
    recorded = run_store.recorded_scores(store, dataset, archs)
    text = scores if isinstance(scores, str) or scores is None else ",".join(scores)
    if text is None or text.strip() in ("", "all"):
        if not recorded:
            raise StoreError(f"no score was recorded for every one of {', '.join(archs)} in dataset {dataset!r}")
        return tuple(recorded)
    wanted = parse_score_list(text)
    absent = [s for s in wanted if s not in recorded]
    if absent:
        raise InputError(
            f"score {absent[0]!r} was not recorded for the runs of {', '.join(archs)}; recorded there: {', '.join(recorded) or 'none'}"
        )
    return wanted


def _choose_ssf_scores(output_format: str, ssf_score: str | None, scores: Sequence[str]) -> tuple[str, ...]:
    if output_format != "gwas-ssf":
        if ssf_score is not None:
            raise InputError("ssf_score needs the gwas-ssf output format", parameter="ssf_score")
        return ()
    if ssf_score is None:
        return tuple(scores)
    if ssf_score not in scores:
        raise InputError(f"ssf_score {ssf_score!r} is not among the scores tested ({', '.join(scores)})", parameter="ssf_score")
    return (ssf_score,)


def _log_header(inputs: AssociationInputs, command_line: Callable[[AssociationInputs], str] | None) -> dict[str, str]:
    """The ``key: value`` lines that open every ``.log`` of the association."""
    header = {"command (effective)": command_line(inputs)} if command_line is not None else {}
    header.update(
        {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "gwas-models": __version__,
            "store": str(inputs.store),
        }
    )
    if inputs.seed is not None:
        header["permutation seed"] = str(inputs.seed)
    if inputs.covariates_file is not None:
        header["covariates file"] = str(inputs.covariates_file)
    return header


def _provenance(inputs: AssociationInputs, comparison: ComparisonResult, runs: Mapping[str, Sequence[int]]) -> dict[str, object]:
    """What the Parquet file records of where its table came from (read by plots, e.g. the gallery)."""
    return {
        "store": str(Path(inputs.store).resolve()),
        "dataset": inputs.dataset,
        "archs": list(comparison.archs),
        "scores": list(inputs.scores),
        "test": inputs.settings.test,
        "trend": inputs.settings.trend,
        "robust": inputs.settings.robust,
        "covariates": list(inputs.settings.covariates.names) if inputs.settings.covariates is not None else [],
        "normalize": inputs.settings.normalize,
        "alpha": inputs.settings.alpha,
        "adjust": list(inputs.settings.adjust),
        "paired": inputs.settings.paired,
        "runs": {arch: list(runs.get(arch, ())) for arch in comparison.archs},
        "lambda": _lambda_provenance(comparison),
        "global_shift": _shift_provenance(comparison, inputs.settings.alpha),
    }


def _shift_provenance(comparison: ComparisonResult, alpha: float) -> dict[str, dict[str, float | str | None]]:
    """Each score's run-level test of the global shift (the global question, reported on its own
    line): the difference of run means B - A, its p, and the architecture harder overall at alpha."""

    number = _json_number
    return {
        item.score: {
            "difference": number(item.run_shift.difference),
            "p": number(item.run_shift.p),
            "harder_overall": item.harder_overall(comparison.archs, alpha),
        }
        for item in comparison.scores
        if item.run_shift is not None
    }


def _json_number(value: float | None) -> float | None:
    """A float for JSON metadata; None for a missing or non-finite one."""
    return float(value) if value is not None and np.isfinite(value) else None


def _lambda_provenance(comparison: ComparisonResult) -> dict[str, dict[str, float | bool | str | None]]:
    """Each score's λGC, the 95th percentile of its relabelling null, the relabelling p with its
    Monte Carlo interval, whether λ is beyond it and the verdict
    (:attr:`~gwas_models.analysis.genomic_control.LambdaNull.verdict_code`), for the plots and the
    report to show λ against run-to-run noise without recomputing the null (JSON: missing values
    are None). Files of older versions have only ``lambda_gc``, ``null_95`` and ``beyond``."""

    number = _json_number

    def entry(item: ScoreSummary) -> dict[str, float | bool | str | None]:
        null = item.lambda_null
        return {
            "lambda_gc": number(item.lambda_gc),
            "null_95": number(null.upper) if null is not None else None,
            # The log's verdict: beyond run-to-run noise (the report says which, as the log does).
            "beyond": bool(null.beyond) if null is not None else None,
            # verdict_code, or "no_null" when no relabelling null could be formed (no tested example).
            "verdict": (null.verdict_code if np.isfinite(null.p) else "no_null") if null is not None else None,
            "p": number(null.p) if null is not None else None,
            "p_low": number(null.p_low) if null is not None else None,
            "p_high": number(null.p_high) if null is not None else None,
            "exact": bool(null.exact) if null is not None else None,
        }

    return {item.score: entry(item) for item in comparison.scores}
