"""One self-contained HTML report of everything under a results folder.

The report embeds every figure (PNG as base64, SVG inline), shows every small table, summarises
each association (λGC and hits per score, top examples), lists the runs and their provenance
from the store, and the commands that produced the results. It needs no network and no script.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from gwas_models import __version__
from gwas_models.errors import ResultsError
from gwas_models.formats.atomic import write_text_atomic
from gwas_models.formats.sumstats import PARQUET_SUFFIX, read_sumstats
from gwas_models.formats.sumstats_schema import (
    COMBINED_SCORES,
    LAMBDA_STRONG_ABOVE,
    LAMBDA_WARN_ABOVE,
    RANKING_COLUMN,
    inflation_level,
    ranking_column,
    ranking_score,
)

COMMANDS_FILE = "commands.log"
MAX_TABLE_ROWS = 25
# Figures and tables are grouped by the analysis that wrote them, recognised from the file name.
SECTIONS = (
    ("manhattan", "Manhattan plots"),
    ("qq", "QQ plots"),
    ("gallery", "Most and least architecture-sensitive examples"),
    ("fingerprint", "Fingerprints"),
    ("variance", "Variance of scores over runs"),
    ("stability", "Stability of rankings"),
    ("correlate", "Correlation between scores"),
    ("pca", "Principal components of difficulty"),
    ("sizes", "Effect size versus model size"),
)

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; line-height: 1.45; padding: 0 1em; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #bbb; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: 13px; display: block;
        overflow-x: auto; max-width: 100%; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f0f0f0; } td.text, th.text { text-align: left; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 13px; color: #555; }
code, pre { background: #f6f6f6; padding: 1px 4px; font-size: 13px; }
pre { padding: .6em; overflow-x: auto; }
.warn { color: #b35900; font-weight: bold; } .strong { color: #b30000; font-weight: bold; }
nav a { margin-right: 1em; }
"""


@dataclass(frozen=True)
class ReportInputs:
    """What the report found under the results folder."""

    figures: tuple[Path, ...]
    tables: tuple[Path, ...]
    sumstats: tuple[Path, ...]
    logs: tuple[Path, ...]
    commands: tuple[str, ...]


def find_inputs(results_dir: Path) -> ReportInputs:
    """Collect figures, tables, summary statistics, logs and commands under ``results_dir``."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise ResultsError(f"results folder {results_dir} not found", missing_step="associate")
    files = sorted(p for p in results_dir.rglob("*") if p.is_file() and not p.name.startswith("."))
    figures = tuple(p for p in files if p.suffix in (".png", ".svg"))
    sumstats = tuple(p for p in files if p.name.endswith(PARQUET_SUFFIX))
    tables = tuple(p for p in files if p.suffix == ".tsv" and ".sumstats." not in p.name and ".gwas-ssf." not in p.name)
    logs = tuple(p for p in files if p.suffix == ".log" and p.name != COMMANDS_FILE)
    commands_path = results_dir / COMMANDS_FILE
    commands = tuple(commands_path.read_text().splitlines()) if commands_path.is_file() else ()
    if not (figures or sumstats or tables):
        raise ResultsError(f"nothing to report in {results_dir}: no figures, tables or summary statistics")
    return ReportInputs(figures, tables, sumstats, logs, commands)


def _section_of(path: Path) -> str:
    name = path.name.lower()
    for key, _ in SECTIONS:
        if key in name:
            return key
    return "other"


def _figure_html(path: Path) -> str:
    if path.suffix == ".png":
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        body = f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'
    else:
        text = path.read_text()
        body = text[text.find("<svg") :] if "<svg" in text else ""
    return f"<figure>{body}<figcaption>{html.escape(path.name)}</figcaption></figure>"


def _table_html(frame: pd.DataFrame, max_rows: int = MAX_TABLE_ROWS) -> str:
    shown = frame.head(max_rows)
    header = "".join(f'<th class="{_cell_class(shown[c])}">{html.escape(str(c))}</th>' for c in shown.columns)
    rows = []
    for _, row in shown.iterrows():
        cells = "".join(f'<td class="{_cell_class(shown[c])}">{html.escape(_format_cell(row[c]))}</td>' for c in shown.columns)
        rows.append(f"<tr>{cells}</tr>")
    more = f"<p>{len(frame) - max_rows} more rows in the file.</p>" if len(frame) > max_rows else ""
    return f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}"


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
        return pd.read_csv(path, sep="\t", na_values=["."], comment=None)
    except Exception:
        return None


def association_summary(path: Path, alpha: float = 0.01) -> tuple[pd.DataFrame, pd.DataFrame]:
    """λGC and Bonferroni hits per score, and the top examples by combined evidence, of one sumstats file."""
    from gwas_models.analysis.multitest import genomic_control_lambda

    frame = read_sumstats(path)
    rows = []
    for score, block in frame.groupby("SCORE", sort=False):
        p = pd.to_numeric(block["P"], errors="coerce").to_numpy(dtype=float)
        tested = np.isfinite(p)
        n_tested = int(tested.sum())
        combined = str(score) in COMBINED_SCORES
        # Combined rows hold a Cauchy combination p (hits count) when the table has the ranking
        # column; in older tables their P was the geometric mean p, a ranking (no hits). Never a λ:
        # they are not one test per example of one score.
        ranking_only = combined and RANKING_COLUMN not in frame.columns
        if combined or n_tested == 0:
            lam = np.nan
        else:
            lam = genomic_control_lambda(p[tested])
        neg = pd.to_numeric(block["NEG_LOG10_P"], errors="coerce").to_numpy(dtype=float)
        threshold = -np.log10(alpha / max(n_tested, 1))
        rows.append(
            {
                "SCORE": score,
                "N_TESTED": n_tested,
                "LAMBDA_GC": lam,
                "BONFERRONI_HITS": np.nan if ranking_only else int(np.sum(neg[np.isfinite(neg)] > threshold)),
                "MAX_NEG_LOG10_P": float(np.nanmax(neg)) if np.isfinite(neg).any() else np.nan,
            }
        )
    # The paper's ranking: over every pair when the table has it, else over the scores.
    ranking = ranking_score(frame["SCORE"].astype(str))
    top_source = frame if ranking is None else frame[frame["SCORE"].astype(str) == ranking]
    order = ranking_column(ranking) if ranking is not None and ranking_column(ranking) in frame.columns else "NEG_LOG10_P"
    columns = [c for c in ("#CHROM", "ID", "SCORE", "NEG_LOG10_P", order, "HARDER_IN", "HARDEST_IN", "EASIEST_IN") if c in top_source.columns]
    top = top_source.sort_values(order, ascending=False).head(10)[list(dict.fromkeys(columns))]
    return pd.DataFrame(rows), top


def _lambda_class(value: float) -> str:
    """CSS class of a λGC value: ``warn``, ``strong`` or none (styled in :data:`_CSS`)."""
    return inflation_level(value)


def _runs_html(store: Path | None) -> str:
    if store is None or not Path(store).is_dir():
        return "<p>No run store given.</p>"
    from gwas_models.formats import store as run_store

    summary = run_store.summarize_runs(Path(store))
    if summary.empty:
        return f"<p>The store {html.escape(str(store))} holds no runs.</p>"
    parts = [_table_html(summary)]
    for key in _first_run_per_arch(Path(store)):
        provenance = run_store.read_provenance(Path(store), key)
        keep = {k: provenance.get(k) for k in ("config", "device", "n_threads", "versions", "early_epoch", "vog_epochs")}
        parts.append(
            f"<details><summary>Provenance of {html.escape(str(key))}</summary>"
            f"<pre>{html.escape(json.dumps(keep, indent=2, sort_keys=True))}</pre></details>"
        )
    return "".join(parts)


def _first_run_per_arch(store: Path) -> Iterable:
    from gwas_models.formats import store as run_store

    seen = set()
    for key in run_store.iter_run_keys(store):
        if (key.dataset, key.arch) not in seen:
            seen.add((key.dataset, key.arch))
            yield key


def render_report(results_dir: Path, store: Path | None = None, title: str = "gwasm report") -> str:
    """The report as an HTML string."""
    inputs = find_inputs(Path(results_dir))
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body: list[str] = [f"<h1>{html.escape(title)}</h1>", f"<p>gwas-models {__version__}, generated {now} from <code>{html.escape(str(results_dir))}</code>.</p>"]
    nav = ['<a href="#runs">Runs</a>', '<a href="#association">Association</a>']
    sections: dict[str, list[str]] = {}
    for figure in inputs.figures:
        sections.setdefault(_section_of(figure), []).append(_figure_html(figure))
    for table_path in inputs.tables:
        frame = _read_tsv(table_path)
        if frame is not None and not frame.empty:
            sections.setdefault(_section_of(table_path), []).append(f"<h3>{html.escape(table_path.name)}</h3>{_table_html(frame)}")
    titles = dict(SECTIONS) | {"other": "Other results"}
    for key in [k for k, _ in SECTIONS] + ["other"]:
        if key in sections:
            nav.append(f'<a href="#{key}">{html.escape(titles[key])}</a>')
    nav.append('<a href="#commands">Commands</a>')
    body.append(f"<nav>{''.join(nav)}</nav>")
    body.append(f'<h2 id="runs">Runs</h2>{_runs_html(store)}')
    body.append('<h2 id="association">Association</h2>')
    if not inputs.sumstats:
        body.append("<p>No association results.</p>")
    for path in inputs.sumstats:
        per_score, top = association_summary(path)
        lambdas = ", ".join(
            f'<span class="{_lambda_class(v)}">{html.escape(s)} {v:.3f}</span>'
            for s, v in zip(per_score["SCORE"], per_score["LAMBDA_GC"])
            if np.isfinite(v)
        )
        body.append(
            f"<h3>{html.escape(path.name)}</h3><p>λGC: {lambdas or 'n/a'} <small>(coloured above "
            f"{LAMBDA_WARN_ABOVE:g} and {LAMBDA_STRONG_ABOVE:g}; with replicate runs λ varies widely even "
            "without any difference: whether it is beyond run-to-run noise is said by its relabelling "
            "null in the comparison's .log)</small></p>"
        )
        body.append(_table_html(per_score))
        body.append("<p>Top examples by combined evidence:</p>" + _table_html(top))
    for log in inputs.logs:
        body.append(f"<details><summary>{html.escape(log.name)}</summary><pre>{html.escape(log.read_text())}</pre></details>")
    for key in [k for k, _ in SECTIONS] + ["other"]:
        if key in sections:
            body.append(f'<h2 id="{key}">{html.escape(titles[key])}</h2>' + "".join(sections[key]))
    commands = "\n".join(inputs.commands) or "(no command history recorded)"
    body.append(f'<h2 id="commands">Commands</h2><pre>{html.escape(commands)}</pre>')
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
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
