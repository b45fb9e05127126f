"""One self-contained HTML report of everything under a results folder.

The page opens with the finding and keeps the detail for later readers, in three parts:

1. **Summary**, per comparison: runs per architecture and their mean test accuracy, hits per score,
   λGC per score with what its relabelling null says of it, the top examples as thumbnails with
   the architecture that finds each harder, a flag when the association is stale against the
   store, and the fingerprint's held-out accuracy.
2. **Figures**, grouped by the analysis that wrote them, each with a caption.
3. **Tables and provenance**, collapsed (``<details>``): per-score tables, top examples, small
   result tables (large ones are named, not previewed), the runs and their provenance, the logs,
   and the commands that produced the results.

It needs no network and no script. It imports no torch: images for the thumbnails come from
:mod:`gwas_models.data`, which is NumPy only.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from gwas_models import __version__
from gwas_models.analysis.genomic_control import LAMBDA_NULL_ALPHA
from gwas_models.errors import ResultsError
from gwas_models.formats.atomic import write_text_atomic
from gwas_models.formats.fingerprint_file import PROCEDURE_CHOSEN, SCORE_CHOSEN_PER_SPLIT
from gwas_models.formats.sumstats import LOG_SUFFIX, PARQUET_SUFFIX, comparison_stem_of, read_sumstats, read_sumstats_metadata
from gwas_models.formats.sumstats_schema import (
    ADJUST_COLUMNS,
    COMBINED_SCORES,
    LAMBDA_STRONG_ABOVE,
    LAMBDA_WARN_ABOVE,
    RANKING_COLUMN,
    RANKING_MEANINGS,
    TESTED_ERRCODES,
    inflation_level,
    ranking_column,
    ranking_score,
)
from gwas_models.matrix import format_seeds

COMMANDS_FILE = "commands.log"
#: Rows of a result table shown in full; a larger table is named, not previewed.
MAX_TABLE_ROWS = 25
#: Top examples shown as thumbnails in the summary, and as rows in the collapsed table.
N_THUMBNAILS = 8
#: Side, in pixels, of a thumbnail (images are scaled up by a whole factor, nearest neighbour).
THUMBNAIL_PIXELS = 64
#: Alpha of the hit counts when the comparison's log does not say (``gwasm associate``'s default).
DEFAULT_ALPHA = 0.01
BONFERRONI_COLUMN = ADJUST_COLUMNS["bonferroni"]

# Figures and tables are grouped by the analysis that wrote them, recognised from the file name:
# (key in the name, section title, caption of its figures).
SECTIONS = (
    ("manhattan", "Manhattan plots", "−log10 p of every training example, grouped by class; the line marks Bonferroni significance."),
    ("qq", "QQ plots", "Observed against expected −log10 p: points above the diagonal are more evidence than chance gives."),
    ("gallery", "Most and least architecture-sensitive examples", "Training examples ranked by their evidence of a difference between architectures."),
    ("fingerprint", "Fingerprints", "Held-out accuracy of identifying a run's architecture from a few marker examples, against their number."),
    ("variance", "Variance of scores over runs", "How much each score varies from run to run of one architecture."),
    ("stability", "Stability of rankings", "How well the ranking of examples by a score agrees between runs."),
    ("correlate", "Correlation between scores", "Rank correlation between the difficulty scores."),
    ("pca", "Principal components of difficulty", "Principal components of the examples' scores."),
    ("sizes", "Effect size versus model size", "Effect size of the architecture against the models' size."),
)
_OTHER = ("other", "Other results", "")

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 1.5em auto;
       max-width: 1100px; color: #222; line-height: 1.45; padding: 0 1em; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; margin-bottom: .2em; }
h2 { margin-top: 1.6em; border-bottom: 1px solid #bbb; }
h3 { margin: 1.2em 0 .3em; }
p.meta { color: #666; font-size: 13px; margin-top: 0; }
/* Tables wrap instead of scrolling: a reader never meets a cut table. */
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: 13px; max-width: 100%; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; overflow-wrap: anywhere; }
th { background: #f0f0f0; } td.text, th.text { text-align: left; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figure svg { max-width: 100%; height: auto; }
figcaption { font-size: 13px; color: #555; }
code, pre { background: #f6f6f6; padding: 1px 4px; font-size: 13px; }
pre { padding: .6em; white-space: pre-wrap; overflow-wrap: anywhere; }
.warn { color: #b35900; font-weight: bold; } .strong { color: #b30000; font-weight: bold; }
.stale { background: #fff4e0; border-left: 4px solid #e08a00; padding: .4em .8em; }
.comparison { border: 1px solid #ddd; border-radius: 4px; padding: .2em 1em .6em; margin: 1em 0; }
.comparison ul { margin: .3em 0; padding-left: 1.3em; }
.thumbs { display: flex; flex-wrap: wrap; gap: 10px; margin: .4em 0; }
.thumbs figure { margin: 0; text-align: center; width: 116px; }
.thumbs img { width: 64px; height: 64px; image-rendering: pixelated; }
.thumbs figcaption { font-size: 11px; line-height: 1.25; }
details { margin: .4em 0; } summary { cursor: pointer; font-weight: 600; }
nav a { margin-right: 1em; }
"""


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportInputs:
    """What the report found under the results folder."""

    figures: tuple[Path, ...]
    tables: tuple[Path, ...]
    sumstats: tuple[Path, ...]
    logs: tuple[Path, ...]
    commands: tuple[str, ...]
    fingerprints: tuple[Path, ...] = ()


def find_inputs(results_dir: Path) -> ReportInputs:
    """Collect figures, tables, summary statistics, logs, saved fingerprints and commands under ``results_dir``."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise ResultsError(f"results folder {results_dir} not found", missing_step="associate")
    files = sorted(p for p in results_dir.rglob("*") if p.is_file() and not p.name.startswith("."))
    figures = tuple(p for p in files if p.suffix in (".png", ".svg"))
    sumstats = tuple(p for p in files if p.name.endswith(PARQUET_SUFFIX))
    tables = tuple(p for p in files if p.suffix == ".tsv" and ".sumstats." not in p.name and ".gwas-ssf." not in p.name)
    logs = tuple(p for p in files if p.suffix == ".log" and p.name != COMMANDS_FILE)
    fingerprints = tuple(p for p in files if p.suffix == ".json" and "fingerprint" in p.name)
    commands_path = results_dir / COMMANDS_FILE
    commands = tuple(commands_path.read_text().splitlines()) if commands_path.is_file() else ()
    if not (figures or sumstats or tables):
        raise ResultsError(f"nothing to report in {results_dir}: no figures, tables or summary statistics")
    return ReportInputs(figures, tables, sumstats, logs, commands, fingerprints)


# --------------------------------------------------------------------------------------------
# What one comparison found
# --------------------------------------------------------------------------------------------


def association_summary(path: Path, alpha: float = DEFAULT_ALPHA) -> tuple[pd.DataFrame, pd.DataFrame]:
    """λGC and Bonferroni hits per score, and the top examples by the paper's ranking (mean −log10 p
    over scores), of one sumstats file."""
    frame = read_sumstats(path)
    return _per_score(frame, alpha), _top_examples(frame, 10)


def _per_score(frame: pd.DataFrame, alpha: float) -> pd.DataFrame:
    from gwas_models.analysis.multitest import genomic_control_lambda

    rows = []
    for score, block in frame.groupby("SCORE", sort=False):
        p = pd.to_numeric(block["P"], errors="coerce").to_numpy(dtype=float)
        tested = np.isfinite(p)
        combined = str(score) in COMBINED_SCORES
        # Combined rows hold a Cauchy combination p (hits count) when the table has the ranking
        # column; in older tables their P was the geometric mean p, a ranking (no hits). Never a λ:
        # they are not one test per example of one score.
        ranking_only = combined and RANKING_COLUMN not in frame.columns
        # λ is of the tests' statistics, as the association computed it: not of SEPARATED rows (an
        # exact permutation p, no t), and of Welch's t where P is a permutation p (EMP1).
        with_statistic = tested & (block["ERRCODE"].astype(str).to_numpy() == ".")
        if "EMP1" in block.columns and not combined:
            from scipy import stats

            statistic = pd.to_numeric(block["T_STAT"], errors="coerce").to_numpy(dtype=float)
            df = pd.to_numeric(block["DF"], errors="coerce").to_numpy(dtype=float)
            with np.errstate(invalid="ignore"):
                p = 2.0 * stats.t.sf(np.abs(statistic), df)
        lam = np.nan if combined or not with_statistic.any() else genomic_control_lambda(p[with_statistic])
        neg = pd.to_numeric(block["NEG_LOG10_P"], errors="coerce").to_numpy(dtype=float)
        rows.append(
            {
                "SCORE": score,
                "N_TESTED": int(tested.sum()),
                "LAMBDA_GC": lam,
                "BONFERRONI_HITS": np.nan if ranking_only else _bonferroni_hits(block, neg, alpha),
                "MAX_NEG_LOG10_P": float(np.nanmax(neg)) if np.isfinite(neg).any() else np.nan,
            }
        )
    return pd.DataFrame(rows)


def _bonferroni_hits(block: pd.DataFrame, neg_log10_p: np.ndarray, alpha: float) -> int:
    """Examples with a Bonferroni-adjusted p at most ``alpha``: from the table's own adjusted
    column when it has one (what ``associate`` counted), else from -log10 p over the tested."""
    if BONFERRONI_COLUMN in block.columns:
        adjusted = pd.to_numeric(block[BONFERRONI_COLUMN], errors="coerce").to_numpy(dtype=float)
        return int(np.sum(adjusted[np.isfinite(adjusted)] <= alpha))
    finite = neg_log10_p[np.isfinite(neg_log10_p)]
    return int(np.sum(finite > -np.log10(alpha / max(len(finite), 1))))


def _top_examples(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    """The paper's ranking: over every pair when the table has it, else over the scores."""
    ranking = ranking_score(frame["SCORE"].astype(str))
    source = frame if ranking is None else frame[frame["SCORE"].astype(str) == ranking]
    order = ranking_column(ranking) if ranking is not None and ranking_column(ranking) in frame.columns else "NEG_LOG10_P"
    wanted = ("#CHROM", "ID", "LABEL", "SCORE", "NEG_LOG10_P", order, "HARDER_IN", "HARDEST_IN", "EASIEST_IN")
    columns = list(dict.fromkeys(c for c in wanted if c in source.columns))
    top = source.sort_values(order, ascending=False).head(n)[columns].copy()
    if ranking in COMBINED_SCORES:
        for column in ("HARDEST_IN", "EASIEST_IN"):
            if column in top.columns:
                top[column] = _majority_direction(frame, top, column)
    return _drop_empty_columns(top)


def _majority_direction(frame: pd.DataFrame, top: pd.DataFrame, column: str) -> pd.Series:
    """A one-way table's combined rows name no hardest architecture: the one most of the
    example's tested scores name instead (text left as it is where the combined row has one)."""
    scores = frame[~frame["SCORE"].astype(str).isin(COMBINED_SCORES) & frame["ERRCODE"].astype(str).isin(TESTED_ERRCODES)]
    named = scores[scores["ID"].isin(top["ID"]) & (scores[column].astype(str) != ".")]
    majority = named.groupby("ID")[column].agg(lambda values: values.astype(str).value_counts().index[0])
    filled = top["ID"].map(majority)
    return top[column].where(top[column].astype(str) != ".", filled).fillna(".")


def _drop_empty_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Without columns that hold nothing (NaN, or '.' in text columns): a pair table's empty
    HARDEST_IN, say, tells the reader nothing."""
    empty = [c for c in frame.columns if frame[c].isna().all() or frame[c].astype(str).isin([".", "", "nan"]).all()]
    return frame.drop(columns=empty)


@dataclass(frozen=True)
class LambdaFacts:
    """λGC of one score and what its relabelling null says of it."""

    value: float
    upper: float = float("nan")
    verdict: str = ""

    @property
    def beyond(self) -> bool:
        return self.verdict.startswith("beyond")


@dataclass(frozen=True)
class LogFacts:
    """What the report reads of a comparison's ``.log``: only what the Parquet file lacks."""

    alpha: float | None = None
    runs: Mapping[str, tuple[int, tuple[int, ...] | None]] = field(default_factory=dict)
    lambdas: Mapping[str, LambdaFacts] = field(default_factory=dict)


_ALPHA_LINE = re.compile(r"significant = adjusted p <= (?P<alpha>[0-9.eE+-]+)")
_RUNS_LINE = re.compile(r"^\s+(?P<arch>.+): (?P<n>\d+) runs, seeds (?P<seeds>.*)$")
_NULL_LINE = re.compile(r"^\s+(?P<score>\S+): λ = ")


def parse_log(text: str) -> LogFacts:
    """Alpha, runs used (count and seeds per architecture) and λ per score with its verdict, from
    the ``.log`` text of :func:`~gwas_models.analysis.association_log.format_log`."""
    lines = text.splitlines()
    alpha = None
    for line in lines:
        found = _ALPHA_LINE.search(line)
        if found:
            alpha = _float(found["alpha"])
            break
    return LogFacts(alpha=alpha, runs=_log_runs(lines), lambdas=_log_lambdas(lines))


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _indented_block(lines: list[str], opener: str) -> list[str]:
    """The indented lines that follow the first line starting with ``opener``."""
    for index, line in enumerate(lines):
        if line.startswith(opener):
            block = []
            for following in lines[index + 1 :]:
                if not following.startswith("  "):
                    break
                block.append(following)
            return block
    return []


def _log_runs(lines: list[str]) -> dict[str, tuple[int, tuple[int, ...] | None]]:
    runs = {}
    for line in _indented_block(lines, "runs used:"):
        found = _RUNS_LINE.match(line)
        if found:
            runs[found["arch"].strip()] = (int(found["n"]), _parse_seeds(found["seeds"]))
    return runs


def _parse_seeds(text: str) -> tuple[int, ...] | None:
    """``"0-2,5"`` -> ``(0, 1, 2, 5)`` (the inverse of :func:`format_seeds`); None when unreadable."""
    seeds: list[int] = []
    try:
        for part in text.strip().split(","):
            low, _, high = part.partition("-")
            seeds += range(int(low), int(high or low) + 1)
    except ValueError:
        return None
    return tuple(seeds)


def _log_lambdas(lines: list[str]) -> dict[str, LambdaFacts]:
    """λ per score: the number and 95th percentile from the per-score table, the verdict from
    the sentence under "lambda_GC against its null"."""
    values: dict[str, tuple[float, float]] = {}
    block = _indented_block(lines, "per score (")
    if block:
        header = block[0].split()
        for row in block[1:]:
            cells = dict(zip(header, row.split()))
            if "score" in cells and "lambda_GC" in cells:
                values[cells["score"]] = (_float(cells["lambda_GC"]), _float(cells.get("lambda_95", "nan")))
    verdicts = {}
    for line in _indented_block(lines, "lambda_GC against its null"):
        found = _NULL_LINE.match(line)
        if found:
            verdicts[found["score"]] = _verdict_of(line)
    return {
        score: LambdaFacts(value, upper, verdicts.get(score, ""))
        for score, (value, upper) in values.items()
        if np.isfinite(value)
    }


# λ's verdict in the report's words, by :attr:`~gwas_models.analysis.genomic_control.LambdaNull.verdict_code`.
_VERDICTS = {
    "beyond": "beyond run-to-run noise: a global difference between the architectures",
    "within": "consistent with run-to-run noise",
    "undecided": "undecided: too near its null's 95th percentile to tell within the relabellings drawn",
    "no_verdict": f"no verdict: too few runs for a relabelling p to reach {LAMBDA_NULL_ALPHA:g}",
}


def _verdict_of(sentence: str) -> str:
    """The verdict of a ``.log`` sentence (:meth:`~gwas_models.analysis.genomic_control.LambdaNull.describe`)."""
    for marker, code in (
        ("beyond it", "beyond"),
        ("consistent with run-to-run noise", "within"),
        ("undecided:", "undecided"),
        ("no verdict:", "no_verdict"),
    ):
        if marker in sentence:
            return _VERDICTS[code]
    return ""


def _metadata_lambdas(metadata: Mapping[str, Any]) -> dict[str, LambdaFacts]:
    """λ per score as the associate workflow records it in the Parquet metadata (newer files):
    ``{"lambda": {score: {"lambda_gc", "null_95", "beyond", "verdict", ...}}}``; the verdict from
    ``beyond`` alone in files written before ``verdict`` was; empty for older files."""
    facts = {}
    for score, entry in (metadata.get("lambda") or {}).items():
        value = entry.get("lambda_gc") if isinstance(entry, Mapping) else None
        if value is None or not np.isfinite(value):
            continue
        upper = entry.get("null_95")
        beyond = entry.get("beyond")
        if "verdict" in entry:  # "no_null" (no tested example) or None: no verdict to show
            verdict = _VERDICTS.get(str(entry["verdict"]), "")
        else:
            verdict = "" if beyond is None else _VERDICTS["beyond" if beyond else "within"]
        facts[str(score)] = LambdaFacts(float(value), float("nan") if upper is None else float(upper), verdict)
    return facts


@dataclass
class Comparison:
    """Everything the report says of one comparison (one sumstats Parquet file)."""

    path: Path
    archs: tuple[str, ...]
    dataset: str | None
    store: Path | None
    alpha: float
    per_score: pd.DataFrame
    top: pd.DataFrame
    lambdas: Mapping[str, LambdaFacts]
    runs_used: Mapping[str, tuple[int, tuple[int, ...] | None]]
    store_runs: pd.DataFrame | None
    log: Path | None
    normalize: str | None = None
    global_shift: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "pair" if len(self.archs) == 2 else "oneway"

    @property
    def label(self) -> str:
        title = " vs ".join(self.archs) if self.archs else comparison_stem_of(self.path)
        return title if self.kind == "pair" else f"one-way across {', '.join(self.archs)}"


def load_comparison(path: Path, store: Path | None) -> Comparison:
    """Read one comparison: its table, metadata, log and the store's runs of its architectures."""
    frame = read_sumstats(path)
    metadata = _safe_metadata(path)
    log_path = path.with_name(comparison_stem_of(path) + LOG_SUFFIX)
    log = parse_log(log_path.read_text()) if log_path.is_file() else LogFacts()
    alpha = _metadata_alpha(metadata)
    if alpha is None:  # files written before the metadata held it
        alpha = log.alpha if log.alpha is not None and np.isfinite(log.alpha) else DEFAULT_ALPHA
    archs = tuple(str(a) for a in metadata.get("archs") or _archs_of(frame, log))
    dataset = metadata.get("dataset")
    store_path = _store_for(store, metadata, dataset)
    store_runs = _store_runs(store_path, dataset) if store_path is not None else None
    return Comparison(
        path=path,
        archs=archs,
        dataset=str(dataset) if dataset else None,
        store=store_path,
        alpha=alpha,
        per_score=_per_score(frame, alpha),
        top=_top_examples(frame, N_THUMBNAILS),
        lambdas=_metadata_lambdas(metadata) or dict(log.lambdas),
        runs_used=_runs_used(frame, archs, log),
        store_runs=store_runs,
        log=log_path if log_path.is_file() else None,
        normalize=str(metadata["normalize"]) if metadata.get("normalize") else None,
        global_shift=dict(metadata.get("global_shift") or {}),
    )


def _metadata_alpha(metadata: Mapping[str, Any]) -> float | None:
    value = metadata.get("alpha")
    return float(value) if isinstance(value, (int, float)) and np.isfinite(value) else None


def _safe_metadata(path: Path) -> dict[str, Any]:
    try:
        return read_sumstats_metadata(path)
    except ResultsError:
        return {}


def _archs_of(frame: pd.DataFrame, log: LogFacts) -> tuple[str, ...]:
    if log.runs:
        return tuple(log.runs)
    if {"A", "B"} <= set(frame.columns) and len(frame):
        return (str(frame["A"].iloc[0]), str(frame["B"].iloc[0]))
    return ()


def _store_for(given: Path | None, metadata: Mapping[str, Any], dataset: Any) -> Path | None:
    """The store to compare with: the one given when it holds the dataset, else the one the
    table was computed from (results copied elsewhere may no longer reach it)."""
    candidates = [Path(given)] if given is not None else []
    if metadata.get("store"):
        candidates.append(Path(str(metadata["store"])))
    for candidate in candidates:
        if candidate.is_dir() and (dataset is None or (candidate / f"dataset={dataset}").is_dir()):
            return candidate
    return None


def _store_runs(store: Path, dataset: Any) -> pd.DataFrame | None:
    from gwas_models.formats import store as run_store

    try:
        return run_store.list_runs(store, str(dataset) if dataset else None)
    except Exception:  # a damaged store must not cost the whole report
        return None


def _runs_used(frame: pd.DataFrame, archs: tuple[str, ...], log: LogFacts) -> dict[str, tuple[int, tuple[int, ...] | None]]:
    """Runs per architecture: the log's count and seeds, else the table's largest N_A / N_B
    (runs with a finite score: the runs used, for the examples that every run scored)."""
    if log.runs:
        return dict(log.runs)
    used = {}
    for arch, column in zip(archs, ("N_A", "N_B")):
        if column in frame.columns and frame[column].notna().any():
            used[arch] = (int(frame[column].max()), None)
    return used


# --------------------------------------------------------------------------------------------
# Staleness
# --------------------------------------------------------------------------------------------


def stale_messages(comparison: Comparison) -> list[str]:
    """Sentences saying where the association no longer matches the store: the store holds more
    runs (or other seeds) of an architecture than the association used."""
    runs = comparison.store_runs
    if runs is None or not comparison.runs_used:
        return []
    messages = []
    for arch, (n_used, seeds_used) in comparison.runs_used.items():
        seeds_now = tuple(sorted(int(s) for s in runs.loc[runs["arch"] == arch, "seed"]))
        message = _stale_message(arch, n_used, seeds_used, seeds_now)
        if message:
            messages.append(message)
    return messages


def _stale_message(arch: str, n_used: int, seeds_used: tuple[int, ...] | None, seeds_now: tuple[int, ...]) -> str:
    now = f"the store now holds {len(seeds_now)}" + (f" (seeds {format_seeds(seeds_now)})" if seeds_now else "")
    if seeds_used is not None:
        if set(seeds_used) == set(seeds_now):
            return ""
        used = f"computed on {n_used} run{'s' * (n_used != 1)} of {arch} (seeds {format_seeds(seeds_used)})"
        return f"{used}; {now}: rerun gwasm associate"
    if n_used == len(seeds_now):
        return ""
    return f"computed on {n_used} run{'s' * (n_used != 1)} of {arch}; {now}: rerun gwasm associate"


# --------------------------------------------------------------------------------------------
# Thumbnails
# --------------------------------------------------------------------------------------------


class ImageSource:
    """Training images of each (store, dataset), loaded once; None where they cannot be loaded
    (a CIFAR folder that moved, a store without the dataset's source): then no thumbnails."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], np.ndarray | None] = {}

    def images(self, store: Path | None, dataset: str | None) -> np.ndarray | None:
        if store is None or dataset is None:
            return None
        key = (str(store), dataset)
        if key not in self._cache:
            self._cache[key] = _load_images(store, dataset)
        return self._cache[key]


def _load_images(store: Path, dataset: str) -> np.ndarray | None:
    from gwas_models.data import load_dataset_from_source
    from gwas_models.formats.store import read_dataset_info

    try:
        return load_dataset_from_source(read_dataset_info(store, dataset)["source"]).x_train
    except Exception:  # any reason the images are not there: the report goes on without them
        return None


def thumbnail_png(image: np.ndarray, pixels: int = THUMBNAIL_PIXELS) -> bytes:
    """A small PNG of one image ``(channels, height, width)`` in [0, 1], scaled up by a whole
    factor so that tiny images (8x8 digits) stay sharp."""
    from PIL import Image

    array = np.asarray(image, dtype=np.float32)
    array = array[0] if array.shape[0] == 1 else np.moveaxis(array, 0, -1)
    low, high = float(np.nanmin(array)), float(np.nanmax(array))
    if low < 0 or high > 1:  # normalised images: stretch to [0, 1]
        array = (array - low) / max(high - low, 1e-12)
    picture = Image.fromarray(np.clip(np.round(array * 255), 0, 255).astype(np.uint8))
    factor = max(1, pixels // max(picture.size))
    picture = picture.resize((picture.size[0] * factor, picture.size[1] * factor), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _thumbnails_html(comparison: Comparison, images: np.ndarray | None) -> str:
    top = comparison.top
    if top.empty:
        return ""
    direction = "HARDER_IN" if "HARDER_IN" in top.columns else "HARDEST_IN" if "HARDEST_IN" in top.columns else None
    if images is None:
        ids = ", ".join(f"#{row['ID']} {_direction_text(row, direction)}".strip() for _, row in top.iterrows())
        return f"<p>Top examples by {html.escape(_ranking_words(top))} (images not available): {html.escape(ids)}.</p>"
    cells = []
    for _, row in top.iterrows():
        example = int(row["ID"])
        if not 0 <= example < len(images):
            continue
        data = base64.b64encode(thumbnail_png(images[example])).decode("ascii")
        caption = f"#{example} · class {html.escape(str(row.get('#CHROM', '?')))}<br>{html.escape(_direction_text(row, direction))}"
        cells.append(f'<figure><img alt="example {example}" src="data:image/png;base64,{data}"><figcaption>{caption}</figcaption></figure>')
    return f'<p>Top examples by {html.escape(_ranking_words(top))}:</p><div class="thumbs">{"".join(cells)}</div>' if cells else ""


def _ranking_words(top: pd.DataFrame) -> str:
    """What ranked the top examples (:func:`_top_examples`): the paper's ranking, the mean −log10 p
    of the combined rows (not their Cauchy combination p), or a single score's −log10 p."""
    score = str(top["SCORE"].iloc[0]) if "SCORE" in top.columns and len(top) else ""
    if score in RANKING_MEANINGS:
        return f"the paper's ranking ({RANKING_MEANINGS[score]})"
    return f"−log10 p of {score}" if score else "−log10 p"


def _direction_text(row: pd.Series, direction: str | None) -> str:
    value = str(row.get(direction, ".")) if direction else "."
    if value in (".", "", "nan"):
        return ""
    return f"harder in {value}" if direction == "HARDER_IN" else f"hardest in {value}"


# --------------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------------


def _runs_sentence(comparison: Comparison) -> str:
    parts = []
    runs = comparison.store_runs
    for arch in comparison.archs:
        n_used, seeds = comparison.runs_used.get(arch, (None, None))
        text = f"<b>{html.escape(arch)}</b> {n_used if n_used is not None else '?'} runs"
        accuracy = _mean_accuracy(runs, arch, seeds)
        if accuracy is not None:
            text += f" (mean test accuracy {accuracy:.3f})"
        parts.append(text)
    return "Runs: " + ", ".join(parts) + "." if parts else ""


def _mean_accuracy(runs: pd.DataFrame | None, arch: str, seeds: tuple[int, ...] | None) -> float | None:
    """Mean test accuracy of the runs used (all the store's runs of ``arch`` when the seeds are unknown)."""
    if runs is None or runs.empty:
        return None
    chosen = runs[runs["arch"] == arch]
    if seeds is not None:
        chosen = chosen[chosen["seed"].isin(seeds)]
    values = pd.to_numeric(chosen["test_accuracy"], errors="coerce").dropna()
    return float(values.mean()) if len(values) else None


def _hits_sentence(comparison: Comparison) -> str:
    frame = comparison.per_score.dropna(subset=["BONFERRONI_HITS"])
    if frame.empty:
        return ""
    frame = frame.sort_values("BONFERRONI_HITS", ascending=False, kind="stable")
    with_hits = [f"{html.escape(str(s))} {int(h)}" for s, h in zip(frame["SCORE"], frame["BONFERRONI_HITS"]) if h > 0]
    without = [html.escape(str(s)) for s, h in zip(frame["SCORE"], frame["BONFERRONI_HITS"]) if h == 0]
    tested = int(comparison.per_score["N_TESTED"].max()) if len(comparison.per_score) else 0
    what = (
        "Examples that change difficulty relative to their architecture"
        if comparison.normalize == "relative"
        else "Hits" if comparison.normalize is None else f"Hits ({html.escape(_NORMALIZE_WORDS.get(comparison.normalize, comparison.normalize))})"
    )
    text = f"{what} (Bonferroni, α = {comparison.alpha:g}, of {tested:,} examples): "
    text += ", ".join(with_hits) if with_hits else "none"
    if with_hits and without:
        text += f"; none for {', '.join(without)}"
    return text + "."


_NORMALIZE_WORDS = {"none": "scores as collected: a global shift counts in every example"}


def _global_shift_sentence(comparison: Comparison) -> str:
    """The global question on its own line: which architecture is harder overall, per score (the
    run-level test of the runs' mean scores, from the Parquet metadata)."""
    if not comparison.global_shift:
        return ""
    if comparison.kind != "pair":  # one-way: which scores' run means differ, without a direction
        shifted = [str(score) for score, entry in comparison.global_shift.items() if (entry.get("p") or 1.0) <= comparison.alpha]
        listed = html.escape(", ".join(shifted)) if shifted else "none"
        return f"Global shift (run means differ across the architectures, α = {comparison.alpha:g}): {listed}."
    harder: dict[str, list[str]] = {}
    for score, entry in comparison.global_shift.items():
        if entry.get("harder_overall"):
            harder.setdefault(str(entry["harder_overall"]), []).append(str(score))
    if not harder:
        return f"Global shift: none (no score's run means differ at α = {comparison.alpha:g})."
    parts = [f"<b>{html.escape(arch)} harder overall</b> for {html.escape(', '.join(scores))}" for arch, scores in harder.items()]
    return f"Global shift (run means, α = {comparison.alpha:g}): " + "; ".join(parts) + "."


def _lambda_sentence(comparison: Comparison) -> str:
    """λ per score, grouped by what its relabelling null says; computed λ when the log is missing."""
    lambdas = dict(comparison.lambdas) or {
        str(s): LambdaFacts(float(v)) for s, v in zip(comparison.per_score["SCORE"], comparison.per_score["LAMBDA_GC"]) if np.isfinite(v)
    }
    if not lambdas:
        return ""
    beyond = {s: f for s, f in lambdas.items() if f.beyond}
    noise = {s: f for s, f in lambdas.items() if f.verdict.startswith("consistent")}
    undecided = {s: f for s, f in lambdas.items() if f.verdict.startswith("undecided")}
    no_verdict = {s: f for s, f in lambdas.items() if f.verdict.startswith("no verdict")}
    judged = beyond | noise | undecided | no_verdict
    unjudged = {s: f for s, f in lambdas.items() if s not in judged}
    parts = []
    if beyond:
        parts.append(f"<b>beyond run-to-run noise</b> (a global difference between the architectures) for {_lambda_list(beyond)}")
    if noise:
        parts.append(f"consistent with run-to-run noise for {_lambda_list(noise)}")
    if undecided:
        parts.append(f"undecided (too near its null's 95th percentile to tell within the relabellings drawn) for {_lambda_list(undecided)}")
    if no_verdict:
        parts.append(f"no verdict (too few runs for any relabelling p to reach {LAMBDA_NULL_ALPHA:g}) for {_lambda_list(no_verdict)}")
    if unjudged:
        parts.append(f"no relabelling null recorded for {_lambda_list(unjudged)}")
    return "λGC " + "; ".join(parts) + "."


def _lambda_list(facts: Mapping[str, LambdaFacts]) -> str:
    # Coloured only when beyond its null: a large λ within it is run-to-run noise, not a finding,
    # and red there would say the opposite of the sentence. Without a null, by the fixed levels.
    def one(score: str, fact: LambdaFacts) -> str:
        null = f" (null 95%: {fact.upper:.2f})" if np.isfinite(fact.upper) else ""
        level = "strong" if fact.beyond else "" if fact.verdict else inflation_level(fact.value)
        return f'<span class="{level}">{html.escape(score)} {fact.value:.2f}</span>{null}'

    return ", ".join(one(s, f) for s, f in facts.items())


def _comparison_summary_html(comparison: Comparison, images: ImageSource) -> str:
    stale = "".join(f'<p class="stale">Stale: {html.escape(m)}.</p>' for m in stale_messages(comparison))
    items = [_runs_sentence(comparison), _hits_sentence(comparison), _global_shift_sentence(comparison)]
    if comparison.kind == "pair":  # one-way tables briefly: no λ (the pairs say it)
        items.append(_lambda_sentence(comparison))
    listed = "".join(f"<li>{item}</li>" for item in items if item)
    thumbs = _thumbnails_html(comparison, images.images(comparison.store, comparison.dataset))
    where = f" <small>({html.escape(comparison.dataset)})</small>" if comparison.dataset else ""
    return (
        f'<section class="comparison"><h3>{html.escape(comparison.label)}{where}</h3>{stale}'
        f"<ul>{listed}</ul>{thumbs}</section>"
    )


def _fingerprint_summary_html(tables: Iterable[Path], saved: Iterable[Path]) -> str:
    """Held-out accuracy of identifying the architecture from the top-K markers (evaluation
    TSVs): the score chosen inside each split first, the per-score accuracies as a description;
    and that of each saved fingerprint (its provenance)."""
    lines = []
    for path in tables:
        line = _evaluation_sentence(path)
        if line:
            lines.append(line)
    for path in saved:
        line = _saved_fingerprint_sentence(path)
        if line:
            lines.append(line)
    if not lines:
        return ""
    return '<section class="comparison"><h3>Fingerprint</h3><ul>' + "".join(f"<li>{x}</li>" for x in lines) + "</ul></section>"


def _evaluation_sentence(path: Path) -> str:
    frame = _read_tsv(path)
    if frame is None or not {"SCORE", "MEAN_ACCURACY"} <= set(frame.columns):
        return ""
    if "SELECT" in frame.columns:
        frame = frame[frame["SELECT"].astype(str) == "top"]
    frame = frame.dropna(subset=["MEAN_ACCURACY"])
    if frame.empty:
        return ""
    chosen = frame[frame["SCORE"].astype(str) == SCORE_CHOSEN_PER_SPLIT]
    frame = frame[frame["SCORE"].astype(str) != SCORE_CHOSEN_PER_SPLIT].sort_values("MEAN_ACCURACY", ascending=False)
    k = f" {int(frame['K'].iloc[0])}" if "K" in frame.columns and not frame.empty and pd.notna(frame["K"].iloc[0]) else ""
    archs = f" ({html.escape(str(frame['ARCHS'].iloc[0]).replace(',', ' vs '))})" if "ARCHS" in frame.columns and not frame.empty else ""
    scores = ", ".join(f"{html.escape(str(s))} {_accuracy_text(row)}" for s, (_, row) in zip(frame["SCORE"], frame.iterrows()))
    chance = f"; chance {frame['CHANCE'].iloc[0]:.2f}" if "CHANCE" in frame.columns and not frame.empty and pd.notna(frame["CHANCE"].iloc[0]) else ""
    source = f"<small>{html.escape(path.name)}</small>"
    if not chosen.empty:
        row = chosen.iloc[0]
        picks = str(row["CHOSEN"]).replace(":", " in ").replace(",", ", ") if "CHOSEN" in chosen.columns and pd.notna(row.get("CHOSEN")) else ""
        picked = f" (chosen: {html.escape(picks)} of {int(row['N_SPLITS'])} splits)" if picks and "N_SPLITS" in chosen.columns else ""
        return (
            f"Held-out accuracy of the top{k} markers{archs}, score chosen inside each split: {_accuracy_text(row)}{picked}{chance}. "
            f"Per score, descriptive (the best of them was picked on the splits it is scored on): {scores}. {source}"
        )
    if len(frame) > 1:
        return (
            f"Held-out accuracy of the top{k} markers{archs} per score, descriptive (picking the best of them on these same "
            f"splits would overstate it): {scores}{chance}. {source}"
        )
    return f"Held-out accuracy of the top{k} markers{archs}: {scores}{chance}. {source}"


def _accuracy_text(row: Mapping[str, Any]) -> str:
    text = f"<b>{float(row['MEAN_ACCURACY']):.2f}</b>"
    low, high = row.get("LOW"), row.get("HIGH")
    if low is not None and high is not None and pd.notna(low) and pd.notna(high):
        text += f" ({float(low):.2f}–{float(high):.2f})"
    return text


def _saved_fingerprint_sentence(path: Path) -> str:
    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError):
        return ""
    if not isinstance(payload, dict) or payload.get("format") != "gwasm-fingerprint":
        return ""
    record = (payload.get("provenance") or {}).get("heldout_accuracy")
    markers = len((payload.get("markers") or {}).get("example_id") or [])
    what = f"Saved fingerprint {html.escape(path.name)}: score {html.escape(str(payload.get('score')))}, {markers} markers"
    if not isinstance(record, dict) or record.get("mean") is None:
        return what + " (no held-out accuracy recorded)."
    accuracy = _accuracy_text({"MEAN_ACCURACY": record["mean"], "LOW": record.get("low"), "HIGH": record.get("high")})
    if record.get("procedure") == PROCEDURE_CHOSEN:
        considered = record.get("scores_considered") or []
        among = f" among {len(considered)}" if considered else ""
        return what + f" (chosen by cross-validation{among}), held-out accuracy {accuracy} with the score chosen inside each split."
    if record.get("procedure") is None:
        return what + f", held-out accuracy {accuracy} (recorded before the score's choice was nested: optimistic if it was picked among several)."
    return what + f", held-out accuracy {accuracy}."


def _summary_html(comparisons: list[Comparison], inputs: ReportInputs) -> str:
    images = ImageSource()
    # Pairs first: they carry the findings; one-way tables follow, briefly.
    ordered = sorted(comparisons, key=lambda c: c.kind != "pair")
    parts = [_comparison_summary_html(c, images) for c in ordered]
    fingerprints = [p for p in inputs.tables if "fingerprint" in p.name]
    parts.append(_fingerprint_summary_html(fingerprints, inputs.fingerprints))
    if not comparisons:
        parts.insert(0, "<p>No association results.</p>")
    note = (
        "<p class=\"meta\">With replicate runs λGC varies widely even without any difference, so its verdict comes "
        "from its relabelling null (the runs relabelled at random; 95%: its 95th percentile), as the comparison's "
        f".log records it; λ without a null is coloured above {LAMBDA_WARN_ABOVE:g} and {LAMBDA_STRONG_ABOVE:g}.</p>"
    )
    return '<h2 id="summary">Summary</h2>' + "".join(parts) + note


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------


def _section_of(path: Path) -> str:
    name = path.name.lower()
    for key, _, _ in SECTIONS:
        if key in name:
            return key
    return _OTHER[0]


def _figure_html(path: Path, caption: str) -> str:
    if path.suffix == ".png":
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        body = f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'
    else:
        text = path.read_text()
        body = text[text.find("<svg") :] if "<svg" in text else ""
    about = f"{html.escape(caption)} " if caption else ""
    return f"<figure>{body}<figcaption>{about}<code>{html.escape(path.name)}</code></figcaption></figure>"


def _grouped(paths: Iterable[Path]) -> list[tuple[str, str, str, list[Path]]]:
    """(key, title, caption, paths) per section, in :data:`SECTIONS` order, the rest last."""
    groups: dict[str, list[Path]] = {}
    for path in paths:
        groups.setdefault(_section_of(path), []).append(path)
    return [(key, title, caption, groups[key]) for key, title, caption in (*SECTIONS, _OTHER) if key in groups]


def _figures_html(figures: Iterable[Path]) -> str:
    parts = ['<h2 id="figures">Figures</h2>']
    groups = _grouped(figures)
    if not groups:
        parts.append("<p>No figures.</p>")
    for key, title, caption, paths in groups:
        parts.append(f'<h3 id="{key}">{html.escape(title)}</h3>' + "".join(_figure_html(p, caption) for p in paths))
    return "".join(parts)


# --------------------------------------------------------------------------------------------
# Tables and provenance (collapsed)
# --------------------------------------------------------------------------------------------


def _table_html(frame: pd.DataFrame) -> str:
    """A formatted table without empty columns; wide ones wrap (see :data:`_CSS`)."""
    shown = _drop_empty_columns(frame)
    header = "".join(f'<th class="{_cell_class(shown[c])}">{html.escape(str(c))}</th>' for c in shown.columns)
    rows = []
    for _, row in shown.iterrows():
        cells = "".join(f'<td class="{_cell_class(shown[c])}">{html.escape(_format_cell(row[c]))}</td>' for c in shown.columns)
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _cell_class(column: pd.Series) -> str:
    return "" if pd.api.types.is_numeric_dtype(column) else "text"


def _format_cell(value) -> str:
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return "."
        return f"{value:.4g}"
    return str(value)


def _read_tsv(path: Path) -> pd.DataFrame | None:
    try:
        return pd.read_csv(path, sep="\t", na_values=[".", "NA"], comment=None)
    except Exception:
        return None


def _details(summary: str, body: str) -> str:
    return f"<details><summary>{summary}</summary>{body}</details>"


def _comparison_tables_html(comparison: Comparison) -> str:
    name = html.escape(comparison.path.name)
    per_score = _details(f"Per score: λGC and hits, {html.escape(comparison.label)}", f"<p><code>{name}</code></p>{_table_html(comparison.per_score)}")
    top = _details(f"Top {len(comparison.top)} examples, {html.escape(comparison.label)}", _table_html(comparison.top))
    log = ""
    if comparison.log is not None:
        log = _details(f"Log, {html.escape(comparison.label)}", f"<pre>{html.escape(comparison.log.read_text())}</pre>")
    return per_score + top + log


def _result_table_html(path: Path) -> str:
    """A small result table in full; a large one only named, with its size (the file has it all)."""
    frame = _read_tsv(path)
    if frame is None or frame.empty:
        return ""
    name = html.escape(path.name)
    if len(frame) > MAX_TABLE_ROWS:
        columns = ", ".join(html.escape(str(c)) for c in frame.columns)
        return f"<p><code>{name}</code>: {len(frame):,} rows; columns {columns}.</p>"
    return _details(name, _table_html(frame))


def _runs_html(store: Path | None) -> str:
    if store is None or not Path(store).is_dir():
        return "<p>No run store given.</p>"
    from gwas_models.formats import store as run_store

    summary = run_store.summarize_runs(Path(store))
    if summary.empty:
        return f"<p>The store {html.escape(str(store))} holds no runs.</p>"
    parts = [_details(f"Runs in the store <code>{html.escape(str(store))}</code>", _table_html(summary))]
    for key in _first_run_per_arch(Path(store)):
        provenance = run_store.read_provenance(Path(store), key)
        keep = {k: provenance.get(k) for k in ("config", "device", "n_threads", "versions", "early_epoch", "vog_epochs")}
        parts.append(_details(f"Provenance of {html.escape(str(key))}", f"<pre>{html.escape(json.dumps(keep, indent=2, sort_keys=True))}</pre>"))
    return "".join(parts)


def _first_run_per_arch(store: Path) -> Iterable:
    from gwas_models.formats import store as run_store

    seen = set()
    for key in run_store.iter_run_keys(store):
        if (key.dataset, key.arch) not in seen:
            seen.add((key.dataset, key.arch))
            yield key


def _details_html(comparisons: list[Comparison], inputs: ReportInputs, store: Path | None) -> str:
    parts = ['<h2 id="details">Tables and provenance</h2>']
    parts += [_comparison_tables_html(c) for c in comparisons]
    for _, title, _, paths in _grouped(inputs.tables):
        tables = "".join(_result_table_html(p) for p in paths)
        if tables:
            parts.append(f"<h3>{html.escape(title)}</h3>{tables}")
    own_logs = {c.log for c in comparisons}
    for log in (p for p in inputs.logs if p not in own_logs):
        parts.append(_details(f"Log {html.escape(log.name)}", f"<pre>{html.escape(log.read_text())}</pre>"))
    parts.append(f"<h3 id=\"runs\">Runs</h3>{_runs_html(store)}")
    commands = "\n".join(inputs.commands) or "(no command history recorded)"
    parts.append(f'<h3 id="commands">Commands</h3>{_details("Commands that produced these results", f"<pre>{html.escape(commands)}</pre>")}')
    return "".join(parts)


# --------------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------------


def render_report(results_dir: Path, store: Path | None = None, title: str = "gwasm report") -> str:
    """The report as an HTML string: summary, figures, then tables and provenance (collapsed)."""
    inputs = find_inputs(Path(results_dir))
    comparisons = [load_comparison(path, store) for path in inputs.sumstats]
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    nav = '<nav><a href="#summary">Summary</a><a href="#figures">Figures</a><a href="#details">Tables and provenance</a></nav>'
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">gwas-models {__version__}, generated {now} from <code>{html.escape(str(results_dir))}</code>.</p>',
        nav,
        _summary_html(comparisons, inputs),
        _figures_html(inputs.figures),
        _details_html(comparisons, inputs, store),
    ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>{''.join(body)}</body></html>"
    )


def write_report(results_dir: Path, out: Path | None = None, store: Path | None = None) -> Path:
    """Render the report and write it atomically (default ``<results_dir>/report.html``)."""
    results_dir = Path(results_dir)
    out = Path(out) if out is not None else results_dir / "report.html"
    if out.suffix.lower() not in (".html", ".htm"):
        raise ResultsError(f"out must end in .html, got {out.name}", parameter="out")
    return write_text_atomic(out, render_report(results_dir, store))


def record_command(results_dir: Path, argv: list[str]) -> None:
    """Append a command line to the results folder's history (shown in the report)."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        return
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = " ".join(["gwasm", *(_quote(a) for a in argv)])
    with open(results_dir / COMMANDS_FILE, "a", encoding="utf-8") as handle:
        handle.write(f"{stamp}  {line}\n")


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)
