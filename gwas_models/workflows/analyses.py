"""The paper's difficulty analyses (§4.1–4.2) and the capacity study, from the run store.

Each function reads the runs of one architecture (or, for :func:`sizes`, of several), calls one
function of :mod:`gwas_models.analysis.difficulty` (or :mod:`gwas_models.analysis.capacity`),
draws its figure, and writes a TSV per table and the figure under an output prefix (default
``./gwasm-results/<dataset>.<arch>.<analysis>``). Everything is computed and drawn before anything
is written, so a failing analysis leaves no output behind.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd
from matplotlib.figure import Figure

from gwas_models.analysis import difficulty
from gwas_models.analysis.difficulty import DEFAULT_BINS, DEFAULT_INTERVAL, DEFAULT_REPEATS
from gwas_models.errors import InputError, StoreError
from gwas_models.formats import store as run_store
from gwas_models.formats.atomic import atomic_path
from gwas_models.formats.results import DEFAULT_RESULTS_DIR
from gwas_models.formats.sumstats import safe_name
from gwas_models.matrix import ScoreMatrix
from gwas_models.plots import difficulty as difficulty_plots
from gwas_models.plots._style import SUPPORTED_FORMATS, save_figure
from gwas_models.scores import SCORE_NAMES, SCORES

#: Extensions that an output prefix may be given with; they are dropped from the prefix.
KNOWN_SUFFIXES = (".tsv", *SUPPORTED_FORMATS)
#: Figure formats of the analyses.
FIGURE_FORMATS = tuple(SUPPORTED_FORMATS.values())


@dataclass(frozen=True)
class AnalysisOutput:
    """What one analysis produced.

    Attributes
    ----------
    dataset : str
    notes : tuple of str
        Scores left out and why, and other remarks for the user.
    written : tuple of Path
        The tables, then the figure.
    lines : tuple of str
        The analysis' answer in words (e.g. runs needed, share of variance), to show the user.
    tables : dict
        The tables written, by file suffix.
    """

    dataset: str
    notes: tuple[str, ...]
    written: tuple[Path, ...]
    lines: tuple[str, ...] = ()
    tables: Mapping[str, pd.DataFrame] = field(default_factory=dict, repr=False)


# --------------------------------------------------------------------------------------------
# Reading the inputs
# --------------------------------------------------------------------------------------------


def _requested_scores(
    scores: str | Iterable[str] | None, recorded: list[str], imported: list[str], allow_imported: bool
) -> tuple[list[str], list[str]]:
    """Split the requested scores into built-in and imported names (default: all recorded, and all imported)."""
    if scores is None or (isinstance(scores, str) and scores.strip() in ("", "all")):
        return recorded, (imported if allow_imported else [])
    parts = scores.split(",") if isinstance(scores, str) else list(scores)
    names = list(dict.fromkeys(part.strip() for part in parts if part.strip()))
    built_in, single_run = [], []
    for name in names:
        if name in SCORES:
            built_in.append(name)
        elif name in imported and allow_imported:
            single_run.append(name)
        elif name in imported:
            raise InputError(
                f"{name!r} is an imported single-run score: it has no runs to analyse (only the correlation analysis uses it)"
            )
        else:
            valid = list(SCORE_NAMES) + (imported if allow_imported else [])
            raise InputError(f"unknown score {name!r}; valid scores: {', '.join(valid)}")
    return built_in, single_run


def load_arch_scores(
    arch: str,
    store: str | os.PathLike | None = None,
    dataset: str | None = None,
    scores: str | Iterable[str] | None = None,
    allow_imported: bool = False,
) -> tuple[str, difficulty.ScreenedScores]:
    """The dataset name and the usable scores of ``arch``'s runs.

    Parameters
    ----------
    arch : str
        Architecture whose runs to read.
    store, dataset : optional
        Where (default: ``$GWASM_STORE`` or ``./gwasm-store``, and its only dataset).
    scores : str or iterable of str, optional
        Score names, or a comma-separated list (default: every score recorded for ``arch``, plus
        every imported score when ``allow_imported``).
    allow_imported : bool
        Accept imported single-run scores (only the correlation analysis can use them).
    """
    store_path = run_store.resolve_store(store)
    dataset_name = run_store.resolve_dataset(store_path, dataset)
    archs = run_store.list_archs(store_path, dataset_name)
    if arch not in archs:
        raise StoreError(
            f"no runs of {arch!r} for dataset {dataset_name!r} in {store_path}; "
            f"architectures there: {', '.join(archs) or 'none'}"
        )
    imported_names = run_store.list_imported_scores(store_path, dataset_name)
    recorded = run_store.recorded_scores(store_path, dataset_name, [arch])
    built_in, single_run = _requested_scores(scores, recorded, imported_names, allow_imported)
    if not built_in:
        raise InputError(f"no score recorded for {arch!r} in dataset {dataset_name!r}")
    matrices = run_store.load_score_matrices(store_path, dataset_name, built_in, [arch])
    example_id = next(iter(matrices.values())).example_id
    imported = []
    for name in single_run:
        values, higher_is_harder = run_store.read_imported_score(store_path, dataset_name, name)
        imported.append(difficulty.single_run_score(name, values, higher_is_harder, example_id))
    screened = difficulty.screen_scores(matrices, imported)
    if not screened.matrices:
        raise InputError(f"no usable score for {arch!r}: " + "; ".join(screened.notes()))
    return dataset_name, screened


def _n_runs(screened: difficulty.ScreenedScores) -> int:
    return next(iter(screened.matrices.values())).n_runs if screened.matrices else 0


# --------------------------------------------------------------------------------------------
# Writing the outputs
# --------------------------------------------------------------------------------------------


def output_prefix(out: str | os.PathLike | None, dataset: str, *names: str) -> Path:
    """The output prefix: ``out`` without a known extension, else ``./gwasm-results/<dataset>.<names...>``.

    Dataset and architecture names take the same file-name-safe form as in the summary statistics.
    """
    if out is None:
        return DEFAULT_RESULTS_DIR / ".".join(safe_name(part) for part in (dataset, *names))
    out = Path(out)
    # A prefix given with one of our extensions would otherwise end in ".tsv.tsv".
    return out.with_suffix("") if out.suffix.lower() in KNOWN_SUFFIXES else out


def _with_suffix(prefix: Path, suffix: str) -> Path:
    return prefix.with_name(prefix.name + suffix)


def _write_tsv(table: pd.DataFrame, path: Path) -> Path:
    """Write a TSV atomically (temporary file, then rename), so no half-written table remains."""
    with atomic_path(path) as temporary:
        table.to_csv(temporary, sep="\t", index=False, float_format="%.6g", na_rep="NA")
    return path


def _check_figure_format(figure_format: str) -> str:
    if figure_format not in FIGURE_FORMATS:
        raise InputError(
            f"figure_format must be one of {', '.join(FIGURE_FORMATS)}, got {figure_format!r}", parameter="figure_format"
        )
    return figure_format


def _save(
    dataset: str,
    notes: Iterable[str],
    tables: Mapping[str, pd.DataFrame],
    figure: Figure,
    prefix: Path,
    figure_format: str,
    lines: Iterable[str] = (),
) -> AnalysisOutput:
    """Write every table (``<prefix><suffix>``) and then the figure."""
    written = [_write_tsv(table, _with_suffix(prefix, suffix)) for suffix, table in tables.items()]
    written.append(save_figure(figure, _with_suffix(prefix, f".{figure_format}")))
    return AnalysisOutput(dataset, tuple(notes), tuple(written), tuple(lines), dict(tables))


# --------------------------------------------------------------------------------------------
# The analyses
# --------------------------------------------------------------------------------------------


def variance(
    arch: str,
    store: str | os.PathLike | None = None,
    dataset: str | None = None,
    scores: str | Iterable[str] | None = None,
    n_bins: int = DEFAULT_BINS,
    interval: float = DEFAULT_INTERVAL,
    out: str | os.PathLike | None = None,
    figure_format: str = "png",
) -> AnalysisOutput:
    """Per-run spread of each score along the ranking of examples by mean score (paper Figure 2).

    See :func:`gwas_models.analysis.difficulty.score_variance`; the other parameters as in
    :func:`load_arch_scores` and :func:`output_prefix`.
    """
    _check_figure_format(figure_format)
    dataset_name, screened = load_arch_scores(arch, store, dataset, scores)
    table = difficulty.score_variance(screened.matrices, n_bins=n_bins, interval=interval)
    figure = difficulty_plots.plot_variance(table)
    figure.suptitle(f"{dataset_name} · {arch}: variance over {_n_runs(screened)} runs", fontsize=10)
    prefix = output_prefix(out, dataset_name, arch, "variance")
    return _save(dataset_name, screened.notes(), {".tsv": table}, figure, prefix, figure_format)


def stability(
    arch: str,
    store: str | os.PathLike | None = None,
    dataset: str | None = None,
    scores: str | Iterable[str] | None = None,
    repeats: int = DEFAULT_REPEATS,
    seed: int = 0,
    target_rank_error: float | None = None,
    out: str | os.PathLike | None = None,
    figure_format: str = "png",
) -> AnalysisOutput:
    """Rank and 50%-split changes between averages of two disjoint sets of n runs (paper Figure 3).

    With ``target_rank_error``, the output's lines say how many runs per average give a median
    rank change at most that fraction of the dataset (:func:`~gwas_models.analysis.difficulty.runs_for_rank_error`).
    """
    _check_figure_format(figure_format)
    if target_rank_error is not None:
        difficulty.check_rank_error_target(target_rank_error)
    dataset_name, screened = load_arch_scores(arch, store, dataset, scores)
    table = difficulty.score_stability(screened.matrices, repeats=repeats, seed=seed)
    lines: list[str] = []
    if target_rank_error is not None:
        lines = _runs_needed_lines(difficulty.runs_for_rank_error(table, target_rank_error))
    figure = difficulty_plots.plot_stability(table)
    figure.suptitle(f"{dataset_name} · {arch}: stability of ranks and splits ({_n_runs(screened)} runs)", fontsize=10)
    prefix = output_prefix(out, dataset_name, arch, "stability")
    return _save(dataset_name, screened.notes(), {".tsv": table}, figure, prefix, figure_format, lines)


def _runs_needed_lines(needed: pd.DataFrame) -> list[str]:
    lines = []
    for row in needed.itertuples(index=False):
        line = (
            f"{row.score}: {row.runs_needed} runs per average for a median rank change "
            f"<= {row.target_rank_error:.2%}"
        )
        if row.extrapolated:
            line += (
                f" (extrapolated with the 1/sqrt(n) law beyond the {row.max_measured_runs} runs measured, "
                f"which give {row.rank_change_at_max:.2%})"
            )
        lines.append(line)
    return lines


def correlate(
    arch: str,
    store: str | os.PathLike | None = None,
    dataset: str | None = None,
    scores: str | Iterable[str] | None = None,
    out: str | os.PathLike | None = None,
    figure_format: str = "png",
) -> AnalysisOutput:
    """Spearman correlations between scores: mean to mean, mean to run, run to run (paper Figure 4).

    Imported single-run scores join the mean-to-mean matrix only.
    """
    _check_figure_format(figure_format)
    dataset_name, screened = load_arch_scores(arch, store, dataset, scores, allow_imported=True)
    result = difficulty.score_correlations(screened.matrices, screened.imported)
    figure = difficulty_plots.plot_correlations(result)
    prefix = output_prefix(out, dataset_name, arch, "correlate")
    return _save(dataset_name, screened.notes(), {".tsv": result.table()}, figure, prefix, figure_format)


def pca(
    arch: str,
    store: str | os.PathLike | None = None,
    dataset: str | None = None,
    scores: str | Iterable[str] | None = None,
    repeats: int = DEFAULT_REPEATS,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    figure_format: str = "png",
) -> AnalysisOutput:
    """Principal components of the quantile-normalised mean scores, and PC1 as a score (paper Figure 5).

    Writes the components and loadings (``<prefix>.tsv``), PC1 of every example
    (``<prefix>.pc1.tsv``) and the stability of PC1 (``<prefix>.stability.tsv``).
    """
    _check_figure_format(figure_format)
    dataset_name, screened = load_arch_scores(arch, store, dataset, scores)
    result = difficulty.score_pca(screened.matrices, repeats=repeats, seed=seed)
    labels = next(iter(screened.matrices.values())).labels
    pc1 = pd.DataFrame({"example_id": result.example_id, "label": labels, difficulty.PC1_NAME: result.pc1})
    figure = difficulty_plots.plot_pca(result)
    figure.suptitle(f"{dataset_name} · {arch}: principal components of {len(result.scores)} scores", fontsize=10)
    prefix = output_prefix(out, dataset_name, arch, "pca")
    tables = {".tsv": result.components_table(), ".pc1.tsv": pc1, ".stability.tsv": result.stability}
    line = f"PC1 explains {result.explained_variance_ratio[0]:.1%} of the variance of the scores"
    return _save(dataset_name, tuple(screened.notes()) + tuple(result.notes), tables, figure, prefix, figure_format, [line])


def sizes(
    archs: Iterable[str] | None = None,
    store: str | os.PathLike | None = None,
    dataset: str | None = None,
    scores: str | Iterable[str] | None = None,
    out: str | os.PathLike | None = None,
    figure_format: str = "png",
) -> AnalysisOutput:
    """Mean −log10 p of every pair of architectures against the ratio of their parameter counts.

    Parameters
    ----------
    archs : iterable of str, optional
        Architectures to compare pairwise (default: every one of the dataset).
    store, dataset, scores, out, figure_format
        As for the other analyses; the default prefix is ``./gwasm-results/<dataset>.sizes``.

    Returns
    -------
    AnalysisOutput
        Its ``tables[".tsv"]`` holds one row per pair (:data:`~gwas_models.analysis.capacity.CAPACITY_COLUMNS`);
        its lines, the table and the size-effect correlation when there are three pairs or more.
    """
    from gwas_models.analysis.capacity import capacity_row, capacity_table, size_effect_correlation
    from gwas_models.analysis.study import associate, check_archs
    from gwas_models.workflows.associate import choose_scores
    from gwas_models.plots.capacity import capacity_scatter

    _check_figure_format(figure_format)
    store_path = run_store.resolve_store(store)
    dataset_name = run_store.resolve_dataset(store_path, dataset)
    present = run_store.list_archs(store_path, dataset_name)
    chosen = check_archs(archs or present, present, where=f" for dataset {dataset_name!r} in {store_path}")
    names = choose_scores(store_path, dataset_name, chosen, scores)
    matrices = run_store.load_score_matrices(store_path, dataset_name, names, chosen)
    n_parameters = run_store.list_runs(store_path, dataset_name).groupby("arch")["n_parameters"].first().to_dict()
    rows: list[dict] = []

    def keep_pair(_study, comparison) -> None:
        if comparison.kind == "pair":
            rows.append(capacity_row(comparison, n_parameters))

    associate(matrices, chosen, on_comparison=keep_pair, keep_tables=False)
    table = capacity_table(rows)
    figure = Figure(figsize=(6.4, 4.4), layout="constrained")
    capacity_scatter(table, ax=figure.add_subplot())
    lines = [table.to_string(index=False, float_format=lambda v: f"{v:.4g}")]
    notes = []
    if len(table) >= 3:
        rho, p = size_effect_correlation(table)
        lines.append(f"Spearman correlation of log size ratio and mean -log10 p over {len(table)} pairs: {rho:.3f} (p = {p:.3g})")
    else:
        notes.append("fewer than three pairs: no size-effect correlation")
    prefix = output_prefix(out, dataset_name, "sizes") if out is None else output_prefix(out, dataset_name)
    return _save(dataset_name, notes, {".tsv": table}, figure, prefix, figure_format, lines)
