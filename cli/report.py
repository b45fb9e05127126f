"""`gwasm report`: one self-contained HTML page of all results."""

from __future__ import annotations

from typing import Optional

import typer

from gwas_models.workflows.report import DEFAULT_RESULTS_DIR
from gwasm_cli.app import app


@app.command()
def report(
    results: str = typer.Argument(str(DEFAULT_RESULTS_DIR), help="Results folder to gather."),
    out: Optional[str] = typer.Option(None, help="HTML file to write (default RESULTS/report.html)."),
    store: Optional[str] = typer.Option(None, help="Run store for the runs' provenance (default $GWASM_STORE or ./gwasm-store)."),
) -> None:
    """Gather figures, tables, λGC, run provenance and commands into one HTML file.

    Example: gwasm report gwasm-results --out report.html
    """
    from gwas_models.workflows.report import write_results_report

    typer.echo(f"wrote {write_results_report(results, out, store)}")
