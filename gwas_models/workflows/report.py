"""The HTML report of a results folder, and the history of commands it shows."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from gwas_models.formats.results import DEFAULT_RESULTS_DIR, resolve_results_dir


def write_results_report(
    results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR,
    out: str | os.PathLike | None = None,
    store: str | os.PathLike | None = None,
) -> Path:
    """Gather a results folder into one self-contained HTML file; return its path.

    Parameters
    ----------
    results_dir : path
        Folder of figures, tables and summary statistics (default ``./gwasm-results``).
    out : path, optional
        The HTML file (default ``<results_dir>/report.html``).
    store : path, optional
        Run store whose runs' provenance the report lists (default ``$GWASM_STORE`` or ``./gwasm-store``).
    """
    from gwas_models.formats.store import resolve_store
    from gwas_models.report import write_report

    return write_report(Path(results_dir), Path(out) if out is not None else None, store=resolve_store(store))


def record_history(argv: Sequence[str], results_dir: str | os.PathLike | None = None) -> None:
    """Append a finished command to the history of a results folder (default ``$GWASM_RESULTS``).

    The history is a convenience for the report: a folder that does not exist or cannot be written
    is skipped silently, never failing a command that did its work.
    """
    from gwas_models.report import record_command

    try:
        record_command(resolve_results_dir(results_dir), list(argv))
    except OSError:
        pass
