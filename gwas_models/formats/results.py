"""The results folder: where commands write tables, figures and summary statistics by default."""

from __future__ import annotations

import os
from pathlib import Path

#: Default folder of every output (summary statistics, figures, fingerprints, tables, report).
DEFAULT_RESULTS_DIR = Path("gwasm-results")
#: Environment variable naming the folder whose command history the report shows.
RESULTS_ENV = "GWASM_RESULTS"


def resolve_results_dir(results_dir: str | os.PathLike | None = None) -> Path:
    """``results_dir``, else ``$GWASM_RESULTS``, else ``./gwasm-results``."""
    if results_dir is not None:
        return Path(results_dir)
    return Path(os.environ.get(RESULTS_ENV) or DEFAULT_RESULTS_DIR)
