"""`gwasm report`: one self-contained HTML page of all results."""

from __future__ import annotations

from typing import Optional

import typer

from gwasm_cli.app import app


@app.command()
def report(
    results: str = typer.Argument("gwasm-results", help="Results folder to gather."),
    out: Optional[str] = typer.Option(None, help="HTML file to write (default RESULTS/report.html)."),
    store: Optional[str] = typer.Option(None, help="Run store for the runs' provenance (default $GWASM_STORE or ./gwasm-store)."),
) -> None:
    """Gather figures, tables, λGC, run provenance and commands into one HTML file.

    Example: gwasm report gwasm-results --out report.html
    """
    from pathlib import Path

    from gwas_models.formats.store import resolve_store
    from gwas_models.report import write_report

    path = write_report(Path(results), Path(out) if out else None, store=resolve_store(store))
    typer.echo(f"wrote {path}")
